//! What the cluster tests run, locally and through `--nats`; the output is
//! the same either way.
//!
//! * `map N`: `Pool(4).map` of squares over `0..N`, chunk sizes 1 and 7,
//!   then tasks that fail, trap and exit;
//! * `slow N MS [P [once]]`: `Pool(P).map` (default 3) of squares over
//!   `0..N`, each task taking `MS` milliseconds (the tests kill a worker or
//!   restart the server meanwhile); `once`: lost tasks are not run again;
//! * `run CMD`: one task that runs the command `CMD` and says how it went;
//! * no mode, or `--quick` (as the benchmark harness runs it): `Pool(4).map` of tasks that each spin for 2 ms (by
//!   the clock), chunksize 1; prints `BENCH cluster_map_task_us` (wall time per
//!   task, median of 5 rounds) for the benchmark harness;
//! * `abandon N MS`: sends `N` tasks of `MS` milliseconds, takes the first
//!   result and exits, leaving the rest.
//! * `queues N`: tasks put into a `Queue` the job made, and take work from
//!   a `JoinableQueue` it fills and joins;
//! * `readers N`: two forked children share the messages of one queue;
//! * `bounded`: a `Queue(2)` filled, drained and shut down;
//! * `hold N MS`: puts `N` messages, waits `MS` milliseconds (the tests
//!   restart the server meanwhile), then gets them;
//! * `spawned N`: `N` spawn-method processes put into a queue; one fails;
//!   one runs `echo` with and without its commands;
//! * `narrower-pool`: a pool in a process started without commands, and
//!   in one with them, runs `echo`;
//! * `done-race ROUNDS`: two processes call `task_done` at once with one
//!   task unfinished;
//! * `many-queues`: makes queues until one is refused (at most 300);
//! * `abandon-get MS`: a task waits for a message that never comes; the
//!   job exits after `MS` milliseconds;
//! * `queue-bench [--quick]`: puts then gets 16-byte messages; prints
//!   `BENCH cluster_queue_put_msg_s` and `BENCH cluster_queue_get_msg_s`.

use procbridge_sdk::multiprocessing::{JoinableQueue, Pool, Process, Queue, StartMethod};
use procbridge_sdk::{os, subprocess, task, Error};
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

task!(
    fn put_square(q: Queue, n: i64) -> Result<(), Error> {
        q.put(format!("{} {}", n, n * n))
    }
);

task!(
    fn consume(jobs: JoinableQueue, results: Queue, k: i64) -> Result<i64, Error> {
        for _ in 0..k {
            let n: i64 = jobs.get()?;
            results.put(n * n)?;
            jobs.task_done()?;
        }
        Ok(k)
    }
);

task!(
    fn wait_for_message(q: Queue) -> Result<String, Error> {
        q.get()
    }
);

/// Tasks on the pool's workers put into the job's queue; tasks take the
/// job's work from a joinable queue it then joins.
fn queues(n: i64) -> Result<(), Error> {
    let q = Queue::new()?;
    let pool = Pool::new(3).map_err(|e| Error::new(procbridge_sdk::Errno::Io, format!("{e:?}")))?;
    pool.map(put_square, (0..n).map(|i| (q.clone(), i)))
        .map_err(|e| Error::new(procbridge_sdk::Errno::Io, format!("{e:?}")))?;
    let mut got: Vec<String> = (0..n).map(|_| q.get()).collect::<Result<_, _>>()?;
    got.sort_by_key(|line| line.split(' ').next().and_then(|n| n.parse::<i64>().ok()));
    println!("queue {}", got.join(","));
    println!("empty after {}", q.empty()?);

    let jobs = JoinableQueue::new()?;
    let results = Queue::new()?;
    for i in 0..n {
        jobs.put(i)?;
    }
    let takers: Vec<_> = [n / 2, n - n / 2]
        .into_iter()
        .map(|k| pool.apply_async(consume, (jobs.clone(), results.clone(), k)))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::new(procbridge_sdk::Errno::Io, format!("{e:?}")))?;
    jobs.join()?;
    println!("joined");
    let mut squares: Vec<i64> = (0..n).map(|_| results.get()).collect::<Result<_, _>>()?;
    squares.sort_unstable();
    println!(
        "squares {}",
        squares
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let taken: i64 = takers.into_iter().map(|t| t.get().unwrap_or(-1)).sum();
    println!("taken {taken}");
    println!(
        "task_done once more {:?}",
        jobs.task_done().map_err(|e| e.errno())
    );
    Ok(())
}

