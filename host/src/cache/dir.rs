//! The cache directory, opened once per load and checked; entries are read,
//! written, touched and evicted relative to that open directory, never by a
//! path looked up again.

use super::key::check_private;
use super::known;
use super::manage::{self, Removed};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// File names of entries: `HEX.pbcache`.
pub(crate) const ENTRY_SUFFIX: &str = ".pbcache";

/// Entries of the unauthenticated format of earlier versions; never loaded,
/// removed when the cache is trimmed.
pub(crate) const LEGACY_SUFFIX: &str = ".cwasm";

/// A temporary file older than this was left by a writer that died.
pub(crate) const STALE_TMP: Duration = Duration::from_secs(3600);

/// A record of a module's identity (see [`super::known`]) written longer
/// ago than this is removed when the cache is trimmed: the module is hashed
/// again on its next load.
const STALE_RECORD: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the cache cannot be used for this load.
#[derive(Debug)]
pub(crate) enum Problem {
    /// The directory (or the key) is not the user's alone.
    Untrusted(String),
    /// The directory cannot be created or written.
    Unwritable(String),
}

/// An open cache directory that belongs to this user and that no one else
/// may write.
#[derive(Debug)]
pub(crate) struct CacheDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl CacheDir {
    /// Opens `path`, creating it (`0700`) if missing, and checks it.
    pub(crate) fn open(path: &Path) -> Result<CacheDir, Problem> {
        let shown = path.display();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| {
                Problem::Unwritable(format!("cannot create the module cache {shown}: {e}"))
            })?;
        Self::open_existing(path)
    }

    /// Opens `path` if it exists, and checks it.
    pub(crate) fn open_existing(path: &Path) -> Result<CacheDir, Problem> {
        let shown = path.display();
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                Problem::Untrusted(format!("cannot open the module cache {shown}: {e}"))
            })?;
        let meta = dir.metadata().map_err(|e| {
            Problem::Untrusted(format!("cannot stat the module cache {shown}: {e}"))
        })?;
        check_private(&meta, &format!("the module cache {shown}"), 0o022)
            .map_err(Problem::Untrusted)?;
        Ok(CacheDir {
            fd: dir.into(),
            path: path.to_path_buf(),
        })
    }

    /// The path of entry `name`, for messages.
    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens entry `name` for reading and checks it, or `None` when there
    /// is none: the open file and its length (at most `max_len`). The file
    /// is also what [`touch`](CacheDir::touch) takes once the entry has
    /// been used.
    ///
    /// # Errors
    /// Why the entry may not be used (a sentence naming it): a symbolic
    /// link, not a regular file, not the user's alone, larger than the
    /// cache, unreadable.
    pub(crate) fn open_entry(
        &self,
        name: &str,
        max_len: u64,
    ) -> Result<Option<(File, u64)>, String> {
        let what = self.what(name);
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let file = match self.open_at(name, flags, 0) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(format!("{what} is a symbolic link"))
            }
            Err(e) => return Err(format!("cannot open {what}: {e}")),
        };
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot stat {what}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{what} is not a regular file"));
        }
        check_private(&meta, &what, 0o022)?;
        if meta.len() > max_len {
            return Err(format!(
                "{what} is larger than the whole cache may be ({} bytes)",
                meta.len()
            ));
        }
        Ok(Some((file, meta.len())))
    }

    /// The contents of the small file `name` (at most `max_len` bytes), if
    /// there is one that [`open_entry`](CacheDir::open_entry) accepts.
    pub(crate) fn read_small(&self, name: &str, max_len: usize) -> Option<Vec<u8>> {
        let (file, len) = self.open_entry(name, max_len as u64).ok()??;
        self.read(name, &file, len).ok()
    }

    /// Reads the opened entry `name` whole (one read of `len` bytes).
    ///
    /// # Errors
    /// A sentence naming the entry.
    pub(crate) fn read(&self, name: &str, file: &File, len: u64) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::with_capacity(len as usize);
        let reader = file;
        reader
            .take(len)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", self.what(name)))?;
        Ok(bytes)
    }

    fn what(&self, name: &str) -> String {
        format!("the module cache entry {}", self.path_of(name).display())
    }

    /// Marks an entry as just used: eviction orders by its times. (Set
    /// from the precise clock: the kernel's own file times may not tell
    /// apart uses a few milliseconds apart.)
    pub(crate) fn touch(&self, file: &File) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let time = libc::timespec {
            tv_sec: now.as_secs() as libc::time_t,
            tv_nsec: now.subsec_nanos() as libc::c_long,
        };
        // SAFETY: futimens on an open descriptor with two valid timespecs
        // (access and modification times).
        unsafe {
            libc::futimens(file.as_raw_fd(), [time, time].as_ptr());
        }
    }

    /// Writes entry `name` (the concatenation of `parts`) atomically: a new
    /// temporary file (`0600`) renamed over it.
    pub(crate) fn write(&self, name: &str, parts: &[&[u8]]) -> std::io::Result<()> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let tmp = format!(
            "{name}.tmp{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let written = self.open_at(&tmp, flags, 0o600).and_then(|mut file| {
            parts.iter().try_for_each(|part| file.write_all(part))?;
            self.touch(&file);
            Ok(())
        });
        let result = written.and_then(|()| self.rename(&tmp, name));
        if result.is_err() {
            self.unlink(&tmp);
        }
        result
    }

    /// Removes least recently used entries until they take at most
    /// `max_bytes`, records of module identities not written for
    /// [`STALE_RECORD`], and what earlier versions or dead writers left;
    /// says how many entries it removed.
    pub(crate) fn evict(&self, max_bytes: u64) -> Removed {
        let now = SystemTime::now();
        let age = |file: &DirFile| now.duration_since(file.modified).unwrap_or_default();
        let mut entries = Vec::new();
        let mut notes = Vec::new();
        for file in self.files() {
            let name = file.name.as_str();
            if name.ends_with(ENTRY_SUFFIX) {
                entries.push((file.mtime, file.size, file.name));
                continue;
            }
            if name.ends_with(manage::INFO_SUFFIX) {
                notes.push(file.name);
                continue;
            }
            // Only names procbridge gives its files: a `.cwasm` of someone
            // else's in a directory given as the cache stays.
            let left_over = manage::hex_named(name, LEGACY_SUFFIX, 64)
                || (manage::hex_named(name, known::SUFFIX, 32) && age(&file) > STALE_RECORD)
                || (name.contains(".tmp") && manage::ours(&file, now));
            if left_over {
                self.unlink(name);
            }
        }
        let mut total: u64 = entries.iter().map(|(_, size, _)| size).sum();
        entries.sort();
        let mut removed = Removed::default();
        let mut kept = std::collections::HashSet::new();
        for (_, size, name) in entries {
            if total <= max_bytes {
                kept.insert(name);
                continue;
            }
            self.unlink(&name);
            total -= size;
            removed.entries += 1;
            removed.bytes += size;
        }
        // Notes of entries that are gone.
        for note in notes {
            if !kept.contains(&manage::entry_of(&note)) {
                self.unlink(&note);
            }
        }
        removed
    }

    /// The regular files in the directory (symbolic links and other
    /// files are not listed), with their sizes and modification times.
    pub(crate) fn files(&self) -> Vec<DirFile> {
        let Ok(list) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut files = Vec::new();
        for item in list.flatten() {
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stat) = self.stat_at(name) else {
                continue;
            };
            if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
                continue;
            }
            let modified = SystemTime::UNIX_EPOCH
                + Duration::new(
                    stat.st_mtime.max(0) as u64,
                    stat.st_mtime_nsec.clamp(0, 999_999_999) as u32,
                );
            files.push(DirFile {
                name: name.to_string(),
                size: stat.st_size.max(0) as u64,
                mtime: (stat.st_mtime, stat.st_mtime_nsec),
                modified,
            });
        }
        files
    }

    fn open_at(&self, name: &str, flags: i32, mode: libc::mode_t) -> std::io::Result<File> {
        let name = c_name(name)?;
        // SAFETY: openat with our directory descriptor and a NUL-terminated
        // name; the result is a new descriptor owned by the `File`.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                flags,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn stat_at(&self, name: &str) -> Option<libc::stat> {
        let name = c_name(name).ok()?;
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstatat with our directory, a NUL-terminated name and a
        // valid out-pointer; symbolic links are not followed.
        let ret = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                &mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (ret == 0).then_some(stat)
    }

    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        let (from, to) = (c_name(from)?, c_name(to)?);
        let dir = self.fd.as_raw_fd();
        // SAFETY: renameat within our directory with NUL-terminated names.
        if unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub(crate) fn unlink(&self, name: &str) {
        if let Ok(name) = c_name(name) {
            // SAFETY: unlinkat within our directory with a NUL-terminated
            // name.
            unsafe {
                libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0);
            }
        }
    }
}

/// A regular file of the cache directory ([`CacheDir::files`]).
#[derive(Debug)]
pub(crate) struct DirFile {
    /// Its name.
    pub(crate) name: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its modification time, as the kernel keeps it (for ordering).
    pub(crate) mtime: (libc::time_t, i64),
    /// The same as a time.
    pub(crate) modified: SystemTime,
}

fn c_name(name: &str) -> std::io::Result<CString> {
    CString::new(Path::new(name).as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}
