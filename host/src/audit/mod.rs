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
//! operator, whether or not an audit log is open. Every one of them goes
//! through [`Event::record`] (the helpers [`denied`] and [`limit`] wrap
//! it), which applies the bounds below to the log and to stderr alike.
//!
//! # Bounds
//!
//! A guest chooses much of what is recorded (command lines, names), so
//! nothing it does can make the log, or the operator's terminal, grow
//! without bound:
//!
//! * **Fields.** A string (a command, an argument, an outcome) keeps its
//!   first [`MAX_FIELD`] bytes, a list (`argv`, `env_keys`) its first
//!   [`MAX_ITEMS`] items. A record with anything cut says
//!   `"truncated":true` and gives the original size next to the field:
//!   `"outcome_bytes"`, `"command_bytes"`, `"target_bytes"` (bytes),
//!   `"argv_len"`, `"env_keys_len"` (items) and `"argv_bytes"` (bytes of
//!   all the arguments).
//! * **Rate.** Each process records denials and limit hits at most
//!   [`RATE_BURST`] per [`RATE_WINDOW`], and one identical (same event and
//!   outcome) to the last it recorded, less than [`RATE_WINDOW`] after it,
//!   is only counted. The next record written says how many were left out
//!   before it (`"suppressed":N`), as does its stderr line; a count still
//!   pending when the process ends is a record of its own,
//!   `{"event":"suppressed","suppressed":N}`. Hints (`Kind::Hint`) have a
//!   budget of their own, as many per window, beyond which they are
//!   dropped: text a command chose never takes a denial's room. (The
//!   limiter is per process:
//!   a tree of N processes may write N times as many lines, within the size
//!   cap.)
//! * **Size.** The log of a job holds at most the size given to [`open`]
//!   (`Limits::max_audit_bytes`: `--max-audit`, `audit_mb`), counted for the
//!   whole tree in a shared mapping. The record that does not fit is
//!   replaced by one `{"event":"truncated",...}` record, and nothing more is
//!   written. (A record another process had already started to write may
//!   still land after it.)

mod log;
mod rate;

pub(crate) use log::record_limit_in_signal_handler;
pub use log::{is_open, open};
pub use rate::flush_suppressed;

use crate::errno::BridgeError;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// The most bytes of one string field that are recorded.
pub const MAX_FIELD: usize = 4096;

/// The most items of one list field that are recorded.
pub const MAX_ITEMS: usize = 64;

/// The rate limiter's window (see the module docs).
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Denials and limit hits one process records per [`RATE_WINDOW`].
pub const RATE_BURST: u32 = 10;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
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
    /// A command failed on something a grant would allow (`outcome` names
    /// the grant; see `subprocess::hints`).
    Hint,
    /// Denials and limit hits left out by the rate limit (`suppressed`).
    Suppressed,
    /// The log reached its size cap; nothing more is written.
    Truncated,
    /// A worker ran a chunk of a job's tasks sent from another machine
    /// (`target`: the task export; `command`: the job and who runs it;
    /// `outcome`: the module's SHA-256).
    RemoteTask,
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
    start: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argv: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argv_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argv_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_keys: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_keys_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    child: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// A record of `kind` that only the log takes (a spawn, an exit, a kill),
