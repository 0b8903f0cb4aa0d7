//! Confining the native commands a guest starts.
//!
//! A spawned command is native code outside the wasm sandbox, so it is
//! confined to no more than the guest holds. The work is split in two:
//!
//! * [`Confinement::prepare`] runs in the host before spawning. It may
//!   allocate and open files: it builds the Landlock ruleset (a file
//!   descriptor, close-on-exec) and the list of resource limits.
//! * [`Confinement::apply`] runs in the forked child just before `exec`. It
//!   only makes system calls: no allocation, no locks.
//!
//! What a confined command gets:
//!
//! * `no_new_privs`, and no capabilities at all (the bounding set is dropped
//!   and root's implicit capabilities are disabled with `SECBIT_NOROOT`), so
//!   setuid binaries and file capabilities give nothing;
//! * Landlock (where the kernel has it): read and execute on the system
//!   directories ([`SYSTEM_READ_DIRS`]) and on the command's own binary; read
//!   on the granted read-only directories; read and write (but not execute:
//!   granted directories are for data) on the granted read-write directories;
//!   read/write on `/dev/null` and friends ([`DEVICE_FILES`]). Nothing else of
//!   the file system: not `/tmp`, not `/proc` (which would show the host's
//!   environment), unless granted. Without the
//!   network grant, TCP bind and connect are refused (Landlock ABI 4+). With
//!   ABI 6+, it cannot signal processes outside its own sandbox, nor reach
//!   abstract Unix sockets outside it;
//! * resource limits ([`CommandLimits`]): CPU seconds, address space, open
//!   files, processes, no core dumps.
//!
//! Not confined: UDP and Unix-socket paths are not restricted by Landlock;
//! `RLIMIT_NPROC` is not enforced by the kernel for root. Where Landlock is
//! absent the command still gets everything else, and [`Confinement::warnings`]
//! says what is missing.

mod caps;
pub mod exec;
pub mod jail;
pub mod landlock;
pub mod layers;
mod rlimits;
pub mod seccomp;

pub use rlimits::CommandLimits;

use crate::fork_safe::ForkSafeOnce;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// Directories every command may read (those that exist); it may execute
/// only [`ConfineSpec::executables`] from them.
pub const SYSTEM_READ_DIRS: &[&str] =
    &["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc"];

/// Device files every command may read and write.
pub const DEVICE_FILES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/urandom",
    "/dev/random",
];

/// What a command may reach; the input of [`Confinement::prepare`].
#[derive(Clone, Debug, Default)]
pub struct ConfineSpec {
    /// The files it may execute: the granted binaries and their
    /// interpreters (see [`exec::files_to_execute`]).
    pub executables: Vec<std::path::PathBuf>,
    /// Granted directories it may read (opened at start-up).
    pub read_dirs: Vec<Arc<cap_std::fs::Dir>>,
    /// Granted directories it may read and write.
    pub write_dirs: Vec<Arc<cap_std::fs::Dir>>,
    /// Whether TCP is allowed.
    pub network: bool,
    /// Resource limits.
    pub limits: CommandLimits,
}

/// A prepared confinement, applied in each spawned child.
#[derive(Debug)]
pub struct Confinement {
    ruleset: Option<landlock::Ruleset>,
    limits: CommandLimits,
    seccomp: Option<Arc<seccomp::Filter>>,
    warnings: Vec<String>,
}

impl Confinement {
    /// Prepares the confinement for `spec`.
    ///
    /// # Errors
    /// When a Landlock rule cannot be added (a system file vanished).
    pub fn prepare(spec: &ConfineSpec) -> io::Result<Confinement> {
        let mut warnings = Vec::new();
        let ruleset = match landlock::abi_version() {
            Some(abi) => Some(build_ruleset(abi, spec)?),
            None => {
                warnings.push(
                    "Landlock is not available on this kernel: spawned commands are not \
                     confined to the granted directories"
                        .to_string(),
                );
                None
            }
        };
        let seccomp = command_filter();
        if seccomp.is_none() {
            warnings.push(
                "seccomp is not available: spawned commands may create namespaces, use ptrace \
                 and type into terminals"
                    .to_string(),
            );
        }
        Ok(Confinement {
            ruleset,
            limits: spec.limits.clone(),
            seccomp,
            warnings,
        })
    }

