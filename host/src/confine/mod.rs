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
pub mod landlock;
mod rlimits;

pub use rlimits::CommandLimits;

use std::io;
use std::path::{Path, PathBuf};

/// Directories every command may read and execute from (those that exist).
pub const SYSTEM_READ_DIRS: &[&str] =
    &["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc"];

/// Device files every command may read and write.
pub const DEVICE_FILES: &[&str] = &["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

/// What a command may reach; the input of [`Confinement::prepare`].
#[derive(Clone, Debug, Default)]
pub struct ConfineSpec {
    /// The command's executable (granted read and execute).
    pub program: PathBuf,
    /// Granted directories the command may read.
    pub read_dirs: Vec<PathBuf>,
    /// Granted directories the command may read and write.
    pub write_dirs: Vec<PathBuf>,
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
    warnings: Vec<String>,
}

impl Confinement {
    /// Prepares the confinement for `spec`.
    ///
    /// # Errors
    /// When a granted directory cannot be opened for the Landlock rules.
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
        Ok(Confinement {
            ruleset,
            limits: spec.limits.clone(),
            warnings,
        })
    }

    /// What could not be enforced on this host.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether the file-system rules are enforced (Landlock present).
    pub fn has_landlock(&self) -> bool {
        self.ruleset.is_some()
    }

    /// Applies the confinement to the calling process.
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
        Ok(())
    }
}

fn build_ruleset(abi: u32, spec: &ConfineSpec) -> io::Result<landlock::Ruleset> {
    use landlock::Access;
    let mut ruleset = landlock::Ruleset::new(abi, !spec.network)?;
    let existing =
        |paths: &'static [&'static str]| paths.iter().map(Path::new).filter(|p| p.exists());
    for dir in existing(SYSTEM_READ_DIRS) {
        ruleset.allow(dir, Access::ReadExecute)?;
    }
    for dev in existing(DEVICE_FILES) {
        ruleset.allow(dev, Access::ReadWrite)?;
    }
    ruleset.allow(&spec.program, Access::ReadExecute)?;
    for dir in &spec.read_dirs {
        ruleset.allow(dir, Access::Read)?;
    }
    for dir in &spec.write_dirs {
        ruleset.allow(dir, Access::ReadWrite)?;
    }
    Ok(ruleset)
}
