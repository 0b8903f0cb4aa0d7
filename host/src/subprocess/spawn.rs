//! Starting a granted command, confined: resolved path, no shell, only the
//! environment given, a working directory inside a granted directory, no
//! inherited descriptors but its stdio, its own process group, and death
//! with its parent.

use super::io;
use super::launch::Launch;
use super::wait::Child;
use super::Popen;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::policy::{is_loader_variable, Policy};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

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

/// Reports a refusal on the host's stderr, for the operator, and returns it.
pub(crate) fn deny(err: BridgeError) -> BridgeError {
    if err.errno == Errno::Perm {
        eprintln!("procbridge: denied: {}", err.message);
    }
    err
}

/// Spawns the command of `req` if `policy` grants it; `dirs` are the
/// guest's granted directories as (host path, guest path).
///
/// # Errors
/// `EPERM` (and one line on stderr) for a command not granted, a loader
/// variable in the environment or a working directory outside the granted
/// directories; `EINVAL` for malformed requests; `ENOENT`/`EIO` when the
/// OS cannot start it.
pub(crate) fn spawn(
    policy: &Policy,
    dirs: &[(PathBuf, String)],
    req: SpawnRequest,
) -> BridgeResult<Popen> {
    let program = req
        .argv
        .first()
        .ok_or_else(|| BridgeError::invalid("argv is empty"))?;
    let granted = policy.resolve_command(program).map_err(deny)?;
    for arg in &req.argv {
        no_nul("argument", arg)?;
    }
    for (key, value) in &req.env {
        if is_loader_variable(key) {
            return Err(deny(BridgeError::denied(format!(
                "run \"{program}\": environment variable {key} changes the dynamic loader and is never passed"
            ))));
        }
        no_nul("environment variable", key)?;
        no_nul("environment variable", value)?;
    }
    let cwd = match &req.cwd {
        Some(cwd) => Some(resolve_cwd(cwd, dirs).map_err(deny)?),
        None => None,
    };

    let inherits = matches!(req.stdout, StdioSpec::Inherit)
        || matches!(req.stderr, StdioSpec::Inherit | StdioSpec::Stdout);
    let (stdin_child, stdin_parent) = child_end(req.stdin, true)?;
    let (stdout_child, stdout_parent) = child_end(req.stdout, false)?;
    let (stderr_child, stderr_parent) = match req.stderr {
        StdioSpec::Stdout => (stdout_child.duplicate()?, None),
        other => child_end(other, false)?,
    };
    let launch = Launch::new(
        &granted.path,
        &req.argv,
        &req.env,
        cwd.as_deref(),
        [stdin_child.raw(), stdout_child.raw(), stderr_child.raw()],
    )
    .map_err(|err| spawn_error(program, &granted.path, err))?;
    if inherits {
        // What the host wrote before must come before what the child writes.
        let _ = std::io::stdout().flush();
    }
    let pid = launch
        .spawn()
        .map_err(|err| spawn_error(program, &granted.path, err))?;
    // The child has its copies; ours close here.
    drop((stdin_child, stdout_child, stderr_child));
    Ok(Popen::new(
        Child::new(pid),
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

/// Maps the working directory a guest names to a host directory inside one
/// of its granted directories.
///
/// The path is split into components; `..` is refused outright, `.` is
/// ignored. It must start with the guest path of a granted directory; the
/// rest is joined to that directory's host path, and the result, with
/// symbolic links resolved, must still be inside the granted directory
/// (resolved the same way). The check happens before the spawn: a guest
/// that can write the granted directory could swap a directory for a link
/// in between; a later policy pass binds the working directory to an open
/// directory instead.
///
/// # Errors
/// `EPERM` naming the directory otherwise.
pub(crate) fn resolve_cwd(cwd: &str, dirs: &[(PathBuf, String)]) -> BridgeResult<PathBuf> {
    let denied = |why: &str| BridgeError::denied(format!("cwd \"{cwd}\": {why}"));
    let wanted = components(cwd).ok_or_else(|| denied("\"..\" is not allowed"))?;
    for (host, guest) in dirs {
        let base = match components(guest) {
            Some(base) => base,
            None => continue,
        };
        if base.0 != wanted.0 || !wanted.1.starts_with(&base.1) {
            continue;
        }
        let rest: PathBuf = wanted.1[base.1.len()..].iter().collect();
        let root = host
            .canonicalize()
            .map_err(|e| denied(&format!("granted directory unavailable: {e}")))?;
        let target = root
            .join(rest)
            .canonicalize()
            .map_err(|e| BridgeError::new(Errno::NoEnt, format!("cwd \"{cwd}\": {e}")))?;
        if !target.starts_with(&root) {
            return Err(denied("leads outside the granted directory"));
        }
        if !target.is_dir() {
            return Err(BridgeError::new(
                Errno::NoEnt,
                format!("cwd \"{cwd}\": not a directory"),
            ));
        }
        return Ok(target);
    }
    Err(denied(
        "not inside a granted directory (grant it with --dir)",
    ))
}

/// (absolute?, normal components), or `None` when the path has `..`.
fn components(path: &str) -> Option<(bool, Vec<String>)> {
    let p = Path::new(path);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => return None,
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some((p.has_root(), parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwd_must_be_inside_a_granted_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/", tmp.path().join("escape")).unwrap();
        let dirs = vec![(tmp.path().to_path_buf(), "/data".to_string())];
        let root = tmp.path().canonicalize().unwrap();
        assert_eq!(resolve_cwd("/data", &dirs).unwrap(), root);
        assert_eq!(
            resolve_cwd("/data/./sub/", &dirs).unwrap(),
            root.join("sub")
        );
        for bad in ["/", "/etc", "/data/..", "/data/sub/../..", "/datax", "data"] {
            assert_eq!(
                resolve_cwd(bad, &dirs).unwrap_err().errno,
                Errno::Perm,
                "{bad}"
            );
        }
        assert_eq!(
            resolve_cwd("/data/escape", &dirs).unwrap_err().errno,
            Errno::Perm
        );
        assert_eq!(
            resolve_cwd("/data/missing", &dirs).unwrap_err().errno,
            Errno::NoEnt
        );
    }
}
