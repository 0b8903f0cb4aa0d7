//! Starting a granted command, confined: resolved path, no shell, only the
//! environment given, a working directory inside a granted directory, no
//! inherited descriptors but its stdio, its own process group, and death
//! with its parent.

use super::io;
use super::launch::{Cwd, Launch};
use super::wait::Child;
use super::Popen;
use crate::audit;
use crate::confine::jail::Jail;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::policy::Policy;
use crate::supervisor;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

/// Where one of the child's standard streams goes.
#[derive(Debug)]
pub(crate) enum StdioSpec {
    /// The host process's own stream.
    Inherit,
    /// A new pipe; the parent end is kept in the [`Popen`].
    Pipe,
    /// `/dev/null`.
    Null,
    /// stderr only: wherever stdout goes.
    Stdout,
    /// A descriptor moved in from elsewhere (another child's pipe).
    Fd(OwnedFd),
}

/// Everything `popen` needs, decoded and checked for form (not yet for
/// permission).
#[derive(Debug)]
pub(crate) struct SpawnRequest {
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// The working directory as the guest names it.
    pub(crate) cwd: Option<String>,
    pub(crate) stdin: StdioSpec,
    pub(crate) stdout: StdioSpec,
    pub(crate) stderr: StdioSpec,
}

/// Reports a refusal for the operator (one line on stderr) and in the audit
/// log, and returns it.
pub(crate) fn deny(err: BridgeError) -> BridgeError {
    if err.errno == Errno::Perm {
        audit::Event::new(audit::Kind::Denied)
            .outcome(err.message.clone())
            .record();
    }
    err
}

/// Spawns the command of `req` if `policy` grants it, confined to what the
/// policy grants (see [`crate::confine`]): in `jail` where the job has one,
/// else directly.
///
/// # Errors
/// `EPERM` (and one line on stderr) for a command not granted, arguments
/// the grant refuses, a pinned binary that changed, an environment variable
/// not granted to the command or a working directory outside the granted
/// directories; `EINVAL` for malformed requests; `ENOENT`/`EIO` when the OS
/// cannot start it.
pub(crate) fn spawn(
    policy: &Policy,
    jail: Option<&Jail>,
    req: SpawnRequest,
) -> BridgeResult<Popen> {
    let program = req
        .argv
        .first()
        .ok_or_else(|| BridgeError::invalid("argv is empty"))?;
    let granted = policy.check_command(&req.argv).map_err(deny)?;
    for arg in &req.argv {
        no_nul("argument", arg)?;
    }
    for (key, value) in &req.env {
        no_nul("environment variable", key)?;
        no_nul("environment variable", value)?;
    }
    policy.check_env(granted, &req.env).map_err(deny)?;
    let cwd = match &req.cwd {
        Some(cwd) => Some(policy.open_dir(cwd).map_err(deny)?),
        None => None,
    };
    let confinement = policy
        .confinement()
        .map_err(|e| BridgeError::io("preparing the command's confinement", e))?;

    let inherits = matches!(req.stdout, StdioSpec::Inherit)
        || matches!(req.stderr, StdioSpec::Inherit | StdioSpec::Stdout);
    let (stdin_child, stdin_parent) = child_end(req.stdin, true)?;
    let (stdout_child, stdout_parent) = child_end(req.stdout, false)?;
    let (stderr_child, stderr_parent) = match req.stderr {
        StdioSpec::Stdout => (stdout_child.duplicate()?, None),
        other => child_end(other, false)?,
    };
    let env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if inherits {
        // What the host wrote before must come before what the child writes.
        let _ = std::io::stdout().flush();
    }
    let claim = supervisor::claim(policy.limits().max_processes)?;
    let child = match jail {
        Some(jail) => {
            // Inside the jail the directory is found again beneath its
            // grant's mount (it was checked above not to leave the grant).
            let cwd = cwd
                .as_ref()
                .and_then(|(_, grant, rest)| Some((jail.path_of(grant)?, rest.as_str())));
            let stdio =
                [0, 1, 2].map(|i| [&stdin_child, &stdout_child, &stderr_child][i].borrowed(i));
            let started = jail
                .spawn(
                    &granted.exec_path,
                    &req.argv,
                    &env,
                    cwd,
                    stdio,
                    &confinement,
                )
                .map_err(|err| spawn_error(program, &granted.path, err))?;
            let slot = claim.commit(started.pid as u32);
            Child::jailed(started, slot)
        }
        None => {
            let launch = Launch::new(
                &granted.path,
                &req.argv,
                &env,
                cwd.as_ref()
                    .map_or(Cwd::Inherit, |(dir, _, _)| Cwd::Fd(dir.as_raw_fd())),
                [stdin_child.raw(), stdout_child.raw(), stderr_child.raw()],
                confinement,
            )
            .map_err(|err| spawn_error(program, &granted.path, err))?;
            let pid = launch
                .spawn()
                .map_err(|err| spawn_error(program, &granted.path, err))?;
            Child::new(pid, claim.commit(pid as u32))
        }
    };
    // The child has its copies; ours close here.
    drop((stdin_child, stdout_child, stderr_child));
    tracing::debug!(
        "command {} started: pid {}{} (by pid {}), argv {:?}",
        granted.path.display(),
        child.pid(),
        if jail.is_some() { " in the jail" } else { "" },
        std::process::id(),
        req.argv
    );
    if let Some(event) = audit::logged(audit::Kind::Spawn) {
        event
            .command(granted.path.display().to_string())
            .argv(&req.argv)
            .env_keys(req.env.iter().map(|(k, _)| k.as_str()))
            .child(child.pid() as u32)
            .record();
    }
    Ok(Popen::new(
        child,
        req.argv,
        stdin_parent,
        stdout_parent,
        stderr_parent,
    ))
}

