//! The "spawn" start method: in a freshly forked child, a new instance of
//! the same compiled program (an `InstancePre`: nothing is recompiled) with
//! fresh WASI state built from the parent's grants, minus the ones the
//! parent dropped.
//!
//! Inheritable handles (queues, pipes) move into the new instance's table
//! under the same numbers, so a handle passed in the task's arguments keeps
//! working.

use super::{task, StartMethod};
use crate::ctx::HostState;
use anyhow::Context;

/// Runs `target(args)` in a fresh instance and ends this (child) process
/// with the task's exit code.
pub(crate) fn run_fresh(parent: &mut HostState, target: &str, args: Vec<u8>, flags: i32) -> ! {
    let remote = parent
        .bridge
        .cluster
        .clone()
        .filter(|link| link.runs_processes());
    let origin = parent.bridge.process.origin.clone();
    let outcome = match (remote, origin) {
        (Some(link), Some(origin)) => {
            // The grants it keeps, by name, for the worker to narrow.
            let kept = super::reduced(&origin, flags, StartMethod::Spawn);
            let grants = link.grants_of(kept.current_policy());
            Ok(crate::cluster::process::run(
                &link, parent, &grants, target, args,
            ))
        }
        _ => run(parent, target, args, flags),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!(
                "Process {target} ({}): cannot start: {err:#}",
                std::process::id()
            );
            1
        }
    };
    super::flush_host_stdio();
    // SAFETY: ends this child process; see `super::exit_child`.
    unsafe { libc::_exit(code) }
}

fn run(parent: &mut HostState, target: &str, args: Vec<u8>, flags: i32) -> anyhow::Result<i32> {
    let program = parent
        .bridge
        .program
        .clone()
        .context("the parent has no program")?;
    let origin = parent
        .bridge
        .process
        .origin
        .clone()
        .context("the parent was not built by a GuestBuilder")?;
    let mut builder = super::reduced(&origin, flags, StartMethod::Spawn);
    // Its commands run in the job's jail, like every other process's.
    builder.inherit_jail(parent.bridge.jail.clone());
    let mut state = builder.build()?;
    // The copy of the parent's instance stays unused here: only the fresh
    // instance counts against the tree's memory. The parent reserved its
    // initial memory in this process's slot before forking.
    state.memory.prepay(crate::supervisor::own_memory_bytes());
    state.bridge.handles = parent.bridge.handles.take_inheritable();
    state.bridge.program = Some(program.clone());
    state.bridge.process.in_child = true;
    state.bridge.process.daemon = flags & super::flags::DAEMON != 0;
    let mut store = crate::runtime::new_store(program.module().engine(), state);
    let instance = program
        .instance_pre()
        .instantiate(&mut store)
        .map_err(anyhow::Error::from)
        .context("instantiate")?;
    store.data_mut().memory.settle();
    let func = instance
        .get_func(&mut store, target)
        .with_context(|| format!("no export `{target}`"))?;
    let code = task::call_task(&mut store, func, args).exitcode(target);
    super::finish_guest(store.data_mut());
    Ok(code)
}
