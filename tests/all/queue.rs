//! `multiprocessing.Queue` within one guest (the `queue_probe` guest), and
//! the queue host functions called with bad arguments from WAT. Queues
//! across OS processes: `queue_procs.rs` and the host's `channel` module.

use crate::support::*;
use procbridge::Errno;

#[test]
fn put_and_get_keep_order_and_types() {
    assert_eq!(
        queue_probe(&["order"]),
        [
            "qsize 5",
            "get A",
            "get B",
            "get C",
            "get 42",
            "get [1, 2, 3]",
            "empty true"
        ]
    );
}

#[test]
fn timeouts_wait_then_fail() {
    assert_eq!(
        queue_probe(&["timeouts"]),
        [
            "get_timeout Err(queue.Empty: the queue stayed empty until the timeout) waited true",
            "put_timeout Err(queue.Full: the queue stayed full until the timeout) waited true",
            "get_timeout Ok(\"x\")"
        ]
    );
}

#[test]
fn nowait_errors_are_pythons_empty_and_full() {
    assert_eq!(
        queue_probe(&["nowait"]),
        [
            "get_nowait Err(queue.Empty: the queue is empty)",
            "put_nowait Ok(())",
            "put_nowait Err(queue.Full: the queue is full)",
            "get_nowait Ok(\"a\")"
        ]
    );
}

#[test]
fn maxsize_full_and_empty() {
    assert_eq!(
        queue_probe(&["maxsize"]),
        [
            "empty true full false qsize 0",
            "empty false full true qsize 2",
            "unbounded full false qsize 1000"
        ]
    );
}

#[test]
fn a_closed_queue_handle_is_ebadf() {
    assert_eq!(
        queue_probe(&["close"]),
        [
            "put after close Some(BadF)",
            "get after close Some(BadF)",
            "qsize after close Err(BadF)",
            "close again Err(BadF)"
        ]
    );
}

#[test]
fn shutdown_refuses_puts_and_drains_gets() {
    assert_eq!(
        queue_probe(&["shutdown"]),
        [
            "put Err(queue.ShutDown: the queue is shut down)",
            "get Ok(\"left\")",
            "get Err(queue.ShutDown: the queue is shut down)",
            "get_nowait Err(queue.ShutDown: the queue is shut down)"
        ]
    );
}

#[test]
fn joinable_queue_counts_tasks() {
    assert_eq!(
        queue_probe(&["joinable"]),
        [
            "join empty ok",
            "join_timeout Err(TimedOut)",
            "done task 1",
            "done task 2",
            "join ok",
            "task_done extra Err(Inval)",
            "task_done plain Err(Inval)",
            "join plain Err(Inval)"
        ]
    );
}

#[test]
fn forged_foreign_and_wrong_kind_handles_are_ebadf() {
    let lines = queue_probe(&["bad_handles"]);
    assert_eq!(lines.len(), 11, "{lines:?}");
    for line in &lines {
        assert!(
            line.ends_with("Some(BadF)") || line.ends_with("Err(BadF)"),
            "{line}"
        );
    }
}

#[test]
fn a_flooding_guest_gets_an_error_not_host_memory() {
    assert_eq!(
        queue_probe(&["flood"]),
        [
            // 1024 bytes hold nine 104-byte records.
            "flood put 9 then Some(NoBufs)",
            "full Full",
            "waiting put Some(TimedOut)",
            "too big Some(TooBig)",
            "limit Err(Inval)"
        ]
    );
}

#[test]
fn an_unbounded_queue_grows_as_messages_wait() {
    // It used to stop at 8 MiB with ENOBUFS.
    assert_eq!(queue_probe(&["grow"]), ["grew to 40 MiB in order true"]);
}

#[test]
fn large_messages_and_bad_decodes() {
    assert_eq!(
        queue_probe(&["big", "decode"]),
        [
            "queue big true small true",
            "pipe big true small",
            "u32 Some(Inval)",
            "string Some(Inval)"
        ]
    );
}

