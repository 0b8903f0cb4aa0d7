//! The plugin host (issue: call exports, per-call deadlines, async, pools):
//! a platform embedding procbridge calls a plugin's exports with bytes,
//! many times, and a bad plugin never takes the embedder down.
//!
//! Its own test binary: the leak check counts this process's descriptors
//! and children, so the tests here run one at a time.

#[allow(dead_code)]
#[path = "../all/support.rs"]
mod support;

use procbridge::{
    CallErrorKind, GuestBuilder, Limits, OutputLine, OutputSink, Plugin, Policy, RunError, Runtime,
    StdStream, Stdio,
};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use support::*;

/// One test at a time (see the module docs).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn program() -> &'static procbridge::Program {
    static PROGRAM: OnceLock<procbridge::Program> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        runtime()
            .load_file(guest("plugin"))
            .expect("load plugin.wasm")
    })
}

fn quiet(policy: Policy) -> procbridge::HostState {
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Null).stderr(Stdio::Null).policy(policy);
    guest.build().expect("guest state")
}

fn plugin() -> Plugin {
    runtime()
        .instantiate(program(), quiet(Policy::default()))
        .expect("instantiate")
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn a_plugin_answers_bytes_and_keeps_its_state_between_calls() {
    let _serial = serial();
    let mut plugin = plugin();
    assert_eq!(text(plugin.call("count_vowels", b"Hello").unwrap()), "2");
    assert_eq!(
        text(plugin.call("count_vowels", b"AEIOU and y").unwrap()),
        "6"
    );
    for n in 1..=3 {
        assert_eq!(text(plugin.call("counter", b"").unwrap()), n.to_string());
    }
    for input in [&b""[..], b"\x00\xff binary", &vec![7u8; 1 << 20]] {
        assert_eq!(plugin.call("echo", input).unwrap(), input);
    }
    // Another instance has its own state.
    let mut other = self::plugin();
    assert_eq!(text(other.call("counter", b"").unwrap()), "1");
    assert_eq!(text(plugin.call("counter", b"").unwrap()), "4");
    // `main` never ran: instantiating is not running.
    assert!(plugin.is_alive());
}

#[test]
fn errors_name_the_export_and_what_happened() {
    let _serial = serial();
    let mut plugin = plugin();
    let err = plugin.call("no_such_export", b"").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::NoSuchExport), "{err}");
    assert_eq!(err.export(), "no_such_export");
    assert!(
        err.to_string().contains("`no_such_export` is not exported"),
        "{err}"
    );
    let err = plugin.call("add", b"").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::NotATask(_)), "{err}");
    // A reported failure keeps the instance.
    assert_eq!(text(plugin.call("counter", b"").unwrap()), "1");
    let err = plugin.call("fail", b"no reason").unwrap_err();
    assert!(
        matches!(err.kind(), CallErrorKind::Failed(m) if m == "refused: no reason"),
        "{err}"
    );
    assert!(!err.discarded_instance() && plugin.is_alive());
    assert_eq!(text(plugin.call("counter", b"").unwrap()), "2");
    // A panic ends it: its message is the plugin's text, quoted (a newline
    // in it forges no line of the embedder's log), the trap kept apart.
    let mut panicky = self::plugin();
    let err = panicky
        .call("panics", b"boom\nplugin.wasm: `x` forged")
        .unwrap_err();
    match err.kind() {
        CallErrorKind::Panicked { message, trap } => {
            assert!(
                message.starts_with("panicked at 'boom\nplugin.wasm"),
                "{message}"
            );
            assert!(trap.contains("unreachable"), "{trap}");
        }
        other => panic!("not a panic: {other:?}"),
    }
    assert!(err.is_trap() && err.discarded_instance() && !panicky.is_alive());
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
    // A trap ends it; later calls say why.
    let err = plugin.call("trap", b"").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::Trap(_)), "{err}");
    assert!(err.is_trap() && err.discarded_instance() && !plugin.is_alive());
    assert!(err.to_string().contains("unreachable"), "{err}");
    let err = plugin.call("counter", b"").unwrap_err();
    assert!(
        matches!(err.kind(), CallErrorKind::Discarded(why) if why.contains("`trap` trapped")),
        "{err}"
    );
    // proc_exit ends it too.
    let mut plugin = self::plugin();
    let err = plugin.call("exit_now", b"").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::Exit(3)), "{err}");
    assert!(!plugin.is_alive());
}

