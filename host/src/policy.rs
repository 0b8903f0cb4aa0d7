//! What a guest is allowed to do: one object, asked before every bridged call
//! that reaches outside the sandbox.
//!
//! The default [`Policy`] grants nothing. Grants are resolved once, when the
//! policy is built (the only place that uses ambient authority: the host's
//! `PATH`, its file system and its environment); checks at call time only
//! look up what was resolved.
//!
//! ```
//! use procbridge::Policy;
//! let policy = Policy::builder().allow_run("echo").unwrap().build();
//! assert!(policy.resolve_command("echo").is_ok());
//! assert!(policy.resolve_command("rm").is_err());
//! ```
//!
//! Policies are usually written as a file; see [`crate::policy_file`] and
//! `docs/policy.md`.

use crate::confine::{CommandLimits, ConfineSpec, Confinement};

mod args;
mod grant;
mod remote;
use crate::ctx::DirPerms;
use crate::errno::{BridgeError, BridgeResult};
use crate::fork_safe::ForkSafeOnce;
use anyhow::{bail, Context};
pub use remote::{GrantRequest, LimitRequest};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use grant::GrantError;
use std::time::Duration;

/// Limits that apply to one guest and to what it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open handles per instance.
    pub max_handles: usize,
    /// Bytes of output one call may capture (per stream).
    pub max_output_bytes: usize,
    /// Live processes in the whole tree (guest processes and commands).
    pub max_processes: usize,
    /// Linear memory of one wasm instance, in bytes.
    pub max_memory_bytes: usize,
    /// Linear memory of all the wasm instances of the tree, in bytes.
    pub max_total_memory_bytes: u64,
    /// Bytes waiting in one queue or pipe.
    pub max_queued_bytes: usize,
    /// Wall-clock time of the whole job (the CLI kills the tree after it).
    pub wall_time: Option<Duration>,
    /// CPU seconds of each process of the tree, guests and commands.
    pub cpu_seconds: Option<u64>,
    /// Open files of each spawned command.
    pub command_open_files: Option<u64>,
    /// Address space of each spawned command, in bytes.
    pub command_address_space: Option<u64>,
    /// Bytes the job may write to the audit log (the CLI's `--max-audit`).
    pub max_audit_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_handles: crate::handles::DEFAULT_MAX_HANDLES,
            max_output_bytes: 1 << 30,
            max_processes: 64,
            max_memory_bytes: 1 << 30,
            max_total_memory_bytes: 8 << 30,
            max_queued_bytes: 64 << 20,
            wall_time: None,
            cpu_seconds: None,
            command_open_files: Some(1024),
            command_address_space: None,
            max_audit_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// The resource limits for spawned commands.
    pub fn command_limits(&self) -> CommandLimits {
        CommandLimits {
            cpu_seconds: self.cpu_seconds,
            address_space: self.command_address_space,
            open_files: self.command_open_files,
            processes: None,
            file_size: None,
        }
    }
}

/// Rules on the arguments of a granted command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgRules {
    /// When set, `argv[1]` must be one of these (e.g. `git`'s `status`, `log`).
    pub subcommands: Option<Vec<String>>,
    /// Options that are refused (e.g. `--exec`, `-c`). A long option is
    /// also refused in every abbreviation `getopt_long` could accept
    /// (`--exe`, `--ex=rm`) and behind one dash (`-exec`, `-ex`), a
    /// one-letter option also inside a cluster (`-xc`, `-cfoo`), and either
    /// with `=value`.
    pub deny_flags: Vec<String>,
    /// When set, the only options allowed: every argument that starts with
    /// `-` (after a `--` too) must be one of these exactly, one of these
    /// with `=value`, or a cluster of allowed one-letter options (`-la`).
    pub allow_flags: Option<Vec<String>>,
}

/// A content pin: the SHA-256 the binary had when the policy was built.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pin {
    sha256: [u8; 32],
    identity: FileIdentity,
}

/// What identifies a file's content cheaply: a replaced or rewritten file
/// changes one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        })
    }
}

