//! The `procbridge` command: output, exit codes, and one test per bad input.

use crate::support::*;

#[test]
fn run_prints_args_pid_and_parent_pid() {
    let hello = guest("hello");
    let child = procbridge()
        .args(["run", hello.to_str().unwrap(), "a", "b"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "a b");
    assert!(lines.contains(&format!("pid {pid}").as_str()), "{text}");
    assert!(
        lines.contains(&format!("ppid {}", std::process::id()).as_str()),
        "{text}"
    );
}

#[test]
fn env_flag_grants_variables() {
    let hello = guest("hello");
    let out = procbridge()
        .env("FROM_HOST", "host-value")
        .env("SECRET", "not-granted")
        .args(["run", "--env", "GREETING=hi", "--env", "FROM_HOST"])
        .arg(&hello)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("env GREETING=hi\n"), "{text}");
    assert!(text.contains("env FROM_HOST=host-value\n"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}

#[test]
fn exit_code_passes_through() {
    let out = run_cli(&[
        "run",
        "--env",
        "HELLO_EXIT=42",
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn missing_file_exits_66_with_one_line() {
    let out = run_cli(&["run", "/nonexistent/job.wasm"]);
    assert_eq!(out.status.code(), Some(66));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/job.wasm"), "{err}");
}

#[test]
fn not_a_wasm_file_exits_65() {
    let (_dir, path) = temp_file("job.wasm", b"#!/bin/sh\necho not wasm\n");
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65));
    let err = stderr(&out);
    assert!(err.contains("not a valid WebAssembly module"), "{err}");
    let (_dir, path) = temp_file("bin.wasm", &[0xff, 0, 1, 2, 3]);
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let (_dir, path) = temp_file("trunc.wasm", b"\0asm\x01\0\0\0\x01\xff");
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
}

#[test]
fn unknown_host_function_is_named_and_exits_67() {
    let (_dir, path) = temp_file(
        "bad.wat",
        br#"(module
              (import "procbridge" "launch_missiles" (func))
              (memory (export "memory") 1)
              (func (export "_start")))"#,
    );
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(67));
    let err = stderr(&out);
    assert!(err.contains("`procbridge::launch_missiles`"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn wrong_signature_of_a_host_function_exits_67() {
    let (_dir, path) = temp_file(
        "sig.wat",
        br#"(module
              (import "procbridge" "getpid" (func (param i64) (result i64)))
              (memory (export "memory") 1)
              (func (export "_start")))"#,
    );
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(67), "{}", stderr(&out));
    assert!(stderr(&out).contains("getpid"), "{}", stderr(&out));
}

#[test]
fn missing_start_exits_68() {
    let (_dir, path) = temp_file(
        "lib.wat",
        br#"(module (memory (export "memory") 1) (func (export "work")))"#,
    );
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(68));
    assert!(stderr(&out).contains("no `_start`"), "{}", stderr(&out));
}

#[test]
fn trap_prints_wasm_backtrace_and_exits_134() {
    let (_dir, path) = temp_file(
        "trap.wat",
        br#"(module
              (memory (export "memory") 1)
              (func $deep_function unreachable)
              (func (export "_start") call $deep_function))"#,
    );
    let out = run_cli(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(134));
    let err = stderr(&out);
    assert!(err.contains("wasm backtrace"), "{err}");
    assert!(err.contains("deep_function"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = run_cli(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_cli(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_cli(&[
        "run",
        "--allow-run",
        "no-such-command-xyz",
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no-such-command-xyz: not found in PATH"),
        "{}",
        stderr(&out)
    );
    let out = run_cli(&["run", "--env", "=x", guest("hello").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_cli(&[
        "run",
        "--dir",
        "/nonexistent-dir",
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent-dir"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_explains_every_flag() {
    let out = run_cli(&["run", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in [
        "--dir",
        "--dir-ro",
        "--env",
        "--allow-run",
        "--cache-dir",
        "--no-cache",
        "--cache-max-mb",
        "--policy",
        "--network",
        "--max-processes",
        "--max-memory",
        "--max-total-memory",
        "--max-output",
        "--max-queued",
        "--wall-time",
        "--cpu-time",
        "--audit",
        "--max-audit",
        "MODULE",
        "ARGS",
        "134",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn python_help_and_usage_errors() {
    let out = run_cli(&["python", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in [
        "-c <CODE>",
        "-m <MODULE>",
        "-u",
        "SCRIPT",
        "--allow-run",
        "--dir",
        "--wall-time",
        "--audit",
        "install-python",
    ] {
        assert!(
            help.contains(flag),
            "python --help does not mention {flag}:\n{help}"
        );
    }
    // A script that does not exist: 2, naming it, as python3.
    let out = run_cli(&["python", "/no/such/script.py"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/no/such/script.py"),
        "{}",
        stderr(&out)
    );
    // -c and -m together, an unknown flag: 2.
    assert_eq!(
        run_cli(&["python", "-c", "1", "-m", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(run_cli(&["python", "--frobnicate"]).status.code(), Some(2));
    // No interpreter: 66, saying how to install it.
    let out = procbridge()
        .args(["python", "-c", "print(1)"])
        .env("PROCBRIDGE_PYTHON", "/no/such/python.wasm")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(66), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("guests/install-python"),
        "{}",
        stderr(&out)
    );
}
