//! Host functions called directly from WAT with bad arguments: each gives the
//! documented errno, never a host panic.

use crate::support::*;
use procbridge::Errno;

/// A module that calls `call` (an expression producing an i32) and exits
/// with 0 if the result equals `expect`, else with 100.
fn expect_result(imports: &str, call: &str, expect: i32) -> i32 {
    let wat = format!(
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            {imports}
            (memory (export "memory") 1)
            (func (export "_start")
              (if (i32.ne (block (result i32) {call}) (i32.const {expect}))
                (then (call $exit (i32.const 100))))
              (call $exit (i32.const 0))))"#
    );
    run_wat(&wat).unwrap()
}

const LAST_ERROR: &str =
    r#"(import "procbridge" "last_error" (func $last_error (param i32 i32) (result i32)))"#;
const TAKE_RESULT: &str =
    r#"(import "procbridge" "take_result" (func $take_result (param i32 i32) (result i32)))"#;

#[test]
fn last_error_out_of_bounds_is_efault() {
    // Make a message exist first, then ask for it at a bad address.
    let imports = format!("{LAST_ERROR}{TAKE_RESULT}");
    let call = "(drop (call $take_result (i32.const 0) (i32.const 0))) \
                (call $last_error (i32.const 65530) (i32.const 100))";
    assert_eq!(expect_result(&imports, call, Errno::Fault.to_return()), 0);
    let call = "(drop (call $take_result (i32.const 0) (i32.const 0))) \
                (call $last_error (i32.const -1) (i32.const 1))";
    assert_eq!(expect_result(&imports, call, Errno::Fault.to_return()), 0);
}

#[test]
fn last_error_reports_the_message_length() {
    // "no result is waiting to be taken" is 32 bytes; a zero-capacity buffer
    // is fine.
    let imports = format!("{LAST_ERROR}{TAKE_RESULT}");
    let call = "(drop (call $take_result (i32.const 0) (i32.const 0))) \
                (call $last_error (i32.const 0) (i32.const 0))";
    assert_eq!(expect_result(&imports, call, 32), 0);
    let call = "(drop (call $take_result (i32.const 0) (i32.const 0))) \
                (call $last_error (i32.const 0) (i32.const -5))";
    assert_eq!(expect_result(&imports, call, 32), 0);
}

#[test]
fn take_result_without_a_result_is_einval() {
    let call = "(call $take_result (i32.const 0) (i32.const 0))";
    assert_eq!(
        expect_result(TAKE_RESULT, call, Errno::Inval.to_return()),
        0
    );
    let call = "(call $take_result (i32.const -8) (i32.const 2147483647))";
    assert_eq!(
        expect_result(TAKE_RESULT, call, Errno::Fault.to_return()),
        0
    );
}

#[test]
fn pids_are_real() {
    let imports = r#"(import "procbridge" "getpid" (func $getpid (result i32)))"#;
    let pid = std::process::id() as i32;
    assert_eq!(expect_result(imports, "(call $getpid)", pid), 0);
}

#[test]
fn a_guest_without_memory_gets_efault() {
    // No memory, so no proc_exit: return normally on success, trap otherwise.
    let wat = r#"(module
        (import "procbridge" "last_error" (func $le (param i32 i32) (result i32)))
        (func (export "_start")
          (if (i32.ne (call $le (i32.const 0) (i32.const 4)) (i32.const -14))
            (then unreachable))))"#;
    assert_eq!(run_wat(wat).unwrap(), 0);
}
