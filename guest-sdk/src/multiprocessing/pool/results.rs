//! The pending results of a pool: [`AsyncResult`] (`apply_async`),
//! [`MapResult`] (`map_async`) and [`IMap`] (`imap`, `imap_unordered`).

use super::error::{into_string, outcome, timeout_us};
use super::{Pool, PoolError, PoolResult};
use crate::error::{check, take_result, Error, Result};
use crate::sys;
use procbridge_abi::{list, Errno, NO_TIMEOUT};
use std::time::Duration;

/// One submission's id in its pool.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) pool: i32,
    pub(super) id: i32,
}

impl Batch {
    /// Waits for every outcome; their encoded list.
    fn encoded(&self, timeout: i64) -> PoolResult<Vec<u8>> {
        let ret = sys::pool_result_get(self.pool, self.id, timeout);
        let len = match check(ret) {
            Ok(len) => len,
            Err(err) if err.errno() == Errno::TimedOut => return Err(PoolError::Timeout),
            Err(err) => return Err(PoolError::Os(err)),
        };
        Ok(take_result(len)?)
    }

    /// Each item's outcome, in order.
    fn each<T, F>(&self, timeout: i64, mut f: F) -> PoolResult<Vec<T>>
    where
        F: FnMut(PoolResult<Vec<u8>>) -> T,
    {
        let bytes = self.encoded(timeout)?;
        let mut out = Vec::new();
        for item in list::iter(&bytes) {
            let item =
                item.map_err(|e| PoolError::Os(Error::new(Errno::Io, format!("results: {}", e))))?;
            out.push(f(outcome(item)));
        }
        Ok(out)
    }

    fn ready(&self) -> bool {
        sys::pool_result_ready(self.pool, self.id) == 1
    }

    fn wait(&self, timeout: i64) -> PoolResult<bool> {
        match check(sys::pool_result_wait(self.pool, self.id, timeout)) {
            Ok(_) => Ok(true),
            Err(err) if err.errno() == Errno::TimedOut => Ok(false),
            Err(err) => Err(PoolError::Os(err)),
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        let _ = sys::pool_result_drop(self.pool, self.id);
    }
}

/// Reads a task's result bytes as the target's output type.
pub(super) type DecodeFn<R> = fn(Vec<u8>) -> Result<R>;

fn decoded<R>(decode: DecodeFn<R>, outcome: PoolResult<Vec<u8>>) -> PoolResult<R> {
    outcome.and_then(|bytes| decode(bytes).map_err(PoolError::Os))
}

/// The pending result of [`Pool::apply_async`] (Python's `AsyncResult`):
/// `R` is the task's result type (bytes for a task named by a string).
#[derive(Debug)]
pub struct AsyncResult<'p, R = Vec<u8>> {
    pub(super) batch: Batch,
    pub(super) decode: DecodeFn<R>,
    pub(super) _pool: &'p Pool,
}

impl<'p> AsyncResult<'p, Vec<u8>> {
    /// As [`get`](AsyncResult::get) for a string result.
    ///
    /// # Errors
    /// As [`get`](AsyncResult::get), or a result that is not UTF-8.
    pub fn get_str(&self) -> PoolResult<String> {
        into_string(self.get()?)
    }
}

impl<'p, R> AsyncResult<'p, R> {
    /// Waits for the task and gives its result or its error.
    ///
    /// # Errors
    /// The task's error (its message, or its panic's), [`PoolError::WorkerLost`],
    /// [`PoolError::TaskTimedOut`], [`PoolError::Terminated`].
    pub fn get(&self) -> PoolResult<R> {
        decoded(self.decode, self.get_within(NO_TIMEOUT))
    }

    /// As [`get`](AsyncResult::get), giving up after `timeout` with
    /// [`PoolError::Timeout`] (the task goes on).
    ///
    /// # Errors
    /// As [`get`](AsyncResult::get), or [`PoolError::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> PoolResult<R> {
        decoded(self.decode, self.get_within(timeout_us(timeout)))
    }

    fn get_within(&self, timeout: i64) -> PoolResult<Vec<u8>> {
        match self.batch.each(timeout, |o| o)?.pop() {
            Some(result) => result,
            None => Err(PoolError::Os(Error::new(Errno::Io, "no outcome"))),
        }
    }

    /// Waits until the task has finished.
    ///
    /// # Errors
    /// Only if the host refuses.
    pub fn wait(&self) -> PoolResult<()> {
        self.batch.wait(NO_TIMEOUT).map(|_| ())
    }

    /// Waits at most `timeout`; `true` when the task has finished.
    ///
    /// # Errors
    /// Only if the host refuses.
    pub fn wait_timeout(&self, timeout: Duration) -> PoolResult<bool> {
        self.batch.wait(timeout_us(timeout))
    }

    /// Whether the task has finished.
    pub fn ready(&self) -> bool {
        self.batch.ready()
    }

    /// Whether the task finished without error.
    ///
    /// # Errors
    /// [`PoolError::NotReady`] while it runs (Python: `ValueError`).
    pub fn successful(&self) -> PoolResult<bool> {
        if !self.ready() {
            return Err(PoolError::NotReady);
        }
        Ok(self.get_within(0).is_ok())
    }
}

