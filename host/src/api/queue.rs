//! `queue`: Python's `multiprocessing.Queue` and `JoinableQueue`, shared by
//! the processes of a tree (see [`crate::channel::Queue`]).
//!
//! | function | returns |
//! |---|---|
//! | `queue_new(maxsize, max_bytes, flags) -> i32` | a queue handle (inheritable); flags `1` joinable, `2` local (on this machine whatever `--queues` says) |
//! | `queue_put(q, ptr, len, timeout_us) -> i32` | `0` once the message is queued |
//! | `queue_get(q, ptr, cap, timeout_us) -> i32` | the message's length; at `ptr` if it fits in `cap`, else waiting for `take_result` |
//! | `queue_qsize(q)`, `queue_empty(q)`, `queue_full(q)` | a count, `0`/`1`, `0`/`1` |
//! | `queue_close(q)` | `0`; this process's handle is closed |
//! | `queue_shutdown(q)` | `0`; puts fail with `EPIPE` everywhere, gets once empty |
//! | `queue_task_done(q)`, `queue_join(q, timeout_us)` | `0` (joinable queues) |

use super::{with_memory, with_state};
use crate::audit;
use crate::channel::{Queue, QueueConfig, Wait, DEFAULT_QUEUE_BYTES, MAX_QUEUE_BYTES};
use crate::cluster::queue::ClusterQueue;
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use wasmtime::Caller;

/// The kind of a queue's handle.
pub(crate) const KIND: &str = "queue";

/// A queue handle's queue: in shared memory, or in JetStream (a job run
/// with `--nats`; see [`crate::cluster::queue`]).
#[derive(Debug)]
pub(crate) enum QueueHandle {
    Local(Queue),
    Cluster(ClusterQueue),
}

impl QueueHandle {
    fn put(&self, msg: &[u8], wait: Wait) -> BridgeResult<()> {
        match self {
            QueueHandle::Local(q) => q.put(msg, wait),
            QueueHandle::Cluster(q) => q.put(msg, wait),
        }
    }

    /// Hands the next message to `deliver`, in one or two parts.
    fn get_with<R>(
        &self,
        wait: Wait,
        deliver: impl FnOnce(&[u8], &[u8]) -> BridgeResult<R>,
    ) -> BridgeResult<R> {
        match self {
            QueueHandle::Local(q) => q.get_with(wait, deliver),
            QueueHandle::Cluster(q) => deliver(&q.get(wait)?, &[]),
        }
    }

    fn qsize(&self) -> BridgeResult<usize> {
        match self {
            QueueHandle::Local(q) => q.qsize(),
            QueueHandle::Cluster(q) => q.qsize(),
        }
    }

    fn is_full(&self) -> BridgeResult<bool> {
        match self {
            QueueHandle::Local(q) => q.is_full(),
            QueueHandle::Cluster(q) => q.is_full(),
        }
    }

    fn shutdown(&self) -> BridgeResult<()> {
        match self {
            QueueHandle::Local(q) => q.shutdown(),
            QueueHandle::Cluster(q) => q.shutdown(),
        }
    }

    fn task_done(&self) -> BridgeResult<()> {
        match self {
            QueueHandle::Local(q) => q.task_done(),
            QueueHandle::Cluster(q) => q.task_done(),
        }
    }

    fn join(&self, wait: Wait) -> BridgeResult<()> {
        match self {
            QueueHandle::Local(q) => q.join(wait),
            QueueHandle::Cluster(q) => q.join(wait),
        }
    }
}

fn queue(state: &mut HostState, q: i32) -> BridgeResult<&mut QueueHandle> {
    state.bridge.handles.get::<QueueHandle>(q, KIND)
}

