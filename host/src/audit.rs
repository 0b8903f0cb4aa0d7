//! The audit log: one JSON line per spawn, exit, kill, denial and limit hit.
//!
//! The CLI opens it with `--audit FILE` before the guest starts; the file is
//! opened append-only and close-on-exec, so every process of the tree
//! (forked guests inherit it) appends to the same log and spawned commands
//! never see it. Each record is written with one `write`, so lines from
//! different processes do not interleave.
//!
//! ```json
//! {"time":1764177000.12,"pid":4242,"ppid":4241,"event":"spawn","command":"/usr/bin/sort","argv":["sort"],"env_keys":["LANG"],"child":4243}
//! {"time":1764177000.19,"pid":4242,"ppid":4241,"event":"denied","outcome":"run \"curl\": not granted (add --allow-run curl)"}
//! ```
//!
//! Denials and limit hits are also one clear line on stderr for the
//! operator, whether or not an audit log is open.

use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

static LOG: OnceLock<File> = OnceLock::new();

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A process (command, guest process or fork child) was started.
    Spawn,
    /// A process ended (`outcome` has its status).
    Exit,
    /// The host killed a process (timeout, terminate, limit).
    Kill,
    /// The policy refused something.
    Denied,
    /// A limit was reached.
    Limit,
}

/// One audit record. Build it with [`Event::new`] and the setters, then
/// [`Event::record`].
#[derive(Debug, Serialize)]
pub struct Event {
    time: f64,
    pid: u32,
    ppid: u32,
    event: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argv: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    child: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
}

impl Event {
    /// A record of `kind`, stamped with the time and this process's ids.
    pub fn new(kind: Kind) -> Event {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Event {
            time,
            pid: std::process::id(),
            ppid: std::os::unix::process::parent_id(),
            event: kind,
            command: None,
            argv: None,
            env_keys: None,
            child: None,
            outcome: None,
        }
    }

    /// The command (its name or path).
    pub fn command(mut self, command: impl Into<String>) -> Event {
        self.command = Some(command.into());
        self
    }

    /// Its arguments.
    pub fn argv(mut self, argv: &[String]) -> Event {
        self.argv = Some(argv.to_vec());
        self
    }

    /// The names (never the values) of its environment variables.
    pub fn env_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Event {
        self.env_keys = Some(keys.into_iter().map(str::to_string).collect());
        self
    }

    /// The pid of the process it is about.
    pub fn child(mut self, pid: u32) -> Event {
        self.child = Some(pid);
        self
    }

    /// How it ended, or why it was refused.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Event {
        self.outcome = Some(outcome.into());
        self
    }

    /// Appends the record to the audit log, if one is open. Denials and
    /// limit hits are also printed on stderr as one line.
    pub fn record(self) {
        let what = self.outcome.as_deref().unwrap_or("");
        match self.event {
            Kind::Denied => eprintln!("procbridge: denied: {what}"),
            Kind::Limit => eprintln!("procbridge: limit: {what}"),
            _ => {}
        }
        self.record_quietly();
    }

    /// Appends the record to the audit log, if one is open, printing
    /// nothing.
    pub fn record_quietly(self) {
        if let Some(mut file) = LOG.get() {
            if let Ok(mut line) = serde_json::to_vec(&self) {
                line.push(b'\n');
                // One write: O_APPEND keeps concurrent records whole.
                let _ = file.write_all(&line);
            }
        }
    }
}

/// Opens the audit log for this process and every process it forks.
///
/// # Ambient authority
/// Opens `path` for appending.
///
/// # Errors
/// When the file cannot be opened, or a log is already open.
pub fn open(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    LOG.set(file).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::AlreadyExists, "audit log already open")
    })
}

/// Whether an audit log is open.
pub fn is_open() -> bool {
    LOG.get().is_some()
}
