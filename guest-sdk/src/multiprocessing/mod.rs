//! Python's `multiprocessing`: processes that run a task function, each a
//! real OS process with its own pid, and [`Pool`]s of worker processes.
//!
//! ```no_run
//! use procbridge_sdk::multiprocessing::Process;
//! use procbridge_sdk::{os, task};
//!
//! task!(run_proc, |name: &str| {
//!     println!("Run child process {} ({})...", name, os::getpid());
//! });
//!
//! fn main() -> procbridge_sdk::Result<()> {
//!     let mut p = Process::new("run_proc").args("test");
//!     p.start()?;
//!     p.join()?;
//!     assert_eq!(p.exitcode(), Some(0));
//!     Ok(())
//! }
//! ```

pub mod pool;
mod process;

pub use pool::{AsyncResult, Pool, PoolError};
pub use process::{Process, StartMethod};
