//! Policy files: a TOML file an operator can read, review and trust.
//!
//! ```toml
//! # Run `git status` and `git log` only, from a pinned binary.
//! [commands.git]
//! subcommands = ["status", "log"]
//! deny_flags = ["-c", "--exec-path"]  # and every abbreviation of them
//! env = ["GIT_AUTHOR_NAME"]           # variables this command may receive
//! sha256 = "…64 hex digits…"
//!
//! [commands.sort]
//! allow_flags = ["-r", "-n", "-k"]    # no other option
//!
//! [commands.sort]          # an empty table grants the command with no rules
//!
//! [[dirs]]
//! host = "work"            # relative to this file
//! guest = "/work"
//! mode = "read-write"      # or "read-only" (the default)
//! # overlap = true         # it may lie inside a read-write grant
//!
//! [env]
//! pass = ["LANG"]          # the host's value
//! set = { MODE = "ci" }
//!
//! [network]
//! commands = false         # spawned commands may not use the network
//!
//! [jail]
//! run_as = [65534, 65534]  # host uid and gid of commands (procbridge as root)
//!
//! [limits]
//! processes = 16
//! memory_mb = 256          # per wasm instance
//! total_memory_mb = 1024   # all the wasm instances of the tree
//! wall_time_seconds = 60
//! cpu_seconds = 30
//! output_mb = 64
//! queued_mb = 16
//! open_files = 256         # per spawned command
//! address_space_mb = 2048  # per spawned command
//! handles = 512
//! audit_mb = 64            # the audit log, for the whole job
//! ```
//!
//! Unknown keys are errors, reported with the line at fault. See
//! `docs/policy.md` for examples.

