//! A command's inherited stderr, passed through to the host's own and read
//! on the way for denials ([`super::hints`]).
//!
//! With hints on ([`crate::GuestBuilder::denial_hints`]), a command whose
//! stderr the guest leaves inherited writes into a pipe instead. One thread
//! per guest process (started with its first such command) waits on every
//! such pipe with `epoll`, copies each byte to the host's stderr as it
//! arrives and parses each line. When the guest learns that the command
//! ended (`wait`, `poll`), [`StderrRelay::finish`] waits a moment for the
//! copy to reach the end of the pipe, so the command's output comes before
//! anything the guest prints next, and hands over what it found.
//!
//! Starting a command costs one pipe and one `epoll_ctl`, no thread. The
//! thread takes no lock a guest's thread could need after a `fork` (it
//! writes with `write(2)`; the parse state it locks is per command, and a
//! fork child forgets its parent's commands). When the host's stderr is
//! gone (`procbridge run job.wasm 2>&1 | head -1`), the pipe is closed, so
//! the command's next write fails as it would have (`EPIPE`, `SIGPIPE`).
//! What a command writes after the guest process that started it has ended
//! is lost the same way.

use super::hints::{self, Denial};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long [`StderrRelay::finish`] waits for the pipe's end, at most (a
/// command's background children may keep it open).
pub(crate) const FINISH_WAIT: Duration = Duration::from_millis(250);
/// The most denials one command's stderr yields.
const MAX_DENIALS: usize = 16;
/// The relay thread's stack.
const STACK: usize = 128 * 1024;

/// One command's pipe, shared by its [`StderrRelay`] and the relay thread.
#[derive(Debug)]
struct Watch {
    /// The reading end; closed by the thread when the host's stderr is
    /// gone, so the command learns it as it would have (`EPIPE`).
    reader: Mutex<Option<OwnedFd>>,
    /// Its number, for `epoll` (registered while `reader` is open).
    fd: RawFd,
    lines: Mutex<Lines>,
    /// The copy reached the end of the pipe.
    done: AtomicBool,
    /// The guest's thread waiting in [`StderrRelay::finish`].
    waiter: Mutex<Option<Thread>>,
}

/// A command's stderr relay; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct StderrRelay {
    watch: Arc<Watch>,
    finished: bool,
}

/// The pipe of a relay not started yet: its writing end goes to the
/// command, then [`Pending::start`] starts the copy.
#[derive(Debug)]
pub(crate) struct Pending {
    reader: OwnedFd,
    relayer: Arc<Relayer>,
}

impl Pending {
    /// A pipe for a command's stderr, and this process's relay thread:
    /// the pending relay and the command's end. Everything that can fail
    /// happens here, before the command starts.
    pub(crate) fn new() -> io::Result<(Pending, OwnedFd)> {
        let relayer = relayer()?;
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        rustix::io::ioctl_fionbio(&reader, true)?;
        Ok((Pending { reader, relayer }, writer))
    }

    /// Starts copying to the host's stderr. Should the pipe not be
    /// watched (`epoll` out of memory), it is left open, unread: the
    /// command blocks once the pipe is full, as with a reader that stopped,
    /// rather than dying of `SIGPIPE`.
    pub(crate) fn start(self) -> Option<StderrRelay> {
        let fd = self.reader.as_raw_fd();
        let watch = Arc::new(Watch {
            reader: Mutex::new(Some(self.reader)),
            fd,
            lines: Mutex::new(Lines::default()),
            done: AtomicBool::new(false),
            waiter: Mutex::new(None),
        });
        if self.relayer.add(watch.clone()).is_err() {
            std::mem::forget(watch);
            return None;
        }
        Some(StderrRelay {
            watch,
            finished: false,
        })
    }
}

