//! Command-line parsing and dispatch: one module per subcommand.

mod cache;
mod compile;
mod completions;
mod job;
mod policy;
mod progress;
mod python;
mod run;
mod trap;

use clap::{Parser, Subcommand};

/// Run untrusted WebAssembly guests with Python-shaped process APIs
/// (os.fork, multiprocessing, subprocess) on real OS processes.
///
/// Nothing is allowed unless granted: no directories, no environment
/// variables, no commands.
#[derive(Debug, Parser)]
#[command(name = "procbridge", version = VERSION)]
struct Cli {
    /// Say more on stderr: -v what was granted and resolved, the
    /// confinement layers and the module cache; -vv also every process
    /// started. Without -v or -q, RUST_LOG filters these (e.g.
    /// RUST_LOG=procbridge=debug); by default only warnings show.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Say nothing on stderr but errors and warnings: no progress line, no
    /// notices.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(Box<run::RunCommand>),
    Python(Box<python::PythonCommand>),
    Policy(policy::PolicyCommand),
    Completions(completions::CompletionsCommand),
    Compile(compile::CompileCommand),
    Cache(cache::CacheCommand),
}

/// `procbridge --version`: its own version and the wasmtime it runs guests
/// with (from Cargo.lock, by build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (wasmtime ",
    env!("PROCBRIDGE_WASMTIME_VERSION"),
    ")"
);

/// Exit codes of the `procbridge` command itself (a guest's own exit code is
/// passed through unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum ExitCode {
    /// Bad command-line usage (clap's convention).
    Usage = 2,
    /// The module is not valid WebAssembly.
    NotWasm = 65,
    /// The module file cannot be read.
    NoInput = 66,
    /// The module imports something the host does not provide.
    Link = 67,
    /// The module has no `_start`.
    NoStart = 68,
    /// The host failed for a reason of its own.
    Internal = 70,
    /// The guest trapped (128 + SIGABRT, as wasmtime's CLI).
    Trap = 134,
}

pub(crate) fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::Usage as i32
            } else {
                0
            };
        }
    };
    procbridge::diag::init(match (cli.quiet, cli.verbose) {
        (true, _) => Some(procbridge::diag::Verbosity::Quiet),
        (false, 0) => None,
        (false, n) => Some(procbridge::diag::Verbosity::from_count(n)),
    });
    if cli.verbose > 0 {
        trap::show_backtraces();
    }
    match cli.command {
        Command::Run(cmd) => cmd.execute(),
        Command::Python(cmd) => cmd.execute(),
        Command::Policy(cmd) => cmd.execute(),
        Command::Completions(cmd) => cmd.execute(),
        Command::Compile(cmd) => cmd.execute(),
        Command::Cache(cmd) => cmd.execute(),
    }
}
