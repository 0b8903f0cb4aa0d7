//! Throughput of procbridge's channels between two real OS processes, next
//! to a raw OS pipe and (when `python3` is installed) Python's
//! `multiprocessing.Queue` and `Pipe`, measured in the same run.
//!
//! Run it: `cargo run --release --example channel_bench [SCALE]`
//! (`SCALE`, default 1, multiplies the message counts).

use procbridge::channel::{pipe, Queue, QueueConfig, Wait, DEFAULT_QUEUE_BYTES};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

const SMALL: usize = 16;
const LARGE: usize = 64 << 10;

/// Runs `body` in a forked child that exits with its result (0 = ok).
/// This program is single-threaded, so `fork` is safe here.
fn fork(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: single-threaded process; the child runs `body` then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = body();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    pid
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status:#x}"
    );
}

/// One writer process → this process, through a procbridge Queue.
fn queue_stream(n: usize, size: usize) -> Duration {
    let q = Queue::new(QueueConfig {
        maxsize: 1 << 16,
        max_bytes: DEFAULT_QUEUE_BYTES,
        joinable: false,
    })
    .expect("queue");
    let start = Instant::now();
    let writer = fork(|| {
        let msg = vec![7u8; size];
        for _ in 0..n {
            if q.put(&msg, Wait::Forever).is_err() {
                return 1;
            }
        }
        0
    });
    // The reader copies each message into its own buffer, as the host
    // copies it into a guest's memory.
    let mut buf = vec![0u8; size];
    for _ in 0..n {
        let len = q
            .get_with(Wait::Forever, |a, b| {
                buf[..a.len()].copy_from_slice(a);
                buf[a.len()..a.len() + b.len()].copy_from_slice(b);
                Ok(a.len() + b.len())
            })
            .expect("get");
        assert_eq!(len, size);
    }
    let took = start.elapsed();
    reap(writer);
    took
}

/// Round trips through a procbridge Pipe to an echoing child.
fn pipe_ping_pong(n: usize) -> Duration {
    let (mut a, b) = pipe(true).expect("pipe");
    let echo = {
        let mut b = b;
        fork(move || {
            // The child holds a copy of `a` too, so it never sees
            // end-of-file: an empty message stops it (as Python's `None`).
            while let Ok(m) = b.recv(Wait::Forever) {
                if m.is_empty() {
                    break;
                }
                if b.send(&m).is_err() {
                    return 1;
                }
            }
            0
        })
    };
    let msg = [1u8; SMALL];
    let start = Instant::now();
    for _ in 0..n {
        a.send(&msg).expect("send");
        a.recv(Wait::Forever).expect("recv");
    }
    let took = start.elapsed();
    a.send(b"").expect("send");
    reap(echo);
    took
}

fn raw_pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both are fresh descriptors we own.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

/// One writer process → this process through a raw OS pipe: one write and
/// one (exact) read per message, no framing.
fn native_stream(n: usize, size: usize) -> Duration {
    let (mut r, w) = raw_pipe();
    let start = Instant::now();
    let writer = {
        let mut w = w;
        fork(move || {
            let msg = vec![7u8; size];
            for _ in 0..n {
                if w.write_all(&msg).is_err() {
                    return 1;
                }
            }
            0
        })
    };
    let mut buf = vec![0u8; size];
    for _ in 0..n {
        r.read_exact(&mut buf).expect("read");
    }
    let took = start.elapsed();
    reap(writer);
    took
}

