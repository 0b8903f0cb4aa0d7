//! `subprocess`: run granted commands as real OS processes.
//!
//! Thin host functions: decode the arguments, call into
//! [`crate::subprocess`], encode the results. See `docs/abi.md`
//! ("subprocess") for each function's contract.
//!
//! | function | returns |
//! |---|---|
//! | `popen(argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len, stdin, stdout, stderr)` | a `popen` handle |
//! | `popen_pid(h)` | the child's real pid |
//! | `popen_poll(h, code_ptr)` | `1` and the return code, or `0` while running |
//! | `popen_wait(h, timeout_us, code_ptr)` | `0` and the return code |
//! | `popen_communicate(h, in_ptr, in_len, timeout_us, flags, out_ptr)` | length of stdout+stderr waiting to be taken |
//! | `popen_take_output(h, out_ptr)` | length of the output collected before a timeout |
//! | `popen_write(h, ptr, len, timeout_us)` | bytes written to stdin |
//! | `popen_read(h, stream, ptr, cap, timeout_us)` | bytes read (`0` at end of file) |
//! | `popen_close_stdin(h)` | `0` |
//! | `popen_send_signal(h, signal)` | `0` |
//! | `popen_close(h)` | `0` |
//! | `popen_call(argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len, stdin, stdout, stderr, timeout_us, code_ptr)` | `0` and the return code: `popen`, `popen_wait`, `popen_close` in one |

use super::{with_memory, with_state};
use crate::audit;
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::guest_mem::{GuestMemory, MAX_READ};
use crate::handles::HandleTable;
use crate::subprocess::hints::Hints;
use crate::subprocess::io::{Deadline, CHUNK};
use crate::subprocess::relay::{Pending, FINISH_WAIT};
use crate::subprocess::spawn::{spawn, SpawnRequest, StdioSpec};
use crate::subprocess::{Popen, Stream, KIND};
use procbridge_abi::subprocess as abi;
use std::time::Duration;
use wasmtime::Caller;

/// `popen`'s and `popen_call`'s description of a command, as the guest
/// passed it: `argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len,
/// stdin, stdout, stderr`.
struct CommandArgs([i32; 9]);

impl CommandArgs {
    fn argv(&self) -> (i32, i32) {
        (self.0[0], self.0[1])
    }

    fn env(&self) -> (i32, i32) {
        (self.0[2], self.0[3])
    }

    fn cwd(&self) -> (i32, i32) {
        (self.0[4], self.0[5])
    }

