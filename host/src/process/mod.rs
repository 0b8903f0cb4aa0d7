//! Guest processes on real OS processes: `os.fork`, `multiprocessing.Process`
//! and the task ABI they share.
//!
//! * [`fork`](self::fork) forks the host process from inside a host call;
//!   the child goes on with a copy of everything, the guest's memory
//!   included. `docs/processes.md` lists the rules that make this safe.
//! * [`task`] calls a guest's exported task function (`run_proc(args_len)`)
//!   and collects what it hands back.
//! * [`spawn`] runs a task in a fresh instance of the same program inside a
//!   forked child (the "spawn" start method).
//! * [`child`] waits for, signals and reaps one child OS process.
//!
//! Every child ends the OS process itself (`_exit`), never returning into
//! the embedder that started the root guest.

pub(crate) mod child;
pub(crate) mod fork;
pub(crate) mod serving;
pub(crate) mod spawn;
pub(crate) mod task;

use crate::ctx::{GuestBuilder, HostState};
use crate::handles::HandleTable;
use child::Child;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use wasmtime::TypedFunc;

/// Handle kind of a started `Process`.
pub(crate) const PROCESS_KIND: &str = "process";

/// How a `Process` starts, as Python's start methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartMethod {
    /// Fork the host; the child calls the target in its copy of the
    /// instance (Python's default on Linux).
    Fork,
    /// Fork the host; the child calls the target in a fresh instance of the
    /// same compiled program, with fresh WASI state.
    Spawn,
}

impl StartMethod {
    /// From the ABI's number: `0` default (fork), `1` fork, `2` spawn.
    pub(crate) fn from_abi(value: i32) -> Option<StartMethod> {
        use procbridge_abi::process::{METHOD_DEFAULT, METHOD_FORK, METHOD_SPAWN};
        match value {
            METHOD_DEFAULT | METHOD_FORK => Some(StartMethod::Fork),
            METHOD_SPAWN => Some(StartMethod::Spawn),
            _ => None,
        }
    }
}

/// What a forked child goes on to run. It decides how much wasm memory the
/// child holds from the start (counted against the tree's limit before the
/// fork) and what the audit log says about it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Start<'a> {
    /// `os.fork`: the child goes on in its copy of the instance.
    Fork,
    /// A `Process`: the target runs in the child's copy of the instance
    /// (fork) or in a fresh instance of the same program (spawn).
    Process {
        /// The task export it runs.
        target: &'a str,
        /// Its start method.
        method: StartMethod,
    },
    /// A pool worker: it serves tasks in its copy of the instance.
    PoolWorker,
}

impl Start<'_> {
    /// Bytes of wasm linear memory the child holds from the start: its copy
    /// of this instance's, or for spawn the initial memory of the fresh
    /// instance it makes (its copy of ours stays unused, shared with us).
    pub(crate) fn memory(&self, state: &HostState) -> u64 {
        match self {
            Start::Process {
                method: StartMethod::Spawn,
                ..
            } => state
                .bridge
                .program
                .as_ref()
                .map_or(0, |program| crate::memory::initial_bytes(program.module())),
            _ => state.memory.held(),
        }
    }

    /// What starts, in words (for `procbridge -vv`).
    pub(crate) fn describe(&self) -> String {
        match self {
            Start::Fork => "os.fork child".to_string(),
            Start::Process { target, method } => format!(
                "Process {target:?} ({})",
                match method {
                    StartMethod::Fork => "fork",
                    StartMethod::Spawn => "spawn",
                }
            ),
            Start::PoolWorker => "Pool worker".to_string(),
        }
    }

    /// The audit record of a child that started as `pid`.
    pub(crate) fn record(&self, pid: u32) {
        let Some(event) = crate::audit::logged(crate::audit::Kind::Spawn) else {
            return;
        };
        let event = match self {
            Start::Fork => event.start("fork"),
            Start::Process { target, method } => event
                .start("process")
                .method(match method {
                    StartMethod::Fork => "fork",
                    StartMethod::Spawn => "spawn",
                })
                .target(target),
            Start::PoolWorker => event.start("pool_worker"),
        };
        event.child(pid).record();
    }
}

/// `process_start` flags.
pub(crate) mod flags {
    pub use procbridge_abi::process::{
        FLAG_DAEMON as DAEMON, FLAG_DROP_DIRS as DROP_DIRS, FLAG_DROP_ENV as DROP_ENV,
        FLAG_DROP_RUN as DROP_RUN,
    };
    /// Every flag this host knows.
    pub const ALL: i32 = DAEMON | DROP_RUN | DROP_DIRS | DROP_ENV;
}

/// What a task hands back with `task_return` / `task_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskOutcome {
    /// The task's return bytes.
    Returned(Vec<u8>),
    /// The task's error message.
    Failed(String),
}

