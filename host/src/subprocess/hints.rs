//! Hints where the sandbox says no: which grant would have let a command
//! through.
//!
//! A command that fails on a path the sandbox hides says so on its stderr,
//! in words its own: `cat: /srv/data/in.csv: No such file or directory`,
//! `sh: 1: curl: Permission denied`, `touch: cannot touch '/work/x':
//! Read-only file system`. [`parse`] finds the path and the error in such
//! a line (the conventions of coreutils, shells and Python), and
//! [`Hints::hint`] compares it with the policy:
//!
//! | the command said | about | the hint |
//! |---|---|---|
//! | `Permission denied` | a program name or file no grant runs | `--allow-run NAME` |
//! | any of the errors | a host path outside every grant (the jail shows none) | `--dir-ro DIR` (or `--dir DIR` to write) |
//! | `Read-only file system`, `Permission denied` | a path in a read-only grant | `--dir HOST` instead of `--dir-ro` |
//! | `Permission denied` | a file of `/etc` not every user may read | none: the jail never shows it |
//!
//! "No such file or directory" is a hint only when the path exists on the
//! host: inside the jail, what no grant shows is simply not there. A line
//! that matches none of these gives nothing. The line comes from a command
//! the guest chose, so a hint quotes what it took from it (`{:?}`) and the
//! number of hints is bounded like denials (see [`crate::audit`]).

use crate::policy::{DirGrant, Policy};
use std::path::{Component, Path, PathBuf};

/// The longest stderr line looked at, in bytes.
pub(crate) const MAX_LINE: usize = 4096;

/// The errors a hint is given for, as `strerror` spells them.
const ERRORS: &[(&str, Error)] = &[
    ("Permission denied", Error::PermissionDenied),
    ("Operation not permitted", Error::NotPermitted),
    ("Read-only file system", Error::ReadOnly),
    ("No such file or directory", Error::NotFound),
];

/// Where `/etc` entries not every user may read are masked.
const ETC: &str = "/etc";
/// System directories: their programs need `--allow-run`, the rest is
/// there read-only for everyone.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Where no path is looked up on the host, and no grant suggested:
/// automounts (looking may mount a network share), devices and kernel
/// state, and what holds the machine's own secrets.
const NEVER_LOOKED_AT: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/run",
    "/boot",
    "/net",
    "/afs",
    "/misc",
    "/root",
    "/media",
    "/lost+found",
];

/// The error a command reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// `EACCES`.
    PermissionDenied,
    /// `EPERM`.
    NotPermitted,
    /// `EROFS`.
    ReadOnly,
    /// `ENOENT`.
    NotFound,
}

impl Error {
    /// How `strerror` spells it (from [`ERRORS`]).
    fn text(self) -> &'static str {
        ERRORS
            .iter()
            .find(|(_, error)| *error == self)
            .map_or("", |(text, _)| text)
    }
}

/// A path (or program name) a command could not use, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Denial {
    pub(crate) path: String,
    pub(crate) error: Error,
}

/// Finds the path and the error in one line of a command's stderr.
///
/// ```text
/// cat: /srv/data/in.csv: No such file or directory      -> /srv/data/in.csv
/// ls: cannot open directory '/root': Permission denied  -> /root
/// sh: 1: curl: Permission denied                        -> curl
/// PermissionError: [Errno 13] Permission denied: '/x'   -> /x
/// ```
pub(crate) fn parse(line: &str) -> Option<Denial> {
    if line.len() > MAX_LINE {
        return None;
    }
    let line = line.trim_end();
    let (at, text, error) = ERRORS
        .iter()
        .filter_map(|&(text, error)| line.rfind(text).map(|at| (at, text, error)))
        .max_by_key(|&(at, _, _)| at)?;
    // Python puts the path after the error; everything else before it.
    let after = line[at + text.len()..].trim_start_matches(':').trim();
    let field = if !after.is_empty() {
        after
    } else {
        let before = line[..at].strip_suffix(' ')?;
        strip_errno(before).trim_end().strip_suffix(':')?
    };
    let path = last_quoted(field)
        .unwrap_or_else(|| last_field(field))
        .trim();
    if path.is_empty() || path.chars().any(char::is_control) {
        return None;
    }
    Some(Denial {
        path: path.to_string(),
        error,
    })
}

/// `... [Errno 13]` without the `[Errno N]`.
fn strip_errno(s: &str) -> &str {
    match s.strip_suffix(']').and_then(|s| s.rsplit_once("[Errno ")) {
        Some((before, n)) if n.bytes().all(|b| b.is_ascii_digit()) => before,
        _ => s,
    }
}

