//! Native baseline for the memory scenario: what a child process costs.
//!
//! The harness measures; this program holds still. It prints `PSS base 0`
//! and waits for a line on stdin while the harness sums the proportional
//! set size of its process tree; then it forks N children, each blocked
//! reading a pipe, prints `PSS fork N` and waits again; then it starts N
//! fresh copies of itself (`std::process::Command`, the native "spawn"),
//! each blocked reading its stdin, and prints `PSS spawn N`. N is 64 (8
//! with `--quick`).

use procbridge_bench_native::{fork_child, wait_child, Scale};
use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};

/// The argument a spawned copy is started with.
const CHILD: &str = "--wait-on-stdin";

/// Tells the harness what to measure, and waits until it has.
fn pause(label: &str, children: usize) {
    println!("PSS {label} {children}");
    std::io::stdout().flush().expect("flush");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .expect("read stdin");
}

fn main() {
    if std::env::args().any(|a| a == CHILD) {
        // A spawned copy: waits until its stdin closes.
        let mut rest = Vec::new();
        std::io::stdin().read_to_end(&mut rest).expect("read stdin");
        return;
    }
    let children = Scale::from_args().pick(8, 64);
    pause("base", 0);

    let (reader, mut writer) = std::io::pipe().expect("pipe");
    let forked: Vec<libc::pid_t> = (0..children)
        .map(|_| {
            let reader = reader.try_clone().expect("dup");
            fork_child(move || {
                let mut byte = [0_u8; 1];
                (&reader).read_exact(&mut byte).expect("read");
            })
        })
        .collect();
    pause("fork", children);
    writer.write_all(&vec![b'x'; children]).expect("release");
    forked.into_iter().for_each(wait_child);

    let me = std::env::current_exe().expect("current_exe");
    let mut spawned: Vec<_> = (0..children)
        .map(|_| {
            Command::new(&me)
                .arg(CHILD)
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    pause("spawn", children);
    for child in &mut spawned {
        drop(child.stdin.take());
        assert!(child.wait().expect("wait").success(), "a child failed");
    }
}
