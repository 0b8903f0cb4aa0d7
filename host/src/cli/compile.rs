//! `procbridge compile`: compile modules ahead of time into the cache, so
//! that their first run starts at once.

use super::cache::CacheOptions;
use super::completions::write_stdout;
use super::job::load_exit_code;
use super::progress::{self, Line};
use super::ExitCode;
use anyhow::anyhow;
use clap::Args;
use procbridge::diag::{self, CompileEvent, Compiled, Verbosity};
use procbridge::{Origin, Runtime};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

/// Compile modules into the module cache ahead of time (as `procbridge
/// run` would on its first run of each), printing one line per module.
///
/// The cache and its cap are `run`'s (--cache-dir, --cache-max-mb, the
/// same defaults). Exits with 0 when every module is in the cache, else
/// with the code `run` gives the first problem: 66 (cannot read it), 65
/// (not WebAssembly), 67 (imports something this host does not provide),
/// 70 (the cache cannot be used or written).
#[derive(Debug, Args)]
pub(crate) struct CompileCommand {
    #[command(flatten)]
    noise: super::Noise,

    #[command(flatten)]
    cache: CacheOptions,

    /// Also the Python interpreter `procbridge python` runs (installed by
    /// guests/install-python).
    #[arg(long)]
    python: bool,

    /// Compile the form that jobs with a wall-time limit run (--wall-time,
    /// or the policy's): its code checks the deadline, so it is another
    /// entry.
    #[arg(long)]
    for_wall_time: bool,

    /// The modules (.wasm, or .wat text).
    #[arg(value_name = "MODULE", required_unless_present = "python")]
    modules: Vec<PathBuf>,
}

/// What became of one module.
enum Outcome {
    /// It was in the cache already.
    AlreadyCached,
    /// Compiled now and stored.
    Compiled,
    /// Compiled now, but the cache could not keep it.
    NotCached,
}

impl CompileCommand {
    /// Its -v/-q flags.
    pub(crate) fn noise(&self) -> super::Noise {
        self.noise
    }

    pub(crate) fn execute(self) -> i32 {
        match self.run() {
            Ok(code) => code,
            Err((code, err)) => {
                eprintln!("procbridge: {err:#}");
                code as i32
            }
        }
    }

    fn run(&self) -> Result<i32, (ExitCode, anyhow::Error)> {
        let cache = self.cache.cache()?;
        let mut modules = self.modules.clone();
        if self.python {
            let job = procbridge::python::PythonJob::new(
                procbridge::python::Source::Code(String::new()),
                Vec::new(),
            )
            .map_err(|e| (ExitCode::NoInput, e))?;
            modules.push(job.interpreter().to_path_buf());
        }
        // The settings `run` and `python` use, so that they find what this
        // compiles.
        let runtime = Runtime::builder()
            .cache(Some(cache))
            .epoch_interruption(self.for_wall_time)
            .lazy_tables(false)
            .build()
            .map_err(|e| (ExitCode::Internal, e))?;
        let quiet = diag::verbosity() == Verbosity::Quiet;
        let line = progress::enabled().then(|| Line::start(String::new()));
        let mut first_failure = None;
        for (index, module) in modules.iter().enumerate() {
            let name = module.display().to_string();
            let bytes = std::fs::metadata(module).map_or(0, |m| m.len());
            let what = progress::describe(&name, bytes);
            let counter = bar(index, modules.len());
            if let Some(line) = &line {
                line.set(format!("{counter} {what}: loading"));
            }
            let setter = line.as_ref().map(Line::setter);
            let compiling = format!("{counter} {what}: compiling");
            let outcome = compile(&runtime, module, move || {
                if let Some(set) = &setter {
                    set(compiling.clone());
                }
            });
            let report = match &outcome {
                Ok(Outcome::AlreadyCached) => format!("{name} ({}): already cached", size(bytes)),
                Ok(Outcome::Compiled) => format!("{name} ({}): compiled", size(bytes)),
                Ok(Outcome::NotCached) => {
                    format!("{name} ({}): compiled, but not cached", size(bytes))
                }
                Err(_) => String::new(),
            };
            let failure = match outcome {
                Ok(Outcome::NotCached) => Some((
                    ExitCode::Internal,
                    anyhow!("{name}: the module cache could not keep it"),
                )),
                Ok(_) => None,
                Err(failure) => Some(failure),
            };
            // 0, or 70 when stdout fails (a reader gone is no failure).
            let print = || {
                let mut written = 0;
                if !report.is_empty() && !quiet {
                    written = write_stdout(format!("{report}\n").as_bytes());
                }
                if let Some((_, err)) = &failure {
                    eprintln!("procbridge: {err:#}");
                }
                written
            };
            let written = match &line {
                Some(line) => line.suspend(print),
                None => print(),
            };
            if let (None, Some((code, _))) = (&first_failure, &failure) {
                first_failure = Some(*code);
            }
            if first_failure.is_none() && written != 0 {
                first_failure = Some(ExitCode::Internal);
            }
        }
        if let Some(line) = line {
            line.finish(None);
        }
        Ok(first_failure.map_or(0, |code| code as i32))
    }
}

/// Loads `module` through the cache; `compiling()` when it turns out it
/// has to be compiled.
fn compile(
    runtime: &Runtime,
    module: &std::path::Path,
    mut compiling: impl FnMut() + 'static,
) -> Result<Outcome, (ExitCode, anyhow::Error)> {
    let stored = Rc::new(Cell::new(None));
    let told = stored.clone();
    let loaded = diag::watch_compiles(
        move |event| match event {
            CompileEvent::Started(_) => compiling(),
            CompileEvent::Finished(_, outcome, _) => told.set(Some(outcome)),
        },
        || runtime.load_file(module),
    );
    match loaded {
        Ok(program) => Ok(match (program.origin(), stored.get()) {
            (Origin::Cached, _) => Outcome::AlreadyCached,
            (Origin::Compiled, Some(Compiled::Cached)) => Outcome::Compiled,
            (Origin::Compiled, _) => Outcome::NotCached,
        }),
        Err(err) => Err((load_exit_code(&err), err.into())),
    }
}

/// `[####------] 2/5`.
fn bar(index: usize, total: usize) -> String {
    const WIDTH: usize = 10;
    let done = (index * WIDTH).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}] {}/{total}",
        "#".repeat(done),
        "-".repeat(WIDTH - done),
        index + 1
    )
}

fn size(bytes: u64) -> String {
    diag::size(bytes)
}
