//! Constants of the `subprocess` host functions (`popen` and friends).
//!
//! ```
//! use procbridge_abi::subprocess::*;
//! assert!(STDIO_PIPE < 0 && STDIO_INHERIT == 0);
//! ```

/// `popen` stdio argument: the host process's own stream.
pub const STDIO_INHERIT: i32 = 0;
/// `popen` stdio argument: a new pipe the guest reads or writes.
pub const STDIO_PIPE: i32 = -1;
/// `popen` stdio argument: `/dev/null`.
pub const STDIO_NULL: i32 = -2;
/// `popen` stderr argument: the same place as stdout (Python's `STDOUT`).
pub const STDIO_STDOUT: i32 = -3;
// A positive stdio argument is a `popen` handle: for stdin, that process's
// stdout pipe is moved into the new child; for stdout or stderr, its stdin
// pipe is.

/// `popen` `env_len` value: give the child the guest's own granted
/// environment.
pub const ENV_INHERIT: i32 = -1;

/// `popen_read` stream: the child's stdout pipe.
pub const STREAM_STDOUT: i32 = 1;
/// `popen_read` stream: the child's stderr pipe.
pub const STREAM_STDERR: i32 = 2;

/// `popen_communicate` flag: when the timeout expires, kill the child's
/// process group and reap it before returning `ETIMEDOUT` (what `run` does).
pub const COMMUNICATE_KILL_ON_TIMEOUT: i32 = 1;