/// A command the guest may run, resolved to an absolute path at start-up.
#[derive(Clone, Debug)]
pub struct GrantedCommand {
    /// The name the grant was given as (`echo`, or an absolute path).
    pub name: String,
    /// The absolute path that is executed.
    pub path: PathBuf,
    /// The same file without symbolic links (what the jail executes).
    pub exec_path: PathBuf,
    /// Rules on its arguments.
    pub args: ArgRules,
    /// Environment variables this command may receive besides those the
    /// policy grants to every command ([`Policy::env`]).
    pub env: Vec<String>,
    pin: Option<Pin>,
}

/// A host directory granted to the guest (and to the commands it starts).
///
/// The directory is opened once, when the grant is made; every later use
/// (WASI for the guest and its children, Landlock rules, the jail's
/// mounts) goes through [`dir`](Self::dir), never through the path again.
#[derive(Clone, Debug)]
pub struct DirGrant {
    /// The host directory's absolute path when it was opened (for messages
    /// and for checking the jail's mounts; never opened again).
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Read-only or read-write.
    pub perms: DirPerms,
    /// The directory itself, opened at start-up: paths below it are resolved
    /// by cap-std, which refuses `..` and symlinks that lead outside.
    pub dir: Arc<cap_std::fs::Dir>,
    /// Device and inode of the directory, to recognise it.
    pub identity: (u64, u64),
    /// The policy declared that this grant may lie inside a read-write
    /// grant (or hold one).
    pub overlap: bool,
}

/// The grants and limits of a guest. Immutable once built; see
/// [`PolicyBuilder`].
#[derive(Clone, Debug, Default)]
pub struct Policy {
    commands: BTreeMap<String, GrantedCommand>,
    dirs: Vec<DirGrant>,
    env: Vec<(String, String)>,
    network: bool,
    run_as: Option<(u32, u32)>,
    limits: Limits,
    /// What confines the commands, prepared on first use (in a fork child
    /// too: see [`ForkSafeOnce`]).
    confinement: Arc<ForkSafeOnce<Arc<Confinement>>>,
}

/// Environment variables a spawned command is never given, whatever the
/// guest asks: they change how the dynamic loader behaves.
pub fn is_loader_variable(key: &str) -> bool {
    key.starts_with("LD_") || key.starts_with("DYLD_")
}

impl Policy {
    /// Starts a policy that grants nothing.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The commands granted, by name.
    pub fn commands(&self) -> impl Iterator<Item = &GrantedCommand> {
        self.commands.values()
    }

    /// The directories granted.
    pub fn dirs(&self) -> &[DirGrant] {
        &self.dirs
    }

    /// The environment variables granted: the guest's environment, and the
    /// variables every command may receive.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Whether spawned commands may use the network.
    pub fn network(&self) -> bool {
        self.network
    }

    /// The host uid and gid commands run as, when procbridge runs as root
    /// and the policy names them (`None`: procbridge's own, mapped to an
    /// unprivileged id inside the jail).
    pub fn run_as(&self) -> Option<(u32, u32)> {
        self.run_as
    }

    /// This policy less some of its grants, for a child process that drops
    /// them (a child never gets more than its parent). Limits are kept.
    pub fn reduced(&self, drop_commands: bool, drop_dirs: bool, drop_env: bool) -> Policy {
        let mut policy = self.clone();
        if drop_commands {
            policy.commands.clear();
        }
        if drop_dirs {
            policy.dirs.clear();
        }
        if drop_env {
            policy.env.clear();
        }
        // The confinement depends on the grants: prepare it anew (from the
        // same opened directories).
        policy.confinement = Arc::default();
        policy
    }

    /// Looks up the command a guest names as `argv[0]`: a granted name, or
    /// the absolute path a grant resolved to. Nothing is looked up in `PATH`.
    ///
    /// # Errors
    /// `EPERM` naming the command when it is not granted.
    pub fn resolve_command(&self, program: &str) -> BridgeResult<&GrantedCommand> {
        if let Some(cmd) = self.commands.get(program) {
            return Ok(cmd);
        }
        if program.starts_with('/') {
            if let Some(cmd) = self
                .commands
                .values()
                .find(|c| c.path.as_os_str() == program)
            {
                return Ok(cmd);
            }
        }
        let hint = if program.contains('/') && !program.starts_with('/') {
            " (relative paths are never granted)"
        } else {
            ""
        };
        // The name comes from the guest: quoted and escaped (`{:?}`), so a
        // newline or a quote in it cannot forge a line on the host's stderr.
        let add = if program.chars().any(|c| c.is_control() || c.is_whitespace()) {
            String::new()
        } else {
            format!(" (add --allow-run {program})")
        };
        Err(BridgeError::denied(format!(
            "run {program:?}: not granted{hint}{add}"
        )))
    }

