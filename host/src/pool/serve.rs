//! The worker's side: a loop in the forked child that reads requests, calls
//! the named task export for each item through the task ABI, and writes
//! the replies. It never returns: the child `_exit`s when the pool tells it
//! to stop, closes its socket, or its instance cannot go on (a trap or
//! `exit` inside a task: the reply says so and the pool starts another
//! worker).

use super::frame::{self, Request};
use crate::ctx::HostState;
use crate::process::task::{call_typed, Ending};
use crate::process::{self};
use procbridge_abi::pool::{STATUS_FAILED, STATUS_OK, STATUS_WORKER_LOST};
use std::os::fd::{AsRawFd, OwnedFd};
use wasmtime::{Caller, TypedFunc};

/// The largest reply item: a bigger result fails its task instead.
const MAX_RESULT: usize = 64 << 20;

/// Serves requests on `sock` until told to stop; then ends the process.
pub(crate) fn serve(caller: &mut Caller<'_, HostState>, sock: OwnedFd) -> ! {
    let fd = sock.as_raw_fd();
    let mut input: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut reply = Vec::new();
    let mut cached: Option<(String, Task)> = None;
    loop {
        let mut used = 0;
        loop {
            let (payload, len) = match frame::next_frame(&input[used..]) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(_) => stop(caller, 3),
            };
            let request = match frame::request(payload) {
                Ok(request) => request,
                Err(_) => stop(caller, 3),
            };
            if request.id == frame::STOP {
                stop(caller, 0);
            }
            reply.clear();
            let fatal = run_chunk(caller, &request, &mut cached, &mut reply);
            used += len;
            if !write_all(fd, &reply) {
                stop(caller, 0);
            }
            if fatal {
                stop(caller, 1);
            }
        }
        input.drain(..used);
        if !read_more(fd, &mut input) {
            // The pool closed its end: it is gone or done with us.
            stop(caller, 0);
        }
    }
}

/// Runs every item of a request and encodes the reply into `out`. Returns
/// `true` when the instance cannot go on (a task trapped or exited).
fn run_chunk(
    caller: &mut Caller<'_, HostState>,
    request: &Request<'_>,
    cached: &mut Option<(String, Task)>,
    out: &mut Vec<u8>,
) -> bool {
    if matches!(cached, Some((name, _)) if name != request.name) {
        *cached = None;
    }
    let (_, func) =
        cached.get_or_insert_with(|| (request.name.to_string(), lookup(caller, request.name)));
    let mut items = Vec::with_capacity(request.items.len());
    let mut fatal = false;
    for args in &request.items {
        if fatal {
            items.push((
                STATUS_WORKER_LOST,
                b"not run: an earlier task of its chunk ended the worker".to_vec(),
            ));
            continue;
        }
        let func = match &*func {
            Ok(func) => func,
            Err(message) => {
                items.push((STATUS_FAILED, message.clone().into_bytes()));
                continue;
            }
        };
        let item = match call_typed(&mut *caller, func, args.to_vec()) {
            Ending::Returned(bytes) if bytes.len() > MAX_RESULT => (
                STATUS_FAILED,
                format!("the task's result of {} bytes is too large", bytes.len()).into_bytes(),
            ),
            Ending::Returned(bytes) => (STATUS_OK, bytes),
            Ending::Failed(message) => (STATUS_FAILED, message.into_bytes()),
            Ending::Exit(code) => {
                fatal = true;
                (
                    STATUS_FAILED,
                    format!("the task called exit({code})").into_bytes(),
                )
            }
            Ending::Trap(err) => {
                fatal = true;
                let message = match err.downcast_ref::<wasmtime::Trap>() {
                    Some(trap) => format!("guest trapped: {trap}"),
                    None => format!("guest trapped: {err}"),
                };
                (STATUS_FAILED, message.into_bytes())
            }
        };
        items.push(item);
    }
    frame::push_reply(out, request.id, fatal, &items);
    fatal
}

/// A task export, checked, or why it cannot be called.
type Task = Result<TypedFunc<i32, i32>, String>;

fn lookup(caller: &mut Caller<'_, HostState>, name: &str) -> Task {
    let func = caller
        .get_export(name)
        .and_then(|export| export.into_func())
        .ok_or_else(|| format!("the module exports no task function `{name}`"))?;
    func.typed::<i32, i32>(&*caller)
        .map_err(|err| format!("not a task function: {err}"))
}

/// Ends the worker process.
fn stop(caller: &mut Caller<'_, HostState>, code: i32) -> ! {
    process::exit_child(caller.data_mut(), code)
}

fn write_all(fd: i32, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: writes from a live buffer to our own socket.
        let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

/// Blocks until more bytes arrive; `false` at end of stream or on error.
fn read_more(fd: i32, input: &mut Vec<u8>) -> bool {
    if input.capacity() - input.len() < 16 << 10 {
        input.reserve(64 << 10);
    }
    loop {
        let spare = input.capacity() - input.len();
        // SAFETY: reads into the spare capacity of `input`, then sets its
        // length to cover only the bytes read.
        let n = unsafe {
            let end = input.as_mut_ptr().add(input.len());
            libc::recv(fd, end.cast(), spare, 0)
        };
        if n > 0 {
            // SAFETY: the kernel wrote `n` bytes there.
            unsafe { input.set_len(input.len() + n as usize) };
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return false;
    }
}
