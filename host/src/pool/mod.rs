//! `multiprocessing.Pool` for guests: worker processes reused across tasks.
//!
//! A [`Pool`] owns `processes` workers. Each is a forked child of the host
//! (the fork start method: a copy of the instance at the moment it is
//! started) that serves tasks in a loop ([`serve`]): it reads a request
//! from its socket, calls the named task export for each item through the
//! task ABI, and writes the reply. The same worker (same pid) runs task
//! after task.
//!
//! The parent side has no helper thread (the host may fork at any time): it
//! makes progress only inside the guest's pool calls, in [`Pool::step`],
//! one `poll(2)` round over the workers' sockets that
//!
//! * sends queued chunks to workers that are free (and, when tasks are
//!   short, a few more to keep busy workers fed),
//! * collects replies into the submissions' [`Batch`]es,
//! * notices a worker's death (its socket closes): the chunk it was running
//!   fails with a worker-lost outcome, the chunks queued behind it go back
//!   to the queue, and a new worker is started,
//! * enforces the per-task timeout: the worker is killed, its task fails
//!   with a timeout outcome, and it is replaced,
//! * retires workers that ran `maxtasksperchild` chunks.
//!
//! Starting workers needs the guest's `Caller` (a worker serves in the
//! forked copy of the running host call), so [`Pool::missing_workers`]
//! tells the host functions how many to start with [`worker::start`].

mod batch;
mod chunk;
mod frame;
mod serve;
pub(crate) mod worker;

use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::process::child::Child;
use batch::Outcome;
pub(crate) use batch::{Batch, Next};
use chunk::Chunk;
use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::{Read, Worker};

/// Handle kind of a pool.
pub(crate) const POOL_KIND: &str = "pool";

/// The most workers one pool may have.
pub(crate) const MAX_WORKERS: usize = 256;

/// The most items one submission may have.
const MAX_ITEMS: usize = 1 << 20;

/// After a worker could not be started, the pool waits this long before
/// trying again.
const RESTART_BACKOFF: Duration = Duration::from_millis(100);

/// Chunks that finish faster than this are sent to busy workers ahead of
/// time (up to [`PIPELINE_DEPTH`] per worker), so a worker never waits for
/// the parent between short tasks. Longer ones go only to free workers, as
/// Python's pool hands a task to the first worker that is free.
const PIPELINE_BELOW: Duration = Duration::from_micros(500);
const PIPELINE_DEPTH: usize = 4;

/// See [`Pool::wants_round`].
const SUBMIT_ROUND_EVERY: Duration = Duration::from_micros(50);

/// How long a pool call may block.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all: one round of progress.
    Poll,
    /// Until this instant.
    Until(Instant),
    /// Until done.
    Forever,
}

impl Wait {
    /// From an ABI timeout: microseconds, `-1` forever, `0` do not block.
    pub(crate) fn from_us(timeout_us: i64) -> BridgeResult<Wait> {
        match timeout_us {
            procbridge_abi::NO_TIMEOUT => Ok(Wait::Forever),
            0 => Ok(Wait::Poll),
            t if t < 0 => Err(BridgeError::invalid(format!("timeout {t} is negative"))),
            t => Ok(Instant::now()
                .checked_add(Duration::from_micros(t as u64))
                .map_or(Wait::Forever, Wait::Until)),
        }
    }

    /// Whether the time to block is over.
    pub(crate) fn expired(&self) -> bool {
        match self {
            Wait::Poll => true,
            Wait::Until(deadline) => Instant::now() >= *deadline,
            Wait::Forever => false,
        }
    }
}

/// Where a pool is in its life, as Python's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Taking tasks.
    Running,
    /// `close()`d: running what it has, taking nothing more.
    Closed,
    /// `terminate()`d: its workers are gone.
    Terminated,
    /// `join()`ed after `close()`: every task ran, the workers exited.
    Joined,
}

