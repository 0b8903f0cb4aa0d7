//! Raw imports from the host's `procbridge` module.
//!
//! These are the functions listed in the host's `docs/abi.md`, with the ABI's
//! conventions: `i32` results, negative errno on failure. Use the safe API in
//! the other modules instead; this module exists so that everything unsafe
//! about talking to the host is in one place.
#![allow(missing_docs)]

#[link(wasm_import_module = "procbridge")]
extern "C" {
    pub fn getpid() -> i32;
    pub fn getppid() -> i32;
    pub fn last_error(ptr: *mut u8, cap: i32) -> i32;
    pub fn take_result(ptr: *mut u8, len: i32) -> i32;
}
