//! `pool`: Python's `multiprocessing.Pool`, with workers that are real OS
//! processes reused across tasks (see `crate::pool`).
//!
//! A task is an export called through the task ABI, named by string, taking
//! and returning bytes. A submission (`apply_async`, `map_async`, ...) is
//! a list of argument items; its results are identified by the id
//! `pool_submit` returns, valid with that pool only. Each result is a
//! status byte (`procbridge_abi::pool::STATUS_*`) and its payload.
//!
//! | function | returns |
//! |---|---|
//! | `pool_new(processes, maxtasksperchild, task_timeout_us: i64) -> i32` | a pool handle, once its workers run |
//! | `pool_submit(h, name_ptr, name_len, items_ptr, items_len, chunksize) -> i32` | a result id |
//! | `pool_result_ready(h, id) -> i32` | `1` when every item finished, else `0` |
//! | `pool_result_wait(h, id, timeout_us: i64) -> i32` | `0` (`ETIMEDOUT` if not finished) |
//! | `pool_result_get(h, id, timeout_us: i64) -> i32` | length of the list of results |
//! | `pool_result_next(h, id, order, timeout_us: i64) -> i32` | length of the next result (`u32` index, status, payload); `0` when exhausted |
//! | `pool_result_drop(h, id) -> i32` | `0` |
//! | `pool_pids(h) -> i32` | length of the workers' pids (`i32` LE each) |
//! | `pool_close(h)`, `pool_terminate(h) -> i32` | `0` |
//! | `pool_join(h, timeout_us: i64) -> i32` | `0` once every task ran and the workers exited |
//! | `pool_drop(h) -> i32` | `0`; the pool is terminated and the handle gone |
//! | `cluster_call(name_ptr, name_len, args_ptr, args_len) -> i32` | length of the result of one task run on a cluster worker (`--nats`) |

use super::{with_memory, with_state};
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::guest_mem::MAX_READ;
use crate::pool::pump::{PoolGuard, SharedPool};
use crate::pool::{worker, Batch, Config, Next, Pool, State, Wait, MAX_WORKERS, POOL_KIND};
use procbridge_abi::pool::{NEXT_ORDERED, NEXT_UNORDERED};
use std::os::fd::RawFd;
use std::time::Duration;
use wasmtime::{Caller, ValType};

/// How long a pool waits for its retired workers to exit before starting
/// their replacements (they exit at once when told to).
const RETIRED_EXIT_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// The longest task name accepted.
const MAX_NAME: usize = 256;

