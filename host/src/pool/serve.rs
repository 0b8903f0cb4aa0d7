//! The worker's side: a loop in the forked child that reads requests, calls
//! the named task export for each item through the task ABI, and writes
//! the replies. It never returns: the child `_exit`s when the pool tells it
//! to stop, closes its socket, or its instance cannot go on (a trap or
//! `exit` inside a task: the reply says so and the pool starts another
//! worker).

use super::frame::{self, Request};
use super::worker::Progress;
use crate::ctx::HostState;
use crate::process::task::{call_typed, Ending};
use crate::process::{self};
use procbridge_abi::pool::{STATUS_FAILED, STATUS_OK, STATUS_WORKER_LOST};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use wasmtime::{Caller, TypedFunc};

/// The largest reply item: a bigger result fails its task instead.
const MAX_RESULT: usize = 64 << 20;

/// A worker that has more requests to run holds its replies to write them
/// together, until the first is this old (checked as each chunk ends)...
const HOLD_FOR: Duration = Duration::from_micros(50);
/// ... or this large.
const HOLD_BYTES: usize = 64 << 10;

/// Serves requests on `sock` until told to stop; then ends the process.
///
/// With `hold`, the replies of the requests it already has are written
/// together (see [`HOLD_FOR`]): one system call, and at most one wake-up
/// of the pool, for many short tasks. Only short tasks are sent ahead, so
/// a worker has more than one request only when they are short; a task
/// that runs long all the same keeps the replies held before it until it
/// ends, as it keeps the requests queued behind it. A worker that dies
/// loses the replies it held: it notes in `progress` each chunk it begins,
/// so that the pool fails those chunks as lost with it rather than run
/// them again. A pool with a task timeout does not hold: a task's deadline
/// counts from the reply before it.
pub(crate) fn serve(
    caller: &mut Caller<'_, HostState>,
    sock: OwnedFd,
    hold: bool,
    progress: &Progress,
) -> ! {
    let fd = sock.as_raw_fd();
    let mut input: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut reply = Vec::new();
    let mut cached: Option<(String, Exports)> = None;
    loop {
        let mut used = 0;
        // Replies not yet written, and since when the first of them waits.
        let mut held_since: Option<Instant> = None;
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
                send_replies(caller, fd, &mut reply);
                stop(caller, 0);
            }
            progress.begin();
            let fatal = run_chunk(caller, &request, &mut cached, &mut reply);
            used += len;
            if fatal {
                send_replies(caller, fd, &mut reply);
                stop(caller, 1);
            }
            if !hold {
                send_replies(caller, fd, &mut reply);
                continue;
            }
            let since = *held_since.get_or_insert_with(Instant::now);
            if reply.len() >= HOLD_BYTES || since.elapsed() >= HOLD_FOR {
                send_replies(caller, fd, &mut reply);
                held_since = None;
            }
        }
        send_replies(caller, fd, &mut reply);
        input.drain(..used);
        if !read_more(fd, &mut input) {
            // The pool closed its end: it is gone or done with us.
            stop(caller, 0);
        }
    }
}

/// Writes the replies held in `reply` and empties it; a pool that is gone
/// ends the worker.
fn send_replies(caller: &mut Caller<'_, HostState>, fd: i32, reply: &mut Vec<u8>) {
    if !reply.is_empty() && !write_all(fd, reply) {
        stop(caller, 0);
    }
    reply.clear();
}

/// Runs every item of a request and encodes the reply into `out`. Returns
/// `true` when the instance cannot go on (a task trapped or exited).
fn run_chunk(
    caller: &mut Caller<'_, HostState>,
    request: &Request<'_>,
    cached: &mut Option<(String, Exports)>,
    out: &mut Vec<u8>,
) -> bool {
    if matches!(cached, Some((name, _)) if name != request.name) {
        *cached = None;
    }
    let (_, exports) = cached.get_or_insert_with(|| {
        let exports = Exports {
            one: lookup(caller, request.name),
            batch: lookup(caller, &format!("{BATCH_PREFIX}{}", request.name)).ok(),
        };
        (request.name.to_string(), exports)
    });
    if request.items.len() > 1 {
        if let Some(batch) = &exports.batch {
            return run_batch(caller, batch, request, out);
        }
    }
    let func = &exports.one;
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
        let func = match func {
            Ok(func) => func,
            Err(message) => {
                items.push((STATUS_FAILED, message.clone().into_bytes()));
                continue;
            }
        };
        let item = match call_typed(&mut *caller, func, args.to_vec()) {
            Ending::Returned(bytes) => returned(STATUS_OK, bytes),
            Ending::Failed(message) => (STATUS_FAILED, message.into_bytes()),
            ending => {
                fatal = true;
                (STATUS_FAILED, ended_worker(ending).into_bytes())
            }
        };
        items.push(item);
    }
    frame::push_reply(out, request.id, fatal, &items);
    fatal
}

