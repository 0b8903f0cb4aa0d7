//! Test guest for queues and pipes between real processes:
//! `queue_procs SCENARIO` prints what it observed, one fact per line.
//!
//! * `fanout`: 1 writer (the parent) → 3 reader processes; every message
//!   must reach exactly one reader.
//! * `fifo`: 2 writer processes → the parent; order per writer is kept.
//! * `killed_reader`: a reader blocked in `get()` is terminated; a second
//!   reader then gets every message (none was lost to the dead one).
//! * `pipe_peer_death`: the child end of a Pipe sends, then its process
//!   is killed; the parent reads the message, then end of file.
//! * `pool_workers`: tasks running in Pool workers put into a queue the
//!   parent made and passed in their arguments.
//! * `fork_child`: an `os.fork` child puts into its parent's queue.

use procbridge_sdk::multiprocessing::{Pipe, Pool, Process, Queue};
use procbridge_sdk::{os, task};
use std::time::Duration;

/// Encodes handles (and numbers) as task arguments.
fn pack(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn unpack(args: &[u8]) -> Vec<i32> {
    args.chunks(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

const STOP: &str = "STOP";

// Takes messages until STOP, forwarding each to the results queue tagged
// with this reader's pid.
task!(reader, |args: &[u8]| -> Result<Vec<u8>, String> {
    let h = unpack(args);
    let (q, results) = (Queue::from_raw(h[0]), Queue::from_raw(h[1]));
    loop {
        let value: String = q.get().map_err(|e| format!("{:?}", e))?;
        if value == STOP {
            return Ok(Vec::new());
        }
        let tagged = format!("{} {}", os::getpid(), value);
        results
            .put(tagged.as_str())
            .map_err(|e| format!("{:?}", e))?;
    }
});

// Puts "ID:0" .. "ID:N-1".
task!(writer, |args: &[u8]| -> Result<Vec<u8>, String> {
    let h = unpack(args);
    let q = Queue::from_raw(h[0]);
    for i in 0..h[2] {
        let msg = format!("{}:{}", h[1], i);
        q.put(msg.as_str()).map_err(|e| format!("{:?}", e))?;
    }
    Ok(Vec::new())
});

// Blocks in get() forever (until terminated).
task!(blocked_reader, |args: &[u8]| -> Result<Vec<u8>, String> {
    let q = Queue::from_raw(unpack(args)[0]);
    println!("blocked reader {} waiting", os::getpid());
    let value: Result<String, procbridge_sdk::Error> = q.get();
    println!("blocked reader got {:?}", value);
    Ok(Vec::new())
});

// Sends one message on its Pipe end, then waits to be killed.
task!(pipe_child, |args: &[u8]| -> Result<Vec<u8>, String> {
    let conn = procbridge_sdk::multiprocessing::Connection::from_raw(unpack(args)[0]);
    conn.send("hello from the child")
        .map_err(|e| format!("{:?}", e))?;
    std::thread::sleep(Duration::from_secs(60));
    Ok(Vec::new())
});

// Puts "task N from PID" into the queue; args: queue handle, N.
task!(report_to_queue, |args: &[u8]| -> Result<Vec<u8>, String> {
    let a = unpack(args);
    // The worker keeps serving: borrowed, so the queue stays open in it.
    let q = Queue::from_raw_borrowed(a[0]);
    let msg = format!("task {} from {}", a[1], os::getpid());
    q.put(msg.as_str()).map_err(|e| format!("{:?}", e))?;
    Ok(Vec::new())
});

fn pool_workers() -> procbridge_sdk::Result<()> {
    let q = Queue::new()?;
    let pool = Pool::new(2)
        .map_err(|e| procbridge_sdk::Error::new(procbridge_sdk::Errno::Io, format!("{:?}", e)))?;
    let items: Vec<Vec<u8>> = (0..6).map(|i| pack(&[q.as_raw(), i])).collect();
    pool.map("report_to_queue", items)
        .map_err(|e| procbridge_sdk::Error::new(procbridge_sdk::Errno::Io, format!("{:?}", e)))?;
    let mut got = Vec::new();
    for _ in 0..6 {
        let msg: String = q.get().expect("get");
        got.push(msg);
    }
    got.sort();
    let tasks: Vec<&str> = got.iter().map(|m| &m[..6]).collect();
    println!("pool tasks {:?}", tasks);
    println!("parent pid {}", os::getpid());
    for m in &got {
        println!("{}", m);
    }
    Ok(())
}

fn fork_child() -> procbridge_sdk::Result<()> {
    let q = Queue::new()?;
    let pid = os::fork()?;
    if pid == 0 {
        q.put(format!("hello from {}", os::getpid()).as_str())
            .expect("put");
        std::process::exit(0);
    }
    let msg: String = q.get().expect("get");
    os::waitpid(pid as i32, 0)?;
    println!("{} (child {})", msg, pid);
    Ok(())
}

fn fanout() -> procbridge_sdk::Result<()> {
    let q = Queue::new()?;
    let results = Queue::new()?;
    let args = pack(&[q.as_raw(), results.as_raw()]);
    let mut readers: Vec<Process> = (0..3)
        .map(|_| Process::new("reader").args(&args[..]))
        .collect();
    for r in readers.iter_mut() {
        r.start()?;
    }
    let n = 300;
    for i in 0..n {
        q.put(format!("m{}", i).as_str()).expect("put");
    }
    for _ in 0..readers.len() {
        q.put(STOP).expect("put STOP");
    }
    let mut seen = Vec::new();
    let mut by_reader = std::collections::BTreeMap::new();
    for _ in 0..n {
        let tagged: String = results.get().expect("result");
        let mut parts = tagged.splitn(2, ' ');
        let pid = parts.next().unwrap_or("").to_string();
        seen.push(parts.next().unwrap_or("").to_string());
        *by_reader.entry(pid).or_insert(0) += 1;
    }
    for r in readers.iter_mut() {
        r.join()?;
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    println!("received {} unique {}", before, seen.len());
    println!("readers used {}", by_reader.len());
    println!(
        "extra {:?}",
        results
            .get_timeout::<String>(Duration::from_millis(100))
            .map_err(|e| e.kind())
    );
    Ok(())
}

fn fifo() -> procbridge_sdk::Result<()> {
    let q = Queue::new()?;
    let n = 200;
    let mut writers: Vec<Process> = (1..=2)
        .map(|id| Process::new("writer").args(&pack(&[q.as_raw(), id, n])[..]))
        .collect();
    for w in writers.iter_mut() {
        w.start()?;
    }
    let mut next = [0, 0, 0];
    let mut in_order = true;
    for _ in 0..2 * n {
        let msg: String = q.get().expect("get");
        let mut parts = msg.split(':');
        let id: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let i: i32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(-1);
        if i != next[id] {
            in_order = false;
        }
        next[id] = i + 1;
    }
    for w in writers.iter_mut() {
        w.join()?;
    }
    println!("in order {} last {} {}", in_order, next[1], next[2]);
    Ok(())
}

fn killed_reader() -> procbridge_sdk::Result<()> {
    let q = Queue::new()?;
    let results = Queue::new()?;
    let mut blocked = Process::new("blocked_reader").args(&pack(&[q.as_raw()])[..]);
    blocked.start()?;
    // Let it block in get().
    std::thread::sleep(Duration::from_millis(200));
    blocked.terminate()?;
    blocked.join()?;
    println!("terminated exitcode {:?}", blocked.exitcode());
    let mut second = Process::new("reader").args(&pack(&[q.as_raw(), results.as_raw()])[..]);
    second.start()?;
    for i in 0..5 {
        q.put(format!("v{}", i).as_str()).expect("put");
    }
    q.put(STOP).expect("put STOP");
    let mut got = 0;
    for _ in 0..5 {
        let _: String = results.get().expect("result");
        got += 1;
    }
    second.join()?;
    println!("second reader got {}", got);
    Ok(())
}

fn pipe_peer_death() -> procbridge_sdk::Result<()> {
    let (parent_end, child_end) = Pipe(true)?;
    let mut child = Process::new("pipe_child").args(&pack(&[child_end.as_raw()])[..]);
    child.start()?;
    // As in Python: the parent closes its copy of the child's end.
    drop(child_end);
    let first = parent_end.recv::<String>().map_err(|e| e.kind());
    println!("first {:?}", first);
    child.kill()?;
    child.join()?;
    let started = std::time::Instant::now();
    let second = parent_end
        .recv_timeout::<String>(Duration::from_secs(5))
        .map_err(|e| e.kind());
    println!(
        "after death {:?} within 1s {}",
        second,
        started.elapsed() < Duration::from_secs(1)
    );
    Ok(())
}

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    let result = match scenario.as_str() {
        "fanout" => fanout(),
        "fifo" => fifo(),
        "killed_reader" => killed_reader(),
        "pipe_peer_death" => pipe_peer_death(),
        "pool_workers" => pool_workers(),
        "fork_child" => fork_child(),
        _ => {
            eprintln!("unknown scenario {:?}", scenario);
            std::process::exit(2);
        }
    };
    if let Err(err) = result {
        println!("error {}", err);
        std::process::exit(1);
    }
}
