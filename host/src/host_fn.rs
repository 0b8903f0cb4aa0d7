//! Host functions of the embedder's own, next to procbridge's: a closure
//! taking bytes and answering bytes, imported by the guest as
//! `MODULE::NAME(ptr, len) -> i32` (see [`crate::RuntimeBuilder::host_fn`]).
//!
//! The guest passes its input as a buffer; a result is kept for
//! `take_result` and its length returned, as procbridge's own functions
//! with results of variable length do (`docs/abi.md`); an error returns
//! `-EIO` with the closure's message for `last_error`. In Rust:
//!
//! ```ignore
//! #[link(wasm_import_module = "platform")]
//! extern "C" {
//!     fn lookup(ptr: *const u8, len: i32) -> i32;
//! }
//! let answer: Vec<u8> = procbridge_sdk::host::call(|p, n| unsafe { lookup(p, n) }, b"key")?;
//! ```

use crate::api::with_memory;
use crate::ctx::HostState;
use crate::errno::{BridgeError, Errno};
use std::sync::Arc;
use wasmtime::{Caller, Linker};

/// The largest input a host function is given.
const MAX_INPUT: usize = 16 << 20;

/// An embedder's function: bytes in, bytes or a message out.
pub(crate) type HostFn = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// One function to register.
#[derive(Clone)]
pub(crate) struct Registration {
    pub(crate) module: String,
    pub(crate) name: String,
    pub(crate) func: HostFn,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.module, self.name)
    }
}

/// Import modules an embedder may not add to (procbridge's and WASI's
/// functions are checked as they are).
const RESERVED: [&str; 2] = [crate::MODULE, "wasi_snapshot_preview1"];

/// Registers `functions` on `linker`.
///
/// # Errors
/// A reserved module, or a name registered twice.
pub(crate) fn add_to_linker(
    linker: &mut Linker<HostState>,
    functions: &[Registration],
) -> anyhow::Result<()> {
    for Registration { module, name, func } in functions {
        if RESERVED.contains(&module.as_str()) {
            anyhow::bail!(
                "host function {module}::{name}: the import module `{module}` is procbridge's own"
            );
        }
        let func = func.clone();
        linker
            .func_wrap(
                module,
                name,
                move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> i32 {
                    with_memory(&mut caller, |mem, state| {
                        let input = mem.read(ptr, len, MAX_INPUT)?;
                        match func(input) {
                            Ok(output) => state.bridge.set_result(output),
                            Err(message) => Err(BridgeError::new(Errno::Io, message)),
                        }
                    })
                },
            )
            .map_err(|e| anyhow::anyhow!("host function {module}::{name}: {e}"))?;
    }
    Ok(())
}
