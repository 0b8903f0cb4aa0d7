//! `multiprocessing.Pool`: worker processes reused across tasks.
//!
//! A task is a function defined with [`task!`](crate::task!), taking and
//! returning typed values; tasks named by a string take and return bytes.
//! Each worker is a real OS process that runs task after task; a worker
//! that dies (killed, out of memory, trapped) is replaced and its task
//! fails with [`PoolError::WorkerLost`] instead of hanging as in Python. A
//! task's panic or error reaches `get()` with its message.
//!
//! ```no_run
//! use procbridge_sdk::multiprocessing::{Pool, Queue};
//! use procbridge_sdk::task;
//!
//! task!(fn square(x: i64) -> i64 {
//!     x * x
//! });
//!
//! task!(fn produce(q: Queue, n: i64) {
//!     q.put(n).unwrap();
//! });
//!
//! fn main() -> Result<(), procbridge_sdk::Error> {
//!     let pool = Pool::new(4)?;
//!     let squares: Vec<i64> = pool.map(square, 0..10)?;
//!     assert_eq!(squares[3], 9);
//!     assert_eq!(pool.apply_async(square, (12,))?.get()?, 144);
//!     let q = Queue::new()?; // made after the workers: they get it too
//!     pool.apply(produce, (q.clone(), 7))?;
//!     assert_eq!(q.get::<i64>()?, 7);
//!     pool.close()?;
//!     pool.join()?;
//!     Ok(())
//! }
//! ```
mod error;
mod results;

pub use error::{PoolError, PoolResult};
pub use results::{AsyncResult, IMap, MapResult};

use crate::error::take_result;
use crate::sys;
use crate::task::{Encoder, IntoArgs, Target, Task, Value};
use error::{host, into_string, timeout_us};
use procbridge_abi::pool::{NEXT_ORDERED, NEXT_UNORDERED};
use procbridge_abi::{list, NO_TIMEOUT};
use results::Batch;
use std::cell::Cell;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running,
    Closed,
    Terminated,
}

/// Sets up a [`Pool`]: `maxtasksperchild` and a per-task timeout.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::Pool;
/// use std::time::Duration;
/// let pool = Pool::builder(2)
///     .maxtasksperchild(10)
///     .task_timeout(Duration::from_secs(5))
///     .build()?;
/// # Ok::<(), procbridge_sdk::multiprocessing::PoolError>(())
/// ```
#[derive(Clone, Debug)]
pub struct PoolBuilder {
    processes: usize,
    maxtasksperchild: u32,
    task_timeout: Option<Duration>,
    retry_lost_tasks: bool,
}

impl PoolBuilder {
    /// Whether a task whose worker was lost on another machine (a job run
    /// with `--nats`) runs again on another worker: yes by default, as
    /// tasks there run at least once. `false` is for tasks that must not
    /// run twice: they fail with [`PoolError::WorkerLost`] instead, as a
    /// local worker's lost task always does.
    pub fn retry_lost_tasks(mut self, retry: bool) -> PoolBuilder {
        self.retry_lost_tasks = retry;
        self
    }

    /// A worker is replaced after this many tasks (a chunk of `map`
    /// counts as one task, as in Python). `0`: never.
    pub fn maxtasksperchild(mut self, tasks: u32) -> PoolBuilder {
        self.maxtasksperchild = tasks;
        self
    }

