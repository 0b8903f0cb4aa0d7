//! The numbers of the pool functions (`pool_new`, `pool_submit`,
//! `pool_result_*`).
//!
//! A finished task's outcome reaches the guest as one byte of status
//! followed by its payload: the task's return bytes for [`STATUS_OK`], a
//! message for every other status.

/// The task returned; the payload is its return bytes.
pub const STATUS_OK: u8 = 0;
/// The task reported an error or trapped; the payload is the message.
pub const STATUS_FAILED: u8 = 1;
/// The worker running the task died (killed, out of memory, ...).
pub const STATUS_WORKER_LOST: u8 = 2;
/// The task ran over the pool's per-task timeout; its worker was killed.
pub const STATUS_TIMED_OUT: u8 = 3;
/// The pool was terminated before the task finished.
pub const STATUS_TERMINATED: u8 = 4;

/// `pool_result_next` order: results in submission order (`imap`).
pub const NEXT_ORDERED: i32 = 0;
/// `pool_result_next` order: results as they finish (`imap_unordered`).
pub const NEXT_UNORDERED: i32 = 1;
