//! Channels between the OS processes of a guest tree: [`Queue`] and
//! [`Pipe`](pipe()) connections.
//!
//! Neither needs a broker thread or process, so they survive `fork` (the host
//! runs no helper threads that a fork child would miss):
//!
//! * A [`Queue`] is a ring of length-prefixed messages in a `MAP_SHARED`
//!   mapping made when the queue is created; fork children inherit the
//!   mapping. A process-shared *robust* mutex guards it: a process killed
//!   while holding the lock hands `EOWNERDEAD` to the next locker, which
//!   recounts the ring and carries on, because every change is committed by
//!   moving an index after the bytes are in place. Blocked callers sleep on
//!   futexes in the same mapping, with deadlines. Memory is bounded by
//!   construction: the ring is the queue's byte limit.
//! * A [`Connection`] is one end of a Unix socket pair carrying
//!   length-prefixed frames. The kernel reports end-of-file when every copy
//!   of the other end is closed, including by the death of the process that
//!   held it.
//!
//! ```
//! use procbridge::channel::{Queue, QueueConfig, Wait};
//!
//! let q = Queue::new(QueueConfig::default())?;
//! q.put(b"A", Wait::Forever)?;
//! assert_eq!(q.get(Wait::NoWait)?, b"A");
//! # Ok::<(), procbridge::BridgeError>(())
//! ```

use crate::errno::{BridgeError, BridgeResult, Errno};
use std::time::{Duration, Instant};

mod pipe;
mod queue;
mod ring;
mod shm;

#[cfg(test)]
mod cross_process_tests;

pub use pipe::{pipe, Connection, MAX_PIPE_MESSAGE};
pub use queue::{Queue, QueueConfig, DEFAULT_QUEUE_BYTES, MAX_QUEUE_BYTES, MAX_TOTAL_QUEUE_BYTES};

/// How long a blocking channel operation may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wait until the operation can be done.
    Forever,
    /// Do not wait: `EAGAIN` if the operation would block.
    NoWait,
    /// Wait until this instant: `ETIMEDOUT` after it.
    Until(Instant),
}

impl Wait {
    /// The wait for an ABI timeout in microseconds: `-1` is forever, `0`
    /// does not wait.
    ///
    /// # Errors
    /// `EINVAL` for other negative values.
    pub fn from_micros(timeout_us: i64) -> BridgeResult<Wait> {
        match timeout_us {
            procbridge_abi::NO_TIMEOUT => Ok(Wait::Forever),
            0 => Ok(Wait::NoWait),
            t if t < 0 => Err(BridgeError::invalid(format!(
                "timeout {t} is negative (use -1 to wait forever)"
            ))),
            t => Ok(Instant::now()
                .checked_add(Duration::from_micros(t as u64))
                .map_or(Wait::Forever, Wait::Until)),
        }
    }

    /// The wait for an optional duration (`None` is forever).
    pub fn timeout(duration: Option<Duration>) -> Wait {
        match duration {
            None => Wait::Forever,
            Some(d) if d.is_zero() => Wait::NoWait,
            Some(d) => Instant::now()
                .checked_add(d)
                .map_or(Wait::Forever, Wait::Until),
        }
    }

    /// How long is left: `None` for forever, `Err` (`EAGAIN` or `ETIMEDOUT`,
    /// naming `what`) when no time is left.
    pub(crate) fn remaining(self, what: &str) -> BridgeResult<Option<Duration>> {
        match self {
            Wait::Forever => Ok(None),
            Wait::NoWait => Err(BridgeError::new(
                Errno::Again,
                format!("{what} would block"),
            )),
            Wait::Until(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(BridgeError::new(
                        Errno::TimedOut,
                        format!("{what}: timed out"),
                    ))
                } else {
                    Ok(Some(left))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_from_micros() {
        assert_eq!(Wait::from_micros(-1).unwrap(), Wait::Forever);
        assert_eq!(Wait::from_micros(0).unwrap(), Wait::NoWait);
        assert!(matches!(Wait::from_micros(5).unwrap(), Wait::Until(_)));
        assert_ne!(Wait::from_micros(i64::MAX).unwrap(), Wait::NoWait);
        for bad in [-2, i64::MIN] {
            assert_eq!(Wait::from_micros(bad).unwrap_err().errno, Errno::Inval);
        }
        assert_eq!(
            Wait::NoWait.remaining("get").unwrap_err().errno,
            Errno::Again
        );
        let past = Wait::Until(Instant::now());
        assert_eq!(past.remaining("get").unwrap_err().errno, Errno::TimedOut);
    }
}