    /// A task running longer than this fails with
    /// [`PoolError::TaskTimedOut`]; its worker is killed and replaced.
    /// (A chunk of `n` items gets `n` times this.) Enforced by the pool's
    /// calls (`get`, `wait`, `map`, `join`, ...), and by the host's helper
    /// thread while this process is busy elsewhere.
    pub fn task_timeout(mut self, timeout: Duration) -> PoolBuilder {
        self.task_timeout = Some(timeout);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    /// `EINVAL` for 0 processes (or too many); `EAGAIN` at the tree's
    /// process limit.
    pub fn build(self) -> PoolResult<Pool> {
        crate::os::flush_std();
        let processes = i32::try_from(self.processes).unwrap_or(i32::MAX);
        let maxtasks = i32::try_from(self.maxtasksperchild).unwrap_or(i32::MAX);
        // The host refuses a task timeout of 0: any positive one is at least 1 µs.
        let timeout = self
            .task_timeout
            .map_or(NO_TIMEOUT, |t| timeout_us(t).max(1));
        let handle = host(sys::pool_new(processes, maxtasks, timeout))?;
        if !self.retry_lost_tasks {
            if let Err(err) = host(sys::pool_retry_lost(handle, 0)) {
                // The pool is this call's own, and unused.
                let _ = host(sys::pool_drop(handle));
                return Err(err.into());
            }
        }
        Ok(Pool {
            handle,
            processes: self.processes,
            state: Cell::new(State::Running),
        })
    }
}

/// A pool of worker processes, as Python's `multiprocessing.Pool`.
///
/// Dropping it terminates the workers, as leaving Python's `with Pool(..)`
/// block does: [`close`](Pool::close) and [`join`](Pool::join) first to let
/// the queued tasks finish.
#[derive(Debug)]
pub struct Pool {
    handle: i32,
    processes: usize,
    state: Cell<State>,
}

impl Pool {
    /// A pool of `processes` workers, started now.
    ///
    /// # Errors
    /// See [`PoolBuilder::build`].
    pub fn new(processes: usize) -> PoolResult<Pool> {
        Pool::builder(processes).build()
    }

    /// A builder for a pool of `processes` workers.
    pub fn builder(processes: usize) -> PoolBuilder {
        PoolBuilder {
            processes,
            maxtasksperchild: 0,
            task_timeout: None,
            retry_lost_tasks: true,
        }
    }

    /// The host's handle.
    pub fn handle(&self) -> i32 {
        self.handle
    }

