//! Plugins: an instance kept between calls, whose task exports are called
//! with bytes and answer bytes, each call under its own limits — what a
//! platform that accepts wasm plugins embeds.
//!
//! ```no_run
//! use procbridge::{GuestBuilder, Runtime};
//! use std::time::Duration;
//!
//! let runtime = Runtime::new()?;
//! let program = runtime.load_file("plugin.wasm")?;
//! let mut plugin = runtime.instantiate(&program, GuestBuilder::new().build()?)?;
//! let out: Vec<u8> = plugin.call("count_vowels", b"Hello")?;
//! plugin.set_call_timeout(Some(Duration::from_millis(50)));
//! let err = plugin.call("spin", b"").unwrap_err();     // returns; the embedder lives on
//! assert!(err.is_timeout());
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! An export is called with the task ABI every guest already speaks
//! (`docs/abi.md`; `task!` in Rust, `procbridge.task` in Python): the input
//! is the task's arguments, what it hands to `task_return` is the output,
//! and `task_error` is a [`CallErrorKind::Failed`] that keeps the instance.
//! A trap, a deadline passed, fuel or memory used up, or `proc_exit` end
//! the instance: its store is dropped, which kills the processes it
//! started, and the embedding process and its other plugins go on.
//!
//! Inside a call the plugin has its policy's process model: `fork`,
//! `Process`, `Pool` and granted commands work as in `Runtime::run`. A
//! `fork` child that returns from the export ends there, never returning
//! into the embedder.

mod error;
mod pool;

pub use error::{CallError, CallErrorKind};
pub use pool::PluginPool;

use crate::blocking::run_blocking;
use crate::ctx::HostState;
use crate::deadline::Ticker;
use crate::process::task::{self, Ending};
use crate::process_local;
use crate::runtime::{new_store, Program};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{Engine, Instance, Store, TypedFunc};

/// An instance of a program kept for calls. See the [module docs](self).
pub struct Plugin {
    name: String,
    slot: Arc<Mutex<Slot>>,
    settings: Settings,
    runtime: Instantiator,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The per-call limits.
#[derive(Debug, Clone, Copy, Default)]
struct Settings {
    timeout: Option<Duration>,
    fuel: Option<u64>,
}

/// The instance, or why it is gone.
enum Slot {
    Live(Box<Live>),
    Ended(String),
}

struct Live {
    store: Store<HostState>,
    instance: Instance,
    /// Task exports looked up so far (a plugin has few: a scan beats
    /// hashing the name).
    exports: Vec<(String, TypedFunc<i32, i32>)>,
}

/// What a runtime lends its plugins: the engine, its deadlines, whether it
/// counts fuel. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Instantiator {
    pub(crate) engine: Engine,
    pub(crate) ticker: Option<Arc<Ticker>>,
    pub(crate) fuel: bool,
}

impl Instantiator {
    /// A new instance of `program` with `state`; its `_initialize` (a WASI
    /// reactor's) is called, its `_start` is not. The policy's wall time,
    /// if any, is each call's timeout until [`Plugin::set_call_timeout`].
    pub(crate) fn instantiate(
        &self,
        program: &Program,
        state: HostState,
    ) -> anyhow::Result<Plugin> {
        run_blocking(|| self.instantiate_here(program, state))?
    }

    /// [`Instantiator::instantiate`] on this thread, which may block (a
    /// blocking thread of Tokio's, where a pool builds replacements).
    pub(crate) fn instantiate_here(
        &self,
        program: &Program,
        state: HostState,
    ) -> anyhow::Result<Plugin> {
        let timeout = state.policy().limits().wall_time;
        let mut state = state;
        state.bridge.program = Some(program.clone());
        let mut store = new_store(&self.engine, state);
        if self.fuel {
            // The start function and `_initialize` run unmetered (only a
            // call has a fuel limit); a fuel-counting store starts empty.
            store.set_fuel(u64::MAX)?;
        }
        let live = {
            let _tokio = process_local::enter_tokio();
            let instance = program.instance_pre().instantiate(&mut store)?;
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
                init.call(&mut store, ())?;
            }
            Live {
                store,
                instance,
                exports: Vec::new(),
            }
        };
        Ok(Plugin {
            name: program.name().to_string(),
            slot: Arc::new(Mutex::new(Slot::Live(Box::new(live)))),
            settings: Settings {
                timeout,
                fuel: None,
            },
            runtime: self.clone(),
        })
    }
}

impl Plugin {
    /// Calls task export `export` with `input`; its output.
    ///
    /// Blocks until the call ends. From a Tokio worker thread it runs in
    /// `block_in_place`; inside a current-thread runtime it fails with
    /// [`CallErrorKind::CannotBlock`]: use [`Plugin::call_async`].
    ///
    /// # Errors
    /// [`CallError`]: which export, and what happened.
    pub fn call(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let this = &*self;
        run_blocking(|| this.call_here(export, input))
            .map_err(|e| CallError::new(&self.name, export, CallErrorKind::CannotBlock(e)))?
    }

    /// [`Plugin::call`] for async code: the call runs on Tokio's blocking
    /// threads. Must be awaited inside a Tokio runtime.
    ///
    /// # Errors
    /// As [`Plugin::call`].
    pub async fn call_async(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let this = self.handle();
        on_blocking_thread(&self.name, export, input, move |export, input| {
            this.call_here(export, input)
        })
        .await
    }

    /// Each later call's deadline (`None`: none). A call past it returns
    /// [`CallErrorKind::Timeout`] and ends the instance. Needs a runtime
    /// with epoch interruption (the default).
    pub fn set_call_timeout(&mut self, timeout: Option<Duration>) {
        self.settings.timeout = timeout;
    }

