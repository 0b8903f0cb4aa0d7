//! Probes the typed SDK for the tests: panics and errors reaching the
//! caller, handles passed to pool workers, `?` into one error type, bad
//! arguments to typed tasks.
//!
//! Run it: `procbridge run target/guests/sdk_probe.wasm SCENARIO`.

use procbridge_sdk::multiprocessing::{Pipe, Pool, Process, Queue};
use procbridge_sdk::subprocess;
use procbridge_sdk::{os, task, Error, ErrorKind};

task!(
    fn boom(what: String) -> i64 {
        panic!("boom: {}", what)
    }
);

task!(
    fn fails(n: i64) -> Result<i64, Error> {
        subprocess::call(["sort", "--version"])?;
        Ok(n)
    }
);

task!(
    fn put_pid(q: Queue, tag: i64) {
        q.put(format!("{} {}", tag, os::getpid())).unwrap();
    }
);

task!(
    fn echo_pipe(conn: procbridge_sdk::multiprocessing::Connection, n: i64) -> i64 {
        conn.send(n).unwrap();
        n
    }
);

task!(
    fn shapes(a: (u8, bool), b: Vec<Option<String>>, c: char, d: f64) -> (usize, String) {
        let text = b
            .into_iter()
            .map(|s| s.unwrap_or_else(|| String::from("-")))
            .collect::<Vec<_>>()
            .join(",");
        (
            usize::from(a.0) + usize::from(a.1),
            format!("{}{}{}", text, c, d),
        )
    }
);

/// A panic in a Pool task reaches `get()` with its message and place; the
/// pool replaces the worker and goes on.
fn pool_panic() -> Result<(), Error> {
    let pool = Pool::new(1)?;
    let err = Error::from(pool.apply(boom, (String::from("in a pool"),)).unwrap_err());
    println!("get: {}", err);
    println!("kind: {:?}", err.kind());
    let squares = pool.apply(shapes, ((2, true), vec![None], 'x', 0.5))?;
    println!("after: {:?}", squares);
    Ok(())
}

/// A panic in a Process: its message on stderr, exit code 1.
fn process_panic() -> Result<(), Error> {
    let mut p = Process::new(boom).args((String::from("in a process"),));
    p.start()?;
    p.join()?;
    println!("exitcode: {:?}", p.exitcode());
    Ok(())
}

/// A task's own error (here a denied command) reaches `get()` as Python's
/// exception line.
fn task_error() -> Result<(), Error> {
    let pool = Pool::new(1)?;
    let err = Error::from(pool.apply(fails, (1,)).unwrap_err());
    println!("get: {}", err);
    Ok(())
}

