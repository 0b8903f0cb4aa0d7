//! The floor under `procbridge run`'s start-up: plain wasmtime running a
//! WASI command from a precompiled module, with nothing of procbridge's
//! (no grants, no confinement, no process API). `bench/run`'s start-up
//! scenario times it next to `procbridge run hello.wasm` and the native
//! `hello`, so what procbridge adds is told apart from what any program
//! of wasmtime's size pays to start on the machine.
//!
//! ```text
//! cargo run --release --example wasmtime_run -- CACHE_DIR MODULE.wasm [ARGS...]
//! ```
//!
//! The first run compiles `MODULE.wasm` with a default `Config` and writes
//! the compiled module to `CACHE_DIR/<file name>.cwasm`; later runs load
//! that file (`Module::deserialize_file`, which maps it) without reading
//! the module. Standard input, output and error are inherited; arguments
//! after the module are the guest's (its `argv[0]` is the module's path).
//! The exit code is the guest's.
//!
//! Besides WASI it defines the two host functions `guests/hello` imports,
//! `procbridge::getpid` and `procbridge::getppid`, as the host's own pid
//! and parent pid, so that the same module runs on both sides.

use std::path::{Path, PathBuf};
use wasmtime::bail;
use wasmtime::error::Context;
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::WasiCtxBuilder;

fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cache_dir, module, guest_args @ ..] = args.as_slice() else {
        bail!("usage: wasmtime_run CACHE_DIR MODULE.wasm [ARGS...]");
    };
    let engine = Engine::default();
    let module = load(&engine, Path::new(cache_dir), Path::new(module))?;

    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
    linker.func_wrap("procbridge", "getpid", || std::process::id() as i32)?;
    linker.func_wrap("procbridge", "getppid", || {
        std::os::unix::process::parent_id() as i32
    })?;
    let wasi = WasiCtxBuilder::new()
        .inherit_stdio()
        .arg(&args[1])
        .args(guest_args)
        .build_p1();
    let mut store = Store::new(&engine, wasi);
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(()),
        Err(err) => match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => std::process::exit(exit.0),
            None => Err(err),
        },
    }
}

/// The compiled module: from `cache_dir` when it is there, compiled (and
/// written there) when it is not.
fn load(engine: &Engine, cache_dir: &Path, wasm: &Path) -> wasmtime::Result<Module> {
    let name = wasm.file_name().context("the module has no file name")?;
    let mut compiled = PathBuf::from(cache_dir).join(name);
    compiled.set_extension("cwasm");
    if compiled.exists() {
        // SAFETY: the file was written by `Module::serialize` of this
        // program (the same wasmtime and `Config`), into a directory the
        // caller names for it; wasmtime checks its header and version.
        return unsafe { Module::deserialize_file(engine, &compiled) };
    }
    let module = Module::from_file(engine, wasm)?;
    std::fs::create_dir_all(cache_dir)?;
    std::fs::write(&compiled, module.serialize()?)?;
    Ok(module)
}
