//! A cache entry's serialized module, copied into a sealed memfd: checked
//! where it will run from, unchangeable once checked, and file-backed.
//!
//! * **Checked where it runs from.** The payload is copied out of the entry
//!   into a new memfd, sealed against every write (`F_SEAL_WRITE`,
//!   `F_SEAL_SHRINK`, `F_SEAL_GROW`, then `F_SEAL_SEAL`), and only then
//!   mapped and authenticated; wasmtime maps that same memfd. Nothing can
//!   change between the check and the load: not the entry on disk (it is no
//!   longer read), not the memfd (no one can write it, procbridge included).
//! * **File-backed.** wasmtime runs the code from the memfd's pages instead
//!   of copying them into anonymous memory. `fork` copies no page tables
//!   for pages that are not anonymous, and an exiting child has none to tear
//!   down: for CPython's 26 MB of compiled code, that is more than half of
//!   what a fork of a Python guest cost (5.5 ms before, 2.3 ms after, on a
//!   2-core VM).
//!
//! Where memfds cannot hold executable code (`vm.memfd_noexec = 2`, kernels
//! without sealing), [`copy`] fails and the caller loads from memory as
//! before.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};

/// The name the memfd shows in `/proc/PID/maps`.
const NAME: &CStr = c"procbridge-module";

/// A new memfd holding bytes `offset..offset + len` of `entry`, sealed.
///
/// # Errors
/// When memfds cannot be made, sealed or made executable here, or `entry`
/// is shorter than it said.
pub(crate) fn copy(entry: &File, offset: u64, len: u64) -> io::Result<File> {
    let memfd = create()?;
    fill(entry, offset, len, &memfd)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor owned here, with an int argument.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(memfd)
}

/// Runs `f` over the bytes of the sealed `memfd`, `len` of them (mapped
/// read-only, unmapped after).
///
/// # Errors
/// When it cannot be mapped.
pub(crate) fn with_bytes<R>(memfd: &File, len: u64, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if len == 0 {
        return Ok(f(&[]));
    }
    // SAFETY: a fresh read-only shared mapping of a file this function does
    // not change; the memfd is sealed, so no one can change it while it is
    // mapped. The mapping is removed below and never escapes `f`.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            memfd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `base` maps `len` readable bytes until the munmap below.
    let result = f(unsafe { std::slice::from_raw_parts(base.cast::<u8>(), len) });
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(base, len) };
    Ok(result)
}

fn create() -> io::Result<File> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // Kernels since 6.3 want executable memfds asked for (MFD_EXEC); older
    // ones do not know the flag and make every memfd executable.
    for extra in [libc::MFD_EXEC, 0] {
        // SAFETY: a NUL-terminated name and flags; the result is a new fd.
        let fd = unsafe { libc::memfd_create(NAME.as_ptr(), flags | extra) };
        if fd >= 0 {
            // SAFETY: a fresh descriptor nobody else owns.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

/// Copies `len` bytes of `from` at `offset` into `to`, in the kernel where
/// it can.
fn fill(from: &File, offset: u64, len: u64, to: &File) -> io::Result<()> {
    let mut at = offset as libc::loff_t;
    let mut left = len;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: two open descriptors, an offset owned here, no output
        // offset (the memfd's own position advances).
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut at,
                to.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
                0,
            )
        };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n > 0 => left -= n as u64,
            _ => {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
                        fill_by_reading(from, at as u64, left, to)
                    }
                    Some(libc::EINTR) => continue,
                    _ => Err(err),
                };
            }
        }
    }
    Ok(())
}

fn fill_by_reading(from: &File, offset: u64, len: u64, mut to: &File) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = offset;
    let end = offset + len;
    while at < end {
        let want = ((end - at) as usize).min(buf.len());
        let n = from.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        to.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_copy_holds_the_range_and_can_never_change() {
        let mut entry = tempfile();
        entry.write_all(b"headerPAYLOAD").unwrap();
        let memfd = copy(&entry, 6, 7).unwrap();
        assert_eq!(with_bytes(&memfd, 7, <[u8]>::to_vec).unwrap(), b"PAYLOAD");
        // Sealed: no write, no truncation, no growth, no new seals.
        assert!((&memfd).write_all(b"x").is_err());
        assert!(memfd.set_len(3).is_err());
        assert!(memfd.set_len(100).is_err());
        // SAFETY: fcntl with an int argument on an open descriptor.
        let unseal = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, 0) };
        assert_eq!(unseal, -1);
        // A range past the end of the entry is refused.
        assert!(copy(&entry, 6, 8).is_err());
    }

    fn tempfile() -> File {
        create().unwrap()
    }
}
