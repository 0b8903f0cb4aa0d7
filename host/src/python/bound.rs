//! Bound doors: a door fixed to one host function and one handle, so the
//! hottest calls of a Python guest — a `Queue`'s `put` and `get`, a
//! `Connection`'s `send_bytes` and `recv_bytes` — are one plain
//! `os.write`/`os.read`, with no frame to build, copy or parse.
//!
//! The guest opens `bind/FUNCTION/HANDLE[/TIMEOUT_US]` in the door's
//! directory (`os.open("/dev/procbridge/bind/queue_get/3", os.O_RDWR)`),
//! naming one of the procbridge host functions that carry messages
//! ([`BINDABLE`]) — `pipe_send(handle, ptr, len)`, or `queue_put`,
//! `queue_get` and `pipe_recv(handle, ptr, len, timeout_us)`, called with
//! the timeout given (`-1`, waiting as long as it takes, when none is).
//! Then each `read` or
//! `write` of the descriptor is one call of that function with the
//! handle and the buffer read into or written from:
//!
//! - its return value `n >= 0` is the byte count (`os.read` returns the
//!   first `n` bytes; `queue_put` returns `0`, so `os.write` returns `0`);
//! - a result longer than the buffer (`queue_get` of a long message) waits
//!   for `take_result` as it would for a Rust guest, and the call fails
//!   with `EMSGSIZE`; a frame call of `result_len` then says its length;
//! - an error fails the call with the matching WASI errno; the guest asks
//!   for the message as usual (a frame call of the same function says it).
//!
//! A bound door is nothing but a shorter way to make the calls a frame
//! makes: the same function from the runtime's linker, with the same
//! checks of the handle and the buffer. Opening one checks only that the
//! function exists and has such a signature; a handle that is not the
//! guest's fails each call with `EBADF`, as it would in a frame. A fork
//! child inherits its parent's bound doors with the rest of the instance.

use super::door::{self, Typed};
use crate::ctx::HostState;
use wasmtime::{Caller, Memory};

/// The first bound door's descriptor in the guest (the door's is just below).
const FIRST_FD: i32 = door::DOOR_FD + 1;
/// The most bound doors open at once in one process (their descriptors run
/// up to `i32::MAX`); past it opening fails with `ENFILE` and the guest uses
/// frames.
const MAX_BOUND: usize = (i32::MAX - FIRST_FD) as usize + 1;
/// The functions a door may be bound to: those that carry messages.
const BINDABLE: [&str; 4] = ["queue_put", "queue_get", "pipe_send", "pipe_recv"];
/// What a bound door's name starts with.
const PREFIX: &[u8] = b"bind/";

// WASI errno values.
const ERRNO_MSGSIZE: i32 = 35;
const ERRNO_NFILE: i32 = 41;
const ERRNO_NOENT: i32 = 44;
const ERRNO_INVAL: i32 = 28;

/// One process's bound doors, by descriptor.
#[derive(Debug, Default, Clone)]
pub(crate) struct BoundDoors {
    slots: Vec<Option<Bound>>,
}

/// A host function bound to a handle.
#[derive(Debug, Clone)]
struct Bound {
    func: Typed,
    handle: i32,
    timeout_us: i64,
}

impl BoundDoors {
    fn get(&self, fd: i32) -> Option<&Bound> {
        let slot = usize::try_from(fd.checked_sub(FIRST_FD)?).ok()?;
        self.slots.get(slot)?.as_ref()
    }

    /// Keeps `bound` and returns its descriptor, or `None` when all are in use.
    fn insert(&mut self, bound: Bound) -> Option<i32> {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.slots.len() < MAX_BOUND => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        self.slots[slot] = Some(bound);
        Some(FIRST_FD + slot as i32)
    }

    /// Forgets descriptor `fd`; whether it was a bound door.
    fn remove(&mut self, fd: i32) -> bool {
        let Some(slot) = fd
            .checked_sub(FIRST_FD)
            .and_then(|s| usize::try_from(s).ok())
        else {
            return false;
        };
        match self.slots.get_mut(slot) {
            Some(bound @ Some(_)) => {
                *bound = None;
                true
            }
            _ => false,
        }
    }
}

