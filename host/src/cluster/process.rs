//! Spawn-method `Process`es on the cluster's workers (`--processes
//! cluster`).
//!
//! A spawn-method child starts as it does locally: a forked child of the
//! job, whose pid the parent sees, and which the parent joins, terminates
//! and reads the exit code of. Instead of a fresh instance of its own, the
//! child sends its target and arguments to the task stream as a chunk of
//! one task, with the grants the process keeps (a process started
//! `without_commands` asks for none) and the job's queues it holds; it
//! answers the workers' question whether it still waits, writes the task's
//! output to the job's stdout and stderr, and exits with the task's outcome:
//! `0` when it returned, `1` when it failed, trapped, exited or its workers
//! were lost (the message on stderr, as a local child's).
//!
//! Terminating the child before a worker starts the task drops the task
//! (the worker finds nobody waiting); once the task runs, it runs to its
//! end on the worker.

use super::relay;
use super::remote::{Call, RemoteCalls};
use super::JobLink;
use crate::ctx::HostState;
use std::sync::Arc;

/// Runs `target(args)` on a worker, standing in for it here; returns the
/// exit code this (child) process should end with.
/// `grants` is the JSON of what the process keeps.
pub(crate) fn run(
    link: &Arc<JobLink>,
    parent: &HostState,
    grants: &str,
    target: &str,
    args: Vec<u8>,
) -> i32 {
    let pid = std::process::id();
    let queues = relay::shared_queues(parent);
    let call = Call {
        target,
        args: &args,
        grants,
        queues: &queues,
        fresh: true,
    };
    // Dropped before the exit code is known: trailing output is passed on.
    let outcome = RemoteCalls::open(link.clone()).and_then(|mut calls| calls.call(&call));
    match outcome {
        Ok(Ok(_)) => 0,
        Ok(Err(failure)) => {
            eprintln!("Process {target} ({pid}): {failure}");
            1
        }
        Err(err) => {
            eprintln!(
                "Process {target} ({pid}): cannot run on the cluster at {}: {err:#}",
                link.cluster.display_url()
            );
            1
        }
    }
}
