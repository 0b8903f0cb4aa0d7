//! `process`: `multiprocessing.Process` and the task ABI under attack.
//! Anything that starts a process runs through the CLI.

use super::os::{with_commands, POPEN_SLEEP, POPEN_TRUE};
use super::{Script, Via};
use procbridge::Errno::*;

/// Task exports: `ok` returns, `exit7` calls `proc_exit(7)` in the middle,
/// `trap` traps, `fails` reports an error, `hang` waits on `sleep 1`, and
/// `wrong` has the wrong signature.
const TASKS: &str = r#"
(func (export "ok") (param i32) (result i32) (i32.const 0))
(func (export "exit7") (param i32) (result i32)
  (drop (call $take_result (i32.const 0x800) (local.get 0)))
  (call $proc_exit (i32.const 7)) (i32.const 0))
(func (export "trap") (param i32) (result i32) unreachable)
(func (export "fails") (param i32) (result i32)
  (drop (call $task_error (i32.const 0x600) (i32.const 4))) (i32.const 1))
(func (export "returns_then_exits") (param i32) (result i32)
  (drop (call $task_return (i32.const 0x600) (i32.const 4)))
  (call $proc_exit (i32.const 3)) (i32.const 0))
(func (export "hang") (param i32) (result i32) (local $h i32)
  (local.set $h (call $popen (i32.const 0x220) (i32.const 14) (i32.const 0) (i32.const -1)
     (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2)))
  (drop (call $popen_wait (local.get $h) (i64.const -1) (i32.const 0x900)))
  (i32.const 0))
(func (export "wrong") (param i64) (result i32) (i32.const 0))
"#;

/// Names at fixed addresses: see [`start`].
pub(super) fn with_tasks(via: Via) -> Script {
    with_commands(Script::new(via))
        .data(0x100, b"ok")
        .data(0x110, b"exit7")
        .data(0x120, b"trap")
        .data(0x130, b"fails")
        .data(0x140, b"returns_then_exits")
        .data(0x160, b"hang")
        .data(0x170, b"wrong")
        .data(0x180, b"_start")
        .data(0x190, b"memory")
        .data(0x1a0, b"\xff\xfe")
        .data(0x1b0, b"nope")
        .data(0x600, b"boom")
        .func(TASKS)
}

/// `process_start` of the task named at `at` (`len` bytes).
fn start(at: u32, len: usize, method: i32, flags: i32) -> String {
    format!(
        "(call $process_start (i32.const {at}) (i32.const {len}) (i32.const 0) (i32.const 0) \
         (i32.const {method}) (i32.const {flags}))"
    )
}

pub fn start_bad_arguments() -> Script {
    let call = |t: (&str, &str), a: (&str, &str), method: &str, flags: &str| {
        format!(
            "(call $process_start (i32.const {}) (i32.const {}) (i32.const {}) (i32.const {}) \
             (i32.const {method}) (i32.const {flags}))",
            t.0, t.1, a.0, a.1
        )
    };
    let ok = ("0x100", "2");
    let none = ("0", "0");
    with_tasks(Via::Cli)
        .errno(&call(("65534", "4"), none, "0", "0"), Fault)
        .errno(&call(("-1", "2"), none, "0", "0"), Fault)
        .errno(&call(("0x100", "300"), none, "0", "0"), TooBig)
        .errno(&call(("0x100", "-1"), none, "0", "0"), TooBig)
        .errno(&call(("0x1a0", "2"), none, "0", "0"), Inval)
        .errno(&call(("0x1b0", "4"), none, "0", "0"), NoEnt)
        .errno(&call(("0x100", "0"), none, "0", "0"), NoEnt)
        .errno(&call(("0x190", "6"), none, "0", "0"), NoEnt)
        .errno(&call(("0x180", "6"), none, "0", "0"), Inval)
        .errno(&call(("0x170", "5"), none, "0", "0"), Inval)
        .errno(&call(ok, ("65535", "2"), "0", "0"), Fault)
        .errno(&call(ok, ("0", "-1"), "0", "0"), TooBig)
        .errno(&call(ok, ("0", "16777217"), "0", "0"), TooBig)
        .errno(&call(ok, none, "3", "0"), Inval)
        .errno(&call(ok, none, "-1", "0"), Inval)
        .errno(&call(ok, none, "0", "16"), Inval)
        .errno(&call(ok, none, "0", "-1"), Inval)
        .errno(&call(ok, none, "1", "4"), Inval)
        .errno(&call(ok, none, "0", "8"), Inval)
        // The well-formed call works.
        .keep("$a", &start(0x100, 2, 0, 0))
        .expect("(call $process_join (global.get $a) (i64.const -1))", 0)
        .expect(
            "(call $process_exitcode (global.get $a) (i32.const 0x900))",
            1,
        )
        .expect("(i32.load (i32.const 0x900))", 0)
        .expect("(call $process_close (global.get $a))", 0)
}

