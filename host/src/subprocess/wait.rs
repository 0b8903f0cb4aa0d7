//! A spawned child's pid and exit status: waiting with a deadline, signals,
//! and the kill-and-reap that guarantees no zombie is left behind.
//!
//! A child is either the host's own (started directly, where the machine
//! has no jail) or a command in the jail: the jail's helper reaps it and
//! sends its wait status on the command's channel, and kills its process
//! group when asked (or when the channel closes).

use super::io::{self, Deadline};
use crate::audit;
use crate::confine::jail::Record;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::supervisor;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// One child process we have not reaped yet (or have, with its status).
///
/// Dropping it kills the child's process group if the child has not been
/// reaped, and reaps it: no path leaves a zombie.
#[derive(Debug)]
pub(crate) struct Child {
    pid: i32,
    /// A pidfd when the kernel has them: to signal it without a pid race.
    pidfd: Option<OwnedFd>,
    /// For a command in the jail: its channel to the jail's helper.
    channel: Option<OwnedFd>,
    returncode: Option<i32>,
    /// Its place in the tree-wide process table, given back once reaped.
    slot: Option<supervisor::Slot>,
}

impl Child {
    /// A child of this process.
    pub(crate) fn new(pid: i32, slot: supervisor::Slot) -> Child {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: the syscall returned a fresh descriptor we own.
            unsafe { OwnedFd::from_raw_fd(fd as i32) }
        });
        Child {
            pid,
            pidfd,
            channel: None,
            returncode: None,
            slot: Some(slot),
        }
    }

    /// A command the jail's helper started (and will reap).
    pub(crate) fn jailed(started: crate::confine::jail::Started, slot: supervisor::Slot) -> Child {
        Child {
            pid: started.pid,
            pidfd: Some(started.pidfd),
            channel: Some(started.channel),
            returncode: None,
            slot: Some(slot),
        }
    }

    /// In a fork child, for the parent's child: closes this process's copies
    /// of its pidfd and channel (closing a copy tells the jail nothing).
    pub(crate) fn close_descriptors_in_fork_child(&mut self) {
        self.pidfd = None;
        self.channel = None;
    }

    /// The return code, once reaped.
    pub(crate) fn returncode(&self) -> Option<i32> {
        self.returncode
    }

    /// The real OS pid.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Reaps the child if it has exited (Python's `poll()`).
    pub(crate) fn poll(&mut self) -> BridgeResult<Option<i32>> {
        if self.returncode.is_none() {
            self.waitpid(libc::WNOHANG)?;
        }
        Ok(self.returncode)
    }

    /// Waits for the child until the deadline; `None` if it is still running.
    pub(crate) fn wait(&mut self, deadline: Deadline) -> BridgeResult<Option<i32>> {
        let mut backoff = std::time::Duration::from_micros(50);
        loop {
            if let Some(code) = self.poll()? {
                return Ok(Some(code));
            }
            if deadline.expired() {
                return Ok(None);
            }
            match self.channel.as_ref().or(self.pidfd.as_ref()) {
                Some(fd) => {
                    io::wait_ready(fd, libc::POLLIN, deadline)?;
                }
                None => {
                    // No pidfd (old kernel): sleep in growing steps.
                    let nap = deadline.left().map_or(backoff, |left| left.min(backoff));
                    std::thread::sleep(nap);
                    backoff = (backoff * 2).min(std::time::Duration::from_millis(10));
                }
            }
        }
    }

    /// Sends `signal` to the child (not its group), as Python's
    /// `send_signal`. Does nothing once the child has been reaped.
    pub(crate) fn send_signal(&mut self, signal: i32) -> BridgeResult<()> {
        if !(1..=libc::SIGRTMAX()).contains(&signal) {
            return Err(BridgeError::invalid(format!(
                "{signal} is not a signal number"
            )));
        }
        if self.poll()?.is_some() {
            return Ok(());
        }
        let sent = match &self.pidfd {
            // SAFETY: a pidfd we own and a signal number.
            Some(pidfd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                ) as i32
            },
            // SAFETY: kill with a pid we have not reaped, so it is still ours.
            None => unsafe { libc::kill(self.pid, signal) },
        };
        if sent != 0 {
            let err = std::io::Error::last_os_error();
            // It ended and is waiting to be reaped: nothing to signal.
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(BridgeError::io("kill", err));
            }
        }
        Ok(())
    }

    /// Kills the child's process group (grandchildren included) and reaps
    /// the child. Returns its return code.
    pub(crate) fn kill_and_reap(&mut self) -> i32 {
        if let Some(code) = self.returncode {
            return code;
        }
        match &self.channel {
            // The helper kills the group and reports the status.
            Some(channel) => {
                let _ = Record::Kill.send(channel.as_fd(), None);
            }
            // SAFETY: the child is not reaped, so its pid and process group
            // (it leads one since spawn) still name our processes.
            None => unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
                libc::kill(self.pid, libc::SIGKILL);
            },
        }
        if let Some(event) = audit::logged(audit::Kind::Kill) {
            event
                .child(self.pid as u32)
                .outcome("SIGKILL to its process group")
                .record();
        }
        loop {
            match self.waitpid(0) {
                Ok(()) if self.returncode.is_some() => break,
                Ok(()) => continue,
                // ECHILD: someone else reaped it; nothing is left to do.
                Err(_) => {
                    self.returncode = Some(-libc::SIGKILL);
                    break;
                }
            }
        }
        self.returncode.unwrap_or(-libc::SIGKILL)
    }

    /// Takes the child's status if it ended (`WNOHANG`), or waits for it
    /// (`0`).
    fn waitpid(&mut self, flags: i32) -> BridgeResult<()> {
        if let Some(channel) = &self.channel {
            let status = match exit_status(channel, flags & libc::WNOHANG != 0) {
                Ok(Some(status)) => status,
                Ok(None) => return Ok(()),
                // The jail is gone, and the command with it.
                Err(_) => libc::SIGKILL,
            };
            self.reaped(status);
            return Ok(());
        }
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, flags) };
            if r == self.pid {
                self.reaped(status);
                return Ok(());
            }
            if r == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(BridgeError::new(
                Errno::Child,
                format!("waitpid {}: {err}", self.pid),
            ));
        }
    }
}

impl Child {
    fn reaped(&mut self, status: i32) {
        let code = crate::process::child::exitcode(status);
        self.returncode = Some(code);
        if let Some(slot) = self.slot.take() {
            supervisor::release(slot);
        }
        if let Some(event) = audit::logged(audit::Kind::Exit) {
            event
                .child(self.pid as u32)
                .outcome(format!("returncode {code}"))
                .record();
        }
        // The child is gone: its pidfd and channel have no more use.
        self.pidfd = None;
        self.channel = None;
    }
}

/// The wait status the jail's helper sent, if it did (`nonblocking`) or
/// once it does.
fn exit_status(channel: &OwnedFd, nonblocking: bool) -> std::io::Result<Option<i32>> {
    let flags = if nonblocking {
        rustix::net::RecvFlags::DONTWAIT
    } else {
        rustix::net::RecvFlags::empty()
    };
    match Record::receive(channel.as_fd(), flags) {
        Ok(Some((Record::Exited(status), _))) => Ok(Some(status)),
        Ok(Some(_)) => Err(std::io::Error::from(std::io::ErrorKind::InvalidData)),
        Ok(None) => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        Err(e) if nonblocking && e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}
