//! Python's `multiprocessing.Queue` and `JoinableQueue`.

use super::message::{micros, receive, Decode, Encode};
use crate::error::{check, Error, Result};
use crate::sys;
use procbridge_abi::{Errno, NO_TIMEOUT};
use std::cell::Cell;
use std::fmt;
use std::time::Duration;

/// A queue shared by the processes of the tree (`multiprocessing.Queue`).
///
/// Every message put is got exactly once, by one getter, in the order each
/// putter put them. A queue made with a `maxsize` makes putters wait while
/// it is full; an unbounded one never does, but holds at most its byte
/// limit (8 MiB unless [`with_limits`](Queue::with_limits) says otherwise):
/// a put past it fails with [`PutError::Full`].
///
/// Dropping a `Queue` closes this process's handle (as
/// [`close`](Queue::close) does); other processes keep theirs.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::{GetError, Queue};
///
/// let q = Queue::new()?;
/// for value in ["A", "B", "C"] {
///     q.put(value)?;
/// }
/// assert_eq!(q.qsize()?, 3);
/// let first: String = q.get()?;
/// assert_eq!(first, "A");
/// # Ok::<(), procbridge_sdk::Error>(())
/// ```
#[derive(Debug)]
pub struct Queue {
    handle: i32,
    /// The size of the last message got, to size the next buffer.
    hint: Cell<usize>,
}

/// Why a put failed; the item comes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutError<T> {
    /// The queue is full (`put_nowait`), or an unbounded queue reached its
    /// byte limit (`EAGAIN`, `ENOBUFS`).
    Full(T),
    /// The queue stayed full until the timeout (`ETIMEDOUT`).
    Timeout(T),
    /// The queue was shut down (`EPIPE`).
    Closed(T),
    /// Another error: a closed handle, a message too large for the queue...
    Failed(T, Error),
}

/// Why a get failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetError {
    /// The queue is empty (`get_nowait`, `EAGAIN`).
    Empty,
    /// The queue stayed empty until the timeout (`ETIMEDOUT`).
    Timeout,
    /// The queue was shut down and is empty (`EPIPE`).
    Closed,
    /// Another error: a closed handle, a message that does not decode...
    Failed(Error),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(t) | PutError::Timeout(t) | PutError::Closed(t) => t,
            PutError::Failed(t, _) => t,
        }
    }

    fn new(item: T, err: Error) -> Self {
        match err.errno() {
            Errno::Again | Errno::NoBufs => PutError::Full(item),
            Errno::TimedOut => PutError::Timeout(item),
            Errno::Pipe => PutError::Closed(item),
            _ => PutError::Failed(item, err),
        }
    }

    fn errno(&self) -> Errno {
        match self {
            PutError::Full(_) => Errno::Again,
            PutError::Timeout(_) => Errno::TimedOut,
            PutError::Closed(_) => Errno::Pipe,
            PutError::Failed(_, e) => e.errno(),
        }
    }
}

