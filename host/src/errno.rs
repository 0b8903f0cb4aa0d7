//! The error a host function gives a guest: an [`Errno`] and a message.
//!
//! Every expected failure of a bridged call (denied, not found, timed out,
//! closed, a bad pointer) becomes a [`BridgeError`]. The host function returns
//! `-errno` and keeps the message, which the guest reads with `last_error`.

use std::fmt;

pub use procbridge_abi::Errno;

/// An expected failure of a bridged call, returned to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeError {
    /// The code the guest matches on.
    pub errno: Errno,
    /// A message the guest (and its user) can read.
    pub message: String,
}

impl BridgeError {
    /// An error with a code and a message.
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        BridgeError {
            errno,
            message: message.into(),
        }
    }

    /// `EPERM`: the policy does not grant what was asked.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(Errno::Perm, message)
    }

    /// `EINVAL`: an argument or the call's order is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Errno::Inval, message)
    }

    /// `EBADF`: not an open handle of the expected kind.
    pub fn bad_handle(handle: i32, kind: &str) -> Self {
        Self::new(
            Errno::BadF,
            format!("{handle} is not an open {kind} handle"),
        )
    }

    /// `EIO` from an OS error, naming what was being done.
    pub fn io(what: &str, err: std::io::Error) -> Self {
        Self::new(Errno::Io, format!("{what}: {err}"))
    }

    /// An OS error that made a new descriptor fail: `EMFILE` when the
    /// process or system is out of descriptors, else `EIO`.
    pub fn no_descriptor(what: &str, err: std::io::Error) -> Self {
        let errno = match err.raw_os_error() {
            Some(libc::EMFILE) | Some(libc::ENFILE) => Errno::MFile,
            _ => Errno::Io,
        };
        Self::new(errno, format!("{what}: {err}"))
    }
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.errno, self.message)
    }
}

impl std::error::Error for BridgeError {}

/// The result type of host function bodies.
pub type BridgeResult<T> = Result<T, BridgeError>;
