//! The `procbridge` binary's code layout: the host functions fork children,
//! spawned children and start-up run lie side by side
//! (`host/link/symbol-order.txt`, which `host/build.rs` hands to the linker),
//! so a child faults in a few 64 KiB windows of code instead of one per
//! function. Without the layout, the first hundred of them spread over about
//! 18 MiB of code; with it, over about 70 KiB. A build whose names the file
//! does not have (another toolchain) is not checked.

use object::{Object, ObjectSymbol};
use std::collections::HashMap;

/// How many of the file's first names are checked.
const CHECKED: usize = 100;

/// The most those functions may spread over.
const MAX_SPAN: u64 = 512 * 1024;

#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn the_functions_children_run_lie_together_in_the_binary() {
    let order = include_str!("../../host/link/symbol-order.txt");
    let names: Vec<&str> = order
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .take(CHECKED)
        .collect();
    assert_eq!(names.len(), CHECKED, "symbol-order.txt is too short");

    let binary = std::fs::read(env!("CARGO_BIN_EXE_procbridge")).expect("read the binary");
    let file = object::File::parse(&*binary).expect("parse the binary");
    let addresses: HashMap<&str, u64> = file
        .symbols()
        .filter_map(|symbol| Some((symbol.name().ok()?, symbol.address())))
        .collect();
    let found: Vec<u64> = names
        .iter()
        .filter_map(|name| addresses.get(name).copied())
        .collect();

    // Names of another toolchain or dependency version do not match, and
    // the linker falls back to its own layout: nothing to check here until
    // the file is made again (host/link/generate-symbol-order).
    if found.len() * 2 < CHECKED {
        eprintln!(
            "only {} of the first {CHECKED} names of host/link/symbol-order.txt are in the \
             binary (another toolchain?): run host/link/generate-symbol-order",
            found.len()
        );
        return;
    }
    let span = found.iter().max().unwrap() - found.iter().min().unwrap();
    assert!(
        span <= MAX_SPAN,
        "the first {CHECKED} functions of host/link/symbol-order.txt spread over {} KiB \
         (at most {} KiB when the linker is given the file)",
        span / 1024,
        MAX_SPAN / 1024
    );
}