use crate::ctx::DirPerms;
use crate::policy::{ArgRules, Limits, Policy, PolicyBuilder};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A policy file that could not be read or is invalid, with its line.
#[derive(Debug, thiserror::Error)]
pub struct PolicyError {
    /// The file's path, as given.
    pub file: String,
    /// The line at fault (1-based; 0 when the file as a whole is at fault).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    commands: BTreeMap<String, CommandEntry>,
    #[serde(default)]
    dirs: Vec<DirEntry>,
    #[serde(default)]
    env: EnvEntry,
    #[serde(default)]
    network: NetworkEntry,
    #[serde(default)]
    jail: JailEntry,
    #[serde(default)]
    limits: LimitsEntry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JailEntry {
    /// `[uid, gid]` on the host.
    run_as: Option<[u32; 2]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandEntry {
    sha256: Option<String>,
    subcommands: Option<Vec<String>>,
    #[serde(default)]
    deny_flags: Vec<String>,
    allow_flags: Option<Vec<String>>,
    #[serde(default)]
    env: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirEntry {
    host: PathBuf,
    guest: Option<String>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    overlap: bool,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    ReadOnly,
    ReadWrite,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvEntry {
    #[serde(default)]
    pass: Vec<String>,
    #[serde(default)]
    set: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkEntry {
    #[serde(default)]
    commands: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsEntry {
    processes: Option<usize>,
    memory_mb: Option<usize>,
    total_memory_mb: Option<u64>,
    wall_time_seconds: Option<u64>,
    cpu_seconds: Option<u64>,
    output_mb: Option<usize>,
    queued_mb: Option<usize>,
    open_files: Option<u64>,
    address_space_mb: Option<u64>,
    handles: Option<usize>,
    audit_mb: Option<u64>,
}

const MB: usize = 1 << 20;

/// Reads a policy file into a builder (more grants may be added to it).
///
/// # Ambient authority
/// Reads the file, resolves its commands in `PATH` and its directories in
/// the host's file system (relative to the file's directory).
///
/// # Errors
/// A [`PolicyError`] naming the line at fault.
pub fn load(path: &Path) -> Result<PolicyBuilder, PolicyError> {
    let text = read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&path.display().to_string(), &text, base, Policy::builder())
}

/// Reads a policy file as `procbridge policy check` does: as [`load`], but
/// a grant that depends on this machine's environment — `[env] pass` of a
/// variable not set here — is left out with a warning instead of refusing
/// the file (the machine that runs the job may well set it; [`load`] there
/// refuses the file when it does not).
///
/// # Errors
/// A [`PolicyError`] naming the line at fault.
pub fn check(path: &Path) -> Result<(PolicyBuilder, Vec<PolicyError>), PolicyError> {
    let text = read(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut warnings = Vec::new();
    let builder = parse_with(
        &path.display().to_string(),
        &text,
        base,
        Policy::builder(),
        Some(&mut warnings),
    )?;
    Ok((builder, warnings))
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.display().to_string(),
        line: 0,
        message: format!("cannot read it: {e}"),
    })
}

/// Parses policy text into `builder`; relative directories are resolved
/// against `base`.
///
/// # Errors
/// A [`PolicyError`] naming the line at fault.
pub fn parse(
    file: &str,
    text: &str,
    base: &Path,
    builder: PolicyBuilder,
) -> Result<PolicyBuilder, PolicyError> {
    parse_with(file, text, base, builder, None)
}

/// [`parse`]; with `warnings`, an `[env] pass` of a variable not set here
/// is one of them instead of an error.
fn parse_with(
    file: &str,
    text: &str,
    base: &Path,
    builder: PolicyBuilder,
    mut warnings: Option<&mut Vec<PolicyError>>,
) -> Result<PolicyBuilder, PolicyError> {
    let at = |line: usize, message: String| PolicyError {
        file: file.to_string(),
        line,
        message,
    };
    let parsed: PolicyFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        at(line, e.message().trim().replace('\n', " "))
    })?;
    // The first line (comments aside) holding one of the needles.
    let line_of = |needles: &[String]| {
        text.lines()
            .position(|l| {
                let code = l.split('#').next().unwrap_or("");
                needles.iter().any(|n| code.contains(n.as_str()))
            })
            .map_or(0, |i| i + 1)
    };

    let mut builder = builder;
    for (name, entry) in &parsed.commands {
        let rules = ArgRules {
            subcommands: entry.subcommands.clone(),
            deny_flags: entry.deny_flags.clone(),
            allow_flags: entry.allow_flags.clone(),
        };
        let line = || line_of(&[format!("commands.{name}"), format!("commands.\"{name}\"")]);
        builder = builder
            .allow_run_with(name, rules, entry.sha256.as_deref())
            .and_then(|b| b.command_env(name, &entry.env))
            .map_err(|e| at(line(), command_error(name, &e)))?;
    }
    for dir in &parsed.dirs {
        let host = base.join(&dir.host);
        let guest = dir
            .guest
            .clone()
            .unwrap_or_else(|| dir.host.display().to_string());
        let perms = match dir.mode {
            Mode::ReadOnly => DirPerms::ReadOnly,
            Mode::ReadWrite => DirPerms::ReadWrite,
        };
        let needle = format!("\"{}\"", dir.host.display());
        let granted = if dir.overlap {
            builder.dir_overlapping(&host, &guest, perms)
        } else {
            builder.dir(&host, &guest, perms)
        };
        builder = granted.map_err(|e| at(line_of(&[needle]), format!("{e:#}")))?;
    }
    for key in &parsed.env.pass {
        let line = || line_of(&[format!("\"{key}\"")]);
        if let Some(warnings) = warnings.as_deref_mut() {
            // Only a valid name that is not set here is a warning.
            Policy::builder()
                .env(key, "")
                .map_err(|e| at(line(), format!("{e:#}")))?;
            if std::env::var_os(key).is_none() {
                warnings.push(at(
                    line(),
                    format!(
                        "environment variable {key}: not set in the host; \
                         `procbridge run` with this policy needs it set"
                    ),
                ));
                continue;
            }
        }
        builder = builder
            .pass_env(key)
            .map_err(|e| at(line(), format!("{e:#}")))?;
    }
    for (key, value) in &parsed.env.set {
        builder = builder
            .env(key, value)
            .map_err(|e| at(line_of(&[key.to_string()]), format!("{e:#}")))?;
    }
    builder = builder.network(parsed.network.commands);
    if let Some([uid, gid]) = parsed.jail.run_as {
        builder = builder
            .run_as(uid, gid)
            .map_err(|e| at(line_of(&["run_as".to_string()]), format!("{e:#}")))?;
    }
    // A limit of 0 would stop the job before it starts, or refuse it
    // everything it needs to do anything: refuse it.
    let l = &parsed.limits;
    let widen = |n: Option<usize>| n.map(|n| n as u64);
    for (key, value, otherwise) in [
        ("processes", widen(l.processes), "the default"),
        ("memory_mb", widen(l.memory_mb), "the default"),
        ("total_memory_mb", l.total_memory_mb, "the default"),
        ("wall_time_seconds", l.wall_time_seconds, "no limit"),
        ("cpu_seconds", l.cpu_seconds, "no limit"),
        ("output_mb", widen(l.output_mb), "the default"),
        ("queued_mb", widen(l.queued_mb), "the default"),
        ("open_files", l.open_files, "the default"),
        ("address_space_mb", l.address_space_mb, "no limit"),
        ("handles", widen(l.handles), "the default"),
        ("audit_mb", l.audit_mb, "the default"),
    ] {
        if value == Some(0) {
            return Err(at(
                line_of(&[key.to_string()]),
                format!("{key} must be at least 1 (leave it out for {otherwise})"),
            ));
        }
    }
    apply_limits(&parsed.limits, builder.limits_mut());
    Ok(builder)
}

/// A command's grant that failed, in the file's words: the library names its
/// builder call (`allow_run("x")`), the file names the command.
fn command_error(name: &str, err: &anyhow::Error) -> String {
    let mut chain = err.chain().map(ToString::to_string).peekable();
    if chain.peek().is_some_and(|c| c.starts_with("allow_run(")) {
        chain.next();
    }
    let why = chain.collect::<Vec<_>>().join(": ");
    if why.starts_with(&format!("command {name}")) {
        why
    } else {
        format!("command {name}: {why}")
    }
}

fn apply_limits(entry: &LimitsEntry, limits: &mut Limits) {
    if let Some(n) = entry.processes {
        limits.max_processes = n;
    }
    if let Some(mb) = entry.memory_mb {
        limits.max_memory_bytes = mb.saturating_mul(MB);
    }
    if let Some(mb) = entry.total_memory_mb {
        limits.max_total_memory_bytes = mb.saturating_mul(MB as u64);
    }
    if let Some(s) = entry.wall_time_seconds {
        limits.wall_time = Some(Duration::from_secs(s));
    }
    if let Some(s) = entry.cpu_seconds {
        limits.cpu_seconds = Some(s);
    }
    if let Some(mb) = entry.output_mb {
        limits.max_output_bytes = mb.saturating_mul(MB);
    }
    if let Some(mb) = entry.queued_mb {
        limits.max_queued_bytes = mb.saturating_mul(MB);
    }
    if let Some(n) = entry.open_files {
        limits.command_open_files = Some(n);
    }
    if let Some(mb) = entry.address_space_mb {
        limits.command_address_space = Some(mb.saturating_mul(MB as u64));
    }
    if let Some(n) = entry.handles {
        limits.max_handles = n;
    }
    if let Some(mb) = entry.audit_mb {
        limits.max_audit_bytes = mb.saturating_mul(MB as u64);
    }
}

/// Explains a policy in plain words, one grant per line.
pub fn explain(policy: &Policy) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("This policy grants:".into());
    let mut any = false;
    for cmd in policy.commands() {
        any = true;
        let mut text = format!("  run {} ({})", cmd.name, cmd.path.display());
        if let Some(subs) = &cmd.args.subcommands {
            text += &format!(", only as: {}", subs.join(", "));
        }
        if !cmd.args.deny_flags.is_empty() {
            text += &format!(
                ", never with: {} (nor their abbreviations)",
                cmd.args.deny_flags.join(", ")
            );
        }
        if let Some(allowed) = &cmd.args.allow_flags {
            text += &format!(", with no options but: {}", allowed.join(", "));
        }
        if !cmd.env.is_empty() {
            text += &format!(", may also receive: {}", cmd.env.join(", "));
        }
        if cmd.is_pinned() {
            text += ", only while its content matches the sha256 pin";
        }
        line(text);
    }
    for dir in policy.dirs() {
        any = true;
        let mode = match dir.perms {
            DirPerms::ReadOnly => "read-only",
            DirPerms::ReadWrite => "read-write",
        };
        let overlap = if dir.overlap {
            " (may overlap a read-write grant: declared intended)"
        } else {
            ""
        };
        line(format!(
            "  directory {} as {}, {mode} (for the guest and the commands it runs){overlap}",
            dir.host.display(),
            dir.guest
        ));
    }
    for (key, value) in policy.env() {
        any = true;
        line(format!("  environment variable {key}={value}"));
    }
    if policy.network() {
        any = true;
        line("  network (TCP) for the commands it runs".into());
    }
    if let Some((uid, gid)) = policy.run_as() {
        any = true;
        line(format!("  commands run as host user {uid}, group {gid}"));
    }
    if !any {
        line("  nothing: the guest can compute and print, and nothing else".into());
    }
    let l = policy.limits();
    line("Limits:".into());
    line(format!(
        "  {} live processes in the whole tree; {} MiB of memory per wasm instance, {} MiB in all",
        l.max_processes,
        l.max_memory_bytes / MB,
        l.max_total_memory_bytes / MB as u64
    ));
    line(format!(
        "  {} MiB of captured output per stream; {} MiB queued per queue or pipe; {} open handles",
        l.max_output_bytes / MB,
        l.max_queued_bytes / MB,
        l.max_handles
    ));
    let or_none = |v: Option<u64>, unit: &str| {
        v.map_or("no limit".to_string(), |v| {
            format!("{v} {unit}").trim_end().to_string()
        })
    };
    line(format!(
        "  wall-clock time: {}; CPU time per process: {}",
        or_none(l.wall_time.map(|d| d.as_secs()), "s"),
        or_none(l.cpu_seconds, "s")
    ));
    line(format!(
        "  open files per command: {}; address space per command: {}",
        or_none(l.command_open_files, ""),
        or_none(l.command_address_space.map(|b| b / MB as u64), "MiB")
    ));
    line(format!(
        "  audit log: at most {} MiB for the whole job",
        l.max_audit_bytes / MB as u64
    ));
    line("Everything else is denied.".into());
    out
}

/// What [`explain`] says, for machines: `grants` (commands with their
/// resolved paths and rules, directories, environment, network, the user
/// commands run as) and `limits`, each named as in a policy file's
/// `[limits]` (`null`: no limit).
pub fn explain_json(policy: &Policy) -> serde_json::Value {
    use serde_json::json;
    let commands: Vec<_> = policy
        .commands()
        .map(|cmd| {
            json!({
                "name": cmd.name,
                "path": cmd.path.display().to_string(),
                "subcommands": cmd.args.subcommands,
                "deny_flags": cmd.args.deny_flags,
                "allow_flags": cmd.args.allow_flags,
                "env": cmd.env,
                "sha256_pinned": cmd.is_pinned(),
            })
        })
        .collect();
    let dirs: Vec<_> = policy
        .dirs()
        .iter()
        .map(|dir| {
            json!({
                "host": dir.host.display().to_string(),
                "guest": dir.guest,
                "mode": match dir.perms {
                    DirPerms::ReadOnly => "read-only",
                    DirPerms::ReadWrite => "read-write",
                },
                "overlap": dir.overlap,
            })
        })
        .collect();
    let env: serde_json::Map<String, serde_json::Value> = policy
        .env()
        .iter()
        .map(|(key, value)| (key.clone(), value.clone().into()))
        .collect();
    let l = policy.limits();
    let mib = |bytes: u64| bytes / MB as u64;
    let seconds = |d: Duration| -> serde_json::Value {
        if d.subsec_nanos() == 0 {
            d.as_secs().into()
        } else {
            d.as_secs_f64().into()
        }
    };
    json!({
        "grants": {
            "commands": commands,
            "dirs": dirs,
            "env": env,
            "network": policy.network(),
            "run_as": policy.run_as().map(|(uid, gid)| [uid, gid]),
        },
        "limits": {
            "processes": l.max_processes,
            "memory_mb": mib(l.max_memory_bytes as u64),
            "total_memory_mb": mib(l.max_total_memory_bytes),
            "wall_time_seconds": l.wall_time.map(seconds),
            "cpu_seconds": l.cpu_seconds,
            "output_mb": mib(l.max_output_bytes as u64),
            "queued_mb": mib(l.max_queued_bytes as u64),
            "open_files": l.command_open_files,
            "address_space_mb": l.command_address_space.map(mib),
            "handles": l.max_handles,
            "audit_mb": mib(l.max_audit_bytes),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Policy, PolicyError> {
        parse("job.toml", text, Path::new("."), Policy::builder()).map(PolicyBuilder::build)
    }

    #[test]
    fn empty_policy_grants_nothing() {
        let policy = parse_str("").unwrap();
        assert_eq!(policy.commands().count(), 0);
        assert!(explain(&policy).contains("nothing"));
    }

    #[test]
    fn full_policy() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
[commands.true]
subcommands = ["status"]
deny_flags = ["-c"]

[commands.sort]

[[dirs]]
host = "{}"
guest = "/work"
mode = "read-write"

[env]
set = {{ MODE = "ci" }}

[network]
commands = true

[limits]
processes = 5
memory_mb = 16
wall_time_seconds = 9
"#,
            dir.path().display()
        );
        let policy = parse_str(&text).unwrap();
        assert_eq!(policy.commands().count(), 2);
        assert_eq!(policy.dirs()[0].guest, "/work");
        assert_eq!(policy.dirs()[0].perms, DirPerms::ReadWrite);
        assert_eq!(policy.env(), &[("MODE".to_string(), "ci".to_string())]);
        assert!(policy.network());
        assert_eq!(policy.limits().max_processes, 5);
        assert_eq!(policy.limits().max_memory_bytes, 16 << 20);
        assert_eq!(policy.limits().wall_time, Some(Duration::from_secs(9)));
        let text = explain(&policy);
        assert!(text.contains("only as: status"), "{text}");
        assert!(text.contains("never with: -c"), "{text}");
        assert!(text.contains("read-write"), "{text}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_str("[limits]\nprocesses = 3\nprocesess = 4\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.to_string().starts_with("job.toml:3: "), "{err}");
        let err = parse_str("\n\n[commands.no-such-command-xyz]\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("not found in PATH"), "{err}");
        let err = parse_str("[[dirs]]\nhost = \"/no/such/dir\"\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse_str("[env]\nset = { LD_PRELOAD = \"x\" }\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse_str("[limits]\n\nwall_time_seconds = 0\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("at least 1"), "{err}");
        let err = parse_str("[limits]\ncpu_seconds = 0\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse_str("[limits]\nprocesses = \"many\"\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err = parse_str("[commands.true]\nsha256 = \"abc\"\n").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        // A quoted absolute path, and a comment that mentions the key first.
        let err = parse_str("\n[commands.\"/no/such/tool\"]\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        let err =
            parse_str("# no LD_PRELOAD here\n[env]\nset = { LD_PRELOAD = \"x\" }\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = parse_str("[env]\npass = [\"PROCBRIDGE_UNSET_XYZ\"]\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("not set in the host"), "{err}");
    }
}
