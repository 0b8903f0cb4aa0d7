//! Drives procbridge's host functions with arbitrary sequences of calls and
//! arguments against a real instance.
//!
//! Each input is handed (hex) to the `fuzz_calls` guest, which decodes it
//! into raw host calls to every function of the ABI table but `fork` (see
//! `guests/fuzz_calls`). The guest may trap or exit anywhere; the host must
//! not panic, and after every run no child process and no file descriptor
//! may be left behind. Nothing may fork the fuzzer: the guest never calls
//! `fork`, and calls `process_start` and `pool_new` only with arguments the
//! host refuses before forking (the hostile suite in `tests/all/hostile/`
//! covers them through the CLI); it never `kill`s the fuzzer's pid.
//! `tests/all/fuzz_guest.rs` runs the guest the same way, once per function.
//!
//! Build the guest first (`guests/build fuzz_calls`), then
//! `cargo +nightly fuzz run host_calls` from the repository root.
#![no_main]

mod common;

use common::{hex, no_children, open_fds};
use libfuzzer_sys::fuzz_target;
use procbridge::{GuestBuilder, Policy, Program, Runtime, Stdio};
use std::path::Path;
use std::sync::{Arc, OnceLock};

struct Harness {
    runtime: Runtime,
    program: Program,
    policy: Arc<Policy>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guests/fuzz_calls.wasm");
        let runtime = Runtime::with_cache(None).expect("runtime");
        let program = runtime
            .load_file(&wasm)
            .expect("load target/guests/fuzz_calls.wasm (run guests/build fuzz_calls)");
        let limits = common::limits();
        let policy = Policy::builder()
            .allow_run("true")
            .and_then(|p| p.allow_run("cat"))
            .expect("grant true and cat")
            .limits(limits)
            .build();
        let harness = Harness {
            runtime,
            program,
            policy: Arc::new(policy),
        };
        // The first run opens what lives as long as the process (the I/O
        // runtime's descriptors, the process table): not leaks.
        let _ = run(&harness, &[]);
        harness
    })
}

fn run(h: &Harness, data: &[u8]) {
    let mut guest = GuestBuilder::new();
    guest
        .arg("fuzz_calls")
        .arg(hex(data))
        .stdin(Stdio::Null)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .policy(h.policy.clone());
    let state = guest.build().expect("guest state");
    // A trap or an exit code is the guest's business; a panic is a finding.
    let _ = h.runtime.run(&h.program, state);
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let fds = open_fds();
    run(h, data);
    assert!(no_children(), "a child process outlived its guest");
    assert_eq!(open_fds(), fds, "file descriptors leaked");
});
