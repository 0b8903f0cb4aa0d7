//! `os`: identity, `last_error`, `take_result`, `fork`, `waitpid`, `kill`,
//! `cpu_count`, `times`.

use super::{Script, Via};
use procbridge::Errno::*;

/// `["cat"]` at 0x200 (7 bytes), `["true"]` at 0x210 (8), `["sleep",
/// "1"]` at 0x220 (14).
pub fn with_commands(script: Script) -> Script {
    script
        .list(0x200, &[b"cat"])
        .list(0x210, &[b"true"])
        .list(0x220, &[b"sleep", b"1"])
}

/// `popen(["cat"])` with stdin and stdout pipes, stderr to /dev/null.
pub const POPEN_CAT: &str =
    "(call $popen (i32.const 0x200) (i32.const 7) (i32.const 0) (i32.const -1) \
     (i32.const 0) (i32.const 0) (i32.const -1) (i32.const -1) (i32.const -2))";
/// `popen(["true"])`, all stdio to /dev/null.
pub const POPEN_TRUE: &str =
    "(call $popen (i32.const 0x210) (i32.const 8) (i32.const 0) (i32.const -1) \
     (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2))";
/// `popen(["sleep", "1"])`, all stdio to /dev/null.
pub const POPEN_SLEEP: &str =
    "(call $popen (i32.const 0x220) (i32.const 14) (i32.const 0) (i32.const -1) \
     (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2))";

pub fn identity_ignores_everything() -> Script {
    Script::new(Via::Library)
        .expect("(call $getpid)", std::process::id() as i32)
        .expect(
            "(call $getppid)",
            std::os::unix::process::parent_id() as i32,
        )
}

pub fn cpu_count_is_the_machines() -> Script {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i32;
    Script::new(Via::Library).expect("(call $cpu_count)", cpus)
}

/// `times` writes its 40 bytes or nothing: too small a buffer, one past
/// the end of memory; its counts are real (the monotonic clock moves on,
/// CPU time is not the wall clock's).
pub fn times_bad_buffers_and_real_counts() -> Script {
    Script::new(Via::Library)
        .errno("(call $times (i32.const 0x100) (i32.const 39))", Inval)
        .errno("(call $times (i32.const 0x100) (i32.const -1))", Inval)
        .errno("(call $times (i32.const 65500) (i32.const 40))", Fault)
        .errno("(call $times (i32.const -8) (i32.const 40))", Fault)
        .expect("(i64.eqz (i64.load (i32.const 0x120)))", 1)
        .expect("(call $times (i32.const 0x100) (i32.const 4096))", 40)
        .expect("(call $times (i32.const 65496) (i32.const 40))", 40)
        // Nothing past the 40 bytes was written.
        .expect("(i64.eqz (i64.load (i32.const 0x128)))", 1)
        // The monotonic clock of the second call is later.
        .expect(
            "(i64.gt_u (i64.load (i32.const 65528)) (i64.load (i32.const 0x120)))",
            1,
        )
        // User plus system CPU time so far: under the monotonic clock's
        // reading (wasi-libc's emulation made them equal), and not nothing.
        .expect(
            "(i64.lt_u (i64.add (i64.load (i32.const 0x100)) (i64.load (i32.const 0x108))) \
             (i64.load (i32.const 0x120)))",
            1,
        )
        .expect(
            "(i64.ne (i64.add (i64.load (i32.const 0x100)) (i64.load (i32.const 0x108))) \
             (i64.const 0))",
            1,
        )
}

/// `kill` reaches this process's own unwaited fork children and nothing
/// else: not the parent, not init, not a command, not a reaped child, no
/// bad signal.
pub fn kill_reaches_only_own_fork_children() -> Script {
    with_commands(Script::new(Via::Cli))
        .errno("(call $kill (call $getppid) (i32.const 15))", Srch)
        .errno("(call $kill (i32.const 1) (i32.const 9))", Srch)
        .errno("(call $kill (i32.const 0) (i32.const 9))", Srch)
        .errno("(call $kill (i32.const -1) (i32.const 9))", Srch)
        .errno("(call $kill (i32.const -2147483648) (i32.const 9))", Srch)
        // 0: only whether it is there.
        .expect("(call $kill (call $getpid) (i32.const 0))", 0)
        .errno("(call $kill (i32.const 1) (i32.const 0))", Srch)
        .errno("(call $kill (call $getpid) (i32.const 65))", Inval)
        .errno("(call $kill (call $getpid) (i32.const -9))", Inval)
        .keep("$a", POPEN_SLEEP)
        .errno(
            "(call $kill (call $popen_pid (global.get $a)) (i32.const 9))",
            Srch,
        )
        .expect("(call $popen_close (global.get $a))", 0)
        // A child that sleeps: SIGTERM ends it, its status says so.
        .raw(&format!(
            "(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then \
               (global.set $b {POPEN_SLEEP}) \
               (drop (call $popen_wait (global.get $b) (i64.const -1) (i32.const 0x100))) \
               (call $proc_exit (i32.const 0))))"
        ))
        .raw("(global.set $a (local.get $r))")
        .expect("(call $kill (global.get $a) (i32.const 15))", 0)
        .expect_expr(
            "(call $waitpid (global.get $a) (i32.const 0) (i32.const 0x100))",
            "(global.get $a)",
        )
        .expect("(i32.load (i32.const 0x100))", 15)
        // Reaped: no longer a child to signal.
        .errno("(call $kill (global.get $a) (i32.const 15))", Srch)
}

