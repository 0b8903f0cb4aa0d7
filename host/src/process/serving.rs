//! Calls served by a running guest: how a worker runs a Python job's pool
//! tasks.
//!
//! A Rust guest's tasks are exports the host calls. CPython for WASI
//! exports only `_start`, so a worker runs the interpreter's `_start`
//! instead (`procbridge._serve`), on a thread of its own, and the
//! interpreter asks for each call: `task_next(ptr, cap)` hands back the
//! outcome of the call before (what it gave `task_return` or `task_error`),
//! then waits for the next call's arguments. The worker's side of the two
//! channels is [`Served`].
//!
//! ```text
//! worker                          interpreter (its own thread)
//!   call(args) ──── calls ────▶   task_next() returns args
//!                                 ... runs the tasks ...
//!                                 task_return(reply)
//!   ◀──────── outcomes ──────     task_next() hands the reply back, waits
//! ```

use super::TaskOutcome;
use crate::ctx::HostState;
use crate::runtime::{Program, Runtime};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How much longer than two wall times (the import of its main and the
/// call) a call may go unanswered before its instance is given up.
const GRACE: Duration = Duration::from_secs(1);

/// The guest's side: where its calls come from and their outcomes go.
#[derive(Debug)]
pub(crate) struct Serving {
    /// The process that serves (a fork child of the guest serves nothing).
    pid: u32,
    calls: Receiver<Vec<u8>>,
    outcomes: Sender<TaskOutcome>,
    /// Each call's deadline, in epoch ticks from when it starts (the
    /// policy's wall time; `None`: none).
    pub(crate) deadline_ticks: Option<u64>,
}

impl Serving {
    /// This process's serving, unless it is a fork child of the server.
    pub(crate) fn here(&self) -> Option<&Serving> {
        (self.pid == std::process::id()).then_some(self)
    }

    /// Hands back a call's outcome (nobody waiting: the worker dropped the
    /// instance, and the next wait says so).
    pub(crate) fn hand_back(&self, outcome: TaskOutcome) {
        let _ = self.outcomes.send(outcome);
    }

    /// The next call's arguments; `None` once the worker stops serving.
    pub(crate) fn next_call(&self) -> Option<Vec<u8>> {
        self.calls.recv().ok()
    }
}

/// The worker's side: a guest running `_start` on its own thread, serving
/// calls.
#[derive(Debug)]
pub(crate) struct Served {
    calls: Option<Sender<Vec<u8>>>,
    outcomes: Receiver<TaskOutcome>,
    thread: Option<JoinHandle<anyhow::Result<i32>>>,
    /// How long a call may go unanswered (`None`: no limit): a deadline
    /// stops wasm code, not a guest blocked in a host call.
    patience: Option<Duration>,
    /// Why it serves no more calls.
    ended: Option<String>,
}

impl Served {
    /// Starts `program` with `state` on a thread of its own.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub(crate) fn start(
        runtime: &Arc<Runtime>,
        program: &Program,
        mut state: HostState,
    ) -> std::io::Result<Served> {
        let (calls, calls_in) = crossbeam_channel::bounded(1);
        let (outcomes_out, outcomes) = crossbeam_channel::bounded(1);
        let wall_time = state.policy().limits().wall_time;
        state.bridge.process.serving = Some(Serving {
            pid: std::process::id(),
            calls: calls_in,
            outcomes: outcomes_out,
            deadline_ticks: wall_time.and_then(|t| runtime.deadline_ticks(t)),
        });
        let (runtime, program) = (runtime.clone(), program.clone());
        let thread = std::thread::Builder::new()
            .name("procbridge-served".into())
            .spawn(move || runtime.run(&program, state))?;
        Ok(Served {
            calls: Some(calls),
            outcomes,
            thread: Some(thread),
            patience: wall_time.map(|t| t.saturating_mul(2).saturating_add(GRACE)),
            ended: None,
        })
    }

    /// Whether it still serves calls (as far as is known: one that ended
    /// while idle is found out at its next call).
    pub(crate) fn is_alive(&self) -> bool {
        self.ended.is_none()
    }

    /// One call: its outcome, or why the guest ended instead (`Err`, and it
    /// serves no more).
    pub(crate) fn call(&mut self, args: Vec<u8>) -> Result<TaskOutcome, String> {
        if let Some(why) = &self.ended {
            return Err(why.clone());
        }
        let sent = self.calls.as_ref().is_some_and(|c| c.send(args).is_ok());
        if !sent {
            return Err(self.end());
        }
        let Some(patience) = self.patience else {
            return self.outcomes.recv().map_err(|_| self.end());
        };
        match self.outcomes.recv_timeout(patience) {
            Ok(outcome) => Ok(outcome),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(self.end()),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                // Left to end on its own thread, not waited for.
                self.calls = None;
                self.thread = None;
                let why = format!(
                    "the instance did not answer within {patience:?} (blocked outside its \
                     deadline's reach); given up"
                );
                self.ended = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Waits for the guest's thread, which has ended or is ending; why.
    fn end(&mut self) -> String {
        self.calls = None;
        let why = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(code))) => format!("the instance exited with code {code}"),
            Some(Ok(Err(err))) => format!("the instance ended: {err:#}"),
            Some(Err(_)) => "the instance's thread panicked".to_string(),
            None => "the instance ended".to_string(),
        };
        self.ended = Some(why.clone());
        why
    }
}

impl Drop for Served {
    /// Its next `task_next` fails, and the guest ends on its own thread
    /// (not waited for here: a guest that went on running would hold the
    /// worker; its deadline, if it has one, still stops it).
    fn drop(&mut self) {
        self.calls = None;
    }
}
