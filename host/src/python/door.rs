//! The door: how a Python guest, which can only make WASI calls, reaches
//! procbridge's host functions.
//!
//! The guest opens `door` in a directory procbridge preopens for it
//! (`/dev/procbridge`) and gets a descriptor no WASI table holds
//! ([`DOOR_FD`]). Writing a [frame](super::frame) to it is one call of a
//! procbridge host function: the host decodes the frame, calls the function
//! it names from the runtime's own linker — exactly the import a Rust guest
//! would call, with the same checks — and writes the return value into the
//! frame, where buffers the function filled already are. The call runs on
//! the guest's own call stack, so `fork` forks inside the interpreter.
//!
//! For this, five WASI functions are shadowed (`path_open`, `fd_write`,
//! `fd_read`, `fd_close`, `fd_fdstat_get`): for the door they answer
//! themselves, for everything else (and for every guest without a door)
//! they run wasmtime-wasi's own implementation, as its linker glue does.

use super::bound::{self, BoundDoors};
use super::frame::{self, Arg, FrameError};
use crate::ctx::HostState;
use crate::wasi_p1::call_wasi;
use std::collections::HashMap;
use wasmtime::{Caller, Func, Linker, Memory, TypedFunc, Val};

/// The descriptor the door has in the guest: far above anything a WASI
/// table hands out.
pub const DOOR_FD: i32 = 0x7FFF_FF00;
/// The file that is the door, in the door's directory.
const DOOR_NAME: &[u8] = b"door";
/// The door's own call (not a host function): the length of the result
/// waiting for `take_result`, after a [bound door](bound) said `EMSGSIZE`.
pub const RESULT_LEN: &str = "result_len";
/// The largest frame accepted (a `communicate` input rides in one).
const MAX_FRAME: usize = 1 << 30;

// WASI errno values.
pub(super) const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// A guest's door: where it is, and the host functions it has called.
#[derive(Debug)]
pub(crate) struct Door {
    /// The WASI descriptor of the door's preopened directory.
    dir_fd: i32,
    funcs: HashMap<String, Callee>,
    /// The doors bound to one function and handle ([`bound`]).
    pub(super) bound: BoundDoors,
}

/// A host function the door has called, with its signature, read once.
#[derive(Debug, Clone)]
pub(super) struct Callee {
    func: Func,
    /// The same function typed, for the signatures of the hot paths
    /// (`getpid`, closing a handle, a message put or taken): called without
    /// checking and boxing each argument.
    pub(super) typed: Option<Typed>,
    /// How many parameters, and which are i64 (bit `n` for parameter `n`;
    /// the others are i32). `None`: a signature the door cannot call (not
    /// i32 and i64 parameters only, or not one i32 result).
    params: Option<(usize, u64)>,
}

/// [`Callee::func`] as a typed function, for the signatures calls take
/// most often.
#[derive(Clone)]
pub(super) enum Typed {
    /// `() -> i32`
    Nullary(TypedFunc<(), i32>),
    /// `(i32) -> i32`: a handle.
    Handle(TypedFunc<i32, i32>),
    /// `(i32, i32, i32) -> i32`: a handle and a buffer.
    Buffer(TypedFunc<(i32, i32, i32), i32>),
    /// `(i32, i32, i32, i64) -> i32`: a handle, a buffer, a timeout.
    Message(TypedFunc<(i32, i32, i32, i64), i32>),
}

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Typed::Nullary(_) => "() -> i32",
            Typed::Handle(_) => "(i32) -> i32",
            Typed::Buffer(_) => "(i32, i32, i32) -> i32",
            Typed::Message(_) => "(i32, i32, i32, i64) -> i32",
        })
    }
}

