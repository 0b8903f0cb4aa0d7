//! Benchmark guest for `Process` and `os.fork` (bench/run's `process`
//! scenario): prints `BENCH <key> <value>` lines, medians in microseconds,
//! with the keys of the Python and native baselines in bench/.
//!
//! - `start_join_fork_us`: `Process` start+join of a trivial task, fork
//!   start method;
//! - `start_join_spawn_us`: the same with the spawn start method (a fresh
//!   instance of the module in the child);
//! - `os_fork_wait_us`: `os::fork()`, the child exits at once, `waitpid`.
//!
//! `process_bench [--quick] [ITERATIONS]`: default 200 iterations of each
//! (after one warm-up), `--quick` 20. Needs no grant:
//! `procbridge run target/guests/process_bench.wasm`.

use procbridge_sdk::multiprocessing::{Process, StartMethod};
use procbridge_sdk::{os, task};
use std::time::Instant;

task!(noop, |_: &[u8]| ());

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples[samples.len() / 2]
}

/// The median microseconds of `f` over `iterations` calls, after a warm-up.
fn median_us<F: FnMut()>(iterations: usize, mut f: F) -> f64 {
    f();
    let samples = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(samples)
}

fn iterations() -> usize {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    args.iter()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(if quick { 20 } else { 200 })
        .max(1)
}

fn main() {
    let iterations = iterations();
    for (key, method) in [
        ("start_join_fork_us", StartMethod::Fork),
        ("start_join_spawn_us", StartMethod::Spawn),
    ] {
        let us = median_us(iterations, || {
            let mut p = Process::new("noop").start_method(method);
            p.start().expect("start");
            p.join().expect("join");
            assert_eq!(p.exitcode(), Some(0));
            p.close().expect("close");
        });
        println!("BENCH {} {:.1}", key, us);
    }
    let us = median_us(iterations, || {
        let pid = os::fork().expect("fork");
        if pid == 0 {
            std::process::exit(0);
        }
        let (_, status) = os::waitpid(pid as i32, 0).expect("waitpid");
        assert_eq!(status, 0);
    });
    println!("BENCH os_fork_wait_us {:.1}", us);
}
