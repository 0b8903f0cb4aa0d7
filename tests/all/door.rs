//! The door (`procbridge python`'s way into the host functions) attacked
//! from below Python: a raw WASI guest writes hostile frames and hostile
//! WASI arguments to it. Every bad input is an error code, never a panic,
//! and a frame can only call what a Rust guest could call, as it could.

use crate::support::*;
use procbridge::python::frame::{encode as frame, Part};
use procbridge::python::DOOR_FD;
use procbridge::{GuestBuilder, Policy, Stdio};
use std::sync::Arc;

/// WASI errno values.
const WASI_BADF: i32 = 8;
const WASI_FAULT: i32 = 21;
const WASI_INVAL: i32 = 28;
const WASI_AGAIN: i32 = 6;
const WASI_MSGSIZE: i32 = 35;
const WASI_NFILE: i32 = 41;
const WASI_NOENT: i32 = 44;

/// Where things are in the test guest's one page of memory.
const IOV: u32 = 0x10;
const NWRITTEN: u32 = 0x20;
const OUT: u32 = 0x30;
const NAME: u32 = 0x40;
const FRAME: u32 = 0x100;

fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A guest that runs `checks` in order — each a WAT expression and the
/// i32 it must give — and exits with 100 + the index of the first that
/// does not, or 0. `data` is placed at FRAME.
fn door_guest(data: &[u8], checks: &[(String, i32)]) -> String {
    door_guest_with(data, &[], checks)
}

/// [`door_guest`] with more data: each at its address.
fn door_guest_with(data: &[u8], more: &[(u32, &[u8])], checks: &[(String, i32)]) -> String {
    let more: String = more
        .iter()
        .map(|(at, bytes)| format!("(data (i32.const {at}) \"{}\")", wat_bytes(bytes)))
        .collect();
    let mut body = String::new();
    for (i, (expr, want)) in checks.iter().enumerate() {
        body += &format!(
            "(if (i32.ne {expr} (i32.const {want})) (then (call $exit (i32.const {})))) ",
            100 + i
        );
    }
    format!(
        r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $stat (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (global $n (mut i32) (i32.const 0))
        (global $r (mut i32) (i32.const 0))
        {more}
        (data (i32.const {NAME}) "door")
        (data (i32.const 0x50) "nope")
        (data (i32.const 0x60) "../etc")
        (data (i32.const {FRAME}) "{}")
        (func $iov (param $base i32) (param $len i32) (result i32)
          (i32.store (i32.const {IOV}) (local.get $base))
          (i32.store (i32.const {}) (local.get $len))
          (i32.const {IOV}))
        (func (export "_start") {body} (call $exit (i32.const 0))))"#,
        wat_bytes(data),
        IOV + 4,
    )
}

/// Writes the `len` bytes at FRAME to the door; the fd_write result.
fn call_frame(len: usize) -> String {
    format!(
        "(call $write (i32.const {DOOR_FD}) (call $iov (i32.const {FRAME}) (i32.const {len})) \
         (i32.const 1) (i32.const {NWRITTEN}))"
    )
}

/// The return value the host wrote into the frame.
fn ret() -> String {
    format!("(i32.load (i32.const {}))", FRAME + 4)
}

/// Runs `wat` with a door (and no grants): its exit code.
fn run_with_door(wat: &str) -> i32 {
    try_with_door(wat).unwrap()
}