/// The last `'...'`, `"..."`, `‘...’` or `` `...' `` in `s`, even with
/// words after it (`cannot open '/x' for reading`).
fn last_quoted(s: &str) -> Option<&str> {
    let end = s.rfind(['\'', '’', '"'])?;
    let opening: &[char] = match s[end..].chars().next()? {
        '’' => &['‘'],
        '"' => &['"'],
        _ => &['\'', '`'],
    };
    let start = s[..end].rfind(opening)?;
    Some(&s[start + s[start..].chars().next()?.len_utf8()..end])
}

/// What follows the last `": "` (or all of `s`).
fn last_field(s: &str) -> &str {
    s.rsplit_once(": ").map_or(s, |(_, last)| last)
}

/// What the policy grants, for comparing denials with it.
#[derive(Debug)]
pub(crate) struct Hints<'p> {
    policy: &'p Policy,
    /// The command's directory as it sees it, for relative paths.
    cwd: Option<PathBuf>,
}

impl<'p> Hints<'p> {
    pub(crate) fn new(policy: &'p Policy, cwd: Option<&str>) -> Self {
        Hints {
            policy,
            cwd: cwd.map(PathBuf::from),
        }
    }

    /// The grant that would have allowed what `denial` reports, as the
    /// operator's line (without `procbridge: hint: `), or `None`.
    pub(crate) fn hint(&self, command: &str, denial: &Denial) -> Option<String> {
        let said = format!(
            "{command:?} could not use {:?} ({})",
            denial.path,
            denial.error.text()
        );
        if !denial.path.contains('/') {
            return self
                .program_hint(&denial.path, denial.error)
                .map(|h| format!("{said}: {h}"));
        }
        let path = if denial.path.starts_with('/') {
            normalize(Path::new(&denial.path))
        } else {
            normalize(&self.cwd.as_ref()?.join(&denial.path))
        };
        self.path_hint(&path, denial.error)
            .map(|h| format!("{said}: {h}"))
    }

    fn program_hint(&self, name: &str, error: Error) -> Option<String> {
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
        if !plain || error != Error::PermissionDenied || self.policy.resolve_command(name).is_ok() {
            return None;
        }
        in_host_path(name)?;
        Some(format!(
            "the program is not granted (add --allow-run {name})"
        ))
    }

    fn path_hint(&self, path: &Path, error: Error) -> Option<String> {
        if let Some((grant, writable)) = self.grant_of(path) {
            // Only the mount says "read-only"; "Permission denied" in a
            // grant is the host file's own mode.
            return (!writable && error == Error::ReadOnly).then(|| {
                let host = grant.host.display();
                let spec = match grant.guest.as_str() {
                    g if Path::new(g) == grant.host => host.to_string(),
                    g => format!("{host}::{g}"),
                };
                format!("its grant is read-only (add --dir {spec} instead of --dir-ro)")
            });
        }
        let under = |dirs: &[&str]| dirs.iter().any(|d| path.starts_with(d));
        if under(SYSTEM) {
            let runnable = error == Error::PermissionDenied
                && is_executable(path)
                && !self
                    .policy
                    .commands()
                    .any(|c| c.path == path || c.exec_path == path);
            let shown = path.to_str().filter(|p| !p.contains(char::is_whitespace))?;
            return runnable
                .then(|| format!("the program is not granted (add --allow-run {shown})"));
        }
        if path.starts_with(ETC) {
            return (error == Error::PermissionDenied).then(|| {
                "the jail shows only what every user of the machine may read in /etc; \
                 no grant shows it"
                    .to_string()
            });
        }
        // Nothing is looked up where looking is itself an act (automounts,
        // devices, kernel state) or where a grant would be a bad idea.
        if under(NEVER_LOOKED_AT) || has_hidden_part(path) {
            return None;
        }
        let exists = std::fs::symlink_metadata(path).is_ok();
        let dir = match (exists, error) {
            (true, _) if path.is_dir() => path.to_path_buf(),
            (true, _) => path.parent()?.to_path_buf(),
            // Something the command meant to create.
            (false, Error::ReadOnly | Error::PermissionDenied) => existing_ancestor(path)?,
            (false, _) => return None,
        };
        // The directory as a grant must name it: without symbolic links.
        let dir = std::fs::canonicalize(dir).ok()?;
        if !worth_granting(&dir) {
            return None;
        }
        let dir = dir.to_str().filter(|d| !d.contains(char::is_whitespace))?;
        Some(match error {
            Error::ReadOnly => format!("no grant holds it (add --dir {dir})"),
            Error::NotFound => format!("no grant holds it (add --dir-ro {dir})"),
            _ => format!("no grant holds it (add --dir-ro {dir}, or --dir {dir} to write there)"),
        })
    }