/// A module that runs `body` (instructions leaving an i32) and exits 0 if
/// it equals `expect`, else 100.
fn wat_expect(body: &str, expect: i32) -> i32 {
    let wat = format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (import "procbridge" "queue_new" (func $new (param i32 i32 i32) (result i32)))
            (import "procbridge" "queue_put" (func $put (param i32 i32 i32 i64) (result i32)))
            (import "procbridge" "queue_get" (func $get (param i32 i32 i32 i64) (result i32)))
            (import "procbridge" "queue_join" (func $join (param i32 i64) (result i32)))
            (import "procbridge" "queue_close" (func $close (param i32) (result i32)))
            (import "procbridge" "take_result" (func $take (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "hello")
            (global $q (mut i32) (i32.const 0))
            (func (export "_start")
              (global.set $q (call $new (i32.const 0) (i32.const 0) (i32.const 0)))
              (if (i32.ne (block (result i32) {body}) (i32.const {expect}))
                (then (call $exit (i32.const 100))))
              (call $exit (i32.const 0))))"#
    );
    run_wat(&wat).unwrap()
}

#[test]
fn bad_arguments_get_their_errno() {
    let cases = [
        // Out-of-bounds messages and buffers.
        (
            "(call $put (global.get $q) (i32.const 65534) (i32.const 5) (i64.const 0))",
            Errno::Fault,
        ),
        (
            "(call $put (global.get $q) (i32.const -1) (i32.const 1) (i64.const 0))",
            Errno::Fault,
        ),
        (
            "(call $put (global.get $q) (i32.const 0) (i32.const -1) (i64.const 0))",
            Errno::TooBig,
        ),
        (
            "(drop (call $put (global.get $q) (i32.const 0) (i32.const 5) (i64.const 0))) \
          (call $get (global.get $q) (i32.const 65535) (i32.const 5) (i64.const 0))",
            Errno::Fault,
        ),
        // Negative timeouts other than -1.
        (
            "(call $put (global.get $q) (i32.const 0) (i32.const 5) (i64.const -2))",
            Errno::Inval,
        ),
        (
            "(call $get (global.get $q) (i32.const 0) (i32.const 5) (i64.const -9))",
            Errno::Inval,
        ),
        ("(call $join (global.get $q) (i64.const -1))", Errno::Inval),
        // Bad creation arguments.
        (
            "(call $new (i32.const -1) (i32.const 0) (i32.const 0))",
            Errno::Inval,
        ),
        (
            "(call $new (i32.const 0) (i32.const -5) (i32.const 0))",
            Errno::Inval,
        ),
        (
            "(call $new (i32.const 0) (i32.const 8) (i32.const 0))",
            Errno::Inval,
        ),
        (
            "(call $new (i32.const 0) (i32.const 0) (i32.const 4))",
            Errno::Inval,
        ),
        // Empty queue, forged and closed handles.
        (
            "(call $get (global.get $q) (i32.const 0) (i32.const 5) (i64.const 0))",
            Errno::Again,
        ),
        (
            "(call $get (i32.const 77) (i32.const 0) (i32.const 5) (i64.const 0))",
            Errno::BadF,
        ),
        (
            "(drop (call $close (global.get $q))) \
          (call $put (global.get $q) (i32.const 0) (i32.const 5) (i64.const 0))",
            Errno::BadF,
        ),
    ];
    for (body, errno) in cases {
        assert_eq!(
            wat_expect(body, errno.to_return()),
            0,
            "{body} should be {errno}"
        );
    }
}

#[test]
fn a_bad_get_buffer_loses_no_message() {
    // The failed get leaves the message; the next get delivers its 5 bytes.
    let body = "(drop (call $put (global.get $q) (i32.const 0) (i32.const 5) (i64.const -1))) \
                (drop (call $get (global.get $q) (i32.const 70000) (i32.const 5) (i64.const 0))) \
                (call $get (global.get $q) (i32.const 100) (i32.const 5) (i64.const 0))";
    assert_eq!(wat_expect(body, 5), 0);
    // A buffer too small leaves the message waiting for take_result.
    let body = "(drop (call $put (global.get $q) (i32.const 0) (i32.const 5) (i64.const -1))) \
                (drop (call $get (global.get $q) (i32.const 100) (i32.const 2) (i64.const 0))) \
                (call $take (i32.const 100) (i32.const 5))";
    assert_eq!(wat_expect(body, 0), 0);
}
