//! `environ_sizes_get` and `environ_get`, answered from the guest's own
//! state as wasmtime-wasi answers them (a pointer outside memory or
//! misaligned traps), without its per-call overhead (a tracing span, the
//! memory export looked up by name).
//!
//! They are called often: a module built as a WASI *command* (any Rust
//! binary) runs its C start-up code, which reads the whole environment,
//! around every export a plugin host calls.

use crate::ctx::HostState;
use wasmtime::{Caller, Linker};

/// A pointer outside memory or misaligned: a trap, as wasmtime-wasi (and
/// the WASI specification) has it.
fn bad_pointer(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("{what}: pointer out of bounds or misaligned"))
}

/// `len` bytes at `ptr` of a memory of `size` bytes, aligned to `align`.
fn span(ptr: i32, len: usize, align: usize, size: usize) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len)?;
    (start.is_multiple_of(align) && end <= size).then_some(start..end)
}

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

/// Adds WASI's two environment functions to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    const WASI: &str = crate::wasi_p1::MODULE;
    linker.func_wrap(WASI, "environ_sizes_get", environ_sizes_get)?;
    linker.func_wrap(WASI, "environ_get", environ_get)?;
    Ok(())
}

fn environ_sizes_get(
    mut caller: Caller<'_, HostState>,
    count_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<i32> {
    let memory = crate::guest_mem::wasi_memory(&mut caller)?;
    let (bytes, state) = memory.data_and_store_mut(&mut caller);
    let environ = &state.bridge.environ;
    let count = (environ.starts.len() as u32).to_le_bytes();
    let size = (environ.entries.len() as u32).to_le_bytes();
    for (ptr, value) in [(count_ptr, count), (size_ptr, size)] {
        let at = span(ptr, 4, 4, bytes.len()).ok_or_else(|| bad_pointer("environ_sizes_get"))?;
        bytes[at].copy_from_slice(&value);
    }
    Ok(0)
}

fn environ_get(
    mut caller: Caller<'_, HostState>,
    environ_ptr: i32,
    buf_ptr: i32,
) -> wasmtime::Result<i32> {
    let memory = crate::guest_mem::wasi_memory(&mut caller)?;
    let (bytes, state) = memory.data_and_store_mut(&mut caller);
    let environ = &state.bridge.environ;
    // Nothing to write: nothing is checked, as wasmtime-wasi's writes
    // nothing and succeeds.
    if environ.starts.is_empty() {
        return Ok(0);
    }
    let size = bytes.len();
    let buf =
        span(buf_ptr, environ.entries.len(), 1, size).ok_or_else(|| bad_pointer("environ_get"))?;
    let table = span(environ_ptr, 4 * environ.starts.len(), 4, size)
        .ok_or_else(|| bad_pointer("environ_get"))?;
    let base = buf.start as u32;
    bytes[buf].copy_from_slice(&environ.entries);
    for (slot, start) in bytes[table].chunks_exact_mut(4).zip(&environ.starts) {
        slot.copy_from_slice(&base.wrapping_add(*start).to_le_bytes());
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
