//! [`pipe`]: two [`Connection`]s over a Unix socket pair, carrying messages
//! as length-prefixed frames.
//!
//! Every send and read is non-blocking (`MSG_DONTWAIT`); waits are
//! `poll(2)` with the caller's deadline, so a `recv` can time out and a
//! signal can end the process while it waits. One wait is a blocking read
//! instead: a `recv` without a deadline for a slow message, which saves a
//! system call per message (the sockets themselves are blocking, so that
//! this one read may block). End-of-file is the kernel's: when every copy of the
//! other end is closed (dropped, or its process died), `recv` returns
//! `EPIPE` and `send` returns `EPIPE`. As in Python, a process that holds
//! both ends (the one that made the pipe, or a fork child of it) must close
//! the end it does not use for the other side to see end-of-file.

use super::Wait;
use crate::errno::{BridgeError, BridgeResult, Errno};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The largest message a connection sends or accepts (16 MiB).
pub const MAX_PIPE_MESSAGE: usize = 16 << 20;

/// One end of a pipe made by [`pipe`].
#[derive(Debug)]
pub struct Connection {
    fd: OwnedFd,
    readable: bool,
    writable: bool,
    /// A frame received in part (a `recv` timed out half-way).
    partial: Frame,
    /// Bytes read from the socket, not yet part of a frame.
    buffered: ReadBuffer,
    /// Whether `recv` looks for a message before sleeping ([`Spin`]).
    spin: Spin,
}

/// When spinning pays: a reply that comes within microseconds (ping-pong)
/// is caught without the cost of a wake-up, but a reader of slow messages
/// would burn the whole spin on every one. So a spin that found nothing
/// turns spinning off, and a sleep that ended soon turns it back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spin {
    On,
    Off,
}

impl Spin {
    /// After a spin: whether it found a message.
    fn after_spin(found: bool) -> Spin {
        if found {
            Spin::On
        } else {
            Spin::Off
        }
    }

    /// After sleeping `slept` for a message: a message that came within a
    /// few spins' time would have been caught by spinning.
    fn after_sleep(self, slept: std::time::Duration) -> Spin {
        if slept <= 4 * SPIN_BEFORE_SLEEP {
            Spin::On
        } else {
            self
        }
    }
}

/// Bytes read from the socket ahead of need.
/// How long `recv` looks for a message before sleeping in `poll(2)`.
const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

const READ_BUFFER: usize = 16 << 10;

#[derive(Debug, Default)]
struct ReadBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads what the socket has into the (empty) buffer; with `block`,
    /// waits for something to read.
    fn fill_from(&mut self, fd: &OwnedFd, block: bool) -> io::Result<usize> {
        if self.bytes.is_empty() {
            self.bytes = vec![0; READ_BUFFER];
        }
        let n = read_fd(fd, &mut self.bytes, block)?;
        self.start = 0;
        self.end = n;
        Ok(n)
    }

    /// Moves up to `out.len()` buffered bytes to `out`; how many.
    fn take_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.bytes[self.start..self.start + n]);
        self.start += n;
        n
    }
}

/// A frame being received: the length prefix, then the body.
#[derive(Debug, Default)]
struct Frame {
    prefix: [u8; 4],
    prefix_got: usize,
    body: Vec<u8>,
    body_got: usize,
}

impl Frame {
    fn is_empty(&self) -> bool {
        self.prefix_got == 0
    }

    fn is_complete(&self) -> bool {
        self.prefix_got == 4 && self.body_got == self.body.len()
    }
}

/// Makes a pipe (Python's `multiprocessing.Pipe(duplex)`): with `duplex`
/// both ends send and receive; without, the first end only receives and
/// the second only sends.
///
/// ```
/// use procbridge::channel::{pipe, Wait};
///
/// let (mut a, mut b) = pipe(true)?;
/// a.send(b"ping")?;
/// assert_eq!(b.recv(Wait::Forever)?, b"ping");
/// drop(a);
/// assert_eq!(b.recv(Wait::Forever).unwrap_err().errno, procbridge::Errno::Pipe);
/// # Ok::<(), procbridge::BridgeError>(())
/// ```
///
/// # Errors
/// `EMFILE` or `EIO` when the sockets cannot be made.
pub fn pipe(duplex: bool) -> BridgeResult<(Connection, Connection)> {
    let (a, b) = socketpair(false, "make pipe")?;
    let end = |fd, readable, writable| Connection {
        fd,
        readable,
        writable,
        partial: Frame::default(),
        buffered: ReadBuffer::default(),
        spin: Spin::On,
    };
    Ok((end(a, true, duplex), end(b, duplex, true)))
}

