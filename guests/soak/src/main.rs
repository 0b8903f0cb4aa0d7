//! The soak guest: long runs of process churn, paused at checkpoints so a
//! driver (`tests/soak/run`) can sample the host process from outside.
//!
//! `soak PHASE:COUNT...` runs the phases in order; before the first and
//! after each one it prints `checkpoint NAME` and waits for a line on
//! stdin. Phases:
//!
//! - `spawn:N` — N `subprocess.call(["true"])`: spawn, exit, reap.
//! - `process:N` — N `Process` start/join/close, alternating the fork and
//!   spawn start methods; each child checks its exit code.
//! - `fork:N` — N `os.fork` + `waitpid`.
//! - `pool:N` — one `Pool(4)` through N tasks: `map` in rounds of 10,000
//!   items (chunksize 250), plus N/100 `apply_async`; then close and join.
//! - `queue:N` — a writer `Process` puts N small messages into a `Queue`,
//!   the parent gets them all (order checked); then N/100 round trips over
//!   a duplex `Pipe` with an echoing `Process`.

use procbridge_sdk::multiprocessing::{Connection, Pipe, Pool, Process, Queue, StartMethod};
use procbridge_sdk::{os, subprocess, task};
use std::io::BufRead;
use std::time::Instant;

task!(noop, |_: &[u8]| ());

// A trivial pool task: the little-endian u32 argument, doubled.
task!(double, |args: &[u8]| -> Result<Vec<u8>, String> {
    Ok((read_u32(args, 0)? * 2).to_le_bytes().to_vec())
});

// Puts 0..n (u32) into the queue; args: the queue handle, n.
task!(queue_writer, |args: &[u8]| -> Result<Vec<u8>, String> {
    let q = Queue::from_raw(read_u32(args, 0)? as i32);
    for i in 0..read_u32(args, 4)? {
        q.put(i).map_err(|e| format!("put {}: {:?}", i, e))?;
    }
    Ok(Vec::new())
});

// Sends back every u32 it receives, plus one, until end-of-file; args: its
// Pipe end, then the parent's end (closed here, so the parent's close is
// end-of-file).
task!(pipe_echo, |args: &[u8]| -> Result<Vec<u8>, String> {
    let conn = Connection::from_raw(read_u32(args, 0)? as i32);
    Connection::from_raw(read_u32(args, 4)? as i32)
        .close()
        .map_err(|e| format!("close: {:?}", e))?;
    while let Ok(v) = conn.recv::<u32>() {
        conn.send(v + 1).map_err(|e| format!("send: {:?}", e))?;
    }
    Ok(Vec::new())
});

fn read_u32(args: &[u8], at: usize) -> Result<u32, String> {
    match args.get(at..at + 4) {
        Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(format!("{} argument bytes, no u32 at {}", args.len(), at)),
    }
}

fn checkpoint(name: &str) {
    println!("checkpoint {}", name);
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn spawn(n: usize) {
    for i in 0..n {
        let code = subprocess::call(["true"]).expect("call true");
        assert_eq!(code, 0, "true exited {} (cycle {})", code, i);
    }
}

fn process(n: usize) {
    for i in 0..n {
        let method = if i % 2 == 0 {
            StartMethod::Fork
        } else {
            StartMethod::Spawn
        };
        let mut p = Process::new("noop").start_method(method);
        p.start().expect("start");
        p.join().expect("join");
        assert_eq!(p.exitcode(), Some(0), "cycle {}", i);
        p.close().expect("close");
    }
}

fn fork(n: usize) {
    for i in 0..n {
        let pid = os::fork().expect("fork");
        if pid == 0 {
            std::process::exit(0);
        }
        let (reaped, status) = os::waitpid(pid as i32, 0).expect("waitpid");
        assert_eq!((reaped, status), (pid, 0), "cycle {}", i);
    }
}

fn pool(n: usize) {
    let pool = Pool::new(4).expect("Pool(4)");
    let mut done = 0;
    while done < n {
        let round = (n - done).min(10_000);
        let items: Vec<[u8; 4]> = (done..done + round)
            .map(|i| (i as u32).to_le_bytes())
            .collect();
        let results = pool.map_chunked("double", &items, 250).expect("map");
        assert_eq!(results.len(), round);
        for (i, r) in results.iter().enumerate() {
            let want = ((done + i) as u32 * 2).to_le_bytes();
            assert_eq!(&r[..], &want[..], "item {}", done + i);
        }
        done += round;
    }
    let pending: Vec<_> = (0..(n / 100).max(1) as u32)
        .map(|i| {
            (
                i,
                pool.apply_async("double", i.to_le_bytes())
                    .expect("apply_async"),
            )
        })
        .collect();
    for (i, r) in pending {
        assert_eq!(r.get().expect("get"), (i * 2).to_le_bytes().to_vec());
    }
    pool.close().expect("close");
    pool.join().expect("join");
}

fn pack(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn queue(n: usize) {
    let q = Queue::new().expect("Queue");
    let mut writer = Process::new("queue_writer").args(pack(&[q.as_raw(), n as i32]));
    writer.start().expect("start the writer");
    for i in 0..n as u32 {
        let got: u32 = q.get().expect("get");
        assert_eq!(got, i, "messages in order");
    }
    writer.join().expect("join the writer");
    assert_eq!(writer.exitcode(), Some(0));
    writer.close().expect("close the writer");
    assert!(q.empty().expect("empty"));
    q.close().expect("close the queue");

    let (here, there) = Pipe(true).expect("Pipe");
    let mut echo = Process::new("pipe_echo").args(pack(&[there.as_raw(), here.as_raw()]));
    echo.start().expect("start the echo");
    there.close().expect("close the child's end here");
    for i in 0..(n / 100).max(1) as u32 {
        here.send(i).expect("send");
        let got: u32 = here.recv().expect("recv");
        assert_eq!(got, i + 1);
    }
    here.close().expect("close the pipe");
    echo.join().expect("join the echo");
    assert_eq!(echo.exitcode(), Some(0));
    echo.close().expect("close the echo");
}

fn main() {
    checkpoint("start");
    for phase in std::env::args().skip(1) {
        let (name, count) = match phase.split_once(':') {
            Some((name, count)) => (name.to_string(), count.parse::<usize>().expect("a count")),
            None => panic!("phase {:?} is not NAME:COUNT", phase),
        };
        let started = Instant::now();
        match name.as_str() {
            "spawn" => spawn(count),
            "process" => process(count),
            "fork" => fork(count),
            "pool" => pool(count),
            "queue" => queue(count),
            other => panic!("unknown phase {:?}", other),
        }
        println!(
            "phase {} {} cycles in {:.1} s",
            name,
            count,
            started.elapsed().as_secs_f64()
        );
        checkpoint(&name);
    }
}
