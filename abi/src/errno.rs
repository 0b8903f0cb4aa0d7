//! Error codes returned (negated) by host functions.
//!
//! The values are Linux errno numbers so that a guest author recognises them,
//! with one meaning each in procbridge. `docs/abi.md` lists which functions
//! return which code.

/// An error code returned by a host function as `-(code as i32)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Errno {
    /// The policy does not grant this (a command, a directory, a limit).
    Perm = 1,
    /// No such command, export or file.
    NoEnt = 2,
    /// No such process (already reaped, or never ours).
    Srch = 3,
    /// An I/O error while talking to a process or channel.
    Io = 5,
    /// An argument, list or message is larger than the host accepts.
    TooBig = 7,
    /// A task failed: the target trapped or returned an error.
    NoExec = 8,
    /// The handle is not open, was closed, or is of another kind.
    BadF = 9,
    /// Nothing to wait for.
    Child = 10,
    /// The operation would block (queue empty or full, poll not ready) or a
    /// tree-wide process limit was reached, as `fork` reports it.
    Again = 11,
    /// Out of memory, or a memory limit was reached.
    NoMem = 12,
    /// A pointer or length points outside the guest's memory.
    Fault = 14,
    /// The call is not valid in the current state (join before close, ...).
    Inval = 22,
    /// The per-instance handle table is full.
    MFile = 24,
    /// The peer is gone: the pipe or queue is closed.
    Pipe = 32,
    /// The host does not support this on this platform.
    NoSys = 38,
    /// Output or queued bytes went over a limit.
    NoBufs = 105,
    /// The timeout expired.
    TimedOut = 110,
    /// A worker process died while running a task.
    OwnerDead = 130,
}

impl Errno {
    /// Every code, for tables and tests.
    pub const ALL: [Errno; 18] = [
        Errno::Perm,
        Errno::NoEnt,
        Errno::Srch,
        Errno::Io,
        Errno::TooBig,
        Errno::NoExec,
        Errno::BadF,
        Errno::Child,
        Errno::Again,
        Errno::NoMem,
        Errno::Fault,
        Errno::Inval,
        Errno::MFile,
        Errno::Pipe,
        Errno::NoSys,
        Errno::NoBufs,
        Errno::TimedOut,
        Errno::OwnerDead,
    ];

    /// The code as a host function returns it: negative.
    pub fn to_return(self) -> i32 {
        -(self as i32)
    }

    /// The code of a negative return value, if it is one.
    pub fn from_return(ret: i32) -> Option<Errno> {
        if ret >= 0 {
            return None;
        }
        let code = ret.checked_neg()?;
        Errno::ALL.iter().copied().find(|e| *e as i32 == code)
    }

    /// The conventional name, e.g. `"EPERM"`.
    pub fn name(self) -> &'static str {
        match self {
            Errno::Perm => "EPERM",
            Errno::NoEnt => "ENOENT",
            Errno::Srch => "ESRCH",
            Errno::Io => "EIO",
            Errno::TooBig => "E2BIG",
            Errno::NoExec => "ENOEXEC",
            Errno::BadF => "EBADF",
            Errno::Child => "ECHILD",
            Errno::Again => "EAGAIN",
            Errno::NoMem => "ENOMEM",
            Errno::Fault => "EFAULT",
            Errno::Inval => "EINVAL",
            Errno::MFile => "EMFILE",
            Errno::Pipe => "EPIPE",
            Errno::NoSys => "ENOSYS",
            Errno::NoBufs => "ENOBUFS",
            Errno::TimedOut => "ETIMEDOUT",
            Errno::OwnerDead => "EOWNERDEAD",
        }
    }
}

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_code() {
        for e in Errno::ALL {
            assert_eq!(Errno::from_return(e.to_return()), Some(e));
        }
        assert_eq!(Errno::from_return(0), None);
        assert_eq!(Errno::from_return(5), None);
        assert_eq!(Errno::from_return(-999), None);
        assert_eq!(Errno::from_return(i32::MIN), None);
    }
}
