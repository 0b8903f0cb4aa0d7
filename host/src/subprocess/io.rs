//! File-descriptor plumbing for talking to a child: pipes, non-blocking
//! reads and writes, and `poll(2)` with a deadline.
//!
//! Everything runs on the calling thread; nothing here starts a thread
//! (a thread holding a lock when the host forks would deadlock the child).

use crate::errno::{BridgeError, BridgeResult, Errno};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes moved per `read`/`write` call.
pub(crate) const CHUNK: usize = 1 << 20;

pub(crate) use crate::timeout::Wait as Deadline;

/// A new pipe `(read end, write end)`, both close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors we own.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Bigger pipes mean fewer wake-ups for large outputs; the kernel's
    // limit may refuse, which only costs speed.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
    Ok((r, w))
}

/// Sets or clears `O_NONBLOCK` (shared with whoever else holds the open
/// file description, so clear it before giving a pipe to a child).
pub(crate) fn set_nonblocking(fd: &OwnedFd, on: bool) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if new != flags && unsafe { libc::fcntl(raw, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `poll(2)` until something is ready or the deadline passes; returns the
/// number of ready descriptors (`0` on timeout). Retries on `EINTR`.
pub(crate) fn poll(fds: &mut [libc::pollfd], deadline: Deadline) -> BridgeResult<usize> {
    loop {
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                deadline.poll_millis(),
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(BridgeError::io("poll", err));
        }
    }
}

/// Waits until `fd` is ready for `events`; `false` when the deadline passed.
pub(crate) fn wait_ready(
    fd: &OwnedFd,
    events: libc::c_short,
    deadline: Deadline,
) -> BridgeResult<bool> {
    let mut fds = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }];
    Ok(poll(&mut fds, deadline)? > 0)
}

/// What one non-blocking read gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// This many bytes were appended.
    Data(usize),
    /// Nothing available now.
    WouldBlock,
    /// End of file: every writer has closed.
    Eof,
}

/// Appends at most `max` bytes read from `fd` to `buf`.
pub(crate) fn read_some(fd: &OwnedFd, buf: &mut Vec<u8>, max: usize) -> io::Result<Read> {
    let want = max.min(CHUNK);
    buf.reserve(want);
    loop {
        let spare = buf.spare_capacity_mut();
        let want = want.min(spare.len());
        // SAFETY: reads at most `want` bytes into the vector's spare capacity.
        let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want) };
        if n > 0 {
            // SAFETY: the kernel initialised `n` bytes after the old length.
            unsafe { buf.set_len(buf.len() + n as usize) };
            return Ok(Read::Data(n as usize));
        }
        if n == 0 {
            return Ok(if want == 0 {
                Read::WouldBlock
            } else {
                Read::Eof
            });
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(Read::WouldBlock),
            _ => return Err(err),
        }
    }
}

/// Writes what it can of `data` without blocking; returns the count
/// (`0` when the pipe is full).
pub(crate) fn write_some(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    let len = data.len().min(CHUNK);
    loop {
        // SAFETY: writes from a valid slice of at least `len` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), len) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(err),
        }
    }
}

/// The error for an I/O failure on one of a child's pipes.
pub(crate) fn pipe_error(what: &str, err: io::Error) -> BridgeError {
    if err.raw_os_error() == Some(libc::EPIPE) {
        return BridgeError::new(Errno::Pipe, format!("{what}: the child closed its end"));
    }
    BridgeError::io(what, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(Deadline::from_micros(-1).unwrap().poll_millis(), -1);
        assert_eq!(Deadline::from_micros(-2).unwrap_err().errno, Errno::Inval);
        assert_eq!(
            Deadline::from_micros(i64::MIN).unwrap_err().errno,
            Errno::Inval
        );
        let huge = Deadline::from_micros(i64::MAX).unwrap();
        assert!(!huge.expired());
        assert!(huge.poll_millis() == -1 || huge.poll_millis() == i32::MAX);
        let zero = Deadline::from_micros(0).unwrap();
        assert!(zero.expired());
        assert_eq!(zero.poll_millis(), 0);
        // Rounded up, so a short wait does not become a busy loop.
        let short = Deadline::from_micros(1500).unwrap().poll_millis();
        assert!((1..=2).contains(&short), "{short}");
    }

    #[test]
    fn pipe_round_trip() {
        let (r, w) = pipe().unwrap();
        set_nonblocking(&r, true).unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_some(&r, &mut buf, 10).unwrap(), Read::WouldBlock);
        assert_eq!(write_some(&w, b"hello").unwrap(), 5);
        assert!(wait_ready(&r, libc::POLLIN, Deadline::Forever).unwrap());
        assert_eq!(read_some(&r, &mut buf, 3).unwrap(), Read::Data(3));
        assert_eq!(buf, b"hel");
        drop(w);
        assert_eq!(read_some(&r, &mut buf, 10).unwrap(), Read::Data(2));
        assert_eq!(read_some(&r, &mut buf, 10).unwrap(), Read::Eof);
        assert_eq!(buf, b"hello");
    }
}
