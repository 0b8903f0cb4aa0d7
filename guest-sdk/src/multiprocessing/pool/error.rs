//! The errors of pool calls and tasks, and how a task's outcome is decoded.

use crate::error::{check, Error, ErrorKind};
use procbridge_abi::pool::{
    STATUS_FAILED, STATUS_OK, STATUS_TERMINATED, STATUS_TIMED_OUT, STATUS_WORKER_LOST,
};
use procbridge_abi::Errno;
use std::fmt;

/// Why a pool call or a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The task reported an error (Python: the exception it raised) or
    /// trapped; the message says which.
    Task(String),
    /// The worker running the task died (killed, out of memory, ...); a new
    /// worker took its place.
    WorkerLost(String),
    /// The task ran over the pool's [`task_timeout`](PoolBuilder::task_timeout);
    /// its worker was killed and replaced.
    TaskTimedOut(String),
    /// The result was not ready within the time given (Python's
    /// `multiprocessing.TimeoutError`).
    Timeout,
    /// The pool was terminated before the task finished.
    Terminated,
    /// The pool was closed (or terminated): it takes no more tasks.
    Closed,
    /// `join()` before `close()` (Python: "Pool is still running").
    NotClosed,
    /// `successful()` before the result is ready.
    NotReady,
    /// The host refused the call.
    Os(Error),
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Task(m) => write!(f, "task failed: {}", m),
            PoolError::WorkerLost(m) => write!(f, "worker lost: {}", m),
            PoolError::TaskTimedOut(m) => write!(f, "task timed out: {}", m),
            PoolError::Timeout => f.write_str("the result is not ready"),
            PoolError::Terminated => f.write_str("the pool was terminated"),
            PoolError::Closed => f.write_str("Pool not running"),
            PoolError::NotClosed => f.write_str("Pool is still running"),
            PoolError::NotReady => f.write_str("the result is not ready"),
            PoolError::Os(err) => write!(f, "{}", err),
        }
    }
}

impl std::error::Error for PoolError {}

impl From<PoolError> for Error {
    /// The task's own message for a failed task (as Python re-raises the
    /// worker's exception), `WorkerLostError`, `TimeoutError`, `ValueError`
    /// for a pool in the wrong state, or the host's error.
    fn from(err: PoolError) -> Error {
        let (kind, errno) = match &err {
            PoolError::Task(message) => {
                return Error::with_kind(ErrorKind::Task, Errno::NoExec, message.clone())
            }
            PoolError::WorkerLost(_) => (ErrorKind::WorkerLost, Errno::OwnerDead),
            PoolError::TaskTimedOut(_) | PoolError::Timeout => {
                (ErrorKind::Timeout, Errno::TimedOut)
            }
            PoolError::Terminated => (ErrorKind::Value, Errno::Pipe),
            PoolError::Closed | PoolError::NotClosed | PoolError::NotReady => {
                (ErrorKind::Value, Errno::Inval)
            }
            PoolError::Os(e) => return e.clone(),
        };
        Error::with_kind(kind, errno, err.to_string())
    }
}

impl From<Error> for PoolError {
    fn from(err: Error) -> Self {
        PoolError::Os(err)
    }
}

/// What pool calls return.
pub type PoolResult<T> = std::result::Result<T, PoolError>;

pub(super) fn host(ret: i32) -> PoolResult<i32> {
    check(ret).map_err(PoolError::Os)
}

pub(super) use crate::time::micros as timeout_us;

/// One task's outcome as the host encodes it: a status byte and payload.
pub(super) fn outcome(item: &[u8]) -> PoolResult<Vec<u8>> {
    let (status, payload) = match item.split_first() {
        Some((status, payload)) => (*status, payload),
        None => return Err(PoolError::Os(Error::new(Errno::Io, "empty task outcome"))),
    };
    let text = || String::from_utf8_lossy(payload).into_owned();
    match status {
        STATUS_OK => Ok(payload.to_vec()),
        STATUS_FAILED => Err(PoolError::Task(text())),
        STATUS_WORKER_LOST => Err(PoolError::WorkerLost(text())),
        STATUS_TIMED_OUT => Err(PoolError::TaskTimedOut(text())),
        STATUS_TERMINATED => Err(PoolError::Terminated),
        other => Err(PoolError::Os(Error::new(
            Errno::Io,
            format!("unknown task status {}", other),
        ))),
    }
}

pub(super) fn into_string(bytes: Vec<u8>) -> PoolResult<String> {
    String::from_utf8(bytes).map_err(|_| PoolError::Task(String::from("result is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_decode() {
        assert_eq!(outcome(b"\0ok"), Ok(b"ok".to_vec()));
        assert_eq!(outcome(b"\x01boom"), Err(PoolError::Task("boom".into())));
        assert!(matches!(outcome(b"\x02x"), Err(PoolError::WorkerLost(_))));
        assert!(matches!(outcome(b"\x03x"), Err(PoolError::TaskTimedOut(_))));
        assert_eq!(outcome(b"\x04"), Err(PoolError::Terminated));
    }
}