    /// Checks a whole command line: the command is granted, its arguments
    /// pass the grant's rules, and a pinned binary is unchanged.
    ///
    /// # Errors
    /// `EPERM` naming what was refused; `EINVAL` for an empty argv.
    pub fn check_command(&self, argv: &[String]) -> BridgeResult<&GrantedCommand> {
        let program = argv
            .first()
            .ok_or_else(|| BridgeError::invalid("empty argv: no command to run"))?;
        let cmd = self.resolve_command(program)?;
        cmd.check_args(&argv[1..])?;
        cmd.check_pin()?;
        Ok(cmd)
    }

    /// Checks the environment a guest asks for a command: every name must
    /// be granted to every command ([`env`](Self::env)) or to this one
    /// ([`GrantedCommand::env`]); loader variables never are.
    ///
    /// # Errors
    /// `EPERM` naming the first variable that is not granted.
    pub fn check_env(&self, cmd: &GrantedCommand, env: &[(String, String)]) -> BridgeResult<()> {
        for (key, _) in env {
            let why = if is_loader_variable(key) {
                "changes the dynamic loader and is never passed"
            } else if self.env.iter().any(|(k, _)| k == key) || cmd.env.iter().any(|k| k == key) {
                continue;
            } else {
                "is not granted to this command (grant it with env = [...] in the command's \
                 policy entry, or --env)"
            };
            return Err(BridgeError::denied(format!(
                "run \"{}\": environment variable {key:?} {why}",
                cmd.name
            )));
        }
        Ok(())
    }

    /// The files a granted command may execute: every granted binary, and
    /// the interpreters they need (see [`crate::confine::exec`]).
    ///
    /// # Errors
    /// When a granted binary can no longer be read.
    ///
    /// # Errors
    /// When a granted binary can no longer be read, or it (or an
    /// interpreter it names) lies inside a read-write grant: a guest could
    /// change what runs.
    pub fn executables(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = Vec::new();
        for cmd in self.commands.values() {
            for file in crate::confine::exec::files_to_execute(&cmd.path)? {
                if let Some(grant) = self.writable_grant_holding(&file) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        grant::CommandInsideGrant {
                            command: cmd.name.clone(),
                            file,
                            grant: grant.host.clone(),
                        }
                        .to_string(),
                    ));
                }
                if !files.contains(&file) {
                    files.push(file);
                }
            }
        }
        Ok(files)
    }

    /// The read-write grant `path` lies inside, if any.
    fn writable_grant_holding(&self, path: &Path) -> Option<&DirGrant> {
        self.dirs
            .iter()
            .find(|d| d.perms == DirPerms::ReadWrite && path.starts_with(&d.host))
    }

    /// The confinement of the commands this policy grants, prepared on
    /// first use: Landlock rules built from the granted directories'
    /// descriptors, the execute right on [`executables`](Self::executables),
    /// resource limits and the seccomp filter.
    ///
    /// # Errors
    /// When the Landlock rules cannot be built or a granted binary read.
    pub fn confinement(&self) -> std::io::Result<Arc<Confinement>> {
        if let Some(c) = self.confinement.get() {
            return Ok(c.clone());
        }
        let (read, write): (Vec<&DirGrant>, Vec<&DirGrant>) = self
            .dirs
            .iter()
            .partition(|d| d.perms == DirPerms::ReadOnly);
        let spec = ConfineSpec {
            executables: self.executables()?,
            read_dirs: read.into_iter().map(|d| d.dir.clone()).collect(),
            write_dirs: write.into_iter().map(|d| d.dir.clone()).collect(),
            network: self.network,
            limits: self.limits.command_limits(),
        };
        let confinement = Arc::new(Confinement::prepare(&spec)?);
        Ok(self.confinement.get_or_init(|| confinement).clone())
    }

    /// Opens a guest path (as the guest sees it through a granted directory)
    /// as a directory, for a command's working directory. It is resolved
    /// under the granted directory by cap-std: `..` or a symlink that would
    /// leave it is refused. Returns the directory, the grant it is in, and
    /// its path below the grant.
    ///
    /// # Errors
    /// `EPERM` when the path is not inside a granted directory; `ENOENT`
    /// when it does not exist or is not a directory.
    pub fn open_dir(
        &self,
        guest_path: &str,
    ) -> BridgeResult<(cap_std::fs::Dir, &DirGrant, String)> {
        let denied = |why: &str| {
            BridgeError::denied(format!(
                "cwd {guest_path:?}: {why} (grant a directory with --dir)"
            ))
        };
        for grant in &self.dirs {
            let rest = match strip_guest_prefix(guest_path, &grant.guest) {
                Some(rest) => rest.trim_start_matches('/'),
                None => continue,
            };
            let rest = if rest.is_empty() { "." } else { rest };
            let dir = grant.dir.open_dir(rest).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                    BridgeError::new(crate::Errno::NoEnt, format!("cwd {guest_path:?}: {e}"))
                }
                _ => denied(&format!("leads outside the granted directory ({e})")),
            })?;
            return Ok((dir, grant, rest.to_string()));
        }
        Err(denied("not inside a granted directory"))
    }
}

