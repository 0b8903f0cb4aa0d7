//! Policy files, `procbridge policy check`, and the limits the CLI enforces.

use crate::support::*;
use std::time::{Duration, Instant};

#[test]
fn policy_check_explains_a_valid_policy() {
    let work = tempfile::tempdir().unwrap();
    let (_dir, path) = temp_file(
        "job.toml",
        format!(
            "[commands.sort]\n\n[commands.true]\nsubcommands = [\"status\"]\n\n\
             [[dirs]]\nhost = \"{}\"\nguest = \"/work\"\nmode = \"read-write\"\n\n\
             [limits]\nprocesses = 8\n",
            work.path().display()
        )
        .as_bytes(),
    );
    let out = run_cli(&["policy", "check", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("run sort ("), "{text}");
    assert!(text.contains("only as: status"), "{text}");
    assert!(text.contains("as /work, read-write"), "{text}");
    assert!(text.contains("8 live processes"), "{text}");
    assert!(text.contains("Everything else is denied."), "{text}");
    // The layers this machine provides (all of them, on the machines the
    // project is tested on).
    let layers: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("This machine confines commands with:"))
        .skip(1)
        .collect();
    for layer in [
        "user namespace",
        "PID namespace",
        "mount namespace",
        "network namespace",
        "pids cgroup",
        "seccomp",
        "Landlock",
    ] {
        assert!(
            layers
                .iter()
                .any(|l| l.starts_with("  yes") && l.contains(layer)),
            "{layer}: {text}"
        );
    }
}