pub(super) fn queue_new(
    mut caller: Caller<'_, HostState>,
    maxsize: i32,
    max_bytes: i32,
    flags: i32,
) -> i32 {
    use procbridge_abi::queue::{FLAGS, FLAG_JOINABLE, FLAG_LOCAL};
    with_state(&mut caller, |state| {
        if maxsize < 0 || max_bytes < 0 || flags & !FLAGS != 0 {
            return Err(BridgeError::invalid(format!(
                "queue_new({maxsize}, {max_bytes}, {flags}): maxsize and max_bytes must \
                 not be negative, flags only 1 (joinable) and 2 (local)"
            )));
        }
        // The policy's queued-bytes limit bounds every queue's ring.
        let limit = state.bridge.policy.limits().max_queued_bytes;
        let max_bytes = match max_bytes {
            // Unsaid: as much as the policy allows (the ring grows to it).
            0 => DEFAULT_QUEUE_BYTES.min(limit),
            // Outside what any queue may hold is EINVAL (from `Queue::new`);
            // within it but over the policy is a denial.
            n if n as usize > limit && n as usize <= MAX_QUEUE_BYTES => {
                return Err(audit::denied(BridgeError::denied(format!(
                    "queue_new: {n} bytes is over the policy's limit of {limit} queued bytes"
                ))))
            }
            n => n as usize,
        };
        let config = QueueConfig {
            maxsize: maxsize as usize,
            max_bytes,
            joinable: flags & FLAG_JOINABLE != 0,
        };
        let queue = match &state.bridge.cluster {
            Some(link) if link.holds_queues() && flags & FLAG_LOCAL == 0 => {
                QueueHandle::Cluster(ClusterQueue::create(link.cluster(), link.job(), config)?)
            }
            _ => QueueHandle::Local(Queue::new(config)?),
        };
        state.bridge.handles.insert_inheritable(KIND, queue)
    })
}

pub(super) fn queue_put(
    mut caller: Caller<'_, HostState>,
    q: i32,
    ptr: i32,
    len: i32,
    timeout_us: i64,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let wait = Wait::from_micros(timeout_us)?;
        let queue = queue(state, q)?;
        let msg = mem.read(ptr, len, MAX_QUEUE_BYTES)?;
        // An unbounded queue over its byte limit is a limit hit.
        queue.put(msg, wait).map_err(|e| match e.errno {
            Errno::NoBufs => audit::limit(e),
            _ => e,
        })?;
        Ok(0)
    })
}

pub(super) fn queue_get(
    mut caller: Caller<'_, HostState>,
    q: i32,
    ptr: i32,
    cap: i32,
    timeout_us: i64,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let wait = Wait::from_micros(timeout_us)?;
        // Check the buffer before taking a message, so none is lost to a
        // bad pointer.
        let cap = cap as u32 as usize;
        mem.check(ptr, cap)?;
        // Copy straight from the queue into the guest when it fits.
        let queue = queue(state, q)?;
        let fitted = queue.get_with(wait, |a, b| {
            if a.len() + b.len() > cap {
                return Ok(Err([a, b].concat()));
            }
            mem.write(ptr, a)?;
            mem.write(ptr.wrapping_add(a.len() as i32), b)?;
            Ok(Ok(a.len() + b.len()))
        })?;
        match fitted {
            Ok(len) => Ok(len as i32),
            Err(msg) => state.bridge.set_result(msg),
        }
    })
}

pub(super) fn queue_qsize(mut caller: Caller<'_, HostState>, q: i32) -> i32 {
    with_state(&mut caller, |state| {
        Ok(queue(state, q)?.qsize()?.min(i32::MAX as usize) as i32)
    })
}

pub(super) fn queue_empty(mut caller: Caller<'_, HostState>, q: i32) -> i32 {
    with_state(&mut caller, |state| {
        Ok(i32::from(queue(state, q)?.qsize()? == 0))
    })
}

pub(super) fn queue_full(mut caller: Caller<'_, HostState>, q: i32) -> i32 {
    with_state(&mut caller, |state| {
        Ok(i32::from(queue(state, q)?.is_full()?))
    })
}

pub(super) fn queue_close(mut caller: Caller<'_, HostState>, q: i32) -> i32 {
    with_state(&mut caller, |state| {
        state.bridge.handles.remove::<QueueHandle>(q, KIND)?;
        Ok(0)
    })
}

pub(super) fn queue_shutdown(mut caller: Caller<'_, HostState>, q: i32) -> i32 {
    with_state(&mut caller, |state| {
        queue(state, q)?.shutdown()?;
        Ok(0)
    })
}

pub(super) fn queue_task_done(mut caller: Caller<'_, HostState>, q: i32) -> i32 {
    with_state(&mut caller, |state| {
        queue(state, q)?.task_done()?;
        Ok(0)
    })
}

pub(super) fn queue_join(mut caller: Caller<'_, HostState>, q: i32, timeout_us: i64) -> i32 {
    with_state(&mut caller, |state| {
        let wait = Wait::from_micros(timeout_us)?;
        queue(state, q)?.join(wait)?;
        Ok(0)
    })
}
