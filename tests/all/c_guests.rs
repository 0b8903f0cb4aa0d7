//! The seed's stories written in C (`guests/c`, against
//! `guest-sdk/c/procbridge.h`) and Zig (`guests/zig`), built by
//! `guests/build` with zig, run through the `procbridge` CLI: the lines the
//! Rust guests print, real and distinct pids, exit codes, the denial of an
//! ungranted command, and the issue's own C program.

use crate::support::*;
use std::process::{Output, Stdio};

/// Runs `procbridge run [GRANTS] target/guests/NAME.wasm [ARGS]`; returns
/// the pid of procbridge (the guest's first process) and what it printed.
fn run_guest(grants: &[&str], name: &str, args: &[&str]) -> (u32, Output) {
    let child = procbridge()
        .arg("run")
        .args(grants)
        .arg(guest(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    (root, child.wait_with_output().unwrap())
}

/// The text of a line `PREFIX<number>SUFFIX`, parsed.
fn number_in(line: &str, prefix: &str, suffix: &str) -> u32 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("not `{prefix}N{suffix}`: {line}"))
        .parse()
        .unwrap_or_else(|_| panic!("no number in {line}"))
}

/// guests/fork's lines: the child's pid is new, its parent is the root.
fn fork_story(name: &str) {
    let (root, out) = run_guest(&[], name, &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("Process ({root}) start..."));
    let parent_line = lines
        .iter()
        .find(|l| l.starts_with("I ("))
        .unwrap_or_else(|| panic!("{text}"));
    let child = number_in(
        parent_line,
        &format!("I ({root}) just created a child process ("),
        ").",
    );
    assert_ne!(child, root);
    let child_line = format!("I am child process ({child}) and my parent is {root}.");
    assert!(lines.contains(&child_line.as_str()), "{text}");
}

#[test]
fn c_fork_story() {
    fork_story("c_fork");
}

#[test]
fn zig_fork_story() {
    fork_story("zig_fork");
}

fn process_story(method: &[&str]) {
    let (root, out) = run_guest(&[], "c_process", method);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], format!("Parent process {root}."));
    assert_eq!(lines[1], "Child process will start.");
    let child = number_in(lines[2], "Run child process test (", ")...");
    assert_ne!(child, root);
    assert_eq!(lines[3], "Child process end.");
}

#[test]
fn c_process_story() {
    process_story(&[]);
}

#[test]
fn c_process_story_with_spawn() {
    process_story(&["spawn"]);
}

