//! `process`: Python's `multiprocessing.Process` on real OS processes, and
//! the task ABI (`task_return`, `task_error`).
//!
//! | function | returns |
//! |---|---|
//! | `process_start(target_ptr, target_len, args_ptr, args_len, method, flags) -> i32` | a process handle |
//! | `process_join(h, timeout_us: i64) -> i32` | `0` once it has ended (`ETIMEDOUT` if not yet) |
//! | `process_is_alive(h) -> i32` | `1` running, `0` ended |
//! | `process_pid(h) -> i32` | its OS pid |
//! | `process_exitcode(h, ptr) -> i32` | `0` still running; `1` ended, exit code written at `ptr` |
//! | `process_terminate(h) -> i32`, `process_kill(h) -> i32` | `0` (SIGTERM / SIGKILL) |
//! | `process_close(h) -> i32` | `0`; the handle is gone |
//! | `task_return(ptr, len) -> i32`, `task_error(ptr, len) -> i32` | `0` |
//! | `task_next(ptr, cap) -> i32` | the next served call's arguments' length (a guest that serves calls from its `_start`: see [`crate::process::serving`]) |

use super::{with_memory, with_state};
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::guest_mem::MAX_READ;
use crate::process::child::{exitcode, Child};
use crate::process::fork::{fork_host, Forked};
use crate::process::{self, flags, task, StartMethod, TaskOutcome, PROCESS_KIND};
use std::sync::Arc;
use wasmtime::{Caller, ExternType, Linker, TypedFunc, ValType};

/// Adds WASI's `proc_exit`: a fork child's exit ends its own process.
pub(crate) fn add_proc_exit(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.func_wrap(crate::wasi_p1::MODULE, "proc_exit", proc_exit)?;
    Ok(())
}

/// A started `Process`, behind a handle. Dropping it (the handle is closed
/// or the guest ends) terminates a daemon and waits for the child, as
/// Python does at exit.
#[derive(Debug)]
struct ProcessEntry {
    child: Child,
    daemon: bool,
}

impl Drop for ProcessEntry {
    fn drop(&mut self) {
        if self.daemon {
            let _ = self.child.signal(libc::SIGTERM);
        }
    }
}

/// Kills every `Process` this OS process started (their handles stay, to
/// be closed and reaped as the guest ends).
pub(crate) fn kill_all(handles: &mut crate::handles::HandleTable) {
    handles.for_each_own::<ProcessEntry>(PROCESS_KIND, |entry| {
        let _ = entry.child.signal(libc::SIGKILL);
    });
}

/// The longest task name accepted.
const MAX_TARGET: usize = 256;

pub(super) fn process_start(
    mut caller: Caller<'_, HostState>,
    target_ptr: i32,
    target_len: i32,
    args_ptr: i32,
    args_len: i32,
    method: i32,
    start_flags: i32,
) -> i32 {
    let mut request = None;
    let ret = with_memory(&mut caller, |mem, state| {
        let target = mem
            .read_str(target_ptr, target_len, MAX_TARGET)?
            .to_string();
        let args = mem.read(args_ptr, args_len, MAX_READ)?.to_vec();
        let method = StartMethod::from_abi(method).ok_or_else(|| {
            BridgeError::invalid(format!(
                "unknown start method {method} (0 default, 1 fork, 2 spawn)"
            ))
        })?;
        check_start(state, &target, method, start_flags)?;
        request = Some((target, args, method));
        Ok(0)
    });
    let Some((target, args, method)) = request else {
        return ret;
    };
    let target = target.as_str();
    // A fork child's target is looked up before the fork: here its code
    // and the instance's tables are at hand, where a child would fault
    // them in.
    let task = match method {
        StartMethod::Fork => match take_task(&mut caller, target) {
            Ok(task) => Some(task),
            Err(err) => return caller.data_mut().bridge.fail(err),
        },
        StartMethod::Spawn => None,
    };
    let start = process::Start::Process { target, method };
    let forked = match fork_host(caller.data_mut(), start) {
        Ok(Forked::Child) => match &task {
            Some(task) => run_in_copy(caller, target, task.func(), args, start_flags),
            None => process::spawn::run_fresh(caller.data_mut(), target, args, start_flags),
        },
        Ok(Forked::Parent(slot)) => Ok(slot),
        Err(err) => Err(err),
    };
    // Whether the fork worked or not, the parent keeps the task for its
    // next start.
    if let Some(task) = task {
        caller.data_mut().bridge.process.tasks.put_back(task);
    }
    let slot = match forked {
        Ok(slot) => slot,
        Err(err) => return caller.data_mut().bridge.fail(err),
    };
    with_state(&mut caller, |state| {
        let entry = ProcessEntry {
            child: Child::new(slot),
            daemon: start_flags & flags::DAEMON != 0,
        };
        state.bridge.handles.insert(PROCESS_KIND, entry)
    })
}

