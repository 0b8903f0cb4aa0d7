//! Write procbridge guests the way you would write Python.
//!
//! A guest is a `wasm32-wasi` command run by the procbridge host. This crate
//! gives it the host's process APIs with the shapes a Python user knows:
//!
//! | Python | procbridge-sdk |
//! |---|---|
//! | `os.getpid()`, `os.getppid()` | [`os::getpid`], [`os::getppid`] |
//! | `multiprocessing.Queue`, `JoinableQueue`, `Pipe` | [`multiprocessing::Queue`], [`multiprocessing::JoinableQueue`], [`multiprocessing::Pipe`] |
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

pub mod error;
pub mod multiprocessing;
pub mod os;
pub mod sys;

pub use error::{Error, Result};
pub use procbridge_abi::Errno;