impl StderrRelay {
    /// Waits (`wait` at most) for the copy to reach the end of the pipe
    /// and returns the denials found. Nothing if it has not ended by then
    /// (a later call may still have them) or they were handed over before.
    pub(crate) fn finish(&mut self, wait: Duration) -> Vec<Denial> {
        if self.finished {
            return Vec::new();
        }
        let watch = &self.watch;
        let deadline = Instant::now() + wait;
        if !watch.done.load(Ordering::SeqCst) {
            *lock(&watch.waiter) = Some(std::thread::current());
            while !watch.done.load(Ordering::SeqCst) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    lock(&watch.waiter).take();
                    return Vec::new();
                }
                std::thread::park_timeout(left);
            }
            lock(&watch.waiter).take();
        }
        self.finished = true;
        std::mem::take(&mut lock(&watch.lines).denials)
    }

    /// In a fork child, for a relay of the parent: closes this process's
    /// copy of the pipe (no thread reads it here). The relay must then be
    /// forgotten, not dropped.
    pub(crate) fn close_in_fork_child(&self) {
        // Held by the parent's thread at the fork: left open (rare, and
        // only a descriptor).
        if let Ok(reader) = self.watch.reader.try_lock() {
            if let Some(fd) = &*reader {
                // SAFETY: open at the fork (the parent's thread closes it
                // only under this lock), and unused here: the thread that
                // reads it is the parent's.
                unsafe { libc::close(fd.as_raw_fd()) };
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's relay thread and its `epoll` instance.
#[derive(Debug)]
struct Relayer {
    epoll: OwnedFd,
    pid: u32,
}

/// The relayer of this process, started by its first relayed command.
static RELAYER: Mutex<Option<Arc<Relayer>>> = Mutex::new(None);

fn relayer() -> io::Result<Arc<Relayer>> {
    let pid = std::process::id();
    let mut slot = lock(&RELAYER);
    forget_parents(&mut slot, pid);
    if let Some(relayer) = &*slot {
        return Ok(relayer.clone());
    }
    // SAFETY: epoll_create1 returns a fresh descriptor or -1.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor this function owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    let relayer = Arc::new(Relayer { epoll, pid });
    let thread_relayer = relayer.clone();
    std::thread::Builder::new()
        .name("procbridge-stderr".into())
        .stack_size(STACK)
        .spawn(move || thread_relayer.serve())?;
    *slot = Some(relayer.clone());
    Ok(relayer)
}

/// In a fork child: closes this process's copy of the parent's epoll
/// instance (the parent's thread is not here); the rest is forgotten.
pub(crate) fn forget_parents_relayer() {
    if let Ok(mut slot) = RELAYER.try_lock() {
        forget_parents(&mut slot, std::process::id());
    }
}

fn forget_parents(slot: &mut Option<Arc<Relayer>>, pid: u32) {
    if slot.as_ref().is_some_and(|r| r.pid != pid) {
        let parents = slot.take().expect("checked");
        // SAFETY: the descriptor is open (the relayer holds it) and no
        // thread of this process uses it.
        unsafe { libc::close(parents.epoll.as_raw_fd()) };
        std::mem::forget(parents);
    }
}

impl Relayer {
    /// Has the thread watch `watch`'s pipe; the thread keeps a count of it
    /// until the pipe's end.
    fn add(&self, watch: Arc<Watch>) -> io::Result<()> {
        let fd = watch.fd;
        let data = Arc::into_raw(watch);
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLHUP) as u32,
            u64: data as u64,
        };
        // SAFETY: a valid epoll instance, descriptor and event.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
            < 0
        {
            let err = io::Error::last_os_error();
            // SAFETY: the count given away above, not registered.
            drop(unsafe { Arc::from_raw(data) });
            return Err(err);
        }
        Ok(())
    }

    /// The thread: copies every watched pipe until its end, forever.
    fn serve(&self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: a valid epoll instance and a buffer of 32 events.
            let n =
                unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 32, -1) };
            if n < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            for event in &events[..n as usize] {
                let data = event.u64 as *const Watch;
                // SAFETY: registered by `add`, which gave this thread a
                // count that is only taken back below, once removed.
                let watch = unsafe { &*data };
                if !self.copy_some(watch, &mut chunk) {
                    self.remove(watch.fd);
                    // Closed now: a command still writing learns that the
                    // host's stderr is gone.
                    lock(&watch.reader).take();
                    lock(&watch.lines).end();
                    watch.done.store(true, Ordering::SeqCst);
                    if let Some(waiter) = lock(&watch.waiter).take() {
                        waiter.unpark();
                    }
                    // SAFETY: the count `add` gave; the pipe is no longer
                    // watched, so no later event names it.
                    drop(unsafe { Arc::from_raw(data) });
                }
            }
        }
    }

    /// Copies what one pipe holds; `false` at its end, or once the host's
    /// stderr refuses it.
    fn copy_some(&self, watch: &Watch, chunk: &mut [u8]) -> bool {
        let read = match &*lock(&watch.reader) {
            Some(reader) => rustix::io::read(reader, &mut *chunk),
            None => return false,
        };
        match read {
            Ok(0) => false,
            Ok(n) => {
                lock(&watch.lines).feed(&chunk[..n]);
                write_stderr(&chunk[..n])
            }
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => true,
            Err(_) => false,
        }
    }

    fn remove(&self, fd: RawFd) {
        // SAFETY: a valid epoll instance; the event is ignored for DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }
}