/// or `None` when no log is open: such records are made on every fork,
/// reap and command, where stamping and filling one for nothing costs two
/// system calls, a clock read and an allocation or two.
///
/// ```ignore
/// if let Some(event) = audit::logged(audit::Kind::Exit) {
///     event.child(pid).outcome("exit code 0").record();
/// }
/// ```
pub fn logged(kind: Kind) -> Option<Event> {
    is_open().then(|| Event::new(kind))
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
            start: None,
            method: None,
            target: None,
            target_bytes: None,
            command: None,
            command_bytes: None,
            argv: None,
            argv_len: None,
            argv_bytes: None,
            env_keys: None,
            env_keys_len: None,
            child: None,
            outcome: None,
            outcome_bytes: None,
            suppressed: None,
            truncated: false,
        }
    }

    /// A string field, cut to [`MAX_FIELD`]; the original length when cut.
    fn bounded(&mut self, s: &str) -> (String, Option<usize>) {
        if s.len() <= MAX_FIELD {
            return (s.to_string(), None);
        }
        self.truncated = true;
        (cut(s, MAX_FIELD).to_string(), Some(s.len()))
    }

    /// A list field, cut to [`MAX_ITEMS`] items of at most [`MAX_FIELD`]
    /// bytes; whether anything was cut.
    fn bounded_list<'a>(
        &mut self,
        items: impl ExactSizeIterator<Item = &'a str>,
    ) -> (Vec<String>, bool) {
        let mut cut_any = items.len() > MAX_ITEMS;
        let kept = items
            .take(MAX_ITEMS)
            .map(|item| {
                cut_any |= item.len() > MAX_FIELD;
                cut(item, MAX_FIELD).to_string()
            })
            .collect();
        self.truncated |= cut_any;
        (kept, cut_any)
    }

    /// How a guest process was started: `"fork"` (`os.fork`), `"process"`
    /// (with [`Event::method`] and [`Event::target`]) or `"pool_worker"`.
    pub fn start(mut self, how: &'static str) -> Event {
        self.start = Some(how);
        self
    }

    /// A `Process`'s start method: `"fork"` or `"spawn"`.
    pub fn method(mut self, method: &'static str) -> Event {
        self.method = Some(method);
        self
    }

    /// The task a `Process` runs.
    pub fn target(mut self, target: impl AsRef<str>) -> Event {
        let (target, bytes) = self.bounded(target.as_ref());
        (self.target, self.target_bytes) = (Some(target), bytes);
        self
    }

    /// The command (its name or path).
    pub fn command(mut self, command: impl AsRef<str>) -> Event {
        let (command, bytes) = self.bounded(command.as_ref());
        (self.command, self.command_bytes) = (Some(command), bytes);
        self
    }

    /// Its arguments.
    pub fn argv(mut self, argv: &[String]) -> Event {
        let (kept, cut_any) = self.bounded_list(argv.iter().map(String::as_str));
        if cut_any {
            self.argv_len = Some(argv.len());
            self.argv_bytes = Some(argv.iter().map(String::len).sum());
        }
        self.argv = Some(kept);
        self
    }

    /// The names (never the values) of its environment variables.
    pub fn env_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Event {
        let keys: Vec<&str> = keys.into_iter().collect();
        let (kept, cut_any) = self.bounded_list(keys.iter().copied());
        if cut_any {
            self.env_keys_len = Some(keys.len());
        }
        self.env_keys = Some(kept);
        self
    }

    /// The pid of the process it is about.
    pub fn child(mut self, pid: u32) -> Event {
        self.child = Some(pid);
        self
    }

    /// How it ended, or why it was refused.
    pub fn outcome(mut self, outcome: impl AsRef<str>) -> Event {
        let (outcome, bytes) = self.bounded(outcome.as_ref());
        (self.outcome, self.outcome_bytes) = (Some(outcome), bytes);
        self
    }

    /// Appends the record to the audit log, if one is open. Denials and
    /// limit hits are also printed on stderr as one line; both go through
    /// the rate limit (see the module docs).
    pub fn record(mut self) {
        if self.event == Kind::Hint {
            if rate::admit_hint() {
                write_stderr(self.stderr_line().as_bytes());
                self.write();
            }
            return;
        }
        if matches!(self.event, Kind::Denied | Kind::Limit) {
            let outcome = self.outcome.as_deref().unwrap_or("");
            let suppressed = match rate::admit(self.event, outcome) {
                Some(suppressed) => suppressed,
                None => return,
            };
            if suppressed > 0 {
                self.suppressed = Some(suppressed);
            }
            write_stderr(self.stderr_line().as_bytes());
        }
        self.write();
    }

    /// Appends the record to the audit log, if one is open, printing
    /// nothing and bypassing the rate limit (for a record that ends the
    /// job, such as the wall-clock limit).
    pub fn record_quietly(self) {
        self.write();
    }

    /// The operator's line for a denial or a limit hit.
    fn stderr_line(&self) -> String {
        let kind = match self.event {
            Kind::Denied => "denied",
            Kind::Hint => "hint",
            _ => "limit",
        };
        let mut line = format!(
            "procbridge: {kind}: {}",
            self.outcome.as_deref().unwrap_or("")
        );
        if let Some(bytes) = self.outcome_bytes {
            line += &format!(" [cut to {MAX_FIELD} of {bytes} bytes]");
        }
        if let Some(n) = self.suppressed {
            line += &format!(" ({n} more denials and limit hits not shown)");
        }
        line.push('\n');
        line
    }

    fn write(&self) {
        if !is_open() {
            return;
        }
        let Ok(mut line) = serde_json::to_vec(self) else {
            return;
        };
        line.push(b'\n');
        log::append(&line);
    }
}

/// Records `err` as a denial of the policy (see [`Event::record`]) and
/// returns it: `return Err(audit::denied(BridgeError::denied(...)))`.
pub fn denied(err: BridgeError) -> BridgeError {
    Event::new(Kind::Denied).outcome(&err.message).record();
    err
}

/// Records `err` as a limit hit (see [`Event::record`]) and returns it.
pub fn limit(err: BridgeError) -> BridgeError {
    Event::new(Kind::Limit).outcome(&err.message).record();
    err
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn write_stderr(bytes: &[u8]) {
    // One write, so the line stays whole among other processes' output.
    let _ = std::io::stderr().lock().write_all(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_on_character_boundaries_with_their_size() {
        let long = "é".repeat(MAX_FIELD); // 2 bytes each
        let argv: Vec<String> = (0..100).map(|i| format!("{i}{long}")).collect();
        let event = Event::new(Kind::Spawn)
            .command(&long)
            .argv(&argv)
            .env_keys(["A", "B"]);
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(json["truncated"], true);
        assert_eq!(json["command_bytes"], 2 * MAX_FIELD);
        assert_eq!(json["command"].as_str().unwrap().len(), MAX_FIELD);
        assert_eq!(json["argv"].as_array().unwrap().len(), MAX_ITEMS);
        assert_eq!(json["argv_len"], 100);
        let total: usize = argv.iter().map(String::len).sum();
        assert_eq!(json["argv_bytes"], total);
        // "0" + 2047 full characters, and not half of the next one.
        assert_eq!(json["argv"][0].as_str().unwrap().len(), MAX_FIELD - 1);
        assert!(json.get("env_keys_len").is_none());

        let small = serde_json::to_value(Event::new(Kind::Exit).outcome("ok")).unwrap();
        assert!(small.get("truncated").is_none());
        assert!(small.get("outcome_bytes").is_none());
    }
}
