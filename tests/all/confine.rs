//! Confinement of spawned commands: each test tries to get out and asserts
//! it cannot (or that what is granted still works).

use procbridge::confine::exec::files_to_execute;
use procbridge::confine::{CommandLimits, ConfineSpec, Confinement};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn sh() -> PathBuf {
    PathBuf::from("/bin/sh")
}

/// Runs `sh -c script` (or `bash`, when it is the first executable)
/// confined by `spec`.
fn confined(spec: &ConfineSpec, script: &str) -> Output {
    let confinement = Arc::new(Confinement::prepare(spec).expect("prepare"));
    let mut cmd = Command::new(&spec.executables[0]);
    cmd.arg("-c").arg(script).env_clear();
    let c = confinement.clone();
    // SAFETY: `apply` only makes system calls.
    unsafe {
        cmd.pre_exec(move || c.apply());
    }
    cmd.output().expect("spawn confined command")
}

fn spec_with_dirs(read: Vec<PathBuf>, write: Vec<PathBuf>) -> ConfineSpec {
    let open = |dirs: Vec<PathBuf>| -> Vec<Arc<cap_std::fs::Dir>> {
        dirs.iter()
            .map(|d| {
                Arc::new(
                    cap_std::fs::Dir::open_ambient_dir(d, cap_std::ambient_authority()).unwrap(),
                )
            })
            .collect()
    };
    // `sh` runs the script; `cat` is the one program the scripts start.
    let mut executables = files_to_execute(&sh()).unwrap();
    executables.extend(files_to_execute(Path::new("/bin/cat")).unwrap());
    ConfineSpec {
        executables,
        read_dirs: open(read),
        write_dirs: open(write),
        ..ConfineSpec::default()
    }
}

#[test]
fn writes_only_inside_granted_read_write_dirs() {
    let granted = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let spec = spec_with_dirs(vec![], vec![granted.path().to_path_buf()]);
    let inside = granted.path().join("ok.txt");
    let out = confined(&spec, &format!("echo hi > {}", inside.display()));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "hi\n");

    let escape = outside.path().join("escape.txt");
    let out = confined(&spec, &format!("echo hi > {}", escape.display()));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    assert!(!escape.exists(), "wrote outside the granted directory");
    // `..` out of the granted directory is the same outside directory.
    let dotdot = granted.path().join("..").join("dotdot-escape.txt");
    let out = confined(&spec, &format!("echo hi > {}", dotdot.display()));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    assert!(!dotdot.exists());
}

#[test]
fn symlink_out_of_a_granted_dir_is_refused() {
    let granted = tempfile::tempdir().unwrap();
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let link = granted.path().join("link");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let spec = spec_with_dirs(vec![granted.path().to_path_buf()], vec![]);
    let out = confined(&spec, &format!("cat {}", link.display()));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("top secret"));
}

#[test]
fn read_only_dirs_cannot_be_written() {
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("data.txt"), "data").unwrap();
    let spec = spec_with_dirs(vec![granted.path().to_path_buf()], vec![]);
    let out = confined(&spec, &format!("cat {}/data.txt", granted.path().display()));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "data");
    let out = confined(
        &spec,
        &format!("echo x > {}/data.txt", granted.path().display()),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(granted.path().join("data.txt")).unwrap(),
        "data"
    );
}

#[test]
fn binaries_in_granted_dirs_cannot_be_executed() {
    let granted = tempfile::tempdir().unwrap();
    let copy = granted.path().join("mytrue");
    std::fs::copy("/bin/true", &copy).unwrap();
    let spec = spec_with_dirs(vec![], vec![granted.path().to_path_buf()]);
    let out = confined(&spec, &copy.display().to_string());
    assert!(
        !out.status.success(),
        "executed a binary from a data directory"
    );
}

#[test]
fn no_privileges_and_no_capabilities() {
    // /proc is not granted by default; grant it read-only to look.
    let spec = spec_with_dirs(vec![PathBuf::from("/proc")], vec![]);
    let out = confined(&spec, "cat /proc/self/status");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            status.contains(&format!("{field}:\t0000000000000000")),
            "{field} not empty:\n{status}"
        );
    }
}

#[test]
fn rlimits_are_applied() {
    let mut spec = spec_with_dirs(vec![], vec![]);
    spec.limits = CommandLimits {
        open_files: Some(37),
        cpu_seconds: Some(1),
        ..CommandLimits::default()
    };
    let out = confined(&spec, "ulimit -n; ulimit -t; ulimit -c");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "37\n1\n0\n");
    // A busy loop is stopped by the CPU limit.
    let started = std::time::Instant::now();
    let out = confined(&spec, "while :; do :; done");
    assert!(!out.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn tcp_needs_the_network_grant() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    let mut spec = spec_with_dirs(vec![], vec![]);
    spec.executables = files_to_execute(Path::new("/bin/bash")).unwrap();
    let out = confined(&spec, &script);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("connected"),
        "connected without the network grant"
    );
    spec.network = true;
    let out = confined(&spec, &script);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("connected"),
        "{out:?}"
    );
}

#[test]
fn proc_is_not_readable_by_default() {
    let spec = spec_with_dirs(vec![], vec![]);
    let out = confined(&spec, &format!("cat /proc/{}/environ", std::process::id()));
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn cannot_signal_the_host() {
    let spec = spec_with_dirs(vec![], vec![]);
    let out = confined(&spec, &format!("kill -0 {}", std::process::id()));
    assert!(
        !out.status.success(),
        "a confined command could signal the host"
    );
}
