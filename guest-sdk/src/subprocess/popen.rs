//! Python's `Popen`: a running command with optional pipes.

use super::{timeout_us, SubprocessError, TimeoutExpired};
use crate::error::{check, take_result};
use crate::{sys, Errno, Result};
use procbridge_abi::{list, subprocess as abi};
use std::time::Duration;

/// Where one of a child's standard streams goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio {
    /// The host's own stream (the default, as in Python).
    Inherit,
    /// A new pipe: write with [`Popen::write_stdin`], read with
    /// [`Popen::read`] or collect everything with [`Popen::communicate`].
    Pipe,
    /// `/dev/null`.
    Null,
    /// For stderr: the same place as stdout.
    Stdout,
    /// Another process's pipe, moved to this child so that bytes go from
    /// one command to the next without passing through the guest; see
    /// [`Stdio::pipe_of`].
    PipeOf(PipeOf),
}

/// A pipe of another [`Popen`]; see [`Stdio::pipe_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeOf(i32);

/// Python's `subprocess.PIPE`.
pub const PIPE: Stdio = Stdio::Pipe;
/// Python's `subprocess.DEVNULL`.
pub const DEVNULL: Stdio = Stdio::Null;
/// Python's `subprocess.STDOUT` (for stderr).
pub const STDOUT: Stdio = Stdio::Stdout;

impl Stdio {
    /// Connects to a pipe of `other`: given as stdin, the new child reads
    /// what `other` writes to its stdout pipe (Python's
    /// `stdin=p1.stdout`); given as stdout or stderr, the new child writes
    /// into `other`'s stdin pipe. The pipe moves to the new child.
    ///
    /// ```no_run
    /// use procbridge_sdk::subprocess::{Popen, Stdio, PIPE};
    /// let mut ls = Popen::builder(["ls"]).stdout(PIPE).spawn()?;
    /// let mut wc = Popen::builder(["wc", "-l"]).stdin(Stdio::pipe_of(&ls)).stdout(PIPE).spawn()?;
    /// let (count, _) = wc.communicate(None, None)?;
    /// ls.wait(None)?;
    /// # Ok::<(), procbridge_sdk::subprocess::SubprocessError>(())
    /// ```
    pub fn pipe_of(other: &Popen) -> Stdio {
        Stdio::PipeOf(PipeOf(other.handle))
    }

    fn to_abi(self) -> i32 {
        match self {
            Stdio::Inherit => abi::STDIO_INHERIT,
            Stdio::Pipe => abi::STDIO_PIPE,
            Stdio::Null => abi::STDIO_NULL,
            Stdio::Stdout => abi::STDIO_STDOUT,
            Stdio::PipeOf(PipeOf(h)) => h,
        }
    }
}

/// Which output pipe to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

/// Configures a [`Popen`]; made by [`Popen::builder`].
#[derive(Clone, Debug)]
pub struct PopenBuilder {
    args: Vec<String>,
    env: Option<Vec<(String, String)>>,
    cwd: Option<String>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
}

impl PopenBuilder {
    /// The command's argv.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Where stdin comes from (default: inherited).
    pub fn stdin(mut self, stdio: Stdio) -> Self {
        self.stdin = stdio;
        self
    }

    /// Where stdout goes (default: inherited).
    pub fn stdout(mut self, stdio: Stdio) -> Self {
        self.stdout = stdio;
        self
    }

    /// Where stderr goes (default: inherited; [`STDOUT`] joins stdout).
    pub fn stderr(mut self, stdio: Stdio) -> Self {
        self.stderr = stdio;
        self
    }

    /// Adds a variable to the child's environment. Once one is set, the
    /// child gets exactly the variables set here (Python's `env=`);
    /// otherwise it gets the guest's own granted environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env
            .get_or_insert_with(Vec::new)
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Gives the child an empty environment (before any [`env`](Self::env)).
    pub fn env_clear(mut self) -> Self {
        self.env = Some(Vec::new());
        self
    }

    /// The child's working directory: a guest path inside a granted
    /// directory.
    pub fn cwd(mut self, dir: &str) -> Self {
        self.cwd = Some(dir.to_string());
        self
    }

    /// Starts the command.
    ///
    /// # Errors
    /// `EPERM` when the command, the environment or the working directory
    /// is not granted; `EINVAL` for an empty argv.
    pub fn spawn(self) -> std::result::Result<Popen, SubprocessError> {
        let (argv, env) = self.encoded();
        let handle = check(sys::popen(&self.command(&argv, env.as_deref())))?;
        let pid = sys::popen_pid(handle).max(0) as u32;
        Ok(Popen {
            handle,
            pid,
            args: self.args,
            returncode: None,
            buffers: [Vec::new(), Vec::new()],
        })
    }

