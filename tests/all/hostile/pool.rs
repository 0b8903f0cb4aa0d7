//! `pool`: `multiprocessing.Pool` under attack. Cases that start workers
//! fork, so they run through the CLI.

use super::process::with_tasks;
use super::{Script, Via};
use procbridge::Errno::*;

/// An `echo` task (returns its argument), and argument lists: three
/// one-byte items at 0x700 (15 bytes), one item `hang` needs at 0x720
/// (4 bytes), a list whose item runs past its end at 0x730 (8 bytes).
fn with_pool_tasks(via: Via) -> Script {
    with_tasks(via)
        .func(
            r#"(func (export "echo") (param $n i32) (result i32)
  (drop (call $take_result (i32.const 0xA00) (local.get $n)))
  (drop (call $task_return (i32.const 0xA00) (local.get $n))) (i32.const 0))"#,
        )
        .data(0x1c0, b"echo")
        .list(0x700, &[b"a", b"b", b"c"])
        .list(0x720, &[b""])
        .data(0x730, &[100, 0, 0, 0, b'x', b'y', b'z', b'w'])
}

fn submit(h: &str, name: (u32, i32), items: (i32, i32), chunksize: i32) -> String {
    format!(
        "(call $pool_submit {h} (i32.const {}) (i32.const {}) (i32.const {}) (i32.const {}) \
         (i32.const {chunksize}))",
        name.0, name.1, items.0, items.1
    )
}

const H: &str = "(global.get $a)";
const ID: &str = "(global.get $b)";
/// `echo` over the three items at 0x700.
const ECHO: ((u32, i32), (i32, i32)) = ((0x1c0, 4), (0x700, 15));
/// `hang` (runs `sleep 1`) over one item.
const HANG: ((u32, i32), (i32, i32)) = ((0x160, 4), (0x720, 4));

/// Every pool call on handle `h`, with good arguments otherwise.
fn pool_calls(h: &str) -> Vec<String> {
    vec![
        submit(h, ECHO.0, ECHO.1, 1),
        format!("(call $pool_result_ready {h} (i32.const 1))"),
        format!("(call $pool_result_wait {h} (i32.const 1) (i64.const 0))"),
        format!("(call $pool_result_wait {h} (i32.const 1) (i64.const -1))"),
        format!("(call $pool_result_get {h} (i32.const 1) (i64.const -1))"),
        format!("(call $pool_result_next {h} (i32.const 1) (i32.const 0) (i64.const -1))"),
        format!("(call $pool_result_drop {h} (i32.const 1))"),
        format!("(call $pool_pids {h})"),
        format!("(call $pool_close {h})"),
        format!("(call $pool_terminate {h})"),
        format!("(call $pool_join {h} (i64.const -1))"),
        format!("(call $pool_drop {h})"),
        format!("(call $pool_share {h} (i32.const 65537))"),
        format!("(call $pool_retry_lost {h} (i32.const 1))"),
    ]
}

/// `cluster_call` from a job without a cluster: bad pointers and names are
/// refused first, then the call itself (`ENOSYS`); nothing is sent.
pub fn cluster_call_without_a_cluster() -> Script {
    let call = |name: &str, args: &str| format!("(call $cluster_call {name} {args})");
    with_pool_tasks(Via::Library)
        .data(0x700, b"python")
        .errno(
            &call(
                "(i32.const -1) (i32.const 6)",
                "(i32.const 0) (i32.const 0)",
            ),
            Fault,
        )
        .errno(
            &call(
                "(i32.const 0x700) (i32.const 6)",
                "(i32.const 65535) (i32.const 2)",
            ),
            Fault,
        )
        .errno(
            &call(
                "(i32.const 0x700) (i32.const 257)",
                "(i32.const 0) (i32.const 0)",
            ),
            TooBig,
        )
        .errno(
            &call(
                "(i32.const 0x700) (i32.const -1)",
                "(i32.const 0) (i32.const 0)",
            ),
            TooBig,
        )
        .errno(
            &call(
                "(i32.const 0x1a0) (i32.const 2)",
                "(i32.const 0) (i32.const 0)",
            ),
            Inval,
        )
        .errno(
            &call(
                "(i32.const 0x700) (i32.const 6)",
                "(i32.const 0) (i32.const 4)",
            ),
            NoSys,
        )
}

