//! The jail's resident helper: the init (pid 1) of the job's PID namespace.
//!
//! It starts each command the host asks for (with [`Launch`], as the host
//! itself would, from inside the namespaces), reports its pid and pidfd,
//! reaps it and reports how it ended, kills its process group when the
//! host asks or lets go, and reaps every orphan of the jail. It serves
//! until the control socket closes (every process of the job is gone) or
//! it is killed; either way the kernel then kills everything left in the
//! namespace.

use super::wire::{self, Record, Request, Stream};
use crate::confine::landlock::{Access, Ruleset};
use crate::confine::{CommandLimits, Confinement};
use crate::subprocess::launch::{Cwd, Dispositions, Launch};
use rustix::net::RecvFlags;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a host process may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One command the helper started and has not reaped yet.
struct Command {
    pid: i32,
    /// Its channel; `None` once the host let go (then nothing is reported).
    channel: Option<OwnedFd>,
}

/// What the helper knows once the jail is built.
pub(super) struct Helper {
    pub(super) control: OwnedFd,
    /// The jail's own `/dev` and `/proc`: Landlock rules for what only the
    /// jail has are added to each ruleset the host sends.
    pub(super) dev: OwnedFd,
    pub(super) proc: Option<OwnedFd>,
    /// Where commands start when the guest names no directory.
    pub(super) default_cwd: Option<CString>,
    /// Whom commands run as, when the helper itself runs as the jail's
    /// root (`--run-as`).
    pub(super) identity: Option<(u32, u32)>,
    /// The signals the helper does not leave at their default action
    /// (its handlers never change once it serves): the only ones a command
    /// needs put back.
    pub(super) signals: Dispositions,
}

impl Helper {
    /// Serves until the control socket closes, then ends the process.
    pub(super) fn serve(self) -> ! {
        if self.identity.is_none() {
            // Commands run as the helper's own uid. Emptying the bounding
            // set once here spares each command walking it again (the
            // helper keeps its current capabilities: it sends commands'
            // pids as credentials). Should it fail, each command still
            // empties its own.
            // SAFETY: changes this process's credentials only.
            let _ = unsafe { crate::confine::caps::lock_down_inheritance() };
        }
        let signals = match child_signals() {
            Ok(fd) => fd,
            // SAFETY: ends this helper process.
            Err(_) => unsafe { libc::_exit(70) },
        };
        let mut commands: Vec<Command> = Vec::new();
        loop {
            let mut fds = vec![
                poll_fd(self.control.as_raw_fd()),
                poll_fd(signals.as_raw_fd()),
            ];
            let watched: Vec<usize> = (0..commands.len())
                .filter(|&i| commands[i].channel.is_some())
                .collect();
            for &i in &watched {
                if let Some(channel) = &commands[i].channel {
                    fds.push(poll_fd(channel.as_raw_fd()));
                }
            }
            // SAFETY: a valid array of pollfds.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if ready < 0 {
                continue;
            }
            // Channels first: `watched` indexes `commands` as polled.
            for (slot, &i) in watched.iter().enumerate() {
                if fds[2 + slot].revents != 0 {
                    self.on_channel(&mut commands[i]);
                }
            }
            if fds[1].revents != 0 {
                drain(&signals);
                reap(&mut commands);
            }
            if fds[0].revents & libc::POLLIN != 0 {
                match self.accept(&mut commands) {
                    Ok(true) => {}
                    // SAFETY: every process of the job let go: end the jail.
                    Ok(false) | Err(_) => unsafe { libc::_exit(0) },
                }
            } else if fds[0].revents != 0 {
                // SAFETY: as above.
                unsafe { libc::_exit(0) }
            }
        }
    }

    /// Takes one request from the control socket; `false` at its end.
    fn accept(&self, commands: &mut Vec<Command>) -> io::Result<bool> {
        let mut tag = [0u8; 4];
        let (n, mut fds) =
            wire::receive_with_fds(self.control.as_fd(), &mut tag, RecvFlags::empty())?;
        if n == 0 {
            return Ok(false);
        }
        if &tag != wire::SPAWN || fds.len() < 4 {
            return Ok(true);
        }
        let ruleset = (fds.len() > 4).then(|| fds.remove(4));
        let mut fds = fds.into_iter();
        let (channel, stdio) = match (fds.next(), fds.next(), fds.next(), fds.next()) {
            (Some(c), Some(i), Some(o), Some(e)) => (c, [i, o, e]),
            _ => return Ok(true),
        };
        match self.spawn(&channel, &stdio, ruleset) {
            Ok((pid, pidfd)) => {
                if Record::send_started(channel.as_fd(), pid, pidfd.as_fd()).is_ok() {
                    commands.push(Command {
                        pid,
                        channel: Some(channel),
                    });
                } else {
                    kill_group(pid);
                    commands.push(Command { pid, channel: None });
                }
            }
            Err(err) => {
                let errno = err.raw_os_error().unwrap_or(libc::EIO);
                let _ = Record::Refused(errno).send(channel.as_fd(), None);
            }
        }
        Ok(true)
    }

    fn spawn(
        &self,
        channel: &OwnedFd,
        stdio: &[OwnedFd; 3],
        ruleset: Option<OwnedFd>,
    ) -> io::Result<(i32, OwnedFd)> {
        rustix::net::sockopt::set_socket_timeout(
            channel,
            rustix::net::sockopt::Timeout::Recv,
            Some(REQUEST_TIMEOUT),
        )?;
        let request = Request::receive(&mut Stream::new(channel))?;
        // What only exists inside the jail: its /proc may be read, its /dev
        // listed.
        let ruleset = match ruleset {
            Some(fd) => {
                let mut rules = Ruleset::from_fd(fd);
                rules.allow_fd(self.dev.as_fd(), Access::List)?;
                if let Some(proc) = &self.proc {
                    rules.allow_fd(proc.as_fd(), Access::Read)?;
                }
                Some(rules.into_fd())
            }
            None => None,
        };
        let limit = |v: u64| (v != u64::MAX).then_some(v);
        let [cpu, address_space, open_files, processes, file_size] = request.limits;
        let limits = CommandLimits {
            cpu_seconds: limit(cpu),
            address_space: limit(address_space),
            open_files: limit(open_files),
            processes: limit(processes),
            file_size: limit(file_size),
        };
        // The seccomp filter is the helper's own, inherited.
        let confinement = Arc::new(Confinement::from_parts(ruleset, limits, None));
        let cwd_fd = if request.cwd.is_empty() {
            None
        } else {
            Some(open_beneath(&request.cwd)?)
        };
        let cwd = match (&cwd_fd, &self.default_cwd) {
            (Some(fd), _) => Cwd::Fd(fd.as_raw_fd()),
            (None, Some(dir)) => Cwd::Path(dir.clone()),
            (None, None) => Cwd::Inherit,
        };
        let path = Path::new(std::ffi::OsStr::from_bytes(&request.path));
        let stdio: [RawFd; 3] = [
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ];
        let mut launch = Launch::new(path, &request.argv, &request.env, cwd, stdio, confinement)?
            .with_signals(self.signals);
        if let Some((uid, gid)) = self.identity {
            launch = launch.with_identity(uid, gid);
        }
        let pid = launch.spawn()?;
        // SAFETY: pidfd_open of our own, not yet reaped child.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            let err = io::Error::last_os_error();
            kill_group(pid);
            return Err(err);
        }
        // SAFETY: a fresh descriptor we own.
        Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) }))
    }

    /// A record (or the end) from the host on a command's channel.
    fn on_channel(&self, command: &mut Command) {
        let channel = match &command.channel {
            Some(channel) => channel,
            None => return,
        };
        match Record::receive(channel.as_fd(), RecvFlags::DONTWAIT) {
            Ok(Some((Record::Kill, _))) => kill_group(command.pid),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The host let go (or said nonsense): the command goes.
            _ => {
                kill_group(command.pid);
                command.channel = None;
            }
        }
    }
}

