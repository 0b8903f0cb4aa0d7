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
//!
//! The pool and queue phases of the soak plan need
//! `multiprocessing::pool` / `multiprocessing::queue` in the SDK; the
//! driver skips them while the SDK has neither.

use procbridge_sdk::multiprocessing::{Process, StartMethod};
use procbridge_sdk::{os, subprocess, task};
use std::io::BufRead;
use std::time::Instant;

task!(noop, |_: &[u8]| ());

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
