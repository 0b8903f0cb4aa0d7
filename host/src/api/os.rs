//! `os`: process identity and the bridge's own plumbing.
//!
//! | function | returns |
//! |---|---|
//! | `getpid() -> i32` | the real OS pid of the process running this instance |
//! | `getppid() -> i32` | the real OS pid of its parent |
//! | `last_error(ptr, cap) -> i32` | length of the last error message; copies up to `cap` bytes of it to `ptr` |
//! | `take_result(ptr, len) -> i32` | copies the waiting result (exactly `len` bytes) to `ptr`; `0` |
//! | `fork() -> i32` | `0` in the child, the child's pid in the parent |
//! | `waitpid(pid, options, status_ptr) -> i32` | the pid reaped (its wait status at `status_ptr`), or `0` with `WNOHANG` |
//! | `kill(pid, signal) -> i32` | `0`; signals one of this process's own `fork` children |
//! | `cpu_count() -> i32` | the number of CPUs this process may run on |
//! | `times(ptr, cap) -> i32` | `40`: five `u64` nanosecond counts at `ptr` (`os.times()`: user and system CPU time of this process and of its waited-for children, then the monotonic clock) |

use super::{with_memory, with_state};
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::process::child::{wait_any, Child};
use crate::process::fork::{fork_host, Forked};
use crate::process::Start;
use procbridge_abi::process::{TIMES_LEN, WNOHANG};
use wasmtime::Caller;

pub(super) fn getpid(_caller: Caller<'_, HostState>) -> i32 {
    crate::process_local::pid() as i32
}

pub(super) fn getppid(_caller: Caller<'_, HostState>) -> i32 {
    std::os::unix::process::parent_id() as i32
}

/// `os.kill` for a guest: itself, or one of its own `fork` children that
/// has not been waited for (a `Process` child of a Python guest is one).
pub(super) fn kill(mut caller: Caller<'_, HostState>, pid: i32, signal: i32) -> i32 {
    with_state(&mut caller, |state| {
        // 0 sends nothing: whether the process is there (`os.kill(pid, 0)`).
        if !(0..=64).contains(&signal) {
            return Err(BridgeError::invalid(format!(
                "{signal} is not a signal number (0..=64)"
            )));
        }
        if pid == std::process::id() as i32 {
            // SAFETY: a signal to this very process.
            unsafe { libc::kill(pid, signal) };
            return Ok(0);
        }
        let child = state
            .bridge
            .process
            .fork_children
            .iter_mut()
            .find(|c| c.pid() == pid && pid > 0)
            .ok_or_else(|| {
                BridgeError::new(
                    Errno::Srch,
                    format!("{pid} is not an os.fork child of this process"),
                )
            })?;
        child.signal(signal)?;
        Ok(0)
    })
}

pub(super) fn cpu_count(_caller: Caller<'_, HostState>) -> i32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(i32::MAX as usize) as i32)
}

/// `os.times()` (and `time.process_time()`): what the kernel counted for
/// this OS process and its reaped children (`getrusage`), and the
/// monotonic clock. WASI has no CPU clocks: wasmtime-wasi answers them
/// with `EBADF`, and wasi-libc's `times()` makes them up from wall time.
pub(super) fn times(mut caller: Caller<'_, HostState>, ptr: i32, cap: i32) -> i32 {
    with_memory(&mut caller, |mem, _state| {
        if cap < TIMES_LEN {
            return Err(BridgeError::invalid(format!(
                "times needs {TIMES_LEN} bytes, not {cap}"
            )));
        }
        let own = rusage(libc::RUSAGE_SELF);
        let children = rusage(libc::RUSAGE_CHILDREN);
        let mut out = Vec::with_capacity(TIMES_LEN as usize);
        for nanos in [own.0, own.1, children.0, children.1, monotonic_nanos()] {
            out.extend_from_slice(&nanos.to_le_bytes());
        }
        mem.write(ptr, &out)?;
        Ok(TIMES_LEN)
    })
}

/// User and system CPU time of `who`, in nanoseconds.
fn rusage(who: libc::c_int) -> (u64, u64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid
    // value if it does not.
    let usage = unsafe {
        libc::getrusage(who, usage.as_mut_ptr());
        usage.assume_init()
    };
    let nanos = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    (nanos(usage.ru_utime), nanos(usage.ru_stime))
}

fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(super) fn last_error(mut caller: Caller<'_, HostState>, ptr: i32, cap: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let message = state.bridge.last_error().as_bytes();
        let n = message.len().min(cap.max(0) as usize);
        let len = message.len() as i32;
        let copy = message[..n].to_vec();
        mem.write(ptr, &copy)?;
        Ok(len)
    })
}

pub(super) fn take_result(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let want = len as u32 as usize;
        // Check the destination before handing the result over, so a bad
        // pointer does not lose it.
        mem.check(ptr, want)?;
        let result = state.bridge.take_result(want)?;
        mem.write(ptr, &result)?;
        state.bridge.recycle_result(result);
        Ok(0)
    })
}

/// `os.fork()`: forks the host process, guest and all.
pub(super) fn fork(mut caller: Caller<'_, HostState>) -> i32 {
    with_state(&mut caller, |state| match fork_host(state, Start::Fork)? {
        Forked::Parent(slot) => {
            let child = Child::new(slot);
            let pid = child.pid();
            state.bridge.process.fork_children.push(child);
            Ok(pid)
        }
        Forked::Child => Ok(0),
    })
}

/// `os.waitpid(pid, options)` for this guest's `os.fork` children: `pid`
/// is one of them, or `-1` for any.
pub(super) fn waitpid(
    mut caller: Caller<'_, HostState>,
    pid: i32,
    options: i32,
    status_ptr: i32,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        mem.check(status_ptr, 4)?;
        if options & !WNOHANG != 0 {
            return Err(BridgeError::invalid(format!(
                "unsupported waitpid options {options:#x} (only WNOHANG = 1)"
            )));
        }
        let children = &mut state.bridge.process.fork_children;
        let index = match reap(children, pid, options & WNOHANG != 0)? {
            Some(index) => index,
            None => return Ok(0),
        };
        let child = children.swap_remove(index);
        let status = child.status().unwrap_or_default();
        mem.write_i32(status_ptr, status)?;
        Ok(child.pid())
    })
}

/// Finds (waiting unless `nohang`) a reaped child matching `pid`.
fn reap(children: &mut [Child], pid: i32, nohang: bool) -> BridgeResult<Option<usize>> {
    let no_child = || {
        BridgeError::new(
            Errno::Child,
            format!("{pid} is not an os.fork child of this process that is still to be waited for"),
        )
    };
    match pid {
        -1 if children.is_empty() => Err(no_child()),
        -1 if nohang => {
            for (index, child) in children.iter_mut().enumerate() {
                if child.try_wait()?.is_some() {
                    return Ok(Some(index));
                }
            }
            Ok(None)
        }
        -1 => wait_any(children).map(Some),
        pid if pid > 0 => {
            let index = children
                .iter()
                .position(|c| c.pid() == pid)
                .ok_or_else(no_child)?;
            let child = &mut children[index];
            let done = if nohang {
                child.try_wait()?
            } else {
                child.wait(None)?
            };
            Ok(done.map(|_| index))
        }
        _ => Err(BridgeError::invalid(format!(
            "waitpid({pid}): process groups are not supported; give a pid or -1"
        ))),
    }
}
