//! `subprocess`: every `popen*` function under attack.

use super::os::{with_commands, POPEN_CAT, POPEN_SLEEP, POPEN_TRUE};
use super::{Script, Via};
use procbridge::Errno::*;

/// `popen` with the given argv and env pointers/lengths; cwd none; stdio
/// to /dev/null.
fn popen(argv: (&str, &str), env: (&str, &str)) -> String {
    format!(
        "(call $popen (i32.const {}) (i32.const {}) (i32.const {}) (i32.const {}) \
         (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2))",
        argv.0, argv.1, env.0, env.1
    )
}

fn popen_cwd(cwd: (&str, &str)) -> String {
    format!(
        "(call $popen (i32.const 0x210) (i32.const 8) (i32.const 0) (i32.const -1) \
         (i32.const {}) (i32.const {}) (i32.const -2) (i32.const -2) (i32.const -2))",
        cwd.0, cwd.1
    )
}

fn popen_stdio(argv: (&str, &str), stdin: &str, stdout: &str, stderr: &str) -> String {
    format!(
        "(call $popen (i32.const {}) (i32.const {}) (i32.const 0) (i32.const -1) \
         (i32.const 0) (i32.const 0) {stdin} {stdout} {stderr})",
        argv.0, argv.1
    )
}

pub fn popen_bad_pointers_and_lists() -> Script {
    let many: Vec<&[u8]> = vec![b""; 5000];
    with_commands(Script::new(Via::Library))
        // An item claiming 4 GiB, a list of 5000 empty items (20000 bytes).
        .data(0x300, b"\xff\xff\xff\xffcat")
        .list(0x1000, &many)
        .list(0x400, &[b"A=B"])
        .data(0x500, b"/tmp")
        .errno(&popen(("65530", "7"), ("0", "-1")), Fault)
        .errno(&popen(("-1", "7"), ("0", "-1")), Fault)
        .errno(&popen(("0x200", "65536"), ("0", "-1")), Fault)
        .errno(&popen(("0x200", "-1"), ("0", "-1")), TooBig)
        .errno(&popen(("0x200", "-2147483648"), ("0", "-1")), TooBig)
        .errno(&popen(("0x200", "0"), ("0", "-1")), Inval)
        .errno(&popen(("0x200", "6"), ("0", "-1")), Inval)
        .errno(&popen(("0x200", "3"), ("0", "-1")), Inval)
        .errno(&popen(("0x300", "7"), ("0", "-1")), Inval)
        .errno(&popen(("0x1000", "20000"), ("0", "-1")), TooBig)
        .errno(&popen(("0x210", "8"), ("65534", "7")), Fault)
        .errno(&popen(("0x210", "8"), ("0x400", "-2")), TooBig)
        .errno(&popen(("0x210", "8"), ("0x1000", "20000")), TooBig)
        .errno(&popen(("0x210", "8"), ("0x400", "5")), Inval)
        .errno(&popen_cwd(("65535", "4")), Fault)
        .errno(&popen_cwd(("0x500", "-1")), TooBig)
        // The well-formed call still works, with an empty environment.
        .keep("$a", &popen(("0x210", "8"), ("0", "0")))
        .expect(
            "(call $popen_wait (global.get $a) (i64.const -1) (i32.const 0x100))",
            0,
        )
        .expect("(call $popen_close (global.get $a))", 0)
}