/// Two forked readers share one queue's messages: each message reaches one.
fn readers(n: usize) -> Result<(), Error> {
    let q = Queue::new()?;
    let results = Queue::new()?;
    let mut children = Vec::new();
    for _ in 0..2 {
        let pid = os::fork()?;
        if pid == 0 {
            loop {
                let value: String = q.get()?;
                if value == "STOP" {
                    std::process::exit(0);
                }
                results.put(format!("{} {}", os::getpid(), value))?;
            }
        }
        children.push(pid);
    }
    for i in 0..n {
        q.put(i.to_string())?;
    }
    let mut got: Vec<(u32, usize)> = (0..n)
        .map(|_| {
            let line: String = results.get()?;
            let (pid, value) = line.split_once(' ').unwrap_or_default();
            Ok((
                pid.parse().unwrap_or(0),
                value.parse().unwrap_or(usize::MAX),
            ))
        })
        .collect::<Result<_, Error>>()?;
    for _ in 0..2 {
        q.put("STOP")?;
    }
    for pid in children {
        os::waitpid(pid as i32, 0)?;
    }
    got.sort_by_key(|&(_, value)| value);
    let values: Vec<usize> = got.iter().map(|&(_, v)| v).collect();
    println!("each once {}", values == (0..n).collect::<Vec<_>>());
    let mut pids: Vec<u32> = got.iter().map(|&(p, _)| p).collect();
    pids.sort_unstable();
    pids.dedup();
    println!("readers {}", pids.len());
    Ok(())
}

/// A bounded queue: full, drained, shut down.
fn bounded() -> Result<(), Error> {
    let q = Queue::with_maxsize(2)?;
    q.put("a")?;
    q.put("b")?;
    println!("full {} qsize {}", q.full()?, q.qsize()?);
    println!("put_nowait {:?}", q.put_nowait("c").map_err(|e| e.errno()));
    let started = Instant::now();
    let waited = q.put_timeout("c", Duration::from_millis(300));
    println!(
        "put_timeout {:?} after {}",
        waited.map_err(|e| e.errno()),
        started.elapsed() >= Duration::from_millis(300)
    );
    println!("get {}", q.get::<String>()?);
    q.put_nowait("c")?;
    q.shutdown()?;
    println!("put after shutdown {:?}", q.put("d").map_err(|e| e.errno()));
    println!("get {}", q.get::<String>()?);
    println!("get {}", q.get::<String>()?);
    println!(
        "get when empty {:?}",
        q.get::<String>().map_err(|e| e.errno())
    );
    println!(
        "too big {:?}",
        Queue::with_limits(0, 1024)?
            .put(vec![0u8; 4096])
            .map_err(|e| e.errno())
    );
    Ok(())
}

task!(
    fn fails_now(why: String) -> Result<(), Error> {
        Err(Error::new(procbridge_sdk::Errno::Inval, why))
    }
);

task!(
    fn try_command(q: Queue) -> Result<(), Error> {
        q.put(match subprocess::check_output(["echo", "ran"]) {
            Ok(out) => String::from_utf8_lossy(&out).trim().to_string(),
            Err(_) => String::from("refused"),
        })
    }
);

task!(
    fn count_calls(q: Queue) -> Result<(), Error> {
        static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        q.put(CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1)
    }
);

task!(
    fn exit_zero(_n: i64) {
        std::process::exit(0);
    }
);

