//! One test per way out of the sandbox: each asserts the denial and that
//! the host keeps working. (Landlock escapes of spawned commands are in
//! `confine.rs` and `policy.rs`; fork bombs in `process.rs`.)

use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

/// Starts `procbridge ARGS` with piped stdin and stdout: the guest's input
/// and its output, line by line.
fn start_interactive(
    cmd: &mut std::process::Command,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, stdin, lines)
}

fn fs_probe(grant: &str, args: &[&str]) -> String {
    let mut cmd = vec!["run", "--dir", grant, "--dir-ro", "/etc::/etc-ro"];
    let probe = guest("fs_probe");
    cmd.push(probe.to_str().unwrap());
    cmd.extend_from_slice(args);
    let out = run_cli(&cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn guest_cannot_leave_a_granted_dir_with_dotdot_or_symlinks() {
    let work = tempfile::tempdir().unwrap();
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("secret.txt"), "top secret").unwrap();
    std::fs::write(work.path().join("mine.txt"), "mine").unwrap();
    std::os::unix::fs::symlink(secret.path().join("secret.txt"), work.path().join("link")).unwrap();
    let grant = format!("{}::/work", work.path().display());

    assert_eq!(fs_probe(&grant, &["read", "/work/mine.txt"]), "ok mine\n");
    let out = fs_probe(&grant, &["read", "/work/link"]);
    assert!(out.starts_with("error"), "followed a symlink out: {out}");
    let up = format!(
        "/work/../{}/secret.txt",
        secret.path().file_name().unwrap().to_str().unwrap()
    );
    let out = fs_probe(&grant, &["read", &up]);
    assert!(out.starts_with("error"), "`..` got out: {out}");
    let out = fs_probe(&grant, &["read", "/etc/passwd"]);
    assert!(out.starts_with("error"), "read an ungranted path: {out}");
    let out = fs_probe(&grant, &["write", "/work/../escape.txt", "x"]);
    assert!(out.starts_with("error"), "{out}");
    assert!(!work.path().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn read_only_grant_cannot_be_written_by_the_guest() {
    let work = tempfile::tempdir().unwrap();
    let grant = format!("{}::/work", work.path().display());
    assert!(fs_probe(&grant, &["read", "/etc-ro/passwd"]).starts_with("ok"));
    let out = fs_probe(&grant, &["write", "/etc-ro/procbridge-test", "x"]);
    assert!(
        out.starts_with("error"),
        "wrote into a read-only grant: {out}"
    );
    assert!(!std::path::Path::new("/etc/procbridge-test").exists());
}

#[test]
fn loader_variables_are_never_granted() {
    let out = run_cli(&[
        "run",
        "--env",
        "LD_PRELOAD=/tmp/evil.so",
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("loader variables are never granted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn path_hijack_after_start_up_changes_nothing() {
    // A directory early in PATH that gains a fake `true` after start-up:
    // the grant was resolved once, so the real one still runs.
    let fake = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap()
    );
    let (mut child, mut stdin, mut lines) = start_interactive(
        procbridge()
            .env("PATH", &path)
            .args(["run", "--allow-run", "true"])
            .arg(guest("subprocess_probe"))
            .args(["run_twice", "true"]),
    );
    assert_eq!(lines.next().unwrap().unwrap(), "first 0");
    let evil = fake.path().join("true");
    std::fs::write(&evil, "#!/bin/sh\nexit 42\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    writeln!(stdin).unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "second 0");
    assert!(child.wait().unwrap().success());
}

#[test]
fn pinned_binary_replaced_after_start_up_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("tool");
    std::fs::copy("/bin/true", &tool).unwrap();
    let digest = procbridge::policy::to_hex(&procbridge::policy::sha256_file(&tool).unwrap());
    let policy = dir.path().join("job.toml");
    std::fs::write(
        &policy,
        format!("[commands.\"{}\"]\nsha256 = \"{digest}\"\n", tool.display()),
    )
    .unwrap();
    let (child, mut stdin, mut lines) = start_interactive(
        procbridge()
            .args(["run", "--policy", policy.to_str().unwrap()])
            .arg(guest("subprocess_probe"))
            .args(["run_twice", tool.to_str().unwrap()])
            .stderr(Stdio::piped()),
    );
    assert_eq!(lines.next().unwrap().unwrap(), "first 0");
    std::fs::remove_file(&tool).unwrap();
    std::fs::copy("/bin/false", &tool).unwrap();
    writeln!(stdin).unwrap();
    let second = lines.next().unwrap().unwrap();
    assert!(second.starts_with("error EPERM"), "{second}");
    assert!(second.contains("changed since start-up"), "{second}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
}

#[test]
fn endless_output_hits_the_capture_limit_and_the_host_survives() {
    let started = std::time::Instant::now();
    let out = run_cli(&[
        "run",
        "--allow-run",
        "yes",
        "--max-output",
        "4",
        guest("subprocess_probe").to_str().unwrap(),
        "run",
        "yes",
    ]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let text = stdout(&out);
    assert!(text.starts_with("error ENOBUFS"), "{text}");
}
