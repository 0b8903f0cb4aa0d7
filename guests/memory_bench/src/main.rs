//! Benchmark guest for the memory a child process costs (bench/run's
//! `memory` scenario), with `bench/python/memory_bench.py` and the native
//! `memory_bench`. The harness measures; this program holds still:
//!
//! 1. it prints `PSS base 0` and waits for a line on stdin, while the
//!    harness sums the proportional set size of its process tree;
//! 2. it starts N `Process` children with the fork start method, each
//!    waiting on a `Queue`, prints `PSS fork N` and waits again;
//! 3. it lets them end, joins them, and does the same with the spawn
//!    start method (`PSS spawn N`).
//!
//! The harness reports `(tree − base) / N` per start method as
//! `pss_<method>_child_kb`. `memory_bench [--quick]`: 64 children, 8 with
//! `--quick`. Needs no grant:
//! `procbridge run target/guests/memory_bench.wasm < commands`.

use procbridge_sdk::multiprocessing::{Process, Queue, StartMethod};
use procbridge_sdk::task;
use std::io::{BufRead, Write};

// Waits for one message on the queue it is given, then ends.
task!(wait, |args: &[u8]| -> Result<Vec<u8>, String> {
    let raw = i32::from_le_bytes([args[0], args[1], args[2], args[3]]);
    let _: Vec<u8> = Queue::from_raw_borrowed(raw)
        .get()
        .map_err(|e| format!("{:?}", e))?;
    Ok(Vec::new())
});

/// Tells the harness what to measure, and waits until it has.
fn pause(label: &str, children: usize) {
    println!("PSS {} {}", label, children);
    std::io::stdout().flush().expect("flush");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .expect("read stdin");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let children = if quick { 8 } else { 64 };
    let queue = Queue::new().expect("queue");
    pause("base", 0);
    for (label, method) in [("fork", StartMethod::Fork), ("spawn", StartMethod::Spawn)] {
        let args = queue.as_raw().to_le_bytes();
        let mut started: Vec<Process> = (0..children)
            .map(|_| {
                let mut p = Process::new("wait").args(&args[..]).start_method(method);
                p.start().expect("start");
                p
            })
            .collect();
        pause(label, children);
        for _ in 0..children {
            queue.put(&b"go"[..]).expect("put");
        }
        for p in &mut started {
            p.join().expect("join");
            assert_eq!(p.exitcode(), Some(0), "a child failed");
        }
    }
}
