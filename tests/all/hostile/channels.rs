//! `queue` and `pipe`: `multiprocessing.Queue` and `Pipe` under attack.
//! Nothing here forks, so every case runs in the test process.

use super::os::{with_commands, POPEN_TRUE};
use super::{Script, Via};
use procbridge::Errno::*;

/// `"hello"` at 0x300, 100 bytes of `x` at 0x400.
fn with_messages(script: Script) -> Script {
    with_commands(script)
        .data(0x300, b"hello")
        .data(0x400, &[b'x'; 100])
}

fn put(q: &str, ptr: &str, len: &str, timeout: &str) -> String {
    format!("(call $queue_put {q} (i32.const {ptr}) (i32.const {len}) (i64.const {timeout}))")
}

fn get(q: &str, ptr: &str, cap: &str, timeout: &str) -> String {
    format!("(call $queue_get {q} (i32.const {ptr}) (i32.const {cap}) (i64.const {timeout}))")
}

fn send(c: &str, ptr: &str, len: &str) -> String {
    format!("(call $pipe_send {c} (i32.const {ptr}) (i32.const {len}))")
}

fn recv(c: &str, ptr: &str, cap: &str, timeout: &str) -> String {
    format!("(call $pipe_recv {c} (i32.const {ptr}) (i32.const {cap}) (i64.const {timeout}))")
}

const A: &str = "(global.get $a)";
const B: &str = "(global.get $b)";

pub fn queue_new_bad_arguments() -> Script {
    let new = |m: i64, b: i64, j: i64| {
        format!("(call $queue_new (i32.const {m}) (i32.const {b}) (i32.const {j}))")
    };
    Script::new(Via::Library)
        .errno(&new(-1, 0, 0), Inval)
        .errno(&new(i32::MIN as i64, 0, 0), Inval)
        .errno(&new(0, -1, 0), Inval)
        .errno(&new(0, 0, 4), Inval)
        .errno(&new(0, 0, 5), Inval)
        .errno(&new(0, 0, -1), Inval)
        .errno(&new(0, 15, 0), Inval)
        .errno(&new(0, (64 << 20) + 1, 0), Inval)
        .errno(&new(0, i32::MAX as i64, 0), Inval)
        // The smallest and largest allowed, and a huge maxsize.
        .keep("$a", &new(0, 16, 0))
        .keep("$b", &new(i32::MAX as i64, 64 << 20, 1))
        .expect(&format!("(call $queue_qsize {A})"), 0)
        .expect(&format!("(call $queue_full {B})"), 0)
        .expect(&format!("(call $queue_close {A})"), 0)
        .expect(&format!("(call $queue_close {B})"), 0)
}

