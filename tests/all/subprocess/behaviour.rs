//! What a guest observes: output, return codes, signals, timeouts, pipes,
//! and errors for hostile arguments.

use super::*;
use procbridge::Limits;
use std::time::Instant;

#[test]
fn run_captures_output_and_return_code() {
    let p = probe(&["run", "echo", "hi", "there"], 0);
    assert_eq!(p.line("returncode"), "0");
    assert_eq!(p.line("stdout"), "\"hi there\\n\"");
    assert_eq!(p.line("stderr"), "\"\"");
    let p = probe(&["run", "sh", "-c", "echo oops >&2; exit 7"], 0);
    assert_eq!(p.line("returncode"), "7");
    assert_eq!(p.line("stderr"), "\"oops\\n\"");
}

#[test]
fn check_output_and_check_call_raise_called_process_error() {
    let p = probe(&["check_output", "echo", "fine"], 0);
    assert_eq!(p.line("output"), "\"fine\\n\"");
    let p = probe(&["check_output", "sh", "-c", "echo partial; exit 3"], 1);
    assert_eq!(
        p.line("CalledProcessError"),
        "returncode=3 output=\"partial\\n\""
    );
    probe(&["check_call", "true"], 0);
    let p = probe(&["check_call", "false"], 1);
    assert_eq!(p.line("CalledProcessError"), "returncode=1 output=\"\"");
}

#[test]
fn kill_gives_minus_nine_and_terminate_minus_fifteen() {
    for (how, code) in [("kill", "-9"), ("terminate", "-15"), ("10", "-10")] {
        let p = probe(&["signal", how], 0);
        assert_eq!(p.line("returncode"), code, "{how}");
        let pid = p.pids()[0];
        assert!(pid > 0 && pid as u32 != std::process::id());
        assert!(!alive(pid));
        assert_eq!(
            p.stdout
                .lines()
                .filter(|l| l.starts_with("poll"))
                .collect::<Vec<_>>(),
            ["poll None", &format!("poll Some({code})")]
        );
    }
}

#[test]
fn wait_timeout_leaves_the_child_running() {
    let p = probe(&["wait_timeout"], 0);
    assert_eq!(p.line("wait"), "TimeoutExpired");
    assert_eq!(p.line("poll"), "None");
    assert_eq!(p.line("returncode"), "-9");
}

#[test]
fn run_timeout_kills_and_reports_partial_output() {
    let start = Instant::now();
    let p = probe(&["timeout", "300", "sh", "-c", "echo partial; sleep 30"], 0);
    assert!(start.elapsed().as_secs() < 10);
    let elapsed: u64 = p.line("elapsed_ms").parse().unwrap();
    assert!((300..3000).contains(&elapsed), "{elapsed}");
    assert_eq!(
        p.line("TimeoutExpired"),
        "output=\"partial\\n\" stderr=\"\""
    );
}

#[test]
fn call_timeout_kills_the_command_and_its_group() {
    let marker = Marker("31.4159");
    let start = Instant::now();
    let p = probe(
        &[
            "call",
            "300",
            "sh",
            "-c",
            "sleep 31.4159 & exec sleep 31.4159",
        ],
        0,
    );
    assert!(start.elapsed().as_secs() < 10);
    let elapsed: u64 = p.line("elapsed_ms").parse().unwrap();
    assert!((300..3000).contains(&elapsed), "{elapsed}");
    assert_eq!(p.line("TimeoutExpired"), "output=\"\" stderr=\"\"");
    assert_eq!(marker.survivors(), Vec::<i32>::new());
    // Without a timeout, the return code.
    let p = probe(&["call", "5000", "sh", "-c", "exit 3"], 0);
    assert_eq!(p.line("returncode"), "3");
}

#[test]
fn timeout_fires_when_a_grandchild_keeps_the_pipe_open() {
    // The child exits at once; the grandchild (in its process group) holds
    // stdout open. Python's communicate would hang here.
    let grandchild = Marker("30.104");
    let p = probe(
        &[
            "timeout",
            "400",
            "sh",
            "-c",
            "sleep 30.104 & echo $!; exit 0",
        ],
        0,
    );
    let elapsed: u64 = p.line("elapsed_ms").parse().unwrap();
    assert!((400..5000).contains(&elapsed), "{elapsed}");
    let expired = p.line("TimeoutExpired");
    assert!(expired.starts_with("output=\""), "{expired}");
    // Killed with the process group (while the guest still runs).
    assert_eq!(
        grandchild.survivors(),
        Vec::<i32>::new(),
        "the grandchild survived"
    );
}

#[test]
fn a_pipeline_runs_without_the_guest_copying() {
    let p = probe(&["pipeline"], 0);
    assert_eq!(p.line("wc"), "100000");
    assert_eq!(p.line("returncodes"), "0 0 0");
    assert_eq!(p.line("moved pipe"), "EINVAL");
}

#[test]
fn stderr_can_join_stdout() {
    let p = probe(&["stderr_to_stdout"], 0);
    assert_eq!(p.line("stdout"), "\"out\\nerr\\n\"");
    assert_eq!(p.line("stderr"), "\"\"");
    assert_eq!(p.line("returncode"), "Some(3)");
}

