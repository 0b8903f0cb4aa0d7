//! The host's own diagnostics: [`tracing`] events as lines on stderr, and
//! a watcher of long compilations (the CLI's progress line).
//!
//! This is apart from the audit log (`--audit`), which records what the
//! guests did; diagnostics say what procbridge itself did: what it granted
//! and resolved, which confinement layers are on, what the module cache
//! did (at `info`, `procbridge -v`), every process it started (at `debug`,
//! `-vv`). By default only warnings are shown; `RUST_LOG` filters as
//! usual (`RUST_LOG=procbridge::cache=debug`) when no `-v`/`-q` is given.
//! The events are emitted by the library whatever subscriber the embedder
//! installs; [`init`] installs procbridge's own.
//!
//! # Fork children
//!
//! Host calls fork the process (`os.fork`, `Process`, pool workers) while
//! other threads of the parent run: Tokio's I/O thread, the watchdogs,
//! wasmtime's. A fork child has only the forking thread, and any lock one
//! of the others held at the fork stays held forever in the child. Events
//! are emitted in children too (a pool worker starting a command), so the
//! subscriber [`init`] installs takes no lock on the path of an event, in
//! the parent or in a child:
//!
//! * **No `Stderr` lock.** A line is formatted into a buffer of its own and
//!   written with `write(2)` straight to file descriptor 2 (one call,
//!   retried only when the kernel wrote part of it), never through
//!   `std::io::stderr()`, whose lock another thread may have held at the
//!   fork (the same single write keeps lines of concurrent processes
//!   whole).
//! * **No span storage.** The subscriber keeps no spans (no registry: its
//!   slab registers threads under a lock); spans are disabled and events
//!   say what they are about in their own words.
//! * **Static filters only.** `EnvFilter` takes read-write locks for
//!   directives that match spans or field values (`target[span{f=v}]`);
//!   such directives in `RUST_LOG` are refused (one warning) and the rest
//!   used. Level and target directives are looked up without locks.
//!
//! What remains is what any host call in a child already does: allocating
//! (glibc's allocator is made consistent across `fork` by its own fork
//! handlers) and tracing-core's callsite registry, which registers a
//! callsite with atomic operations (a callsite that another thread was
//! registering at the fork is asked about at each event instead).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;

/// How much procbridge says on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors and warnings only; no progress line, no notices.
    Quiet = 0,
    /// Warnings (the default).
    Normal = 1,
    /// `-v`: what was granted and resolved, confinement, the module cache.
    Verbose = 2,
    /// `-vv`: and every process started.
    Debug = 3,
    /// `-vvv`: everything procbridge traces.
    Trace = 4,
}

impl Verbosity {
    /// From the count of `-v` flags.
    pub fn from_count(count: u8) -> Verbosity {
        match count {
            0 => Verbosity::Normal,
            1 => Verbosity::Verbose,
            2 => Verbosity::Debug,
            _ => Verbosity::Trace,
        }
    }

    /// The filter directives of this level: procbridge's own events at the
    /// level asked for, other crates' warnings.
    fn directives(self) -> &'static str {
        match self {
            Verbosity::Quiet => "warn",
            Verbosity::Normal => "warn",
            Verbosity::Verbose => "warn,procbridge=info",
            Verbosity::Debug => "warn,procbridge=debug",
            Verbosity::Trace => "warn,procbridge=trace",
        }
    }
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

/// The verbosity [`init`] was given ([`Verbosity::Normal`] before).
pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        2 => Verbosity::Verbose,
        3 => Verbosity::Debug,
        _ => Verbosity::Trace,
    }
}