/// Runs a body that needs the whole `Caller` (to start workers); its `Err`
/// becomes `-errno`.
fn with_caller<F>(caller: &mut Caller<'_, HostState>, body: F) -> i32
where
    F: FnOnce(&mut Caller<'_, HostState>) -> BridgeResult<i32>,
{
    match body(caller) {
        Ok(value) => value,
        Err(err) => caller.data_mut().bridge.fail(err),
    }
}

/// Pool `h`, held for this call (see [`PoolGuard`]).
fn pool(state: &mut HostState, h: i32) -> BridgeResult<PoolGuard<'_>> {
    Ok(state.bridge.handles.get::<SharedPool>(h, POOL_KIND)?.lock())
}

/// What a new worker of pool `h` closes: the other workers' sockets and
/// the pump's eventfd.
fn fds_a_worker_closes(state: &mut HostState, h: i32) -> BridgeResult<Vec<RawFd>> {
    let shared = state.bridge.handles.get::<SharedPool>(h, POOL_KIND)?;
    let mut fds = shared.lock().sibling_fds();
    fds.push(shared.stop_fd());
    Ok(fds)
}

/// Starts up to `count` workers. A failure is recorded in the pool (which
/// retries later) and returned.
fn start_workers(caller: &mut Caller<'_, HostState>, h: i32, count: usize) -> BridgeResult<()> {
    for _ in 0..count {
        let siblings = fds_a_worker_closes(caller.data_mut(), h)?;
        let how = pool(caller.data_mut(), h)?.worker_setup();
        match worker::start(caller, &siblings, how) {
            Ok(worker) => pool(caller.data_mut(), h)?.add_worker(worker),
            Err(err) => {
                pool(caller.data_mut(), h)?.start_failed(&err);
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Makes progress on pool `h` until `probe` gives a value or `wait` is
/// over (then `None`). Replaces workers as needed on the way.
fn drive<T>(
    caller: &mut Caller<'_, HostState>,
    h: i32,
    wait: Wait,
    mut probe: impl FnMut(&mut Pool) -> BridgeResult<Option<T>>,
) -> BridgeResult<Option<T>> {
    loop {
        let mut pool_now = pool(caller.data_mut(), h)?;
        if let Some(value) = probe(&mut pool_now)? {
            return Ok(Some(value));
        }
        let missing = pool_now.missing_workers();
        if missing > 0 {
            pool_now.reap_retired(RETIRED_EXIT_WAIT);
            drop(pool_now);
            // A failure is kept by the pool, which retries after a pause
            // (or fails the queued tasks when no worker is left).
            let _ = start_workers(caller, h, missing);
            continue;
        }
        pool_now.step(wait)?;
        if let Some(value) = probe(&mut pool_now)? {
            return Ok(Some(value));
        }
        // Workers the round retired are replaced before the caller goes
        // back to the guest, which may then wait in a host call: the pump
        // cannot fork them.
        if wait.expired() && pool_now.missing_workers() == 0 {
            return Ok(None);
        }
    }
}

pub(super) fn pool_new(
    mut caller: Caller<'_, HostState>,
    processes: i32,
    maxtasksperchild: i32,
    task_timeout_us: i64,
) -> i32 {
    with_caller(&mut caller, |caller| {
        let config = config(
            caller.data_mut(),
            processes,
            maxtasksperchild,
            task_timeout_us,
        )?;
        let count = config.processes;
        let h = caller
            .data_mut()
            .bridge
            .handles
            .insert(POOL_KIND, shared_pool(config)?)?;
        if let Err(err) = start_workers(caller, h, count) {
            // Dropping the pool kills the workers already started.
            let _ = caller
                .data_mut()
                .bridge
                .handles
                .remove::<SharedPool>(h, POOL_KIND);
            return Err(err);
        }
        Ok(h)
    })
}

/// A new pool, behind its mutex, with its pump running.
fn shared_pool(config: Config) -> BridgeResult<SharedPool> {
    SharedPool::new(Pool::new(config))
        .map_err(|e| BridgeError::io("start the pool's helper thread", e))
}

fn config(
    state: &HostState,
    processes: i32,
    maxtasksperchild: i32,
    task_timeout_us: i64,
) -> BridgeResult<Config> {
    if processes < 1 || processes as usize > MAX_WORKERS {
        return Err(BridgeError::invalid(format!(
            "Number of processes must be between 1 and {MAX_WORKERS}, not {processes}"
        )));
    }
    if maxtasksperchild < 0 {
        return Err(BridgeError::invalid(format!(
            "maxtasksperchild must be 0 (no limit) or positive, not {maxtasksperchild}"
        )));
    }
    let task_timeout = match task_timeout_us {
        procbridge_abi::NO_TIMEOUT => None,
        t if t <= 0 => {
            return Err(BridgeError::invalid(format!(
                "task timeout must be positive or -1 (none), not {t}"
            )))
        }
        t => Some(Duration::from_micros(t as u64)),
    };
    if state.bridge.process.daemon {
        return Err(BridgeError::invalid(
            "daemonic processes are not allowed to have children",
        ));
    }
    Ok(Config {
        processes: processes as usize,
        max_tasks: (maxtasksperchild > 0).then_some(maxtasksperchild as u32),
        task_timeout,
        max_queued_bytes: state.bridge.policy.limits().max_queued_bytes,
        retry_lost: true,
    })
}

pub(super) fn pool_submit(
    mut caller: Caller<'_, HostState>,
    h: i32,
    name_ptr: i32,
    name_len: i32,
    items_ptr: i32,
    items_len: i32,
    chunksize: i32,
) -> i32 {
    // A task this pool knows is queued straight from guest memory; a new
    // name is copied out, to be checked against the exports first.
    let mut unchecked = None;
    let mut wants_round = false;
    let queued = with_memory(&mut caller, |mem, state| {
        let name = mem.read_str(name_ptr, name_len, MAX_NAME)?;
        let list = mem.read(items_ptr, items_len, MAX_READ)?;
        if chunksize < 1 {
            return Err(BridgeError::invalid(format!(
                "chunksize must be at least 1, not {chunksize}"
            )));
        }
        let mut pool_now = pool(state, h)?;
        let Some(task) = pool_now.task(name) else {
            unchecked = Some((name.to_string(), list.to_vec()));
            return Ok(0);
        };
        let id = pool_now.submit(&task, list, chunksize as usize)?;
        wants_round = start_now(&mut pool_now);
        Ok(id)
    });
    if queued < 0 || (unchecked.is_none() && !wants_round) {
        return queued;
    }
    with_caller(&mut caller, |caller| {
        let id = match unchecked {
            None => queued,
            Some((name, list)) => {
                check_task_export(caller, &name)?;
                let mut pool_now = pool(caller.data_mut(), h)?;
                let task = pool_now.add_task(&name);
                let id = pool_now.submit(&task, &list, chunksize as usize)?;
                wants_round = start_now(&mut pool_now);
                id
            }
        };
        if wants_round {
            drive(caller, h, Wait::Never, |_| Ok(None::<()>))?;
        }
        Ok(id)
    })
}

/// After a submission: sends what should be sent now, without waiting.
/// `true` when that takes a whole round of progress, which the caller
/// makes with [`drive`] (it may start workers).
fn start_now(pool: &mut Pool) -> bool {
    if pool.wants_round() {
        return true;
    }
    pool.start_on_free_workers();
    false
}

/// Refuses a task name that is not an exported `(i32) -> i32` function.
fn check_task_export(caller: &mut Caller<'_, HostState>, name: &str) -> BridgeResult<()> {
    let func = caller
        .get_export(name)
        .and_then(|export| export.into_func())
        .ok_or_else(|| {
            BridgeError::new(
                Errno::NoEnt,
                format!("the module exports no task function `{name}`"),
            )
        })?;
    let ty = func.ty(&*caller);
    let is_i32 = |v: &[ValType]| v.len() == 1 && matches!(v[0], ValType::I32);
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    if !is_i32(&params) || !is_i32(&results) {
        return Err(BridgeError::invalid(format!(
            "export `{name}` is not a task function (i32) -> i32"
        )));
    }
    Ok(())
}

pub(super) fn pool_result_ready(mut caller: Caller<'_, HostState>, h: i32, id: i32) -> i32 {
    with_caller(&mut caller, |caller| {
        let done = drive(caller, h, Wait::Never, |p| {
            Ok(p.batch(id)?.is_complete().then_some(()))
        })?;
        Ok(i32::from(done.is_some()))
    })
}

/// Waits until result `id` is complete, then gives what `finished` makes
/// of it; `ETIMEDOUT` if `wait` ends first. (`drive` probes before it
/// starts anything: an unknown id fails at once.)
fn wait_complete<T>(
    caller: &mut Caller<'_, HostState>,
    h: i32,
    id: i32,
    wait: Wait,
    finished: impl Fn(&Batch) -> T,
) -> BridgeResult<T> {
    let probe = |p: &mut Pool| {
        let batch = p.batch(id)?;
        Ok(batch.is_complete().then(|| finished(batch)))
    };
    drive(caller, h, wait, probe)?
        .ok_or_else(|| BridgeError::new(Errno::TimedOut, format!("result {id} is not ready")))
}

pub(super) fn pool_result_wait(
    mut caller: Caller<'_, HostState>,
    h: i32,
    id: i32,
    timeout_us: i64,
) -> i32 {
    with_caller(&mut caller, |caller| {
        wait_complete(caller, h, id, Wait::from_micros(timeout_us)?, |_| ())?;
        Ok(0)
    })
}

pub(super) fn pool_result_get(
    mut caller: Caller<'_, HostState>,
    h: i32,
    id: i32,
    timeout_us: i64,
) -> i32 {
    with_caller(&mut caller, |caller| {
        let wait = Wait::from_micros(timeout_us)?;
        let encoded = wait_complete(caller, h, id, wait, Batch::encode_all)?;
        caller.data_mut().bridge.set_result(encoded)
    })
}

pub(super) fn pool_result_next(
    mut caller: Caller<'_, HostState>,
    h: i32,
    id: i32,
    order: i32,
    timeout_us: i64,
) -> i32 {
    with_caller(&mut caller, |caller| {
        let ordered = match order {
            NEXT_ORDERED => true,
            NEXT_UNORDERED => false,
            _ => {
                return Err(BridgeError::invalid(format!(
                    "order {order} is neither {NEXT_ORDERED} (ordered) nor {NEXT_UNORDERED} (unordered)"
                )))
            }
        };
        let wait = Wait::from_micros(timeout_us)?;
        pool(caller.data_mut(), h)?.batch(id)?;
        let next = drive(caller, h, wait, |p| {
            Ok(match p.batch(id)?.next(ordered) {
                Next::Pending => None,
                Next::Item(item) => Some(Some(item)),
                Next::Exhausted => Some(None),
            })
        })?;
        match next {
            Some(Some(item)) => caller.data_mut().bridge.set_result(item),
            Some(None) => Ok(0),
            None => Err(BridgeError::new(
                Errno::TimedOut,
                format!("the next result of {id} is not ready"),
            )),
        }
    })
}

pub(super) fn pool_result_drop(mut caller: Caller<'_, HostState>, h: i32, id: i32) -> i32 {
    with_state(&mut caller, |state| {
        pool(state, h)?.drop_batch(id)?;
        Ok(0)
    })
}

pub(super) fn pool_pids(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        let pids: Vec<u8> = pool(state, h)?
            .pids()
            .into_iter()
            .flat_map(i32::to_le_bytes)
            .collect();
        state.bridge.set_result(pids)
    })
}

pub(super) fn pool_close(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        pool(state, h)?.close();
        Ok(0)
    })
}

pub(super) fn pool_terminate(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        pool(state, h)?.terminate();
        Ok(0)
    })
}

