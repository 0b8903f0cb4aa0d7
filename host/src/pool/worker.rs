//! One pool worker as the pool sees it: a forked child OS process, the
//! parent end of its socket, what it has been sent and not yet answered.

use super::chunk::Chunk;
use super::frame;
use super::serve;
use crate::channel::SharedRegion;
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult};
use crate::process::child::{describe, Child};
use crate::process::fork::{fork_host, Forked};
use crate::process::Start;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Caller;

/// A live worker.
#[derive(Debug)]
pub(crate) struct Worker {
    // Declared first: the socket closes before the child is reaped.
    sock: OwnedFd,
    pub(crate) child: Child,
    /// How many chunks it has begun (a relay, which passes each chunk on
    /// to the cluster at once, does not count them).
    pub(crate) progress: Progress,
    /// It is a relay to the cluster.
    pub(crate) relay: bool,
    /// How many chunks it has answered.
    pub(crate) answered: u64,
    /// Bytes read and not yet decoded.
    inbuf: Vec<u8>,
    /// Encoded requests not yet written.
    outbuf: Vec<u8>,
    /// Chunks sent, in the order the worker runs them; the first is running.
    pub(crate) in_flight: VecDeque<Chunk>,
    /// When the first chunk in flight started (as far as the pool can tell).
    pub(crate) head_since: Instant,
    /// Chunks sent so far (for `maxtasksperchild`).
    pub(crate) sent: u32,
    /// It said it will exit (its instance trapped): send it nothing more.
    pub(crate) dying: bool,
    /// The handle table's serial when it was forked: it holds the
    /// inheritable handles up to this one.
    pub(crate) forked_at: u64,
    /// It lacks a handle a task was given: it runs what it was sent, then
    /// is replaced by a worker forked now.
    pub(crate) stale: bool,
}

/// What reading from a worker found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read {
    /// Maybe some frames; the socket is still open.
    Open,
    /// The worker closed its end: it has ended (or is ending).
    Closed,
}

impl Worker {
    /// Its socket's descriptor, for `poll`.
    pub(crate) fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Its pid.
    pub(crate) fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Whether requests are waiting to be written.
    pub(crate) fn wants_write(&self) -> bool {
        !self.outbuf.is_empty()
    }

    /// Whether it may be sent another chunk: it is not dying or stale and
    /// has not run `max_tasks` chunks.
    pub(crate) fn takes_chunks(&self, max_tasks: Option<u32>) -> bool {
        !self.dying && !self.stale && max_tasks.is_none_or(|max| self.sent < max)
    }

    /// Whether it is to be replaced once its chunks in flight are done.
    pub(crate) fn is_spent(&self, max_tasks: Option<u32>) -> bool {
        self.stale || max_tasks.is_some_and(|max| self.sent >= max)
    }

    /// Queues `chunk` for this worker.
    pub(crate) fn send(&mut self, chunk: Chunk) {
        if self.in_flight.is_empty() {
            self.head_since = Instant::now();
        }
        frame::push_request(
            &mut self.outbuf,
            chunk.id,
            &chunk.name,
            chunk.count,
            &chunk.items,
        );
        self.sent = self.sent.saturating_add(1);
        self.in_flight.push_back(chunk);
    }

    /// Queues the request that makes it exit.
    fn send_stop(&mut self) {
        frame::push_stop(&mut self.outbuf);
    }

    /// Writes as much of the queued requests as the socket takes now.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        let mut written = 0;
        while written < self.outbuf.len() {
            let rest = &self.outbuf[written..];
            // SAFETY: writes from a live buffer to our own socket.
            let n = unsafe {
                libc::send(
                    self.fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                match err.kind() {
                    std::io::ErrorKind::WouldBlock => break,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            }
            written += n as usize;
        }
        self.outbuf.drain(..written);
        Ok(())
    }

    /// Reads what the worker has sent, without blocking.
    pub(crate) fn read(&mut self) -> Read {
        loop {
            if self.inbuf.capacity() - self.inbuf.len() < 16 << 10 {
                self.inbuf.reserve(64 << 10);
            }
            let spare = self.inbuf.capacity() - self.inbuf.len();
            // SAFETY: reads into the spare capacity of `inbuf`, then sets its
            // length to cover only the bytes read.
            let n = unsafe {
                let end = self.inbuf.as_mut_ptr().add(self.inbuf.len());
                libc::recv(self.fd(), end.cast(), spare, libc::MSG_DONTWAIT)
            };
            if n == 0 {
                return Read::Closed;
            }
            if n < 0 {
                let err = std::io::Error::last_os_error();
                match err.kind() {
                    std::io::ErrorKind::WouldBlock => return Read::Open,
                    std::io::ErrorKind::Interrupted => continue,
                    _ => return Read::Closed,
                }
            }
            // SAFETY: the kernel wrote `n` bytes there.
            unsafe { self.inbuf.set_len(self.inbuf.len() + n as usize) };
            if (n as usize) < spare {
                return Read::Open;
            }
        }
    }

    /// Takes the bytes read so far, to decode (give back the rest with
    /// [`Worker::keep_unread`]).
    pub(crate) fn take_input(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.inbuf)
    }