#[test]
fn a_spinning_plugin_is_stopped_at_its_deadline_while_another_keeps_answering() {
    let _serial = serial();
    let mut spinner = plugin();
    let mut steady = plugin();
    spinner.set_call_timeout(Some(Duration::from_millis(50)));
    let started = Instant::now();
    let spinning = std::thread::spawn(move || {
        let err = spinner.call("spin", b"").unwrap_err();
        (err, spinner.is_alive(), started.elapsed())
    });
    let mut answered = 0;
    while !spinning.is_finished() {
        assert_eq!(text(steady.call("count_vowels", b"plugin").unwrap()), "2");
        answered += 1;
    }
    let (err, alive, took) = spinning.join().unwrap();
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(err.kind(), CallErrorKind::Timeout(t) if *t == Duration::from_millis(50)));
    assert!(
        err.to_string().contains("`spin` timed out after 50ms"),
        "{err}"
    );
    assert!(!alive);
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(answered > 0);
    // The other plugin, and its state, are untouched.
    assert_eq!(text(steady.call("counter", b"").unwrap()), "1");
    // A deadline long enough is no deadline; none at all is none.
    steady.set_call_timeout(Some(Duration::from_secs(30)));
    assert_eq!(text(steady.call("counter", b"").unwrap()), "2");
    steady.set_call_timeout(None);
    assert_eq!(text(steady.call("counter", b"").unwrap()), "3");
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn a_timed_out_plugin_s_processes_are_killed() {
    let _serial = serial();
    let mut plugin = plugin();
    let pid: i32 = text(plugin.call("leave_sleeper", b"").unwrap())
        .parse()
        .unwrap();
    assert!(pid > 0 && alive(pid));
    plugin.set_call_timeout(Some(Duration::from_millis(20)));
    let started = Instant::now();
    assert!(plugin.call("spin", b"").unwrap_err().is_timeout());
    // Killed and reaped before the call returned (not joined: that would
    // have taken a minute).
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!alive(pid), "the plugin's process {pid} outlived it");
}

#[test]
fn plugins_fork_and_use_a_pool_inside_a_call() {
    let _serial = serial();
    let mut plugin = plugin();
    for _ in 0..2 {
        let out = text(plugin.call("forks", b"").unwrap());
        let words: Vec<&str> = out.split(' ').collect();
        assert_eq!(
            words[0..2],
            ["parent", &std::process::id().to_string()],
            "{out}"
        );
        // The child returned from the export and ended there, with 0.
        assert_eq!(words[3], words[5], "{out}");
        assert_ne!(words[3], words[1], "{out}");
        assert_eq!(words[6..], ["exited", "0"], "{out}");
        assert_eq!(
            text(plugin.call("pool_squares", b"6").unwrap()),
            "0,1,4,9,16,25"
        );
    }
    assert_eq!(text(plugin.call("counter", b"").unwrap()), "1");
}

#[test]
fn fuel_and_memory_limits_end_a_call_not_the_embedder() {
    let _serial = serial();
    let fueled = Runtime::builder().cache(None).fuel(true).build().unwrap();
    let program = fueled.load_file(guest("plugin")).unwrap();
    let mut plugin = fueled
        .instantiate(&program, quiet(Policy::default()))
        .unwrap();
    plugin.set_fuel(Some(10_000_000));
    assert_eq!(text(plugin.call("count_vowels", b"fuel").unwrap()), "2");
    let err = plugin.call("spin", b"").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::OutOfFuel), "{err}");
    // Fuel on a runtime that does not count it is refused, not ignored.
    let mut plugin = self::plugin();
    plugin.set_fuel(Some(1000));
    let err = plugin.call("count_vowels", b"x").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::NoFuel), "{err}");
    assert!(plugin.is_alive());
    // Memory: the policy's per-instance limit.
    let limits = Limits {
        max_memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let policy = Policy::builder().limits(limits).build();
    let mut plugin = runtime()
        .instantiate(program_of_runtime(), quiet(policy))
        .unwrap();
    assert_eq!(
        text(plugin.call("grow", b"4").unwrap()),
        (4usize << 20).to_string()
    );
    let err = plugin.call("grow", b"64").unwrap_err();
    assert!(
        matches!(err.kind(), CallErrorKind::OutOfMemory(m) if m.contains("memory limit")),
        "{err}"
    );
    assert!(!plugin.is_alive());
}

fn program_of_runtime() -> &'static procbridge::Program {
    program()
}

