//! What a worker runs a job's chunks in: an instance of the job's module
//! whose task exports it calls ([`Plugin`]), or, for a Python job, the
//! worker's own interpreter serving the job's pool batches from its
//! `_start` ([`Served`], `procbridge._serve`).

use crate::plugin::{CallErrorKind, Plugin};
use crate::process::serving::Served;
use crate::process::TaskOutcome;
use crate::python::{Bundle, PythonJob};
use crate::{GuestBuilder, HostState, Program, Runtime};
use anyhow::{bail, Context};
use procbridge_abi::pool::{STATUS_FAILED, STATUS_WORKER_LOST};
use std::sync::Arc;

/// A job's instance on a worker.
pub(super) enum Instance {
    /// A module's: its task exports are called.
    Wasm(Plugin),
    /// A Python job's: the interpreter serves the calls.
    Python(Served),
}

/// How a call did not return: the status its item gets, the message, and
/// whether the instance ended with it.
pub(super) struct NotReturned {
    pub(super) status: u8,
    pub(super) message: String,
    pub(super) ended: bool,
}

impl Instance {
    /// Calls task `name` with `args`. `fresh`: the instance is a process's
    /// own, whose `exit(0)` is a return.
    pub(super) fn call(
        &mut self,
        name: &str,
        args: &[u8],
        fresh: bool,
    ) -> Result<Vec<u8>, NotReturned> {
        match self {
            Instance::Wasm(plugin) => match plugin.call(name, args) {
                Ok(bytes) => Ok(bytes),
                Err(err) if fresh && matches!(err.kind(), CallErrorKind::Exit(0)) => Ok(Vec::new()),
                Err(err) => Err(NotReturned {
                    status: STATUS_FAILED,
                    message: match err.kind() {
                        CallErrorKind::Failed(message) => message.clone(),
                        kind => kind.to_string(),
                    },
                    ended: !plugin.is_alive(),
                }),
            },
            Instance::Python(_) if name != crate::python::TASK => Err(NotReturned {
                status: STATUS_FAILED,
                message: format!(
                    "a Python job's instance runs task `{}`, not `{name}`",
                    crate::python::TASK
                ),
                ended: false,
            }),
            Instance::Python(served) => match served.call(args.to_vec()) {
                Ok(TaskOutcome::Returned(bytes)) => Ok(bytes),
                Ok(TaskOutcome::Failed(message)) => Err(NotReturned {
                    status: STATUS_FAILED,
                    message,
                    ended: false,
                }),
                // The interpreter ended (`os._exit`, a trap, its deadline):
                // as a local pool worker's death, its tasks are lost.
                Err(why) => Err(NotReturned {
                    status: STATUS_WORKER_LOST,
                    message: why,
                    ended: true,
                }),
            },
        }
    }

    /// Whether it still takes calls.
    pub(super) fn is_alive(&self) -> bool {
        match self {
            Instance::Wasm(plugin) => plugin.is_alive(),
            Instance::Python(served) => served.is_alive(),
        }
    }

    /// Runs `f` on its host state (a Python instance's is its own thread's
    /// once started: `None`).
    pub(super) fn with_state<R>(&self, f: impl FnOnce(&mut HostState) -> R) -> Option<R> {
        match self {
            Instance::Wasm(plugin) => plugin.with_state(f),
            Instance::Python(_) => None,
        }
    }
}

/// A job's module as the worker keeps it.
#[derive(Clone)]
pub(super) enum Module {
    Wasm(Program),
    Python(Arc<Bundle>),
}

/// The worker's own Python interpreter, loaded at the first Python job.
pub(super) struct Python {
    program: Program,
    /// The SHA-256 of its `.wasm`.
    sha256: String,
}

impl Python {
    /// Loads the interpreter `guests/install-python` installed here.
    ///
    /// # Errors
    /// When there is none, or it cannot be read or compiled.
    pub(super) fn load(runtime: &Runtime) -> anyhow::Result<Python> {
        let job = PythonJob::new(crate::python::Source::Code(String::new()), vec![])?;
        let path = job.interpreter();
        let bytes = std::fs::read(path)
            .with_context(|| format!("this worker's Python interpreter {}", path.display()))?;
        let sha256 = crate::python::digest(&bytes);
        let program = runtime.load_bytes(&path.display().to_string(), &bytes)?;
        // Only a slower start of each instance when it fails.
        let _ = job.precompile(runtime, &program);
        Ok(Python { program, sha256 })
    }

    /// A new instance serving `bundle`'s pool batches, its guest set up by
    /// `configure` (policy, output); `hold` runs on its state before it
    /// starts.
    ///
    /// # Errors
    /// When the job runs another interpreter or library than this worker,
    /// or the instance cannot be started.
    pub(super) fn serve(
        &self,
        runtime: &Arc<Runtime>,
        bundle: &Bundle,
        configure: impl FnOnce(&mut GuestBuilder),
        hold: impl FnOnce(&mut HostState) -> Result<(), String>,
    ) -> anyhow::Result<Instance> {
        runs_here(bundle, &self.sha256, &crate::python::library_version())?;
        let job = PythonJob::new(bundle.source.clone(), bundle.args.clone())?.serving();
        let mut guest = GuestBuilder::new();
        job.configure(&mut guest);
        configure(&mut guest);
        let mut state = guest.build()?;
        hold(&mut state).map_err(anyhow::Error::msg)?;
        let served = Served::start(runtime, &self.program, state)
            .context("cannot start the interpreter's thread")?;
        Ok(Instance::Python(served))
    }
}

/// Refuses a Python job that runs another interpreter (by SHA-256) or
/// another version of procbridge's Python library than this worker.
fn runs_here(bundle: &Bundle, interpreter: &str, library: &str) -> anyhow::Result<()> {
    if bundle.interpreter != interpreter {
        bail!(
            "the job runs the Python interpreter {}, this worker has {interpreter}: install the \
             same with guests/install-python",
            bundle.interpreter
        );
    }
    if bundle.library != library {
        bail!(
            "the job's procbridge Python library is version {}, this worker's {library}: run the \
             same procbridge on both",
            bundle.library
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::Source;

    #[test]
    fn a_job_for_another_interpreter_or_library_is_refused_saying_which() {
        let bundle = Bundle::new("aa".into(), Source::Code("pass".into()), vec![]);
        let library = bundle.library.clone();
        assert!(runs_here(&bundle, "aa", &library).is_ok());
        let other_python = runs_here(&bundle, "bb", &library).unwrap_err().to_string();
        assert!(
            other_python.starts_with("the job runs the Python interpreter aa, this worker has bb"),
            "{other_python}"
        );
        let other_library = runs_here(&bundle, "aa", "0123").unwrap_err().to_string();
        assert!(
            other_library.starts_with(&format!(
                "the job's procbridge Python library is version {library}, this worker's 0123"
            )),
            "{other_library}"
        );
    }
}
