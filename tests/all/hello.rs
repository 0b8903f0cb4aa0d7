//! The `hello` guest through the library: args, granted env, pid and ppid.

use crate::support::*;
use procbridge::{GuestBuilder, Origin, Policy, Runtime, Stdio};

fn field(stdout: &str, name: &str) -> u32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} line in {stdout:?}"))
        .parse()
        .unwrap()
}

#[test]
fn prints_args_and_its_real_pids() {
    let out = run_captured(&guest("hello"), &["a", "b"], Policy::default()).unwrap();
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout.lines().next(), Some("a b"));
    // Run in-process through the library: the guest's pid is ours.
    assert_eq!(field(&out.stdout, "pid"), std::process::id());
    assert_eq!(
        field(&out.stdout, "ppid"),
        std::os::unix::process::parent_id()
    );
}

#[test]
fn sees_only_granted_environment() {
    let rt = runtime();
    let program = rt.load_file(guest("hello")).unwrap();
    let out = procbridge::OutputCapture::new(1 << 16);
    let mut g = GuestBuilder::new();
    g.arg("hello")
        .env("GREETING", "hi")
        .stdout(Stdio::Capture(out.clone()));
    assert_eq!(rt.run(&program, g.build().unwrap()).unwrap(), 0);
    let env: Vec<_> = out
        .text()
        .lines()
        .filter(|l| l.starts_with("env "))
        .map(str::to_string)
        .collect();
    assert_eq!(env, ["env GREETING=hi"]);
}

#[test]
fn exit_code_is_the_guests() {
    let rt = runtime();
    let program = rt.load_file(guest("hello")).unwrap();
    let mut g = GuestBuilder::new();
    g.arg("hello").env("HELLO_EXIT", "7").stdout(Stdio::Null);
    assert_eq!(rt.run(&program, g.build().unwrap()).unwrap(), 7);
}

#[test]
fn second_load_comes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::with_cache(Some(test_cache(dir.path()))).unwrap();
    let first = rt.load_file(guest("hello")).unwrap();
    assert_eq!(first.origin(), Origin::Compiled);
    let second = rt.load_file(guest("hello")).unwrap();
    assert_eq!(second.origin(), Origin::Cached);
    // A corrupt entry is compiled again, not trusted. (Replace the file
    // rather than overwrite it: the loaded modules still map the old one.)
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"garbage").unwrap();
    }
    let third = rt.load_file(guest("hello")).unwrap();
    assert_eq!(third.origin(), Origin::Compiled);
    let mut g = GuestBuilder::new();
    g.arg("hello").stdout(Stdio::Null);
    assert_eq!(rt.run(&third, g.build().unwrap()).unwrap(), 0);
}

#[test]
fn an_import_the_host_lacks_or_mistypes_is_named() {
    // Linking checks every import at load; only a failure lists what the
    // host defines, to say which import is wrong.
    let rt = Runtime::with_cache(None).unwrap();
    let missing = rt
        .load_bytes(
            "missing.wat",
            br#"(module (import "procbridge" "no_such_function" (func (result i32)))
                (func (export "_start")))"#,
        )
        .unwrap_err();
    assert!(
        matches!(&missing, procbridge::LoadError::UnknownImport { module, field, .. }
            if module == "procbridge" && field == "no_such_function"),
        "{missing:?}"
    );
    assert_eq!(
        missing.to_string(),
        "missing.wat imports `procbridge::no_such_function`, which this host does not provide"
    );
    let mistyped = rt
        .load_bytes(
            "mistyped.wat",
            br#"(module (import "procbridge" "getpid" (func (param i64) (result i32)))
                (func (export "_start")))"#,
        )
        .unwrap_err();
    assert!(
        matches!(&mistyped, procbridge::LoadError::Link { name, .. } if name == "mistyped.wat"),
        "{mistyped:?}"
    );
    assert!(rt.provides("procbridge", "getpid"));
    assert!(!rt.provides("procbridge", "no_such_function"));
    assert!(rt.bridge_functions().contains(&"popen"));
}
