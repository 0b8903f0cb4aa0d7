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

    // multiprocessing.Queue
    pub fn queue_new(maxsize: i32, max_bytes: i32, joinable: i32) -> i32;
    pub fn queue_put(q: i32, ptr: *const u8, len: i32, timeout_us: i64) -> i32;
    pub fn queue_get(q: i32, ptr: *mut u8, cap: i32, timeout_us: i64) -> i32;
    pub fn queue_qsize(q: i32) -> i32;
    pub fn queue_empty(q: i32) -> i32;
    pub fn queue_full(q: i32) -> i32;
    pub fn queue_close(q: i32) -> i32;
    pub fn queue_shutdown(q: i32) -> i32;
    pub fn queue_task_done(q: i32) -> i32;
    pub fn queue_join(q: i32, timeout_us: i64) -> i32;

    // multiprocessing.Pipe
    pub fn pipe_new(duplex: i32, out_ptr: *mut i32) -> i32;
    pub fn pipe_send(c: i32, ptr: *const u8, len: i32) -> i32;
    pub fn pipe_recv(c: i32, ptr: *mut u8, cap: i32, timeout_us: i64) -> i32;
    pub fn pipe_poll(c: i32, timeout_us: i64) -> i32;
    pub fn pipe_close(c: i32) -> i32;
}
