//! The jail: one set of namespaces per job, in which every command the
//! job's guests start runs.
//!
//! ```text
//!  procbridge (root guest) ──fork──▶ monitor ──fork──▶ helper = pid 1 of the jail
//!       │  control socket (SEQPACKET, shared by the whole tree)  │
//!       └──────────────── spawn requests ───────────────────────▶│──▶ commands
//! ```
//!
//! [`Jail::start`] forks a *monitor*, which makes a user namespace (the
//! host writes its id maps: the commands' uid and gid are 1000 inside, the
//! host's own outside, so nothing inside is root), then mount, PID, IPC,
//! UTS and (without `--network`) network namespaces, and forks the
//! *helper*: pid 1 of the new PID namespace. The helper builds the jail's
//! file system ([`setup`]) and serves spawn requests ([`helper`]).
//!
//! The jail ends with the job: when the root guest's state is dropped, the
//! helper is killed; when the root process dies in any way (`SIGKILL`, the
//! wall-clock limit, a crash), the monitor, which watches it through a
//! pidfd, kills the helper. When a PID namespace's init dies the kernel
//! kills every process in it, whatever it did to escape its parent
//! (`setsid`, clearing its parent-death signal, double forks). No command
//! can kill or trace the helper: it is init (signals from inside are
//! ignored), it keeps capabilities the commands do not have, and seccomp
//! refuses `ptrace`.
//!
//! Starting a command costs one message to the helper and one back: the
//! namespaces are made once per job. The monitor and the helper are named
//! `procbridge-jail` and `procbridge-init` (in `ps`, `/proc/PID/comm`).

mod cgroup;
mod helper;
pub(crate) mod setup;
mod wire;

use crate::confine::Confinement;
use crate::policy::{DirGrant, Policy};
use cgroup::PidsCgroup;
use rustix::net::RecvFlags;
use std::ffi::CString;
use std::io::{self, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
pub(crate) use wire::Record;
use wire::Request;

/// The uid and gid of commands inside the jail.
pub const JAIL_ID: u32 = 1000;
/// How long building the jail may take.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why there is no jail.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// This machine cannot make the namespaces (no unprivileged user
    /// namespaces, say): commands can only run confined by what remains.
    #[error("this machine cannot make the jail's namespaces: {0}")]
    Unavailable(io::Error),
    /// The jail could be made but not built as the policy says (a grant
    /// that changed since start-up, a guest path it cannot be mounted at):
    /// the job must not start.
    #[error("the jail cannot be built: {0}")]
    Build(io::Error),
}

/// Where commands never see a grant: the jail's own directories.
const RESERVED: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/dev", "/proc",
];

/// A granted directory's place in the jail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GrantMount {
    /// Its absolute path on the host when it was opened.
    pub(crate) host: PathBuf,
    /// Where commands see it.
    pub(crate) at: PathBuf,
    pub(crate) writable: bool,
    /// Device and inode of the directory opened at start-up.
    pub(crate) identity: (u64, u64),
}

/// A running jail. Dropped by the process that started it, it kills
/// everything in it; copies in forked children do nothing when dropped.
#[derive(Debug)]
pub struct Jail {
    control: OwnedFd,
    /// The monitor (outside the namespaces), our child.
    monitor: libc::pid_t,
    /// The helper's pid as this process sees it.
    helper: libc::pid_t,
    owner: u32,
    cgroup: Option<PidsCgroup>,
    /// Without a pids cgroup: `RLIMIT_NPROC` for commands, which the kernel
    /// counts per user inside the jail's user namespace (the helper
    /// included), except for root's uid outside.
    nproc: Option<u64>,
    /// Grants by guest path, and where commands see them.
    mounts: Vec<(PathBuf, PathBuf)>,
    warnings: Vec<String>,
}

/// A command started in the jail.
#[derive(Debug)]
pub(crate) struct Started {
    /// Its pid as the host sees it.
    pub(crate) pid: i32,
    /// A pidfd for it (to signal it, and to see it end).
    pub(crate) pidfd: OwnedFd,
    /// Its channel to the helper: the exit status arrives there; `Kill` or
    /// closing it kills the command's process group.
    pub(crate) channel: OwnedFd,
}

