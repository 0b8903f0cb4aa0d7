//! `multiprocessing.Process`.

use crate::error::{check, Error, Result};
use crate::sys;
use crate::task::{encode_args, IntoArgs, RawArgs, Target};
use procbridge_abi::{Errno, NO_TIMEOUT};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How a [`Process`] starts (Python's start methods).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMethod {
    /// The child is a copy of this process, memory included, and calls the
    /// target there. Python's default on Linux, and the fastest.
    Fork,
    /// The child calls the target in a fresh instance of the same program:
    /// nothing of this instance's memory is copied in.
    Spawn,
}

impl Default for StartMethod {
    fn default() -> Self {
        StartMethod::Fork
    }
}

use procbridge_abi::process::{
    FLAG_DAEMON as DAEMON, FLAG_DROP_DIRS as DROP_DIRS, FLAG_DROP_ENV as DROP_ENV,
    FLAG_DROP_RUN as DROP_RUN, METHOD_FORK, METHOD_SPAWN,
};

static COUNTER: AtomicUsize = AtomicUsize::new(1);

/// A process that runs a task function (defined with
/// [`task!`](crate::task!)) in a new OS process.
///
/// Build it with its target and arguments, [`start`](Process::start) it,
/// [`join`](Process::join) it:
///
/// ```no_run
/// use procbridge_sdk::multiprocessing::{Process, StartMethod};
/// use procbridge_sdk::{os, task};
///
/// task!(fn run_proc(name: String) {
///     println!("Run child process {} ({})...", name, os::getpid());
/// });
///
/// fn main() -> procbridge_sdk::Result<()> {
///     let mut p = Process::new(run_proc)
///         .args((String::from("test"),))
///         .with_name("worker")
///         .start_method(StartMethod::Spawn);
///     p.start()?;
///     println!("started {} as pid {:?}", p.name(), p.pid());
///     p.join()?;
///     Ok(())
/// }
/// ```
///
/// A target named by a string (`Process::new("run_proc")`) takes its
/// arguments as bytes or a string (`.args("test")`).
///
/// A process still running when its parent ends is waited for (or, for a
/// daemon, terminated), as in Python.
#[derive(Debug)]
pub struct Process<A = RawArgs> {
    target: String,
    args: Vec<u8>,
    name: String,
    flags: i32,
    method: StartMethod,
    handle: Option<i32>,
    pid: Option<u32>,
    exitcode: Option<i32>,
    types: PhantomData<fn(A)>,
}

