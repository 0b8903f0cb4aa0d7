//! Test guest for processes: `process_probe SCENARIO [ARGS]` runs one
//! scenario and prints what the tests check.
//!
//! Scenarios: `pids`, `exitcodes fork|spawn`, `join_timeout`,
//! `terminate_blocked`, `memory`, `forkbomb`, `sleepers`, `bad`, `grants`,
//! `fork_trap`, `exit_with_children`, `unknown_target`.

use procbridge_sdk::multiprocessing::{Process, StartMethod};
use procbridge_sdk::{os, sys, task, Errno};
use std::time::{Duration, Instant};

static mut COUNTER: i32 = 1;

fn counter() -> i32 {
    // SAFETY: the guest is single-threaded.
    unsafe { COUNTER }
}

fn set_counter(value: i32) {
    // SAFETY: the guest is single-threaded.
    unsafe { COUNTER = value }
}

task!(report, |label: &str| {
    println!("{} pid {} ppid {}", label, os::getpid(), os::getppid());
});

task!(noop, |_: &[u8]| ());

task!(exit_with, |code: &str| {
    std::process::exit(code.parse().unwrap_or(99));
});

task!(trap, |_: &[u8]| {
    println!("about to trap");
    core::arch::wasm32::unreachable()
});

task!(fail, |what: &str| -> Result<(), String> {
    Err(format!("failed on purpose: {}", what))
});

task!(sleep_ms, |ms: &str| {
    std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(1000)));
});

task!(bump_counter, |_: &[u8]| {
    set_counter(counter() + 100);
    println!("child counter {}", counter());
});

task!(nap_then_print, |ms: &str| {
    std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(300)));
    println!("non-daemon done");
});

#[no_mangle]
pub extern "C" fn wrong_signature(a: i32, b: i32) -> i32 {
    a + b
}

task!(sleeper_tree, |method: &str| {
    println!("sleeper {}", os::getpid());
    let mut grandchild = Process::new("sleep_ms")
        .args("60000")
        .start_method(parse_method(method));
    grandchild.start().expect("start grandchild");
    println!("sleeper {}", grandchild.pid().unwrap_or(0));
    std::thread::sleep(Duration::from_secs(60));
});

task!(show_env, |_: &[u8]| {
    println!(
        "env GRANTED={}",
        std::env::var("GRANTED").unwrap_or_default()
    );
    let dir = std::fs::read_dir("/granted")
        .map(|_| "readable")
        .unwrap_or("not readable");
    println!("dir {}", dir);
});

task!(try_child, |_: &[u8]| -> Result<(), String> {
    let mut p = Process::new("noop");
    match p.start() {
        Err(e) if e.errno() == Errno::Inval => {
            Ok(println!("daemon child refused: {}", e.message()))
        }
        Err(e) => Err(format!("unexpected {}", e)),
        Ok(()) => Err(String::from("a daemon started a child")),
    }
});

fn parse_method(name: &str) -> StartMethod {
    match name {
        "spawn" => StartMethod::Spawn,
        _ => StartMethod::Fork,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).map(String::as_str).unwrap_or("");
    let arg = args.get(2).map(String::as_str).unwrap_or("fork");
    match scenario {
        "pids" => pids(),
        "exitcodes" => exitcodes(parse_method(arg)),
        "join_timeout" => join_timeout(),
        "terminate_blocked" => terminate_blocked(parse_method(arg)),
        "memory" => memory(),
        "forkbomb" => forkbomb(),
        "sleepers" => sleepers(),
        "bad" => bad(),
        "grants" => grants(),
        "fork_trap" => fork_trap(),
        "exit_with_children" => exit_with_children(),
        "unknown_target" => unknown_target(),
        other => {
            eprintln!("unknown scenario {:?}", other);
            std::process::exit(2);
        }
    }
}

