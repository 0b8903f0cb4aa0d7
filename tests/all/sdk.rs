//! The Rust SDK's typed tasks: the issue's program against Python's, panics
//! and errors reaching the caller as Python shows them, handles given to
//! pool workers, bad arguments to typed tasks.

use crate::support::*;
use std::process::{Command, Output};

fn probe(scenario: &str) -> Output {
    run_cli(&["run", guest("sdk_probe").to_str().unwrap(), scenario])
}

fn probe_ok(scenario: &str) -> String {
    let out = probe(scenario);
    assert!(
        out.status.success(),
        "{scenario}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Lines with every pid (a number after a word ending in `:`, as in
/// `Process to read: 845`) replaced by `PID`. Pids may have any number of
/// digits: a fresh machine hands out three-digit ones.
fn without_pids(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let mut previous = "";
            line.split(' ')
                .map(|word| {
                    let is_pid = previous.ends_with(':')
                        && !word.is_empty()
                        && word.chars().all(|c| c.is_ascii_digit());
                    previous = word;
                    if is_pid {
                        "PID"
                    } else {
                        word
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The lines of one process's story, in the order they were printed.
fn story<'a>(lines: &'a [String], prefixes: &[&str]) -> Vec<&'a str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .collect()
}

/// The tour guest is the issue's program as written; it prints what the
/// same program prints in Python, pids aside (the reader's lines may stop
/// early, or be missing, in both: it is terminated).
#[test]
fn the_tour_prints_what_python_prints() {
    let out = run_cli(&["run", guest("tour").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = without_pids(&stdout(&out));
    let script = root().join("guests/tour/src/main.rs");
    let source = std::fs::read_to_string(script).unwrap();
    let python: String = source
        .lines()
        .skip_while(|l| !l.starts_with("//! ```python"))
        .skip(1)
        .take_while(|l| !l.starts_with("//! ```"))
        .map(|l| format!("{}\n", l.strip_prefix("//! ").unwrap_or("")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tour.py");
    std::fs::write(&path, python).unwrap();
    let py = Command::new("python3")
        .arg(&path)
        .output()
        .expect("python3");
    assert!(py.status.success(), "{}", stderr(&py));
    let theirs = without_pids(&stdout(&py));

    // Python's print writes the text and the newline apart, so a process
    // terminated between the two runs its line into the next: look for
    // each of its lines as text.
    let python_text = stdout(&py);
    let writer = ["Process to write", "Put "];
    for line in story(&ours, &writer) {
        let text = line.trim_end_matches("PID");
        assert!(python_text.contains(text), "{text:?} in {python_text}");
    }
    assert_eq!(
        story(&ours, &writer),
        [
            "Process to write: PID",
            "Put A to queue...",
            "Put B to queue...",
            "Put C to queue..."
        ]
    );
    // The reader is terminated as soon as the writer is done: it may have
    // printed nothing yet, in Python too.
    let reader = story(&ours, &["Process to read", "Get "]);
    let full = [
        "Process to read: PID",
        "Get A from queue.",
        "Get B from queue.",
        "Get C from queue.",
    ];
    assert_eq!(reader, full[..reader.len()], "{ours:?}");
    let tail = |lines: &[String]| lines[lines.len() - 3..].to_vec();
    // Python's last lines, as text: a reader terminated in the middle of a
    // print may have run its line into the first of them.
    for line in tail(&ours) {
        assert!(
            theirs.iter().any(|l| l.ends_with(&line)),
            "{line:?} in {theirs:?}"
        );
    }
    assert_eq!(
        tail(&ours),
        [
            "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
            "144",
            "[0, 1, 2, 3, 4, 5, 6, 7]"
        ]
    );
    assert_eq!(ours.len(), 4 + reader.len() + 3, "{ours:?}");
}

#[test]
fn a_panic_in_a_pool_task_reaches_get_with_its_message_and_place() {
    let out = probe_ok("pool_panic");
    assert!(
        out.contains("get: panicked at 'boom: in a pool', sdk_probe/src/main.rs:"),
        "{out}"
    );
    assert!(out.contains("kind: Task\n"), "{out}");
    // The worker was replaced; the pool goes on.
    assert!(out.contains("after: (3, \"-x0.5\")\n"), "{out}");
}

#[test]
fn a_panic_in_a_process_is_reported_and_exits_1() {
    let out = probe("process_panic");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("): panicked at 'boom: in a process', sdk_probe/src/main.rs:"),
        "{err}"
    );
    assert!(err.starts_with("Process boom ("), "{err}");
    assert!(stdout(&out).contains("exitcode: Some(1)\n"));
}

#[test]
fn a_task_error_reaches_get_as_pythons_exception_line() {
    let out = probe_ok("task_error");
    assert!(
        out.contains(
            "get: PermissionError: [Errno 1] run \"sort\": not granted (add --allow-run sort)\n"
        ),
        "{out}"
    );
}

#[test]
fn main_returning_an_error_prints_pythons_line() {
    let out = probe("denied");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "Error: PermissionError: [Errno 1] run \"sort\": not granted (add --allow-run sort)\n"
        ),
        "{}",
        stderr(&out)
    );
}

/// A queue made after the pool's workers started reaches them (they are
/// replaced by forks that hold it), task after task on the same worker:
/// the task's copy of the argument never closes the worker's handle.
#[test]
fn queues_and_pipes_made_after_the_pool_reach_its_workers() {
    let out = probe_ok("handles_to_workers");
    assert!(out.contains("workers replaced: true\n"), "{out}");
    assert!(out.contains(", all current: true\n"), "{out}");
    assert!(out.contains("q2 got tag 7\n"), "{out}");
    assert!(out.contains("q got tag 8\n"), "{out}");
    assert!(out.contains("pipe sent [0, 1, 2] got [0, 1, 2]\n"), "{out}");
}

/// In a spawned child the inherited queue is older than the child's pool:
/// sharing it replaces no worker.
#[test]
fn a_spawned_childs_pool_keeps_its_workers_for_an_inherited_queue() {
    let out = probe_ok("spawn_child_pool");
    assert!(out.contains("child pool kept its workers: true\n"), "{out}");
    assert!(out.contains("exitcode Some(0)\n"), "{out}");
    assert!(out.contains("tasks ran 3\n"), "{out}");
}

/// Workers replaced for a new queue exit before their replacements start:
/// a pool of 2 under a limit of 3 processes never hits it.
#[test]
fn replacing_stale_workers_stays_within_the_process_limit() {
    let out = run_cli(&[
        "run",
        "--max-processes",
        "3",
        guest("sdk_probe").to_str().unwrap(),
        "handles_to_workers",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("workers replaced: true\n"));
    assert!(!stderr(&out).contains("limit:"), "{}", stderr(&out));
}

#[test]
fn values_of_every_shape_make_the_round_trip() {
    let out = probe_ok("values");
    assert!(out.contains("shapes (201, \"é,-→-1.25\")\n"), "{out}");
    assert!(out.contains("starmap [(1, \"a1\")]\n"), "{out}");
}

/// Bytes that are not a typed task's arguments: a clear error naming what
/// is wrong, and the worker lives on.
#[test]
fn typed_tasks_refuse_bad_arguments_clearly() {
    let out = probe("bad_arguments");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let refused = "cannot read the task's arguments: ValueError: malformed task value:";
    for line in [
        "boom([]): ",
        "boom([1]): ",
        "boom([255, 255, 255, 255]): ",
        "boom([3, 0, 0, 0, 255, 254, 253]): ",
        "shapes: ",
    ] {
        assert!(text.contains(&format!("{line}{refused}")), "{line}: {text}");
    }
    assert!(text.contains("a string that is not UTF-8\n"), "{text}");
    assert!(text.contains("2 is not a bool\n"), "{text}");
    assert!(text.contains("process exitcode Some(1)\n"), "{text}");
    assert!(
        text.contains(
            "returned a queue: a task cannot return a Queue or a Connection: pass one in its arguments instead\n"
        ),
        "{text}"
    );
    assert!(text.contains("pool still works: 2\n"), "{text}");
    assert!(stderr(&out).contains(&format!("): {refused}")));
}

#[test]
fn queue_errors_convert_with_question_mark_and_print_as_python() {
    let out = probe_ok("boxed");
    assert!(
        out.contains("put_nowait: queue.Full: the queue is full\n"),
        "{out}"
    );
    assert!(out.contains("got first\n"), "{out}");
    assert!(
        out.contains("get_nowait: queue.Empty: the queue is empty (Empty)\n"),
        "{out}"
    );
}

/// The SDK's own unit tests (value encoding, error lines, outcomes) run
/// natively, as part of this suite.
#[test]
fn the_sdk_unit_tests_pass() {
    let out = Command::new(env!("CARGO"))
        .args([
            "test",
            "--quiet",
            "-p",
            "procbridge-sdk",
            "--lib",
            "--manifest-path",
        ])
        .arg(root().join("guests/Cargo.toml"))
        .env("CARGO_TARGET_DIR", root().join("target/sdk-tests"))
        .output()
        .expect("run cargo test");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("test result: ok"), "{}", stdout(&out));
}
