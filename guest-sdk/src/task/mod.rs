//! Task functions: code a child process or a pool worker runs, exported
//! by [`task!`](crate::task!) under the function's name.
//!
//! A typed task takes and returns [`Value`]s, as a Python target takes and
//! returns picklable objects:
//!
//! ```no_run
//! use procbridge_sdk::multiprocessing::{Process, Queue};
//! use procbridge_sdk::{os, task};
//!
//! task!(fn greet(q: Queue, names: Vec<String>) {
//!     for name in names {
//!         q.put(format!("hello {} from {}", name, os::getpid())).unwrap();
//!     }
//! });
//!
//! task!(fn parse(text: String) -> Result<i64, std::num::ParseIntError> {
//!     text.trim().parse()
//! });
//! # fn main() {}
//! ```
//!
//! The older form names a closure over bytes or a string, for guests that
//! pick a target by name at run time:
//!
//! ```no_run
//! procbridge_sdk::task!(upper, |text: &str| text.to_uppercase());
//! // A result borrowed from the arguments is handed back without a copy
//! // in a plugin; such a closure names its return type.
//! procbridge_sdk::task!(echo, |bytes: &[u8]| -> &[u8] { bytes });
//! # fn main() {}
//! ```
//!
//! The ABI under both (see the host's `docs/abi.md`): the export is
//! `fn NAME(args_len: i32) -> i32`; the arguments wait in the host and are
//! taken with `take_result`; the outcome goes back with `task_return` or
//! `task_error`. A panic in a task reaches the caller as the task's error
//! (`panicked at 'message', src/main.rs:3:5`). In a plugin that uses
//! [`plugin!`](crate::plugin!), a plugin host's calls skip the host calls:
//! the arguments and the result go through a scratch buffer.

mod panic;
mod scratch;
mod target;
pub mod value;

#[doc(hidden)]
pub use scratch::Scratch;

pub(crate) use target::encode_args;
pub use target::{IntoArgs, RawArgs, Target, Task};
pub use value::{Decoder, Encoder, Value};

use crate::sys;
use procbridge_abi::scratch::{ARGS_IN_SCRATCH, RESULT_IN_SCRATCH};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Display;

/// A task's outcome: the bytes to hand back (borrowed from its arguments
/// or owned), or an error message.
pub type Outcome<'a> = Result<Cow<'a, [u8]>, String>;

/// What a task named by a string (`task!(name, |args: &str| ...)`) may
/// return. `'a` is the arguments' lifetime: a `&[u8]` or `&str` borrowed
/// from them is handed back as it is.
pub trait TaskOutput<'a> {
    /// The bytes to hand back, or an error message.
    fn into_outcome(self) -> Outcome<'a>;
}

impl TaskOutput<'_> for () {
    #[inline]
    fn into_outcome(self) -> Outcome<'static> {
        Ok(Cow::Borrowed(&[]))
    }
}

impl TaskOutput<'_> for Vec<u8> {
    #[inline]
    fn into_outcome(self) -> Outcome<'static> {
        Ok(Cow::Owned(self))
    }
}

impl TaskOutput<'_> for String {
    #[inline]
    fn into_outcome(self) -> Outcome<'static> {
        Ok(Cow::Owned(self.into_bytes()))
    }
}

// `'b`: borrowed from the arguments, or from anything that outlives them
// (a string literal).
impl<'a, 'b: 'a> TaskOutput<'a> for &'b [u8] {
    #[inline]
    fn into_outcome(self) -> Outcome<'a> {
        Ok(Cow::Borrowed(self))
    }
}

// As for `&[u8]`.
impl<'a, 'b: 'a> TaskOutput<'a> for &'b str {
    #[inline]
    fn into_outcome(self) -> Outcome<'a> {
        Ok(Cow::Borrowed(self.as_bytes()))
    }
}