pub fn popen_invalid_utf8_and_bad_values() -> Script {
    with_commands(Script::new(Via::Library))
        .list(0x300, &[b"\xff\xfe"])
        .list(0x310, &[b"c\0at"])
        .list(0x320, &[b"A=\xc3"])
        .list(0x330, &[b"NOEQUALS"])
        .list(0x340, &[b"=X"])
        .list(0x350, &[b"A=B\0C"])
        .data(0x360, b"/\xff")
        .list(0x380, &[b"cat", b"a\0b"])
        .errno(&popen(("0x300", "6"), ("0", "-1")), Inval)
        // A NUL byte: in argv[0] it names no granted command; elsewhere the
        // call is malformed.
        .errno(&popen(("0x310", "8"), ("0", "-1")), Perm)
        .errno(&popen(("0x380", "15"), ("0", "-1")), Inval)
        .errno(&popen(("0x210", "8"), ("0x320", "7")), Inval)
        .errno(&popen(("0x210", "8"), ("0x330", "12")), Inval)
        .errno(&popen(("0x210", "8"), ("0x340", "6")), Inval)
        .errno(&popen(("0x210", "8"), ("0x350", "9")), Inval)
        .errno(&popen_cwd(("0x360", "2")), Inval)
        .errno(
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const -3)",
                "(i32.const -2)",
                "(i32.const -2)",
            ),
            Inval,
        )
        .errno(
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const -2)",
                "(i32.const -3)",
                "(i32.const -2)",
            ),
            Inval,
        )
        .errno(
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const -4)",
                "(i32.const -2)",
                "(i32.const -2)",
            ),
            Inval,
        )
        .errno(
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const -2)",
                "(i32.const -2)",
                "(i32.const -2147483648)",
            ),
            Inval,
        )
        .errno(
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const 12345)",
                "(i32.const -2)",
                "(i32.const -2)",
            ),
            BadF,
        )
        .errno(
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const -2)",
                "(i32.const 2147483647)",
                "(i32.const -2)",
            ),
            BadF,
        )
        // stderr to stdout is fine.
        .keep(
            "$a",
            &popen_stdio(
                ("0x210", "8"),
                "(i32.const -2)",
                "(i32.const -1)",
                "(i32.const -3)",
            ),
        )
        .expect("(call $popen_close (global.get $a))", 0)
}

pub fn popen_denied_and_refused() -> Script {
    with_commands(Script::new(Via::Library))
        .list(0x300, &[b"sh"])
        .list(0x310, &[b"/bin/sh"])
        .list(0x320, &[b"./cat"])
        .list(0x330, &[b"../bin/cat"])
        .list(0x340, &[b"LD_PRELOAD=/x.so"])
        .data(0x360, b"/")
        .data(0x370, b"/nonexistent/..")
        .errno(&popen(("0x300", "6"), ("0", "-1")), Perm)
        .errno(&popen(("0x310", "11"), ("0", "-1")), Perm)
        .errno(&popen(("0x320", "9"), ("0", "-1")), Perm)
        .errno(&popen(("0x330", "14"), ("0", "-1")), Perm)
        .errno(&popen(("0x210", "8"), ("0x340", "20")), Perm)
        .errno(&popen_cwd(("0x360", "1")), Perm)
        .errno(&popen_cwd(("0x370", "15")), Perm)
}

/// Every function taking a `popen` handle, applied to `h`, expecting EBADF.
fn all_bad(mut script: Script, h: &str) -> Script {
    for call in [
        format!("(call $popen_pid {h})"),
        format!("(call $popen_poll {h} (i32.const 0x100))"),
        format!("(call $popen_wait {h} (i64.const 0) (i32.const 0x100))"),
        format!("(call $popen_communicate {h} (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0x100))"),
        format!("(call $popen_take_output {h} (i32.const 0x100))"),
        format!("(call $popen_write {h} (i32.const 0x300) (i32.const 1) (i64.const 0))"),
        format!("(call $popen_read {h} (i32.const 1) (i32.const 0x100) (i32.const 4) (i64.const 0))"),
        format!("(call $popen_close_stdin {h})"),
        format!("(call $popen_send_signal {h} (i32.const 15))"),
        format!("(call $popen_close {h})"),
    ] {
        script = script.errno(&call, BadF);
    }
    script
}