/// Installs procbridge's subscriber (see the module docs) as the global
/// default: events as lines on stderr, `procbridge: LEVEL: message`.
///
/// `flag` is the verbosity chosen on the command line, if any: it decides
/// the filter; without one, `RUST_LOG` does when set (directives on spans
/// or fields are dropped with a warning), else warnings only.
///
/// # Ambient authority
/// Reads `RUST_LOG`.
pub fn init(flag: Option<Verbosity>) {
    let verbosity = flag.unwrap_or(Verbosity::Normal);
    VERBOSITY.store(verbosity as u8, Ordering::Relaxed);
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let filter = match (flag, rust_log) {
        (None, Some(spec)) => from_rust_log(&spec),
        _ => None,
    }
    .unwrap_or_else(|| parse(verbosity.directives()).unwrap_or_default());
    let subscriber = Lines.with(filter);
    // Already set (by an embedder, or a second call): theirs stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

fn parse(directives: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .parse(directives)
        .map_err(|e| e.to_string())
}

/// The filter of `RUST_LOG`, without the directives that would need
/// locks (see the module docs); `None` (with a warning) when it does not
/// parse.
fn from_rust_log(spec: &str) -> Option<EnvFilter> {
    let (dynamic, kept): (Vec<&str>, Vec<&str>) = directives(spec)
        .into_iter()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .partition(|d| d.contains('[') || d.contains('{'));
    if !dynamic.is_empty() {
        write_line(&format!(
            "procbridge: warning: RUST_LOG: filters on spans or fields are not supported, \
             ignored: {}\n",
            dynamic.join(",")
        ));
    }
    match parse(&kept.join(",")) {
        Ok(filter) => Some(filter),
        Err(e) => {
            write_line(&format!(
                "procbridge: warning: RUST_LOG={spec:?} is not a valid filter ({e}): ignored\n"
            ));
            None
        }
    }
}

/// The directives of `spec`: split at the commas outside `[...]` and
/// `{...}` (`target[span{a=1,b=2}]=debug` is one directive).
fn directives(spec: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in spec.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&spec[start..]);
    out
}

/// The subscriber: no spans, each event one line on stderr (see the
/// module docs on why nothing here takes a lock).
struct Lines;

impl Subscriber for Lines {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() {
            Interest::never()
        } else {
            Interest::always()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Events, and the hints of `tracing::enabled!`.
        !metadata.is_span()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // The filter layered on top decides.
        None
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        // Never called for an enabled span: spans are disabled.
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        write_line(&format_event(event));
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// `procbridge: LEVEL: [TARGET: ]MESSAGE key=value...` and a newline;
/// control characters (which a guest's names could carry) escaped.
fn format_event(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let level = match *meta.level() {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    };
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut body = String::new();
    if !meta.target().starts_with("procbridge") {
        body.push_str(meta.target());
        body.push_str(": ");
    }
    body.push_str(&fields.message);
    match fields.message.is_empty() {
        true => body.push_str(fields.rest.trim_start()),
        false => body.push_str(&fields.rest),
    }
    let mut line = String::with_capacity(body.len() + 32);
    if STATUS_LINE.load(Ordering::Relaxed) {
        // A progress line is on the terminal: this line replaces it (it is
        // drawn again below on its next tick).
        line.push_str(CLEAR_LINE);
    }
    line.push_str("procbridge: ");
    line.push_str(level);
    line.push_str(": ");
    for c in body.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line.push('\n');
    line
}

/// An event's message and its other fields (` key=value`).
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

/// Erases the terminal's current line: back to its start, clear it.
pub const CLEAR_LINE: &str = "\r\x1b[2K";

/// Whether a progress line is on stderr now (see [`set_status_line`]).
static STATUS_LINE: AtomicBool = AtomicBool::new(false);

/// Says whether a progress line is on stderr now: while one is, each
/// diagnostic line first erases it.
pub fn set_status_line(shown: bool) {
    STATUS_LINE.store(shown, Ordering::Relaxed);
}

/// Prints `procbridge: warning: MESSAGE` on stderr, as a diagnostic line
/// is (erasing a progress line first; no lock).
pub(crate) fn warning(message: &str) {
    let clear = if STATUS_LINE.load(Ordering::Relaxed) {
        CLEAR_LINE
    } else {
        ""
    };
    write_line(&format!("{clear}procbridge: warning: {message}\n"));
}

/// The longest line [`write_line`] writes: `PIPE_BUF`, what the kernel
/// writes to a pipe in one piece, never interleaved with other writers.
const MAX_LINE: usize = libc::PIPE_BUF;

/// What ends a line cut at [`MAX_LINE`].
const CUT: &str = "…\n";

/// `text`, or when it is longer than [`MAX_LINE`] bytes its start (cut at
/// a character's boundary) and [`CUT`]: at most [`MAX_LINE`] bytes.
fn capped(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_LINE {
        return text.into();
    }
    let mut end = MAX_LINE - CUT.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end]).into()
}

