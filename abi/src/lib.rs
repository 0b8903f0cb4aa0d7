//! The procbridge host/guest ABI, shared by the host and the guest SDK.
//!
//! Everything a guest and the host must agree on lives here: the import
//! module name, the error codes and the byte encodings of lists. It is plain
//! `no_std` Rust so that it builds both with the host's toolchain and with the
//! older toolchains that target `wasm32-wasi`.
//!
//! # Conventions
//!
//! * Every host function returns an `i32`. A value `>= 0` is success (a
//!   handle, a pid, a length or just `0`); a negative value is `-errno` with an
//!   [`Errno`] code, and the host keeps a message the guest can read with
//!   `last_error`.
//! * Pointers and lengths are guest addresses (`u32` passed as `i32`).
//! * A result of variable length (captured output, a message) is kept by the
//!   host: the call returns its length `n`, and the guest fetches the bytes with
//!   `take_result(ptr, n)`.
//! * Lists of byte strings (argv, environment, several outputs at once) use the
//!   [`list`] encoding: each item is a little-endian `u32` length followed by
//!   its bytes.
//! * Timeouts are `i64` microseconds; [`NO_TIMEOUT`] (`-1`) waits forever.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod errno;
pub mod list;
pub mod pool;
pub mod process;
pub mod queue;
pub mod scratch;
pub mod subprocess;
pub mod table;

pub use errno::Errno;
pub use table::FUNCTION_COUNT;

/// The import module every procbridge host function is registered under.
pub const MODULE: &str = "procbridge";

/// A timeout value meaning "block until done".
pub const NO_TIMEOUT: i64 = -1;

/// Handle value that is never valid; useful as "none" in optional handle
/// arguments.
pub const NO_HANDLE: i32 = 0;
