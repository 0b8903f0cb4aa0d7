//! Time limits for the whole job, armed by the root host process.
//!
//! * Wall-clock time ([`arm_wall_clock`]): a thread that waits on a channel
//!   until the time is up or the returned guard is dropped; when the time is
//!   up it writes one line to stderr and ends the root process with exit
//!   code [`WALL_CLOCK_EXIT`]. Every descendant dies with it (each has a
//!   parent-death signal). The thread holds no lock while it waits, so it is
//!   safe to fork while it runs; fork children do not have it.
//! * CPU time ([`arm_cpu_limit`]): `RLIMIT_CPU` on the root, inherited by
//!   every guest process it forks (and set on spawned commands by their
//!   confinement). A process over its CPU seconds gets `SIGXCPU`; guest
//!   processes write one line and an audit record (from the signal
//!   handler, without allocating or locking) and exit with
//!   [`CPU_LIMIT_EXIT`]; commands are killed by the signal.

use std::time::Duration;

/// Exit code when the wall-clock limit ends the job (as `timeout(1)`).
pub const WALL_CLOCK_EXIT: i32 = 124;

/// Exit code of a guest process that went over its CPU seconds.
pub const CPU_LIMIT_EXIT: i32 = 152;

fn write_stderr(message: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer; async-signal-safe.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
    }
}

/// An armed wall-clock limit; dropping it disarms the limit.
#[derive(Debug)]
pub struct WallClock {
    _disarm: crossbeam_channel::Sender<()>,
}

/// Ends this process (and so, through parent-death signals, the whole tree)
/// after `limit`, unless the returned [`WallClock`] is dropped first.
///
/// ```no_run
/// let limit = procbridge::watchdog::arm_wall_clock(std::time::Duration::from_secs(60));
/// // ... run the guest ...
/// drop(limit); // finished in time: disarm
/// ```
pub fn arm_wall_clock(limit: Duration) -> WallClock {
    let (disarm, disarmed) = crossbeam_channel::bounded::<()>(0);
    std::thread::Builder::new()
        .name("procbridge-wall-clock".into())
        .spawn(move || {
            // Nothing is ever sent: a disconnect (the guard dropped) disarms.
            if disarmed.recv_timeout(limit) != Err(crossbeam_channel::RecvTimeoutError::Timeout) {
                return;
            }
            wall_clock_reached(limit)
        })
        .map(drop)
        .unwrap_or_else(|e| eprintln!("procbridge: cannot arm the wall-clock limit: {e}"));
    WallClock { _disarm: disarm }
}

/// Ends this process (and so the whole tree) as the wall-clock limit
/// does: a limit record, one line on stderr, exit code
/// [`WALL_CLOCK_EXIT`]. The CLI calls it when the guest's own deadline
/// stopped it first.
pub fn wall_clock_reached(limit: Duration) -> ! {
    let message = format!(
        "procbridge: limit: wall-clock time of {}s reached; the job is stopped\n",
        limit.as_secs_f64()
    );
    crate::audit::flush_suppressed();
    crate::audit::Event::new(crate::audit::Kind::Limit)
        .outcome(message.trim_end().trim_start_matches("procbridge: limit: "))
        .record_quietly();
    write_stderr(message.as_bytes());
    // SAFETY: ends the process without running destructors or atexit
    // handlers that could wait on locks the guest thread holds.
    unsafe { libc::_exit(WALL_CLOCK_EXIT) }
}

/// The CPU limit's outcome, in the audit record and on stderr.
macro_rules! cpu_limit {
    () => {
        "CPU time limit reached; the process is stopped"
    };
}

extern "C" fn on_sigxcpu(_: libc::c_int) {
    // Async-signal-safe: no allocation, no lock (see the audit module).
    crate::audit::record_limit_in_signal_handler(cpu_limit!());
    write_stderr(concat!("procbridge: limit: ", cpu_limit!(), "\n").as_bytes());
    // SAFETY: async-signal-safe exit.
    unsafe { libc::_exit(CPU_LIMIT_EXIT) }
}

/// Limits this process and those it forks to `seconds` of CPU time each.
///
/// # Errors
/// When the limit cannot be set.
pub fn arm_cpu_limit(seconds: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: seconds,
        rlim_max: seconds.saturating_add(1),
    };
    // SAFETY: installing an async-signal-safe handler, and setrlimit with a
    // valid pointer.
    unsafe {
        libc::signal(libc::SIGXCPU, on_sigxcpu as *const () as libc::sighandler_t);
        if libc::setrlimit(libc::RLIMIT_CPU, &limit) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_wall_clock_never_fires() {
        // If it fired, this whole test process would exit with 124.
        let limit = arm_wall_clock(Duration::from_millis(50));
        drop(limit);
        std::thread::sleep(Duration::from_millis(200));
    }
}
