//! Benchmark guest for `subprocess` (bench/run's `subprocess` scenario):
//! prints `BENCH <key> <value>` lines, the keys of the Python and native
//! baselines in bench/.
//!
//! - `run_true_us`: median microseconds of `run(["true"])` (after one
//!   warm-up run);
//! - `communicate_cat_mb_s`: median MB/s (10^6 bytes per second, bytes
//!   counted once) of `communicate()` of MEGABYTES through `cat`.
//!
//! `subprocess_bench [--quick] [RUNS [MEGABYTES [ROUNDS]]]`: defaults 200
//! runs, 200 MB, 3 rounds; `--quick` makes them 20, 20 and 1. A MEGABYTES
//! of 0 skips `communicate`.
//!
//! Run it: `procbridge run --allow-run true --allow-run cat
//! target/guests/subprocess_bench.wasm`.

use procbridge_sdk::subprocess::{self, Popen, PIPE};
use std::time::Instant;

/// How much to measure: `[--quick] [RUNS [MEGABYTES [ROUNDS]]]`.
struct Scale {
    runs: usize,
    megabytes: usize,
    rounds: usize,
}

impl Scale {
    fn from_args() -> Scale {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        let number = |i: usize, quick_value: usize, full_value: usize| {
            numbers
                .get(i)
                .copied()
                .unwrap_or(if quick { quick_value } else { full_value })
        };
        Scale {
            runs: number(0, 20, 200).max(1),
            megabytes: number(1, 20, 200),
            rounds: number(2, 1, 3).max(1),
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    xs[xs.len() / 2]
}

fn run_true() {
    let done = subprocess::run(["true"]).expect("run true");
    assert_eq!(done.returncode, 0);
}

fn main() {
    let scale = Scale::from_args();

    run_true(); // warm up
    let mut times = Vec::with_capacity(scale.runs);
    for _ in 0..scale.runs {
        let start = Instant::now();
        run_true();
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    println!("BENCH run_true_us {:.1}", median(times));

    if scale.megabytes > 0 {
        let input = vec![b'x'; scale.megabytes * 1_000_000];
        let mut rates = Vec::with_capacity(scale.rounds);
        for _ in 0..scale.rounds {
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
        println!("BENCH communicate_cat_mb_s {:.1}", median(rates));
    }
}