#[test]
fn run_stops_a_guest_at_the_policy_s_wall_time() {
    let _serial = serial();
    let spin = r#"(module (func (export "_start") (loop (br 0))))"#;
    let program = runtime().load_bytes("spin.wat", spin.as_bytes()).unwrap();
    let limits = Limits {
        wall_time: Some(Duration::from_millis(100)),
        ..Limits::default()
    };
    let policy = Policy::builder().limits(limits).build();
    let started = Instant::now();
    let err = runtime().run(&program, quiet(policy.clone())).unwrap_err();
    assert!(
        matches!(err.downcast_ref::<RunError>(), Some(RunError::Timeout(t)) if *t == Duration::from_millis(100)),
        "{err:#}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A runtime that cannot stop guests says so instead of ignoring it.
    let unstoppable = Runtime::builder()
        .cache(None)
        .epoch_interruption(false)
        .build()
        .unwrap();
    let program = unstoppable.load_bytes("spin.wat", spin.as_bytes()).unwrap();
    let err = unstoppable.run(&program, quiet(policy)).unwrap_err();
    assert!(
        matches!(err.downcast_ref::<RunError>(), Some(RunError::NoDeadlines)),
        "{err:#}"
    );
    let program = unstoppable.load_file(guest("plugin")).unwrap();
    let mut plugin = unstoppable
        .instantiate(&program, quiet(Policy::default()))
        .unwrap();
    plugin.set_call_timeout(Some(Duration::from_millis(10)));
    let err = plugin.call("count_vowels", b"").unwrap_err();
    assert!(matches!(err.kind(), CallErrorKind::NoDeadlines), "{err}");
    plugin.set_call_timeout(None);
    assert_eq!(
        text(plugin.call("count_vowels", b"a").unwrap()),
        "1",
        "{err}"
    );
}

#[test]
fn calls_from_inside_tokio() {
    let _serial = serial();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut plugin = plugin();
    // Blocking calls on a worker thread: moved off it, not a panic.
    let out = multi.block_on(async {
        tokio::spawn(async move {
            let a = plugin.call("count_vowels", b"tokio").unwrap();
            let b = plugin.call_async("counter", b"").await.unwrap();
            (a, b)
        })
        .await
        .unwrap()
    });
    assert_eq!((text(out.0), text(out.1)), ("3".into(), "1".into()));
    // run() and run_async() inside the runtime, a guest that prints.
    let hello = runtime().load_file(guest("hello")).unwrap();
    let codes = multi.block_on(async {
        let sync = runtime().run(&hello, quiet(Policy::default())).unwrap();
        let run_async = runtime()
            .run_async(&hello, quiet(Policy::default()))
            .await
            .unwrap();
        (sync, run_async)
    });
    assert_eq!(codes, (0, 0));
    // A current-thread runtime cannot block: a clear error, and the async
    // forms work.
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut plugin = self::plugin();
    let (blocked, awaited) = single.block_on(async {
        let blocked = plugin.call("counter", b"").unwrap_err();
        let awaited = plugin.call_async("counter", b"").await.unwrap();
        (blocked, awaited)
    });
    assert!(
        matches!(blocked.kind(), CallErrorKind::CannotBlock(_)),
        "{blocked}"
    );
    assert!(blocked.to_string().contains("call_async"), "{blocked}");
    assert_eq!(text(awaited), "1", "the refused call did not run");
    let err = single
        .block_on(async { runtime().run(&hello, quiet(Policy::default())) })
        .unwrap_err();
    assert!(
        err.to_string().contains("current-thread Tokio runtime"),
        "{err:#}"
    );
}

#[test]
fn a_pool_answers_concurrent_calls_and_replaces_ended_instances() {
    let _serial = serial();
    let pool = runtime()
        .plugin_pool(program(), quiet(Policy::default()), 4)
        .unwrap();
    assert_eq!(pool.size(), 4);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pool = std::sync::Arc::new(pool);
    let outs = multi.block_on(async {
        let calls: Vec<_> = (0..32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    pool.call("count_vowels", format!("a{}e", "i".repeat(i)).as_bytes())
                        .await
                })
            })
            .collect();
        let mut outs = Vec::new();
        for call in calls {
            outs.push(text(call.await.unwrap().unwrap()));
        }
        outs
    });
    let want: Vec<String> = (0..32).map(|i| (i + 2).to_string()).collect();
    assert_eq!(outs, want);
    // Instances are reused: 4 of them served 32 calls and 40 more.
    let mut counts: Vec<u64> = (0..40)
        .map(|_| {
            text(pool.call_blocking("counter", b"").unwrap())
                .parse()
                .unwrap()
        })
        .collect();
    counts.sort_unstable();
    assert!(*counts.last().unwrap() <= 40 && counts.len() == 40);
    // A call that times out ends its instance; the pool builds another.
    pool.set_call_timeout(Some(Duration::from_millis(20)));
    for _ in 0..5 {
        assert!(pool.call_blocking("spin", b"").unwrap_err().is_timeout());
    }
    pool.set_call_timeout(None);
    for _ in 0..8 {
        assert_eq!(
            text(pool.call_blocking("count_vowels", b"oo").unwrap()),
            "2"
        );
    }
    assert!(runtime()
        .plugin_pool(program(), quiet(Policy::default()), 0)
        .is_err());
}

