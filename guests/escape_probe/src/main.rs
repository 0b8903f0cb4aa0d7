//! Test guest for the attacker-style tests: `escape_probe SCENARIO [ARGS]`
//! tries one way out and prints what happened, for `tests/all/jail.rs` and
//! `tests/all/grants.rs` to check.
//!
//! Scenarios (several run one after the other when separated by `+`):
//!
//! * `run [--env K=V]... [--cwd DIR] ARGV...`: runs a command with exactly
//!   that environment (none given: the default one) and prints
//!   `returncode N`, `stdout "..."`, `stderr "..."`, or `error ERRNO MESSAGE`;
//! * `swap DIR TARGET`: with WASI alone, renames the granted directory
//!   `DIR` to `DIR.orig` and puts a symbolic link to `TARGET` in its place;
//! * `spawn_read PATH`: a spawn-method `Process` reads `PATH` (a file, or a
//!   directory's names) and prints it;
//! * `spawn_run ARGV...`: a spawn-method `Process` runs a command and prints
//!   its output;
//! * `random`: 16 random bytes from `random_get`, in this process, in two
//!   fork children and in two spawn-method children;
//! * `pause`: forks a child that sleeps a second, prints
//!   `ready PARENT CHILD`, waits for a line on stdin, then for the child;
//! * `fork_with_popens N`: starts N `sleep 5` commands with piped stdout,
//!   then forks; the child prints `child PID` and waits for a line on
//!   stdin, the parent waits for the child.

use procbridge_sdk::multiprocessing::{Process, StartMethod};
use procbridge_sdk::subprocess::{self, RunOptions};
use procbridge_sdk::{os, task};

mod wasi {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        pub fn random_get(buf: *mut u8, len: usize) -> u16;
        pub fn fd_prestat_get(fd: u32, prestat: *mut u32) -> u16;
        pub fn fd_prestat_dir_name(fd: u32, path: *mut u8, len: usize) -> u16;
        pub fn path_symlink(
            old_ptr: *const u8,
            old_len: usize,
            fd: u32,
            new_ptr: *const u8,
            new_len: usize,
        ) -> u16;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Scenarios run one after the other, separated by `+`.
    for step in args.split(|a| a == "+") {
        let scenario = step.first().map(String::as_str).unwrap_or("");
        let rest = if step.is_empty() { step } else { &step[1..] };
        match scenario {
            "run" => run(rest),
            "swap" => swap(&rest[0], &rest[1]),
            "spawn_read" => in_spawn_child("read_path", &rest[0]),
            "spawn_run" => in_spawn_child("run_argv", &rest.join("\u{1}")),
            "random" => random(),
            "pause" => pause(),
            "fork_with_popens" => fork_with_popens(rest[0].parse().unwrap_or(0)),
            _ => {
                eprintln!("unknown scenario {:?}", scenario);
                std::process::exit(2);
            }
        }
    }
}

fn run(args: &[String]) {
    let mut env: Option<Vec<(String, String)>> = None;
    let mut cwd = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--env" => {
                let (k, v) = args[i + 1].split_once('=').expect("--env K=V");
                env.get_or_insert_with(Vec::new)
                    .push((k.to_string(), v.to_string()));
                i += 2;
            }
            "--cwd" => {
                cwd = Some(args[i + 1].as_str());
                i += 2;
            }
            _ => break,
        }
    }
    run_argv_with(&args[i..], env, cwd);
}

fn run_argv_with(argv: &[String], env: Option<Vec<(String, String)>>, cwd: Option<&str>) {
    let options = RunOptions {
        capture_output: true,
        env,
        cwd,
        ..RunOptions::default()
    };
    match subprocess::run_with(argv, options) {
        Ok(done) => {
            println!("returncode {}", done.returncode);
            println!("stdout {:?}", String::from_utf8_lossy(&done.stdout));
            println!("stderr {:?}", String::from_utf8_lossy(&done.stderr));
        }
        Err(subprocess::SubprocessError::Os(e)) => {
            println!("error {} {}", e.errno(), e.message())
        }
        Err(e) => println!("error {}", e),
    }
}