fn strip_guest_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() || prefix == "." {
        return (!path.starts_with('/')).then_some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

impl GrantedCommand {
    /// Whether the binary is pinned to a content hash.
    pub fn is_pinned(&self) -> bool {
        self.pin.is_some()
    }

    fn check_args(&self, args: &[String]) -> BridgeResult<()> {
        let why = match self.args.check(args) {
            Ok(()) => return Ok(()),
            Err(args::Refusal::Subcommand(sub)) => format!(
                "subcommand {sub:?} is not granted (granted: {})",
                self.args
                    .subcommands
                    .as_deref()
                    .unwrap_or_default()
                    .join(", ")
            ),
            Err(args::Refusal::Denied(arg)) => {
                format!("argument {arg:?} is denied by the policy")
            }
            Err(args::Refusal::NotAllowed(arg)) => {
                format!("option {arg:?} is not in the policy's allow_flags")
            }
        };
        Err(BridgeError::denied(format!("run \"{}\": {why}", self.name)))
    }

    fn check_pin(&self) -> BridgeResult<()> {
        let pin = match &self.pin {
            Some(pin) => pin,
            None => return Ok(()),
        };
        let changed = || {
            BridgeError::denied(format!(
                "run \"{}\": {} changed since start-up (its sha256 pin does not match)",
                self.name,
                self.path.display()
            ))
        };
        match FileIdentity::of(&self.path) {
            Ok(identity) if identity == pin.identity => Ok(()),
            Ok(_) => match sha256_file(&self.path) {
                Ok(digest) if digest == pin.sha256 => Ok(()),
                _ => Err(changed()),
            },
            Err(_) => Err(changed()),
        }
    }
}

/// Builds a [`Policy`]; every grant is explicit.
#[derive(Debug, Default)]
pub struct PolicyBuilder {
    policy: Policy,
}

impl PolicyBuilder {
    /// Grants running `command`: a bare name is resolved in the host's `PATH`
    /// now, an absolute path is taken as it is (and must exist).
    ///
    /// # Ambient authority
    /// Reads the host's `PATH` and file system.
    ///
    /// # Errors
    /// When the command cannot be found or is not an executable file, or is
    /// a relative path.
    pub fn allow_run(self, command: &str) -> anyhow::Result<Self> {
        self.allow_run_with(command, ArgRules::default(), None)
    }

    /// Grants running `command` with argument rules, optionally pinned to
    /// the SHA-256 (hex) of its binary.
    ///
    /// # Errors
    /// As [`allow_run`](Self::allow_run), and when the binary does not match
    /// the pin.
    pub fn allow_run_with(
        mut self,
        command: &str,
        args: ArgRules,
        sha256_hex: Option<&str>,
    ) -> anyhow::Result<Self> {
        let path = resolve_in_path(command).with_context(|| format!("allow_run({command:?})"))?;
        let exec_path =
            std::fs::canonicalize(&path).with_context(|| format!("{}", path.display()))?;
        if let Some(grant) = self.policy.writable_grant_holding(&exec_path) {
            return Err(grant::CommandInsideGrant {
                command: command.to_string(),
                file: exec_path,
                grant: grant.host.clone(),
            }
            .into());
        }
        let pin = match sha256_hex {
            None => None,
            Some(hex) => {
                let want = parse_sha256(hex)
                    .with_context(|| format!("command {command}: sha256 \"{hex}\""))?;
                let identity = FileIdentity::of(&path)?;
                let got = sha256_file(&path)?;
                if got != want {
                    bail!(
                        "command {command}: {} has sha256 {}, not the pinned {hex}",
                        path.display(),
                        to_hex(&got)
                    );
                }
                Some(Pin {
                    sha256: want,
                    identity,
                })
            }
        };
        self.policy.commands.insert(
            command.to_string(),
            GrantedCommand {
                name: command.to_string(),
                path,
                exec_path,
                args,
                env: Vec::new(),
                pin,
            },
        );
        Ok(self)
    }

    /// Grants `command` (already granted) the environment variables
    /// `names`, besides those every command may receive.
    ///
    /// # Errors
    /// When the command is not granted, or a name is a loader variable.
    pub fn command_env<S: AsRef<str>>(
        mut self,
        command: &str,
        names: impl IntoIterator<Item = S>,
    ) -> anyhow::Result<Self> {
        let cmd = self
            .policy
            .commands
            .get_mut(command)
            .with_context(|| format!("command {command} is not granted"))?;
        for name in names {
            let name = name.as_ref();
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                bail!("command {command}: environment variable \"{name}\": invalid name");
            }
            if is_loader_variable(name) {
                bail!("command {command}: environment variable {name}: loader variables are never granted");
            }
            if !cmd.env.iter().any(|n| n == name) {
                cmd.env.push(name.to_string());
            }
        }
        Ok(self)
    }

    /// Grants a host directory, seen by the guest at `guest`.
    ///
    /// The directory is opened now, without following symbolic links; that
    /// descriptor is the grant from then on (the path is never resolved
    /// again).
    ///
    /// # Ambient authority
    /// Resolves `host` in the host's file system.
    ///
    /// # Errors
    /// [`GrantError`]: `host` is not a directory, goes through a symbolic
    /// link, or lies inside a read-write grant (or, read-write, holds
    /// another grant).
    pub fn dir(self, host: impl AsRef<Path>, guest: &str, perms: DirPerms) -> anyhow::Result<Self> {
        self.add_dir(host.as_ref(), guest, perms, false)
    }

    /// Grants a host directory that may lie inside a read-write grant, or
    /// hold other grants: the overlap is intended.
    ///
    /// # Errors
    /// As [`dir`](Self::dir), but for overlaps.
    pub fn dir_overlapping(
        self,
        host: impl AsRef<Path>,
        guest: &str,
        perms: DirPerms,
    ) -> anyhow::Result<Self> {
        self.add_dir(host.as_ref(), guest, perms, true)
    }

    fn add_dir(
        mut self,
        host: &Path,
        guest: &str,
        perms: DirPerms,
        overlap: bool,
    ) -> anyhow::Result<Self> {
        let (dir, real) = grant::open(host)?;
        let stat =
            rustix::fs::fstat(&dir).with_context(|| format!("directory {}", host.display()))?;
        let grant = DirGrant {
            host: real,
            guest: guest.to_string(),
            perms,
            dir: Arc::new(dir),
            identity: (stat.st_dev, stat.st_ino),
            overlap,
        };
        grant::check_overlap(&self.policy.dirs, &grant)?;
        if perms == DirPerms::ReadWrite {
            if let Some(cmd) = self
                .policy
                .commands
                .values()
                .find(|c| c.exec_path.starts_with(&grant.host))
            {
                return Err(grant::CommandInsideGrant {
                    command: cmd.name.clone(),
                    file: cmd.exec_path.clone(),
                    grant: grant.host.clone(),
                }
                .into());
            }
        }
        self.policy.dirs.push(grant);
        Ok(self)
    }

    /// Grants an environment variable with a value.
    pub fn env(mut self, key: &str, value: &str) -> anyhow::Result<Self> {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            bail!("environment variable \"{key}\": invalid name or value");
        }
        if is_loader_variable(key) {
            bail!("environment variable {key}: loader variables are never granted");
        }
        self.policy.env.retain(|(k, _)| k != key);
        self.policy.env.push((key.to_string(), value.to_string()));
        Ok(self)
    }

    /// Grants an environment variable with the host's current value.
    ///
    /// # Ambient authority
    /// Reads the host's environment.
    ///
    /// # Errors
    /// When the variable is not set in the host (or its value is not
    /// UTF-8), as one line naming it.
    pub fn pass_env(self, key: &str) -> anyhow::Result<Self> {
        let value = match std::env::var(key) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => {
                bail!("environment variable {key}: not set in the host")
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("environment variable {key}: its value in the host is not UTF-8")
            }
        };
        self.env(key, &value)
    }

    /// Lets spawned commands use the network.
    pub fn network(mut self, allow: bool) -> Self {
        self.policy.network = allow;
        self
    }

    /// Commands run as host uid `uid` and gid `gid` (for a procbridge
    /// running as root; inside the jail they are 1000 either way).
    ///
    /// # Errors
    /// When either is 0, or procbridge does not run as root.
    pub fn run_as(mut self, uid: u32, gid: u32) -> anyhow::Result<Self> {
        if uid == 0 || gid == 0 {
            bail!("run as {uid}:{gid}: commands never run as root");
        }
        // SAFETY: a plain id query.
        if unsafe { libc::geteuid() } != 0 {
            bail!("run as {uid}:{gid}: only procbridge running as root can switch commands to another user");
        }
        self.policy.run_as = Some((uid, gid));
        Ok(self)
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.policy.limits = limits;
        self
    }

    /// Changes the limits in place.
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.policy.limits
    }

    /// Finishes the policy.
    pub fn build(self) -> Policy {
        self.policy
    }
}