fn pids() {
    println!("parent pid {} ppid {}", os::getpid(), os::getppid());
    for method in [StartMethod::Fork, StartMethod::Spawn] {
        let label = format!("{:?}", method).to_lowercase();
        let mut p = Process::new("report").args(&label).start_method(method);
        p.start().expect("start");
        println!("started {} {}", label, p.pid().unwrap_or(0));
        p.join().expect("join");
        println!("exitcode {} {:?}", label, p.exitcode());
    }
    let pid = os::fork().expect("fork");
    if pid == 0 {
        println!("forked pid {} ppid {}", os::getpid(), os::getppid());
        std::process::exit(0);
    }
    println!("started forked {}", pid);
    let (reaped, status) = os::waitpid(pid as i32, 0).expect("waitpid");
    println!("waitpid {} {}", reaped, os::waitstatus_to_exitcode(status));
}

fn exitcodes(method: StartMethod) {
    let run = |target: &str, args: &str| {
        let mut p = Process::new(target).args(args).start_method(method);
        p.start().expect("start");
        p
    };
    for (label, target, args) in [
        ("return", "noop", ""),
        ("exit7", "exit_with", "7"),
        ("exit0", "exit_with", "0"),
        ("trap", "trap", ""),
        ("fail", "fail", "x"),
    ] {
        let mut p = run(target, args);
        p.join().expect("join");
        println!("exitcode {} {:?}", label, p.exitcode());
    }
    let mut p = run("sleep_ms", "10000");
    p.kill().expect("kill");
    p.join().expect("join");
    println!("exitcode kill {:?}", p.exitcode());
    let mut p = run("sleep_ms", "10000");
    p.terminate().expect("terminate");
    p.join().expect("join");
    println!("exitcode terminate {:?}", p.exitcode());
}

fn join_timeout() {
    let mut p = Process::new("sleep_ms").args("3000");
    p.start().expect("start");
    let t = Instant::now();
    let ended = p.join_timeout(Duration::from_millis(200)).expect("join");
    println!(
        "joined {} after {} ms alive {} exitcode {:?}",
        ended,
        t.elapsed().as_millis(),
        p.is_alive(),
        p.exitcode()
    );
    let mut q = Process::new("sleep_ms").args("50");
    q.start().expect("start");
    let ended = q.join_timeout(Duration::from_secs(5)).expect("join");
    println!("short joined {} exitcode {:?}", ended, q.exitcode());
    p.terminate().expect("terminate");
    p.join().expect("join");
}

fn terminate_blocked(method: StartMethod) {
    let mut p = Process::new("sleep_ms").args("60000").start_method(method);
    p.start().expect("start");
    std::thread::sleep(Duration::from_millis(100));
    println!("alive {}", p.is_alive());
    let t = Instant::now();
    p.terminate().expect("terminate");
    p.join().expect("join");
    println!(
        "terminated in {} ms exitcode {:?} alive {}",
        t.elapsed().as_millis(),
        p.exitcode(),
        p.is_alive()
    );
}

fn memory() {
    set_counter(1);
    let pid = os::fork().expect("fork");
    if pid == 0 {
        set_counter(counter() + 41);
        println!("fork child counter {}", counter());
        std::process::exit(counter());
    }
    let (_, status) = os::waitpid(pid as i32, 0).expect("waitpid");
    println!(
        "fork parent counter {} child exit {}",
        counter(),
        os::waitstatus_to_exitcode(status)
    );
    let mut p = Process::new("bump_counter");
    p.start().expect("start");
    p.join().expect("join");
    println!("process parent counter {}", counter());
    // A child sees the parent's memory as it was at the fork.
    set_counter(5);
    let mut p = Process::new("bump_counter").start_method(StartMethod::Fork);
    p.start().expect("start");
    p.join().expect("join");
    // A spawned child starts from a fresh instance: 1 + 100.
    let mut p = Process::new("bump_counter").start_method(StartMethod::Spawn);
    p.start().expect("start");
    p.join().expect("join");
}

fn forkbomb() {
    let root = os::getpid();
    let mut started = 0;
    let refused = loop {
        match os::fork() {
            Ok(0) => started = 0,
            Ok(_) => started += 1,
            Err(e) => break e,
        }
    };
    // Stay alive a while so the tree is full when the test looks.
    std::thread::sleep(Duration::from_millis(1000));
    while os::wait().is_ok() {}
    if os::getpid() == root {
        println!(
            "root started {} refused {:?} {}",
            started,
            refused.errno(),
            refused.message()
        );
    }
}