    /// The OS pids of the live workers.
    ///
    /// # Errors
    /// Only if the host refuses.
    pub fn pids(&self) -> PoolResult<Vec<u32>> {
        let len = host(sys::pool_pids(self.handle))?;
        let bytes = take_result(len)?;
        Ok(bytes
            .chunks(4)
            .filter(|c| c.len() == 4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn submit(
        &self,
        task: &str,
        items: &[u8],
        chunksize: usize,
        handles: &[i32],
    ) -> PoolResult<i32> {
        if self.state.get() != State::Running {
            return Err(PoolError::Closed);
        }
        for &handle in handles {
            host(sys::pool_share(self.handle, handle))?;
        }
        crate::os::flush_std();
        let chunksize = i32::try_from(chunksize).unwrap_or(i32::MAX);
        host(sys::pool_submit(
            self.handle,
            task.as_bytes(),
            items,
            chunksize,
        ))
    }

    fn submit_all<T, I>(&self, task: &T, items: I, chunksize: Option<usize>) -> PoolResult<Batch>
    where
        T: Target,
        I: IntoIterator,
        I::Item: IntoArgs<T::Args>,
    {
        // Every item straight into the list: no buffer of its own.
        let mut list = Encoder::new();
        let mut count = 0usize;
        for item in items {
            list.list_item(|enc| item.encode_args(enc));
            count += 1;
        }
        let (encoded, handles) = list.into_parts();
        let chunksize = chunksize.unwrap_or_else(|| default_chunksize(count, self.processes));
        let id = self.submit(task.name(), &encoded, chunksize, &handles)?;
        Ok(Batch {
            pool: self.handle,
            id,
        })
    }

    /// Runs `task(args)` in a worker and waits for its result (Python's
    /// `apply`). `args` is the tuple the task takes (`(12,)`), or bytes for
    /// a task named by a string.
    ///
    /// # Errors
    /// The task's error, [`PoolError::WorkerLost`], [`PoolError::Closed`], ...
    pub fn apply<T: Target, X: IntoArgs<T::Args>>(
        &self,
        task: T,
        args: X,
    ) -> PoolResult<T::Output> {
        self.apply_async(task, args)?.get()
    }

    /// Queues `task(args)` and returns at once (Python's `apply_async`).
    /// Queues and connections among the arguments reach the workers, even
    /// those started before the queue was made.
    ///
    /// # Errors
    /// [`PoolError::Closed`] after [`close`](Pool::close); `ENOENT` when no
    /// task function is exported under that name.
    pub fn apply_async<T: Target, X: IntoArgs<T::Args>>(
        &self,
        task: T,
        args: X,
    ) -> PoolResult<AsyncResult<'_, T::Output>> {
        let mut list = Encoder::new();
        list.list_item(|enc| args.encode_args(enc));
        let (encoded, handles) = list.into_parts();
        let id = self.submit(task.name(), &encoded, 1, &handles)?;
        Ok(AsyncResult {
            batch: Batch {
                pool: self.handle,
                id,
            },
            decode: T::decode_output,
            _pool: self,
        })
    }

    /// `task` over every item, results in order (Python's `map`, with its
    /// default chunksize). Each item is the task's one argument. The first
    /// failed item's error fails the call.
    ///
    /// # Errors
    /// As [`apply`](Pool::apply).
    pub fn map<T, I>(&self, task: T, items: I) -> PoolResult<Vec<T::Output>>
    where
        T: Target,
        I: IntoIterator,
        I::Item: IntoArgs<T::Args>,
    {
        self.map_async(task, items, None)?.get()
    }

    /// [`map`](Pool::map) sending `chunksize` items per request to a worker.
    ///
    /// # Errors
    /// As [`apply`](Pool::apply).
    pub fn map_chunked<T, I>(
        &self,
        task: T,
        items: I,
        chunksize: usize,
    ) -> PoolResult<Vec<T::Output>>
    where
        T: Target,
        I: IntoIterator,
        I::Item: IntoArgs<T::Args>,
    {
        self.map_async(task, items, Some(chunksize))?.get()
    }

    /// [`map`](Pool::map) of a task named by a string, for string results.
    ///
    /// # Errors
    /// As [`map`](Pool::map), or a result that is not UTF-8.
    pub fn map_str<I, A>(&self, task: &str, items: I) -> PoolResult<Vec<String>>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        self.map(task, items)?
            .into_iter()
            .map(into_string)
            .collect()
    }

    /// Queues `task` over every item and returns at once (Python's
    /// `map_async`); `None` chunksize is Python's default.
    ///
    /// # Errors
    /// As [`apply_async`](Pool::apply_async).
    pub fn map_async<T, I>(
        &self,
        task: T,
        items: I,
        chunksize: Option<usize>,
    ) -> PoolResult<MapResult<'_, T::Output>>
    where
        T: Target,
        I: IntoIterator,
        I::Item: IntoArgs<T::Args>,
    {
        Ok(MapResult {
            batch: self.submit_all(&task, items, chunksize)?,
            decode: T::decode_output,
            _pool: self,
        })
    }

    /// `task` over every item, yielding results in order as they come
    /// (Python's `imap`; `chunksize` 1 is its default).
    ///
    /// # Errors
    /// As [`apply_async`](Pool::apply_async); each item's own error comes
    /// from the iterator.
    pub fn imap<T, I>(&self, task: T, items: I, chunksize: usize) -> PoolResult<IMap<'_, T::Output>>
    where
        T: Target,
        I: IntoIterator,
        I::Item: IntoArgs<T::Args>,
    {
        Ok(IMap {
            batch: self.submit_all(&task, items, Some(chunksize))?,
            order: NEXT_ORDERED,
            done: false,
            decode: T::decode_output,
            _pool: self,
        })
    }

    /// As [`imap`](Pool::imap), yielding each result as soon as it finishes
    /// (Python's `imap_unordered`).
    ///
    /// # Errors
    /// As [`imap`](Pool::imap).
    pub fn imap_unordered<T, I>(
        &self,
        task: T,
        items: I,
        chunksize: usize,
    ) -> PoolResult<IMap<'_, T::Output>>
    where
        T: Target,
        I: IntoIterator,
        I::Item: IntoArgs<T::Args>,
    {
        let mut it = self.imap(task, items, chunksize)?;
        it.order = NEXT_UNORDERED;
        Ok(it)
    }

    /// `task` over argument tuples (Python's `starmap`): each item is the
    /// whole tuple of the task's arguments.
    ///
    /// # Errors
    /// As [`map`](Pool::map).
    pub fn starmap<A, R, I>(&self, task: Task<A, R>, items: I) -> PoolResult<Vec<R>>
    where
        A: Value,
        R: Value,
        I: IntoIterator<Item = A>,
    {
        self.map(task, items)
    }

    /// `starmap` for a task named by a string: each item is a list of
    /// arguments, which the task unpacks with [`star_args`].
    ///
    /// # Errors
    /// As [`map`](Pool::map).
    pub fn starmap_raw<I, L, A>(&self, task: &str, items: I) -> PoolResult<Vec<Vec<u8>>>
    where
        I: IntoIterator<Item = L>,
        L: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let packed: Vec<Vec<u8>> = items
            .into_iter()
            .map(|args| {
                let mut out = Vec::new();
                for arg in args {
                    list::push(&mut out, arg.as_ref());
                }
                out
            })
            .collect();
        self.map(task, packed)
    }

