//! The one error type of the SDK.
//!
//! Every call into the host returns it, and the two errors that carry more
//! ([`PoolError`](crate::multiprocessing::PoolError), with the task's
//! outcome, and [`SubprocessError`](crate::subprocess::SubprocessError),
//! with the command's output) convert into it with `?`. It prints the way Python prints the exception it
//! stands for, so a `main` returning it ends with the line Python would show:
//!
//! ```text
//! Error: PermissionError: [Errno 1] run "sort": not granted (add --allow-run sort)
//! ```

use crate::sys;
use procbridge_abi::Errno;
use std::fmt;

/// What kind of failure an [`Error`] is, named after the Python exception
/// it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A call into the host failed with an errno (Python's `OSError` and
    /// its subclasses: `PermissionError`, `FileNotFoundError`, ...).
    Os,
    /// A task run in another process failed; the message is what it
    /// reported, or its panic (Python re-raises the worker's exception).
    Task,
    /// The worker process running a task died.
    WorkerLost,
    /// A wait gave up: a result not ready in time, a task over its
    /// timeout (`multiprocessing.TimeoutError`, `TimeoutError`).
    Timeout,
    /// A queue was empty (`queue.Empty`).
    Empty,
    /// A queue was full (`queue.Full`).
    Full,
    /// A queue was shut down (`queue.ShutDown`).
    Closed,
    /// The other end of a pipe is closed (`EOFError`).
    EndOfFile,
    /// A command exited with a non-zero code (`CalledProcessError`).
    CalledProcess,
    /// A command ran over its timeout (`TimeoutExpired`).
    TimeoutExpired,
    /// A call not valid in this state (`ValueError`: "Pool not running",
    /// a message that is not of the type asked for).
    Value,
}

/// A failure: its [`ErrorKind`], the [`Errno`] closest to it, and a message.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    errno: Errno,
    message: String,
}

/// The result of calls into the host.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error from the host: a code and a message.
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Error::with_kind(ErrorKind::Os, errno, message)
    }

    /// An error of another kind.
    pub fn with_kind(kind: ErrorKind, errno: Errno, message: impl Into<String>) -> Self {
        Error {
            kind,
            errno,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, as a code to match on.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The explanation, without the exception's name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the policy refused the call (Python's `PermissionError`).
    pub fn is_permission_denied(&self) -> bool {
        self.kind == ErrorKind::Os && self.errno == Errno::Perm
    }

    /// Whether a timeout expired.
    pub fn is_timeout(&self) -> bool {
        self.errno == Errno::TimedOut
    }

    /// The name of the Python exception this error stands for.
    ///
    /// ```
    /// use procbridge_sdk::{Errno, Error};
    /// assert_eq!(Error::new(Errno::Perm, "no").python_name(), "PermissionError");
    /// assert_eq!(Error::new(Errno::Inval, "no").python_name(), "OSError");
    /// ```
    pub fn python_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::Os => python_os_error(self.errno),
            ErrorKind::Task => "TaskError",
            ErrorKind::WorkerLost => "WorkerLostError",
            ErrorKind::Timeout => "TimeoutError",
            ErrorKind::Empty => "queue.Empty",
            ErrorKind::Full => "queue.Full",
            ErrorKind::EndOfFile => "EOFError",
            ErrorKind::Closed => "queue.ShutDown",
            ErrorKind::CalledProcess => "subprocess.CalledProcessError",
            ErrorKind::TimeoutExpired => "subprocess.TimeoutExpired",
            ErrorKind::Value => "ValueError",
        }
    }

    /// The error for a negative return value, with the host's message.
    pub(crate) fn from_return(ret: i32) -> Error {
        let errno = match Errno::from_return(ret) {
            Some(errno) => errno,
            None => {
                return Error::new(Errno::Io, format!("host returned unknown error code {ret}"))
            }
        };
        Error::new(errno, last_error_message())
    }
}

/// Python's `OSError` subclass for an errno.
fn python_os_error(errno: Errno) -> &'static str {
    match errno {
        Errno::Perm => "PermissionError",
        Errno::NoEnt => "FileNotFoundError",
        Errno::Srch => "ProcessLookupError",
        Errno::Child => "ChildProcessError",
        Errno::Again => "BlockingIOError",
        Errno::Pipe => "BrokenPipeError",
        Errno::TimedOut => "TimeoutError",
        Errno::NoMem => "MemoryError",
        _ => "OSError",
    }
}

impl fmt::Display for Error {
    /// As Python prints the exception: `PermissionError: [Errno 1] ...`
    /// for a host error, `queue.Empty: ...`, and a task's own message as it
    /// reported it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Os if self.errno == Errno::NoMem => {
                write!(f, "MemoryError: {}", self.message)
            }
            ErrorKind::Os => write!(
                f,
                "{}: [Errno {}] {}",
                self.python_name(),
                self.errno as i32,
                self.message
            ),
            ErrorKind::Task => f.write_str(&self.message),
            _ => write!(f, "{}: {}", self.python_name(), self.message),
        }
    }
}

impl fmt::Debug for Error {
    /// The same line as `Display`, so that `main` returning an error prints
    /// it as Python would (`{:#?}` shows the fields).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("Error")
                .field("kind", &self.kind)
                .field("errno", &self.errno)
                .field("message", &self.message)
                .finish()
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::new(Errno::Io, err.to_string())
    }
}

fn last_error_message() -> String {
    let mut buf = Vec::with_capacity(256);
    loop {
        let len = sys::last_error(&mut buf);
        if len < 0 {
            return String::from("(the host's message could not be read)");
        }
        if len as usize <= buf.len() {
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.clear();
        buf.reserve_exact(len as usize);
    }
}

/// Turns a host return value into a `Result`.
pub(crate) fn check(ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(Error::from_return(ret))
    } else {
        Ok(ret)
    }
}

/// Fetches a result of `len` bytes that a call left waiting in the host.
pub(crate) fn take_result(len: i32) -> Result<Vec<u8>> {
    // Not zeroed first: results can be hundreds of megabytes.
    let mut buf = Vec::new();
    check(sys::take_result(&mut buf, len.max(0) as usize))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_python_does() {
        let denied = Error::new(
            Errno::Perm,
            "run \"sort\": not granted (add --allow-run sort)",
        );
        let line = "PermissionError: [Errno 1] run \"sort\": not granted (add --allow-run sort)";
        assert_eq!(denied.to_string(), line);
        assert_eq!(format!("{:?}", denied), line);
        assert!(format!("{:#?}", denied).contains("Perm"));
        let empty = Error::with_kind(ErrorKind::Empty, Errno::Again, "the queue is empty");
        assert_eq!(empty.to_string(), "queue.Empty: the queue is empty");
        let task = Error::with_kind(ErrorKind::Task, Errno::NoExec, "panicked at 'boom'");
        assert_eq!(task.to_string(), "panicked at 'boom'");
    }
}