#[test]
fn a_pool_call_waits_for_whichever_instance_is_given_back_first() {
    let _serial = serial();
    let pool = std::sync::Arc::new(
        runtime()
            .plugin_pool(program(), quiet(Policy::default()), 2)
            .unwrap(),
    );
    let start = Instant::now();
    let call = |ms: u64| {
        let pool = pool.clone();
        std::thread::spawn(move || {
            pool.call_blocking("sleep_ms", ms.to_string().as_bytes())
                .unwrap();
            start.elapsed()
        })
    };
    // Both instances busy: one for 4 s, one for 800 ms (each taken well
    // before the others come, on a loaded machine too).
    let long = call(4000);
    let short = call(800);
    std::thread::sleep(Duration::from_millis(400));
    // Six calls wait; all are served by the instance freed first, one
    // after another, while the other is still busy.
    let waiting: Vec<_> = (0..6).map(|_| call(50)).collect();
    let short_done = short.join().unwrap();
    for done in waiting.into_iter().map(|w| w.join().unwrap()) {
        assert!(done >= short_done, "{done:?} before {short_done:?}");
        assert!(done < Duration::from_millis(3500), "{done:?}");
    }
    assert!(long.join().unwrap() >= Duration::from_millis(4000));
    assert_eq!(
        text(pool.call_blocking("count_vowels", b"ae").unwrap()),
        "2"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn children() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|p| p == me))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn nothing_leaks_across_ten_thousand_calls() {
    let _serial = serial();
    let mut plugin = plugin();
    // Warm up: what lives as long as the process (the epoch thread, the
    // I/O runtime) is made by the first calls.
    plugin.set_call_timeout(Some(Duration::from_secs(60)));
    for _ in 0..200 {
        plugin.call("count_vowels", b"warm up").unwrap();
    }
    plugin.call("forks", b"").unwrap();
    let (fds, kids, rss) = (open_fds(), children(), rss_kib());
    for i in 0..10_000 {
        let out = plugin.call("count_vowels", b"sixteen bytes!!!").unwrap();
        assert_eq!(out, b"4");
        if i % 1000 == 0 {
            plugin.call("forks", b"").unwrap();
            assert!(plugin.call("fail", b"x").is_err());
        }
    }
    assert_eq!(open_fds(), fds, "descriptors leaked");
    assert_eq!(children(), kids, "processes leaked");
    let grown = rss_kib().saturating_sub(rss);
    assert!(
        grown < 16 << 10,
        "memory grew by {grown} KiB over 10,000 calls"
    );
}

#[test]
fn every_process_s_lines_reach_the_sink_tagged_with_its_pid() {
    let _serial = serial();
    let (sink, lines) = OutputSink::channel().unwrap();
    let mut guest = GuestBuilder::new();
    guest
        .stdout(Stdio::Sink(sink.clone()))
        .stderr(Stdio::Sink(sink));
    let mut plugin = runtime()
        .instantiate(program(), guest.build().unwrap())
        .unwrap();
    plugin.call("speak", b"").unwrap();
    assert_eq!(text(plugin.call("pool_squares", b"3").unwrap()), "0,1,4");
    drop((plugin, guest));
    // Every writer is gone: the channel ends after the last line.
    let got: Vec<OutputLine> = lines.iter().collect();
    let me = std::process::id();
    let shown: Vec<(bool, StdStream, String)> = got
        .iter()
        .map(|l| (l.pid == me, l.stream, l.text()))
        .collect();
    assert!(
        shown.contains(&(true, StdStream::Stdout, format!("out from {me}"))),
        "{shown:?}"
    );
    assert!(
        shown.contains(&(true, StdStream::Stderr, format!("err from {me}"))),
        "{shown:?}"
    );
    let child = got
        .iter()
        .find(|l| l.text().starts_with("out from child "))
        .unwrap_or_else(|| panic!("no line from the fork child: {shown:?}"));
    assert_ne!(child.pid, me);
    assert_eq!(child.text(), format!("out from child {}", child.pid));
    assert_eq!(got.len(), 3, "{shown:?}");
}

/// `sync` returns once every line written before it is handed over, even
/// when the embedder takes its lines slowly, and gives up (false) at its
/// timeout when they are not taken at all.
#[test]
fn sync_waits_until_the_lines_written_before_it_are_handed_over() {
    let _serial = serial();
    let wat = format!(
        r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0x1000) "{}")
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 0x1000))
          (i32.store (i32.const 4) (i32.const 100))
          (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        "line\\n".repeat(20)
    );
    let program = runtime().load_bytes("sync.wat", wat.as_bytes()).unwrap();
    let (send, lines) = crossbeam_channel::unbounded();
    let sink = OutputSink::new(move |line| {
        std::thread::sleep(Duration::from_millis(10));
        let _ = send.send(line.text());
    })
    .unwrap();
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Sink(sink.clone()));
    assert_eq!(runtime().run(&program, guest.build().unwrap()).unwrap(), 0);
    assert!(sink.sync(Duration::from_secs(10)));
    assert_eq!(lines.try_iter().count(), 20);

    let (held, hold) = crossbeam_channel::bounded::<()>(0);
    let stuck = OutputSink::new(move |_| {
        let _ = hold.recv();
    })
    .unwrap();
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Sink(stuck.clone()));
    assert_eq!(runtime().run(&program, guest.build().unwrap()).unwrap(), 0);
    let asked = Instant::now();
    assert!(!stuck.sync(Duration::from_millis(200)));
    assert!(asked.elapsed() >= Duration::from_millis(200));
    drop(held);
}

