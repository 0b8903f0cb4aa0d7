//! Python's `run`, `call`, `check_call` and `check_output`.

use super::{CalledProcessError, Popen, PopenBuilder, Stdio, SubprocessError};
use procbridge_abi::subprocess::COMMUNICATE_KILL_ON_TIMEOUT;
use std::time::Duration;

type Result<T> = std::result::Result<T, SubprocessError>;

/// What a finished command did (Python's `CompletedProcess`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedProcess {
    /// The command's argv.
    pub args: Vec<String>,
    /// The exit status, or `-N` when signal N killed it.
    pub returncode: i32,
    /// Captured stdout (empty unless captured).
    pub stdout: Vec<u8>,
    /// Captured stderr (empty unless captured).
    pub stderr: Vec<u8>,
}

impl CompletedProcess {
    /// `Err(CalledProcessError)` when the return code is not zero.
    pub fn check_returncode(&self) -> Result<()> {
        if self.returncode == 0 {
            return Ok(());
        }
        Err(SubprocessError::CalledProcess(CalledProcessError {
            returncode: self.returncode,
            cmd: self.args.clone(),
            output: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }))
    }
}

/// The keyword arguments of Python's `run`.
///
/// ```no_run
/// use procbridge_sdk::subprocess::{run_with, RunOptions};
/// let done = run_with(["sort"], RunOptions {
///     input: Some(b"b\na\n"),
///     capture_output: true,
///     check: true,
///     ..RunOptions::default()
/// })?;
/// assert_eq!(done.stdout, b"a\nb\n");
/// # Ok::<(), procbridge_sdk::subprocess::SubprocessError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct RunOptions<'a> {
    /// Capture stdout and stderr (otherwise they are inherited).
    pub capture_output: bool,
    /// Bytes fed to stdin (otherwise stdin is inherited).
    pub input: Option<&'a [u8]>,
    /// Kill the command (and its process group) when it runs longer;
    /// the error carries the output that arrived before.
    pub timeout: Option<Duration>,
    /// Turn a non-zero return code into [`CalledProcessError`].
    pub check: bool,
    /// Working directory (a guest path inside a granted directory).
    pub cwd: Option<&'a str>,
    /// The child's whole environment (default: the guest's granted one).
    pub env: Option<Vec<(String, String)>>,
    /// Where stdout goes when not captured (default: inherited).
    pub stdout: Option<Stdio>,
    /// Where stderr goes when not captured (default: inherited).
    pub stderr: Option<Stdio>,
}

/// Runs a command with default options and waits for it (Python's
/// `subprocess.run(args)`).
pub fn run<I, S>(args: I) -> Result<CompletedProcess>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    run_with(args, RunOptions::default())
}

/// Runs a command and waits for it (Python's `subprocess.run(args, ...)`).
///
/// # Errors
/// [`SubprocessError::Os`] when the command cannot be started (not granted:
/// `EPERM`); [`SubprocessError::Timeout`] with partial output after a
/// timeout (the command's process group is killed and reaped);
/// [`SubprocessError::CalledProcess`] for a non-zero code with `check`.
pub fn run_with<I, S>(args: I, options: RunOptions<'_>) -> Result<CompletedProcess>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut builder = Popen::builder(args);
    let piped = |stdio: &Option<Stdio>| matches!(stdio, Some(Stdio::Pipe));
    if options.input.is_none()
        && !options.capture_output
        && !piped(&options.stdout)
        && !piped(&options.stderr)
    {
        // Nothing to feed or collect: one host call starts the command,
        // waits for it and gives it back.
        return run_at_once(builder, options);
    }
    if options.input.is_some() {
        builder = builder.stdin(Stdio::Pipe);
    }
    if options.capture_output {
        builder = builder.stdout(Stdio::Pipe).stderr(Stdio::Pipe);
    }
    let mut popen = with_options(builder, &options).spawn()?;
    let (stdout, stderr) = match popen.communicate_flags(
        options.input,
        options.timeout,
        COMMUNICATE_KILL_ON_TIMEOUT,
    ) {
        Ok(output) => output,
        Err(SubprocessError::Timeout(mut expired)) => {
            let (output, stderr) = popen.take_output()?;
            expired.output = output;
            expired.stderr = stderr;
            return Err(SubprocessError::Timeout(expired));
        }
        Err(e) => return Err(e),
    };
    let done = CompletedProcess {
        args: popen.args().to_vec(),
        returncode: popen.returncode().unwrap_or(-1),
        stdout,
        stderr,
    };
    if options.check {
        done.check_returncode()?;
    }
    Ok(done)
}

/// `builder` with the stdio, cwd and environment `options` ask for.
fn with_options(mut builder: PopenBuilder, options: &RunOptions<'_>) -> PopenBuilder {
    if let Some(stdio) = options.stdout {
        builder = builder.stdout(stdio);
    }
    if let Some(stdio) = options.stderr {
        builder = builder.stderr(stdio);
    }
    if let Some(cwd) = options.cwd {
        builder = builder.cwd(cwd);
    }
    if let Some(env) = &options.env {
        builder = builder.env_clear();
        for (k, v) in env {
            builder = builder.env(k, v);
        }
    }
    builder
}

/// [`run_with`] of a command with nothing piped: [`PopenBuilder::call`].
fn run_at_once(builder: PopenBuilder, options: RunOptions<'_>) -> Result<CompletedProcess> {
    let builder = with_options(builder, &options);
    let args = builder.args().to_vec();
    let done = CompletedProcess {
        returncode: builder.call(options.timeout)?,
        args,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    if options.check {
        done.check_returncode()?;
    }
    Ok(done)
}

/// Runs a command and returns its return code (Python's
/// `subprocess.call`). Output passes through.
pub fn call<I, S>(args: I) -> Result<i32>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    Ok(run(args)?.returncode)
}

/// Runs a command; a non-zero return code is an error (Python's
/// `check_call`).
pub fn check_call<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    run_with(
        args,
        RunOptions {
            check: true,
            ..RunOptions::default()
        },
    )
    .map(|_| ())
}

/// Runs a command and returns its stdout; a non-zero return code is a
/// [`CalledProcessError`] carrying the output (Python's `check_output`).
pub fn check_output<I, S>(args: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    run_with(
        args,
        RunOptions {
            check: true,
            stdout: Some(Stdio::Pipe),
            ..RunOptions::default()
        },
    )
    .map(|done| done.stdout)
}
