//! Python's `os`: process identity, `fork` and `waitpid`.

use crate::error::{check, Result};
use crate::sys;
use std::time::Duration;

/// The real OS pid of the process running this guest (`os.getpid()`).
///
/// ```no_run
/// println!("Process ({}) start...", procbridge_sdk::os::getpid());
/// ```
pub fn getpid() -> u32 {
    sys::getpid() as u32
}

/// The real OS pid of this process's parent (`os.getppid()`).
pub fn getppid() -> u32 {
    sys::getppid() as u32
}

/// `os.waitpid` option: return `(0, 0)` at once when no child has ended.
pub const WNOHANG: i32 = procbridge_abi::process::WNOHANG;

/// Flushes the guest's own stdout and stderr, so buffered output is not
/// written by both processes after a fork.
pub(crate) fn flush_std() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// `os.fork()`: `0` in the child, the child's pid in the parent.
///
/// The child is a real OS process that goes on from here with a copy of
/// this guest's memory: what one changes, the other does not see. Its
/// `getppid()` is the parent's pid. Wait for it with [`waitpid`]; a guest
/// that ends without waiting has its fork children waited for by the host.
///
/// # Errors
/// `EAGAIN` when the tree of processes is at its limit.
///
/// ```no_run
/// use procbridge_sdk::os;
/// let pid = os::fork()?;
/// if pid == 0 {
///     println!("I am child process ({}) and my parent is {}.", os::getpid(), os::getppid());
///     std::process::exit(3);
/// }
/// let (_, status) = os::waitpid(pid as i32, 0)?;
/// assert_eq!(os::waitstatus_to_exitcode(status), 3);
/// # Ok::<(), procbridge_sdk::Error>(())
/// ```
pub fn fork() -> Result<u32> {
    flush_std();
    check(sys::fork()).map(|pid| pid as u32)
}

/// `os.waitpid(pid, options)`: waits for the `os.fork` child `pid` (or any,
/// with `-1`) and returns `(pid, status)`; with [`WNOHANG`], `(0, 0)` when
/// none has ended yet.
///
/// # Errors
/// `ECHILD` when `pid` is not a child still to be waited for; `EINVAL` for
/// other options or pids.
pub fn waitpid(pid: i32, options: i32) -> Result<(u32, i32)> {
    let mut status = 0i32;
    let ret = check(sys::waitpid(pid, options, &mut status))?;
    Ok((ret as u32, status))
}

/// `os.kill(pid, signal)`: signals this process or one of its own
/// `os.fork` children not yet waited for (nothing else). Signal 0 sends
/// nothing: `Ok` says the process is there.
///
/// # Errors
/// `ESRCH` for any other pid, `EINVAL` for a signal outside 0..=64.
pub fn kill(pid: u32, signal: i32) -> Result<()> {
    check(sys::kill(pid as i32, signal)).map(drop)
}

/// `os.cpu_count()`: the number of CPUs this process may run on.
pub fn cpu_count() -> usize {
    sys::cpu_count().max(1) as usize
}

/// What `os.times()` gives: CPU time of this process and of its children
/// that were waited for, as the kernel counts them, and a monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// User CPU time of this process.
    pub user: Duration,
    /// System CPU time of this process.
    pub system: Duration,
    /// User CPU time of its children that were waited for.
    pub children_user: Duration,
    /// System CPU time of its children that were waited for.
    pub children_system: Duration,
    /// A monotonic clock (only differences mean anything).
    pub elapsed: Duration,
}

impl Times {
    /// User plus system time of this process (`time.process_time()`).
    pub fn process_time(&self) -> Duration {
        self.user + self.system
    }
}

/// `os.times()`: CPU time of this OS process (a fork child counts its own,
/// from its fork) and of its waited-for children. WASI has no CPU clocks:
/// this asks the host.
///
/// ```no_run
/// use procbridge_sdk::os;
///
/// let before = os::times().process_time();
/// let sum: u64 = (0..10_000_000u64).sum();
/// println!("{sum} took {:?} of CPU", os::times().process_time() - before);
/// ```
pub fn times() -> Times {
    let mut out = [0u8; 40];
    // Never fails with 40 bytes of its own memory.
    sys::times(&mut out);
    let at = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&out[i * 8..i * 8 + 8]);
        Duration::from_nanos(u64::from_le_bytes(bytes))
    };
    Times {
        user: at(0),
        system: at(1),
        children_user: at(2),
        children_system: at(3),
        elapsed: at(4),
    }
}

/// `os.wait()`: waits for any `os.fork` child.
///
/// # Errors
/// As [`waitpid`].
pub fn wait() -> Result<(u32, i32)> {
    waitpid(-1, 0)
}

/// `os.WIFEXITED(status)`: the child called exit (or returned).
pub fn wifexited(status: i32) -> bool {
    status & 0x7f == 0
}

/// `os.WEXITSTATUS(status)`: its exit code, if [`wifexited`].
pub fn wexitstatus(status: i32) -> i32 {
    (status >> 8) & 0xff
}

/// `os.WIFSIGNALED(status)`: a signal ended the child.
pub fn wifsignaled(status: i32) -> bool {
    let sig = status & 0x7f;
    sig != 0 && sig != 0x7f
}

/// `os.WTERMSIG(status)`: the signal that ended it, if [`wifsignaled`].
pub fn wtermsig(status: i32) -> i32 {
    status & 0x7f
}

/// `os.waitstatus_to_exitcode(status)`: `N` for exit `N`, `-N` for signal
/// `N`.
pub fn waitstatus_to_exitcode(status: i32) -> i32 {
    if wifsignaled(status) {
        -wtermsig(status)
    } else {
        wexitstatus(status)
    }
}
