//! `procbridge completions SHELL`: a completion script for a shell, on
//! stdout.

use super::{Cli, ExitCode};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::io::Write;

/// Print a completion script for SHELL to stdout.
///
/// bash: `procbridge completions bash > ~/.local/share/bash-completion/completions/procbridge`;
/// zsh: `procbridge completions zsh > "${fpath[1]}/_procbridge"`;
/// fish: `procbridge completions fish > ~/.config/fish/completions/procbridge.fish`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsCommand {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

impl CompletionsCommand {
    pub(crate) fn execute(self) -> i32 {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut Cli::command(), "procbridge", &mut script);
        write_stdout(&script)
    }
}

/// Writes `bytes` to stdout: 0, or 70 with one line when stdout fails (a
/// reader that went away early is no failure).
pub(crate) fn write_stdout(bytes: &[u8]) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("procbridge: cannot write to stdout: {e}");
            ExitCode::Internal as i32
        }
    }
}