    /// Starts the command, waits for it and returns its return code
    /// (Python's `subprocess.call`), in one host call. At the timeout the
    /// command's process group is killed and reaped, and the error is
    /// [`SubprocessError::Timeout`]. Its stdio may not be pipes (nothing
    /// could read them): that is `EINVAL`.
    ///
    /// ```no_run
    /// use procbridge_sdk::subprocess::{Popen, Stdio};
    /// use std::time::Duration;
    ///
    /// let code = Popen::builder(["make", "-s"])
    ///     .stdout(Stdio::Null)
    ///     .call(Some(Duration::from_secs(60)))?;
    /// # Ok::<(), procbridge_sdk::subprocess::SubprocessError>(())
    /// ```
    pub fn call(self, timeout: Option<Duration>) -> std::result::Result<i32, SubprocessError> {
        let (argv, env) = self.encoded();
        let mut code = 0;
        let ret = sys::popen_call(
            &self.command(&argv, env.as_deref()),
            timeout_us(timeout),
            &mut code,
        );
        match check(ret) {
            Ok(_) => Ok(code),
            Err(e) if e.errno() == Errno::TimedOut => {
                Err(SubprocessError::Timeout(TimeoutExpired {
                    cmd: self.args,
                    timeout: timeout.unwrap_or_default(),
                    output: Vec::new(),
                    stderr: Vec::new(),
                }))
            }
            Err(e) => Err(SubprocessError::Os(e)),
        }
    }

    /// The command as the host functions take it, with its lists encoded.
    fn command<'a>(&'a self, argv: &'a [u8], env: Option<&'a [u8]>) -> sys::Command<'a> {
        sys::Command {
            argv,
            env,
            cwd: self.cwd.as_deref().unwrap_or("").as_bytes(),
            stdio: [
                self.stdin.to_abi(),
                self.stdout.to_abi(),
                self.stderr.to_abi(),
            ],
        }
    }

    /// The argv and environment lists in the ABI's encoding.
    fn encoded(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let argv = list::encode(&self.args);
        let env = self.env.as_ref().map(|vars| {
            let items: Vec<String> = vars.iter().map(|(k, v)| format!("{}={}", k, v)).collect();
            list::encode(&items)
        });
        (argv, env)
    }
}

/// A running command (Python's `Popen`).
///
/// Dropping it without waiting kills the command (and its process group)
/// and reaps it, so nothing is left behind.
#[derive(Debug)]
pub struct Popen {
    handle: i32,
    pid: u32,
    args: Vec<String>,
    returncode: Option<i32>,
    /// Bytes read ahead by `read_line`, per stream.
    buffers: [Vec<u8>; 2],
}