/// Bad pool settings (refused before any worker starts) and forged
/// handles or handles of other kinds; nothing forks.
pub fn pool_bad_settings_and_handles() -> Script {
    let new = |p: i32, m: i32, t: i64| {
        format!("(call $pool_new (i32.const {p}) (i32.const {m}) (i64.const {t}))")
    };
    let mut script = with_pool_tasks(Via::Library)
        .errno(&new(0, 0, -1), Inval)
        .errno(&new(-1, 0, -1), Inval)
        .errno(&new(257, 0, -1), Inval)
        .errno(&new(i32::MIN, 0, -1), Inval)
        .errno(&new(1, -1, -1), Inval)
        .errno(&new(1, 0, 0), Inval)
        .errno(&new(1, 0, -2), Inval)
        .errno(&new(1, 0, i64::MIN), Inval)
        .keep(
            "$c",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))",
        );
    for h in [
        "(i32.const 0)",
        "(i32.const -1)",
        "(i32.const 1)",
        "(i32.const 7)",
        "(i32.const -2147483648)",
        "(global.get $c)",
    ] {
        for call in pool_calls(h) {
            script = script.errno(&call, BadF);
        }
    }
    script.expect("(call $queue_close (global.get $c))", 0)
}

/// Bad submissions, forged result ids, odd orders: join before close,
/// submit after close, a result dropped twice, the pool handle given to
/// other kinds' calls, everything after `pool_drop`.
pub fn pool_odd_orders() -> Script {
    let ready = |id: &str| format!("(call $pool_result_ready {H} {id})");
    let wait = |id: &str, t: &str| format!("(call $pool_result_wait {H} {id} (i64.const {t}))");
    let get = |id: &str, t: &str| format!("(call $pool_result_get {H} {id} (i64.const {t}))");
    let next = |id: &str, order: i32, t: &str| {
        format!("(call $pool_result_next {H} {id} (i32.const {order}) (i64.const {t}))")
    };
    let drop = |id: &str| format!("(call $pool_result_drop {H} {id})");
    let mut script = with_pool_tasks(Via::Cli)
        .keep(
            "$a",
            "(call $pool_new (i32.const 2) (i32.const 0) (i64.const -1))",
        )
        .errno(&format!("(call $pool_join {H} (i64.const 0))"), Inval)
        .errno(&format!("(call $pool_join {H} (i64.const -1))"), Inval)
        .expect(&format!("(call $pool_pids {H})"), 8)
        // Bad submissions.
        .errno(&submit(H, (65534, 4), ECHO.1, 1), Fault)
        .errno(&submit(H, (0x1c0, -1), ECHO.1, 1), TooBig)
        .errno(&submit(H, (0x1c0, 257), ECHO.1, 1), TooBig)
        .errno(&submit(H, (0x1a0, 2), ECHO.1, 1), Inval)
        .errno(&submit(H, (0x1b0, 4), ECHO.1, 1), NoEnt)
        .errno(&submit(H, (0x1c0, 0), ECHO.1, 1), NoEnt)
        .errno(&submit(H, (0x190, 6), ECHO.1, 1), NoEnt)
        .errno(&submit(H, (0x180, 6), ECHO.1, 1), Inval)
        .errno(&submit(H, (0x170, 5), ECHO.1, 1), Inval)
        .errno(&submit(H, ECHO.0, (65530, 15), 1), Fault)
        .errno(&submit(H, ECHO.0, (-1, 15), 1), Fault)
        .errno(&submit(H, ECHO.0, (0x700, -1), 1), TooBig)
        .errno(&submit(H, ECHO.0, (0x730, 8), 1), Inval)
        .errno(&submit(H, ECHO.0, (0x700, 14), 1), Inval)
        .errno(&submit(H, ECHO.0, ECHO.1, 0), Inval)
        .errno(&submit(H, ECHO.0, ECHO.1, -1), Inval)
        // Forged result ids before any submission.
        .errno(&ready("(i32.const 0)"), Inval)
        .errno(&get("(i32.const 1)", "-1"), Inval);
    for id in [
        "(i32.const 0)",
        "(i32.const -1)",
        "(i32.const 12345)",
        "(i32.const -2147483648)",
    ] {
        script = script
            .errno(&ready(id), Inval)
            .errno(&wait(id, "-1"), Inval)
            .errno(&get(id, "-1"), Inval)
            .errno(&next(id, 0, "-1"), Inval)
            .errno(&drop(id), Inval);
    }
    script = script
        // A good submission with a huge chunksize: three items, each one
        // byte: (4 + 1 + 1) bytes each.
        .keep("$b", &submit(H, ECHO.0, ECHO.1, i32::MAX))
        .errno(&wait(ID, "-2"), Inval)
        .errno(&get(ID, "-9223372036854775808"), Inval)
        .errno(&next(ID, 2, "-1"), Inval)
        .errno(&next(ID, -1, "-1"), Inval)
        .errno(&next(ID, 0, "-2"), Inval)
        .expect(&get(ID, "9223372036854775807"), 18)
        .expect(&get(ID, "0"), 18)
        .expect("(call $take_result (i32.const 0x900) (i32.const 18))", 0)
        .expect("(i32.load8_u (i32.const 0x904))", 0)
        .expect("(i32.load8_u (i32.const 0x905))", i32::from(b'a'))
        .expect("(i32.load8_u (i32.const 0x911))", i32::from(b'c'))
        .expect(&ready(ID), 1)
        .expect(&next(ID, 0, "-1"), 6)
        .expect(&next(ID, 0, "0"), 6)
        .expect(&next(ID, 0, "-1"), 6)
        .expect(&next(ID, 0, "-1"), 0)
        .expect(&next(ID, 0, "-1"), 0)
        // Not the next id.
        .errno(&ready(&format!("(i32.add {ID} (i32.const 1))")), Inval)
        .expect(&drop(ID), 0)
        .errno(&drop(ID), Inval)
        .errno(&get(ID, "-1"), Inval)
        .errno(&ready(ID), Inval)
        // A task still running: short waits time out.
        .keep("$b", &submit(H, HANG.0, HANG.1, 1))
        .expect(&ready(ID), 0)
        .errno(&wait(ID, "0"), TimedOut)
        .errno(&wait(ID, "1000"), TimedOut)
        .errno(&get(ID, "1000"), TimedOut)
        .errno(&next(ID, 1, "0"), TimedOut)
        .errno(&next(ID, 0, "1000"), TimedOut)
        // The pool handle given to other kinds' calls.
        .errno(
            &format!("(call $queue_get {H} (i32.const 0x900) (i32.const 64) (i64.const 0))"),
            BadF,
        )
        .errno(
            &format!("(call $pipe_send {H} (i32.const 0x900) (i32.const 1))"),
            BadF,
        )
        .errno(&format!("(call $process_join {H} (i64.const 0))"), BadF)
        .errno(&format!("(call $popen_close {H})"), BadF)
        // Sharing with the workers: only open queues and pipe ends, and
        // sharing one twice is harmless.
        .errno(&format!("(call $pool_share {H} (i32.const 12345))"), BadF)
        .errno(&format!("(call $pool_share {H} (i32.const 0))"), BadF)
        .errno(&format!("(call $pool_share {H} (i32.const -1))"), BadF)
        .errno(&format!("(call $pool_share {H} {H})"), Inval)
        // Whether lost remote tasks run again: 0 or 1 only (1, the
        // setting it has, changes nothing).
        .errno(&format!("(call $pool_retry_lost {H} (i32.const 2))"), Inval)
        .errno(
            &format!("(call $pool_retry_lost {H} (i32.const -1))"),
            Inval,
        )
        .expect(&format!("(call $pool_retry_lost {H} (i32.const 1))"), 0)
        .keep(
            "$c",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))",
        )
        .expect(&format!("(call $pool_share {H} (global.get $c))"), 0)
        .expect(&format!("(call $pool_share {H} (global.get $c))"), 0)
        .expect("(call $queue_close (global.get $c))", 0)
        .errno(&format!("(call $pool_share {H} (global.get $c))"), BadF)
        // Close: no more submissions; the queued task still runs.
        .expect(&format!("(call $pool_close {H})"), 0)
        .expect(&format!("(call $pool_close {H})"), 0)
        .errno(&submit(H, ECHO.0, ECHO.1, 1), Inval)
        .errno(&format!("(call $pool_share {H} (i32.const 12345))"), Inval)
        .errno(&format!("(call $pool_join {H} (i64.const 0))"), TimedOut)
        .errno(&format!("(call $pool_join {H} (i64.const 1000))"), TimedOut)
        .errno(&format!("(call $pool_join {H} (i64.const -2))"), Inval)
        .expect(&format!("(call $pool_join {H} (i64.const -1))"), 0)
        .expect(&format!("(call $pool_join {H} (i64.const 0))"), 0)
        .expect(&ready(ID), 1)
        .expect(&get(ID, "-1"), 5)
        .expect("(call $take_result (i32.const 0x900) (i32.const 5))", 0)
        .expect("(i32.load8_u (i32.const 0x904))", 0)
        .expect(&format!("(call $pool_pids {H})"), 0)
        .expect(&format!("(call $pool_terminate {H})"), 0)
        .expect(&format!("(call $pool_drop {H})"), 0);
    for call in pool_calls(H) {
        script = script.errno(&call, BadF);
    }
    script
}

