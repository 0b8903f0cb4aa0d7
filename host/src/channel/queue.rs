//! [`Queue`]: a multi-producer, multi-consumer message queue shared by the
//! processes of a tree through a shared mapping (see the module docs of
//! [`channel`](super)).

use super::ring::{self, RawRing};
use super::shm::{Event, Locked, RobustMutex, SharedRegion};
use super::Wait;
use crate::errno::{BridgeError, BridgeResult, Errno};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Queued bytes a queue may hold when its creator does not say (64 MiB;
/// its ring starts at [`INITIAL_RING_BYTES`] and grows as messages wait).
pub const DEFAULT_QUEUE_BYTES: usize = 64 << 20;

/// The most queued bytes one queue may hold (64 MiB).
pub const MAX_QUEUE_BYTES: usize = 64 << 20;

/// The most ring bytes the queues made or grown by one OS process may hold
/// together (512 MiB); making or growing more is `ENOMEM`.
pub const MAX_TOTAL_QUEUE_BYTES: usize = 512 << 20;

/// The size a queue's ring starts at, at most: it doubles when a message
/// does not fit, up to the queue's byte limit, as a Python queue's deque
/// grows. A limit that is not this size times a power of two starts at a
/// size that doubles into it exactly (an odd limit starts at the limit).
pub const INITIAL_RING_BYTES: usize = 64 << 10;

/// Up to this size a ring grows as soon as a message does not fit ...
const GROW_FREELY: u64 = 8 << 20;

/// ... past it, only for a putter that waited this long for a getter to
/// make room (or may not wait): a reader that keeps up keeps the ring, and
/// its pages, in the caches (64 KiB messages streamed through a ring of
/// 64 MiB went at half the speed of one of 8 MiB), while a reader that is
/// away still lets the queue grow as Python's does.
const GROW_AFTER: Duration = Duration::from_millis(10);

/// The smallest byte limit a queue may have.
const MIN_QUEUE_BYTES: usize = 16;

static TOTAL_QUEUE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// How a [`Queue`] is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// The most messages it holds; `0` is unbounded (Python's `maxsize`).
    pub maxsize: usize,
    /// The most bytes it holds, counting 4 bytes per message.
    pub max_bytes: usize,
    /// Whether it counts unfinished tasks (Python's `JoinableQueue`).
    pub joinable: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            maxsize: 0,
            max_bytes: DEFAULT_QUEUE_BYTES,
            joinable: false,
        }
    }
}

/// Keeps what it holds on a cache line of its own, so that the putters'
/// side and the getters' side of a queue do not slow each other down.
#[repr(C, align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One side of the queue: its lock and the index it moves.
#[repr(C)]
struct Side {
    lock: RobustMutex,
    /// `tail` on the putters' side, `head` on the getters'. Stored only
    /// with the side's lock held, after the bytes it commits are in place.
    index: AtomicU64,
    /// The other side's index as this side last read it, under its lock:
    /// behind the real one, which only grows, and read afresh when it says
    /// there is no room (putters) or no message (getters).
    other: AtomicU64,
}

/// The start of the shared mapping; the ring's bytes follow it.
///
/// Putters take `put.lock`, getters `get.lock`: a getter never waits for a
/// putter's copy, nor a putter for a getter's. Whoever needs both (to grow
/// the ring, or to repair it after a process died holding a lock) takes
/// the putters' lock first.
#[repr(C)]
struct Header {
    put: Line<Side>,
    get: Line<Side>,
    /// Messages in the ring: raised by a putter after it stores `tail`,
    /// lowered by a getter after it stores `head`, each under its lock. A
    /// getter may take a message before its putter counted it, so the count
    /// can be one below zero for a moment (never while the putters' lock
    /// is held: then it is at least the number of messages in the ring).
    count: Line<AtomicI64>,
    /// Tasks put and not yet marked done (a `JoinableQueue`'s).
    unfinished: Line<AtomicU64>,
    /// The ring's size in bytes: the part of the mapping in use, from the
    /// start of the data; changed only with both locks held.
    capacity: AtomicU64,
    /// Set once the queue is shut down.
    shutdown: AtomicU32,
    /// Set by a getter that found a dead getter's lock: the count must be
    /// made again, by whoever next holds both locks.
    recount: AtomicU32,
    /// A message was added, or the queue was shut down.
    items: Line<Event>,
    /// A message was removed, or the queue was shut down.
    space: Line<Event>,
    /// The unfinished-task count reached zero.
    done: Line<Event>,
}

/// The longest a putter or getter sleeps before it looks again. Each
/// wake-up goes to one sleeper, who passes it on; one that was woken and
/// then killed before it could would otherwise leave the others asleep
/// with work to do.
const NAP: std::time::Duration = if cfg!(test) {
    // Long in tests, so that a lost wake-up shows as a test's timeout.
    std::time::Duration::from_secs(30)
} else {
    std::time::Duration::from_millis(200)
};

const DATA_OFFSET: usize = (std::mem::size_of::<Header>() + 63) & !63;