impl Jail {
    /// Builds the jail for the commands `policy` grants.
    ///
    /// # Errors
    /// [`JailError::Unavailable`] when this machine cannot make the
    /// namespaces; [`JailError::Build`] when the jail's file system cannot
    /// be built as the policy says (a grant changed since it was opened, a
    /// guest path inside the jail's system directories or inside another
    /// grant that lacks a directory to mount on).
    pub fn start(policy: &Policy) -> Result<Jail, JailError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let grants: Vec<GrantMount> = policy
            .dirs()
            .iter()
            .map(|grant| GrantMount {
                host: grant.host.clone(),
                at: mount_point(&grant.guest, &grant.host, &cwd),
                writable: grant.perms == crate::DirPerms::ReadWrite,
                identity: grant.identity,
            })
            .collect();
        let mounts = policy
            .dirs()
            .iter()
            .zip(&grants)
            .map(|(grant, mount)| (PathBuf::from(&grant.guest), mount.at.clone()))
            .collect();
        for grant in &grants {
            if let Some(reserved) = RESERVED
                .iter()
                .find(|r| grant.at == Path::new("/") || grant.at.starts_with(r))
            {
                return Err(JailError::Build(io::Error::other(format!(
                    "directory {}: commands would see it at {}, inside the jail's own {reserved}; \
                     give it another guest path",
                    grant.host.display(),
                    grant.at.display()
                ))));
            }
        }
        let plan = setup::Plan {
            grants,
            executables: policy.executables().map_err(JailError::Build)?,
            run_as: policy.run_as(),
        };
        // The monitor and the helper count too.
        let cgroup = PidsCgroup::create(policy.limits().max_processes as u64 + 2);
        let mut jail = launch(&plan, policy.network(), &cwd, cgroup.as_ref().ok())?;
        jail.mounts = mounts;
        match cgroup {
            Ok(cgroup) => jail.cgroup = Some(cgroup),
            Err(err) => {
                jail.nproc = Some(policy.limits().max_processes as u64 + 1);
                // SAFETY: a plain id query.
                let kernel_counts = policy.run_as().is_some() || unsafe { libc::geteuid() } != 0;
                jail.warnings.push(if kernel_counts {
                    format!(
                        "no pids cgroup ({err}): commands' own forks are limited by \
                         RLIMIT_NPROC inside the jail instead"
                    )
                } else {
                    format!(
                        "no pids cgroup ({err}): the process limit counts the processes \
                         procbridge starts, not those commands fork themselves (use --run-as)"
                    )
                });
            }
        }
        tracing::info!(
            "commands run in the job's jail: user, PID, mount, IPC, UTS{} namespaces; {}",
            if policy.network() {
                " (not network: --network)"
            } else {
                " and network"
            },
            if jail.cgroup.is_some() {
                "a pids cgroup counts their processes"
            } else {
                "no pids cgroup"
            }
        );
        tracing::debug!(
            "jail started: monitor pid {}, init pid {}",
            jail.monitor,
            jail.helper
        );
        Ok(jail)
    }

    /// What the jail could not set up (it still runs).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Where commands see the granted directory `grant`.
    pub(crate) fn path_of(&self, grant: &DirGrant) -> Option<&Path> {
        let guest = Path::new(&grant.guest);
        self.mounts
            .iter()
            .find(|(g, _)| g == guest)
            .map(|(_, at)| at.as_path())
    }

    /// Starts a command in the jail: `path` (an absolute path, the same
    /// inside), with exactly `argv` and `env` (`KEY=VALUE`), in `cwd` (a
    /// grant's mount in the jail and a path beneath it, which the helper
    /// opens without leaving the mount; `None`: the host's working
    /// directory where it is granted, else `/`), with `stdio` as its
    /// descriptors 0, 1 and 2.
    ///
    /// # Errors
    /// The errno of the step that failed (`ENOENT`, `EACCES`, ...), or `EIO`
    /// when the jail is gone.
    pub(crate) fn spawn(
        &self,
        path: &Path,
        argv: &[String],
        env: &[String],
        cwd: Option<(&Path, &str)>,
        stdio: [BorrowedFd<'_>; 3],
        confinement: &Confinement,
    ) -> io::Result<Started> {
        let (ours, theirs) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )?;
        // The command's pid arrives as credentials, in our PID namespace.
        rustix::net::sockopt::set_socket_passcred(&ours, true)?;
        let limits = confinement.limits();
        let max = |v: Option<u64>| v.unwrap_or(u64::MAX);
        let request = Request {
            path: path.as_os_str().as_bytes().to_vec(),
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            env: env.iter().map(|e| e.as_bytes().to_vec()).collect(),
            cwd: cwd
                .map(|(mount, rest)| {
                    let mut bytes = mount.as_os_str().as_bytes().to_vec();
                    bytes.push(0);
                    bytes.extend_from_slice(rest.as_bytes());
                    bytes
                })
                .unwrap_or_default(),
            limits: [
                max(limits.cpu_seconds),
                max(limits.address_space),
                max(limits.open_files),
                max(if self.cgroup.is_some() {
                    None
                } else {
                    limits.processes
                }),
                max(limits.file_size),
            ],
        }
        .to_bytes();
        // The request waits in the channel before the helper hears of it,
        // so that it reads the whole request at once (what does not fit
        // now follows once the helper reads).
        let sent = wire::send_now(ours.as_fd(), &request).map_err(gone)?;
        let mut fds = vec![theirs.as_fd(), stdio[0], stdio[1], stdio[2]];
        if let Some(ruleset) = confinement.ruleset() {
            fds.push(ruleset.as_fd());
        }
        wire::send_with_fds(self.control.as_fd(), wire::SPAWN, &fds).map_err(gone)?;
        drop(theirs);
        wire::Stream::new(&ours)
            .write_all(&request[sent..])
            .map_err(gone)?;
        match Record::receive(ours.as_fd(), RecvFlags::empty()).map_err(gone)? {
            Some((Record::Started(pid), Some(pidfd))) => Ok(Started {
                pid,
                pidfd,
                channel: ours,
            }),
            Some((Record::Refused(errno), _)) => Err(io::Error::from_raw_os_error(errno)),
            _ => Err(gone(io::Error::from(io::ErrorKind::UnexpectedEof))),
        }
    }

    /// Kills everything in the jail and waits for it to be gone.
    fn shut_down(&mut self) {
        // SAFETY: signals to our own child processes (never to pid 0 or
        // -1), then reaping the monitor (our child).
        unsafe {
            if self.helper > 0 {
                libc::kill(self.helper, libc::SIGKILL);
            } else {
                libc::kill(self.monitor, libc::SIGKILL);
            }
            let mut status = 0;
            while libc::waitpid(self.monitor, &mut status, 0) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
        }
        self.cgroup = None;
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        if std::process::id() == self.owner {
            self.shut_down();
        } else if let Some(cgroup) = self.cgroup.take() {
            // A copy in a forked child: the group is the owner's to remove.
            std::mem::forget(cgroup);
        }
    }
}

