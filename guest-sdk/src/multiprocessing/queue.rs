//! Python's `multiprocessing.Queue` and `JoinableQueue`.

use super::handle::SharedHandle;
use super::message::{micros, receive, Decode, Encode};
use crate::error::{check, Error, ErrorKind, Result};
use crate::sys;
use crate::task::{Decoder, Encoder, Value};
use procbridge_abi::{Errno, NO_TIMEOUT};
use std::cell::Cell;
use std::time::Duration;

/// A queue shared by the processes of the tree (`multiprocessing.Queue`).
///
/// Every message put is got exactly once, by one getter, in the order each
/// putter put them. A queue made with a `maxsize` makes putters wait while
/// it is full. An unbounded one grows with what waits in it up to its byte
/// limit (the policy's queued-bytes limit, 64 MiB by default, unless
/// [`with_limits`](Queue::with_limits) says less); there a put waits for a
/// getter as on a full queue, and [`put_nowait`](Queue::put_nowait) fails
/// with [`ErrorKind::Full`].
///
/// A `Queue` is a handle: [`clone`](Clone::clone) it to hand it to a
/// [`Process`](super::Process) or a [`Pool`](super::Pool) task as an
/// argument (see [`task!`](crate::task!)). Dropping the last clone closes
/// this process's handle (as [`close`](Queue::close) does); other
/// processes keep theirs, and a queue a task received as an argument is
/// never closed by dropping it.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::Queue;
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
#[derive(Clone, Debug)]
pub struct Queue {
    handle: SharedHandle,
    /// The size of the last message got, to size the next buffer.
    hint: Cell<usize>,
}

/// A failed put as Python raises it: `queue.Full` when the queue is full
/// (also after a timeout, with `ETIMEDOUT`) or an unbounded queue reached
/// its byte limit, `queue.ShutDown` after [`shutdown`](Queue::shutdown),
/// else the host's error (`E2BIG`: larger than the queue; `EBADF`).
fn put_error(err: Error) -> Error {
    let (kind, message) = match err.errno() {
        Errno::Again | Errno::NoBufs => (ErrorKind::Full, "the queue is full"),
        Errno::TimedOut => (ErrorKind::Full, "the queue stayed full until the timeout"),
        Errno::Pipe => (ErrorKind::Closed, "the queue is shut down"),
        _ => return err,
    };
    Error::with_kind(kind, err.errno(), message)
}

