//! Native baseline for the queue and pipe scenario, with `fork` and OS pipes
//! carrying length-prefixed messages, one `write` per message (what a queue
//! between two processes needs at the least):
//!
//! - `queue_16b_msg_s`: a forked writer sends 16-byte messages, the parent
//!   reads them all;
//! - `queue_64k_mb_s`: the same with 64 KiB messages;
//! - `queue_4p_16b_msg_s`, `queue_4p_4k_msg_s`: four forked writers send
//!   16-byte (4,000-byte) messages into one pipe (each framed message is one
//!   `write` of at most `PIPE_BUF` bytes, so the kernel never interleaves
//!   them), the parent reads them all;
//! - `queue_2p_16b_msg_s`: the same with two writers of 16 bytes;
//! - `queue_4p_unbounded_16b_msg_s`: the same as `queue_4p_16b_msg_s` (a
//!   pipe is always bounded);
//! - `pipe_pingpong_us`: round trip of a 16-byte message to a forked child
//!   that sends it back;
//! - `pipe_slow_cpu_us`: a forked child sends a 16-byte message once a
//!   millisecond; the CPU time (user and system, `getrusage`) the parent
//!   spends per message reading them (blocking reads).

use procbridge_bench_native::{fork_child, mb_per_s, median_of, micros, report, wait_child, Scale};
use std::io::{BufReader, PipeReader, PipeWriter, Read, Write};
use std::time::{Duration, Instant};

fn main() {
    let scale = Scale::from_args();

    let count = scale.pick(10_000, 200_000);
    let elapsed = median_time(scale.pick(1, 3), || queue_transfer(16, count));
    report("queue_16b_msg_s", count as f64 / elapsed.as_secs_f64());

    let count = scale.pick(200, 2_000);
    let size = 64 * 1024;
    let elapsed = median_time(scale.pick(1, 3), || queue_transfer(size, count));
    report("queue_64k_mb_s", mb_per_s(size * count, elapsed));

    // A pipe is always bounded: the unbounded queue's baseline is the same
    // four writers on one pipe.
    for (key, size, producers) in [
        ("queue_4p_16b_msg_s", 16, 4),
        ("queue_4p_4k_msg_s", 4000, 4),
        ("queue_2p_16b_msg_s", 16, 2),
        ("queue_4p_unbounded_16b_msg_s", 16, 4),
    ] {
        let count = scale.pick(20_000, 200_000);
        let elapsed = median_time(scale.pick(1, 3), || {
            producers_transfer(size, count, producers)
        });
        report(key, count as f64 / elapsed.as_secs_f64());
    }

    report(
        "pipe_pingpong_us",
        micros(ping_pong(scale.pick(1_000, 5_000))),
    );

    report("pipe_slow_cpu_us", slow_pipe_cpu_us(scale.pick(100, 1_000)));
}

/// The CPU microseconds the parent spends per message reading `count`
/// messages a child sends one a millisecond.
fn slow_pipe_cpu_us(count: usize) -> f64 {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let child = fork_child(move || {
        let mut writer = writer;
        for _ in 0..count {
            std::thread::sleep(Duration::from_millis(1));
            send(&mut writer, &[b'x'; 16]);
        }
        send(&mut writer, &[]);
    });
    let before = cpu_time();
    let mut message = Vec::new();
    let mut received = 0;
    loop {
        receive(&mut reader, &mut message);
        if message.is_empty() {
            break;
        }
        received += 1;
    }
    let spent = cpu_time() - before;
    wait_child(child);
    assert_eq!(received, count, "messages lost");
    micros(spent) / count as f64
}

/// This process's CPU time, user and system.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let of = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    of(usage.ru_utime) + of(usage.ru_stime)
}

/// The median of `runs` results of `measure`.
fn median_time(runs: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    let mut samples: Vec<Duration> = (0..runs).map(|_| measure()).collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// Time from forking a writer of `count` messages of `size` bytes to the
/// parent holding the last one.
fn queue_transfer(size: usize, count: usize) -> Duration {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let start = Instant::now();
    // The closure owns the write end: the child writes, the parent drops it.
    // One write per message, as a put must be visible to the reader at once.
    let child = fork_child(move || {
        let message = vec![b'x'; size];
        let mut out = writer;
        for _ in 0..count {
            send(&mut out, &message);
        }
    });
    let mut input = BufReader::new(reader);
    let mut message = Vec::new();
    for _ in 0..count {
        receive(&mut input, &mut message);
        assert_eq!(message.len(), size, "message size");
    }
    let elapsed = start.elapsed();
    wait_child(child);
    elapsed
}

/// Time from forking `producers` writers of `count / producers` messages
/// of `size` bytes each, all into one pipe, to the parent holding the last.
fn producers_transfer(size: usize, count: usize, producers: usize) -> Duration {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let each = count / producers;
    let start = Instant::now();
    let children: Vec<_> = (0..producers)
        .map(|_| {
            let mut out = writer.try_clone().expect("clone the write end");
            fork_child(move || {
                let message = vec![b'x'; size];
                for _ in 0..each {
                    send(&mut out, &message);
                }
            })
        })
        .collect();
    drop(writer);
    let mut input = BufReader::new(reader);
    let mut message = Vec::new();
    for _ in 0..each * producers {
        receive(&mut input, &mut message);
        assert_eq!(message.len(), size, "message size");
    }
    let elapsed = start.elapsed();
    for child in children {
        wait_child(child);
    }
    elapsed
}

/// Median round trip of a 16-byte message to an echoing child.
fn ping_pong(round_trips: usize) -> Duration {
    let (to_child_read, mut to_child) = std::io::pipe().expect("pipe");
    let (mut from_child, from_child_write) = std::io::pipe().expect("pipe");
    // The child's ends move into the closure, so the parent drops them.
    let child = fork_child(move || echo(to_child_read, from_child_write));
    let message = [b'x'; 16];
    let mut answer = Vec::new();
    let round_trip = median_of(round_trips, || {
        send(&mut to_child, &message);
        receive(&mut from_child, &mut answer);
    });
    send(&mut to_child, &[]);
    wait_child(child);
    round_trip
}

/// Sends back every message until an empty one (the child also holds the
/// parent's write end, so it cannot wait for end of file).
fn echo(mut input: PipeReader, mut output: PipeWriter) {
    let mut message = Vec::new();
    loop {
        receive(&mut input, &mut message);
        if message.is_empty() {
            return;
        }
        send(&mut output, &message);
    }
}

/// Writes the length and the message with one `write_all`.
fn send(out: &mut impl Write, message: &[u8]) {
    let len = u32::try_from(message.len()).expect("message too long");
    let mut framed = Vec::with_capacity(4 + message.len());
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(message);
    out.write_all(&framed).expect("write message");
}

fn receive(input: &mut impl Read, message: &mut Vec<u8>) {
    let mut header = [0_u8; 4];
    input.read_exact(&mut header).expect("read header");
    message.resize(u32::from_le_bytes(header) as usize, 0);
    input.read_exact(message).expect("read message");
}