    /// The confinement the jail's helper rebuilds from what the host sent:
    /// the host's Landlock ruleset (if any) and limits, and its own filter.
    pub(crate) fn from_parts(
        ruleset: Option<OwnedFd>,
        limits: CommandLimits,
        seccomp: Option<Arc<seccomp::Filter>>,
    ) -> Confinement {
        Confinement {
            ruleset: ruleset.map(landlock::Ruleset::from_fd),
            limits,
            seccomp,
            warnings: Vec::new(),
        }
    }

    /// What could not be enforced on this host.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the file-system rules are enforced (Landlock present).
    pub fn has_landlock(&self) -> bool {
        self.ruleset.is_some()
    }

    /// The layers a command gets, in words (for `procbridge -v`).
    pub fn describe(&self) -> String {
        let mut layers = vec!["no capabilities, no_new_privs, resource limits".to_string()];
        if self.ruleset.is_some() {
            let abi = landlock::abi_version().unwrap_or(0);
            let mut reach = vec!["files"];
            if abi >= 4 {
                reach.push("TCP");
            }
            if abi >= 6 {
                reach.extend(["signals", "abstract sockets"]);
            }
            layers.push(format!("Landlock ABI {abi} ({})", reach.join(", ")));
        }
        if self.seccomp.is_some() {
            layers.push("seccomp".to_string());
        }
        layers.join("; ")
    }

    /// The Landlock ruleset, to hand to the jail's helper.
    pub(crate) fn ruleset(&self) -> Option<&landlock::Ruleset> {
        self.ruleset.as_ref()
    }

    /// The resource limits.
    pub(crate) fn limits(&self) -> &CommandLimits {
        &self.limits
    }

    /// Applies the confinement to the calling process: resource limits,
    /// `no_new_privs`, no capabilities, Landlock, then seccomp.
    ///
    /// # Safety
    /// Call only in a child between `fork` and `exec` (e.g. from
    /// `CommandExt::pre_exec`): it irrevocably restricts the calling process.
    /// It makes only async-signal-safe system calls.
    pub unsafe fn apply(&self) -> io::Result<()> {
        // SAFETY: each of these only makes system calls on this process.
        unsafe {
            rlimits::apply(&self.limits)?;
            caps::set_no_new_privs()?;
            caps::drop_all()?;
            if let Some(ruleset) = &self.ruleset {
                ruleset.restrict_self()?;
            }
        }
        if let Some(filter) = &self.seccomp {
            filter.apply()?;
        }
        Ok(())
    }
}

/// The seccomp filter of commands, compiled once per process (`None`
/// without seccomp).
pub(crate) fn command_filter() -> Option<Arc<seccomp::Filter>> {
    static FILTER: ForkSafeOnce<Option<Arc<seccomp::Filter>>> = ForkSafeOnce::new();
    FILTER
        .get_or_init(|| {
            seccomp::available()
                .then(|| seccomp::Filter::new(seccomp::Profile::Command).ok())
                .flatten()
                .map(Arc::new)
        })
        .clone()
}

/// Empties the calling process's capability bounding set (its effective
/// capabilities stay): for the jail's helper, whose commands then start
/// with nothing to drop.
///
/// # Errors
/// When the kernel refuses.
pub(crate) fn drop_bounding_set() -> io::Result<()> {
    // SAFETY: system calls on this process only.
    unsafe { caps::drop_bounding_set() }
}

/// Drops every capability of the calling process and sets
/// `no_new_privs`: for procbridge's own processes once their grants are
/// open.
///
/// # Errors
/// When the kernel refuses.
pub fn drop_privileges() -> io::Result<()> {
    // SAFETY: system calls on this process only.
    unsafe {
        caps::set_no_new_privs()?;
        caps::drop_all()
    }
}

fn build_ruleset(abi: u32, spec: &ConfineSpec) -> io::Result<landlock::Ruleset> {
    use landlock::Access;
    let mut ruleset = landlock::Ruleset::new(abi, !spec.network)?;
    let existing =
        |paths: &'static [&'static str]| paths.iter().map(Path::new).filter(|p| p.exists());
    for dir in existing(SYSTEM_READ_DIRS) {
        ruleset.allow(dir, Access::Read)?;
    }
    for dev in existing(DEVICE_FILES) {
        ruleset.allow(dev, Access::ReadWrite)?;
    }
    for file in &spec.executables {
        ruleset.allow(file, Access::ReadExecute)?;
    }
    for dir in &spec.read_dirs {
        ruleset.allow_fd(dir.as_fd(), Access::Read)?;
    }
    for dir in &spec.write_dirs {
        ruleset.allow_fd(dir.as_fd(), Access::ReadWrite)?;
    }
    Ok(ruleset)
}
