//! `subprocess`: guests run granted commands as real OS processes.
//!
//! Most tests run the `subprocess_probe` guest (one scenario per test)
//! through the library; the seed stories, grants given on the command line
//! and the leak count run through the `procbridge` binary.

mod behaviour;
mod confinement;
mod leaks;
mod stories;

use crate::support::*;
use procbridge::{GuestBuilder, OutputCapture, Policy, Stdio};

/// The commands the probe uses.
const COMMANDS: &[&str] = &[
    "true", "false", "echo", "cat", "sleep", "sh", "seq", "tr", "wc", "env", "pwd", "ls",
];

fn policy() -> Policy {
    let mut builder = Policy::builder();
    for cmd in COMMANDS {
        builder = builder.allow_run(cmd).unwrap();
    }
    builder.build()
}

/// `--allow-run` for every command of [`COMMANDS`].
fn allow_all() -> Vec<String> {
    COMMANDS
        .iter()
        .flat_map(|c| ["--allow-run".to_string(), c.to_string()])
        .collect()
}

/// What a library run printed, whether or not the guest ended well.
struct Probe {
    result: anyhow::Result<i32>,
    stdout: String,
    stderr: String,
}

impl Probe {
    fn line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix).map(str::trim))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}\n{}", self.stdout, self.stderr))
    }

    fn pids(&self) -> Vec<i32> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("pid "))
            .map(|p| p.trim().parse().unwrap())
            .collect()
    }
}

/// Runs `subprocess_probe ARGS` through the library with `policy`.
fn probe_with(policy: Policy, args: &[&str]) -> Probe {
    let rt = runtime();
    let module = guest("subprocess_probe");
    let program = rt.load_file(&module).unwrap();
    let out = OutputCapture::new(1 << 20);
    let err = OutputCapture::new(1 << 20);
    let mut builder = GuestBuilder::new();
    builder
        .arg("subprocess_probe")
        .args(args.iter().copied())
        .stdout(Stdio::Capture(out.clone()))
        .stderr(Stdio::Capture(err.clone()))
        .policy(policy);
    let result = rt.run(&program, builder.build().unwrap());
    Probe {
        result,
        stdout: out.text(),
        stderr: err.text(),
    }
}

/// Runs `subprocess_probe ARGS` with every probe command granted; expects
/// exit code `code`.
fn probe(args: &[&str], code: i32) -> Probe {
    let p = probe_with(policy(), args);
    match &p.result {
        Ok(c) => assert_eq!(*c, code, "{args:?}:\n{}\n{}", p.stdout, p.stderr),
        Err(e) => panic!("{args:?}: {e:?}\n{}\n{}", p.stdout, p.stderr),
    }
    p
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(state(&stat), Some('Z') | Some('X')),
        Err(_) => false,
    }
}

/// The state letter of a `/proc/PID/stat` line.
fn state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// The parent pid of a `/proc/PID/stat` line.
fn ppid(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}
