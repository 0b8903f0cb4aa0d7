//! `pipe`: Python's `multiprocessing.Pipe`, two connections over a socket
//! pair (see [`crate::channel::pipe`]).
//!
//! | function | returns |
//! |---|---|
//! | `pipe_new(duplex, out_ptr) -> i32` | `0`; the two connection handles (inheritable) as two `i32`s at `out_ptr` |
//! | `pipe_send(c, ptr, len) -> i32` | `0` once the message is sent |
//! | `pipe_recv(c, ptr, cap, timeout_us) -> i32` | the message's length; at `ptr` if it fits in `cap`, else waiting for `take_result` |
//! | `pipe_poll(c, timeout_us) -> i32` | `1` if `recv` would not wait (a message or end-of-file), else `0` |
//! | `pipe_close(c) -> i32` | `0`; this process's handle is closed |

use super::{deliver, with_memory, with_state};
use crate::channel::{pipe, Connection, Wait, MAX_PIPE_MESSAGE};
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult};
use wasmtime::Caller;

const KIND: &str = "pipe";

fn connection(state: &mut HostState, c: i32) -> BridgeResult<&mut Connection> {
    state.bridge.handles.get::<Connection>(c, KIND)
}

pub(super) fn pipe_new(mut caller: Caller<'_, HostState>, duplex: i32, out_ptr: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        if !(0..=1).contains(&duplex) {
            return Err(BridgeError::invalid(format!(
                "pipe_new: duplex must be 0 or 1, not {duplex}"
            )));
        }
        mem.check(out_ptr, 8)?;
        let (a, b) = pipe(duplex == 1)?;
        let handles = &mut state.bridge.handles;
        let ha = handles.insert_inheritable(KIND, a)?;
        let hb = match handles.insert_inheritable(KIND, b) {
            Ok(h) => h,
            Err(err) => {
                let _ = handles.remove::<Connection>(ha, KIND);
                return Err(err);
            }
        };
        mem.write_i32(out_ptr, ha)?;
        mem.write_i32(out_ptr.wrapping_add(4), hb)?;
        Ok(0)
    })
}

pub(super) fn pipe_send(mut caller: Caller<'_, HostState>, c: i32, ptr: i32, len: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let conn = connection(state, c)?;
        let msg = mem.read(ptr, len, MAX_PIPE_MESSAGE)?;
        conn.send(msg)?;
        Ok(0)
    })
}

pub(super) fn pipe_recv(
    mut caller: Caller<'_, HostState>,
    c: i32,
    ptr: i32,
    cap: i32,
    timeout_us: i64,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let wait = Wait::from_micros(timeout_us)?;
        let cap = cap as u32 as usize;
        mem.check(ptr, cap)?;
        let msg = connection(state, c)?.recv(wait)?;
        deliver(mem, state, ptr, cap, msg)
    })
}

pub(super) fn pipe_poll(mut caller: Caller<'_, HostState>, c: i32, timeout_us: i64) -> i32 {
    with_state(&mut caller, |state| {
        let wait = Wait::from_micros(timeout_us)?;
        Ok(i32::from(connection(state, c)?.poll(wait)?))
    })
}

pub(super) fn pipe_close(mut caller: Caller<'_, HostState>, c: i32) -> i32 {
    with_state(&mut caller, |state| {
        state.bridge.handles.remove::<Connection>(c, KIND)?;
        Ok(0)
    })
}
