//! `multiprocessing.Process` through the `procbridge` CLI: pids, exit codes,
//! join with a timeout, terminate, bad inputs, grants, and supervision.

use crate::fork::{descendants, field, probe, proc_state};
use crate::support::*;
use std::time::{Duration, Instant};

fn process_story(method: Option<&str>) {
    let mut cmd = procbridge();
    cmd.args(["run", guest("process").to_str().unwrap()]);
    cmd.args(method);
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let root = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], format!("Parent process {root}."));
    assert_eq!(lines[1], "Child process will start.");
    let pid: u32 = lines[2]
        .strip_prefix("Run child process test (")
        .and_then(|r| r.strip_suffix(")..."))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert_ne!(pid, root);
    assert_eq!(lines[3], "Child process end.");
}

#[test]
fn process_story_prints_the_seed_lines() {
    process_story(None);
}

#[test]
fn process_story_with_spawn() {
    process_story(Some("spawn"));
}

#[test]
fn unknown_target_fails_before_forking_even_in_the_library() {
    // Refused before any fork, so it is safe to run in this (multi-threaded)
    // test process.
    let out = run_captured(
        &guest("process_probe"),
        &["unknown_target"],
        procbridge::Policy::default(),
    )
    .unwrap();
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(
        out.stderr,
        "FileNotFoundError: [Errno 2] the module exports no task function `no_such_task`\n"
    );
}

