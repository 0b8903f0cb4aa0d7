//! Loading modules and running guests: the embedding API's entry point.
//!
//! ```no_run
//! use procbridge::{GuestBuilder, Policy, Runtime};
//!
//! let runtime = Runtime::new()?;
//! let program = runtime.load_file("target/guests/hello.wasm")?;
//! let mut guest = GuestBuilder::new();
//! guest.args(["hello", "a", "b"]).env("GREETING", "hi");
//! guest.policy(Policy::builder().allow_run("echo")?.build());
//! let exit_code = runtime.run(&program, guest.build()?)?;
//! assert_eq!(exit_code, 0);
//! # Ok::<(), anyhow::Error>(())
//! ```

use crate::cache::{FileLoadError, ModuleCache, Origin};
use crate::ctx::{GuestBuilder, HostState};
use crate::deadline::{self, Ticker};
use crate::plugin::{Instantiator, Plugin, PluginPool};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::{Config, Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::I32Exit;

/// Why a module cannot be loaded. Each variant is one clear line for the
/// user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    ///
    /// The message says what the OS said; it is not also the error's
    /// `source()`, so that printing the chain says it once.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The module's path.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly module.
    #[error("{name} is not a valid WebAssembly module: {reason}")]
    NotWasm {
        /// The module's name or path.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is a WebAssembly component (a `wasm32-wasip2` build), not the
    /// core module procbridge runs.
    #[error(
        "{name} is a WebAssembly component (built for wasm32-wasip2?); procbridge runs core \
         modules: build for wasm32-wasip1 (rustup target add wasm32-wasip1) or wasm32-wasi, \
         e.g. with guests/build"
    )]
    Component {
        /// The module's name or path.
        name: String,
    },
    /// The module imports a function the host does not provide.
    #[error("{name} imports `{module}::{field}`, which this host does not provide")]
    UnknownImport {
        /// The module's name or path.
        name: String,
        /// The import's module.
        module: String,
        /// The import's name.
        field: String,
    },
    /// The module's imports do not match the host's (wrong signature).
    #[error("{name} cannot be linked: {reason}")]
    Link {
        /// The module's name or path.
        name: String,
        /// The linker's message.
        reason: String,
    },
    /// The module has no `_start` function to run.
    #[error("{name} has no `_start` export: build it as a command (a binary), not a library")]
    MissingStart {
        /// The module's name or path.
        name: String,
    },
}

/// Why a guest did not finish with an exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Instantiation failed (out of resources, or a start function trapped).
    #[error("cannot instantiate the guest: {}", causes(.0))]
    Instantiate(anyhow::Error),
    /// The guest trapped. The message carries the wasm backtrace.
    #[error("guest trapped: {}", causes(.0))]
    Trap(anyhow::Error),
    /// The guest ran past its policy's wall time ([`crate::Limits::wall_time`]);
    /// its instance was dropped and its processes killed.
    #[error("the guest ran past its wall time of {0:?} and was stopped")]
    Timeout(Duration),
    /// The policy sets a wall time but the runtime has no epoch
    /// interruption to enforce it with.
    #[error("the policy sets a wall time, but this runtime cannot stop a guest: build it with epoch interruption (RuntimeBuilder::epoch_interruption)")]
    NoDeadlines,
}

/// An error and its causes, one per line (the wasm backtrace is one of
/// them); never the host's own stack trace.
pub fn causes(err: &anyhow::Error) -> String {
    err.chain()
        .map(|c| c.to_string().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\ncaused by: ")
}

/// A module loaded, linked against the host and ready to instantiate.
/// Cheap to clone.
#[derive(Clone)]
pub struct Program {
    name: String,
    module: Module,
    pre: InstancePre<HostState>,
    origin: Origin,
    /// The linker it was linked with (the Python door calls host functions
    /// through it).
    linker: Arc<Linker<HostState>>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// The name it was loaded under (its path, for files).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it was compiled now or came from the cache.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The compiled module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    pub(crate) fn instance_pre(&self) -> &InstancePre<HostState> {
        &self.pre
    }

    pub(crate) fn linker(&self) -> &Arc<Linker<HostState>> {
        &self.linker
    }
}

