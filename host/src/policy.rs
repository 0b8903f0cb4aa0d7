//! What a guest is allowed to do: one object, asked before every bridged call
//! that reaches outside the sandbox.
//!
//! The default [`Policy`] grants nothing. Grants are resolved once, when the
//! policy is built (the only place that uses ambient authority, such as the
//! host's `PATH`); checks at call time only look up what was resolved.
//!
//! ```
//! use procbridge::Policy;
//! let policy = Policy::builder().allow_run("echo").unwrap().build();
//! assert!(policy.resolve_command("echo").is_ok());
//! assert!(policy.resolve_command("rm").is_err());
//! ```

use crate::errno::{BridgeError, BridgeResult};
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Limits that apply to one guest and to what it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open handles per instance.
    pub max_handles: usize,
    /// Bytes of output one call may capture (per stream).
    pub max_output_bytes: usize,
    /// Live processes in the whole tree (guest processes and commands).
    pub max_processes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_handles: crate::handles::DEFAULT_MAX_HANDLES,
            max_output_bytes: 1 << 30,
            max_processes: 64,
        }
    }
}

/// A command the guest may run, resolved to an absolute path at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedCommand {
    /// The name the grant was given as (`echo`, or an absolute path).
    pub name: String,
    /// The absolute path that is executed.
    pub path: PathBuf,
}

/// The grants and limits of a guest. Immutable once built; see
/// [`PolicyBuilder`].
#[derive(Clone, Debug, Default)]
pub struct Policy {
    commands: BTreeMap<String, GrantedCommand>,
    limits: Limits,
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
        Err(BridgeError::denied(format!(
            "run \"{program}\": not granted{hint} (add --allow-run {program})"
        )))
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
    pub fn allow_run(mut self, command: &str) -> anyhow::Result<Self> {
        let path = resolve_in_path(command)?;
        self.policy.commands.insert(
            command.to_string(),
            GrantedCommand {
                name: command.to_string(),
                path,
            },
        );
        Ok(self)
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.policy.limits = limits;
        self
    }

    /// Finishes the policy.
    pub fn build(self) -> Policy {
        self.policy
    }
}

fn resolve_in_path(command: &str) -> anyhow::Result<PathBuf> {
    if command.is_empty() {
        bail!("--allow-run: empty command name");
    }
    if command.starts_with('/') {
        let path = Path::new(command);
        check_executable(path)?;
        return Ok(path.to_path_buf());
    }
    if command.contains('/') {
        bail!(
            "--allow-run {command}: give a command name or an absolute path, not a relative path"
        );
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
    bail!("--allow-run {command}: not found in PATH")
}

fn check_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("{} is not an executable file", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Errno;

    #[test]
    fn default_grants_nothing() {
        let policy = Policy::default();
        let err = policy.resolve_command("true").unwrap_err();
        assert_eq!(err.errno, Errno::Perm);
        assert!(err.message.contains("\"true\""), "{}", err.message);
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
    }

    #[test]
    fn loader_variables() {
        assert!(is_loader_variable("LD_PRELOAD"));
        assert!(is_loader_variable("DYLD_INSERT_LIBRARIES"));
        assert!(!is_loader_variable("PATH"));
    }
}
