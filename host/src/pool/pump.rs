//! A pool's progress while its owner is busy elsewhere.
//!
//! The guest's own pool calls make the progress ([`Pool::step`]): they
//! send the queued chunks, read the replies and notice dead workers. A
//! guest that submits tasks and then waits for something else, such as a
//! `Queue` its tasks fill, a sleep or a pipe, makes no pool call: Python's
//! pool has helper threads for that, and without one the tasks still
//! queued would never start, and the guest would wait forever.
//!
//! So each pool has a pump: a thread that takes over once the guest has
//! been away from the pool for [`TAKE_OVER_AFTER`] while work is pending
//! (chunks queued or running), and does what a pool call would, one round
//! at a time, until the guest comes back or the work is done. A guest that
//! keeps calling in (a burst of `apply_async`, a `map` waiting for its
//! results) never wakes it. The pump tells that the guest is away by its
//! count of calls holding still between two looks, [`TAKE_OVER_AFTER`]
//! apart, so it takes over one to two of them after the guest's last call.
//!
//! * The pool lives behind a mutex the guest's calls take ([`PoolGuard`]);
//!   the pump takes it for a round only.
//! * Starting workers stays the guest's: a worker is a fork of the running
//!   guest. A worker that dies while the pump runs is replaced at the
//!   guest's next pool call.
//! * A fork of the host (a new worker, `os.fork`, a command's jail) never
//!   happens in the middle of a round: the pump holds the fork gate for
//!   each round, and a `pthread_atfork` handler takes it before every fork,
//!   so no child inherits a lock the pump held.

use super::{Pool, Wait};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the guest may stay away from a pool with pending work before
/// the pump takes over.
pub(crate) const TAKE_OVER_AFTER: Duration = Duration::from_millis(1);

/// The longest the pump sleeps in `poll` between rounds (it also wakes on
/// a worker's reply, and at once when the pool goes).
const POLL_LIMIT: Duration = Duration::from_millis(5);

/// What the pump and the guest's calls know of each other, kept in the
/// pool (under its mutex).
#[derive(Debug, Default)]
pub(crate) struct PumpState {
    /// How many pool calls of the guest have ended: the pump tells that
    /// the guest is away when this stays still (a count, not a time, so a
    /// call does not read the clock).
    calls: u64,
    /// The pump waits for work to appear (a call that adds some wakes it).
    idle: bool,
    /// The pool is going: the pump ends.
    stop: bool,
}

struct Shared {
    pool: Mutex<Pool>,
    wake_pump: Condvar,
}

/// A pool in the handle table: the pool behind its mutex, and its pump.
pub(crate) struct SharedPool {
    shared: Arc<Shared>,
    /// An eventfd that ends the pump's `poll` when the pool goes.
    stop_fd: OwnedFd,
    pump: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SharedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPool").finish_non_exhaustive()
    }
}

/// The guest's hold on a pool for one call: marks when the call ended,
/// and wakes the pump if the call left work pending.
pub(crate) struct PoolGuard<'a> {
    pool: MutexGuard<'a, Pool>,
    shared: &'a Shared,
}

impl std::ops::Deref for PoolGuard<'_> {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.pool
    }
}

impl std::ops::DerefMut for PoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut Pool {
        &mut self.pool
    }
}

impl Drop for PoolGuard<'_> {
    fn drop(&mut self) {
        self.pool.pump.calls = self.pool.pump.calls.wrapping_add(1);
        if self.pool.pump.idle && self.pool.has_pending_work() {
            self.shared.wake_pump.notify_one();
        }
    }
}

impl SharedPool {
    /// Puts `pool` behind its mutex and starts its pump.
    ///
    /// # Errors
    /// When the eventfd or the thread cannot be made.
    pub(crate) fn new(pool: Pool) -> std::io::Result<SharedPool> {
        // SAFETY: eventfd takes an initial value and flags; the result is
        // a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just made and is owned by nothing else.
        let stop_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let shared = Arc::new(Shared {
            pool: Mutex::new(pool),
            wake_pump: Condvar::new(),
        });
        let pump = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("procbridge-pool".into())
                .spawn(move || run(&shared, fd))?
        };
        Ok(SharedPool {
            shared,
            stop_fd,
            pump: Some(pump),
        })
    }

    /// The pool, for one guest call.
    pub(crate) fn lock(&self) -> PoolGuard<'_> {
        PoolGuard {
            pool: lock(&self.shared.pool),
            shared: &self.shared,
        }
    }

    /// The pump's eventfd, which a new worker closes (as it closes the
    /// other workers' sockets: see `Pool::sibling_fds`).
    pub(crate) fn stop_fd(&self) -> RawFd {
        self.stop_fd.as_raw_fd()
    }

    /// In a fork child, where the pool is the parent's (and is forgotten
    /// next, not dropped): closes the pump's eventfd. The pool's mutex is
    /// not touched: the parent's pump may have held it at the fork.
    pub(crate) fn close_in_fork_child(&mut self) {
        // SAFETY: the descriptor is this struct's, which is forgotten
        // without its destructor running, so it is closed once.
        unsafe { libc::close(self.stop_fd.as_raw_fd()) };
    }
}