/// Bad pointers, lengths and timeouts; a bad buffer loses no message.
pub fn queue_bad_pointers_and_timeouts() -> Script {
    with_messages(Script::new(Via::Library))
        .keep(
            "$a",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))",
        )
        .keep(
            "$b",
            "(call $queue_new (i32.const 0) (i32.const 64) (i32.const 0))",
        )
        .errno(&put(A, "65534", "4", "0"), Fault)
        .errno(&put(A, "-1", "2", "0"), Fault)
        .expect(&put(A, "65536", "0", "0"), 0)
        .errno(&put(A, "65536", "1", "0"), Fault)
        .errno(&put(A, "0x300", "-1", "0"), TooBig)
        .errno(&put(A, "0x300", "16777217", "0"), Fault)
        .errno(&put(A, "0x300", "67108865", "0"), TooBig)
        .errno(&put(A, "0x300", "5", "-2"), Inval)
        .errno(&put(A, "0x300", "5", "-9223372036854775808"), Inval)
        // Larger than the whole queue.
        .errno(&put(B, "0x400", "100", "-1"), TooBig)
        // The empty message put at the end of memory.
        .expect(&format!("(call $queue_empty {A})"), 0)
        .expect(&get(A, "65536", "0", "0"), 0)
        .expect(&format!("(call $queue_empty {A})"), 1)
        // Empty: no wait, a short wait, bad timeouts, bad buffers.
        .errno(&get(A, "0x900", "64", "0"), Again)
        .errno(&get(A, "0x900", "64", "1000"), TimedOut)
        .errno(&get(A, "0x900", "64", "-2"), Inval)
        .errno(&get(A, "0x900", "64", "-9223372036854775808"), Inval)
        .errno(&get(A, "65534", "4", "0"), Fault)
        .errno(&get(A, "0x900", "-1", "0"), Fault)
        .errno(&get(A, "-1", "2", "0"), Fault)
        // A huge timeout does not overflow, and does not wait when it need not.
        .expect(&put(A, "0x300", "5", "9223372036854775807"), 0)
        .expect(&put(A, "0x300", "0", "0"), 0)
        .expect(&format!("(call $queue_qsize {A})"), 2)
        .errno(&get(A, "65534", "8", "-1"), Fault)
        .errno(&get(A, "0x900", "-2147483648", "-1"), Fault)
        .expect(&format!("(call $queue_qsize {A})"), 2)
        // Too small a buffer: the length, then take_result.
        .expect(&get(A, "0x900", "2", "9223372036854775807"), 5)
        .errno("(call $take_result (i32.const 65534) (i32.const 5))", Fault)
        .expect("(call $take_result (i32.const 0x900) (i32.const 5))", 0)
        .expect("(i32.load (i32.const 0x900))", i32::from_le_bytes(*b"hell"))
        .expect(&get(A, "0x900", "0", "0"), 0)
        .errno(&get(A, "0x900", "64", "0"), Again)
        .expect(&format!("(call $queue_close {A})"), 0)
        .expect(&format!("(call $queue_close {B})"), 0)
}

/// A bounded queue is full; an unbounded one runs out of bytes.
pub fn queue_full_and_over_its_bytes() -> Script {
    with_messages(Script::new(Via::Library))
        .keep(
            "$a",
            "(call $queue_new (i32.const 2) (i32.const 0) (i32.const 0))",
        )
        .keep(
            "$b",
            "(call $queue_new (i32.const 0) (i32.const 16) (i32.const 0))",
        )
        .expect(&put(A, "0x300", "5", "0"), 0)
        .expect(&put(A, "0x300", "5", "0"), 0)
        .expect(&format!("(call $queue_full {A})"), 1)
        .errno(&put(A, "0x300", "5", "0"), Again)
        .errno(&put(A, "0x300", "5", "1000"), TimedOut)
        .errno(&put(A, "0x300", "5", "-2"), Inval)
        .expect(&format!("(call $queue_qsize {A})"), 2)
        // 8 bytes + 4 fit in 16; the next 8 + 4 do not.
        .expect(&put(B, "0x400", "8", "0"), 0)
        .errno(&put(B, "0x400", "8", "0"), NoBufs)
        // One that may wait waits for room (no getter here: its timeout).
        .errno(&put(B, "0x400", "8", "1000"), TimedOut)
        .expect(&format!("(call $queue_full {B})"), 0)
        .expect(&get(B, "0x900", "64", "0"), 8)
        .expect(&put(B, "0x400", "8", "0"), 0)
        .expect(&format!("(call $queue_close {A})"), 0)
        .expect(&format!("(call $queue_close {B})"), 0)
}

