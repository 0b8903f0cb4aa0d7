//! A plugin host: procbridge embedded in a Rust program that keeps an
//! instance of a wasm plugin and calls its exports with bytes, each call
//! under its own limits, then serves concurrent calls from a pool inside
//! Tokio. Every step prints what happened.
//!
//! ```text
//! guests/build plugin                              # target/guests/plugin.wasm
//! cargo run --release --example plugin_host        # or: ... -- OTHER.wasm
//! ```
//!
//! The plugin is `guests/plugin` (a `cdylib` whose `task!` exports are
//! `count_vowels`, `counter`, `spin`, `fail`, `forks`, `pool_squares`,
//! `speak`, ...). The embedder's guide is `docs/embedding.md`.

use anyhow::{ensure, Context};
use procbridge::{
    CallErrorKind, GuestBuilder, Limits, OutputLine, OutputSink, Policy, Runtime, StdStream, Stdio,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let path = plugin_path().unwrap_or_else(|missing| {
        eprintln!("plugin_host: {missing}");
        std::process::exit(1);
    });
    let me = std::process::id();
    println!("embedder: pid {me}");

    // The runtime: engine, linker, module cache, deadline ticker.
    let runtime = Runtime::new()?;
    let program = runtime
        .load_file(&path)
        .with_context(|| format!("loading {}", path.display()))?;
    println!(
        "loaded {} ({:?})",
        shown(&path),
        program.origin() // Compiled the first time, Cached afterwards
    );

    // What every instance gets: no grants, 64 MiB of linear memory.
    let limits = Limits {
        max_memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let mut guest = GuestBuilder::new();
    guest.policy(Policy::builder().limits(limits).build());

    // --- One instance, kept between calls ---------------------------------
    step("instantiate: `_initialize` runs, `_start` does not");
    let mut plugin = runtime.instantiate(&program, guest.build()?)?;
    let out: Vec<u8> = plugin.call("count_vowels", b"Hello")?;
    println!("count_vowels(\"Hello\") -> {:?}", text(&out));
    ensure!(out == b"2", "count_vowels(\"Hello\") should be 2");
    let counts = (0..3)
        .map(|_| plugin.call("counter", b"").map(|c| text(&c)))
        .collect::<Result<Vec<_>, _>>()?;
    println!("counter x3 -> {counts:?} (state kept between calls)");

    step("errors that keep the instance");
    let err = plugin.call("fail", b"not today").unwrap_err();
    ensure!(matches!(err.kind(), CallErrorKind::Failed(_)));
    println!("{err}");
    let err = plugin.call("no_such_export", b"").unwrap_err();
    ensure!(matches!(err.kind(), CallErrorKind::NoSuchExport));
    println!("{err}");
    println!(
        "alive: {}; counter -> {:?}",
        plugin.is_alive(),
        text(&plugin.call("counter", b"")?)
    );

    step("fork and a Pool inside a call (real OS processes)");
    println!("forks -> {:?}", text(&plugin.call("forks", b"")?));
    println!(
        "pool_squares(\"6\") -> {:?}",
        text(&plugin.call("pool_squares", b"6")?)
    );

    step("a per-call deadline stops a spinning plugin; the embedder goes on");
    let sleeper = text(&plugin.call("leave_sleeper", b"")?);
    println!(
        "leave_sleeper started process {sleeper} (alive: {})",
        process_alive(&sleeper)
    );
    plugin.set_call_timeout(Some(Duration::from_millis(50)));
    let started = Instant::now();
    let err = plugin.call("spin", b"").unwrap_err();
    assert!(err.is_timeout());
    println!("{err}");
    println!(
        "returned after {:?}; discarded: {}, alive: {}; process {sleeper} alive: {}",
        round_ms(started.elapsed()),
        err.discarded_instance(),
        plugin.is_alive(),
        process_alive(&sleeper)
    );
    let err = plugin.call("counter", b"").unwrap_err();
    ensure!(matches!(err.kind(), CallErrorKind::Discarded(_)));
    println!("{err}");

    step("the policy's memory limit ends a call, not the embedder");
    let mut plugin = runtime.instantiate(&program, guest.build()?)?;
    println!("grow(\"8\") MiB -> {:?}", text(&plugin.call("grow", b"8")?));
    let err = plugin.call("grow", b"128").unwrap_err();
    ensure!(matches!(err.kind(), CallErrorKind::OutOfMemory(_)));
    println!("{err}");

    step("every process's output, tagged with its pid (OutputSink)");
    let (sink, lines) = OutputSink::channel()?;
    let mut speaking = GuestBuilder::new();
    speaking
        .stdout(Stdio::Sink(sink.clone()))
        .stderr(Stdio::Sink(sink));
    let mut plugin = runtime.instantiate(&program, speaking.build()?)?;
    plugin.call("speak", b"")?;
    // The lines end once every holder of the sink is gone.
    drop((plugin, speaking));
    let lines: Vec<OutputLine> = lines.iter().collect();
    for line in &lines {
        let who = if line.pid == me { "embedder" } else { "child" };
        let stream = match line.stream {
            StdStream::Stdout => "stdout",
            StdStream::Stderr => "stderr",
        };
        println!("[pid {} {who} {stream}] {}", line.pid, line.text());
    }
    ensure!(lines.len() == 3, "speak writes three lines");

    // --- Inside Tokio --------------------------------------------------------
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    tokio.block_on(async {
        step("a pool of 4 instances, called from async code");
        let pool = Arc::new(runtime.plugin_pool(&program, guest.build()?, 4)?);
        let out = pool.call("count_vowels", b"Hello").await?;
        println!("pool.call(count_vowels, \"Hello\") -> {:?}", text(&out));

        // Four calls that each sleep 200 ms run side by side.
        let started = Instant::now();
        let calls: Vec<_> = (0..pool.size())
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.call("sleep_ms", b"200").await })
            })
            .collect();
        for call in calls {
            call.await??;
        }
        println!(
            "{} calls of sleep_ms(200) took {:?}",
            pool.size(),
            round_ms(started.elapsed())
        );

        // Instances are reused: 8 calls of `counter` over 4 instances.
        let mut counts = Vec::new();
        for _ in 0..8 {
            counts.push(text(&pool.call("counter", b"").await?));
        }
        println!("counter x8 over the pool -> {counts:?}");

        // A call that times out loses its instance; the pool builds another.
        pool.set_call_timeout(Some(Duration::from_millis(50)));
        let err = pool.call("spin", b"").await.unwrap_err();
        println!("{err}");
        pool.set_call_timeout(None);
        let out = pool.call("count_vowels", b"replaced").await?;
        println!("then count_vowels(\"replaced\") -> {:?}", text(&out));

        step("blocking calls on a Tokio worker thread");
        let mut plugin = runtime.instantiate(&program, guest.build()?)?;
        let out = tokio::spawn(async move {
            // `call` runs in block_in_place here; `call_async` on a
            // blocking thread.
            let a = plugin.call("count_vowels", b"tokio")?;
            let b = plugin.call_async("counter", b"").await?;
            anyhow::Ok((text(&a), text(&b)))
        })
        .await??;
        println!("call -> {:?}, call_async -> {:?}", out.0, out.1);
        anyhow::Ok(())
    })?;

    step("a current-thread runtime: `call` refuses to block, `call_async` works");
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut plugin = runtime.instantiate(&program, guest.build()?)?;
    let (refused, awaited) = single.block_on(async {
        let refused = plugin.call("counter", b"").unwrap_err();
        let awaited = plugin.call_async("counter", b"").await;
        (refused, awaited)
    });
    ensure!(matches!(refused.kind(), CallErrorKind::CannotBlock(_)));
    println!("{refused}");
    println!(
        "call_async(counter) -> {:?} (the refused call did not run)",
        text(&awaited?)
    );

    println!("\ndone: the embedder outlived every failed call");
    Ok(())
}

/// Where `guests/build plugin` writes the plugin, from the repository's root.
const PLUGIN: &str = "target/guests/plugin.wasm";

/// The plugin: the first argument, or [`PLUGIN`] (from the current
/// directory when it is the repository's root, else from this crate's).
fn plugin_path() -> Result<PathBuf, String> {
    let path = match std::env::args_os().nth(1) {
        Some(arg) => PathBuf::from(arg),
        None if Path::new(PLUGIN).is_file() => PathBuf::from(PLUGIN),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PLUGIN),
    };
    if !path.is_file() {
        return Err(format!(
            "{} is missing: build it first with `guests/build plugin` \
             (from the repository's root)",
            shown(&path)
        ));
    }
    Ok(path)
}

/// `path` relative to the repository's root when it lies inside it.
fn shown(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    match path.strip_prefix(&root) {
        Ok(inside) => inside.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Whether process `pid` exists (it has an entry in /proc).
fn process_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}