/// A store for one guest instance, with its memory limit applied. Every
/// instance the host creates goes through here.
pub(crate) fn new_store(engine: &Engine, state: HostState) -> Store<HostState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    deadline::no_deadline(&mut store);
    store
}

/// Whether `bytes` begin with the header of a WebAssembly component: the
/// magic, then a version whose layer (its upper 16 bits) is 1, as in
/// `\0asm 0d 00 01 00`. A core module's layer is 0.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// `bytes` as a wasm binary: as they are, or compiled from WAT text; or
/// why they are neither.
fn binary(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    if bytes.starts_with(b"\0asm") {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "it has no wasm header and is not WAT text".to_string())?;
    wat::parse_str(text)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| format!("not wasm, and not WAT: {e}"))
}

/// A wasmtime engine with the procbridge host functions and a module cache.
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    /// Every import the linker defines, listed on first need (listing takes
    /// a store, so a load whose imports all link never builds one).
    defined: OnceLock<HashSet<(String, String)>>,
    cache: Option<ModuleCache>,
    /// What stops guests at their deadlines (none without epoch
    /// interruption).
    ticker: Option<Arc<Ticker>>,
    /// Whether stores count fuel.
    fuel: bool,
}

/// Builds a [`Runtime`] with the wasmtime settings that are safe to
/// change.
///
/// ```
/// use procbridge::Runtime;
/// use std::time::Duration;
///
/// let runtime = Runtime::builder()
///     .cache(None)                                   // no module cache
///     .epoch_tick(Duration::from_millis(5))          // deadlines to 5 ms
///     .max_wasm_stack(2 << 20)
///     .fuel(true)                                    // Plugin::set_fuel
///     .build()?;
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Debug)]
pub struct RuntimeBuilder {
    cache: Option<ModuleCache>,
    epoch_tick: Option<Duration>,
    max_wasm_stack: Option<usize>,
    fuel: bool,
    pooling: Option<u32>,
    lazy_tables: bool,
    host_fns: Vec<crate::host_fn::Registration>,
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder {
            cache: ModuleCache::default_dir().map(ModuleCache::new),
            epoch_tick: Some(deadline::DEFAULT_TICK),
            max_wasm_stack: None,
            fuel: false,
            pooling: None,
            lazy_tables: true,
            host_fns: Vec::new(),
        }
    }
}

impl RuntimeBuilder {
    /// The module cache (default: [`ModuleCache::default_dir`]); `None`
    /// compiles every module it loads. See [`Runtime::with_cache`] on
    /// guests that are granted directories.
    pub fn cache(mut self, cache: Option<ModuleCache>) -> Self {
        self.cache = cache;
        self
    }

    /// Whether guests can be stopped at a deadline (per-call timeouts,
    /// [`crate::Limits::wall_time`]): on by default, at the cost of a check
    /// at every loop and call in the guest's code.
    pub fn epoch_interruption(mut self, on: bool) -> Self {
        self.epoch_tick = on.then(|| self.epoch_tick.unwrap_or(deadline::DEFAULT_TICK));
        self
    }

    /// Whether a table's slots are filled at their first use (the default,
    /// wasmtime's) or when the instance is made (`false`).
    ///
    /// Filling them up front suits guests that fork: a child's first call
    /// through a slot its parent never used fills the slot, running host
    /// code the child faults in page by page and writing memory it then
    /// copies (a fifth of a bare `os.fork` on a 2-core VM). It makes each
    /// instantiation dearer: about 15 µs more for a small Rust guest,
    /// 0.6 ms for CPython's table. The `procbridge` CLI fills them up
    /// front; a plugin host making many instances keeps the default.
    ///
    /// ```no_run
    /// # use procbridge::Runtime;
    /// let runtime = Runtime::builder().lazy_tables(false).build()?;
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn lazy_tables(mut self, lazy: bool) -> Self {
        self.lazy_tables = lazy;
        self
    }

