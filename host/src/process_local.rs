//! State that belongs to one OS process and must be made anew after `fork`.
//!
//! wasmtime-wasi's preview 1 functions run their futures on a Tokio runtime.
//! Its built-in fallback runtime is a process-global value whose worker
//! threads would not exist in a `fork` child, so procbridge never lets it be
//! used: every OS process running a guest enters a runtime created in that
//! same process ([`enter_tokio`]), and a fork child makes its own on first
//! use.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use tokio::runtime::{EnterGuard, Runtime};

static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// How many forks this process descends through (counted in each child by
/// a `pthread_atfork` handler): a runtime remembered by a thread is still
/// this process's while the count has not changed.
static FORKS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's last answer of [`tokio_runtime`], with the fork count
    /// it was given at: a call per plugin call needs no system call.
    static LAST: Cell<Option<(u64, &'static Runtime)>> = const { Cell::new(None) };
}

/// This process's id as [`pid`] last read it; `0` in a fork child until
/// it asks again.
static PID: AtomicU32 = AtomicU32::new(0);

extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Ordering::SeqCst);
    PID.store(0, Ordering::SeqCst);
}

/// This OS process's id (`std::process::id()`) without a system call after
/// the first: every `fork` child forgets it (a `pthread_atfork` handler),
/// so a child never answers with its parent's. Handle lookups ask on every
/// host call that names a handle.
pub(crate) fn pid() -> u32 {
    let known = PID.load(Ordering::SeqCst);
    if known != 0 {
        return known;
    }
    // Registered before the first answer is kept, so any fork after it
    // clears it.
    count_forks();
    let pid = std::process::id();
    PID.store(pid, Ordering::SeqCst);
    pid
}

fn count_forks() {
    static REGISTER: Once = Once::new();
    // SAFETY: registers a handler that only increments an atomic, which is
    // async-signal-safe as a fork child handler must be.
    REGISTER.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(count_fork_in_child));
    });
}

/// This process's Tokio runtime, created on first use in each process.
pub(crate) fn tokio_runtime() -> &'static Runtime {
    count_forks();
    let forks = FORKS.load(Ordering::SeqCst);
    if let Some((seen, rt)) = LAST.get() {
        if seen == forks {
            return rt;
        }
    }
    let rt = runtime_of_this_process();
    LAST.set(Some((forks, rt)));
    rt
}

fn runtime_of_this_process() -> &'static Runtime {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = *slot {
        if owner == pid {
            return rt;
        }
    }
    // A runtime inherited through fork has no worker threads in this process;
    // it is left alone (never dropped: dropping would wait for those threads).
    let rt: &'static Runtime = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("procbridge-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime"),
    ));
    *slot = Some((pid, rt));
    rt
}

/// Makes this process's runtime the current one on this thread until the
/// guard is dropped.
pub(crate) fn enter_tokio() -> EnterGuard<'static> {
    tokio_runtime().enter()
}

/// In a fresh fork child: creates this process's own runtime and enters it
/// for the rest of the process's life (the child never returns to where the
/// parent entered the inherited runtime, so the guard is never dropped).
///
/// # Errors
/// When the runtime's thread cannot be started (for example under a fork
/// bomb's pressure on the thread limit).
pub(crate) fn enter_tokio_in_child() -> std::io::Result<()> {
    let rt: &'static Runtime = Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("procbridge-io")
            .enable_all()
            .build()?,
    ));
    // The inherited lock is free: the fork happened on the thread that runs
    // the guest, which does not hold it while the guest runs.
    let mut slot = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    *slot = Some((std::process::id(), rt));
    drop(slot);
    std::mem::forget(rt.enter());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pid;

    #[test]
    fn a_fork_child_knows_its_own_pid_not_its_parents() {
        let parent = pid();
        assert_eq!(parent, std::process::id());
        // SAFETY: the child only reads its pid, compares and exits.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            let me = pid();
            let right = me == std::process::id() && me != parent && pid() == me;
            // SAFETY: ends the child without running the test harness's exit.
            unsafe { libc::_exit(if right { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(pid(), parent);
    }
}