pub(super) fn pool_join(mut caller: Caller<'_, HostState>, h: i32, timeout_us: i64) -> i32 {
    with_caller(&mut caller, |caller| {
        let wait = Wait::from_micros(timeout_us)?;
        match pool(caller.data_mut(), h)?.state() {
            State::Running => return Err(BridgeError::invalid("Pool is still running")),
            State::Terminated | State::Joined => return Ok(0),
            State::Closed => {}
        }
        match drive(caller, h, wait, |p| Ok(p.is_idle().then_some(())))? {
            Some(()) => {
                pool(caller.data_mut(), h)?.stop_workers();
                Ok(0)
            }
            None => Err(BridgeError::new(
                Errno::TimedOut,
                "the pool's tasks have not all finished",
            )),
        }
    })
}

pub(super) fn pool_drop(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        state.bridge.handles.remove::<SharedPool>(h, POOL_KIND)?;
        Ok(0)
    })
}

/// Makes every worker that runs a task from now on hold `handle` (a queue
/// or pipe end of this process) under the same number: workers forked
/// before it was made are replaced once their tasks in flight are done.
pub(super) fn pool_share(mut caller: Caller<'_, HostState>, h: i32, handle: i32) -> i32 {
    with_state(&mut caller, |state| {
        if pool(state, h)?.state() != State::Running {
            return Err(BridgeError::invalid("Pool not running"));
        }
        let serial = state.bridge.handles.serial_of(handle)?;
        pool(state, h)?.share(serial);
        Ok(0)
    })
}