/// `task_done` and `join` on joinable and plain queues.
pub fn queue_join_and_task_done() -> Script {
    with_messages(Script::new(Via::Library))
        .keep(
            "$a",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))",
        )
        .keep(
            "$b",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 1))",
        )
        .errno(&format!("(call $queue_task_done {A})"), Inval)
        .errno(&format!("(call $queue_task_done {B})"), Inval)
        .expect(&format!("(call $queue_join {B} (i64.const 0))"), 0)
        .expect(&put(B, "0x300", "5", "0"), 0)
        .errno(&format!("(call $queue_join {B} (i64.const 0))"), Again)
        .errno(
            &format!("(call $queue_join {B} (i64.const 1000))"),
            TimedOut,
        )
        .errno(&format!("(call $queue_join {B} (i64.const -2))"), Inval)
        .expect(&get(B, "0x900", "64", "0"), 5)
        .errno(&format!("(call $queue_join {B} (i64.const 0))"), Again)
        .expect(&format!("(call $queue_task_done {B})"), 0)
        .errno(&format!("(call $queue_task_done {B})"), Inval)
        .expect(&format!("(call $queue_join {B} (i64.const -1))"), 0)
        .expect(
            &format!("(call $queue_join {B} (i64.const 9223372036854775807))"),
            0,
        )
        .expect(&format!("(call $queue_close {A})"), 0)
        .expect(&format!("(call $queue_close {B})"), 0)
}

/// Shut down: puts fail, gets drain then fail (waiting forever does not
/// hang); closed: every call is `EBADF`.
pub fn queue_after_shutdown_and_close() -> Script {
    let mut script = with_messages(Script::new(Via::Library))
        .keep(
            "$a",
            "(call $queue_new (i32.const 1) (i32.const 0) (i32.const 1))",
        )
        .expect(&put(A, "0x300", "5", "0"), 0)
        .expect(&format!("(call $queue_shutdown {A})"), 0)
        .expect(&format!("(call $queue_shutdown {A})"), 0)
        .errno(&put(A, "0x300", "5", "0"), Pipe)
        .errno(&put(A, "0x300", "5", "-1"), Pipe)
        .expect(&get(A, "0x900", "64", "-1"), 5)
        .errno(&get(A, "0x900", "64", "-1"), Pipe)
        .errno(&get(A, "0x900", "64", "0"), Pipe)
        .expect(&format!("(call $queue_empty {A})"), 1)
        .expect(&format!("(call $queue_close {A})"), 0);
    for call in queue_calls(A) {
        script = script.errno(&call, BadF);
    }
    script
}

/// Every queue call on handle `h`, with good arguments otherwise.
fn queue_calls(h: &str) -> Vec<String> {
    vec![
        put(h, "0x300", "5", "0"),
        put(h, "0x300", "5", "-1"),
        get(h, "0x900", "64", "0"),
        get(h, "0x900", "64", "-1"),
        format!("(call $queue_qsize {h})"),
        format!("(call $queue_empty {h})"),
        format!("(call $queue_full {h})"),
        format!("(call $queue_shutdown {h})"),
        format!("(call $queue_task_done {h})"),
        format!("(call $queue_join {h} (i64.const 0))"),
        format!("(call $queue_join {h} (i64.const -1))"),
        format!("(call $queue_close {h})"),
    ]
}

/// Every pipe call on handle `h`, with good arguments otherwise.
fn pipe_calls(h: &str) -> Vec<String> {
    vec![
        send(h, "0x300", "5"),
        recv(h, "0x900", "64", "0"),
        recv(h, "0x900", "64", "-1"),
        format!("(call $pipe_poll {h} (i64.const 0))"),
        format!("(call $pipe_poll {h} (i64.const -1))"),
        format!("(call $pipe_close {h})"),
    ]
}