/// A message queue whose messages are byte strings.
///
/// Every process that has the `Queue` (made here, or inherited through
/// `fork`) sees the same messages: a message put by one is got by exactly
/// one getter, in the order each putter put them.
///
/// * With `maxsize > 0` a putter waits while the queue holds `maxsize`
///   messages or its byte limit is reached.
/// * An unbounded queue grows up to its byte limit; there a putter waits
///   for room as it would on a full queue, and a put that may not wait
///   ([`Wait::Never`]) is `ENOBUFS`.
///
/// ```
/// use procbridge::channel::{Queue, QueueConfig, Wait};
/// use procbridge::Errno;
///
/// let q = Queue::new(QueueConfig { maxsize: 1, ..QueueConfig::default() })?;
/// q.put(b"first", Wait::Forever)?;
/// assert_eq!(q.put(b"second", Wait::Never).unwrap_err().errno, Errno::Again);
/// assert_eq!(q.get(Wait::Forever)?, b"first");
/// # Ok::<(), procbridge::BridgeError>(())
/// ```
pub struct Queue {
    region: SharedRegion,
    config: QueueConfig,
    /// Ring bytes this process counted against [`MAX_TOTAL_QUEUE_BYTES`]
    /// for this queue (made it, or grew it), given back on drop.
    charged: AtomicUsize,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("config", &self.config)
            .finish()
    }
}

/// The putters' lock, released on drop.
pub(super) struct PutGuard<'a> {
    queue: &'a Queue,
}

impl Drop for PutGuard<'_> {
    fn drop(&mut self) {
        self.queue.header().put.lock.unlock();
    }
}

/// The getters' lock, released on drop.
struct GetGuard<'a> {
    queue: &'a Queue,
}

impl Drop for GetGuard<'_> {
    fn drop(&mut self) {
        self.queue.header().get.lock.unlock();
    }
}

/// Both locks: nothing in the queue moves while it lives.
struct Both<'a, 'b> {
    _put: &'b PutGuard<'a>,
    get: GetGuard<'a>,
}

impl Both<'_, '_> {
    /// Every byte the ring may grow into.
    fn whole(&mut self) -> &mut [u8] {
        let region = &self.get.queue.region;
        // SAFETY: both locks are held, so no other thread or process
        // touches the ring's bytes; they lie inside the mapping, which
        // lives as long as the queue, after the header.
        unsafe {
            std::slice::from_raw_parts_mut(
                region.as_ptr().add(DATA_OFFSET),
                region.len() - DATA_OFFSET,
            )
        }
    }
}

impl Queue {
    /// Makes a queue.
    ///
    /// # Errors
    /// `EINVAL` for a byte limit outside 16 bytes ..= [`MAX_QUEUE_BYTES`];
    /// `ENOMEM` when this process's queues would hold more than
    /// [`MAX_TOTAL_QUEUE_BYTES`], or the mapping fails.
    pub fn new(config: QueueConfig) -> BridgeResult<Queue> {
        if !(MIN_QUEUE_BYTES..=MAX_QUEUE_BYTES).contains(&config.max_bytes) {
            return Err(BridgeError::invalid(format!(
                "a queue holds {MIN_QUEUE_BYTES} to {MAX_QUEUE_BYTES} bytes, not {}",
                config.max_bytes
            )));
        }
        let capacity = initial_capacity(config.max_bytes);
        reserve_bytes(capacity)?;
        // The whole limit is reserved as address space only: a page costs
        // memory once the ring has grown over it.
        let region = match SharedRegion::new(DATA_OFFSET + config.max_bytes) {
            Ok(region) => region,
            Err(err) => {
                TOTAL_QUEUE_BYTES.fetch_sub(capacity, Ordering::SeqCst);
                return Err(BridgeError::new(Errno::NoMem, format!("map queue: {err}")));
            }
        };
        let header = region.as_ptr().cast::<Header>();
        // SAFETY: the mapping is fresh, zeroed (valid atomics and `Event`s),
        // page-aligned and large enough for the header; nobody else can
        // see it yet.
        let init = unsafe {
            (*header).capacity.store(capacity as u64, Ordering::Relaxed);
            RobustMutex::init(std::ptr::addr_of_mut!((*header).put.0.lock))
                .and_then(|()| RobustMutex::init(std::ptr::addr_of_mut!((*header).get.0.lock)))
        };
        let queue = Queue {
            region,
            config,
            charged: AtomicUsize::new(capacity),
        };
        init.map_err(|e| BridgeError::io("make queue lock", e))?;
        Ok(queue)
    }

    /// Grows the ring, by doubling it, until `need` more bytes fit or it
    /// reaches the byte limit (or [`GROW_FREELY`], unless `past_free`);
    /// does nothing if they fit already.
    ///
    /// A doubling keeps every position's meaning: the byte at position `p`
    /// moves from `p % capacity` to `p % (2 * capacity)`, which is either
    /// where it is or `capacity` further on. Only bytes past the current
    /// ring are written, and the new capacity is stored last: a process
    /// killed half-way leaves the ring as it was.
    ///
    /// # Errors
    /// `ENOMEM` when this process's queues would pass
    /// [`MAX_TOTAL_QUEUE_BYTES`].
    fn grow_for(&self, put: &PutGuard<'_>, need: u64, past_free: bool) -> BridgeResult<()> {
        let max = if past_free {
            self.config.max_bytes as u64
        } else {
            (self.config.max_bytes as u64).min(GROW_FREELY)
        };
        let header = self.header();
        let capacity = header.capacity.load(Ordering::Relaxed);
        // The head only moves on, so a message that fits now still does.
        let used =
            header.put.index.load(Ordering::Relaxed) - header.get.index.load(Ordering::SeqCst);
        if used + need <= capacity || capacity * 2 > max {
            return Ok(());
        }
        let mut both = self.lock_both(put)?;
        let (head, tail) = self.indexes();
        let used = tail - head;
        let mut grown = capacity;
        while used + need > grown && grown * 2 <= max {
            grown *= 2;
        }
        if grown == capacity {
            return Ok(());
        }
        let more = (grown - capacity) as usize;
        reserve_bytes(more)?;
        self.charged.fetch_add(more, Ordering::SeqCst);
        let data = both.whole();
        let mut doubled = capacity;
        while doubled < grown {
            ring::double(data, head, tail, doubled);
            doubled *= 2;
        }
        header.capacity.store(grown, Ordering::SeqCst);
        Ok(())
    }

