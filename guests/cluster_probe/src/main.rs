//! What the cluster tests run, locally and through `--nats`; the output is
//! the same either way.
//!
//! * `map N`: `Pool(4).map` of squares over `0..N`, chunk sizes 1 and 7,
//!   then tasks that fail, trap and exit;
//! * `slow N MS [P]`: `Pool(P).map` (default 3) of squares over `0..N`,
//!   each task taking `MS` milliseconds (the tests kill a worker or restart the server
//!   meanwhile);
//! * `run CMD`: one task that runs the command `CMD` and says how it went;
//! * no mode, or `--quick` (as the benchmark harness runs it): `Pool(4).map` of tasks that each spin for 2 ms (by
//!   the clock), chunksize 1; prints `BENCH cluster_map_task_us` (wall time per
//!   task, median of 5 rounds) for the benchmark harness;
//! * `abandon N MS`: sends `N` tasks of `MS` milliseconds, takes the first
//!   result and exits, leaving the rest.

use procbridge_sdk::multiprocessing::Pool;
use procbridge_sdk::{subprocess, task};
use std::time::{Duration, Instant};

task!(square, |n: &str| -> Result<String, String> {
    let n: i64 = n.parse().map_err(|_| format!("not a number: {:?}", n))?;
    Ok((n * n).to_string())
});

task!(slow_square, |args: &str| -> Result<String, String> {
    let (n, ms) = args.split_once(' ').ok_or("want N MS")?;
    let n: i64 = n.parse().map_err(|_| "not a number")?;
    println!("task {n} started");
    std::thread::sleep(Duration::from_millis(
        ms.parse().map_err(|_| "not a number")?,
    ));
    Ok((n * n).to_string())
});

task!(spin, |ms: &str| -> Result<String, String> {
    let ms: u64 = ms.parse().map_err(|_| "not a number")?;
    let until = Instant::now() + Duration::from_millis(ms);
    let mut x = 0u64;
    while Instant::now() < until {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    Ok((x % 2).to_string())
});

task!(fail, |what: &str| -> Result<(), String> {
    Err(format!("failed on purpose: {}", what))
});

task!(trap, |_: &[u8]| { core::arch::wasm32::unreachable() });

task!(exit_now, |_: &[u8]| {
    std::process::exit(7);
});

task!(run_command, |command: &str| -> Result<String, String> {
    match subprocess::check_output([command, "ran"]) {
        Ok(out) => Ok(format!("ran: {}", String::from_utf8_lossy(&out).trim())),
        Err(err) => Err(format!("refused: {err}")),
    }
});

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn texts(items: Vec<Vec<u8>>) -> String {
    items.into_iter().map(text).collect::<Vec<_>>().join(",")
}

fn arg(i: usize) -> String {
    std::env::args().nth(i).unwrap_or_default()
}

fn map(n: usize) {
    let pool = Pool::new(4).expect("pool");
    let numbers: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    println!("map {}", texts(pool.map("square", &numbers).expect("map")));
    println!(
        "chunked {}",
        texts(pool.map_chunked("square", &numbers, 7).expect("map"))
    );
    println!("bad input {:?}", pool.apply("square", "x").map(text));
    println!("fail {:?}", pool.apply("fail", "here").map(text));
    println!("trap is an error {}", pool.apply("trap", "").is_err());
    println!("exit is an error {}", pool.apply("exit_now", "").is_err());
    println!("after {}", text(pool.apply("square", "12").expect("apply")));
    pool.close().expect("close");
    pool.join().expect("join");
}

fn slow(n: usize, ms: &str, processes: usize) {
    let pool = Pool::new(processes).expect("pool");
    let args: Vec<String> = (0..n).map(|i| format!("{i} {ms}")).collect();
    println!(
        "slow {}",
        texts(pool.map("slow_square", &args).expect("map"))
    );
    pool.close().expect("close");
    pool.join().expect("join");
}

fn bench(quick: bool) {
    let (tasks, rounds) = if quick { (40, 1) } else { (400, 5) };
    let pool = Pool::new(4).expect("pool");
    let items: Vec<&str> = vec!["2"; tasks];
    // Instances made, the module fetched and compiled, before timing.
    pool.map_chunked("spin", &items[..8], 1).expect("warm up");
    let mut per_task: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            pool.map_chunked("spin", &items, 1).expect("map");
            start.elapsed().as_secs_f64() * 1e6 / tasks as f64
        })
        .collect();
    per_task.sort_by(f64::total_cmp);
    println!(
        "BENCH cluster_map_task_us {:.1}",
        per_task[per_task.len() / 2]
    );
    pool.close().expect("close");
    pool.join().expect("join");
}

fn main() {
    match arg(1).as_str() {
        "map" => map(arg(2).parse().unwrap_or(20)),
        "slow" => slow(
            arg(2).parse().unwrap_or(6),
            &arg(3),
            arg(4).parse().unwrap_or(3),
        ),
        "run" => {
            let pool = Pool::new(1).expect("pool");
            println!("{:?}", pool.apply("run_command", arg(2)).map(text));
        }
        "" | "--quick" => bench(arg(1) == "--quick"),
        "abandon" => {
            // A relay holds one long task at a time: eight of them put
            // eight in the stream.
            let pool = Pool::new(8).expect("pool");
            let ms = arg(3);
            let results: Vec<_> = (0..arg(2).parse().unwrap_or(20))
                .map(|i| pool.apply_async("slow_square", format!("{i} {ms}")))
                .collect::<Result<_, _>>()
                .expect("apply_async");
            println!("first {}", results[0].get_str().expect("get"));
            std::process::exit(0);
        }
        other => {
            eprintln!("cluster_probe: unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}
