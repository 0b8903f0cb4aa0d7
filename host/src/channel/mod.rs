//! Channels between the OS processes of a guest tree: [`Queue`] and
//! [`Pipe`](pipe()) connections.
//!
//! Neither needs a broker thread or process, so they survive `fork` (the host
//! runs no helper threads that a fork child would miss):
//!
//! * A [`Queue`] is a ring of length-prefixed messages in a `MAP_SHARED`
//!   mapping made when the queue is created; fork children inherit the
//!   mapping. Two process-shared *robust* mutexes guard it, one for the
//!   putters and one for the getters, so that a getter never waits for a
//!   putter's copy: putters write only past the ring's tail, getters read
//!   only before it. A process killed while holding a lock hands
//!   `EOWNERDEAD` to the next locker, which recounts the ring and carries
//!   on, because every change is committed by moving an index after the
//!   bytes are in place. Blocked callers sleep on futexes in the same
//!   mapping, with deadlines. Memory is bounded by construction: the ring
//!   is the queue's byte limit.
//! * A [`Connection`] is one end of a Unix socket pair carrying
//!   length-prefixed frames. The kernel reports end-of-file when every copy
//!   of the other end is closed, including by the death of the process that
//!   held it.
//!
//! ```
//! use procbridge::channel::{Queue, QueueConfig, Wait};
//!
//! let q = Queue::new(QueueConfig::default())?;
//! q.put(b"A", Wait::Forever)?;
//! assert_eq!(q.get(Wait::Never)?, b"A");
//! # Ok::<(), procbridge::BridgeError>(())
//! ```

mod pipe;
mod queue;
mod ring;
mod shm;

#[cfg(test)]
mod cross_process_tests;

pub(crate) use pipe::socketpair;
pub use pipe::{pipe, Connection, MAX_PIPE_MESSAGE};
pub use queue::{Queue, QueueConfig, DEFAULT_QUEUE_BYTES, MAX_QUEUE_BYTES};
pub(crate) use shm::SharedRegion;

pub use crate::timeout::Wait;
