//! `procbridge run`: run a guest module.

use super::ExitCode;
use anyhow::{anyhow, Context};
use clap::Args;
use procbridge::{
    DirPerms, GuestBuilder, LoadError, ModuleCache, Policy, RunError, Runtime, Stdio,
};
use std::path::PathBuf;

/// Run a WebAssembly module (wasm32-wasi command) with the grants given.
///
/// The exit code is the guest's exit code. A trap prints the wasm backtrace
/// to stderr and exits with 134. Problems with the module itself exit with
/// 66 (cannot read it), 65 (not WebAssembly), 67 (imports something this
/// host does not provide), 68 (no `_start`).
#[derive(Debug, Args)]
pub(crate) struct RunCommand {
    /// Grant a host directory, read-write, seen by the guest at GUEST
    /// (default: the same path). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Grant a host directory, read-only. Repeatable.
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    dirs_ro: Vec<String>,

    /// Grant an environment variable: NAME=VALUE, or NAME to pass the
    /// host's value. Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,

    /// Grant running a command: a name (resolved in PATH once, now) or an
    /// absolute path. The guest may then spawn it by that name or by the
    /// resolved path, and nothing else. Repeatable.
    #[arg(long = "allow-run", value_name = "CMD")]
    allow_run: Vec<String>,

    /// Keep compiled modules in DIR (default: $PROCBRIDGE_CACHE_DIR,
    /// $XDG_CACHE_HOME/procbridge or ~/.cache/procbridge).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile the module without reading or writing the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,

    /// The module to run (.wasm, or .wat text).
    #[arg(value_name = "MODULE")]
    module: PathBuf,

    /// Arguments for the guest (its argv[0] is MODULE).
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

impl RunCommand {
    pub(crate) fn execute(self) -> i32 {
        match self.run() {
            Ok(code) => code,
            Err((code, err)) => {
                eprintln!("procbridge: {err}");
                code as i32
            }
        }
    }

    fn run(self) -> Result<i32, (ExitCode, anyhow::Error)> {
        let usage = |e: anyhow::Error| (ExitCode::Usage, e);
        let policy = self.policy().map_err(usage)?;
        let mut guest = GuestBuilder::new();
        guest
            .arg(self.module.display().to_string())
            .args(self.args.iter().cloned())
            .stdin(Stdio::Inherit)
            .policy(policy);
        for spec in &self.env {
            let (key, value) = parse_env(spec).map_err(usage)?;
            guest.env(key, value);
        }
        for (specs, perms) in [
            (&self.dirs, DirPerms::ReadWrite),
            (&self.dirs_ro, DirPerms::ReadOnly),
        ] {
            for spec in specs {
                let (host, guest_path) = parse_dir(spec);
                guest.preopened_dir(host, guest_path, perms);
            }
        }
        let state = guest.build().map_err(usage)?;

        let cache = match (&self.cache_dir, self.no_cache) {
            (_, true) => None,
            (Some(dir), false) => Some(ModuleCache::new(dir)),
            (None, false) => ModuleCache::default_dir().map(ModuleCache::new),
        };
        let internal = |e: anyhow::Error| (ExitCode::Internal, e);
        let runtime = Runtime::with_cache(cache).map_err(internal)?;
        let program = runtime
            .load_file(&self.module)
            .map_err(|e| (load_exit_code(&e), e.into()))?;
        runtime.run(&program, state).map_err(classify_run_error)
    }

    fn policy(&self) -> anyhow::Result<Policy> {
        let mut policy = Policy::builder();
        for cmd in &self.allow_run {
            policy = policy.allow_run(cmd)?;
        }
        Ok(policy.build())
    }
}

fn load_exit_code(err: &LoadError) -> ExitCode {
    match err {
        LoadError::Read { .. } => ExitCode::NoInput,
        LoadError::NotWasm { .. } => ExitCode::NotWasm,
        LoadError::UnknownImport { .. } | LoadError::Link { .. } => ExitCode::Link,
        LoadError::MissingStart { .. } => ExitCode::NoStart,
    }
}

fn classify_run_error(err: anyhow::Error) -> (ExitCode, anyhow::Error) {
    if let Some(load) = err.downcast_ref::<LoadError>() {
        return (load_exit_code(load), err);
    }
    match err.downcast_ref::<RunError>() {
        Some(RunError::Trap(_)) => (ExitCode::Trap, err),
        _ => (ExitCode::Internal, err),
    }
}

fn parse_env(spec: &str) -> anyhow::Result<(String, String)> {
    match spec.split_once('=') {
        Some(("", _)) => Err(anyhow!("--env {spec}: empty variable name")),
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => {
            let value = std::env::var(spec)
                .with_context(|| format!("--env {spec}: not set in the host environment"))?;
            Ok((spec.to_string(), value))
        }
    }
}

fn parse_dir(spec: &str) -> (String, String) {
    match spec.split_once("::") {
        Some((host, guest)) => (host.to_string(), guest.to_string()),
        None => (spec.to_string(), spec.to_string()),
    }
}