impl Typed {
    fn of(func: Func, store: impl wasmtime::AsContext) -> Option<Typed> {
        let store = store.as_context();
        if let Ok(f) = func.typed::<(), i32>(&store) {
            return Some(Typed::Nullary(f));
        }
        if let Ok(f) = func.typed::<i32, i32>(&store) {
            return Some(Typed::Handle(f));
        }
        if let Ok(f) = func.typed::<(i32, i32, i32), i32>(&store) {
            return Some(Typed::Buffer(f));
        }
        func.typed::<(i32, i32, i32, i64), i32>(&store)
            .ok()
            .map(Typed::Message)
    }

    /// Calls it when `args` are its parameters (which the caller checked).
    fn call(
        &self,
        caller: &mut Caller<'_, HostState>,
        args: &[Arg],
    ) -> Option<wasmtime::Result<i32>> {
        Some(match (self, args) {
            (Typed::Nullary(f), []) => f.call(caller, ()),
            (Typed::Handle(f), [Arg::I32(h)]) => f.call(caller, *h),
            (Typed::Buffer(f), [Arg::I32(h), Arg::I32(ptr), Arg::I32(len)]) => {
                f.call(caller, (*h, *ptr, *len))
            }
            (Typed::Message(f), [Arg::I32(h), Arg::I32(ptr), Arg::I32(len), Arg::I64(t)]) => {
                f.call(caller, (*h, *ptr, *len, *t))
            }
            _ => return None,
        })
    }
}

impl Door {
    /// A door in the directory preopened as WASI descriptor `dir_fd`.
    pub(crate) fn new(dir_fd: i32) -> Door {
        Door {
            dir_fd,
            funcs: HashMap::new(),
            bound: BoundDoors::default(),
        }
    }
}

/// Shadows the five WASI functions on `linker` (after `wasi_p1`'s).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    linker.allow_shadowing(true);
    linker.func_wrap(WASI, "path_open", path_open)?;
    linker.func_wrap(WASI, "fd_write", fd_write)?;
    linker.func_wrap(WASI, "fd_read", fd_read)?;
    linker.func_wrap(WASI, "fd_close", fd_close)?;
    linker.func_wrap(WASI, "fd_fdstat_get", fd_fdstat_get)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn has_door(caller: &Caller<'_, HostState>) -> Option<i32> {
    caller.data().bridge.door.as_ref().map(|d| d.dir_fd)
}

#[allow(clippy::too_many_arguments)]
fn path_open(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    base: i64,
    inheriting: i64,
    fdflags: i32,
    opened: i32,
) -> wasmtime::Result<i32> {
    if has_door(&caller) == Some(fd) {
        let memory = crate::guest_mem::wasi_memory(&mut caller)?;
        let name = memory
            .data(&caller)
            .get(
                path as u32 as usize
                    ..(path as u32 as usize).saturating_add(path_len as u32 as usize),
            )
            .map(<[u8]>::to_vec);
        let door = match name.as_deref() {
            Some(DOOR_NAME) => Some(Ok(DOOR_FD)),
            Some(name) => bound::open(&mut caller, name),
            None => None,
        };
        if let Some(door) = door {
            return Ok(match door {
                Ok(fd) => {
                    match memory.write(&mut caller, opened as u32 as usize, &fd.to_le_bytes()) {
                        Ok(()) => 0,
                        Err(_) => ERRNO_FAULT,
                    }
                }
                Err(errno) => errno,
            });
        }
    }
    call_wasi!(
        caller,
        path_open(fd, dirflags, path, path_len, oflags, base, inheriting, fdflags, opened)
    )
}

fn fd_write(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    if fd != DOOR_FD || has_door(&caller).is_none() {
        if bound::is_bound(&caller, fd) {
            return call_bound(caller, fd, iovs, iovs_len, nwritten);
        }
        return call_wasi!(caller, fd_write(fd, iovs, iovs_len, nwritten));
    }
    let memory = crate::guest_mem::wasi_memory(&mut caller)?;
    let (base, len) = match one_buffer(&caller, memory, iovs, iovs_len) {
        Ok(buffer) => buffer,
        Err(errno) => return Ok(errno),
    };
    if let Err(errno) = call_frame(&mut caller, memory, base, len as usize)? {
        return Ok(errno);
    }
    // `fork` may have happened: each process answers in its own memory.
    Ok(write_count(&mut caller, memory, nwritten, len))
}

