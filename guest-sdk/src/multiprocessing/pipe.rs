//! Python's `multiprocessing.Pipe` and its connections.

use super::handle::SharedHandle;
use super::message::{micros, receive, Decode, Encode};
use crate::error::{check, Error, ErrorKind, Result};
use crate::sys;
use crate::task::{Decoder, Encoder, Value};
use procbridge_abi::{Errno, NO_TIMEOUT};
use std::cell::Cell;
use std::time::Duration;

/// Makes a pipe and returns its two ends (`Pipe(duplex)`).
///
/// With `duplex` both ends send and receive; without, the first end only
/// receives and the second only sends. The other end sees end-of-file
/// ([`ErrorKind::EndOfFile`]) once every copy of an end is closed, including
/// when the process holding it dies. As in Python, a parent that hands one
/// end to a child should close its own copy of that end.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::Pipe;
/// use procbridge_sdk::ErrorKind;
///
/// let (parent, child) = Pipe(true)?;
/// child.send("hello")?;
/// let got: String = parent.recv()?;
/// assert_eq!(got, "hello");
/// child.close()?;
/// assert_eq!(parent.recv::<String>().unwrap_err().kind(), ErrorKind::EndOfFile);
/// # Ok::<(), procbridge_sdk::Error>(())
/// ```
///
/// # Errors
/// `EMFILE` when the handle table is full.
#[allow(non_snake_case)]
pub fn Pipe(duplex: bool) -> Result<(Connection, Connection)> {
    let mut handles = [0i32; 2];
    check(sys::pipe_new(i32::from(duplex), &mut handles))?;
    Ok((
        Connection::from_raw(handles[0]),
        Connection::from_raw(handles[1]),
    ))
}

/// One end of a [`Pipe`] (`multiprocessing.connection.Connection`).
///
/// A `Connection` is a handle: clone it to pass it to a task as an
/// argument (see [`task!`](crate::task!)). Dropping the last clone closes
/// this process's handle, as [`close`](Connection::close) does; one a task
/// received as an argument is never closed by dropping it.
#[derive(Clone, Debug)]
pub struct Connection {
    handle: SharedHandle,
    /// The size of the last message received, to size the next buffer.
    hint: Cell<usize>,
}

/// A failed receive as Python raises it: `EOFError` once the other end is
/// closed, `TimeoutError` when no message came in time (`ETIMEDOUT`, or
/// `EAGAIN` for a zero timeout), else the host's error.
fn recv_error(err: Error) -> Error {
    let (kind, message) = match err.errno() {
        Errno::Again | Errno::TimedOut => {
            (ErrorKind::Timeout, "no message came before the timeout")
        }
        Errno::Pipe => (ErrorKind::EndOfFile, "the other end of the pipe is closed"),
        _ => return err,
    };
    Error::with_kind(kind, err.errno(), message)
}

impl Connection {
    /// The connection's handle number (see [`Queue::as_raw`](super::Queue::as_raw)).
    pub fn as_raw(&self) -> i32 {
        self.handle.raw()
    }

    /// The handle, which neither this `Connection` nor its clones close
    /// any more.
    pub fn into_raw(self) -> i32 {
        self.handle.release()
    }

    /// Takes ownership of a handle of this process (see
    /// [`Queue::from_raw`](super::Queue::from_raw)). A handle that is not an
    /// open connection makes every call fail with `EBADF`.
    pub fn from_raw(handle: i32) -> Connection {
        Connection {
            handle: SharedHandle::owned(handle, sys::pipe_close),
            hint: Cell::new(0),
        }
    }

    /// The connection behind a handle this process holds but does not own
    /// here: dropping it never closes the handle.
    pub fn from_raw_borrowed(handle: i32) -> Connection {
        Connection {
            handle: SharedHandle::received(handle, sys::pipe_close),
            hint: Cell::new(0),
        }
    }

    /// Sends a message (`send(obj)`), waiting for room as long as needed.
    ///
    /// # Errors
    /// `EPIPE` when the other end is closed; `E2BIG` over 16 MiB; `EBADF`
    /// on a receive-only end or a closed handle.
    pub fn send<T: Encode>(&self, item: T) -> Result<()> {
        check(sys::pipe_send(self.as_raw(), &item.encode())).map(|_| ())
    }

    fn recv_with<T: Decode>(&self, timeout_us: i64) -> Result<T> {
        let bytes = receive(&self.hint, |buf| {
            sys::pipe_recv(self.as_raw(), buf, timeout_us)
        })
        .map_err(recv_error)?;
        T::decode(bytes)
    }

    /// Receives a message, waiting for one (`recv()`).
    ///
    /// # Errors
    /// [`ErrorKind::EndOfFile`] at end-of-file; the host's error
    /// otherwise.
    pub fn recv<T: Decode>(&self) -> Result<T> {
        self.recv_with(NO_TIMEOUT)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv`](Connection::recv); [`ErrorKind::Timeout`].
    pub fn recv_timeout<T: Decode>(&self, timeout: Duration) -> Result<T> {
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
        check(sys::pipe_poll(self.as_raw(), us)).map(|r| r == 1)
    }

    /// Closes this process's handle (`close()`).
    ///
    /// # Errors
    /// `EBADF` when this is not an open connection.
    pub fn close(self) -> Result<()> {
        let handle = self.into_raw();
        check(sys::pipe_close(handle)).map(|_| ())
    }
}

impl Value for Connection {
    /// A connection travels as its handle number, as a [`Queue`](super::Queue) does.
    fn encode(&self, out: &mut Encoder) {
        out.write_handle(self.as_raw());
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        Ok(Connection::from_raw_borrowed(<i32 as Value>::decode(
            input,
        )?))
    }
}
