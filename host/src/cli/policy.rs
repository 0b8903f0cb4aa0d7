//! `procbridge policy check FILE`: explain a policy, or reject it with the
//! line at fault.

use clap::{Args, Subcommand};
use procbridge::confine::layers::{self, Layer};
use procbridge::policy_file;
use std::path::PathBuf;

/// Work with policy files.
#[derive(Debug, Args)]
pub(crate) struct PolicyCommand {
    #[command(subcommand)]
    action: PolicyAction,
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Explain what a policy grants, in plain words; exit 1 with the line at
    /// fault when it is invalid.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
}

impl PolicyCommand {
    pub(crate) fn execute(self) -> i32 {
        match self.action {
            PolicyAction::Check { file } => match policy_file::load(&file) {
                Ok(policy) => {
                    print!("{}", policy_file::explain(&policy.build()));
                    print!("{}", explain_layers(&layers::probe()));
                    0
                }
                Err(err) => {
                    eprintln!("procbridge: invalid policy: {err}");
                    1
                }
            },
        }
    }
}

/// What this machine provides to confine commands, one layer a line.
fn explain_layers(layers: &[Layer]) -> String {
    let mut out = String::from("This machine confines commands with:\n");
    for layer in layers {
        match &layer.missing {
            None => out += &format!("  yes      {}\n", layer.name),
            Some(why) => out += &format!("  MISSING  {}: {why}\n", layer.name),
        }
    }
    out
}
