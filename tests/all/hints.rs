//! Issue 17: hints where the sandbox says no. A command that fails on a
//! path or program the sandbox hides says so on its stderr; the host then
//! says which grant would allow it, on its own stderr and in the audit
//! log, as the denial lines do for commands. Through the `procbridge`
//! command, with the seed's `subprocess.call` guest (its command's stderr
//! is inherited).

use crate::support::*;
use std::process::{Output, Stdio};

/// `procbridge [PRE...] run GRANTS... call.wasm ARGV...`.
fn call(pre: &[&str], grants: &[&str], argv: &[&str]) -> Output {
    procbridge()
        .args(pre)
        .arg("run")
        .args(grants)
        .arg(guest("call"))
        .args(argv)
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        .output()
        .expect("run procbridge")
}

/// A temporary directory whose name is not hidden (hints never suggest a
/// hidden directory, and tempfile's are `.tmpXXXX`).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pb-hints")
        .tempdir()
        .unwrap()
}

/// The `procbridge: hint:` lines of `out`'s stderr.
fn hints(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("procbridge: hint: "))
        .map(str::to_string)
        .collect()
}

/// The one hint of `out`, after the command's own line `said`.
fn only_hint(out: &Output, said: &str) -> String {
    let err = stderr(out);
    assert!(err.contains(said), "the command's line is kept:\n{err}");
    let hints = hints(out);
    assert_eq!(hints.len(), 1, "{err}");
    let (said_at, hint_at) = (err.find(said).unwrap(), err.find(&hints[0]).unwrap());
    assert!(
        said_at < hint_at,
        "the hint follows the command's line:\n{err}"
    );
    hints[0].clone()
}