fn sleepers() {
    println!("root {}", os::getpid());
    let mut procs = Vec::new();
    for method in ["fork", "spawn"] {
        let mut p = Process::new("sleeper_tree")
            .args(method)
            .start_method(parse_method(method));
        p.start().expect("start");
        procs.push(p);
    }
    let mut daemon = Process::new("sleep_ms").args("60000").daemon(true);
    daemon.start().expect("start");
    println!("sleeper {}", daemon.pid().unwrap_or(0));
    let pid = os::fork().expect("fork");
    if pid == 0 {
        std::thread::sleep(Duration::from_secs(60));
        std::process::exit(0);
    }
    println!("sleeper {}", pid);
    std::thread::sleep(Duration::from_secs(60));
}

fn expect_err(name: &str, result: Result<i32, procbridge_sdk::Error>, errno: Errno) {
    match result {
        Err(e) if e.errno() == errno => println!("ok {} ({})", name, e.message()),
        other => println!("FAIL {} expected {:?}, got {:?}", name, errno, other),
    }
}

fn raw(ret: i32) -> Result<i32, procbridge_sdk::Error> {
    if ret < 0 {
        Err(procbridge_sdk::Error::new(
            Errno::from_return(ret).unwrap_or(Errno::Io),
            "raw call",
        ))
    } else {
        Ok(ret)
    }
}

fn start_raw(target: &str, method: i32, flags: i32) -> i32 {
    // SAFETY: live buffers.
    unsafe {
        sys::raw::process_start(
            target.as_ptr(),
            target.len() as i32,
            [].as_ptr(),
            0,
            method,
            flags,
        )
    }
}

fn bad() {
    let mut p = Process::new("noop");
    expect_err("join before start", p.join().map(|_| 0), Errno::Inval);
    expect_err(
        "terminate before start",
        p.terminate().map(|_| 0),
        Errno::Inval,
    );
    let mut missing = Process::new("no_such_task");
    expect_err("unknown export", missing.start().map(|_| 0), Errno::NoEnt);
    let mut wrong = Process::new("wrong_signature");
    expect_err("wrong signature", wrong.start().map(|_| 0), Errno::Inval);
    let mut memory = Process::new("memory");
    expect_err(
        "memory is not a task",
        memory.start().map(|_| 0),
        Errno::NoEnt,
    );
    expect_err("bad method", raw(start_raw("noop", 7, 0)), Errno::Inval);
    expect_err("unknown flags", raw(start_raw("noop", 1, 64)), Errno::Inval);
    expect_err(
        "drop dirs with fork",
        raw(start_raw("noop", 1, 4)),
        Errno::Inval,
    );
    // SAFETY: deliberately out-of-bounds pointers: the host must refuse them.
    unsafe {
        expect_err(
            "target out of bounds",
            raw(sys::raw::process_start(
                usize::MAX as *const u8,
                4,
                [].as_ptr(),
                0,
                1,
                0,
            )),
            Errno::Fault,
        );
        expect_err(
            "args out of bounds",
            raw(sys::raw::process_start(
                "noop".as_ptr(),
                4,
                0xffff_fff0usize as *const u8,
                64,
                1,
                0,
            )),
            Errno::Fault,
        );
        expect_err(
            "waitpid status out of bounds",
            raw(sys::raw::waitpid(-1, 0, usize::MAX as *mut i32)),
            Errno::Fault,
        );
        expect_err(
            "task_return outside a task",
            raw(sys::raw::task_return([].as_ptr(), 0)),
            Errno::Inval,
        );
    }
    expect_err(
        "forged handle",
        raw(unsafe { sys::raw::process_join(12345, -1) }),
        Errno::BadF,
    );
    expect_err(
        "zero handle",
        raw(unsafe { sys::raw::process_pid(0) }),
        Errno::BadF,
    );
    expect_err(
        "negative timeout",
        {
            let h = start_raw("noop", 1, 0);
            let r = raw(unsafe { sys::raw::process_join(h, -5) });
            unsafe { sys::raw::process_join(h, -1) };
            r
        },
        Errno::Inval,
    );

    let mut running = Process::new("sleep_ms").args("10000");
    running.start().expect("start");
    expect_err(
        "close while running",
        running.close().map(|_| 0),
        Errno::Inval,
    );
    let h = running.handle().unwrap_or(0);
    // SAFETY: plain integers / a local.
    unsafe {
        let mut code = 0;
        expect_err(
            "exitcode pointer out of bounds",
            raw(sys::raw::process_exitcode(h, usize::MAX as *mut i32)),
            Errno::Fault,
        );
        let _ = &mut code;
    }
    // A fork child may not use its parent's Process handles.
    let pid = os::fork().expect("fork");
    if pid == 0 {
        let r = raw(unsafe { sys::raw::process_kill(h) });
        std::process::exit(if r.map_err(|e| e.errno()) == Err(Errno::BadF) {
            0
        } else {
            1
        });
    }
    let (_, status) = os::waitpid(pid as i32, 0).expect("waitpid");
    if os::waitstatus_to_exitcode(status) == 0 {
        println!("ok foreign handle in a fork child");
    } else {
        println!("FAIL foreign handle in a fork child");
    }
    running.kill().expect("kill");
    running.join().expect("join");
    running.close().expect("close");
    expect_err(
        "closed handle",
        raw(unsafe { sys::raw::process_pid(h) }),
        Errno::BadF,
    );
    expect_err(
        "waitpid of a non-child",
        os::waitpid(1, 0).map(|_| 0),
        Errno::Child,
    );
    expect_err(
        "waitpid of nothing",
        os::waitpid(-1, 0).map(|_| 0),
        Errno::Child,
    );
    expect_err(
        "waitpid bad options",
        os::waitpid(-1, 4).map(|_| 0),
        Errno::Inval,
    );
    expect_err(
        "waitpid process group",
        os::waitpid(0, 0).map(|_| 0),
        Errno::Inval,
    );
    let mut once = Process::new("noop");
    once.start().expect("start");
    expect_err("start twice", once.start().map(|_| 0), Errno::Inval);
    once.join().expect("join");
    let mut daemon = Process::new("try_child").daemon(true);
    daemon.start().expect("start");
    daemon.join().expect("join");
    println!("daemon child exitcode {:?}", daemon.exitcode());
    // WNOHANG on a running child, then a real wait.
    let pid = os::fork().expect("fork");
    if pid == 0 {
        std::thread::sleep(Duration::from_millis(200));
        std::process::exit(3);
    }
    let first = os::waitpid(pid as i32, os::WNOHANG).expect("waitpid");
    let (_, status) = os::waitpid(-1, 0).expect("wait");
    println!(
        "wnohang {:?} then exit {}",
        first,
        os::waitstatus_to_exitcode(status)
    );
}

