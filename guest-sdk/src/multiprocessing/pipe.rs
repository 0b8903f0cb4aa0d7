//! Python's `multiprocessing.Pipe` and its connections.

use super::message::{micros, receive, Decode, Encode};
use crate::error::{check, Error, Result};
use crate::sys;
use procbridge_abi::{Errno, NO_TIMEOUT};
use std::cell::Cell;
use std::fmt;
use std::time::Duration;

/// Makes a pipe and returns its two ends (`Pipe(duplex)`).
///
/// With `duplex` both ends send and receive; without, the first end only
/// receives and the second only sends. The other end sees end-of-file
/// ([`RecvError::Closed`]) once every copy of an end is closed, including
/// when the process holding it dies. As in Python, a parent that hands one
/// end to a child should close its own copy of that end.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::{Pipe, RecvError};
///
/// let (parent, child) = Pipe(true)?;
/// child.send("hello")?;
/// let got: String = parent.recv()?;
/// assert_eq!(got, "hello");
/// child.close()?;
/// assert_eq!(parent.recv::<String>(), Err(RecvError::Closed));
/// # Ok::<(), procbridge_sdk::Error>(())
/// ```
///
/// # Errors
/// `EMFILE` when the handle table is full.
#[allow(non_snake_case)]
pub fn Pipe(duplex: bool) -> Result<(Connection, Connection)> {
    let mut handles = [0i32; 2];
    // SAFETY: the host writes two i32s to `handles`.
    check(unsafe { sys::pipe_new(i32::from(duplex), handles.as_mut_ptr()) })?;
    Ok((
        Connection::from_raw(handles[0]),
        Connection::from_raw(handles[1]),
    ))
}

/// One end of a [`Pipe`] (`multiprocessing.connection.Connection`).
///
/// Dropping it closes this process's handle, as [`close`](Connection::close)
/// does.
#[derive(Debug)]
pub struct Connection {
    handle: i32,
    /// The size of the last message received, to size the next buffer.
    hint: Cell<usize>,
}

/// Why a receive failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecvError {
    /// No message came before the timeout (`ETIMEDOUT`, or `EAGAIN` for a
    /// zero timeout).
    Timeout,
    /// End-of-file: the other end is closed (Python's `EOFError`, `EPIPE`).
    Closed,
    /// Another error: a closed handle, a send-only end, a message that does
    /// not decode...
    Failed(Error),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Timeout => f.write_str("no message came before the timeout"),
            RecvError::Closed => f.write_str("the other end of the pipe is closed"),
            RecvError::Failed(e) => write!(f, "recv failed: {e}"),
        }
    }
}

impl std::error::Error for RecvError {}

impl From<RecvError> for Error {
    fn from(err: RecvError) -> Error {
        let errno = match &err {
            RecvError::Timeout => Errno::TimedOut,
            RecvError::Closed => Errno::Pipe,
            RecvError::Failed(e) => return e.clone(),
        };
        Error::new(errno, err.to_string())
    }
}

impl Connection {
    /// The connection's handle, to pass to another process of the tree,
    /// which rebuilds it with [`from_raw`](Connection::from_raw).
    pub fn as_raw(&self) -> i32 {
        self.handle
    }

    /// The handle, which this `Connection` no longer closes on drop.
    pub fn into_raw(self) -> i32 {
        let handle = self.handle;
        std::mem::forget(self);
        handle
    }

    /// The connection behind a raw handle. A handle that is not an open
    /// connection makes every call fail with `EBADF`.
    pub fn from_raw(handle: i32) -> Connection {
        Connection {
            handle,
            hint: Cell::new(0),
        }
    }

    /// Sends a message (`send(obj)`), waiting for room as long as needed.
    ///
    /// # Errors
    /// `EPIPE` when the other end is closed; `E2BIG` over 16 MiB; `EBADF`
    /// on a receive-only end or a closed handle.
    pub fn send<T: Encode>(&self, item: T) -> Result<()> {
        let bytes = item.encode();
        let len = i32::try_from(bytes.len())
            .map_err(|_| Error::new(Errno::TooBig, "message too large"))?;
        // SAFETY: `bytes` is readable for `len` bytes during the call.
        check(unsafe { sys::pipe_send(self.handle, bytes.as_ptr(), len) }).map(|_| ())
    }

    fn recv_with<T: Decode>(&self, timeout_us: i64) -> std::result::Result<T, RecvError> {
        let bytes = receive(&self.hint, |ptr, cap| {
            // SAFETY: `ptr` is writable for `cap` bytes during the call.
            unsafe { sys::pipe_recv(self.handle, ptr, cap, timeout_us) }
        })
        .map_err(|err| match err.errno() {
            Errno::Again | Errno::TimedOut => RecvError::Timeout,
            Errno::Pipe => RecvError::Closed,
            _ => RecvError::Failed(err),
        })?;
        T::decode(bytes).map_err(RecvError::Failed)
    }

    /// Receives a message, waiting for one (`recv()`).
    ///
    /// # Errors
    /// [`RecvError::Closed`] at end-of-file; [`RecvError::Failed`] for
    /// other errors.
    pub fn recv<T: Decode>(&self) -> std::result::Result<T, RecvError> {
        self.recv_with(NO_TIMEOUT)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Connection::recv); [`RecvError::Timeout`].
    pub fn recv_timeout<T: Decode>(&self, timeout: Duration) -> std::result::Result<T, RecvError> {
        self.recv_with(micros(timeout))
    }

    /// Whether [`recv`](Connection::recv) would return without waiting (a
    /// message or end-of-file is there), waiting up to `timeout` for it;
    /// `None` waits forever (`poll(timeout)`).
    ///
    /// # Errors
    /// `EBADF` on a send-only end or a closed handle.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        let us = timeout.map_or(NO_TIMEOUT, micros);
        // SAFETY: integer arguments only.
        check(unsafe { sys::pipe_poll(self.handle, us) }).map(|r| r == 1)
    }

    /// Closes this process's handle (`close()`).
    ///
    /// # Errors
    /// `EBADF` when this is not an open connection.
    pub fn close(self) -> Result<()> {
        let handle = self.into_raw();
        // SAFETY: integer arguments only.
        check(unsafe { sys::pipe_close(handle) }).map(|_| ())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: integer arguments only; an already closed handle is EBADF,
        // which there is no one to report to.
        unsafe {
            sys::pipe_close(self.handle);
        }
    }
}