/// Whether this machine gives procbridge a pids cgroup for jails.
///
/// # Errors
/// Why not.
pub(crate) fn probe_cgroup() -> io::Result<()> {
    PidsCgroup::create(1).map(drop)
}

fn gone(err: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("the jail's helper is gone ({err})"),
    )
}

/// Where commands see a granted directory: where the guest sees it, with a
/// relative guest path taken from the host's working directory (as the
/// guest's relative paths are); a grant the guest sees as `/` stays at its
/// host path.
fn mount_point(guest: &str, host: &Path, cwd: &Path) -> PathBuf {
    let guest = Path::new(guest);
    let joined = if guest.is_absolute() {
        guest.to_path_buf()
    } else {
        cwd.join(guest)
    };
    let mut normal = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::ParentDir => {
                normal.pop();
            }
            _ => {}
        }
    }
    if normal == Path::new("/") {
        host.to_path_buf()
    } else {
        normal
    }
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((r, w))
}

/// Why the monitor did not answer. A slow machine is no proof that it
/// cannot make namespaces: a timeout refuses to run commands rather than
/// running them without the jail.
fn not_started(err: io::Error) -> JailError {
    if err.kind() == io::ErrorKind::TimedOut {
        JailError::Build(err)
    } else {
        JailError::Unavailable(err)
    }
}

