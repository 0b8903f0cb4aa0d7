//! Guests that end in the middle of things: a trap while holding
//! subprocess and process handles, rounds of children that exit, trap or
//! are killed mid-call. Run through the CLI; the test looks at the CLI
//! process from outside: its open descriptors, its children, zombies.

use super::os::{with_commands, POPEN_CAT, POPEN_SLEEP};
use super::{Script, Via};
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Children of `pid` (from /proc), with their state letter.
fn children(pid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.to_string()) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // The job's jail (its monitor) lives as long as the job.
        let jail = stat.contains("(procbridge-jail)");
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) && !jail {
            out.push((child, fields[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

fn open_fds(pid: u32) -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    fds.sort();
    fds
}

/// Whether `pid` is gone (or only a zombie of someone else), waiting up to
/// two seconds for init to reap an orphan.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        match stat {
            Err(_) => return true,
            Ok(s)
                if s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
                    == Some(true) =>
            {
                return true
            }
            Ok(_) if Instant::now() > deadline => return false,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Task exports used below: `hang` starts `sleep 1` and waits on it;
/// `holds` starts `cat` and `sleep 1`, prints their pids, then traps.
const TASKS: &str = r#"
(func (export "hang") (param i32) (result i32) (local $h i32)
  (local.set $h (call $popen (i32.const 0x220) (i32.const 14) (i32.const 0) (i32.const -1)
     (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2)))
  (call $print (call $popen_pid (local.get $h)))
  (drop (call $popen_wait (local.get $h) (i64.const -1) (i32.const 0x900)))
  (i32.const 0))
(func (export "holds") (param i32) (result i32)
  (call $print (call $popen_pid (call $popen (i32.const 0x200) (i32.const 7) (i32.const 0) (i32.const -1)
     (i32.const 0) (i32.const 0) (i32.const -1) (i32.const -1) (i32.const -2))))
  (call $print (call $popen_pid (call $popen (i32.const 0x220) (i32.const 14) (i32.const 0) (i32.const -1)
     (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2))))
  unreachable)
"#;

fn tasks(via: Via) -> Script {
    with_commands(Script::new(via))
        .data(0x100, b"hang")
        .data(0x110, b"holds")
        .func(TASKS)
}

/// The pids a run printed, one per line.
fn pids(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A guest that traps while holding a `cat` with pipes, a `sleep`, a daemon
/// process blocked in a host call, and after a task that trapped holding
/// its own commands: when the CLI returns, every one of them is gone.
#[test]
fn a_trap_while_holding_handles_leaves_no_process() {
    let script = tasks(Via::Cli)
        // A task that traps holding a cat and a sleep.
        .keep(
            "$d",
            "(call $process_start (i32.const 0x110) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))",
        )
        .expect("(call $process_join (global.get $d) (i64.const -1))", 0)
        .keep("$a", POPEN_CAT)
        .keep("$b", POPEN_SLEEP)
        .raw("(call $print (call $popen_pid (global.get $a)))")
        .raw("(call $print (call $popen_pid (global.get $b)))")
        // A daemon blocked in popen_wait on its own sleep.
        .keep(
            "$c",
            "(call $process_start (i32.const 0x100) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 1))",
        )
        .raw("(call $print (call $process_pid (global.get $c)))")
        .raw("unreachable");
    let started = Instant::now();
    let (mut cmd, _dir) = script.cli();
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "the CLI hung");
    // 134: the CLI's exit code for a trap.
    assert_eq!(
        out.status.code(),
        Some(134),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = pids(&String::from_utf8_lossy(&out.stdout));
    // cat and sleep of the task, cat and sleep, the daemon, maybe its sleep.
    assert!(printed.len() >= 5, "{printed:?}");
    for pid in printed {
        assert!(gone(pid), "process {pid} outlived the guest that trapped");
    }
}

/// Rounds of hostile endings between two checkpoints: the CLI process has
/// the same descriptors and no child or zombie afterwards.
#[test]
fn endings_leave_no_fd_and_no_zombie() {
    let mut round = tasks(Via::Cli);
    for _ in 0..5 {
        round = round
            // A cat dropped while running, pipes open.
            .keep("$a", POPEN_CAT)
            .expect("(call $popen_close (global.get $a))", 0)
            // A fork child that exits while its cat runs.
            .keep("$a", POPEN_CAT)
            .raw(&format!(
                "(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then (drop {POPEN_CAT}) (call $proc_exit (i32.const 4))))"
            ))
            .raw("(global.set $b (local.get $r))")
            .expect_expr(
                "(call $waitpid (global.get $b) (i32.const 0) (i32.const 0x900))",
                "(global.get $b)",
            )
            // A fork child that traps, waited for with -1.
            .raw("(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then unreachable))")
            .raw("(global.set $b (local.get $r))")
            .expect_expr(
                "(call $waitpid (i32.const -1) (i32.const 0) (i32.const 0x900))",
                "(global.get $b)",
            )
            .expect("(call $popen_close (global.get $a))", 0)
            // A process killed mid-call, and one that traps holding commands.
            .keep(
                "$c",
                "(call $process_start (i32.const 0x100) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))",
            )
            .expect("(call $process_kill (global.get $c))", 0)
            .expect("(call $process_join (global.get $c) (i64.const -1))", 0)
            .expect("(call $process_close (global.get $c))", 0)
            .keep(
                "$c",
                "(call $process_start (i32.const 0x110) (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 0))",
            )
            .expect("(call $process_join (global.get $c) (i64.const -1))", 0)
            .expect("(call $process_close (global.get $c))", 0);
    }
    let script = round.raw("(call $checkpoint)");
    // One checkpoint before the rounds, one after.
    let wat = script.wat().replacen(
        "(local $r i32)\n",
        "(local $r i32)\n(call $checkpoint)\n",
        1,
    );
    let (mut cmd, _dir) = script.cli_for(&wat);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut samples = Vec::new();
    for _ in 0..2 {
        loop {
            let line = lines.next().expect("a checkpoint").unwrap();
            if line == "ready" {
                break;
            }
        }
        samples.push((open_fds(pid), children(pid)));
        stdin.write_all(b"\n").unwrap();
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let (fds_before, children_before) = &samples[0];
    let after = &samples[1];
    assert_eq!(children_before, &Vec::new());
    assert_eq!(
        &after.0, fds_before,
        "descriptors changed across the rounds"
    );
    assert_eq!(after.1, Vec::new(), "children or zombies left");
}

/// A module whose start section spawns a fresh instance of itself (which
/// runs the start section again): a fork bomb through `process_start`. It
/// stops at the tree-wide limit with `EAGAIN`, every level joins its child,
/// and nothing is left.
#[test]
fn a_start_section_spawn_bomb_stops_at_the_limit() {
    let script = Script::new(Via::Cli)
        .cli_arg("--max-processes")
        .cli_arg("4")
        .data(0x100, b"noop")
        .func(
            r#"(func $init
                 (call $print (call $process_start (i32.const 0x100) (i32.const 4)
                   (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 0))))
               (start $init)
               (func (export "noop") (param i32) (result i32) (i32.const 0))"#,
        );
    let started = Instant::now();
    let (mut cmd, _dir) = script.cli();
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20), "the bomb hung");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Four levels got a handle, the fifth EAGAIN.
    let printed: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(printed.iter().filter(|&&r| r > 0).count(), 4, "{printed:?}");
    assert_eq!(
        printed.iter().filter(|&&r| r == -11).count(),
        1,
        "{printed:?}"
    );
}