    /// Takes no more tasks; the queued ones still run (Python's `close`).
    ///
    /// # Errors
    /// Only if the host refuses.
    pub fn close(&self) -> PoolResult<()> {
        host(sys::pool_close(self.handle))?;
        if self.state.get() == State::Running {
            self.state.set(State::Closed);
        }
        Ok(())
    }

    /// Kills the workers now; unfinished tasks fail with
    /// [`PoolError::Terminated`] (Python's `terminate`).
    ///
    /// # Errors
    /// Only if the host refuses.
    pub fn terminate(&self) -> PoolResult<()> {
        host(sys::pool_terminate(self.handle))?;
        self.state.set(State::Terminated);
        Ok(())
    }

    /// Waits until every task ran and the workers exited (Python's `join`).
    ///
    /// # Errors
    /// [`PoolError::NotClosed`] before [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate).
    pub fn join(&self) -> PoolResult<()> {
        if self.state.get() == State::Running {
            return Err(PoolError::NotClosed);
        }
        host(sys::pool_join(self.handle, NO_TIMEOUT)).map(|_| ())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = sys::pool_drop(self.handle);
    }
}

/// Python's default chunksize for `map`: about four chunks per worker.
fn default_chunksize(items: usize, processes: usize) -> usize {
    let parts = processes.max(1) * 4;
    let (size, extra) = (items / parts, items % parts);
    if extra > 0 {
        size + 1
    } else {
        size.max(1)
    }
}

/// The arguments of a [`starmap_raw`](Pool::starmap_raw) task.
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::pool::star_args;
/// procbridge_sdk::task!(add, |args: &[u8]| -> Result<String, String> {
///     let args = star_args(args)?;
///     let n: Vec<i64> = args.iter().map(|a| String::from_utf8_lossy(a).parse().unwrap_or(0)).collect();
///     Ok((n[0] + n[1]).to_string())
/// });
/// # fn main() {}
/// ```
///
/// # Errors
/// A message when `args` is not a list.
pub fn star_args(args: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    list::decode(args).map_err(|e| format!("starmap arguments: {}", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunksize_is_pythons() {
        assert_eq!(default_chunksize(20_000, 4), 1250);
        assert_eq!(default_chunksize(10, 4), 1);
        assert_eq!(default_chunksize(0, 4), 1);
        assert_eq!(default_chunksize(17, 1), 5);
    }
}
