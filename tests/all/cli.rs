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
        "--no-hints",
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
    // As python3's, -c ends the options: what follows is the script's.
    let out = run_cli(&[
        "python",
        "-c",
        "import sys; print(sys.argv)",
        "-m",
        "x",
        "-v",
    ]);
    assert_eq!(
        stdout(&out),
        "['-c', '-m', 'x', '-v']\n",
        "{}",
        stderr(&out)
    );
    // An unknown flag: 2.
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

#[test]
fn completions_are_printed_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run_cli(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{shell}");
        let script = stdout(&out);
        for word in [
            "procbridge",
            "allow-run",
            "max-memory",
            "policy",
            "completions",
        ] {
            assert!(script.contains(word), "{shell} does not complete {word}");
        }
    }
    // The bash script is one bash accepts.
    let out = run_cli(&["completions", "bash"]);
    let (_dir, path) = temp_file("procbridge.bash", &out.stdout);
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    let out = run_cli(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_names_procbridge_and_its_wasmtime() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.split("\nversion = \"").nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap();
    let out = run_cli(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        format!(
            "procbridge {} (wasmtime {wasmtime})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn allow_run_and_env_take_comma_lists() {
    // The second command of the list is granted.
    let out = procbridge()
        .args(["run", "--allow-run", "true,echo"])
        .arg(guest("call"))
        .args(["echo", "granted"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("granted\nExit code: 0\n"),
        "{}",
        stdout(&out)
    );
    // Each name of the list is resolved, and named alone when it cannot be.
    let out = run_cli(&[
        "run",
        "--allow-run",
        "true,no-such-command-xyz",
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "procbridge: --allow-run no-such-command-xyz: not found in PATH\n"
    );
    // NAME,NAME passes host values; NAME=VALUE keeps its commas.
    let out = procbridge()
        .env("FIRST_VAR", "one")
        .env("SECOND_VAR", "two")
        .args([
            "run",
            "--env",
            "FIRST_VAR,SECOND_VAR",
            "--env",
            "LIST=a,b=c",
        ])
        .arg(guest("hello"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "env FIRST_VAR=one\n",
        "env SECOND_VAR=two\n",
        "env LIST=a,b=c\n",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // A list with a value in it, and an empty name, are refused.
    for (spec, why) in [
        (
            "A,B=1",
            "NAME=VALUE grants one variable; give each NAME=VALUE its own --env",
        ),
        ("FIRST_VAR,,SECOND_VAR", "empty variable name"),
    ] {
        let out = procbridge()
            .env("FIRST_VAR", "one")
            .env("SECOND_VAR", "two")
            .args(["run", "--env", spec])
            .arg(guest("hello"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        assert_eq!(stderr(&out), format!("procbridge: --env {spec}: {why}\n"));
    }
}

#[test]
fn zero_limits_are_usage_errors() {
    let hello = guest("hello");
    for (flag, unit) in [
        ("--max-memory", "MiB"),
        ("--max-total-memory", "MiB"),
        ("--max-processes", "process"),
        ("--max-output", "MiB"),
        ("--max-queued", "MiB"),
        ("--max-audit", "MiB"),
        ("--cpu-time", "second"),
    ] {
        let out = run_cli(&["run", flag, "0", hello.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("procbridge: {flag} 0: give at least 1 {unit}\n")
        );
        assert_eq!(stdout(&out), "", "{flag}: the guest ran");
    }
    // In a policy file too, naming the line.
    let (_dir, path) = temp_file("job.toml", b"[limits]\nprocesses = 4\nmemory_mb = 0\n");
    let out = run_cli(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "procbridge: invalid policy: {}:3: memory_mb must be at least 1 (leave it out for the default)\n",
            path.display()
        )
    );
}

#[test]
fn a_memory_limit_below_the_modules_own_memory_is_a_usage_error_said_once() {
    let hello = guest("hello");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    for (flag, of) in [
        ("--max-memory", "one instance"),
        ("--max-total-memory", "the process tree"),
    ] {
        let out = run_cli(&[
            "run",
            flag,
            "1",
            "--audit",
            audit.to_str().unwrap(),
            hello.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "procbridge: {flag} 1: the module needs 2 MiB of memory to start; \
                 the limit of {of} is 1 MiB\n"
            )
        );
        assert_eq!(stdout(&out), "");
    }
    // Recorded as limit hits all the same.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.matches("\"event\":\"limit\"").count(), 2, "{log}");
}

#[test]
fn errors_are_said_once() {
    let out = run_cli(&["run", "nonexist.wasm"]);
    assert_eq!(out.status.code(), Some(66));
    assert_eq!(
        stderr(&out),
        "procbridge: cannot read nonexist.wasm: No such file or directory (os error 2)\n"
    );
    let out = procbridge()
        .env_remove("PROCBRIDGE_UNSET_VAR")
        .args(["run", "--env", "PROCBRIDGE_UNSET_VAR"])
        .arg(guest("hello"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "procbridge: environment variable PROCBRIDGE_UNSET_VAR: not set in the host\n"
    );
    // A command a policy file cannot grant is named as the file names it.
    let (_dir, path) = temp_file("job.toml", b"[commands.no-such-command-xyz]\n");
    let out = run_cli(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "procbridge: invalid policy: {}:1: command no-such-command-xyz: not found in PATH\n",
            path.display()
        )
    );
}

#[test]
fn an_unset_passed_variable_is_a_warning_in_check_and_an_error_in_run() {
    let (_dir, path) = temp_file("job.toml", b"[env]\npass = [\"PROCBRIDGE_UNSET_VAR\"]\n");
    let file = path.to_str().unwrap();
    let out = procbridge()
        .env_remove("PROCBRIDGE_UNSET_VAR")
        .args(["policy", "check", file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "procbridge: warning: {file}:2: environment variable PROCBRIDGE_UNSET_VAR: not set \
             in the host; `procbridge run` with this policy needs it set\n"
        )
    );
    assert!(stdout(&out).contains("Everything else is denied."));
    let out = procbridge()
        .env_remove("PROCBRIDGE_UNSET_VAR")
        .args(["run", "--policy", file])
        .arg(guest("hello"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "procbridge: {file}:2: environment variable PROCBRIDGE_UNSET_VAR: not set in the host\n"
        )
    );
    // Set, it is granted with its value, and no warning.
    let out = procbridge()
        .env("PROCBRIDGE_UNSET_VAR", "here")
        .args(["policy", "check", file])
        .output()
        .unwrap();
    assert_eq!((out.status.code(), stderr(&out).as_str()), (Some(0), ""));
    assert!(
        stdout(&out).contains("  environment variable PROCBRIDGE_UNSET_VAR=here\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn policy_check_reads_naturally() {
    let (_dir, path) = temp_file("job.toml", b"[limits]\naddress_space_mb = 512\n");
    let out = run_cli(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("\n  open files per command: 1024; address space per command: 512 MiB\n"),
        "{text}"
    );
}

#[test]
fn policy_check_json_says_what_is_granted() {
    let work = tempfile::tempdir().unwrap();
    let (_dir, path) = temp_file(
        "job.toml",
        format!(
            "[commands.sort]\ndeny_flags = [\"--compress-program\"]\n\n\
             [[dirs]]\nhost = \"{}\"\nguest = \"/work\"\nmode = \"read-write\"\n\n\
             [env]\nset = {{ MODE = \"ci\" }}\npass = [\"PROCBRIDGE_UNSET_VAR\"]\n\n\
             [limits]\nprocesses = 8\nwall_time_seconds = 60\n",
            work.path().display()
        )
        .as_bytes(),
    );
    let file = path.to_str().unwrap();
    let out = procbridge()
        .env_remove("PROCBRIDGE_UNSET_VAR")
        .args(["policy", "check", "--json", file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["file"], file);
    let sort = &json["grants"]["commands"][0];
    assert_eq!(sort["name"], "sort");
    assert!(sort["path"].as_str().unwrap().starts_with('/'), "{sort}");
    assert_eq!(
        sort["deny_flags"],
        serde_json::json!(["--compress-program"])
    );
    assert_eq!(sort["subcommands"], serde_json::Value::Null);
    let dir = &json["grants"]["dirs"][0];
    assert_eq!(dir["guest"], "/work");
    assert_eq!(dir["mode"], "read-write");
    assert_eq!(
        dir["host"],
        std::fs::canonicalize(work.path())
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(json["grants"]["env"], serde_json::json!({ "MODE": "ci" }));
    assert_eq!(json["grants"]["network"], false);
    let limits = &json["limits"];
    assert_eq!(limits["processes"], 8);
    assert_eq!(limits["wall_time_seconds"], 60);
    assert_eq!(limits["cpu_seconds"], serde_json::Value::Null);
    assert_eq!(limits["memory_mb"], 1024);
    assert_eq!(limits["open_files"], 1024);
    let layers = json["layers"].as_array().unwrap();
    assert!(
        layers
            .iter()
            .any(|l| l["name"] == "seccomp" && l["available"] == true),
        "{layers:?}"
    );
    let warning = &json["warnings"][0];
    assert_eq!(warning["line"], 11);
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .starts_with("environment variable PROCBRIDGE_UNSET_VAR: not set in the host"),
        "{warning}"
    );
    // An invalid policy: the line at fault, for machines too.
    let (_dir, path) = temp_file("bad.toml", b"[commands.sort]\n\n[limitz]\n");
    let out = run_cli(&["policy", "check", "--json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["error"]["line"], 3);
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limitz"),
        "{json}"
    );
}

#[test]
fn run_and_python_help_list_every_exit_code() {
    for command in ["run", "python"] {
        let out = run_cli(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0));
        let help = stdout(&out);
        let codes: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Exit codes:")
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for code in ["N", "2", "65", "66", "67", "68", "70", "124", "134", "152"] {
            assert!(
                codes.contains(&code),
                "{command} --help does not list {code}:\n{help}"
            );
        }
    }
}

/// `python` is looked for as the subcommand only: a module's argument
/// `python` (or a module file named so) gets no stray `--`.
#[test]
fn a_module_argument_named_python_is_passed_as_given() {
    let hello = guest("hello");
    let out = run_cli(&["run", hello.to_str().unwrap(), "python", "-c", "foo", "-v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().next(),
        Some("python -c foo -v"),
        "{}",
        stdout(&out)
    );
}

/// As python3 reads them: `-uc CODE` and `-cCODE` end the option list.
#[test]
fn python_short_clusters_end_the_option_list() {
    for args in [
        &["python", "-uc", "import sys; print(sys.argv)", "-v"][..],
        &["python", "-cimport sys; print(sys.argv)", "-v"],
        &["-q", "python", "-uc", "import sys; print(sys.argv)", "-v"],
    ] {
        let out = run_cli(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "['-c', '-v']\n", "{args:?}: {}", stderr(&out));
    }
}

/// `run --help` and `cache --help` say the same of the cache flags (one
/// definition).
#[test]
fn run_and_cache_help_describe_the_cache_flags_alike() {
    let flag_help = |args: &[&str], flag: &str| {
        let help = stdout(&run_cli(args));
        let start = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{args:?} --help: no {flag}:\n{help}"));
        let rest = &help[start..];
        let end = rest.find("\n\n").unwrap_or(rest.len());
        rest[..end].to_string()
    };
    for flag in ["--cache-max-mb", "--cache-dir"] {
        let run = flag_help(&["run", "--help"], flag);
        assert_eq!(run, flag_help(&["cache", "--help"], flag));
        assert_eq!(run, flag_help(&["compile", "--help"], flag));
    }
    assert!(flag_help(&["run", "--help"], "--cache-max-mb").contains("PROCBRIDGE_CACHE_MAX_MB"));
}
