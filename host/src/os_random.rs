//! The guests' WASI randomness, straight from the kernel (`getrandom`) on
//! every call.
//!
//! wasmtime-wasi's default generator is seeded once per context; a forked
//! child would go on with a copy of its parent's state and read the very
//! same bytes (and a `spawn` child's seed comes from a thread-local
//! generator that `fork` copies too). With no state at all, every process
//! of the tree draws its own bytes.
//!
//! WASI's `random_get` is answered here too ([`add_to_linker`]):
//! wasmtime-wasi's draws its bytes one at a time from the generator, which
//! for a stateless one is a system call per byte (CPython's `random.seed()`
//! after every fork asked for 2,496 bytes: 1.7 ms). Here it is one
//! `getrandom` into the guest's memory.

use crate::ctx::HostState;
use rand_core::TryRng;
use std::convert::Infallible;
use wasmtime::{Caller, Linker};

/// WASI errno `fault`.
const ERRNO_FAULT: i32 = 21;

/// Answers WASI's `random_get` (shadowing wasmtime-wasi's).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.func_wrap(crate::wasi_p1::MODULE, "random_get", random_get)?;
    Ok(())
}

/// Fills the guest's `len` bytes at `buf` from the kernel: `0`, or WASI's
/// `fault` for a range outside its memory (nothing is written then).
fn random_get(mut caller: Caller<'_, HostState>, buf: i32, len: i32) -> wasmtime::Result<i32> {
    let memory = crate::guest_mem::wasi_memory(&mut caller)?;
    let start = buf as u32 as usize;
    let end = start.saturating_add(len as u32 as usize);
    match memory.data_mut(&mut caller).get_mut(start..end) {
        Some(dst) => {
            fill(dst);
            Ok(0)
        }
        None => Ok(ERRNO_FAULT),
    }
}

/// A generator with no state: each draw asks the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OsRandom;

impl TryRng for OsRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        fill(&mut bytes);
        Ok(u32::from_ne_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        fill(&mut bytes);
        Ok(u64::from_ne_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        fill(dst);
        Ok(())
    }
}

fn fill(mut dst: &mut [u8]) {
    while !dst.is_empty() {
        // SAFETY: getrandom writes at most `dst.len()` bytes into `dst`.
        let n = unsafe { libc::getrandom(dst.as_mut_ptr().cast(), dst.len(), 0) };
        if n > 0 {
            dst = &mut dst[n as usize..];
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // getrandom(2) cannot fail for these arguments on a kernel that
            // has it (3.17+); never hand out predictable bytes.
            panic!("getrandom failed: {}", std::io::Error::last_os_error());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_fill_everything() {
        let mut rng = OsRandom;
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        rng.try_fill_bytes(&mut a).unwrap();
        rng.try_fill_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(rng.try_next_u64().unwrap(), rng.try_next_u64().unwrap());
    }
}
