//! Per-guest state: what the guest sees through WASI and through the bridge.
//!
//! [`GuestBuilder`] configures one guest instance. Its defaults grant
//! nothing beyond its [`Policy`] (which by default grants nothing): no
//! arguments, no environment, no directories, no commands, stdin empty;
//! stdout and stderr are inherited (as a process's would be).

use crate::confine::jail::{Jail, JailError};
use crate::confine::layers;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::handles::HandleTable;
use crate::native_stdio::NativeStdio;
use crate::os_random::OsRandom;
use crate::policy::Policy;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::WasiCtxBuilder;

pub use wasmtime_wasi::FsPerms as DirPerms;

/// Where a guest's standard stream goes.
#[derive(Clone, Debug, Default)]
pub enum Stdio {
    /// The host process's own stream.
    #[default]
    Inherit,
    /// Nothing: reads see end of file, writes are discarded.
    Null,
    /// Written output is kept in memory (stdout and stderr only), the
    /// guest's own: its child processes' output is not.
    Capture(OutputCapture),
    /// Every line every guest process of the tree writes reaches the
    /// embedder, tagged with its pid (stdout and stderr only; see
    /// [`crate::OutputSink`]).
    Sink(crate::OutputSink),
}

/// Output written by a guest, kept in memory; see [`Stdio::Capture`].
#[derive(Clone, Debug)]
pub struct OutputCapture(MemoryOutputPipe);

impl OutputCapture {
    /// A capture that keeps at most `capacity` bytes; a guest writing more
    /// gets a write error.
    pub fn new(capacity: usize) -> Self {
        OutputCapture(MemoryOutputPipe::new(capacity))
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents().to_vec()
    }

    /// Everything written so far, as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.contents()).into_owned()
    }
}

/// The state of one guest instance, held in its wasmtime `Store`.
pub struct HostState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) bridge: Bridge,
    pub(crate) memory: crate::memory::MemoryLimiter,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("bridge", &self.bridge)
            .finish_non_exhaustive()
    }
}

impl HostState {
    /// The policy this guest runs under.
    pub fn policy(&self) -> &Policy {
        &self.bridge.policy
    }

    /// Whether the guest's commands run in a jail.
    pub fn is_jailed(&self) -> bool {
        self.bridge.jail.is_some()
    }

    /// Confines the calling process as procbridge confines its guest
    /// processes (see [`layers::harden_process`]): no capabilities,
    /// `no_new_privs`, and a seccomp filter that also refuses `execve` when
    /// no command can be started from this process (they run in the jail,
    /// or none is granted). Forked guest processes always get it; the CLI
    /// asks for it for the root once the module is loaded; an embedder may.
    ///
    /// # Errors
    /// When the kernel refuses a step.
    pub fn harden(&self) -> std::io::Result<()> {
        let no_exec = self.is_jailed() || self.policy().commands().next().is_none();
        layers::harden_process(no_exec)
    }
}

/// The bridge's part of a guest's state: its policy, its handles, the message
/// of its last failed call and the result waiting to be taken.
#[derive(Debug)]
pub struct Bridge {
    pub(crate) policy: Arc<Policy>,
    pub(crate) handles: HandleTable,
    pub(crate) program: Option<crate::runtime::Program>,
    /// The environment the guest was granted (a spawned command's default).
    pub(crate) granted_env: Vec<(String, String)>,
    /// The guest's environment, as WASI's `environ_get` hands it over.
    pub(crate) environ: crate::environ::Environ,
    /// Its child processes and how it was started.
    pub(crate) process: crate::process::ProcessState,
    last_error: String,
    pending_result: Option<Vec<u8>>,
    /// A buffer a taken result left behind, for the next result copied from
    /// a slice (a plugin call's input): no allocation per call.
    spare_result: Vec<u8>,
    /// The guest's exported memory, once looked up (every call that touches
    /// guest memory needs it; a name lookup each time is measurable).
    pub(crate) memory: Option<wasmtime::Memory>,
    /// The job's jail, where its commands run (`None`: no commands are
    /// granted, or this machine cannot make one).
    pub(crate) jail: Option<Arc<Jail>>,
    /// The Python door, for a Python guest.
    pub(crate) door: Option<crate::python::door::Door>,
    /// Where its pools send their tasks (`None`: to local workers).
    pub(crate) cluster: Option<Arc<crate::cluster::JobLink>>,
    /// Its connection for `cluster_call`, opened at the first.
    pub(crate) remote_calls: Option<crate::cluster::remote::RemoteCalls>,
}