    /// How often deadlines are looked at (default 1 ms; at least 100 µs);
    /// turns epoch interruption on.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = Some(tick);
        self
    }

    /// The most native stack a guest may use (wasmtime's
    /// `Config::max_wasm_stack`; default 512 KiB).
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = Some(bytes);
        self
    }

    /// Whether guests' instructions can be counted and limited
    /// ([`crate::Plugin::set_fuel`]); off by default (it slows guest code).
    pub fn fuel(mut self, on: bool) -> Self {
        self.fuel = on;
        self
    }

    /// Instances come from wasmtime's pooling allocator, which reserves
    /// room for `instances` of them up front and reuses it (faster
    /// instantiation for a platform that makes many; each slot reserves
    /// the address space of a 4 GiB memory). Past `instances` live at once,
    /// instantiating fails until one is dropped. Off by default.
    pub fn pooling_allocator(mut self, instances: u32) -> Self {
        self.pooling = Some(instances.max(1));
        self
    }

    /// Adds a host function of the embedder's own: guests import it as
    /// `module::name(ptr, len) -> i32`, pass it bytes and get bytes back
    /// (see the `host_fn` module docs for the guest side). Your platform's
    /// API, next to procbridge's; the policy does not check it: it is yours.
    ///
    /// ```
    /// use procbridge::Runtime;
    ///
    /// let runtime = Runtime::builder()
    ///     .cache(None)
    ///     .host_fn("platform", "upper", |input: &[u8]| Ok(input.to_ascii_uppercase()))
    ///     .build()?;
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn host_fn(
        mut self,
        module: &str,
        name: &str,
        func: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Self {
        self.host_fns.push(crate::host_fn::Registration {
            module: module.to_string(),
            name: name.to_string(),
            func: Arc::new(func),
        });
        self
    }

    /// The runtime.
    ///
    /// # Errors
    /// When wasmtime refuses the settings or the engine cannot be created;
    /// a host function in procbridge's or WASI's import module, or named
    /// twice.
    pub fn build(self) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(self.epoch_tick.is_some());
        config.consume_fuel(self.fuel);
        config.table_lazy_init(self.lazy_tables);
        if let Some(bytes) = self.max_wasm_stack {
            config.max_wasm_stack(bytes);
        }
        if let Some(instances) = self.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_core_instances(instances)
                .total_memories(instances)
                .total_tables(instances);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        Runtime::from_config(&config, self)
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime caching compiled modules in [`ModuleCache::default_dir`].
    ///
    /// # Errors
    /// When the engine cannot be created.
    pub fn new() -> anyhow::Result<Self> {
        RuntimeBuilder::default().build()
    }

    /// A builder for a runtime with other settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the given cache, or none.
    ///
    /// Cache entries are native code: before running a guest whose policy
    /// grants directories, check [`ModuleCache::exposed_to`] with that
    /// policy (as the CLI does), and use no cache if the guest could reach
    /// it or its key.
    ///
    /// # Errors
    /// When the engine cannot be created.
    pub fn with_cache(cache: Option<ModuleCache>) -> anyhow::Result<Self> {
        RuntimeBuilder::default().cache(cache).build()
    }

    fn from_config(config: &Config, settings: RuntimeBuilder) -> anyhow::Result<Self> {
        let engine = Engine::new(config)?;
        let mut linker = Linker::new(&engine);
        crate::wasi_p1::add_to_linker(&mut linker)?;
        crate::python::door::add_to_linker(&mut linker)?;
        crate::environ::add_to_linker(&mut linker)?;
        crate::os_random::add_to_linker(&mut linker)?;
        crate::api::add_to_linker(&mut linker)?;
        crate::host_fn::add_to_linker(&mut linker, &settings.host_fns)?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            defined: OnceLock::new(),
            cache: settings.cache,
            ticker: settings.epoch_tick.map(|tick| Arc::new(Ticker::new(tick))),
            fuel: settings.fuel,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker every guest of this runtime is instantiated with.
    #[cfg(test)]
    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// The module cache in use, if any.
    pub fn cache(&self) -> Option<&ModuleCache> {
        self.cache.as_ref()
    }

    /// Whether the host provides the import `module::name`.
    pub fn provides(&self, module: &str, name: &str) -> bool {
        self.defined()
            .contains(&(module.to_string(), name.to_string()))
    }

    /// Every import the linker defines (listed once, with a throw-away
    /// store: the linker lists its definitions only through a store).
    fn defined(&self) -> &HashSet<(String, String)> {
        self.defined.get_or_init(|| {
            let Ok(state) = GuestBuilder::new().build() else {
                return HashSet::new();
            };
            let mut store = Store::new(&self.engine, state);
            self.linker
                .iter(&mut store)
                .map(|(module, name, _)| (module.to_string(), name.to_string()))
                .collect()
        })
    }

    /// The names of every function the host provides under [`crate::MODULE`],
    /// sorted.
    pub fn bridge_functions(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .defined()
            .iter()
            .filter(|(module, _)| module == crate::MODULE)
            .map(|(_, name)| name.as_str())
            .collect();
        names.sort_unstable();
        names
    }

    /// Loads a module from a file (binary, or WAT text). With a cache, a
    /// file loaded before and unchanged since is not read again (see
    /// [`ModuleCache`]).
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Program, LoadError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let read_error = |error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        };
        let Some(cache) = &self.cache else {
            let bytes = std::fs::read(path).map_err(read_error)?;
            return self.load_bytes(&name, &bytes);
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        // A component is refused before it is compiled (the cache never
        // holds one, so it is always read).
        let component = std::cell::Cell::new(false);
        let (module, origin) = cache
            .load_file(&self.engine, &name, &file, |bytes| {
                if is_component(&bytes) {
                    component.set(true);
                    return Err(String::new());
                }
                match binary(&bytes)? {
                    std::borrow::Cow::Borrowed(_) => Ok(bytes),
                    std::borrow::Cow::Owned(compiled) => Ok(compiled),
                }
            })
            .map_err(|e| match e {
                FileLoadError::Read(source) => read_error(source),
                FileLoadError::Invalid(_) if component.get() => {
                    LoadError::Component { name: name.clone() }
                }
                FileLoadError::Invalid(reason) => LoadError::NotWasm {
                    name: name.clone(),
                    reason,
                },
            })?;
        self.program(name, module, origin)
    }

    /// Loads a module from bytes (binary, or WAT text); `name` is used in
    /// messages.
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Program, LoadError> {
        if is_component(bytes) {
            return Err(LoadError::Component {
                name: name.to_string(),
            });
        }
        let binary = binary(bytes).map_err(|reason| LoadError::NotWasm {
            name: name.to_string(),
            reason,
        })?;
        let (module, origin) = match &self.cache {
            Some(cache) => cache.load_named(&self.engine, name, &binary),
            None => {
                crate::cache::compile(&self.engine, name, &binary).map(|m| (m, Origin::Compiled))
            }
        }
        .map_err(|e| LoadError::NotWasm {
            name: name.to_string(),
            reason: format!("{e:#}"),
        })?;
        self.program(name.to_string(), module, origin)
    }

    /// The program of a compiled module, once its imports are checked and
    /// linked.
    fn program(&self, name: String, module: Module, origin: Origin) -> Result<Program, LoadError> {
        // Linking checks every import; only a failure needs the list of
        // what the host defines, to say which import is missing.
        let pre = self.linker.instantiate_pre(&module).map_err(|e| {
            let missing = module
                .imports()
                .find(|import| !self.provides(import.module(), import.name()));
            match missing {
                Some(import) => LoadError::UnknownImport {
                    name: name.clone(),
                    module: import.module().to_string(),
                    field: import.name().to_string(),
                },
                None => LoadError::Link {
                    name: name.clone(),
                    reason: format!("{e:#}"),
                },
            }
        })?;
        Ok(Program {
            name: name.clone(),
            module,
            pre,
            origin,
            linker: self.linker.clone(),
        })
    }

    /// Runs a program's `_start` in a new instance with `state`, returning its
    /// exit code: `0` when `_start` returns, `N` for `proc_exit(N)`.
    ///
    /// # Errors
    /// [`LoadError::MissingStart`] (as an error) when there is no `_start`;
    /// [`RunError`] when instantiation fails or the guest traps.
    pub fn run(&self, program: &Program, state: HostState) -> anyhow::Result<i32> {
        let (program, store, wall_time) = self.prepare(program, state)?;
        crate::blocking::run_blocking(|| run_store(&program, store, wall_time))?
    }

    /// A store for a run of `program`'s `_start`, with the policy's wall
    /// time as its deadline.
    fn prepare(
        &self,
        program: &Program,
        state: HostState,
    ) -> anyhow::Result<(Program, Store<HostState>, Option<Duration>)> {
        if program
            .module
            .get_export("_start")
            .and_then(|e| e.func().cloned())
            .is_none()
        {
            return Err(LoadError::MissingStart {
                name: program.name.clone(),
            }
            .into());
        }
        let wall_time = state.policy().limits().wall_time;
        crate::diag::granted(state.policy());
        let mut state = state;
        state.bridge.program = Some(program.clone());
        let mut store = new_store(&self.engine, state);
        if wall_time.is_some() {
            let ticker = self.ticker.as_ref().ok_or(RunError::NoDeadlines)?;
            ticker
                .arm(&mut store, wall_time)
                .map_err(|e| RunError::Instantiate(e.into()))?;
        }
        Ok((program.clone(), store, wall_time))
    }

    /// [`Runtime::run`] for async code: the guest runs on Tokio's blocking
    /// threads. Must be awaited inside a Tokio runtime.
    ///
    /// # Errors
    /// As [`Runtime::run`].
    pub async fn run_async(&self, program: &Program, state: HostState) -> anyhow::Result<i32> {
        let (program, store, wall_time) = self.prepare(program, state)?;
        tokio::task::spawn_blocking(move || run_store(&program, store, wall_time)).await?
    }

    /// An instance of `program` kept for calls of its exports (see
    /// [`crate::Plugin`]): its `_initialize` runs, its `_start` does not.
    ///
    /// # Errors
    /// When instantiation fails (memory limits, a trap in `_initialize`), or
    /// inside a current-thread Tokio runtime.
    pub fn instantiate(&self, program: &Program, state: HostState) -> anyhow::Result<Plugin> {
        self.instantiator().instantiate(program, state)
    }

    /// `size` instances of `program` for concurrent calls (see
    /// [`PluginPool`]); the first gets `state`, the others states built
    /// the way it was.
    ///
    /// # Errors
    /// As [`Runtime::instantiate`], or `size` is 0.
    pub fn plugin_pool(
        &self,
        program: &Program,
        state: HostState,
        size: usize,
    ) -> anyhow::Result<PluginPool> {
        PluginPool::new(&self.instantiator(), program, state, size)
    }

    /// A deadline `timeout` from now in epoch ticks, for a store this
    /// runtime runs (`None`: it has no deadlines).
    pub(crate) fn deadline_ticks(&self, timeout: Duration) -> Option<u64> {
        self.ticker.as_ref().map(|ticker| ticker.ticks(timeout))
    }

    fn instantiator(&self) -> Instantiator {
        Instantiator {
            engine: self.engine.clone(),
            ticker: self.ticker.clone(),
            fuel: self.fuel,
        }
    }
}

