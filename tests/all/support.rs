//! Shared helpers: building guests, running the CLI, running WAT snippets.

use procbridge::{GuestBuilder, ModuleCache, OutputCapture, Policy, Runtime, Stdio};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Builds all guests once per test binary and returns the path of `name`.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(root().join("guests/build"))
            .status()
            .expect("run guests/build");
        assert!(status.success(), "guests/build failed");
    });
    let path = root().join("target/guests").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A module cache shared by the tests (so they also exercise cache hits).
pub fn cache_dir() -> PathBuf {
    root().join("target/test-cache")
}

/// The tests' configuration directory (`XDG_CONFIG_HOME`), where their
/// cache key lives: never the user's own.
pub fn config_dir() -> PathBuf {
    root().join("target/test-config")
}

/// A module cache in `dir` with the tests' key.
pub fn test_cache(dir: impl Into<PathBuf>) -> ModuleCache {
    ModuleCache::new(dir).key_file(config_dir().join("procbridge/cache.key"))
}

/// One runtime per test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::with_cache(Some(test_cache(cache_dir()))).expect("runtime"))
}

/// The `procbridge` command, with the test cache and key.
pub fn procbridge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_procbridge"));
    cmd.env("PROCBRIDGE_CACHE_DIR", cache_dir());
    cmd.env("XDG_CONFIG_HOME", config_dir());
    cmd
}

/// Reads a spawned child's stderr to its end, then waits for it.
pub fn stderr_and_status(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    let mut err = String::new();
    if let Some(mut stream) = child.stderr.take() {
        std::io::Read::read_to_string(&mut stream, &mut err).expect("read stderr");
    }
    (child.wait().expect("wait"), err)
}

/// Runs `procbridge ARGS` and returns its output.
pub fn run_cli(args: &[&str]) -> Output {
    procbridge().args(args).output().expect("run procbridge")
}

/// What a guest run through the library printed, and its exit code.
#[derive(Debug)]
pub struct Captured {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a module through the library with captured output.
pub fn run_captured(module: &Path, args: &[&str], policy: Policy) -> anyhow::Result<Captured> {
    let rt = runtime();
    let program = rt.load_file(module)?;
    let out = OutputCapture::new(1 << 20);
    let err = OutputCapture::new(1 << 20);
    let mut guest = GuestBuilder::new();
    guest
        .arg(module.display().to_string())
        .args(args.iter().copied())
        .stdout(Stdio::Capture(out.clone()))
        .stderr(Stdio::Capture(err.clone()))
        .policy(policy);
    let code = rt.run(&program, guest.build()?)?;
    Ok(Captured {
        code,
        stdout: out.text(),
        stderr: err.text(),
    })
}

/// Runs a WAT module through the library and returns its exit code.
pub fn run_wat(wat: &str) -> anyhow::Result<i32> {
    let rt = runtime();
    let program = rt.load_bytes("test.wat", wat.as_bytes())?;
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Null).stderr(Stdio::Null);
    rt.run(&program, guest.build()?)
}

/// Writes `contents` to a fresh temporary file named `name`.
pub fn temp_file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the `queue_probe` guest's scenarios in one instance and returns its
/// output lines; it must end well.
pub fn queue_probe(scenarios: &[&str]) -> Vec<String> {
    let out = run_captured(&guest("queue_probe"), scenarios, Policy::default()).unwrap();
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out.stdout.lines().map(str::to_string).collect()
}

/// Host pids of `sleep` and `perl` processes whose command line contains
/// `marker` (the shell and procbridge that carry the same text in their
/// arguments are not counted).
pub fn pids_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid: i32 = match entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            Some(pid) => pid,
            None => continue,
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let program = cmdline.split(' ').next().unwrap_or("");
            let counted = program.ends_with("sleep") || program.ends_with("perl");
            if counted && cmdline.contains(marker) {
                // A zombie is dead already; only living processes count.
                let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
                let zombie = state
                    .rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'));
                if !zombie {
                    found.push(pid);
                }
            }
        }
    }
    found
}

/// Kills whatever still carries `marker` when dropped, so a failing test
/// leaves nothing running.
pub struct Marker(pub &'static str);

impl Marker {
    /// Waits until a process with the marker runs; panics after 10 s.
    pub fn wait_running(&self) {
        let started = Instant::now();
        while pids_with(self.0).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} never started",
                self.0
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pids still alive after up to 5 s of waiting for them to go.
    pub fn survivors(&self) -> Vec<i32> {
        let started = Instant::now();
        loop {
            let alive = pids_with(self.0);
            if alive.is_empty() || started.elapsed() > Duration::from_secs(5) {
                return alive;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        for pid in pids_with(self.0) {
            // SAFETY: signalling a pid found by its command line.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A WAT module whose `_start` exits with `code`.
pub fn exits_with(code: i32) -> String {
    format!(
        r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call $exit (i32.const {code}))))"#
    )
}
