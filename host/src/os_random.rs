//! The guests' WASI randomness, straight from the kernel (`getrandom`) on
//! every call.
//!
//! wasmtime-wasi's default generator is seeded once per context; a forked
//! child would go on with a copy of its parent's state and read the very
//! same bytes (and a `spawn` child's seed comes from a thread-local
//! generator that `fork` copies too). With no state at all, every process
//! of the tree draws its own bytes.

use rand_core::TryRng;
use std::convert::Infallible;

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
