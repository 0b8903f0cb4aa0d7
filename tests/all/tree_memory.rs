//! Issue 12: `--max-total-memory` holds after fork. A child's copy of its
//! parent's instance counts from the moment of the fork, so every way of
//! starting a guest process (`os.fork`, `Process` with either start method,
//! `Pool` workers) fails with `ENOMEM` once the tree would pass the limit.

use crate::support::*;

/// A 30 MiB guest (`memory 480`) that starts children as `{starts}` says,
/// printing one character per start: `o` started, `M` `ENOMEM`, `A`
/// `EAGAIN`, `?` anything else. Then it grows by 5 MiB (the tree is then at
/// 95 MiB when two children hold their 30 MiB each) and by 10 MiB more, which
/// must trap with the tree's exact total in the message.
///
/// Children wait until every copy of the pipe's sending end but theirs is
/// closed, which happens when the root ends (its handles are closed before
/// its children are waited for).
fn guest(starts: &str) -> String {
    format!(
        r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "procbridge" "fork" (func $fork (result i32)))
    (import "procbridge" "process_start" (func $process_start (param i32 i32 i32 i32 i32 i32) (result i32)))
    (import "procbridge" "pool_new" (func $pool_new (param i32 i32 i64) (result i32)))
    (import "procbridge" "pipe_new" (func $pipe_new (param i32 i32) (result i32)))
    (import "procbridge" "pipe_recv" (func $pipe_recv (param i32 i32 i32 i64) (result i32)))
    (import "procbridge" "pipe_close" (func $pipe_close (param i32) (result i32)))
    (import "procbridge" "take_result" (func $take_result (param i32 i32) (result i32)))
    (memory (export "memory") 480)
    (data (i32.const 0x10) "hold")
    (global $n (mut i32) (i32.const 0))
    (func $note (param $ret i32)
      (i32.store8 (i32.add (i32.const 0x500) (global.get $n))
        (if (result i32) (i32.ge_s (local.get $ret) (i32.const 0))
          (then (i32.const 111))
          (else (if (result i32) (i32.eq (local.get $ret) (i32.const -12))
            (then (i32.const 77))
            (else (if (result i32) (i32.eq (local.get $ret) (i32.const -11))
              (then (i32.const 65))
              (else (i32.const 63))))))))
      (global.set $n (i32.add (global.get $n) (i32.const 1))))
    (func $hold
      (drop (call $pipe_close (i32.load (i32.const 0x304))))
      (drop (call $pipe_recv (i32.load (i32.const 0x300)) (i32.const 0x400) (i32.const 16) (i64.const -1))))
    (func (export "hold") (param $len i32) (result i32)
      (drop (call $take_result (i32.const 0x300) (local.get $len)))
      (call $hold)
      (i32.const 0))
    (func $fork_one (local $pid i32)
      (local.set $pid (call $fork))
      (if (i32.eqz (local.get $pid)) (then (call $hold) (call $exit (i32.const 0))))
      (call $note (local.get $pid)))
    (func $process (param $method i32)
      (call $note (call $process_start (i32.const 0x10) (i32.const 4)
        (i32.const 0x300) (i32.const 8) (local.get $method) (i32.const 0))))
    (func $pool (param $workers i32)
      (call $note (call $pool_new (local.get $workers) (i32.const 0) (i64.const -1))))
    (func (export "_start")
      (drop (call $pipe_new (i32.const 0) (i32.const 0x300)))
      {starts}
      (i32.store8 (i32.add (i32.const 0x500) (global.get $n)) (i32.const 10))
      (i32.store (i32.const 0x200) (i32.const 0x500))
      (i32.store (i32.const 0x204) (i32.add (global.get $n) (i32.const 1)))
      (drop (call $fd_write (i32.const 1) (i32.const 0x200) (i32.const 1) (i32.const 0x208)))
      (drop (memory.grow (i32.const 80)))
      (drop (memory.grow (i32.const 160)))))"#
    )
}

const HELD_95: &str = "memory limit of the process tree reached: 95 MiB held, \
                       10 MiB more asked, the limit is 100 MiB";

fn run_under_100_mib(starts: &str) -> (std::process::Output, String) {
    let (_dir, path) = temp_file("tree.wat", guest(starts).as_bytes());
    let audit = tempfile::NamedTempFile::new().unwrap();
    let out = run_cli(&[
        "run",
        "--max-total-memory",
        "100",
        "--audit",
        audit.path().to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let log = std::fs::read_to_string(audit.path()).unwrap();
    (out, log)
}

fn assert_stops_at_the_limit(starts: &str, printed: &str, refusals: usize) {
    let (out, log) = run_under_100_mib(starts);
    let err = stderr(&out);
    assert_eq!(stdout(&out), printed, "{err}");
    // The last 10 MiB would pass the limit: the root traps, and the message
    // shows what the tree holds (root 35 MiB, two children 30 MiB each).
    assert_eq!(out.status.code(), Some(134), "{err}");
    assert!(err.contains(HELD_95), "{err}");
    // Each refused start is a limit hit in the audit log, as is the trap.
    let limits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"event\":\"limit\""))
        .collect();
    assert_eq!(
        limits.iter().filter(|l| l.contains("would bring")).count(),
        refusals,
        "{log}"
    );
    assert!(limits.iter().any(|l| l.contains(HELD_95)), "{log}");
}

#[test]
fn forks_of_a_big_instance_fail_with_enomem_at_the_tree_limit() {
    let fork3 = "(call $fork_one) (call $fork_one) (call $fork_one)";
    assert_stops_at_the_limit(fork3, "ooM\n", 1);
}

#[test]
fn process_fork_children_count_their_copy() {
    let three = "(call $process (i32.const 1)) (call $process (i32.const 1)) \
                 (call $process (i32.const 1))";
    assert_stops_at_the_limit(three, "ooM\n", 1);
}

#[test]
fn process_spawn_children_count_their_fresh_instance() {
    // A spawned child leaves its copy of the parent unused; its fresh
    // instance (30 MiB at instantiation) is what counts, from the start.
    let three = "(call $process (i32.const 2)) (call $process (i32.const 2)) \
                 (call $process (i32.const 2))";
    assert_stops_at_the_limit(three, "ooM\n", 1);
}

#[test]
fn pool_workers_count_their_copies() {
    // Three workers would need 90 MiB more: the pool is refused as a whole
    // (the two workers started are stopped); two fit.
    assert_stops_at_the_limit(
        "(call $pool (i32.const 3)) (call $pool (i32.const 2))",
        "Mo\n",
        1,
    );
}
