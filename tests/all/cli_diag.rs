//! Issue 17: no silence on long work, and diagnostics. A progress line on a
//! terminal while a module compiles; `procbridge compile` and `procbridge
//! cache`; `-v`/`-vv`/`-q` and `RUST_LOG` for the host's own diagnostics.
//! Everything through the `procbridge` command as a user runs it; the
//! terminal is a pseudo-terminal.

use crate::support::*;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A cache, a configuration directory (its key) and modules of its own.
struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("seven.wat"), exits_with(7)).unwrap();
        std::fs::write(tmp.path().join("eight.wat"), exits_with(8)).unwrap();
        Scratch { tmp }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// `procbridge ARGS` with this scratch's cache and key, no `RUST_LOG`
    /// and no cap from the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_procbridge"));
        cmd.env("PROCBRIDGE_CACHE_DIR", self.cache())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env_remove("RUST_LOG")
            .env_remove("PROCBRIDGE_CACHE_MAX_MB")
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn module(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// The entries (compiled modules) in `dir`.
fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |list| {
        list.filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".pbcache")
        })
        .count()
    })
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

#[test]
fn compile_then_run_is_a_cache_hit() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    let out = s.run(&["compile", &seven]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", text(&out));
    assert!(
        stdout(&out).starts_with(&format!("{seven} (")),
        "{}",
        text(&out)
    );
    assert!(
        stdout(&out).trim_end().ends_with(": compiled"),
        "{}",
        text(&out)
    );
    assert_eq!(entries(&s.cache()), 1);

    let out = s.run(&["compile", &seven]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).trim_end().ends_with(": already cached"),
        "{}",
        text(&out)
    );

    // The run finds it: -v says so, and nothing is compiled.
    let out = s.run(&["-v", "run", &seven]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("procbridge: info: module cache hit for {seven}")),
        "{err}"
    );
    assert!(!err.contains("compiled"), "{err}");
    assert_eq!(entries(&s.cache()), 1);

    // Without compile first, -v says the run compiled it.
    let out = s.run(&["run", "-v", &s.module("eight.wat")]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("module cache miss for"), "{err}");
    assert!(err.contains("and stored it in the module cache"), "{err}");
}

#[test]
fn compile_goes_on_past_a_bad_module_and_exits_as_run_would() {
    let s = Scratch::new();
    std::fs::write(s.path("garbage.wasm"), b"\0asm garbage").unwrap();
    std::fs::write(
        s.path("unknown.wat"),
        r#"(module (import "procbridge" "no_such_function" (func))
             (func (export "_start")))"#,
    )
    .unwrap();
    for (module, code, run_code) in [
        ("missing.wasm", 66, 66),
        ("garbage.wasm", 65, 65),
        ("unknown.wat", 67, 67),
    ] {
        let path = s.module(module);
        let out = s.run(&["compile", &path, &s.module("seven.wat")]);
        assert_eq!(out.status.code(), Some(code), "{module}: {}", text(&out));
        assert!(stderr(&out).contains(module), "{}", text(&out));
        // The good module after it is compiled all the same.
        assert!(stdout(&out).contains("seven.wat ("), "{}", text(&out));
        assert!(!stdout(&out).contains(module), "{}", text(&out));
        assert_eq!(s.run(&["run", &path]).status.code(), Some(run_code));
    }
}