/// The pending results of [`Pool::map_async`].
#[derive(Debug)]
pub struct MapResult<'p, R = Vec<u8>> {
    pub(super) batch: Batch,
    pub(super) decode: DecodeFn<R>,
    pub(super) _pool: &'p Pool,
}

impl<'p, R> MapResult<'p, R> {
    /// Waits for every item; their results in order, or the first error.
    ///
    /// # Errors
    /// As [`AsyncResult::get`].
    pub fn get(&self) -> PoolResult<Vec<R>> {
        self.collect(NO_TIMEOUT)
    }

    /// As [`get`](MapResult::get), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`get`](MapResult::get), or [`PoolError::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> PoolResult<Vec<R>> {
        self.collect(timeout_us(timeout))
    }

    /// Every item's own outcome, in order.
    ///
    /// # Errors
    /// Only if the host refuses (or [`PoolError::Timeout`]).
    pub fn outcomes(&self, timeout: Option<Duration>) -> PoolResult<Vec<PoolResult<R>>> {
        let timeout = timeout.map_or(NO_TIMEOUT, timeout_us);
        let decode = self.decode;
        self.batch.each(timeout, |o| decoded(decode, o))
    }

    fn collect(&self, timeout: i64) -> PoolResult<Vec<R>> {
        let decode = self.decode;
        self.batch
            .each(timeout, |o| decoded(decode, o))?
            .into_iter()
            .collect()
    }

    /// Waits until every item has finished.
    ///
    /// # Errors
    /// Only if the host refuses.
    pub fn wait(&self) -> PoolResult<()> {
        self.batch.wait(NO_TIMEOUT).map(|_| ())
    }

    /// Whether every item has finished.
    pub fn ready(&self) -> bool {
        self.batch.ready()
    }

    /// Whether every item finished without error.
    ///
    /// # Errors
    /// [`PoolError::NotReady`] while some run.
    pub fn successful(&self) -> PoolResult<bool> {
        if !self.ready() {
            return Err(PoolError::NotReady);
        }
        Ok(self.collect(0).is_ok())
    }
}

/// The results of [`Pool::imap`] / [`Pool::imap_unordered`], as they come.
#[derive(Debug)]
pub struct IMap<'p, R = Vec<u8>> {
    pub(super) batch: Batch,
    pub(super) order: i32,
    pub(super) done: bool,
    pub(super) decode: DecodeFn<R>,
    pub(super) _pool: &'p Pool,
}

impl<'p, R> IMap<'p, R> {
    /// The next result, waiting at most `timeout` ([`PoolError::Timeout`]
    /// then; the iteration can go on). `None` when all were given.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<PoolResult<R>> {
        self.next_within(timeout_us(timeout))
    }

    fn next_within(&mut self, timeout: i64) -> Option<PoolResult<R>> {
        let decode = self.decode;
        self.next_bytes(timeout).map(|o| decoded(decode, o))
    }

    fn next_bytes(&mut self, timeout: i64) -> Option<PoolResult<Vec<u8>>> {
        if self.done {
            return None;
        }
        let ret = sys::pool_result_next(self.batch.pool, self.batch.id, self.order, timeout);
        let len = match check(ret) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(len) => len,
            Err(err) if err.errno() == Errno::TimedOut => return Some(Err(PoolError::Timeout)),
            Err(err) => {
                self.done = true;
                return Some(Err(PoolError::Os(err)));
            }
        };
        match take_result(len) {
            Ok(bytes) if bytes.len() > 4 => Some(outcome(&bytes[4..])),
            Ok(_) => Some(Err(PoolError::Os(Error::new(Errno::Io, "short result")))),
            Err(err) => Some(Err(PoolError::Os(err))),
        }
    }
}

impl<'p, R> Iterator for IMap<'p, R> {
    type Item = PoolResult<R>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_within(NO_TIMEOUT)
    }
}