    /// Puts back `buf`, minus the `used` bytes that were decoded.
    pub(crate) fn keep_unread(&mut self, mut buf: Vec<u8>, used: usize) {
        buf.drain(..used);
        self.inbuf = buf;
    }

    /// Reaps it after its socket closed: it is ending, so this waits a
    /// little, then kills it. Returns how it ended, in words.
    pub(crate) fn reap(&mut self) -> String {
        if let Ok(None) = self.child.wait(Some(Duration::from_secs(1))) {
            let _ = self.child.signal(libc::SIGKILL);
            let _ = self.child.wait(None);
        }
        describe(self.child.status())
    }

    /// Kills it and reaps it. Returns how it ended, in words.
    pub(crate) fn kill(&mut self) -> String {
        let _ = self.child.signal(libc::SIGKILL);
        let _ = self.child.wait(None);
        describe(self.child.status())
    }

    /// Tells an idle worker to exit and closes its socket; returns the child
    /// to reap.
    pub(crate) fn retire(mut self) -> Child {
        self.send_stop();
        let _ = self.flush();
        let Worker { sock, child, .. } = self;
        drop(sock);
        child
    }
}

/// How many chunks a worker has begun, in memory it shares with the pool:
/// a worker that holds its replies (see [`serve`]) may have run chunks the
/// pool has no reply for when it dies, and those must not run again.
pub(crate) struct Progress {
    /// One page; its first 8 bytes are the count.
    region: SharedRegion,
}

impl Progress {
    /// A new shared count, zero.
    fn new() -> BridgeResult<Progress> {
        let region = SharedRegion::new(std::mem::size_of::<AtomicU64>())
            .map_err(|err| BridgeError::io("mapping a pool worker's progress count", err))?;
        Ok(Progress { region })
    }

    fn count(&self) -> &AtomicU64 {
        // SAFETY: the region is page-aligned, zeroed and at least 8 bytes
        // long (a valid `AtomicU64`), and lives as long as `self`.
        unsafe { &*self.region.as_ptr().cast::<AtomicU64>() }
    }

    /// The worker: a chunk begins.
    pub(crate) fn begin(&self) {
        self.count().fetch_add(1, Ordering::Release);
    }

    /// The pool: how many chunks the worker has begun.
    pub(crate) fn begun(&self) -> u64 {
        self.count().load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("begun", &self.begun())
            .finish()
    }
}

/// How a new worker serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    /// A relay's lost cluster tasks run again (see `Config::retry_lost`).
    pub(crate) retry_lost: bool,
    /// It may hold the replies of short tasks to write them together (see
    /// [`serve`]).
    pub(crate) hold_replies: bool,
}

/// Starts a worker: forks the host; the child serves tasks in its copy of
/// the instance until it is told to stop (see [`serve`]). `siblings` are the
/// pool's other sockets, which the child closes.
pub(crate) fn start(
    caller: &mut Caller<'_, HostState>,
    siblings: &[RawFd],
    setup: Setup,
) -> BridgeResult<Worker> {
    let (parent_end, child_end) =
        crate::channel::socketpair(false, "socketpair for a pool worker")?;
    let relay = (caller.data().bridge.cluster.clone()).filter(|link| link.runs_pools());
    let progress = Progress::new()?;
    match fork_host(caller.data_mut(), Start::PoolWorker)? {
        Forked::Parent(slot) => {
            drop(child_end);
            Ok(Worker {
                sock: parent_end,
                child: Child::new(slot),
                progress,
                relay: relay.is_some(),
                answered: 0,
                inbuf: Vec::with_capacity(64 << 10),
                outbuf: Vec::new(),
                in_flight: VecDeque::new(),
                head_since: Instant::now(),
                sent: 0,
                dying: false,
                forked_at: caller.data().bridge.handles.serial(),
                stale: false,
            })
        }
        Forked::Child => {
            drop(parent_end);
            for &fd in siblings {
                // SAFETY: the parent ends of the sibling workers' sockets,
                // which this child must not hold; nothing here uses them.
                unsafe { libc::close(fd) };
            }
            match relay {
                Some(link) => {
                    crate::cluster::relay::serve(caller, child_end, &link, setup.retry_lost)
                }
                None => serve::serve(caller, child_end, setup.hold_replies, &progress),
            }
        }
    }
}