/// Whether the pool's tasks whose worker was lost on another machine run
/// again (`1`, the default) or fail as worker-lost (`0`).
pub(super) fn pool_retry_lost(mut caller: Caller<'_, HostState>, h: i32, retry: i32) -> i32 {
    with_state(&mut caller, |state| {
        if !(0..=1).contains(&retry) {
            return Err(BridgeError::invalid(format!(
                "pool_retry_lost: retry must be 0 or 1, not {retry}"
            )));
        }
        let relays = state
            .bridge
            .cluster
            .as_ref()
            .is_some_and(|l| l.runs_pools());
        pool(state, h)?.set_retry_lost(retry == 1, relays);
        Ok(0)
    })
}

/// Runs one task on a worker of the job's cluster and waits for it: the
/// length of the bytes it returned, waiting for `take_result`. A Python
/// job's pool sends its batches this way (task [`crate::python::TASK`]).
pub(super) fn cluster_call(
    mut caller: Caller<'_, HostState>,
    name_ptr: i32,
    name_len: i32,
    args_ptr: i32,
    args_len: i32,
) -> i32 {
    let mut request = None;
    let ret = with_memory(&mut caller, |mem, _| {
        let name = mem.read_str(name_ptr, name_len, MAX_NAME)?.to_string();
        let args = mem.read(args_ptr, args_len, MAX_READ)?.to_vec();
        request = Some((name, args));
        Ok(0)
    });
    let Some((name, args)) = request else {
        return ret;
    };
    with_caller(&mut caller, |caller| {
        let link = caller
            .data()
            .bridge
            .cluster
            .clone()
            .filter(|link| link.runs_pools())
            .ok_or_else(|| {
                BridgeError::new(
                    Errno::NoSys,
                    "this job's pools do not run on a cluster (run it with --nats)",
                )
            })?;
        let python = caller.data().bridge.door.is_some();
        if !(python && name == crate::python::TASK) {
            check_task_export(caller, &name)?;
        }
        let state = caller.data_mut();
        let grants = link.grants_of(&state.bridge.policy);
        let queues = crate::cluster::relay::shared_queues(state);
        let call = crate::cluster::remote::Call {
            target: &name,
            args: &args,
            grants: &grants,
            queues: &queues,
            fresh: false,
        };
        let unreachable = |err: anyhow::Error| {
            BridgeError::new(
                Errno::Io,
                format!(
                    "cannot run the task on the cluster at {}: {err:#}",
                    link.cluster().display_url()
                ),
            )
        };
        let calls = &mut state.bridge.remote_calls;
        if !calls.as_ref().is_some_and(|c| c.is_mine()) {
            // A fork child's copy is forgotten, never used.
            if let Some(copy) = calls.take() {
                std::mem::forget(copy);
            }
            *calls =
                Some(crate::cluster::remote::RemoteCalls::open(link.clone()).map_err(unreachable)?);
        }
        let outcome = calls
            .as_mut()
            .expect("opened above")
            .call(&call)
            .map_err(
                |err| match err.downcast_ref::<crate::cluster::remote::TooBig>() {
                    Some(too_big) => BridgeError::new(Errno::TooBig, too_big.to_string()),
                    None => unreachable(err),
                },
            )?;
        match outcome {
            Ok(bytes) => state.bridge.set_result(bytes),
            Err(crate::cluster::remote::Failure::Lost(message)) => Err(BridgeError::new(
                Errno::OwnerDead,
                format!("its worker was lost: {message}"),
            )),
            Err(crate::cluster::remote::Failure::Failed(message)) => {
                Err(BridgeError::new(Errno::Io, message))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_from_abi_timeouts() {
        assert!(matches!(Wait::from_micros(-1), Ok(Wait::Forever)));
        assert!(matches!(Wait::from_micros(0), Ok(Wait::Never)));
        assert!(matches!(Wait::from_micros(5), Ok(Wait::Until(_))));
        assert_eq!(Wait::from_micros(-2).unwrap_err().errno, Errno::Inval);
        assert!(Wait::from_micros(i64::MAX).is_ok());
    }
}