#[test]
fn a_program_the_shell_may_not_run_names_its_grant() {
    let out = call(&[], &["--allow-run", "sh"], &["sh", "-c", "ls /"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Exit code: 126"), "{}", stdout(&out));
    let hint = only_hint(&out, "ls: Permission denied");
    assert_eq!(
        hint,
        "procbridge: hint: \"sh\" could not use \"ls\" (Permission denied): \
         the program is not granted (add --allow-run ls)"
    );
}

#[test]
fn a_host_file_outside_every_grant_names_its_directory() {
    let dir = scratch();
    let file = dir.path().join("data.txt");
    std::fs::write(&file, "secret\n").unwrap();
    let out = call(
        &[],
        &["--allow-run", "cat"],
        &["cat", file.to_str().unwrap()],
    );
    assert!(stdout(&out).contains("Exit code: 1"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("secret"));
    let d = dir.path().canonicalize().unwrap();
    let d = d.display();
    let hint = only_hint(&out, "No such file or directory");
    assert!(
        hint.ends_with(&format!("no grant holds it (add --dir-ro {d})")),
        "{hint}"
    );
    // Granted as the hint says, the same command reads it.
    let out = call(
        &[],
        &["--allow-run", "cat", "--dir-ro", &d.to_string()],
        &["cat", file.to_str().unwrap()],
    );
    assert!(stdout(&out).contains("Exit code: 0"), "{}", stderr(&out));
    assert_eq!(hints(&out), Vec::<String>::new());
}

#[test]
fn a_write_into_a_read_only_grant_names_the_read_write_grant() {
    let dir = scratch();
    let grant = format!("{}::/data", dir.path().display());
    let out = call(
        &[],
        &["--allow-run", "touch", "--dir-ro", &grant],
        &["touch", "/data/new"],
    );
    let hint = only_hint(&out, "Read-only file system");
    assert!(
        hint.ends_with(&format!(
            "its grant is read-only (add --dir {grant} instead of --dir-ro)"
        )),
        "{hint}"
    );
    assert!(!dir.path().join("new").exists());
}

#[test]
fn secrets_of_etc_have_no_grant_to_name() {
    let out = call(&[], &["--allow-run", "cat"], &["cat", "/etc/shadow"]);
    let hint = only_hint(&out, "/etc/shadow: Permission denied");
    assert!(hint.ends_with("no grant shows it"), "{hint}");
}

#[test]
fn ordinary_failures_give_no_hint() {
    let dir = scratch();
    let grant = format!("{}::/data", dir.path().display());
    // Missing inside a grant, and missing on the host too.
    let out = call(
        &[],
        &["--allow-run", "cat", "--dir", &grant],
        &["cat", "/data/nope", "/no/such/dir/313"],
    );
    assert!(stderr(&out).contains("/data/nope: No such file or directory"));
    assert_eq!(hints(&out), Vec::<String>::new(), "{}", stderr(&out));
}

#[test]
fn hints_are_in_the_audit_log() {
    let dir = scratch();
    let audit = dir.path().join("audit.jsonl");
    let out = call(
        &[],
        &["--allow-run", "sh", "--audit", audit.to_str().unwrap()],
        &["sh", "-c", "ls"],
    );
    assert_eq!(hints(&out).len(), 1, "{}", stderr(&out));
    let log = std::fs::read_to_string(&audit).unwrap();
    let hint: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event"] == "hint")
        .unwrap_or_else(|| panic!("no hint record:\n{log}"));
    assert_eq!(hint["command"], "sh");
    assert!(hint["child"].as_u64().unwrap() > 0);
    assert!(
        hint["outcome"]
            .as_str()
            .unwrap()
            .ends_with("(add --allow-run ls)"),
        "{hint}"
    );
}

/// What a command's stderr is, as the command sees it (`pipe` or
/// `file`), then a denial.
const STDERR_KIND: &str = "if [ -p /dev/stderr ]; then echo pipe >&2; else echo file >&2; fi; ls";

/// `procbridge PRE... run --allow-run sh GRANTS... call.wasm sh -c
/// STDERR_KIND` with its stderr in a file: the file's text.
fn stderr_in_a_file(pre: &[&str], grants: &[&str]) -> String {
    let dir = scratch();
    let path = dir.path().join("stderr");
    let status = procbridge()
        .args(pre)
        .args(["run", "--allow-run", "sh"])
        .args(grants)
        .arg(guest("call"))
        .args(["sh", "-c", STDERR_KIND])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&path).unwrap())
        .env_remove("RUST_LOG")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn quiet_and_no_hints_give_commands_the_stderr_itself() {
    // With hints, the command writes into the relay's pipe.
    let relayed = stderr_in_a_file(&[], &[]);
    assert!(relayed.starts_with("pipe\n"), "{relayed}");
    assert!(relayed.contains("(add --allow-run ls)"), "{relayed}");
    for (pre, grants) in [(&["-q"][..], &[][..]), (&[][..], &["--no-hints"][..])] {
        let direct = stderr_in_a_file(pre, grants);
        assert!(direct.starts_with("file\n"), "{pre:?} {grants:?}: {direct}");
        assert!(direct.contains("ls: Permission denied"), "{direct}");
        assert!(!direct.contains("procbridge: hint:"), "{direct}");
    }
}

#[test]
fn a_command_still_learns_that_stderr_is_gone() {
    // `yes >&2` with the host's stderr a pipe whose reader went away: the
    // command dies of SIGPIPE, as without the relay, instead of writing
    // until the job is stopped.
    let mut job = procbridge()
        .args(["run", "--allow-run", "sh,yes", "--wall-time", "20"])
        .arg(guest("call"))
        .args(["sh", "-c", "yes >&2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = job.stderr.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut err, &mut first).unwrap();
    drop(err);
    let out = job.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "the job ended by itself");
    // The shell reports its child's SIGPIPE as 128 + 13.
    assert!(stdout(&out).contains("Exit code: 141"), "{}", stdout(&out));
}

#[test]
fn a_flood_of_denials_is_bounded_and_stays_in_order() {
    // A hostile command printing hundreds of denials about real host paths
    // (each would be a hint) and a forged hint line of its own.
    let dir = scratch();
    for i in 0..40 {
        std::fs::write(dir.path().join(format!("f{i}")), "").unwrap();
    }
    let d = dir.path().display();
    let script = format!(
        "i=0; while [ $i -lt 300 ]; do echo \"cat: {d}/f$((i % 40)): Permission denied\" >&2; \
         i=$((i+1)); done; echo 'procbridge: hint: forged' >&2; echo done"
    );
    let out = call(&[], &["--allow-run", "sh"], &["sh", "-c", &script]);
    let err = stderr(&out);
    assert_eq!(
        err.matches(": Permission denied\n").count(),
        300,
        "every line of the command passes through"
    );
    let real: Vec<String> = hints(&out)
        .into_iter()
        .filter(|h| h != "procbridge: hint: forged")
        .collect();
    // Hints have a budget of their own (10 a second per process).
    assert!(!real.is_empty() && real.len() <= 10, "{}", real.len());
    // The forged line is the command's, shown before any hint of the host.
    assert!(err.find("procbridge: hint: forged").unwrap() < err.find(&real[0]).unwrap());
}

#[test]
fn python_jobs_get_hints_too() {
    let code = "import subprocess\nprint(subprocess.run(['sh', '-c', 'ls']).returncode)";
    let out = procbridge()
        .args(["python", "--allow-run", "sh", "-c", code])
        .stdin(Stdio::null())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "126", "{}", stderr(&out));
    assert!(only_hint(&out, "ls: Permission denied").ends_with("(add --allow-run ls)"));
}
