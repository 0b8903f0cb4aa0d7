//! Test guest for pools: `pool_probe SCENARIO [ARGS]` runs one scenario and
//! prints what the tests check.
//!
//! Scenarios: `map`, `errors`, `kill`, `die_holding`, `timeout`,
//! `timeout_behind_quick`, `maxtasks`, `terminate`, `lifecycle`,
//! `leave drop|exit`, `bad`, `limit`, `away`.

use procbridge_sdk::multiprocessing::pool::star_args;
use procbridge_sdk::multiprocessing::{Pool, PoolError, Process, Queue};
use procbridge_sdk::{os, sys, task, Errno, Error};
use std::time::{Duration, Instant};

task!(square, |n: &str| -> Result<String, String> {
    let n: i64 = n.parse().map_err(|_| format!("not a number: {:?}", n))?;
    Ok((n * n).to_string())
});

task!(add, |args: &[u8]| -> Result<String, String> {
    let args = star_args(args)?;
    let mut sum = 0i64;
    for arg in args {
        sum += String::from_utf8_lossy(&arg).parse::<i64>().unwrap_or(0);
    }
    Ok(sum.to_string())
});

task!(pid, |_: &[u8]| os::getpid().to_string());

task!(fail, |what: &str| -> Result<(), String> {
    Err(format!("failed on purpose: {}", what))
});

task!(trap, |_: &[u8]| { core::arch::wasm32::unreachable() });

task!(exit_now, |_: &[u8]| {
    std::process::exit(7);
});

// Sleeps `ms` milliseconds (after saying which worker runs it).
task!(nap, |ms: &str| {
    println!("napping in {}", os::getpid());
    std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(1000)));
    os::getpid().to_string()
});

// Sleeps `ms` milliseconds, then returns its argument (for imap ordering).
task!(slow_echo, |ms: &str| {
    std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
    ms.to_string()
});

task!(noop, |_: &[u8]| ());

task!(
    fn put_square(q: Queue, n: i64) {
        q.put(n * n).unwrap();
    }
);

task!(
    /// Notes `n` on the queue; `n == 5` then kills its own worker.
    fn note_or_die(q: Queue, n: i64) {
        q.put(n).unwrap();
        if n == 5 {
            let _ = os::kill(os::getpid(), 9);
        }
    }
);

