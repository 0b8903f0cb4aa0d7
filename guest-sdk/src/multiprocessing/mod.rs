//! Python's `multiprocessing`: processes that run a task function, each a
//! real OS process with its own pid, [`Pool`]s of worker processes, and
//! the queues and pipes that carry messages between them.
//!
//! ```no_run
//! use procbridge_sdk::multiprocessing::{Process, Queue};
//! use procbridge_sdk::{os, task};
//!
//! task!(fn write(q: Queue, values: Vec<String>) {
//!     println!("Process to write: {}", os::getpid());
//!     for value in values {
//!         q.put(value).unwrap();
//!     }
//! });
//!
//! fn main() -> procbridge_sdk::Result<()> {
//!     let q = Queue::new()?;
//!     let mut p = Process::new(write).args((q.clone(), vec![String::from("A")]));
//!     p.start()?;
//!     p.join()?;
//!     assert_eq!(p.exitcode(), Some(0));
//!     let value: String = q.get()?;
//!     assert_eq!(value, "A");
//!     Ok(())
//! }
//! ```
//!
//! A [`Queue`] or a [`Connection`] made by [`Pipe`] works across the real OS
//! processes of the guest's tree. Hand one to a task as an argument (a
//! clone of it): the task receives the same queue, and a [`Pool`]'s workers
//! get it even when they started before it was made. Queue and pipe
//! messages are bytes; [`Encode`] and [`Decode`] turn strings, byte strings
//! and numbers into messages and back.
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

mod handle;
mod message;
pub mod pipe;
pub mod pool;
mod process;
pub mod queue;

pub use message::{Decode, Encode};
pub use pipe::{Connection, Pipe};
pub use pool::{AsyncResult, Pool, PoolError};
pub use process::{Process, StartMethod};
pub use queue::{JoinableQueue, Queue};
