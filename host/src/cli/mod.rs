//! Command-line parsing and dispatch: one module per subcommand.

mod cache;
mod cluster;
mod compile;
mod completions;
mod job;
mod policy;
mod progress;
mod python;
mod run;
mod trap;
mod worker;

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
    /// notices, no hints (commands then write to stderr directly).
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
    Worker(Box<worker::WorkerCommand>),
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
    /// The cluster's NATS server cannot be reached, or refused.
    Unavailable = 69,
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
        Command::Worker(cmd) => cmd.noise(),
        Command::Policy(_) | Command::Completions(_) => Noise::default(),
    });
    if noise.quiet && noise.verbose > 0 {
        // As clap says it of `-q -v` given together in one place.
        let _ = <Cli as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "-q (--quiet) and -v (--verbose) cannot be used together, \
                 before the subcommand or in its flags",
            )
            .print();
        return ExitCode::Usage as i32;
    }
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
        Command::Worker(cmd) => cmd.execute(),
    }
}

/// As python3's, `-c CODE` and `-m MODULE` end the option list of
/// `procbridge python`: what follows is the script's (`procbridge python
/// -c CODE -v` gives the script `-v`). Marks the end with `--` for clap.
/// (After a script name clap already passes everything on.)
///
/// Only when `python` is the subcommand: after argv[0] and the top-level
/// `-v`/`-q` flags (anywhere else, as a module's argument or a file named
/// `python`, it is left alone). Short flags may be clustered as python3
/// takes them: `-uc CODE` (the code follows), `-cCODE` (it is attached;
/// given to clap apart, `-c CODE`, which would take the whole as a script
/// name).
fn python_option_list_ends(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let top_level_noise = |a: &std::ffi::OsString| {
        let a = a.to_string_lossy();
        a == "--verbose"
            || a == "--quiet"
            || a.strip_prefix('-')
                .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c == 'v' || c == 'q'))
    };
    let Some(python) = args
        .iter()
        .skip(1)
        .position(|a| !top_level_noise(a))
        .map(|i| i + 1)
        .filter(|&i| args[i] == "python")
    else {
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
    let short_takes_value = |short: char| {
        sub.get_arguments()
            .any(|arg| arg.get_short() == Some(short) && arg.get_action().takes_values())
    };
    // Inserts `--` at `at` unless one is there already.
    let end_at = |args: &mut Vec<std::ffi::OsString>, at: usize| {
        if at <= args.len() && args.get(at).is_none_or(|a| a != "--") {
            args.insert(at, "--".into());
        }
    };
    let mut at = python + 1;
    while at < args.len() {
        let arg = args[at].to_string_lossy().into_owned();
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if !long.contains('=') && takes_value(long) {
                at += 1;
            }
            at += 1;
            continue;
        }
        // A cluster of short flags: the first that takes a value takes the
        // rest of the cluster, or else the next argument.
        let cluster = &arg[1..];
        let mut valued = None;
        for (i, c) in cluster.char_indices() {
            if short_takes_value(c) {
                valued = Some((c, 1 + i + c.len_utf8()));
                break;
            }
        }
        let valued = valued.map(|(c, end)| (c, end < arg.len(), end));
        match valued {
            Some(('c' | 'm', attached, end)) => {
                if attached {
                    args[at] = arg[..end].into();
                    args.insert(at + 1, arg[end..].into());
                }
                if at + 2 <= args.len() {
                    end_at(&mut args, at + 2);
                }
                break;
            }
            Some((_, false, _)) => at += 2,
            Some((_, true, _)) | None => at += 1,
        }
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

    #[test]
    fn only_the_python_subcommand_is_looked_at() {
        // `python` as a module's argument, or a file named `python`.
        assert_eq!(
            ends(&["pb", "run", "hello.wasm", "python", "-c", "foo", "-v"]),
            ["pb", "run", "hello.wasm", "python", "-c", "foo", "-v"]
        );
        assert_eq!(
            ends(&["pb", "run", "python", "-c", "foo"]),
            ["pb", "run", "python", "-c", "foo"]
        );
        assert_eq!(
            ends(&["pb", "-v", "run", "python", "-c", "foo"]),
            ["pb", "-v", "run", "python", "-c", "foo"]
        );
        // After the top-level -v/-q flags it is the subcommand.
        assert_eq!(
            ends(&["pb", "-vv", "--quiet", "python", "-c", "x", "-v"]),
            ["pb", "-vv", "--quiet", "python", "-c", "x", "--", "-v"]
        );
        assert_eq!(
            ends(&["pb", "--verbose", "python", "-m", "m", "a"]),
            ["pb", "--verbose", "python", "-m", "m", "--", "a"]
        );
    }

    #[test]
    fn short_clusters_are_read_as_python3_reads_them() {
        // The value follows the cluster.
        assert_eq!(
            ends(&["pb", "python", "-uc", "code", "-v"]),
            ["pb", "python", "-uc", "code", "--", "-v"]
        );
        assert_eq!(
            ends(&["pb", "python", "-vum", "mod", "-q"]),
            ["pb", "python", "-vum", "mod", "--", "-q"]
        );
        // The value is attached.
        assert_eq!(
            ends(&["pb", "python", "-cCODE", "-v"]),
            ["pb", "python", "-c", "CODE", "--", "-v"]
        );
        assert_eq!(
            ends(&["pb", "python", "-ucCODE", "-v"]),
            ["pb", "python", "-uc", "CODE", "--", "-v"]
        );
        assert_eq!(
            ends(&["pb", "python", "-mmod"]),
            ["pb", "python", "-m", "mod", "--"]
        );
        // Flags alone go on to the script.
        assert_eq!(
            ends(&["pb", "python", "-uv", "s.py", "-c", "x"]),
            ["pb", "python", "-uv", "s.py", "-c", "x"]
        );
    }
}