/// Opens a working directory sent as `MOUNT\0PATH`: the grant's mount
/// (no link on the way), then the path beneath it without leaving it (as
/// the host checked it), so nothing swapped in since can lead elsewhere.
fn open_beneath(cwd: &[u8]) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let split = cwd
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let (mount, rest) = (&cwd[..split], &cwd[split + 1..]);
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mount = rustix::fs::openat2(
        rustix::fs::CWD,
        std::ffi::OsStr::from_bytes(mount),
        flags,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    let rest = if rest.is_empty() { b"." as &[u8] } else { rest };
    Ok(rustix::fs::openat2(
        &mount,
        std::ffi::OsStr::from_bytes(rest),
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Kills a command and everything in its process group.
fn kill_group(pid: i32) {
    // SAFETY: signals to a child we have not reaped (and its group).
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Reaps every child that ended: commands are reported, orphans that the
/// namespace handed to its init are simply reaped.
fn reap(commands: &mut Vec<Command>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if let Some(i) = commands.iter().position(|c| c.pid == pid) {
            let command = commands.swap_remove(i);
            if let Some(channel) = command.channel {
                let _ = Record::Exited(status).send(channel.as_fd(), None);
            }
        }
    }
}

fn poll_fd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// A signalfd for SIGCHLD (blocked, so it is only seen there).
fn child_signals() -> io::Result<OwnedFd> {
    // SAFETY: signal-mask calls with a valid set; signalfd returns a new fd.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn drain(signals: &OwnedFd) {
    let mut buf = [0u8; 128 * 8];
    while matches!(rustix::io::read(signals, &mut buf), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_working_directory_never_leaves_its_grant() {
        // A link planted after the host checked the path: the helper opens
        // beneath the grant's mount and refuses to leave it.
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("grant");
        std::fs::create_dir_all(mount.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", mount.join("out")).unwrap();
        std::os::unix::fs::symlink("sub", mount.join("in")).unwrap();
        let cwd = |rest: &str| {
            let mut bytes = mount.as_os_str().as_bytes().to_vec();
            bytes.push(0);
            bytes.extend_from_slice(rest.as_bytes());
            open_beneath(&bytes)
        };
        let where_is =
            |fd: OwnedFd| std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(where_is(cwd("sub").unwrap()), mount.join("sub"));
        assert_eq!(where_is(cwd("in").unwrap()), mount.join("sub"));
        assert_eq!(where_is(cwd("").unwrap()), mount);
        for escape in ["out", "..", "sub/../..", "/etc"] {
            assert!(cwd(escape).is_err(), "{escape}");
        }
        assert!(open_beneath(b"no nul").is_err());
    }
}