/// Queues and pipe ends made after the pool reach its workers, task after
/// task on the same worker, without the task closing the worker's copy.
fn handles_to_workers() -> Result<(), Error> {
    let pool = Pool::new(2)?;
    let before = pool.pids()?;
    let q = Queue::new()?;
    for tag in 0..6 {
        pool.apply(put_pid, (q.clone(), tag))?;
    }
    let mut pids = Vec::new();
    for _ in 0..6 {
        let line: String = q.get()?;
        let pid: u32 = line.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    let after = pool.pids()?;
    println!(
        "workers replaced: {}",
        before.iter().all(|p| !after.contains(p))
    );
    println!(
        "tasks ran in {} worker(s), all current: {}",
        pids.len(),
        pids.iter().all(|p| after.contains(p))
    );
    // A second queue: the workers are replaced once more; the first queue
    // still works in the new ones.
    let q2 = Queue::new()?;
    pool.apply(put_pid, (q2.clone(), 7))?;
    pool.apply(put_pid, (q.clone(), 8))?;
    println!(
        "q2 got tag {}",
        q2.get::<String>()?.split(' ').next().unwrap_or("")
    );
    println!(
        "q got tag {}",
        q.get::<String>()?.split(' ').next().unwrap_or("")
    );
    let (parent, child) = Pipe(true)?;
    let sent = pool.map(
        echo_pipe,
        (0..3).map(|n| (child.clone(), n)).collect::<Vec<_>>(),
    )?;
    let mut got: Vec<i64> = (0..3).map(|_| parent.recv()).collect::<Result<_, _>>()?;
    got.sort_unstable();
    println!("pipe sent {:?} got {:?}", sent, got);
    pool.close()?;
    pool.join()?;
    Ok(())
}

task!(
    fn give_queue(_n: i64) -> Result<Queue, Error> {
        Queue::new()
    }
);

task!(
    fn pool_in_child(q: Queue) -> Result<(), Error> {
        let pool = Pool::new(2)?;
        let before = pool.pids()?;
        for tag in 0..3 {
            pool.apply(put_pid, (q.clone(), tag))?;
        }
        println!("child pool kept its workers: {}", pool.pids()? == before);
        Ok(())
    }
);

/// A spawned child's pool, given a queue the child inherited: its workers
/// hold it already, so no submission replaces them.
fn spawn_child_pool() -> Result<(), Error> {
    // Handles made first: the queue's serial in the parent is well past
    // anything the child's own table would count to.
    let earlier: Vec<Queue> = (0..8).map(|_| Queue::new()).collect::<Result<_, _>>()?;
    let q = Queue::new()?;
    let mut p = Process::new(pool_in_child)
        .args((q.clone(),))
        .start_method(procbridge_sdk::multiprocessing::StartMethod::Spawn);
    p.start()?;
    p.join()?;
    println!("exitcode {:?}", p.exitcode());
    let tags: Vec<String> = (0..3).map(|_| q.get()).collect::<Result<_, _>>()?;
    println!("tasks ran {}", tags.len());
    drop(earlier);
    Ok(())
}

/// Values of every shape make the round trip.
fn values() -> Result<(), Error> {
    let pool = Pool::new(1)?;
    let out = pool.apply(
        shapes,
        ((200, true), vec![Some(String::from("é")), None], '→', -1.25),
    )?;
    println!("shapes {:?}", out);
    let starred = pool.starmap(shapes, vec![((1, false), vec![], 'a', 1.0)])?;
    println!("starmap {:?}", starred);
    Ok(())
}

/// Typed tasks called with bytes that are not their arguments: a clear
/// error, the worker lives on.
fn bad_arguments() -> Result<(), Error> {
    let pool = Pool::new(1)?;
    for args in [
        &b""[..],
        &b"\x01"[..],
        &b"\xff\xff\xff\xff"[..],
        &b"\x03\x00\x00\x00\xff\xfe\xfd"[..],
    ] {
        let err = Error::from(pool.apply("boom", args).unwrap_err());
        println!("boom({:?}): {}", args, err);
    }
    let err = Error::from(pool.apply("shapes", &b"\x01\x02"[..]).unwrap_err());
    println!("shapes: {}", err);
    let mut p = Process::new("put_pid").args("not a queue");
    p.start()?;
    p.join()?;
    println!("process exitcode {:?}", p.exitcode());
    let err = Error::from(pool.apply(give_queue, (1,)).unwrap_err());
    println!("returned a queue: {}", err);
    println!(
        "pool still works: {}",
        pool.apply(shapes, ((1, true), vec![], 'z', 2.0))?.0
    );
    Ok(())
}

/// `?` turns every error into `Error`, borrowed items included, and into
/// `Box<dyn std::error::Error>`.
fn boxed() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::with_maxsize(1)?;
    let s = String::from("first");
    q.put(s.as_str())?;
    let err = q.put_nowait(s.as_str()).unwrap_err();
    println!("put_nowait: {}", err);
    let got: String = q.get()?;
    println!("got {}", got);
    let err = q.get_nowait::<String>().unwrap_err();
    println!("get_nowait: {} ({:?})", err, err.kind());
    Ok(())
}

/// `main` returning a denied command's error prints Python's line.
fn denied() -> Result<(), Error> {
    subprocess::call(["sort", "--version"])?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        "pool_panic" => pool_panic(),
        "process_panic" => process_panic(),
        "task_error" => task_error(),
        "handles_to_workers" => handles_to_workers(),
        "values" => values(),
        "spawn_child_pool" => spawn_child_pool(),
        "bad_arguments" => bad_arguments(),
        "boxed" => boxed().map_err(|e| Error::new(procbridge_sdk::Errno::Io, e.to_string())),
        "denied" => denied(),
        "panic" => {
            let empty: Vec<u8> = Vec::new();
            println!("about to index {} items", empty.len());
            let index = empty.len() + 3;
            println!("{}", empty[index]);
            Ok(())
        }
        "flood" => {
            for i in 0u64.. {
                println!("line {}", i);
            }
            Ok(())
        }
        other => Err(Error::with_kind(
            ErrorKind::Value,
            procbridge_sdk::Errno::Inval,
            format!("unknown scenario {:?}", other),
        )),
    }
}
