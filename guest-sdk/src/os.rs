//! Python's `os`: process identity.

use crate::sys;

/// The real OS pid of the process running this guest (`os.getpid()`).
///
/// ```no_run
/// println!("Process ({}) start...", procbridge_sdk::os::getpid());
/// ```
pub fn getpid() -> u32 {
    // SAFETY: no arguments; the host cannot fail this call.
    unsafe { sys::getpid() as u32 }
}

/// The real OS pid of this process's parent (`os.getppid()`).
pub fn getppid() -> u32 {
    // SAFETY: as `getpid`.
    unsafe { sys::getppid() as u32 }
}