    /// stdin, stdout, stderr.
    fn stdio(&self) -> [i32; 3] {
        [self.0[6], self.0[7], self.0[8]]
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn popen(
    mut caller: Caller<'_, HostState>,
    argv_ptr: i32,
    argv_len: i32,
    env_ptr: i32,
    env_len: i32,
    cwd_ptr: i32,
    cwd_len: i32,
    stdin: i32,
    stdout: i32,
    stderr: i32,
) -> i32 {
    let args = CommandArgs([
        argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len, stdin, stdout, stderr,
    ]);
    with_memory(&mut caller, |mem, state| {
        let popen = start(mem, state, &args)?;
        state.bridge.handles.insert(KIND, popen)
    })
}

/// `subprocess.call`: `popen`, `popen_wait` and `popen_close` in one call
/// (one wake-up of the guest instead of two). On timeout the command's
/// process group is killed and reaped before `ETIMEDOUT` returns.
#[allow(clippy::too_many_arguments)]
pub(super) fn popen_call(
    mut caller: Caller<'_, HostState>,
    argv_ptr: i32,
    argv_len: i32,
    env_ptr: i32,
    env_len: i32,
    cwd_ptr: i32,
    cwd_len: i32,
    stdin: i32,
    stdout: i32,
    stderr: i32,
    timeout_us: i64,
    code_ptr: i32,
) -> i32 {
    let args = CommandArgs([
        argv_ptr, argv_len, env_ptr, env_len, cwd_ptr, cwd_len, stdin, stdout, stderr,
    ]);
    with_memory(&mut caller, |mem, state| {
        mem.check(code_ptr, 4)?;
        let deadline = Deadline::from_micros(timeout_us)?;
        if args.stdio().contains(&abi::STDIO_PIPE) {
            return Err(BridgeError::invalid(
                "popen_call takes no pipes: nothing could read or write them (use popen)",
            ));
        }
        // Dropped on every way out: a command still running (the timeout)
        // has its group killed, and is reaped.
        let mut popen = start(mem, state, &args)?;
        let code = popen.wait(deadline)?;
        report_hints(&state.bridge.policy, &mut popen, catch_up(deadline));
        mem.write_i32(code_ptr, code)?;
        Ok(0)
    })
}

/// Starts the command `args` describes, as `popen` does.
fn start(
    mem: &mut GuestMemory<'_>,
    state: &mut HostState,
    args: &CommandArgs,
) -> BridgeResult<Popen> {
    let (argv_ptr, argv_len) = args.argv();
    let argv = mem.read_str_list(argv_ptr, argv_len, MAX_READ)?;
    let env = match args.env() {
        (_, abi::ENV_INHERIT) => state.bridge.granted_env.clone(),
        (ptr, len) => decode_env(mem, ptr, len)?,
    };
    let cwd = match args.cwd() {
        (_, 0) => None,
        (ptr, len) => Some(mem.read_str(ptr, len, MAX_READ)?.to_string()),
    };
    let bridge = &mut state.bridge;
    let [stdin, stdout, stderr] = args.stdio();
    // Check every stdio argument before moving any pipe out of another
    // Popen, so a failed call takes nothing.
    for (value, input) in [(stdin, true), (stdout, false), (stderr, false)] {
        if value > 0 {
            let other = bridge.handles.get::<Popen>(value, KIND)?;
            if !other.has_pipe(input) || (!input && stdout == stderr) {
                return Err(BridgeError::invalid(format!(
                    "popen handle {value} has no {} pipe to give",
                    if input { "stdout" } else { "stdin" }
                )));
            }
        } else if !(abi::STDIO_STDOUT..=abi::STDIO_INHERIT).contains(&value)
            || (value == abi::STDIO_STDOUT && (input || stdout == abi::STDIO_STDOUT))
        {
            return Err(BridgeError::invalid(format!(
                "{value} is not a valid stdio argument here"
            )));
        }
    }
    let mut req = SpawnRequest {
        argv,
        env,
        cwd,
        stdin: stdio(&mut bridge.handles, stdin, true)?,
        stdout: stdio(&mut bridge.handles, stdout, false)?,
        stderr: stdio(&mut bridge.handles, stderr, false)?,
    };
    let relays = relay_to_sinks(bridge, &mut req)?;
    let stderr_relay = relay_for_hints(bridge, &mut req)?;
    let cwd = req.cwd.clone();
    let mut popen = spawn(&bridge.policy, bridge.jail.as_deref(), req)?;
    for relay in relays {
        relay(popen.pid() as u32);
    }
    if let Some(relay) = stderr_relay.and_then(Pending::start) {
        popen.set_relay(relay, cwd);
    }
    Ok(popen)
}

/// Starts relaying a command's output, given its pid.
type Relay = Box<dyn FnOnce(u32)>;

/// A command whose stdout or stderr is inherited from a guest writing to
/// an [`crate::OutputSink`] writes into a pipe relayed into that sink
/// instead (the host's own stream is not the guest's); the relays to start
/// once its pid is known.
fn relay_to_sinks(bridge: &crate::ctx::Bridge, req: &mut SpawnRequest) -> BridgeResult<Vec<Relay>> {
    use crate::output::StdStream;
    let mut relays: Vec<Relay> = Vec::new();
    let Some(origin) = bridge.process.origin.as_deref() else {
        return Ok(relays);
    };
    for (stream, spec) in [
        (StdStream::Stdout, &mut req.stdout),
        (StdStream::Stderr, &mut req.stderr),
    ] {
        if let (StdioSpec::Inherit, Some(sink)) = (&*spec, origin.sink(stream)) {
            let (writer, relay) = sink
                .command_pipe(stream)
                .map_err(|e| BridgeError::io("a pipe for the command's output", e))?;
            *spec = StdioSpec::Fd(writer);
            relays.push(Box::new(relay));
        }
    }
    Ok(relays)
}

/// With hints on, a command whose stderr is the host's own (inherited, no
/// sink) writes into a relay that looks for denials (see
/// [`crate::subprocess::relay`]); the relay to start once it runs.
fn relay_for_hints(
    bridge: &crate::ctx::Bridge,
    req: &mut SpawnRequest,
) -> BridgeResult<Option<Pending>> {
    let hints =
        bridge.process.origin.as_deref().is_some_and(|o| {
            o.denial_hints_on() && o.sink(crate::output::StdStream::Stderr).is_none()
        });
    if !hints || !matches!(req.stderr, StdioSpec::Inherit) {
        return Ok(None);
    }
    // Hints are advice: without a relay the command writes to the host's
    // stderr itself.
    let Ok((pending, writer)) = Pending::new() else {
        return Ok(None);
    };
    // What the guest wrote before must still come before the command's.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    req.stderr = StdioSpec::Fd(writer);
    Ok(Some(pending))
}

/// Once `popen`'s command has ended, its relay's denials become hints on
/// the host's stderr and in the audit log (see
/// [`crate::subprocess::hints`]).
/// `wait` bounds how long the relay may take to catch up.
fn report_hints(policy: &crate::policy::Policy, popen: &mut Popen, wait: Duration) {
    let (denials, cwd) = popen.take_denials(wait);
    if denials.is_empty() {
        return;
    }
    let hints = Hints::new(policy, cwd.as_deref());
    let command = popen.args().first().map_or("", String::as_str);
    for denial in &denials {
        if let Some(hint) = hints.hint(command, denial) {
            audit::Event::new(audit::Kind::Hint)
                .command(command)
                .child(popen.pid() as u32)
                .outcome(hint)
                .record();
        }
    }
}

/// How long a relay may take to catch up once its command ended: a
/// moment, within what is left of the guest's timeout.
fn catch_up(deadline: Deadline) -> Duration {
    match deadline.left() {
        Some(left) => left.min(FINISH_WAIT),
        None => FINISH_WAIT,
    }
}

/// `KEY=VALUE` items.
fn decode_env(mem: &GuestMemory<'_>, ptr: i32, len: i32) -> BridgeResult<Vec<(String, String)>> {
    mem.read_str_list(ptr, len, MAX_READ)?
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(BridgeError::invalid(format!(
                "environment item {item:?} is not KEY=VALUE"
            ))),
        })
        .collect()
}