impl Popen {
    /// Starts configuring a command: `args[0]` is a granted command name or
    /// its absolute path.
    pub fn builder<I, S>(args: I) -> PopenBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        PopenBuilder {
            args: args.into_iter().map(|s| s.as_ref().to_string()).collect(),
            env: None,
            cwd: None,
            stdin: Stdio::Inherit,
            stdout: Stdio::Inherit,
            stderr: Stdio::Inherit,
        }
    }

    /// The command's argv.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The child's real OS pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The return code once the child has been waited for: its exit status,
    /// or `-N` when signal N killed it.
    pub fn returncode(&self) -> Option<i32> {
        self.returncode
    }

    /// The raw handle (for tests of the ABI).
    pub fn handle(&self) -> i32 {
        self.handle
    }

    /// Whether the child has exited: its return code, or `None`.
    pub fn poll(&mut self) -> Result<Option<i32>> {
        if self.returncode.is_some() {
            return Ok(self.returncode);
        }
        let mut code = 0i32;
        if check(sys::popen_poll(self.handle, &mut code))? == 1 {
            self.returncode = Some(code);
        }
        Ok(self.returncode)
    }

    /// Waits for the child to exit and returns its return code.
    ///
    /// # Errors
    /// [`SubprocessError::Timeout`] when `timeout` passes first (the child
    /// keeps running).
    pub fn wait(&mut self, timeout: Option<Duration>) -> std::result::Result<i32, SubprocessError> {
        if let Some(code) = self.returncode {
            return Ok(code);
        }
        let mut code = 0i32;
        let ret = sys::popen_wait(self.handle, timeout_us(timeout), &mut code);
        self.timeout_error(check(ret), timeout)?;
        self.returncode = Some(code);
        Ok(code)
    }

    /// Sends `input` to stdin (then closes it), reads stdout and stderr to
    /// their end and waits for the child: `(stdout, stderr)`, each empty
    /// unless it is a pipe.
    ///
    /// Large inputs and outputs do not deadlock: the host writes and reads
    /// at the same time.
    ///
    /// # Errors
    /// [`SubprocessError::Timeout`] when `timeout` passes first; the child
    /// keeps running and a later `communicate` (given the same input)
    /// continues where this one stopped. `ENOBUFS` when an output is over
    /// the host's limit (the child is killed).
    pub fn communicate(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> std::result::Result<(Vec<u8>, Vec<u8>), SubprocessError> {
        self.communicate_flags(input, timeout, 0)
    }

    pub(crate) fn communicate_flags(
        &mut self,
        input: Option<&[u8]>,
        timeout: Option<Duration>,
        flags: i32,
    ) -> std::result::Result<(Vec<u8>, Vec<u8>), SubprocessError> {
        let input = input.unwrap_or(&[]);
        let mut out = [0i32; 2];
        let ret = sys::popen_communicate(self.handle, input, timeout_us(timeout), flags, &mut out);
        let len = self.timeout_error(check(ret), timeout)?;
        self.returncode = Some(out[1]);
        Ok(split(take_result(len)?, out[0]))
    }

    /// The output a timed-out `communicate` had collected, `(stdout,
    /// stderr)`, handed over once.
    pub(crate) fn take_output(&mut self) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut split_at = 0i32;
        let len = check(sys::popen_take_output(self.handle, &mut split_at))?;
        Ok(split(take_result(len)?, split_at))
    }

    /// Sends signal `signal` to the child (nothing once it has exited).
    pub fn send_signal(&mut self, signal: i32) -> Result<()> {
        check(sys::popen_send_signal(self.handle, signal)).map(|_| ())
    }

    /// Sends `SIGTERM`.
    pub fn terminate(&mut self) -> Result<()> {
        self.send_signal(15)
    }

    /// Sends `SIGKILL`; after [`wait`](Self::wait) the return code is `-9`.
    pub fn kill(&mut self) -> Result<()> {
        self.send_signal(9)
    }

    /// Writes all of `data` to the stdin pipe.
    ///
    /// # Errors
    /// `EPIPE` when the child closed its stdin; `EINVAL` when stdin is not
    /// a pipe.
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let rest = &data[done..];
            let n = check(sys::popen_write(self.handle, rest, -1))?;
            done += n as usize;
        }
        Ok(())
    }

    /// Closes the stdin pipe: the child reads end of file.
    pub fn close_stdin(&mut self) -> Result<()> {
        check(sys::popen_close_stdin(self.handle)).map(|_| ())
    }

    /// Reads `n` bytes from an output pipe, or fewer at end of file
    /// (Python's `p.stdout.read(n)`).
    pub fn read(&mut self, stream: Stream, n: usize) -> Result<Vec<u8>> {
        let mut data = self.read1(stream, n)?;
        while data.len() < n {
            let more = self.read1(stream, n - data.len())?;
            if more.is_empty() {
                break;
            }
            data.extend_from_slice(&more);
        }
        Ok(data)
    }

    /// Reads at most `n` bytes from an output pipe, blocking only until
    /// some are there; empty at end of file (Python's `read1(n)`).
    pub fn read1(&mut self, stream: Stream, n: usize) -> Result<Vec<u8>> {
        let buffered = &mut self.buffers[stream as usize];
        if !buffered.is_empty() {
            let take = n.min(buffered.len());
            let rest = buffered.split_off(take);
            return Ok(std::mem::replace(buffered, rest));
        }
        self.read_raw(stream, n)
    }

    /// Reads one line (with its `\n`) from an output pipe; at end of file
    /// the last bytes without `\n`, then empty (Python's `readline()`).
    pub fn read_line(&mut self, stream: Stream) -> Result<Vec<u8>> {
        loop {
            let buffered = &mut self.buffers[stream as usize];
            if let Some(i) = buffered.iter().position(|&b| b == b'\n') {
                let rest = buffered.split_off(i + 1);
                return Ok(std::mem::replace(buffered, rest));
            }
            let more = self.read_raw(stream, 64 * 1024)?;
            let buffered = &mut self.buffers[stream as usize];
            if more.is_empty() {
                return Ok(std::mem::take(buffered));
            }
            buffered.extend_from_slice(&more);
        }
    }

    fn read_raw(&mut self, stream: Stream, n: usize) -> Result<Vec<u8>> {
        let which = match stream {
            Stream::Stdout => abi::STREAM_STDOUT,
            Stream::Stderr => abi::STREAM_STDERR,
        };
        let cap = n.min(1 << 20);
        let mut buf = Vec::with_capacity(cap);
        check(sys::popen_read(self.handle, which, &mut buf, -1))?;
        Ok(buf)
    }

    fn timeout_error<T>(
        &self,
        result: Result<T>,
        timeout: Option<Duration>,
    ) -> std::result::Result<T, SubprocessError> {
        result.map_err(|e| {
            if e.errno() == Errno::TimedOut {
                SubprocessError::Timeout(TimeoutExpired {
                    cmd: self.args.clone(),
                    timeout: timeout.unwrap_or_default(),
                    output: Vec::new(),
                    stderr: Vec::new(),
                })
            } else {
                SubprocessError::Os(e)
            }
        })
    }
}

impl Drop for Popen {
    fn drop(&mut self) {
        sys::popen_close(self.handle);
    }
}

/// Splits "stdout followed by stderr" at `at`.
fn split(mut both: Vec<u8>, at: i32) -> (Vec<u8>, Vec<u8>) {
    let at = (at.max(0) as usize).min(both.len());
    let stderr = both.split_off(at);
    (both, stderr)
}
