//! `queue_new` flags.

/// The queue is joinable (`task_done`, `join`).
pub const FLAG_JOINABLE: i32 = 1;
/// The queue lives on this machine even when the job's queues live in the
/// cluster (`--nats`): a queue procbridge's own library uses between the
/// job's local processes (a Python pool's task queues).
pub const FLAG_LOCAL: i32 = 2;
/// Every flag.
pub const FLAGS: i32 = FLAG_JOINABLE | FLAG_LOCAL;
