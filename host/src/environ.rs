//! `environ_sizes_get` and `environ_get`, answered from the guest's own
//! state exactly as wasmtime-wasi answers them, without its per-call
//! overhead (a tracing span, the memory export looked up by name).
//!
//! They are called often: a module built as a WASI *command* (any Rust
//! binary) runs its C start-up code, which reads the whole environment,
//! around every export a plugin host calls.

use crate::ctx::HostState;
use wasmtime::{Caller, Linker, Memory};

const ERRNO_FAULT: i32 = 21;

/// The environment as WASI hands it over: `K=V\0` entries, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environ {
    entries: Vec<u8>,
    /// Where each entry starts in `entries`.
    starts: Vec<u32>,
}

impl Environ {
    pub(crate) fn new<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environ {
        let mut environ = Environ::default();
        for (key, value) in vars {
            environ.starts.push(environ.entries.len() as u32);
            environ.entries.extend_from_slice(key.as_bytes());
            environ.entries.push(b'=');
            environ.entries.extend_from_slice(value.as_bytes());
            environ.entries.push(0);
        }
        environ
    }
}

/// Shadows wasmtime-wasi's two functions on `linker` (after its own).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    linker.allow_shadowing(true);
    linker.func_wrap(WASI, "environ_sizes_get", environ_sizes_get)?;
    linker.func_wrap(WASI, "environ_get", environ_get)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    if let Some(memory) = caller.data().bridge.memory {
        return Ok(memory);
    }
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| wasmtime::Error::msg("missing required memory export"))?;
    caller.data_mut().bridge.memory = Some(memory);
    Ok(memory)
}

fn environ_sizes_get(
    mut caller: Caller<'_, HostState>,
    count_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    let memory = memory(&mut caller)?;
    let environ = &caller.data().bridge.environ;
    let count = environ.starts.len() as u32;
    let size = environ.entries.len() as u32;
    let written = memory
        .write(&mut caller, count_ptr as u32 as usize, &count.to_le_bytes())
        .and_then(|()| memory.write(&mut caller, size_ptr as u32 as usize, &size.to_le_bytes()));
    Ok(if written.is_ok() { 0 } else { ERRNO_FAULT })
}

fn environ_get(
    mut caller: Caller<'_, HostState>,
    environ_ptr: i32,
    buf_ptr: i32,
) -> wasmtime::Result<i32> {
    let memory = memory(&mut caller)?;
    let (bytes, state) = memory.data_and_store_mut(&mut caller);
    let environ = &state.bridge.environ;
    let buf = buf_ptr as u32 as usize;
    let table = environ_ptr as u32 as usize;
    let Some(out) = bytes.get_mut(buf..buf.saturating_add(environ.entries.len())) else {
        return Ok(ERRNO_FAULT);
    };
    out.copy_from_slice(&environ.entries);
    for (n, start) in environ.starts.iter().enumerate() {
        let at = table.saturating_add(4 * n);
        let pointer = (buf as u32).wrapping_add(*start).to_le_bytes();
        let Some(slot) = bytes.get_mut(at..at.saturating_add(4)) else {
            return Ok(ERRNO_FAULT);
        };
        slot.copy_from_slice(&pointer);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_key_equals_value_nul_in_order() {
        let environ = Environ::new([("A", "1"), ("LONG", ""), ("A", "2")]);
        assert_eq!(environ.entries, b"A=1\0LONG=\0A=2\0");
        assert_eq!(environ.starts, [0, 4, 10]);
    }
}
