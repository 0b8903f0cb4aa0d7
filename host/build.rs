//! Tells the `procbridge` command which wasmtime it is built with (for
//! `procbridge --version`): the version Cargo.lock resolved, since wasmtime
//! exports no constant of its own.
//!
//! And lays out the command's code: with Rust's own linker (rust-lld, the
//! default for x86_64 Linux), the functions of `link/symbol-order.txt` are
//! placed first and side by side, so that fork children and start-up fault
//! in fewer pages of code (see `link/generate-symbol-order`). With another
//! linker (`RUSTC_LINKER`; `-C linker`, `-C linker-features` or
//! `-fuse-ld` in the flags) the layout is the linker's own.

use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let version = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "wasmtime"))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROCBRIDGE_WASMTIME_VERSION={version}");
    order_functions();
}

/// Passes `link/symbol-order.txt` to rust-lld for the `procbridge` binary,
/// when that is the linker.
fn order_functions() {
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = target == "x86_64-unknown-linux-gnu"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !flags
            .split('\x1f')
            .any(|flag| flag.contains("linker") || flag.contains("fuse-ld"));
    if own_linker && order.exists() {
        let file = order.display();
        println!("cargo:rustc-link-arg-bin=procbridge=-Wl,--symbol-ordering-file={file}");
        // Names of another toolchain's build are skipped, not reported.
        println!("cargo:rustc-link-arg-bin=procbridge=-Wl,--no-warn-symbol-ordering");
    }
}

/// The version of package `name` in a Cargo.lock (the first one, should it
/// be locked twice).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_string());
        }
    }
    None
}