impl Bridge {
    fn new(policy: Arc<Policy>) -> Self {
        let handles = HandleTable::new(policy.limits().max_handles);
        Bridge {
            policy,
            handles,
            program: None,
            granted_env: Vec::new(),
            environ: Default::default(),
            process: Default::default(),
            last_error: String::new(),
            pending_result: None,
            spare_result: Vec::new(),
            memory: None,
            jail: None,
            door: None,
            cluster: None,
            remote_calls: None,
        }
    }

    /// Records `err` as the last error and returns its code for the guest.
    pub(crate) fn fail(&mut self, err: BridgeError) -> i32 {
        let code = err.errno.to_return();
        self.last_error = err.message;
        code
    }

    /// The message of the last failed call.
    pub(crate) fn last_error(&self) -> &str {
        &self.last_error
    }

    /// Keeps `bytes` for the guest to take and returns their length.
    pub(crate) fn set_result(&mut self, bytes: Vec<u8>) -> BridgeResult<i32> {
        let len = i32::try_from(bytes.len())
            .map_err(|_| BridgeError::new(Errno::TooBig, "result is larger than 2 GiB"))?;
        self.pending_result = Some(bytes);
        Ok(len)
    }

    /// [`Bridge::set_result`] of a copy of `bytes`, made in the buffer a
    /// taken result left behind.
    pub(crate) fn set_result_from(&mut self, bytes: &[u8]) -> BridgeResult<i32> {
        let mut buf = std::mem::take(&mut self.spare_result);
        buf.clear();
        buf.extend_from_slice(bytes);
        self.set_result(buf)
    }

    /// Keeps the buffer of a result the guest took for
    /// [`Bridge::set_result_from`], unless it is large.
    pub(crate) fn recycle_result(&mut self, buf: Vec<u8>) {
        /// Larger buffers are freed: one big input must not pin its memory.
        const KEEP: usize = 64 << 10;
        if buf.capacity() <= KEEP && buf.capacity() >= self.spare_result.capacity() {
            self.spare_result = buf;
        }
    }

    /// The length of the result waiting to be taken, if any.
    pub(crate) fn result_len(&self) -> Option<i32> {
        let result = self.pending_result.as_ref()?;
        i32::try_from(result.len()).ok()
    }

    /// Takes the waiting result if the guest asks for exactly its length.
    pub(crate) fn take_result(&mut self, len: usize) -> BridgeResult<Vec<u8>> {
        match &self.pending_result {
            None => Err(BridgeError::invalid("no result is waiting to be taken")),
            Some(r) if r.len() != len => Err(BridgeError::invalid(format!(
                "the waiting result has {} bytes, not {len}",
                r.len()
            ))),
            Some(_) => Ok(self.pending_result.take().unwrap_or_default()),
        }
    }
}

/// Configures one guest instance; see the module docs for the defaults.
///
/// ```
/// use procbridge::{GuestBuilder, Policy};
/// let mut guest = GuestBuilder::new();
/// guest.arg("job.wasm").arg("--fast").env("MODE", "test");
/// guest.policy(Policy::builder().allow_run("true")?.build());
/// let state = guest.build();
/// # Ok::<(), anyhow::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct GuestBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    stdin_set: bool,
    policy: Arc<Policy>,
    jail: JailChoice,
    /// Read-only directories the guest sees besides its grants (procbridge's
    /// own: the Python library); never given to commands.
    extra_dirs: Vec<(Arc<cap_std::fs::Dir>, String)>,
    /// A Python door in this directory, seen at this guest path.
    door: Option<(Arc<cap_std::fs::Dir>, String)>,
    /// Inherited stdout/stderr end the process with SIGPIPE on a broken
    /// pipe, as a native program's do.
    native_sigpipe: bool,
    /// Commands' inherited stderr is read for denials, which become hints.
    denial_hints: bool,
    /// Where its pools send their tasks.
    cluster: Option<Arc<crate::cluster::JobLink>>,
}

/// Where a guest's commands run.
#[derive(Clone, Debug, Default)]
pub(crate) enum JailChoice {
    /// In a jail built for this guest when it is built (the root of a job).
    #[default]
    Build,
    /// In its parent's jail (or, `None`, where its parent's run).
    Inherit(Option<Arc<Jail>>),
}

impl GuestBuilder {
    /// A builder that grants nothing.
    pub fn new() -> Self {
        GuestBuilder::default()
    }

    /// Appends one argument (the first is the program name, `argv[0]`).
    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<S: Into<String>>(&mut self, args: impl IntoIterator<Item = S>) -> &mut Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the guest, in addition to those its
    /// policy grants ([`Policy::env`], which spawned commands may also get).
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets where the guest's stdin comes from (default: empty).
    pub fn stdin(&mut self, stdio: Stdio) -> &mut Self {
        self.stdin = stdio;
        self.stdin_set = true;
        self
    }

