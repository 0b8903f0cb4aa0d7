//! The OS primitives under [`Queue`](super::Queue): a shared mapping, a
//! process-shared robust mutex and futex waits. All of the channel module's
//! `unsafe` that touches shared memory is here or in `queue.rs`.

use crate::errno::{BridgeError, BridgeResult, Errno};
use std::cell::UnsafeCell;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A `MAP_SHARED | MAP_ANONYMOUS` mapping: `fork` children see the same
/// pages. Made with `MAP_NORESERVE`: a page costs memory once it is
/// touched. Unmapped on drop (in this process only).
pub(crate) struct SharedRegion {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory; every access to it goes through
// atomics or through the robust mutex that lives inside it.
unsafe impl Send for SharedRegion {}
// SAFETY: as above.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// Maps `len` zeroed bytes.
    pub(crate) fn new(len: usize) -> io::Result<SharedRegion> {
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(SharedRegion { ptr, len })
    }

    /// The first byte of the mapping (page-aligned).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and nothing
        // borrowed from the region outlives `self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// How a lock was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Locked {
    /// Normally.
    Clean,
    /// From a process that died holding it: the protected state must be
    /// repaired, then [`RobustMutex::mark_consistent`] called.
    OwnerDied,
}

/// A process-shared, robust `pthread_mutex_t`, to be placed in a
/// [`SharedRegion`].
#[repr(C)]
pub(crate) struct RobustMutex(UnsafeCell<libc::pthread_mutex_t>);

impl RobustMutex {
    /// Initialises the mutex in place.
    ///
    /// # Safety
    /// `this` must point to writable memory for a `RobustMutex` that no
    /// other thread or process uses yet, and it must not move afterwards.
    pub(crate) unsafe fn init(this: *mut RobustMutex) -> io::Result<()> {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let check = |rc: libc::c_int| {
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(rc))
            }
        };
        // SAFETY: `attr` is initialised by pthread_mutexattr_init before use
        // and destroyed after; `this` is valid per the contract.
        unsafe {
            check(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let result = check(libc::pthread_mutexattr_setpshared(
                attr.as_mut_ptr(),
                libc::PTHREAD_PROCESS_SHARED,
            ))
            .and_then(|()| {
                check(libc::pthread_mutexattr_setrobust(
                    attr.as_mut_ptr(),
                    libc::PTHREAD_MUTEX_ROBUST,
                ))
            })
            .and_then(|()| check(libc::pthread_mutex_init((*this).0.get(), attr.as_ptr())));
            libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
            result
        }
    }

    /// Takes the lock, waiting as long as it takes (the holder never waits
    /// while holding it, and a dead holder is detected by the kernel).
    pub(crate) fn lock(&self) -> BridgeResult<Locked> {
        if let Some(locked) = self.spin_try_lock() {
            return Ok(locked);
        }
        loop {
            // SAFETY: initialised by `init` before the region was shared.
            let rc = unsafe { libc::pthread_mutex_lock(self.0.get()) };
            match rc {
                0 => return Ok(Locked::Clean),
                libc::EOWNERDEAD => return Ok(Locked::OwnerDied),
                libc::EINTR | libc::EAGAIN => continue,
                libc::ENOTRECOVERABLE => {
                    return Err(BridgeError::new(
                        Errno::Io,
                        "the channel is unusable: a process died while repairing it",
                    ))
                }
                rc => {
                    return Err(BridgeError::io(
                        "lock channel",
                        io::Error::from_raw_os_error(rc),
                    ))
                }
            }
        }
    }

    /// Tries to take the lock for a moment without sleeping, on a machine
    /// with more than one CPU: the lock is held only to copy a message, and
    /// a holder on another CPU lets go sooner than a sleep and a wake-up
    /// would take (each a system call for the taker and for the holder).
    fn spin_try_lock(&self) -> Option<Locked> {
        if !many_cpus() {
            return None;
        }
        for _ in 0..LOCK_SPINS {
            // SAFETY: initialised by `init` before the region was shared.
            match unsafe { libc::pthread_mutex_trylock(self.0.get()) } {
                0 => return Some(Locked::Clean),
                libc::EOWNERDEAD => return Some(Locked::OwnerDied),
                libc::EBUSY => {
                    for _ in 0..16 {
                        std::hint::spin_loop();
                    }
                }
                // Anything else is reported by the blocking lock.
                _ => return None,
            }
        }
        None
    }

    /// Marks the state repaired after [`Locked::OwnerDied`].
    pub(crate) fn mark_consistent(&self) {
        // SAFETY: called by the holder of the lock.
        unsafe {
            libc::pthread_mutex_consistent(self.0.get());
        }
    }

    /// Releases the lock taken by this thread.
    pub(crate) fn unlock(&self) {
        // SAFETY: called by the holder of the lock.
        unsafe {
            libc::pthread_mutex_unlock(self.0.get());
        }
    }
}