/// Terminate with a task running: it ends with status 4, join returns at
/// once, submissions are refused.
pub fn pool_terminate_in_the_middle() -> Script {
    with_pool_tasks(Via::Cli)
        .keep(
            "$a",
            "(call $pool_new (i32.const 1) (i32.const 0) (i64.const -1))",
        )
        .keep("$b", &submit(H, HANG.0, HANG.1, 1))
        .expect(&format!("(call $pool_terminate {H})"), 0)
        .expect(&format!("(call $pool_terminate {H})"), 0)
        .keep(
            "$c",
            &format!("(call $pool_result_get {H} {ID} (i64.const 0))"),
        )
        .expect("(call $take_result (i32.const 0x900) (global.get $c))", 0)
        .expect("(i32.load8_u (i32.const 0x904))", 4)
        .expect(&format!("(call $pool_join {H} (i64.const 0))"), 0)
        .errno(&submit(H, ECHO.0, ECHO.1, 1), Inval)
        .expect(&format!("(call $pool_close {H})"), 0)
        .expect(&format!("(call $pool_pids {H})"), 0)
        .expect(&format!("(call $pool_drop {H})"), 0)
        .errno(&format!("(call $pool_drop {H})"), BadF)
}

/// Tasks that trap, exit, fail or run over the task timeout, one worker
/// with one task per child; a huge task timeout does not overflow.
pub fn pool_tasks_that_go_wrong() -> Script {
    let mut script = with_pool_tasks(Via::Cli).keep(
        "$a",
        "(call $pool_new (i32.const 1) (i32.const 1) (i64.const 200000))",
    );
    // trap, exit7, fails: failed (1); hang: timed out (3); echo: ok (0).
    for (name, want) in [
        ((0x120u32, 4), 1),
        ((0x110, 5), 1),
        ((0x130, 5), 1),
        ((0x160, 4), 3),
        ((0x1c0, 4), 0),
    ] {
        script = script
            .keep("$b", &submit(H, name, HANG.1, 1))
            .keep(
                "$c",
                &format!("(call $pool_result_get {H} {ID} (i64.const -1))"),
            )
            .expect("(call $take_result (i32.const 0x900) (global.get $c))", 0)
            .expect("(i32.load8_u (i32.const 0x904))", want);
    }
    script
        .expect(&format!("(call $pool_drop {H})"), 0)
        .keep(
            "$a",
            "(call $pool_new (i32.const 1) (i32.const 0) (i64.const 9223372036854775807))",
        )
        .keep("$b", &submit(H, ECHO.0, ECHO.1, 2))
        .expect(
            &format!("(call $pool_result_get {H} {ID} (i64.const -1))"),
            18,
        )
        .expect(&format!("(call $pool_close {H})"), 0)
        .expect(&format!("(call $pool_join {H} (i64.const -1))"), 0)
        .expect(&format!("(call $pool_drop {H})"), 0)
}