fn resolve_in_path(command: &str) -> anyhow::Result<PathBuf> {
    if command.is_empty() {
        bail!("empty command name");
    }
    if command.starts_with('/') {
        let path = Path::new(command);
        check_executable(path)?;
        return Ok(path.to_path_buf());
    }
    if command.contains('/') {
        bail!("give a command name or an absolute path, not a relative path");
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&search) {
        if !dir.is_absolute() {
            continue;
        }
        let candidate = dir.join(command);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    bail!("not found in PATH")
}

fn check_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("{} is not an executable file", path.display());
    }
    Ok(())
}

/// The SHA-256 of a file's content.
pub fn sha256_file(path: &Path) -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut digest = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
    }
    Ok(digest.finalize().into())
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_sha256(hex: &str) -> anyhow::Result<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("a sha256 is 64 hex digits");
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Errno;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_grants_nothing() {
        let policy = Policy::default();
        let err = policy.resolve_command("true").unwrap_err();
        assert_eq!(err.errno, Errno::Perm);
        assert!(err.message.contains("\"true\""), "{}", err.message);
        assert!(policy.dirs().is_empty() && policy.env().is_empty() && !policy.network());
    }

    #[test]
    fn names_resolve_to_absolute_paths_once() {
        let policy = Policy::builder().allow_run("true").unwrap().build();
        let cmd = policy.resolve_command("true").unwrap();
        assert!(cmd.path.is_absolute());
        let by_path = policy.resolve_command(cmd.path.to_str().unwrap()).unwrap();
        assert_eq!(by_path.name, "true");
    }

    #[test]
    fn relative_paths_are_refused() {
        assert!(Policy::builder().allow_run("./true").is_err());
        let policy = Policy::builder().allow_run("true").unwrap().build();
        let err = policy.resolve_command("./true").unwrap_err();
        assert!(err.message.contains("relative"), "{}", err.message);
        assert!(policy.resolve_command("bin/true").is_err());
    }

    #[test]
    fn missing_commands_fail_at_build_time() {
        assert!(Policy::builder().allow_run("no-such-command-xyz").is_err());
        assert!(Policy::builder().allow_run("/no/such/file").is_err());
        assert!(Policy::builder().allow_run("").is_err());
        let err = Policy::builder().allow_run("/etc/passwd").unwrap_err();
        assert!(
            format!("{err:#}").contains("not an executable file"),
            "{err:#}"
        );
        // In the library's words: the builder call, then why.
        let err = Policy::builder()
            .allow_run("no-such-command-xyz")
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "allow_run(\"no-such-command-xyz\"): not found in PATH"
        );
    }

    #[test]
    fn loader_variables() {
        assert!(is_loader_variable("LD_PRELOAD"));
        assert!(is_loader_variable("DYLD_INSERT_LIBRARIES"));
        assert!(!is_loader_variable("PATH"));
        assert!(Policy::builder().env("LD_PRELOAD", "x.so").is_err());
    }

    #[test]
    fn subcommand_and_flag_rules() {
        let rules = ArgRules {
            subcommands: Some(vec!["status".into(), "log".into()]),
            deny_flags: vec!["--exec".into(), "-c".into()],
            allow_flags: None,
        };
        let policy = Policy::builder()
            .allow_run_with("true", rules, None)
            .unwrap()
            .build();
        assert!(policy.check_command(&argv(&["true", "status"])).is_ok());
        assert!(policy
            .check_command(&argv(&["true", "log", "-n", "3"]))
            .is_ok());
        let err = policy.check_command(&argv(&["true", "push"])).unwrap_err();
        assert!(
            err.message.contains("subcommand \"push\""),
            "{}",
            err.message
        );
        assert!(policy.check_command(&argv(&["true"])).is_err());
        let err = policy
            .check_command(&argv(&["true", "log", "--exec=rm"]))
            .unwrap_err();
        assert!(err.message.contains("--exec=rm"), "{}", err.message);
        assert!(policy.check_command(&argv(&["true", "log", "-c"])).is_err());
        // `-cx` may be `-c x`: a denied one-letter option is refused in a
        // cluster too.
        let err = policy
            .check_command(&argv(&["true", "log", "-cx"]))
            .unwrap_err();
        assert!(err.message.contains("\"-cx\" is denied"), "{}", err.message);
        assert!(policy.check_command(&argv(&["true", "log", "-x"])).is_ok());
        assert_eq!(policy.check_command(&[]).unwrap_err().errno, Errno::Inval);
    }

    #[test]
    fn hash_pins_are_checked_at_start_up_and_at_spawn() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("tool");
        std::fs::copy("/bin/true", &bin).unwrap();
        let hex = to_hex(&sha256_file(&bin).unwrap());
        let wrong = "0".repeat(64);
        let name = bin.to_str().unwrap();
        let err = Policy::builder()
            .allow_run_with(name, ArgRules::default(), Some(&wrong))
            .unwrap_err();
        assert!(err.to_string().contains("not the pinned"), "{err:#}");
        assert!(Policy::builder()
            .allow_run_with(name, ArgRules::default(), Some("xyz"))
            .is_err());
        let policy = Policy::builder()
            .allow_run_with(name, ArgRules::default(), Some(&hex))
            .unwrap()
            .build();
        assert!(policy.check_command(&argv(&[name])).is_ok());
        // A byte-identical copy (a new inode) still matches its pin.
        std::fs::remove_file(&bin).unwrap();
        std::fs::copy("/bin/true", &bin).unwrap();
        assert!(policy.check_command(&argv(&[name])).is_ok());
        // Replace the binary with another one after start-up.
        std::fs::remove_file(&bin).unwrap();
        std::fs::copy("/bin/false", &bin).unwrap();
        let err = policy.check_command(&argv(&[name])).unwrap_err();
        assert_eq!(err.errno, Errno::Perm);
        assert!(
            err.message.contains("changed since start-up"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cwd_must_stay_inside_a_granted_dir() {
        use std::os::fd::AsRawFd;
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        std::fs::create_dir_all(work.join("sub")).unwrap();
        std::os::unix::fs::symlink(root.path(), work.join("up")).unwrap();
        std::os::unix::fs::symlink("/", work.join("abs")).unwrap();
        let policy = Policy::builder()
            .dir(&work, "/work", DirPerms::ReadWrite)
            .unwrap()
            .build();
        let real_work = std::fs::canonicalize(&work).unwrap();
        let where_is = |(dir, _, _): (cap_std::fs::Dir, &DirGrant, String)| {
            std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).unwrap()
        };
        assert_eq!(where_is(policy.open_dir("/work").unwrap()), real_work);
        assert_eq!(
            where_is(policy.open_dir("/work/sub/").unwrap()),
            real_work.join("sub")
        );
        assert_eq!(
            where_is(policy.open_dir("/work/sub/..").unwrap()),
            real_work
        );
        for escape in [
            "/work/..",
            "/work/sub/../..",
            "/work/up",
            "/work/abs",
            "/tmp",
            "/workx",
            "sub",
        ] {
            let err = policy.open_dir(escape).unwrap_err();
            assert_eq!(err.errno, Errno::Perm, "{escape}: {}", err.message);
        }
        assert_eq!(
            policy.open_dir("/work/missing").unwrap_err().errno,
            Errno::NoEnt
        );
    }

    #[test]
    fn commands_get_only_granted_environment_names() {
        let policy = Policy::builder()
            .allow_run("env")
            .unwrap()
            .command_env("env", ["LANG"])
            .unwrap()
            .env("MODE", "ci")
            .unwrap()
            .build();
        let cmd = policy.resolve_command("env").unwrap();
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(policy
            .check_env(cmd, &pairs(&[("LANG", "C"), ("MODE", "other")]))
            .is_ok());
        let err = policy
            .check_env(cmd, &pairs(&[("LANG", "C"), ("GIT_EXTERNAL_DIFF", "sh x")]))
            .unwrap_err();
        assert_eq!(err.errno, Errno::Perm);
        assert!(
            err.message.contains("\"GIT_EXTERNAL_DIFF\""),
            "{}",
            err.message
        );
        assert!(Policy::builder()
            .allow_run("env")
            .unwrap()
            .command_env("env", ["LD_PRELOAD"])
            .is_err());
        assert!(Policy::builder().command_env("env", ["LANG"]).is_err());
    }

    #[test]
    fn grants_through_links_and_inside_read_write_grants_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        std::fs::create_dir_all(work.join("out")).unwrap();
        std::os::unix::fs::symlink(&work, root.path().join("link")).unwrap();
        let err = Policy::builder()
            .dir(root.path().join("link/out"), "/x", DirPerms::ReadOnly)
            .unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err:#}");
        assert!(err.to_string().contains("link"), "{err:#}");

        let nested = |outer: DirPerms, inner: DirPerms, overlap: bool| {
            let b = Policy::builder().dir(&work, "/w", outer).unwrap();
            if overlap {
                b.dir_overlapping(work.join("out"), "/out", inner)
            } else {
                b.dir(work.join("out"), "/out", inner)
            }
        };
        for inner in [DirPerms::ReadOnly, DirPerms::ReadWrite] {
            let err = nested(DirPerms::ReadWrite, inner, false).unwrap_err();
            assert!(
                err.to_string().contains("inside the read-write grant"),
                "{err:#}"
            );
            assert!(nested(DirPerms::ReadWrite, inner, true).is_ok());
        }
        assert!(nested(DirPerms::ReadOnly, DirPerms::ReadOnly, false).is_ok());
        // The other order: the read-write grant comes second.
        let err = Policy::builder()
            .dir(work.join("out"), "/out", DirPerms::ReadOnly)
            .unwrap()
            .dir(&work, "/w", DirPerms::ReadWrite)
            .unwrap_err();
        assert!(
            err.to_string().contains("inside the read-write grant"),
            "{err:#}"
        );
        // The same directory twice is no overlap.
        assert!(Policy::builder()
            .dir(&work, "/a", DirPerms::ReadWrite)
            .unwrap()
            .dir(&work, "/b", DirPerms::ReadOnly)
            .is_ok());
    }
}
