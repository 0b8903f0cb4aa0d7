//! The plugin fast path: a task call with no host calls.
//!
//! A module opts in by exporting [`EXPORT`] (`procbridge_scratch() -> i32`),
//! which returns the address of a buffer in its memory: a header of
//! [`HEADER_LEN`] bytes (four little-endian `u32`s) followed by the data
//! area. The plugin host calls it once per instance, before the first call,
//! and checks what it gets (alignment, bounds) once; it never calls it
//! again.
//!
//! | offset | field | written by |
//! |---|---|---|
//! | [`CAPACITY`] | the data area's size in bytes | the guest, before it returns the address |
//! | [`FLAGS`] | [`ARGS_IN_SCRATCH`] and [`RESULT_IN_SCRATCH`] for this call | the host, before each call; the task reads it and sets it to `0` |
//! | [`RESULT_PTR`] | where the result is | the task, when it returns [`STATUS_RESULT_IN_SCRATCH`] |
//! | [`RESULT_LEN`] | the result's length | the task, likewise |
//!
//! With [`ARGS_IN_SCRATCH`] the task's `args_len` bytes of arguments are at
//! the start of the data area (nothing waits in the host for
//! `take_result`); without it they wait as in every task call. With
//! [`RESULT_IN_SCRATCH`] the task may hand back its result by writing its
//! address and length into the header and returning
//! [`STATUS_RESULT_IN_SCRATCH`] instead of calling `task_return`; the bytes
//! must stay there until the task's next call. Errors (`task_error`),
//! panics and exits are reported as in every task call.

/// The export that opts a module into the fast path: `() -> i32`, the
/// buffer's address (8-byte aligned).
pub const EXPORT: &str = "procbridge_scratch";

/// The header's size; the data area follows it.
pub const HEADER_LEN: usize = 16;

/// The buffer's alignment.
pub const ALIGN: usize = 8;

/// Offset of the data area's size (`u32`).
pub const CAPACITY: usize = 0;
/// Offset of this call's flags (`u32`).
pub const FLAGS: usize = 4;
/// Offset of the result's address (`u32`).
pub const RESULT_PTR: usize = 8;
/// Offset of the result's length (`u32`).
pub const RESULT_LEN: usize = 12;

/// Flag: the arguments are in the data area.
pub const ARGS_IN_SCRATCH: u32 = 1;
/// Flag: the task may hand its result back through the header.
pub const RESULT_IN_SCRATCH: u32 = 2;

/// The status a task returns when its result's address and length are in
/// the header (only in a call whose flags had [`RESULT_IN_SCRATCH`]).
pub const STATUS_RESULT_IN_SCRATCH: i32 = 2;
