//! Native baseline for the process scenario:
//!
//! - `start_join_fork_us`: `fork()` a child that runs a trivial function and
//!   exits, then `waitpid()` it (what `Process(...).start(); join()` does
//!   with the fork start method);
//! - `os_fork_wait_us`: a bare `fork()` + `_exit(0)` + `waitpid()`;
//! - `start_join_spawn_us`: start a fresh copy of this program
//!   (`std::process::Command`), which runs the trivial function and exits,
//!   then wait for it (the spawn start method: a new program image).
//!
//! Python's forkserver method has no native counterpart.

use procbridge_bench_native::{fork_child, median_of, micros, report, wait_child, Scale};
use std::hint::black_box;
use std::process::Command;

/// The argument that makes this program act as a spawned child.
const CHILD: &str = "--child";

fn main() {
    if std::env::args().any(|a| a == CHILD) {
        target();
        return;
    }
    let scale = Scale::from_args();

    let fork_join = median_of(scale.pick(20, 200), || wait_child(fork_child(target)));
    report("start_join_fork_us", micros(fork_join));

    let bare_fork = median_of(scale.pick(20, 200), || wait_child(fork_child(|| {})));
    report("os_fork_wait_us", micros(bare_fork));

    let exe = std::env::current_exe().expect("current_exe");
    let spawn_join = median_of(scale.pick(10, 50), || {
        let status = Command::new(&exe).arg(CHILD).status().expect("spawn self");
        assert!(status.success(), "child failed: {status}");
    });
    report("start_join_spawn_us", micros(spawn_join));
}

/// The trivial work a child does.
fn target() {
    black_box(42_u64.wrapping_mul(black_box(7)));
}