    /// Sets where the guest's stdout goes (default: inherited).
    pub fn stdout(&mut self, stdio: Stdio) -> &mut Self {
        self.stdout = stdio;
        self
    }

    /// Sets where the guest's stderr goes (default: inherited).
    pub fn stderr(&mut self, stdio: Stdio) -> &mut Self {
        self.stderr = stdio;
        self
    }

    /// With inherited stdout or stderr ([`Stdio::Inherit`]), a write
    /// whose reader has gone ends the process with `SIGPIPE`, quietly, as
    /// the kernel ends a native program (`job | head -1`); without it
    /// (the default) the guest's write fails and the embedder's process
    /// lives on. The `procbridge` command sets it.
    pub fn native_sigpipe(&mut self, yes: bool) -> &mut Self {
        self.native_sigpipe = yes;
        self
    }

    /// Hints where the sandbox says no: a command whose stderr is
    /// inherited writes it through a pipe that a thread copies to the
    /// host's stderr, reading each line on the way; a line such as
    /// `cat: /srv/in.csv: No such file or directory` about a path no grant
    /// holds is followed, once the command ends, by the grant that would
    /// allow it (`procbridge: hint: ... (add --dir-ro /srv ...)`, and a
    /// `hint` record in the audit log). The command's stderr is then a
    /// pipe, not the terminal. Off by default; the `procbridge` command
    /// sets it unless `-q`.
    pub fn denial_hints(&mut self, yes: bool) -> &mut Self {
        self.denial_hints = yes;
        self
    }

    /// Sends the tasks of the guest's `Pool`s (and of its children's) to
    /// workers on other machines through NATS JetStream, instead of to
    /// local worker processes: see [`crate::cluster`].
    pub fn cluster(&mut self, link: crate::cluster::JobLink) -> &mut Self {
        self.cluster = Some(Arc::new(link));
        self
    }

    pub(crate) fn denial_hints_on(&self) -> bool {
        self.denial_hints
    }

    /// Sets the policy the guest's bridged calls are checked against.
    pub fn policy(&mut self, policy: impl Into<Arc<Policy>>) -> &mut Self {
        self.policy = policy.into();
        self
    }

    /// Removes every environment variable set with [`env`](Self::env).
    pub fn clear_env(&mut self) -> &mut Self {
        self.env.clear();
        self
    }

    /// The sink `stream` writes to, if it goes to one.
    pub(crate) fn sink(&self, stream: crate::output::StdStream) -> Option<&crate::OutputSink> {
        let stdio = match stream {
            crate::output::StdStream::Stdout => &self.stdout,
            crate::output::StdStream::Stderr => &self.stderr,
        };
        match stdio {
            Stdio::Sink(sink) => Some(sink),
            _ => None,
        }
    }

    /// The policy that will be used.
    pub fn current_policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Whether the guest's commands run in a jail (the default: yes, where
    /// the machine can make one). Without it they are confined by what
    /// remains — a session of their own, seccomp, Landlock, rlimits, no
    /// capabilities — which `docs/policy.md` says is much less: use it only
    /// where the whole host already runs in a sandbox of its own.
    pub fn jail(&mut self, enabled: bool) -> &mut Self {
        self.jail = if enabled {
            JailChoice::Build
        } else {
            JailChoice::Inherit(None)
        };
        self
    }

    /// Lets the guest read `dir` at `guest` (procbridge's own files, such as
    /// the Python library; not a grant: commands never see it).
    pub(crate) fn extra_dir(&mut self, dir: Arc<cap_std::fs::Dir>, guest: &str) -> &mut Self {
        self.extra_dirs.push((dir, guest.to_string()));
        self
    }

    /// Opens the door (see [`crate::python`]) for a guest that can only make
    /// WASI calls, such as an interpreter: `dir`, an empty directory, is
    /// preopened at `guest` (as the first preopen, WASI descriptor 3), and
    /// opening `door` in it gives [`DOOR_FD`](crate::python::DOOR_FD), on
    /// which each write of a frame is one call of a procbridge host
    /// function, under the guest's policy. [`crate::python::PythonJob`]
    /// sets this up for Python.
    pub fn door(&mut self, dir: Arc<cap_std::fs::Dir>, guest: &str) -> &mut Self {
        self.door = Some((dir, guest.to_string()));
        self
    }

    /// A child's commands run where its parent's do.
    pub(crate) fn inherit_jail(&mut self, jail: Option<Arc<Jail>>) -> &mut Self {
        self.jail = JailChoice::Inherit(jail);
        self
    }