impl<'a, T: TaskOutput<'a>, E: Display> TaskOutput<'a> for Result<T, E> {
    #[inline]
    fn into_outcome(self) -> Outcome<'a> {
        match self {
            Ok(value) => value.into_outcome(),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// A task body over arguments of type `&'a A` (`[u8]` or `str`): any
/// `Fn(&A) -> R` whose `R` is a [`TaskOutput`], including one returning
/// a slice of its arguments. Used by [`task!`](crate::task!).
#[doc(hidden)]
pub trait Body<'a, A: ?Sized + 'a> {
    /// The body's outcome.
    fn outcome(&self, args: &'a A) -> Outcome<'a>;
}

impl<'a, A: ?Sized + 'a, F, R> Body<'a, A> for F
where
    F: Fn(&'a A) -> R,
    R: TaskOutput<'a>,
{
    #[inline]
    fn outcome(&self, args: &'a A) -> Outcome<'a> {
        self(args).into_outcome()
    }
}

/// What a typed task may return: a [`Value`], or a `Result` of one whose
/// error is the task's failure (its `Display` is what the caller's `get()`
/// reports, as Python re-raises the worker's exception).
pub trait TaskReturn {
    /// The value handed back.
    type Output: Value;
    /// The value, or the failure's message.
    fn into_task_result(self) -> Result<Self::Output, String>;
}

impl<T: Value> TaskReturn for T {
    type Output = T;
    fn into_task_result(self) -> Result<T, String> {
        Ok(self)
    }
}

impl<T: Value, E: Display> TaskReturn for Result<T, E> {
    type Output = T;
    fn into_task_result(self) -> Result<T, String> {
        self.map_err(|err| err.to_string())
    }
}

/// Calls a function with its arguments as a tuple; used by
/// [`task!`](crate::task!).
#[doc(hidden)]
pub trait Apply<A> {
    type Output;
    fn apply(&self, args: A) -> Self::Output;
}

macro_rules! apply {
    ($(($($name:ident),*)),*) => {$(
        impl<Func, Ret, $($name),*> Apply<($($name,)*)> for Func
        where
            Func: Fn($($name),*) -> Ret,
        {
            type Output = Ret;
            #[allow(non_snake_case)]
            fn apply(&self, args: ($($name,)*)) -> Ret {
                let ($($name,)*) = args;
                self($($name),*)
            }
        }
    )*};
}

apply!(
    (),
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H)
);

/// Runs a typed task; used by [`task!`](crate::task!).
#[doc(hidden)]
pub fn run_typed<A, F>(args_len: i32, func: F) -> i32
where
    A: Value,
    F: Apply<A>,
    F::Output: TaskReturn,
{
    run(args_len, |bytes| call_typed(&func, bytes).map(Cow::Owned))
}

fn call_typed<A, F>(func: &F, bytes: &[u8]) -> Result<Vec<u8>, String>
where
    A: Value,
    F: Apply<A>,
    F::Output: TaskReturn,
{
    let args: A = value::from_bytes(bytes)
        .map_err(|err| format!("cannot read the task's arguments: {}", err))?;
    let result = func.apply(args).into_task_result()?;
    let (bytes, handles) = value::to_bytes(&result);
    // A handle number means nothing in the caller's table.
    if !handles.is_empty() {
        return Err(String::from(
            "a task cannot return a Queue or a Connection: pass one in its arguments instead",
        ));
    }
    Ok(bytes)
}

/// Runs a typed task over a whole chunk of a pool's items; used by
/// [`task!`](crate::task!) for the `procbridge_batch.NAME` export (see
/// [`run_bytes_batch`]).
#[doc(hidden)]
pub fn run_typed_batch<A, F>(args_len: i32, func: F) -> i32
where
    A: Value,
    F: Apply<A>,
    F::Output: TaskReturn,
{
    run(args_len, |args| {
        batch(args, |item| call_typed(&func, item).map(Cow::Owned))
    })
}

/// Runs a task body that takes bytes; used by [`task!`](crate::task!).
#[doc(hidden)]
pub fn run_bytes<F: for<'a> Body<'a, [u8]>>(args_len: i32, body: F) -> i32 {
    run(args_len, |args| body.outcome(args))
}

/// Runs a task body that takes a string; used by [`task!`](crate::task!).
#[doc(hidden)]
pub fn run_str<F: for<'a> Body<'a, str>>(args_len: i32, body: F) -> i32 {
    run(args_len, |args| str_outcome(&body, args))
}

/// `body`'s outcome over `args` read as a string.
fn str_outcome<'a, F: Body<'a, str>>(body: &F, args: &'a [u8]) -> Outcome<'a> {
    match std::str::from_utf8(args) {
        Ok(text) => body.outcome(text),
        Err(_) => Err(String::from("the task's arguments are not UTF-8")),
    }
}

/// Runs a task body over a whole chunk of a pool's items in one call; used
/// by [`task!`](crate::task!) for the `procbridge_batch.NAME` export.
///
/// The arguments are a list (see `procbridge_abi::list`) of the items' own
/// arguments; the result is a list with one entry per item: a status byte
/// (`0` returned, `1` failed) followed by the item's result or error. As in
/// Python, an item that traps or exits ends the whole chunk.
#[doc(hidden)]
pub fn run_bytes_batch<F: for<'a> Body<'a, [u8]>>(args_len: i32, body: F) -> i32 {
    run(args_len, |args| batch(args, |item| body.outcome(item)))
}

/// Runs `one` on each item of a chunk's arguments; their outcomes as a
/// list of status byte and payload.
fn batch<'a>(args: &'a [u8], one: impl Fn(&'a [u8]) -> Outcome<'a>) -> Outcome<'static> {
    let mut out = Vec::with_capacity(args.len() + 64);
    for item in procbridge_abi::list::iter(args) {
        let item = match item {
            Ok(item) => item,
            Err(err) => return Err(format!("malformed chunk of arguments: {}", err)),
        };
        let (status, payload) = match one(item) {
            Ok(bytes) => (0u8, bytes),
            Err(message) => (1u8, Cow::Owned(message.into_bytes())),
        };
        out.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
        out.push(status);
        out.extend_from_slice(&payload);
    }
    Ok(Cow::Owned(out))
}

/// [`run_bytes_batch`] for a body that takes a string.
#[doc(hidden)]
pub fn run_str_batch<F: for<'a> Body<'a, str>>(args_len: i32, body: F) -> i32 {
    run(args_len, |args| {
        batch(args, |item| str_outcome(&body, item))
    })
}

/// Runs one task call: its arguments to `body`, `body`'s outcome back to
/// the host. The arguments come from the plugin fast path's scratch buffer
/// when the host put them there, else from `take_result` into a buffer
/// kept between calls.
#[inline]
fn run(args_len: i32, body: impl for<'a> FnOnce(&'a [u8]) -> Outcome<'a>) -> i32 {
    let _running = panic::Running::enter();
    let flags = scratch::begin();
    let outcome = if flags & ARGS_IN_SCRATCH != 0 {
        match scratch::args(args_len) {
            Some(args) => body(args),
            None => Err(String::from(
                "cannot take the task's arguments: they are not inside the scratch buffer",
            )),
        }
    } else {
        with_args(args_len, body)
    };
    finish(flags, outcome)
}

thread_local! {
    /// The arguments' buffer, kept between calls (a call inside a call
    /// finds it taken and uses a new one).
    static ARGS: RefCell<Vec<u8>> = RefCell::new(Vec::new());
}

/// `body` over the arguments waiting in the host (a result borrowed from
/// them is copied: their buffer is reused or freed).
fn with_args(
    args_len: i32,
    body: impl for<'a> FnOnce(&'a [u8]) -> Outcome<'a>,
) -> Outcome<'static> {
    /// A larger buffer is freed after the call, not kept.
    const KEEP: usize = 64 << 10;
    let mut args = ARGS.with(|a| std::mem::take(&mut *a.borrow_mut()));
    args.clear();
    let outcome = match crate::error::check(sys::take_result(&mut args, args_len.max(0) as usize)) {
        Ok(_) => body(&args).map(|bytes| Cow::Owned(bytes.into_owned())),
        Err(err) => Err(format!("cannot take the task's arguments: {}", err)),
    };
    if args.capacity() <= KEEP {
        ARGS.with(|a| *a.borrow_mut() = args);
    }
    outcome
}

