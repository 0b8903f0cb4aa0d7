//! `procbridge policy check FILE`: explain a policy, or reject it with the
//! line at fault.

use super::completions::write_stdout;
use clap::{Args, Subcommand};
use procbridge::confine::layers::{self, Layer};
use procbridge::policy_file::{self, PolicyError};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Work with policy files.
#[derive(Debug, Args)]
pub(crate) struct PolicyCommand {
    #[command(subcommand)]
    action: PolicyAction,
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Explain what a policy grants, in plain words, and what this machine
    /// confines commands with; exit 1 with the line at fault when it is
    /// invalid.
    ///
    /// A variable the policy passes from the host (`[env] pass`) that is not
    /// set here is a warning, not an error: `procbridge run` refuses the
    /// policy only where it is not set.
    Check {
        /// The policy file (TOML).
        file: PathBuf,

        /// Print the checked policy as JSON instead: `valid`, `file`,
        /// `grants` (commands with their resolved paths and rules,
        /// directories, environment, network, run_as), `limits` (named as in
        /// the file's [limits], null for none), `layers` and `warnings`; an
        /// invalid policy is `{"valid": false, "error": {...}}`.
        #[arg(long)]
        json: bool,
    },
}

impl PolicyCommand {
    pub(crate) fn execute(self) -> i32 {
        match self.action {
            PolicyAction::Check { file, json } => check(&file, json),
        }
    }
}

fn check(file: &Path, json: bool) -> i32 {
    let (builder, warnings) = match policy_file::check(file) {
        Ok(checked) => checked,
        Err(err) => {
            eprintln!("procbridge: invalid policy: {err}");
            if json {
                let out = json!({ "valid": false, "error": problem(&err) });
                write_stdout(format!("{out:#}\n").as_bytes());
            }
            return 1;
        }
    };
    for warning in &warnings {
        eprintln!("procbridge: warning: {warning}");
    }
    let policy = builder.build();
    let layers = layers::probe();
    let out = if json {
        let mut out = json!({ "valid": true, "file": file.display().to_string() });
        if let (Some(out), serde_json::Value::Object(explained)) =
            (out.as_object_mut(), policy_file::explain_json(&policy))
        {
            out.extend(explained);
            out.insert("layers".into(), layers.iter().map(layer_json).collect());
            out.insert("warnings".into(), warnings.iter().map(problem).collect());
        }
        format!("{out:#}\n")
    } else {
        policy_file::explain(&policy) + &explain_layers(&layers)
    };
    write_stdout(out.as_bytes())
}

/// An error or warning about a policy file, for machines.
fn problem(err: &PolicyError) -> serde_json::Value {
    // Line 0 is the file as a whole.
    let line = (err.line != 0).then_some(err.line);
    json!({ "file": err.file, "line": line, "message": err.message })
}

/// A layer for machines: `user namespace (commands are never root)` is
/// `{"name": "user namespace", "confines": "commands are never root", ...}`.
fn layer_json(layer: &Layer) -> serde_json::Value {
    let (name, confines) = match layer.name.split_once(" (") {
        Some((name, rest)) => (name, Some(rest.strip_suffix(')').unwrap_or(rest))),
        None => (layer.name, None),
    };
    json!({
        "name": name,
        "confines": confines,
        "available": layer.missing.is_none(),
        "missing": layer.missing,
    })
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