fn fd_read(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    if fd == DOOR_FD && has_door(&caller).is_some() {
        // The door answers in place; there is nothing to read.
        return Ok(ERRNO_BADF);
    }
    if bound::is_bound(&caller, fd) {
        return call_bound(caller, fd, iovs, iovs_len, nread);
    }
    call_wasi!(caller, fd_read(fd, iovs, iovs_len, nread))
}

/// A read or write of a bound door: one call of its function.
fn call_bound(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    count: i32,
) -> wasmtime::Result<i32> {
    let memory = crate::guest_mem::wasi_memory(&mut caller)?;
    let (ptr, len) = match one_buffer(&caller, memory, iovs, iovs_len) {
        Ok(buffer) => buffer,
        Err(errno) => return Ok(errno),
    };
    // Where the count goes is checked first: a message taken is never lost
    // to a bad pointer (memory only grows, so it stays valid).
    let count_fits = (count as u32 as usize)
        .checked_add(4)
        .is_some_and(|end| end <= memory.data_size(&caller));
    if !count_fits {
        return Ok(ERRNO_FAULT);
    }
    Ok(match bound::call(&mut caller, memory, fd, ptr, len)? {
        Ok(n) => write_count(&mut caller, memory, count, n),
        Err(errno) => errno,
    })
}

/// The one buffer of an I/O vector (a door call takes exactly one).
fn one_buffer(
    caller: &Caller<'_, HostState>,
    memory: Memory,
    iovs: i32,
    iovs_len: i32,
) -> Result<(u32, u32), i32> {
    if iovs_len != 1 {
        return Err(ERRNO_INVAL);
    }
    let mut iov = [0u8; 8];
    memory
        .read(caller, iovs as u32 as usize, &mut iov)
        .map_err(|_| ERRNO_FAULT)?;
    let base = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
    let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
    Ok((base, len))
}

/// Writes a read or write's byte count for the guest: its WASI errno.
fn write_count(caller: &mut Caller<'_, HostState>, memory: Memory, at: i32, n: u32) -> i32 {
    match memory.write(caller, at as u32 as usize, &n.to_le_bytes()) {
        Ok(()) => 0,
        Err(_) => ERRNO_FAULT,
    }
}

fn fd_close(mut caller: Caller<'_, HostState>, fd: i32) -> wasmtime::Result<i32> {
    if fd == DOOR_FD && has_door(&caller).is_some() || bound::close(&mut caller, fd) {
        return Ok(0);
    }
    call_wasi!(caller, fd_close(fd))
}

