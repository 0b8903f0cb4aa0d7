//! Resource limits for spawned commands.

use std::io;

/// Resource limits applied to each spawned command (`None`: inherited).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLimits {
    /// CPU seconds (`RLIMIT_CPU`); the kernel sends SIGXCPU, then SIGKILL.
    pub cpu_seconds: Option<u64>,
    /// Address space in bytes (`RLIMIT_AS`).
    pub address_space: Option<u64>,
    /// Open files (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// Processes of the user (`RLIMIT_NPROC`; not enforced for root).
    pub processes: Option<u64>,
    /// Largest file it may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size: Option<u64>,
}

/// Sets the limits; core dumps are always disabled.
///
/// # Safety
/// Affects the calling process; async-signal-safe.
pub(super) unsafe fn apply(limits: &CommandLimits) -> io::Result<()> {
    let set = |resource, value: u64| -> io::Result<()> {
        let limit = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: setrlimit with a valid pointer to a local struct.
        if unsafe { libc::setrlimit(resource, &limit) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    set(libc::RLIMIT_CORE, 0)?;
    let pairs = [
        (libc::RLIMIT_CPU, limits.cpu_seconds),
        (libc::RLIMIT_AS, limits.address_space),
        (libc::RLIMIT_NOFILE, limits.open_files),
        (libc::RLIMIT_NPROC, limits.processes),
        (libc::RLIMIT_FSIZE, limits.file_size),
    ];
    for (resource, value) in pairs {
        if let Some(value) = value {
            set(resource, value)?;
        }
    }
    Ok(())
}
