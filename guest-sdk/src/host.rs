//! Calling host functions of the embedder's own (a plugin platform's API,
//! registered with `RuntimeBuilder::host_fn`): bytes in, bytes out.
//!
//! ```ignore
//! #[link(wasm_import_module = "platform")]
//! extern "C" {
//!     fn lookup(ptr: *const u8, len: i32) -> i32;
//! }
//!
//! let answer = procbridge_sdk::host::call(|ptr, len| unsafe { lookup(ptr, len) }, b"key")?;
//! ```

use crate::error::{check, take_result, Result};

/// Calls an imported host function `(ptr, len) -> i32` with `input`; the
/// bytes it answers.
///
/// # Errors
/// What the host function reported (`EIO` with its message), or the
/// ABI's errors (`EFAULT`, `E2BIG`).
pub fn call(import: impl FnOnce(*const u8, i32) -> i32, input: &[u8]) -> Result<Vec<u8>> {
    let len = check(import(input.as_ptr(), input.len() as i32))?;
    take_result(len)
}