fn stdio(handles: &mut HandleTable, value: i32, input: bool) -> BridgeResult<StdioSpec> {
    Ok(match value {
        abi::STDIO_INHERIT => StdioSpec::Inherit,
        abi::STDIO_PIPE => StdioSpec::Pipe,
        abi::STDIO_NULL => StdioSpec::Null,
        abi::STDIO_STDOUT => StdioSpec::Stdout,
        h => {
            let other = handles.get::<Popen>(h, KIND)?;
            StdioSpec::Fd(if input {
                other.take_stdout()?
            } else {
                other.take_stdin()?
            })
        }
    })
}

pub(super) fn popen_pid(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        Ok(state.bridge.handles.get::<Popen>(h, KIND)?.pid())
    })
}

pub(super) fn popen_poll(mut caller: Caller<'_, HostState>, h: i32, code_ptr: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        mem.check(code_ptr, 4)?;
        let popen = state.bridge.handles.get::<Popen>(h, KIND)?;
        match popen.poll()? {
            Some(code) => {
                // `poll` never waits: what the relay has not finished yet
                // comes with a later `wait` or `poll`.
                report_hints(&state.bridge.policy, popen, Duration::ZERO);
                mem.write_i32(code_ptr, code)?;
                Ok(1)
            }
            None => Ok(0),
        }
    })
}

