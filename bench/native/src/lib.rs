//! Shared helpers for the native baseline programs of `bench/run`.
//!
//! Every baseline prints its results as lines of the form
//! `BENCH <key> <value>`, the same format the Python baselines and the
//! procbridge bench guests print, so the harness can put them side by side.
//! Keys end with their unit: `_us`, `_ms`, `_mb_s`, `_msg_s`.

use std::time::{Duration, Instant};

/// How much work a baseline does: `--quick` (a smoke run) or the full run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// `--quick`: few iterations, small payloads.
    Quick,
    /// The default: enough iterations for a stable median.
    Full,
}

impl Scale {
    /// Reads the scale from the program's arguments (`--quick` or nothing).
    pub fn from_args() -> Scale {
        if std::env::args().skip(1).any(|a| a == "--quick") {
            Scale::Quick
        } else {
            Scale::Full
        }
    }

    /// Picks the quick or the full value.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        match self {
            Scale::Quick => quick,
            Scale::Full => full,
        }
    }
}

/// Prints one result line: `BENCH <key> <value>`.
pub fn report(key: &str, value: f64) {
    println!("BENCH {key} {value:.3}");
}

/// Runs `body` once to warm up, then `iterations` times, and returns the
/// median duration of one call.
pub fn median_of<F: FnMut()>(iterations: usize, mut body: F) -> Duration {
    body();
    let mut samples: Vec<Duration> = (0..iterations.max(1))
        .map(|_| {
            let start = Instant::now();
            body();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// Microseconds in `duration`, as a float.
pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Megabytes (10^6 bytes) per second for `bytes` moved in `duration`.
pub fn mb_per_s(bytes: usize, duration: Duration) -> f64 {
    bytes as f64 / 1e6 / duration.as_secs_f64()
}

/// Forks; the child runs `body` and exits with `_exit(0)` (or 1 if `body`
/// panics). Returns the child's pid to the parent.
///
/// Call it only while the program has a single thread: the child may then
/// allocate and lock as usual.
pub fn fork_child<F: FnOnce()>(body: F) -> libc::pid_t {
    // SAFETY: the caller has a single thread, so the child's copy of the
    // address space has no lock held by a thread that does not exist there.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).is_ok();
        // SAFETY: `_exit` ends the child without running the parent's
        // atexit handlers or flushing buffers the parent also holds.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// Waits for the child `pid` and checks that it exited with 0.
pub fn wait_child(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: `status` is a valid out pointer for the duration of the call.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child {pid} failed: status {status}"
    );
}
