//! The rate limit of denials and limit hits, per process (see the module
//! docs of [`crate::audit`]).

use super::{write_stderr, Event, Kind, RATE_BURST, RATE_WINDOW};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The rate limiter's state; the count of records left out is an atomic of
/// its own, so that the signal handler of the CPU limit can take it.
struct Rate {
    window_start: Option<Instant>,
    in_window: u32,
    /// The last denial or limit hit recorded: its event, outcome's hash,
    /// and when.
    last: Option<(Kind, u64, Instant)>,
}

static RATE: Mutex<Rate> = Mutex::new(Rate {
    window_start: None,
    in_window: 0,
    last: None,
});

/// The process [`RATE`] and [`SUPPRESSED`] belong to (a fork child starts
/// afresh).
static RATE_PID: AtomicU32 = AtomicU32::new(0);

/// Denials and limit hits left out since the last one recorded.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Whether a denial or limit hit is recorded now: `Some(n)` with the number
/// left out before it, or `None` (it is counted).
pub(super) fn admit(kind: Kind, outcome: &str) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let now = Instant::now();
    let mut rate = RATE.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if RATE_PID.load(Ordering::Acquire) != pid {
        *rate = Rate {
            window_start: None,
            in_window: 0,
            last: None,
        };
        SUPPRESSED.store(0, Ordering::Release);
        RATE_PID.store(pid, Ordering::Release);
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (kind, outcome).hash(&mut hasher);
    let hash = hasher.finish();
    let recent = |at: Instant| now.duration_since(at) < RATE_WINDOW;
    let repeated = matches!(rate.last, Some((k, h, at)) if k == kind && h == hash && recent(at));
    if !rate.window_start.is_some_and(recent) {
        rate.window_start = Some(now);
        rate.in_window = 0;
    }
    if repeated || rate.in_window >= RATE_BURST {
        SUPPRESSED.fetch_add(1, Ordering::AcqRel);
        return None;
    }
    rate.in_window += 1;
    rate.last = Some((kind, hash, now));
    Some(SUPPRESSED.swap(0, Ordering::AcqRel))
}

/// Hints' own budget: [`RATE_BURST`] per [`RATE_WINDOW`] per process,
/// the rest dropped. Hints are advice from text a command chose, so they
/// never take the room of a denial or a limit hit.
static HINTS: Mutex<(u32, Option<Instant>, u32)> = Mutex::new((0, None, 0));

/// Whether a hint is recorded now.
pub(super) fn admit_hint() -> bool {
    let now = Instant::now();
    let pid = std::process::id();
    let mut hints = HINTS.lock().unwrap_or_else(|e| e.into_inner());
    let (owner, window, count) = &mut *hints;
    if *owner != pid || !window.is_some_and(|at| now.duration_since(at) < RATE_WINDOW) {
        (*owner, *window, *count) = (pid, Some(now), 0);
    }
    *count += 1;
    *count <= RATE_BURST
}

/// Reports the denials and limit hits this process left out and has not
/// reported yet: one line on stderr and a `suppressed` record. Called
/// before a process of the tree ends.
pub fn flush_suppressed() {
    // Nothing was ever left out (the common case, before every fork and
    // exit): no need to ask for the pid.
    let owner = RATE_PID.load(Ordering::Acquire);
    if owner == 0 || owner != std::process::id() {
        return;
    }
    let pending = SUPPRESSED.swap(0, Ordering::AcqRel);
    if pending == 0 {
        return;
    }
    write_stderr(
        format!("procbridge: {pending} more denials and limit hits not shown\n").as_bytes(),
    );
    let mut event = Event::new(Kind::Suppressed);
    event.suppressed = Some(pending);
    event.write();
}

/// Takes the count of what this process left out, from a signal handler
/// (atomics and `getpid` only).
pub(super) fn take_suppressed_in_signal_handler() -> u64 {
    // SAFETY: getpid is async-signal-safe.
    if RATE_PID.load(Ordering::Acquire) != unsafe { libc::getpid() } as u32 {
        return 0;
    }
    SUPPRESSED.swap(0, Ordering::AcqRel)
}