/// Round trips through two raw OS pipes.
fn native_ping_pong(n: usize) -> Duration {
    let (mut to_child_r, to_child_w) = raw_pipe();
    let (from_child_r, mut from_child_w) = raw_pipe();
    let echo = {
        let (mut to_child_w, mut from_child_r) = (to_child_w, from_child_r);
        let child = fork(move || {
            let mut buf = [0u8; SMALL];
            for _ in 0..n {
                if to_child_r.read_exact(&mut buf).is_err() || from_child_w.write_all(&buf).is_err()
                {
                    return 1;
                }
            }
            0
        });
        // Parent side: keep the write end to the child and the read end back.
        let mut buf = [1u8; SMALL];
        let start = Instant::now();
        for _ in 0..n {
            to_child_w.write_all(&buf).expect("write");
            from_child_r.read_exact(&mut buf).expect("read");
        }
        let took = start.elapsed();
        drop(to_child_w);
        (child, took)
    };
    reap(echo.0);
    echo.1
}

const PYTHON: &str = r#"
import multiprocessing as mp, sys, time
def writer(q, n, size):
    m = b'x' * size
    for _ in range(n):
        q.put(m)
def stream(n, size):
    q = mp.Queue()
    t = time.perf_counter()
    p = mp.Process(target=writer, args=(q, n, size)); p.start()
    for _ in range(n):
        q.get()
    dt = time.perf_counter() - t
    p.join()
    return dt
def echo(c):
    while True:
        m = c.recv()
        if m is None:
            break
        c.send(m)
def ping_pong(n):
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b,)); p.start()
    m = b'x' * 16
    t = time.perf_counter()
    for _ in range(n):
        a.send(m); a.recv()
    dt = time.perf_counter() - t
    a.send(None); p.join()
    return dt
if __name__ == '__main__':
    mp.set_start_method('fork')
    small, large, rt = (int(x) for x in sys.argv[1:4])
    print(stream(small, 16), stream(large, 65536), ping_pong(rt))
"#;

fn python(small: usize, large: usize, rt: usize) -> Option<(Duration, Duration, Duration)> {
    let out = Command::new("python3")
        .args([
            "-c",
            PYTHON,
            &small.to_string(),
            &large.to_string(),
            &rt.to_string(),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let secs: Vec<f64> = text
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    match secs[..] {
        [a, b, c] => Some((
            Duration::from_secs_f64(a),
            Duration::from_secs_f64(b),
            Duration::from_secs_f64(c),
        )),
        _ => None,
    }
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn main() {
    let scale: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (small, large, rt) = (1_000_000 * scale, 20_000 * scale, 100_000 * scale);
    let mb = |n: usize, took: Duration| rate(n, took) * LARGE as f64 / 1e6;

    let q_small = queue_stream(small, SMALL);
    let q_large = queue_stream(large, LARGE);
    let p_rt = pipe_ping_pong(rt);
    let n_small = native_stream(small, SMALL);
    let n_large = native_stream(large, LARGE);
    let n_rt = native_ping_pong(rt);
    let py = python(small / 4, large / 4, rt / 4);

    println!(
        "{:<28} {:>16} {:>14} {:>18}",
        "", "16 B msg/s", "64 KiB MB/s", "ping-pong µs/trip"
    );
    let row = |name: &str, s: f64, l: f64, r: f64| {
        println!("{name:<28} {s:>16.0} {l:>14.0} {r:>18.1}");
    };
    let trip = |n: usize, took: Duration| took.as_secs_f64() * 1e6 / n as f64;
    row(
        "procbridge Queue / Pipe",
        rate(small, q_small),
        mb(large, q_large),
        trip(rt, p_rt),
    );
    row(
        "raw OS pipe",
        rate(small, n_small),
        mb(large, n_large),
        trip(rt, n_rt),
    );
    match py {
        Some((s, l, r)) => {
            row(
                "Python mp.Queue / mp.Pipe",
                rate(small / 4, s),
                mb(large / 4, l),
                trip(rt / 4, r),
            );
            println!(
                "procbridge / Python: {:.1}x msg/s, {:.1}x MB/s, {:.1}x round trips/s",
                rate(small, q_small) / rate(small / 4, s),
                mb(large, q_large) / mb(large / 4, l),
                trip(rt / 4, r) / trip(rt, p_rt),
            );
        }
        None => println!("(python3 not found: no Python baseline)"),
    }
}
