//! `communicate`: write the input and read both outputs at once, so that
//! neither side blocks the other, then wait for the child, all before a
//! deadline.

use super::io::{self, Deadline, Read};
use super::Popen;
use crate::errno::{BridgeError, BridgeResult, Errno};
use std::os::fd::{AsRawFd, OwnedFd};

impl Popen {
    /// Feeds `input` to the stdin pipe (then closes it), collects stdout and
    /// stderr into the [`Popen`]'s capture buffers until both reach end of
    /// file, and waits for the child. Returns the return code.
    ///
    /// A retry after `ETIMEDOUT` continues: input already written is
    /// skipped and output already collected is kept.
    ///
    /// # Errors
    /// - `ETIMEDOUT` when the deadline passes first (with `kill_on_timeout`
    ///   the child's process group is killed and the child reaped first).
    ///   The deadline holds even when a grandchild keeps a pipe open after
    ///   the child exited.
    /// - `ENOBUFS` when a stream's output goes over `limit` bytes: the child's
    ///   group is killed and the child reaped.
    /// - `EINVAL` for input when stdin is not a pipe.
    pub(crate) fn communicate(
        &mut self,
        input: &[u8],
        deadline: Deadline,
        limit: usize,
        kill_on_timeout: bool,
    ) -> BridgeResult<i32> {
        if self.stdin.is_none() && input.len() > self.input_written {
            return Err(BridgeError::invalid("input given but stdin is not a pipe"));
        }
        let result = self.pump(input, deadline, limit);
        let result = match result {
            Ok(()) => self.wait(deadline),
            Err(e) => Err(e),
        };
        if let Err(err) = &result {
            if err.errno == Errno::NoBufs || (err.errno == Errno::TimedOut && kill_on_timeout) {
                self.stdin = None;
                self.stdout = None;
                self.stderr = None;
                self.child.kill_and_reap();
            }
        }
        result
    }

    fn pump(&mut self, input: &[u8], deadline: Deadline, limit: usize) -> BridgeResult<()> {
        loop {
            if self.input_written >= input.len() {
                self.stdin = None;
            }
            let slots = [
                self.stdin.as_ref(),
                self.stdout.as_ref(),
                self.stderr.as_ref(),
            ];
            let mut fds = Vec::with_capacity(3);
            let mut which = Vec::with_capacity(3);
            for (i, fd) in slots.iter().enumerate() {
                if let Some(fd) = fd {
                    let events = if i == 0 { libc::POLLOUT } else { libc::POLLIN };
                    fds.push(libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events,
                        revents: 0,
                    });
                    which.push(i);
                }
            }
            if fds.is_empty() {
                return Ok(());
            }
            if deadline.expired() || io::poll(&mut fds, deadline)? == 0 {
                return Err(self.timed_out());
            }
            for (pfd, &i) in fds.iter().zip(&which) {
                if pfd.revents == 0 {
                    continue;
                }
                if i == 0 {
                    self.feed(input)?;
                } else {
                    self.drain(i - 1, limit)?;
                }
            }
        }
    }

    /// Writes what the stdin pipe takes now; a closed reader ends the input
    /// quietly (as Python's `communicate`).
    fn feed(&mut self, input: &[u8]) -> BridgeResult<()> {
        let fd = match &self.stdin {
            Some(fd) => fd,
            None => return Ok(()),
        };
        match io::write_some(fd, &input[self.input_written..]) {
            Ok(n) => self.input_written += n,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                self.input_written = input.len();
                self.stdin = None;
            }
            Err(e) => return Err(io::pipe_error("write to stdin", e)),
        }
        Ok(())
    }

    /// Reads what an output pipe has now into its capture buffer.
    fn drain(&mut self, index: usize, limit: usize) -> BridgeResult<()> {
        let name = if index == 0 { "stdout" } else { "stderr" };
        let pipe: &mut Option<OwnedFd> = if index == 0 {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        let fd = match pipe {
            Some(fd) => fd,
            None => return Ok(()),
        };
        let buf = &mut self.captured[index];
        // Read one byte past the limit to tell "exactly at" from "over".
        let room = (limit + 1).saturating_sub(buf.len());
        match io::read_some(fd, buf, room).map_err(|e| io::pipe_error(name, e))? {
            Read::Eof => *pipe = None,
            Read::WouldBlock => {}
            Read::Data(_) if buf.len() > limit => {
                return Err(BridgeError::new(
                    Errno::NoBufs,
                    format!(
                        "command {:?}: {name} is over the limit of {limit} bytes; the command was killed",
                        self.args
                    ),
                ));
            }
            Read::Data(_) => {}
        }
        Ok(())
    }
}
