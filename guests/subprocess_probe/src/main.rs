//! Test guest for `subprocess`: `subprocess_probe SCENARIO [ARGS...]` runs
//! one scenario and prints what it observed, one fact per line, for the
//! integration tests to check.

use procbridge_sdk::subprocess::{
    self, run_with, Popen, RunOptions, Stdio, Stream, SubprocessError, PIPE, STDOUT,
};
use procbridge_sdk::{sys, Errno};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scenario = args.first().map(String::as_str).unwrap_or("");
    let rest = if args.is_empty() {
        &args[..]
    } else {
        &args[1..]
    };
    let result = match scenario {
        "run" => run(rest),
        "check_output" => check_output(rest),
        "check_call" => subprocess::check_call(rest).map(|()| println!("ok")),
        "signal" => signal(rest),
        "timeout" => timeout(rest),
        "call" => call(rest),
        "wait_timeout" => wait_timeout(),
        "pid" => pid(),
        "communicate_retry" => communicate_retry(),
        "pipeline" => pipeline(),
        "stderr_to_stdout" => stderr_to_stdout(),
        "huge" => huge(rest),
        "stream" => stream(),
        "env" => env(rest),
        "cwd" => cwd(rest),
        "leave_running" => leave_running(rest),
        "spawn_many" => spawn_many(rest),
        "hold" => hold(rest),
        "run_twice" => run_twice(rest),
        "bad_inputs" => {
            bad_inputs();
            Ok(())
        }
        _ => {
            eprintln!("unknown scenario {:?}", scenario);
            std::process::exit(2);
        }
    };
    if let Err(err) = result {
        report(&err);
        std::process::exit(1);
    }
}