    /// The grant `path` lies in (by where commands see it in the jail, or
    /// on the host without one), and whether it is writable.
    fn grant_of(&self, path: &Path) -> Option<(&'p DirGrant, bool)> {
        self.policy
            .dirs()
            .iter()
            .filter(|g| path.starts_with(&g.guest) || path.starts_with(&g.host))
            .max_by_key(|g| g.guest.len())
            .map(|g| (g, g.perms == crate::ctx::DirPerms::ReadWrite))
    }
}

/// `path` with `.` and `..` taken out by their names alone (nothing is
/// resolved on the host).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The closest directory above `path` that exists on the host (a few
/// levels up at most).
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .take(4)
        .find(|p| p.is_dir())
        .map(Path::to_path_buf)
}

/// Whether a part of `path` is hidden (`~/.ssh`, `.git`): never suggested.
fn has_hidden_part(path: &Path) -> bool {
    path.components()
        .any(|c| matches!(c, Component::Normal(p) if p.as_encoded_bytes().starts_with(b".")))
}

/// Whether `dir` (canonical) is narrow enough to suggest as a grant: not
/// `/` or a directory right under it (`/home`, `/var`, `/tmp`), not the
/// user's home itself, nothing hidden.
fn worth_granting(dir: &Path) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    dir.components().count() > 2
        && !has_hidden_part(dir)
        && !under_any(dir, NEVER_LOOKED_AT)
        && home.as_deref() != Some(dir)
}

