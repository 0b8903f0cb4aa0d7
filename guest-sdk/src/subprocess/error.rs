//! The errors of `subprocess`, as Python's.

use crate::error::{Error, ErrorKind};
use procbridge_abi::Errno;
use std::fmt;
use std::time::Duration;

/// What can go wrong running a command (Python's `SubprocessError` family,
/// plus the `OSError` of a failed call into the host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubprocessError {
    /// The host refused or failed the call: not granted (`EPERM`), bad
    /// handle (`EBADF`), output over the limit (`ENOBUFS`), ...
    Os(Error),
    /// `check` was asked and the command exited with a non-zero code.
    CalledProcess(CalledProcessError),
    /// The timeout expired.
    Timeout(TimeoutExpired),
}

/// A command exited with a non-zero return code (Python's
/// `CalledProcessError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalledProcessError {
    /// The return code: the exit status, or `-N` after signal N.
    pub returncode: i32,
    /// The command's argv.
    pub cmd: Vec<String>,
    /// Captured stdout (empty when not captured).
    pub output: Vec<u8>,
    /// Captured stderr (empty when not captured).
    pub stderr: Vec<u8>,
}

/// The timeout expired (Python's `TimeoutExpired`), with the output that
/// arrived before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutExpired {
    /// The command's argv.
    pub cmd: Vec<String>,
    /// The timeout that expired.
    pub timeout: Duration,
    /// Stdout captured before the timeout.
    pub output: Vec<u8>,
    /// Stderr captured before the timeout.
    pub stderr: Vec<u8>,
}

impl SubprocessError {
    /// The host error, if this is one.
    pub fn os_error(&self) -> Option<&Error> {
        match self {
            SubprocessError::Os(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the policy refused the command (Python's `PermissionError`).
    pub fn is_permission_denied(&self) -> bool {
        self.os_error().map_or(false, Error::is_permission_denied)
    }

    /// Whether a timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SubprocessError::Timeout(_))
    }
}

impl From<SubprocessError> for Error {
    /// `subprocess.CalledProcessError`, `subprocess.TimeoutExpired`, or the
    /// host's error.
    fn from(err: SubprocessError) -> Error {
        let (kind, errno) = match &err {
            SubprocessError::Os(e) => return e.clone(),
            SubprocessError::CalledProcess(_) => (ErrorKind::CalledProcess, Errno::Child),
            SubprocessError::Timeout(_) => (ErrorKind::TimeoutExpired, Errno::TimedOut),
        };
        Error::with_kind(kind, errno, err.to_string())
    }
}

impl From<Error> for SubprocessError {
    fn from(e: Error) -> Self {
        SubprocessError::Os(e)
    }
}

impl fmt::Display for SubprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubprocessError::Os(e) => write!(f, "{}", e),
            SubprocessError::CalledProcess(e) => write!(f, "{}", e),
            SubprocessError::Timeout(e) => write!(f, "{}", e),
        }
    }
}

impl fmt::Display for CalledProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.returncode < 0 {
            write!(
                f,
                "Command {:?} died with signal {}.",
                self.cmd, -self.returncode
            )
        } else {
            write!(
                f,
                "Command {:?} returned non-zero exit status {}.",
                self.cmd, self.returncode
            )
        }
    }
}

impl fmt::Display for TimeoutExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command {:?} timed out after {} seconds",
            self.cmd,
            self.timeout.as_secs_f64()
        )
    }
}

impl std::error::Error for SubprocessError {}
impl std::error::Error for CalledProcessError {}
impl std::error::Error for TimeoutExpired {}