fn fd_fdstat_get(mut caller: Caller<'_, HostState>, fd: i32, out: i32) -> wasmtime::Result<i32> {
    if fd == DOOR_FD && has_door(&caller).is_some() || bound::is_bound(&caller, fd) {
        // A character device with every right, no flags.
        let mut stat = [0u8; 24];
        stat[0] = 2;
        stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        stat[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let memory = crate::guest_mem::wasi_memory(&mut caller)?;
        let written = memory.write(&mut caller, out as u32 as usize, &stat);
        return Ok(if written.is_ok() { 0 } else { ERRNO_FAULT });
    }
    call_wasi!(caller, fd_fdstat_get(fd, out))
}

/// Calls the frame at guest address `base` and writes its return value
/// into it. `Err(errno)` when there is no frame to call; a trap inside the
/// host function (a guest bug the host cannot answer) propagates.
fn call_frame(
    caller: &mut Caller<'_, HostState>,
    memory: Memory,
    base: u32,
    len: usize,
) -> wasmtime::Result<Result<(), i32>> {
    if len > MAX_FRAME {
        return Ok(Err(ERRNO_INVAL));
    }
    // Decoded where it lies: the call owns what it needs.
    let decoded = match memory
        .data(&*caller)
        .get(base as usize..(base as usize).saturating_add(len))
    {
        Some(frame) => frame::decode(frame, base),
        None => return Ok(Err(ERRNO_FAULT)),
    };
    let ret = match decoded {
        Ok(call) => dispatch(caller, memory, &call.name, &call.args)?,
        Err(FrameError::NotAFrame) => return Ok(Err(ERRNO_INVAL)),
        Err(FrameError::Malformed) => -libc::EINVAL,
    };
    // Inside the frame (decoding checked it holds its header).
    let at = base as usize + frame::RET_OFFSET;
    Ok(match memory.write(&mut *caller, at, &ret.to_le_bytes()) {
        Ok(()) => Ok(()),
        Err(_) => Err(ERRNO_FAULT),
    })
}

/// Calls the procbridge host function `name` with `args`; its return
/// value, or `-ENOSYS`/`-EINVAL` for a name or arguments it does not take.
fn dispatch(
    caller: &mut Caller<'_, HostState>,
    memory: Memory,
    name: &str,
    args: &[Arg],
) -> wasmtime::Result<i32> {
    if name == RESULT_LEN && args.is_empty() {
        return Ok(caller.data().bridge.result_len().unwrap_or(-libc::EINVAL));
    }
    let callee = match lookup(caller, name) {
        Some(callee) => callee,
        None => return Ok(-libc::ENOSYS),
    };
    let fits = callee.params.is_some_and(|(count, i64s)| {
        count == args.len()
            && args
                .iter()
                .enumerate()
                .all(|(n, arg)| matches!(arg, Arg::I64(_)) == (i64s >> n & 1 == 1))
    });
    if !fits {
        return Ok(-libc::EINVAL);
    }
    // A host function called from the host has no calling instance to find
    // the guest's memory through: hand it over.
    caller.data_mut().bridge.memory = Some(memory);
    if let Some(result) = callee.typed.as_ref().and_then(|t| t.call(caller, args)) {
        return result;
    }
    let args: Vec<Val> = args
        .iter()
        .map(|a| match *a {
            Arg::I32(v) => Val::I32(v),
            Arg::I64(v) => Val::I64(v),
        })
        .collect();
    let mut results = [Val::I32(0)];
    callee.func.call(&mut *caller, &args, &mut results)?;
    Ok(results[0].i32().unwrap_or(-libc::EINVAL))
}

/// The host function `name` of module `procbridge`, from the runtime's
/// linker, with its signature (looked up once per guest).
pub(super) fn lookup(caller: &mut Caller<'_, HostState>, name: &str) -> Option<Callee> {
    let door = caller.data().bridge.door.as_ref()?;
    if let Some(callee) = door.funcs.get(name) {
        return Some(callee.clone());
    }
    let linker = caller.data().bridge.program.as_ref()?.linker().clone();
    let func = linker
        .get(&mut *caller, crate::MODULE, name)
        .ok()?
        .into_func()?;
    let ty = func.ty(&*caller);
    let returns_i32 =
        ty.results().len() == 1 && matches!(ty.results().next(), Some(wasmtime::ValType::I32));
    let mut params = Some((ty.params().len(), 0u64));
    for (n, param) in ty.params().enumerate() {
        params = match (params, param) {
            (Some((count, i64s)), wasmtime::ValType::I32) if n < 64 => Some((count, i64s)),
            (Some((count, i64s)), wasmtime::ValType::I64) if n < 64 => Some((count, i64s | 1 << n)),
            _ => None,
        };
    }
    let callee = Callee {
        func,
        typed: Typed::of(func, &*caller),
        params: params.filter(|_| returns_i32),
    };
    caller
        .data_mut()
        .bridge
        .door
        .as_mut()?
        .funcs
        .insert(name.to_string(), callee.clone());
    Some(callee)
}