pub fn forged_closed_and_reused_handles() -> Script {
    let mut script = with_commands(Script::new(Via::Library));
    for forged in [
        "0",
        "1",
        "-1",
        "2147483647",
        "-2147483648",
        "65537",
        "65536",
    ] {
        script = all_bad(script, &format!("(i32.const {forged})"));
    }
    script = script
        .keep("$a", POPEN_TRUE)
        .expect(
            "(call $popen_wait (global.get $a) (i64.const -1) (i32.const 0x100))",
            0,
        )
        .expect("(call $popen_close (global.get $a))", 0);
    script = all_bad(script, "(global.get $a)");
    // The slot is reused under a new generation: the old number stays dead.
    script = script
        .keep("$b", POPEN_TRUE)
        .expect_expr(
            "(i32.and (global.get $b) (i32.const 0xffff))",
            "(i32.and (global.get $a) (i32.const 0xffff))",
        )
        .expect("(i32.eq (global.get $a) (global.get $b))", 0);
    script = all_bad(script, "(global.get $a)");
    // Handle numbers with the right index and other generations.
    for generation in [2, 0x7fff, 0x8000] {
        script = all_bad(
            script,
            &format!(
                "(i32.or (i32.and (global.get $b) (i32.const 0xffff)) (i32.const {}))",
                (generation as u32).wrapping_shl(16) as i32
            ),
        );
    }
    script
        .keep("$c", "(call $popen_pid (global.get $b))")
        .expect("(call $popen_close (global.get $b))", 0)
}

/// Timeouts: negative ones other than -1 are EINVAL; zero and small ones
/// time out on a child that keeps running.
pub fn bad_timeouts() -> Script {
    let mut script = with_commands(Script::new(Via::Library))
        .data(0x300, b"hi\n")
        .keep("$a", POPEN_CAT);
    for t in ["-2", "-1000000", "-9223372036854775808"] {
        script = script
            .errno(&format!("(call $popen_wait (global.get $a) (i64.const {t}) (i32.const 0x100))"), Inval)
            .errno(&format!("(call $popen_read (global.get $a) (i32.const 1) (i32.const 0x100) (i32.const 16) (i64.const {t}))"), Inval)
            .errno(&format!("(call $popen_write (global.get $a) (i32.const 0x300) (i32.const 3) (i64.const {t}))"), Inval)
            .errno(&format!("(call $popen_communicate (global.get $a) (i32.const 0) (i32.const 0) (i64.const {t}) (i32.const 0) (i32.const 0x100))"), Inval);
    }
    script
        .errno("(call $popen_wait (global.get $a) (i64.const 0) (i32.const 0x100))", TimedOut)
        .errno("(call $popen_wait (global.get $a) (i64.const 1000) (i32.const 0x100))", TimedOut)
        .errno(
            "(call $popen_read (global.get $a) (i32.const 1) (i32.const 0x100) (i32.const 16) (i64.const 0))",
            TimedOut,
        )
        // (Without input, communicate closes cat's stdin and cat ends: wait
        // on a sleep instead.)
        .keep("$b", POPEN_SLEEP)
        .errno(
            "(call $popen_communicate (global.get $b) (i32.const 0) (i32.const 0) (i64.const 1000) (i32.const 0) (i32.const 0x100))",
            TimedOut,
        )
        .expect("(call $popen_close (global.get $b))", 0)
        // Nothing above changed the child: it still echoes.
        .expect(
            "(call $popen_write (global.get $a) (i32.const 0x300) (i32.const 3) (i64.const -1))",
            3,
        )
        .expect(
            "(call $popen_read (global.get $a) (i32.const 1) (i32.const 0x400) (i32.const 16) (i64.const -1))",
            3,
        )
        .expect("(call $popen_close (global.get $a))", 0)
}

