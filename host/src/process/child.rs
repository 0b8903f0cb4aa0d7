//! One child OS process of this host process: waiting for it (with a
//! timeout), signalling it, reaping it, and giving its supervisor slot back.

use crate::audit;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::supervisor::{self, Slot};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A child process started by this host process. Dropping it waits for the
/// child (it must have been told to end first if it should not be waited
/// for), so no child is left a zombie.
///
/// It holds no file descriptor (a pidfd is opened only for a wait with a
/// timeout), so a fork child that forgets its parent's entries leaks
/// nothing.
#[derive(Debug)]
pub(crate) struct Child {
    pid: i32,
    slot: Option<Slot>,
    /// The raw wait status, once reaped.
    status: Option<i32>,
}

impl Child {
    /// Takes charge of the freshly forked child `slot.pid()`.
    pub(crate) fn new(slot: Slot) -> Child {
        Child {
            pid: slot.pid() as i32,
            slot: Some(slot),
            status: None,
        }
    }

    /// Its pid.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Its raw wait status, if it has been reaped.
    pub(crate) fn status(&self) -> Option<i32> {
        self.status
    }

    /// Reaps it if it has ended, without blocking.
    pub(crate) fn try_wait(&mut self) -> BridgeResult<Option<i32>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child, writing to a local.
        let ret = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if ret == self.pid {
            self.reaped(status);
            return Ok(Some(status));
        }
        if ret == 0 {
            return Ok(None);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(None);
        }
        Err(BridgeError::new(
            Errno::Child,
            format!("waiting for process {}: {err}", self.pid),
        ))
    }

    fn reaped(&mut self, status: i32) {
        self.status = Some(status);
        if let Some(slot) = self.slot.take() {
            supervisor::release(slot);
        }
        if let Some(event) = audit::logged(audit::Kind::Exit) {
            event
                .child(self.pid as u32)
                .outcome(describe(Some(status)))
                .record();
        }
    }

    /// Waits until it ends or `timeout` passes (`None`: forever). Returns
    /// its raw status, or `None` on timeout.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> BridgeResult<Option<i32>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        // No timeout, or a deadline past what `Instant` can hold: forever.
        let deadline = match timeout.and_then(|t| Instant::now().checked_add(t)) {
            Some(deadline) => deadline,
            None => return self.wait_blocking().map(Some),
        };
        let pidfd = self.pidfd();
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match &pidfd {
                Some(fd) => wait_readable(fd.as_raw_fd(), Some(left)),
                None => std::thread::sleep(left.min(Duration::from_millis(1))),
            }
        }
    }

    fn wait_blocking(&mut self) -> BridgeResult<i32> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let mut status = 0;
            // SAFETY: waitpid on our own child, writing to a local.
            let ret = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if ret == self.pid {
                self.reaped(status);
                continue;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(BridgeError::new(
                    Errno::Child,
                    format!("waiting for process {}: {err}", self.pid),
                ));
            }
        }
    }

    /// A pidfd, readable once the child has ended (`None` where
    /// `pidfd_open` is missing: waits then poll).
    fn pidfd(&self) -> Option<OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags; the result is a new fd
        // owned here. The child is unreaped, so the pid is still ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    /// Sends `signal` unless it has already been reaped (then it is a no-op,
    /// as Python's `terminate()` on an ended process).
    pub(crate) fn signal(&mut self, signal: i32) -> BridgeResult<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        // SAFETY: our own unreaped child: the pid cannot have been reused.
        if unsafe { libc::kill(self.pid, signal) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(BridgeError::io(
                &format!("signal process {}", self.pid),
                err,
            ));
        }
        Ok(())
    }

    /// In a fork child: this is the parent's child, not ours. Forget it
    /// without waiting.
    pub(crate) fn disown(self) {
        std::mem::forget(self);
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Errors here mean it was already reaped by someone else.
        let _ = self.wait(None);
    }
}

/// Waits until one of `children` has ended and returns its index.
pub(crate) fn wait_any(children: &mut [Child]) -> BridgeResult<usize> {
    loop {
        for (index, child) in children.iter_mut().enumerate() {
            if child.try_wait()?.is_some() {
                return Ok(index);
            }
        }
        let pidfds: Vec<OwnedFd> = children.iter().filter_map(Child::pidfd).collect();
        let mut fds: Vec<libc::pollfd> = pidfds
            .iter()
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if fds.len() < children.len() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        // SAFETY: `fds` is a valid array of pollfds.
        unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1);
        }
    }
}

/// Blocks until `fd` is readable, `timeout` passes or a signal arrives.
fn wait_readable(fd: i32, timeout: Option<Duration>) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = crate::timespec::Timespec::new(timeout);
    let ts_ptr = ts.as_ptr();
    // SAFETY: one valid pollfd; `ts_ptr` is null or points to a local.
    unsafe {
        libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null());
    }
}

/// How a process with raw wait status `status` ended, in words.
pub(crate) fn describe(status: Option<i32>) -> String {
    match status.map(exitcode) {
        Some(code) if code < 0 => format!("killed by signal {}", -code),
        Some(code) => format!("exit code {code}"),
        None => String::from("unknown status"),
    }
}

/// Python's exit code of a raw wait status: `N` for `exit(N)`, `-N` for
/// signal `N`.
pub(crate) fn exitcode(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        -libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

#[cfg(test)]
mod tests {
    use super::exitcode;

    #[test]
    fn exitcodes_of_statuses() {
        assert_eq!(exitcode(0), 0);
        assert_eq!(exitcode(3 << 8), 3);
        assert_eq!(exitcode(libc::SIGTERM), -15);
        assert_eq!(exitcode(libc::SIGKILL | 0x80), -9);
    }
}