pub(super) fn popen_wait(
    mut caller: Caller<'_, HostState>,
    h: i32,
    timeout_us: i64,
    code_ptr: i32,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        mem.check(code_ptr, 4)?;
        let deadline = Deadline::from_micros(timeout_us)?;
        let popen = state.bridge.handles.get::<Popen>(h, KIND)?;
        let code = popen.wait(deadline)?;
        report_hints(&state.bridge.policy, popen, catch_up(deadline));
        mem.write_i32(code_ptr, code)?;
        Ok(0)
    })
}

pub(super) fn popen_communicate(
    mut caller: Caller<'_, HostState>,
    h: i32,
    in_ptr: i32,
    in_len: i32,
    timeout_us: i64,
    flags: i32,
    out_ptr: i32,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        mem.check(out_ptr, 8)?;
        if flags & !abi::COMMUNICATE_KILL_ON_TIMEOUT != 0 {
            return Err(BridgeError::invalid(format!(
                "unknown communicate flags {flags:#x}"
            )));
        }
        let deadline = Deadline::from_micros(timeout_us)?;
        let limit = state.bridge.policy.limits().max_output_bytes;
        // The input is read in place: it may be larger than MAX_READ.
        let input = mem.read(in_ptr, in_len, usize::MAX)?;
        let popen = state.bridge.handles.get::<Popen>(h, KIND)?;
        let kill = flags & abi::COMMUNICATE_KILL_ON_TIMEOUT != 0;
        // Output over the policy's limit is a limit hit.
        let code = popen
            .communicate(input, deadline, limit, kill)
            .map_err(|e| match e.errno {
                Errno::NoBufs => audit::limit(e),
                _ => e,
            })?;
        report_hints(&state.bridge.policy, popen, catch_up(deadline));
        let (output, split) = popen.take_output();
        mem.write_i32(out_ptr, split as i32)?;
        mem.write_i32(out_ptr + 4, code)?;
        state.bridge.set_result(output)
    })
}

pub(super) fn popen_take_output(mut caller: Caller<'_, HostState>, h: i32, out_ptr: i32) -> i32 {
    with_memory(&mut caller, |mem, state| {
        mem.check(out_ptr, 4)?;
        let (output, split) = state.bridge.handles.get::<Popen>(h, KIND)?.take_output();
        mem.write_i32(out_ptr, split as i32)?;
        state.bridge.set_result(output)
    })
}

pub(super) fn popen_write(
    mut caller: Caller<'_, HostState>,
    h: i32,
    ptr: i32,
    len: i32,
    timeout_us: i64,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let deadline = Deadline::from_micros(timeout_us)?;
        let data = mem.read(ptr, len, usize::MAX)?;
        let n = state
            .bridge
            .handles
            .get::<Popen>(h, KIND)?
            .write_stdin(data, deadline)?;
        Ok(n as i32)
    })
}

pub(super) fn popen_read(
    mut caller: Caller<'_, HostState>,
    h: i32,
    stream: i32,
    ptr: i32,
    cap: i32,
    timeout_us: i64,
) -> i32 {
    with_memory(&mut caller, |mem, state| {
        let stream = Stream::from_abi(stream)?;
        let max = (cap as u32 as usize).min(CHUNK);
        mem.check(ptr, max)?;
        let deadline = Deadline::from_micros(timeout_us)?;
        let data = state
            .bridge
            .handles
            .get::<Popen>(h, KIND)?
            .read(stream, max, deadline)?;
        mem.write(ptr, &data)?;
        Ok(data.len() as i32)
    })
}

pub(super) fn popen_close_stdin(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        state.bridge.handles.get::<Popen>(h, KIND)?.close_stdin()?;
        Ok(0)
    })
}

pub(super) fn popen_send_signal(mut caller: Caller<'_, HostState>, h: i32, signal: i32) -> i32 {
    with_state(&mut caller, |state| {
        state
            .bridge
            .handles
            .get::<Popen>(h, KIND)?
            .send_signal(signal)?;
        Ok(0)
    })
}

pub(super) fn popen_close(mut caller: Caller<'_, HostState>, h: i32) -> i32 {
    with_state(&mut caller, |state| {
        // Dropping kills the group if the child still runs, and reaps it.
        drop(state.bridge.handles.remove::<Popen>(h, KIND)?);
        Ok(0)
    })
}
