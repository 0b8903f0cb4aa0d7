//! Native baseline for the subprocess scenario, with `std::process::Command`:
//!
//! - `run_true_us`: spawn `true` and wait for it (like `subprocess.run(["true"])`);
//! - `communicate_cat_mb_s`: feed 200 MB through `cat` and read it all back
//!   (like `Popen.communicate`).

use procbridge_bench_native::{mb_per_s, median_of, micros, report, Scale};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn main() {
    let scale = Scale::from_args();

    let run_true = median_of(scale.pick(20, 200), || {
        let status = Command::new("true").status().expect("spawn true");
        assert!(status.success(), "true failed: {status}");
    });
    report("run_true_us", micros(run_true));

    let size = scale.pick(20, 200) * 1_000_000;
    let input = vec![b'x'; size];
    let communicate = median_of(scale.pick(1, 3), || {
        let output = communicate_through_cat(&input);
        assert_eq!(output.len(), input.len(), "cat lost data");
    });
    report("communicate_cat_mb_s", mb_per_s(size, communicate));
}

/// Writes `input` to `cat` from a thread while reading its output, as
/// `communicate()` does, and returns what came back.
fn communicate_through_cat(input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn cat");
    let mut stdin = child.stdin.take().expect("cat stdin");
    let mut stdout = child.stdout.take().expect("cat stdout");
    let mut output = Vec::with_capacity(input.len());
    std::thread::scope(|scope| {
        scope.spawn(move || stdin.write_all(input).expect("write to cat"));
        stdout.read_to_end(&mut output).expect("read from cat");
    });
    let status = child.wait().expect("wait for cat");
    assert!(status.success(), "cat failed: {status}");
    output
}