/// A failed get as Python raises it: `queue.Empty` when the queue is empty
/// (also after a timeout, with `ETIMEDOUT`), `queue.ShutDown` when it is
/// shut down and empty, else the host's error.
fn get_error(err: Error) -> Error {
    let (kind, message) = match err.errno() {
        Errno::Again => (ErrorKind::Empty, "the queue is empty"),
        Errno::TimedOut => (ErrorKind::Empty, "the queue stayed empty until the timeout"),
        Errno::Pipe => (ErrorKind::Closed, "the queue is shut down"),
        _ => return err,
    };
    Error::with_kind(kind, err.errno(), message)
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
    /// default, the policy's queued-bytes limit; at most 64 MiB).
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
        let handle = check(sys::queue_new(maxsize, max_bytes, i32::from(joinable)))?;
        Ok(Queue::from_raw(handle))
    }

    /// The queue's handle number. Passing the `Queue` itself as a task's
    /// argument is simpler: a number passed by hand must be rebuilt with
    /// [`from_raw_borrowed`](Queue::from_raw_borrowed) in the task.
    pub fn as_raw(&self) -> i32 {
        self.handle.raw()
    }

    /// The handle, which neither this `Queue` nor its clones close any
    /// more.
    pub fn into_raw(self) -> i32 {
        self.handle.release()
    }

    /// Takes ownership of a handle of this process: dropping the `Queue`
    /// (its last clone) closes it. A handle that is not an open queue makes
    /// every call fail with `EBADF`. In a task given the number by hand,
    /// use [`from_raw_borrowed`](Queue::from_raw_borrowed) instead: a pool
    /// worker runs task after task with the same copy of the handle.
    pub fn from_raw(handle: i32) -> Queue {
        Queue {
            handle: SharedHandle::owned(handle, sys::queue_close),
            hint: Cell::new(0),
        }
    }

    /// The queue behind a handle this process holds but does not own here:
    /// dropping it never closes the handle (what a task receives).
    pub fn from_raw_borrowed(handle: i32) -> Queue {
        Queue {
            handle: SharedHandle::received(handle, sys::queue_close),
            hint: Cell::new(0),
        }
    }

    fn put_with<T: Encode>(&self, item: T, timeout_us: i64) -> Result<()> {
        let ret = sys::queue_put(self.as_raw(), &item.encode(), timeout_us);
        check(ret).map(|_| ()).map_err(put_error)
    }

    /// Puts an item, waiting while the queue is full (`put(item)`).
    ///
    /// # Errors
    /// [`ErrorKind::Full`] when an unbounded queue reached its byte limit;
    /// [`ErrorKind::Closed`] after [`shutdown`](Queue::shutdown); the
    /// host's error otherwise (`E2BIG`: larger than the queue; `EBADF`: not
    /// an open queue).
    pub fn put<T: Encode>(&self, item: T) -> Result<()> {
        self.put_with(item, NO_TIMEOUT)
    }

    /// Puts an item, waiting at most `timeout` while the queue is full
    /// (`put(item, timeout=t)`).
    ///
    /// # Errors
    /// As [`put`](Queue::put); [`ErrorKind::Full`] with `ETIMEDOUT` when
    /// it stayed full.
    pub fn put_timeout<T: Encode>(&self, item: T, timeout: Duration) -> Result<()> {
        self.put_with(item, micros(timeout))
    }

    /// Puts an item if there is room now (`put_nowait(item)`).
    ///
    /// # Errors
    /// As [`put`](Queue::put); [`ErrorKind::Full`] when the queue is full.
    pub fn put_nowait<T: Encode>(&self, item: T) -> Result<()> {
        self.put_with(item, 0)
    }

    fn get_with<T: Decode>(&self, timeout_us: i64) -> Result<T> {
        let bytes = receive(&self.hint, |buf| {
            sys::queue_get(self.as_raw(), buf, timeout_us)
        })
        .map_err(get_error)?;
        T::decode(bytes)
    }

    /// Takes the oldest item, waiting for one (`get()`, `get(True)`).
    ///
    /// # Errors
    /// [`ErrorKind::Closed`] when the queue is shut down and empty; the
    /// host's error otherwise (`EBADF`; `EINVAL` when the message is not a
    /// `T`, which is then lost).
    pub fn get<T: Decode>(&self) -> Result<T> {
        self.get_with(NO_TIMEOUT)
    }

    /// Takes the oldest item, waiting at most `timeout` (`get(timeout=t)`).
    ///
    /// # Errors
    /// As [`get`](Queue::get); [`ErrorKind::Empty`] with `ETIMEDOUT` when
    /// it stayed empty.
    pub fn get_timeout<T: Decode>(&self, timeout: Duration) -> Result<T> {
        self.get_with(micros(timeout))
    }

    /// Takes the oldest item if there is one (`get_nowait()`).
    ///
    /// # Errors
    /// As [`get`](Queue::get); [`ErrorKind::Empty`] when the queue is empty.
    pub fn get_nowait<T: Decode>(&self) -> Result<T> {
        self.get_with(0)
    }

    /// The number of items in the queue (`qsize()`).
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn qsize(&self) -> Result<usize> {
        check(sys::queue_qsize(self.as_raw())).map(|n| n as usize)
    }

    /// Whether the queue is empty (`empty()`).
    ///
    /// # Errors
    /// As [`qsize`](Queue::qsize).
    pub fn empty(&self) -> Result<bool> {
        check(sys::queue_empty(self.as_raw())).map(|b| b == 1)
    }

    /// Whether the queue holds `maxsize` items (`full()`); never for an
    /// unbounded queue.
    ///
    /// # Errors
    /// As [`qsize`](Queue::qsize).
    pub fn full(&self) -> Result<bool> {
        check(sys::queue_full(self.as_raw())).map(|b| b == 1)
    }

    /// Closes this process's handle (`close()`); the queue lives on in the
    /// processes that still have it.
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn close(self) -> Result<()> {
        let handle = self.into_raw();
        check(sys::queue_close(handle)).map(|_| ())
    }

    /// Shuts the queue down for every process (`shutdown()` of Python's
    /// `queue.Queue`): puts fail with [`ErrorKind::Closed`], gets return the
    /// items left and then fail the same way; waiting callers wake up.
    ///
    /// # Errors
    /// `EBADF` when this is not an open queue.
    pub fn shutdown(&self) -> Result<()> {
        check(sys::queue_shutdown(self.as_raw())).map(|_| ())
    }
}

impl Value for Queue {
    /// A queue travels as its handle number; the receiver uses its own
    /// copy of the handle and never closes it by dropping the `Queue`.
    fn encode(&self, out: &mut Encoder) {
        out.write_handle(self.as_raw());
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        Ok(Queue::from_raw_borrowed(<i32 as Value>::decode(input)?))
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
#[derive(Clone, Debug)]
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

    /// As [`Queue::from_raw_borrowed`].
    pub fn from_raw_borrowed(handle: i32) -> JoinableQueue {
        JoinableQueue {
            queue: Queue::from_raw_borrowed(handle),
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
        check(sys::queue_task_done(self.queue.as_raw())).map(|_| ())
    }

    /// Waits until every item put has been marked done (`join()`).
    ///
    /// # Errors
    /// As [`task_done`](JoinableQueue::task_done).
    pub fn join(&self) -> Result<()> {
        check(sys::queue_join(self.queue.as_raw(), NO_TIMEOUT)).map(|_| ())
    }

    /// Waits at most `timeout` for every item to be marked done.
    ///
    /// # Errors
    /// As [`join`](JoinableQueue::join); `ETIMEDOUT` when tasks are left.
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        check(sys::queue_join(self.queue.as_raw(), micros(timeout))).map(|_| ())
    }
}

impl Value for JoinableQueue {
    /// As for [`Queue`].
    fn encode(&self, out: &mut Encoder) {
        self.queue.encode(out);
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        Queue::decode(input).map(|queue| JoinableQueue { queue })
    }
}

impl std::ops::Deref for JoinableQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        &self.queue
    }
}