/// Writes all of `bytes` to fd 2, waiting while it is full; `false` when
/// it is gone (a closed pipe, a closed descriptor).
fn write_stderr(mut bytes: &[u8]) -> bool {
    let fd = std::io::stderr().as_raw_fd();
    while !bytes.is_empty() {
        // SAFETY: write(2) from a live buffer to fd 2.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 {
            bytes = &bytes[n as usize..];
            continue;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: poll(2) on one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, 1000) };
            }
            _ => return false,
        }
    }
    true
}

/// Splits the copied bytes into lines and parses each.
#[derive(Debug, Default)]
struct Lines {
    line: Vec<u8>,
    /// The current line grew past [`hints::MAX_LINE`]: skipped to its end.
    overlong: bool,
    denials: Vec<Denial>,
}

impl Lines {
    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(at) = bytes.iter().position(|&b| b == b'\n') {
            self.push(&bytes[..at]);
            self.end();
            bytes = &bytes[at + 1..];
        }
        self.push(bytes);
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overlong || self.line.len() + bytes.len() > hints::MAX_LINE {
            self.overlong = true;
            self.line.clear();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end(&mut self) {
        if !self.overlong && self.denials.len() < MAX_DENIALS {
            if let Some(denial) = std::str::from_utf8(&self.line).ok().and_then(hints::parse) {
                if !self.denials.contains(&denial) {
                    self.denials.push(denial);
                }
            }
        }
        self.line.clear();
        self.overlong = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denials(pieces: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::default();
        for piece in pieces {
            lines.feed(piece);
        }
        lines.end();
        lines.denials.into_iter().map(|d| d.path).collect()
    }

    #[test]
    fn lines_are_joined_across_reads_and_counted_once() {
        assert_eq!(
            denials(&[
                b"cat: /a: Permission de",
                b"nied\ncat: /a: Permission denied\nx"
            ]),
            ["/a"]
        );
        assert_eq!(denials(&[b"cat: /b: Permission denied"]), ["/b"]);
    }

    #[test]
    fn overlong_lines_and_floods_are_bounded() {
        let long = vec![b'x'; hints::MAX_LINE + 1];
        assert!(denials(&[&long, b": /c: Permission denied\n"]).is_empty());
        let flood: String = (0..100)
            .map(|i| format!("cat: /f{i}: Permission denied\n"))
            .collect();
        assert_eq!(denials(&[flood.as_bytes()]).len(), MAX_DENIALS);
    }

    #[test]
    fn the_copy_ends_with_the_pipe() {
        let (pending, writer) = Pending::new().unwrap();
        let mut relay = pending.start().unwrap();
        rustix::io::write(
            &writer,
            b"ls: cannot access '/nowhere': Permission denied\n",
        )
        .unwrap();
        drop(writer);
        let found = relay.finish(FINISH_WAIT);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "/nowhere");
        assert!(relay.finish(FINISH_WAIT).is_empty(), "handed over once");
    }

    #[test]
    fn many_pipes_share_one_thread_and_an_open_pipe_does_not_hold_finish() {
        let relays: Vec<_> = (0..20)
            .map(|i| {
                let (pending, writer) = Pending::new().unwrap();
                let relay = pending.start().unwrap();
                let line = format!("cat: /relay-test-{i}: Permission denied\n");
                rustix::io::write(&writer, line.as_bytes()).unwrap();
                (relay, writer, i)
            })
            .collect();
        for (mut relay, writer, i) in relays {
            if i == 0 {
                // Still open: finish gives up after a moment, and a later
                // one, after the end, has them.
                let started = Instant::now();
                assert!(relay.finish(FINISH_WAIT).is_empty());
                assert!(started.elapsed() >= FINISH_WAIT);
                assert!(relay.finish(Duration::ZERO).is_empty());
                drop(writer);
                assert_eq!(relay.finish(FINISH_WAIT).len(), 1);
                continue;
            }
            drop(writer);
            let found = relay.finish(FINISH_WAIT);
            assert_eq!(found.len(), 1, "{i}");
            assert_eq!(found[0].path, format!("/relay-test-{i}"));
        }
    }
}
