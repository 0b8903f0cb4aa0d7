//! `procbridge run`: run a guest module.

use super::job::{exit_code, JobOptions, EXIT_CODES_HELP};
use clap::Args;
use std::path::PathBuf;

/// Run a WebAssembly module (wasm32-wasi command) with the grants given.
///
/// Nothing is granted unless a flag or the policy file grants it. The exit
/// code is the guest's, or one of procbridge's own (below).
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub(crate) struct RunCommand {
    #[command(flatten)]
    job: JobOptions,

    /// The module to run (.wasm, or .wat text).
    #[arg(value_name = "MODULE")]
    module: PathBuf,

    /// Arguments for the guest (its argv[0] is MODULE).
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

impl RunCommand {
    pub(crate) fn execute(self) -> i32 {
        exit_code(self.job.run(
            |runtime| runtime.load_file(&self.module),
            |guest| {
                guest
                    .arg(self.module.display().to_string())
                    .args(self.args.iter().cloned());
            },
        ))
    }
}