/// The largest timeouts do not overflow a deadline (nor wait forever on a
/// child that is done).
pub fn huge_timeouts_do_not_overflow() -> Script {
    with_commands(Script::new(Via::Library))
        .data(0x300, b"hi\n")
        .keep("$a", POPEN_TRUE)
        .expect(
            "(call $popen_wait (global.get $a) (i64.const 9223372036854775807) (i32.const 0x100))",
            0,
        )
        .keep("$b", POPEN_CAT)
        .expect(
            "(call $popen_write (global.get $b) (i32.const 0x300) (i32.const 3) (i64.const 9223372036854775807))",
            3,
        )
        .expect(
            "(call $popen_read (global.get $b) (i32.const 1) (i32.const 0x400) (i32.const 16) (i64.const 9223372036854775807))",
            3,
        )
        .expect("(call $popen_close_stdin (global.get $b))", 0)
        .expect(
            "(call $popen_communicate (global.get $b) (i32.const 0) (i32.const 0) (i64.const 9223372036854775807) (i32.const 1) (i32.const 0x100))",
            0,
        )
        .expect(
            "(call $popen_wait (global.get $b) (i64.const 9223372036854775806) (i32.const 0x100))",
            0,
        )
        .expect("(call $popen_close (global.get $a))", 0)
        .expect("(call $popen_close (global.get $b))", 0)
}

