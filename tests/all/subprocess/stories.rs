//! The seed's `call` and `communicate` stories, through `procbridge run`.

use super::*;

#[test]
fn call_passes_output_through_and_prints_the_exit_code() {
    let call = guest("call");
    let out = run_cli(&["run", "--allow-run", "echo", call.to_str().unwrap()]);
    assert_eq!(
        stdout(&out),
        "$ echo hello from a child process\nhello from a child process\nExit code: 0\n"
    );
    assert!(out.status.success());

    let out = run_cli(&[
        "run",
        "--allow-run",
        "false",
        call.to_str().unwrap(),
        "false",
    ]);
    assert_eq!(stdout(&out), "$ false\nExit code: 1\n");
}

#[test]
fn communicate_feeds_input_and_captures_output() {
    let out = run_cli(&[
        "run",
        "--allow-run",
        "sort",
        guest("communicate").to_str().unwrap(),
    ]);
    assert_eq!(
        stdout(&out),
        "$ sort\nexit\npython.org\nset q=mx\nExit code: 0\n",
        "{}",
        stderr(&out)
    );
    let out = run_cli(&[
        "run",
        "--allow-run",
        "tr",
        guest("communicate").to_str().unwrap(),
        "tr",
        "a-z",
        "A-Z",
    ]);
    assert_eq!(
        stdout(&out),
        "$ tr a-z A-Z\nSET Q=MX\nPYTHON.ORG\nEXIT\nExit code: 0\n"
    );
}

#[test]
fn an_ungranted_command_is_denied_with_one_operator_line() {
    let out = run_cli(&["run", guest("call").to_str().unwrap(), "curl", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("procbridge: denied: run \"curl\": not granted (add --allow-run curl)\n"),
        "{err}"
    );
    assert_eq!(err.matches("procbridge: denied").count(), 1, "{err}");
    assert!(
        err.contains("PermissionError: [Errno 1] run \"curl\": not granted"),
        "the guest sees EPERM: {err}"
    );
}

#[test]
fn the_benchmark_guest_prints_bench_lines() {
    let out = run_cli(&[
        "run",
        "--allow-run",
        "true",
        "--allow-run",
        "cat",
        guest("subprocess_bench").to_str().unwrap(),
        "3",
        "1",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let keys: Vec<String> = stdout(&out)
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "{line}");
            assert_eq!(parts[0], "BENCH");
            let value: f64 = parts[2].parse().unwrap();
            assert!(value > 0.0, "{line}");
            parts[1].to_string()
        })
        .collect();
    assert_eq!(keys, ["run_true_us", "communicate_cat_mb_s"]);
}
