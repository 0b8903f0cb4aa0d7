//! Benchmark guest: start+join of a trivial `Process` per start method, and
//! `os.fork` + `waitpid`. Prints `BENCH <key> <value>` lines (medians, in
//! milliseconds). `process_bench [ITERATIONS]` (default 200).

use procbridge_sdk::multiprocessing::{Process, StartMethod};
use procbridge_sdk::{os, task};
use std::time::Instant;

task!(noop, |_: &[u8]| ());

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples[samples.len() / 2]
}

fn time<F: FnMut()>(iterations: usize, mut f: F) -> f64 {
    f(); // warm up
    let samples = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median_ms(samples)
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
        .max(1);
    for (key, method) in [
        ("process_fork_start_join_ms", StartMethod::Fork),
        ("process_spawn_start_join_ms", StartMethod::Spawn),
    ] {
        let ms = time(iterations, || {
            let mut p = Process::new("noop").start_method(method);
            p.start().expect("start");
            p.join().expect("join");
            assert_eq!(p.exitcode(), Some(0));
            p.close().expect("close");
        });
        println!("BENCH {} {:.3}", key, ms);
    }
    let ms = time(iterations, || {
        let pid = os::fork().expect("fork");
        if pid == 0 {
            std::process::exit(0);
        }
        let (_, status) = os::waitpid(pid as i32, 0).expect("waitpid");
        assert_eq!(status, 0);
    });
    println!("BENCH os_fork_wait_ms {:.3}", ms);
}
