//! State that belongs to one OS process and must be made anew after `fork`.
//!
//! wasmtime-wasi's preview 1 functions are futures, run to completion on a
//! Tokio runtime. A runtime's threads do not exist in a `fork` child, so
//! each OS process makes its own on its first WASI call ([`block_on`]), and
//! one without threads of its own: the calling thread drives its timers
//! and I/O. A fork child that makes no WASI call, or none that waits,
//! starts no runtime at all.

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Once;
use tokio::runtime::Runtime;

/// A process's runtime, with the fork count of the process that made it.
struct OwnedRuntime {
    forks: u64,
    runtime: Runtime,
}

/// The runtime [`tokio_runtime`] made last (null: none yet). No lock: a
/// fork child must never find one held by a thread it does not have.
static CURRENT: AtomicPtr<OwnedRuntime> = AtomicPtr::new(std::ptr::null_mut());

/// How many forks this process descends through (counted in each child by
/// a `pthread_atfork` handler): a runtime made at another count is another
/// process's.
static FORKS: AtomicU64 = AtomicU64::new(0);

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

/// How many forks this OS process descends through: state made by a
/// process at another count belongs to another process (its threads are
/// not in this one).
pub(crate) fn forks() -> u64 {
    count_forks();
    FORKS.load(Ordering::SeqCst)
}

/// Runs `future` to completion on this OS process's Tokio runtime, on
/// this thread (which drives the runtime's timers and I/O meanwhile).
///
/// Threads of one process share its runtime; while one drives it, the
/// others' futures are woken by it.
///
/// # Errors
/// When this process cannot make its runtime (out of descriptors).
///
/// # Panics
/// Inside an asynchronous execution context (a Tokio task), as Tokio's
/// `block_on` does: procbridge runs guests only where they may block
/// (`crate::blocking`).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    Ok(tokio_runtime()?.block_on(future))
}

/// This process's Tokio runtime, created on first use in each process.
fn tokio_runtime() -> std::io::Result<&'static Runtime> {
    count_forks();
    let forks = FORKS.load(Ordering::SeqCst);
    loop {
        let seen = CURRENT.load(Ordering::SeqCst);
        // SAFETY: `CURRENT` holds null or a leaked box, never freed.
        if let Some(owned) = unsafe { seen.as_ref() } {
            if owned.forks == forks {
                return Ok(&owned.runtime);
            }
        }
        // None yet, or the one a fork copied: its blocking-pool threads
        // are not in this process. It is left alone (dropping it would
        // wait for them).
        let made = Box::into_raw(Box::new(OwnedRuntime {
            forks,
            runtime: tokio::runtime::Builder::new_current_thread()
                .thread_name("procbridge-io")
                .enable_all()
                .build()?,
        }));
        match CURRENT.compare_exchange(seen, made, Ordering::SeqCst, Ordering::SeqCst) {
            // SAFETY: leaked from here on.
            Ok(_) => return Ok(unsafe { &(*made).runtime }),
            // Another thread made one first: that one is this process's.
            // SAFETY: `made` was never shared.
            Err(_) => drop(unsafe { Box::from_raw(made) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{block_on, pid};
    use std::time::Duration;

    #[test]
    fn a_fork_child_waits_on_a_runtime_of_its_own() {
        let sleep =
            || block_on(async { tokio::time::sleep(Duration::from_millis(2)).await }).unwrap();
        sleep();
        // SAFETY: the child sleeps on its runtime and exits; an alarm ends
        // it if the sleep never wakes (a runtime copied from the parent).
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            unsafe { libc::alarm(5) };
            sleep();
            sleep();
            // SAFETY: ends the child without running the test harness's exit.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "status {status:#x}"
        );
        sleep();
    }

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
