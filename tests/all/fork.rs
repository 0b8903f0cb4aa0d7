//! `os.fork` and `waitpid` through the `procbridge` CLI (never in the test
//! process itself: it is multi-threaded).

use crate::support::*;
use std::collections::HashMap;

/// Runs the process probe guest with `args` through the CLI.
pub fn probe(args: &[&str]) -> std::process::Output {
    let mut all = vec!["run", guest_str("process_probe")];
    all.extend_from_slice(args);
    run_cli(&all)
}

fn guest_str(name: &str) -> &'static str {
    Box::leak(guest(name).to_str().unwrap().to_string().into_boxed_str())
}

#[test]
fn fork_story_prints_the_seed_lines_with_real_pids() {
    let child = procbridge()
        .args(["run", guest_str("fork")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("Process ({root}) start..."));
    let parent_line = lines
        .iter()
        .find(|l| l.starts_with("I ("))
        .unwrap_or_else(|| panic!("{text}"));
    let child_pid: u32 = parent_line
        .strip_prefix(&format!("I ({root}) just created a child process ("))
        .and_then(|r| r.strip_suffix(")."))
        .unwrap_or_else(|| panic!("{parent_line}"))
        .parse()
        .unwrap();
    assert_ne!(child_pid, root);
    assert!(
        lines.contains(
            &format!("I am child process ({child_pid}) and my parent is {root}.").as_str()
        ),
        "{text}"
    );
}

#[test]
fn fork_child_has_its_own_pid_and_the_parent_as_ppid() {
    let out = probe(&["pids"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let parent = field(&text, "parent pid");
    let started = field(&text, "started forked");
    let line = format!("forked pid {started} ppid {parent}");
    assert!(text.contains(&line), "{text}");
    assert!(text.contains(&format!("waitpid {started} 0")), "{text}");
}

#[test]
fn memory_is_copied_not_shared() {
    let out = probe(&["memory"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("fork child counter 42\n"), "{text}");
    assert!(
        text.contains("fork parent counter 1 child exit 42\n"),
        "{text}"
    );
    assert!(text.contains("process parent counter 1\n"), "{text}");
    // The fork start method copies the parent's memory as it is (5 + 100);
    // spawn starts from a fresh instance (1 + 100).
    assert!(text.contains("child counter 105\n"), "{text}");
    assert_eq!(text.matches("child counter 101\n").count(), 2, "{text}");
}

#[test]
fn fork_bomb_hits_the_tree_limit_and_the_host_stays_responsive() {
    let start = std::time::Instant::now();
    let mut child = procbridge()
        .args(["run", guest_str("process_probe"), "forkbomb"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    // While the bomb is live, the tree never holds more than the limit.
    let mut most = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        most = most.max(descendants(root).len());
        assert!(start.elapsed().as_secs() < 20, "the bomb did not end");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut text = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert!(status.success(), "{text}");
    assert!(most <= 64, "{most} descendants");
    assert!(most >= 8, "the bomb did not grow: {most}");
    assert!(text.contains("refused Again"), "{text}");
    assert!(text.contains("64 live processes (the limit)"), "{text}");
    assert!(descendants(root).is_empty());
}

#[test]
fn waitpid_bad_inputs_and_wnohang() {
    let out = probe(&["bad"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for name in [
        "waitpid of a non-child",
        "waitpid of nothing",
        "waitpid bad options",
        "waitpid process group",
        "waitpid status out of bounds",
        "foreign handle in a fork child",
    ] {
        assert!(text.contains(&format!("ok {name}")), "{name}: {text}");
    }
    assert!(text.contains("wnohang (0, 0) then exit 3"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

/// The value after `key ` on the first line that starts with it.
pub fn field(text: &str, key: &str) -> u32 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `{key}` in {text}"))
        .parse()
        .unwrap_or_else(|_| panic!("`{key}` is not a number in {text}"))
}

/// Every live (not zombie) descendant of `root`, read from /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid: u32 = match entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            Some(pid) => pid,
            None => continue,
        };
        if let Some((state, ppid)) = proc_state(pid) {
            if state != 'Z' {
                parents.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in parents.get(&pid).into_iter().flatten() {
            found.push(child);
            todo.push(child);
        }
    }
    found
}

/// A process's state letter and parent pid, or `None` when it is gone.
pub fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[test]
fn a_trap_in_a_fork_child_is_exit_1_and_unwaited_children_are_waited_for() {
    let out = probe(&["fork_trap"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("fork child about to trap\n"), "{text}");
    assert!(text.contains("fork child exit 1 exited true\n"), "{text}");
    let err = stderr(&out);
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.contains("wasm backtrace"), "{err}");
    // The root's exit waited for the child it never waited for.
    assert!(
        text.ends_with("parent done\nunwaited child done\n"),
        "{text}"
    );
}