#[test]
fn long_and_partial_lines_are_joined_per_process() {
    let _serial = serial();
    // A guest writing a 10 KiB line in pieces, then a last line with no
    // newline.
    let long = "x".repeat(10_000);
    let wat = format!(
        r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 0x1000) "{long}\nno newline")
        (func $put (param $at i32) (param $len i32)
          (i32.store (i32.const 0) (local.get $at))
          (i32.store (i32.const 4) (local.get $len))
          (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
        (func (export "_start")
          (call $put (i32.const 0x1000) (i32.const 3000))
          (call $put (i32.const 0x1BB8) (i32.const 7001))
          (call $put (i32.const 0x3711) (i32.const 10))))"#
    );
    let program = runtime().load_bytes("lines.wat", wat.as_bytes()).unwrap();
    let (sink, lines) = OutputSink::channel().unwrap();
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Sink(sink));
    assert_eq!(runtime().run(&program, guest.build().unwrap()).unwrap(), 0);
    drop(guest);
    let got: Vec<String> = lines.iter().map(|l| l.text()).collect();
    assert_eq!(got, [long, "no newline".to_string()]);
}

#[test]
fn embedders_add_host_functions_of_their_own() {
    let _serial = serial();
    let runtime = Runtime::builder()
        .cache(None)
        .host_fn("platform", "upper", |input: &[u8]| {
            Ok(input.to_ascii_uppercase())
        })
        .host_fn("platform", "refuse", |input: &[u8]| {
            Err(format!("refused {} bytes", input.len()))
        })
        .build()
        .unwrap();
    // A guest that calls both, takes the result, and prints it and the
    // error's code and message.
    let wat = r#"(module
      (import "platform" "upper" (func $upper (param i32 i32) (result i32)))
      (import "platform" "refuse" (func $refuse (param i32 i32) (result i32)))
      (import "procbridge" "take_result" (func $take (param i32 i32) (result i32)))
      (import "procbridge" "last_error" (func $last_error (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 0x100) "hello plugin\n")
      (func $print (param $at i32) (param $len i32)
        (i32.store (i32.const 0) (local.get $at))
        (i32.store (i32.const 4) (local.get $len))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
      (func (export "_start") (local $n i32)
        (local.set $n (call $upper (i32.const 0x100) (i32.const 13)))
        (if (i32.ne (local.get $n) (i32.const 13)) (then (call $exit (i32.const 10))))
        (if (call $take (i32.const 0x200) (local.get $n)) (then (call $exit (i32.const 11))))
        (call $print (i32.const 0x200) (local.get $n))
        ;; An input outside memory: EFAULT, the function is not called.
        (if (i32.ne (call $upper (i32.const 0xFFFF) (i32.const 16)) (i32.const -14))
          (then (call $exit (i32.const 12))))
        (if (i32.ne (call $refuse (i32.const 0x100) (i32.const 5)) (i32.const -5))
          (then (call $exit (i32.const 13))))
        (local.set $n (call $last_error (i32.const 0x300) (i32.const 64)))
        (call $print (i32.const 0x300) (local.get $n))))"#;
    let program = runtime.load_bytes("platform.wat", wat.as_bytes()).unwrap();
    let out = procbridge::OutputCapture::new(1 << 16);
    let mut guest = GuestBuilder::new();
    guest.stdout(Stdio::Capture(out.clone()));
    assert_eq!(runtime.run(&program, guest.build().unwrap()).unwrap(), 0);
    assert_eq!(out.text(), "HELLO PLUGIN\nrefused 5 bytes");
    // A runtime without them cannot load the guest, and says which import.
    let err = self::runtime()
        .load_bytes("platform.wat", wat.as_bytes())
        .unwrap_err();
    assert!(err.to_string().contains("`platform::upper`"), "{err}");
    // procbridge's and WASI's import modules are not the embedder's.
    for module in ["procbridge", "wasi_snapshot_preview1"] {
        let err = Runtime::builder()
            .cache(None)
            .host_fn(module, "getpid", |_: &[u8]| Ok(Vec::new()))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("procbridge's own"), "{err}");
    }
    let err = Runtime::builder()
        .cache(None)
        .host_fn("platform", "twice", |_: &[u8]| Ok(Vec::new()))
        .host_fn("platform", "twice", |_: &[u8]| Ok(Vec::new()))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("platform::twice"), "{err}");
}

