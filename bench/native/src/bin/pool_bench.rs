//! Native baseline for the pool scenario: four forked worker processes, a
//! task pipe to each, one shared result pipe back, a trivial task
//! (`x * x`). What `Pool(4)` does, without pickling or a shared task queue.
//!
//! - `map_chunksize1_task_us` / `map_chunksize100_task_us`: 20,000 items sent
//!   in chunks of 1 and 100, round-robin, every result collected; time per
//!   task;
//! - `apply_async_task_us`: 20,000 single-item tasks submitted, then every
//!   result collected; time per task;
//! - `pool1_map_task_us`: the same `map` with chunksize 1 on one worker.

use procbridge_bench_native::{fork_child, report, wait_child, Scale};
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::time::{Duration, Instant};

/// Header of a chunk: its first index and its number of items. A chunk
/// with no items stops the worker.
const HEADER: usize = 16;

fn main() {
    let scale = Scale::from_args();
    let tasks = scale.pick(2_000, 20_000);
    let runs = scale.pick(1, 3);
    let mut pool = Pool::new(4);
    pool.map(100, 1); // warm up: every worker has run
    for chunksize in [1, 100] {
        let elapsed = median((0..runs).map(|_| pool.map(tasks, chunksize)));
        report(
            &format!("map_chunksize{chunksize}_task_us"),
            per_task(elapsed, tasks),
        );
    }
    // apply_async: one task per message, like apply_async's one-item chunks.
    let elapsed = median((0..runs).map(|_| pool.map(tasks, 1)));
    report("apply_async_task_us", per_task(elapsed, tasks));
    pool.close();
    let mut one = Pool::new(1);
    one.map(100, 1);
    let elapsed = median((0..runs).map(|_| one.map(tasks, 1)));
    report("pool1_map_task_us", per_task(elapsed, tasks));
    one.close();
}

/// Workers, each reading chunks from its own pipe and writing results to
/// the shared result pipe.
struct Pool {
    tasks: Vec<PipeWriter>,
    results: PipeReader,
    pids: Vec<libc::pid_t>,
}

impl Pool {
    fn new(workers: usize) -> Pool {
        let (results, results_write) = std::io::pipe().expect("pipe");
        let mut tasks = Vec::new();
        let mut pids = Vec::new();
        for _ in 0..workers {
            let (task_read, task_write) = std::io::pipe().expect("pipe");
            let out = results_write.try_clone().expect("dup");
            // The worker's ends move into the closure; the parent drops them.
            pids.push(fork_child(move || worker(task_read, out)));
            tasks.push(task_write);
        }
        Pool {
            tasks,
            results,
            pids,
        }
    }

    /// Squares `0..count` in chunks of `chunksize`; returns the wall time.
    fn map(&mut self, count: usize, chunksize: usize) -> Duration {
        let start = Instant::now();
        let mut squares = vec![0_u64; count];
        let tasks = &mut self.tasks;
        let workers = tasks.len();
        let results = &mut self.results;
        std::thread::scope(|scope| {
            // Submitting from a thread while collecting here: neither side
            // waits for the other with a full pipe.
            scope.spawn(move || {
                for (n, first) in (0..count).step_by(chunksize).enumerate() {
                    let len = chunksize.min(count - first);
                    let items: Vec<u64> = (first..first + len).map(|i| i as u64).collect();
                    send_chunk(&mut tasks[n % workers], first, &items);
                }
            });
            let mut done = 0;
            while done < count {
                let (first, values) = receive_chunk(results).expect("worker died");
                squares[first..first + values.len()].copy_from_slice(&values);
                done += values.len();
            }
        });
        let elapsed = start.elapsed();
        assert!(squares
            .iter()
            .enumerate()
            .all(|(i, &s)| s == (i * i) as u64));
        elapsed
    }

    fn close(self) {
        for mut task in self.tasks {
            send_chunk(&mut task, 0, &[]);
        }
        for pid in self.pids {
            wait_child(pid);
        }
    }
}

fn worker(mut tasks: PipeReader, mut results: PipeWriter) {
    while let Some((first, items)) = receive_chunk(&mut tasks) {
        if items.is_empty() {
            return;
        }
        let squares: Vec<u64> = items.iter().map(|x| x * x).collect();
        send_chunk(&mut results, first, &squares);
    }
}

/// Writes a chunk as one `write` (atomic on a shared pipe up to PIPE_BUF).
fn send_chunk(out: &mut impl Write, first: usize, items: &[u64]) {
    let mut message = Vec::with_capacity(HEADER + items.len() * 8);
    message.extend_from_slice(&(first as u64).to_le_bytes());
    message.extend_from_slice(&(items.len() as u64).to_le_bytes());
    for item in items {
        message.extend_from_slice(&item.to_le_bytes());
    }
    out.write_all(&message).expect("write chunk");
}

/// Reads a chunk; None at end of file.
fn receive_chunk(input: &mut impl Read) -> Option<(usize, Vec<u64>)> {
    let mut header = [0_u8; HEADER];
    input.read_exact(&mut header).ok()?;
    let first = u64::from_le_bytes(header[..8].try_into().expect("8 bytes")) as usize;
    let len = u64::from_le_bytes(header[8..].try_into().expect("8 bytes")) as usize;
    let mut body = vec![0_u8; len * 8];
    input.read_exact(&mut body).expect("read chunk");
    let items = body
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Some((first, items))
}

fn median(samples: impl Iterator<Item = Duration>) -> Duration {
    let mut samples: Vec<Duration> = samples.collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn per_task(elapsed: Duration, tasks: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / tasks as f64
}