/// How a pool is set up.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// How many workers it keeps.
    pub(crate) processes: usize,
    /// Chunks a worker runs before it is replaced (`maxtasksperchild`).
    pub(crate) max_tasks: Option<u32>,
    /// How long one task may run.
    pub(crate) task_timeout: Option<Duration>,
    /// Bytes of arguments that may wait in the queue.
    pub(crate) max_queued_bytes: usize,
}

/// Why a worker is being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// Its socket closed: it died (or exited after a fatal reply).
    Closed,
    /// It sent something that is not a valid reply.
    Broken,
    /// Its task ran over the timeout.
    TimedOut,
}

/// A pool of worker processes; see the module docs.
#[derive(Debug)]
pub(crate) struct Pool {
    config: Config,
    state: State,
    workers: Vec<Worker>,
    /// Workers told to exit, not yet reaped.
    retired: Vec<Child>,
    queue: VecDeque<Chunk>,
    queued_bytes: usize,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    next_chunk: u64,
    /// A running average of how long a chunk takes.
    service: Option<Duration>,
    start_failed_at: Option<Instant>,
    /// When [`Pool::step`] last ran.
    last_step: Instant,
}

impl Pool {
    /// A pool with no worker yet (start them as [`Pool::missing_workers`]
    /// says).
    pub(crate) fn new(config: Config) -> Pool {
        Pool {
            config,
            state: State::Running,
            workers: Vec::new(),
            retired: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            batches: HashMap::new(),
            next_batch: 1,
            next_chunk: 0,
            service: None,
            start_failed_at: None,
            last_step: Instant::now(),
        }
    }

    /// Its state.
    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The pids of its live workers.
    pub(crate) fn pids(&self) -> Vec<i32> {
        self.workers.iter().map(Worker::pid).collect()
    }

    /// How many workers should be started now.
    pub(crate) fn missing_workers(&self) -> usize {
        match self.state {
            State::Terminated | State::Joined => return 0,
            State::Closed if self.is_idle() => return 0,
            _ => {}
        }
        if let Some(at) = self.start_failed_at {
            if at.elapsed() < RESTART_BACKOFF {
                return 0;
            }
        }
        self.config.processes.saturating_sub(self.workers.len())
    }

    /// The parent ends of the workers' sockets (a new worker closes them).
    pub(crate) fn sibling_fds(&self) -> Vec<RawFd> {
        self.workers.iter().map(Worker::fd).collect()
    }

    /// Takes in a newly started worker.
    pub(crate) fn add_worker(&mut self, worker: Worker) {
        self.start_failed_at = None;
        self.workers.push(worker);
    }

    /// A worker could not be started. With no worker left, the queued
    /// tasks fail rather than wait forever.
    pub(crate) fn start_failed(&mut self, err: &BridgeError) {
        self.start_failed_at = Some(Instant::now());
        if self.workers.is_empty() {
            let outcome =
                Outcome::WorkerLost(format!("no worker could be started: {}", err.message));
            for chunk in std::mem::take(&mut self.queue) {
                self.fail_chunk(&chunk, &outcome);
            }
            self.queued_bytes = 0;
        }
    }

    /// Queues the items of the list-encoded `list` for the task export
    /// `name`, `chunksize` items per request, and returns the submission's
    /// id.
    ///
    /// # Errors
    /// `EINVAL` unless the pool is running (Python: "Pool not running"), or
    /// for a malformed list;
    /// `ENOBUFS` past the policy's queued-bytes limit.
    pub(crate) fn submit(
        &mut self,
        name: &str,
        list: &[u8],
        chunksize: usize,
    ) -> BridgeResult<i32> {
        if self.state != State::Running {
            return Err(BridgeError::invalid("Pool not running"));
        }
        let ends = chunk::item_ends(list, MAX_ITEMS)?;
        let size = list.len();
        if self.queued_bytes.saturating_add(size) > self.config.max_queued_bytes {
            return Err(BridgeError::new(
                Errno::NoBufs,
                format!(
                    "{} bytes of task arguments would wait in the pool's queue (limit {})",
                    self.queued_bytes.saturating_add(size),
                    self.config.max_queued_bytes
                ),
            ));
        }
        let id = self.next_batch;
        let handle = i32::try_from(id)
            .map_err(|_| BridgeError::new(Errno::Again, "this pool has run out of result ids"))?;
        self.next_batch += 1;
        self.batches.insert(id, Batch::new(ends.len()));
        let name: Arc<str> = Arc::from(name);
        let chunks = chunk::split(id, &name, list, &ends, chunksize, &mut self.next_chunk);
        self.queue.extend(chunks);
        self.queued_bytes += size;
        Ok(handle)
    }