impl GetError {
    fn new(err: Error) -> Self {
        match err.errno() {
            Errno::Again => GetError::Empty,
            Errno::TimedOut => GetError::Timeout,
            Errno::Pipe => GetError::Closed,
            _ => GetError::Failed(err),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::Timeout(_) => f.write_str("the queue stayed full until the timeout"),
            PutError::Closed(_) => f.write_str("the queue is shut down"),
            PutError::Failed(_, e) => write!(f, "put failed: {e}"),
        }
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::Timeout => f.write_str("the queue stayed empty until the timeout"),
            GetError::Closed => f.write_str("the queue is shut down"),
            GetError::Failed(e) => write!(f, "get failed: {e}"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for PutError<T> {}
impl std::error::Error for GetError {}

impl<T> From<PutError<T>> for Error {
    fn from(err: PutError<T>) -> Error {
        match err {
            PutError::Failed(_, e) => e,
            other => Error::new(other.errno(), other.to_string()),
        }
    }
}

impl From<GetError> for Error {
    fn from(err: GetError) -> Error {
        let errno = match &err {
            GetError::Empty => Errno::Again,
            GetError::Timeout => Errno::TimedOut,
            GetError::Closed => Errno::Pipe,
            GetError::Failed(e) => return e.clone(),
        };
        Error::new(errno, err.to_string())
    }
}

impl Queue {
    /// An unbounded queue (`Queue()`).
    ///
    /// # Errors
    /// `EMFILE` when the handle table is full; `ENOMEM` over the host's
    /// limit on queued bytes.
    pub fn new() -> Result<Queue> {
        Queue::with_limits(0, 0)
    }

    /// A queue of at most `maxsize` messages (`Queue(maxsize)`); `0` is
    /// unbounded.
    ///
    /// # Errors
    /// As [`new`](Queue::new); `EINVAL` for a `maxsize` over `i32::MAX`.
    pub fn with_maxsize(maxsize: usize) -> Result<Queue> {
        Queue::with_limits(maxsize, 0)
    }

    /// A queue of at most `maxsize` messages (`0`: unbounded) and
    /// `max_bytes` queued bytes, counting 4 per message (`0`: the host's
    /// default, 8 MiB; at most 64 MiB).
    ///
    /// # Errors
    /// As [`with_maxsize`](Queue::with_maxsize); `EINVAL` for a byte limit
    /// the host does not accept.
    pub fn with_limits(maxsize: usize, max_bytes: usize) -> Result<Queue> {
        Queue::create(maxsize, max_bytes, false)
    }

    fn create(maxsize: usize, max_bytes: usize, joinable: bool) -> Result<Queue> {
        let int = |n: usize, what: &str| {
            i32::try_from(n)
                .map_err(|_| Error::new(Errno::Inval, format!("{what} {n} is too large")))
        };
        let (maxsize, max_bytes) = (int(maxsize, "maxsize")?, int(max_bytes, "max_bytes")?);
        // SAFETY: integer arguments only.
        let handle = check(unsafe { sys::queue_new(maxsize, max_bytes, i32::from(joinable)) })?;
        Ok(Queue::from_raw(handle))
    }

    /// The queue's handle, to pass to another process of the tree (in a
    /// child's arguments), which rebuilds it with [`from_raw`](Queue::from_raw).
    pub fn as_raw(&self) -> i32 {
        self.handle
    }

    /// The handle, which this `Queue` no longer closes on drop.
    pub fn into_raw(self) -> i32 {
        let handle = self.handle;
        std::mem::forget(self);
        handle
    }

    /// The queue behind a handle given by [`as_raw`](Queue::as_raw) in this
    /// process or its parent. A handle that is not an open queue makes every
    /// call fail with `EBADF`.
    pub fn from_raw(handle: i32) -> Queue {
        Queue {
            handle,
            hint: Cell::new(0),
        }
    }

    fn put_with<T: Encode>(
        &self,
        item: T,
        timeout_us: i64,
    ) -> std::result::Result<(), PutError<T>> {
        let ret = {
            let bytes = item.encode();
            let len = match i32::try_from(bytes.len()) {
                Ok(len) => len,
                Err(_) => {
                    drop(bytes);
                    return Err(PutError::Failed(
                        item,
                        Error::new(Errno::TooBig, "message too large"),
                    ));
                }
            };
            // SAFETY: `bytes` is readable for `len` bytes during the call.
            unsafe { sys::queue_put(self.handle, bytes.as_ptr(), len, timeout_us) }
        };
        match check(ret) {
            Ok(_) => Ok(()),
            Err(err) => Err(PutError::new(item, err)),
        }
    }

    /// Puts an item, waiting while the queue is full (`put(item)`).
    ///
    /// # Errors
    /// [`PutError::Full`] when an unbounded queue reached its byte limit;
    /// [`PutError::Closed`] after [`shutdown`](Queue::shutdown);
    /// [`PutError::Failed`] for other errors (`E2BIG`: larger than the
    /// queue; `EBADF`: not an open queue).
    pub fn put<T: Encode>(&self, item: T) -> std::result::Result<(), PutError<T>> {
        self.put_with(item, NO_TIMEOUT)
    }

    /// Puts an item, waiting at most `timeout` while the queue is full
    /// (`put(item, timeout=t)`).
    ///
    /// # Errors
    /// As [`put`](Queue::put); [`PutError::Timeout`] when it stayed full.
    pub fn put_timeout<T: Encode>(
        &self,
        item: T,
        timeout: Duration,
    ) -> std::result::Result<(), PutError<T>> {
        self.put_with(item, micros(timeout))
    }

    /// Puts an item if there is room now (`put_nowait(item)`).
    ///
    /// # Errors
    /// As [`put`](Queue::put); [`PutError::Full`] when the queue is full.
    pub fn put_nowait<T: Encode>(&self, item: T) -> std::result::Result<(), PutError<T>> {
        self.put_with(item, 0)
    }

    fn get_with<T: Decode>(&self, timeout_us: i64) -> std::result::Result<T, GetError> {
        let bytes = receive(&self.hint, |ptr, cap| {
            // SAFETY: `ptr` is writable for `cap` bytes during the call.
            unsafe { sys::queue_get(self.handle, ptr, cap, timeout_us) }
        })
        .map_err(GetError::new)?;
        T::decode(bytes).map_err(GetError::Failed)
    }

    /// Takes the oldest item, waiting for one (`get()`, `get(True)`).
    ///
    /// # Errors
    /// [`GetError::Closed`] when the queue is shut down and empty;
    /// [`GetError::Failed`] for other errors (`EBADF`; `EINVAL` when the
    /// message is not a `T`, which is then lost).
    pub fn get<T: Decode>(&self) -> std::result::Result<T, GetError> {
        self.get_with(NO_TIMEOUT)
    }

    /// Takes the oldest item, waiting at most `timeout` (`get(timeout=t)`).
    ///
    /// # Errors
    /// As [`get`](Queue::get); [`GetError::Timeout`] when it stayed empty.
    pub fn get_timeout<T: Decode>(&self, timeout: Duration) -> std::result::Result<T, GetError> {
        self.get_with(micros(timeout))
    }

    /// Takes the oldest item if there is one (`get_nowait()`).
    ///
    /// # Errors
    /// As [`get`](Queue::get); [`GetError::Empty`] when the queue is empty.
    pub fn get_nowait<T: Decode>(&self) -> std::result::Result<T, GetError> {
        self.get_with(0)
    }

    /// The number of items in the queue (`qsize()`).
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn qsize(&self) -> Result<usize> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_qsize(self.handle) }).map(|n| n as usize)
    }

