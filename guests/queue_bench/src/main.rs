//! Benchmark guest for queues and pipes, the same measurements as
//! `bench/python/queue_bench.py`, printing `BENCH <key> <value>`:
//!
//! - `queue_16b_msg_s`: a writer process puts 16-byte messages on a
//!   `Queue`; the parent gets them all (messages per second);
//! - `queue_64k_mb_s`: the same with 64 KiB messages (MB/s);
//! - `queue_4p_16b_msg_s`, `queue_4p_4k_msg_s`: four writer processes put
//!   16-byte (4,000-byte) messages on a bounded `Queue` (`maxsize` 64), the
//!   parent gets them all (messages per second);
//! - `queue_2p_16b_msg_s`: the same with two writers of 16 bytes;
//! - `queue_4p_unbounded_16b_msg_s`: four writers of 16 bytes on an
//!   unbounded `Queue`;
//! - `pipe_pingpong_us`: round trip of a 16-byte message over a `Pipe` to a
//!   child that sends it back (median, microseconds);
//! - `pipe_slow_cpu_us`: a child sends a 16-byte message over a `Pipe`
//!   once a millisecond; the CPU time (user and system) the parent spends
//!   per message receiving them (microseconds).
//!
//! `--quick` runs fewer iterations.

use procbridge_sdk::multiprocessing::{Connection, Pipe, Process, Queue};
use procbridge_sdk::{os, task};
use std::time::{Duration, Instant};

fn pick(quick: bool, small: usize, full: usize) -> usize {
    if quick {
        small
    } else {
        full
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn pack(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn unpack(args: &[u8]) -> Vec<i32> {
    args.chunks(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

// Puts COUNT messages of SIZE bytes.
task!(writer, |args: &[u8]| -> Result<Vec<u8>, String> {
    let a = unpack(args);
    let q = Queue::from_raw(a[0]);
    let message = vec![b'x'; a[1] as usize];
    for _ in 0..a[2] {
        q.put(&message[..]).map_err(|e| format!("{:?}", e))?;
    }
    Ok(Vec::new())
});

// Sends back every message until an empty one.
task!(echo, |args: &[u8]| -> Result<Vec<u8>, String> {
    let conn = Connection::from_raw(unpack(args)[0]);
    loop {
        let message: Vec<u8> = conn.recv().map_err(|e| format!("{:?}", e))?;
        if message.is_empty() {
            return Ok(Vec::new());
        }
        conn.send(&message[..]).map_err(|e| format!("{:?}", e))?;
    }
});

// Sends COUNT 16-byte messages, one a millisecond, then an empty one.
task!(slow_sender, |args: &[u8]| -> Result<Vec<u8>, String> {
    let a = unpack(args);
    let conn = Connection::from_raw(a[0]);
    for _ in 0..a[1] {
        std::thread::sleep(Duration::from_millis(1));
        conn.send(&[b'x'; 16][..]).map_err(|e| format!("{:?}", e))?;
    }
    conn.send(&[][..]).map_err(|e| format!("{:?}", e))?;
    Ok(Vec::new())
});

/// CPU time of this process, user and system.
fn cpu_time() -> Duration {
    let times = os::times();
    times.user + times.system
}

/// The CPU microseconds this process spends per message receiving
/// `count` messages sent one a millisecond.
fn slow_pipe_cpu_us(count: usize) -> f64 {
    let (parent, child) = Pipe(false).expect("pipe");
    let args = pack(&[child.as_raw(), count as i32]);
    let mut sender = Process::new("slow_sender").args(&args[..]);
    sender.start().expect("start slow_sender");
    drop(child);
    let before = cpu_time();
    let mut received = 0;
    loop {
        let message: Vec<u8> = parent.recv().expect("recv");
        if message.is_empty() {
            break;
        }
        received += 1;
    }
    let spent = cpu_time() - before;
    sender.join().expect("join slow_sender");
    assert_eq!(received, count, "messages lost");
    spent.as_secs_f64() * 1e6 / count as f64
}

/// Seconds from starting the writer to the reader holding every message.
fn queue_seconds(size: usize, count: usize) -> f64 {
    producers_seconds(size, count, 1, 1 << 16)
}

/// Seconds from starting `producers` writers of `count / producers`
/// messages each, on a queue of `maxsize`, to the reader holding them all.
fn producers_seconds(size: usize, count: usize, producers: usize, maxsize: usize) -> f64 {
    let q = Queue::with_maxsize(maxsize).expect("queue");
    let each = count / producers;
    let start = Instant::now();
    let mut writers: Vec<_> = (0..producers)
        .map(|_| {
            let mut writer =
                Process::new("writer").args(&pack(&[q.as_raw(), size as i32, each as i32])[..]);
            writer.start().expect("start writer");
            writer
        })
        .collect();
    for _ in 0..each * producers {
        let _: Vec<u8> = q.get().expect("get");
    }
    let elapsed = start.elapsed().as_secs_f64();
    for writer in &mut writers {
        writer.join().expect("join writer");
    }
    elapsed
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = pick(quick, 1, 3);

    let count = pick(quick, 10_000, 200_000);
    let secs = median((0..rounds).map(|_| queue_seconds(16, count)).collect());
    println!("BENCH queue_16b_msg_s {:.0}", count as f64 / secs);

    let count = pick(quick, 200, 2_000);
    let size = 64 * 1024;
    let secs = median((0..rounds).map(|_| queue_seconds(size, count)).collect());
    println!(
        "BENCH queue_64k_mb_s {:.1}",
        (size * count) as f64 / 1e6 / secs
    );

    for (key, size, producers, maxsize) in [
        ("queue_4p_16b_msg_s", 16, 4, 64),
        ("queue_4p_4k_msg_s", 4000, 4, 64),
        ("queue_2p_16b_msg_s", 16, 2, 64),
        ("queue_4p_unbounded_16b_msg_s", 16, 4, 0),
    ] {
        let count = pick(quick, 20_000, 200_000);
        let secs = median(
            (0..rounds)
                .map(|_| producers_seconds(size, count, producers, maxsize))
                .collect(),
        );
        println!("BENCH {} {:.0}", key, count as f64 / secs);
    }

    let (parent, child) = Pipe(true).expect("pipe");
    let mut echo = Process::new("echo").args(&pack(&[child.as_raw()])[..]);
    echo.start().expect("start echo");
    drop(child);
    let message = [b'x'; 16];
    let mut times = Vec::new();
    for _ in 0..pick(quick, 1_000, 5_000) {
        let start = Instant::now();
        parent.send(&message[..]).expect("send");
        let _: Vec<u8> = parent.recv().expect("recv");
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    println!("BENCH pipe_pingpong_us {:.2}", median(times));
    parent.send(&[][..]).expect("send stop");
    echo.join().expect("join echo");

    let us = slow_pipe_cpu_us(pick(quick, 100, 1_000));
    println!("BENCH pipe_slow_cpu_us {:.2}", us);
}
