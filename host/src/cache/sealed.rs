//! A cache entry's serialized module, copied into a sealed memfd: checked
//! as it is copied, unchangeable once checked, and file-backed.
//!
//! * **Checked as it is copied.** The payload is read from the entry into
//!   private buffers, a piece at a time; each piece is hashed (see
//!   [`mac::payload_digest`]) and written into a new memfd from the same
//!   buffer, so the memfd holds exactly the bytes that were hashed. The
//!   memfd is then sealed against every write (`F_SEAL_WRITE`,
//!   `F_SEAL_SHRINK`, `F_SEAL_GROW`, then `F_SEAL_SEAL`) and its digest
//!   checked against the entry's MAC; wasmtime maps that same memfd. Nothing
//!   can change between the check and the load: not the entry on disk (it
//!   is no longer read), not the memfd (no one can write it, procbridge
//!   included).
//! * **In parallel.** The payload's digest is a list of digests of
//!   [`mac::PIECE`]-sized pieces, so the pieces are copied and hashed by as
//!   many threads as there are CPUs (at most [`MAX_THREADS`]): the copy is
//!   what a cached start-up of a large module (CPython's 25 MB of compiled
//!   code) mostly waits for.
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

use super::mac;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;

/// The name the memfd shows in `/proc/PID/maps`.
const NAME: &CStr = c"procbridge-module";

/// At most this many threads copy one payload.
const MAX_THREADS: usize = 4;

/// The digests of the pieces one thread copied, by piece.
type Digests = Vec<(usize, [u8; 32])>;

/// Bytes read and written at a time.
const BUFFER: usize = 64 << 10;

/// A new memfd holding bytes `offset..offset + len` of `entry`, sealed,
/// and the digest of those bytes ([`mac::payload_digest`]).
///
/// # Errors
/// When memfds cannot be made, sealed or made executable here, or `entry`
/// is shorter than it said.
pub(crate) fn copy(entry: &File, offset: u64, len: u64) -> io::Result<(File, [u8; 32])> {
    let len_usize =
        usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let memfd = create()?;
    memfd.set_len(len)?;
    let pieces = len_usize.div_ceil(mac::PIECE);
    // (Asking for the CPUs reads the cgroup's files: only worth it when
    // there is more than one piece.)
    let threads = match pieces {
        0 | 1 => 1,
        _ => std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_THREADS)
            .min(pieces),
    };
    // Thread t copies pieces t, t + threads, t + 2 * threads, ...
    let lanes: Vec<Vec<usize>> = (0..threads)
        .map(|t| (t..pieces).step_by(threads).collect())
        .collect();
    let copy_lane = |lane: &[usize]| -> io::Result<Digests> {
        let mut buffer = vec![0u8; BUFFER.min(len_usize)];
        lane.iter()
            .map(|&index| {
                let start = index * mac::PIECE;
                let end = (start + mac::PIECE).min(len_usize);
                let digest = copy_piece(entry, offset, &memfd, start..end, &mut buffer)?;
                Ok((index, digest))
            })
            .collect()
    };
    let copy_lane = &copy_lane;
    let done: Vec<io::Result<Digests>> = std::thread::scope(|scope| {
        let mut helpers = Vec::new();
        let mut here: Vec<&[usize]> = lanes.iter().take(1).map(Vec::as_slice).collect();
        for lane in lanes.iter().skip(1) {
            let spawned = std::thread::Builder::new()
                .name("procbridge-load".into())
                .spawn_scoped(scope, move || copy_lane(lane));
            match spawned {
                Ok(helper) => helpers.push(helper),
                // No thread to be had (a thread limit): this one copies it.
                Err(_) => here.push(lane),
            }
        }
        let mut done: Vec<_> = here.into_iter().map(copy_lane).collect();
        done.extend(helpers.into_iter().map(|helper| {
            helper
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a copy thread panicked")))
        }));
        done
    });
    let mut digests = vec![[0u8; 32]; pieces];
    for lane in done {
        for (index, digest) in lane? {
            digests[index] = digest;
        }
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor owned here, with an int argument.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((memfd, mac::digest_of_pieces(len, &digests)))
}

/// Copies bytes `range` of the payload (at `offset` in `entry`) to the same
/// place in `memfd` through `buffer`, returning their digest.
fn copy_piece(
    entry: &File,
    offset: u64,
    memfd: &File,
    range: std::ops::Range<usize>,
    buffer: &mut [u8],
) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    let mut at = range.start;
    while at < range.end {
        let want = (range.end - at).min(buffer.len());
        let chunk = &mut buffer[..want];
        entry.read_exact_at(chunk, offset + at as u64)?;
        hasher.update(chunk);
        memfd.write_all_at(chunk, at as u64)?;
        at += want;
    }
    Ok(hasher.finalize().into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn the_copy_holds_the_range_and_its_digest_and_can_never_change() {
        let mut entry = create().unwrap();
        let payload: Vec<u8> = (0..(2 * mac::PIECE + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        entry.write_all(b"header").unwrap();
        entry.write_all(&payload).unwrap();
        let (mut memfd, digest) = copy(&entry, 6, payload.len() as u64).unwrap();
        assert_eq!(digest, mac::payload_digest(&payload));
        let mut copied = Vec::new();
        memfd.rewind().unwrap();
        memfd.read_to_end(&mut copied).unwrap();
        assert!(copied == payload);
        // Sealed: no write, no truncation, no growth, no new seals.
        assert!(memfd.write_all_at(b"x", 0).is_err());
        assert!(memfd.set_len(3).is_err());
        assert!(memfd.set_len(1 << 30).is_err());
        // SAFETY: fcntl with an int argument on an open descriptor.
        let unseal = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, 0) };
        assert_eq!(unseal, -1);
    }

    #[test]
    fn small_and_empty_payloads_and_short_entries() {
        let mut entry = create().unwrap();
        entry.write_all(b"headerPAYLOAD").unwrap();
        let (_, digest) = copy(&entry, 6, 7).unwrap();
        assert_eq!(digest, mac::payload_digest(b"PAYLOAD"));
        let (_, digest) = copy(&entry, 13, 0).unwrap();
        assert_eq!(digest, mac::payload_digest(b""));
        // A range past the end of the entry is refused.
        assert!(copy(&entry, 6, 8).is_err());
    }
}