/// Prints an error as the tests expect it.
fn report(err: &SubprocessError) {
    match err {
        SubprocessError::Os(e) => println!("error {} {}", e.errno(), e.message()),
        SubprocessError::CalledProcess(e) => println!(
            "CalledProcessError returncode={} output={:?}",
            e.returncode,
            text(&e.output)
        ),
        SubprocessError::Timeout(e) => println!(
            "TimeoutExpired output={:?} stderr={:?}",
            text(&e.output),
            text(&e.stderr)
        ),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

type Result = std::result::Result<(), SubprocessError>;

/// `run ARGV...`: captured run; prints returncode, stdout, stderr.
fn run(argv: &[String]) -> Result {
    let done = run_with(
        argv,
        RunOptions {
            capture_output: true,
            ..RunOptions::default()
        },
    )?;
    println!("returncode {}", done.returncode);
    println!("stdout {:?}", text(&done.stdout));
    println!("stderr {:?}", text(&done.stderr));
    Ok(())
}

fn check_output(argv: &[String]) -> Result {
    let out = subprocess::check_output(argv)?;
    println!("output {:?}", text(&out));
    Ok(())
}

/// `signal kill|terminate|N`: signals a sleeping child, prints its pid and
/// return code.
fn signal(args: &[String]) -> Result {
    let mut p = Popen::builder(["sleep", "30"]).spawn()?;
    println!("pid {}", p.pid());
    println!("poll {:?}", p.poll()?);
    match args.first().map(String::as_str) {
        Some("kill") => p.kill()?,
        Some("terminate") => p.terminate()?,
        Some(n) => p.send_signal(n.parse().unwrap_or(0))?,
        None => p.kill()?,
    }
    println!("returncode {}", p.wait(None)?);
    println!("poll {:?}", p.poll()?);
    // Signalling a reaped child does nothing.
    p.kill()?;
    Ok(())
}

/// `timeout MILLIS ARGV...`: `run` with capture and a timeout.
fn timeout(args: &[String]) -> Result {
    timed_run(args, true)
}

/// `call MILLIS ARGV...`: `run` with nothing captured and a timeout (one
/// host call: `popen_call`).
fn call(args: &[String]) -> Result {
    timed_run(args, false)
}

/// `run` of `ARGV...` with a timeout of `MILLIS`: prints how long it took
/// and its return code or error.
fn timed_run(args: &[String], capture_output: bool) -> Result {
    let millis: u64 = args.first().and_then(|m| m.parse().ok()).unwrap_or(200);
    let start = Instant::now();
    let result = run_with(
        &args[1..],
        RunOptions {
            capture_output,
            timeout: Some(Duration::from_millis(millis)),
            ..RunOptions::default()
        },
    );
    println!("elapsed_ms {}", start.elapsed().as_millis());
    match result {
        Ok(done) => println!("returncode {}", done.returncode),
        Err(e) => report(&e),
    }
    Ok(())
}

/// Python's idiom: `communicate(timeout)` expires, `kill()`, then
/// `communicate()` again returns everything, including what arrived before
/// the timeout.
fn communicate_retry() -> Result {
    let mut p = Popen::builder(["sh", "-c", "echo first; echo err >&2; exec sleep 30"])
        .stdout(PIPE)
        .stderr(PIPE)
        .spawn()?;
    match p.communicate(None, Some(Duration::from_millis(300))) {
        Err(SubprocessError::Timeout(_)) => println!("first TimeoutExpired"),
        other => println!("first {:?}", other),
    }
    println!("poll {:?}", p.poll()?);
    p.kill()?;
    let (out, err) = p.communicate(None, None)?;
    println!("stdout {:?}", text(&out));
    println!("stderr {:?}", text(&err));
    println!("returncode {:?}", p.returncode());
    Ok(())
}

/// `Popen::pid` is the real pid: the child reports its own.
/// `pid`: a shell prints its own pid and waits; the guest prints the
/// Popen's pid and what the shell said, then `ready`, and waits for a line
/// on stdin before letting the shell go.
fn pid() -> Result {
    let mut p = Popen::builder(["sh", "-c", "echo $$; read x"])
        .stdin(PIPE)
        .stdout(PIPE)
        .spawn()?;
    let said = text(&p.read_line(Stream::Stdout)?);
    println!("popen pid {}", p.pid());
    println!("child says {}", said.trim());
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    p.communicate(Some(b"\n"), None)?;
    Ok(())
}

/// `Popen.wait(timeout)` expires, the child keeps running, then is killed.
fn wait_timeout() -> Result {
    let mut p = Popen::builder(["sleep", "30"]).spawn()?;
    match p.wait(Some(Duration::from_millis(100))) {
        Err(SubprocessError::Timeout(_)) => println!("wait TimeoutExpired"),
        other => println!("wait {:?}", other),
    }
    println!("poll {:?}", p.poll()?);
    p.kill()?;
    println!("returncode {}", p.wait(Some(Duration::from_secs(10)))?);
    Ok(())
}

/// `seq 1 100000 | tr 0 x | wc -l` without the guest copying bytes.
fn pipeline() -> Result {
    let mut seq = Popen::builder(["seq", "1", "100000"])
        .stdout(PIPE)
        .spawn()?;
    let mut tr = Popen::builder(["tr", "0", "x"])
        .stdin(Stdio::pipe_of(&seq))
        .stdout(PIPE)
        .spawn()?;
    let mut wc = Popen::builder(["wc", "-l"])
        .stdin(Stdio::pipe_of(&tr))
        .stdout(PIPE)
        .spawn()?;
    let (out, _) = wc.communicate(None, None)?;
    println!("wc {}", text(&out).trim());
    println!(
        "returncodes {} {} {}",
        seq.wait(None)?,
        tr.wait(None)?,
        wc.wait(None)?
    );
    // The pipe moved: the first process has no stdout pipe any more.
    match seq.read(Stream::Stdout, 10) {
        Err(e) => println!("moved pipe {}", e.errno()),
        Ok(b) => println!("moved pipe still readable {:?}", b),
    }
    Ok(())
}

fn stderr_to_stdout() -> Result {
    let mut p = Popen::builder(["sh", "-c", "echo out; echo err >&2; exit 3"])
        .stdout(PIPE)
        .stderr(STDOUT)
        .spawn()?;
    let (out, err) = p.communicate(None, None)?;
    println!("stdout {:?}", text(&out));
    println!("stderr {:?}", text(&err));
    println!("returncode {:?}", p.returncode());
    Ok(())
}

/// `huge MEGABYTES`: that many bytes through `cat` and back, compared.
fn huge(args: &[String]) -> Result {
    let mb: usize = args.first().and_then(|m| m.parse().ok()).unwrap_or(100);
    let mut input = vec![0u8; mb << 20];
    let mut x: u32 = 12345;
    for b in input.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    let mut p = Popen::builder(["cat"]).stdin(PIPE).stdout(PIPE).spawn()?;
    let (out, _) = p.communicate(Some(&input), None)?;
    println!("bytes {}", out.len());
    println!("intact {}", out == input);
    println!("returncode {:?}", p.returncode());
    Ok(())
}

/// Line-by-line conversation with `cat` through streaming pipes.
fn stream() -> Result {
    let mut p = Popen::builder(["cat"]).stdin(PIPE).stdout(PIPE).spawn()?;
    for line in ["one\n", "two\n", "three\n"] {
        p.write_stdin(line.as_bytes())?;
        println!("echo {:?}", text(&p.read_line(Stream::Stdout)?));
    }
    p.write_stdin(b"tail without newline")?;
    // `read(n)` waits for all n bytes: they arrive in two writes.
    p.write_stdin(b" and more")?;
    p.close_stdin()?;
    println!("read {:?}", text(&p.read(Stream::Stdout, 4)?));
    println!("read {:?}", text(&p.read(Stream::Stdout, 21)?));
    println!("last {:?}", text(&p.read_line(Stream::Stdout)?));
    println!("eof {:?}", text(&p.read_line(Stream::Stdout)?));
    println!("returncode {}", p.wait(None)?);
    match p.write_stdin(b"late") {
        Err(e) => println!("write after close {}", e.errno()),
        Ok(()) => println!("write after close ok"),
    }
    Ok(())
}

/// `env [KEY=VALUE...]`: runs `env` with the given environment, or with the
/// guest's own when none is given.
fn env(vars: &[String]) -> Result {
    let mut options = RunOptions {
        capture_output: true,
        ..RunOptions::default()
    };
    if !vars.is_empty() {
        let pairs = vars
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        options.env = Some(pairs);
    }
    let done = run_with(["env"], options)?;
    print!("{}", text(&done.stdout));
    println!("returncode {}", done.returncode);
    Ok(())
}

/// `cwd DIR`: runs `pwd` there.
fn cwd(args: &[String]) -> Result {
    let dir = args.first().map(String::as_str).unwrap_or("/");
    let done = run_with(
        ["pwd"],
        RunOptions {
            capture_output: true,
            cwd: Some(dir),
            ..RunOptions::default()
        },
    )?;
    print!("pwd {}", text(&done.stdout));
    Ok(())
}

/// `leave_running exit|trap|drop [SECONDS]`: starts `sleep SECONDS`, and a
/// shell that starts another in the background; prints their pids and
/// leaves without waiting: exiting, trapping, or dropping the Popens.
fn leave_running(args: &[String]) -> Result {
    let seconds = args.get(1).map(String::as_str).unwrap_or("30");
    let p = Popen::builder(["sleep", seconds]).spawn()?;
    let script = format!("sleep {} & echo $!; wait", seconds);
    let group = Popen::builder(["sh", "-c", script.as_str()])
        .stdout(PIPE)
        .spawn();
    let mut group = group?;
    let grandchild = text(&group.read_line(Stream::Stdout)?);
    println!("pid {}", p.pid());
    println!("pid {}", group.pid());
    println!("pid {}", grandchild.trim());
    match args.first().map(String::as_str) {
        Some("trap") => unreachable_trap(),
        Some("drop") => {
            drop(p);
            drop(group);
            println!("dropped");
            Ok(())
        }
        _ => std::process::exit(0),
    }
}

/// `run_twice ARGV...`: runs the command, waits for a line on stdin, runs
/// it again (a test changes the host between the two runs).
fn run_twice(argv: &[String]) -> Result {
    println!("first {}", subprocess::call(argv)?);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    match subprocess::call(argv) {
        Ok(code) => println!("second {}", code),
        Err(err) => report(&err),
    }
    Ok(())
}

/// `hold N`: keeps N `sleep 30` children running at once, printing
/// `spawned I` after each (the tree-wide process limit stops it early).
fn hold(args: &[String]) -> Result {
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(Popen::builder(["sleep", "30"]).spawn()?);
        println!("spawned {}", held.len());
    }
    Ok(())
}

fn unreachable_trap() -> ! {
    // Aborting is a wasm trap: the guest dies mid-call.
    std::process::abort()
}

/// `spawn_many N [pause]`: N spawns, half `run(["true"])`, half `cat`
/// with pipes dropped while running. With `pause`, prints `ready` and
/// waits for a line on stdin before and after, so that a test can count
/// this process's descriptors and children.
fn spawn_many(args: &[String]) -> Result {
    let n: usize = args.first().and_then(|m| m.parse().ok()).unwrap_or(1000);
    let pause = args.get(1).map(String::as_str) == Some("pause");
    let wait_for_test = || {
        if pause {
            println!("ready");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
    };
    // Warm up: anything opened once and kept is not a leak.
    subprocess::call(["true"])?;
    wait_for_test();
    let mut failures = 0;
    for i in 0..n {
        if i % 2 == 0 {
            if subprocess::call(["true"])? != 0 {
                failures += 1;
            }
        } else {
            let p = Popen::builder(["cat"]).stdin(PIPE).stdout(PIPE).spawn()?;
            drop(p);
        }
    }
    println!("spawned {} failures {}", n, failures);
    wait_for_test();
    Ok(())
}

/// Raw calls with hostile arguments; prints `NAME ERRNO` per case.
fn bad_inputs() {
    fn show(name: &str, ret: i32) {
        match Errno::from_return(ret) {
            Some(e) => println!("{} {}", name, e),
            None => println!("{} {}", name, ret),
        }
    }
    let argv = procbridge_sdk::abi::list::encode(&["true"]);
    let empty: Vec<u8> = Vec::new();
    let truncated: Vec<u8> = vec![100, 0, 0, 0, b't'];
    let popen = |argv: &[u8], stdin: i32, stdout: i32, stderr: i32| unsafe {
        sys::raw::popen(
            argv.as_ptr(),
            argv.len() as i32,
            std::ptr::null(),
            -1,
            std::ptr::null(),
            0,
            stdin,
            stdout,
            stderr,
        )
    };
    unsafe {
        show(
            "argv_out_of_bounds",
            sys::raw::popen(
                0x7fff_fff0 as *const u8,
                64,
                std::ptr::null(),
                -1,
                std::ptr::null(),
                0,
                0,
                0,
                0,
            ),
        );
        show(
            "env_out_of_bounds",
            sys::raw::popen(
                argv.as_ptr(),
                argv.len() as i32,
                0x7fff_fff0 as *const u8,
                64,
                std::ptr::null(),
                0,
                0,
                0,
                0,
            ),
        );
        let bad_env = procbridge_sdk::abi::list::encode(&["NOEQUALS"]);
        show(
            "env_malformed",
            sys::raw::popen(
                argv.as_ptr(),
                argv.len() as i32,
                bad_env.as_ptr(),
                bad_env.len() as i32,
                std::ptr::null(),
                0,
                0,
                0,
                0,
            ),
        );
        let loader = procbridge_sdk::abi::list::encode(&["LD_PRELOAD=/tmp/x.so"]);
        show(
            "env_loader",
            sys::raw::popen(
                argv.as_ptr(),
                argv.len() as i32,
                loader.as_ptr(),
                loader.len() as i32,
                std::ptr::null(),
                0,
                0,
                0,
                0,
            ),
        );
        show("argv_empty", popen(&empty, 0, 0, 0));
        show("argv_truncated", popen(&truncated, 0, 0, 0));
        show("stdio_invalid", popen(&argv, -7, 0, 0));
        show("stdin_stdout_marker", popen(&argv, -3, 0, 0));
        show("stdio_forged_handle", popen(&argv, 0x0005_0003, 0, 0));

        let h = popen(&argv, -1, -1, -1);
        show("popen", h.min(1));
        let mut code = 0i32;
        show(
            "wait_negative_timeout",
            sys::raw::popen_wait(h, -5, &mut code),
        );
        show(
            "wait_code_out_of_bounds",
            sys::raw::popen_wait(h, -1, 0x7fff_fff0 as *mut i32),
        );
        show(
            "communicate_flags",
            sys::raw::popen_communicate(h, std::ptr::null(), 0, -1, 4, &mut code),
        );
        show(
            "communicate_input_out_of_bounds",
            sys::raw::popen_communicate(h, 0x7fff_fff0 as *const u8, 64, -1, 0, &mut code),
        );
        let mut buf = [0u8; 16];
        show(
            "read_bad_stream",
            sys::raw::popen_read(h, 3, buf.as_mut_ptr(), 16, -1),
        );
        show(
            "read_out_of_bounds",
            sys::raw::popen_read(h, 1, 0x7fff_fff0 as *mut u8, 64, -1),
        );
        show("signal_zero", sys::raw::popen_send_signal(h, 0));
        show("signal_huge", sys::raw::popen_send_signal(h, 9999));
        show("wait", sys::raw::popen_wait(h, 5_000_000, &mut code));
        show("close", sys::raw::popen_close(h));
        show("closed_pid", sys::raw::popen_pid(h));
        show("closed_wait", sys::raw::popen_wait(h, -1, &mut code));
        show("closed_close", sys::raw::popen_close(h));
        show("closed_as_stdin", popen(&argv, h, 0, 0));
        for forged in [0, -1, 12345, i32::MAX] {
            show(&format!("forged_{}", forged), sys::raw::popen_pid(forged));
        }
        show(
            "not_granted",
            popen(
                &procbridge_sdk::abi::list::encode(&["rm", "-rf", "/"]),
                0,
                0,
                0,
            ),
        );
    }
}