task!(
    fn pool_tries_command(q: Queue) -> Result<(), Error> {
        let io = |e: procbridge_sdk::multiprocessing::PoolError| {
            Error::new(procbridge_sdk::Errno::Io, format!("{e:?}"))
        };
        let pool = Pool::new(1).map_err(io)?;
        pool.apply(try_command, (q.clone(),)).map_err(io)?;
        Ok(())
    }
);

/// A pool made in a (forked) process that dropped its commands, and in
/// one that kept them: its tasks may run `echo` only in the second.
fn pool_in_a_narrower_process() -> Result<(), Error> {
    let q = Queue::new()?;
    for drop_commands in [true, false] {
        let mut p = Process::new(pool_tries_command).args((q.clone(),));
        if drop_commands {
            p = p.without_commands();
        }
        p.start()?;
        p.join()?;
        let said: String = q.get()?;
        println!("pool in a process without commands {drop_commands}: {said}");
    }
    Ok(())
}

/// Spawn-method processes (on the cluster's workers with `--processes
/// cluster`): their exit codes, what they put, a failing one, and one
/// started without commands.
fn spawned(n: i64) -> Result<(), Error> {
    let q = Queue::new()?;
    let mut started = Vec::new();
    for i in 0..n {
        let mut p = Process::new(put_square)
            .args((q.clone(), i))
            .start_method(StartMethod::Spawn);
        p.start()?;
        started.push(p);
    }
    let mut codes = Vec::new();
    for p in &mut started {
        p.join()?;
        codes.push(p.exitcode());
    }
    println!("exit codes {codes:?}");
    let mut got: Vec<String> = (0..n).map(|_| q.get()).collect::<Result<_, _>>()?;
    got.sort_by_key(|line| line.split(' ').next().and_then(|n| n.parse::<i64>().ok()));
    println!("spawned {}", got.join(","));
    let mut failing = Process::new(fails_now)
        .args((String::from("on purpose"),))
        .start_method(StartMethod::Spawn);
    failing.start()?;
    failing.join()?;
    println!("failing exit code {:?}", failing.exitcode());
    for drop_commands in [false, true] {
        let mut p = Process::new(try_command)
            .args((q.clone(),))
            .start_method(StartMethod::Spawn);
        if drop_commands {
            p = p.without_commands();
        }
        p.start()?;
        p.join()?;
        let said: String = q.get()?;
        println!(
            "without commands {drop_commands}: {said}, exit code {:?}",
            p.exitcode()
        );
    }
    // Each starts afresh: no state of an earlier one.
    let mut calls = Vec::new();
    for _ in 0..2 {
        let mut p = Process::new(count_calls)
            .args((q.clone(),))
            .start_method(StartMethod::Spawn);
        p.start()?;
        p.join()?;
        calls.push(q.get::<u32>()?.to_string());
    }
    println!("calls {}", calls.join(","));
    let mut p = Process::new(exit_zero)
        .args((0i64,))
        .start_method(StartMethod::Spawn);
    p.start()?;
    p.join()?;
    println!("exit(0) exit code {:?}", p.exitcode());
    Ok(())
}

/// Two processes call `task_done` at once with one task unfinished, in
/// each of `rounds` rounds: one of them succeeds, the other is refused.
fn done_race(rounds: usize) -> Result<(), Error> {
    let mut every_round_once = true;
    for _ in 0..rounds {
        let jobs = JoinableQueue::new()?;
        let go = Queue::new()?;
        let outcomes = Queue::new()?;
        jobs.put(1i64)?;
        let _: i64 = jobs.get()?;
        let mut children = Vec::new();
        for _ in 0..2 {
            let pid = os::fork()?;
            if pid == 0 {
                let _: String = go.get()?;
                outcomes.put(i64::from(jobs.task_done().is_ok()))?;
                std::process::exit(0);
            }
            children.push(pid);
        }
        go.put("go")?;
        go.put("go")?;
        let succeeded: i64 = outcomes.get::<i64>()? + outcomes.get::<i64>()?;
        for pid in children {
            os::waitpid(pid as i32, 0)?;
        }
        every_round_once &= succeeded == 1;
    }
    println!("one task_done counted in every round {every_round_once}");
    Ok(())
}