/// Writes out what stdout holds (text printed without a newline).
#[inline]
fn flush_stdout() {
    #[cfg(not(target_feature = "atomics"))]
    scratch::flush_stdout();
    // With threads, another thread's `print!` would wait for ever on a
    // lock held between calls.
    #[cfg(target_feature = "atomics")]
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

/// Hands the outcome back; the status the task returns.
#[inline]
fn finish(flags: u32, outcome: Outcome<'static>) -> i32 {
    // Only stdout buffers: Rust's stderr writes at once.
    flush_stdout();
    match outcome {
        Ok(bytes) if flags & RESULT_IN_SCRATCH != 0 => scratch::hand_back(bytes),
        Ok(bytes) => {
            sys::task_return(&bytes);
            0
        }
        Err(message) => {
            sys::task_error(message.as_bytes());
            1
        }
    }
}

/// Defines a task function: code a [`Process`](crate::multiprocessing::Process)
/// or a [`Pool`](crate::multiprocessing::Pool) worker runs in another OS
/// process.
///
/// `task!(fn NAME(ARG: TYPE, ...) -> RET { BODY })` defines the function
/// and exports it, and `NAME` is a [`Task`] constant to hand to
/// `Process::new(NAME)`, `pool.map(NAME, ...)` or `pool.apply_async(NAME,
/// (ARG, ...))`. The arguments and the result are any [`Value`]s (numbers,
/// strings, `Vec`s, `Option`s, tuples, and `Queue`, `JoinableQueue` or
/// `Connection` handles, which the task receives as values and whose
/// dropping never closes the process's copy). `RET` may be a `Result`:
/// its error's `Display` is the task's failure, which the caller's `get()`
/// reports; a panic is reported the same way.
///
/// ```no_run
/// use procbridge_sdk::task;
///
/// task!(fn square(x: i64) -> i64 {
///     x * x
/// });
///
/// task!(fn shout(words: Vec<String>) -> Result<String, String> {
///     if words.is_empty() {
///         return Err(String::from("nothing to shout"));
///     }
///     Ok(words.join(" ").to_uppercase())
/// });
/// # fn main() {}
/// ```
///
/// The older form exports a closure over the raw arguments, for targets
/// named by a string (`Process::new("greet")`): it takes `&str` or
/// `&[u8]` and returns `()`, `String`, `&str`, `Vec<u8>`, or a `Result` of
/// one of those.
///
/// ```no_run
/// procbridge_sdk::task!(greet, |name: &str| format!("hello {}", name));
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! task {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($($arg:ident)+ : $ty:ty),* $(,)? ) -> $ret:ty $body:block
    ) => {
        $crate::task!(@typed [$(#[$meta])*] [$vis] $name [$($($arg)+ : $ty),*] $ret $body);
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident ( $($($arg:ident)+ : $ty:ty),* $(,)? ) $body:block
    ) => {
        $crate::task!(@typed [$(#[$meta])*] [$vis] $name [$($($arg)+ : $ty),*] () $body);
    };
    (@typed [$($meta:tt)*] [$vis:vis] $name:ident [$($($arg:ident)+ : $ty:ty),*] $ret:ty $body:block) => {
        $($meta)*
        #[allow(non_upper_case_globals)]
        $vis const $name: $crate::task::Task<
            ($($ty,)*),
            <$ret as $crate::task::TaskReturn>::Output,
        > = $crate::task::Task::new(stringify!($name));
        const _: () = {
            #[allow(unused_mut, clippy::needless_pass_by_value)]
            fn $name($($($arg)+ : $ty),*) -> $ret $body

            #[export_name = stringify!($name)]
            extern "C" fn one(args_len: i32) -> i32 {
                $crate::task::run_typed::<($($ty,)*), _>(args_len, $name)
            }

            // A pool runs a whole chunk of items through this one export.
            #[export_name = concat!("procbridge_batch.", stringify!($name))]
            extern "C" fn batch(args_len: i32) -> i32 {
                $crate::task::run_typed_batch::<($($ty,)*), _>(args_len, $name)
            }
        };
    };
    // A function, not a closure: its return type may borrow from the
    // arguments (`-> &[u8]`), which a closure's cannot say.
    ($name:ident, |$arg:tt : &str| -> $ret:ty $body:block) => {
        $crate::task!(@export $name, run_str, run_str_batch, {
            fn body($arg: &str) -> $ret $body
            body
        });
    };
    ($name:ident, |$arg:tt : &[u8]| -> $ret:ty $body:block) => {
        $crate::task!(@export $name, run_bytes, run_bytes_batch, {
            fn body($arg: &[u8]) -> $ret $body
            body
        });
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

/// Makes this `cdylib` a plugin: one line, anywhere in the crate.
///
/// ```no_run
/// procbridge_sdk::plugin!();
/// procbridge_sdk::task!(echo, |bytes: &[u8]| bytes.to_vec());
/// # fn main() {}
/// ```
///
/// It exports two functions:
///
/// - `_initialize`, which runs the module's start-up code (its
///   constructors) once, when the plugin host instantiates it. Without it
///   the linker wraps every export in that start-up code and the matching
///   shut-down code, run again on every call;
/// - `procbridge_scratch`, the plugin fast path (see the host's
///   `docs/abi.md`): the host writes a call's arguments straight into a
///   buffer in the module's memory and reads the result from where the
///   task leaves it, with no host calls. The buffer holds 16 KiB of
///   arguments (`plugin!(scratch = BYTES)` for another size); larger ones
///   take the task ABI's `take_result`. Pool workers and `Process` targets
///   are called as always.
///
/// For a library crate (`crate-type = ["cdylib"]`), whose toolchain does
/// not define `_initialize` itself; a program with a `main` must not use it.
#[macro_export]
macro_rules! plugin {
    () => {
        $crate::plugin!(scratch = 16384);
    };
    (scratch = $bytes:expr) => {
        const _: () = {
            static SCRATCH: $crate::task::Scratch<{ $bytes }> = $crate::task::Scratch::new();

            #[export_name = "procbridge_scratch"]
            extern "C" fn procbridge_scratch() -> i32 {
                SCRATCH.register()
            }

            // The explicit call also tells wasm-ld not to wrap every export
            // in the start-up code. It must be written here, in the plugin's
            // own crate: a reference anywhere in the SDK would reach every
            // program using it, whose `_start` then would not run them.
            #[cfg(target_arch = "wasm32")]
            #[export_name = "_initialize"]
            extern "C" fn initialize() {
                extern "C" {
                    fn __wasm_call_ctors();
                }
                // SAFETY: the host calls `_initialize` once, before any
                // other export, as a WASI reactor's start-up.
                unsafe { __wasm_call_ctors() }
            }
        };
    };
}