/// Join before start (no handle), close while running, join twice, get
/// after close, signals after the end, a process handle given to `popen`
/// functions.
pub fn odd_orders() -> Script {
    let h = "(global.get $a)";
    with_tasks(Via::Cli)
        .errno("(call $process_join (i32.const 0) (i64.const -1))", BadF)
        .errno("(call $process_join (i32.const 1) (i64.const -1))", BadF)
        .keep("$a", &start(0x160, 4, 1, 0))
        .expect(&format!("(call $process_is_alive {h})"), 1)
        .expect(
            &format!("(call $process_exitcode {h} (i32.const 0x900))"),
            0,
        )
        .errno(&format!("(call $process_close {h})"), Inval)
        .errno(&format!("(call $process_join {h} (i64.const 0))"), TimedOut)
        .errno(
            &format!("(call $process_join {h} (i64.const 1000))"),
            TimedOut,
        )
        .errno(&format!("(call $process_join {h} (i64.const -2))"), Inval)
        .errno(
            &format!("(call $process_join {h} (i64.const -9223372036854775808))"),
            Inval,
        )
        .errno(
            &format!("(call $process_exitcode {h} (i32.const 65534))"),
            Fault,
        )
        .errno(
            &format!("(call $process_exitcode {h} (i32.const -1))"),
            Fault,
        )
        .errno(&format!("(call $popen_pid {h})"), BadF)
        .errno(&format!("(call $popen_close {h})"), BadF)
        .errno(
            &format!("(call $popen_wait {h} (i64.const 0) (i32.const 0x900))"),
            BadF,
        )
        // A process handle as a popen stdio argument.
        .errno(
            &format!(
                "(call $popen (i32.const 0x200) (i32.const 7) (i32.const 0) (i32.const -1) \
                 (i32.const 0) (i32.const 0) {h} (i32.const -2) (i32.const -2))"
            ),
            BadF,
        )
        .expect(
            &format!("(call $process_join {h} (i64.const 9223372036854775807))"),
            0,
        )
        .expect(&format!("(call $process_join {h} (i64.const -1))"), 0)
        .expect(&format!("(call $process_join {h} (i64.const 0))"), 0)
        .expect(&format!("(call $process_is_alive {h})"), 0)
        .expect(
            &format!("(call $process_exitcode {h} (i32.const 0x900))"),
            1,
        )
        .expect("(i32.load (i32.const 0x900))", 0)
        .expect(&format!("(call $process_terminate {h})"), 0)
        .expect(&format!("(call $process_kill {h})"), 0)
        .keep("$b", &format!("(call $process_pid {h})"))
        .expect(&format!("(call $process_close {h})"), 0)
        .errno(&format!("(call $process_close {h})"), BadF)
        .errno(&format!("(call $process_join {h} (i64.const -1))"), BadF)
        .errno(&format!("(call $process_pid {h})"), BadF)
        .errno(
            &format!("(call $process_exitcode {h} (i32.const 0x900))"),
            BadF,
        )
}