    /// The results of submission `id`.
    ///
    /// # Errors
    /// `EINVAL` for an id this pool did not give (or that was dropped).
    pub(crate) fn batch(&mut self, id: i32) -> BridgeResult<&mut Batch> {
        u64::try_from(id)
            .ok()
            .and_then(|id| self.batches.get_mut(&id))
            .ok_or_else(|| BridgeError::invalid(format!("no result {id} in this pool")))
    }

    /// Forgets submission `id` (its remaining results are dropped).
    pub(crate) fn drop_batch(&mut self, id: i32) -> BridgeResult<()> {
        self.batch(id)?;
        self.batches.remove(&(id as u64));
        Ok(())
    }

    /// `close()`: take no more tasks.
    pub(crate) fn close(&mut self) {
        if self.state == State::Running {
            self.state = State::Closed;
        }
    }

    /// `terminate()`: kill the workers now; unfinished tasks fail.
    pub(crate) fn terminate(&mut self) {
        for mut worker in self.workers.drain(..) {
            let _ = worker.kill();
        }
        for mut child in self.retired.drain(..) {
            let _ = child.signal(libc::SIGKILL);
        }
        self.queue.clear();
        self.queued_bytes = 0;
        for batch in self.batches.values_mut() {
            batch.finish_all(&Outcome::Terminated);
        }
        self.state = State::Terminated;
    }

    /// Whether a submission should make a round of progress now: a worker
    /// is free (the task should start at once), a worker is missing, or the
    /// last round is more than [`SUBMIT_ROUND_EVERY`] old. Otherwise a burst
    /// of `apply_async` calls only queues, and the workers, fed ahead of
    /// time, are not woken once per task.
    pub(crate) fn wants_round(&self) -> bool {
        let max_tasks = self.config.max_tasks;
        self.last_step.elapsed() >= SUBMIT_ROUND_EVERY
            || self.missing_workers() > 0
            || self.workers.iter().any(|w| {
                w.in_flight.is_empty() && !w.dying && max_tasks.is_none_or(|max| w.sent < max)
            })
    }