pub fn io_bad_pointers_and_lengths() -> Script {
    let h = "(global.get $a)";
    let mut script = with_commands(Script::new(Via::Library))
        .data(0x300, b"hi\n")
        .keep("$a", POPEN_CAT)
        .errno(&format!("(call $popen_write {h} (i32.const 65534) (i32.const 4) (i64.const -1))"), Fault)
        .errno(&format!("(call $popen_write {h} (i32.const -1) (i32.const 2) (i64.const -1))"), Fault)
        .errno(&format!("(call $popen_write {h} (i32.const 0) (i32.const -1) (i64.const -1))"), Fault)
        .errno(&format!("(call $popen_write {h} (i32.const 65537) (i32.const 0) (i64.const -1))"), Fault)
        .expect(&format!("(call $popen_write {h} (i32.const 0x300) (i32.const 0) (i64.const -1))"), 0)
        .errno(&format!("(call $popen_read {h} (i32.const 1) (i32.const 65535) (i32.const 16) (i64.const 0))"), Fault)
        .errno(&format!("(call $popen_read {h} (i32.const 1) (i32.const 0x100) (i32.const -1) (i64.const 0))"), Fault)
        .errno(&format!("(call $popen_read {h} (i32.const 1) (i32.const -16) (i32.const 16) (i64.const 0))"), Fault)
        .errno(&format!("(call $popen_poll {h} (i32.const 65534))"), Fault)
        .errno(&format!("(call $popen_poll {h} (i32.const -4))"), Fault)
        .errno(&format!("(call $popen_wait {h} (i64.const 0) (i32.const 65533))"), Fault)
        .errno(&format!("(call $popen_communicate {h} (i32.const 0x300) (i32.const 3) (i64.const -1) (i32.const 0) (i32.const 65530))"), Fault)
        .errno(&format!("(call $popen_communicate {h} (i32.const 65535) (i32.const 3) (i64.const -1) (i32.const 0) (i32.const 0x100))"), Fault)
        .errno(&format!("(call $popen_communicate {h} (i32.const 0) (i32.const -1) (i64.const -1) (i32.const 0) (i32.const 0x100))"), Fault)
        .errno(&format!("(call $popen_take_output {h} (i32.const 65534))"), Fault);
    for stream in ["0", "3", "-1", "2147483647"] {
        script = script.errno(&format!("(call $popen_read {h} (i32.const {stream}) (i32.const 0x100) (i32.const 16) (i64.const 0))"), Inval);
    }
    for flags in ["2", "-1", "-2147483648"] {
        script = script.errno(&format!("(call $popen_communicate {h} (i32.const 0) (i32.const 0) (i64.const -1) (i32.const {flags}) (i32.const 0x100))"), Inval);
    }
    for signal in ["0", "65", "-9", "-2147483648"] {
        script = script.errno(
            &format!("(call $popen_send_signal {h} (i32.const {signal}))"),
            Inval,
        );
    }
    script
        // A capacity of 0 reads nothing.
        .expect(&format!("(call $popen_read {h} (i32.const 1) (i32.const 0x100) (i32.const 0) (i64.const -1))"), 0)
        // stderr is /dev/null, not a pipe.
        .errno(&format!("(call $popen_read {h} (i32.const 2) (i32.const 0x100) (i32.const 16) (i64.const 0))"), Inval)
        // None of it disturbed the child.
        .expect(&format!("(call $popen_communicate {h} (i32.const 0x300) (i32.const 3) (i64.const -1) (i32.const 0) (i32.const 0x100))"), 3)
        .expect("(i32.load (i32.const 0x104))", 0)
        .expect("(call $take_result (i32.const 0x400) (i32.const 3))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
}

/// Calls made after the child ended: waited twice, signalled, written to.
pub fn calls_after_the_child_ended() -> Script {
    let h = "(global.get $a)";
    // In a process of its own: a fork made at the same moment by another
    // test's guest in this one would inherit the stdin pipe's read end,
    // and the write after the end would not see EPIPE.
    with_commands(Script::new(Via::Cli))
        .data(0x300, b"hi\n")
        .keep("$a", &popen_stdio(("0x210", "8"), "(i32.const -1)", "(i32.const -1)", "(i32.const -1)"))
        .expect(&format!("(call $popen_wait {h} (i64.const -1) (i32.const 0x100))"), 0)
        .expect(&format!("(call $popen_wait {h} (i64.const 0) (i32.const 0x100))"), 0)
        .expect(&format!("(call $popen_poll {h} (i32.const 0x100))"), 1)
        .expect("(i32.load (i32.const 0x100))", 0)
        .expect(&format!("(call $popen_send_signal {h} (i32.const 9))"), 0)
        .keep("$b", &format!("(call $popen_pid {h})"))
        .expect(&format!("(call $popen_read {h} (i32.const 1) (i32.const 0x100) (i32.const 16) (i64.const -1))"), 0)
        .expect(&format!("(call $popen_read {h} (i32.const 2) (i32.const 0x100) (i32.const 16) (i64.const -1))"), 0)
        .errno(&format!("(call $popen_write {h} (i32.const 0x300) (i32.const 3) (i64.const -1))"), Pipe)
        .expect(&format!("(call $popen_close_stdin {h})"), 0)
        .errno(&format!("(call $popen_close_stdin {h})"), Inval)
        .errno(&format!("(call $popen_write {h} (i32.const 0x300) (i32.const 3) (i64.const -1))"), Inval)
        .errno(&format!("(call $popen_communicate {h} (i32.const 0x300) (i32.const 3) (i64.const -1) (i32.const 0) (i32.const 0x100))"), Inval)
        .expect(&format!("(call $popen_communicate {h} (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 0) (i32.const 0x100))"), 0)
        .expect(&format!("(call $popen_communicate {h} (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 0) (i32.const 0x100))"), 0)
        .expect(&format!("(call $popen_take_output {h} (i32.const 0x100))"), 0)
        .expect(&format!("(call $popen_close {h})"), 0)
        .errno(&format!("(call $popen_close {h})"), BadF)
}

/// `popen` handles as stdio that have no pipe to give, or gave it already;
/// a failed call takes nothing from the handles it names.
pub fn stdio_handles_that_cannot_give() -> Script {
    let cat = ("0x200", "7");
    with_commands(Script::new(Via::Library))
        .keep(
            "$a",
            &popen_stdio(cat, "(i32.const -1)", "(i32.const -2)", "(i32.const -2)"),
        )
        .errno(
            &popen_stdio(cat, "(global.get $a)", "(i32.const -2)", "(i32.const -2)"),
            Inval,
        )
        .keep("$b", POPEN_CAT)
        // A forged stdout after a good stdin: nothing is taken from $b.
        .errno(
            &popen_stdio(cat, "(global.get $b)", "(i32.const 999)", "(i32.const -2)"),
            BadF,
        )
        .keep(
            "$c",
            &popen_stdio(cat, "(global.get $b)", "(i32.const -1)", "(i32.const -2)"),
        )
        .errno(
            &popen_stdio(cat, "(global.get $b)", "(i32.const -2)", "(i32.const -2)"),
            Inval,
        )
        // The same handle's stdin cannot go to both stdout and stderr.
        .errno(
            &popen_stdio(cat, "(i32.const -2)", "(global.get $a)", "(global.get $a)"),
            Inval,
        )
        .keep(
            "$d",
            &popen_stdio(cat, "(i32.const -2)", "(global.get $a)", "(i32.const -2)"),
        )
        .errno(
            &popen_stdio(cat, "(i32.const -2)", "(global.get $a)", "(i32.const -2)"),
            Inval,
        )
        .expect("(call $popen_close (global.get $d))", 0)
        .expect("(call $popen_close (global.get $c))", 0)
        .expect("(call $popen_close (global.get $b))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
}

/// A full handle table is EMFILE (and the refused child is not left
/// running); closing one makes room.
pub fn handle_table_full() -> Script {
    with_commands(Script::new(Via::Library))
        .max_handles(3)
        .keep("$a", POPEN_SLEEP)
        .keep("$b", POPEN_SLEEP)
        .keep("$c", POPEN_SLEEP)
        .errno(POPEN_TRUE, MFile)
        .errno(POPEN_TRUE, MFile)
        .expect("(call $popen_close (global.get $b))", 0)
        .keep("$b", POPEN_TRUE)
        .expect("(call $popen_close (global.get $a))", 0)
        .expect("(call $popen_close (global.get $b))", 0)
        .expect("(call $popen_close (global.get $c))", 0)
}

/// Names and values from the guest are escaped in the host's messages: a
/// newline in a command name, an environment key or a cwd cannot forge a
/// line on the host's stderr (the audit trail people read).
#[test]
fn guest_strings_cannot_forge_host_log_lines() {
    let forged = b"x\nprocbridge: allowed: run \"sh\"";
    let mut env_item = b"LD_\nprocbridge: allowed=1".to_vec();
    env_item.truncate(env_item.len());
    let script = with_commands(Script::new(Via::Cli))
        .list(0x300, &[forged])
        .list(0x400, &[&env_item])
        .data(0x500, forged)
        .errno(
            &popen(("0x300", &(4 + forged.len()).to_string()), ("0", "-1")),
            Perm,
        )
        .errno(
            &popen(("0x210", "8"), ("0x400", &(4 + env_item.len()).to_string())),
            Perm,
        )
        .errno(&popen_cwd(("0x500", &forged.len().to_string())), Perm);
    let out = script.run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("procbridge: denied: run \"x\\nprocbridge"),
        "{}",
        out.stderr
    );
    for line in out.stderr.lines() {
        assert!(
            !line.starts_with("procbridge: allowed"),
            "forged line: {line}\n{}",
            out.stderr
        );
    }
}

/// A child the guest stopped (`SIGSTOP`) cannot make the host hang: waits
/// time out, and closing the handle still kills and reaps it.
pub fn stopped_child_is_still_closed() -> Script {
    with_commands(Script::new(Via::Library))
        .keep("$a", POPEN_SLEEP)
        .expect(
            "(call $popen_send_signal (global.get $a) (i32.const 19))",
            0,
        )
        .errno(
            "(call $popen_wait (global.get $a) (i64.const 20000) (i32.const 0x100))",
            TimedOut,
        )
        .expect("(call $popen_poll (global.get $a) (i32.const 0x100))", 0)
        .expect("(call $popen_close (global.get $a))", 0)
        // And one stopped, then continued, ends normally.
        .keep("$b", POPEN_TRUE)
        .expect(
            "(call $popen_send_signal (global.get $b) (i32.const 19))",
            0,
        )
        .expect(
            "(call $popen_send_signal (global.get $b) (i32.const 18))",
            0,
        )
        .expect(
            "(call $popen_wait (global.get $b) (i64.const -1) (i32.const 0x100))",
            0,
        )
        .expect("(call $popen_close (global.get $b))", 0)
}

/// `popen_call(argv, env, cwd, stdin, stdout, stderr, timeout, code_ptr)`
/// with env inherited and no cwd; `stdio` are i32 constants, or a handle
/// in a global (`$a`).
fn popen_call(argv: (&str, &str), stdio: [&str; 3], timeout: &str, code_ptr: &str) -> String {
    let [stdin, stdout, stderr] = stdio.map(|s| match s.strip_prefix('$') {
        Some(global) => format!("(global.get ${global})"),
        None => format!("(i32.const {s})"),
    });
    format!(
        "(call $popen_call (i32.const {}) (i32.const {}) (i32.const 0) (i32.const -1) \
         (i32.const 0) (i32.const 0) {stdin} {stdout} {stderr} \
         (i64.const {timeout}) (i32.const {code_ptr}))",
        argv.0, argv.1
    )
}

/// `popen_call`: `popen`'s checks, no pipes, a timeout that leaves nothing
/// running, and the return code where the guest asked.
pub fn popen_call_bad_arguments_and_timeouts() -> Script {
    const NULL: [&str; 3] = ["-2", "-2", "-2"];
    with_commands(Script::new(Via::Library))
        .list(0x300, &[b"sh"])
        .list(0x310, &[b"sleep", b"x"])
        .list(0x330, &[b"\xff\xfe"])
        .data(0x400, b"hi\n")
        .errno(&popen_call(("65530", "7"), NULL, "-1", "0x100"), Fault)
        .errno(&popen_call(("0x200", "-1"), NULL, "-1", "0x100"), TooBig)
        .errno(&popen_call(("0x330", "6"), NULL, "-1", "0x100"), Inval)
        .errno(&popen_call(("0x210", "8"), NULL, "-1", "65533"), Fault)
        .errno(&popen_call(("0x210", "8"), NULL, "-1", "-1"), Fault)
        .errno(&popen_call(("0x210", "8"), NULL, "-2", "0x100"), Inval)
        .errno(
            &popen_call(("0x210", "8"), NULL, "-9223372036854775808", "0x100"),
            Inval,
        )
        // Pipes nothing could read or write.
        .errno(&popen_call(("0x210", "8"), ["-1", "-2", "-2"], "-1", "0x100"), Inval)
        .errno(&popen_call(("0x210", "8"), ["-2", "-1", "-2"], "-1", "0x100"), Inval)
        .errno(&popen_call(("0x210", "8"), ["-2", "-2", "-1"], "-1", "0x100"), Inval)
        .errno(&popen_call(("0x210", "8"), ["-3", "-2", "-2"], "-1", "0x100"), Inval)
        .errno(&popen_call(("0x210", "8"), ["12345", "-2", "-2"], "-1", "0x100"), BadF)
        .errno(&popen_call(("0x300", "6"), NULL, "-1", "0x100"), Perm)
        // The return codes, where the guest asked for them.
        .expect(&popen_call(("0x210", "8"), NULL, "-1", "0x100"), 0)
        .expect("(i32.load (i32.const 0x100))", 0)
        .expect(&popen_call(("0x310", "14"), NULL, "-1", "0x104"), 0)
        .expect("(i32.load (i32.const 0x104))", 1)
        // A command past its timeout is killed: the call returns at once
        // and the next one works.
        .errno(&popen_call(("0x220", "14"), NULL, "1000", "0x100"), TimedOut)
        .expect(&popen_call(("0x210", "8"), NULL, "5000000", "0x100"), 0)
        // The end of a pipeline: cat reads what the first cat was given.
        .keep("$a", POPEN_CAT)
        .expect(
            "(call $popen_write (global.get $a) (i32.const 0x400) (i32.const 3) (i64.const -1))",
            3,
        )
        .expect("(call $popen_close_stdin (global.get $a))", 0)
        .expect(&popen_call(("0x200", "7"), ["$a", "-2", "-2"], "-1", "0x100"), 0)
        .expect("(i32.load (i32.const 0x100))", 0)
        // Its stdout went to the second command.
        .errno(
            "(call $popen_read (global.get $a) (i32.const 1) (i32.const 0x500) (i32.const 16) (i64.const 0))",
            Inval,
        )
        .expect("(call $popen_close (global.get $a))", 0)
}
