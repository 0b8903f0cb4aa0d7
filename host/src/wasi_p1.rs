//! WASI preview 1, linked by procbridge: wasmtime-wasi's implementation of
//! every function, each call's future run on this OS process's own Tokio
//! runtime ([`process_local::block_on`]).
//!
//! wasmtime-wasi's own linker glue runs a call on whatever runtime the
//! thread has entered, or on a runtime of its own made once per program.
//! Neither survives a `fork`: the child has none of the parent's threads,
//! so a future waiting on a timer or a blocking-pool thread would wait for
//! ever. Entering a runtime around the whole guest instead would make every
//! fork child start one (a thread, 100-200 µs) before running a line of
//! guest code. Here a process makes its runtime at its first call of a
//! function that may wait (file and stream I/O, `poll_oneoff`), and a
//! runtime without threads: a call's future is driven by the calling
//! thread itself.
//!
//! The guest's memory is looked up once per store
//! ([`Bridge::memory`](crate::ctx::Bridge)), not by name on every call.
//!
//! Four functions procbridge answers itself and links elsewhere:
//! `environ_get` and `environ_sizes_get` (`environ.rs`), `random_get`
//! (`os_random.rs`), `proc_exit` (`api/process.rs`: a fork child's exit
//! ends its own process). The Python door shadows five of these to take
//! its own descriptor and hands the rest back ([`call_wasi`]).

use crate::ctx::HostState;
use wasmtime::{Caller, Linker};

/// The module name of WASI preview 1's imports.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// Calls wasmtime-wasi's preview 1 function `$func` with `$caller`'s
/// memory and WASI state, as its own linker glue does (the store's
/// host-call fuel passed on). The functions that may wait are futures, run
/// on this process's runtime; `sync` ones (clocks, arguments, `fd_tell`
/// ...) are plain calls.
macro_rules! call_wasi {
    ($caller:ident, $func:ident ($($arg:expr),*)) => {
        $crate::wasi_p1::call_wasi!(@call $caller, $func($($arg),*), $crate::wasi_p1::waiting)
    };
    ($caller:ident, sync $func:ident ($($arg:expr),*)) => {
        $crate::wasi_p1::call_wasi!(@call $caller, $func($($arg),*), std::convert::identity)
    };
    (@call $caller:ident, $func:ident ($($arg:expr),*), $run:path) => {{
        let fuel = wasmtime::AsContextMut::as_context_mut(&mut $caller).hostcall_fuel();
        let memory = $crate::guest_mem::wasi_memory(&mut $caller)?;
        let (bytes, state) = memory.data_and_store_mut(&mut $caller);
        let mut mem = wiggle::GuestMemory::Unshared(bytes);
        wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1::set_hostcall_fuel(
            &mut state.wasi,
            fuel,
        );
        $run(wasmtime_wasi::p1::wasi_snapshot_preview1::$func(
            &mut state.wasi,
            &mut mem,
            $($arg),*
        ))
    }};
}
pub(crate) use call_wasi;

/// Runs the future of a WASI function that may wait on this process's
/// runtime.
pub(crate) fn waiting<T>(
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    crate::process_local::block_on(call)
        .map_err(|e| wasmtime::Error::msg(format!("cannot start the I/O runtime: {e}")))?
}

/// Defines each function on the linker, its parameters as wasm has them.
macro_rules! link {
    ($linker:ident, $mode:ident: $($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            $linker.func_wrap(
                MODULE,
                stringify!($name),
                |mut caller: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                    link!(@call $mode caller, $name($($arg),*))
                },
            )?;
        )*
    };
    (@call waits $caller:ident, $name:ident($($arg:ident),*)) => {
        call_wasi!($caller, $name($($arg),*))
    };
    (@call sync $caller:ident, $name:ident($($arg:ident),*)) => {
        call_wasi!($caller, sync $name($($arg),*))
    };
}

