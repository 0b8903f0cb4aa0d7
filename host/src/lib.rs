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
//! * Guest memory is only touched through [`GuestMemory`]; guest resources
//!   only through the [`HandleTable`]; failures are [`BridgeError`]s.
#![deny(missing_docs)]

pub mod api;
pub mod audit;
mod blocking;
pub mod cache;
pub mod channel;
pub mod confine;
pub mod ctx;
mod deadline;
mod environ;
pub mod errno;
pub mod guest_mem;
pub mod handles;
mod memory;
mod os_random;
pub mod output;
pub mod plugin;
pub mod policy;
pub mod policy_file;
pub(crate) mod pool;
pub mod process;
mod process_local;
pub mod python;
pub mod runtime;
pub(crate) mod subprocess;
pub mod supervisor;
pub mod timeout;
mod timespec;
pub mod watchdog;

pub use api::MODULE;
pub use blocking::CannotBlock;
pub use cache::{ModuleCache, Origin};
pub use ctx::{DirPerms, GuestBuilder, HostState, OutputCapture, Stdio};
pub use deadline::DEFAULT_TICK as DEFAULT_EPOCH_TICK;
pub use errno::{BridgeError, Errno};
pub use guest_mem::GuestMemory;
pub use handles::HandleTable;
pub use output::{OutputLine, OutputSink, StdStream};
pub use plugin::{CallError, CallErrorKind, Plugin, PluginPool};
pub use policy::{Limits, Policy, PolicyBuilder};
pub use runtime::{LoadError, Program, RunError, Runtime, RuntimeBuilder};