#[test]
fn children_have_their_own_pid_and_the_parent_as_ppid() {
    let out = probe(&["pids"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let parent = field(&text, "parent pid");
    for method in ["fork", "spawn"] {
        let pid = field(&text, &format!("started {method}"));
        assert_ne!(pid, parent);
        let line = format!("{method} pid {pid} ppid {parent}");
        assert!(text.contains(&line), "{line}: {text}");
        assert!(
            text.contains(&format!("exitcode {method} Some(0)")),
            "{text}"
        );
    }
}

fn exitcodes(method: &str) {
    let out = probe(&["exitcodes", method]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (label, code) in [
        ("return", 0),
        ("exit7", 7),
        ("exit0", 0),
        ("trap", 1),
        ("fail", 1),
        ("kill", -9),
        ("terminate", -15),
    ] {
        let line = format!("exitcode {label} Some({code})\n");
        assert!(text.contains(&line), "{method}: {line}{text}");
    }
    let err = stderr(&out);
    assert!(err.contains("guest trapped"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.contains("failed on purpose: x"), "{err}");
    // The child's output goes where the parent's goes.
    assert!(text.contains("about to trap\n"), "{text}");
}

#[test]
fn exitcode_for_each_way_of_ending_fork() {
    exitcodes("fork");
}

#[test]
fn exitcode_for_each_way_of_ending_spawn() {
    exitcodes("spawn");
}

#[test]
fn join_with_timeout() {
    let start = Instant::now();
    let out = probe(&["join_timeout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("joined "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("joined false after "), "{line}");
    assert!(line.ends_with(" ms alive true exitcode None"), "{line}");
    let ms = field(&text, "joined false after");
    assert!((190..1500).contains(&ms), "{line}");
    assert!(
        text.contains("short joined true exitcode Some(0)"),
        "{text}"
    );
    // The 3 s sleeper was terminated, not waited for.
    assert!(start.elapsed() < Duration::from_millis(2800));
}

#[test]
fn terminate_a_blocked_child() {
    for method in ["fork", "spawn"] {
        let start = Instant::now();
        let out = probe(&["terminate_blocked", method]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("alive true\n"), "{text}");
        assert!(
            text.contains("exitcode Some(-15) alive false"),
            "{method}: {text}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn bad_inputs_get_clear_errors() {
    let out = probe(&["bad"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for name in [
        "join before start",
        "terminate before start",
        "unknown export",
        "wrong signature",
        "memory is not a task",
        "bad method",
        "unknown flags",
        "drop dirs with fork",
        "target out of bounds",
        "args out of bounds",
        "task_return outside a task",
        "forged handle",
        "zero handle",
        "negative timeout",
        "close while running",
        "exitcode pointer out of bounds",
        "closed handle",
        "start twice",
    ] {
        assert!(text.contains(&format!("ok {name} ")), "{name}: {text}");
    }
    assert!(
        text.contains("ok unknown export (the module exports no task function `no_such_task`)"),
        "{text}"
    );
    assert!(
        text.contains("daemon child refused: daemonic processes are not allowed to have children"),
        "{text}"
    );
    assert!(text.contains("daemon child exitcode Some(0)"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn children_keep_or_drop_grants_never_add() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{}::/granted", dir.path().display());
    let out = run_cli(&[
        "run",
        "--env",
        "GRANTED=yes",
        "--dir",
        &spec,
        guest("process_probe").to_str().unwrap(),
        "grants",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "fork:\nenv GRANTED=yes\ndir readable\n\
         spawn:\nenv GRANTED=yes\ndir readable\n\
         spawn-dropped:\nenv GRANTED=\ndir not readable\n"
    );
}

/// Starts the probe's sleepers and waits (up to 20 s) until all 6 have
/// started: two Process trees (fork and spawn, each with a grandchild), a
/// daemon and an os.fork child. The procbridge process, and its pid.
fn start_sleepers() -> (std::process::Child, u32) {
    let child = procbridge()
        .args(["run", guest("process_probe").to_str().unwrap(), "sleepers"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while descendants(root).len() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, root)
}

#[test]
fn killing_the_root_leaves_no_descendant_running() {
    let (mut child, root) = start_sleepers();
    let tree = descendants(root);
    assert_eq!(tree.len(), 6, "{tree:?}");
    // SAFETY: our own child.
    unsafe { libc::kill(root as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let printed: Vec<u32> = out
        .lines()
        .filter_map(|l| l.strip_prefix("sleeper "))
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(printed.len(), 6, "{out}");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        // Gone, or dead and handed to init (which reaps it).
        let running: Vec<u32> = tree
            .iter()
            .copied()
            .filter(|&pid| matches!(proc_state(pid), Some((s, ppid)) if s != 'Z' || ppid != 1))
            .collect();
        if running.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {running:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in printed {
        assert!(tree.contains(&pid), "{pid} not in {tree:?}");
    }
}

/// The threads of process `pid` (`None`: it is gone).
fn threads_of(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn children_that_sleep_run_on_one_thread() {
    // Each sleeper waits in WASI's `poll_oneoff`, on its own process's
    // runtime, driven by the guest's thread: no runtime thread per child.
    let (mut child, root) = start_sleepers();
    // Every one has started sleeping by now.
    std::thread::sleep(Duration::from_millis(300));
    let threads: Vec<(u32, Option<usize>)> = descendants(root)
        .into_iter()
        .map(|pid| (pid, threads_of(pid)))
        .collect();
    // SAFETY: our own child.
    unsafe { libc::kill(root as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(threads.len(), 6, "{threads:?}");
    assert!(
        threads.iter().all(|&(_, n)| n == Some(1)),
        "threads of each sleeper: {threads:?}"
    );
}

#[test]
fn memory_benchmark_guest_holds_still_with_its_children() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = procbridge()
        .args(["run", guest("memory_bench").to_str().unwrap(), "--quick"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for expected in ["PSS base 0", "PSS fork 8", "PSS spawn 8"] {
        let line = lines.next().expect("a pause").unwrap();
        assert_eq!(line, expected);
        // While it waits, its children wait too.
        let children = descendants(root).len();
        seen.push(children);
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(seen[0], 0, "{seen:?}");
    assert!(seen[1] >= 8 && seen[2] >= 8, "{seen:?}");
}

#[test]
fn benchmark_guest_prints_bench_lines() {
    let out = run_cli(&["run", guest("process_bench").to_str().unwrap(), "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for key in [
        "start_join_fork_us",
        "start_join_spawn_us",
        "os_fork_wait_us",
    ] {
        let value: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("BENCH {key} ")))
            .unwrap_or_else(|| panic!("{key}: {text}"))
            .parse()
            .unwrap();
        assert!(value > 0.0 && value < 1e6, "{key} {value}");
    }
}

#[test]
fn at_exit_daemons_are_terminated_and_others_joined() {
    let start = Instant::now();
    let out = probe(&["exit_with_children"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.ends_with("parent done\nnon-daemon done\n"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let daemon = field(&text, "daemon");
    assert!(
        proc_state(daemon).is_none(),
        "daemon {daemon} is still there"
    );
}