/// The process side of a guest's state.
#[derive(Debug, Default)]
pub struct ProcessState {
    /// How this guest was configured: a spawned child is built from it
    /// (with the grants it drops removed).
    pub(crate) origin: Option<Arc<GuestBuilder>>,
    /// `os.fork` children not yet waited for.
    pub(crate) fork_children: Vec<Child>,
    /// This state runs in a child OS process: when the guest ends, the
    /// process ends (it must never return into the embedder).
    pub(crate) in_child: bool,
    /// This process is a daemon `Process` (which may not start processes).
    pub(crate) daemon: bool,
    /// Set while a task export runs.
    pub(crate) task_running: bool,
    /// What the running task handed back.
    pub(crate) task_outcome: Option<TaskOutcome>,
    /// Where this guest's calls come from, when it serves them from its
    /// `_start` (see [`serving`]).
    pub(crate) serving: Option<serving::Serving>,
    /// The task functions `Process` targets name (fork start method),
    /// looked up once: a fork child finds its target here.
    pub(crate) tasks: Tasks,
}

/// An instance's task functions, by export name.
#[derive(Default)]
pub(crate) struct Tasks(HashMap<String, TypedFunc<i32, i32>>);

/// A task function taken out of [`Tasks`], with its name.
pub(crate) struct Task {
    name: String,
    func: TypedFunc<i32, i32>,
}

impl Task {
    pub(crate) fn new(name: &str, func: TypedFunc<i32, i32>) -> Task {
        Task {
            name: name.to_string(),
            func,
        }
    }

    pub(crate) fn func(&self) -> &TypedFunc<i32, i32> {
        &self.func
    }
}

impl Tasks {
    /// Takes task `name` out, to be put back once used.
    pub(crate) fn take(&mut self, name: &str) -> Option<Task> {
        let (name, func) = self.0.remove_entry(name)?;
        Some(Task { name, func })
    }

    pub(crate) fn put_back(&mut self, task: Task) {
        self.0.insert(task.name, task.func);
    }
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl ProcessState {
    /// Called in a fork child: the parent's `os.fork` children are not ours.
    pub(crate) fn forget_parents_children(&mut self) {
        // Drained in place: freeing the parent's list would write to the
        // allocator's pages, a copy-on-write fault in every child.
        for child in self.fork_children.drain(..) {
            child.disown();
        }
    }
}

/// Flushes the host's own stdout and stderr (before a fork, so buffered
/// bytes are not written twice, and before `_exit`), and reports the
/// denials and limit hits the audit's rate limit left out.
pub(crate) fn flush_host_stdio() {
    crate::audit::flush_suppressed();
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// What Python does when a process ends: terminate daemon children, join
/// the others, then wait for `os.fork` children not waited for (so none is
/// left orphaned or a zombie).
pub(crate) fn finish_guest(state: &mut HostState) {
    let handles = std::mem::replace(&mut state.bridge.handles, HandleTable::new(0));
    drop(handles);
    // Output trailing its last cluster call is passed on, and its results'
    // consumer deleted.
    drop(state.bridge.remote_calls.take());
    drop(std::mem::take(&mut state.bridge.process.fork_children));
}

/// What ends a guest that was stopped (a plugin's instance discarded): its
/// `Process` and `fork` children are killed, then reaped as
/// [`finish_guest`] reaps them; its commands die with their handles.
pub(crate) fn kill_guest(state: &mut HostState) {
    crate::api::process::kill_all(&mut state.bridge.handles);
    for child in &mut state.bridge.process.fork_children {
        let _ = child.signal(libc::SIGKILL);
    }
    finish_guest(state);
}

/// Ends a child OS process with `code` after finishing its guest.
pub(crate) fn exit_child(state: &mut HostState, code: i32) -> ! {
    // Empty lists have nothing to finish, and the OS takes their memory:
    // freeing it would only copy the allocator's pages the child still
    // shares with its parent (a page fault each).
    if state.bridge.handles.is_empty() {
        std::mem::forget(std::mem::replace(
            &mut state.bridge.handles,
            HandleTable::new(0),
        ));
    }
    if state.bridge.process.fork_children.is_empty() {
        std::mem::forget(std::mem::take(&mut state.bridge.process.fork_children));
    }
    finish_guest(state);
    flush_host_stdio();
    // SAFETY: ends this (child) process without running the embedder's
    // exit handlers or destructors, which belong to the parent.
    unsafe { libc::_exit(code) }
}

/// The exit code of a guest that ended with `result`: `0` when it returned,
/// `N` for `proc_exit(N)`, `1` with the trap (and its wasm backtrace) on
/// stderr for a trap, as an uncaught Python exception.
pub(crate) fn exit_code_of(result: Result<(), wasmtime::Error>, what: &str) -> i32 {
    match result {
        Ok(()) => 0,
        Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => exit.0,
            None => {
                eprintln!(
                    "Process {} ({}): guest trapped: {err:?}",
                    what,
                    std::process::id()
                );
                1
            }
        },
    }
}

/// The configuration of a child of a guest built from `origin`, without the
/// grants `flags` drops. A spawned child's stdin is empty, as Python's.
pub(crate) fn reduced(origin: &GuestBuilder, flags: i32, method: StartMethod) -> GuestBuilder {
    let mut builder = origin.clone();
    let drop_env = flags & flags::DROP_ENV != 0;
    builder.policy(origin.current_policy().reduced(
        flags & flags::DROP_RUN != 0,
        flags & flags::DROP_DIRS != 0,
        drop_env,
    ));
    if drop_env {
        builder.clear_env();
    }
    if method == StartMethod::Spawn {
        builder.stdin(crate::ctx::Stdio::Null);
    }
    builder
}