/// Forged handles, and handles of the other kinds (a pipe end, a popen
/// handle to queue calls; a queue handle to pipe calls).
pub fn channel_forged_and_wrong_kind_handles() -> Script {
    let mut script = with_messages(Script::new(Via::Library))
        .keep(
            "$a",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 1))",
        )
        .expect("(call $pipe_new (i32.const 1) (i32.const 0x800))", 0)
        .keep("$b", "(i32.load (i32.const 0x800))")
        .keep("$c", POPEN_TRUE);
    let forged = [
        "(i32.const 0)",
        "(i32.const -1)",
        "(i32.const 7)",
        "(i32.const -2147483648)",
        "(i32.add (global.get $a) (i32.const 65536))",
        "(global.get $c)",
    ];
    for h in forged.iter().copied().chain([B]) {
        for call in queue_calls(h) {
            script = script.errno(&call, BadF);
        }
    }
    for h in forged.iter().copied().chain([A]) {
        for call in pipe_calls(h) {
            script = script.errno(&call, BadF);
        }
    }
    // Still usable.
    script
        .expect(&put(A, "0x300", "5", "0"), 0)
        .expect(&format!("(call $queue_qsize {A})"), 1)
        .expect(&send(B, "0x300", "5"), 0)
        .expect(&format!("(call $queue_close {A})"), 0)
        .expect(&format!("(call $pipe_close {B})"), 0)
        .expect("(call $pipe_close (i32.load (i32.const 0x804)))", 0)
        .expect(
            "(call $popen_wait (global.get $c) (i64.const -1) (i32.const 0x900))",
            0,
        )
        .expect("(call $popen_close (global.get $c))", 0)
}

pub fn pipe_new_bad_arguments() -> Script {
    Script::new(Via::Library)
        .errno("(call $pipe_new (i32.const 2) (i32.const 0x800))", Inval)
        .errno("(call $pipe_new (i32.const -1) (i32.const 0x800))", Inval)
        .errno("(call $pipe_new (i32.const 1) (i32.const 65532))", Fault)
        .errno("(call $pipe_new (i32.const 1) (i32.const 65529))", Fault)
        .errno("(call $pipe_new (i32.const 0) (i32.const -1))", Fault)
        .errno("(call $pipe_new (i32.const 0) (i32.const -4))", Fault)
        // Writes the two handles at the very end of memory.
        .expect("(call $pipe_new (i32.const 1) (i32.const 65528))", 0)
        .keep("$a", "(i32.load (i32.const 65528))")
        .keep("$b", "(i32.load (i32.const 65532))")
        .expect(&format!("(call $pipe_close {A})"), 0)
        .expect(&format!("(call $pipe_close {B})"), 0)
}

/// Bad pointers, lengths and timeouts; a bad buffer loses no message.
pub fn pipe_bad_pointers_and_timeouts() -> Script {
    with_messages(Script::new(Via::Library))
        .expect("(call $pipe_new (i32.const 1) (i32.const 0x800))", 0)
        .keep("$a", "(i32.load (i32.const 0x800))")
        .keep("$b", "(i32.load (i32.const 0x804))")
        .errno(&send(A, "65534", "4"), Fault)
        .errno(&send(A, "-1", "2"), Fault)
        .errno(&send(A, "0x300", "-1"), TooBig)
        .errno(&send(A, "0x300", "16777217"), TooBig)
        .errno(&recv(B, "0x900", "64", "0"), Again)
        .errno(&recv(B, "0x900", "64", "1000"), TimedOut)
        .errno(&recv(B, "0x900", "64", "-2"), Inval)
        .errno(&recv(B, "0x900", "64", "-9223372036854775808"), Inval)
        .errno(&recv(B, "65534", "4", "0"), Fault)
        .errno(&recv(B, "0x900", "-1", "0"), Fault)
        .expect(&format!("(call $pipe_poll {B} (i64.const 0))"), 0)
        .expect(&format!("(call $pipe_poll {B} (i64.const 1000))"), 0)
        .errno(&format!("(call $pipe_poll {B} (i64.const -2))"), Inval)
        .expect(&send(A, "0x300", "5"), 0)
        .expect(&send(A, "0x300", "0"), 0)
        .expect(
            &format!("(call $pipe_poll {B} (i64.const 9223372036854775807))"),
            1,
        )
        .errno(&recv(B, "65534", "8", "-1"), Fault)
        .expect(&recv(B, "0x900", "2", "9223372036854775807"), 5)
        .expect("(call $take_result (i32.const 0x900) (i32.const 5))", 0)
        .expect("(i32.load (i32.const 0x900))", i32::from_le_bytes(*b"hell"))
        .expect(&recv(B, "0x900", "64", "-1"), 0)
        // Duplex: the other way too.
        .expect(&send(B, "0x300", "5"), 0)
        .expect(&recv(A, "0x900", "64", "-1"), 5)
        .expect(&format!("(call $pipe_close {A})"), 0)
        .expect(&format!("(call $pipe_close {B})"), 0)
}