    /// Whether the queue is empty (`empty()`).
    ///
    /// # Errors
    /// As [`qsize`](Queue::qsize).
    pub fn empty(&self) -> Result<bool> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_empty(self.handle) }).map(|b| b == 1)
    }

    /// Whether the queue holds `maxsize` items (`full()`); never for an
    /// unbounded queue.
    ///
    /// # Errors
    /// As [`qsize`](Queue::qsize).
    pub fn full(&self) -> Result<bool> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_full(self.handle) }).map(|b| b == 1)
    }

    /// Closes this process's handle (`close()`); the queue lives on in the
    /// processes that still have it.
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn close(self) -> Result<()> {
        let handle = self.into_raw();
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_close(handle) }).map(|_| ())
    }

    /// Shuts the queue down for every process (`shutdown()` of Python's
    /// `queue.Queue`): puts fail with [`PutError::Closed`], gets return the
    /// items left and then [`GetError::Closed`]; waiting callers wake up.
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn shutdown(&self) -> Result<()> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_shutdown(self.handle) }).map(|_| ())
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: integer arguments only. An already closed handle is EBADF,
        // which there is no one to report to.
        unsafe {
            sys::queue_close(self.handle);
        }
    }
}

/// A [`Queue`] that counts unfinished tasks (`multiprocessing.JoinableQueue`):
/// every put adds one, [`task_done`](JoinableQueue::task_done) removes one,
/// and [`join`](JoinableQueue::join) waits until none are left. It derefs to
/// [`Queue`] for everything else.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::JoinableQueue;
///
/// let q = JoinableQueue::new()?;
/// q.put("job")?;
/// let job: String = q.get()?;
/// q.task_done()?;
/// q.join()?;
/// # Ok::<(), procbridge_sdk::Error>(())
/// ```
#[derive(Debug)]
pub struct JoinableQueue {
    queue: Queue,
}

impl JoinableQueue {
    /// An unbounded joinable queue.
    ///
    /// # Errors
    /// As [`Queue::new`].
    pub fn new() -> Result<JoinableQueue> {
        JoinableQueue::with_limits(0, 0)
    }

    /// A joinable queue of at most `maxsize` items.
    ///
    /// # Errors
    /// As [`Queue::with_maxsize`].
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue> {
        JoinableQueue::with_limits(maxsize, 0)
    }

    /// A joinable queue with both limits; see [`Queue::with_limits`].
    ///
    /// # Errors
    /// As [`Queue::with_limits`].
    pub fn with_limits(maxsize: usize, max_bytes: usize) -> Result<JoinableQueue> {
        Queue::create(maxsize, max_bytes, true).map(|queue| JoinableQueue { queue })
    }

    /// The joinable queue behind a raw handle (see [`Queue::from_raw`]).
    pub fn from_raw(handle: i32) -> JoinableQueue {
        JoinableQueue {
            queue: Queue::from_raw(handle),
        }
    }

    /// The handle, which this queue no longer closes on drop.
    pub fn into_raw(self) -> i32 {
        self.queue.into_raw()
    }

    /// Closes this process's handle; see [`Queue::close`].
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn close(self) -> Result<()> {
        self.queue.close()
    }

    /// Marks one task got from the queue as done (`task_done()`).
    ///
    /// # Errors
    /// `EINVAL` when called more times than items were put, or on a handle
    /// of a queue that is not joinable; `EBADF`.
    pub fn task_done(&self) -> Result<()> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_task_done(self.queue.handle) }).map(|_| ())
    }

    /// Waits until every item put has been marked done (`join()`).
    ///
    /// # Errors
    /// As [`task_done`](JoinableQueue::task_done).
    pub fn join(&self) -> Result<()> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_join(self.queue.handle, NO_TIMEOUT) }).map(|_| ())
    }

    /// Waits at most `timeout` for every item to be marked done.
    ///
    /// # Errors
    /// As [`join`](JoinableQueue::join); `ETIMEDOUT` when tasks are left.
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        // SAFETY: integer arguments only.
        check(unsafe { sys::queue_join(self.queue.handle, micros(timeout)) }).map(|_| ())
    }
}

impl std::ops::Deref for JoinableQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        &self.queue
    }
}