    fn header(&self) -> &Header {
        // SAFETY: the header was initialised in `new` and lives as long as
        // the mapping; its shared fields are atomics, or used only under
        // its locks.
        unsafe { &*self.region.as_ptr().cast::<Header>() }
    }

    /// `head` and `tail`, as last stored.
    fn indexes(&self) -> (u64, u64) {
        let header = self.header();
        (
            header.get.index.load(Ordering::SeqCst),
            header.put.index.load(Ordering::SeqCst),
        )
    }

    /// The ring as it is now.
    fn raw_ring(&self) -> RawRing {
        let capacity = self.header().capacity.load(Ordering::SeqCst) as usize;
        // SAFETY: the ring's bytes follow the header inside the mapping,
        // which lives as long as `self`; `capacity` never passes the
        // mapping's end (see `grow_for`).
        unsafe { RawRing::new(self.region.as_ptr().add(DATA_OFFSET), capacity) }
    }

    /// Takes the putters' lock, repairing the queue first if a process
    /// died holding a lock.
    pub(super) fn lock_put(&self) -> BridgeResult<PutGuard<'_>> {
        let header = self.header();
        let locked = header.put.lock.lock()?;
        let guard = PutGuard { queue: self };
        if locked == Locked::OwnerDied || header.recount.load(Ordering::SeqCst) != 0 {
            let mut both = self.lock_both(&guard)?;
            self.repair(both.whole());
            drop(both);
            if locked == Locked::OwnerDied {
                header.put.lock.mark_consistent();
            }
            // The dead process may have died before waking anyone.
            header.items.notify_all();
            header.space.notify_all();
            header.done.notify_all();
        }
        Ok(guard)
    }

    /// Takes the getters' lock as well as the putters' (held already),
    /// repairing the queue if a getter died holding it.
    fn lock_both<'a, 'b>(&'a self, put: &'b PutGuard<'a>) -> BridgeResult<Both<'a, 'b>> {
        let header = self.header();
        let locked = header.get.lock.lock()?;
        let mut both = Both {
            _put: put,
            get: GetGuard { queue: self },
        };
        if locked == Locked::OwnerDied {
            self.repair(both.whole());
            header.get.lock.mark_consistent();
        }
        Ok(both)
    }

    /// Takes the getters' lock; a getter that died holding it leaves the
    /// count to be made again, under both locks, which are then taken in
    /// their order.
    fn lock_get(&self) -> BridgeResult<GetGuard<'_>> {
        let header = self.header();
        loop {
            if header.get.lock.lock()? == Locked::Clean {
                return Ok(GetGuard { queue: self });
            }
            header.recount.store(1, Ordering::SeqCst);
            header.get.lock.mark_consistent();
            header.get.lock.unlock();
            drop(self.lock_put()?);
        }
    }

    /// Makes the count agree with the ring after a process died holding a
    /// lock. Indexes are only moved once the bytes are in place, so the
    /// ring is whole; only the counts (updated after an index) may be
    /// stale.
    fn repair(&self, data: &mut [u8]) {
        let header = self.header();
        let (head, tail) = self.indexes();
        let capacity = header.capacity.load(Ordering::SeqCst) as usize;
        let count = match ring::count(&mut data[..capacity], head, tail) {
            Some(count) => count,
            None => {
                // Unreachable unless the mapping was overwritten: start
                // afresh rather than hand out garbage.
                header.get.index.store(tail, Ordering::SeqCst);
                0
            }
        };
        header.count.store(count as i64, Ordering::SeqCst);
        if self.config.joinable {
            header.unfinished.fetch_max(count, Ordering::SeqCst);
        }
        header.recount.store(0, Ordering::SeqCst);
    }

    /// Puts a message, waiting for room as `wait` says.
    ///
    /// # Errors
    /// `E2BIG` for a message larger than the queue's byte limit; `EAGAIN`
    /// (with [`Wait::Never`]) or `ETIMEDOUT` when the queue stayed full;
    /// `ENOBUFS` with [`Wait::Never`] when an unbounded queue's byte limit
    /// is reached; `EPIPE` once the queue is shut down.
    pub fn put(&self, msg: &[u8], wait: Wait) -> BridgeResult<()> {
        let need = ring::record_len(msg.len());
        if need > self.config.max_bytes as u64 {
            return Err(BridgeError::new(
                Errno::TooBig,
                format!(
                    "a message of {} bytes does not fit in a queue of {} bytes",
                    msg.len(),
                    self.config.max_bytes
                ),
            ));
        }
        let header = self.header();
        // When this putter first found no room in a ring it could grow.
        let mut no_room_since: Option<Instant> = None;
        // The room event as it was before the last look, once a look found
        // no room: the putter sleeps only after a second look (the common
        // case, room at the first look, leaves the event's line alone).
        let mut seen: Option<u32> = None;
        loop {
            let mut nap = NAP;
            {
                let guard = self.lock_put()?;
                if header.shutdown.load(Ordering::SeqCst) != 0 {
                    return Err(closed());
                }
                let below_max = self.config.maxsize == 0
                    || header.count.load(Ordering::SeqCst) < self.config.maxsize as i64;
                let mut used = self.used_for_put(&guard, need);
                if below_max && used + need > self.raw_ring().capacity() {
                    let patient = grow_later(wait, no_room_since);
                    self.grow_for(&guard, need, patient.is_none())?;
                    if let Some(for_room) = patient {
                        nap = for_room;
                    }
                    used = self.used_for_put(&guard, need);
                }
                let ring = self.raw_ring();
                if below_max && used + need <= ring.capacity() {
                    let tail = header.put.index.load(Ordering::Relaxed);
                    // SAFETY: the putters' lock is held and the record's
                    // bytes are free: no getter reads past `tail`.
                    let tail = unsafe { ring.push(tail, msg) };
                    let before = if self.config.joinable {
                        // A task is counted before any getter can take it,
                        // and so mark it done.
                        let _both = self.lock_both(&guard)?;
                        header.put.index.store(tail, Ordering::SeqCst);
                        header.unfinished.fetch_add(1, Ordering::SeqCst);
                        header.count.fetch_add(1, Ordering::SeqCst)
                    } else {
                        header.put.index.store(tail, Ordering::SeqCst);
                        header.count.fetch_add(1, Ordering::SeqCst)
                    };
                    drop(guard);
                    // Getters sleep only on an empty queue: one wake-up when
                    // it stops being empty (a getter that leaves messages
                    // behind wakes the next). Below zero, a getter took
                    // this message already: the wake-up is only spare.
                    if before <= 0 {
                        header.items.notify_one();
                    }
                    return Ok(());
                }
                if seen.is_none() {
                    seen = Some(header.space.seq());
                    continue;
                }
                if self.config.maxsize == 0 && wait == Wait::Never {
                    return Err(BridgeError::new(
                        Errno::NoBufs,
                        format!(
                            "the queue holds {used} bytes of unread messages (its limit is {})",
                            self.config.max_bytes
                        ),
                    ));
                }
                if below_max && ring.capacity() < self.config.max_bytes as u64 {
                    no_room_since.get_or_insert_with(Instant::now);
                }
            }
            let left = wait.remaining("put on a full queue")?;
            // Room comes at the low-water mark, after many gets: not worth
            // watching for.
            if let Some(seen) = seen.take() {
                header
                    .space
                    .sleep(seen, Some(left.map_or(nap, |l| l.min(nap))));
            }
        }
    }

    /// The ring's bytes in use, as a putter sees them: from the head it
    /// last read, read afresh only when `need` more would not fit (a stale
    /// head only makes the ring look fuller).
    fn used_for_put(&self, _put: &PutGuard<'_>, need: u64) -> u64 {
        let header = self.header();
        let tail = header.put.index.load(Ordering::Relaxed);
        let head = header.put.other.load(Ordering::Relaxed);
        if tail - head + need <= self.raw_ring().capacity() {
            return tail - head;
        }
        let head = header.get.index.load(Ordering::SeqCst);
        header.put.other.store(head, Ordering::Relaxed);
        tail - head
    }

    /// Takes the oldest message, waiting for one as `wait` says.
    ///
    /// # Errors
    /// `EAGAIN` (with [`Wait::Never`]) or `ETIMEDOUT` when the queue stayed
    /// empty; `EPIPE` when it is empty and shut down.
    pub fn get(&self, wait: Wait) -> BridgeResult<Vec<u8>> {
        self.get_with(wait, |a, b| Ok([a, b].concat()))
    }

    /// Takes the oldest message and hands its bytes, as two slices (the
    /// second is empty unless the message wraps around the ring), to
    /// `deliver`, which runs with the getters' lock held (putters go on).
    /// If `deliver` fails, the message stays in the queue.
    ///
    /// # Errors
    /// As [`get`](Self::get), and `deliver`'s error.
    pub fn get_with<R>(
        &self,
        wait: Wait,
        deliver: impl FnOnce(&[u8], &[u8]) -> BridgeResult<R>,
    ) -> BridgeResult<R> {
        let header = self.header();
        let mut deliver = Some(deliver);
        // As in `put`: the event is read only once a look found nothing,
        // and the getter waits only after a second look.
        let mut seen: Option<u32> = None;
        loop {
            {
                let guard = self.lock_get()?;
                let head = header.get.index.load(Ordering::Relaxed);
                let tail = self.tail_for_get(&guard, head);
                if head < tail {
                    let ring = self.raw_ring();
                    // SAFETY: the getters' lock is held, and putters write
                    // only past `tail`: the bytes up to it are whole
                    // messages nobody writes while the slices live (the
                    // ring grows only under both locks).
                    let len = unsafe { ring.peek_len(head, tail - head) }
                        .ok_or_else(|| BridgeError::new(Errno::Io, "the queue is corrupted"))?;
                    // SAFETY: as above.
                    let (a, b) = unsafe { ring.slices(head, len) };
                    let deliver = deliver
                        .take()
                        .ok_or_else(|| BridgeError::new(Errno::Io, "get delivered twice"))?;
                    let result = match deliver(a, b) {
                        Ok(result) => result,
                        Err(err) => {
                            // The message stays: a getter woken for it
                            // must not be the only one who knew.
                            drop(guard);
                            if header.items.has_sleepers() {
                                header.items.notify_one();
                            }
                            return Err(err);
                        }
                    };
                    let head = head + ring::record_len(len);
                    header.get.index.store(head, Ordering::SeqCst);
                    let left = header.count.fetch_sub(1, Ordering::SeqCst) - 1;
                    let low = self.at_low_water(left, tail - head, ring.capacity());
                    drop(guard);
                    // Putters wait on a full queue and are woken together
                    // once it is down to half: each then puts many messages
                    // per wake-up instead of one. Every get below the mark
                    // moves the event, so a putter that went to sleep after
                    // the crossing is still woken by the next.
                    if low {
                        header.space.notify_all();
                    }
                    // A putter that made the queue non-empty after this
                    // count woke a getter itself.
                    if left > 0 && header.items.has_sleepers() {
                        header.items.notify_one();
                    }
                    return Ok(result);
                }
                if seen.is_none() {
                    seen = Some(header.items.seq());
                    continue;
                }
                if header.shutdown.load(Ordering::SeqCst) != 0 {
                    return Err(closed());
                }
            }
            let left = wait.remaining("get from an empty queue")?;
            if let Some(seen) = seen.take() {
                header
                    .items
                    .wait(seen, Some(left.map_or(NAP, |l| l.min(NAP))));
            }
        }
    }

    /// Where the messages end, as a getter at `head` sees it: the tail it
    /// last read, read afresh only when that says there is no message.
    fn tail_for_get(&self, _get: &GetGuard<'_>, head: u64) -> u64 {
        let header = self.header();
        let tail = header.get.other.load(Ordering::Relaxed);
        if head < tail {
            return tail;
        }
        let tail = header.put.index.load(Ordering::SeqCst);
        header.get.other.store(tail, Ordering::Relaxed);
        tail
    }

    /// Whether the queue, holding `count` messages in `used` of its
    /// `capacity` bytes, is down to its low-water mark, half of its
    /// `maxsize` (if it has one) and half of its bytes, where waiting
    /// putters are woken.
    fn at_low_water(&self, count: i64, used: u64, capacity: u64) -> bool {
        (self.config.maxsize == 0 || count <= self.config.maxsize as i64 / 2)
            && used <= capacity / 2
    }

    /// The number of messages in the queue (`qsize()`).
    pub fn qsize(&self) -> BridgeResult<usize> {
        // Under both locks: exact, and a count a dead process left wrong
        // is made again first.
        let put = self.lock_put()?;
        let _both = self.lock_both(&put)?;
        Ok(self.header().count.load(Ordering::SeqCst).max(0) as usize)
    }

    /// Whether the queue holds `maxsize` messages (never, if unbounded).
    pub fn is_full(&self) -> BridgeResult<bool> {
        Ok(self.config.maxsize > 0 && self.qsize()? >= self.config.maxsize)
    }

    /// Shuts the queue down for every process: puts fail with `EPIPE` from
    /// now on, and gets do once the queue is empty. Waiters wake up.
    pub fn shutdown(&self) -> BridgeResult<()> {
        let guard = self.lock_put()?;
        let header = self.header();
        header.shutdown.store(1, Ordering::SeqCst);
        drop(guard);
        header.items.notify_all();
        header.space.notify_all();
        Ok(())
    }

    /// Marks one task got from a joinable queue as done.
    ///
    /// # Errors
    /// `EINVAL` if the queue is not joinable, or more tasks are marked done
    /// than were put.
    pub fn task_done(&self) -> BridgeResult<()> {
        self.require_joinable("task_done")?;
        let header = self.header();
        let before = header
            .unfinished
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map_err(|_| BridgeError::invalid("task_done() called too many times"))?;
        if before == 1 {
            header.done.notify_all();
        }
        Ok(())
    }

    /// Waits until every task put in a joinable queue is marked done.
    ///
    /// # Errors
    /// `EINVAL` if the queue is not joinable; `EAGAIN` or `ETIMEDOUT` when
    /// tasks are still unfinished.
    pub fn join(&self, wait: Wait) -> BridgeResult<()> {
        self.require_joinable("join")?;
        let header = self.header();
        loop {
            let seen = header.done.seq();
            if header.unfinished.load(Ordering::SeqCst) == 0 {
                return Ok(());
            }
            let left = wait.remaining("join on a queue with unfinished tasks")?;
            header.done.wait(seen, left);
        }
    }

    /// The ring's size in bytes.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.header().capacity.load(Ordering::SeqCst) as usize
    }

    /// Does what a putter killed half-way through a put leaves behind: the
    /// message's bytes and the new tail written, its count not; returns the
    /// putters' lock, for a test to forget as a killed putter would.
    #[cfg(test)]
    pub(super) fn put_uncounted(&self, msg: &[u8]) -> PutGuard<'_> {
        let guard = self.lock_put().unwrap();
        let (_, tail) = self.indexes();
        // SAFETY: the putters' lock is held and the test leaves room.
        let tail = unsafe { self.raw_ring().push(tail, msg) };
        self.header().put.index.store(tail, Ordering::SeqCst);
        guard
    }

    /// Does what a getter killed half-way through a get leaves behind: the
    /// oldest message taken (`head` moved past it), the count not lowered;
    /// returns the getters' lock, for a test to forget.
    #[cfg(test)]
    pub(super) fn get_uncounted(&self) -> impl Drop + '_ {
        let guard = self.lock_get().unwrap();
        let (head, tail) = self.indexes();
        // SAFETY: the getters' lock is held; the bytes up to `tail` are
        // whole messages.
        let len = unsafe { self.raw_ring().peek_len(head, tail - head) }.unwrap();
        let head = head + ring::record_len(len);
        self.header().get.index.store(head, Ordering::SeqCst);
        guard
    }

    fn require_joinable(&self, what: &str) -> BridgeResult<()> {
        if self.config.joinable {
            Ok(())
        } else {
            Err(BridgeError::invalid(format!(
                "{what}() needs a JoinableQueue"
            )))
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        TOTAL_QUEUE_BYTES.fetch_sub(*self.charged.get_mut(), Ordering::SeqCst);
    }
}

