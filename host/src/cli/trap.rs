//! How a guest's trap is reported: one short line for an ordinary panic or
//! abort (the guest has printed its own message), the whole wasm backtrace
//! with `-v`.

use procbridge::RunError;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `-v`: traps are reported with their wasm backtrace.
static BACKTRACES: AtomicBool = AtomicBool::new(false);

/// Reports traps with their whole wasm backtrace from now on.
pub(crate) fn show_backtraces() {
    BACKTRACES.store(true, Ordering::Relaxed);
}

fn backtraces_wanted() -> bool {
    BACKTRACES.load(Ordering::Relaxed)
}

/// The line to print for a run that ended in `err`, when it is a trap to
/// report briefly; `None` for any other error (printed as it is).
pub(crate) fn brief(err: &anyhow::Error) -> Option<String> {
    let Some(RunError::Trap(trap)) = err.downcast_ref::<RunError>() else {
        return None;
    };
    if backtraces_wanted() {
        return None;
    }
    let code = trap.downcast_ref::<wasmtime::Trap>();
    let frames: Vec<String> = trap
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .filter_map(|f| f.func_name().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let what = code.map_or_else(|| trap.root_cause().to_string(), ToString::to_string);
    let note = "run with -v for the wasm backtrace";
    if code == Some(&wasmtime::Trap::UnreachableCodeReached) && aborted(&frames) {
        return Some(format!(
            "the guest panicked or aborted ({what}); its message is above; {note}"
        ));
    }
    let place = frames
        .first()
        .map(|f| format!(" in {f}"))
        .unwrap_or_default();
    Some(format!("guest trapped{place}: {what}; {note}"))
}

/// Whether a backtrace is that of a Rust panic or a C `abort`.
fn aborted(frames: &[String]) -> bool {
    frames.iter().any(|f| {
        f.contains("rust_panic")
            || f.contains("__rust_start_panic")
            || f.contains("panic_abort")
            || f == "abort"
            || f.starts_with("abort")
    })
}