/// Writes `text` to file descriptor 2 with `write(2)`: no lock, one call
/// unless the kernel takes only part of it (see the module docs); a line
/// longer than `PIPE_BUF` is cut to it (ending `…`), so that it stays one
/// write on a pipe, never interleaved with another process's lines.
pub fn write_line(text: &str) {
    let text = capped(text);
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        // SAFETY: writes bytes of a live buffer to fd 2.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        rest = &rest[n as usize..];
    }
}

/// Says what `policy` grants, resolved (at `info`): each command and the
/// file it resolved to, each directory and where the guest sees it, the
/// environment's names, the network.
pub(crate) fn granted(policy: &crate::Policy) {
    if !tracing::enabled!(Level::INFO) {
        return;
    }
    let mut any = false;
    for command in policy.commands() {
        any = true;
        let runs = if command.exec_path == command.path {
            String::new()
        } else {
            format!(" (runs {})", command.exec_path.display())
        };
        tracing::info!(
            "granted: command {:?}, resolved to {}{runs}",
            command.name,
            command.path.display()
        );
    }
    for dir in policy.dirs() {
        any = true;
        tracing::info!(
            "granted: directory {}, {}, seen by the guest as {}",
            dir.host.display(),
            match dir.perms {
                crate::DirPerms::ReadOnly => "read-only",
                crate::DirPerms::ReadWrite => "read-write",
            },
            dir.guest
        );
    }
    if !policy.env().is_empty() {
        any = true;
        let names: Vec<&str> = policy.env().iter().map(|(k, _)| k.as_str()).collect();
        tracing::info!("granted: environment variables {}", names.join(", "));
    }
    if policy.network() {
        any = true;
        tracing::info!("granted: the network, to commands");
    }
    if !any {
        tracing::info!("granted: nothing (no commands, directories, environment or network)");
    }
}

/// A module being compiled, as a watcher is told ([`watch_compiles`]).
#[derive(Clone, Debug)]
pub struct Compile {
    /// The name it is loaded under (its path, for a file).
    pub name: String,
    /// Its size in bytes (of the wasm binary).
    pub bytes: u64,
}

/// What became of a compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compiled {
    /// Compiled and stored in the module cache.
    Cached,
    /// Compiled, not stored (no cache, or it could not be written).
    NotCached,
    /// Not compiled: the module is invalid.
    Failed,
}

/// What a watcher is told about a compilation on its thread.
#[derive(Debug)]
pub enum CompileEvent<'a> {
    /// A module is about to be compiled.
    Started(&'a Compile),
    /// It was compiled (and stored), or failed, after this long.
    Finished(&'a Compile, Compiled, Duration),
}

type Watcher = Box<dyn FnMut(CompileEvent<'_>)>;

thread_local! {
    static WATCHER: RefCell<Option<Watcher>> = const { RefCell::new(None) };
}

/// Runs `work`, telling `watcher` about every module compiled on this
/// thread meanwhile (a cache hit compiles nothing, so says nothing). The
/// CLI draws its progress line with it.
pub fn watch_compiles<R>(
    watcher: impl FnMut(CompileEvent<'_>) + 'static,
    work: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<Watcher>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            WATCHER.with(|w| *w.borrow_mut() = previous);
        }
    }
    let previous = WATCHER.with(|w| w.borrow_mut().replace(Box::new(watcher)));
    let _restore = Restore(previous);
    work()
}

fn tell(event: CompileEvent<'_>) {
    WATCHER.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            if let Some(watcher) = w.as_mut() {
                watcher(event);
            }
        }
    });
}

