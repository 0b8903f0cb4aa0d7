//! Tells the `procbridge` command which wasmtime it is built with (for
//! `procbridge --version`): the version Cargo.lock resolved, since wasmtime
//! exports no constant of its own.

use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let version = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "wasmtime"))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROCBRIDGE_WASMTIME_VERSION={version}");
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
