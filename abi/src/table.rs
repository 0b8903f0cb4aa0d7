//! The table of every host function: the one place a function's name and
//! parameters are written. The host's registrations, the SDK's imports, the
//! hostile suite's signatures, the fuzz guest and the C header
//! (`guest-sdk/c/procbridge.h`) are all made from it, and a test holds
//! `docs/abi.md` to it.
//!
//! [`functions!`](crate::functions) calls a macro of yours with the table:
//!
//! ```text
//! SECTION {
//!     NAME(PARAM: KIND, ...);
//!     ...
//! }
//! ...
//! ```
//!
//! Every function returns an `i32` (`>= 0` success, `-errno` failure). A
//! parameter's KIND says what it is and how it crosses the boundary:
//!
//! | kind | wasm | C | what |
//! |---|---|---|---|
//! | `ptr` | `i32` | `const void *` | guest memory the host reads |
//! | `ptr_mut` | `i32` | `void *` | guest memory the host writes |
//! | `i32_mut` | `i32` | `int32_t *` | `i32`s the host writes |
//! | `len` | `i32` | `int32_t` | a byte count (of the pointer before it) |
//! | `handle` | `i32` | `int32_t` | a handle |
//! | `int` | `i32` | `int32_t` | a number, flags, a pid |
//! | `timeout` | `i64` | `int64_t` | microseconds, `-1` for none |
//!
//! ```
//! macro_rules! count {
//!     ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
//!         [$($(stringify!($name)),*),*].len()
//!     };
//! }
//! assert_eq!(procbridge_abi::functions!(count), procbridge_abi::FUNCTION_COUNT);
//! ```

/// How many functions the table holds.
pub const FUNCTION_COUNT: usize = 62;

/// Calls `$callback!` with the table of every host function (see the
/// [module docs](crate::table)).
#[macro_export]
macro_rules! functions {
    ($callback:ident) => {
        $callback! {
            os {
                getpid();
                getppid();
                last_error(ptr: ptr_mut, cap: len);
                take_result(ptr: ptr_mut, len: len);
                fork();
                kill(pid: int, signal: int);
                cpu_count();
                waitpid(pid: int, options: int, status_ptr: i32_mut);
                times(ptr: ptr_mut, cap: len);
            }
            subprocess {
                popen(
                    argv_ptr: ptr, argv_len: len,
                    env_ptr: ptr, env_len: len,
                    cwd_ptr: ptr, cwd_len: len,
                    stdin: int, stdout: int, stderr: int
                );
                popen_pid(h: handle);
                popen_poll(h: handle, code_ptr: i32_mut);
                popen_wait(h: handle, timeout_us: timeout, code_ptr: i32_mut);
                popen_communicate(
                    h: handle, in_ptr: ptr, in_len: len, timeout_us: timeout,
                    flags: int, out_ptr: i32_mut
                );
                popen_take_output(h: handle, out_ptr: i32_mut);
                popen_write(h: handle, ptr: ptr, len: len, timeout_us: timeout);
                popen_read(h: handle, stream: int, ptr: ptr_mut, cap: len, timeout_us: timeout);
                popen_close_stdin(h: handle);
                popen_send_signal(h: handle, signal: int);
                popen_close(h: handle);
                popen_call(
                    argv_ptr: ptr, argv_len: len,
                    env_ptr: ptr, env_len: len,
                    cwd_ptr: ptr, cwd_len: len,
                    stdin: int, stdout: int, stderr: int,
                    timeout_us: timeout, code_ptr: i32_mut
                );
            }
            process {
                process_start(
                    target_ptr: ptr, target_len: len,
                    args_ptr: ptr, args_len: len,
                    method: int, flags: int
                );
                process_join(h: handle, timeout_us: timeout);
                process_is_alive(h: handle);
                process_pid(h: handle);
                process_exitcode(h: handle, ptr: i32_mut);
                process_terminate(h: handle);
                process_kill(h: handle);
                process_close(h: handle);
                task_return(ptr: ptr, len: len);
                task_error(ptr: ptr, len: len);
                task_next(ptr: ptr_mut, cap: len);
            }
            queue {
                queue_new(maxsize: int, max_bytes: int, flags: int);
                queue_put(q: handle, ptr: ptr, len: len, timeout_us: timeout);
                queue_get(q: handle, ptr: ptr_mut, cap: len, timeout_us: timeout);
                queue_qsize(q: handle);
                queue_empty(q: handle);
                queue_full(q: handle);
                queue_close(q: handle);
                queue_shutdown(q: handle);
                queue_task_done(q: handle);
                queue_join(q: handle, timeout_us: timeout);
            }
            pipe {
                pipe_new(duplex: int, out_ptr: i32_mut);
                pipe_send(c: handle, ptr: ptr, len: len);
                pipe_recv(c: handle, ptr: ptr_mut, cap: len, timeout_us: timeout);
                pipe_poll(c: handle, timeout_us: timeout);
                pipe_close(c: handle);
            }
            pool {
                pool_new(processes: int, maxtasksperchild: int, task_timeout_us: timeout);
                pool_submit(
                    h: handle, name_ptr: ptr, name_len: len,
                    items_ptr: ptr, items_len: len, chunksize: int
                );
                pool_result_ready(h: handle, id: int);
                pool_result_wait(h: handle, id: int, timeout_us: timeout);
                pool_result_get(h: handle, id: int, timeout_us: timeout);
                pool_result_next(h: handle, id: int, order: int, timeout_us: timeout);
                pool_result_drop(h: handle, id: int);
                pool_pids(h: handle);
                pool_close(h: handle);
                pool_terminate(h: handle);
                pool_join(h: handle, timeout_us: timeout);
                pool_drop(h: handle);
                pool_share(h: handle, handle: handle);
                pool_retry_lost(h: handle, retry: int);
                cluster_call(name_ptr: ptr, name_len: len, args_ptr: ptr, args_len: len);
            }
        }
    };
}