/// Whether a putter with no room should wait for a getter rather than grow
/// the ring past [`GROW_FREELY`]: `Some(how long)` while it has waited less
/// than [`GROW_AFTER`] and `wait` lets it wait that long, else `None`.
fn grow_later(wait: Wait, no_room_since: Option<Instant>) -> Option<Duration> {
    let waited = no_room_since.map_or(Duration::ZERO, |at| at.elapsed());
    let rest = GROW_AFTER.checked_sub(waited).filter(|d| !d.is_zero())?;
    match wait {
        Wait::Never => None,
        Wait::Forever => Some(rest),
        Wait::Until(deadline) => {
            (deadline.saturating_duration_since(Instant::now()) > rest).then_some(rest)
        }
    }
}

/// The size a ring of at most `max_bytes` starts at: `max_bytes` halved
/// while it is even and over [`INITIAL_RING_BYTES`], so that doublings
/// reach it exactly.
fn initial_capacity(max_bytes: usize) -> usize {
    let mut capacity = max_bytes;
    while capacity > INITIAL_RING_BYTES && capacity.is_multiple_of(2) {
        capacity /= 2;
    }
    capacity
}

fn closed() -> BridgeError {
    BridgeError::new(Errno::Pipe, "the queue is shut down")
}

fn reserve_bytes(bytes: usize) -> BridgeResult<()> {
    let before = TOTAL_QUEUE_BYTES.fetch_add(bytes, Ordering::SeqCst);
    if before + bytes > MAX_TOTAL_QUEUE_BYTES {
        TOTAL_QUEUE_BYTES.fetch_sub(bytes, Ordering::SeqCst);
        return Err(BridgeError::new(
            Errno::NoMem,
            format!(
                "this process's queues already hold up to {before} bytes; \
                 another {bytes} would pass the limit of {MAX_TOTAL_QUEUE_BYTES}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn queue(maxsize: usize, max_bytes: usize) -> Queue {
        Queue::new(QueueConfig {
            maxsize,
            max_bytes,
            joinable: false,
        })
        .unwrap()
    }

    #[test]
    fn fifo_and_sizes() {
        let q = queue(0, 1024);
        for i in 0..100u32 {
            q.put(&i.to_le_bytes()[..(i % 5) as usize], Wait::Never)
                .unwrap();
        }
        assert_eq!(q.qsize().unwrap(), 100);
        for i in 0..100u32 {
            assert_eq!(
                q.get(Wait::Never).unwrap(),
                &i.to_le_bytes()[..(i % 5) as usize]
            );
        }
        assert_eq!(q.get(Wait::Never).unwrap_err().errno, Errno::Again);
        assert!(!q.is_full().unwrap());
    }

    #[test]
    fn maxsize_and_byte_limits() {
        let q = queue(2, 1024);
        q.put(b"a", Wait::Never).unwrap();
        q.put(b"b", Wait::Never).unwrap();
        assert!(q.is_full().unwrap());
        assert_eq!(q.put(b"c", Wait::Never).unwrap_err().errno, Errno::Again);
        let start = Instant::now();
        let deadline = Wait::timeout(Some(Duration::from_millis(50)));
        assert_eq!(q.put(b"c", deadline).unwrap_err().errno, Errno::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50));

        // Unbounded: at the byte limit a put that may not wait is ENOBUFS,
        // one that may waits for room.
        let q = queue(0, 16);
        q.put(&[0; 12], Wait::Forever).unwrap();
        assert_eq!(q.put(b"", Wait::Never).unwrap_err().errno, Errno::NoBufs);
        let deadline = Wait::timeout(Some(Duration::from_millis(20)));
        assert_eq!(q.put(b"", deadline).unwrap_err().errno, Errno::TimedOut);
        assert_eq!(
            q.put(&[0; 13], Wait::Forever).unwrap_err().errno,
            Errno::TooBig
        );
        // A bounded queue whose bytes are full waits like a full one.
        let q = queue(10, 16);
        q.put(&[0; 12], Wait::Forever).unwrap();
        assert_eq!(q.put(b"", Wait::Never).unwrap_err().errno, Errno::Again);
    }

    #[test]
    fn putters_are_woken_at_the_low_water_mark_not_on_every_get() {
        let q = queue(8, 1024);
        for _ in 0..8 {
            q.put(b"m", Wait::Never).unwrap();
        }
        let space = &q.header().space;
        let seen = space.seq();
        // 8 -> 5: above half, nobody is told about the room.
        for _ in 0..3 {
            q.get(Wait::Never).unwrap();
        }
        assert_eq!(space.seq(), seen, "a get above the mark woke putters");
        // 5 -> 4: half, and every get below it moves the event.
        q.get(Wait::Never).unwrap();
        let at_mark = space.seq();
        assert_ne!(at_mark, seen);
        q.get(Wait::Never).unwrap();
        assert_ne!(space.seq(), at_mark);

        // Half of the bytes counts too: two big messages fill the bytes of
        // a queue whose maxsize is far away.
        let q = queue(64, 64);
        q.put(&[0; 26], Wait::Never).unwrap();
        q.put(&[0; 26], Wait::Never).unwrap();
        let seen = q.header().space.seq();
        q.get(Wait::Never).unwrap();
        assert_ne!(q.header().space.seq(), seen);
    }

    #[test]
    fn a_putter_that_sleeps_after_the_mark_is_woken_by_the_next_get() {
        let q = std::sync::Arc::new(queue(4, 1024));
        for _ in 0..4 {
            q.put(b"m", Wait::Never).unwrap();
        }
        // Down to the mark with nobody asleep, then full again.
        q.get(Wait::Never).unwrap();
        q.get(Wait::Never).unwrap();
        q.put(b"m", Wait::Never).unwrap();
        q.put(b"m", Wait::Never).unwrap();
        let putter = {
            let q = q.clone();
            std::thread::spawn(move || {
                q.put(b"late", Wait::timeout(Some(Duration::from_secs(20))))
                    .map(|()| Instant::now())
            })
        };
        while !q.header().space.has_sleepers() {
            std::thread::sleep(Duration::from_millis(1));
        }
        q.get(Wait::Never).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!putter.is_finished(), "woken above the mark");
        let got = Instant::now();
        q.get(Wait::Never).unwrap();
        let put = putter.join().unwrap().unwrap();
        assert!(put.duration_since(got) < Duration::from_secs(5));
        assert_eq!(q.qsize().unwrap(), 3);
    }

    #[test]
    fn an_unbounded_queue_grows_past_its_first_ring_up_to_its_limit() {
        let q = Queue::new(QueueConfig::default()).unwrap();
        let capacity = |q: &Queue| q.capacity();
        assert_eq!(capacity(&q), INITIAL_RING_BYTES);
        // 12 MiB waiting: more than the 8 MiB every queue used to stop at.
        let chunk = vec![0u8; 1 << 20];
        for i in 0..12u8 {
            let mut msg = chunk.clone();
            msg[0] = i;
            q.put(&msg, Wait::Never).unwrap();
        }
        assert_eq!(capacity(&q), 16 << 20);
        for i in 0..12u8 {
            assert_eq!(q.get(Wait::Never).unwrap()[0], i);
        }
        // Up to the limit, then ENOBUFS as before.
        let q = queue(0, 1 << 20);
        let mut n = 0;
        let err = loop {
            match q.put(&[1; 1020], Wait::Never) {
                Ok(()) => n += 1,
                Err(err) => break err,
            }
        };
        assert_eq!((n, err.errno), (1024, Errno::NoBufs));
        assert_eq!(capacity(&q), 1 << 20);
    }

    #[test]
    fn past_eight_mib_a_ring_grows_only_when_no_getter_makes_room() {
        let capacity = |q: &Queue| q.capacity() as u64;
        let chunk = vec![0u8; (1 << 20) - 4];
        // No getter: the put that would go past 8 MiB waits GROW_AFTER,
        // then the ring grows and it succeeds.
        let q = queue(0, 32 << 20);
        for _ in 0..8 {
            q.put(&chunk, Wait::Forever).unwrap();
        }
        assert_eq!(capacity(&q), GROW_FREELY);
        let started = Instant::now();
        q.put(&chunk, Wait::Forever).unwrap();
        assert!(started.elapsed() >= GROW_AFTER);
        assert_eq!(capacity(&q), 2 * GROW_FREELY);
        // A put that may not wait grows at once.
        let q = queue(0, 32 << 20);
        for _ in 0..9 {
            q.put(&chunk, Wait::Never).unwrap();
        }
        assert_eq!(capacity(&q), 2 * GROW_FREELY);
        // A getter that keeps up: the ring stays within 8 MiB.
        let q = std::sync::Arc::new(queue(0, 32 << 20));
        let getter = {
            let q = q.clone();
            std::thread::spawn(move || {
                for _ in 0..40 {
                    q.get(Wait::Forever).unwrap();
                }
            })
        };
        for _ in 0..40 {
            q.put(&chunk, Wait::Forever).unwrap();
        }
        getter.join().unwrap();
        assert!(capacity(&q) <= GROW_FREELY);
    }

    #[test]
    fn messages_keep_their_order_when_the_ring_grows_wrapped() {
        // 64 KiB to 1 MiB; gets keep the head moving, so each growth finds
        // the messages anywhere in the ring, often wrapped around its end.
        let q = queue(0, 1 << 20);
        let (mut put, mut got) = (0u32, 0u32);
        let message = |i: u32| {
            let len = 4 + (i as usize * 7919) % 1000;
            let mut m = vec![(i % 251) as u8; len];
            m[..4].copy_from_slice(&i.to_le_bytes());
            m
        };
        while put < 1200 {
            for _ in 0..3 {
                q.put(&message(put), Wait::Never).unwrap();
                put += 1;
            }
            assert_eq!(q.get(Wait::Never).unwrap(), message(got));
            got += 1;
        }
        assert!(q.capacity() >= 256 << 10);
        while got < put {
            assert_eq!(q.get(Wait::Never).unwrap(), message(got));
            got += 1;
        }
        assert_eq!(q.qsize().unwrap(), 0);
    }

    #[test]
    fn rings_start_small_and_double_into_their_limit() {
        assert_eq!(initial_capacity(64 << 20), INITIAL_RING_BYTES);
        assert_eq!(initial_capacity(3 << 20), 48 << 10);
        assert_eq!(initial_capacity(1000), 1000);
        assert_eq!(initial_capacity(100_001), 100_001);
        // Many queues that may each hold 64 MiB cost only what they hold.
        let queues: Vec<Queue> = (0..200)
            .map(|_| Queue::new(QueueConfig::default()).unwrap())
            .collect();
        drop(queues);
    }

    #[test]
    fn a_putter_on_an_unbounded_queue_at_its_limit_waits_for_a_getter() {
        let q = std::sync::Arc::new(queue(0, 64));
        for _ in 0..4 {
            q.put(&[7; 12], Wait::Never).unwrap();
        }
        let putter = {
            let q = q.clone();
            std::thread::spawn(move || q.put(b"late", Wait::Forever))
        };
        while !q.header().space.has_sleepers() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Down to half the bytes: the putter is woken and its message fits.
        q.get(Wait::Never).unwrap();
        q.get(Wait::Never).unwrap();
        putter.join().unwrap().unwrap();
        for _ in 0..2 {
            assert_eq!(q.get(Wait::Never).unwrap(), [7; 12]);
        }
        assert_eq!(q.get(Wait::Never).unwrap(), b"late");
    }

    #[test]
    fn get_timeout_waits_then_fails() {
        let q = queue(0, 64);
        let start = Instant::now();
        let wait = Wait::timeout(Some(Duration::from_millis(30)));
        assert_eq!(q.get(wait).unwrap_err().errno, Errno::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn shutdown_drains_then_closes() {
        let q = queue(0, 64);
        q.put(b"last", Wait::Never).unwrap();
        q.shutdown().unwrap();
        assert_eq!(q.put(b"x", Wait::Never).unwrap_err().errno, Errno::Pipe);
        assert_eq!(q.get(Wait::Forever).unwrap(), b"last");
        assert_eq!(q.get(Wait::Forever).unwrap_err().errno, Errno::Pipe);
    }

    #[test]
    fn joinable_counts_tasks() {
        let q = Queue::new(QueueConfig {
            joinable: true,
            ..QueueConfig::default()
        })
        .unwrap();
        q.join(Wait::Never).unwrap();
        q.put(b"t", Wait::Never).unwrap();
        assert_eq!(q.join(Wait::Never).unwrap_err().errno, Errno::Again);
        q.get(Wait::Never).unwrap();
        assert_eq!(q.join(Wait::Never).unwrap_err().errno, Errno::Again);
        q.task_done().unwrap();
        q.join(Wait::Never).unwrap();
        assert_eq!(q.task_done().unwrap_err().errno, Errno::Inval);
        assert_eq!(queue(0, 64).task_done().unwrap_err().errno, Errno::Inval);
        assert_eq!(
            queue(0, 64).join(Wait::Never).unwrap_err().errno,
            Errno::Inval
        );
    }

    #[test]
    fn byte_limits_are_checked() {
        for bad in [0, 15, MAX_QUEUE_BYTES + 1] {
            let err = Queue::new(QueueConfig {
                max_bytes: bad,
                ..QueueConfig::default()
            })
            .unwrap_err();
            assert_eq!(err.errno, Errno::Inval);
        }
    }

    #[test]
    fn repair_recounts_messages() {
        let q = queue(0, 64);
        q.put(b"one", Wait::Never).unwrap();
        // A putter died after moving `tail` but before counting.
        drop(q.put_uncounted(b"two"));
        assert_eq!(q.header().count.load(Ordering::SeqCst), 1);
        q.header().recount.store(1, Ordering::SeqCst);
        assert_eq!(q.qsize().unwrap(), 2);
        assert_eq!(q.get(Wait::Never).unwrap(), b"one");
        assert_eq!(q.get(Wait::Never).unwrap(), b"two");
        assert_eq!(q.qsize().unwrap(), 0);
    }

    #[test]
    fn a_getter_does_not_wait_for_a_putter_holding_its_lock() {
        let q = std::sync::Arc::new(queue(0, 1024));
        q.put(b"ready", Wait::Never).unwrap();
        let put = q.lock_put().unwrap();
        let getter = {
            let q = q.clone();
            std::thread::spawn(move || q.get(Wait::Never))
        };
        let started = Instant::now();
        while !getter.is_finished() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let finished = getter.is_finished();
        drop(put);
        assert!(finished, "the get waited for the putters' lock");
        assert_eq!(getter.join().unwrap().unwrap(), b"ready");
    }
}
