//! The cache key: 32 random bytes in a file that only the user can read,
//! outside the cache directory (see the module docs of [`crate::cache`]).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Bytes of a key.
pub(crate) const KEY_LEN: usize = 32;

/// A key.
pub(crate) type Key = [u8; KEY_LEN];

/// Reads the key at `path`, creating it (and its directory, `0700`) with
/// fresh random bytes when there is none.
///
/// # Errors
/// Why there is no usable key: it cannot be read or created, it is not a
/// regular file of 32 bytes, or it is not the user's alone.
pub(crate) fn load_or_create(path: &Path) -> Result<Key, String> {
    match read(path) {
        Err(None) => {
            create(path)?;
            read(path).map_err(|e| e.unwrap_or_else(|| missing(path)))
        }
        other => other.map_err(|e| e.unwrap_or_else(|| missing(path))),
    }
}

fn missing(path: &Path) -> String {
    format!("the module cache key {} vanished", path.display())
}

/// The key at `path`; `Err(None)` when there is no file.
fn read(path: &Path) -> Result<Key, Option<String>> {
    let what = || format!("the module cache key {}", path.display());
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(format!("cannot open {}: {e}", what()))),
    };
    let meta = file
        .metadata()
        .map_err(|e| Some(format!("cannot stat {}: {e}", what())))?;
    check_private(&meta, &what(), 0o077)?;
    if !meta.is_file() || meta.len() != KEY_LEN as u64 {
        return Err(Some(format!(
            "{} is not a file of {KEY_LEN} bytes (delete it to make a new key)",
            what()
        )));
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key)
        .map_err(|e| Some(format!("cannot read {}: {e}", what())))?;
    Ok(key)
}

/// Writes a new key to a temporary file and links it in place, so that a
/// reader never sees part of a key, and of two processes creating it at
/// once both use the one that was linked first.
fn create(path: &Path) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "cannot create the module cache key {} ({what}: {e})",
            path.display()
        )
    };
    let dir = path
        .parent()
        .ok_or_else(|| format!("the module cache key {} has no directory", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| fail("its directory", e))?;
    let mut key = [0u8; KEY_LEN];
    random(&mut key).map_err(|e| fail("getrandom", e))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = write_new(&tmp, &key).map_err(|e| fail("write", e));
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail("link", e)),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Fills `buf` from the kernel's random source.
fn random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += n as usize;
    }
    Ok(())
}

/// Checks that `meta` (of `what`) belongs to this user (the effective uid)
/// and grants nothing of `mask` to group or others: `0o022` for no write,
/// `0o077` for nothing at all.
pub(crate) fn check_private(meta: &Metadata, what: &str, mask: u32) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(format!(
            "{what} is owned by uid {}, not by this user (uid {euid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & mask != 0 {
        let access = if mask == 0o022 {
            "writable"
        } else {
            "readable or writable"
        };
        return Err(format!(
            "{what} is {access} by group or others (mode {mode:o})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_is_made_once_private_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/procbridge/cache.key");
        let key = load_or_create(&path).unwrap();
        assert_ne!(key, [0; KEY_LEN]);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let parent = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(parent.mode() & 0o777, 0o700);
        assert_eq!(load_or_create(&path).unwrap(), key);
        // Nothing is left behind but the key.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["cache.key"]);

        // Others may read it: refused, and kept as it is.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(
            err.contains("readable or writable by group or others"),
            "{err}"
        );
        // A key of the wrong size is not replaced either.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(err.contains("is not a file of 32 bytes"), "{err}");
        // Nor a symbolic link to a key.
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(load_or_create(&link).is_err());
    }
}
