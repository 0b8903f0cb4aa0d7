//! Python's `multiprocessing`: processes that run a task function, each a
//! real OS process with its own pid, [`Pool`]s of worker processes, and
//! the queues and pipes that carry messages between them.
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
//!
//! A [`Queue`] or a [`Connection`] made by [`Pipe`] works across the real OS
//! processes of the guest's tree: pass it to a child by its raw handle
//! ([`Queue::as_raw`]) in the child's arguments, and rebuild it there with
//! [`Queue::from_raw`]. Messages are bytes; [`Encode`] and [`Decode`] turn
//! strings, byte strings and numbers into messages and back.
//!
//! ```no_run
//! use procbridge_sdk::multiprocessing::Queue;
//!
//! let q = Queue::new()?;
//! q.put("A")?;
//! let value: String = q.get()?;
//! assert_eq!(value, "A");
//! # Ok::<(), procbridge_sdk::Error>(())
//! ```

mod message;
pub mod pipe;
pub mod pool;
mod process;
pub mod queue;

pub use message::{Decode, Encode};
pub use pipe::{Connection, Pipe, RecvError};
pub use pool::{AsyncResult, Pool, PoolError};
pub use process::{Process, StartMethod};
pub use queue::{GetError, JoinableQueue, PutError, Queue};