/// Refuses a start that cannot work, before forking.
fn check_start(
    state: &HostState,
    target: &str,
    method: StartMethod,
    bits: i32,
) -> BridgeResult<()> {
    if bits & !flags::ALL != 0 {
        return Err(BridgeError::invalid(format!("unknown flags {bits:#x}")));
    }
    if method == StartMethod::Fork && bits & (flags::DROP_DIRS | flags::DROP_ENV) != 0 {
        return Err(BridgeError::invalid(
            "dropping directories or environment needs the spawn start method",
        ));
    }
    if state.bridge.process.daemon {
        return Err(BridgeError::invalid(
            "daemonic processes are not allowed to have children",
        ));
    }
    let program = state.bridge.program.as_ref().ok_or_else(|| {
        BridgeError::new(
            Errno::NoSys,
            "this instance was not started by Runtime::run",
        )
    })?;
    if method == StartMethod::Spawn && state.bridge.process.origin.is_none() {
        return Err(BridgeError::new(
            Errno::NoSys,
            "spawn needs a guest built by GuestBuilder",
        ));
    }
    match program.module().get_export(target) {
        Some(ExternType::Func(ty)) => {
            let params: Vec<ValType> = ty.params().collect();
            let results: Vec<ValType> = ty.results().collect();
            let is_i32 = |v: &[ValType]| v.len() == 1 && matches!(v[0], ValType::I32);
            if !is_i32(&params) || !is_i32(&results) {
                return Err(BridgeError::invalid(format!(
                    "export `{target}` is not a task function (i32) -> i32"
                )));
            }
            Ok(())
        }
        _ => Err(BridgeError::new(
            Errno::NoEnt,
            format!("the module exports no task function `{target}`"),
        )),
    }
}

/// The instance's task function `target`, taken out of
/// [`ProcessState::tasks`](process::ProcessState) (looked up and typed on
/// its first start only): the parent puts it back after the fork, where
/// making and dropping its type at every start wrote to memory the child
/// shares.
fn take_task(caller: &mut Caller<'_, HostState>, target: &str) -> BridgeResult<process::Task> {
    if let Some(task) = caller.data_mut().bridge.process.tasks.take(target) {
        return Ok(task);
    }
    let func = task_export(caller, target)?;
    Ok(process::Task::new(target, func))
}

/// Export `target` of this instance as a task function ([`check_start`]
/// checked the module's export already).
fn task_export(
    caller: &mut Caller<'_, HostState>,
    target: &str,
) -> BridgeResult<TypedFunc<i32, i32>> {
    let func = caller
        .get_export(target)
        .and_then(|export| export.into_func())
        .ok_or_else(|| {
            BridgeError::new(
                Errno::NoEnt,
                format!("the module exports no task function `{target}`"),
            )
        })?;
    func.typed::<i32, i32>(&*caller).map_err(|err| {
        BridgeError::invalid(format!("export `{target}` is not a task function: {err}"))
    })
}

/// The fork start method, in the child: call the target in this copy of the
/// instance, then end the process.
fn run_in_copy(
    mut caller: Caller<'_, HostState>,
    target: &str,
    task: &TypedFunc<i32, i32>,
    args: Vec<u8>,
    bits: i32,
) -> ! {
    let state = caller.data_mut();
    state.bridge.process.daemon = bits & flags::DAEMON != 0;
    if bits & flags::DROP_RUN != 0 {
        if let Some(origin) = state.bridge.process.origin.clone() {
            let builder = process::reduced(&origin, bits, StartMethod::Fork);
            state.bridge.policy = builder.current_policy().clone();
            state.bridge.process.origin = Some(Arc::new(builder));
        }
    }
    let code = task::call_typed(&mut caller, task, args).exitcode(target);
    process::exit_child(caller.data_mut(), code)
}

/// WASI's `proc_exit`, as wasmtime-wasi's, except that a forked child ends
/// here instead of unwinding out of the guest's whole call stack: the
/// unwinding records a backtrace, and the child's store would be torn down
/// for nothing (the OS takes the process's memory at once). For a Python
/// guest that was 1.4 ms of every `os._exit` in a fork child.
fn proc_exit(mut caller: Caller<'_, HostState>, status: i32) -> wasmtime::Result<()> {
    // WASI's range, as wasmtime-wasi checks it.
    if !(0..126).contains(&status) {
        return Err(wasmtime::Error::msg(
            "exit with invalid exit status outside of [0..126)",
        ));
    }
    // Inside a task (a pool worker's, a `Process` target's) the exit is
    // the task's outcome, which its caller reports.
    let process = &caller.data().bridge.process;
    if process.in_child && !process.task_running {
        process::exit_child(caller.data_mut(), status)
    }
    Err(wasmtime_wasi::I32Exit(status).into())
}

