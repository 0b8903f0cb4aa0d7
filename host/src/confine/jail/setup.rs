//! The jail's file system, built by its helper inside fresh user, mount
//! and PID namespaces (see `docs/policy.md`, "How commands are confined").
//!
//! A new root on a small tmpfs holds, and nothing else:
//!
//! * read-only binds of the system directories (`/usr`, `/lib*`, `/bin`,
//!   `/sbin`; symbolic links where the host has them), `nosuid,nodev`; the
//!   directories of programs (`/usr/bin`, `/usr/sbin`, ...) also `noexec`,
//!   with the granted programs and their interpreters bound back on top
//!   executable, so that the dynamic loader cannot map an ungranted
//!   program;
//! * `/etc` read-only, with every entry that is not readable by others
//!   (`shadow`, `gshadow`, `ssl/private`, `sudoers`, host keys) replaced by
//!   an empty, unreadable stand-in: the jail's `/etc` shows what any user of
//!   the machine may read;
//! * a minimal `/dev` (`null`, `zero`, `full`, `random`, `urandom`, `tty`,
//!   and the `fd`/`stdin`/`stdout`/`stderr` links);
//! * `/proc` of the job's own PID namespace;
//! * the granted directories where the guest sees them, `nosuid,nodev,noexec`
//!   (read-only grants also `ro`). Each is found again under the old root
//!   without following any symbolic link and must be the very directory
//!   opened at start-up (same device and inode), or the jail is not built.
//!
//! The root itself is then made read-only, and the old root detached.

use super::GrantMount;
use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::mount::{MountFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const OLD_ROOT: &str = "/oldroot";
/// The empty, unreadable file bound over secrets in `/etc`.
const MASK: &str = "/.mask";

/// System directories bound read-only (those that exist).
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];
/// Directories of programs: bound again `noexec`.
const PROGRAM_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/games",
    "/usr/local/games",
    "/bin",
    "/sbin",
];
/// Device nodes bound into the jail's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// How many entries of `/etc` are looked at, at most.
const MAX_ETC_ENTRIES: usize = 50_000;

// mount_setattr(2), which rustix does not wrap.
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// What the helper builds; the host fills it in before the fork.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) grants: Vec<GrantMount>,
    /// Files a command may execute (canonical paths).
    pub(crate) executables: Vec<PathBuf>,
    /// The host uid and gid commands run as (`--run-as`).
    pub(crate) run_as: Option<(u32, u32)>,
}

/// Builds the jail's root from `plan`, in the calling process's (fresh)
/// mount namespace, and enters it. Returns what could not be set up but
/// does not stop the jail (for the operator's warning).
pub(crate) fn build_root(plan: &Plan) -> io::Result<Vec<String>> {
    let mut warnings = Vec::new();
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::REC | rustix::mount::MountPropagationFlags::PRIVATE,
    )
    .map_err(|e| context("making mounts private", e))?;
    let base = ["/tmp", "/mnt", "/var/tmp", "/run"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .ok_or_else(|| io::Error::other("no directory to build the jail's root in"))?;
    rustix::mount::mount(
        "tmpfs",
        base,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(c"mode=0755,size=4m"),
    )
    .map_err(|e| context("mounting the jail's root", e))?;
    rustix::process::chdir(base)?;
    mkdir("oldroot")?;
    rustix::process::pivot_root(".", "oldroot").map_err(|e| context("pivot_root", e))?;
    rustix::process::chdir("/")?;
    // The empty, unreadable file bound over what must not be read.
    rustix::fs::open(
        MASK,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| context("creating the mask", e))?;

    for dir in SYSTEM {
        bind_system(dir)?;
    }
    for dir in PROGRAM_DIRS {
        if is_real_dir(&old(Path::new(dir))) && is_real_dir(Path::new(dir)) {
            bind(
                &old(Path::new(dir)),
                Path::new(dir),
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            )?;
        }
    }
    // Granted programs first: the masks of /etc go on top of anything.
    for file in &plan.executables {
        bind_executable(file)?;
    }
    build_etc()?;
    build_dev()?;
    match mount_proc() {
        Ok(()) => harden_proc(&mut warnings)?,
        Err(err) => warnings.push(format!("the jail has no /proc ({err})")),
    }
    let root_dev = rustix::fs::stat("/")?.st_dev;
    let mut grants: Vec<&GrantMount> = plan.grants.iter().collect();
    grants.sort_by_key(|g| g.at.components().count());
    for grant in grants {
        bind_grant(grant, root_dev)?;
    }

    rustix::mount::unmount(OLD_ROOT, UnmountFlags::DETACH)
        .map_err(|e| context("detaching the old root", e))?;
    rustix::fs::rmdir(OLD_ROOT)?;
    let _ = rustix::fs::unlink(MASK);
    set_attr(CWD, "/", MOUNT_ATTR_RDONLY, false).map_err(|e| context("read-only root", e))?;
    rustix::process::chdir("/")?;
    Ok(warnings)
}

