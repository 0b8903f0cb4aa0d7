//! `procbridge run`: run a guest module.

use super::job::{exit_code, ClusterModule, JobOptions, EXIT_CODES_HELP};
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

    /// The module to run (.wasm, or .wat text), then the guest's arguments
    /// (its argv[0] is MODULE). Everything after MODULE is the guest's,
    /// flags included.
    #[arg(
        value_name = "MODULE [ARGS]",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

impl RunCommand {
    /// Its -v/-q flags.
    pub(crate) fn noise(&self) -> super::Noise {
        self.job.noise
    }

    pub(crate) fn execute(self) -> i32 {
        // clap requires one value at least.
        let (module, args) = self.command.split_first().expect("MODULE is required");
        let module = PathBuf::from(module);
        exit_code(self.job.run(
            ClusterModule::File(&module),
            |runtime| runtime.load_file(&module),
            |guest| {
                guest
                    .arg(module.display().to_string())
                    .args(args.iter().cloned());
            },
        ))
    }
}
