//! `multiprocessing.Pipe` within one guest (the `queue_probe` guest), and
//! the pipe host functions called with bad arguments from WAT. End-of-file
//! on the death of a peer process: `queue_procs.rs` and the host's
//! `channel` module.

use crate::support::*;
use procbridge::Errno;

#[test]
fn send_recv_poll_and_one_way_pipes() {
    assert_eq!(
        queue_probe(&["pipe"]),
        [
            "poll true",
            "recv ping-pong",
            "poll empty false",
            "recv_timeout Err(TimeoutError: no message came before the timeout) waited true",
            "one-way send on reader Err(BadF)",
            "one-way recv on writer Err(BadF)",
            "one-way 1.5"
        ]
    );
}

#[test]
fn closing_one_end_is_end_of_file_at_the_other() {
    assert_eq!(
        queue_probe(&["pipe_eof"]),
        [
            "recv Ok(\"last words\")",
            "poll at eof true",
            "recv true",
            "send Err(Pipe)",
            "send after close Err(BadF)"
        ]
    );
}

fn wat_expect(body: &str, expect: i32) -> i32 {
    let wat = format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (import "procbridge" "pipe_new" (func $new (param i32 i32) (result i32)))
            (import "procbridge" "pipe_send" (func $send (param i32 i32 i32) (result i32)))
            (import "procbridge" "pipe_recv" (func $recv (param i32 i32 i32 i64) (result i32)))
            (import "procbridge" "pipe_poll" (func $poll (param i32 i64) (result i32)))
            (import "procbridge" "pipe_close" (func $close (param i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "hello")
            (func $a (result i32) (i32.load (i32.const 16)))
            (func $b (result i32) (i32.load (i32.const 20)))
            (func (export "_start")
              (if (i32.ne (call $new (i32.const 1) (i32.const 16)) (i32.const 0))
                (then (call $exit (i32.const 99))))
              (if (i32.ne (block (result i32) {body}) (i32.const {expect}))
                (then (call $exit (i32.const 100))))
              (call $exit (i32.const 0))))"#
    );
    run_wat(&wat).unwrap()
}

#[test]
fn bad_arguments_get_their_errno() {
    let cases = [
        ("(call $new (i32.const 1) (i32.const 65532))", Errno::Fault),
        ("(call $new (i32.const 1) (i32.const -4))", Errno::Fault),
        ("(call $new (i32.const 2) (i32.const 24))", Errno::Inval),
        ("(call $send (call $a) (i32.const 65534) (i32.const 5))", Errno::Fault),
        ("(call $send (call $a) (i32.const 0) (i32.const -1))", Errno::TooBig),
        ("(drop (call $send (call $a) (i32.const 0) (i32.const 5))) \
          (call $recv (call $b) (i32.const 65535) (i32.const 5) (i64.const -1))", Errno::Fault),
        ("(call $recv (call $b) (i32.const 0) (i32.const 5) (i64.const -3))", Errno::Inval),
        ("(call $poll (call $b) (i64.const -3))", Errno::Inval),
        ("(call $recv (call $b) (i32.const 0) (i32.const 5) (i64.const 0))", Errno::Again),
        ("(call $recv (call $b) (i32.const 0) (i32.const 5) (i64.const 1000))", Errno::TimedOut),
        ("(call $send (i32.const 4242) (i32.const 0) (i32.const 5))", Errno::BadF),
        ("(drop (call $close (call $a))) (call $send (call $a) (i32.const 0) (i32.const 5))", Errno::BadF),
        ("(drop (call $close (call $a))) (call $recv (call $b) (i32.const 0) (i32.const 5) (i64.const -1))", Errno::Pipe),
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
fn a_bad_recv_buffer_loses_no_message() {
    let body = "(drop (call $send (call $a) (i32.const 0) (i32.const 5))) \
                (drop (call $recv (call $b) (i32.const 70000) (i32.const 5) (i64.const -1))) \
                (call $recv (call $b) (i32.const 100) (i32.const 5) (i64.const 0))";
    assert_eq!(wat_expect(body, 5), 0);
}
