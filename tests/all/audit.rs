//! Issue 12: the audit log is bounded and complete. Records have bounded
//! fields, repeated denials are counted rather than repeated (in the log and
//! on stderr), a job's log stops at its size cap with one record saying so,
//! and guest processes and CPU-limit hits are recorded too.

use crate::support::*;
use serde_json::Value;

/// The records of an audit log, parsed.
fn records(log: &str) -> Vec<Value> {
    log.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn events<'a>(records: &'a [Value], event: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["event"] == event).collect()
}

fn run_audited(args: &[&str]) -> (std::process::Output, String) {
    let audit = tempfile::NamedTempFile::new().unwrap();
    let mut all = vec!["run", "--audit", audit.path().to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run_cli(&all);
    let log = std::fs::read_to_string(audit.path()).unwrap();
    (out, log)
}

/// `popen` of `argv[0]` = 4 MiB of `A` with a last byte that differs each
/// time (`a`, `b`, ...), 20 times; exits with the number of calls that were
/// not refused with `EPERM`.
const HUGE_ARGV0: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "procbridge" "popen" (func $popen (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 66)
    (func (export "_start") (local $i i32) (local $bad i32)
      (i32.store (i32.const 0) (i32.const 4194304))
      (memory.fill (i32.const 4) (i32.const 65) (i32.const 4194304))
      (loop $again
        (i32.store8 (i32.const 4194307) (i32.add (i32.const 97) (local.get $i)))
        (if (i32.ne (call $popen (i32.const 0) (i32.const 4194308) (i32.const 0) (i32.const 0)
                                 (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
                    (i32.const -1))
          (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $again (i32.lt_u (local.get $i) (i32.const 20))))
      (call $exit (local.get $bad))))"#;

#[test]
fn refused_popen_with_a_huge_argv_cannot_flood_the_log() {
    let (dir, path) = temp_file("flood.wat", HUGE_ARGV0.as_bytes());
    let (out, log) = run_audited(&[path.to_str().unwrap()]);
    drop(dir);
    let head: String = stderr(&out).chars().take(2000).collect();
    assert_eq!(out.status.code(), Some(0), "{head}");
    // Before: 20 records of 8 MiB each (the name, twice). Now each field is
    // cut to 4 KiB and the burst is rate limited.
    assert!(log.len() < 64 << 10, "{} bytes of audit log", log.len());
    for line in log.lines() {
        assert!(line.len() < 5 << 10, "a record of {} bytes", line.len());
    }
    let records = records(&log);
    let denied = events(&records, "denied");
    assert!(!denied.is_empty(), "{log}");
    let name = format!("{}a", "A".repeat(4 * 1024 * 1024 - 1));
    let message = format!("run {name:?}: not granted (add --allow-run {name})");
    let first = denied[0];
    assert_eq!(first["truncated"], true, "{first}");
    assert_eq!(first["outcome_bytes"], message.len(), "{first}");
    assert_eq!(first["outcome"].as_str().unwrap().len(), 4096, "{first}");
    assert!(message.starts_with(first["outcome"].as_str().unwrap()));
    // Every refusal is accounted for: recorded, or counted as suppressed
    // (at most 10 a second are recorded; how many that leaves out depends
    // on how fast the guest went).
    let suppressed: u64 = records
        .iter()
        .filter_map(|r| r["suppressed"].as_u64())
        .sum();
    assert_eq!(denied.len() as u64 + suppressed, 20, "{log}");
    // stderr: one bounded line per recorded denial, the same rate limit.
    let err = stderr(&out);
    assert!(err.len() < 64 << 10, "{} bytes on stderr", err.len());
    let lines = err
        .lines()
        .filter(|l| l.starts_with("procbridge: denied: "))
        .count();
    assert_eq!(lines, denied.len(), "{err}");
}

/// 20 identical refusals, a pause of 1.2 s (an empty queue's timeout), one
/// more, then 5 more at once before the guest ends.
const REPEATED: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "procbridge" "popen" (func $popen (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "procbridge" "queue_new" (func $queue_new (param i32 i32 i32) (result i32)))
    (import "procbridge" "queue_get" (func $queue_get (param i32 i32 i32 i64) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "\04\00\00\00curl")
    (func $refuse (param $n i32)
      (loop $again
        (drop (call $popen (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 0)
                           (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $again (i32.gt_s (local.get $n) (i32.const 0)))))
    (func (export "_start")
      (call $refuse (i32.const 20))
      (drop (call $queue_get (call $queue_new (i32.const 0) (i32.const 0) (i32.const 0))
                             (i32.const 0x100) (i32.const 16) (i64.const 1200000)))
      (call $refuse (i32.const 1))
      (call $refuse (i32.const 5))
      (call $exit (i32.const 0))))"#;

#[test]
fn repeated_denials_are_counted_not_repeated() {
    let (_dir, path) = temp_file("repeat.wat", REPEATED.as_bytes());
    let (out, log) = run_audited(&[path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&log);
    let denied = events(&records, "denied");
    assert_eq!(denied.len(), 2, "{log}");
    let outcome = "run \"curl\": not granted (add --allow-run curl)";
    assert_eq!(denied[0]["outcome"], outcome, "{log}");
    assert!(denied[0].get("suppressed").is_none(), "{log}");
    assert_eq!(denied[1]["outcome"], outcome, "{log}");
    assert_eq!(denied[1]["suppressed"], 19, "{log}");
    // The 5 left out at the end are reported when the process ends.
    let summary = events(&records, "suppressed");
    assert_eq!(summary.len(), 1, "{log}");
    assert_eq!(summary[0]["suppressed"], 5, "{log}");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!("procbridge: denied: {outcome}").as_str(),
            format!("procbridge: denied: {outcome} (19 more denials and limit hits not shown)")
                .as_str(),
            "procbridge: 5 more denials and limit hits not shown",
        ],
        "{err}"
    );
}

/// Runs `true` with 100 arguments of 8 KiB each, 8 times.
const BIG_SPAWNS: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "procbridge" "popen" (func $popen (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
    (import "procbridge" "popen_close" (func $close (param i32) (result i32)))
    (memory (export "memory") 16)
    (data (i32.const 0) "\04\00\00\00true")
    (func (export "_start") (local $i i32) (local $at i32) (local $h i32)
      (local.set $at (i32.const 8))
      (loop $item
        (i32.store (local.get $at) (i32.const 8192))
        (memory.fill (i32.add (local.get $at) (i32.const 4)) (i32.const 120) (i32.const 8192))
        (local.set $at (i32.add (local.get $at) (i32.const 8196)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $item (i32.lt_u (local.get $i) (i32.const 99))))
      (local.set $i (i32.const 0))
      (loop $spawn
        (local.set $h (call $popen (i32.const 0) (local.get $at) (i32.const 0) (i32.const 0)
                                   (i32.const 0) (i32.const 0) (i32.const -2) (i32.const -2) (i32.const -2)))
        (if (i32.le_s (local.get $h) (i32.const 0)) (then (call $exit (i32.const 10))))
        (drop (call $close (local.get $h)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $spawn (i32.lt_u (local.get $i) (i32.const 8))))
      (call $exit (i32.const 0))))"#;

fn assert_capped_at_one_mib(out: &std::process::Output, log: &str) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    assert!(log.len() <= 1 << 20, "{} bytes", log.len());
    let records = records(log);
    let last = records.last().unwrap();
    assert_eq!(last["event"], "truncated", "{last}");
    assert_eq!(events(&records, "truncated").len(), 1);
    let spawns = events(&records, "spawn");
    assert!(
        !spawns.is_empty() && spawns.len() < 8,
        "{} spawns",
        spawns.len()
    );
    for spawn in spawns {
        assert_eq!(spawn["argv_len"], 100, "{spawn}");
        assert_eq!(spawn["argv"].as_array().unwrap().len(), 64, "{spawn}");
        assert_eq!(spawn["truncated"], true, "{spawn}");
    }
}

#[test]
fn the_audit_size_cap_ends_with_one_truncated_record() {
    let (_dir, path) = temp_file("spawns.wat", BIG_SPAWNS.as_bytes());
    let args = ["--allow-run", "true", path.to_str().unwrap()];
    let (out, log) = run_audited(&[&["--max-audit", "1"], &args[..]].concat());
    assert_capped_at_one_mib(&out, &log);
    // The same limit from a policy file.
    let (_pdir, policy) = temp_file("job.toml", b"[limits]\naudit_mb = 1\n");
    let (out, log) = run_audited(&[&["--policy", policy.to_str().unwrap()], &args[..]].concat());
    assert_capped_at_one_mib(&out, &log);
}

#[test]
fn guest_processes_are_audited_when_they_start_and_end() {
    let probe = guest("process_probe");
    let (out, log) = run_audited(&[probe.to_str().unwrap(), "pids"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let pid_after = |prefix: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {text}"))
            .parse()
            .unwrap()
    };
    let records = records(&log);
    let spawns = events(&records, "spawn");
    let exits = events(&records, "exit");
    for (prefix, start, method) in [
        ("started fork ", "process", Some("fork")),
        ("started spawn ", "process", Some("spawn")),
        ("started forked ", "fork", None),
    ] {
        let pid = pid_after(prefix);
        let spawn: Vec<_> = spawns.iter().filter(|r| r["child"] == pid).collect();
        assert_eq!(spawn.len(), 1, "{pid}: {log}");
        assert_eq!(spawn[0]["start"], start, "{log}");
        if let Some(method) = method {
            assert_eq!(spawn[0]["method"], method, "{log}");
            assert_eq!(spawn[0]["target"], "report", "{log}");
        }
        let exit: Vec<_> = exits.iter().filter(|r| r["child"] == pid).collect();
        assert_eq!(exit.len(), 1, "{pid}: {log}");
        assert_eq!(exit[0]["outcome"], "exit code 0", "{log}");
    }
}

#[test]
fn pool_workers_are_audited() {
    let (out, log) = run_audited(&[guest("pool").to_str().unwrap(), "0.1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let records = records(&log);
    let workers: Vec<u64> = events(&records, "spawn")
        .iter()
        .filter(|r| r["start"] == "pool_worker")
        .map(|r| r["child"].as_u64().unwrap())
        .collect();
    assert!(!workers.is_empty(), "{log}");
    for pid in workers {
        let ends = events(&records, "exit")
            .iter()
            .filter(|r| r["child"] == pid)
            .count();
        assert_eq!(ends, 1, "worker {pid}: {log}");
    }
}

#[test]
fn cpu_limit_hits_are_audited() {
    let (_dir, path) = temp_file(
        "loop.wat",
        br#"(module (func (export "_start") (loop $l (br $l))))"#,
    );
    let child = procbridge()
        .args(["run", "--cpu-time", "1", "--audit"])
        .arg(path.with_extension("jsonl"))
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(152), "{}", stderr(&out));
    let log = std::fs::read_to_string(path.with_extension("jsonl")).unwrap();
    let records = records(&log);
    assert_eq!(records.len(), 1, "{log}");
    assert_eq!(records[0]["event"], "limit", "{log}");
    assert_eq!(records[0]["pid"], pid, "{log}");
    assert_eq!(
        records[0]["outcome"],
        "CPU time limit reached; the process is stopped"
    );
    assert!(records[0]["time"].as_f64().unwrap() > 1.7e9, "{log}");
}

/// `queue_new` over the policy's queued-bytes limit (a denial), then 8
/// handles under a handle limit of 4 (a limit hit, `EMFILE`).
const OTHER_REFUSALS: &str = r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (import "procbridge" "queue_new" (func $queue_new (param i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (local $i i32)
      (if (i32.ne (call $queue_new (i32.const 0) (i32.const 2097152) (i32.const 0)) (i32.const -1))
        (then (call $exit (i32.const 11))))
      (loop $more
        (drop (call $queue_new (i32.const 0) (i32.const 4096) (i32.const 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 8))))
      (call $exit (i32.const 0))))"#;

#[test]
fn every_refusal_goes_through_the_audit_log() {
    let (_dir, path) = temp_file("refusals.wat", OTHER_REFUSALS.as_bytes());
    let (_pdir, policy) = temp_file("job.toml", b"[limits]\nhandles = 4\nqueued_mb = 1\n");
    let (out, log) = run_audited(&["--policy", policy.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&log);
    let denied = events(&records, "denied");
    assert_eq!(denied.len(), 1, "{log}");
    assert!(
        denied[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("queue_new: 2097152 bytes is over the policy's limit"),
        "{log}"
    );
    let limits = events(&records, "limit");
    assert_eq!(limits.len(), 1, "{log}");
    assert_eq!(limits[0]["outcome"], "too many open handles (limit 4)");
    assert_eq!(limits[0]["suppressed"], serde_json::Value::Null);
    let summary = events(&records, "suppressed");
    assert_eq!(summary.len(), 1, "{log}");
    assert_eq!(summary[0]["suppressed"], 3, "{log}");
}
