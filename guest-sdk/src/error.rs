//! The error type of every call into the host.

use crate::sys;
use procbridge_abi::Errno;
use std::fmt;

/// A failed call into the host: its [`Errno`] and the host's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    errno: Errno,
    message: String,
}

/// The result of calls into the host.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with a code and a message.
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Error {
            errno,
            message: message.into(),
        }
    }

    /// What went wrong, as a code to match on.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The host's explanation.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the policy refused the call (Python's `PermissionError`).
    pub fn is_permission_denied(&self) -> bool {
        self.errno == Errno::Perm
    }

    /// Whether a timeout expired.
    pub fn is_timeout(&self) -> bool {
        self.errno == Errno::TimedOut
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.errno, self.message)
    }
}

impl std::error::Error for Error {}

fn last_error_message() -> String {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let len = unsafe { sys::last_error(buf.as_mut_ptr(), buf.len() as i32) };
        if len < 0 {
            return String::from("(the host's message could not be read)");
        }
        let len = len as usize;
        if len <= buf.len() {
            buf.truncate(len);
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.resize(len, 0);
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
    let len = len.max(0);
    // Not zeroed first: results can be hundreds of megabytes.
    let mut buf: Vec<u8> = Vec::with_capacity(len as usize);
    // SAFETY: `buf` has `len` bytes of capacity; the host writes exactly
    // `len` bytes there on success, and only then is the length set.
    unsafe {
        check(sys::take_result(buf.as_mut_ptr(), len))?;
        buf.set_len(len as usize);
    }
    Ok(buf)
}