fn peer_gone() -> BridgeError {
    BridgeError::new(Errno::Pipe, "the other end of the pipe is closed")
}

impl Connection {
    /// Sends one message, waiting for room in the socket as long as needed.
    ///
    /// # Errors
    /// `EBADF` on a receive-only end; `E2BIG` over [`MAX_PIPE_MESSAGE`];
    /// `EPIPE` when the other end is closed.
    pub fn send(&mut self, msg: &[u8]) -> BridgeResult<()> {
        if !self.writable {
            return Err(BridgeError::new(
                Errno::BadF,
                "this connection is receive-only",
            ));
        }
        if msg.len() > MAX_PIPE_MESSAGE {
            return Err(BridgeError::new(
                Errno::TooBig,
                format!(
                    "a message of {} bytes is over the limit of {MAX_PIPE_MESSAGE}",
                    msg.len()
                ),
            ));
        }
        let prefix = (msg.len() as u32).to_le_bytes();
        let total = 4 + msg.len();
        let mut sent = 0;
        while sent < total {
            let (a, b) = if sent < 4 {
                (&prefix[sent..], msg)
            } else {
                (&msg[sent - 4..], &[][..])
            };
            match self.send_two(a, b) {
                Ok(n) => sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_for(libc::POLLOUT, None)?;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(send_error(err)),
            }
        }
        Ok(())
    }