#[no_mangle]
pub extern "C" fn wrong_signature(a: i32, b: i32) -> i32 {
    a + b
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn texts(items: Vec<Vec<u8>>) -> String {
    items.into_iter().map(text).collect::<Vec<_>>().join(",")
}

fn pids(pool: &Pool) -> String {
    let mut pids = pool.pids().expect("pids");
    pids.sort_unstable();
    pids.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn map() {
    let pool = Pool::new(3).expect("pool");
    let numbers: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    println!("map {}", texts(pool.map("square", &numbers).expect("map")));
    println!(
        "map chunked {}",
        texts(pool.map_chunked("square", &numbers, 7).expect("map"))
    );
    println!(
        "map_str {}",
        pool.map_str("square", ["2", "3"])
            .expect("map_str")
            .join(",")
    );
    let delays = ["120", "10", "60", "0", "30"];
    let imap: Vec<String> = pool
        .imap("slow_echo", delays, 1)
        .expect("imap")
        .map(|r| text(r.expect("item")))
        .collect();
    println!("imap {}", imap.join(","));
    let mut unordered: Vec<i64> = pool
        .imap_unordered("square", &numbers, 3)
        .expect("imap_unordered")
        .map(|r| text(r.expect("item")).parse().unwrap_or(-1))
        .collect();
    println!("imap_unordered count {}", unordered.len());
    unordered.sort_unstable();
    let expected: Vec<i64> = (0..50).map(|i| i * i).collect();
    println!("imap_unordered complete {}", unordered == expected);
    let star = pool
        .starmap_raw("add", vec![vec!["1", "2"], vec!["10", "20", "30"]])
        .expect("starmap");
    println!("starmap {}", texts(star));
    println!("apply {}", text(pool.apply("square", "12").expect("apply")));
    let r = pool.apply_async("square", "9").expect("apply_async");
    r.wait().expect("wait");
    println!(
        "async ready {} successful {:?} get {}",
        r.ready(),
        r.successful(),
        r.get_str().expect("get")
    );
    let m = pool
        .map_async("square", ["4", "5"], None)
        .expect("map_async");
    println!("map_async {}", texts(m.get().expect("get")));
    let empty: Vec<String> = Vec::new();
    println!(
        "map empty {}",
        pool.map("square", &empty).expect("map").len()
    );
    let slow = pool.apply_async("nap", "400").expect("nap");
    println!(
        "get_timeout {:?} ready {} successful {:?}",
        slow.get_timeout(Duration::from_millis(50)),
        slow.ready(),
        slow.successful()
    );
    println!(
        "wait_timeout {:?}",
        slow.wait_timeout(Duration::from_millis(10))
    );
    pool.close().expect("close");
    pool.join().expect("join");
    println!("joined; slow result ready {}", slow.ready());
}

fn errors() {
    let pool = Pool::new(2).expect("pool");
    let before = pids(&pool);
    println!("fail {:?}", pool.apply("fail", "x"));
    println!("pids kept after fail {}", pids(&pool) == before);
    let r = pool.apply_async("fail", "y").expect("apply_async");
    r.wait().expect("wait");
    println!("successful {:?}", r.successful());
    match pool.apply("trap", "") {
        Err(PoolError::Task(message)) => println!("trap Task {}", message),
        other => println!("trap other {:?}", other),
    }
    println!("exit {:?}", pool.apply("exit_now", ""));
    println!("bad arg {:?}", pool.apply("square", "x"));
    let items = ["1", "oops", "3"];
    println!("map {:?}", pool.map("square", items));
    let outcomes = pool
        .map_async("square", items, Some(1))
        .expect("map_async")
        .outcomes(None)
        .expect("outcomes");
    println!("outcomes {:?}", outcomes);
    let imap: Vec<String> = pool
        .imap("square", items, 1)
        .expect("imap")
        .map(|r| format!("{:?}", r.map(text)))
        .collect();
    println!("imap {}", imap.join(" "));
    println!(
        "still works {}",
        texts(pool.map("square", ["6", "7"]).expect("map"))
    );
    println!(
        "unknown task {:?}",
        pool.apply_async("no_such_task", "").err()
    );
    println!(
        "wrong signature {:?}",
        pool.apply_async("wrong_signature", "").err()
    );
    pool.close().expect("close");
    pool.join().expect("join");
    println!("errors done");
}

/// Prints the pid running a long task, then waits for the test to kill it.
fn kill() {
    let pool = Pool::new(2).expect("pool");
    println!("pids {}", pids(&pool));
    let victim = pool.apply_async("nap", "30000").expect("nap");
    let others = pool
        .map_async("slow_echo", (0..20).map(|_| "20"), Some(1))
        .expect("map_async");
    match victim.get() {
        Err(PoolError::WorkerLost(message)) => println!("victim WorkerLost {}", message),
        other => println!("victim other {:?}", other),
    }
    let rest = others.get().expect("others");
    println!("others {}", rest.len());
    println!("after {}", text(pool.apply("pid", "").expect("pid")));
    println!("pids {}", pids(&pool));
    pool.close().expect("close");
    pool.join().expect("join");
    println!("kill done");
}

fn timeout() {
    let pool = Pool::builder(2)
        .task_timeout(Duration::from_millis(300))
        .build()
        .expect("pool");
    let before = pids(&pool);
    let start = Instant::now();
    let slow = pool.apply_async("nap", "20000").expect("nap");
    let quick = pool.apply_async("slow_echo", "50").expect("echo");
    match slow.get() {
        Err(PoolError::TaskTimedOut(message)) => println!("slow TaskTimedOut {}", message),
        other => println!("slow other {:?}", other),
    }
    println!("timed out after {} ms", start.elapsed().as_millis());
    println!("quick {:?}", quick.get().map(text));
    println!("then {}", text(pool.apply("square", "5").expect("square")));
    let after = pids(&pool);
    println!("pids changed {}", before != after);
    println!("before {}", before);
    println!("after {}", after);
    pool.close().expect("close");
    pool.join().expect("join");
}

/// A quick task sent ahead to a busy worker, with a task that overruns
/// its timeout behind it: the quick one's result comes back (it is not
/// held until the slow one is killed), the slow one times out.
fn timeout_behind_quick() {
    let pool = Pool::builder(1)
        .task_timeout(Duration::from_millis(300))
        .build()
        .expect("pool");
    // Short tasks: the pool learns to send work ahead.
    pool.map_chunked("slow_echo", (0..100).map(|_| "0"), 1)
        .expect("warm-up");
    let busy = pool.apply_async("slow_echo", "100").expect("busy");
    let mut pair = pool.imap("slow_echo", ["0", "20000"], 1).expect("imap");
    match pair.next() {
        Some(Ok(first)) => println!("first Ok {}", text(first)),
        other => println!("first other {:?}", other),
    }
    match pair.next() {
        Some(Err(PoolError::TaskTimedOut(_))) => println!("second TaskTimedOut"),
        other => println!("second other {:?}", other),
    }
    println!("busy {:?}", busy.get().map(text));
    pool.close().expect("close");
    pool.join().expect("join");
}

/// Short tasks sent ahead to one worker, which dies in the sixth: every
/// task runs once, none twice, whether its reply was sent or held.
fn die_holding() {
    let q = Queue::new().expect("queue");
    let pool = Pool::new(1).expect("pool");
    pool.map_chunked("noop", (0..100).map(|_| ""), 1)
        .expect("warm-up");
    let results: Vec<_> = (0..10)
        .map(|n| {
            pool.apply_async(note_or_die, (q.clone(), n))
                .expect("apply_async")
        })
        .collect();
    let outcomes: Vec<String> = results
        .iter()
        .enumerate()
        .map(|(n, r)| match r.get() {
            Ok(()) => format!("{n}:ok"),
            Err(PoolError::WorkerLost(_)) => format!("{n}:lost"),
            Err(other) => format!("{n}:{other:?}"),
        })
        .collect();
    println!("outcomes {}", outcomes.join(" "));
    let mut noted = Vec::new();
    while let Ok(n) = q.get_timeout::<i64>(Duration::from_millis(500)) {
        noted.push(n);
    }
    noted.sort_unstable();
    let noted: Vec<String> = noted.iter().map(|n| n.to_string()).collect();
    println!("noted {}", noted.join(" "));
    pool.close().expect("close");
    pool.join().expect("join");
}

fn maxtasks() {
    let pool = Pool::builder(1).maxtasksperchild(2).build().expect("pool");
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(text(pool.apply("pid", "").expect("pid")));
    }
    println!("pids {}", seen.join(" "));
    let chunked = pool.map_chunked("pid", (0..8).map(|_| ""), 2).expect("map");
    println!("chunked {}", texts(chunked));
    pool.close().expect("close");
    pool.join().expect("join");
}

fn terminate() {
    let pool = Pool::new(2).expect("pool");
    println!("pids {}", pids(&pool));
    let naps: Vec<_> = (0..3)
        .map(|_| pool.apply_async("nap", "20000").expect("nap"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    pool.terminate().expect("terminate");
    for r in &naps {
        println!("after terminate {:?}", r.get());
    }
    println!("terminated in {} ms", start.elapsed().as_millis());
    println!("pids now [{}]", pids(&pool));
    println!("apply {:?}", pool.apply("square", "2"));
    println!("join {:?}", pool.join());
}

fn lifecycle() {
    let pool = Pool::new(1).expect("pool");
    println!("join before close {:?}", pool.join());
    // SAFETY: plain integers.
    let raw = unsafe { sys::raw::pool_join(pool.handle(), -1) };
    println!("raw join before close {}", raw);
    pool.close().expect("close");
    println!("apply after close {:?}", pool.apply("square", "2").err());
    let name = "square";
    let items = procbridge_sdk::abi::list::encode(&["2"]);
    // SAFETY: live buffers.
    let raw = unsafe {
        sys::raw::pool_submit(
            pool.handle(),
            name.as_ptr(),
            name.len() as i32,
            items.as_ptr(),
            items.len() as i32,
            1,
        )
    };
    println!("raw submit after close {} {:?}", raw, last_error());
    println!("join {:?}", pool.join());
    println!("join again {:?}", pool.join());
    println!("pids after join [{}]", pids(&pool));
}

fn last_error() -> Option<Error> {
    let mut buf = vec![0u8; 512];
    // SAFETY: the host writes at most `buf.len()` bytes.
    let len = unsafe { sys::raw::last_error(buf.as_mut_ptr(), buf.len() as i32) };
    buf.truncate(len.max(0) as usize);
    Some(Error::new(Errno::Inval, String::from_utf8_lossy(&buf)))
}

/// Leaves a pool with a running task behind: `drop` drops it, `exit` exits
/// without running any destructor.
fn leave(how: &str) {
    let pool = Pool::new(3).expect("pool");
    println!("pids {}", pids(&pool));
    let _r = pool.apply_async("nap", "30000").expect("nap");
    std::thread::sleep(Duration::from_millis(100));
    if how == "exit" {
        std::process::exit(0);
    }
    drop(_r);
    drop(pool);
    println!("dropped");
}

/// Pools past the tree's process limit (run with `--max-processes`).
fn limit() {
    match Pool::new(4) {
        Err(PoolError::Os(err)) => println!("pool 4 {} {}", err.errno(), err.message()),
        other => println!("pool 4 other {:?}", other.map(|p| p.handle())),
    }
    let pool = Pool::new(2).expect("pool 2 fits");
    println!(
        "pool 2 {}",
        texts(pool.map("square", ["3", "4"]).expect("map"))
    );
}

fn errno(ret: i32) -> String {
    match Errno::from_return(ret) {
        Some(e) if ret < 0 => format!("{}", e),
        _ => format!("ok {}", ret),
    }
}

fn bad() {
    // SAFETY (whole function): raw calls with deliberately bad arguments;
    // the host checks every pointer before use.
    unsafe {
        println!("new 0 {}", errno(sys::raw::pool_new(0, 0, -1)));
        println!("new -3 {}", errno(sys::raw::pool_new(-3, 0, -1)));
        println!("new 100000 {}", errno(sys::raw::pool_new(100_000, 0, -1)));
        println!("new maxtasks -1 {}", errno(sys::raw::pool_new(1, -1, -1)));
        println!("new timeout -5 {}", errno(sys::raw::pool_new(1, 0, -5)));
        println!("pids forged {}", errno(sys::raw::pool_pids(12345)));
        println!("close forged {}", errno(sys::raw::pool_close(-1)));
        let h = sys::raw::pool_new(1, 0, -1);
        println!("new {}", if h > 0 { "ok" } else { "failed" });
        let name = "square";
        let items = procbridge_sdk::abi::list::encode(&["3"]);
        let submit = |name_ptr: *const u8,
                      name_len: i32,
                      items_ptr: *const u8,
                      items_len: i32,
                      chunk: i32| {
            sys::raw::pool_submit(h, name_ptr, name_len, items_ptr, items_len, chunk)
        };
        println!(
            "submit oob name {}",
            errno(submit(
                0x7fff_fff0 as *const u8,
                64,
                items.as_ptr(),
                items.len() as i32,
                1
            ))
        );
        println!(
            "submit oob items {}",
            errno(submit(name.as_ptr(), 6, 0x7fff_fff0 as *const u8, 64, 1))
        );
        println!(
            "submit negative len {}",
            errno(submit(name.as_ptr(), 6, items.as_ptr(), -4, 1))
        );
        println!(
            "submit bad list {}",
            errno(submit(name.as_ptr(), 6, [9u8, 0, 0, 0, 1].as_ptr(), 5, 1))
        );
        println!(
            "submit chunksize 0 {}",
            errno(submit(
                name.as_ptr(),
                6,
                items.as_ptr(),
                items.len() as i32,
                0
            ))
        );
        let bogus = "no_such_task";
        println!(
            "submit unknown {}",
            errno(submit(
                bogus.as_ptr(),
                bogus.len() as i32,
                items.as_ptr(),
                items.len() as i32,
                1
            ))
        );
        let id = submit(name.as_ptr(), 6, items.as_ptr(), items.len() as i32, 1);
        println!("submit {}", if id > 0 { "ok" } else { "failed" });
        // The pool now knows `square`: its submissions are read straight
        // from guest memory, and checked the same.
        println!(
            "known, oob items {}",
            errno(submit(name.as_ptr(), 6, 0x7fff_fff0 as *const u8, 64, 1))
        );
        println!(
            "known, bad list {}",
            errno(submit(name.as_ptr(), 6, [9u8, 0, 0, 0, 1].as_ptr(), 5, 1))
        );
        println!(
            "known, chunksize 0 {}",
            errno(submit(
                name.as_ptr(),
                6,
                items.as_ptr(),
                items.len() as i32,
                0
            ))
        );
        println!(
            "known, then unknown {}",
            errno(submit(
                bogus.as_ptr(),
                bogus.len() as i32,
                items.as_ptr(),
                items.len() as i32,
                1
            ))
        );
        println!(
            "wait negative {}",
            errno(sys::raw::pool_result_wait(h, id, -5))
        );
        println!(
            "get negative {}",
            errno(sys::raw::pool_result_get(h, id, -2))
        );
        println!(
            "next bad order {}",
            errno(sys::raw::pool_result_next(h, id, 7, -1))
        );
        println!(
            "get unknown id {}",
            errno(sys::raw::pool_result_get(h, 999, -1))
        );
        println!(
            "get forged pool {}",
            errno(sys::raw::pool_result_get(777, id, -1))
        );
        println!("join negative {}", errno(sys::raw::pool_join(h, -9)));
        let len = sys::raw::pool_result_get(h, id, -1);
        println!("get {}", errno(len));
        println!(
            "take oob {}",
            errno(sys::raw::take_result(0x7fff_fff0 as *mut u8, len))
        );
        println!("drop result {}", errno(sys::raw::pool_result_drop(h, id)));
        println!(
            "get dropped {}",
            errno(sys::raw::pool_result_get(h, id, -1))
        );
        let mut process = Process::new("noop");
        process.start().expect("start");
        process.join().expect("join");
        let ph = process.handle().unwrap_or(0);
        println!("wrong kind {}", errno(sys::raw::pool_close(ph)));
        println!("drop {}", errno(sys::raw::pool_drop(h)));
        println!("closed handle {}", errno(sys::raw::pool_pids(h)));
        println!(
            "submit closed handle {}",
            errno(submit(
                name.as_ptr(),
                6,
                items.as_ptr(),
                items.len() as i32,
                1
            ))
        );
    }
}

/// Submits more tasks than the workers hold at once, then waits on a
/// `Queue` the tasks fill, making no pool call: the tasks still queued in
/// the parent must start anyway (as with Python's pool and its threads).
fn away() {
    let q = Queue::new().expect("queue");
    let pool = Pool::new(2).expect("pool");
    let results: Vec<_> = (0..200i64)
        .map(|n| {
            pool.apply_async(put_square, (q.clone(), n))
                .expect("apply_async")
        })
        .collect();
    let started = Instant::now();
    let mut got = Vec::new();
    for _ in 0..200 {
        match q.get_timeout::<i64>(Duration::from_secs(10)) {
            Ok(square) => got.push(square),
            Err(err) => {
                println!("away: waited in vain after {} squares: {}", got.len(), err);
                break;
            }
        }
    }
    got.sort_unstable();
    let expected: Vec<i64> = (0..200i64).map(|n| n * n).collect();
    println!(
        "away got {} squares, all {}, within {} s",
        got.len(),
        got == expected,
        started.elapsed().as_secs()
    );
    for r in results {
        r.get().expect("get");
    }
    println!("away results collected");
}

/// Right after a round (a `map`), hands the workers a queue made after
/// them, then waits on it with no pool call: the workers that lack it are
/// replaced (fresh forks inherit it) by the submission itself, since the
/// pool's helper thread cannot fork them while the guest waits.
fn new_handle_then_wait() {
    let pool = Pool::new(2).expect("pool");
    let squares: Vec<String> = pool
        .map("square", ["1", "2", "3"])
        .expect("map")
        .into_iter()
        .map(text)
        .collect();
    println!("warm {}", squares.join(","));
    let q = Queue::new().expect("queue");
    let result = pool
        .apply_async(put_square, (q.clone(), 7i64))
        .expect("apply_async");
    match q.get_timeout::<i64>(Duration::from_secs(5)) {
        Ok(square) => println!("new handle got {square}"),
        Err(err) => println!("new handle waited in vain: {err}"),
    }
    result.get().expect("get");
    println!("new handle result collected");
}

/// Forks again and again while the pool's helper thread runs its rounds
/// (tasks out, the guest making no pool call): every child must start and
/// end (a child that inherited a lock the helper held would hang), and
/// every task must still finish.
fn fork_while_away() {
    let pool = Pool::new(2).expect("pool");
    let results: Vec<_> = (0..3000i64)
        .map(|n| {
            pool.apply_async("square", n.to_string())
                .expect("apply_async")
        })
        .collect();
    let mut ended = 0;
    for _ in 0..40 {
        let pid = os::fork().expect("fork");
        if pid == 0 {
            eprintln!("child {} says hello", os::getpid());
            std::process::exit(0);
        }
        let (_, status) = os::waitpid(pid as i32, 0).expect("waitpid");
        if status == 0 {
            ended += 1;
        }
    }
    let squares: i64 = results
        .into_iter()
        .map(|r| text(r.get().expect("get")).parse::<i64>().unwrap_or(-1))
        .sum();
    println!("forked children ended {ended} of 40, sum of squares {squares}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    println!("parent pid {}", os::getpid());
    match arg(0) {
        "map" => map(),
        "errors" => errors(),
        "kill" => kill(),
        "timeout" => timeout(),
        "timeout_behind_quick" => timeout_behind_quick(),
        "die_holding" => die_holding(),
        "maxtasks" => maxtasks(),
        "terminate" => terminate(),
        "lifecycle" => lifecycle(),
        "leave" => leave(arg(1)),
        "bad" => bad(),
        "limit" => limit(),
        "away" => away(),
        "new_handle_then_wait" => new_handle_then_wait(),
        "fork_while_away" => fork_while_away(),
        other => {
            eprintln!("unknown scenario {:?}", other);
            std::process::exit(2);
        }
    }
}
