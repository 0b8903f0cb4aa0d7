//! The WASI functions procbridge answers itself: `random_get` (straight
//! from the kernel, one call) and `proc_exit` (a fork child ends at once).

use crate::support::*;
use procbridge::{GuestBuilder, OutputCapture, Policy, Stdio};

/// A module whose `_start` exits with `body`'s value.
fn exits_with(body: &str) -> String {
    format!(
        r#"(module
        (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit {body})))"#
    )
}

#[test]
fn random_get_fills_memory_or_refuses_a_range_outside_it() {
    // WASI's errno `fault` is 21; nothing is written then.
    for (ptr, len, want) in [
        (0, 65536, 0),
        (65536, 0, 0),
        (65520, 16, 0),
        (65521, 16, 21),
        (65536, 1, 21),
        (0, -1, 21),
        (-16, 16, 21),
        (-1, -1, 21),
    ] {
        let wat = exits_with(&format!(
            "(call $random (i32.const {ptr}) (i32.const {len}))"
        ));
        assert_eq!(run_wat(&wat).unwrap(), want, "random_get({ptr}, {len})");
    }
    // 64 bytes drawn are not all zero, and two draws differ.
    let wat = exits_with(
        "(drop (call $random (i32.const 0) (i32.const 64))) \
         (drop (call $random (i32.const 64) (i32.const 64))) \
         (i32.and \
           (i64.ne (i64.or (i64.load (i32.const 0)) (i64.load (i32.const 8))) (i64.const 0)) \
           (i64.ne (i64.load (i32.const 0)) (i64.load (i32.const 64))))",
    );
    assert_eq!(run_wat(&wat).unwrap(), 1);
}

#[test]
fn proc_exit_keeps_wasi_s_range() {
    assert_eq!(run_wat(&exits_with("(i32.const 125)")).unwrap(), 125);
    for bad in [126, 255, -1] {
        let err = run_wat(&exits_with(&format!("(i32.const {bad})"))).unwrap_err();
        assert!(
            format!("{err:?}").contains("invalid exit status"),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn the_environment_is_exactly_what_was_granted_and_bad_pointers_fault() {
    // environ_sizes_get, then environ_get into 0x100 (table) and 0x200
    // (strings); the count, size, table and strings are written to stdout
    // as raw bytes for the test to read.
    let guest_wat = |sizes: (i32, i32), table: i32, buf: i32| {
        format!(
            r#"(module
        (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_get" (func $get (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          (if (call $sizes (i32.const {})  (i32.const {})) (then unreachable))
          (if (call $get (i32.const {table}) (i32.const {buf})) (then unreachable))
          (call $put (i32.const 0x10) (i32.const 8))
          (call $put (i32.const 0x100) (i32.const 8))
          (call $put (i32.const 0x200) (i32.const 13)))
        (func $put (param $at i32) (param $len i32)
          (i32.store (i32.const 0x40) (local.get $at))
          (i32.store (i32.const 0x44) (local.get $len))
          (drop (call $write (i32.const 1) (i32.const 0x40) (i32.const 1) (i32.const 0x60)))))"#,
            sizes.0, sizes.1
        )
    };
    let policy = Policy::builder().env("A", "1").unwrap().build();
    let run = |wat: &str| {
        let program = runtime().load_bytes("environ.wat", wat.as_bytes()).unwrap();
        let out = OutputCapture::new(1 << 10);
        let mut guest = GuestBuilder::new();
        guest
            .env("B", "xyz")
            .stdout(Stdio::Capture(out.clone()))
            .policy(policy.clone());
        runtime()
            .run(&program, guest.build().unwrap())
            .map(|code| (code, out.contents()))
    };
    let (code, out) = run(&guest_wat((0x10, 0x14), 0x100, 0x200)).unwrap();
    assert_eq!(code, 0);
    let word = |at: usize| u32::from_le_bytes(out[at..at + 4].try_into().unwrap());
    // Two variables, "A=1\0B=xyz\0": 10 bytes; their addresses; the bytes.
    assert_eq!((word(0), word(4)), (2, 10));
    assert_eq!((word(8), word(12)), (0x200, 0x204));
    assert_eq!(&out[16..26], b"A=1\0B=xyz\0");
    // Outside memory or misaligned: the guest traps, as wasmtime-wasi's own.
    for (sizes, table, buf) in [
        ((0xFFFF, 0x14), 0x100, 0x200),
        ((0x10, 0x11), 0x100, 0x200),
        ((0x10, 0x14), 0xFFFC, 0x200),
        ((0x10, 0x14), 0x102, 0x200),
        ((0x10, 0x14), 0x100, 0xFFFA),
        ((0x10, 0x14), 0x100, -1),
    ] {
        let err = run(&guest_wat(sizes, table, buf)).unwrap_err();
        assert!(
            format!("{err:#}").contains("pointer out of bounds or misaligned"),
            "{sizes:?} {table} {buf}: {err:#}"
        );
    }
    // With no variable there is nothing to write and nothing is checked.
    let program = runtime()
        .load_bytes(
            "environ.wat",
            guest_wat((0x10, 0x14), 0xFFFF, -1).as_bytes(),
        )
        .unwrap();
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Null);
    assert_eq!(runtime().run(&program, guest.build().unwrap()).unwrap(), 0);
}