/// Runs `_start` in a new instance in `store` (the blocking part of
/// [`Runtime::run`]).
fn run_store(
    program: &Program,
    mut store: Store<HostState>,
    wall_time: Option<Duration>,
) -> anyhow::Result<i32> {
    let instance = program
        .pre
        .instantiate(&mut store)
        .map_err(|e| RunError::Instantiate(e.into()))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| RunError::Instantiate(e.into()))?;
    let result = start.call(&mut store, ());
    if store.data().bridge.process.in_child {
        // An `os.fork` child whose guest has ended: it must never return
        // into the embedder (that is the parent's code).
        let code = crate::process::exit_code_of(result, &program.name);
        crate::process::exit_child(store.data_mut(), code);
    }
    let timed_out = matches!(
        result
            .as_ref()
            .map_err(|e| e.downcast_ref::<wasmtime::Trap>()),
        Err(Some(wasmtime::Trap::Interrupt))
    );
    if timed_out {
        // Stopped, not ended: its processes are killed, not waited for.
        crate::process::kill_guest(store.data_mut());
    }
    // Children are finished with the store; then the audit's count of
    // what it left out is reported.
    drop(store);
    crate::audit::flush_suppressed();
    match result {
        Ok(()) => Ok(0),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => match (err.downcast_ref::<wasmtime::Trap>(), wall_time) {
                (Some(wasmtime::Trap::Interrupt), Some(limit)) => {
                    Err(RunError::Timeout(limit).into())
                }
                _ => Err(RunError::Trap(err.into()).into()),
            },
        },
    }
}
