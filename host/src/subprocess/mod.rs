//! `subprocess` for guests: granted commands run as real OS processes.
//!
//! [`spawn::spawn`] starts a command under the guest's policy and gives a
//! [`Popen`]: the child (pid, return code, kill-and-reap on drop) and the
//! parent ends of its pipes. [`Popen::communicate`] feeds input and
//! collects output in one `poll(2)` loop on the calling thread, with a
//! deadline. The only thread is the stderr relay's ([`relay`], with
//! hints on), which takes no lock a forked child could need.
//!
//! The host functions that expose this to guests are in
//! `api/subprocess.rs`.

mod communicate;
pub(crate) mod hints;
pub(crate) mod io;
pub(crate) mod launch;
pub(crate) mod relay;
pub(crate) mod spawn;
mod wait;

use crate::errno::{BridgeError, BridgeResult, Errno};
use io::Deadline;
use std::os::fd::OwnedFd;
use wait::Child;

/// The handle kind of a [`Popen`] in the handle table.
pub(crate) const KIND: &str = "popen";

/// A running (or finished) command and the parent ends of its pipes.
///
/// Dropping it closes the pipes, kills the child's process group if the
/// child was not reaped, and reaps it.
#[derive(Debug)]
pub(crate) struct Popen {
    // Declared first so the pipes close before the child is killed and reaped.
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// Output collected by `communicate` and not yet handed to the guest.
    captured: [Vec<u8>; 2],
    /// How much of the guest's input `communicate` has written (a retry
    /// after a timeout continues from here).
    input_written: usize,
    args: Vec<String>,
    /// Its inherited stderr, relayed to look for denials, and the
    /// directory it started in (as it sees it).
    relay: Option<(relay::StderrRelay, Option<String>)>,
    child: Child,
}