/// A bound door's name, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Name<'a> {
    function: &'a str,
    handle: i32,
    /// The timeout passed, when given (else `-1`: no deadline).
    timeout_us: Option<i64>,
}

/// What a bound door's name says: `None` for a name that is not a bound
/// door's (`Err(errno)` for one that is, but malformed).
fn parse(name: &[u8]) -> Option<Result<Name<'_>, i32>> {
    let rest = std::str::from_utf8(name.strip_prefix(PREFIX)?);
    let parsed = rest.ok().and_then(|rest| {
        let mut parts = rest.split('/');
        let function = parts.next().filter(|f| !f.is_empty())?;
        let handle = parts.next()?.parse().ok().filter(|&h: &i32| h > 0)?;
        let timeout_us = match parts.next() {
            None => None,
            Some(t) => Some(t.parse().ok().filter(|&t: &i64| t >= -1)?),
        };
        parts.next().is_none().then_some(Name {
            function,
            handle,
            timeout_us,
        })
    });
    Some(parsed.ok_or(ERRNO_INVAL))
}

/// Opens the bound door `name` if it is one: `None` when `name` is not a
/// bound door's, else the descriptor or a WASI errno.
pub(super) fn open(caller: &mut Caller<'_, HostState>, name: &[u8]) -> Option<Result<i32, i32>> {
    let name = match parse(name)? {
        Ok(name) => name,
        Err(errno) => return Some(Err(errno)),
    };
    let Some(callee) = door::lookup(caller, name.function) else {
        return Some(Err(ERRNO_NOENT));
    };
    if !BINDABLE.contains(&name.function) {
        return Some(Err(ERRNO_INVAL));
    }
    // A timeout only for the functions that take one.
    let func = match (callee.typed, name.timeout_us) {
        (Some(func @ Typed::Buffer(_)), None) | (Some(func @ Typed::Message(_)), _) => func,
        _ => return Some(Err(ERRNO_INVAL)),
    };
    let bound = Bound {
        func,
        handle: name.handle,
        timeout_us: name.timeout_us.unwrap_or(-1),
    };
    let doors = &mut caller.data_mut().bridge.door.as_mut()?.bound;
    Some(doors.insert(bound).ok_or(ERRNO_NFILE))
}

/// Whether `fd` is one of this guest's bound doors.
pub(super) fn is_bound(caller: &Caller<'_, HostState>, fd: i32) -> bool {
    fd >= FIRST_FD
        && caller
            .data()
            .bridge
            .door
            .as_ref()
            .is_some_and(|d| d.bound.get(fd).is_some())
}

/// Closes bound door `fd`; whether it was one.
pub(super) fn close(caller: &mut Caller<'_, HostState>, fd: i32) -> bool {
    fd >= FIRST_FD
        && caller
            .data_mut()
            .bridge
            .door
            .as_mut()
            .is_some_and(|d| d.bound.remove(fd))
}