#[test]
fn a_command_s_inherited_output_reaches_the_sink_under_its_pid() {
    let _serial = serial();
    let (sink, lines) = OutputSink::channel().unwrap();
    let mut guest = GuestBuilder::new();
    guest
        .stdout(Stdio::Sink(sink.clone()))
        .stderr(Stdio::Sink(sink))
        .policy(Policy::builder().allow_run("sh").unwrap().build());
    let mut plugin = runtime()
        .instantiate(program(), guest.build().unwrap())
        .unwrap();
    let pid: u32 = text(plugin.call("command_speaks", b"hi").unwrap())
        .parse()
        .unwrap();
    drop((plugin, guest));
    let got: Vec<(u32, StdStream, String)> =
        lines.iter().map(|l| (l.pid, l.stream, l.text())).collect();
    assert!(
        got.contains(&(pid, StdStream::Stdout, "out: hi".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&(pid, StdStream::Stderr, "err: hi".into())),
        "{got:?}"
    );
    assert_eq!(got.len(), 2, "{got:?}");
}

#[test]
fn a_run_stopped_at_its_wall_time_kills_its_processes_instead_of_waiting() {
    let _serial = serial();
    // `_start` forks a `Process` running `busy` (which never returns), then
    // spins itself.
    let wat = r#"(module
      (import "procbridge" "process_start"
        (func $start (param i32 i32 i32 i32 i32 i32) (result i32)))
      (import "procbridge" "process_pid" (func $pid (param i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0x100) "busy")
      (func (export "busy") (param i32) (result i32) (loop (br 0)) (i32.const 0))
      (func (export "_start") (local $h i32)
        (local.set $h (call $start (i32.const 0x100) (i32.const 4) (i32.const 0) (i32.const 0)
                                   (i32.const 1) (i32.const 0)))
        (if (i32.le_s (local.get $h) (i32.const 0)) (then unreachable))
        ;; Its pid, as text is too long to write here: 4 raw bytes on stdout.
        (i32.store (i32.const 0x200) (call $pid (local.get $h)))
        (i32.store (i32.const 0) (i32.const 0x200))
        (i32.store (i32.const 4) (i32.const 4))
        (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (loop (br 0))))"#;
    let program = runtime().load_bytes("busy.wat", wat.as_bytes()).unwrap();
    let limits = Limits {
        wall_time: Some(Duration::from_millis(300)),
        ..Limits::default()
    };
    let out = procbridge::OutputCapture::new(64);
    let mut guest = GuestBuilder::new();
    guest
        .stdout(Stdio::Capture(out.clone()))
        .policy(Policy::builder().limits(limits).build());
    let state = guest.build().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(runtime().run(&program, state).map_err(|e| e.to_string()));
    });
    let result = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("run waited for a child that never ends");
    assert!(result.unwrap_err().contains("wall time"));
    let pid = i32::from_le_bytes(out.contents()[..4].try_into().unwrap());
    assert!(
        pid > 0 && !alive(pid),
        "process {pid} outlived the stopped run"
    );
}

#[test]
fn a_pool_replaces_instances_inside_a_current_thread_runtime() {
    let _serial = serial();
    let pool = runtime()
        .plugin_pool(program(), quiet(Policy::default()), 1)
        .unwrap();
    pool.set_call_timeout(Some(Duration::from_millis(20)));
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (spun, after) = single.block_on(async {
        let spun = pool.call("spin", b"").await.unwrap_err();
        let after = pool.call("count_vowels", b"io").await;
        (spun, after)
    });
    assert!(spun.is_timeout(), "{spun}");
    assert_eq!(text(after.unwrap()), "2");
}

#[test]
fn plugins_from_a_pooling_allocator_fork_and_free_their_slots() {
    let _serial = serial();
    let pooled = Runtime::builder()
        .cache(None)
        .pooling_allocator(2)
        .build()
        .unwrap();
    let program = pooled.load_file(guest("plugin")).unwrap();
    let mut a = pooled
        .instantiate(&program, quiet(Policy::default()))
        .unwrap();
    let mut b = pooled
        .instantiate(&program, quiet(Policy::default()))
        .unwrap();
    assert_eq!(text(a.call("count_vowels", b"pool").unwrap()), "2");
    assert_eq!(text(b.call("counter", b"").unwrap()), "1");
    let out = text(a.call("forks", b"").unwrap());
    assert!(out.ends_with("exited 0"), "{out}");
    assert_eq!(text(a.call("pool_squares", b"4").unwrap()), "0,1,4,9");
    // Two slots: a third instance waits for one to be freed.
    let err = pooled
        .instantiate(&program, quiet(Policy::default()))
        .unwrap_err();
    assert!(format!("{err:#}").contains("maximum concurrent"), "{err:#}");
    drop(b);
    let mut c = pooled
        .instantiate(&program, quiet(Policy::default()))
        .unwrap();
    assert_eq!(text(c.call("counter", b"").unwrap()), "1");
}

// The plugin fast path (`procbridge_scratch`): the same bytes as the task
// ABI's host calls, and a module that points the host outside its memory
// is stopped with an error, never read or written out of bounds.

/// The data area of the WAT modules' scratch buffers.
const WAT_CAPACITY: usize = 64;

