//! The floor under procbridge's fork figures: a plain wasmtime host (a
//! default `Config`, no procbridge) holding an instance forks; the child
//! calls a trivial export of the instance and exits, the parent waits for
//! it. `bench/run`'s process scenario times it next to `Process` start+join
//! (fork) and `os.fork()` + `waitpid`, so what procbridge adds is told
//! apart from what forking a process of wasmtime's size costs.
//!
//! - `start_join_fork_us`: fork, the child calls `noop` and `_exit(0)`s,
//!   `waitpid`;
//! - `os_fork_wait_us`: fork, the child `_exit(0)`s at once, `waitpid`.
//!
//! Each figure is the median of 200 runs (`--quick`: 20) after one
//! warm-up, printed as `BENCH <key> <value>` lines:
//!
//! ```text
//! cargo run --release --example wasmtime_fork [-- --quick]
//! ```

use std::time::Instant;
use wasmtime::{Engine, Instance, Module, Store, TypedFunc};

/// A module with a memory (touched, as a guest's would be) and a `noop`.
const WAT: &str = r#"
(module
  (memory (export "memory") 17)
  (data (i32.const 1048576) "procbridge")
  (func (export "noop") (i32.store (i32.const 1048592) (i32.const 42))))
"#;

fn main() -> wasmtime::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 20 } else { 200 };
    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[])?;
    let noop: TypedFunc<(), ()> = instance.get_typed_func(&mut store, "noop")?;
    noop.call(&mut store, ())?;

    let start_join = median_us(runs, || {
        fork_and_wait(|| {
            let code = if noop.call(&mut store, ()).is_ok() {
                0
            } else {
                1
            };
            // SAFETY: ends the forked child without running the parent's
            // exit handlers or destructors.
            unsafe { libc::_exit(code) }
        })
    });
    println!("BENCH start_join_fork_us {start_join:.1}");
    let bare = median_us(runs, || {
        // SAFETY: as above.
        fork_and_wait(|| unsafe { libc::_exit(0) })
    });
    println!("BENCH os_fork_wait_us {bare:.1}");
    Ok(())
}

/// Forks, runs `child` in the child (it must not return), waits for it and
/// checks that it exited with 0.
fn fork_and_wait(child: impl FnOnce()) {
    // SAFETY: this program has one thread, so the child may run any code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        child();
        // SAFETY: as above, should `child` return.
        unsafe { libc::_exit(2) }
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is a valid out-pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: {status}"
    );
}

/// The median microseconds of `f` over `runs` calls, after a warm-up.
fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
