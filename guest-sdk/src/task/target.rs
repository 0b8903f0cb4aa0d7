//! What a [`Process`](crate::multiprocessing::Process) or a
//! [`Pool`](crate::multiprocessing::Pool) runs: a typed [`Task`] made by
//! [`task!`](crate::task!), or a task export named by a string.

use super::value::{self, Encoder, Value};
use crate::error::Result;
use std::fmt;
use std::marker::PhantomData;

/// A task function exported with `task!(fn NAME(ARGS) -> RET { ... })`:
/// its export's name, the type of its arguments (a tuple) and of its
/// result. `task!` defines one as a constant named like the function, so
/// the function itself is what a `Process` or a `Pool` is given:
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::Pool;
/// use procbridge_sdk::task;
///
/// task!(fn square(x: i64) -> i64 {
///     x * x
/// });
///
/// fn main() -> Result<(), procbridge_sdk::Error> {
///     let pool = Pool::new(2)?;
///     let squares: Vec<i64> = pool.map(square, 0..4)?;
///     assert_eq!(squares, [0, 1, 4, 9]);
///     assert_eq!(pool.apply(square, (12,))?, 144);
///     Ok(())
/// }
/// ```
pub struct Task<A, R> {
    name: &'static str,
    types: PhantomData<fn(A) -> R>,
}

impl<A, R> Task<A, R> {
    /// The task exported as `name`; used by [`task!`](crate::task!).
    #[doc(hidden)]
    pub const fn new(name: &'static str) -> Task<A, R> {
        Task {
            name,
            types: PhantomData,
        }
    }

    /// The export's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<A, R> Clone for Task<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Task<A, R> {}

impl<A, R> fmt::Debug for Task<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Task({})", self.name)
    }
}

/// The arguments of a task named by a string: bytes, as the task's
/// `&[u8]`/`&str` closure receives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawArgs(pub Vec<u8>);

/// Something a `Process` can run or a `Pool` can be given: a [`Task`], or
/// the name of a task export (`&str`, `String`), whose arguments are bytes
/// ([`RawArgs`]) and whose result is bytes.
pub trait Target {
    /// The arguments it takes.
    type Args;
    /// The result it gives.
    type Output;

    /// The export's name.
    fn name(&self) -> &str;

    /// Reads a result.
    ///
    /// # Errors
    /// `EINVAL` when the bytes are not an `Output`.
    fn decode_output(bytes: Vec<u8>) -> Result<Self::Output>;
}

impl<A: Value, R: Value> Target for Task<A, R> {
    type Args = A;
    type Output = R;

    fn name(&self) -> &str {
        self.name
    }

    fn decode_output(bytes: Vec<u8>) -> Result<R> {
        value::from_bytes(&bytes)
    }
}

impl<'a> Target for &'a str {
    type Args = RawArgs;
    type Output = Vec<u8>;

    fn name(&self) -> &str {
        self
    }

    fn decode_output(bytes: Vec<u8>) -> Result<Vec<u8>> {
        Ok(bytes)
    }
}

impl<'a> Target for &'a String {
    type Args = RawArgs;
    type Output = Vec<u8>;

    fn name(&self) -> &str {
        self.as_str()
    }

    fn decode_output(bytes: Vec<u8>) -> Result<Vec<u8>> {
        Ok(bytes)
    }
}

/// What can be given as the arguments `A` of a target: `A` itself (the
/// tuple a [`Task`] takes), for a one-argument task its single argument
/// (so `pool.map(square, 0..10)` maps over numbers), and for a task named
/// by a string any bytes or string.
pub trait IntoArgs<A> {
    /// Writes the arguments.
    fn encode_args(&self, out: &mut Encoder);
}

impl<A: Value> IntoArgs<A> for A {
    fn encode_args(&self, out: &mut Encoder) {
        self.encode(out);
    }
}

impl<X: Value> IntoArgs<(X,)> for X {
    fn encode_args(&self, out: &mut Encoder) {
        self.encode(out);
    }
}

impl<B: AsRef<[u8]>> IntoArgs<RawArgs> for B {
    fn encode_args(&self, out: &mut Encoder) {
        out.write(self.as_ref());
    }
}

/// Encodes arguments: their bytes and the handles among them.
pub(crate) fn encode_args<A, X: IntoArgs<A>>(args: &X) -> (Vec<u8>, Vec<i32>) {
    let mut enc = Encoder::new();
    args.encode_args(&mut enc);
    enc.into_parts()
}
