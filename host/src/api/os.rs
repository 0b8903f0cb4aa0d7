//! `os`: process identity and the bridge's own plumbing.
//!
//! | function | returns |
//! |---|---|
//! | `getpid() -> i32` | the real OS pid of the process running this instance |
//! | `getppid() -> i32` | the real OS pid of its parent |
//! | `last_error(ptr, cap) -> i32` | length of the last error message; copies up to `cap` bytes of it to `ptr` |
//! | `take_result(ptr, len) -> i32` | copies the waiting result (exactly `len` bytes) to `ptr`; `0` |

use super::{with_memory, MODULE};
use crate::ctx::HostState;
use wasmtime::{Caller, Linker};

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.func_wrap(MODULE, "getpid", getpid)?;
    linker.func_wrap(MODULE, "getppid", getppid)?;
    linker.func_wrap(MODULE, "last_error", last_error)?;
    linker.func_wrap(MODULE, "take_result", take_result)?;
    Ok(())
}

fn getpid() -> i32 {
    std::process::id() as i32
}

fn getppid() -> i32 {
    std::os::unix::process::parent_id() as i32
}

fn last_error(mut caller: Caller<'_, HostState>, ptr: i32, cap: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let message = state.bridge.last_error().as_bytes();
        let n = message.len().min(cap.max(0) as usize);
        let len = message.len() as i32;
        let copy = message[..n].to_vec();
        mem.write(ptr, &copy)?;
        Ok(len)
    })
}

fn take_result(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let want = len as u32 as usize;
        // Check the destination before handing the result over, so a bad
        // pointer does not lose it.
        mem.check(ptr, want)?;
        let result = state.bridge.take_result(want)?;
        mem.write(ptr, &result)?;
        Ok(0)
    })
}
