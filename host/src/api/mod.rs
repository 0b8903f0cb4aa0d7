//! The host functions guests import from the [`MODULE`] module.
//!
//! One submodule per section of the ABI table ([`procbridge_abi::functions!`]),
//! each holding the functions of its section under their ABI names;
//! [`add_to_linker`] registers every function of the table, each checked at
//! compile time against the table's parameter types. Every function follows
//! the convention of [`procbridge_abi`]: `i32` return, negative errno on
//! failure with a message kept for `last_error`. `docs/abi.md` documents
//! every function, and a test holds it to the table.

use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::guest_mem::GuestMemory;
use wasmtime::{Caller, Linker};

pub use procbridge_abi::MODULE;

pub(crate) mod os;
pub(crate) mod pipe;
pub(crate) mod pool;
pub(crate) mod process;
pub(crate) mod queue;
pub(crate) mod subprocess;

/// Registers every function of the ABI table: `SECTION::NAME` as
/// `procbridge::NAME`, with the table's parameter types.
macro_rules! register_table {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
        fn register_table(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
            $($(
                // The table's types, checked at compile time; the function
                // item itself is registered (no call through a pointer).
                let _: fn(Caller<'_, HostState> $(, procbridge_abi::wasm_type!($kind))*) -> i32 =
                    $section::$name;
                linker.func_wrap(MODULE, stringify!($name), $section::$name)?;
            )*)*
            Ok(())
        }
    };
}

procbridge_abi::functions!(register_table);

/// Registers every bridged function on `linker`, and the host's own
/// `proc_exit`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    register_table(linker)?;
    process::add_proc_exit(linker)?;
    Ok(())
}

/// Runs a host function body that needs guest memory.
///
/// The body gets the checked [`GuestMemory`] and the guest's state; its
/// `Err` becomes `-errno` with the message kept for `last_error`.
pub(crate) fn with_memory<F>(caller: &mut Caller<'_, HostState>, body: F) -> i32
where
    F: FnOnce(&mut GuestMemory<'_>, &mut HostState) -> BridgeResult<i32>,
{
    let memory = match crate::guest_mem::exported_memory(caller) {
        Some(memory) => memory,
        None => {
            return caller.data_mut().bridge.fail(BridgeError::new(
                Errno::Fault,
                "the guest exports no memory named `memory`",
            ))
        }
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    let mut mem = GuestMemory::new(bytes);
    match body(&mut mem, state) {
        Ok(value) => value,
        Err(err) => state.bridge.fail(err),
    }
}

/// Runs a host function body that does not touch guest memory.
pub(crate) fn with_state<F>(caller: &mut Caller<'_, HostState>, body: F) -> i32
where
    F: FnOnce(&mut HostState) -> BridgeResult<i32>,
{
    let state = caller.data_mut();
    match body(state) {
        Ok(value) => value,
        Err(err) => state.bridge.fail(err),
    }
}

/// Hands a received message to the guest: at `ptr` if it fits in `cap`
/// bytes, else kept for `take_result` (the ABI's convention for results of
/// variable length). Returns its length.
pub(crate) fn deliver(
    mem: &mut GuestMemory<'_>,
    state: &mut HostState,
    ptr: i32,
    cap: usize,
    msg: Vec<u8>,
) -> BridgeResult<i32> {
    if msg.len() <= cap {
        mem.write(ptr, &msg)?;
        Ok(msg.len() as i32)
    } else {
        state.bridge.set_result(msg)
    }
}
