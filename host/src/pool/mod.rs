//! `multiprocessing.Pool` for guests: worker processes reused across tasks.
//!
//! A [`Pool`] owns `processes` workers. Each is a forked child of the host
//! (the fork start method: a copy of the instance at the moment it is
//! started) that serves tasks in a loop ([`serve`]): it reads a request
//! from its socket, calls the named task export for each item through the
//! task ABI, and writes the reply. The same worker (same pid) runs task
//! after task.
//!
//! The parent side makes progress inside the guest's pool calls, in
//! [`Pool::step`], and, while the guest is busy elsewhere with work
//! pending, in the pool's [`pump`] thread: one `poll(2)` round over the
//! workers' sockets that
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
//! A submission does not make a whole round each time: it hands its first
//! chunks to workers known to be free, so a task starts at once when a
//! worker waits for one, and queues the rest for the next round (at most
//! [`SUBMIT_ROUND_EVERY`] later, or the next call that waits). A burst of
//! `apply_async` calls thus wakes each worker once per round, not once per
//! task; and a worker that was sent several short chunks writes their
//! replies together ([`serve`]).
//!
//! Starting workers needs the guest's `Caller` (a worker serves in the
//! forked copy of the running host call), so [`Pool::missing_workers`]
//! tells the host functions how many to start with [`worker::start`].

mod batch;
mod chunk;
pub(crate) mod frame;
pub(crate) mod pump;
mod scheduler;
mod serve;
pub(crate) mod worker;

use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::process::child::Child;
use batch::Outcome;
pub(crate) use batch::{Batch, Next};
use chunk::Chunk;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::Worker;

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
/// time, so a worker never waits for the parent between short tasks.
/// Longer ones go only to free workers, as Python's pool hands a task to the
/// first worker that is free.
const PIPELINE_BELOW: Duration = Duration::from_micros(500);
/// How much work a worker holds ahead: enough short chunks to outlast a
/// wake-up of the parent and its reply (tens of µs on a VM, across CPUs)...
const PIPELINE_COVER: Duration = Duration::from_micros(200);
/// ... but never fewer than this many chunks ...
const PIPELINE_DEPTH: usize = 4;
/// ... nor more (a worker that dies gives the ones it had not started back
/// to the queue).
const PIPELINE_MAX: usize = 64;

/// How often a burst of submissions makes a whole round of progress (see
/// [`Pool::wants_round`]): about as long as the work a worker is sent
/// ahead ([`PIPELINE_COVER`]).
const SUBMIT_ROUND_EVERY: Duration = Duration::from_micros(200);