/// One read or write of bound door `fd` with the buffer at `ptr`, `len`
/// bytes: the byte count, or a WASI errno. A trap inside the host function
/// propagates.
pub(super) fn call(
    caller: &mut Caller<'_, HostState>,
    memory: Memory,
    fd: i32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<Result<u32, i32>> {
    let Some(Bound {
        func,
        handle,
        timeout_us,
    }) = caller
        .data()
        .bridge
        .door
        .as_ref()
        .and_then(|d| d.bound.get(fd))
        .cloned()
    else {
        return Ok(Err(door::ERRNO_BADF));
    };
    // Buffers longer than guest memory can hold are the function's to refuse.
    let (ptr, len) = (ptr as i32, len.min(i32::MAX as u32) as i32);
    caller.data_mut().bridge.memory = Some(memory);
    let ret = match func {
        Typed::Buffer(f) => f.call(&mut *caller, (handle, ptr, len))?,
        Typed::Message(f) => f.call(&mut *caller, (handle, ptr, len, timeout_us))?,
        _ => return Ok(Err(ERRNO_INVAL)),
    };
    Ok(match u32::try_from(ret) {
        Ok(n) if n <= len as u32 => Ok(n),
        // Waiting for `take_result`.
        Ok(_) => Err(ERRNO_MSGSIZE),
        Err(_) => Err(wasi_errno(-ret)),
    })
}

/// The WASI errno for a Linux one (the ABI's codes are Linux's).
fn wasi_errno(linux: i32) -> i32 {
    match linux {
        libc::EPERM => 63,
        libc::ENOENT => 44,
        libc::ESRCH => 71,
        libc::EINTR => 27,
        libc::E2BIG => 1,
        libc::ENOEXEC => 45,
        libc::EBADF => 8,
        libc::ECHILD => 12,
        libc::EAGAIN => 6,
        libc::ENOMEM => 48,
        libc::EFAULT => 21,
        libc::EINVAL => 28,
        libc::EMFILE => 33,
        libc::EPIPE => 64,
        libc::ENOSYS => 52,
        libc::ENOBUFS => 42,
        libc::ETIMEDOUT => 73,
        libc::EOWNERDEAD => 62,
        _ => 29, // EIO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_bound_doors_are_parsed_strictly() {
        assert_eq!(parse(b"door"), None);
        let name = |function, handle, timeout_us| {
            Some(Ok(Name {
                function,
                handle,
                timeout_us,
            }))
        };
        assert_eq!(parse(b"bind/queue_get/3"), name("queue_get", 3, None));
        assert_eq!(
            parse(b"bind/queue_get/3/-1"),
            name("queue_get", 3, Some(-1))
        );
        assert_eq!(parse(b"bind/queue_get/3/0"), name("queue_get", 3, Some(0)));
        for bad in [
            &b"bind/queue_get/0"[..],
            b"bind/queue_get/-3",
            b"bind/queue_get/",
            b"bind//3",
            b"bind/3",
            b"bind/queue_get/3x",
            b"bind/queue_get/99999999999",
            b"bind/\xff/3",
            b"bind/queue_get/3/-2",
            b"bind/queue_get/3/x",
            b"bind/queue_get/3/1/1",
            b"bind/queue_get/3/",
        ] {
            assert_eq!(parse(bad), Some(Err(ERRNO_INVAL)), "{bad:?}");
        }
    }

    #[test]
    fn descriptors_are_reused_after_close_and_run_out_at_i32_max() {
        let engine = wasmtime::Engine::default();
        let mut store = wasmtime::Store::new(&engine, ());
        let func = wasmtime::Func::wrap(&mut store, |_: i32, _: i32, _: i32| 0i32);
        let func = Typed::Buffer(func.typed(&store).unwrap());
        let bound = || Bound {
            func: func.clone(),
            handle: 1,
            timeout_us: -1,
        };
        let mut doors = BoundDoors::default();
        assert_eq!(doors.insert(bound()), Some(FIRST_FD));
        assert_eq!(doors.insert(bound()), Some(FIRST_FD + 1));
        assert!(doors.remove(FIRST_FD));
        assert!(!doors.remove(FIRST_FD));
        assert!(!doors.remove(door::DOOR_FD));
        assert!(!doors.remove(-1));
        assert_eq!(doors.insert(bound()), Some(FIRST_FD));
        while let Some(fd) = doors.insert(bound()) {
            assert!(fd > FIRST_FD);
        }
        assert_eq!(doors.slots.len(), MAX_BOUND);
        assert!(doors.get(i32::MAX).is_some());
    }

    #[test]
    fn errors_keep_their_meaning_in_wasi_numbering() {
        assert_eq!(wasi_errno(libc::EBADF), 8);
        assert_eq!(wasi_errno(libc::EPERM), 63);
        assert_eq!(wasi_errno(libc::ETIMEDOUT), 73);
        assert_eq!(wasi_errno(9999), 29);
    }
}
