//! The cost of a plugin call (issue 14), next to the same call made with
//! plain wasmtime: the bench program of `bench/run`'s `plugin` scenario.
//!
//! - procbridge: `Plugin::call("echo", 16 bytes)` on a warm instance of
//!   `target/guests/plugin.wasm` (`plugin_call_ns`), and
//!   `PluginPool::call_blocking` of the same on a pool of 4 (`pool_call_ns`);
//! - plain wasmtime: a module exporting `memory` and
//!   `echo(ptr, len) -> len` (it copies the bytes elsewhere in its memory),
//!   called through a `TypedFunc` on a default `Config`: the 16 bytes are
//!   written into its memory, `echo` is called and the 16 bytes it copied
//!   are read back into a `Vec` (`plugin_call_ns` of the other side).
//!
//! Each figure is the median, over 20 rounds of 10,000 calls (`--quick`:
//! 5 of 1,000), of the time per call, after one round of warm-up. It prints
//! `BENCH <key> <value>` lines, as every bench program of `bench/run` does:
//!
//! ```text
//! cargo run --release --example plugin_bench -- procbridge [--plugin FILE] [--cache-dir DIR] [--quick]
//! cargo run --release --example plugin_bench -- wasmtime [--quick]
//! cargo run --release --example plugin_bench            # both, as a table
//! ```
//!
//! The plugin is built by `guests/build plugin`. Without `--cache-dir` the
//! module cache is the default one (`ModuleCache::default_dir`).

use anyhow::{bail, Context};
use procbridge::{GuestBuilder, ModuleCache, Runtime};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;
use wasmtime::{Engine, Instance, Module, Store, TypedFunc};

/// The input of every call.
const INPUT: [u8; 16] = *b"0123456789abcdef";

/// The plain wasmtime module: `echo` copies `len` bytes from `ptr` to
/// `OUTPUT_AT` and returns `len`.
const WAT: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
    (memory.copy (i32.const 1024) (local.get $ptr) (local.get $len))
    (local.get $len)))
"#;

/// Where the plain wasmtime call's input is written and its output read.
const INPUT_AT: usize = 0;
const OUTPUT_AT: usize = 1024;

/// Instances in the pool.
const POOL_SIZE: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Procbridge,
    Wasmtime,
    Both,
}

struct Args {
    side: Side,
    quick: bool,
    plugin: PathBuf,
    cache_dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        side: Side::Both,
        quick: false,
        plugin: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/guests/plugin.wasm"
        )),
        cache_dir: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "procbridge" => args.side = Side::Procbridge,
            "wasmtime" => args.side = Side::Wasmtime,
            "--quick" => args.quick = true,
            "--plugin" => args.plugin = argv.next().context("--plugin needs a file")?.into(),
            "--cache-dir" => {
                args.cache_dir = Some(argv.next().context("--cache-dir needs a directory")?.into());
            }
            other => bail!(
                "unknown argument {other:?}; usage: plugin_bench [procbridge|wasmtime] \
                 [--plugin FILE] [--cache-dir DIR] [--quick]"
            ),
        }
    }
    Ok(args)
}

/// One measured call and the figure it gives.
struct Bench<'a> {
    side: &'static str,
    key: &'static str,
    call: Box<dyn FnMut() -> Vec<u8> + 'a>,
    samples: Vec<f64>,
}

impl<'a> Bench<'a> {
    fn new(side: &'static str, key: &'static str, call: impl FnMut() -> Vec<u8> + 'a) -> Self {
        Bench {
            side,
            key,
            call: Box::new(call),
            samples: Vec::new(),
        }
    }

    /// Nanoseconds per call over `calls` calls.
    fn round(&mut self, calls: usize) -> f64 {
        let start = Instant::now();
        for _ in 0..calls {
            black_box((self.call)());
        }
        start.elapsed().as_secs_f64() * 1e9 / calls as f64
    }

    fn median(&self) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (rounds, calls) = if args.quick { (5, 1_000) } else { (20, 10_000) };

    let mut benches = Vec::new();

    // procbridge: one warm instance, and a pool. The runtime lives to the end.
    let runtime = match (&args.side, &args.cache_dir) {
        (Side::Wasmtime, _) => None,
        (_, Some(dir)) => Some(
            Runtime::builder()
                .cache(Some(ModuleCache::new(dir)))
                .build()?,
        ),
        (_, None) => Some(Runtime::new()?),
    };
    if let Some(runtime) = &runtime {
        let program = runtime.load_file(&args.plugin).with_context(|| {
            format!(
                "loading {} (built by `guests/build plugin`)",
                args.plugin.display()
            )
        })?;
        let mut plugin = runtime.instantiate(&program, GuestBuilder::new().build()?)?;
        let pool = runtime.plugin_pool(&program, GuestBuilder::new().build()?, POOL_SIZE)?;
        anyhow::ensure!(
            plugin.call("echo", &INPUT)? == INPUT,
            "echo changed its input"
        );
        anyhow::ensure!(
            pool.call_blocking("echo", &INPUT)? == INPUT,
            "echo changed its input"
        );
        benches.push(Bench::new("procbridge", "plugin_call_ns", move || {
            plugin.call("echo", black_box(&INPUT)).expect("plugin.call")
        }));
        benches.push(Bench::new("procbridge", "pool_call_ns", move || {
            pool.call_blocking("echo", black_box(&INPUT))
                .expect("pool.call_blocking")
        }));
    }

    // Plain wasmtime: the same call through a TypedFunc.
    if args.side != Side::Procbridge {
        let engine = Engine::default();
        let module = Module::new(&engine, WAT)?;
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[])?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("the module exports no memory")?;
        let echo: TypedFunc<(i32, i32), i32> = instance.get_typed_func(&mut store, "echo")?;
        let mut call = move || -> anyhow::Result<Vec<u8>> {
            memory.write(&mut store, INPUT_AT, black_box(&INPUT))?;
            let len = echo.call(&mut store, (INPUT_AT as i32, INPUT.len() as i32))?;
            let mut out = vec![0; usize::try_from(len)?];
            memory.read(&store, OUTPUT_AT, &mut out)?;
            Ok(out)
        };
        anyhow::ensure!(call()? == INPUT, "echo changed its input");
        benches.push(Bench::new("plain wasmtime", "plugin_call_ns", move || {
            call().expect("plain wasmtime call")
        }));
    }

    // Warm-up, then rounds in turns, so a slow moment hits every figure.
    for bench in &mut benches {
        bench.round(calls);
    }
    for _ in 0..rounds {
        for bench in &mut benches {
            let ns = bench.round(calls);
            bench.samples.push(ns);
        }
    }

    if args.side == Side::Both {
        for bench in &benches {
            println!(
                "{:15} {:15} {:10.1} ns",
                bench.side,
                bench.key,
                bench.median()
            );
        }
        if let [plugin, pool, plain] = &benches[..] {
            println!(
                "ratios to plain wasmtime: plugin.call {:.2}x, pool call {:.2}x",
                plugin.median() / plain.median(),
                pool.median() / plain.median()
            );
        }
    } else {
        for bench in &benches {
            println!("BENCH {} {:.3}", bench.key, bench.median());
        }
    }
    Ok(())
}
