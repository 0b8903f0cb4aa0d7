//! The WASI functions procbridge answers itself: `random_get` (straight
//! from the kernel, one call) and `proc_exit` (a fork child ends at once).

use crate::support::*;

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
