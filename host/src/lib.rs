//! procbridge runs untrusted WebAssembly guests (`wasm32-wasi` modules) and
//! gives them the process model of Python's `os.fork`, `multiprocessing` and
//! `subprocess`, carried out with real OS processes under a policy that
//! grants nothing by default.
//!
//! # Embedding
//!
//! ```no_run
//! use procbridge::{GuestBuilder, Policy, Runtime};
//!
//! let runtime = Runtime::new()?;                      // engine + module cache
//! let program = runtime.load_file("job.wasm")?;       // compiled once, cached
//! let mut guest = GuestBuilder::new();                // grants nothing yet
//! guest.args(["job", "--fast"]);
//! guest.policy(Policy::builder().allow_run("git")?.build());
//! let exit_code = runtime.run(&program, guest.build()?)?;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! # Layout
//!
//! * [`Runtime`] loads and runs modules; [`GuestBuilder`] configures one
//!   guest; [`Policy`] says what it may do.
//! * The host functions live in `api`, one module per bridged API, all
//!   registered under the import module [`MODULE`].
//! * [`Runtime::instantiate`] keeps an instance for calls of its exports:
//!   a [`Plugin`] (or a [`PluginPool`]), each call under its own deadline;
//!   [`OutputSink`] brings the whole tree's output back, line by line.
//! * [`cluster`] sends a guest's `Pool` tasks to workers on other machines
//!   through NATS JetStream (`procbridge worker`, `procbridge run --nats`).
//! * Inside, guest memory is only touched through `GuestMemory`, guest
//!   resources only through the `HandleTable`; failures are
//!   [`BridgeError`]s. `docs/embedding.md` is the embedder's guide.
#![deny(missing_docs)]

pub(crate) mod api;
pub mod audit;
mod blocking;
pub mod cache;
// Public only for `host/examples/channel_bench.rs`, which measures the
// channels themselves; not part of the embedding API.
#[doc(hidden)]
pub mod channel;
pub mod cluster;
pub mod confine;
pub mod ctx;
mod deadline;
pub mod diag;
mod environ;
pub mod errno;
pub(crate) mod fork_safe;
pub(crate) mod guest_mem;
pub(crate) mod handles;
pub mod host_fn;
mod memory;
mod native_stdio;
mod os_random;
pub mod output;
pub mod plugin;
pub mod policy;
pub mod policy_file;
pub(crate) mod pool;
pub(crate) mod process;
mod process_local;
pub mod python;
pub mod runtime;
pub(crate) mod subprocess;
pub(crate) mod supervisor;
pub(crate) mod timeout;
mod timespec;
mod wasi_p1;
pub mod watchdog;

pub use api::MODULE;
pub use blocking::CannotBlock;
pub use cache::{ModuleCache, Origin};
pub use ctx::{DirPerms, GuestBuilder, HostState, OutputCapture, Stdio};
pub use deadline::DEFAULT_TICK as DEFAULT_EPOCH_TICK;
pub use errno::{BridgeError, Errno};
pub use memory::{MemoryAtStart, MemoryScope};
pub use output::{OutputLine, OutputSink, StdStream};
pub use plugin::{CallError, CallErrorKind, Plugin, PluginPool};
pub use policy::{Limits, Policy, PolicyBuilder};
pub use runtime::{LoadError, Program, RunError, Runtime, RuntimeBuilder};