pub(crate) use crate::timeout::Wait;

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
    /// Whether a task whose worker was lost on another machine runs again
    /// there (a relay's chunk; a local worker's lost task always fails).
    pub(crate) retry_lost: bool,
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
    /// By id; ids are the pool's own sequence, so a fast hash will do.
    batches: FxHashMap<u64, Batch>,
    /// The task exports a submission named that were checked to be task
    /// functions (an instance's exports never change).
    tasks: FxHashSet<Arc<str>>,
    next_batch: u64,
    next_chunk: u64,
    /// A running average of how long a chunk takes.
    service: Option<Duration>,
    start_failed_at: Option<Instant>,
    /// When [`Pool::step`] last ran.
    last_step: Instant,
    /// What the guest's calls and the pump know of each other.
    pump: pump::PumpState,
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
            batches: FxHashMap::default(),
            tasks: FxHashSet::default(),
            next_batch: 1,
            next_chunk: 0,
            service: None,
            start_failed_at: None,
            last_step: Instant::now(),
            pump: pump::PumpState::default(),
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

    /// Waits up to `within` for the retired workers (told to exit) to end,
    /// so their replacements do not count against the tree's process limit
    /// next to them.
    pub(crate) fn reap_retired(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        self.retired.retain_mut(|child| {
            let left = deadline.saturating_duration_since(Instant::now());
            matches!(child.wait(Some(left)), Ok(None))
        });
    }

    /// The parent ends of the workers' sockets (a new worker closes them).
    pub(crate) fn sibling_fds(&self) -> Vec<RawFd> {
        self.workers.iter().map(Worker::fd).collect()
    }

    /// Whether chunks wait to be sent or are running: what the pump
    /// watches over while the guest is away.
    fn has_pending_work(&self) -> bool {
        !self.queue.is_empty() || self.workers.iter().any(|w| !w.in_flight.is_empty())
    }

    /// The workers' sockets, and whether each has requests to write.
    fn pump_fds(&self) -> Vec<(RawFd, bool)> {
        self.workers
            .iter()
            .map(|w| (w.fd(), w.wants_write()))
            .collect()
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
        // Retired workers still exiting hold process slots a retry gets.
        if self.workers.is_empty() && self.retired.is_empty() {
            let outcome =
                Outcome::WorkerLost(format!("no worker could be started: {}", err.message));
            for chunk in std::mem::take(&mut self.queue) {
                self.fail_chunk(&chunk, &outcome);
            }
            self.queued_bytes = 0;
        }
    }

    /// The task export `name`, if it was checked before (see
    /// [`Pool::add_task`]).
    pub(crate) fn task(&self, name: &str) -> Option<Arc<str>> {
        self.tasks.get(name).cloned()
    }

    /// Remembers `name` as an export checked to be a task function.
    pub(crate) fn add_task(&mut self, name: &str) -> Arc<str> {
        let task: Arc<str> = Arc::from(name);
        self.tasks.insert(task.clone());
        task
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
        name: &Arc<str>,
        list: &[u8],
        chunksize: usize,
    ) -> BridgeResult<i32> {
        if self.state != State::Running {
            return Err(BridgeError::invalid("Pool not running"));
        }
        let ends = chunk::item_ends(list, MAX_ITEMS)?;
        let size = list.len();
        if self.queued_bytes.saturating_add(size) > self.config.max_queued_bytes {
            return Err(crate::audit::limit(BridgeError::new(
                Errno::NoBufs,
                format!(
                    "{} bytes of task arguments would wait in the pool's queue (limit {})",
                    self.queued_bytes.saturating_add(size),
                    self.config.max_queued_bytes
                ),
            )));
        }
        let id = self.next_batch;
        let handle = i32::try_from(id)
            .map_err(|_| BridgeError::new(Errno::Again, "this pool has run out of result ids"))?;
        self.next_batch += 1;
        self.batches.insert(id, Batch::new(ends.len()));
        let chunks = chunk::split(id, name, list, &ends, chunksize, &mut self.next_chunk);
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

    /// Whether a submission should make a whole round of progress now (read
    /// replies, notice deaths): a worker is missing or is to be replaced
    /// now, or the last round is more than [`SUBMIT_ROUND_EVERY`] old.
    /// Otherwise a burst of `apply_async` calls only hands its tasks to
    /// workers known to be free ([`Pool::start_on_free_workers`]) and
    /// queues the rest, and the workers, fed ahead of time at the next
    /// round, are not woken once per task.
    ///
    /// A worker to be replaced (it lacks a handle the tasks need, or ran
    /// `maxtasksperchild`) is replaced by the caller's round: if the guest
    /// then waits in a host call, the pump cannot fork its replacement.
    pub(crate) fn wants_round(&self) -> bool {
        let max_tasks = self.config.max_tasks;
        self.last_step.elapsed() >= SUBMIT_ROUND_EVERY
            || self.missing_workers() > 0
            || self
                .workers
                .iter()
                .any(|w| w.is_spent(max_tasks) && w.in_flight.is_empty())
    }

    /// Sends queued chunks to the workers known to be free (none of their
    /// chunks in flight), so a task starts at once when a worker waits for
    /// one. Reads nothing: a worker is known to be free again only once a
    /// round has read its replies.
    pub(crate) fn start_on_free_workers(&mut self) {
        self.fill_workers(1);
        self.write_out();
    }

    /// How a worker started now is to serve.
    pub(crate) fn worker_setup(&self) -> worker::Setup {
        worker::Setup {
            retry_lost: self.config.retry_lost,
            // A task's deadline is counted from its predecessor's reply:
            // with a timeout, every reply goes out as soon as it is made.
            hold_replies: self.config.task_timeout.is_none(),
        }
    }

    /// Sets [`Config::retry_lost`]. Relays (`relays`: the workers send
    /// tasks to the cluster) forked before carry the old setting, and are
    /// replaced once their chunks in flight are done; local workers have
    /// nothing to change.
    pub(crate) fn set_retry_lost(&mut self, retry: bool, relays: bool) {
        if self.config.retry_lost != retry {
            self.config.retry_lost = retry;
            if relays {
                self.share(u64::MAX);
            }
        }
    }

    /// Makes sure every worker that runs a task from now on holds the
    /// inheritable handle made at `serial` (see
    /// [`HandleTable::serial_of`](crate::handles::HandleTable::serial_of)):
    /// workers forked before it get no more tasks, and are replaced by
    /// fresh forks, which inherit it, once their tasks in flight are done.
    pub(crate) fn share(&mut self, serial: u64) {
        for worker in &mut self.workers {
            if worker.forked_at < serial {
                worker.stale = true;
            }
        }
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
}

impl Drop for Pool {
    fn drop(&mut self) {
        // As Python's context manager: leave no worker behind.
        self.terminate();
    }
}
