//! What a spawned command may not do: run ungranted programs, see more
//! environment than granted, start outside granted directories, inherit
//! the host's descriptors.

use super::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn ungranted_relative_and_absolute_paths_are_denied() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "rm", "-rf", "/tmp/nothing"],
            "run \"rm\": not granted (add --allow-run rm)",
        ),
        (&["run", "./true"], "relative paths are never granted"),
        (&["run", "bin/true"], "relative paths are never granted"),
        (&["run", "/bin/rm"], "run \"/bin/rm\": not granted"),
    ];
    for (args, message) in cases {
        let p = probe(args, 1);
        let err = p.line("error EPERM");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // The resolved absolute path of a granted command is granted.
    let echo = policy().resolve_command("echo").unwrap().path.clone();
    let p = probe(&["run", echo.to_str().unwrap(), "by path"], 0);
    assert_eq!(p.line("stdout"), "\"by path\\n\"");
}

#[test]
fn a_path_trick_does_not_change_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("true");
    std::fs::write(&fake, "#!/bin/sh\necho evil\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("PATH={}", dir.path().display());
    let out = run_cli(&[
        "run",
        "--allow-run",
        "true",
        "--env",
        &path,
        guest("call").to_str().unwrap(),
        "true",
    ]);
    assert_eq!(stdout(&out), "$ true\nExit code: 0\n", "{}", stderr(&out));
    // Naming the fake by its absolute path is not granted either.
    let out = run_cli(&[
        "run",
        "--allow-run",
        "true",
        guest("call").to_str().unwrap(),
        fake.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not granted"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("evil"));
}

#[test]
fn the_child_environment_is_only_what_was_granted() {
    let mut args = vec!["run".to_string()];
    args.extend(allow_all());
    args.extend(["--env", "FOO=bar", "--env", "EMPTY="].map(String::from));
    args.push(guest("subprocess_probe").display().to_string());
    args.push("env".into());
    let out = procbridge()
        .args(&args)
        .env("SECRET", "host-only")
        .output()
        .unwrap();
    let mut lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["EMPTY=", "FOO=bar", "returncode 0"],
        "{}",
        stderr(&out)
    );

    // An explicit environment replaces it, with names granted to the
    // command only; loader variables are refused whatever the policy says.
    let granted = Policy::builder()
        .allow_run("env")
        .unwrap()
        .command_env("env", ["A", "B"])
        .unwrap()
        .build();
    let p = probe_with(granted, &["env", "A=1", "B=two words"]);
    assert_eq!(p.stdout, "A=1\nB=two words\nreturncode 0\n", "{}", p.stderr);
    let p = probe(&["env", "A=1"], 1);
    let err = p.line("error EPERM");
    assert!(
        err.contains("environment variable \"A\" is not granted"),
        "{err}"
    );
    let p = probe(&["env", "LD_PRELOAD=/tmp/evil.so"], 1);
    assert!(p.line("error EPERM").contains("LD_PRELOAD"));
}

#[test]
fn cwd_must_be_inside_a_granted_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let grant = format!("{}::/data", dir.path().display());
    let run = |cwd: &str| {
        let mut args = vec!["run".to_string(), "--dir".into(), grant.clone()];
        args.extend(allow_all());
        args.push(guest("subprocess_probe").display().to_string());
        args.extend(["cwd".to_string(), cwd.to_string()]);
        procbridge().args(&args).output().unwrap()
    };
    // The command sees the grant where the guest does.
    let out = run("/data/sub");
    assert_eq!(stdout(&out), "pwd /data/sub\n", "{}", stderr(&out));
    for bad in ["/", "/etc", "/data/..", "/data/sub/../.."] {
        let out = run(bad);
        assert!(
            stdout(&out).starts_with("error EPERM cwd"),
            "{bad}: {}",
            stdout(&out)
        );
        assert!(
            stderr(&out).contains("procbridge: denied: cwd"),
            "{}",
            stderr(&out)
        );
    }
    // No directory granted: no cwd at all.
    let p = probe(&["cwd", "/tmp"], 1);
    assert!(p
        .line("error EPERM")
        .contains("not inside a granted directory"));
}

#[test]
fn the_child_inherits_only_stdio_and_its_pipes() {
    // A descriptor the host opened without close-on-exec must not leak.
    let path = std::ffi::CString::new("/dev/null").unwrap();
    // SAFETY: open with a valid C string; closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 3);
    // `ls` opens the directory itself as descriptor 3. Commands see the
    // jail's own /proc.
    let builder = Policy::builder().allow_run("ls").unwrap();
    let p = probe_with(builder.build(), &["run", "ls", "/proc/self/fd"]);
    assert_eq!(
        p.result.as_ref().ok(),
        Some(&0),
        "{}\n{}",
        p.stdout,
        p.stderr
    );
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    assert_eq!(p.line("stdout"), "\"0\\n1\\n2\\n3\\n\"");
}
