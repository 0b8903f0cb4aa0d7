//! What `procbridge run` and `procbridge python` share: the grants and
//! limits a job takes, and running a guest under them.

use super::ExitCode;
use anyhow::{anyhow, Context};
use clap::Args;
use procbridge::cluster::JobLink;
use procbridge::python::PythonJob;
use procbridge::{
    audit, policy_file, watchdog, DirPerms, GuestBuilder, LoadError, MemoryAtStart, MemoryScope,
    ModuleCache, Policy, PolicyBuilder, Program, RunError, Runtime, Stdio,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The exit codes of `procbridge run` and `procbridge python`, shown at the
/// end of their `--help` (one text, so the two cannot drift; a test checks
/// it names every [`ExitCode`]).
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  N    the guest's own exit code, passed through (0 when _start returns;
       a Python script's as python3's: 1 for an uncaught exception)
  2    bad command line: an unknown flag, a bad value, an invalid policy
       file, a grant that cannot be made (not found, through a symbolic
       link, inside a read-write grant), a script that cannot be read,
       a memory limit below the memory the module needs to start
  65   the file is neither a WebAssembly module nor WAT text
  66   the module (for python: the interpreter) cannot be read
  67   the module imports a function this host does not provide
  68   the module has no _start
  69   the cluster's NATS server (--nats) cannot be reached or refused
  70   procbridge failed for a reason of its own
  124  the wall-clock limit (--wall-time) stopped the job
  134  the guest trapped (a panic, an abort, a bad memory access)
  141  the output was a pipe whose reader had gone (SIGPIPE, as a native
       program: `procbridge run job.wasm | head -1`)
  152  a guest process went over its CPU time (--cpu-time)";

/// The grants and limits of a job (nothing is granted unless one of these,
/// or the policy file, grants it).
#[derive(Debug, Args)]
pub(crate) struct JobOptions {
    #[command(flatten)]
    pub(crate) noise: super::Noise,

    /// Read grants and limits from a policy file (TOML, see docs/policy.md);
    /// the flags below add to it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    /// Grant a host directory, read-write, seen by the guest at GUEST
    /// (default: the same path); commands the guest runs may use it too.
    /// Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Grant a host directory, read-only. Repeatable.
    #[arg(long = "dir-ro", value_name = "HOST[::GUEST]")]
    dirs_ro: Vec<String>,

    /// Let granted directories lie inside read-write grants (refused
    /// otherwise: a guest could swap them).
    #[arg(long)]
    allow_overlap: bool,

    /// Grant environment variables: NAME=VALUE (one variable; its value
    /// may hold commas), or NAME, or NAME,NAME,... to pass the host's
    /// values. Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,

    /// Grant running commands: names (each resolved in PATH once, now) or
    /// absolute paths, comma-separated. The guest may then spawn each by
    /// that name or by the resolved path, and nothing else. Repeatable.
    #[arg(long = "allow-run", value_name = "CMD[,CMD...]", value_delimiter = ',')]
    allow_run: Vec<String>,

    /// Give commands the terminal's stderr itself: no hints of the grant
    /// that would allow what a command failed on (see docs/policy.md).
    #[arg(long)]
    no_hints: bool,

    /// Let the commands the guest runs use the network.
    #[arg(long)]
    network: bool,

    /// Run commands as this host user (and group; default: the user's
    /// number) instead of procbridge's own; only when procbridge runs as
    /// root.
    #[arg(long, value_name = "UID[:GID]")]
    run_as: Option<String>,

    /// Most live processes in the whole tree (guest processes and commands).
    #[arg(long, value_name = "N")]
    max_processes: Option<usize>,

    /// Most linear memory of one wasm instance, in MiB.
    #[arg(long, value_name = "MIB")]
    max_memory: Option<usize>,

    /// Most linear memory of all the wasm instances of the tree, in MiB.
    #[arg(long, value_name = "MIB")]
    max_total_memory: Option<u64>,

    /// Most output one call may capture from a command, in MiB.
    #[arg(long, value_name = "MIB")]
    max_output: Option<usize>,

    /// Most bytes waiting in one queue, in MiB.
    #[arg(long, value_name = "MIB")]
    max_queued: Option<usize>,

    /// Stop the whole job after SECS seconds of wall-clock time (exit 124).
    #[arg(long, value_name = "SECS")]
    wall_time: Option<f64>,

    /// Most CPU seconds of each process of the job.
    #[arg(long, value_name = "SECS")]
    cpu_time: Option<u64>,

    /// Append a JSON line for every spawn, exit, kill, denial and limit hit
    /// to FILE.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,

    /// Most the job may write to the audit log, in MiB; then one record
    /// says the log was truncated.
    #[arg(long, value_name = "MIB")]
    max_audit: Option<u64>,

    #[command(flatten)]
    cache: super::cache::CacheOptions,