/// Which output pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    /// From the ABI's `STREAM_*` value.
    pub(crate) fn from_abi(value: i32) -> BridgeResult<Stream> {
        match value {
            procbridge_abi::subprocess::STREAM_STDOUT => Ok(Stream::Stdout),
            procbridge_abi::subprocess::STREAM_STDERR => Ok(Stream::Stderr),
            _ => Err(BridgeError::invalid(format!(
                "stream {value} is neither stdout (1) nor stderr (2)"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl Popen {
    fn new(
        child: Child,
        args: Vec<String>,
        stdin: Option<OwnedFd>,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Popen {
        Popen {
            stdin,
            stdout,
            stderr,
            captured: [Vec::new(), Vec::new()],
            input_written: 0,
            args,
            relay: None,
            child,
        }
    }

    /// Keeps the relay of its stderr (see [`relay`]), started in `cwd`.
    pub(crate) fn set_relay(&mut self, relay: relay::StderrRelay, cwd: Option<String>) {
        self.relay = Some((relay, cwd));
    }

    /// Once the command has ended: what its relayed stderr reported as
    /// denied (waiting `wait` at most for the relay to catch up), with the
    /// directory it started in. Empty before the end, without a relay,
    /// and once handed over.
    pub(crate) fn take_denials(
        &mut self,
        wait: std::time::Duration,
    ) -> (Vec<hints::Denial>, Option<String>) {
        match &mut self.relay {
            Some((relay, cwd)) if self.child.returncode().is_some() => {
                (relay.finish(wait), cwd.clone())
            }
            _ => (Vec::new(), None),
        }
    }

    /// The command line it was started with.
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    /// The child's real pid.
    pub(crate) fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// The return code if the child has exited (reaping it).
    pub(crate) fn poll(&mut self) -> BridgeResult<Option<i32>> {
        self.child.poll()
    }

    /// Waits for the child; `ETIMEDOUT` when the deadline passes first.
    pub(crate) fn wait(&mut self, deadline: Deadline) -> BridgeResult<i32> {
        self.child.wait(deadline)?.ok_or_else(|| self.timed_out())
    }

    /// Sends a signal to the child.
    pub(crate) fn send_signal(&mut self, signal: i32) -> BridgeResult<()> {
        self.child.send_signal(signal)
    }

    /// Closes the stdin pipe (the child sees end of file).
    pub(crate) fn close_stdin(&mut self) -> BridgeResult<()> {
        self.stdin
            .take()
            .map(drop)
            .ok_or_else(|| BridgeError::invalid("stdin is not an open pipe"))
    }

    /// Whether the pipe [`take_stdout`](Self::take_stdout) (`true`) or
    /// [`take_stdin`](Self::take_stdin) (`false`) would move is there.
    pub(crate) fn has_pipe(&self, stdout: bool) -> bool {
        if stdout {
            self.stdout.is_some()
        } else {
            self.stdin.is_some()
        }
    }

    /// In a fork child, for a `Popen` of the parent: closes this process's
    /// copies of the pipes and of the child's pidfd and jail channel (the
    /// parent's stay open), so the child holds no descriptor it cannot use.
    /// The rest is then forgotten, not dropped.
    pub(crate) fn close_pipes_in_fork_child(&mut self) {
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
        if let Some((relay, _)) = &self.relay {
            relay.close_in_fork_child();
        }
        self.child.close_descriptors_in_fork_child();
    }

    /// Moves the stdout pipe out (to become another child's stdin).
    pub(crate) fn take_stdout(&mut self) -> BridgeResult<OwnedFd> {
        self.stdout
            .take()
            .ok_or_else(|| BridgeError::invalid("stdout is not an open pipe"))
    }

    /// Moves the stdin pipe out (to become another child's stdout).
    pub(crate) fn take_stdin(&mut self) -> BridgeResult<OwnedFd> {
        self.stdin
            .take()
            .ok_or_else(|| BridgeError::invalid("stdin is not an open pipe"))
    }

    /// Writes `data` to the stdin pipe, blocking until all is written or
    /// the deadline passes; returns how much was written (`ETIMEDOUT` if
    /// nothing could be).
    pub(crate) fn write_stdin(&mut self, data: &[u8], deadline: Deadline) -> BridgeResult<usize> {
        let fd = self
            .stdin
            .as_ref()
            .ok_or_else(|| BridgeError::invalid("stdin is not an open pipe"))?;
        let mut done = 0;
        while done < data.len() {
            let n = io::write_some(fd, &data[done..])
                .map_err(|e| io::pipe_error("write to stdin", e))?;
            done += n;
            if n == 0 && !io::wait_ready(fd, libc::POLLOUT, deadline)? {
                if done == 0 {
                    return Err(self.timed_out());
                }
                break;
            }
        }
        Ok(done)
    }

    /// Reads at most `max` bytes from an output pipe, blocking until some
    /// arrive; an empty result is end of file.
    pub(crate) fn read(
        &mut self,
        stream: Stream,
        max: usize,
        deadline: Deadline,
    ) -> BridgeResult<Vec<u8>> {
        let fd = match stream {
            Stream::Stdout => self.stdout.as_ref(),
            Stream::Stderr => self.stderr.as_ref(),
        }
        .ok_or_else(|| BridgeError::invalid(format!("{} is not an open pipe", stream.name())))?;
        let mut buf = Vec::new();
        if max == 0 {
            return Ok(buf);
        }
        loop {
            match io::read_some(fd, &mut buf, max).map_err(|e| io::pipe_error(stream.name(), e))? {
                io::Read::Data(_) | io::Read::Eof => return Ok(buf),
                io::Read::WouldBlock => {
                    if !io::wait_ready(fd, libc::POLLIN, deadline)? {
                        return Err(self.timed_out());
                    }
                }
            }
        }
    }

    /// Hands over the output `communicate` collected (all of it, or what
    /// arrived before a timeout): stdout followed by stderr in one buffer,
    /// and the length of the stdout part.
    pub(crate) fn take_output(&mut self) -> (Vec<u8>, usize) {
        let [mut out, err] = std::mem::take(&mut self.captured);
        let split = out.len();
        out.extend_from_slice(&err);
        (out, split)
    }

    fn timed_out(&self) -> BridgeError {
        BridgeError::new(
            Errno::TimedOut,
            format!("command {:?} timed out", self.args),
        )
    }
}