/// The wasm type of a parameter kind (`i32`, or `i64` for `timeout`).
#[macro_export]
macro_rules! wasm_type {
    (timeout) => {
        i64
    };
    ($kind:ident) => {
        i32
    };
}

/// Calls `$callback!` with every constant of the ABI: `NAME = VALUE;` in
/// groups, each the module of this crate that defines them. The C header
/// prefixes the names with `PB_`.
#[macro_export]
macro_rules! constants {
    ($callback:ident) => {
        $callback! {
            crate_root {
                NO_TIMEOUT = $crate::NO_TIMEOUT;
                NO_HANDLE = $crate::NO_HANDLE;
            }
            subprocess {
                STDIO_INHERIT = $crate::subprocess::STDIO_INHERIT;
                STDIO_PIPE = $crate::subprocess::STDIO_PIPE;
                STDIO_NULL = $crate::subprocess::STDIO_NULL;
                STDIO_STDOUT = $crate::subprocess::STDIO_STDOUT;
                ENV_INHERIT = $crate::subprocess::ENV_INHERIT;
                STREAM_STDOUT = $crate::subprocess::STREAM_STDOUT;
                STREAM_STDERR = $crate::subprocess::STREAM_STDERR;
                COMMUNICATE_KILL_ON_TIMEOUT = $crate::subprocess::COMMUNICATE_KILL_ON_TIMEOUT;
            }
            process {
                METHOD_DEFAULT = $crate::process::METHOD_DEFAULT;
                METHOD_FORK = $crate::process::METHOD_FORK;
                METHOD_SPAWN = $crate::process::METHOD_SPAWN;
                FLAG_DAEMON = $crate::process::FLAG_DAEMON;
                FLAG_DROP_RUN = $crate::process::FLAG_DROP_RUN;
                FLAG_DROP_DIRS = $crate::process::FLAG_DROP_DIRS;
                FLAG_DROP_ENV = $crate::process::FLAG_DROP_ENV;
                WNOHANG = $crate::process::WNOHANG;
            }
            pool {
                STATUS_OK = $crate::pool::STATUS_OK;
                STATUS_FAILED = $crate::pool::STATUS_FAILED;
                STATUS_WORKER_LOST = $crate::pool::STATUS_WORKER_LOST;
                STATUS_TIMED_OUT = $crate::pool::STATUS_TIMED_OUT;
                STATUS_TERMINATED = $crate::pool::STATUS_TERMINATED;
                NEXT_ORDERED = $crate::pool::NEXT_ORDERED;
                NEXT_UNORDERED = $crate::pool::NEXT_UNORDERED;
            }
        }
    };
}