/// Queues of the policy's full size until the process may make no more.
fn many_queues() -> Result<(), Error> {
    let mut kept = Vec::new();
    let refused = loop {
        match Queue::new() {
            Ok(q) => kept.push(q),
            Err(err) => break err,
        }
        if kept.len() == 300 {
            println!("made 300 queues");
            return Ok(());
        }
    };
    println!("made {} then {:?}", kept.len(), refused.errno());
    Ok(())
}

/// Messages held across a server restart.
fn hold(n: usize, ms: u64) -> Result<(), Error> {
    let q = Queue::new()?;
    for i in 0..n {
        q.put(i.to_string())?;
    }
    println!("queued {}", q.qsize()?);
    std::thread::sleep(Duration::from_millis(ms));
    let got: Vec<String> = (0..n).map(|_| q.get()).collect::<Result<_, _>>()?;
    println!("got {}", got.join(","));
    println!(
        "then {:?}",
        q.get_timeout::<String>(Duration::from_millis(200))
            .map_err(|e| e.errno())
    );
    Ok(())
}

/// Messages per second through one queue: `n` puts, then `n` gets.
fn queue_bench(quick: bool) -> Result<(), Error> {
    let n = if quick { 200 } else { 5000 };
    let q = Queue::new()?;
    let message = [7u8; 16];
    let start = Instant::now();
    for _ in 0..n {
        q.put(&message[..])?;
    }
    let put = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..n {
        let _: Vec<u8> = q.get()?;
    }
    let get = n as f64 / start.elapsed().as_secs_f64();
    println!("BENCH cluster_queue_put_msg_s {put:.0}");
    println!("BENCH cluster_queue_get_msg_s {get:.0}");
    Ok(())
}

fn report(done: Result<(), Error>) {
    if let Err(err) = done {
        eprintln!("cluster_probe: {err}");
        std::process::exit(1);
    }
}

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

fn slow(n: usize, ms: &str, processes: usize, retry_lost: bool) {
    let pool = Pool::builder(processes)
        .retry_lost_tasks(retry_lost)
        .build()
        .expect("pool");
    let args: Vec<String> = (0..n).map(|i| format!("{i} {ms}")).collect();
    match pool.map("slow_square", &args) {
        Ok(squares) => println!("slow {}", texts(squares)),
        Err(err) => println!("slow failed: {err}"),
    }
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
            arg(5) != "once",
        ),
        "run" => {
            let pool = Pool::new(1).expect("pool");
            println!("{:?}", pool.apply("run_command", arg(2)).map(text));
        }
        "" | "--quick" => bench(arg(1) == "--quick"),
        "queues" => report(queues(arg(2).parse().unwrap_or(10))),
        "readers" => report(readers(arg(2).parse().unwrap_or(20))),
        "bounded" => report(bounded()),
        "hold" => report(hold(
            arg(2).parse().unwrap_or(5),
            arg(3).parse().unwrap_or(0),
        )),
        "queue-bench" => report(queue_bench(arg(2) == "--quick")),
        "done-race" => report(done_race(arg(2).parse().unwrap_or(5))),
        "spawned" => report(spawned(arg(2).parse().unwrap_or(4))),
        "narrower-pool" => report(pool_in_a_narrower_process()),
        "many-queues" => report(many_queues()),
        "abandon-get" => {
            // A task waits on a queue nobody puts into; the job leaves.
            let q = Queue::new().expect("queue");
            let pool = Pool::new(1).expect("pool");
            let _waiting = pool
                .apply_async(wait_for_message, (q.clone(),))
                .expect("apply_async");
            std::thread::sleep(Duration::from_millis(arg(2).parse().unwrap_or(500)));
            println!("leaving");
            std::process::exit(0);
        }
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
