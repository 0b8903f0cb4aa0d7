//! A plugin: task exports an embedder calls with bytes, many times, on one
//! instance (`Runtime::instantiate`, `Plugin::call`).
//!
//! Built as a `cdylib` with `plugin!()`, which makes it a WASI *reactor*:
//! its start-up code (`_initialize`) runs once when the plugin host
//! instantiates it, and its calls take the fast path (no host calls). (A
//! program built as a binary works too, but wasm-ld wraps each of its
//! exports in the C start-up and shut-down code, run again on every call.)

use procbridge_sdk::multiprocessing::{Pool, Process};
use procbridge_sdk::subprocess::Popen;
use procbridge_sdk::{os, task};
use std::cell::Cell;
use std::time::Duration;

procbridge_sdk::plugin!();

thread_local! {
    static CALLS: Cell<u64> = Cell::new(0);
}

// How many vowels the input has.
task!(count_vowels, |text: &str| {
    let vowels = text.chars().filter(|c| "aeiouAEIOU".contains(*c)).count();
    vowels.to_string()
});

// The input, unchanged (the cost of a call): handed back where it is, with
// no copy.
task!(echo, |bytes: &[u8]| -> &[u8] { bytes });

// The first word of the input, borrowed from it (`""` for none).
task!(first_word, |text: &str| -> &str {
    text.split_whitespace().next().unwrap_or("")
});

// A constant answer: a `&'static str` is handed back where it is too.
task!(greeting, |_: &[u8]| "hello from the plugin");

// How many times it was called on this instance: state kept between calls.
task!(counter, |_: &[u8]| {
    CALLS.with(|c| {
        c.set(c.get() + 1);
        c.get().to_string()
    })
});

// Never returns: only a deadline (or fuel) stops it.
task!(spin, |_: &[u8]| {
    let stop = false;
    let mut n: u64 = 0;
    // A read the compiler must make each time round.
    while !unsafe { std::ptr::read_volatile(&stop) } {
        n = n.wrapping_add(1);
    }
    n.to_string()
});

task!(fail, |why: &str| -> Result<(), String> {
    Err(format!("refused: {}", why))
});

task!(trap, |_: &[u8]| { core::arch::wasm32::unreachable() });

// Panics with the caller's text (it may hold newlines).
task!(panics, |why: &str| {
    panic!("{}", why);
});

task!(exit_now, |_: &[u8]| {
    std::process::exit(3);
});

// Allocates and touches `n` MiB.
task!(grow, |mib: &str| {
    let n: usize = mib.parse().unwrap_or(1);
    let v = vec![1u8; n << 20];
    v.iter().map(|&b| b as usize).sum::<usize>().to_string()
});

// Forks: the child exits 5 through its own return path; the parent waits
// and reports the child's pid and status.
task!(forks, |_: &[u8]| {
    match os::fork().expect("fork") {
        0 => {
            // The child returns from the export; the host ends it there.
            "child".to_string()
        }
        pid => {
            let (reaped, status) = os::waitpid(pid as i32, 0).expect("waitpid");
            format!(
                "parent {} child {} reaped {} exited {}",
                os::getpid(),
                pid,
                reaped,
                os::wexitstatus(status)
            )
        }
    }
});

task!(square, |n: &str| {
    let n: i64 = n.parse().unwrap_or(0);
    (n * n).to_string()
});

// Squares of 0..n through a Pool of 2 started and ended inside the call.
task!(pool_squares, |n: &str| {
    let n: i64 = n.parse().unwrap_or(0);
    let pool = Pool::new(2).expect("pool");
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let out = pool.map("square", &items).expect("map");
    out.into_iter()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect::<Vec<_>>()
        .join(",")
});

task!(sleep_ms, |ms: &str| {
    std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(1000)));
});

// Starts a Process that sleeps a minute and leaves it running; its pid.
task!(leave_sleeper, |_: &[u8]| {
    let mut p = Process::new("sleep_ms").args("60000");
    p.start().expect("start");
    let pid = p.pid().unwrap_or(0);
    std::mem::forget(p);
    pid.to_string()
});

// A line on stdout and one on stderr, from this process and a fork child.
task!(speak, |_: &[u8]| {
    println!("out from {}", os::getpid());
    eprintln!("err from {}", os::getpid());
    if let Ok(0) = os::fork() {
        println!("out from child {}", os::getpid());
        return;
    }
    let _ = os::wait();
});

// Runs `sh -c 'echo out: TEXT; echo err: TEXT >&2'` with the plugin's own
// stdout and stderr; the command's pid.
task!(command_speaks, |text: &str| {
    let script = format!("echo out: {}; echo err: {} >&2", text, text);
    let mut child = Popen::builder(["sh", "-c", script.as_str()])
        .spawn()
        .expect("spawn sh");
    child.wait(None).expect("wait");
    child.pid().to_string()
});

/// Not a task (two parameters): a plugin host refuses to call it as one.
#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a + b
}