    /// The fuel each later call may burn (about one unit per wasm
    /// instruction; `None`: no limit). Needs a runtime built with
    /// `RuntimeBuilder::fuel(true)`.
    pub fn set_fuel(&mut self, fuel: Option<u64>) {
        self.settings.fuel = fuel;
    }

    /// Whether the instance is still there to call (a trap, timeout or
    /// exit ends it).
    pub fn is_alive(&self) -> bool {
        matches!(*lock(&self.slot), Slot::Live(_))
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle on the same instance with the same settings, for a call on
    /// another thread.
    fn handle(&self) -> Plugin {
        Plugin {
            name: self.name.clone(),
            slot: self.slot.clone(),
            settings: self.settings,
            runtime: self.runtime.clone(),
        }
    }

    /// The call, on this thread (which may block).
    fn call_here(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let fail = |kind| CallError::new(&self.name, export, kind);
        let mut slot = lock(&self.slot);
        let live = match &mut *slot {
            Slot::Live(live) => live,
            Slot::Ended(why) => return Err(fail(CallErrorKind::Discarded(why.clone()))),
        };
        let index = live.look_up(export).map_err(fail)?;
        self.arm(live).map_err(fail)?;
        let _tokio = process_local::enter_tokio();
        let Live { store, exports, .. } = &mut **live;
        let func = &exports[index].1;
        let ending = match store.data_mut().bridge.set_result_from(input) {
            Ok(len) => {
                let (result, outcome) = task::call_raw(&mut *store, func, len);
                task::ending(result, outcome)
            }
            Err(err) => Ending::Failed(err.message),
        };
        crate::deadline::no_deadline(&mut live.store);
        if live.store.data().bridge.process.in_child {
            // A fork child made inside the call, returning from it: it ends
            // here (what follows is the embedder's code, the parent's).
            let code = ending.exitcode(export);
            crate::process::exit_child(live.store.data_mut(), code);
        }
        let kind = match ending {
            Ending::Returned(bytes) => return Ok(bytes),
            Ending::Failed(message) => return Err(fail(CallErrorKind::Failed(message))),
            Ending::Exit(code) => CallErrorKind::Exit(code),
            Ending::Trap(err) => self.trap_kind(err),
            Ending::Panicked { message, trap } => CallErrorKind::Panicked {
                message,
                trap: crate::runtime::causes(&trap.into()),
            },
        };
        // The instance ends (see `Live`'s drop).
        let err = fail(kind);
        *slot = Slot::Ended(err.to_string());
        Err(err)
    }

    /// Sets the store's deadline and fuel for one call.
    fn arm(&self, live: &mut Live) -> Result<(), CallErrorKind> {
        if let Some(timeout) = self.settings.timeout {
            let ticker = self
                .runtime
                .ticker
                .as_ref()
                .ok_or(CallErrorKind::NoDeadlines)?;
            ticker.arm(&mut live.store, Some(timeout)).map_err(|e| {
                CallErrorKind::Host(format!("cannot start the deadline thread: {e}"))
            })?;
        }
        if self.runtime.fuel {
            let fuel = self.settings.fuel.unwrap_or(u64::MAX);
            live.store
                .set_fuel(fuel)
                .map_err(|e| CallErrorKind::Host(e.to_string()))?;
        } else if self.settings.fuel.is_some() {
            return Err(CallErrorKind::NoFuel);
        }
        Ok(())
    }

    fn trap_kind(&self, err: wasmtime::Error) -> CallErrorKind {
        if let Some(hit) = err.downcast_ref::<crate::memory::MemoryLimitHit>() {
            return CallErrorKind::OutOfMemory(hit.to_string());
        }
        match err.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                CallErrorKind::Timeout(self.settings.timeout.unwrap_or_default())
            }
            Some(wasmtime::Trap::OutOfFuel) => CallErrorKind::OutOfFuel,
            _ => CallErrorKind::Trap(crate::runtime::causes(&err.into())),
        }
    }
}

/// An instance ends (a call ended it, or the last handle on the plugin is
/// dropped): its processes are killed and reaped — a plugin host does not
/// wait for a plugin's children as a program's end does — its commands
/// killed with their handles, its memory freed.
impl Drop for Live {
    fn drop(&mut self) {
        crate::process::kill_guest(self.store.data_mut());
    }
}

impl Live {
    /// Looks task export `name` up (once): its index in `exports`.
    fn look_up(&mut self, name: &str) -> Result<usize, CallErrorKind> {
        if let Some(index) = self.exports.iter().position(|(n, _)| n == name) {
            return Ok(index);
        }
        let func = self
            .instance
            .get_func(&mut self.store, name)
            .ok_or(CallErrorKind::NoSuchExport)?;
        let typed = func
            .typed::<i32, i32>(&self.store)
            .map_err(|e| CallErrorKind::NotATask(e.to_string()))?;
        self.exports.push((name.to_string(), typed));
        Ok(self.exports.len() - 1)
    }
}

/// Runs `call(export, input)` on one of Tokio's blocking threads.
pub(crate) async fn on_blocking_thread(
    plugin: &str,
    export: &str,
    input: &[u8],
    call: impl FnOnce(&str, &[u8]) -> Result<Vec<u8>, CallError> + Send + 'static,
) -> Result<Vec<u8>, CallError> {
    let (name, input) = (export.to_string(), input.to_vec());
    tokio::task::spawn_blocking(move || call(&name, &input))
        .await
        .unwrap_or_else(|e| {
            Err(CallError::new(
                plugin,
                export,
                CallErrorKind::Host(format!("the call's thread failed: {e}")),
            ))
        })
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}
