//! The host's functions, made from the ABI table
//! (`procbridge_abi::functions!`): the raw imports in [`raw`], and a safe
//! wrapper for each here, so the rest of the SDK has no `unsafe` of its own.
//!
//! Every wrapper keeps the ABI's convention (`i32` result, negative errno
//! on failure; [`crate::Error`] turns it into an error). A function whose
//! parameters are all numbers and handles is wrapped by the table itself;
//! one that takes guest memory is wrapped below by hand, with slices and
//! references in place of pointer and length (a change to its line of the
//! table breaks the build here, not at run time).
//!
//! Output buffers are `Vec`s whose spare capacity the host writes: the
//! wrapper sets their length to what was written.

use procbridge_abi::wasm_type;

/// The raw imports of module `procbridge`, one per line of the table.
pub mod raw {
    /// The Rust type of a parameter kind.
    macro_rules! raw_type {
        (ptr) => { *const u8 };
        (ptr_mut) => { *mut u8 };
        (i32_mut) => { *mut i32 };
        ($kind:ident) => { procbridge_abi::wasm_type!($kind) };
    }

    macro_rules! imports {
        ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
            #[link(wasm_import_module = "procbridge")]
            extern "C" {
                $($(
                    #[allow(missing_docs)]
                    pub fn $name($($param: raw_type!($kind)),*) -> i32;
                )*)*
            }
        };
    }

    procbridge_abi::functions!(imports);
}

/// A safe wrapper for every function whose parameters are all numbers or
/// handles; nothing for the others (wrapped by hand below).
macro_rules! scalar_wrappers {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
        $($(scalar_wrappers!(@check $name [] $($param: $kind,)*);)*)*
    };
    (@check $name:ident [$($done:tt)*] $param:ident: ptr, $($rest:tt)*) => {};
    (@check $name:ident [$($done:tt)*] $param:ident: ptr_mut, $($rest:tt)*) => {};
    (@check $name:ident [$($done:tt)*] $param:ident: i32_mut, $($rest:tt)*) => {};
    (@check $name:ident [$($done:tt)*] $param:ident: $kind:ident, $($rest:tt)*) => {
        scalar_wrappers!(@check $name [$($done)* $param: $kind,] $($rest)*);
    };
    (@check $name:ident [$($param:ident: $kind:ident,)*]) => {
        #[doc = concat!("`", stringify!($name), "` (see `docs/abi.md`).")]
        pub fn $name($($param: wasm_type!($kind)),*) -> i32 {
            // SAFETY: numbers and handles only; the host checks them all.
            unsafe { raw::$name($($param),*) }
        }
    };
}

procbridge_abi::functions!(scalar_wrappers);

/// A slice's pointer and length as the ABI takes them. Guest memory is
/// below 4 GiB, so every length fits an `i32` (larger ones do not exist on
/// wasm32: a slice is at most `isize::MAX` bytes).
fn parts(bytes: &[u8]) -> (*const u8, i32) {
    (bytes.as_ptr(), bytes.len() as i32)
}

/// Calls `call(ptr, cap)` on the spare capacity of `buf`; when it returns
/// `n >= 0`, `written(n, cap)` bytes were written there and become part of
/// `buf`.
fn fill(
    buf: &mut Vec<u8>,
    call: impl FnOnce(*mut u8, i32) -> i32,
    written: impl FnOnce(usize, usize) -> usize,
) -> i32 {
    let len = buf.len();
    let cap = (buf.capacity() - len).min(i32::MAX as usize);
    // SAFETY: the pointer is to `cap` bytes of spare capacity of `buf`.
    let ret = call(unsafe { buf.as_mut_ptr().add(len) }, cap as i32);
    if ret >= 0 {
        let n = written(ret as usize, cap).min(cap);
        // SAFETY: the host wrote those `n <= cap` bytes (the ABI's contract
        // for this call), right after the `len` bytes already there.
        unsafe { buf.set_len(len + n) };
    }
    ret
}

/// `last_error`: the message of the last failed call, at most the spare
/// capacity of `buf` of it; returns its whole length.
pub fn last_error(buf: &mut Vec<u8>) -> i32 {
    // SAFETY: `ptr` is writable for `cap` bytes.
    fill(
        buf,
        |ptr, cap| unsafe { raw::last_error(ptr, cap) },
        |n, _| n,
    )
}