/// Adds to `linker` every WASI preview 1 function wasmtime-wasi answers.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    link! { linker, sync:
        args_get(argv: i32, argv_buf: i32);
        args_sizes_get(argc: i32, argv_buf_size: i32);
        clock_res_get(id: i32, resolution: i32);
        clock_time_get(id: i32, precision: i64, time: i32);
        fd_allocate(fd: i32, offset: i64, len: i64);
        fd_fdstat_set_flags(fd: i32, flags: i32);
        fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64);
        fd_prestat_get(fd: i32, prestat: i32);
        fd_prestat_dir_name(fd: i32, path: i32, path_len: i32);
        fd_tell(fd: i32, offset: i32);
        proc_raise(signal: i32);
        sched_yield();
        sock_accept(fd: i32, flags: i32, accepted: i32);
        sock_recv(
            fd: i32, iovs: i32, iovs_len: i32, flags: i32, received: i32, out_flags: i32
        );
        sock_send(fd: i32, iovs: i32, iovs_len: i32, flags: i32, sent: i32);
        sock_shutdown(fd: i32, how: i32);
    }
    link! { linker, waits:
        fd_advise(fd: i32, offset: i64, len: i64, advice: i32);
        fd_close(fd: i32);
        fd_datasync(fd: i32);
        fd_fdstat_get(fd: i32, stat: i32);
        fd_filestat_get(fd: i32, stat: i32);
        fd_filestat_set_size(fd: i32, size: i64);
        fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32);
        fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32);
        fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32);
        fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32);
        fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, bufused: i32);
        fd_renumber(fd: i32, to: i32);
        fd_seek(fd: i32, offset: i64, whence: i32, newoffset: i32);
        fd_sync(fd: i32);
        fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32);
        path_create_directory(fd: i32, path: i32, path_len: i32);
        path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, stat: i32);
        path_filestat_set_times(
            fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32
        );
        path_link(
            old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32,
            new_fd: i32, new_path: i32, new_path_len: i32
        );
        path_open(
            fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32,
            base: i64, inheriting: i64, fdflags: i32, opened: i32
        );
        path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, bufused: i32);
        path_remove_directory(fd: i32, path: i32, path_len: i32);
        path_rename(
            fd: i32, old_path: i32, old_path_len: i32,
            new_fd: i32, new_path: i32, new_path_len: i32
        );
        path_symlink(old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32);
        path_unlink_file(fd: i32, path: i32, path_len: i32);
        poll_oneoff(subscriptions: i32, events: i32, count: i32, nevents: i32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every WASI preview 1 import, with its wasm type, as wasm-ld and
    /// wasi-libc declare them.
    const EVERY_IMPORT: &str = r#"(module
      (import "wasi_snapshot_preview1" "args_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "args_sizes_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_res_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_advise" (func (param i32 i64 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_allocate" (func (param i32 i64 i64) (result i32)))
      (import "wasi_snapshot_preview1" "fd_close" (func (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_datasync" (func (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_fdstat_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_fdstat_set_rights" (func (param i32 i64 i64) (result i32)))
      (import "wasi_snapshot_preview1" "fd_filestat_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func (param i32 i64) (result i32)))
      (import "wasi_snapshot_preview1" "fd_filestat_set_times" (func (param i32 i64 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_pread" (func (param i32 i32 i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_pwrite" (func (param i32 i32 i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_read" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_readdir" (func (param i32 i32 i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_renumber" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_seek" (func (param i32 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_sync" (func (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_tell" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_create_directory" (func (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_filestat_get" (func (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_filestat_set_times" (func (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_link" (func (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_readlink" (func (param i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_remove_directory" (func (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_rename" (func (param i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_symlink" (func (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_unlink_file" (func (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "poll_oneoff" (func (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (import "wasi_snapshot_preview1" "proc_raise" (func (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
      (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_recv" (func (param i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_send" (func (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "sock_shutdown" (func (param i32 i32) (result i32)))
      (memory (export "memory") 1))"#;

    #[test]
    fn every_preview1_function_is_linked_with_its_wasm_type() {
        // The runtime's linker: these functions and the four procbridge
        // answers itself. Every import is defined, with its type, by
        // procbridge: nothing is left for wasmtime-wasi's own glue (which
        // would use another runtime).
        let runtime = crate::Runtime::with_cache(None).unwrap();
        let module = wasmtime::Module::new(runtime.engine(), EVERY_IMPORT).unwrap();
        assert_eq!(module.imports().len(), 46);
        runtime.linker().instantiate_pre(&module).unwrap();
    }

    #[test]
    fn procbridge_s_own_four_are_left_out_here() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<HostState>::new(&engine);
        add_to_linker(&mut linker).unwrap();
        let module = wasmtime::Module::new(&engine, EVERY_IMPORT).unwrap();
        let err = match linker.instantiate_pre(&module) {
            Ok(_) => panic!("linked without procbridge's own four"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("environ_get"), "{err}");
        // Shadowing stays off: linking one of them twice is an error.
        crate::environ::add_to_linker(&mut linker).unwrap();
        assert!(crate::environ::add_to_linker(&mut linker).is_err());
    }
}
