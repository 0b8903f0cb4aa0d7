//! docs/abi.md against the ABI table (`procbridge_abi::functions!`): every
//! function's signature, the errno table and the constants, exactly.

use crate::support::*;
use procbridge_abi::Errno;
use std::collections::BTreeMap;

/// How docs/abi.md writes a parameter: its name, `: i64` for a timeout.
macro_rules! doc_param {
    ($param:ident, timeout) => {
        concat!(stringify!($param), ": i64")
    };
    ($param:ident, $kind:ident) => {
        stringify!($param)
    };
}

/// Every function of the table as docs/abi.md writes it:
/// `NAME(PARAM, ...) -> i32`.
macro_rules! doc_signatures {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
        vec![$($(
            format!(
                "{}({}) -> i32",
                stringify!($name),
                <[&str]>::join(&[$(doc_param!($param, $kind)),*], ", ")
            ),
        )*)*]
    };
}

/// Every constant of the table, by name.
macro_rules! constants_by_name {
    ($($group:ident { $($name:ident = $value:expr;)* })*) => {{
        let mut map = BTreeMap::new();
        $($(map.insert(stringify!($name).to_string(), i64::from($value));)*)*
        map
    }};
}

fn doc() -> String {
    std::fs::read_to_string(root().join("docs/abi.md")).unwrap()
}

/// The first cell of every table row starting with a backquoted call.
fn documented_signatures(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|cell| cell.contains('(') && cell.ends_with("-> i32"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_function_is_documented_with_the_tables_signature() {
    let mut want = procbridge_abi::functions!(doc_signatures);
    let mut have = documented_signatures(&doc());
    want.sort();
    have.sort();
    assert_eq!(have, want, "docs/abi.md's signatures differ from the table");
}

#[test]
fn the_host_registers_exactly_the_table() {
    let mut registered: Vec<String> = runtime()
        .bridge_functions()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut table: Vec<String> = procbridge_abi::functions!(doc_signatures)
        .into_iter()
        .map(|sig| sig.split('(').next().unwrap().to_string())
        .collect();
    registered.sort();
    table.sort();
    assert_eq!(registered, table);
    assert_eq!(table.len(), procbridge_abi::FUNCTION_COUNT);
}

#[test]
fn the_errno_table_is_the_crates() {
    let doc = doc();
    let section = doc
        .split("## Error codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an Error codes section");
    let documented: Vec<(i32, String)> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse().ok()?;
            Some((code, cells.get(2)?.trim_matches('`').to_string()))
        })
        .collect();
    let crate_codes: Vec<(i32, String)> = Errno::ALL
        .iter()
        .map(|e| (*e as i32, e.name().to_string()))
        .collect();
    assert_eq!(documented, crate_codes);
}

#[test]
fn the_constants_table_is_the_crates() {
    let doc = doc();
    let section = doc
        .split("## Constants")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Constants section");
    let documented: BTreeMap<String, i64> = section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let value = cells.get(2)?.trim_matches('`').parse().ok()?;
            Some((name.to_string(), value))
        })
        .collect();
    let table = procbridge_abi::constants!(constants_by_name);
    assert_eq!(documented, table);
}