/// `take_result`: the waiting result, which must be exactly `len` bytes,
/// appended to `buf`.
pub fn take_result(buf: &mut Vec<u8>, len: usize) -> i32 {
    buf.reserve_exact(len);
    let len = len.min(i32::MAX as usize);
    // SAFETY: `ptr` is writable for at least `len` bytes; on success the
    // host wrote exactly `len`.
    fill(
        buf,
        |ptr, _| unsafe { raw::take_result(ptr, len as i32) },
        |_, _| len,
    )
}

/// `waitpid`: the raw wait status goes to `status`.
pub fn waitpid(pid: i32, options: i32, status: &mut i32) -> i32 {
    // SAFETY: `status` is one writable i32.
    unsafe { raw::waitpid(pid, options, status) }
}

/// `times`: five `u64` nanosecond counts into `out` (see
/// `procbridge_abi::process::TIMES_LEN`).
pub fn times(out: &mut [u8; 40]) -> i32 {
    // SAFETY: `out` is 40 writable bytes, the capacity passed.
    unsafe { raw::times(out.as_mut_ptr(), out.len() as i32) }
}

/// A command as `popen` and `popen_call` take it: argv and env lists (the
/// ABI's encoding; no env: the guest's granted one), cwd (empty: the
/// default) and the stdio codes.
pub struct Command<'a> {
    /// The argv list.
    pub argv: &'a [u8],
    /// The `KEY=VALUE` list; `None`: the guest's granted environment.
    pub env: Option<&'a [u8]>,
    /// The working directory; empty: the default.
    pub cwd: &'a [u8],
    /// stdin, stdout, stderr.
    pub stdio: [i32; 3],
}

impl Command<'_> {
    /// The pointers and lengths the imports take, before the stdio codes.
    fn parts(&self) -> [(*const u8, i32); 3] {
        let env = match self.env {
            Some(env) => parts(env),
            None => (std::ptr::null(), procbridge_abi::subprocess::ENV_INHERIT),
        };
        [parts(self.argv), env, parts(self.cwd)]
    }
}

/// `popen`: a handle.
pub fn popen(command: &Command<'_>) -> i32 {
    let [(argv_ptr, argv_len), (env_ptr, env_len), (cwd_ptr, cwd_len)] = command.parts();
    let [stdin, stdout, stderr] = command.stdio;
    // SAFETY: pointers and lengths of live slices (or the null pointer with
    // ENV_INHERIT, which the host does not read).
    unsafe {
        raw::popen(
            argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len, stdin, stdout, stderr,
        )
    }
}

/// `popen_poll`: the return code goes to `code` once the child has exited.
pub fn popen_poll(h: i32, code: &mut i32) -> i32 {
    // SAFETY: `code` is one writable i32.
    unsafe { raw::popen_poll(h, code) }
}

/// `popen_wait`: the return code goes to `code`.
pub fn popen_wait(h: i32, timeout_us: i64, code: &mut i32) -> i32 {
    // SAFETY: `code` is one writable i32.
    unsafe { raw::popen_wait(h, timeout_us, code) }
}

/// `popen_call`: `popen`, `popen_wait` and `popen_close` in one call;
/// `code` gets the return code.
pub fn popen_call(command: &Command<'_>, timeout_us: i64, code: &mut i32) -> i32 {
    let [(argv_ptr, argv_len), (env_ptr, env_len), (cwd_ptr, cwd_len)] = command.parts();
    let [stdin, stdout, stderr] = command.stdio;
    // SAFETY: as `popen`; `code` is one writable i32.
    unsafe {
        raw::popen_call(
            argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len, stdin, stdout, stderr,
            timeout_us, code,
        )
    }
}

/// `popen_communicate`: `out` gets the stdout part's length and the
/// return code.
pub fn popen_communicate(
    h: i32,
    input: &[u8],
    timeout_us: i64,
    flags: i32,
    out: &mut [i32; 2],
) -> i32 {
    let (ptr, len) = parts(input);
    // SAFETY: a live slice; `out` is two writable i32s.
    unsafe { raw::popen_communicate(h, ptr, len, timeout_us, flags, out.as_mut_ptr()) }
}

/// `popen_take_output`: `stdout_len` gets the stdout part's length.
pub fn popen_take_output(h: i32, stdout_len: &mut i32) -> i32 {
    // SAFETY: one writable i32.
    unsafe { raw::popen_take_output(h, stdout_len) }
}