/// A module whose `echo` task speaks both paths: with `scratch` it exports
/// `procbridge_scratch` (returning `scratch_at`, its data area's size
/// `WAT_CAPACITY`) and, when the host says so, takes its arguments from
/// the buffer and hands the result back at `result` (an expression: where
/// the header says the result is; `$src` is where the arguments are).
/// `flags` hands back the flags `echo` was last called with.
fn echo_wat(scratch: Option<(&str, &str)>) -> String {
    let (export, result) = match scratch {
        Some((at, result)) => (
            format!(
                // A hostile address is returned as it is, not written to.
                r#"(func (export "procbridge_scratch") (result i32)
                     (if (i32.lt_u (i32.const {at}) (i32.const 1310700))
                       (then (i32.store (i32.const {at}) (i32.const {WAT_CAPACITY}))))
                     (i32.const {at}))"#
            ),
            result.to_string(),
        ),
        None => (String::new(), String::from("(local.get $src)")),
    };
    let scratch_at = scratch.map_or("0", |(at, _)| at);
    format!(
        r#"(module
          (import "procbridge" "take_result" (func $take_result (param i32 i32) (result i32)))
          (import "procbridge" "task_return" (func $task_return (param i32 i32) (result i32)))
          (memory (export "memory") 20)
          (global $last (mut i32) (i32.const -1))
          {export}
          (func (export "echo") (param $len i32) (result i32)
            (local $flags i32) (local $src i32)
            (local.set $flags (i32.load (i32.add (i32.const {scratch_at}) (i32.const 4))))
            (if (i32.ne (i32.const {scratch_at}) (i32.const 0))
              (then (i32.store (i32.add (i32.const {scratch_at}) (i32.const 4)) (i32.const 0))))
            (global.set $last (local.get $flags))
            (if (i32.and (local.get $flags) (i32.const 1))
              (then (local.set $src (i32.add (i32.const {scratch_at}) (i32.const 16))))
              (else
                (local.set $src (i32.const 65536))
                (drop (call $take_result (local.get $src) (local.get $len)))))
            (if (i32.and (local.get $flags) (i32.const 2))
              (then
                (i32.store (i32.add (i32.const {scratch_at}) (i32.const 8)) {result})
                (i32.store (i32.add (i32.const {scratch_at}) (i32.const 12)) (local.get $len))
                (return (i32.const 2))))
            (drop (call $task_return (local.get $src) (local.get $len)))
            (i32.const 0))
          (func (export "flags") (param i32) (result i32)
            (i32.store8 (i32.const 0) (global.get $last))
            (drop (call $task_return (i32.const 0) (i32.const 1)))
            (i32.const 0)))"#
    )
}

fn wat_plugin(runtime: &Runtime, wat: &str) -> Plugin {
    let program = runtime.load_bytes("scratch.wat", wat.as_bytes()).unwrap();
    runtime
        .instantiate(&program, quiet(Policy::default()))
        .unwrap()
}

/// The inputs every path is tried with: empty, small, exactly the scratch
/// buffer, one byte over it, far over it.
fn inputs(capacity: usize) -> Vec<Vec<u8>> {
    [0, 1, 16, capacity - 1, capacity, capacity + 1, 1 << 20]
        .iter()
        .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
        .collect()
}

#[test]
fn the_fast_path_returns_what_the_host_calls_return() {
    let _serial = serial();
    let runtime = runtime();
    let mut slow = wat_plugin(runtime, &echo_wat(None));
    let mut fast = wat_plugin(runtime, &echo_wat(Some(("4096", "(local.get $src)"))));
    for input in inputs(WAT_CAPACITY) {
        let want = slow.call("echo", &input).unwrap();
        assert_eq!(want, input);
        assert_eq!(slow.call("flags", b"").unwrap(), [0]);
        assert_eq!(
            fast.call("echo", &input).unwrap(),
            want,
            "{} bytes",
            input.len()
        );
        // In the buffer when they fit; the result always through the header.
        let flags = if input.len() <= WAT_CAPACITY { 3 } else { 2 };
        assert_eq!(
            fast.call("flags", b"").unwrap(),
            [flags],
            "{} bytes",
            input.len()
        );
    }
    // The SDK's side: `plugin!()` (a buffer of 16 KiB) in guests/plugin.
    let mut plugin = plugin();
    for input in inputs(16 << 10) {
        assert_eq!(
            plugin.call("echo", &input).unwrap(),
            input,
            "{} bytes",
            input.len()
        );
        let batch = plugin
            .call("procbridge_batch.echo", &list(&[&input]))
            .unwrap();
        let want = list(&[&[&[0u8][..], &input[..]].concat()]);
        assert_eq!(batch, want, "batch of {} bytes", input.len());
    }
    for n in 1..=3 {
        assert_eq!(text(plugin.call("counter", b"").unwrap()), n.to_string());
    }
    // Results borrowed from the input (handed back where they are) and
    // owned ones (kept until the next call) in turns, each read whole.
    let long = "x".repeat(20 << 10);
    for (export, input, want) in [
        ("first_word", "  hello world", "hello"),
        ("count_vowels", "aeiou", "5"),
        ("first_word", "", ""),
        ("echo", "abc", "abc"),
        ("first_word", long.as_str(), long.as_str()),
        ("count_vowels", "hello", "2"),
        ("first_word", "one", "one"),
        ("greeting", "", "hello from the plugin"),
        ("first_word", "two words", "two"),
    ] {
        assert_eq!(
            text(plugin.call(export, input.as_bytes()).unwrap()),
            want,
            "{export}"
        );
    }
    let batch = plugin
        .call(
            "procbridge_batch.first_word",
            &list(&[&b"a b"[..], b"", b"cd"]),
        )
        .unwrap();
    assert_eq!(batch, list(&[&b"\0a"[..], b"\0", b"\0cd"]));
    let err = plugin.call("first_word", &[0xff, 0xfe]).unwrap_err();
    assert!(
        matches!(err.kind(), CallErrorKind::Failed(m) if m.contains("not UTF-8")),
        "{err}"
    );
    let err = plugin.call("fail", b"why").unwrap_err();
    assert!(
        matches!(err.kind(), CallErrorKind::Failed(m) if m == "refused: why"),
        "{err}"
    );
    assert!(plugin.is_alive());
    assert_eq!(plugin.call("echo", b"after").unwrap(), b"after");
}

