//! `procbridge python`: run a Python script in the sandbox, as `python3`
//! would, with real processes.

use super::job::{exit_code, ClusterModule, JobOptions, EXIT_CODES_HELP};
use super::ExitCode;
use anyhow::anyhow;
use clap::Args;
use procbridge::python::{PythonJob, Source};
use std::io::Read;

/// Run Python (CPython 3.12 for WASI) with os.fork, multiprocessing and
/// subprocess carried out by procbridge, under the same grants and limits
/// as `procbridge run`.
///
/// `procbridge python [OPTIONS] SCRIPT.py [ARGS...]` runs a script (its
/// directory is on sys.path, readable if granted); `-c CODE` and
/// `-m MODULE` as python3's; with no script, or `-`, the script is read
/// from stdin. The interpreter is installed by `guests/install-python`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct PythonCommand {
    #[command(flatten)]
    job: JobOptions,

    /// Run CODE (python3 -c).
    #[arg(
        short = 'c',
        value_name = "CODE",
        conflicts_with = "module",
        allow_hyphen_values = true
    )]
    code: Option<String>,

    /// Run a module as a script (python3 -m).
    #[arg(short = 'm', value_name = "MODULE", allow_hyphen_values = true)]
    module: Option<String>,

    /// Unbuffered stdout and stderr (python3 -u).
    #[arg(short = 'u')]
    unbuffered: bool,

    /// The script (with -c or -m: the first argument), then its arguments.
    #[arg(
        value_name = "SCRIPT ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    rest: Vec<String>,
}

impl PythonCommand {
    /// Its -v/-q flags.
    pub(crate) fn noise(&self) -> super::Noise {
        self.job.noise
    }

    pub(crate) fn execute(self) -> i32 {
        let job = match self.job_to_run() {
            Ok(job) => job,
            Err(err) => return exit_code(Err(err)),
        };
        let interpreter = job.interpreter().to_path_buf();
        exit_code(self.job.run(
            ClusterModule::Python(&job),
            |runtime| {
                let program = runtime.load_file(&interpreter)?;
                // Only a slower start when it fails.
                let _ = job.precompile(runtime, &program);
                Ok(program)
            },
            |guest| job.configure(guest),
        ))
    }

    fn job_to_run(&self) -> Result<PythonJob, (ExitCode, anyhow::Error)> {
        let mut args = self.rest.clone();
        let source = if let Some(code) = &self.code {
            Source::Code(code.clone())
        } else if let Some(module) = &self.module {
            Source::Module(module.clone())
        } else {
            let script = if args.is_empty() {
                "-".to_string()
            } else {
                args.remove(0)
            };
            read_script(&script).map_err(|e| (ExitCode::Usage, e))?
        };
        PythonJob::new(source, args)
            .map(|job| job.unbuffered(self.unbuffered))
            .map_err(|e| (ExitCode::NoInput, e))
    }
}

/// The script's source: the file, or stdin for `-`.
fn read_script(path: &str) -> anyhow::Result<Source> {
    let mut source = Vec::new();
    if path == "-" {
        std::io::stdin()
            .read_to_end(&mut source)
            .map_err(|e| anyhow!("cannot read the script from stdin: {e}"))?;
        return Ok(Source::Script {
            name: "-".into(),
            file: "<stdin>".into(),
            source,
        });
    }
    source = std::fs::read(path).map_err(|e| anyhow!("can't open file '{path}': {e}"))?;
    // As python3 shows it: absolute, not resolved through links.
    let file =
        std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string());
    Ok(Source::Script {
        name: path.to_string(),
        file,
        source,
    })
}