    /// Builds the guest's state.
    ///
    /// When the policy grants commands, this also builds the job's jail
    /// (see [`crate::confine::jail`]); where this machine cannot, the
    /// missing layers are reported on stderr and commands are confined by
    /// what remains.
    ///
    /// # Errors
    /// When a granted directory cannot be handed to WASI, or a granted
    /// binary can no longer be read.
    pub fn build(&self) -> anyhow::Result<HostState> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&self.args)
            .envs(self.policy.env())
            .envs(&self.env);
        // File operations run on the guest's own thread: no background
        // threads hold state a `fork` child would need.
        wasi.allow_blocking_current_thread(true);
        // Randomness with no state a fork could copy.
        wasi.secure_random(OsRandom).insecure_random(OsRandom);
        // Preopens are numbered from 3 in this order: the door's first.
        let mut preopen = |dir: &cap_std::fs::Dir, guest: &str, perms| {
            // Through the descriptor opened at start-up, never a path.
            let fd = format!("/proc/self/fd/{}", dir.as_raw_fd());
            wasi.preopened_dir(&fd, guest, perms)
                .map(drop)
                .map_err(anyhow::Error::from)
        };
        let door = match &self.door {
            Some((dir, guest)) => {
                preopen(dir, guest, DirPerms::ReadOnly)?;
                Some(crate::python::door::Door::new(3))
            }
            None => None,
        };
        for dir in self.policy.dirs() {
            preopen(&dir.dir, &dir.guest, dir.perms)
                .map_err(|e| e.context(format!("granted directory {}", dir.host.display())))?;
        }
        for (dir, guest) in &self.extra_dirs {
            preopen(dir, guest, DirPerms::ReadOnly)?;
        }
        match &self.stdin {
            Stdio::Inherit if self.stdin_set => {
                wasi.inherit_stdin();
            }
            _ => {
                wasi.stdin(std::io::empty());
            }
        }
        match &self.stdout {
            Stdio::Inherit if self.native_sigpipe => wasi.stdout(NativeStdio::Stdout),
            Stdio::Inherit => wasi.stdout(std::io::stdout()),
            Stdio::Null => wasi.stdout(std::io::empty()),
            Stdio::Capture(c) => wasi.stdout(c.0.clone()),
            Stdio::Sink(s) => wasi.stdout(s.stream(crate::output::StdStream::Stdout)),
        };
        match &self.stderr {
            Stdio::Inherit if self.native_sigpipe => wasi.stderr(NativeStdio::Stderr),
            Stdio::Inherit => wasi.stderr(std::io::stderr()),
            Stdio::Null => wasi.stderr(std::io::empty()),
            Stdio::Capture(c) => wasi.stderr(c.0.clone()),
            Stdio::Sink(s) => wasi.stderr(s.stream(crate::output::StdStream::Stderr)),
        };
        let memory = crate::memory::MemoryLimiter::new(self.policy.limits());
        let jail = self.build_jail()?;
        let mut bridge = Bridge::new(self.policy.clone());
        // A command's default environment: what the policy grants commands.
        bridge.granted_env = self.policy.env().to_vec();
        // In the order the WASI context was given them.
        bridge.environ = crate::environ::Environ::new(
            self.policy
                .env()
                .iter()
                .chain(&self.env)
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        bridge.process.origin = Some(Arc::new(self.clone()));
        bridge.jail = jail;
        bridge.door = door;
        bridge.cluster = self.cluster.clone();
        Ok(HostState {
            wasi: wasi.build_p1(),
            bridge,
            memory,
        })
    }
}

impl GuestBuilder {
    /// The jail this guest's commands run in: its parent's, or a new one
    /// when it is the root of a job whose policy grants commands.
    fn build_jail(&self) -> anyhow::Result<Option<Arc<Jail>>> {
        if self.policy.commands().next().is_none() {
            return Ok(None);
        }
        // Problems with the grants themselves show at start-up.
        let confinement = self
            .policy
            .confinement()
            .map_err(|e| anyhow::anyhow!("confining the granted commands: {e}"))?;
        if let JailChoice::Inherit(jail) = &self.jail {
            return Ok(jail.clone());
        }
        let jail = match Jail::start(&self.policy) {
            Ok(jail) => Some(Arc::new(jail)),
            Err(JailError::Unavailable(err)) => {
                layers::warn(&format!(
                    "commands run without the jail (this machine cannot make its namespaces: \
                     {err}): no PID, mount, network or user namespace confines them; a new \
                     session, Landlock, seccomp, rlimits and no capabilities still do"
                ));
                None
            }
            // Never run commands unjailed because the jail could not be
            // built as the policy says.
            Err(err @ JailError::Build(_)) => return Err(err.into()),
        };
        for warning in confinement
            .warnings()
            .iter()
            .chain(jail.iter().flat_map(|j| j.warnings()))
        {
            layers::warn(warning);
        }
        tracing::info!("commands are confined by: {}", confinement.describe());
        Ok(jail)
    }
}