    fn send_two(&self, a: &[u8], b: &[u8]) -> io::Result<usize> {
        let mut iov = [
            libc::iovec {
                iov_base: a.as_ptr() as *mut libc::c_void,
                iov_len: a.len(),
            },
            libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            },
        ];
        // SAFETY: a zeroed msghdr is valid; it points at `iov`, whose
        // buffers are borrowed for the call and only read.
        let n = unsafe {
            let mut hdr: libc::msghdr = std::mem::zeroed();
            hdr.msg_iov = iov.as_mut_ptr();
            hdr.msg_iovlen = if b.is_empty() { 1 } else { 2 };
            libc::sendmsg(
                self.fd.as_raw_fd(),
                &hdr,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Receives one message, waiting as `wait` says.
    ///
    /// # Errors
    /// `EBADF` on a send-only end; `EAGAIN` or `ETIMEDOUT` when no whole
    /// message came in time (a part that came is kept for the next call);
    /// `EPIPE` at end-of-file; `EIO` for a frame over [`MAX_PIPE_MESSAGE`].
    pub fn recv(&mut self, wait: Wait) -> BridgeResult<Vec<u8>> {
        if !self.readable {
            return Err(BridgeError::new(
                Errno::BadF,
                "this connection is send-only",
            ));
        }
        if self.spin == Spin::Off && self.partial.is_empty() && self.buffered.is_empty() {
            self.sleep_first(wait)?;
        }
        let mut spun = false;
        loop {
            if self.partial.is_complete() {
                let frame = std::mem::take(&mut self.partial);
                return Ok(frame.body);
            }
            match self.read_some() {
                Ok(true) => {}
                Ok(false) => {
                    let left = wait.remaining("recv on an empty pipe")?;
                    // A reply usually comes within microseconds: look for it
                    // briefly before sleeping in poll(2), whose wake-up from
                    // another core costs far more than the wait itself.
                    if !spun && self.spin == Spin::On {
                        spun = true;
                        let found = self.spin_until_readable(SPIN_BEFORE_SLEEP);
                        self.spin = Spin::after_spin(found);
                        if found {
                            continue;
                        }
                    }
                    let slept = std::time::Instant::now();
                    self.wait_for(libc::POLLIN, left)?;
                    self.spin = self.spin.after_sleep(slept.elapsed());
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits in poll(2) for the socket to become readable, within `wait`
    /// (not at all when `wait` allows none): for slow messages (spinning
    /// found nothing of late), when the socket is most likely empty, so that
    /// it is not read in vain first. Running out of time is left to the read
    /// that follows.
    fn sleep_first(&mut self, wait: Wait) -> BridgeResult<()> {
        let Ok(left) = wait.remaining("recv on an empty pipe") else {
            return Ok(());
        };
        if left.is_some_and(|left| left.is_zero()) {
            return Ok(());
        }
        let slept = std::time::Instant::now();
        if left.is_none() {
            // No deadline: the read itself waits. What it gets (an error,
            // end-of-file, nothing after a signal) the read after it gets
            // again, and says.
            let _ = self.buffered.fill_from(&self.fd, true);
            self.spin = self.spin.after_sleep(slept.elapsed());
            return Ok(());
        }
        match self.wait_for(libc::POLLIN, left) {
            Ok(()) => {}
            Err(err) if err.errno == Errno::TimedOut => {}
            Err(err) => return Err(err),
        }
        self.spin = self.spin.after_sleep(slept.elapsed());
        Ok(())
    }

    /// Whether a message (or end-of-file) can be received without waiting
    /// longer than `wait` (Python's `poll(timeout)`).
    ///
    /// # Errors
    /// `EBADF` on a send-only end.
    pub fn poll(&mut self, wait: Wait) -> BridgeResult<bool> {
        if !self.readable {
            return Err(BridgeError::new(
                Errno::BadF,
                "this connection is send-only",
            ));
        }
        if !self.buffered.is_empty() {
            self.consume_buffered()?;
        }
        if self.partial.is_complete() || !self.buffered.is_empty() {
            return Ok(true);
        }
        let left = match wait.remaining("poll") {
            Ok(left) => left,
            Err(_) => Some(std::time::Duration::ZERO),
        };
        match self.wait_for(libc::POLLIN, left) {
            Ok(()) => Ok(true),
            Err(err) if err.errno == Errno::TimedOut => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Moves bytes towards the current frame: buffered ones first, else
    /// what the socket has. `Ok(true)` if progress was made, `Ok(false)` if
    /// the socket had nothing.
    fn read_some(&mut self) -> BridgeResult<bool> {
        if !self.buffered.is_empty() {
            self.consume_buffered()?;
            return Ok(true);
        }
        let frame = &mut self.partial;
        // A large body is read straight into place; everything else through
        // the buffer, which takes several small messages in one system call.
        let direct = frame.prefix_got == 4 && frame.body.len() - frame.body_got >= READ_BUFFER;
        let result = if direct {
            read_fd(&self.fd, &mut frame.body[frame.body_got..], false)
        } else {
            self.buffered.fill_from(&self.fd, false)
        };
        match result {
            Ok(0) => Err(if frame.is_empty() {
                peer_gone()
            } else {
                BridgeError::new(
                    Errno::Pipe,
                    "the other end of the pipe closed in the middle of a message",
                )
            }),
            Ok(n) if direct => {
                frame.body_got += n;
                Ok(true)
            }
            Ok(_) => {
                self.consume_buffered()?;
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::ECONNRESET) => Err(peer_gone()),
            Err(err) => Err(BridgeError::io("recv", err)),
        }
    }

    /// Moves buffered bytes into the current frame, up to its end.
    fn consume_buffered(&mut self) -> BridgeResult<()> {
        let frame = &mut self.partial;
        if frame.prefix_got < 4 {
            frame.prefix_got += self
                .buffered
                .take_into(&mut frame.prefix[frame.prefix_got..]);
            if frame.prefix_got < 4 {
                return Ok(());
            }
            let len = u32::from_le_bytes(frame.prefix) as usize;
            if len > MAX_PIPE_MESSAGE {
                *frame = Frame::default();
                return Err(BridgeError::new(
                    Errno::Io,
                    format!("received a frame of {len} bytes, over the limit"),
                ));
            }
            frame.body = vec![0; len];
        }
        frame.body_got += self.buffered.take_into(&mut frame.body[frame.body_got..]);
        Ok(())
    }

    /// Polls without sleeping for up to `limit`; whether the socket became
    /// readable.
    fn spin_until_readable(&self, limit: std::time::Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        while std::time::Instant::now() < until {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; a zero timeout never sleeps.
            if unsafe { libc::poll(&mut pfd, 1, 0) } > 0 {
                return true;
            }
            std::hint::spin_loop();
        }
        false
    }

    /// Waits until the socket is ready for `events`, at most `timeout`.
    /// `ETIMEDOUT` if it is not.
    fn wait_for(
        &self,
        events: libc::c_short,
        timeout: Option<std::time::Duration>,
    ) -> BridgeResult<()> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    // Round up so a short timeout still waits.
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc > 0 {
                return Ok(());
            }
            if rc == 0 {
                if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                    return Err(BridgeError::new(Errno::TimedOut, "pipe: timed out"));
                }
                continue;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(BridgeError::io("poll pipe", err));
            }
        }
    }
}

/// Reads what the socket has; with `block`, waits for something.
fn read_fd(fd: &OwnedFd, buf: &mut [u8], block: bool) -> io::Result<usize> {
    let flags = if block { 0 } else { libc::MSG_DONTWAIT };
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn send_error(err: io::Error) -> BridgeError {
    match err.raw_os_error() {
        Some(libc::EPIPE) | Some(libc::ECONNRESET) => peer_gone(),
        _ => BridgeError::io("send", err),
    }
}

/// A connected pair of Unix stream sockets, close-on-exec (and
/// non-blocking if asked): the transport of pipes and of pool workers.
///
/// # Errors
/// `EMFILE` when out of descriptors, else `EIO`, naming `what`.
pub(crate) fn socketpair(nonblocking: bool, what: &str) -> BridgeResult<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let flags = if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(BridgeError::no_descriptor(what, io::Error::last_os_error()));
    }
    // SAFETY: socketpair succeeded, so both are open descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_reader_of_slow_messages_stops_spinning_and_a_quick_reply_starts_it_again() {
        assert_eq!(Spin::after_spin(true), Spin::On);
        assert_eq!(Spin::after_spin(false), Spin::Off);
        assert_eq!(Spin::Off.after_sleep(Duration::from_micros(80)), Spin::On);
        assert_eq!(Spin::Off.after_sleep(Duration::from_millis(2)), Spin::Off);
        assert_eq!(Spin::On.after_sleep(Duration::from_millis(2)), Spin::On);
        // Messages 5 ms apart: the first wait spins in vain, the rest sleep.
        let (mut reader, mut writer) = pipe(false).unwrap();
        let sender = std::thread::spawn(move || {
            for i in 0..3u8 {
                std::thread::sleep(Duration::from_millis(5));
                writer.send(&[i]).unwrap();
            }
        });
        for i in 0..3u8 {
            assert_eq!(reader.recv(Wait::Forever).unwrap(), [i]);
            assert_eq!(reader.spin, Spin::Off, "message {i}");
        }
        sender.join().unwrap();
    }

    #[test]
    fn a_slow_reader_sleeps_first_yet_keeps_every_wait_s_meaning() {
        let (mut reader, mut writer) = pipe(false).unwrap();
        reader.spin = Spin::Off;
        // Nothing there: at once without waiting, after the time with one.
        assert_eq!(reader.recv(Wait::Never).unwrap_err().errno, Errno::Again);
        let started = std::time::Instant::now();
        let until = Wait::Until(started + Duration::from_millis(30));
        assert_eq!(reader.recv(until).unwrap_err().errno, Errno::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(30));
        // A message waiting, one that comes while it sleeps, and the end.
        writer.send(b"there").unwrap();
        reader.spin = Spin::Off;
        assert_eq!(reader.recv(Wait::Never).unwrap(), b"there");
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            writer.send(b"later").unwrap();
            writer
        });
        reader.spin = Spin::Off;
        assert_eq!(reader.recv(Wait::Forever).unwrap(), b"later");
        let mut writer = sender.join().unwrap();
        // A message larger than what one read takes, while it sleeps in
        // that read (no deadline: the read itself waits).
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let sender = std::thread::spawn({
            let big = big.clone();
            move || {
                std::thread::sleep(Duration::from_millis(5));
                writer.send(&big).unwrap();
                writer
            }
        });
        reader.spin = Spin::Off;
        assert_eq!(reader.recv(Wait::Forever).unwrap(), big);
        sender.join().unwrap();
        reader.spin = Spin::Off;
        assert_eq!(reader.recv(Wait::Forever).unwrap_err().errno, Errno::Pipe);
    }

    #[test]
    fn duplex_both_ways_and_order() {
        let (mut a, mut b) = pipe(true).unwrap();
        for i in 0..50u32 {
            a.send(&i.to_le_bytes()).unwrap();
        }
        b.send(b"").unwrap();
        for i in 0..50u32 {
            assert_eq!(b.recv(Wait::Never).unwrap(), i.to_le_bytes());
        }
        assert_eq!(a.recv(Wait::Forever).unwrap(), b"");
    }

    #[test]
    fn one_way_pipe_refuses_the_wrong_direction() {
        let (mut r, mut w) = pipe(false).unwrap();
        assert_eq!(r.send(b"x").unwrap_err().errno, Errno::BadF);
        assert_eq!(w.recv(Wait::Never).unwrap_err().errno, Errno::BadF);
        assert_eq!(w.poll(Wait::Never).unwrap_err().errno, Errno::BadF);
        w.send(b"x").unwrap();
        assert_eq!(r.recv(Wait::Forever).unwrap(), b"x");
    }

    #[test]
    fn timeouts_poll_and_eof() {
        let _serial = crate::channel::cross_process_tests::FORK_LOCK.lock();
        let (mut a, mut b) = pipe(true).unwrap();
        assert_eq!(b.recv(Wait::Never).unwrap_err().errno, Errno::Again);
        let wait = Wait::timeout(Some(Duration::from_millis(20)));
        assert_eq!(b.recv(wait).unwrap_err().errno, Errno::TimedOut);
        assert!(!b.poll(Wait::Never).unwrap());
        a.send(b"hi").unwrap();
        assert!(b
            .poll(Wait::timeout(Some(Duration::from_millis(20))))
            .unwrap());
        assert_eq!(b.recv(Wait::Never).unwrap(), b"hi");
        drop(a);
        assert!(b.poll(Wait::Never).unwrap(), "end-of-file is readable");
        assert_eq!(b.recv(Wait::Forever).unwrap_err().errno, Errno::Pipe);
        assert_eq!(b.send(b"x").unwrap_err().errno, Errno::Pipe);
    }

    #[test]
    fn large_messages_cross_a_full_socket() {
        let _serial = crate::channel::cross_process_tests::FORK_LOCK.lock();
        let (mut a, mut b) = pipe(true).unwrap();
        let big: Vec<u8> = (0..(3 << 20)).map(|i| i as u8).collect();
        let sender = std::thread::spawn(move || {
            a.send(&big).unwrap();
            a
        });
        let got = b.recv(Wait::Forever).unwrap();
        assert_eq!(got.len(), 3 << 20);
        assert!(got.iter().enumerate().all(|(i, &x)| x == i as u8));
        drop(sender.join().unwrap());
        assert_eq!(
            b.send(&vec![0; MAX_PIPE_MESSAGE + 1]).unwrap_err().errno,
            Errno::TooBig
        );
    }

    #[test]
    fn a_partial_frame_survives_a_timeout() {
        let (a, mut b) = pipe(true).unwrap();
        // Write half a frame by hand.
        let raw = [5u8, 0, 0, 0, b'h', b'e'];
        // SAFETY: a valid fd and buffer.
        let n = unsafe { libc::write(a.fd.as_raw_fd(), raw.as_ptr().cast(), raw.len()) };
        assert_eq!(n, 6);
        assert_eq!(b.recv(Wait::Never).unwrap_err().errno, Errno::Again);
        // SAFETY: as above.
        unsafe { libc::write(a.fd.as_raw_fd(), b"llo".as_ptr().cast(), 3) };
        assert_eq!(b.recv(Wait::Never).unwrap(), b"hello");
        // A prefix over the limit is refused without allocating it.
        let huge = (MAX_PIPE_MESSAGE as u32 + 1).to_le_bytes();
        // SAFETY: as above.
        unsafe { libc::write(a.fd.as_raw_fd(), huge.as_ptr().cast(), 4) };
        assert_eq!(b.recv(Wait::Never).unwrap_err().errno, Errno::Io);
    }
}