/// One-way ends used the wrong way; sends and receives after the other end
/// closed (no hang, no `SIGPIPE`); closed ends reused.
pub fn pipe_wrong_direction_and_closed_ends() -> Script {
    let mut script = with_messages(Script::new(Via::Library))
        .expect("(call $pipe_new (i32.const 0) (i32.const 0x800))", 0)
        .keep("$a", "(i32.load (i32.const 0x800))")
        .keep("$b", "(i32.load (i32.const 0x804))")
        .errno(&send(A, "0x300", "5"), BadF)
        .errno(&recv(B, "0x900", "64", "0"), BadF)
        .errno(&recv(B, "0x900", "64", "-1"), BadF)
        .expect(&send(B, "0x300", "5"), 0)
        .expect(&format!("(call $pipe_close {B})"), 0)
        // The message sent before the close still arrives; then end-of-file.
        .expect(&recv(A, "0x900", "64", "-1"), 5)
        .errno(&recv(A, "0x900", "64", "-1"), Pipe)
        .errno(&recv(A, "0x900", "64", "0"), Pipe)
        .expect(&format!("(call $pipe_poll {A} (i64.const -1))"), 1)
        .expect(&format!("(call $pipe_close {A})"), 0)
        // Duplex: the other end closed.
        .expect("(call $pipe_new (i32.const 1) (i32.const 0x800))", 0)
        .keep("$c", "(i32.load (i32.const 0x800))")
        .keep("$d", "(i32.load (i32.const 0x804))")
        .expect("(call $pipe_close (global.get $d))", 0)
        .errno(&send("(global.get $c)", "0x300", "5"), Pipe)
        .errno(&send("(global.get $c)", "0x400", "100"), Pipe)
        .errno(&recv("(global.get $c)", "0x900", "64", "-1"), Pipe)
        .expect("(call $pipe_close (global.get $c))", 0);
    for h in [A, B, "(global.get $c)", "(global.get $d)"] {
        for call in pipe_calls(h) {
            script = script.errno(&call, BadF);
        }
    }
    script
}

/// A full handle table: `EMFILE`, and a pipe whose second handle does not
/// fit takes no slot and writes nothing. A pool is refused before any
/// worker starts (nothing forks here).
pub fn channels_handle_table_full() -> Script {
    let new_queue = "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))";
    let new_pipe = "(call $pipe_new (i32.const 1) (i32.const 0x800))";
    Script::new(Via::Library)
        .max_handles(3)
        .keep("$a", new_queue)
        .keep("$b", new_queue)
        .errno(new_pipe, MFile)
        .expect("(i32.load (i32.const 0x800))", 0)
        .expect("(i32.load (i32.const 0x804))", 0)
        .keep("$c", new_queue)
        .errno(new_queue, MFile)
        .errno(
            "(call $pool_new (i32.const 1) (i32.const 0) (i64.const -1))",
            MFile,
        )
        .expect(&format!("(call $queue_close {B})"), 0)
        .expect("(call $queue_close (global.get $c))", 0)
        .expect(new_pipe, 0)
        .errno(new_queue, MFile)
        .errno(new_pipe, MFile)
        .expect("(call $pipe_close (i32.load (i32.const 0x800)))", 0)
        .expect("(call $pipe_close (i32.load (i32.const 0x804)))", 0)
        .expect(&format!("(call $queue_close {A})"), 0)
        .keep("$a", new_queue)
        .keep("$b", new_queue)
        .keep("$c", new_queue)
}