fn under_any(path: &Path, dirs: &[&str]) -> bool {
    dirs.iter().any(|d| path.starts_with(d))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` as the host's `PATH` finds it.
fn in_host_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .take(64)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory whose name is not hidden (tempfile's are).
    fn scratch() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("pb-hints")
            .tempdir()
            .unwrap()
    }

    fn parsed(line: &str) -> Option<(String, Error)> {
        parse(line).map(|d| (d.path, d.error))
    }

    #[test]
    fn the_usual_spellings_are_understood() {
        use Error::*;
        let cases = [
            (
                "cat: /srv/in.csv: No such file or directory",
                "/srv/in.csv",
                NotFound,
            ),
            (
                "ls: cannot open directory '/root': Permission denied",
                "/root",
                PermissionDenied,
            ),
            ("sh: 1: curl: Permission denied", "curl", PermissionDenied),
            (
                "bash: line 1: /usr/bin/curl: Permission denied",
                "/usr/bin/curl",
                PermissionDenied,
            ),
            (
                "touch: cannot touch '/work/x': Read-only file system",
                "/work/x",
                ReadOnly,
            ),
            (
                "mkdir: cannot create directory ‘/w/d’: Read-only file system",
                "/w/d",
                ReadOnly,
            ),
            (
                "head: cannot open '/x/y' for reading: Permission denied",
                "/x/y",
                PermissionDenied,
            ),
            (
                "sort: cannot read: /etc/shadow: Permission denied",
                "/etc/shadow",
                PermissionDenied,
            ),
            (
                "python3: can't open file '/a/b.py': [Errno 13] Permission denied",
                "/a/b.py",
                PermissionDenied,
            ),
            (
                "PermissionError: [Errno 13] Permission denied: '/etc/shadow'",
                "/etc/shadow",
                PermissionDenied,
            ),
            (
                "chown: changing ownership of 'f': Operation not permitted",
                "f",
                NotPermitted,
            ),
            ("env: ‘ls’: Permission denied\n", "ls", PermissionDenied),
        ];
        for (line, path, error) in cases {
            assert_eq!(parsed(line), Some((path.to_string(), error)), "{line}");
        }
    }

    #[test]
    fn other_lines_give_nothing() {
        for line in [
            "",
            "hello",
            "Permission denied",
            ": Permission denied",
            "grep: : No such file or directory",
            "x: a\u{1b}[2Jb: Permission denied",
            &format!("x: /{}: Permission denied", "a".repeat(MAX_LINE)),
        ] {
            assert_eq!(parsed(line), None, "{line:?}");
        }
    }

    #[test]
    fn paths_are_normalized_by_name() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../../etc")), PathBuf::from("/etc"));
    }

    fn hint(policy: &Policy, line: &str) -> Option<String> {
        Hints::new(policy, None).hint("cmd", &parse(line)?)
    }

    #[test]
    fn a_hidden_host_path_names_its_directory() {
        let dir = scratch();
        let file = dir.path().join("in.csv");
        std::fs::write(&file, "1").unwrap();
        let policy = Policy::default();
        let line = format!("cat: {}: No such file or directory", file.display());
        let d = dir.path().canonicalize().unwrap();
        let d = d.display();
        assert_eq!(
            hint(&policy, &line).as_deref(),
            Some(
                format!(
                    "\"cmd\" could not use {:?} (No such file or directory): no grant holds it \
                     (add --dir-ro {d})",
                    file.display().to_string()
                )
                .as_str()
            )
        );
        let denied = format!("cat: {}: Permission denied", file.display());
        assert!(hint(&policy, &denied)
            .unwrap()
            .ends_with(&format!("(add --dir-ro {d}, or --dir {d} to write there)")));
        // Absent on the host too: a plain missing file.
        let gone = format!(
            "cat: {}/nope: No such file or directory",
            dir.path().display()
        );
        assert_eq!(hint(&policy, &gone), None);
        // Something to create in a hidden directory.
        let create = format!("touch: cannot touch '{d}/new': Read-only file system");
        assert!(hint(&policy, &create)
            .unwrap()
            .ends_with(&format!("(add --dir {d})")));
    }

    #[test]
    fn a_read_only_grant_says_how_to_write() {
        let dir = scratch();
        let policy = Policy::builder()
            .dir(dir.path(), "/data", crate::ctx::DirPerms::ReadOnly)
            .unwrap()
            .build();
        let line = "touch: cannot touch '/data/x': Read-only file system";
        let h = hint(&policy, line).unwrap();
        let spec = format!("{}::/data", dir.path().display());
        assert!(
            h.ends_with(&format!("(add --dir {spec} instead of --dir-ro)")),
            "{h}"
        );
        // A missing file in a grant is the command's own business.
        assert_eq!(
            hint(&policy, "cat: /data/y: No such file or directory"),
            None
        );
    }

    #[test]
    fn relative_paths_are_taken_from_the_commands_directory_or_not_at_all() {
        let dir = scratch();
        let policy = Policy::builder()
            .dir(dir.path(), "/data", crate::ctx::DirPerms::ReadOnly)
            .unwrap()
            .build();
        let denial = parse("touch: cannot touch 'out/../x': Read-only file system").unwrap();
        let in_data = Hints::new(&policy, Some("/data")).hint("touch", &denial);
        assert!(
            in_data.unwrap().ends_with("instead of --dir-ro)"),
            "the grant of /data/x"
        );
        // Without the directory it started in, a relative path names nothing.
        assert_eq!(Hints::new(&policy, None).hint("touch", &denial), None);
    }

    #[test]
    fn broad_hidden_and_special_places_are_never_suggested() {
        let policy = Policy::default();
        let home = scratch();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        std::fs::write(ssh.join("id_rsa"), "k").unwrap();
        for line in [
            // A directory right under the root, and something to create there.
            "cat: /tmp: Permission denied".to_string(),
            "mkdir: cannot create directory '/home/nobody-313': Read-only file system".to_string(),
            // Hidden, automounted, kernel state.
            format!("cat: {}/id_rsa: No such file or directory", ssh.display()),
            "cat: /net/example.org/x: No such file or directory".to_string(),
            "cat: /sys/kernel/x: Permission denied".to_string(),
            "cat: /run/docker.sock: Permission denied".to_string(),
        ] {
            assert_eq!(hint(&policy, &line), None, "{line}");
        }
    }

    #[test]
    fn programs_and_secrets() {
        let policy = Policy::default();
        let h = hint(&policy, "sh: 1: ls: Permission denied").unwrap();
        assert!(h.ends_with("(add --allow-run ls)"), "{h}");
        assert_eq!(
            hint(&policy, "sh: 1: no-such-program-313: Permission denied"),
            None
        );
        assert_eq!(hint(&policy, "sh: 1: l s: Permission denied"), None);
        let h = hint(&policy, "cat: /etc/shadow: Permission denied").unwrap();
        assert!(h.contains("no grant shows it"), "{h}");
        let ls = in_host_path("ls").unwrap();
        let h = hint(&policy, &format!("sh: {}: Permission denied", ls.display())).unwrap();
        assert!(
            h.ends_with(&format!("(add --allow-run {})", ls.display())),
            "{h}"
        );
        let granted = Policy::builder().allow_run("ls").unwrap().build();
        assert_eq!(hint(&granted, "sh: 1: ls: Permission denied"), None);
    }
}
