//! Benchmark of `Pool(4)` with a trivial task: `map` of 20,000 items with
//! chunksize 1 and 100, and 20,000 `apply_async` then `get`; and of
//! `Pool(1).map` with chunksize 1. Prints the median time per task
//! (`--quick`: 2,000 tasks, one run). Naming `map1`, `map100`, `apply` or
//! `pool1` runs only those.

use procbridge_sdk::multiprocessing::Pool;
use procbridge_sdk::task;
use std::time::Instant;

task!(square, |n: &str| -> Result<String, String> {
    let n: i64 = n.parse().map_err(|_| String::from("not a number"))?;
    Ok((n * n).to_string())
});

fn median_us_per_task(runs: usize, tasks: usize, mut body: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            body();
            start.elapsed().as_secs_f64() * 1e6 / tasks as f64
        })
        .collect();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples[samples.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let (tasks, runs) = if quick { (2_000, 1) } else { (20_000, 3) };
    let items: Vec<String> = (0..tasks).map(|i| i.to_string()).collect();
    let pool = Pool::new(4).expect("Pool(4)");
    pool.map("square", items.iter().take(100)).expect("warm-up");
    for chunksize in [1usize, 100] {
        if !wanted(&format!("map{}", chunksize)) {
            continue;
        }
        let us = median_us_per_task(runs, tasks, || {
            let results = pool.map_chunked("square", &items, chunksize).expect("map");
            assert_eq!(results.len(), tasks);
        });
        let key = if chunksize == 1 {
            "map_chunksize1_task_us"
        } else {
            "map_chunksize100_task_us"
        };
        println!("BENCH {} {:.3}", key, us);
    }
    if wanted("apply") {
        let us = median_us_per_task(runs, tasks, || {
            let results: Vec<_> = items
                .iter()
                .map(|i| pool.apply_async("square", i).expect("apply_async"))
                .collect();
            for r in results {
                r.get().expect("get");
            }
        });
        println!("BENCH apply_async_task_us {:.3}", us);
    }
    drop(pool);
    if wanted("pool1") {
        // One worker: every short task would wait for a wake-up of the
        // parent if the pool did not send work ahead.
        let one = Pool::new(1).expect("Pool(1)");
        one.map("square", items.iter().take(100)).expect("warm-up");
        let us = median_us_per_task(runs, tasks, || {
            let results = one.map_chunked("square", &items, 1).expect("map");
            assert_eq!(results.len(), tasks);
        });
        println!("BENCH pool1_map_task_us {:.3}", us);
    }
}
