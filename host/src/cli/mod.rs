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
    #[command(flatten)]
    noise: Noise,

    #[command(subcommand)]
    command: Command,
}

/// How much procbridge says on stderr. Accepted before the subcommand and
/// in a subcommand's own flags; in `run` and `python`, not after the module
/// or script, whose arguments are the guest's (`procbridge python s.py -v`
/// passes `-v` to the script, as python3 does).
#[derive(Debug, Default, Clone, Copy, clap::Args)]
pub(crate) struct Noise {
    /// Say more on stderr: -v what was granted and resolved, the
    /// confinement layers, the module cache and a trap's wasm backtrace;
    /// -vv also every process started. Without -v or -q, RUST_LOG filters
    /// these (e.g. RUST_LOG=procbridge=debug); by default only warnings
    /// show.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Say nothing on stderr but errors and warnings: no progress line, no
    /// notices.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

impl Noise {
    /// Both sets of flags together.
    fn and(self, other: Noise) -> Noise {
        Noise {
            verbose: self.verbose.saturating_add(other.verbose),
            quiet: self.quiet || other.quiet,
        }
    }
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
    let cli = match Cli::try_parse_from(python_option_list_ends(std::env::args_os().collect())) {
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
    let noise = cli.noise.and(match &cli.command {
        Command::Run(cmd) => cmd.noise(),
        Command::Python(cmd) => cmd.noise(),
        Command::Compile(cmd) => cmd.noise(),
        Command::Cache(cmd) => cmd.noise(),
        Command::Policy(_) | Command::Completions(_) => Noise::default(),
    });
    procbridge::diag::init(match (noise.quiet, noise.verbose) {
        (true, _) => Some(procbridge::diag::Verbosity::Quiet),
        (false, 0) => None,
        (false, n) => Some(procbridge::diag::Verbosity::from_count(n)),
    });
    if noise.verbose > 0 {
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

/// As python3's, `-c CODE` and `-m MODULE` end the option list of
/// `procbridge python`: what follows is the script's (`procbridge python
/// -c CODE -v` gives the script `-v`). Marks the end with `--` for clap.
/// (After a script name clap already passes everything on.)
fn python_option_list_ends(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(python) = args.iter().position(|a| a == "python") else {
        return args;
    };
    let command = <Cli as clap::CommandFactory>::command();
    let Some(sub) = command.find_subcommand("python") else {
        return args;
    };
    let takes_value = |long: &str| {
        sub.get_arguments()
            .chain(command.get_arguments())
            .any(|arg| arg.get_long() == Some(long) && arg.get_action().takes_values())
    };
    let mut at = python + 1;
    while at < args.len() {
        let arg = args[at].to_string_lossy().into_owned();
        if arg == "-c" || arg == "-m" {
            if at + 2 <= args.len() && args.get(at + 2).is_none_or(|a| a != "--") {
                args.insert(at + 2, "--".into());
            }
            break;
        }
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if !long.contains('=') && takes_value(long) {
                at += 1;
            }
        }
        at += 1;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::python_option_list_ends;

    fn ends(args: &[&str]) -> Vec<String> {
        python_option_list_ends(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn python_c_and_m_end_the_option_list() {
        assert_eq!(
            ends(&["pb", "python", "-c", "code", "-v"]),
            ["pb", "python", "-c", "code", "--", "-v"]
        );
        assert_eq!(
            ends(&["pb", "python", "--network", "-m", "mod", "a"]),
            ["pb", "python", "--network", "-m", "mod", "--", "a"]
        );
        assert_eq!(
            ends(&["pb", "python", "-c", "x"]),
            ["pb", "python", "-c", "x", "--"]
        );
        assert_eq!(
            ends(&["pb", "python", "-c", "x", "--", "-v"]),
            ["pb", "python", "-c", "x", "--", "-v"]
        );
        assert_eq!(ends(&["pb", "python", "-c"]), ["pb", "python", "-c"]);
        assert_eq!(
            ends(&["pb", "python", "s.py", "-v"]),
            ["pb", "python", "s.py", "-v"]
        );
        assert_eq!(
            ends(&["pb", "run", "x.wasm", "-c"]),
            ["pb", "run", "x.wasm", "-c"]
        );
        assert_eq!(
            ends(&["pb", "python", "s.py", "-c", "x"]),
            ["pb", "python", "s.py", "-c", "x"]
        );
        assert_eq!(
            ends(&["pb", "python", "--dir", "-c", "-m", "m"]),
            ["pb", "python", "--dir", "-c", "-m", "m", "--"]
        );
    }
}