/// Brings the loopback interface of a fresh network namespace up.
pub(crate) fn loopback_up() -> io::Result<()> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )?;
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS with a valid ifreq.
    unsafe {
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn old(path: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

fn context(what: &str, err: impl Into<io::Error>) -> io::Error {
    let err = err.into();
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

fn mkdir(path: impl AsRef<Path>) -> io::Result<()> {
    match rustix::fs::mkdir(path.as_ref(), Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(err) => Err(context(&format!("mkdir {}", path.as_ref().display()), err)),
    }
}

/// Creates `path` and its missing parents in the jail's root.
fn mkdir_all(path: &Path) -> io::Result<()> {
    let mut at = PathBuf::from("/");
    for component in path.components().skip(1) {
        at.push(component);
        mkdir(&at)?;
    }
    Ok(())
}

/// Creates an empty file to mount a file on.
fn touch(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        mkdir_all(parent)?;
    }
    match rustix::fs::open(
        path,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) => Ok(()),
        Err(err) => Err(context(&format!("creating {}", path.display()), err)),
    }
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn set_attr(dir: BorrowedFd<'_>, path: &str, set: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let path =
        std::ffi::CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut flags = libc::AT_EMPTY_PATH * i32::from(path.as_bytes().is_empty());
    if recursive {
        flags |= 0x8000; // AT_RECURSIVE
    }
    // SAFETY: a valid directory fd, C string and attribute struct.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dir.as_raw_fd(),
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Clones the tree at `source` (an open directory or file), gives it
/// `attrs` and attaches it at `target`.
fn attach(source: BorrowedFd<'_>, target: &Path, attrs: u64) -> io::Result<()> {
    let tree = detached_tree(source, target, attrs)?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| context(&format!("mounting {}", target.display()), e))
}

/// As [`attach`], onto the directory `target` already opened (`at` names
/// it in errors).
fn attach_onto(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    at: &Path,
    attrs: u64,
) -> io::Result<()> {
    let tree = detached_tree(source, at, attrs)?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| context(&format!("mounting {}", at.display()), e))
}

/// A detached clone of the tree at `source` with `attrs`, ready to be
/// moved into place (`at` names it in errors).
fn detached_tree(source: BorrowedFd<'_>, at: &Path, attrs: u64) -> io::Result<OwnedFd> {
    let tree: OwnedFd = rustix::mount::open_tree(
        source,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| context(&format!("cloning the mount for {}", at.display()), e))?;
    set_attr(tree.as_fd(), "", attrs, true)
        .map_err(|e| context(&format!("mount flags of {}", at.display()), e))?;
    Ok(tree)
}

/// Binds `source` (a path under the old root) at `target`.
fn bind(source: &Path, target: &Path, attrs: u64) -> io::Result<()> {
    let fd = rustix::fs::open(source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| context(&format!("opening {}", source.display()), e))?;
    attach(fd.as_fd(), target, attrs)
}

fn bind_system(dir: &str) -> io::Result<()> {
    let source = old(Path::new(dir));
    let meta = match std::fs::symlink_metadata(&source) {
        Ok(meta) => meta,
        Err(_) => return Ok(()),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&source)?;
        return rustix::fs::symlink(&target, dir).map_err(|e| context(&format!("link {dir}"), e));
    }
    if !meta.is_dir() {
        return Ok(());
    }
    mkdir(dir)?;
    bind(
        &source,
        Path::new(dir),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
}

/// A granted program (or interpreter) bound executable at its own path.
fn bind_executable(file: &Path) -> io::Result<()> {
    // The canonical path has no links; inside the system binds it already
    // exists (in a `noexec` program directory: the file mount on top of it
    // is executable).
    if std::fs::symlink_metadata(file).is_err() {
        touch(file)?;
    }
    bind(
        &old(file),
        file,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
}

/// `/etc` as any user of the machine may read it.
fn build_etc() -> io::Result<()> {
    let source = old(Path::new("/etc"));
    if !is_real_dir(&source) {
        return Ok(());
    }
    mkdir("/etc")?;
    bind(
        &source,
        Path::new("/etc"),
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    )?;
    rustix::fs::open(
        MASK,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| context("creating the mask", e))?;
    let mut seen = 0;
    mask_unreadable(&source, Path::new("/etc"), &mut seen)
}

fn mask_unreadable(source: &Path, target: &Path, seen: &mut usize) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let entries = match std::fs::read_dir(source) {
        Ok(entries) => entries,
        Err(_) => return Ok(()),
    };
    for entry in entries.flatten() {
        *seen += 1;
        if *seen > MAX_ETC_ENTRIES {
            return Err(io::Error::other("/etc has too many entries to check"));
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(_) => continue,
        };
        let mode = meta.permissions().mode();
        let (src, dst) = (entry.path(), target.join(entry.file_name()));
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            if mode & 0o005 != 0o005 {
                rustix::mount::mount(
                    "tmpfs",
                    &dst,
                    "tmpfs",
                    MountFlags::RDONLY
                        | MountFlags::NOSUID
                        | MountFlags::NODEV
                        | MountFlags::NOEXEC,
                    Some(c"mode=000,size=4k"),
                )
                .map_err(|e| context(&format!("masking {}", dst.display()), e))?;
            } else {
                mask_unreadable(&src, &dst, seen)?;
            }
        } else if mode & 0o004 == 0 {
            bind(
                Path::new(MASK),
                &dst,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            )?;
        }
    }
    Ok(())
}

