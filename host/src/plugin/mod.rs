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
//! A module that exports `procbridge_scratch` (in Rust, one line:
//! `procbridge_sdk::plugin!();`) is called without host calls: the input
//! is written straight into its scratch buffer and the output read from
//! where the task says it is (`docs/abi.md`, "The plugin fast path"). What
//! it hands back is checked; a pointer or length outside its memory ends
//! the instance with [`CallErrorKind::Abi`].
//!
//! Inside a call the plugin has its policy's process model: `fork`,
//! `Process`, `Pool` and granted commands work as in `Runtime::run`. A
//! `fork` child that returns from the export ends there, never returning
//! into the embedder.

mod error;
mod members;
mod pool;

pub use error::{CallError, CallErrorKind};
pub use pool::PluginPool;

use crate::blocking::run_blocking;
use crate::ctx::HostState;
use crate::deadline::Ticker;
use crate::process::task::{self, Ending};
use crate::runtime::{new_store, Program};
use procbridge_abi::scratch as abi;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::{Engine, Instance, Memory, Store, TypedFunc};

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
    /// The module's scratch buffer (the fast path), once asked for.
    scratch: ScratchState,
}

/// Whether a module takes the fast path.
#[derive(Clone, Copy)]
enum ScratchState {
    /// Not asked yet (asked on the first call, with the call's limits).
    Unknown,
    /// It exports no `procbridge_scratch`: every call takes the task ABI's
    /// host calls.
    Absent,
    Present(Scratch),
}

/// A scratch buffer checked to lie inside the module's memory (which never
/// shrinks, so it stays there).
#[derive(Clone, Copy)]
struct Scratch {
    memory: Memory,
    /// The header's address.
    base: usize,
    /// The data area's size (after the header).
    capacity: usize,
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
            let instance = program.instance_pre().instantiate(&mut store)?;
            if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
                init.call(&mut store, ())?;
            }
            Live {
                store,
                instance,
                exports: Vec::new(),
                scratch: ScratchState::Unknown,
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
        let this = &mut *self;
        run_blocking(|| this.call_unique(export, input))
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

    /// Runs `f` on the instance's host state between calls; `None` once
    /// the instance is gone.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut HostState) -> R) -> Option<R> {
        match &mut *lock(&self.slot) {
            Slot::Live(live) => Some(f(live.store.data_mut())),
            Slot::Ended(_) => None,
        }
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

    /// The instance, taken out of this handle (left ended).
    fn into_slot(self) -> Slot {
        std::mem::replace(&mut *lock(&self.slot), Slot::Ended(String::new()))
    }

    /// [`Plugin::call_here`] without locking the instance when this is
    /// its only handle (no [`Plugin::call_async`] holds another).
    fn call_unique(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let Plugin {
            name,
            slot,
            settings,
            runtime,
        } = self;
        let Some(slot) = Arc::get_mut(slot) else {
            return self.call_here(export, input);
        };
        let caller = Caller {
            name,
            settings: *settings,
            runtime,
        };
        let slot = slot.get_mut().unwrap_or_else(|p| p.into_inner());
        caller.call(slot, export, input)
    }

    /// The call, on this thread (which may block).
    fn call_here(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let caller = Caller {
            name: &self.name,
            settings: self.settings,
            runtime: &self.runtime,
        };
        caller.call(&mut lock(&self.slot), export, input)
    }
}

/// What a call needs besides the instance: the plugin's name, the call's
/// limits and the runtime's abilities.
#[derive(Clone, Copy)]
struct Caller<'a> {
    name: &'a str,
    settings: Settings,
    runtime: &'a Instantiator,
}