#[test]
fn c_pool_story_runs_five_tasks_on_four_workers() {
    let (root, out) = run_guest(&[], "c_pool", &["0.2"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 13, "{text}");
    assert_eq!(lines[0], format!("Parent process {root}."));
    assert!(
        lines.contains(&"Waiting for all subprocesses done..."),
        "{text}"
    );
    assert_eq!(lines[12], "All subprocesses done.");
    let mut starts = Vec::new();
    let mut first_end = None;
    for (index, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("Run task ") {
            let (task, pid) = rest.strip_suffix(")...").unwrap().split_once(" (").unwrap();
            starts.push((
                index,
                task.parse::<u32>().unwrap(),
                pid.parse::<u32>().unwrap(),
            ));
        } else if let Some(rest) = line.strip_prefix("Task ") {
            let (_, secs) = rest.split_once(" runs ").unwrap();
            let secs = secs.strip_suffix(" seconds.").unwrap();
            assert_eq!(secs.split('.').nth(1).map(str::len), Some(2), "{line}");
            secs.parse::<f64>().unwrap();
            first_end.get_or_insert(index);
        }
    }
    assert_eq!(starts.len(), 5, "{text}");
    let mut tasks: Vec<u32> = starts.iter().map(|s| s.1).collect();
    tasks.sort_unstable();
    assert_eq!(tasks, [0, 1, 2, 3, 4]);
    // Four start at once on four distinct workers, none of them the root...
    let mut first_four: Vec<u32> = starts[..4].iter().map(|s| s.2).collect();
    assert!(!first_four.contains(&root), "{text}");
    first_four.sort_unstable();
    first_four.dedup();
    assert_eq!(first_four.len(), 4, "{text}");
    // ...and the fifth once one has ended, on a worker that ran one.
    let (fifth_line, fifth_task, fifth_pid) = starts[4];
    assert_eq!(fifth_task, 4, "{text}");
    assert!(first_four.contains(&fifth_pid), "{text}");
    assert!(first_end.unwrap() < fifth_line, "{text}");
}

#[test]
fn c_call_passes_output_through_and_prints_the_exit_code() {
    let (_, out) = run_guest(&["--allow-run", "echo"], "c_call", &[]);
    assert_eq!(
        stdout(&out),
        "$ echo hello from a child process\nhello from a child process\nExit code: 0\n",
        "{}",
        stderr(&out)
    );
    assert!(out.status.success());

    let (_, out) = run_guest(&["--allow-run", "false"], "c_call", &["false"]);
    assert_eq!(stdout(&out), "$ false\nExit code: 1\n", "{}", stderr(&out));
    assert!(out.status.success());
}

#[test]
fn c_call_of_an_ungranted_command_is_a_permission_error() {
    let (_, out) = run_guest(&[], "c_call", &["curl", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "$ curl x\n");
    let err = stderr(&out);
    assert!(
        err.contains("procbridge: denied: run \"curl\": not granted (add --allow-run curl)\n"),
        "{err}"
    );
    assert_eq!(err.matches("procbridge: denied").count(), 1, "{err}");
    assert!(
        err.contains(
            "call failed: PermissionError: [Errno 1] run \"curl\": not granted \
             (add --allow-run curl)\n"
        ),
        "{err}"
    );
    // Exactly what the Rust guest prints.
    let (_, rust) = run_guest(&[], "call", &["curl", "x"]);
    assert_eq!(
        (stdout(&out), err, out.status.code()),
        (stdout(&rust), stderr(&rust), rust.status.code())
    );
}

#[test]
fn c_communicate_feeds_input_and_captures_output() {
    let (_, out) = run_guest(&["--allow-run", "sort"], "c_communicate", &[]);
    assert_eq!(
        stdout(&out),
        "$ sort\nexit\npython.org\nset q=mx\nExit code: 0\n",
        "{}",
        stderr(&out)
    );
    assert!(out.status.success());
    let (_, out) = run_guest(
        &["--allow-run", "tr"],
        "c_communicate",
        &["tr", "a-z", "A-Z"],
    );
    assert_eq!(
        stdout(&out),
        "$ tr a-z A-Z\nSET Q=MX\nPYTHON.ORG\nEXIT\nExit code: 0\n",
        "{}",
        stderr(&out)
    );
    // The command's stderr goes to the guest's, its exit code is printed.
    let (_, out) = run_guest(
        &["--allow-run", "sh"],
        "c_communicate",
        &[
            "sh",
            "-c",
            "while read x; do :; done; echo oops >&2; exit 3",
        ],
    );
    assert_eq!(
        stdout(&out),
        "$ sh -c while read x; do :; done; echo oops >&2; exit 3\nExit code: 3\n"
    );
    assert_eq!(stderr(&out), "oops\n");
    let (_, out) = run_guest(&[], "c_communicate", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("communicate failed: PermissionError: [Errno 1] run \"sort\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn c_queue_story() {
    let started = std::time::Instant::now();
    let (root, out) = run_guest(&[], "c_queue", &["0.2"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "{text}");
    let pid_of = |prefix: &str| -> u32 {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {text}"));
        number_in(line, prefix, "")
    };
    let writer = pid_of("Process to write: ");
    let reader = pid_of("Process to read: ");
    assert!(
        writer != reader && writer != root && reader != root,
        "{text}"
    );
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
}

/// The program of the issue, compiled with the header as it is.
#[test]
fn the_issue_story_forks_waits_and_talks_to_cat() {
    let (root, out) = run_guest(&["--allow-run", "cat"], "c_issue_story", &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], format!("Process ({root}) start..."));
    let child = number_in(
        lines[1],
        "I am child process (",
        &format!(") and my parent is {root}."),
    );
    assert_ne!(child, root);
    assert_eq!(&lines[2..], ["hello", "Exit code: 0"]);
}

/// zig's release builds are small: no debug information, printf and not
/// much more of wasi-libc.
#[test]
fn the_c_and_zig_modules_are_small() {
    for (name, most) in [
        ("c_fork", 64 << 10),
        ("c_process", 64 << 10),
        ("c_pool", 64 << 10),
        ("c_call", 64 << 10),
        ("c_communicate", 64 << 10),
        ("c_queue", 64 << 10),
        ("c_issue_story", 64 << 10),
        ("zig_fork", 16 << 10),
    ] {
        let size = std::fs::metadata(guest(name)).unwrap().len();
        assert!(size <= most, "{name}.wasm is {size} bytes");
    }
}
