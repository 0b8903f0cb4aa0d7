//! A minimal Landlock binding: create a ruleset in the parent, restrict a
//! child with it before `exec`.
//!
//! Raw system calls (`landlock_create_ruleset`, `landlock_add_rule`,
//! `landlock_restrict_self`) with the kernel's structures; the access rights
//! used are limited to what the running kernel's ABI version knows.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_SYM: u64 = 1 << 12;
const REFER: u64 = 1 << 13; // ABI 2
const TRUNCATE: u64 = 1 << 14; // ABI 3
const IOCTL_DEV: u64 = 1 << 15; // ABI 5

const NET_BIND_TCP: u64 = 1 << 0; // ABI 4
const NET_CONNECT_TCP: u64 = 1 << 1; // ABI 4

const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0; // ABI 6
const SCOPE_SIGNAL: u64 = 1 << 1; // ABI 6

/// Rights that apply to files (not only directories).
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel, or `None` without
/// Landlock.
pub fn abi_version() -> Option<u32> {
    // SAFETY: the documented way to query the ABI: null attr, size 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (ret > 0).then_some(ret as u32)
}

/// Every file-system right of `abi`. Rights never allowed by any rule (such
/// as making device nodes) are still handled, hence denied.
fn handled_fs(abi: u32) -> u64 {
    let mut access = (1 << 13) - 1;
    if abi >= 2 {
        access |= REFER;
    }
    if abi >= 3 {
        access |= TRUNCATE;
    }
    if abi >= 5 {
        access |= IOCTL_DEV;
    }
    access
}

/// What a rule allows beneath a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// List directories (and read no file).
    List,
    /// Read files and list directories.
    Read,
    /// Read and execute (system directories, the command itself).
    ReadExecute,
    /// Read, create, write, remove; never execute.
    ReadWrite,
}

impl Access {
    fn bits(self) -> u64 {
        let read = READ_FILE | READ_DIR;
        match self {
            Access::List => READ_DIR,
            Access::Read => read,
            Access::ReadExecute => read | EXECUTE,
            Access::ReadWrite => {
                read | WRITE_FILE
                    | REMOVE_DIR
                    | REMOVE_FILE
                    | MAKE_DIR
                    | MAKE_REG
                    | MAKE_SOCK
                    | MAKE_FIFO
                    | MAKE_SYM
                    | REFER
                    | TRUNCATE
                    | IOCTL_DEV
            }
        }
    }
}

/// A Landlock ruleset being built, then applied in children.
#[derive(Debug)]
pub struct Ruleset {
    fd: OwnedFd,
    handled: u64,
}

impl Ruleset {
    /// A ruleset that handles every file-system right the ABI knows (so
    /// anything not allowed by a rule is denied), TCP when `deny_tcp`, and
    /// signal / abstract-socket scoping where the ABI has it.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn new(abi: u32, deny_tcp: bool) -> io::Result<Ruleset> {
        let handled = handled_fs(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled,
            handled_access_net: if deny_tcp && abi >= 4 {
                NET_BIND_TCP | NET_CONNECT_TCP
            } else {
                0
            },
            scoped: if abi >= 6 {
                SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            } else {
                0
            },
        };
        let size = if abi >= 6 {
            std::mem::size_of::<RulesetAttr>()
        } else if abi >= 4 {
            16
        } else {
            8
        };
        // SAFETY: attr is a valid RulesetAttr; size covers the fields the
        // ABI knows.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd (close-on-exec) owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Ruleset { fd, handled })
    }

    /// A ruleset made elsewhere (the host hands it to the jail's helper).
    pub(crate) fn from_fd(fd: OwnedFd) -> Ruleset {
        Ruleset { fd, handled: !0 }
    }

    /// The ruleset's descriptor.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Allows `access` beneath `path` (a directory, or a single file), opened
    /// now.
    ///
    /// # Errors
    /// When the path cannot be opened or the kernel refuses the rule.
    pub fn allow(&mut self, path: &Path, access: Access) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        self.allow_fd(file.as_fd(), access)
    }

    /// Allows `access` beneath the directory (or on the file) `fd` refers
    /// to. Landlock ties the rule to the inode itself, so it holds wherever
    /// that directory is later seen (in the jail's mounts too) and whatever
    /// its path becomes.
    ///
    /// # Errors
    /// When the kernel refuses the rule.
    pub fn allow_fd(&mut self, fd: BorrowedFd<'_>, access: Access) -> io::Result<()> {
        let is_dir = rustix::fs::fstat(fd)
            .map(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            })
            .map_err(io::Error::from)?;
        let mut allowed = access.bits() & self.handled;
        if !is_dir {
            allowed &= FILE_RIGHTS;
        }
        let rule = PathBeneathAttr {
            allowed_access: allowed,
            parent_fd: fd.as_raw_fd(),
        };
        // SAFETY: a valid ruleset fd and a valid rule struct.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                self.fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Restricts the calling process (and its future children) to the rules.
    /// `no_new_privs` must be set first.
    ///
    /// # Safety
    /// Irrevocable for the calling process; async-signal-safe (one system
    /// call), so it may run between `fork` and `exec`.
    pub unsafe fn restrict_self(&self) -> io::Result<()> {
        // SAFETY: a valid ruleset fd.
        let ret =
            unsafe { libc::syscall(libc::SYS_landlock_restrict_self, self.fd.as_raw_fd(), 0u32) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for Ruleset {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
