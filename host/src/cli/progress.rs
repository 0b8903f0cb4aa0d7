//! The progress line on stderr while a module compiles: compiling CPython
//! takes seconds, and silence looks like a hang.
//!
//! Only on a terminal (stderr a tty) and not with `-q`; nothing at all
//! when the work ends within [`DELAY`]. The line is drawn by a thread of
//! its own ([`Line`]) with `\r` and erase-line, and finished with a last
//! line that stays (`compiled, cached`) or erased. The thread never
//! outlives the work it reports on: it is joined before a guest runs (and
//! so before any `fork`).

use procbridge::diag::{self, CompileEvent, Compiled, Verbosity, CLEAR_LINE};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work that ends within this long shows no line.
pub(crate) const DELAY: Duration = Duration::from_millis(500);

/// How often the line is drawn again.
const TICK: Duration = Duration::from_millis(100);

/// Whether progress may be shown: stderr is a terminal and `-q` was not
/// given.
pub(crate) fn enabled() -> bool {
    // SAFETY: isatty only looks at the descriptor.
    diag::verbosity() > Verbosity::Quiet && unsafe { libc::isatty(2) } == 1
}

/// Runs `work` (loading a module), with a progress line while a module
/// compiles for longer than [`DELAY`].
pub(crate) fn while_compiling<R>(work: impl FnOnce() -> R) -> R {
    if !enabled() {
        return work();
    }
    let mut line: Option<Line> = None;
    diag::watch_compiles(
        move |event| match event {
            CompileEvent::Started(compile) => {
                line = Some(Line::start(format!(
                    "{}: compiling",
                    describe(&compile.name, compile.bytes)
                )));
            }
            CompileEvent::Finished(compile, outcome, took) => {
                if let Some(line) = line.take() {
                    let what = describe(&compile.name, compile.bytes);
                    line.finish(match outcome {
                        Compiled::Cached => {
                            Some(format!("{what}: compiled, cached ({})", seconds(took)))
                        }
                        Compiled::NotCached => {
                            Some(format!("{what}: compiled ({})", seconds(took)))
                        }
                        // The error says why, on its own line.
                        Compiled::Failed => None,
                    });
                }
            }
        },
        work,
    )
}

/// `NAME (SIZE)`: the module's file name, not its whole path.
pub(crate) fn describe(name: &str, bytes: u64) -> String {
    let short = std::path::Path::new(name)
        .file_name()
        .map_or_else(|| name.to_string(), |n| n.to_string_lossy().into_owned());
    format!("{short} ({})", diag::size(bytes))
}

/// `9.4s`.
pub(crate) fn seconds(took: Duration) -> String {
    format!("{:.1}s", took.as_secs_f64())
}

/// A progress line on stderr, drawn by its own thread after [`DELAY`] and
/// every [`TICK`]: `procbridge: TEXT... ELAPSED`.
#[derive(Debug)]
pub(crate) struct Line {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug)]
struct State {
    /// What is going on.
    text: String,
    /// Since when (the elapsed time shown).
    since: Instant,
    /// Not drawn before this.
    show_at: Instant,
    /// Whether the line is on the terminal now.
    shown: bool,
    /// Whether the thread is to end.
    stop: bool,
}

impl Line {
    /// A line saying `text`, drawn once [`DELAY`] has passed.
    pub(crate) fn start(text: String) -> Line {
        let now = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                text,
                since: now,
                show_at: now + DELAY,
                shown: false,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let ticker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("procbridge-progress".into())
            .spawn(move || ticker.run())
            // No thread, no line: the work goes on silently.
            .ok();
        Line { shared, thread }
    }

    /// Says `text` from now on, its elapsed time counted from now.
    pub(crate) fn set(&self, text: String) {
        self.shared.set(text);
    }

    /// A function that does [`set`](Line::set) from anywhere.
    pub(crate) fn setter(&self) -> impl Fn(String) + 'static {
        let shared = self.shared.clone();
        move |text| shared.set(text)
    }

    /// Runs `print` (which writes a line of output) with the line erased
    /// meanwhile; it is drawn again on the next tick.
    pub(crate) fn suspend<R>(&self, print: impl FnOnce() -> R) -> R {
        let state = self.shared.lock();
        if state.shown {
            diag::write_line(CLEAR_LINE);
        }
        let result = print();
        if state.shown {
            draw(&state);
        }
        result
    }

    /// Ends the line: replaced by `last` (and a newline) if it was shown,
    /// erased otherwise (or with `None`).
    pub(crate) fn finish(mut self, last: Option<String>) {
        let shown = self.stop();
        if shown {
            match last {
                Some(last) => diag::write_line(&format!("{CLEAR_LINE}procbridge: {last}\n")),
                None => diag::write_line(CLEAR_LINE),
            }
        }
    }

    /// Stops and joins the thread; whether the line is on the terminal.
    fn stop(&mut self) -> bool {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let shown = std::mem::take(&mut self.shared.lock().shown);
        diag::set_status_line(false);
        shown
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.thread.is_some() && self.stop() {
            diag::write_line(CLEAR_LINE);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, text: String) {
        let mut state = self.lock();
        state.text = text;
        state.since = Instant::now();
        if state.shown {
            draw(&state);
        }
    }

    /// The thread: draws the line once it is due, then on every tick.
    fn run(&self) {
        let mut state = self.lock();
        while !state.stop {
            let now = Instant::now();
            let wait = if now >= state.show_at {
                draw(&state);
                state.shown = true;
                diag::set_status_line(true);
                TICK
            } else {
                state.show_at - now
            };
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Draws the line: erased, then the text and elapsed time, cut to the
/// terminal's width (a line that wraps could not be erased).
fn draw(state: &State) {
    let text = format!(
        "procbridge: {}... {}",
        state.text,
        seconds(state.since.elapsed())
    );
    let width = terminal_width().saturating_sub(1).max(20);
    let cut: String = text.chars().take(width).collect();
    diag::write_line(&format!("{CLEAR_LINE}{cut}"));
}

/// The terminal's columns (80 when it does not say).
fn terminal_width() -> usize {
    // SAFETY: an all-zero winsize is a valid value to be overwritten.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut size) } == 0;
    match (ok, size.ws_col) {
        (true, cols) if cols > 0 => usize::from(cols),
        _ => 80,
    }
}