/// Reads exactly `buf.len()` bytes from `fd`, within [`START_TIMEOUT`].
fn read_within(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<()> {
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || !readable(fd.as_fd(), left) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the jail did not start in time",
            ));
        }
        match rustix::io::read(fd, &mut buf[filled..]) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether `fd` becomes readable within `timeout`. A signal (an
/// embedder's handler) does not end the wait early.
fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Round up so a short wait still waits.
        let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            n if n > 0 => return true,
            0 => return false,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
}

/// Forks the monitor, which makes the namespaces and forks the helper;
/// returns once the helper is ready to serve.
fn launch(
    plan: &setup::Plan,
    network: bool,
    cwd: &Path,
    cgroup: Option<&PidsCgroup>,
) -> Result<Jail, JailError> {
    let unavailable = JailError::Unavailable;
    let (host_end, jail_end) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| unavailable(e.into()))?;
    let (from_monitor, to_root) = pipe().map_err(unavailable)?;
    let (from_root, to_monitor) = pipe().map_err(unavailable)?;
    // SAFETY: pidfd_open of this very process.
    let root = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if root < 0 {
        return Err(unavailable(io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we own.
    let root = unsafe { OwnedFd::from_raw_fd(root as RawFd) };
    crate::process::flush_host_stdio();
    // SAFETY: the child is single-threaded and only runs `monitor`, which
    // never returns.
    let monitor_pid = unsafe { libc::fork() };
    if monitor_pid < 0 {
        return Err(unavailable(io::Error::last_os_error()));
    }
    if monitor_pid == 0 {
        drop((host_end, from_monitor, to_monitor));
        set_name(c"procbridge-jail");
        monitor(plan, network, cwd, root, jail_end, to_root, from_root);
    }
    drop((jail_end, to_root, from_root, root));
    let mut jail = Jail {
        control: host_end,
        monitor: monitor_pid,
        helper: 0,
        owner: std::process::id(),
        cgroup: None,
        nproc: None,
        mounts: Vec::new(),
        warnings: Vec::new(),
    };
    let fail = |jail: &mut Jail, err: JailError| -> JailError {
        // SAFETY: our own child.
        unsafe { libc::kill(jail.monitor, libc::SIGKILL) };
        jail.shut_down();
        err
    };
    let context = |what: &str, err: io::Error| io::Error::new(err.kind(), format!("{what}: {err}"));
    // 1. The monitor made its user namespace: write its id maps.
    let mut byte = [0u8; 4];
    if let Err(err) = read_within(&from_monitor, &mut byte[..1]) {
        return Err(fail(&mut jail, not_started(err)));
    }
    if byte[0] != b'U' {
        let mut errno = [0u8; 4];
        let _ = read_within(&from_monitor, &mut errno);
        let err = io::Error::from_raw_os_error(i32::from_le_bytes(errno));
        return Err(fail(&mut jail, unavailable(context("user namespace", err))));
    }
    if let Err(err) = write_id_maps(monitor_pid, plan.run_as) {
        return Err(fail(&mut jail, unavailable(context("id maps", err))));
    }
    if let Some(cgroup) = cgroup {
        if let Err(err) = cgroup.add(monitor_pid as u32) {
            return Err(fail(&mut jail, unavailable(context("pids cgroup", err))));
        }
    }
    // 2. Let it go on; it answers with the helper's pid.
    if let Err(err) = rustix::io::write(&to_monitor, b"G") {
        return Err(fail(&mut jail, unavailable(err.into())));
    }
    if let Err(err) = read_within(&from_monitor, &mut byte) {
        return Err(fail(&mut jail, not_started(err)));
    }
    match i32::from_le_bytes(byte) {
        pid if pid > 0 => jail.helper = pid,
        errno => {
            let err = io::Error::from_raw_os_error(-errno);
            return Err(fail(&mut jail, unavailable(context("namespaces", err))));
        }
    }
    // 3. The helper built the jail (or says why not): from here on, a
    // failure is the jail's, never a reason to run commands without it.
    let build = JailError::Build;
    let mut answer = [0u8; 4096];
    if !readable(jail.control.as_fd(), START_TIMEOUT) {
        return Err(fail(
            &mut jail,
            build(io::Error::new(
                io::ErrorKind::TimedOut,
                "the jail did not start in time",
            )),
        ));
    }
    let n = match wire::receive_with_fds(jail.control.as_fd(), &mut answer, RecvFlags::empty()) {
        Ok((n, _)) => n,
        Err(err) => return Err(fail(&mut jail, build(err))),
    };
    let answer = &answer[..n];
    if answer.starts_with(wire::READY) {
        let text = String::from_utf8_lossy(&answer[4..]);
        jail.warnings = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        Ok(jail)
    } else {
        let why = String::from_utf8_lossy(answer.get(4..).unwrap_or_default()).into_owned();
        Err(fail(&mut jail, build(io::Error::other(why))))
    }
}

/// The host side of the user namespace: commands are uid and gid
/// [`JAIL_ID`] inside, which is this process's own uid and gid outside, or
/// with `run_as` (procbridge running as root) that uid and gid, while the
/// helper is the jail's root (root outside too).
fn write_id_maps(pid: libc::pid_t, run_as: Option<(u32, u32)>) -> io::Result<()> {
    let write = |file: &str, text: String| std::fs::write(format!("/proc/{pid}/{file}"), text);
    match run_as {
        None => {
            // SAFETY: plain id queries.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            write("setgroups", "deny".into())?;
            write("uid_map", format!("{JAIL_ID} {uid} 1"))?;
            write("gid_map", format!("{JAIL_ID} {gid} 1"))
        }
        Some((uid, gid)) => {
            write("uid_map", format!("0 0 1\n{JAIL_ID} {uid} 1"))?;
            write("gid_map", format!("0 0 1\n{JAIL_ID} {gid} 1"))
        }
    }
}

/// The monitor: makes the namespaces, forks the helper, then waits for
/// either the helper or the root to end (killing the helper if the root
/// went first). Never returns.
fn monitor(
    plan: &setup::Plan,
    network: bool,
    cwd: &Path,
    root: OwnedFd,
    control: OwnedFd,
    to_root: OwnedFd,
    from_root: OwnedFd,
) -> ! {
    let report_errno = |errno: i32| {
        let _ = rustix::io::write(&to_root, b"E");
        let _ = rustix::io::write(&to_root, &errno.to_le_bytes());
        // SAFETY: ends the monitor.
        unsafe { libc::_exit(1) }
    };
    // SAFETY: unshare with flags only.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        report_errno(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EPERM),
        );
    }
    let _ = rustix::io::write(&to_root, b"U");
    let mut go = [0u8; 1];
    if !matches!(rustix::io::read(&from_root, &mut go), Ok(1)) || go[0] != b'G' {
        // SAFETY: ends the monitor.
        unsafe { libc::_exit(1) }
    }
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if !network {
        flags |= libc::CLONE_NEWNET;
    }
    let errno = || {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EPERM))
    };
    // SAFETY: unshare with flags only; then the child runs `helper_main`,
    // which never returns.
    let helper = unsafe {
        if libc::unshare(flags) != 0 {
            errno()
        } else {
            match libc::fork() {
                0 => {
                    drop((root, to_root, from_root));
                    set_name(c"procbridge-init");
                    helper_main(plan, network, cwd, control);
                }
                pid if pid < 0 => errno(),
                pid => pid,
            }
        }
    };
    // The helper's pid, or minus the errno of what failed.
    let _ = rustix::io::write(&to_root, &helper.to_le_bytes());
    drop((control, to_root, from_root));
    if helper < 0 {
        // SAFETY: ends the monitor.
        unsafe { libc::_exit(1) }
    }
    // From here on the monitor only waits and kills its own child.
    let _ = crate::confine::drop_privileges();
    // SAFETY: pidfd_open of our own child.
    let helper_fd = unsafe { libc::syscall(libc::SYS_pidfd_open, helper, 0) } as RawFd;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: root.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: helper_fd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if fds[0].revents != 0 {
            // The root is gone: so is the job.
            // SAFETY: our own child.
            unsafe { libc::kill(helper, libc::SIGKILL) };
        }
        let mut status = 0;
        // SAFETY: reaping our own child without blocking.
        if unsafe { libc::waitpid(helper, &mut status, libc::WNOHANG) } == helper {
            // SAFETY: ends the monitor.
            unsafe { libc::_exit(0) }
        }
    }
}