fn try_with_door(wat: &str) -> anyhow::Result<i32> {
    let rt = runtime();
    let program = rt.load_bytes("door.wat", wat.as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let door =
        cap_std::fs::Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
    let mut guest = GuestBuilder::new();
    guest
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .policy(Policy::default())
        .door(Arc::new(door), "/dev/procbridge");
    rt.run(&program, guest.build().unwrap())
}

fn expect(data: &[u8], checks: &[(String, i32)]) {
    let code = run_with_door(&door_guest(data, checks));
    assert_eq!(
        code,
        0,
        "check {} failed: {:?}",
        code - 100,
        checks.get((code - 100) as usize)
    );
}

#[test]
fn the_door_opens_only_by_its_name_in_its_directory() {
    let open = |dir: i32, name: u32, len: i32, out: u32| {
        format!(
            "(call $open (i32.const {dir}) (i32.const 0) (i32.const {name}) (i32.const {len}) \
             (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) \
             (i32.const {out}))"
        )
    };
    expect(
        b"",
        &[
            (open(3, NAME, 4, OUT), 0),
            (format!("(i32.load (i32.const {OUT}))"), DOOR_FD),
            // Another name in its directory is an ordinary (empty)
            // directory's: nothing there, and no way out.
            (format!("(i32.eqz {})", open(3, 0x50, 4, OUT)), 0),
            (format!("(i32.eqz {})", open(3, 0x60, 6, OUT)), 0),
            // The result outside memory.
            (open(3, NAME, 4, 0xFFFF_FFF0), WASI_FAULT),
            // Its stat, its reads, its close.
            (format!("(call $stat (i32.const {DOOR_FD}) (i32.const {OUT}))"), 0),
            (format!("(i32.load8_u (i32.const {OUT}))"), 2),
            (format!("(call $stat (i32.const {DOOR_FD}) (i32.const 0xFFFFFFF0))"), WASI_FAULT),
            (
                format!(
                    "(call $read (i32.const {DOOR_FD}) (call $iov (i32.const {FRAME}) (i32.const 8)) \
                     (i32.const 1) (i32.const {NWRITTEN}))"
                ),
                WASI_BADF,
            ),
            (format!("(call $close (i32.const {DOOR_FD}))"), 0),
        ],
    );
}

#[test]
fn a_name_outside_memory_is_wasi_s_business() {
    // Not the door's name: wasmtime-wasi answers as it does for any guest —
    // a trap for a path outside memory, an error for an impossible length.
    // The guest ends or gets its error; the host goes on.
    let open = |name: u32, len: i32| {
        format!(
            "(call $open (i32.const 3) (i32.const 0) (i32.const {name}) (i32.const {len}) \
             (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const {OUT}))"
        )
    };
    let err = try_with_door(&door_guest(b"", &[(open(0xFFFF, 4), 0)])).unwrap_err();
    assert!(format!("{err:?}").contains("out of bounds"), "{err:?}");
    let wat = door_guest(b"", &[(format!("(i32.eqz {})", open(NAME, -1)), 0)]);
    assert_eq!(run_with_door(&wat), 0);
}

#[test]
fn a_frame_calls_the_function_a_rust_guest_would_call() {
    let getpid = frame(b"getpid", &[]);
    expect(
        &getpid,
        &[
            (call_frame(getpid.len()), 0),
            (ret(), std::process::id() as i32),
            // The whole frame was written.
            (
                format!("(i32.load (i32.const {NWRITTEN}))"),
                getpid.len() as i32,
            ),
        ],
    );
    // waitpid(-1, WNOHANG, status): no children, as for a Rust guest.
    let waitpid = frame(
        b"waitpid",
        &[Part::I32(-1), Part::I32(1), Part::Buf(&[0; 4])],
    );
    expect(&waitpid, &[(call_frame(waitpid.len()), 0), (ret(), -10)]);
    // Pointers passed as plain integers are checked by the host function.
    let pipe_new = frame(b"pipe_new", &[Part::I32(1), Part::I32(-16)]);
    expect(&pipe_new, &[(call_frame(pipe_new.len()), 0), (ret(), -14)]);
    // A command the policy does not grant is refused as for a Rust guest.
    let mut argv = Vec::new();
    argv.extend_from_slice(&4u32.to_le_bytes());
    argv.extend_from_slice(b"true");
    let mut popen_args = vec![Part::BufLen(&argv)];
    popen_args.extend([0, 0, 0, 0, -2, -2, -2].map(Part::I32));
    let popen = frame(b"popen", &popen_args);
    expect(&popen, &[(call_frame(popen.len()), 0), (ret(), -1)]);
}

#[test]
fn frames_that_lie_are_refused_with_an_error_code() {
    let wasi = frame(
        b"fd_write",
        &[Part::I32(1), Part::I32(0), Part::I32(0), Part::I32(0)],
    );
    let unknown = frame(b"no_such_function", &[]);
    let wrong_arity = frame(b"getpid", &[Part::I32(1)]);
    let wrong_type = frame(b"kill", &[Part::I64(1), Part::I32(9)]);
    let bad_tag = {
        let mut f = frame(b"getpid", &[Part::I32(1)]);
        let at = f.len() - 5;
        f[at] = b'x';
        f
    };
    let not_utf8 = frame(&[0xff, 0xfe], &[]);
    let too_many = frame(b"getpid", &[Part::I32(0); 17]);
    let long_buffer = {
        let mut f = frame(b"getpid", &[Part::Buf(&[0; 4])]);
        let at = f.len() - 8;
        f[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        f
    };
    let trailing = {
        let mut f = frame(b"getpid", &[]);
        f.extend_from_slice(b"junk");
        f
    };
    let two_rests = frame(b"pipe_send", &[Part::Rest(b""), Part::Rest(b"")]);
    // The signatures the door calls typed: a timeout given as an i32, a
    // handle as an i64, and well-typed calls on a handle that is not open
    // (the function's own answer, EBADF).
    let short_timeout = frame(
        b"queue_get",
        &[Part::I32(1), Part::BufLen(&[0; 8]), Part::I32(0)],
    );
    let long_handle = frame(b"popen_close", &[Part::I64(1)]);
    let queue_get = frame(
        b"queue_get",
        &[Part::I32(999), Part::BufLen(&[0; 8]), Part::I64(0)],
    );
    let pipe_send = frame(b"pipe_send", &[Part::I32(999), Part::Rest(b"hi")]);
    let popen_close = frame(b"popen_close", &[Part::I32(999)]);
    for (what, f, ret_value) in [
        ("a WASI function", &wasi, -38),
        ("an unknown function", &unknown, -38),
        ("too many arguments", &wrong_arity, -22),
        ("an i64 for an i32", &wrong_type, -22),
        ("an unknown tag", &bad_tag, -22),
        ("a name that is not UTF-8", &not_utf8, -22),
        ("more than 16 arguments", &too_many, -22),
        ("a buffer longer than the frame", &long_buffer, -22),
        ("bytes after the last argument", &trailing, -22),
        ("two rests", &two_rests, -22),
        ("an i32 for a typed call's i64", &short_timeout, -22),
        ("an i64 for a typed call's handle", &long_handle, -22),
        ("a typed message call on no handle", &queue_get, -9),
        ("a typed buffer call on no handle", &pipe_send, -9),
        ("a typed handle call on no handle", &popen_close, -9),
    ] {
        let code = run_with_door(&door_guest(
            f,
            &[(call_frame(f.len()), 0), (ret(), ret_value)],
        ));
        assert_eq!(code, 0, "{what}: check {} failed", code - 100);
    }
}

#[test]
fn hostile_writes_to_the_door_are_wasi_errors() {
    let getpid = frame(b"getpid", &[]);
    let len = getpid.len() as i32;
    let write = |iov: &str, count: i32, nwritten: u32| {
        format!(
            "(call $write (i32.const {DOOR_FD}) {iov} (i32.const {count}) (i32.const {nwritten}))"
        )
    };
    let iov = |base: u32, len: i32| format!("(call $iov (i32.const {base}) (i32.const {len}))");
    expect(
        &getpid,
        &[
            // Not a frame: too short for the header, or not its magic.
            (write(&iov(FRAME, 4), 1, NWRITTEN), WASI_INVAL),
            (write(&iov(FRAME + 1, len - 1), 1, NWRITTEN), WASI_INVAL),
            // One buffer only.
            (write(&iov(FRAME, len), 2, NWRITTEN), WASI_INVAL),
            (write(&iov(FRAME, len), 0, NWRITTEN), WASI_INVAL),
            // The vector, the frame or the count outside memory.
            (write("(i32.const 0xFFFFFFF8)", 1, NWRITTEN), WASI_FAULT),
            (write(&iov(0xFFF0, 0x100), 1, NWRITTEN), WASI_FAULT),
            (write(&iov(0xFFFF_FF00, len), 1, NWRITTEN), WASI_FAULT),
            (write(&iov(FRAME, -1), 1, NWRITTEN), WASI_INVAL),
            (write(&iov(FRAME, len), 1, 0xFFFF_FFFE), WASI_FAULT),
            // After all that, the door still works.
            (write(&iov(FRAME, len), 1, NWRITTEN), 0),
            (ret(), std::process::id() as i32),
        ],
    );
}

#[test]
fn the_door_is_closed_to_a_guest_that_was_not_given_one() {
    // The same frame through the same descriptor, with no door: EBADF; so
    // are a bound door's descriptor and name.
    let getpid = frame(b"getpid", &[]);
    let wat = door_guest_with(
        &getpid,
        &[(NAMES, b"bind/getpid/1")],
        &[
            (call_frame(getpid.len()), WASI_BADF),
            (read(DOOR_FD + 1, BUF, 8), WASI_BADF),
            (format!("(i32.eqz {})", open(NAMES, 13)), 0),
        ],
    );
    assert_eq!(run_wat(&wat).unwrap(), 0);
}

// Bound doors: `bind/FUNCTION/HANDLE[/TIMEOUT]`, one function on one handle.

/// Where bound doors' names, messages and buffers are.
const NAMES: u32 = 0x400;
const MSG: u32 = 0x600;
const BUF: u32 = 0x800;
const TAKE: u32 = 0xA00;

/// Opens the name of `len` bytes at `name` in the door's directory; the
/// descriptor lands at OUT.
fn open(name: u32, len: usize) -> String {
    format!(
        "(call $open (i32.const 3) (i32.const 0) (i32.const {name}) (i32.const {len}) \
         (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) \
         (i32.const {OUT}))"
    )
}

fn read(fd: i32, base: u32, len: i32) -> String {
    format!(
        "(call $read (i32.const {fd}) (call $iov (i32.const {base}) (i32.const {len})) \
         (i32.const 1) (i32.const {NWRITTEN}))"
    )
}

fn write(fd: i32, base: u32, len: i32) -> String {
    format!(
        "(call $write (i32.const {fd}) (call $iov (i32.const {base}) (i32.const {len})) \
         (i32.const 1) (i32.const {NWRITTEN}))"
    )
}

fn load(at: u32) -> String {
    format!("(i32.load (i32.const {at}))")
}

/// A guest that makes queue 1 and has `names` at NAMES, NAMES + 0x20, ...
fn bound_guest(names: &[&[u8]], checks: &[(String, i32)]) -> String {
    let queue_new = frame(b"queue_new", &[Part::I32(0), Part::I32(0), Part::I32(0)]);
    let result_len = frame(b"result_len", &[]);
    let take = frame(b"take_result", &[Part::BufLen(&[0; 100])]);
    let mut more: Vec<(u32, &[u8])> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (NAMES + 0x20 * i as u32, *name))
        .collect();
    more.push((MSG, &[b'm'; 100]));
    more.push((TAKE, &take));
    more.push((TAKE + 0x100, &result_len));
    let mut all = vec![(call_frame(queue_new.len()), 0), (ret(), 1)];
    all.extend_from_slice(checks);
    all.push(("(i32.const 0)".into(), 0));
    door_guest_with(&queue_new, &more, &all)
}

fn name_at(i: u32) -> u32 {
    NAMES + 0x20 * i
}

#[test]
fn a_bound_door_is_one_function_on_one_handle() {
    let names: [&[u8]; 3] = [
        b"bind/queue_put/1",
        b"bind/queue_get/1",
        b"bind/queue_get/1/0",
    ];
    let (put, get, poll) = (DOOR_FD + 1, DOOR_FD + 2, DOOR_FD + 3);
    let result_len = frame(b"result_len", &[]);
    let take = frame(b"take_result", &[Part::BufLen(&[0; 100])]);
    let frame_at = |at: u32, len: usize| {
        format!(
            "(call $write (i32.const {DOOR_FD}) (call $iov (i32.const {at}) (i32.const {len})) \
             (i32.const 1) (i32.const {NWRITTEN}))"
        )
    };
    let wat = bound_guest(
        &names,
        &[
            (open(name_at(0), 16), 0),
            (load(OUT), put),
            (open(name_at(1), 16), 0),
            (load(OUT), get),
            (open(name_at(2), 18), 0),
            (load(OUT), poll),
            (
                format!("(call $stat (i32.const {put}) (i32.const {OUT}))"),
                0,
            ),
            // put: its return value (0) is the count.
            (write(put, MSG, 5), 0),
            (load(NWRITTEN), 0),
            // get: the message, its length the count.
            (read(get, BUF, 64), 0),
            (load(NWRITTEN), 5),
            (load(BUF), i32::from_le_bytes(*b"mmmm")),
            // With a timeout of 0 on an empty queue: EAGAIN.
            (read(poll, BUF, 64), WASI_AGAIN),
            // A message longer than the buffer waits for take_result; the
            // door says how long it is.
            (write(put, MSG, 100), 0),
            (read(get, BUF, 8), WASI_MSGSIZE),
            (frame_at(TAKE + 0x100, result_len.len()), 0),
            (load(TAKE + 0x100 + 4), 100),
            (frame_at(TAKE, take.len()), 0),
            (load(TAKE + 4), 0),
            // Nothing waiting: result_len says EINVAL.
            (frame_at(TAKE + 0x100, result_len.len()), 0),
            (load(TAKE + 0x100 + 4), -22),
            // Closed: its descriptor is WASI's again (not open).
            (format!("(call $close (i32.const {poll}))"), 0),
            (format!("(call $close (i32.const {poll}))"), WASI_BADF),
            (read(poll, BUF, 8), WASI_BADF),
            // Its slot is reused.
            (open(name_at(2), 18), 0),
            (load(OUT), poll),
        ],
    );
    assert_eq!(run_with_door(&wat), 0, "{}", wat.len());
}

#[test]
fn hostile_bound_doors_are_refused_and_lose_no_message() {
    let names: [&[u8]; 11] = [
        b"bind/queue_put/1",
        b"bind/queue_get/1",
        b"bind/nope/1",
        b"bind/getpid/1",
        b"bind/queue_get/0",
        b"bind/pipe_send/1/5",
        b"bind/queue_get/1/-2",
        b"bind/queue_get/2",
        b"bind/queue_get/1/x",
        b"bind/../door",
        b"bind/queue_new/1",
    ];
    let (put, get, other) = (DOOR_FD + 1, DOOR_FD + 2, DOOR_FD + 3);
    let wat = bound_guest(
        &names,
        &[
            (open(name_at(0), 16), 0),
            (open(name_at(1), 16), 0),
            // No such function, not a buffer function, no handle 0, a
            // timeout for a function without one or below -1, junk.
            (open(name_at(2), 11), WASI_NOENT),
            (open(name_at(3), 13), WASI_INVAL),
            (open(name_at(4), 16), WASI_INVAL),
            (open(name_at(5), 18), WASI_INVAL),
            (open(name_at(6), 19), WASI_INVAL),
            (open(name_at(8), 18), WASI_INVAL),
            (open(name_at(9), 12), WASI_INVAL),
            // Only the functions that carry messages are bound.
            (open(name_at(10), 16), WASI_INVAL),
            // A handle that is not the guest's opens, and each call is EBADF.
            (open(name_at(7), 16), 0),
            (load(OUT), other),
            (read(other, BUF, 8), WASI_BADF),
            (write(other, MSG, 8), WASI_BADF),
            (write(put, MSG, 7), 0),
            // One buffer only; the vector, the buffer or the count outside
            // memory: errors, and the message is still there.
            (
                format!(
                    "(call $read (i32.const {get}) (call $iov (i32.const {BUF}) (i32.const 8)) \
                     (i32.const 2) (i32.const {NWRITTEN}))"
                ),
                WASI_INVAL,
            ),
            (
                format!(
                    "(call $read (i32.const {get}) (i32.const 0xFFFFFFFC) (i32.const 1) \
                     (i32.const {NWRITTEN}))"
                ),
                WASI_FAULT,
            ),
            (read(get, 0xFFFF_FF00, 8), WASI_FAULT),
            (read(get, 0xFFF0, 0x100), WASI_FAULT),
            (
                format!(
                    "(call $read (i32.const {get}) (call $iov (i32.const {BUF}) (i32.const 8)) \
                     (i32.const 1) (i32.const 0xFFFE))"
                ),
                WASI_FAULT,
            ),
            (write(put, 0xFFFF_FF00, 8), WASI_FAULT),
            (read(get, BUF, 8), 0),
            (load(NWRITTEN), 7),
            // Every slot taken: ENFILE, and the door goes on.
            (
                format!(
                    "(block $out (result i32) (loop $again \
                       (global.set $r {}) \
                       (br_if $out (global.get $r) (global.get $r)) \
                       (global.set $n (i32.add (global.get $n) (i32.const 1))) \
                       (br $again)) (i32.const -1))",
                    open(name_at(1), 16)
                ),
                WASI_NFILE,
            ),
            ("(global.get $n)".into(), 255 - 3),
            (format!("(call $close (i32.const {other}))"), 0),
            (open(name_at(1), 16), 0),
            (load(OUT), other),
            (write(put, MSG, 3), 0),
            (read(other, BUF, 8), 0),
            (load(NWRITTEN), 3),
        ],
    );
    assert_eq!(run_with_door(&wat), 0);
}
