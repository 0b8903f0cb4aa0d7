//! Write procbridge guests the way you would write Python.
//!
//! A guest is a `wasm32-wasi` command run by the procbridge host. This crate
//! gives it the host's process APIs with the shapes a Python user knows:
//!
//! | Python | procbridge-sdk |
//! |---|---|
//! | `os.getpid()`, `os.getppid()` | [`os::getpid`], [`os::getppid`] |
//! | `subprocess.run`, `call`, `check_output`, `Popen` | [`subprocess`] |
//! | `os.fork()`, `os.waitpid(pid, options)` | [`os::fork`], [`os::waitpid`] |
//! | `Process(target=f, args=(..))`, `start`, `join` | [`multiprocessing::Process`], [`task!`] |
//! | `multiprocessing.Queue`, `JoinableQueue`, `Pipe` | [`multiprocessing::Queue`], [`multiprocessing::JoinableQueue`], [`multiprocessing::Pipe`] |
//! | `Pool(4)`, `apply_async`, `map`, `imap`, `close`, `join` | [`multiprocessing::Pool`] |
//!
//! Every call returns [`Result`]; an [`Error`] carries the [`Errno`] the host
//! gave and its message, so a guest can match on what went wrong:
//!
//! ```no_run
//! use procbridge_sdk::os;
//!
//! println!("Process ({}) start...", os::getpid());
//! println!("My parent is {}.", os::getppid());
//! ```
#![deny(missing_docs)]
// Everything unsafe about talking to the host is in `sys`.
#![deny(unsafe_code)]

pub mod error;
pub mod host;
pub mod multiprocessing;
pub mod os;
pub mod subprocess;
#[allow(unsafe_code)]
pub mod sys;
pub mod task;
mod time;

pub use error::{Error, ErrorKind, Result};
/// The ABI shared with the host (constants, list encoding), for raw calls.
pub use procbridge_abi as abi;
pub use procbridge_abi::Errno;
