//! Nothing is left behind: no zombie, no process, no descriptor, whatever
//! way the guest leaves.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio as ProcessStdio;
use std::time::Duration;

/// Descriptors open in process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Descriptors open in process `pid` once the count holds still for 100 ms
/// (at most 5 s): a child's descriptors the host is still letting go of,
/// on a loaded machine, are not open for good.
fn settled_fd_count(pid: u32) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut count = fd_count(pid);
    let mut same = 0;
    while same < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = fd_count(pid);
        same = if now == count { same + 1 } else { 0 };
        count = now;
    }
    count
}

/// Children of `pid`, as (pid, state), but for the job's jail (its monitor
/// lives as long as the job).
fn children(pid: u32) -> Vec<(i32, char)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let child: i32 = match entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            Some(p) => p,
            None => continue,
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
            if ppid(&stat) == Some(pid as i32) && !stat.contains("(procbridge-jail)") {
                found.push((child, state(&stat).unwrap_or('?')));
            }
        }
    }
    found
}

#[test]
fn a_thousand_spawns_leave_no_zombie_and_no_descriptor() {
    let mut args = vec!["run".to_string()];
    args.extend(allow_all());
    args.push(guest("subprocess_probe").display().to_string());
    args.extend(["spawn_many", "1000", "pause"].map(String::from));
    let mut host = procbridge()
        .args(&args)
        .stdin(ProcessStdio::piped())
        .stdout(ProcessStdio::piped())
        .spawn()
        .unwrap();
    let pid = host.id();
    let mut stdin = host.stdin.take().unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();

    assert_eq!(next(), "ready");
    let fds_before = settled_fd_count(pid);
    assert_eq!(children(pid), []);
    writeln!(stdin).unwrap();

    assert_eq!(next(), "spawned 1000 failures 0");
    assert_eq!(next(), "ready");
    let fds_after = settled_fd_count(pid);
    let left = children(pid);
    writeln!(stdin).unwrap();
    let status = host.wait().unwrap();

    assert_eq!(left, [], "children left (zombies have state Z)");
    assert_eq!(fds_before, fds_after, "descriptors leaked");
    assert!(status.success());
}

/// Runs `leave_running HOW` and checks that none of the three processes it
/// started (child, child with a grandchild, grandchild) survives. `marker`
/// is the sleepers' unique duration.
fn leave_running(how: &str, marker: &'static str) {
    let sleepers = Marker(marker);
    let p = probe_with(policy(), &["leave_running", how, marker]);
    let pids = p.pids();
    assert_eq!(pids.len(), 3, "{}\n{}", p.stdout, p.stderr);
    if how == "trap" {
        assert!(p.result.is_err(), "the guest trapped");
    } else {
        assert!(matches!(p.result, Ok(0)), "{how}: {:?}", p.result);
    }
    if how == "drop" {
        assert!(p.stdout.contains("dropped\n"), "{}", p.stdout);
    }
    // The direct children were reaped: not even a zombie is left.
    for pid in &pids[..2] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{how}: child {pid} left behind"
        );
    }
    // The grandchild (whose pid the shell saw in the job's namespace) was
    // killed with its process group.
    assert_eq!(
        sleepers.survivors(),
        Vec::<i32>::new(),
        "{how}: a sleeper survived"
    );
}

#[test]
fn a_guest_exiting_without_waiting_leaves_nothing() {
    leave_running("exit", "30.101");
}

#[test]
fn a_guest_trapping_leaves_nothing() {
    leave_running("trap", "30.102");
}

#[test]
fn dropping_a_running_popen_leaves_nothing() {
    leave_running("drop", "30.103");
}
