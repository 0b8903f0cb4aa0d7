//! Timeouts as the ABI takes them: `i64` microseconds, `-1` for none.

use std::time::Duration;

/// A duration in whole microseconds, rounded up (so a positive timeout
/// always waits), capped at `i64::MAX`.
// `u128::div_ceil` needs a newer Rust than guests build with.
#[allow(clippy::manual_div_ceil)]
pub(crate) fn micros(timeout: Duration) -> i64 {
    let us = (timeout.as_nanos() + 999) / 1000;
    us.min(i64::MAX as u128) as i64
}

/// An optional timeout: `None` waits forever.
pub(crate) fn timeout_us(timeout: Option<Duration>) -> i64 {
    timeout.map_or(procbridge_abi::NO_TIMEOUT, micros)
}
