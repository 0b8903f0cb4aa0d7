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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.txt");
    std::fs::write(&file, "secret\n").unwrap();
    let out = call(
        &[],
        &["--allow-run", "cat"],
        &["cat", file.to_str().unwrap()],
    );
    assert!(stdout(&out).contains("Exit code: 1"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("secret"));
    let d = dir.path().display();
    let hint = only_hint(&out, "No such file or directory");
    assert!(
        hint.ends_with(&format!(
            "no grant holds it (add --dir-ro {d}, or --dir {d} to write there)"
        )),
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
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
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
    let dir = tempfile::tempdir().unwrap();
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

#[test]
fn quiet_gives_no_hint_and_leaves_stderr_alone() {
    let out = call(&["-q"], &["--allow-run", "sh"], &["sh", "-c", "ls"]);
    assert!(
        stderr(&out).contains("ls: Permission denied"),
        "{}",
        stderr(&out)
    );
    assert_eq!(hints(&out), Vec::<String>::new());
}

#[test]
fn a_flood_of_denials_is_bounded_and_stays_in_order() {
    // A hostile command printing hundreds of denials about real host paths
    // (each would be a hint) and a forged hint line of its own.
    let dir = tempfile::tempdir().unwrap();
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
    assert!(!real.is_empty() && real.len() <= 16, "{}", real.len());
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