    #[command(flatten)]
    pub(crate) cluster: super::cluster::ClusterOptions,

    /// Compile the module without reading or writing the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

/// Exits with the guest's exit code, or prints the problem as one line
/// (`procbridge: ...`) and exits with its code.
pub(crate) fn exit_code(result: Result<i32, (ExitCode, anyhow::Error)>) -> i32 {
    match result {
        Ok(code) => code,
        Err((code, err)) => {
            match super::trap::brief(&err) {
                Some(line) => eprintln!("procbridge: {line}"),
                None => eprintln!("procbridge: {err:#}"),
            }
            code as i32
        }
    }
}

/// What `--nats` puts in the cluster's store for the workers.
pub(crate) enum ClusterModule<'a> {
    /// The module's file.
    File(&'a Path),
    /// A Python job (its main; the workers run their own interpreter).
    Python(&'a PythonJob),
}

impl JobOptions {
    /// Runs a guest under these grants and limits: `load` loads its module,
    /// `configure` sets its arguments (the policy and stdin are set here).
    /// `module` is what `--nats` sends to the cluster.
    pub(crate) fn run(
        &self,
        module: ClusterModule<'_>,
        load: impl FnOnce(&Runtime) -> Result<Program, LoadError>,
        configure: impl FnOnce(&mut GuestBuilder),
    ) -> Result<i32, (ExitCode, anyhow::Error)> {
        let usage = |e: anyhow::Error| (ExitCode::Usage, e);
        let policy = self.policy().map_err(usage)?;
        self.open_audit(&policy).map_err(usage)?;
        let cache = self.cache(&policy).map_err(usage)?;
        let limits = policy.limits().clone();
        let mut guest = GuestBuilder::new();
        configure(&mut guest);
        let link = self.link_to_cluster(&module, &policy)?;
        if let Some(link) = &link {
            if matches!(module, ClusterModule::Python(_)) && self.cluster.pools_on_cluster() {
                // multiprocessing.Pool's workers relay to the cluster.
                guest.env("PROCBRIDGE_POOLS", "cluster");
            }
            guest.cluster(link.clone());
        }
        guest
            .stdin(Stdio::Inherit)
            .native_sigpipe(true)
            .denial_hints(
                !self.no_hints
                    && procbridge::diag::verbosity() != procbridge::diag::Verbosity::Quiet,
            )
            .policy(policy);
        let state = guest.build().map_err(usage)?;

        let internal = |e: anyhow::Error| (ExitCode::Internal, e);
        // The guest's deadline stops it at its wall time (the watchdog is
        // the backstop for a guest waiting in a host call).
        let runtime = Runtime::builder()
            .cache(cache)
            .epoch_interruption(limits.wall_time.is_some())
            // A job instantiates once and may fork many times.
            .lazy_tables(false)
            .build()
            .map_err(internal)?;
        // A progress line on a terminal while the module compiles.
        let program = super::progress::while_compiling(|| load(&runtime))
            .map_err(|e| (load_exit_code(&e), e.into()))?;
        if let Some(seconds) = limits.cpu_seconds {
            watchdog::arm_cpu_limit(seconds)
                .context("--cpu-time")
                .map_err(internal)?;
        }
        // From here on this process needs no privilege of its own.
        state
            .harden()
            .context("dropping privileges")
            .map_err(internal)?;
        let _wall_clock = limits.wall_time.map(watchdog::arm_wall_clock);
        let ended = runtime.run(&program, state).map_err(classify_run_error);
        if let Some(link) = link {
            // Tasks still queued for the job are of no use to anyone now.
            if let Err(err) = link.finish() {
                eprintln!("procbridge: warning: cancelling the job's remaining tasks: {err:#}");
            }
        }
        ended
    }

    /// `--audit`: opens the log.
    fn open_audit(&self, policy: &Policy) -> anyhow::Result<()> {
        if let Some(path) = &self.audit {
            audit::open(path, policy.limits().max_audit_bytes)
                .with_context(|| format!("--audit {}", path.display()))?;
        }
        Ok(())
    }

    /// `--nats`: puts the module in the cluster's store and links the job
    /// to it.
    fn link_to_cluster(
        &self,
        module: &ClusterModule<'_>,
        policy: &Policy,
    ) -> Result<Option<JobLink>, (ExitCode, anyhow::Error)> {
        let Some(cluster) = self.cluster.cluster().map_err(|e| (ExitCode::Usage, e))? else {
            return Ok(None);
        };
        let read = |path: &Path| {
            std::fs::read(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map_err(|e| (ExitCode::NoInput, e))
        };
        let module = match module {
            ClusterModule::File(path) => read(path)?,
            ClusterModule::Python(job) => {
                let interpreter = read(job.interpreter())?;
                job.bundle(procbridge::python::digest(&interpreter))
                    .to_bytes()
            }
        };
        let link = JobLink::publish(&cluster, &module, policy.asked_of_others())
            .map_err(|e| (ExitCode::Unavailable, e.context("--nats")))?;
        Ok(Some(
            link.pools_on_cluster(self.cluster.pools_on_cluster())
                .queues_on_cluster(self.cluster.queues_on_cluster())
                .processes_on_cluster(self.cluster.processes_on_cluster()),
        ))
    }

    /// `procbridge worker`: serves the cluster's tasks under these grants
    /// and limits until stopped.
    pub(crate) fn serve_tasks(&self) -> Result<(), (ExitCode, anyhow::Error)> {
        let usage = |e: anyhow::Error| (ExitCode::Usage, e);
        let policy = self.policy().map_err(usage)?;
        self.open_audit(&policy).map_err(usage)?;
        let cache = self.cache(&policy).map_err(usage)?;
        let Some(cluster) = self.cluster.cluster().map_err(usage)? else {
            return Err(usage(anyhow!("worker: --nats URL is required")));
        };
        // A job's wall time is each of its calls' deadline.
        let runtime = Runtime::builder()
            .cache(cache)
            .epoch_interruption(true)
            .build()
            .map_err(|e| (ExitCode::Internal, e))?;
        let url = cluster.display_url();
        procbridge::cluster::worker::serve(runtime, &cluster, policy, || {
            eprintln!("procbridge worker: taking tasks from {url}");
        })
        .map_err(|e| (ExitCode::Unavailable, e))
    }

    /// The module cache, unless the job could tamper with it (one warning).
    ///
    /// # Errors
    /// When its cap from the environment is not a number.
    fn cache(&self, policy: &Policy) -> anyhow::Result<Option<ModuleCache>> {
        if self.no_cache {
            return Ok(None);
        }
        let max_bytes = self.cache.max_bytes()?;
        let dir = match &self.cache.cache_dir {
            Some(dir) => dir.clone(),
            None => match ModuleCache::default_dir() {
                Some(dir) => dir,
                None => return Ok(None),
            },
        };
        let cache = ModuleCache::new(dir).max_bytes(max_bytes);
        if let Some(why) = cache.exposed_to(policy) {
            eprintln!("procbridge: warning: {why}: compiling without the cache");
            return Ok(None);
        }
        Ok(Some(cache))
    }

    fn policy(&self) -> anyhow::Result<Policy> {
        self.check_limits()?;
        let mut policy = match &self.policy {
            Some(path) => policy_file::load(path)?,
            None => Policy::builder(),
        };
        for cmd in &self.allow_run {
            if cmd.is_empty() {
                return Err(anyhow!(
                    "--allow-run: an empty command name (a stray comma?)"
                ));
            }
            // The library names its builder call; the operator typed a flag.
            policy = policy
                .allow_run(cmd)
                .map_err(|e| anyhow!("--allow-run {cmd}: {}", e.root_cause()))?;
        }
        for spec in &self.env {
            policy = add_env(policy, spec)?;
        }
        for (specs, perms) in [
            (&self.dirs, DirPerms::ReadWrite),
            (&self.dirs_ro, DirPerms::ReadOnly),
        ] {
            for spec in specs {
                let (host, guest) = parse_dir(spec);
                policy = if self.allow_overlap {
                    policy.dir_overlapping(host, guest, perms)?
                } else {
                    policy.dir(host, guest, perms)?
                };
            }
        }
        if self.network {
            policy = policy.network(true);
        }
        if let Some(spec) = &self.run_as {
            let (uid, gid) = parse_ids(spec)?;
            policy = policy.run_as(uid, gid)?;
        }
        let limits = policy.limits_mut();
        if let Some(n) = self.max_processes {
            limits.max_processes = n;
        }
        if let Some(mib) = self.max_memory {
            limits.max_memory_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(mib) = self.max_total_memory {
            limits.max_total_memory_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(mib) = self.max_output {
            limits.max_output_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(mib) = self.max_queued {
            limits.max_queued_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(mib) = self.max_audit {
            limits.max_audit_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(secs) = self.wall_time {
            if !(secs.is_finite() && secs > 0.0) {
                return Err(anyhow!(
                    "--wall-time {secs}: give a positive number of seconds"
                ));
            }
            limits.wall_time = Some(Duration::from_secs_f64(secs));
        }
        if let Some(secs) = self.cpu_time {
            limits.cpu_seconds = Some(secs);
        }
        Ok(policy.build())
    }

    /// Refuses a limit of 0: it would refuse the job everything it needs to
    /// start (memory, a process) or to do anything (output, queues, the
    /// log, CPU time), so it is a mistake on the command line.
    fn check_limits(&self) -> anyhow::Result<()> {
        let widen = |n: Option<usize>| n.map(|n| n as u64);
        for (flag, value, unit) in [
            ("--max-processes", widen(self.max_processes), "process"),
            ("--max-memory", widen(self.max_memory), "MiB"),
            ("--max-total-memory", self.max_total_memory, "MiB"),
            ("--max-output", widen(self.max_output), "MiB"),
            ("--max-queued", widen(self.max_queued), "MiB"),
            ("--max-audit", self.max_audit, "MiB"),
            ("--cpu-time", self.cpu_time, "second"),
        ] {
            if value == Some(0) {
                return Err(anyhow!("{flag} 0: give at least 1 {unit}"));
            }
        }
        Ok(())
    }
}

pub(super) fn load_exit_code(err: &LoadError) -> ExitCode {
    match err {
        LoadError::Read { .. } => ExitCode::NoInput,
        LoadError::NotWasm { .. } | LoadError::Component { .. } => ExitCode::NotWasm,
        LoadError::UnknownImport { .. } | LoadError::Link { .. } => ExitCode::Link,
        LoadError::MissingStart { .. } => ExitCode::NoStart,
    }
}

fn classify_run_error(err: anyhow::Error) -> (ExitCode, anyhow::Error) {
    if let Some(load) = err.downcast_ref::<LoadError>() {
        return (load_exit_code(load), err);
    }
    match err.downcast_ref::<RunError>() {
        // The limit given is less than the module's own memory: the
        // command line's fault.
        Some(RunError::Instantiate(inner)) if inner.downcast_ref::<MemoryAtStart>().is_some() => {
            let start = inner.downcast_ref::<MemoryAtStart>().expect("checked");
            let flag = match start.of {
                MemoryScope::Instance => "--max-memory",
                MemoryScope::Tree => "--max-total-memory",
            };
            (
                ExitCode::Usage,
                anyhow!("{flag} {}: {start}", start.limit_mib),
            )
        }
        // A memory limit hit was recorded where the limit refused the
        // growth.
        Some(RunError::Trap(_)) => (ExitCode::Trap, err),
        Some(RunError::Timeout(limit)) => watchdog::wall_clock_reached(*limit),
        _ => (ExitCode::Internal, err),
    }
}

/// One `--env`: `NAME=VALUE` grants one variable, whatever its value holds
/// (commas included); without `=` it is a comma-separated list of names
/// whose host values are passed.
fn add_env(mut policy: PolicyBuilder, spec: &str) -> anyhow::Result<PolicyBuilder> {
    match spec.split_once('=') {
        Some(("", _)) => Err(anyhow!("--env {spec}: empty variable name")),
        Some((key, _)) if key.contains(',') => Err(anyhow!(
            "--env {spec}: NAME=VALUE grants one variable; give each NAME=VALUE its own --env"
        )),
        Some((key, value)) => policy.env(key, value),
        None => {
            for name in spec.split(',') {
                if name.is_empty() {
                    return Err(anyhow!("--env {spec}: empty variable name"));
                }
                policy = policy.pass_env(name)?;
            }
            Ok(policy)
        }
    }
}

fn parse_ids(spec: &str) -> anyhow::Result<(u32, u32)> {
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| anyhow!("--run-as {spec}: give numeric ids, UID or UID:GID"))
    };
    match spec.split_once(':') {
        Some((uid, gid)) => Ok((number(uid)?, number(gid)?)),
        None => Ok((number(spec)?, number(spec)?)),
    }
}

fn parse_dir(spec: &str) -> (&str, &str) {
    spec.split_once("::").unwrap_or((spec, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every exit code of procbridge's own: a variant added to [`ExitCode`]
    /// does not compile here until it is listed.
    fn every_exit_code() -> Vec<i32> {
        let next = |code| match code {
            ExitCode::Usage => Some(ExitCode::NotWasm),
            ExitCode::NotWasm => Some(ExitCode::NoInput),
            ExitCode::NoInput => Some(ExitCode::Link),
            ExitCode::Link => Some(ExitCode::NoStart),
            ExitCode::NoStart => Some(ExitCode::Unavailable),
            ExitCode::Unavailable => Some(ExitCode::Internal),
            ExitCode::Internal => Some(ExitCode::Trap),
            ExitCode::Trap => None,
        };
        let mut codes = vec![watchdog::WALL_CLOCK_EXIT, watchdog::CPU_LIMIT_EXIT];
        let mut code = Some(ExitCode::Usage);
        while let Some(c) = code {
            codes.push(c as i32);
            code = next(c);
        }
        codes
    }

    #[test]
    fn run_and_python_help_list_every_exit_code() {
        let mut cli = super::super::Cli::command();
        for name in ["run", "python"] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            for code in every_exit_code() {
                let listed = help
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} ")));
                assert!(
                    listed,
                    "{name} --help does not list exit code {code}:\n{help}"
                );
            }
        }
    }
}
