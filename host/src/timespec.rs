//! Timeouts for the system calls that sleep (`ppoll`, `futex`).

use std::time::Duration;

/// A timeout as the kernel takes it: a `timespec`, or a null pointer for
/// "no timeout". Longer timeouts are capped at `i32::MAX` seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timespec(Option<libc::timespec>);

impl Timespec {
    pub(crate) fn new(timeout: Option<Duration>) -> Timespec {
        Timespec(timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        }))
    }

    /// The pointer to pass: valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *const libc::timespec {
        self.0
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec)
    }
}