/// The child's side of one stream.
enum ChildEnd {
    Inherit,
    Fd(OwnedFd),
}

impl ChildEnd {
    /// A second reference to the same place (for stderr = stdout).
    fn duplicate(&self) -> BridgeResult<ChildEnd> {
        let clone = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map(ChildEnd::Fd)
                .map_err(|e| BridgeError::io("dup", e))
        };
        match self {
            ChildEnd::Inherit => clone(std::io::stdout().as_fd()),
            ChildEnd::Fd(fd) => clone(fd.as_fd()),
        }
    }

    /// The descriptor to install, `-1` to keep the host's.
    fn raw(&self) -> RawFd {
        match self {
            ChildEnd::Inherit => -1,
            ChildEnd::Fd(fd) => fd.as_raw_fd(),
        }
    }

    /// The descriptor to hand over as standard stream `n` (the host's own
    /// for `Inherit`).
    fn borrowed(&self, n: usize) -> BorrowedFd<'_> {
        match self {
            ChildEnd::Fd(fd) => fd.as_fd(),
            // SAFETY: the host's standard streams stay open while it runs.
            ChildEnd::Inherit => unsafe { BorrowedFd::borrow_raw(n as RawFd) },
        }
    }
}

/// The child's end of a stream and, for a pipe, the parent's
/// (non-blocking) end.
fn child_end(spec: StdioSpec, is_stdin: bool) -> BridgeResult<(ChildEnd, Option<OwnedFd>)> {
    let pipe_err = |e| BridgeError::io("pipe", e);
    Ok(match spec {
        StdioSpec::Inherit => (ChildEnd::Inherit, None),
        StdioSpec::Null => {
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| BridgeError::io("/dev/null", e))?;
            (ChildEnd::Fd(null.into()), None)
        }
        StdioSpec::Stdout => {
            return Err(BridgeError::invalid("only stderr can go to stdout"));
        }
        StdioSpec::Fd(fd) => {
            io::set_nonblocking(&fd, false).map_err(pipe_err)?;
            (ChildEnd::Fd(fd), None)
        }
        StdioSpec::Pipe => {
            let (r, w) = io::pipe().map_err(pipe_err)?;
            let (child, parent) = if is_stdin { (r, w) } else { (w, r) };
            io::set_nonblocking(&parent, true).map_err(pipe_err)?;
            (ChildEnd::Fd(child), Some(parent))
        }
    })
}

fn no_nul(what: &str, s: &str) -> BridgeResult<()> {
    if s.contains('\0') {
        return Err(BridgeError::invalid(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

fn spawn_error(program: &str, path: &Path, err: std::io::Error) -> BridgeError {
    let errno = match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Errno::NoEnt,
        Some(libc::EACCES) | Some(libc::EPERM) => Errno::Perm,
        Some(libc::EINVAL) => Errno::Inval,
        _ => Errno::Io,
    };
    BridgeError::new(
        errno,
        format!("run \"{program}\" ({}): {err}", path.display()),
    )
}
