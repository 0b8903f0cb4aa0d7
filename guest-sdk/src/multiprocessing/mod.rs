//! Python's `multiprocessing`: queues and pipes between guest processes.
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
pub mod queue;

pub use message::{Decode, Encode};
pub use pipe::{Connection, Pipe, RecvError};
pub use queue::{GetError, JoinableQueue, PutError, Queue};