/// The preopened descriptor WASI gave the granted directory `guest`.
fn preopen_fd(guest: &str) -> Option<u32> {
    for fd in 3..64u32 {
        // A prestat is a tag (0: a directory) and the name's length.
        let mut prestat = [0u32; 2];
        // SAFETY: a valid out-pointer of the prestat's size.
        if unsafe { wasi::fd_prestat_get(fd, prestat.as_mut_ptr()) } != 0 {
            continue;
        }
        let mut name = vec![0u8; prestat[1] as usize];
        // SAFETY: a valid buffer of the length the host gave.
        if unsafe { wasi::fd_prestat_dir_name(fd, name.as_mut_ptr(), name.len()) } == 0
            && name == guest.as_bytes()
        {
            return Some(fd);
        }
    }
    None
}

fn swap(dir: &str, target: &str) {
    let orig = format!("{}.orig", dir);
    match std::fs::rename(dir, &orig) {
        Ok(()) => println!("renamed {} to {}", dir, orig),
        Err(e) => {
            println!("rename failed: {}", e);
            return;
        }
    }
    // The link is made inside the granted directory that holds `dir`.
    let parent_guest = std::path::Path::new(dir)
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("/");
    let name = std::path::Path::new(dir)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let fd = match preopen_fd(parent_guest) {
        Some(fd) => fd,
        None => {
            println!("no granted directory {}", parent_guest);
            return;
        }
    };
    // SAFETY: valid pointers and lengths of two live strings.
    let errno =
        unsafe { wasi::path_symlink(target.as_ptr(), target.len(), fd, name.as_ptr(), name.len()) };
    if errno == 0 {
        println!("linked {} -> {}", dir, target);
    } else {
        println!("symlink failed: errno {}", errno);
    }
}

task!(read_path, |path: &str| {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            println!("child lists {}: {}", path, names.join(" "));
        }
        Err(_) => match std::fs::read_to_string(path) {
            Ok(text) => println!("child reads {}: {}", path, text.trim_end()),
            Err(e) => println!("child cannot read {}: {}", path, e),
        },
    }
});

task!(run_argv, |joined: &str| {
    let argv: Vec<String> = joined.split('\u{1}').map(String::from).collect();
    print!("child ");
    run_argv_with(&argv, None, None);
});

fn in_spawn_child(target: &str, arg: &str) {
    let mut p = Process::new(target)
        .args(arg)
        .start_method(StartMethod::Spawn);
    p.start().expect("start");
    p.join().expect("join");
}

fn random_hex() -> String {
    let mut buf = [0u8; 16];
    // SAFETY: a valid buffer of its length.
    let errno = unsafe { wasi::random_get(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(errno, 0, "random_get");
    buf.iter().map(|b| format!("{:02x}", b)).collect()
}

task!(print_random, |label: &str| {
    println!("{} {}", label, random_hex());
});

fn random() {
    println!("root {}", random_hex());
    for i in 0..2 {
        let pid = os::fork().expect("fork");
        if pid == 0 {
            println!("fork{} {}", i, random_hex());
            std::process::exit(0);
        }
        os::waitpid(pid as i32, 0).expect("waitpid");
    }
    for i in 0..2 {
        let label = format!("spawn{}", i);
        in_spawn_child("print_random", &label);
    }
    println!("root-again {}", random_hex());
}

fn pause() {
    let pid = os::fork().expect("fork");
    if pid == 0 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        std::process::exit(0);
    }
    println!("ready {} {}", os::getpid(), pid);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    os::waitpid(pid as i32, 0).expect("waitpid");
}

fn fork_with_popens(n: usize) {
    use procbridge_sdk::subprocess::{Popen, PIPE};
    let popens: Vec<Popen> = (0..n)
        .map(|_| {
            Popen::builder(["sleep", "5"])
                .stdout(PIPE)
                .spawn()
                .expect("spawn")
        })
        .collect();
    let pid = os::fork().expect("fork");
    if pid == 0 {
        println!("child {}", os::getpid());
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        std::process::exit(0);
    }
    os::waitpid(pid as i32, 0).expect("waitpid");
    drop(popens);
}
