//! `procbridge worker`: serve a cluster's Pool tasks on this machine.

use super::job::{exit_code, JobOptions};
use super::ExitCode;
use anyhow::anyhow;
use clap::Args;

/// Serve the Pool tasks of jobs started with `procbridge run --nats`.
///
/// The worker's grants and limits (the same flags as `run`) are the most a
/// remote task gets: each job's tasks run with what both the job and the
/// worker hold. Every chunk of tasks run is recorded in the audit log
/// (--audit) with the job's identity. Runs until stopped.
#[derive(Debug, Args)]
pub(crate) struct WorkerCommand {
    #[command(flatten)]
    job: JobOptions,
}

impl WorkerCommand {
    /// Its -v/-q flags.
    pub(crate) fn noise(&self) -> super::Noise {
        self.job.noise
    }

    pub(crate) fn execute(self) -> i32 {
        if self.job.cluster.nats.is_none() {
            return exit_code(Err((
                ExitCode::Usage,
                anyhow!("worker: --nats URL is required (the server to take tasks from)"),
            )));
        }
        exit_code(self.job.serve_tasks().map(|()| 0))
    }
}