impl<A> Process<A> {
    /// A process that will run `target`: a task defined with
    /// [`task!`](crate::task!), or the name of a task export.
    pub fn new<T: Target<Args = A>>(target: T) -> Process<A> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Process {
            target: target.name().to_string(),
            args: Vec::new(),
            name: format!("Process-{}", n),
            flags: 0,
            method: StartMethod::default(),
            handle: None,
            pid: None,
            exitcode: None,
            types: PhantomData,
        }
    }

    /// The arguments given to the task: the tuple a typed task takes (or
    /// its one argument), or bytes or a string for a target named by a
    /// string. Handles among them (`Queue`, `Connection`) reach the child
    /// under the same numbers.
    pub fn args<X: IntoArgs<A>>(mut self, args: X) -> Process<A> {
        self.args = encode_args(&args).0;
        self
    }

    /// Names the process (default `Process-N`).
    pub fn with_name(mut self, name: &str) -> Process<A> {
        self.name = name.to_string();
        self
    }

    /// A daemon is terminated, not waited for, when its parent ends, and
    /// may not start processes of its own.
    pub fn daemon(mut self, daemon: bool) -> Process<A> {
        if daemon {
            self.flags |= DAEMON;
        } else {
            self.flags &= !DAEMON;
        }
        self
    }

    /// Chooses the start method (default [`StartMethod::Fork`]).
    pub fn start_method(mut self, method: StartMethod) -> Process<A> {
        self.method = method;
        self
    }

    /// The child may run no commands, whatever this guest may run.
    pub fn without_commands(mut self) -> Process<A> {
        self.flags |= DROP_RUN;
        self
    }

    /// The child sees none of the granted directories (spawn only).
    pub fn without_dirs(mut self) -> Process<A> {
        self.flags |= DROP_DIRS;
        self
    }

    /// The child sees none of the granted environment (spawn only).
    pub fn without_env(mut self) -> Process<A> {
        self.flags |= DROP_ENV;
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.flags & DAEMON != 0
    }

    /// The host's handle, once started.
    pub fn handle(&self) -> Option<i32> {
        self.handle
    }

    /// Starts the child OS process.
    ///
    /// # Errors
    /// `ENOENT` when no task function is exported under the target's name;
    /// `EAGAIN` at the tree's process limit; `EINVAL` when already started.
    pub fn start(&mut self) -> Result<()> {
        if self.handle.is_some() {
            return Err(Error::new(Errno::Inval, "cannot start a process twice"));
        }
        crate::os::flush_std();
        let method = match self.method {
            StartMethod::Fork => METHOD_FORK,
            StartMethod::Spawn => METHOD_SPAWN,
        };
        let h = check(sys::process_start(
            self.target.as_bytes(),
            &self.args,
            method,
            self.flags,
        ))?;
        self.handle = Some(h);
        self.pid = check(sys::process_pid(h)).ok().map(|p| p as u32);
        Ok(())
    }

    fn started(&self) -> Result<i32> {
        self.handle
            .ok_or_else(|| Error::new(Errno::Inval, "the process has not been started"))
    }

    /// Waits until it ends.
    ///
    /// # Errors
    /// `EINVAL` before [`start`](Process::start).
    pub fn join(&mut self) -> Result<()> {
        let h = self.started()?;
        check(sys::process_join(h, NO_TIMEOUT))?;
        self.exitcode();
        Ok(())
    }

    /// Waits at most `timeout`; `true` when it has ended.
    ///
    /// # Errors
    /// `EINVAL` before [`start`](Process::start).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<bool> {
        let h = self.started()?;
        let us = crate::time::micros(timeout);
        match check(sys::process_join(h, us)) {
            Ok(_) => {
                self.exitcode();
                Ok(true)
            }
            Err(err) if err.errno() == Errno::TimedOut => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Whether it has started and not yet ended.
    pub fn is_alive(&self) -> bool {
        match self.handle {
            Some(h) if self.exitcode.is_none() => sys::process_is_alive(h) == 1,
            _ => false,
        }
    }

    /// Its OS pid, once started.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// `None` while it runs (or before it starts); then `0` when the task
    /// returned, `N` for `exit(N)`, `-N` when signal `N` ended it, `1` when
    /// the task failed or trapped.
    pub fn exitcode(&mut self) -> Option<i32> {
        if self.exitcode.is_none() {
            if let Some(h) = self.handle {
                let mut code = 0i32;
                if sys::process_exitcode(h, &mut code) == 1 {
                    self.exitcode = Some(code);
                }
            }
        }
        self.exitcode
    }

    /// Sends it `SIGTERM` (exit code `-15`). Nothing happens if it has
    /// ended.
    ///
    /// # Errors
    /// `EINVAL` before [`start`](Process::start).
    pub fn terminate(&self) -> Result<()> {
        let h = self.started()?;
        check(sys::process_terminate(h)).map(|_| ())
    }

    /// Sends it `SIGKILL` (exit code `-9`).
    ///
    /// # Errors
    /// `EINVAL` before [`start`](Process::start).
    pub fn kill(&self) -> Result<()> {
        let h = self.started()?;
        check(sys::process_kill(h)).map(|_| ())
    }

    /// Releases the host's handle of an ended process.
    ///
    /// # Errors
    /// `EINVAL` while it is still running.
    pub fn close(&mut self) -> Result<()> {
        let h = self.started()?;
        self.exitcode();
        check(sys::process_close(h))?;
        self.handle = None;
        Ok(())
    }
}