fn build_dev() -> io::Result<()> {
    mkdir("/dev")?;
    rustix::mount::mount(
        "tmpfs",
        "/dev",
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(c"mode=0755,size=64k"),
    )
    .map_err(|e| context("mounting /dev", e))?;
    for name in DEVICES {
        let source = old(&Path::new("/dev").join(name));
        if std::fs::symlink_metadata(&source).is_err() {
            continue;
        }
        let target = Path::new("/dev").join(name);
        touch(&target)?;
        bind(&source, &target, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)?;
    }
    for (link, to) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        rustix::fs::symlink(to, link).map_err(|e| context(link, e))?;
    }
    set_attr(CWD, "/dev", MOUNT_ATTR_RDONLY, false).map_err(|e| context("read-only /dev", e))
}

/// `/proc` as Docker leaves it: the kernel's settings read-only, and what
/// only root may read (or must not be read at all) masked, since a
/// command's uid may be root's outside the jail. Settings of the jail's own
/// namespaces are made first.
fn harden_proc(warnings: &mut Vec<String>) -> io::Result<()> {
    for (setting, value, what) in [
        (
            "/proc/sys/user/max_user_namespaces",
            "0",
            "nested user namespaces are not limited",
        ),
        ("/proc/sys/vm/memfd_noexec", "2", "memfds can be executed"),
    ] {
        if let Err(err) = std::fs::write(setting, value) {
            warnings.push(format!("{what} ({setting}: {err})"));
        }
    }
    for dir in [
        "/proc/sys",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sysrq-trigger",
    ] {
        if std::fs::symlink_metadata(dir).is_ok() {
            let flags =
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
            bind(Path::new(dir), Path::new(dir), flags)?;
        }
    }
    const MASKED: &[&str] = &[
        "kcore",
        "keys",
        "timer_list",
        "sched_debug",
        "latency_stats",
    ];
    const MASKED_DIRS: &[&str] = &["acpi", "scsi", "asound"];
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(_) => continue,
        };
        let path = entry.path();
        if meta.is_file() && (meta.permissions().mode() & 0o004 == 0 || MASKED.contains(&&*name)) {
            bind(
                Path::new(MASK),
                &path,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
            )?;
        } else if meta.is_dir() && MASKED_DIRS.contains(&&*name) {
            rustix::mount::mount(
                "tmpfs",
                &path,
                "tmpfs",
                MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                Some(c"mode=000,size=4k"),
            )
            .map_err(|e| context(&format!("masking {}", path.display()), e))?;
        }
    }
    Ok(())
}