fn entry(state: &mut HostState, h: i32) -> BridgeResult<&mut ProcessEntry> {
    state.bridge.handles.get::<ProcessEntry>(h, PROCESS_KIND)
}

pub(super) fn process_join(mut caller: Caller<'_, HostState>, h: i32, timeout_us: i64) -> i32 {
    with_state(&mut caller, |state| {
        let wait = crate::timeout::Wait::from_micros(timeout_us)?;
        match entry(state, h)?.child.wait(wait.left())? {
            Some(_) => Ok(0),
            None => Err(BridgeError::new(
                Errno::TimedOut,
                format!("process handle {h} is still running"),
            )),
        }
    })
}

pub(super) fn process_is_alive(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        Ok(i32::from(entry(state, h)?.child.try_wait()?.is_none()))
    })
}

pub(super) fn process_pid(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| Ok(entry(state, h)?.child.pid()))
}

pub(super) fn process_exitcode(mut caller: Caller<'_, HostState>, h: i32, ptr: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        mem.check(ptr, 4)?;
        match entry(state, h)?.child.try_wait()? {
            Some(status) => {
                mem.write_i32(ptr, exitcode(status))?;
                Ok(1)
            }
            None => Ok(0),
        }
    })
}

pub(super) fn process_terminate(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        entry(state, h)?.child.signal(libc::SIGTERM)?;
        Ok(0)
    })
}

pub(super) fn process_kill(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        entry(state, h)?.child.signal(libc::SIGKILL)?;
        Ok(0)
    })
}

pub(super) fn process_close(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        if entry(state, h)?.child.try_wait()?.is_none() {
            return Err(BridgeError::invalid(format!(
                "cannot close process handle {h}: it is still running"
            )));
        }
        state
            .bridge
            .handles
            .remove::<ProcessEntry>(h, PROCESS_KIND)?;
        Ok(0)
    })
}

fn task_hand_back(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32, failed: bool) -> i32 {
    with_memory(caller, |mem, state| {
        if !state.bridge.process.task_running {
            return Err(BridgeError::invalid("no task is running"));
        }
        let bytes = mem.read(ptr, len, MAX_READ)?.to_vec();
        state.bridge.process.task_outcome = Some(if failed {
            TaskOutcome::Failed(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            TaskOutcome::Returned(bytes)
        });
        Ok(0)
    })
}

pub(super) fn task_return(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    task_hand_back(&mut caller, ptr, len, false)
}

pub(super) fn task_error(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    task_hand_back(&mut caller, ptr, len, true)
}

/// A guest that serves calls from its `_start`: hands back the outcome of
/// the call it ran (if any), then waits for the next call and gives its
/// arguments (at `ptr` when they fit in `cap` bytes, else waiting for
/// `take_result`), under the policy's wall time as its deadline.
pub(super) fn task_next(mut caller: Caller<'_, HostState>, ptr: i32, cap: i32) -> i32 {
    let next = {
        let process = &mut caller.data_mut().bridge.process;
        let Some(serving) = process.serving.as_ref().and_then(|s| s.here()) else {
            return caller
                .data_mut()
                .bridge
                .fail(BridgeError::invalid("this process serves no calls"));
        };
        if std::mem::take(&mut process.task_running) {
            let outcome = process
                .task_outcome
                .take()
                .unwrap_or(TaskOutcome::Returned(Vec::new()));
            serving.hand_back(outcome);
        }
        // No deadline while it waits for work.
        serving
            .next_call()
            .map(|args| (args, serving.deadline_ticks))
    };
    let Some((args, deadline)) = next else {
        return caller.data_mut().bridge.fail(BridgeError::new(
            Errno::Pipe,
            "the worker serves this instance no more calls",
        ));
    };
    let delivered = with_memory(&mut caller, |mem, state| {
        super::deliver(mem, state, ptr, cap.max(0) as usize, args)
    });
    let process = &mut caller.data_mut().bridge.process;
    if delivered < 0 {
        // The call fails, not the worker waiting for it.
        if let Some(serving) = process.serving.as_ref() {
            serving.hand_back(TaskOutcome::Failed(
                "the instance could not take the call's arguments".into(),
            ));
        }
        return delivered;
    }
    process.task_running = true;
    process.task_outcome = None;
    if let Some(ticks) = deadline {
        wasmtime::AsContextMut::as_context_mut(&mut caller).set_epoch_deadline(ticks);
    }
    delivered
}