impl Caller<'_> {
    /// Calls `export` with `input` on the instance in `slot`, which the
    /// call may end.
    fn call(&self, slot: &mut Slot, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let fail = |kind| CallError::new(self.name, export, kind);
        let live = match &mut *slot {
            Slot::Live(live) => live,
            Slot::Ended(why) => return Err(fail(CallErrorKind::Discarded(why.clone()))),
        };
        let index = live.look_up(export).map_err(fail)?;
        self.arm(live).map_err(fail)?;
        // `Err`: the module broke the ABI (why).
        let ending: Result<Ending, String> = match live.scratch() {
            Ok(Some(scratch)) => live.call_scratch(index, scratch, input),
            Ok(None) => {
                let Live { store, exports, .. } = &mut **live;
                let func = &exports[index].1;
                match store.data_mut().bridge.set_result_from(input) {
                    Ok(len) => {
                        let (result, outcome) = task::call_raw(&mut *store, func, len);
                        Ok(task::ending(result, outcome))
                    }
                    Err(err) => Ok(Ending::Failed(err.message)),
                }
            }
            Err(Stop::Ended(ending)) => Ok(ending),
            Err(Stop::Broke(why)) => Err(why),
        };
        if self.settings.timeout.is_some() {
            // Untimed calls find the store's deadline far away already.
            crate::deadline::no_deadline(&mut live.store);
        }
        if live.store.data().bridge.process.in_child {
            // A fork child made inside the call, returning from it: it ends
            // here (what follows is the embedder's code, the parent's).
            let code = match ending {
                Ok(ending) => ending.exitcode(export),
                Err(why) => Ending::Failed(why).exitcode(export),
            };
            crate::process::exit_child(live.store.data_mut(), code);
        }
        let kind = match ending {
            Ok(Ending::Returned(bytes)) => return Ok(bytes),
            Ok(Ending::Failed(message)) => return Err(fail(CallErrorKind::Failed(message))),
            Ok(Ending::Exit(code)) => CallErrorKind::Exit(code),
            Ok(Ending::Trap(err)) => self.trap_kind(err),
            Ok(Ending::Panicked { message, trap }) => CallErrorKind::Panicked {
                message,
                trap: crate::runtime::causes(&trap.into()),
            },
            Err(why) => CallErrorKind::Abi(why),
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

/// Why a call stopped before the task export was called.
enum Stop {
    /// The guest code that ran ended so (`procbridge_scratch` trapped).
    Ended(Ending),
    /// The module broke the plugin ABI: why.
    Broke(String),
}

/// Checks the scratch buffer at `at` that a module's `procbridge_scratch`
/// returned, in its memory `data`: its address and data area's size, or
/// why it is unusable.
fn check_scratch(data: &[u8], at: i32) -> Result<(usize, usize), String> {
    let base = at as u32 as usize;
    let size = data.len();
    if !base.is_multiple_of(abi::ALIGN) {
        return Err(format!(
            "`{}` returned {base:#x}, which is not {}-byte aligned",
            abi::EXPORT,
            abi::ALIGN
        ));
    }
    if base
        .checked_add(abi::HEADER_LEN)
        .is_none_or(|end| end > size)
    {
        return Err(format!(
            "`{}` returned {base:#x}: its header is outside the memory of {size} bytes",
            abi::EXPORT
        ));
    }
    let capacity = get_u32(data, base + abi::CAPACITY) as usize;
    let fits = (base + abi::HEADER_LEN)
        .checked_add(capacity)
        .is_some_and(|end| end <= size);
    if !fits {
        return Err(format!(
            "`{}` returned {base:#x} with a data area of {capacity} bytes, which ends \
             outside the memory of {size} bytes",
            abi::EXPORT
        ));
    }
    Ok((base, capacity))
}

/// The little-endian `u32` at `at` (`0` outside `data`; callers check).
fn get_u32(data: &[u8], at: usize) -> u32 {
    at.checked_add(4)
        .and_then(|end| data.get(at..end))
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Writes `value` as a little-endian `u32` at `at` (nothing outside `data`;
/// callers check).
fn put_u32(data: &mut [u8], at: usize, value: u32) {
    if let Some(b) = at.checked_add(4).and_then(|end| data.get_mut(at..end)) {
        b.copy_from_slice(&value.to_le_bytes());
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
    /// The module's scratch buffer, asked for and checked on the first
    /// call (`None`: it has none).
    fn scratch(&mut self) -> Result<Option<Scratch>, Stop> {
        match self.scratch {
            ScratchState::Present(scratch) => return Ok(Some(scratch)),
            ScratchState::Absent => return Ok(None),
            ScratchState::Unknown => {}
        }
        let Some(func) = self.instance.get_func(&mut self.store, abi::EXPORT) else {
            self.scratch = ScratchState::Absent;
            return Ok(None);
        };
        let broken = Stop::Broke;
        let typed = func
            .typed::<(), i32>(&self.store)
            .map_err(|e| broken(format!("`{}` is not `() -> i32`: {e}", abi::EXPORT)))?;
        let memory = self
            .instance
            .get_memory(&mut self.store, "memory")
            .ok_or_else(|| broken(format!("it exports `{}` but no `memory`", abi::EXPORT)))?;
        let at = typed
            .call(&mut self.store, ())
            .map_err(|e| Stop::Ended(task::ending(Err(e), None)))?;
        let scratch = check_scratch(memory.data(&self.store), at).map_err(broken)?;
        let scratch = Scratch {
            memory,
            base: scratch.0,
            capacity: scratch.1,
        };
        self.scratch = ScratchState::Present(scratch);
        Ok(Some(scratch))
    }

    /// Calls task export `index` by the fast path: `input` written into
    /// the scratch buffer (or left waiting for `take_result` when it does
    /// not fit), the result read from where the header says.
    fn call_scratch(
        &mut self,
        index: usize,
        scratch: Scratch,
        input: &[u8],
    ) -> Result<Ending, String> {
        let Live { store, exports, .. } = self;
        let func = &exports[index].1;
        let fits = input.len() <= scratch.capacity;
        let flags = if fits {
            abi::ARGS_IN_SCRATCH | abi::RESULT_IN_SCRATCH
        } else {
            abi::RESULT_IN_SCRATCH
        };
        let len = if fits {
            input.len() as i32
        } else {
            match store.data_mut().bridge.set_result_from(input) {
                Ok(len) => len,
                Err(err) => return Ok(Ending::Failed(err.message)),
            }
        };
        let data = scratch.memory.data_mut(&mut *store);
        put_u32(data, scratch.base + abi::FLAGS, flags);
        if fits {
            let at = scratch.base + abi::HEADER_LEN;
            // Inside the memory (checked when the buffer was found, and a
            // memory never shrinks), but a bug must not panic the host.
            let Some(dst) = data.get_mut(at..at + input.len()) else {
                return Err(String::from("its scratch buffer is outside its memory"));
            };
            dst.copy_from_slice(input);
        }
        let (result, outcome) = task::call_raw(&mut *store, func, len);
        match (&result, &outcome) {
            (Ok(abi::STATUS_RESULT_IN_SCRATCH), None) => {}
            _ => return Ok(task::ending(result, outcome)),
        }
        let data = scratch.memory.data(&*store);
        let ptr = get_u32(data, scratch.base + abi::RESULT_PTR);
        let len = get_u32(data, scratch.base + abi::RESULT_LEN);
        let end = (ptr as usize).checked_add(len as usize);
        match end.and_then(|end| data.get(ptr as usize..end)) {
            Some(bytes) if bytes.len() <= crate::guest_mem::MAX_READ => {
                Ok(Ending::Returned(bytes.to_vec()))
            }
            Some(_) => Ok(Ending::Failed(format!(
                "its result of {len} bytes is over the {} MiB a task may return",
                crate::guest_mem::MAX_READ >> 20
            ))),
            None => Err(format!(
                "it returned a result of {len} bytes at {ptr:#x}, outside its memory \
                 of {} bytes",
                data.len()
            )),
        }
    }

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