    /// Whether no task is queued or running.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.workers.iter().all(|w| w.in_flight.is_empty())
    }

    /// The end of `join()` once idle: tells the workers to exit and reaps
    /// them.
    pub(crate) fn stop_workers(&mut self) {
        for worker in self.workers.drain(..) {
            self.retired.push(worker.retire());
        }
        for mut child in self.retired.drain(..) {
            if let Ok(None) = child.wait(Some(Duration::from_secs(5))) {
                let _ = child.signal(libc::SIGKILL);
            }
        }
        self.state = State::Joined;
    }

    /// One round of progress; blocks in `poll` at most as `wait` allows.
    pub(crate) fn step(&mut self, wait: Wait) -> BridgeResult<()> {
        self.last_step = Instant::now();
        self.retired
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        self.dispatch();
        let mut ended: Vec<(usize, Cause)> = Vec::new();
        for (index, worker) in self.workers.iter_mut().enumerate() {
            if worker.wants_write() && worker.flush().is_err() {
                ended.push((index, Cause::Closed));
            }
        }
        if ended.is_empty() {
            self.poll_round(wait, &mut ended)?;
        }
        self.check_deadlines(&mut ended);
        // Stable: a death seen by `poll` wins over a deadline.
        ended.sort_by_key(|&(index, _)| std::cmp::Reverse(index));
        ended.dedup_by_key(|&mut (index, _)| index);
        for (index, cause) in ended {
            let worker = self.workers.remove(index);
            self.bury(worker, cause);
        }
        self.retire_spent();
        self.dispatch();
        for worker in &mut self.workers {
            if worker.wants_write() {
                let _ = worker.flush();
            }
        }
        Ok(())
    }

    fn poll_round(&mut self, wait: Wait, ended: &mut Vec<(usize, Cause)>) -> BridgeResult<()> {
        let mut fds: Vec<libc::pollfd> = self
            .workers
            .iter()
            .map(|w| libc::pollfd {
                fd: w.fd(),
                events: libc::POLLIN | if w.wants_write() { libc::POLLOUT } else { 0 },
                revents: 0,
            })
            .collect();
        let timeout = self.poll_timeout(wait);
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a valid array; `ts_ptr` is null or a local.
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        if ready <= 0 {
            return Ok(());
        }
        for (index, pfd) in fds.iter().enumerate() {
            if pfd.revents == 0 {
                continue;
            }
            if pfd.revents & libc::POLLOUT != 0 && self.workers[index].flush().is_err() {
                ended.push((index, Cause::Closed));
                continue;
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                let read = self.workers[index].read();
                if !self.take_replies(index) {
                    ended.push((index, Cause::Broken));
                } else if read == Read::Closed {
                    ended.push((index, Cause::Closed));
                }
            }
        }
        Ok(())
    }

    /// How long `poll` may block: what `wait` allows, cut short by the
    /// nearest task deadline and the next restart attempt.
    fn poll_timeout(&self, wait: Wait) -> Option<Duration> {
        let now = Instant::now();
        let mut limit = match wait {
            Wait::Poll => return Some(Duration::ZERO),
            Wait::Until(deadline) => Some(deadline.saturating_duration_since(now)),
            Wait::Forever => None,
        };
        let mut cut = |d: Duration| limit = Some(limit.map_or(d, |l| l.min(d)));
        for worker in &self.workers {
            if let Some(deadline) = self.deadline_of(worker) {
                cut(deadline.saturating_duration_since(now));
            }
        }
        if let Some(at) = self.start_failed_at {
            if self.workers.len() < self.config.processes {
                cut((at + RESTART_BACKOFF).saturating_duration_since(now));
            }
        }
        limit
    }

    /// When the chunk a worker is running times out.
    fn deadline_of(&self, worker: &Worker) -> Option<Instant> {
        let timeout = self.config.task_timeout?;
        let head = worker.in_flight.front()?;
        let items = u32::try_from(head.count).unwrap_or(u32::MAX).max(1);
        worker.head_since.checked_add(timeout.saturating_mul(items))
    }

    fn check_deadlines(&self, ended: &mut Vec<(usize, Cause)>) {
        let now = Instant::now();
        for (index, worker) in self.workers.iter().enumerate() {
            if self.deadline_of(worker).is_some_and(|d| now >= d) {
                ended.push((index, Cause::TimedOut));
            }
        }
    }

    /// Sends queued chunks: first one to each free worker, then (for short
    /// tasks) more to busy ones.
    fn dispatch(&mut self) {
        let depth = match self.service {
            Some(service) if service < PIPELINE_BELOW => PIPELINE_DEPTH,
            _ => 1,
        };
        let max_tasks = self.config.max_tasks;
        for level in 1..=depth {
            for worker in &mut self.workers {
                while worker.in_flight.len() < level
                    && !worker.dying
                    && max_tasks.is_none_or(|max| worker.sent < max)
                {
                    let Some(chunk) = self.queue.pop_front() else {
                        return;
                    };
                    self.queued_bytes = self.queued_bytes.saturating_sub(chunk.size());
                    worker.send(chunk);
                }
            }
        }
    }

    /// Decodes the replies worker `index` sent. `false` if it sent garbage.
    fn take_replies(&mut self, index: usize) -> bool {
        let input = self.workers[index].take_input();
        let mut used = 0;
        let mut valid = true;
        loop {
            match frame::next_frame(&input[used..]) {
                Ok(None) => break,
                Ok(Some((payload, len))) => {
                    let accepted = match frame::reply(payload) {
                        Ok(reply) => self.on_reply(index, &reply),
                        Err(_) => false,
                    };
                    if !accepted {
                        valid = false;
                        break;
                    }
                    used += len;
                }
                Err(_) => {
                    valid = false;
                    break;
                }
            }
        }
        self.workers[index].keep_unread(input, used);
        valid
    }

    fn on_reply(&mut self, index: usize, reply: &frame::Reply<'_>) -> bool {
        let worker = &mut self.workers[index];
        let chunk = match worker.in_flight.front() {
            Some(chunk) if chunk.id == reply.id => worker.in_flight.pop_front(),
            _ => None,
        };
        let Some(chunk) = chunk else {
            return false;
        };
        let now = Instant::now();
        let took = now.saturating_duration_since(worker.head_since);
        self.service = Some(match self.service {
            Some(avg) => (avg * 7 + took) / 8,
            None => took,
        });
        worker.head_since = now;
        worker.dying |= reply.fatal;
        if let Some(batch) = self.batches.get_mut(&chunk.batch) {
            for (offset, (status, bytes)) in reply.items.iter().enumerate() {
                if offset < chunk.count {
                    batch.finish(chunk.first + offset, Outcome::from_reply(*status, bytes));
                }
            }
            for offset in reply.items.len()..chunk.count {
                batch.finish(
                    chunk.first + offset,
                    Outcome::WorkerLost(String::from("the worker's reply was incomplete")),
                );
            }
        }
        true
    }

    /// Removes a worker that ended (or must): fails the chunk it was
    /// running and queues the ones behind it again.
    fn bury(&mut self, mut worker: Worker, cause: Cause) {
        let pid = worker.pid();
        let how = match cause {
            Cause::Closed => worker.reap(),
            Cause::Broken | Cause::TimedOut => worker.kill(),
        };
        let mut chunks = std::mem::take(&mut worker.in_flight);
        let running = match cause {
            // It said it would exit; nothing of what follows ever started.
            Cause::Closed if worker.dying => None,
            _ => chunks.pop_front(),
        };
        if let Some(chunk) = running {
            let outcome = match cause {
                Cause::TimedOut => Outcome::TimedOut(format!(
                    "the task ran over its timeout of {:?} (worker {pid} was killed)",
                    self.config.task_timeout.unwrap_or_default()
                )),
                Cause::Broken => Outcome::WorkerLost(format!(
                    "worker {pid} sent a malformed reply and was killed"
                )),
                Cause::Closed => {
                    Outcome::WorkerLost(format!("worker {pid} died while running the task ({how})"))
                }
            };
            self.fail_chunk(&chunk, &outcome);
        }
        for chunk in chunks.into_iter().rev() {
            self.queued_bytes += chunk.size();
            self.queue.push_front(chunk);
        }
    }

    fn fail_chunk(&mut self, chunk: &Chunk, outcome: &Outcome) {
        if let Some(batch) = self.batches.get_mut(&chunk.batch) {
            for offset in 0..chunk.count {
                batch.finish(chunk.first + offset, outcome.clone());
            }
        }
    }

    /// Retires workers that ran `maxtasksperchild` chunks and are idle.
    fn retire_spent(&mut self) {
        let Some(max) = self.config.max_tasks else {
            return;
        };
        let mut index = 0;
        while index < self.workers.len() {
            let worker = &self.workers[index];
            if worker.sent >= max && worker.in_flight.is_empty() {
                let worker = self.workers.remove(index);
                self.retired.push(worker.retire());
            } else {
                index += 1;
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // As Python's context manager: leave no worker behind.
        self.terminate();
    }
}