impl Drop for SharedPool {
    fn drop(&mut self) {
        lock(&self.shared.pool).pump.stop = true;
        self.shared.wake_pump.notify_one();
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our own eventfd.
        unsafe { libc::write(self.stop_fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(pump) = self.pump.take() {
            let _ = pump.join();
        }
        // The pool itself (its workers killed, as Python's context manager
        // does) goes with the last reference, which is this one now.
    }
}

fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pump's loop: see the module docs.
fn run(shared: &Shared, stop_fd: RawFd) {
    let mut pool = lock(&shared.pool);
    // The guest's call count as last seen, and when it was seen to change.
    let mut seen = (pool.pump.calls, Instant::now());
    loop {
        if pool.pump.stop {
            return;
        }
        if !pool.has_pending_work() {
            pool.pump.idle = true;
            pool = shared
                .wake_pump
                .wait(pool)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            pool.pump.idle = false;
            continue;
        }
        if pool.pump.calls != seen.0 {
            seen = (pool.pump.calls, Instant::now());
        }
        let away = seen.1.elapsed();
        if away < TAKE_OVER_AFTER {
            pool = shared
                .wake_pump
                .wait_timeout(pool, TAKE_OVER_AFTER - away)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
            continue;
        }
        let fds = pool.pump_fds();
        drop(pool);
        wait_for_news(&fds, stop_fd);
        let gate = fork_gate::enter();
        pool = lock(&shared.pool);
        if !pool.pump.stop && pool.pump.calls == seen.0 {
            // Errors are the pool's to keep (a failed round is tried again).
            let _ = pool.step(Wait::Never);
        }
        drop(gate);
    }
}

/// Sleeps until a worker's socket has news (a reply, an end, room to
/// write), the pool goes, or [`POLL_LIMIT`] passes.
fn wait_for_news(workers: &[(RawFd, bool)], stop_fd: RawFd) {
    let mut fds: Vec<libc::pollfd> = workers
        .iter()
        .map(|&(fd, wants_write)| libc::pollfd {
            fd,
            events: libc::POLLIN | if wants_write { libc::POLLOUT } else { 0 },
            revents: 0,
        })
        .collect();
    fds.push(libc::pollfd {
        fd: stop_fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let ts = crate::timespec::Timespec::new(Some(POLL_LIMIT));
    // SAFETY: `fds` is a valid array; the timeout is a local. A descriptor
    // closed meanwhile by the guest (a worker buried) only reports POLLNVAL.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts.as_ptr(),
            std::ptr::null(),
        );
    }
}

/// A lock every fork of this process takes first (a `pthread_atfork`
/// handler), held by a pump for each round: no fork child starts with a
/// lock a pump held (the audit log's, the allocator's, a pool's).
mod fork_gate {
    use std::cell::UnsafeCell;
    use std::sync::Once;

    struct Gate(UnsafeCell<libc::pthread_mutex_t>);
    // SAFETY: a pthread mutex is made to be shared between threads.
    unsafe impl Sync for Gate {}

    static GATE: Gate = Gate(UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER));

    extern "C" fn before_fork() {
        // SAFETY: a static, initialised mutex.
        unsafe { libc::pthread_mutex_lock(GATE.0.get()) };
    }

    extern "C" fn after_fork() {
        // SAFETY: taken by this thread in `before_fork` (in a child, the
        // same thread continues, still its owner).
        unsafe { libc::pthread_mutex_unlock(GATE.0.get()) };
    }

    /// The gate, held until the value is dropped.
    pub(super) struct Entered(());

    impl Drop for Entered {
        fn drop(&mut self) {
            after_fork();
        }
    }

    pub(super) fn enter() -> Entered {
        static REGISTER: Once = Once::new();
        // SAFETY: registers handlers that only lock and unlock a static
        // mutex, in the forking thread.
        REGISTER.call_once(|| unsafe {
            libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
        });
        before_fork();
        Entered(())
    }
}