fn grants() {
    for (label, p) in [
        ("fork", Process::new("show_env")),
        (
            "spawn",
            Process::new("show_env").start_method(StartMethod::Spawn),
        ),
        (
            "spawn-dropped",
            Process::new("show_env")
                .start_method(StartMethod::Spawn)
                .without_env()
                .without_dirs()
                .without_commands(),
        ),
    ] {
        let mut p = p;
        println!("{}:", label);
        p.start().expect("start");
        p.join().expect("join");
    }
}

fn fork_trap() {
    let pid = os::fork().expect("fork");
    if pid == 0 {
        println!("fork child about to trap");
        core::arch::wasm32::unreachable()
    }
    let (_, status) = os::waitpid(pid as i32, 0).expect("waitpid");
    println!(
        "fork child exit {} exited {}",
        os::waitstatus_to_exitcode(status),
        os::wifexited(status)
    );
    // A child that is never waited for is waited for by the host when this
    // guest ends.
    let pid = os::fork().expect("fork");
    if pid == 0 {
        std::thread::sleep(Duration::from_millis(300));
        println!("unwaited child done");
        std::process::exit(0);
    }
    println!("parent done");
}

fn exit_with_children() {
    let mut daemon = Process::new("sleep_ms").args("60000").daemon(true);
    daemon.start().expect("start");
    println!("daemon {}", daemon.pid().unwrap_or(0));
    let mut worker = Process::new("nap_then_print").args("300");
    worker.start().expect("start");
    println!("parent done");
}

fn unknown_target() {
    match Process::new("no_such_task").start() {
        Err(e) => {
            eprintln!("{}", e);
            std::process::exit(3);
        }
        Ok(()) => println!("started a task that does not exist"),
    }
}