/// The helper, pid 1 of the new PID namespace: builds the jail and serves.
fn helper_main(plan: &setup::Plan, network: bool, cwd: &Path, control: OwnedFd) -> ! {
    // SAFETY: prctl with integer arguments; dies with the monitor.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // No command may read this process's memory through /proc.
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    close_all_but(control.as_raw_fd());
    let fail = |what: String| -> ! {
        let mut msg = wire::FAILED.to_vec();
        msg.extend_from_slice(what.as_bytes());
        let _ = wire::send_with_fds(control.as_fd(), &msg, &[]);
        // SAFETY: ends the helper.
        unsafe { libc::_exit(1) }
    };
    let mut warnings = match setup::build_root(plan) {
        Ok(warnings) => warnings,
        Err(err) => fail(err.to_string()),
    };
    if !network {
        if let Err(err) = setup::loopback_up() {
            warnings.push(format!("the jail's loopback interface is down ({err})"));
        }
    }
    // Nothing the helper starts may ever gain a capability it keeps.
    if let Err(err) = crate::confine::drop_bounding_set() {
        fail(format!("capability bounding set: {err}"));
    }
    // The helper takes the commands' seccomp filter itself, once: every
    // command inherits it through fork and exec, at no cost per command.
    // (Nothing the helper still does is in the filter.)
    match crate::confine::command_filter() {
        Some(filter) => {
            if let Err(err) = filter.apply() {
                fail(format!("seccomp: {err}"));
            }
        }
        None => warnings.push("seccomp is not available: commands may create namespaces, use ptrace and type into terminals".into()),
    }
    let dev = match rustix::fs::open(
        "/dev",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(root) => root,
        Err(err) => fail(format!("opening the jail's /dev: {err}")),
    };
    let proc = rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok();
    let default_cwd = cwd
        .is_dir()
        .then(|| CString::new(cwd.as_os_str().as_bytes()).ok())
        .flatten();
    let mut ready = wire::READY.to_vec();
    ready.extend_from_slice(warnings.join("\n").as_bytes());
    if wire::send_with_fds(control.as_fd(), &ready, &[]).is_err() {
        // SAFETY: ends the helper.
        unsafe { libc::_exit(1) }
    }
    helper::Helper {
        control,
        dev,
        proc,
        default_cwd,
        identity: plan.run_as.map(|_| (JAIL_ID, JAIL_ID)),
        signals: crate::subprocess::launch::Dispositions::changed_now(),
    }
    .serve()
}

/// Names this process (what `ps` and `/proc/PID/comm` show), so operators
/// and tests can tell the jail's processes from the guest's.
fn set_name(name: &std::ffi::CStr) {
    // SAFETY: PR_SET_NAME with a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
}

/// Closes every descriptor but `keep` (and the standard streams).
fn close_all_but(keep: RawFd) {
    // SAFETY: close_range on ranges of descriptor numbers.
    unsafe {
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_mounted_where_the_guest_sees_them() {
        let host = Path::new("/srv/data");
        let cwd = Path::new("/home/job");
        for (guest, at) in [
            ("/work", "/work"),
            ("/work/", "/work"),
            ("/a/./b/../c", "/a/c"),
            ("data", "/home/job/data"),
            ("./data", "/home/job/data"),
            (".", "/home/job"),
            ("../../..", "/srv/data"),
            ("/", "/srv/data"),
        ] {
            assert_eq!(mount_point(guest, host, cwd), Path::new(at), "{guest}");
        }
    }
}
