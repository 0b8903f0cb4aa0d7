//! Calling a guest's exported task function: the task ABI.
//!
//! A task export has the signature `(args_len: i32) -> i32`. The host
//! leaves the arguments as the waiting result (the task takes them with
//! `take_result(ptr, args_len)`), calls the export, and the task hands back
//! its return bytes with `task_return(ptr, len)` or an error message with
//! `task_error(ptr, len)`. A task that calls neither and returns `0` returned
//! nothing; a non-zero return without `task_error` is a failure.

use super::TaskOutcome;
use crate::ctx::HostState;
use wasmtime::{AsContextMut, Func, TypedFunc};

/// How a task call ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// It returned these bytes (a `Process` drops them; a pool hands them
    /// to the caller).
    Returned(#[allow(dead_code)] Vec<u8>),
    /// It reported an error (Python: the target raised).
    Failed(String),
    /// It called `proc_exit(N)`.
    Exit(i32),
    /// It trapped.
    Trap(wasmtime::Error),
    /// It reported an error and then aborted (`unreachable`): a panic,
    /// whose message the SDK's panic hook reported with `task_error`. The
    /// message is the guest's own text; the trap keeps the wasm backtrace.
    Panicked {
        /// What the task reported.
        message: String,
        /// The abort.
        trap: wasmtime::Error,
    },
}

impl Ending {
    /// The exit code of a `Process` whose target ended like this; failures
    /// and traps are reported on stderr, as Python prints the traceback of
    /// an uncaught exception.
    pub(crate) fn exitcode(self, target: &str) -> i32 {
        let pid = std::process::id();
        match self {
            Ending::Returned(_) => 0,
            Ending::Exit(code) => code,
            Ending::Failed(message) | Ending::Panicked { message, .. } => {
                eprintln!("Process {target} ({pid}): {message}");
                1
            }
            Ending::Trap(err) => {
                eprintln!("Process {target} ({pid}): guest trapped: {err:?}");
                1
            }
        }
    }
}

/// Calls the task export `func` with `args` and collects its outcome.
pub(crate) fn call_task(
    ctx: impl AsContextMut<Data = HostState>,
    func: Func,
    args: Vec<u8>,
) -> Ending {
    match func.typed::<i32, i32>(&ctx) {
        Ok(typed) => call_typed(ctx, &typed, args),
        Err(err) => Ending::Failed(format!("not a task function: {err}")),
    }
}

/// [`call_task`] with the export's signature already checked (a pool
/// worker checks it once, not per task).
pub(crate) fn call_typed(
    mut ctx: impl AsContextMut<Data = HostState>,
    typed: &TypedFunc<i32, i32>,
    args: Vec<u8>,
) -> Ending {
    let mut store = ctx.as_context_mut();
    let len = match store.data_mut().bridge.set_result(args) {
        Ok(len) => len,
        Err(err) => return Ending::Failed(err.message),
    };
    let (result, outcome) = call_raw(ctx, typed, len);
    ending(result, outcome)
}

/// Calls the task export `typed` with `args_len` (its arguments already
/// where the task takes them from), with `task_return` and `task_error`
/// allowed: what the call returned, and what the task handed back.
pub(crate) fn call_raw(
    mut ctx: impl AsContextMut<Data = HostState>,
    typed: &TypedFunc<i32, i32>,
    args_len: i32,
) -> (wasmtime::Result<i32>, Option<TaskOutcome>) {
    let mut store = ctx.as_context_mut();
    let process = &mut store.data_mut().bridge.process;
    process.task_running = true;
    process.task_outcome = None;
    let result = typed.call(&mut ctx, args_len);
    let mut store = ctx.as_context_mut();
    let process = &mut store.data_mut().bridge.process;
    process.task_running = false;
    (result, process.task_outcome.take())
}

/// How a task call that returned `result`, the task having handed back
/// `outcome`, ended.
pub(crate) fn ending(result: wasmtime::Result<i32>, outcome: Option<TaskOutcome>) -> Ending {
    match result {
        Ok(status) => match outcome {
            Some(TaskOutcome::Returned(bytes)) => Ending::Returned(bytes),
            Some(TaskOutcome::Failed(message)) => Ending::Failed(message),
            None if status == 0 => Ending::Returned(Vec::new()),
            None => Ending::Failed(format!("the task returned status {status}")),
        },
        Err(err) => {
            if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Ending::Exit(exit.0);
            }
            // An abort (`unreachable`) after `task_error`: the SDK's panic
            // hook reported the panic. Any other trap (a deadline, out of
            // fuel) is what it is.
            let aborted = err.downcast_ref::<wasmtime::Trap>()
                == Some(&wasmtime::Trap::UnreachableCodeReached);
            match outcome {
                Some(TaskOutcome::Failed(message)) if aborted => {
                    Ending::Panicked { message, trap: err }
                }
                _ => Ending::Trap(err),
            }
        }
    }
}
