//! Command-line parsing and dispatch: one module per subcommand.

mod job;
mod policy;
mod python;
mod run;

use clap::{Parser, Subcommand};

/// Run untrusted WebAssembly guests with Python-shaped process APIs
/// (os.fork, multiprocessing, subprocess) on real OS processes.
///
/// Nothing is allowed unless granted: no directories, no environment
/// variables, no commands.
#[derive(Debug, Parser)]
#[command(name = "procbridge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(Box<run::RunCommand>),
    Python(Box<python::PythonCommand>),
    Policy(policy::PolicyCommand),
}

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
    match cli.command {
        Command::Run(cmd) => cmd.execute(),
        Command::Python(cmd) => cmd.execute(),
        Command::Policy(cmd) => cmd.execute(),
    }
}