pub fn last_error_bad_buffers() -> Script {
    // "no result is waiting to be taken": 32 bytes.
    Script::new(Via::Library)
        .errno("(call $take_result (i32.const 0) (i32.const 0))", Inval)
        .expect("(call $last_error (i32.const 0) (i32.const 0))", 32)
        .expect(
            "(call $last_error (i32.const 0) (i32.const -2147483648))",
            32,
        )
        .expect("(call $last_error (i32.const 0x100) (i32.const 1000))", 32)
        .expect("(i32.load8_u (i32.const 0x100))", b'n' as i32)
        .errno(
            "(call $last_error (i32.const 65530) (i32.const 100))",
            Fault,
        )
        .errno("(call $last_error (i32.const -1) (i32.const 1))", Fault)
        .errno("(call $last_error (i32.const 65536) (i32.const 1))", Fault)
        .errno("(call $last_error (i32.const 65537) (i32.const 0))", Fault)
        .errno(
            "(call $last_error (i32.const 2147483647) (i32.const 2147483647))",
            Fault,
        )
        // Exactly at the end of memory fits.
        .keep("$a", "(call $last_error (i32.const 65535) (i32.const 1))")
        .keep("$a", "(call $last_error (i32.const 65536) (i32.const 0))")
}

pub fn take_result_bad_buffers_keep_the_result() -> Script {
    with_commands(Script::new(Via::Library))
        .data(0x300, b"hello")
        .keep("$a", POPEN_CAT)
        .expect(
            "(call $popen_communicate (global.get $a) (i32.const 0x300) (i32.const 5) \
             (i64.const -1) (i32.const 0) (i32.const 0x400))",
            5,
        )
        .expect("(i32.load (i32.const 0x400))", 5)
        .expect("(i32.load (i32.const 0x404))", 0)
        .errno("(call $take_result (i32.const 65534) (i32.const 5))", Fault)
        .errno("(call $take_result (i32.const -1) (i32.const 5))", Fault)
        .errno(
            "(call $take_result (i32.const 0x100) (i32.const -1))",
            Fault,
        )
        .errno("(call $take_result (i32.const 0x100) (i32.const 4))", Inval)
        .errno("(call $take_result (i32.const 0x100) (i32.const 6))", Inval)
        .expect("(call $take_result (i32.const 0x100) (i32.const 5))", 0)
        .expect("(i32.load8_u (i32.const 0x104))", b'o' as i32)
        .errno("(call $take_result (i32.const 0x100) (i32.const 5))", Inval)
        .expect("(call $popen_close (global.get $a))", 0)
}