#[test]
fn streaming_writes_and_line_reads() {
    let p = probe(&["stream"], 0);
    let echoes: Vec<&str> = p
        .stdout
        .lines()
        .filter(|l| l.starts_with("echo "))
        .collect();
    assert_eq!(
        echoes,
        ["echo \"one\\n\"", "echo \"two\\n\"", "echo \"three\\n\""]
    );
    let reads: Vec<&str> = p
        .stdout
        .lines()
        .filter(|l| l.starts_with("read "))
        .collect();
    assert_eq!(reads, ["read \"tail\"", "read \" without newline and \""]);
    assert_eq!(p.line("last"), "\"more\"");
    assert_eq!(p.line("eof"), "\"\"");
    assert_eq!(p.line("returncode"), "0");
    assert_eq!(p.line("write after close"), "EINVAL");
}

#[test]
fn a_hundred_megabytes_pass_through_cat_intact() {
    let p = probe(&["huge", "100"], 0);
    assert_eq!(p.line("bytes"), (100u64 << 20).to_string());
    assert_eq!(p.line("intact"), "true");
    assert_eq!(p.line("returncode"), "Some(0)");
}

#[test]
fn output_over_the_limit_is_an_error_not_a_truncation() {
    let mut builder = Policy::builder();
    for cmd in ["seq", "echo"] {
        builder = builder.allow_run(cmd).unwrap();
    }
    let policy = builder
        .limits(Limits {
            max_output_bytes: 1000,
            ..Limits::default()
        })
        .build();
    let p = probe_with(policy.clone(), &["run", "seq", "1", "100000"]);
    assert_eq!(p.result.as_ref().ok(), Some(&1), "{}", p.stdout);
    let err = p.line("error ENOBUFS");
    assert!(err.contains("over the limit of 1000 bytes"), "{err}");
    // Exactly at the limit is fine.
    let exactly = "x".repeat(999);
    let p = probe_with(policy, &["run", "echo", &exactly]);
    assert_eq!(p.line("returncode"), "0");
}

#[test]
fn hostile_arguments_get_clear_errors() {
    let p = probe(&["bad_inputs"], 0);
    let expected = [
        ("argv_out_of_bounds", "EFAULT"),
        ("env_out_of_bounds", "EFAULT"),
        ("env_malformed", "EINVAL"),
        ("env_loader", "EPERM"),
        ("argv_empty", "EINVAL"),
        ("argv_truncated", "EINVAL"),
        ("stdio_invalid", "EINVAL"),
        ("stdin_stdout_marker", "EINVAL"),
        ("stdio_forged_handle", "EBADF"),
        ("popen", "1"),
        ("wait_negative_timeout", "EINVAL"),
        ("wait_code_out_of_bounds", "EFAULT"),
        ("communicate_flags", "EINVAL"),
        ("communicate_input_out_of_bounds", "EFAULT"),
        ("read_bad_stream", "EINVAL"),
        ("read_out_of_bounds", "EFAULT"),
        ("signal_zero", "EINVAL"),
        ("signal_huge", "EINVAL"),
        ("wait", "0"),
        ("close", "0"),
        ("closed_pid", "EBADF"),
        ("closed_wait", "EBADF"),
        ("closed_close", "EBADF"),
        ("closed_as_stdin", "EBADF"),
        ("forged_0", "EBADF"),
        ("forged_-1", "EBADF"),
        ("forged_12345", "EBADF"),
        ("forged_2147483647", "EBADF"),
        ("not_granted", "EPERM"),
    ];
    let got: Vec<(String, String)> = p
        .stdout
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_program_that_cannot_be_executed_is_an_error_and_is_reaped() {
    let (_dir, junk) = temp_file("junk", b"not a program\n");
    std::fs::set_permissions(&junk, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let policy = Policy::builder()
        .allow_run(junk.to_str().unwrap())
        .unwrap()
        .build();
    let p = probe_with(policy, &["run", junk.to_str().unwrap()]);
    assert_eq!(p.result.as_ref().ok(), Some(&1));
    let err = p.line("error EIO");
    assert!(err.contains("Exec format error"), "{err}");
}

#[test]
fn pid_is_the_real_os_pid() {
    use std::io::{BufRead, BufReader, Write};
    let mut args = vec!["run".to_string()];
    args.extend(allow_all());
    args.push(guest("subprocess_probe").display().to_string());
    args.push("pid".into());
    let mut host = procbridge()
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let mut next = |prefix: &str| {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line:?} is not {prefix:?}"))
            .to_string()
    };
    let pid = next("popen pid ");
    let said = next("child says ");
    assert_eq!(next("ready"), "");
    // While it runs: the Popen's pid names the shell in the host's PID
    // namespace; the shell itself sees its pid in the job's namespace.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(nspid.first(), Some(&pid.as_str()), "{status}");
    assert_eq!(nspid.last(), Some(&said.as_str()), "{status}");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"sh\0-c\0"), "{cmdline:?}");
    assert_ne!(pid, host.id().to_string());
    writeln!(host.stdin.take().unwrap()).unwrap();
    assert!(host.wait().unwrap().success());
}

#[test]
fn communicate_after_a_timeout_keeps_what_arrived_before() {
    let p = probe(&["communicate_retry"], 0);
    assert_eq!(p.line("first"), "TimeoutExpired");
    assert_eq!(p.line("poll"), "None");
    assert_eq!(p.line("stdout"), "\"first\\n\"");
    assert_eq!(p.line("stderr"), "\"err\\n\"");
    assert_eq!(p.line("returncode"), "Some(-9)");
}
