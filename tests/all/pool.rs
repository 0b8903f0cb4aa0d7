//! `multiprocessing.Pool` through the `procbridge` CLI (workers fork, so
//! never in this test process): the seed story, results and order, errors,
//! worker loss, timeouts, `maxtasksperchild`, terminate, close/join rules,
//! cleanup and bad inputs.

use crate::fork::proc_state;
use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn pool_probe(args: &[&str]) -> (String, String) {
    let path = guest("pool_probe");
    let mut all = vec!["run", path.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run_cli(&all);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    (stdout(&out), stderr(&out))
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line `{prefix}` in:\n{text}"))
        .trim_start()
}

fn numbers(text: &str) -> Vec<u32> {
    text.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|_| panic!("not a number: {s}")))
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some((state, _)) if state != 'Z')
}

#[test]
fn pool_story_prints_the_seed_lines_and_reuses_a_worker() {
    let child = procbridge()
        .args(["run", guest("pool").to_str().unwrap(), "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
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
    // Four start at once on four distinct workers...
    let mut first_four: Vec<u32> = starts[..4].iter().map(|s| s.2).collect();
    assert!(!first_four.contains(&root));
    first_four.sort_unstable();
    first_four.dedup();
    assert_eq!(first_four.len(), 4, "{text}");
    // ...and the fifth starts once one ends, on a worker that already ran a
    // task (same pid).
    let (fifth_line, fifth_task, fifth_pid) = starts[4];
    assert_eq!(fifth_task, 4, "{text}");
    assert!(first_four.contains(&fifth_pid), "{text}");
    assert!(first_end.unwrap() < fifth_line, "{text}");
}

#[test]
fn map_and_imap_give_results_in_order_and_imap_unordered_gives_all() {
    let (text, _) = pool_probe(&["map"]);
    let squares: Vec<u32> = (0..50).map(|i| i * i).collect();
    assert_eq!(numbers(line(&text, "map ")), squares);
    assert_eq!(numbers(line(&text, "map chunked ")), squares);
    assert_eq!(line(&text, "map_str "), "4,9");
    // imap yields in submission order although later items finish first.
    assert_eq!(line(&text, "imap "), "120,10,60,0,30");
    assert_eq!(line(&text, "imap_unordered count "), "50");
    assert_eq!(line(&text, "imap_unordered complete "), "true");
    assert_eq!(line(&text, "starmap "), "3,60");
    assert_eq!(line(&text, "apply "), "144");
    assert_eq!(
        line(&text, "async ready "),
        "true successful Ok(true) get 81"
    );
    assert_eq!(line(&text, "map_async "), "16,25");
    assert_eq!(line(&text, "map empty "), "0");
    assert_eq!(
        line(&text, "get_timeout "),
        "Err(Timeout) ready false successful Err(NotReady)"
    );
    assert_eq!(line(&text, "wait_timeout "), "Ok(false)");
    // join waits for the queued work.
    assert_eq!(line(&text, "joined; slow result ready "), "true");
}

#[test]
fn task_errors_and_traps_reach_get_and_the_pool_keeps_working() {
    let (text, _) = pool_probe(&["errors"]);
    assert_eq!(line(&text, "fail "), r#"Err(Task("failed on purpose: x"))"#);
    assert_eq!(line(&text, "pids kept after fail "), "true");
    assert_eq!(line(&text, "successful "), "Ok(false)");
    assert_eq!(
        line(&text, "trap Task "),
        "guest trapped: wasm trap: wasm `unreachable` instruction executed"
    );
    assert_eq!(
        line(&text, "exit "),
        r#"Err(Task("the task called exit(7)"))"#
    );
    assert_eq!(
        line(&text, "bad arg "),
        r#"Err(Task("not a number: \"x\""))"#
    );
    assert_eq!(
        line(&text, "map "),
        r#"Err(Task("not a number: \"oops\""))"#
    );
    assert_eq!(
        line(&text, "outcomes "),
        r#"[Ok([49]), Err(Task("not a number: \"oops\"")), Ok([57])]"#
    );
    assert_eq!(
        line(&text, "imap "),
        r#"Ok("1") Err(Task("not a number: \"oops\"")) Ok("9")"#
    );
    assert_eq!(line(&text, "still works "), "36,49");
    assert!(
        line(&text, "unknown task ")
            .contains("FileNotFoundError: [Errno 2] the module exports no task"),
        "{text}"
    );
    assert!(line(&text, "wrong signature ").contains("not a task function"));
    assert!(text.ends_with("errors done\n"), "{text}");
}

#[test]
fn sigkill_of_a_worker_mid_task_is_worker_lost_within_a_second() {
    let mut child = procbridge()
        .args(["run", guest("pool_probe").to_str().unwrap(), "kill"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert!(next().starts_with("parent pid "));
    let workers = numbers(next().strip_prefix("pids ").unwrap());
    assert_eq!(workers.len(), 2);
    let victim: u32 = next().strip_prefix("napping in ").unwrap().parse().unwrap();
    assert!(workers.contains(&victim));
    let killed = Instant::now();
    // SAFETY: a plain kill(2) of the worker this test's guest started.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    let lost = next();
    let took = killed.elapsed();
    assert_eq!(
        lost,
        format!(
            "victim WorkerLost worker {victim} died while running the task (killed by signal 9)"
        )
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(next(), "others 20");
    let after: u32 = next().strip_prefix("after ").unwrap().parse().unwrap();
    assert_ne!(after, victim);
    let now = numbers(next().strip_prefix("pids ").unwrap());
    assert_eq!(now.len(), 2, "a new worker replaced the dead one");
    assert!(!now.contains(&victim));
    assert_eq!(next(), "kill done");
    assert!(child.wait().unwrap().success());
    assert!(!alive(victim));
}

#[test]
fn a_task_over_its_timeout_fails_and_its_worker_is_replaced() {
    let (text, _) = pool_probe(&["timeout"]);
    let napper: u32 = line(&text, "napping in ").parse().unwrap();
    assert_eq!(
        line(&text, "slow TaskTimedOut "),
        format!("the task ran over its timeout of 300ms (worker {napper} was killed)")
    );
    let ms: u64 = line(&text, "timed out after ")
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!((300..1500).contains(&ms), "{ms}");
    assert_eq!(line(&text, "quick "), r#"Ok("50")"#);
    assert_eq!(line(&text, "then "), "25");
    assert_eq!(line(&text, "pids changed "), "true");
    assert!(numbers(line(&text, "before ")).contains(&napper));
    let after = numbers(line(&text, "after "));
    assert_eq!(after.len(), 2);
    assert!(!after.contains(&napper));
    assert!(!alive(napper));
}

#[test]
fn a_worker_that_dies_holding_replies_runs_no_task_twice() {
    let (text, _) = pool_probe(&["die_holding"]);
    let noted = line(&text, "noted ");
    assert_eq!(noted, "0 1 2 3 4 5 6 7 8 9", "each task ran once: {text}");
    let outcomes = line(&text, "outcomes ");
    assert!(outcomes.contains("5:lost"), "{text}");
    for n in 6..10 {
        assert!(outcomes.contains(&format!("{n}:ok")), "{text}");
    }
}

#[test]
fn a_quick_task_sent_ahead_of_one_that_times_out_keeps_its_result() {
    let (text, _) = pool_probe(&["timeout_behind_quick"]);
    assert_eq!(line(&text, "first "), "Ok 0", "{text}");
    assert_eq!(line(&text, "second "), "TaskTimedOut", "{text}");
    assert_eq!(line(&text, "busy "), r#"Ok("100")"#, "{text}");
}

#[test]
fn maxtasksperchild_replaces_workers() {
    let (text, _) = pool_probe(&["maxtasks"]);
    let pids = numbers(line(&text, "pids "));
    assert_eq!(pids.len(), 6);
    for pair in pids.chunks(2) {
        assert_eq!(pair[0], pair[1], "{text}");
    }
    assert!(pids[0] != pids[2] && pids[2] != pids[4] && pids[0] != pids[4]);
    // A chunk counts as one task: 4 chunks of 2 items, 2 chunks per worker.
    let chunked = numbers(line(&text, "chunked "));
    assert_eq!(chunked.len(), 8);
    assert!(chunked[..4].iter().all(|&p| p == chunked[0]));
    assert!(chunked[4..].iter().all(|&p| p == chunked[4]));
    assert_ne!(chunked[0], chunked[4]);
}

#[test]
fn terminate_while_tasks_run_fails_them_and_kills_the_workers() {
    let (text, _) = pool_probe(&["terminate"]);
    let workers = numbers(line(&text, "pids "));
    assert_eq!(workers.len(), 2);
    assert_eq!(
        text.matches("after terminate Err(Terminated)").count(),
        3,
        "{text}"
    );
    let ms: u64 = line(&text, "terminated in ")
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!(ms < 1000, "{ms}");
    assert_eq!(line(&text, "pids now "), "[]");
    assert_eq!(line(&text, "apply "), "Err(Closed)");
    assert_eq!(line(&text, "join "), "Ok(())");
    for pid in workers {
        assert!(!alive(pid), "worker {pid} survived");
    }
}

#[test]
fn close_and_join_follow_pythons_rules() {
    let (text, _) = pool_probe(&["lifecycle"]);
    assert_eq!(line(&text, "join before close "), "Err(NotClosed)");
    assert_eq!(line(&text, "raw join before close "), "-22");
    assert_eq!(line(&text, "apply after close "), "Some(Closed)");
    assert!(
        line(&text, "raw submit after close ").starts_with("-22 ")
            && text.contains("Pool not running"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"join Ok(())"), "{text}");
    assert_eq!(line(&text, "join again "), "Ok(())");
    assert_eq!(line(&text, "pids after join "), "[]");
}

fn leaves_no_process(how: &str) {
    let (text, _) = pool_probe(&["leave", how]);
    let workers = numbers(line(&text, "pids "));
    assert_eq!(workers.len(), 3);
    assert!(text.contains("napping in "));
    for pid in workers {
        assert!(!alive(pid), "worker {pid} survived ({how})");
    }
}

#[test]
fn dropping_a_pool_leaves_no_process() {
    leaves_no_process("drop");
}

#[test]
fn exiting_with_a_busy_pool_leaves_no_process() {
    leaves_no_process("exit");
}

#[test]
fn bad_inputs_get_clear_errors() {
    let (text, _) = pool_probe(&["bad"]);
    let expected = "\
new 0 EINVAL
new -3 EINVAL
new 100000 EINVAL
new maxtasks -1 EINVAL
new timeout -5 EINVAL
pids forged EBADF
close forged EBADF
new ok
submit oob name EFAULT
submit oob items EFAULT
submit negative len E2BIG
submit bad list EINVAL
submit chunksize 0 EINVAL
submit unknown ENOENT
submit ok
known, oob items EFAULT
known, bad list EINVAL
known, chunksize 0 EINVAL
known, then unknown ENOENT
wait negative EINVAL
get negative EINVAL
next bad order EINVAL
get unknown id EINVAL
get forged pool EBADF
join negative EINVAL
get ok 6
take oob EFAULT
drop result ok 0
get dropped EINVAL
wrong kind EBADF
drop ok 0
closed handle EBADF
submit closed handle EBADF
";
    let body = text.split_once('\n').unwrap().1;
    assert_eq!(body, expected);
}

#[test]
fn a_pool_past_the_process_limit_is_eagain_and_frees_its_workers() {
    let path = guest("pool_probe");
    let out = run_cli(&[
        "run",
        "--max-processes",
        "3",
        path.to_str().unwrap(),
        "limit",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        line(&text, "pool 4 "),
        "EAGAIN the process tree already has 3 live processes (the limit)"
    );
    // The three workers started before the refusal were killed and reaped,
    // so a smaller pool fits.
    assert_eq!(line(&text, "pool 2 "), "9,16");
}

#[test]
fn killing_the_parent_kills_its_workers() {
    let mut child = procbridge()
        .args(["run", guest("pool_probe").to_str().unwrap(), "kill"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().unwrap().unwrap();
    assert!(next().starts_with("parent pid "));
    let workers = numbers(next().strip_prefix("pids ").unwrap());
    assert!(next().starts_with("napping in "));
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while workers.iter().any(|&pid| alive(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in workers {
        assert!(!alive(pid), "worker {pid} outlived its parent");
    }
}

#[test]
fn queued_tasks_start_while_the_parent_waits_on_something_else() {
    // 200 tasks, more than two workers hold at once; the parent then waits
    // on the Queue they fill and makes no pool call. Before the pool's
    // pump, the tasks left in the parent never started: every get timed out.
    let (text, stderr) = pool_probe(&["away"]);
    assert!(
        text.contains("away got 200 squares, all true, within 0 s"),
        "{text}{stderr}"
    );
    assert!(text.contains("away results collected"), "{text}{stderr}");
}

#[test]
fn a_task_given_a_new_handle_starts_while_the_parent_waits_on_it() {
    // Right after a map, the workers are handed a queue made after them
    // and the parent waits on it, making no pool call. The workers lacking
    // it must be replaced by the submission: the pool's helper thread
    // cannot fork. (Once submissions stopped making a round each time, the
    // task never started and the wait timed out.)
    let (text, stderr) = pool_probe(&["new_handle_then_wait"]);
    assert_eq!(
        text.lines()
            .filter(|l| !l.starts_with("parent pid"))
            .collect::<Vec<_>>(),
        [
            "warm 1,4,9",
            "new handle got 49",
            "new handle result collected"
        ],
        "{stderr}"
    );
}

#[test]
fn forks_while_the_pools_helper_thread_works_start_and_end() {
    // Every fork waits for a round of the pool's helper thread to end (a
    // pthread_atfork gate): a child never starts with a lock it held.
    let expected: i64 = (0..3000i64).map(|n| n * n).sum();
    let (text, stderr) = pool_probe(&["fork_while_away"]);
    assert!(
        text.contains(&format!(
            "forked children ended 40 of 40, sum of squares {expected}"
        )),
        "{text}{stderr}"
    );
    assert_eq!(stderr.matches("says hello").count(), 40, "{stderr}");
}