/// Runs a whole chunk through the task's batch export (one guest call for
/// all its items; see the SDK's `task!`). As in Python, an item that traps
/// or exits fails its whole chunk.
fn run_batch(
    caller: &mut Caller<'_, HostState>,
    batch: &TypedFunc<i32, i32>,
    request: &Request<'_>,
    out: &mut Vec<u8>,
) -> bool {
    let mut args = Vec::with_capacity(request.items.iter().map(|i| i.len() + 4).sum());
    for item in &request.items {
        procbridge_abi::list::push(&mut args, item);
    }
    let n = request.items.len();
    let all_failed = |message: String| vec![(STATUS_FAILED, message.into_bytes()); n];
    let (items, fatal) = match call_typed(&mut *caller, batch, args) {
        // The SDK encodes the items as a reply does: pass them on as they are.
        Ending::Returned(bytes) if batch_reply_is_valid(&bytes, n) => {
            frame::push_reply_encoded(out, request.id, n, &bytes);
            return false;
        }
        Ending::Returned(_) => (
            all_failed("malformed or too large a reply from the task's batch export".into()),
            false,
        ),
        Ending::Failed(message) => (all_failed(message), false),
        ending => (all_failed(ended_worker(ending)), true),
    };
    frame::push_reply(out, request.id, fatal, &items);
    fatal
}

/// Whether a batch reply holds exactly `n` items, each a status byte
/// (`STATUS_OK` or `STATUS_FAILED`) and a payload of at most [`MAX_RESULT`].
fn batch_reply_is_valid(bytes: &[u8], n: usize) -> bool {
    let mut count = 0;
    for item in procbridge_abi::list::iter(bytes) {
        match item.ok().and_then(<[u8]>::split_first) {
            Some((&status, payload))
                if (status == STATUS_OK || status == STATUS_FAILED)
                    && payload.len() <= MAX_RESULT => {}
            _ => return false,
        }
        count += 1;
    }
    count == n
}

/// A returned result, unless it is too large to send back.
fn returned(status: u8, bytes: Vec<u8>) -> (u8, Vec<u8>) {
    if bytes.len() > MAX_RESULT {
        let message = format!("the task's result of {} bytes is too large", bytes.len());
        return (STATUS_FAILED, message.into_bytes());
    }
    (status, bytes)
}

/// Why a task's ending ended its worker (an `exit` or a trap).
fn ended_worker(ending: Ending) -> String {
    match ending {
        Ending::Exit(code) => format!("the task called exit({code})"),
        Ending::Panicked { message, .. } => message,
        Ending::Trap(err) => match err.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => format!("guest trapped: {trap}"),
            None => format!("guest trapped: {err}"),
        },
        Ending::Returned(_) | Ending::Failed(_) => String::from("the task ended its worker"),
    }
}

/// The prefix of a task's batch export (`procbridge_batch.NAME`).
const BATCH_PREFIX: &str = "procbridge_batch.";

/// A task's exports: the one-item entry point, and the batch one if the
/// guest has it.
struct Exports {
    one: Task,
    batch: Option<TypedFunc<i32, i32>>,
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
///
/// It sleeps in `poll` for `POLLIN`, not in a blocking `recv`: a `recv`
/// sleeper on a Unix socket is woken each time the pool reads one of its
/// replies (the socket's write space, announced on the same wait queue),
/// while a `poll` sleeper is woken only by what it asked for.
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
            libc::recv(fd, end.cast(), spare, libc::MSG_DONTWAIT)
        };
        if n > 0 {
            // SAFETY: the kernel wrote `n` bytes there.
            unsafe { input.set_len(input.len() + n as usize) };
            return true;
        }
        if n == 0 {
            return false;
        }
        match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::Interrupted => {}
            std::io::ErrorKind::WouldBlock => wait_readable(fd),
            _ => return false,
        }
    }
}

/// Sleeps until `fd` has bytes to read, or its peer closed it.
fn wait_readable(fd: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout. An error (EINTR) only returns
    // early: the caller reads again.
    unsafe { libc::poll(&mut pfd, 1, -1) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![status];
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn batch_replies_are_checked_before_being_passed_on() {
        let good = procbridge_abi::list::encode(&[item(0, b"4"), item(1, b"failed")]);
        assert!(batch_reply_is_valid(&good, 2));
        assert!(!batch_reply_is_valid(&good, 3), "wrong count");
        assert!(
            !batch_reply_is_valid(&good[..good.len() - 1], 2),
            "truncated"
        );
        let bad_status = procbridge_abi::list::encode(&[item(7, b"x")]);
        assert!(!batch_reply_is_valid(&bad_status, 1));
        let empty_item = procbridge_abi::list::encode(&[Vec::<u8>::new()]);
        assert!(!batch_reply_is_valid(&empty_item, 1), "no status byte");
        assert!(batch_reply_is_valid(&[], 0));
    }
}