/// The tree's process limit: a pool that would pass it is `EAGAIN`, and
/// starts no worker.
pub fn pool_process_limit_is_eagain() -> Script {
    with_pool_tasks(Via::Cli)
        .cli_arg("--max-processes")
        .cli_arg("2")
        .errno(
            "(call $pool_new (i32.const 3) (i32.const 0) (i64.const -1))",
            Again,
        )
        .errno(
            "(call $pool_new (i32.const 256) (i32.const 0) (i64.const -1))",
            Again,
        )
        .keep(
            "$a",
            "(call $pool_new (i32.const 2) (i32.const 0) (i64.const -1))",
        )
        .errno(
            "(call $pool_new (i32.const 1) (i32.const 0) (i64.const -1))",
            Again,
        )
        .expect(&format!("(call $pool_pids {H})"), 8)
        .expect(&format!("(call $pool_drop {H})"), 0)
        .keep(
            "$a",
            "(call $pool_new (i32.const 2) (i32.const 0) (i64.const -1))",
        )
        .expect(&format!("(call $pool_drop {H})"), 0)
}

/// A fork child holds the parent's pool handle (not inheritable: every
/// call is `EBADF`, its exit leaves the workers alone) and queue handle
/// (inheritable: it puts and closes its own copy).
pub fn pool_and_queue_in_a_fork_child() -> Script {
    let mut script = with_pool_tasks(Via::Cli)
        .data(0x300, b"child")
        .keep(
            "$a",
            "(call $pool_new (i32.const 2) (i32.const 0) (i64.const -1))",
        )
        .keep(
            "$d",
            "(call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))",
        )
        .raw("(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then");
    for call in pool_calls(H) {
        script = script.errno(&call, BadF);
    }
    script
        .errno(
            "(call $pool_new (i32.const 0) (i32.const 0) (i64.const -1))",
            Inval,
        )
        .expect(
            "(call $queue_put (global.get $d) (i32.const 0x300) (i32.const 5) (i64.const -1))",
            0,
        )
        .expect("(call $queue_close (global.get $d))", 0)
        .raw("(call $proc_exit (i32.const 0))))")
        .raw("(global.set $c (local.get $r))")
        .expect_expr(
            "(call $waitpid (global.get $c) (i32.const 0) (i32.const 0x100))",
            "(global.get $c)",
        )
        .expect("(i32.load (i32.const 0x100))", 0)
        .expect(
            "(call $queue_get (global.get $d) (i32.const 0x900) (i32.const 64) (i64.const 0))",
            5,
        )
        .expect("(call $queue_close (global.get $d))", 0)
        .expect(&format!("(call $pool_pids {H})"), 8)
        .keep("$b", &submit(H, ECHO.0, ECHO.1, 1))
        .expect(
            &format!("(call $pool_result_get {H} {ID} (i64.const -1))"),
            18,
        )
        .expect(&format!("(call $pool_drop {H})"), 0)
}