fn mount_proc() -> io::Result<()> {
    mkdir("/proc")?;
    rustix::mount::mount(
        "proc",
        "/proc",
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// A granted directory at its place in the jail, after checking that the
/// path still leads (without any link) to the directory opened at
/// start-up. Its mount point is found without following links, and
/// created only on the jail's own root (`root_dev`), never inside another
/// grant (which is a directory of the host).
fn bind_grant(grant: &GrantMount, root_dev: u64) -> io::Result<()> {
    let old_root = rustix::fs::open(
        OLD_ROOT,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let relative = grant.host.strip_prefix("/").unwrap_or(&grant.host);
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let fd = rustix::fs::openat2(
        &old_root,
        relative,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::BENEATH,
    )
    .map_err(|e| context(&format!("directory {}", grant.host.display()), e))?;
    let stat = rustix::fs::fstat(&fd)?;
    if (stat.st_dev, stat.st_ino) != grant.identity {
        return Err(io::Error::other(format!(
            "directory {} is no longer the directory granted at start-up",
            grant.host.display()
        )));
    }
    let target = mount_point(&grant.at, root_dev).map_err(|e| {
        context(
            &format!(
                "mounting {} at {}",
                grant.host.display(),
                grant.at.display()
            ),
            e,
        )
    })?;
    let mut attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if !grant.writable {
        attrs |= MOUNT_ATTR_RDONLY;
    }
    attach_onto(fd.as_fd(), target.as_fd(), &grant.at, attrs)
}

/// Opens the directory `at` of the jail without following any link,
/// creating the parts that are missing on the jail's own root (device
/// `root_dev`) and nowhere else.
fn mount_point(at: &Path, root_dev: u64) -> io::Result<OwnedFd> {
    let open = |dir: &OwnedFd, name: &std::ffi::OsStr| {
        rustix::fs::openat2(
            dir,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::BENEATH,
        )
    };
    let mut dir = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut walked = PathBuf::from("/");
    for component in at.components() {
        let name = match component {
            std::path::Component::Normal(name) => name,
            _ => continue,
        };
        walked.push(name);
        dir = match open(&dir, name) {
            Ok(next) => next,
            Err(rustix::io::Errno::NOENT) if rustix::fs::fstat(&dir)?.st_dev == root_dev => {
                rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755))?;
                open(&dir, name)?
            }
            Err(rustix::io::Errno::NOENT) => {
                return Err(io::Error::other(format!(
                    "there is no directory {} to mount it on, and none is made inside a \
                     granted directory",
                    walked.display()
                )))
            }
            Err(rustix::io::Errno::LOOP) | Err(rustix::io::Errno::NOTDIR) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory (a symbolic link?)",
                    walked.display()
                )))
            }
            Err(err) => return Err(err.into()),
        };
    }
    Ok(dir)
}