/// The list encoding (`procbridge_abi::list`): each item a little-endian
/// `u32` length and its bytes.
fn list(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

#[test]
fn a_module_that_points_outside_its_memory_gets_an_error_naming_the_export() {
    let _serial = serial();
    let runtime = runtime();
    let memory = 20 * 65536;
    let cases: [(&str, &str, &str); 6] = [
        ("4100", "(local.get $src)", "not 8-byte aligned"),
        (
            &(memory - 8).to_string(),
            "(local.get $src)",
            "header is outside",
        ),
        ("-8", "(local.get $src)", "header is outside"),
        (
            &(memory - 32).to_string(),
            "(local.get $src)",
            "ends outside",
        ),
        ("4096", "(i32.const -16)", "outside its memory"),
        (
            "4096",
            &format!("(i32.const {})", memory - 4),
            "outside its memory",
        ),
    ];
    for (at, result, what) in cases {
        let mut plugin = wat_plugin(runtime, &echo_wat(Some((at, result))));
        let err = plugin.call("echo", &[1; 16]).unwrap_err();
        assert!(
            matches!(err.kind(), CallErrorKind::Abi(m) if m.contains(what)),
            "{at} {result}: {err}"
        );
        assert_eq!(err.export(), "echo");
        assert!(
            err.to_string().contains("`echo` broke the plugin ABI"),
            "{err}"
        );
        assert!(err.discarded_instance());
        assert!(!plugin.is_alive());
        let err = plugin.call("echo", b"").unwrap_err();
        assert!(matches!(err.kind(), CallErrorKind::Discarded(_)), "{err}");
    }
    // An export of the wrong type, and one that traps.
    for export in [
        r#"(func (export "procbridge_scratch") (param i32) (result i32) (i32.const 0))"#,
        r#"(func (export "procbridge_scratch") (result i32) unreachable)"#,
    ] {
        let wat = echo_wat(None).replacen("(global $last", &format!("{export}\n(global $last"), 1);
        let mut plugin = wat_plugin(runtime, &wat);
        let err = plugin.call("echo", b"x").unwrap_err();
        assert_eq!(err.export(), "echo");
        assert!(
            matches!(err.kind(), CallErrorKind::Abi(m) if m.contains("not `() -> i32`"))
                || matches!(err.kind(), CallErrorKind::Trap(_)),
            "{err}"
        );
        assert!(!plugin.is_alive());
    }
}

#[test]
fn a_reactor_s_initialize_runs_once_with_fuel_counted() {
    let _serial = serial();
    let fueled = Runtime::builder().cache(None).fuel(true).build().unwrap();
    // `_initialize` burns fuel (a loop) before the first call has a limit.
    let wat = echo_wat(Some(("4096", "(local.get $src)"))).replacen(
        "(global $last",
        r#"(global $inits (mut i32) (i32.const 0))
           (func (export "_initialize") (local $n i32)
             (global.set $inits (i32.add (global.get $inits) (i32.const 1)))
             (loop $l
               (local.set $n (i32.add (local.get $n) (i32.const 1)))
               (br_if $l (i32.lt_u (local.get $n) (i32.const 100000)))))
           (func (export "inits") (param i32) (result i32)
             (i32.store8 (i32.const 0) (global.get $inits))
             (drop (call $task_return (i32.const 0) (i32.const 1)))
             (i32.const 0))
           (global $last"#,
        1,
    );
    let mut plugin = wat_plugin(&fueled, &wat);
    plugin.set_fuel(Some(10_000));
    assert_eq!(plugin.call("echo", b"fueled").unwrap(), b"fueled");
    assert_eq!(plugin.call("inits", b"").unwrap(), [1]);
    // The SDK's reactor (`plugin!()`), with fuel and without a limit.
    let program = fueled.load_file(guest("plugin")).unwrap();
    let mut plugin = fueled
        .instantiate(&program, quiet(Policy::default()))
        .unwrap();
    assert_eq!(plugin.call("echo", b"no limit").unwrap(), b"no limit");
    plugin.set_fuel(Some(1_000_000));
    assert_eq!(text(plugin.call("count_vowels", b"fuel").unwrap()), "2");
}
