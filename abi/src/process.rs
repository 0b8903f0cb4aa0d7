//! The numbers of the process functions (`fork`, `waitpid`,
//! `process_start`).

/// `process_start` method: the host's default (fork, as Python on Linux).
pub const METHOD_DEFAULT: i32 = 0;
/// `process_start` method: the child calls the target in its copy of the
/// instance.
pub const METHOD_FORK: i32 = 1;
/// `process_start` method: the child calls the target in a fresh instance
/// of the same program.
pub const METHOD_SPAWN: i32 = 2;

/// `process_start` flag: a daemon (terminated, not joined, when its parent
/// ends; may not start processes).
pub const FLAG_DAEMON: i32 = 1;
/// `process_start` flag: the child may run no commands.
pub const FLAG_DROP_RUN: i32 = 2;
/// `process_start` flag: the child sees no granted directories (spawn only).
pub const FLAG_DROP_DIRS: i32 = 4;
/// `process_start` flag: the child sees no granted environment (spawn only).
pub const FLAG_DROP_ENV: i32 = 8;

/// `waitpid` option: return `0` at once when no child has ended.
pub const WNOHANG: i32 = 1;

/// Bytes `times` writes: five little-endian `u64` nanosecond counts, as
/// Python's `os.times()`: user and system CPU time of this process, of its
/// children that were waited for, and the monotonic clock.
pub const TIMES_LEN: i32 = 40;