/// A compilation under way: the watcher has been told it started; it is
/// told how it ended by [`finish`](Compiling::finish) (or `Failed` when
/// dropped without).
pub(crate) struct Compiling {
    compile: Compile,
    started: Instant,
    finished: bool,
}

/// Starts telling of the compilation of module `name` (`bytes` long).
pub(crate) fn compiling(name: &str, bytes: usize) -> Compiling {
    let compile = Compile {
        name: name.to_string(),
        bytes: bytes as u64,
    };
    tracing::debug!(
        "compiling {} ({})",
        compile.name,
        crate::diag::size(compile.bytes)
    );
    tell(CompileEvent::Started(&compile));
    Compiling {
        compile,
        started: Instant::now(),
        finished: false,
    }
}

impl Compiling {
    /// Tells how it ended.
    pub(crate) fn finish(mut self, outcome: Compiled) {
        self.finished = true;
        self.end(outcome);
    }

    fn end(&self, outcome: Compiled) {
        let took = self.started.elapsed();
        match outcome {
            Compiled::Failed => {}
            Compiled::Cached => tracing::info!(
                "compiled {} in {:.2}s and stored it in the module cache",
                self.compile.name,
                took.as_secs_f64()
            ),
            Compiled::NotCached => tracing::info!(
                "compiled {} in {:.2}s (not cached)",
                self.compile.name,
                took.as_secs_f64()
            ),
        }
        tell(CompileEvent::Finished(&self.compile, outcome, took));
    }
}

impl Drop for Compiling {
    fn drop(&mut self) {
        if !self.finished {
            self.end(Compiled::Failed);
        }
    }
}

/// A size for people: `512 B`, `3.4 KB`, `26.3 MB`, `1.2 GB` (powers of
/// 1000, as `ls -h --si` and the docs say).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_still_shows_warnings() {
        let hint = |v: Verbosity| parse(v.directives()).unwrap().max_level_hint();
        assert_eq!(hint(Verbosity::Quiet), Some(LevelFilter::WARN));
        assert_eq!(hint(Verbosity::Normal), Some(LevelFilter::WARN));
    }

    #[test]
    fn rust_log_splits_at_commas_outside_brackets() {
        assert_eq!(
            directives("a[s{x=1,y=2}]=debug,b=info"),
            ["a[s{x=1,y=2}]=debug", "b=info"]
        );
        assert_eq!(directives("warn,b"), ["warn", "b"]);
    }

    #[test]
    fn long_lines_are_cut_at_pipe_buf() {
        let long = format!("{}\n", "é".repeat(MAX_LINE));
        let cut = capped(&long);
        assert!(cut.len() <= MAX_LINE, "{}", cut.len());
        assert!(cut.ends_with("é…\n"));
        assert_eq!(capped("short\n"), "short\n");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1000), "1.0 KB");
        assert_eq!(size(26_267_204), "26.3 MB");
        assert_eq!(size(999_990_000), "1.0 GB");
    }

    #[test]
    fn watchers_are_told_on_their_thread_and_restored() {
        use std::cell::Cell;
        use std::rc::Rc;
        let seen = Rc::new(Cell::new(0));
        let counted = seen.clone();
        watch_compiles(
            move |event| {
                if let CompileEvent::Finished(compile, outcome, _) = event {
                    assert_eq!(compile.name, "m");
                    assert_eq!(outcome, Compiled::NotCached);
                    counted.set(counted.get() + 1);
                }
            },
            || compiling("m", 10).finish(Compiled::NotCached),
        );
        // No watcher any more.
        compiling("m", 10).finish(Compiled::NotCached);
        assert_eq!(seen.get(), 1);
    }
}
