//! Grants are descriptors, not paths: a granted directory is opened once at
//! start-up and every later use (spawn-method children, commands, the
//! jail's mounts) goes through that descriptor. Tried as an attacker would,
//! with WASI alone, by a guest that has no commands at all.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A work directory with `out/marker.txt` inside, and a secret file
/// outside every grant.
struct Layout {
    _root: tempfile::TempDir,
    work: PathBuf,
    secret: PathBuf,
}

fn layout() -> Layout {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir_all(work.join("out")).unwrap();
    std::fs::write(work.join("out/marker.txt"), "mine").unwrap();
    let secret = root.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    Layout {
        _root: root,
        work,
        secret,
    }
}

/// A policy file granting `work` read-write at `/w` and `work/out` at
/// `/out`, the overlap declared intended.
fn overlap_policy(layout: &Layout) -> PathBuf {
    let path = layout.work.parent().unwrap().join("job.toml");
    std::fs::write(
        &path,
        format!(
            "[commands.cat]\n[commands.ls]\n\n\
             [[dirs]]\nhost = \"{w}\"\nguest = \"/w\"\nmode = \"read-write\"\n\n\
             [[dirs]]\nhost = \"{w}/out\"\nguest = \"/out\"\noverlap = true\n",
            w = layout.work.display()
        ),
    )
    .unwrap();
    path
}

fn escape_probe(args: &[&str]) -> Output {
    run_cli(args)
}

/// Far enough up to reach `/` from any temporary directory.
const TO_ROOT: &str = "../../../../../../../../../..";

#[test]
fn a_grant_inside_a_read_write_grant_is_refused() {
    let layout = layout();
    let outer = format!("{}::/w", layout.work.display());
    let inner = format!("{}/out::/out", layout.work.display());
    for (flag, inner_flag) in [("--dir", "--dir-ro"), ("--dir", "--dir")] {
        let out = run_cli(&[
            "run",
            flag,
            &outer,
            inner_flag,
            &inner,
            guest("hello").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("inside the read-write grant"), "{err}");
        assert!(err.contains("overlap"), "{err}");
    }
    // Read-only inside read-only is harmless and allowed.
    let out = run_cli(&[
        "run",
        "--dir-ro",
        &outer,
        "--dir-ro",
        &inner,
        guest("hello").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn swapping_a_nested_grant_for_a_link_changes_nothing_later() {
    let layout = layout();
    let policy = overlap_policy(&layout);
    let secret = layout.secret.display().to_string();
    let out = escape_probe(&[
        "run",
        "--policy",
        policy.to_str().unwrap(),
        guest("escape_probe").to_str().unwrap(),
        "swap",
        "/w/out",
        TO_ROOT,
        "+",
        "spawn_read",
        "/out",
        "+",
        "spawn_read",
        "/out/etc/hostname",
        "+",
        "spawn_run",
        "ls",
        "/out",
        "+",
        "spawn_run",
        "cat",
        &secret,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("linked /w/out"),
        "the swap itself works: {text}"
    );
    // The spawn child's /out is still the directory granted at start-up.
    assert!(text.contains("child lists /out: marker.txt\n"), "{text}");
    assert!(
        text.contains("child cannot read /out/etc/hostname"),
        "{text}"
    );
    // So is a command's.
    assert!(
        text.contains("child returncode 0\nstdout \"marker.txt\\n\""),
        "{text}"
    );
    assert!(!text.contains("top secret"), "{text}");
    assert!(
        Path::new(&layout.work.join("out")).is_symlink(),
        "the link stays"
    );

    // The next run with the same grants is refused: the grant's path now
    // goes through a symbolic link.
    let out = escape_probe(&[
        "run",
        "--policy",
        policy.to_str().unwrap(),
        guest("escape_probe").to_str().unwrap(),
        "spawn_read",
        "/out",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!stdout(&out).contains("child lists"), "{}", stdout(&out));
}

#[test]
fn grants_through_symbolic_links_are_refused() {
    let layout = layout();
    let link = layout.work.parent().unwrap().join("link");
    std::os::unix::fs::symlink(&layout.work, &link).unwrap();
    for path in [link.clone(), link.join("out")] {
        let grant = format!("{}::/x", path.display());
        let out = run_cli(&["run", "--dir-ro", &grant, guest("hello").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("symbolic link"), "{err}");
        assert!(err.contains(&link.display().to_string()), "{err}");
    }
    // `policy check` names the line.
    let policy = layout.work.parent().unwrap().join("job.toml");
    std::fs::write(
        &policy,
        format!(
            "# a grant through a link\n[[dirs]]\nhost = \"{}\"\nguest = \"/x\"\n",
            link.display()
        ),
    )
    .unwrap();
    let out = run_cli(&["policy", "check", policy.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("job.toml:3:"), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
}

#[test]
fn every_process_has_its_own_randomness() {
    let out = run_cli(&["run", guest("escape_probe").to_str().unwrap(), "random"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let values: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    let labels: Vec<&str> = values.iter().map(|(l, _)| *l).collect();
    assert_eq!(
        labels,
        ["root", "fork0", "fork1", "spawn0", "spawn1", "root-again"],
        "{text}"
    );
    let mut bytes: Vec<&str> = values.iter().map(|(_, v)| *v).collect();
    assert!(bytes.iter().all(|b| b.len() == 32), "{text}");
    bytes.sort_unstable();
    bytes.dedup();
    assert_eq!(bytes.len(), 6, "two processes read the same bytes:\n{text}");
}
