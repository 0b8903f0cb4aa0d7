//! Why a plugin call failed.

use crate::blocking::CannotBlock;
use std::time::Duration;

/// A failed [`Plugin::call`](super::Plugin::call): which plugin and export,
/// and what happened ([`CallErrorKind`]).
///
/// ```text
/// plugin.wasm: `spin` timed out after 50ms; the instance was discarded and its processes killed
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{}: `{}` {}", .0.plugin, .0.export, .0.kind)]
pub struct CallError(Box<Failure>);

/// A [`CallError`]'s parts, boxed: a call's `Result` stays as small as its
/// output, which every successful call moves through a few layers.
#[derive(Debug)]
struct Failure {
    plugin: String,
    export: String,
    kind: CallErrorKind,
}

/// What went wrong in a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallErrorKind {
    /// The module exports no function of that name.
    #[error("is not exported by the plugin")]
    NoSuchExport,
    /// The export is not a task function (`(i32) -> i32`).
    #[error("is not a task export (`(args_len: i32) -> i32`, as `task!` writes): {0}")]
    NotATask(String),
    /// The plugin reported an error (`task_error`; in Python, an exception
    /// raised). The instance is kept.
    #[error("failed: {0}")]
    Failed(String),
    /// The call ran past its deadline ([`super::Plugin::set_call_timeout`]).
    #[error("timed out after {0:?}; the instance was discarded and its processes killed")]
    Timeout(Duration),
    /// The call used up its fuel ([`super::Plugin::set_fuel`]).
    #[error("ran out of fuel; the instance was discarded and its processes killed")]
    OutOfFuel,
    /// The plugin's memory would have grown past its limit.
    #[error("ran out of memory ({0}); the instance was discarded and its processes killed")]
    OutOfMemory(String),
    /// The plugin trapped (a bug in it: `unreachable`, a bad memory access,
    /// a Rust panic).
    #[error("trapped; the instance was discarded and its processes killed: {0}")]
    Trap(String),
    /// The plugin reported a message (`task_error`) and then aborted: a
    /// Rust plugin's panic. `message` is the plugin's own text, not the
    /// host's; `trap` is the abort with its wasm backtrace.
    #[error("panicked; the instance was discarded and its processes killed: {message:?}")]
    Panicked {
        /// What the plugin reported (its text, as it gave it).
        message: String,
        /// The trap, with the wasm backtrace.
        trap: String,
    },
    /// The plugin broke the plugin ABI: its scratch buffer, or the result
    /// it pointed to, is not where it may be (`docs/abi.md`, "The plugin
    /// fast path").
    #[error("broke the plugin ABI; the instance was discarded and its processes killed: {0}")]
    Abi(String),
    /// The plugin called `proc_exit`.
    #[error("exited with code {0}; the instance was discarded and its processes killed")]
    Exit(i32),
    /// An earlier call ended the instance.
    #[error("was not called: an earlier call ended this instance ({0})")]
    Discarded(String),
    /// A blocking call where the thread cannot block.
    #[error("was not called: {0}")]
    CannotBlock(CannotBlock),
    /// A call timeout was set on a runtime without epoch interruption.
    #[error(
        "was not called: a call timeout needs a runtime with epoch interruption \
         (RuntimeBuilder::epoch_interruption)"
    )]
    NoDeadlines,
    /// A fuel limit was set on a runtime that does not count fuel.
    #[error("was not called: a fuel limit needs a runtime built with RuntimeBuilder::fuel(true)")]
    NoFuel,
    /// The host could not start what the call needs (a thread).
    #[error("was not called: {0}")]
    Host(String),
}

impl CallError {
    pub(crate) fn new(plugin: &str, export: &str, kind: CallErrorKind) -> CallError {
        CallError(Box::new(Failure {
            plugin: plugin.to_string(),
            export: export.to_string(),
            kind,
        }))
    }

    /// What happened.
    pub fn kind(&self) -> &CallErrorKind {
        &self.0.kind
    }

    /// The export called.
    pub fn export(&self) -> &str {
        &self.0.export
    }

    /// Whether the call ran past its deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self.0.kind, CallErrorKind::Timeout(_))
    }

    /// Whether the plugin trapped (panics, timeouts, fuel and memory
    /// included).
    pub fn is_trap(&self) -> bool {
        matches!(
            self.0.kind,
            CallErrorKind::Trap(_)
                | CallErrorKind::Panicked { .. }
                | CallErrorKind::Timeout(_)
                | CallErrorKind::OutOfFuel
                | CallErrorKind::OutOfMemory(_)
        )
    }

    /// Whether the instance is gone: later calls fail with
    /// [`CallErrorKind::Discarded`] (a [`super::PluginPool`] replaces it).
    pub fn discarded_instance(&self) -> bool {
        self.is_trap() || matches!(self.0.kind, CallErrorKind::Exit(_) | CallErrorKind::Abi(_))
    }
}