#[test]
fn cache_list_size_clean_and_trim() {
    let s = Scratch::new();
    let (seven, eight) = (s.module("seven.wat"), s.module("eight.wat"));
    // No cache yet: empty, not an error.
    let out = s.run(&["cache", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("0 compiled modules"),
        "{}",
        text(&out)
    );

    assert!(s.run(&["compile", &seven, &eight]).status.success());
    let out = s.run(&["cache", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list = stdout(&out);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    assert!(
        lines[0].contains("LAST USED") && lines[0].contains("MODULE"),
        "{list}"
    );
    // Most recently used first: eight was compiled last.
    assert!(lines[1].ends_with(&eight), "{list}");
    assert!(lines[2].ends_with(&seven), "{list}");
    for line in &lines[1..3] {
        assert!(line.contains(" KB ") || line.contains(" B "), "{list}");
    }
    assert!(lines[3].starts_with("2 compiled modules, "), "{list}");
    assert!(lines[3].contains("(at most 1024 MiB)"), "{list}");
    assert!(
        lines[3].ends_with(&s.cache().display().to_string()),
        "{list}"
    );

    // Seven used now: it goes first.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(s.run(&["run", &seven]).status.code(), Some(7));
    let list = stdout(&s.run(&["cache", "list"]));
    assert!(list.lines().nth(1).unwrap().ends_with(&seven), "{list}");

    // The total alone, with the cap of the flag or of the environment.
    let out = s.run(&["cache", "size", "--cache-max-mb", "7"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("2 compiled modules, "),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("(at most 7 MiB)"), "{}", text(&out));
    let out = s
        .command(&["cache", "size"])
        .env("PROCBRIDGE_CACHE_MAX_MB", "5")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("(at most 5 MiB)"), "{}", text(&out));

    // Nothing is that old; then everything goes.
    let out = s.run(&["cache", "clean", "--older-than", "1d"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("removed 0 compiled modules"),
        "{}",
        text(&out)
    );
    assert_eq!(entries(&s.cache()), 2);
    let out = s.run(&["cache", "clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("removed 2 compiled modules"),
        "{}",
        text(&out)
    );
    assert_eq!(entries(&s.cache()), 0);
    assert_eq!(std::fs::read_dir(s.cache()).unwrap().count(), 0);
    assert!(stdout(&s.run(&["cache", "list"])).starts_with("0 compiled modules"));
    // And the next run compiles again.
    let out = s.run(&["-v", "run", &seven]);
    assert!(stderr(&out).contains("module cache miss"), "{}", text(&out));

    // Trimming to a cap of 0 removes the least recently used: all.
    assert!(s.run(&["compile", &eight]).status.success());
    let out = s.run(&["cache", "trim", "--cache-max-mb", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("removed 2 compiled modules"),
        "{}",
        text(&out)
    );
    assert_eq!(entries(&s.cache()), 0);
    // A bad age is a usage error.
    assert_eq!(
        s.run(&["cache", "clean", "--older-than", "soon"])
            .status
            .code(),
        Some(2)
    );
}

/// Where `name` is found in PATH, as `--allow-run` resolves it.
fn which(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} is not in PATH"))
}

#[test]
fn verbose_says_what_was_granted_resolved_and_confined() {
    let s = Scratch::new();
    std::fs::create_dir(s.path("work")).unwrap();
    let work = s.path("work").canonicalize().unwrap();
    let out = s.run(&[
        "run",
        "-v",
        "--allow-run",
        "echo",
        "--dir",
        &format!("{}::/work", work.display()),
        "--env",
        "GREETING=hi",
        guest("call").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    let echo = which("echo");
    assert!(
        err.contains(&format!(
            "procbridge: info: granted: command \"echo\", resolved to {}",
            echo.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "granted: directory {}, read-write, seen by the guest as /work",
            work.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("granted: environment variables GREETING"),
        "{err}"
    );
    // Which layers confine the commands and procbridge's own processes
    // (which ones depends on the machine; that they are named does not).
    assert!(
        err.contains("procbridge: info: commands are confined by: no capabilities"),
        "{err}"
    );
    assert!(
        err.contains("procbridge's own processes are confined by:"),
        "{err}"
    );
    assert!(
        err.contains("commands run in the job's jail: user, PID, mount")
            || err.contains("commands run without the jail"),
        "{err}"
    );
    // Nothing of -vv.
    assert!(!err.contains("debug:"), "{err}");
    assert!(
        stdout(&out).contains("hello from a child process"),
        "{}",
        text(&out)
    );
}

/// The number after `marker` in `text`.
fn number_after(text: &str, marker: &str) -> u32 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"))
        + marker.len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn very_verbose_says_every_process_started_with_its_pid() {
    let s = Scratch::new();
    let out = s.run(&["-vv", "run", guest("fork").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    let child = number_after(&err, "procbridge: debug: os.fork child started: pid ");
    // The pid is the one the guest's child reports as its own.
    assert!(
        stdout(&out).contains(&format!("I am child process ({child})")),
        "{}",
        text(&out)
    );

    let out = s.run(&[
        "-vv",
        "run",
        "--allow-run",
        "echo",
        guest("call").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    let marker = format!(
        "procbridge: debug: command {} started: pid ",
        which("echo").display()
    );
    assert!(number_after(&err, &marker) > 0, "{err}");
    assert!(
        err.contains(r#"argv ["echo", "hello from a child process"]"#),
        "{err}"
    );

    let out = s.run(&["-vv", "run", guest("pool").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        stderr(&out)
            .matches("procbridge: debug: Pool worker started: pid ")
            .count(),
        4,
        "{}",
        text(&out)
    );
}

#[test]
fn rust_log_filters_diagnostics_unless_a_flag_is_given() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    // By default: nothing but the guest.
    let out = s.run(&["run", &seven]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out), "");
    // RUST_LOG=debug: the debug lines too.
    let out = s
        .command(&["run", &seven])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("procbridge: debug: module cache: "), "{err}");
    assert!(err.contains("procbridge: info: granted: nothing"), "{err}");
    // One target only.
    let out = s
        .command(&["run", &seven])
        .env("RUST_LOG", "procbridge::cache=info")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("module cache hit"), "{err}");
    assert!(!err.contains("granted"), "{err}");
    // A directive on spans would need locks in fork children: refused,
    // the rest kept.
    let out = s
        .command(&["run", &seven])
        .env("RUST_LOG", "procbridge[load]=debug,procbridge::cache=info")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("procbridge: warning: RUST_LOG: filters on spans or fields are not supported, ignored: procbridge[load]=debug"),
        "{err}"
    );
    assert!(err.contains("module cache hit"), "{err}");
    // A flag wins over RUST_LOG.
    let out = s
        .command(&["-q", "run", &seven])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out), "");
}

#[test]
fn quiet_prints_nothing_extra() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    let out = s.run(&["-q", "compile", &seven]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
    assert_eq!(entries(&s.cache()), 1);
    let out = s.run(&["run", "-q", &seven]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out), "");
    let out = s.run(&["cache", "-q", "clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()));
    assert_eq!(entries(&s.cache()), 0);
    // Errors still show.
    let out = s.run(&["-q", "compile", &s.module("missing.wasm")]);
    assert_eq!(out.status.code(), Some(66));
    assert!(stderr(&out).contains("missing.wasm"), "{}", text(&out));
    // -q and -v contradict each other.
    assert_eq!(s.run(&["-q", "-v", "run", &seven]).status.code(), Some(2));
}

/// A pseudo-terminal: the master, and the path of its slave.
fn open_pty() -> (OwnedFd, PathBuf) {
    // SAFETY: posix_openpt, grantpt, unlockpt and ptsname_r on a fresh
    // descriptor, with a buffer of the size given.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master = OwnedFd::from_raw_fd(master);
        use std::os::fd::AsRawFd;
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0
        );
        let name = std::ffi::CStr::from_ptr(name.as_ptr());
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
        (master, PathBuf::from(name.to_str().unwrap()))
    }
}

/// Runs `cmd` with its stderr on a terminal (stdout a pipe): its exit
/// status, stdout, and what it wrote on the terminal.
fn with_stderr_on_a_terminal(mut cmd: Command) -> (Option<i32>, String, String) {
    let (master, slave) = open_pty();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&slave)
        .unwrap();
    cmd.stderr(terminal).stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // The command's copy of the terminal closes with it: the reader's
    // end of file is the last writer gone.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed.
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), out, reader.join().unwrap())
}

/// The progress line of the CPython module compiling: 26 MB, seconds of
/// work on any machine. (Needs `guests/install-python`, as the Python
/// tests do.)
#[test]
fn a_slow_compile_shows_a_progress_line_on_a_terminal_then_compiled_cached() {
    let s = Scratch::new();
    let python = |args: &[&str]| {
        let mut all = vec!["python", "-c", "print('hi')"];
        all.splice(0..0, args.iter().copied());
        s.command(&all)
    };
    let (code, out, terminal) = with_stderr_on_a_terminal(python(&[]));
    assert_eq!(code, Some(0), "{terminal}");
    assert_eq!(out, "hi\n");
    // Drawn and drawn again over itself, then finished on a line of its
    // own.
    assert!(
        terminal.contains("\r\x1b[2Kprocbridge: python.wasm (26.3 MB): compiling... "),
        "{terminal:?}"
    );
    assert!(
        terminal.matches("compiling... ").count() >= 2,
        "{terminal:?}"
    );
    let last = terminal.rsplit("\x1b[2K").next().unwrap();
    assert!(
        last.starts_with("procbridge: python.wasm (26.3 MB): compiled, cached ("),
        "{terminal:?}"
    );
    assert!(last.ends_with("s)\r\n"), "{terminal:?}");

    // From the cache: too quick for a line.
    let (code, out, terminal) = with_stderr_on_a_terminal(python(&[]));
    assert_eq!((code, out.as_str()), (Some(0), "hi\n"));
    assert_eq!(terminal, "");

    // `compile` finds it there too, with nothing on the terminal.
    let (code, out, terminal) = with_stderr_on_a_terminal(s.command(&["compile", "--python"]));
    assert_eq!(code, Some(0), "{terminal}");
    assert!(
        out.starts_with('/') && out.ends_with("python.wasm (26.3 MB): already cached\n"),
        "{out}"
    );
    assert_eq!(terminal, "");
}

#[test]
fn without_the_cache_the_line_ends_compiled_and_quiet_has_none() {
    let s = Scratch::new();
    let python = |args: &[&str]| {
        let mut all = vec!["python", "--no-cache", "-c", "print('hi')"];
        all.splice(0..0, args.iter().copied());
        s.command(&all)
    };
    let (code, _, terminal) = with_stderr_on_a_terminal(python(&[]));
    assert_eq!(code, Some(0), "{terminal}");
    let last = terminal.rsplit("\x1b[2K").next().unwrap();
    assert!(
        last.starts_with("procbridge: python.wasm (26.3 MB): compiled ("),
        "{terminal:?}"
    );
    let (code, out, terminal) = with_stderr_on_a_terminal(python(&["-q"]));
    assert_eq!((code, out.as_str()), (Some(0), "hi\n"));
    assert_eq!(terminal, "");
}

#[test]
fn never_a_progress_line_when_stderr_is_a_pipe() {
    let s = Scratch::new();
    let out = s.run(&["-v", "python", "--no-cache", "-c", "print('hi')"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    // The compile is reported by -v, as a line like any other; no line
    // drawn over itself.
    assert!(err.contains("procbridge: info: compiled "), "{err}");
    assert!(err.contains("python.wasm in "), "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    assert!(!err.contains("compiling..."), "{err}");
}

#[test]
fn compile_shows_a_bar_over_several_modules_on_a_terminal() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    let (code, out, terminal) =
        with_stderr_on_a_terminal(s.command(&["compile", &seven, "--python"]));
    assert_eq!(code, Some(0), "{terminal}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&seven) && lines[0].ends_with(": compiled"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("python.wasm (26.3 MB): compiled"),
        "{out}"
    );
    assert!(
        terminal.contains("procbridge: [#####-----] 2/2 python.wasm (26.3 MB): compiling... "),
        "{terminal:?}"
    );
    // Erased at the end: the terminal is left as it was.
    assert!(terminal.ends_with("\r\x1b[2K"), "{terminal:?}");
    assert_eq!(entries(&s.cache()), 2);
}

/// `procbridge cache list | head -0`, `compile`, `cache size`: a reader
/// gone before anything is printed ends the command quietly (no panic).
#[test]
fn a_closed_stdout_ends_cache_and_compile_quietly() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    for args in [
        &["compile", &seven][..],
        &["cache", "list"],
        &["cache", "size"],
        &["cache", "clean"],
    ] {
        let mut child = s
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes before procbridge writes.
        drop(child.stdout.take());
        let (status, err) = stderr_and_status(&mut child);
        assert_eq!(status.code(), Some(0), "{args:?}: {status:?}\n{err}");
        assert_eq!(err, "", "{args:?}");
    }
}

/// `cache clean` removes procbridge's own files only: not a `.cwasm`
/// (wasmtime's), nor a file of the user's, nor a temporary file a job may
/// be writing now; one a dead writer left an hour ago, yes.
#[test]
fn cache_clean_removes_only_procbridges_files() {
    let s = Scratch::new();
    assert!(s.run(&["compile", &s.module("seven.wat")]).status.success());
    let cache = s.cache();
    let hex = "0123456789abcdef".repeat(4);
    let keep = [
        "job.cwasm".to_string(),
        format!("{hex}.cwasm"),
        "notes.pbinfo".to_string(),
        "mine.pbcache".to_string(),
        format!("{hex}.pbcache.tmp4242.0"),
    ];
    for name in &keep {
        std::fs::write(cache.join(name), b"x").unwrap();
    }
    let dead = cache.join(format!("{hex}.pbcache.tmp4243.1"));
    std::fs::write(&dead, b"x").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&dead)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let out = s.run(&["cache", "clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).starts_with("removed 1 compiled module "),
        "{}",
        text(&out)
    );
    let mut left: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected = keep.to_vec();
    expected.sort();
    assert_eq!(left, expected);

    // Trimming (as after every store) removes an earlier procbridge's
    // `HEX.cwasm` entry, and still no file of anyone else's.
    let out = s.run(&["cache", "trim"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(cache.join("job.cwasm").exists());
    assert!(!cache.join(format!("{hex}.cwasm")).exists());
    assert!(cache.join("mine.pbcache").exists());
}

/// `-q` shows warnings, as its help says (RUST_LOG's warning is one that
/// shows whatever the filter; `-q -v` in two places is refused as in one).
#[test]
fn verbose_and_quiet_in_two_places_are_a_usage_error() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    for args in [
        &["-v", "run", "-q", &seven][..],
        &["-q", "run", "-v", &seven],
        &["-vv", "python", "-q", "-c", "pass"],
        &["-q", "compile", "-v", &seven],
        &["-v", "cache", "-q", "list"],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            stderr(&out).contains("cannot be used together"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // Each alone still works.
    assert_eq!(s.run(&["-v", "run", "-v", &seven]).status.code(), Some(7));
    assert_eq!(s.run(&["-q", "run", "-q", &seven]).status.code(), Some(7));
}

/// RUST_LOG's directives are split at commas outside brackets: a span
/// filter with two fields is one directive (refused whole), the rest kept.
#[test]
fn rust_log_field_filters_with_commas_are_one_directive() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    let out = s
        .command(&["run", &seven])
        .env(
            "RUST_LOG",
            "procbridge[load{a=1,b,c=2}]=debug,procbridge::cache=info",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("ignored: procbridge[load{a=1,b,c=2}]=debug\n"),
        "{err}"
    );
    assert!(!err.contains("is not a valid filter"), "{err}");
    assert!(err.contains("module cache "), "{err}");
}

/// Each diagnostic line is one write of at most PIPE_BUF bytes, however
/// long the argv it names (`-vv`).
#[test]
fn a_diagnostic_line_is_at_most_pipe_buf() {
    let s = Scratch::new();
    let long = "x".repeat(3 * libc::PIPE_BUF);
    let out = s.run(&[
        "-vv",
        "run",
        "--allow-run",
        "echo",
        guest("call").to_str().unwrap(),
        "echo",
        &long,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    let started: Vec<&str> = err
        .split_inclusive('\n')
        .filter(|l| l.starts_with("procbridge: debug: command "))
        .collect();
    assert!(!started.is_empty(), "{err}");
    for line in err.split_inclusive('\n') {
        assert!(line.len() <= libc::PIPE_BUF, "{} bytes", line.len());
    }
    assert!(started[0].ends_with("…\n"), "{}", started[0]);
}

/// A cap from the environment that is not a number is a usage error, not
/// silently the default.
#[test]
fn a_bad_cache_cap_in_the_environment_is_a_usage_error() {
    let s = Scratch::new();
    let seven = s.module("seven.wat");
    for args in [
        &["run", &seven][..],
        &["compile", &seven],
        &["cache", "size"],
    ] {
        let out = s
            .command(args)
            .env("PROCBRIDGE_CACHE_MAX_MB", "1G")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            stderr(&out).contains("PROCBRIDGE_CACHE_MAX_MB=\"1G\": give a whole number of MiB"),
            "{args:?}: {}",
            text(&out)
        );
    }
    // --no-cache uses no cap.
    let out = s
        .command(&["run", "--no-cache", &seven])
        .env("PROCBRIDGE_CACHE_MAX_MB", "1G")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
}