#[test]
fn policy_check_rejects_an_invalid_policy_with_its_line() {
    let (_dir, path) = temp_file("bad.toml", b"[commands.sort]\n\n[limitz]\nprocesses = 1\n");
    let out = run_cli(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(err.contains("limitz"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn run_with_an_invalid_policy_exits_2() {
    let (_dir, path) = temp_file("bad.toml", b"[commands.no-such-command-xyz]\n");
    let out = run_cli(&[
        "run",
        "--policy",
        path.to_str().unwrap(),
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml:1:"), "{}", stderr(&out));
}

#[test]
fn policy_file_grants_environment() {
    let (_dir, path) = temp_file("env.toml", b"[env]\nset = { MODE = \"ci\" }\n");
    let out = run_cli(&[
        "run",
        "--policy",
        path.to_str().unwrap(),
        guest("hello").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("env MODE=ci\n"), "{}", stdout(&out));
}

const INFINITE_LOOP: &[u8] = br#"(module
    (memory (export "memory") 1)
    (func (export "_start") (loop $l (br $l))))"#;

#[test]
fn wall_clock_limit_stops_an_infinite_loop() {
    let (_dir, path) = temp_file("loop.wat", INFINITE_LOOP);
    let audit = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let out = run_cli(&[
        "run",
        "--wall-time",
        "0.5",
        "--audit",
        audit.path().to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(124));
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = stderr(&out);
    assert!(err.contains("wall-clock time of 0.5s reached"), "{err}");
    let log = std::fs::read_to_string(audit.path()).unwrap();
    assert!(log.contains("\"event\":\"limit\""), "{log}");
}

#[test]
fn cpu_limit_stops_an_infinite_loop() {
    let (_dir, path) = temp_file("loop.wat", INFINITE_LOOP);
    let started = Instant::now();
    let out = run_cli(&["run", "--cpu-time", "1", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(152), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr(&out).contains("CPU time limit reached"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn memory_limit_stops_a_memory_bomb() {
    let (_dir, path) = temp_file(
        "bomb.wat",
        br#"(module
            (memory (export "memory") 1)
            (func (export "_start")
              (loop $grow
                (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))))"#,
    );
    let out = run_cli(&["run", "--max-memory", "8", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134), "{}", stderr(&out));
    assert!(stderr(&out).contains("memory"), "{}", stderr(&out));
}

#[test]
fn invalid_limit_flags_exit_2() {
    for bad in ["0", "-1", "nan"] {
        let out = run_cli(&["run", "--wall-time", bad, guest("hello").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "--wall-time {bad}");
    }
    for bad in ["0", "nan", "inf", "-1"] {
        let flag = format!("--wall-time={bad}");
        let out = run_cli(&["run", &flag, guest("hello").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(
            stderr(&out).contains("give a positive number of seconds"),
            "{flag}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn process_limit_counts_spawned_commands() {
    let audit = tempfile::NamedTempFile::new().unwrap();
    let out = run_cli(&[
        "run",
        "--allow-run",
        "sleep",
        "--max-processes",
        "3",
        "--audit",
        audit.path().to_str().unwrap(),
        guest("subprocess_probe").to_str().unwrap(),
        "hold",
        "5",
    ]);
    let text = stdout(&out);
    assert!(text.contains("spawned 3\n"), "{text}");
    assert!(!text.contains("spawned 4"), "{text}");
    assert!(text.contains("error EAGAIN"), "{text}");
    assert!(
        stderr(&out).contains("procbridge: limit:"),
        "{}",
        stderr(&out)
    );
    let log = std::fs::read_to_string(audit.path()).unwrap();
    assert_eq!(log.matches("\"event\":\"spawn\"").count(), 3, "{log}");
    assert!(log.contains("\"event\":\"limit\""), "{log}");
    // Every held child was killed and reaped when the guest ended.
    assert_eq!(log.matches("\"event\":\"exit\"").count(), 3, "{log}");
}

#[test]
fn denials_are_audited_and_reported_in_one_line() {
    let audit = tempfile::NamedTempFile::new().unwrap();
    let out = run_cli(&[
        "run",
        "--audit",
        audit.path().to_str().unwrap(),
        guest("call").to_str().unwrap(),
    ]);
    let err = stderr(&out);
    let denial: Vec<&str> = err.lines().filter(|l| l.contains("denied")).collect();
    assert_eq!(denial.len(), 1, "{err}");
    assert!(denial[0].starts_with("procbridge: denied: run \""), "{err}");
    assert!(denial[0].contains("(add --allow-run "), "{err}");
    let log = std::fs::read_to_string(audit.path()).unwrap();
    let record = log
        .lines()
        .find(|l| l.contains("\"event\":\"denied\""))
        .unwrap();
    for key in ["\"time\":", "\"pid\":", "\"ppid\":", "not granted"] {
        assert!(record.contains(key), "{record}");
    }
}

#[test]
fn spawned_shell_cannot_write_outside_granted_dirs() {
    let work = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("escaped");
    let inside = work.path().join("inside");
    // Commands see the grant where the guest does.
    let script = format!("echo in > /work/inside; echo out > {}", target.display());
    let out = run_cli(&[
        "run",
        "--allow-run",
        "sh",
        "--dir",
        &format!("{}::/work", work.path().display()),
        guest("subprocess_probe").to_str().unwrap(),
        "run",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "in\n");
    assert!(
        !target.exists(),
        "a spawned shell wrote outside the granted dirs"
    );
    // The shell failed on the second redirection: that path is not in the
    // jail (and Landlock would refuse it anyway).
    let text = stdout(&out);
    let rc: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("returncode "))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(rc, 0, "{text}");
    let err = text.lines().find(|l| l.starts_with("stderr ")).unwrap();
    assert!(
        err.contains("Directory nonexistent") && err.contains("escaped"),
        "{text}"
    );
}

/// The root grows to 16 MiB, forks, and the child (holding its 16 MiB
/// copy) grows by 16 MiB more.
const FORK_AND_GROW: &[u8] = br#"(module
    (import "procbridge" "fork" (func $fork (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      (drop (memory.grow (i32.const 255)))
      (if (i32.eqz (call $fork))
        (then (drop (memory.grow (i32.const 256)))))))"#;

#[test]
fn tree_wide_memory_limit_stops_the_process_that_goes_over() {
    let (_dir, path) = temp_file("grow.wat", FORK_AND_GROW);
    let out = run_cli(&["run", "--max-total-memory", "40", path.to_str().unwrap()]);
    // The child trapped; the root, within the limit, ended well.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("memory limit of the process tree reached"),
        "{}",
        stderr(&out)
    );
    let out = run_cli(&["run", "--max-total-memory", "64", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("memory limit"), "{}", stderr(&out));
}

/// Asks for a queue of 2 MiB (refused under a 1 MiB limit: exit 11), then a
/// default queue, which must hold at most the limit: two puts of 600 KiB
/// fit in 8 MiB but not in 1 MiB (exit 0 when the second one is refused
/// with ENOBUFS).
const QUEUE_UNDER_A_BYTE_LIMIT: &[u8] = br#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "procbridge" "queue_new" (func $new (param i32 i32 i32) (result i32)))
    (import "procbridge" "queue_put" (func $put (param i32 i32 i32 i64) (result i32)))
    (memory (export "memory") 16)
    (func (export "_start") (local $q i32)
      (if (i32.ne (call $new (i32.const 0) (i32.const 2097152) (i32.const 0)) (i32.const -1))
        (then (call $exit (i32.const 11))))
      (local.set $q (call $new (i32.const 0) (i32.const 0) (i32.const 0)))
      (if (i32.le_s (local.get $q) (i32.const 0)) (then (call $exit (i32.const 12))))
      (if (i32.ne (call $put (local.get $q) (i32.const 0) (i32.const 614400) (i64.const 0)) (i32.const 0))
        (then (call $exit (i32.const 13))))
      (if (i32.ne (call $put (local.get $q) (i32.const 0) (i32.const 614400) (i64.const 0)) (i32.const -105))
        (then (call $exit (i32.const 14))))
      (call $exit (i32.const 0))))"#;

#[test]
fn queued_bytes_limit_bounds_every_queue() {
    let (_dir, path) = temp_file("queue.wat", QUEUE_UNDER_A_BYTE_LIMIT);
    let out = run_cli(&["run", "--max-queued", "1", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Without the limit the same guest gets its 2 MiB queue: exit 11.
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
}

#[test]
fn grants_that_cannot_be_resolved_exit_2_with_their_reason() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    for (args, reason) in [
        (
            vec!["--policy", "/nonexistent/job.toml"],
            "/nonexistent/job.toml: ",
        ),
        (
            vec!["--audit", "/nonexistent/dir/audit.log"],
            "--audit /nonexistent/dir/audit.log",
        ),
        (vec!["--dir", "/etc/passwd"], "is not a directory"),
        (vec!["--env", "PROCBRIDGE_UNSET_XYZ"], "not set in the host"),
        (vec!["--env", "=x"], "empty variable name"),
        (vec!["--cpu-time", "0"], "give at least 1 second"),
    ] {
        let mut cmd = vec!["run"];
        cmd.extend(args.iter().copied());
        cmd.push(hello);
        let out = run_cli(&cmd);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(reason), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