/// Forged handles and handles of another kind (no process is started).
pub fn bad_handles() -> Script {
    let mut script = with_commands(Script::new(Via::Library)).keep("$a", POPEN_TRUE);
    for h in [
        "(i32.const 0)",
        "(i32.const -1)",
        "(i32.const 7)",
        "(i32.const -2147483648)",
        "(global.get $a)",
    ] {
        for call in [
            format!("(call $process_join {h} (i64.const 0))"),
            format!("(call $process_join {h} (i64.const -1))"),
            format!("(call $process_is_alive {h})"),
            format!("(call $process_pid {h})"),
            format!("(call $process_exitcode {h} (i32.const 0x900))"),
            format!("(call $process_terminate {h})"),
            format!("(call $process_kill {h})"),
            format!("(call $process_close {h})"),
        ] {
            script = script.errno(&call, BadF);
        }
    }
    script
        // Not killed by process_kill: still ours, exits 0.
        .expect(
            "(call $popen_wait (global.get $a) (i64.const -1) (i32.const 0x900))",
            0,
        )
        .expect("(i32.load (i32.const 0x900))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
}

/// Tasks that exit, trap, fail or are killed in the middle: the parent's
/// join returns and the exit code says what happened, with both start
/// methods.
pub fn task_exits_and_traps_in_the_middle() -> Script {
    let mut script = with_tasks(Via::Cli);
    for method in [1, 2] {
        for (at, len, code) in [
            (0x110, 5, 7),
            (0x120, 4, 1),
            (0x130, 5, 1),
            (0x140, 18, 3),
            (0x100, 2, 0),
        ] {
            script = script
                .keep("$a", &start(at, len, method, 0))
                .expect("(call $process_join (global.get $a) (i64.const -1))", 0)
                .expect(
                    "(call $process_exitcode (global.get $a) (i32.const 0x900))",
                    1,
                )
                .expect("(i32.load (i32.const 0x900))", code)
                .expect("(call $process_close (global.get $a))", 0);
        }
        // Killed and terminated while blocked in a host call.
        for (call, code) in [("$process_kill", -9), ("$process_terminate", -15)] {
            script = script
                .keep("$a", &start(0x160, 4, method, 0))
                .expect(&format!("(call {call} (global.get $a))"), 0)
                .expect("(call $process_join (global.get $a) (i64.const -1))", 0)
                .expect(
                    "(call $process_exitcode (global.get $a) (i32.const 0x900))",
                    1,
                )
                .expect("(i32.load (i32.const 0x900))", code)
                .expect("(call $process_close (global.get $a))", 0);
        }
    }
    script
}

pub fn task_hand_back_outside_a_task() -> Script {
    Script::new(Via::Library)
        .data(0x600, b"boom")
        .errno("(call $task_return (i32.const 0x600) (i32.const 4))", Inval)
        .errno("(call $task_error (i32.const 0x600) (i32.const 4))", Inval)
        .errno("(call $task_return (i32.const -1) (i32.const -1))", Inval)
        .errno("(call $task_error (i32.const 65535) (i32.const 2))", Inval)
        // Only a guest that serves calls from its `_start` takes them.
        .errno("(call $task_next (i32.const 0x600) (i32.const 16))", Inval)
        .errno("(call $task_next (i32.const -1) (i32.const -1))", Inval)
}

/// Inside a task: bad pointers and sizes to `task_return`/`task_error`,
/// the arguments taken with the wrong length first. The task exits with
/// `100 + check` if a check fails, else fails with invalid UTF-8 (lossy).
pub fn task_hand_back_bad_pointers() -> Script {
    let inner = Script::new(Via::Cli)
        .errno(
            "(call $take_result (i32.const 0x800) (i32.add (local.get 0) (i32.const 1)))",
            Inval,
        )
        .errno("(call $take_result (i32.const 65535) (local.get 0))", Fault)
        .expect("(call $take_result (i32.const 0x800) (local.get 0))", 0)
        .expect("(i32.load8_u (i32.const 0x801))", b'r' as i32)
        .errno("(call $take_result (i32.const 0x800) (local.get 0))", Inval)
        .errno("(call $task_return (i32.const 65534) (i32.const 4))", Fault)
        .errno("(call $task_return (i32.const -1) (i32.const 1))", Fault)
        .errno("(call $task_return (i32.const 0) (i32.const -1))", TooBig)
        .errno(
            "(call $task_return (i32.const 0) (i32.const 16777217))",
            TooBig,
        )
        .errno("(call $task_error (i32.const 65535) (i32.const 2))", Fault)
        .errno(
            "(call $task_error (i32.const 0) (i32.const 2147483647))",
            TooBig,
        )
        .expect("(call $task_return (i32.const 0x600) (i32.const 4))", 0)
        .expect("(call $task_error (i32.const 0x1a0) (i32.const 2))", 0);
    let body = inner.body_text();
    with_tasks(Via::Cli)
        .data(0x700, b"args")
        .data(0x1c0, b"checks")
        .func(&format!(
            "(func (export \"checks\") (param i32) (result i32) (local $r i32)\n{body}\n(i32.const 0))"
        ))
        .keep(
            "$a",
            "(call $process_start (i32.const 0x1c0) (i32.const 6) (i32.const 0x700) (i32.const 4) (i32.const 1) (i32.const 0))",
        )
        .expect("(call $process_join (global.get $a) (i64.const -1))", 0)
        .expect("(call $process_exitcode (global.get $a) (i32.const 0x900))", 1)
        .expect("(i32.load (i32.const 0x900))", 1)
}

/// A process handle used by a fork child, and a `popen` handle passed to a
/// task in its arguments: both belong to another OS process.
pub fn foreign_process_handle() -> Script {
    let h = "(global.get $a)";
    let child_checks = Script::new(Via::Cli)
        .errno(&format!("(call $process_pid {h})"), BadF)
        .errno(&format!("(call $process_is_alive {h})"), BadF)
        .errno(&format!("(call $process_join {h} (i64.const -1))"), BadF)
        .errno(&format!("(call $process_kill {h})"), BadF)
        .errno(&format!("(call $process_close {h})"), BadF)
        .body_text();
    let task_checks = Script::new(Via::Cli)
        .expect("(call $take_result (i32.const 0x800) (i32.const 4))", 0)
        .errno("(call $popen_pid (i32.load (i32.const 0x800)))", BadF)
        .errno("(call $popen_close (i32.load (i32.const 0x800)))", BadF)
        .body_text();
    with_tasks(Via::Cli)
        .data(0x1c0, b"uses_popen")
        .func(&format!(
            "(func (export \"uses_popen\") (param i32) (result i32) (local $r i32)\n{task_checks}\n(i32.const 0))"
        ))
        .keep("$a", &start(0x160, 4, 1, 0))
        .raw(&format!(
            "(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then {child_checks} (call $proc_exit (i32.const 0))))"
        ))
        .raw("(global.set $c (local.get $r))")
        .expect_expr(
            "(call $waitpid (global.get $c) (i32.const 0) (i32.const 0x900))",
            "(global.get $c)",
        )
        .expect("(i32.load (i32.const 0x900))", 0)
        // The fork child's kill did nothing: the process ends normally.
        .expect(&format!("(call $process_is_alive {h})"), 1)
        .expect(&format!("(call $process_join {h} (i64.const -1))"), 0)
        .expect(&format!("(call $process_exitcode {h} (i32.const 0x900))"), 1)
        .expect("(i32.load (i32.const 0x900))", 0)
        // A popen handle, passed as a task's arguments.
        .keep("$b", POPEN_SLEEP)
        .raw("(i32.store (i32.const 0x700) (global.get $b))")
        .keep(
            "$d",
            "(call $process_start (i32.const 0x1c0) (i32.const 10) (i32.const 0x700) (i32.const 4) (i32.const 1) (i32.const 0))",
        )
        .expect("(call $process_join (global.get $d) (i64.const -1))", 0)
        .expect("(call $process_exitcode (global.get $d) (i32.const 0x900))", 1)
        .expect("(i32.load (i32.const 0x900))", 0)
        .expect("(call $popen_close (global.get $b))", 0)
}

/// A daemon may not start children (`EINVAL`), as in Python; the task
/// exits 0 only when refused.
pub fn daemon_cannot_start_children() -> Script {
    with_tasks(Via::Cli)
        .data(0x1c0, b"starts")
        .func(
            r#"(func (export "starts") (param i32) (result i32)
                 (if (i32.ne (call $process_start (i32.const 0x100) (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0))
                             (i32.const -22))
                   (then (call $proc_exit (i32.const 9))))
                 (i32.const 0))"#,
        )
        .keep("$a", &start(0x1c0, 6, 1, 1))
        .expect("(call $process_join (global.get $a) (i64.const -1))", 0)
        .expect("(call $process_exitcode (global.get $a) (i32.const 0x900))", 1)
        .expect("(i32.load (i32.const 0x900))", 0)
}

/// The tree-wide process limit (`--max-processes 2`: two processes besides
/// the root) is `EAGAIN` for `popen`, `process_start` and `fork` alike, and
/// frees up when a child is reaped.
pub fn process_limit_is_eagain() -> Script {
    with_tasks(Via::Cli)
        .cli_arg("--max-processes")
        .cli_arg("2")
        .keep("$a", POPEN_SLEEP)
        .keep("$b", POPEN_SLEEP)
        .errno(POPEN_TRUE, Again)
        .errno(&start(0x100, 2, 1, 0), Again)
        .errno(&start(0x100, 2, 2, 0), Again)
        .errno("(call $fork)", Again)
        .expect("(call $popen_close (global.get $b))", 0)
        .keep("$b", &start(0x100, 2, 1, 0))
        .expect("(call $process_join (global.get $b) (i64.const -1))", 0)
        .expect("(call $process_close (global.get $b))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
}
