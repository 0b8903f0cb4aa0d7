//! Benchmark guest for `subprocess`: prints `BENCH <key> <value>` lines.
//!
//! `subprocess_bench [RUNS] [MEGABYTES] [ROUNDS]` (defaults 200, 200, 5):
//! - `run_true_us`: median microseconds of `run(["true"])` over RUNS;
//! - `communicate_MBps`: median MB/s of `communicate` of MEGABYTES through
//!   `cat` over ROUNDS (1 MB = 10^6 bytes; bytes counted once).
//!
//! Run it: `procbridge run --allow-run true --allow-run cat
//! target/guests/subprocess_bench.wasm`.

use procbridge_sdk::subprocess::{self, Popen, PIPE};
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    xs[xs.len() / 2]
}

fn main() {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let runs = arg(1, 200).max(1);
    let megabytes = arg(2, 200);
    let rounds = arg(3, 5).max(1);

    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let done = subprocess::run(["true"]).expect("run true");
        times.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(done.returncode, 0);
    }
    println!("BENCH run_true_us {:.1}", median(times));

    if megabytes > 0 {
        let input = vec![b'x'; megabytes << 20];
        let mut rates = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let start = Instant::now();
            let mut p = Popen::builder(["cat"])
                .stdin(PIPE)
                .stdout(PIPE)
                .spawn()
                .expect("spawn cat");
            let (out, _) = p.communicate(Some(&input), None).expect("communicate");
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(out.len(), input.len());
            rates.push(input.len() as f64 / 1e6 / secs);
        }
        println!("BENCH communicate_MBps {:.1}", median(rates));
    }
}