/// How many times [`RobustMutex::lock`] tries the lock before it sleeps.
const LOCK_SPINS: u32 = 30;

/// How long [`Event::wait`] watches for a change before it sleeps.
const SPIN: Duration = Duration::from_micros(20);

/// Whether this machine has more than one CPU to run on (watching for a
/// change on the only CPU would only delay whoever makes it).
///
/// Kept in an atomic, not a `OnceLock`: a process forked while another of
/// its threads was finding out would wait forever on a lock that nobody in
/// it holds. Finding out twice does no harm.
fn many_cpus() -> bool {
    const UNKNOWN: u8 = 0;
    const ONE: u8 = 1;
    const MANY: u8 = 2;
    static CPUS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(UNKNOWN);
    match CPUS.load(Ordering::Relaxed) {
        UNKNOWN => {
            let many = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
            CPUS.store(if many { MANY } else { ONE }, Ordering::Relaxed);
            many
        }
        known => known == MANY,
    }
}

/// A futex word in shared memory that waiters sleep on until it changes,
/// with a count of sleepers so that wakers can skip the system call, and a
/// count of waiters watching it without sleeping.
#[repr(C)]
pub(crate) struct Event {
    seq: AtomicU32,
    sleepers: AtomicU32,
    spinners: AtomicU32,
}

impl Event {
    /// The current value; read it before checking the condition, then pass
    /// it to [`wait`](Self::wait) so that a change in between is not missed.
    pub(crate) fn seq(&self) -> u32 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Sleeps while the value is still `seen`, at most `timeout`. Returns
    /// early on a change, a signal or a spurious wake-up: callers re-check.
    ///
    /// On a machine with more than one CPU the first waiter watches the
    /// value for up to [`SPIN`] without sleeping: a message that follows the
    /// last one closely (a producer in a loop) is then taken without the
    /// consumer going to sleep, and without the producer paying a system
    /// call to wake it. Other waiters sleep at once: several watching
    /// processes would take the CPUs from the one that makes the change.
    pub(crate) fn wait(&self, seen: u32, timeout: Option<Duration>) {
        let spin = match timeout {
            Some(timeout) => timeout.min(SPIN),
            None => SPIN,
        };
        if many_cpus() && self.spin_alone(seen, spin) {
            return;
        }
        self.sleep(seen, timeout);
    }

    /// Sleeps while the value is still `seen`, at most `timeout`, without
    /// watching it first: for a change that is not expected soon.
    pub(crate) fn sleep(&self, seen: u32, timeout: Option<Duration>) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let ts = crate::timespec::Timespec::new(timeout);
        let ts_ptr = ts.as_ptr();
        // SAFETY: `seq` is a live, aligned u32 (in shared memory, hence the
        // non-private FUTEX_WAIT); `ts_ptr` is null or points to `ts`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.seq.as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                ts_ptr,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether the value moves off `seen` within `limit`, watched without
    /// sleeping by this waiter alone (false at once if another watches). A
    /// watcher killed while watching leaves `spinners` too high, which only
    /// makes the others sleep sooner.
    fn spin_alone(&self, seen: u32, limit: Duration) -> bool {
        if self.spinners.fetch_add(1, Ordering::SeqCst) > 0 {
            self.spinners.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        let changed = self.changes_within(seen, limit);
        self.spinners.fetch_sub(1, Ordering::SeqCst);
        changed
    }

    /// Whether the value moves off `seen` within `limit` (watched without
    /// sleeping).
    fn changes_within(&self, seen: u32, limit: Duration) -> bool {
        let until = std::time::Instant::now() + limit;
        loop {
            for _ in 0..64 {
                if self.seq.load(Ordering::SeqCst) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            if std::time::Instant::now() >= until {
                return false;
            }
        }
    }

    /// Changes the value and wakes every sleeper. A sleeper killed while
    /// asleep leaves `sleepers` too high, which only costs a system call.
    pub(crate) fn notify_all(&self) {
        self.notify(i32::MAX);
    }

    /// Changes the value and wakes one sleeper (waiters that are not asleep
    /// yet see the change). The woken one passes the wake-up on if what it
    /// waited for is still there after it took its share (see
    /// `Queue::put`).
    pub(crate) fn notify_one(&self) {
        self.notify(1);
    }

    /// Whether anyone sleeps on this event (or was killed asleep).
    pub(crate) fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::SeqCst) > 0
    }

    fn notify(&self, how_many: i32) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.has_sleepers() {
            // SAFETY: as in `wait`; waking has no memory effects.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.seq.as_ptr(),
                    libc::FUTEX_WAKE,
                    how_many,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<u32>(),
                    0u32,
                );
            }
        }
    }
}