/// `popen_write`: writes `data` to the child's stdin pipe.
pub fn popen_write(h: i32, data: &[u8], timeout_us: i64) -> i32 {
    let (ptr, len) = parts(data);
    // SAFETY: a live slice.
    unsafe { raw::popen_write(h, ptr, len, timeout_us) }
}

/// `popen_read`: reads into the spare capacity of `buf` (at most that
/// much), appending what was read.
pub fn popen_read(h: i32, stream: i32, buf: &mut Vec<u8>, timeout_us: i64) -> i32 {
    // SAFETY: `ptr` is writable for `cap` bytes; the host writes what it
    // returns.
    fill(
        buf,
        |ptr, cap| unsafe { raw::popen_read(h, stream, ptr, cap, timeout_us) },
        |n, _| n,
    )
}

/// `process_start`: a child that runs the task export `target` with
/// `args`.
pub fn process_start(target: &[u8], args: &[u8], method: i32, flags: i32) -> i32 {
    let (target_ptr, target_len) = parts(target);
    let (args_ptr, args_len) = parts(args);
    // SAFETY: live slices.
    unsafe { raw::process_start(target_ptr, target_len, args_ptr, args_len, method, flags) }
}

/// `process_exitcode`: the exit code goes to `code` once it has ended.
pub fn process_exitcode(h: i32, code: &mut i32) -> i32 {
    // SAFETY: one writable i32.
    unsafe { raw::process_exitcode(h, code) }
}

/// `task_return`: the running task's result.
pub fn task_return(result: &[u8]) -> i32 {
    let (ptr, len) = parts(result);
    // SAFETY: a live slice.
    unsafe { raw::task_return(ptr, len) }
}

/// `task_error`: the running task failed with `message`.
pub fn task_error(message: &[u8]) -> i32 {
    let (ptr, len) = parts(message);
    // SAFETY: a live slice.
    unsafe { raw::task_error(ptr, len) }
}

/// `queue_put`: puts `msg`.
pub fn queue_put(q: i32, msg: &[u8], timeout_us: i64) -> i32 {
    let (ptr, len) = parts(msg);
    // SAFETY: a live slice.
    unsafe { raw::queue_put(q, ptr, len, timeout_us) }
}

/// `queue_get`: returns the message's length `n`; when it fits in the
/// spare capacity of `buf` it is appended there, otherwise it waits for
/// [`take_result`].
pub fn queue_get(q: i32, buf: &mut Vec<u8>, timeout_us: i64) -> i32 {
    // SAFETY: `ptr` is writable for `cap` bytes; the host writes the
    // message there only when it fits.
    fill(
        buf,
        |ptr, cap| unsafe { raw::queue_get(q, ptr, cap, timeout_us) },
        |n, cap| if n <= cap { n } else { 0 },
    )
}

/// `pipe_new`: the two connection handles go to `ends`.
pub fn pipe_new(duplex: i32, ends: &mut [i32; 2]) -> i32 {
    // SAFETY: two writable i32s.
    unsafe { raw::pipe_new(duplex, ends.as_mut_ptr()) }
}

/// `pipe_send`: sends `msg`.
pub fn pipe_send(c: i32, msg: &[u8]) -> i32 {
    let (ptr, len) = parts(msg);
    // SAFETY: a live slice.
    unsafe { raw::pipe_send(c, ptr, len) }
}

/// `pipe_recv`: as [`queue_get`].
pub fn pipe_recv(c: i32, buf: &mut Vec<u8>, timeout_us: i64) -> i32 {
    // SAFETY: as in `queue_get`.
    fill(
        buf,
        |ptr, cap| unsafe { raw::pipe_recv(c, ptr, cap, timeout_us) },
        |n, cap| if n <= cap { n } else { 0 },
    )
}

/// `pool_submit`: `items` is a list of the items' arguments.
pub fn pool_submit(h: i32, name: &[u8], items: &[u8], chunksize: i32) -> i32 {
    let (name_ptr, name_len) = parts(name);
    let (items_ptr, items_len) = parts(items);
    // SAFETY: live slices.
    unsafe { raw::pool_submit(h, name_ptr, name_len, items_ptr, items_len, chunksize) }
}
