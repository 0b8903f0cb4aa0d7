//! Timeouts: the ABI's `i64` microseconds, and how long a blocking call may
//! still wait. One type for every bridged call that blocks (channels, pools,
//! commands, processes).

use crate::errno::{BridgeError, BridgeResult, Errno};
use std::time::{Duration, Instant};

/// How long a blocking call may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Until the operation can be done.
    Forever,
    /// Not at all: `EAGAIN` if the operation would block.
    Never,
    /// Until this instant: `ETIMEDOUT` after it.
    Until(Instant),
}

impl Wait {
    /// The wait for an ABI timeout in microseconds: `-1` is forever, `0`
    /// does not wait; a timeout too long to represent is forever.
    ///
    /// # Errors
    /// `EINVAL` for other negative values.
    pub fn from_micros(timeout_us: i64) -> BridgeResult<Wait> {
        match timeout_us {
            procbridge_abi::NO_TIMEOUT => Ok(Wait::Forever),
            0 => Ok(Wait::Never),
            t if t < 0 => Err(BridgeError::invalid(format!(
                "timeout {t} is negative (use -1 to wait forever)"
            ))),
            t => Ok(Wait::timeout(Some(Duration::from_micros(t as u64)))),
        }
    }

    /// The wait for an optional duration (`None` is forever).
    pub fn timeout(duration: Option<Duration>) -> Wait {
        match duration {
            None => Wait::Forever,
            Some(d) if d.is_zero() => Wait::Never,
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
            Wait::Never => Err(BridgeError::new(
                Errno::Again,
                format!("{what} would block"),
            )),
            Wait::Until(_) => match self.left() {
                Some(left) if left.is_zero() => Err(BridgeError::new(
                    Errno::TimedOut,
                    format!("{what}: timed out"),
                )),
                left => Ok(left),
            },
        }
    }

    /// Time left: `None` for forever, zero once over.
    pub(crate) fn left(&self) -> Option<Duration> {
        match self {
            Wait::Forever => None,
            Wait::Never => Some(Duration::ZERO),
            Wait::Until(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// Whether the time to wait is over.
    pub(crate) fn expired(&self) -> bool {
        self.left().is_some_and(|left| left.is_zero())
    }

    /// The timeout argument for `poll(2)`: milliseconds left, rounded up
    /// (so a short wait still waits), or `-1` for forever.
    pub(crate) fn poll_millis(&self) -> i32 {
        match self.left() {
            None => -1,
            Some(left) => left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_from_micros() {
        assert_eq!(Wait::from_micros(-1).unwrap(), Wait::Forever);
        assert_eq!(Wait::from_micros(0).unwrap(), Wait::Never);
        assert!(matches!(Wait::from_micros(5).unwrap(), Wait::Until(_)));
        assert_ne!(Wait::from_micros(i64::MAX).unwrap(), Wait::Never);
        assert!(matches!(
            Wait::from_micros(i64::MAX).unwrap(),
            Wait::Until(_) | Wait::Forever
        ));
        for bad in [-2, i64::MIN] {
            assert_eq!(Wait::from_micros(bad).unwrap_err().errno, Errno::Inval);
        }
        assert_eq!(
            Wait::Never.remaining("get").unwrap_err().errno,
            Errno::Again
        );
        let past = Wait::Until(Instant::now());
        assert_eq!(past.remaining("get").unwrap_err().errno, Errno::TimedOut);
    }

    #[test]
    fn poll_timeouts_and_expiry() {
        assert_eq!(Wait::Forever.poll_millis(), -1);
        assert!(!Wait::Forever.expired());
        assert_eq!(Wait::Never.poll_millis(), 0);
        assert!(Wait::Never.expired());
        let huge = Wait::from_micros(i64::MAX).unwrap();
        assert!(!huge.expired());
        assert!(huge.poll_millis() == -1 || huge.poll_millis() == i32::MAX);
        // 1.5 ms is rounded up to 2.
        let short = Wait::from_micros(1500).unwrap().poll_millis();
        assert!((1..=2).contains(&short), "{short}");
    }
}
