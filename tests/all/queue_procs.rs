//! Queues and pipes between real guest processes (through the CLI: these
//! guests fork), and the seed's Queue story.

use crate::support::*;

fn scenario(name: &str) -> String {
    let out = run_cli(&["run", guest("queue_procs").to_str().unwrap(), name]);
    assert!(
        out.status.success(),
        "{name}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn one_writer_three_readers_each_message_exactly_once() {
    let out = scenario("fanout");
    assert!(out.contains("received 300 unique 300\n"), "{out}");
    assert!(out.contains("extra Err(Empty)\n"), "{out}");
}

#[test]
fn order_is_fifo_per_writer_across_processes() {
    let out = scenario("fifo");
    assert!(out.contains("in order true last 200 200\n"), "{out}");
}

#[test]
fn terminated_reader_blocked_in_get_loses_nothing_for_others() {
    let out = scenario("killed_reader");
    assert!(out.contains("terminated exitcode Some(-15)\n"), "{out}");
    assert!(out.contains("second reader got 5\n"), "{out}");
    assert!(!out.contains("blocked reader got"), "{out}");
}

#[test]
fn pipe_reports_end_of_file_when_the_peer_dies() {
    let out = scenario("pipe_peer_death");
    assert!(
        out.contains("first Ok(\"hello from the child\")\n"),
        "{out}"
    );
    assert!(
        out.contains("after death Err(EndOfFile) within 1s true\n"),
        "{out}"
    );
}

#[test]
fn seed_queue_story() {
    let started = std::time::Instant::now();
    let child = procbridge()
        .args(["run", guest("queue").to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let host_pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let pid_of = |prefix: &str| -> u32 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
            .parse()
            .unwrap()
    };
    let writer = pid_of("Process to write: ");
    let reader = pid_of("Process to read: ");
    assert!(writer != reader && writer != host_pid && reader != host_pid);
    let pos = |line: &str| {
        lines
            .iter()
            .position(|l| *l == line)
            .unwrap_or_else(|| panic!("no {line:?} in {text}"))
    };
    for v in ["A", "B", "C"] {
        assert!(pos(&format!("Put {v} to queue...")) < pos(&format!("Get {v} from queue.")));
    }
    assert!(pos("Get A from queue.") < pos("Get B from queue."));
    assert!(pos("Get B from queue.") < pos("Get C from queue."));
    assert_eq!(lines.len(), 8, "{text}");
}

#[test]
fn pool_workers_use_a_queue_passed_in_their_arguments() {
    let out = scenario("pool_workers");
    assert!(
        out.contains(
            "pool tasks [\"task 0\", \"task 1\", \"task 2\", \"task 3\", \"task 4\", \"task 5\"]\n"
        ),
        "{out}"
    );
    let parent: &str = out
        .lines()
        .find_map(|l| l.strip_prefix("parent pid "))
        .unwrap();
    for line in out.lines().filter(|l| l.starts_with("task ")) {
        let worker = line.rsplit(' ').next().unwrap();
        assert_ne!(worker, parent, "{out}");
    }
}

#[test]
fn a_fork_child_uses_its_parents_queue() {
    let out = scenario("fork_child");
    let line = out.lines().next().unwrap();
    let (msg, child) = line.split_once(" (child ").unwrap();
    assert_eq!(msg, format!("hello from {}", child.trim_end_matches(')')));
}
