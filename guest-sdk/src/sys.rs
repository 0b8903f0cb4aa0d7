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

    // subprocess
    #[allow(clippy::too_many_arguments)]
    pub fn popen(
        argv_ptr: *const u8,
        argv_len: i32,
        env_ptr: *const u8,
        env_len: i32,
        cwd_ptr: *const u8,
        cwd_len: i32,
        stdin: i32,
        stdout: i32,
        stderr: i32,
    ) -> i32;
    pub fn popen_pid(h: i32) -> i32;
    pub fn popen_poll(h: i32, code_ptr: *mut i32) -> i32;
    pub fn popen_wait(h: i32, timeout_us: i64, code_ptr: *mut i32) -> i32;
    pub fn popen_communicate(
        h: i32,
        in_ptr: *const u8,
        in_len: i32,
        timeout_us: i64,
        flags: i32,
        out_ptr: *mut i32,
    ) -> i32;
    pub fn popen_take_output(h: i32, out_ptr: *mut i32) -> i32;
    pub fn popen_write(h: i32, ptr: *const u8, len: i32, timeout_us: i64) -> i32;
    pub fn popen_read(h: i32, stream: i32, ptr: *mut u8, cap: i32, timeout_us: i64) -> i32;
    pub fn popen_close_stdin(h: i32) -> i32;
    pub fn popen_send_signal(h: i32, signal: i32) -> i32;
    pub fn popen_close(h: i32) -> i32;
    // os.fork and multiprocessing.Process
    pub fn fork() -> i32;
    pub fn waitpid(pid: i32, options: i32, status: *mut i32) -> i32;
    pub fn kill(pid: i32, signal: i32) -> i32;
    pub fn cpu_count() -> i32;
    pub fn process_start(
        target: *const u8,
        target_len: i32,
        args: *const u8,
        args_len: i32,
        method: i32,
        flags: i32,
    ) -> i32;
    pub fn process_join(h: i32, timeout_us: i64) -> i32;
    pub fn process_is_alive(h: i32) -> i32;
    pub fn process_pid(h: i32) -> i32;
    pub fn process_exitcode(h: i32, exitcode: *mut i32) -> i32;
    pub fn process_terminate(h: i32) -> i32;
    pub fn process_kill(h: i32) -> i32;
    pub fn process_close(h: i32) -> i32;
    pub fn task_return(ptr: *const u8, len: i32) -> i32;
    pub fn task_error(ptr: *const u8, len: i32) -> i32;
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
    // multiprocessing.Pool
    pub fn pool_new(processes: i32, maxtasksperchild: i32, task_timeout_us: i64) -> i32;
    pub fn pool_submit(
        h: i32,
        name_ptr: *const u8,
        name_len: i32,
        items_ptr: *const u8,
        items_len: i32,
        chunksize: i32,
    ) -> i32;
    pub fn pool_result_ready(h: i32, id: i32) -> i32;
    pub fn pool_result_wait(h: i32, id: i32, timeout_us: i64) -> i32;
    pub fn pool_result_get(h: i32, id: i32, timeout_us: i64) -> i32;
    pub fn pool_result_next(h: i32, id: i32, order: i32, timeout_us: i64) -> i32;
    pub fn pool_result_drop(h: i32, id: i32) -> i32;
    pub fn pool_pids(h: i32) -> i32;
    pub fn pool_close(h: i32) -> i32;
    pub fn pool_terminate(h: i32) -> i32;
    pub fn pool_join(h: i32, timeout_us: i64) -> i32;
    pub fn pool_drop(h: i32) -> i32;
    pub fn pool_share(h: i32, handle: i32) -> i32;
}
