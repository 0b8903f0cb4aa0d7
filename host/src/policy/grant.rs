//! Opening a granted directory once, and the grants that are refused.
//!
//! A grant is opened with `openat2(RESOLVE_NO_SYMLINKS)`: a path that goes
//! through a symbolic link anywhere is refused, so a link a guest planted in
//! an earlier run (or anyone else did) cannot redirect a grant. The opened
//! directory is the grant from then on.
//!
//! A grant that lies inside a read-write grant is refused unless the policy
//! declares the overlap intended: through the outer grant a guest could
//! rename the inner directory and put something else in its place. (With
//! grants held as descriptors that swap no longer redirects anything, but
//! the shape is almost always a mistake.)

use super::DirGrant;
use crate::ctx::DirPerms;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Why a directory cannot be granted.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The path goes through a symbolic link.
    #[error(
        "directory {path}: {link} is a symbolic link; grant the directory it points to by its real path"
    )]
    SymbolicLink {
        /// The path as given.
        path: PathBuf,
        /// The component that is a link.
        link: PathBuf,
    },
    /// The directory lies inside a read-write grant (or holds one).
    #[error(
        "directory {inner}: lies inside the read-write grant {outer}, through which a guest could \
         rename it and put a link in its place; grant only one of them, or declare the overlap \
         intended (overlap = true in a policy file, --allow-overlap)"
    )]
    InsideReadWrite {
        /// The inner directory.
        inner: PathBuf,
        /// The read-write directory holding it.
        outer: PathBuf,
    },
    /// It cannot be opened as a directory.
    #[error("directory {path}: {}", describe(.error))]
    Open {
        /// The path as given.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
}

/// A granted command (or an interpreter it needs) inside a read-write
/// grant: a guest could change what it runs.
#[derive(Debug, thiserror::Error)]
#[error(
    "command {command}: {} lies inside the read-write grant {}, where a guest could change \
     what runs; grant a copy outside it, or grant the directory read-only",
    file.display(),
    grant.display()
)]
pub struct CommandInsideGrant {
    /// The command's grant.
    pub command: String,
    /// The file that would run.
    pub file: PathBuf,
    /// The read-write grant holding it.
    pub grant: PathBuf,
}

/// The directory at `path`, opened without following any symbolic link,
/// and the absolute path it was found at.
///
/// # Ambient authority
/// Resolves `path` in the host's file system (relative to the current
/// directory).
pub(super) fn open(path: &Path) -> Result<(cap_std::fs::Dir, PathBuf), GrantError> {
    let how =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC;
    let opened = rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        how,
        rustix::fs::Mode::empty(),
        rustix::fs::ResolveFlags::NO_SYMLINKS | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    );
    let fd: OwnedFd = match opened {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => {
            return Err(GrantError::SymbolicLink {
                path: path.to_path_buf(),
                link: first_link(path).unwrap_or_else(|| path.to_path_buf()),
            })
        }
        Err(err) => {
            return Err(GrantError::Open {
                path: path.to_path_buf(),
                error: err.into(),
            })
        }
    };
    let real =
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|error| {
            GrantError::Open {
                path: path.to_path_buf(),
                error,
            }
        })?;
    Ok((cap_std::fs::Dir::from_std_file(fd.into()), real))
}

fn describe(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::ENOTDIR) => "is not a directory".to_string(),
        Some(libc::ENOENT) => "does not exist".to_string(),
        _ => error.to_string(),
    }
}

/// The first component of `path` that is a symbolic link.
fn first_link(path: &Path) -> Option<PathBuf> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        if matches!(component, Component::Normal(_))
            && std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink())
        {
            return Some(prefix);
        }
    }
    None
}

/// Refuses `new` when it lies inside a read-write grant of `existing`, or
/// is a read-write grant holding one of them, unless the overlap was
/// declared on the inner grant.
pub(super) fn check_overlap(existing: &[DirGrant], new: &DirGrant) -> Result<(), GrantError> {
    for old in existing {
        for (inner, outer) in [(new, old), (old, new)] {
            if outer.perms == DirPerms::ReadWrite
                && !inner.overlap
                && inner.host != outer.host
                && inner.host.starts_with(&outer.host)
            {
                return Err(GrantError::InsideReadWrite {
                    inner: inner.host.clone(),
                    outer: outer.host.clone(),
                });
            }
        }
    }
    Ok(())
}
