//! The jail, tried as an attacker would: with nothing but the grants a job
//! normally gets (a shell, perl, `git diff`, `env`, a read-write work
//! directory), a granted command must not get out, touch what is not
//! granted, or outlive the job. One test per way out; each names the layer
//! that stops it (see `docs/policy.md`, "How commands are confined").

use crate::support::*;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// `procbridge run GRANTS... escape_probe run ARGV...`.
fn escape(grants: &[&str], argv: &[&str]) -> Output {
    procbridge()
        .arg("run")
        .args(grants)
        .arg(guest("escape_probe"))
        .arg("run")
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .expect("run procbridge")
}

/// The value of the probe's `stdout "..."` line, unescaped enough for the
/// assertions (the probe prints Rust debug strings).
fn probe_stdout(out: &Output) -> String {
    line(out, "stdout ").replace("\\n", "\n")
}

fn line(out: &Output, prefix: &str) -> String {
    stdout(out)
        .lines()
        .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no {prefix:?} line:\n{}\n{}", stdout(out), stderr(out)))
}

#[test]
fn a_background_child_does_not_outlive_a_normal_end() {
    // Layer: the job's PID namespace, whose init belongs to procbridge.
    let marker = Marker("313.37");
    let out = escape(
        &["--allow-run", "sh", "--allow-run", "sleep"],
        &["sh", "-c", "sleep 313.37 >/dev/null 2>&1 & echo started"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(probe_stdout(&out), "\"started\n\"");
    assert_eq!(marker.survivors(), Vec::<i32>::new(), "outlived the job");
}

#[test]
fn a_setsid_grandchild_does_not_outlive_the_job() {
    let marker = Marker("313.38");
    let out = escape(
        &[
            "--allow-run",
            "sh",
            "--allow-run",
            "sleep",
            "--allow-run",
            "setsid",
        ],
        &[
            "sh",
            "-c",
            "setsid sleep 313.38 >/dev/null 2>&1 & sleep 0.3; echo started",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(probe_stdout(&out), "\"started\n\"");
    assert_eq!(marker.survivors(), Vec::<i32>::new(), "outlived the job");
}

#[test]
fn nothing_survives_sigkill_of_procbridge() {
    // A background child, and a command that cleared its own parent-death
    // signal: both die with the namespace when procbridge is killed.
    let marker = Marker("313.39");
    let script = "sleep 313.39 >/dev/null 2>&1 & \
                  perl -e 'syscall(157, 1, 0) == 0 or die; sleep 313; # 313.39' >/dev/null 2>&1 & \
                  wait";
    let mut child = procbridge()
        .args(["run", "--allow-run", "sh", "--allow-run", "sleep"])
        .args(["--allow-run", "perl"])
        .arg(guest("escape_probe"))
        .args(["run", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    marker.wait_running();
    let started = Instant::now();
    while pids_with("313.39").len() < 2 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pids_with("313.39").len(), 2, "both sleepers run");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        marker.survivors(),
        Vec::<i32>::new(),
        "outlived a SIGKILLed procbridge"
    );
}

#[test]
fn nothing_survives_the_wall_clock_limit() {
    let marker = Marker("313.41");
    let out = escape(
        &[
            "--allow-run",
            "sh",
            "--allow-run",
            "sleep",
            "--wall-time",
            "1",
        ],
        &["sh", "-c", "sleep 313.41 >/dev/null 2>&1 & wait"],
    );
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert_eq!(
        marker.survivors(),
        Vec::<i32>::new(),
        "outlived the wall-clock limit"
    );
}

#[test]
fn a_granted_shell_cannot_fork_past_max_processes() {
    // Layer: the jail's pids cgroup (or a count inside the namespace).
    let marker = Marker("313.42");
    let out = escape(
        &[
            "--allow-run",
            "sh",
            "--allow-run",
            "sleep",
            "--max-processes",
            "4",
        ],
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 313.42 >/dev/null 2>&1 & echo ok; done",
        ],
    );
    let started = probe_stdout(&out).matches("ok").count();
    assert!(
        (1..=4).contains(&started),
        "{started} background processes started under --max-processes 4:\n{}",
        stdout(&out)
    );
    assert!(line(&out, "stderr ").contains("fork"), "{}", stdout(&out));
    drop(marker);
}

#[test]
fn a_command_cannot_type_into_the_operators_terminal() {
    // Layers: a new session (no controlling terminal) and seccomp (TIOCSTI).
    let mut master = -1;
    let mut slave = -1;
    // SAFETY: openpty with valid out-pointers; no name, termios or winsize.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty");
    let script = r#"for (split //, "echo PWNED\n") { ioctl(STDIN, 0x5412, $_) or die "TIOCSTI: $!\n" } print "injected\n""#;
    let mut cmd = procbridge();
    cmd.args(["run", "--allow-run", "perl"])
        .arg(guest("escape_probe"))
        .args(["run", "perl", "-e", script]);
    // SAFETY: the slave descriptor stays open until the child has started.
    unsafe {
        use std::os::fd::FromRawFd;
        cmd.stdin(Stdio::from_raw_fd(libc::dup(slave)));
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            // The operator's terminal: procbridge runs in its session.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let text = stdout(&out);
    assert!(!text.contains("injected"), "{text}");
    assert!(text.contains("TIOCSTI: "), "{text}\n{}", stderr(&out));
    // Nothing waits in the terminal's input for the operator's shell.
    // SAFETY: plain descriptor calls on the descriptors opened above.
    let pending = unsafe {
        libc::fcntl(slave, libc::F_SETFL, libc::O_NONBLOCK);
        let mut buf = [0u8; 64];
        let n = libc::read(slave, buf.as_mut_ptr().cast(), buf.len());
        libc::close(slave);
        libc::close(master);
        if n > 0 {
            String::from_utf8_lossy(&buf[..n as usize]).into_owned()
        } else {
            String::new()
        }
    };
    assert_eq!(pending, "", "typed into the terminal");
}

#[test]
fn modes_and_times_outside_grants_cannot_change() {
    // Layer: the mount namespace (what is not granted is not there; what
    // is granted read-only is mounted read-only).
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "x").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ro = tempfile::tempdir().unwrap();
    let ro_file = ro.path().join("data");
    std::fs::write(&ro_file, "x").unwrap();
    std::fs::set_permissions(&ro_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.mode(), m.mtime())
    };
    let (victim_before, ro_before) = (before(&victim), before(&ro_file));
    let ro_grant = format!("{}::{}", ro.path().display(), ro.path().display());
    let script = format!(
        "chmod 4755 {v}; touch -d 2001-01-01 {v}; chmod 4777 {r}; touch -d 2001-01-01 {r}",
        v = victim.display(),
        r = ro_file.display()
    );
    let out = escape(
        &[
            "--allow-run",
            "sh",
            "--allow-run",
            "chmod",
            "--allow-run",
            "touch",
            "--dir-ro",
            &ro_grant,
        ],
        &["sh", "-c", &script],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(before(&victim), victim_before, "{}", stdout(&out));
    assert_eq!(before(&ro_file), ro_before, "{}", stdout(&out));
    let err = line(&out, "stderr ");
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn root_only_files_are_not_there() {
    // Layer: the mount namespace's /etc holds what any user could read.
    let secrets: Vec<&str> = [
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/ssl/private/ssl-cert-snakeoil.key",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    assert!(!secrets.is_empty());
    let mut argv = vec!["cat"];
    argv.extend(&secrets);
    let out = escape(&["--allow-run", "cat"], &argv);
    assert_eq!(probe_stdout(&out), "\"\"", "read a root-only file");
    assert_ne!(line(&out, "returncode "), "0");
    // What everyone may read is still there.
    let out = escape(&["--allow-run", "cat"], &["cat", "/etc/passwd"]);
    assert!(
        probe_stdout(&out).contains("root:x:0:0"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unix_sockets_outside_grants_are_unreachable() {
    // Layer: the mount namespace (the socket file is not there).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "use IO::Socket::UNIX; IO::Socket::UNIX->new(Peer => '{}') or die \"connect: $!\\n\"; print \"connected\\n\"",
        path.display()
    );
    let out = escape(&["--allow-run", "perl"], &["perl", "-e", &script]);
    assert!(
        !probe_stdout(&out).contains("connected"),
        "{}",
        stdout(&out)
    );
    assert!(
        line(&out, "stderr ").contains("connect: "),
        "{}",
        stdout(&out)
    );
    assert!(
        listener.accept().is_err(),
        "the host's socket got a connection"
    );
}

#[test]
fn udp_needs_the_network_grant() {
    // Layer: the network namespace (loopback only, not the host's).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let script = format!(
        "use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:{port}', Proto => 'udp') or die \"socket: $!\\n\"; $s->send('PING') or die \"send: $!\\n\"; print \"sent\\n\""
    );
    let received = |grants: &[&str]| {
        let out = escape(grants, &["perl", "-e", &script]);
        let mut buf = [0u8; 16];
        let got = socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec());
        (got, out)
    };
    let (got, out) = received(&["--allow-run", "perl"]);
    assert_eq!(got, None, "a datagram left without --network: {out:?}");
    let (got, out) = received(&["--allow-run", "perl", "--network"]);
    assert_eq!(got.as_deref(), Some(&b"PING"[..]), "{out:?}");
}

#[test]
fn a_nested_user_namespace_is_refused() {
    // Layer: seccomp (unshare, clone and clone3 with namespace flags).
    let script = "syscall(272, 0x10000000) == 0 or die \"unshare: $!\\n\"; print \"unshared\\n\"";
    let out = escape(&["--allow-run", "perl"], &["perl", "-e", script]);
    assert!(!probe_stdout(&out).contains("unshared"), "{}", stdout(&out));
    assert!(
        line(&out, "stderr ").contains("unshare: Operation not permitted"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn commands_never_run_as_root() {
    // Layer: the user namespace maps an unprivileged uid.
    let out = escape(&["--allow-run", "id"], &["id", "-u"]);
    let uid: u32 = probe_stdout(&out)
        .trim_matches(|c| c == '"' || c == '\n')
        .parse()
        .unwrap_or_else(|_| panic!("{}", stdout(&out)));
    assert_ne!(uid, 0, "a command ran as root");
}

#[test]
fn the_loader_cannot_run_code_from_a_grant() {
    // Layer: read-write grants are mounted noexec.
    let loader = "/lib64/ld-linux-x86-64.so.2";
    if !Path::new(loader).exists() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("mytrue");
    std::fs::copy("/bin/true", &copy).unwrap();
    let grant = format!("{}::{}", work.path().display(), work.path().display());
    let script = format!("{loader} {} && echo ran", copy.display());
    let out = escape(
        &["--allow-run", "sh", "--dir", &grant],
        &["sh", "-c", &script],
    );
    assert!(!probe_stdout(&out).contains("ran"), "{}", stdout(&out));
}

#[test]
fn exec_wrappers_cannot_start_ungranted_programs() {
    // Layer: Landlock's execute right covers the granted binaries only.
    let out = escape(&["--allow-run", "env"], &["env", "id"]);
    assert!(!probe_stdout(&out).contains("uid="), "{}", stdout(&out));
    assert_eq!(line(&out, "returncode "), "126", "{}", stdout(&out));

    let work = tempfile::tempdir().unwrap();
    let grant = format!("{}::{}", work.path().display(), work.path().display());
    let script = format!(
        "find {} -maxdepth 0 -exec id \\; ; echo x | xargs id",
        work.path().display()
    );
    let out = escape(
        &[
            "--allow-run",
            "sh",
            "--allow-run",
            "find",
            "--allow-run",
            "xargs",
            "--dir-ro",
            &grant,
        ],
        &["sh", "-c", &script],
    );
    assert!(!probe_stdout(&out).contains("uid="), "{}", stdout(&out));
    assert!(
        line(&out, "stderr ").contains("Permission denied"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn environment_the_policy_never_granted_is_refused() {
    // Layer: the per-command environment allow-list.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().display().to_string();
    std::fs::write(work.path().join("a"), "a\n").unwrap();
    std::fs::write(work.path().join("b"), "b\n").unwrap();
    std::fs::write(work.path().join("evil.sh"), "echo PWNED\n").unwrap();
    std::fs::write(work.path().join("job.sh"), "echo job\n").unwrap();
    let policy = work.path().join("job.toml");
    std::fs::write(
        &policy,
        format!(
            "[commands.git]\nsubcommands = [\"diff\"]\n\n\
             [commands.bash]\nsubcommands = [\"{dir}/job.sh\"]\n\n\
             [[dirs]]\nhost = \"{dir}\"\nguest = \"{dir}\"\n"
        ),
    )
    .unwrap();
    let grants = ["--policy", policy.to_str().unwrap()];
    let external = format!("GIT_EXTERNAL_DIFF=sh {dir}/evil.sh");
    let out = escape(
        &grants,
        &[
            "--env",
            &external,
            "git",
            "diff",
            "--no-index",
            &format!("{dir}/a"),
            &format!("{dir}/b"),
        ],
    );
    let text = stdout(&out);
    assert!(!text.contains("PWNED"), "{text}");
    assert!(text.starts_with("error EPERM"), "{text}");
    assert!(text.contains("GIT_EXTERNAL_DIFF"), "{text}");

    let bash_env = format!("BASH_ENV={dir}/evil.sh");
    let out = escape(
        &grants,
        &["--env", &bash_env, "bash", &format!("{dir}/job.sh")],
    );
    let text = stdout(&out);
    assert!(!text.contains("PWNED"), "{text}");
    assert!(text.starts_with("error EPERM"), "{text}");
    assert!(text.contains("BASH_ENV"), "{text}");
    // The job itself runs.
    let out = escape(&grants, &["bash", &format!("{dir}/job.sh")]);
    assert_eq!(probe_stdout(&out), "\"job\n\"", "{}", stdout(&out));
}

#[test]
fn abbreviations_of_denied_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("job.toml");
    std::fs::write(
        &policy,
        "[commands.sort]\ndeny_flags = [\"--compress-program\"]\n",
    )
    .unwrap();
    for arg in [
        "--compress-program=sh",
        "--compress-prog=sh",
        "--compress-p",
        "--compr=sh",
    ] {
        let out = escape(
            &["--policy", policy.to_str().unwrap()],
            &["sort", arg, "/dev/null"],
        );
        let text = stdout(&out);
        assert!(text.starts_with("error EPERM"), "{arg}: {text}");
        assert!(text.contains(arg), "{arg}: {text}");
    }
    // Other long options still pass.
    let out = escape(
        &["--policy", policy.to_str().unwrap()],
        &["sort", "--reverse", "/dev/null"],
    );
    assert_eq!(line(&out, "returncode "), "0", "{}", stdout(&out));
}

#[test]
fn grants_appear_where_the_guest_sees_them() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("in.txt"), "b\na\n").unwrap();
    let grant = format!("{}::/work", work.path().display());
    let out = escape(
        &["--allow-run", "sort", "--dir", &grant],
        &["sort", "/work/in.txt"],
    );
    assert_eq!(probe_stdout(&out), "\"a\nb\n\"", "{}", stdout(&out));
    // A command writes its results where the guest will read them.
    let out = escape(
        &["--allow-run", "sort", "--dir", &grant],
        &["sort", "-o", "/work/out.txt", "/work/in.txt"],
    );
    assert_eq!(line(&out, "returncode "), "0", "{}", stdout(&out));
    let mut text = String::new();
    std::fs::File::open(work.path().join("out.txt"))
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "a\nb\n");
}

#[test]
fn procbridge_itself_keeps_no_privilege_once_grants_are_open() {
    // Defence in depth: a bug in the wasm sandbox must not be a root
    // shell. The root guest process and a fork child both run with no
    // capabilities, no_new_privs and a seccomp filter.
    use std::io::{BufRead, BufReader, Write};
    for grants in [&["--allow-run", "true"][..], &[]] {
        let mut host = procbridge()
            .arg("run")
            .args(grants)
            .arg(guest("escape_probe"))
            .arg("pause")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        let pids: Vec<&str> = ready.strip_prefix("ready ").unwrap().split(' ').collect();
        for pid in pids {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            for field in [
                "NoNewPrivs:\t1",
                "Seccomp:\t2",
                "CapEff:\t0000000000000000",
                "CapPrm:\t0000000000000000",
                "CapBnd:\t0000000000000000",
            ] {
                assert!(
                    status.contains(field),
                    "{grants:?} {pid}: no {field}:\n{status}"
                );
            }
        }
        writeln!(host.stdin.take().unwrap()).unwrap();
        assert!(host.wait().unwrap().success());
    }
}

#[test]
fn without_the_jail_commands_are_still_confined() {
    // Where the machine cannot make namespaces (or the embedder turns the
    // jail off), commands start directly: their own session, seccomp,
    // Landlock and no capabilities still hold.
    use procbridge::{GuestBuilder, OutputCapture, Policy};
    let policy = Policy::builder()
        .allow_run("sh")
        .unwrap()
        .allow_run("cat")
        .unwrap()
        .dir("/proc", "/proc", procbridge::DirPerms::ReadOnly)
        .unwrap()
        .build();
    let out = OutputCapture::new(1 << 20);
    let program = runtime().load_file(guest("escape_probe")).unwrap();
    let mut builder = GuestBuilder::new();
    builder
        .args([
            "escape_probe",
            "run",
            "sh",
            "-c",
            "cat /proc/self/status /proc/self/stat",
        ])
        .stdout(procbridge::Stdio::Capture(out.clone()))
        .policy(policy)
        .jail(false);
    let state = builder.build().unwrap();
    assert!(!state.is_jailed());
    assert_eq!(runtime().run(&program, state).unwrap(), 0);
    let text = out.text().replace("\\t", "\t").replace("\\n", "\n");
    for field in [
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "CapEff:\t0000000000000000",
        "CapBnd:\t0000000000000000",
    ] {
        assert!(text.contains(field), "no {field}:\n{text}");
    }
    // Not in the jail: the host's PID namespace, so one pid only.
    let nspid = text.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert_eq!(nspid.split_whitespace().count(), 2, "{nspid}");
    // `cat`'s session is the shell's: the command (the shell) leads one.
    let stat = text.lines().find(|l| l.contains(" (cat) ")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let (ppid, session) = (fields[1], fields[3]);
    assert_eq!(ppid, session, "{stat}");
}

#[test]
fn signals_while_the_jail_starts_do_not_stop_it() {
    // An embedder's signal handlers (a profiler's SIGPROF, a fuzzer's
    // SIGALRM, SIGCHLD) interrupt the waits while the jail starts: they
    // must be retried, never taken for a jail that did not start.
    use procbridge::{GuestBuilder, Policy};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    extern "C" fn ignore(_: libc::c_int) {}
    // SAFETY: a handler that does nothing, for a signal nothing else uses.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
        assert_eq!(
            libc::sigaction(libc::SIGURG, &action, std::ptr::null_mut()),
            0
        );
    }
    let policy = Arc::new(Policy::builder().allow_run("true").unwrap().build());
    for _ in 0..3 {
        // SAFETY: this thread's own id.
        let target = unsafe { libc::pthread_self() };
        let done = Arc::new(AtomicBool::new(false));
        let hammer = {
            let done = done.clone();
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    // SAFETY: the target thread outlives this loop (it joins us).
                    unsafe { libc::pthread_kill(target, libc::SIGURG) };
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        let mut builder = GuestBuilder::new();
        builder.args(["x"]).policy(policy.clone());
        let state = builder.build();
        done.store(true, Ordering::Relaxed);
        hammer.join().unwrap();
        let state = state.expect("the jail starts while signals arrive");
        assert!(state.is_jailed());
    }
}

#[test]
fn commands_can_run_as_another_host_user() {
    use std::os::unix::fs::MetadataExt;
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let grant = format!("{}::/w", work.path().display());
    let args = [
        "--run-as",
        "65534:65534",
        "--allow-run",
        "sh",
        "--allow-run",
        "id",
        "--dir",
        &grant,
    ];
    let out = escape(&args, &["sh", "-c", "id -u; id -G; echo x > /w/made"]);
    // SAFETY: a plain id query.
    if unsafe { libc::geteuid() } != 0 {
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("only procbridge running as root"),
            "{}",
            stderr(&out)
        );
        return;
    }
    assert_eq!(probe_stdout(&out), "\"1000\n1000\n\"", "{}", stdout(&out));
    let made = std::fs::metadata(work.path().join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (65534, 65534));
    // Root is never an id to run as.
    let out = escape(&["--run-as", "0", "--allow-run", "id"], &["id"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("never run as root"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_command_cannot_trace_signal_the_host_or_connect_out() {
    // seccomp (ptrace), the PID namespace and Landlock (signals), the
    // network namespace and Landlock (TCP).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "syscall(101, 0, 0, 0, 0) == 0 and print \"traced\\n\"; print \"ptrace: $!\\n\";
         kill(0, {host}) and print \"signalled\\n\"; print \"kill: $!\\n\";
         use IO::Socket::INET;
         IO::Socket::INET->new('127.0.0.1:{port}') and print \"connected\\n\";",
        host = std::process::id()
    );
    let out = escape(&["--allow-run", "perl"], &["perl", "-e", &script]);
    let text = probe_stdout(&out);
    assert!(
        text.contains("ptrace: Operation not permitted"),
        "{}",
        stdout(&out)
    );
    assert!(text.contains("kill: No such process"), "{}", stdout(&out));
    for bad in ["traced", "signalled", "connected"] {
        assert!(!text.contains(bad), "{bad}: {}", stdout(&out));
    }
    // With the network grant the same connection is made.
    let out = escape(
        &["--allow-run", "perl", "--network"],
        &["perl", "-e", &script],
    );
    assert!(probe_stdout(&out).contains("connected"), "{}", stdout(&out));
}

#[test]
fn a_fork_child_holds_no_descriptor_of_its_parents_commands() {
    // The parent's commands' pipes, pidfds and jail channels are the
    // parent's: a fork child closes its copies.
    use std::io::{BufRead, BufReader, Write};
    let fds_of_fork_child = |popens: &str| {
        let mut host = procbridge()
            .args(["run", "--allow-run", "sleep"])
            .arg(guest("escape_probe"))
            .args(["fork_with_popens", popens])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let pid = line.strip_prefix("child ").unwrap().to_string();
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|target| target.display().to_string())
            .collect();
        writeln!(host.stdin.take().unwrap()).unwrap();
        assert!(host.wait().unwrap().success());
        fds
    };
    let (mut none, mut three) = (fds_of_fork_child("0"), fds_of_fork_child("3"));
    // Socket and pipe inode numbers differ between runs: compare kinds.
    let kind = |t: &String| t.split(':').next().unwrap_or("").to_string();
    none.sort();
    three.sort();
    let none: Vec<String> = none.iter().map(kind).collect();
    let three: Vec<String> = three.iter().map(kind).collect();
    assert_eq!(three.len(), none.len(), "{three:?}\nagainst\n{none:?}");
}

/// `procbridge run GRANTS... escape_probe SCENARIO...` (several scenarios
/// may be joined with `+`).
fn probe_run(grants: &[&str], scenario: &[&str]) -> Output {
    procbridge()
        .arg("run")
        .args(grants)
        .arg(guest("escape_probe"))
        .args(scenario)
        .stdin(Stdio::null())
        .output()
        .expect("run procbridge")
}

#[test]
fn a_mount_point_swapped_for_a_link_stops_the_next_job() {
    // Found in review: a guest renamed the directory another grant is
    // mounted on (inside its read-write grant) and put a link there; the
    // next run could not build the jail and ran its commands without one.
    let root = tempfile::tempdir().unwrap();
    let (work, reference) = (root.path().join("work"), root.path().join("ref"));
    std::fs::create_dir_all(work.join("ref")).unwrap();
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::create_dir(&reference).unwrap();
    let outer = format!("{}::/w", work.display());
    let inner = format!("{}::/w/ref", reference.display());
    let grants = [
        "--allow-run",
        "sh",
        "--dir",
        outer.as_str(),
        "--dir-ro",
        inner.as_str(),
    ];
    let out = probe_run(&grants, &["swap", "/w/./ref", "sub"]);
    assert!(
        stdout(&out).contains("linked /w/./ref -> sub"),
        "{}",
        stdout(&out)
    );
    let out = probe_run(&grants, &["run", "sh", "-c", "echo ran"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("the jail cannot be built"), "{err}");
    assert!(err.contains("/w/ref"), "{err}");
    assert!(
        !stdout(&out).contains("ran"),
        "a command ran without the jail"
    );
}

#[test]
fn mount_points_are_never_made_inside_a_grant() {
    let root = tempfile::tempdir().unwrap();
    let (work, reference) = (root.path().join("work"), root.path().join("ref"));
    std::fs::create_dir(&work).unwrap();
    std::fs::create_dir(&reference).unwrap();
    let outer = format!("{}::/w", work.display());
    let inner = format!("{}::/w/ref", reference.display());
    let out = probe_run(
        &["--allow-run", "true", "--dir", &outer, "--dir-ro", &inner],
        &["run", "true"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no directory /w/ref to mount it on"),
        "{}",
        stderr(&out)
    );
    assert!(
        !work.join("ref").exists(),
        "made a directory in the operator's grant"
    );
}

#[test]
fn guest_paths_inside_the_jails_own_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for at in ["/etc/appconf", "/proc", "/usr/local/x", "/dev/x"] {
        let grant = format!("{}::{at}", dir.path().display());
        let out = probe_run(
            &["--allow-run", "true", "--dir-ro", &grant],
            &["run", "true"],
        );
        assert_eq!(out.status.code(), Some(2), "{at}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("give it another guest path"), "{at}: {err}");
    }
}

#[test]
fn a_command_inside_a_read_write_grant_is_refused() {
    // Found in review: a guest rewrote a granted script's `#!` line in its
    // read-write grant; the next run bound the file it named (any file of
    // the host) into the jail.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let grant = format!("{}::/w", dir.path().display());
    let out = probe_run(
        &["--allow-run", script.to_str().unwrap(), "--dir", &grant],
        &["run", script.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("lies inside the read-write grant"), "{err}");
    // Read-only, it runs.
    let out = probe_run(
        &["--allow-run", script.to_str().unwrap(), "--dir-ro", &grant],
        &["run", script.to_str().unwrap()],
    );
    assert_eq!(probe_stdout(&out), "\"hi\n\"", "{}", stderr(&out));
}

#[test]
fn an_interpreter_cannot_run_a_program_from_a_memfd() {
    // Found in review: perl copied an ungranted program into a memfd and
    // executed it. Layer: the jail's vm.memfd_noexec = 2.
    let script = r#"
        my $name = "x";
        my $fd = syscall(319, $name, 0);
        die "memfd: $!\n" if $fd < 0;
        open(my $src, "<", "/usr/bin/id") or die "open: $!\n";
        open(my $dst, ">&=", $fd) or die "fdopen: $!\n";
        binmode $src;
        my $data = do { local $/; <$src> };
        syswrite($dst, $data) == length($data) or die "write: $!\n";
        exec {"/proc/self/fd/$fd"} "id" or die "exec: $!\n";
    "#;
    let out = escape(&["--allow-run", "perl"], &["perl", "-e", script]);
    assert!(!probe_stdout(&out).contains("uid="), "{}", stdout(&out));
    assert!(line(&out, "stderr ").contains("exec: "), "{}", stdout(&out));
}

#[test]
fn the_jails_proc_hides_what_root_alone_may_read_and_is_read_only() {
    // Found in review: a command whose uid is root's outside (procbridge
    // as root, no --run-as) read root-only /proc files.
    let script = "for f in /proc/slabinfo /proc/keys /proc/timer_list /proc/kcore; do \
                  [ -e $f ] && { cat $f >/dev/null 2>&1 && echo read $f || echo masked $f; }; done; \
                  echo 5 > /proc/sys/kernel/printk_ratelimit && echo wrote";
    let out = escape(
        &["--allow-run", "sh", "--allow-run", "cat"],
        &["sh", "-c", script],
    );
    let text = probe_stdout(&out);
    assert!(!text.contains("read "), "{}", stdout(&out));
    assert!(!text.contains("wrote"), "{}", stdout(&out));
    assert!(text.contains("masked /proc/keys"), "{}", stdout(&out));
}

#[test]
fn vsock_is_refused() {
    // Found in review: AF_VSOCK reaches the hypervisor whatever the
    // network namespace. Layer: seccomp.
    let script = "socket(my $s, 40, 1, 0) and print \"socket\\n\"; print \"vsock: $!\\n\"";
    for grants in [
        &["--allow-run", "perl"][..],
        &["--allow-run", "perl", "--network"],
    ] {
        let out = escape(grants, &["perl", "-e", script]);
        let text = probe_stdout(&out);
        assert!(!text.contains("socket\n"), "{grants:?}: {}", stdout(&out));
        assert!(
            text.contains("vsock: Operation not permitted"),
            "{}",
            stdout(&out)
        );
    }
}

#[test]
fn commands_start_with_every_signal_at_its_default_action() {
    // The host ignores SIGPIPE and handles the signals of wasm traps; the
    // jail's helper puts back only the signals it changed itself. Either
    // way no command starts with a signal ignored, handled or blocked.
    use procbridge::{GuestBuilder, OutputCapture, Policy};
    for jail in [false, true] {
        // The jail has its own /proc, readable by commands; without it
        // the host's must be granted.
        let mut policy = Policy::builder().allow_run("cat").unwrap();
        if !jail {
            policy = policy
                .dir("/proc", "/proc", procbridge::DirPerms::ReadOnly)
                .unwrap();
        }
        let policy = policy.build();
        let out = OutputCapture::new(1 << 20);
        let program = runtime().load_file(guest("escape_probe")).unwrap();
        let mut builder = GuestBuilder::new();
        builder
            .args(["escape_probe", "run", "cat", "/proc/self/status"])
            .stdout(procbridge::Stdio::Capture(out.clone()))
            .policy(policy)
            .jail(jail);
        let state = builder.build().unwrap();
        assert_eq!(runtime().run(&program, state).unwrap(), 0);
        let text = out.text().replace("\\t", "\t").replace("\\n", "\n");
        for field in [
            "SigBlk:\t0000000000000000",
            "SigIgn:\t0000000000000000",
            "SigCgt:\t0000000000000000",
        ] {
            assert!(text.contains(field), "jail {jail}: no {field}:\n{text}");
        }
    }
}

#[test]
fn a_request_larger_than_the_channel_buffer_still_starts_the_command() {
    // A spawn request waits in the command's channel before the helper
    // hears of it; one larger than the channel holds (here 800 kB of
    // arguments, the kernel allows 128 kB per argument) goes in two parts
    // and must arrive whole.
    let pieces: Vec<String> = (0..8)
        .map(|i| char::from(b'a' + i).to_string().repeat(100_000))
        .collect();
    let script = r#"n=0; for a; do n=$((n+${#a})); done; echo $n $# $(printf %.1s "$1") $(printf %.1s "$8")"#;
    let mut args = vec!["run", "sh", "-c", script, "sh"];
    args.extend(pieces.iter().map(String::as_str));
    let policy = procbridge::Policy::builder()
        .allow_run("sh")
        .unwrap()
        .build();
    let out = run_captured(&guest("escape_probe"), &args, policy).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("800000 8 a h"), "{}", out.stdout);
}