pub fn waitpid_without_children() -> Script {
    with_commands(Script::new(Via::Library))
        .errno(
            "(call $waitpid (i32.const -1) (i32.const 0) (i32.const 0x100))",
            Child,
        )
        .errno(
            "(call $waitpid (i32.const -1) (i32.const 1) (i32.const 0x100))",
            Child,
        )
        .errno(
            "(call $waitpid (i32.const 12345) (i32.const 0) (i32.const 0x100))",
            Child,
        )
        .errno(
            "(call $waitpid (call $getpid) (i32.const 0) (i32.const 0x100))",
            Child,
        )
        .errno(
            "(call $waitpid (call $getppid) (i32.const 1) (i32.const 0x100))",
            Child,
        )
        .errno(
            "(call $waitpid (i32.const 0) (i32.const 0) (i32.const 0x100))",
            Inval,
        )
        .errno(
            "(call $waitpid (i32.const -2) (i32.const 0) (i32.const 0x100))",
            Inval,
        )
        .errno(
            "(call $waitpid (i32.const -2147483648) (i32.const 0) (i32.const 0x100))",
            Inval,
        )
        .errno(
            "(call $waitpid (i32.const -1) (i32.const 2) (i32.const 0x100))",
            Inval,
        )
        .errno(
            "(call $waitpid (i32.const -1) (i32.const -1) (i32.const 0x100))",
            Inval,
        )
        .errno(
            "(call $waitpid (i32.const -1) (i32.const 0) (i32.const 65534))",
            Fault,
        )
        .errno(
            "(call $waitpid (i32.const -1) (i32.const 0) (i32.const -4))",
            Fault,
        )
        // A subprocess is not an os.fork child: its popen handle keeps it.
        .keep("$a", POPEN_TRUE)
        .errno(
            "(call $waitpid (call $popen_pid (global.get $a)) (i32.const 0) (i32.const 0x100))",
            Child,
        )
        .expect(
            "(call $popen_wait (global.get $a) (i64.const -1) (i32.const 0x100))",
            0,
        )
        .expect("(i32.load (i32.const 0x100))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
}

/// Children that `proc_exit` or trap right after `fork` returns, one still
/// running in a call when the parent polls, waited for twice.
pub fn fork_child_exits_in_the_middle() -> Script {
    with_commands(Script::new(Via::Cli))
        .raw("(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then (call $proc_exit (i32.const 7))))")
        .raw("(global.set $a (local.get $r))")
        .expect_expr(
            "(call $waitpid (global.get $a) (i32.const 0) (i32.const 0x100))",
            "(global.get $a)",
        )
        .expect("(i32.load (i32.const 0x100))", 7 << 8)
        .errno("(call $waitpid (global.get $a) (i32.const 0) (i32.const 0x100))", Child)
        .errno("(call $waitpid (i32.const -1) (i32.const 1) (i32.const 0x100))", Child)
        // A trap in the child is exit status 1.
        .raw("(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then unreachable))")
        .raw("(global.set $a (local.get $r))")
        .expect_expr(
            "(call $waitpid (i32.const -1) (i32.const 0) (i32.const 0x100))",
            "(global.get $a)",
        )
        .expect("(i32.load (i32.const 0x100))", 1 << 8)
        // A child in the middle of a blocking call: WNOHANG sees it running.
        .raw(&format!(
            "(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then \
               (global.set $b {POPEN_SLEEP}) \
               (drop (call $popen_wait (global.get $b) (i64.const -1) (i32.const 0x100))) \
               (call $proc_exit (i32.const 0))))"
        ))
        .raw("(global.set $a (local.get $r))")
        .expect("(call $waitpid (global.get $a) (i32.const 1) (i32.const 0x100))", 0)
        .expect_expr(
            "(call $waitpid (global.get $a) (i32.const 0) (i32.const 0x100))",
            "(global.get $a)",
        )
        .expect("(i32.load (i32.const 0x100))", 0)
        // A child that forks and exits without waiting: its own child is
        // reaped by it, not left for us.
        .raw(
            "(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then \
               (drop (call $fork)) (call $proc_exit (i32.const 3))))",
        )
        .raw("(global.set $a (local.get $r))")
        .expect_expr(
            "(call $waitpid (i32.const -1) (i32.const 0) (i32.const 0x100))",
            "(global.get $a)",
        )
        .expect("(i32.load (i32.const 0x100))", 3 << 8)
        .errno("(call $waitpid (i32.const -1) (i32.const 0) (i32.const 0x100))", Child)
}

/// A fork child cannot use its parent's subprocess handles, and does not
/// keep their pipes open (the parent's `cat` still sees end of file).
pub fn fork_child_cannot_use_parent_handles() -> Script {
    with_commands(Script::new(Via::Cli))
        .data(0x300, b"hi\n")
        .keep("$a", POPEN_CAT)
        .raw("(local.set $r (call $fork)) (if (i32.eqz (local.get $r)) (then")
        .errno("(call $popen_pid (global.get $a))", BadF)
        .errno(
            "(call $popen_write (global.get $a) (i32.const 0x300) (i32.const 3) (i64.const -1))",
            BadF,
        )
        .errno("(call $popen_close_stdin (global.get $a))", BadF)
        .errno("(call $popen_send_signal (global.get $a) (i32.const 9))", BadF)
        .errno("(call $popen_close (global.get $a))", BadF)
        // Stay alive while the parent closes cat's stdin.
        .keep("$b", POPEN_SLEEP)
        .expect(
            "(call $popen_wait (global.get $b) (i64.const -1) (i32.const 0x100))",
            0,
        )
        .raw("(call $proc_exit (i32.const 0))))")
        .raw("(global.set $c (local.get $r))")
        .expect(
            "(call $popen_write (global.get $a) (i32.const 0x300) (i32.const 3) (i64.const -1))",
            3,
        )
        .expect("(call $popen_close_stdin (global.get $a))", 0)
        .expect(
            "(call $popen_read (global.get $a) (i32.const 1) (i32.const 0x400) (i32.const 16) (i64.const 500000))",
            3,
        )
        // End of file although the child still runs.
        .expect(
            "(call $popen_read (global.get $a) (i32.const 1) (i32.const 0x400) (i32.const 16) (i64.const 500000))",
            0,
        )
        .expect(
            "(call $popen_wait (global.get $a) (i64.const 500000) (i32.const 0x100))",
            0,
        )
        .expect("(call $waitpid (global.get $c) (i32.const 1) (i32.const 0x100))", 0)
        .expect_expr(
            "(call $waitpid (global.get $c) (i32.const 0) (i32.const 0x100))",
            "(global.get $c)",
        )
        .expect("(i32.load (i32.const 0x100))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
}
