//! Task functions: code a child process (or, later, a pool worker) runs,
//! named by its export. No pickle: a task takes bytes (or a string) and
//! returns bytes, a string, nothing, or an error.
//!
//! Export one with [`task!`](crate::task!):
//!
//! ```no_run
//! use procbridge_sdk::{os, task};
//!
//! task!(run_proc, |name: &str| {
//!     println!("Run child process {} ({})...", name, os::getpid());
//! });
//!
//! task!(square, |n: &str| -> Result<String, String> {
//!     let n: i64 = n.parse().map_err(|e| format!("{}", e))?;
//!     Ok((n * n).to_string())
//! });
//!
//! task!(echo, |bytes: &[u8]| bytes.to_vec());
//! # fn main() {}
//! ```
//!
//! The ABI under it (see the host's `docs/abi.md`): the export is
//! `fn NAME(args_len: i32) -> i32`; the arguments wait in the host and are
//! taken with `take_result`; the outcome goes back with `task_return` or
//! `task_error`.

use crate::error::take_result;
use crate::sys;
use std::fmt::Display;

/// What a task function may return.
pub trait TaskOutput {
    /// The bytes to hand back, or an error message.
    fn into_outcome(self) -> Result<Vec<u8>, String>;
}

impl TaskOutput for () {
    fn into_outcome(self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
}

impl TaskOutput for Vec<u8> {
    fn into_outcome(self) -> Result<Vec<u8>, String> {
        Ok(self)
    }
}

impl TaskOutput for String {
    fn into_outcome(self) -> Result<Vec<u8>, String> {
        Ok(self.into_bytes())
    }
}

impl<'a> TaskOutput for &'a str {
    fn into_outcome(self) -> Result<Vec<u8>, String> {
        Ok(self.as_bytes().to_vec())
    }
}

impl<T: TaskOutput, E: Display> TaskOutput for Result<T, E> {
    fn into_outcome(self) -> Result<Vec<u8>, String> {
        match self {
            Ok(value) => value.into_outcome(),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// Runs a task body that takes bytes; used by [`task!`](crate::task!).
#[doc(hidden)]
pub fn run_bytes<R: TaskOutput, F: FnOnce(&[u8]) -> R>(args_len: i32, body: F) -> i32 {
    match take_result(args_len) {
        Ok(args) => finish(body(&args).into_outcome()),
        Err(err) => finish(Err(format!("cannot take the task's arguments: {}", err))),
    }
}

/// Runs a task body that takes a string; used by [`task!`](crate::task!).
#[doc(hidden)]
pub fn run_str<R: TaskOutput, F: FnOnce(&str) -> R>(args_len: i32, body: F) -> i32 {
    run_bytes(args_len, |bytes| match std::str::from_utf8(bytes) {
        Ok(text) => body(text).into_outcome(),
        Err(_) => Err(String::from("the task's arguments are not UTF-8")),
    })
}

/// Runs a task body over a whole chunk of a pool's items in one call; used
/// by [`task!`](crate::task!) for the `procbridge_batch.NAME` export.
///
/// The arguments are a list (see `procbridge_abi::list`) of the items' own
/// arguments; the result is a list with one entry per item: a status byte
/// (`0` returned, `1` failed) followed by the item's result or error. As in
/// Python, an item that traps or exits ends the whole chunk.
#[doc(hidden)]
pub fn run_bytes_batch<R: TaskOutput, F: Fn(&[u8]) -> R>(args_len: i32, body: F) -> i32 {
    let args = match take_result(args_len) {
        Ok(args) => args,
        Err(err) => return finish(Err(format!("cannot take the task's arguments: {}", err))),
    };
    let mut out = Vec::with_capacity(args.len() + 64);
    for item in procbridge_abi::list::iter(&args) {
        let item = match item {
            Ok(item) => item,
            Err(err) => return finish(Err(format!("malformed chunk of arguments: {}", err))),
        };
        let (status, payload) = match body(item).into_outcome() {
            Ok(bytes) => (0u8, bytes),
            Err(message) => (1u8, message.into_bytes()),
        };
        out.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
        out.push(status);
        out.extend_from_slice(&payload);
    }
    finish(Ok(out))
}

/// [`run_bytes_batch`] for a body that takes a string.
#[doc(hidden)]
pub fn run_str_batch<R: TaskOutput, F: Fn(&str) -> R>(args_len: i32, body: F) -> i32 {
    run_bytes_batch(args_len, |bytes| match std::str::from_utf8(bytes) {
        Ok(text) => body(text).into_outcome(),
        Err(_) => Err(String::from("the task's arguments are not UTF-8")),
    })
}

fn finish(outcome: Result<Vec<u8>, String>) -> i32 {
    crate::os::flush_std();
    // SAFETY: pointer and length of a live buffer.
    match outcome {
        Ok(bytes) => unsafe {
            sys::task_return(bytes.as_ptr(), bytes.len() as i32);
            0
        },
        Err(message) => unsafe {
            sys::task_error(message.as_ptr(), message.len() as i32);
            1
        },
    }
}

/// Exports a task function named `$name`, callable by the host as a
/// `Process` target (`Process::new("$name")`).
///
/// The body is a closure taking `&str` or `&[u8]` and returning any
/// [`TaskOutput`]: `()`, `String`, `&str`, `Vec<u8>`, or a `Result` of one
/// of those with an error that is `Display` (an error is what Python would
/// show as the exception; the process's exit code is then 1).
///
/// ```no_run
/// procbridge_sdk::task!(greet, |name: &str| format!("hello {}", name));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! task {
    ($name:ident, |$arg:tt : &str| -> $ret:ty $body:block) => {
        $crate::task!(@export $name, run_str, run_str_batch, |$arg: &str| -> $ret { $body });
    };
    ($name:ident, |$arg:tt : &[u8]| -> $ret:ty $body:block) => {
        $crate::task!(@export $name, run_bytes, run_bytes_batch, |$arg: &[u8]| -> $ret { $body });
    };
    ($name:ident, |$arg:tt : &str| $body:expr) => {
        $crate::task!(@export $name, run_str, run_str_batch, |$arg: &str| $body);
    };
    ($name:ident, |$arg:tt : &[u8]| $body:expr) => {
        $crate::task!(@export $name, run_bytes, run_bytes_batch, |$arg: &[u8]| $body);
    };
    (@export $name:ident, $one:ident, $batch:ident, $($closure:tt)*) => {
        #[no_mangle]
        pub extern "C" fn $name(args_len: i32) -> i32 {
            $crate::task::$one(args_len, $($closure)*)
        }
        // A pool runs a whole chunk of items through this one export.
        const _: () = {
            #[export_name = concat!("procbridge_batch.", stringify!($name))]
            extern "C" fn batch(args_len: i32) -> i32 {
                $crate::task::$batch(args_len, $($closure)*)
            }
        };
    };
}
