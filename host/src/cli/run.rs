//! `procbridge run`: run a guest module.

use super::job::{exit_code, JobOptions};
use clap::Args;
use std::path::PathBuf;

/// Run a WebAssembly module (wasm32-wasi command) with the grants given.
///
/// Nothing is granted unless a flag or the policy file grants it. The exit
/// code is the guest's exit code. A trap prints the wasm backtrace to stderr
/// and exits with 134. Problems with the module itself exit with 66 (cannot
/// read it), 65 (not WebAssembly), 67 (imports something this host does not
/// provide), 68 (no `_start`); a bad flag or policy with 2; the wall-clock
/// limit with 124.
#[derive(Debug, Args)]
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
