//! The one checked accessor for guest memory.
//!
//! Host functions never index guest memory themselves: they receive a
//! [`GuestMemory`] and ask it for ranges. Every access is bounds-checked
//! (with overflow-safe arithmetic on the guest's 32-bit pointers), reads are
//! capped in size, and strings are checked to be UTF-8. A failure is a
//! [`BridgeError`] (`EFAULT`, `E2BIG`, `EINVAL`), never a panic.

use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use procbridge_abi::list;
use wasmtime::{Caller, Memory};

/// The guest's exported `memory`, looked up by name once per store and
/// kept in [`Bridge::memory`](crate::ctx::Bridge) (`None`: it exports none).
pub(crate) fn exported_memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    if let Some(memory) = caller.data().bridge.memory {
        return Some(memory);
    }
    let memory = caller.get_export("memory")?.into_memory()?;
    caller.data_mut().bridge.memory = Some(memory);
    Some(memory)
}

/// [`exported_memory`] for a WASI function: a module without one traps,
/// as wasmtime-wasi's functions do.
///
/// # Errors
/// The module exports no memory named `memory`.
pub(crate) fn wasi_memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    exported_memory(caller).ok_or_else(|| wasmtime::Error::msg("missing required memory export"))
}

/// The largest single read the host accepts from a guest by default (16 MiB).
pub const MAX_READ: usize = 16 << 20;

/// The most items a list argument (argv, env) may have.
pub const MAX_LIST_ITEMS: usize = 4096;

/// A guest's linear memory, borrowed for the duration of one host call.
#[derive(Debug)]
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> GuestMemory<'a> {
    /// Wraps the bytes of a guest memory.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        GuestMemory { bytes }
    }

    fn range(&self, ptr: i32, len: usize) -> BridgeResult<std::ops::Range<usize>> {
        let start = ptr as u32 as usize;
        let end = start.checked_add(len);
        match end {
            Some(end) if end <= self.bytes.len() => Ok(start..end),
            _ => Err(BridgeError::new(
                Errno::Fault,
                format!(
                    "guest range {start:#x}+{len} is outside its memory of {} bytes",
                    self.bytes.len()
                ),
            )),
        }
    }

    fn length(len: i32, max: usize) -> BridgeResult<usize> {
        let len = len as u32 as usize;
        if len > max {
            return Err(BridgeError::new(
                Errno::TooBig,
                format!("argument of {len} bytes is over the limit of {max}"),
            ));
        }
        Ok(len)
    }

    /// Borrows `len` bytes at `ptr`, refusing more than `max` bytes.
    pub fn read(&self, ptr: i32, len: i32, max: usize) -> BridgeResult<&[u8]> {
        let len = Self::length(len, max)?;
        let range = self.range(ptr, len)?;
        Ok(&self.bytes[range])
    }

    /// Borrows a UTF-8 string of `len` bytes at `ptr`.
    pub fn read_str(&self, ptr: i32, len: i32, max: usize) -> BridgeResult<&str> {
        let bytes = self.read(ptr, len, max)?;
        std::str::from_utf8(bytes)
            .map_err(|e| BridgeError::invalid(format!("string argument is not UTF-8: {e}")))
    }

    /// Reads a list (see [`procbridge_abi::list`]) of at most
    /// [`MAX_LIST_ITEMS`] items in `len` bytes at `ptr`.
    pub fn read_list(&self, ptr: i32, len: i32, max: usize) -> BridgeResult<Vec<Vec<u8>>> {
        let bytes = self.read(ptr, len, max)?;
        list::decode_max(bytes, MAX_LIST_ITEMS).map_err(|e| match e {
            // Over a host limit, as an argument over MAX_READ is.
            list::DecodeError::TooManyItems => BridgeError::new(
                Errno::TooBig,
                format!("list argument has more than {MAX_LIST_ITEMS} items"),
            ),
            list::DecodeError::Truncated => BridgeError::invalid(format!("list argument: {e}")),
        })
    }

    /// Reads a list whose items must all be UTF-8 strings.
    pub fn read_str_list(&self, ptr: i32, len: i32, max: usize) -> BridgeResult<Vec<String>> {
        self.read_list(ptr, len, max)?
            .into_iter()
            .map(|item| {
                String::from_utf8(item).map_err(|_| BridgeError::invalid("list item is not UTF-8"))
            })
            .collect()
    }

    /// Checks that `len` bytes at `ptr` are inside the memory.
    pub fn check(&self, ptr: i32, len: usize) -> BridgeResult<()> {
        self.range(ptr, len).map(|_| ())
    }

    /// Copies `data` to the guest at `ptr`.
    pub fn write(&mut self, ptr: i32, data: &[u8]) -> BridgeResult<()> {
        let range = self.range(ptr, data.len())?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }

    /// Writes a little-endian `i32` at `ptr`.
    pub fn write_i32(&mut self, ptr: i32, value: i32) -> BridgeResult<()> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a little-endian `i64` at `ptr`.
    #[cfg(test)]
    pub fn write_i64(&mut self, ptr: i32, value: i64) -> BridgeResult<()> {
        self.write(ptr, &value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_outside() {
        let mut bytes = *b"hello world";
        let mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.read(6, 5, MAX_READ).unwrap(), b"world");
        assert_eq!(mem.read(11, 0, MAX_READ).unwrap(), b"");
        assert_eq!(mem.read(7, 5, MAX_READ).unwrap_err().errno, Errno::Fault);
        assert_eq!(mem.read(12, 0, MAX_READ).unwrap_err().errno, Errno::Fault);
        // Negative i32s are large u32 addresses and lengths.
        assert_eq!(mem.read(-1, 1, MAX_READ).unwrap_err().errno, Errno::Fault);
        assert_eq!(mem.read(0, -1, usize::MAX).unwrap_err().errno, Errno::Fault);
        assert_eq!(mem.read(0, -1, MAX_READ).unwrap_err().errno, Errno::TooBig);
    }

    #[test]
    fn wrapping_pointer_is_a_fault() {
        let mut bytes = [0u8; 16];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(
            mem.write(i32::MAX, &[1, 2]).unwrap_err().errno,
            Errno::Fault
        );
        assert_eq!(mem.write_i64(12, 1).unwrap_err().errno, Errno::Fault);
        mem.write_i64(8, -2).unwrap();
        assert_eq!(mem.read(8, 8, 8).unwrap(), &(-2i64).to_le_bytes());
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut bytes = [b'o', b'k', 0xff, 0xfe];
        let mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.read_str(0, 2, 16).unwrap(), "ok");
        assert_eq!(mem.read_str(0, 4, 16).unwrap_err().errno, Errno::Inval);
    }

    #[test]
    fn lists_are_decoded_and_checked() {
        let mut bytes = procbridge_abi::list::encode(&["echo", "hi"]);
        bytes.push(7); // a truncated third item
        let mem = GuestMemory::new(&mut bytes);
        let ok_len = (bytes_len_without_tail()) as i32;
        assert_eq!(
            mem.read_str_list(0, ok_len, 64).unwrap(),
            vec!["echo", "hi"]
        );
        assert_eq!(
            mem.read_list(0, ok_len + 1, 64).unwrap_err().errno,
            Errno::Inval
        );
    }

    fn bytes_len_without_tail() -> usize {
        procbridge_abi::list::encode(&["echo", "hi"]).len()
    }
}
