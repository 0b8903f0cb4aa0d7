//! What a job asks of another machine, and what that machine gives.
//!
//! A task a job sends to a worker on another machine runs under the
//! worker's policy narrowed to what the job itself holds: grants are named
//! (commands by the name they were granted as, directories by where the
//! guest sees them, variables by name), never carried as paths or values of
//! the job's machine, and a worker gives nothing it was not given itself.
//!
//! ```
//! use procbridge::Policy;
//! let job = Policy::builder().allow_run("echo")?.allow_run("true")?.build();
//! let worker = Policy::builder().allow_run("echo")?.build();
//! let remote = worker.granted_to(&job.asked_of_others());
//! assert!(remote.resolve_command("echo").is_ok());
//! assert!(remote.resolve_command("true").is_err()); // the worker never granted it
//! # Ok::<(), anyhow::Error>(())
//! ```

use super::{Limits, Policy};
use crate::ctx::DirPerms;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The grants and limits a job asks for its remote tasks: the names of its
/// own grants, and its limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    /// Commands, by the name they were granted as.
    pub commands: Vec<String>,
    /// Directories, by the guest path, and whether read-write.
    pub dirs: Vec<(String, bool)>,
    /// Environment variables, by name.
    pub env: Vec<String>,
    /// Whether commands may use the network.
    pub network: bool,
    /// Its limits.
    pub limits: LimitRequest,
}

/// The limits in a [`GrantRequest`] (the ones that mean the same on any
/// machine).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRequest {
    /// [`Limits::max_processes`].
    pub max_processes: usize,
    /// [`Limits::max_memory_bytes`].
    pub max_memory_bytes: usize,
    /// [`Limits::max_total_memory_bytes`].
    pub max_total_memory_bytes: u64,
    /// [`Limits::max_queued_bytes`].
    pub max_queued_bytes: usize,
    /// [`Limits::max_output_bytes`].
    pub max_output_bytes: usize,
    /// [`Limits::cpu_seconds`].
    pub cpu_seconds: Option<u64>,
    /// [`Limits::wall_time`], in milliseconds.
    pub wall_time_ms: Option<u64>,
}

impl Policy {
    /// What a job under this policy asks of the machines that run its
    /// remote tasks: everything it holds, by name.
    pub fn asked_of_others(&self) -> GrantRequest {
        let limits = &self.limits;
        GrantRequest {
            commands: self.commands.keys().cloned().collect(),
            dirs: self
                .dirs
                .iter()
                .map(|d| (d.guest.clone(), d.perms == DirPerms::ReadWrite))
                .collect(),
            env: self.env.iter().map(|(key, _)| key.clone()).collect(),
            network: self.network,
            limits: LimitRequest {
                max_processes: limits.max_processes,
                max_memory_bytes: limits.max_memory_bytes,
                max_total_memory_bytes: limits.max_total_memory_bytes,
                max_queued_bytes: limits.max_queued_bytes,
                max_output_bytes: limits.max_output_bytes,
                cpu_seconds: limits.cpu_seconds,
                wall_time_ms: limits
                    .wall_time
                    .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            },
        }
    }

    /// This (a worker's) policy narrowed to what `request` asks: the
    /// grants both hold, read-only where either is, the smaller of each
    /// limit. Never more than this policy nor than the request.
    pub fn granted_to(&self, request: &GrantRequest) -> Policy {
        let mut policy = self.reduced(false, false, false);
        policy
            .commands
            .retain(|name, _| request.commands.iter().any(|asked| asked == name));
        policy.dirs.retain_mut(|dir| {
            match request.dirs.iter().find(|(guest, _)| *guest == dir.guest) {
                Some((_, true)) => true,
                Some((_, false)) => {
                    dir.perms = DirPerms::ReadOnly;
                    true
                }
                None => false,
            }
        });
        policy
            .env
            .retain(|(key, _)| request.env.iter().any(|asked| asked == key));
        policy.network = self.network && request.network;
        policy.limits = narrowed(&self.limits, &request.limits);
        policy
    }
}

/// The smaller of each limit of `ours` and `asked`.
fn narrowed(ours: &Limits, asked: &LimitRequest) -> Limits {
    let smaller = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let wall_ms = ours
        .wall_time
        .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    Limits {
        max_processes: ours.max_processes.min(asked.max_processes),
        max_memory_bytes: ours.max_memory_bytes.min(asked.max_memory_bytes),
        max_total_memory_bytes: ours
            .max_total_memory_bytes
            .min(asked.max_total_memory_bytes),
        max_queued_bytes: ours.max_queued_bytes.min(asked.max_queued_bytes),
        max_output_bytes: ours.max_output_bytes.min(asked.max_output_bytes),
        cpu_seconds: smaller(ours.cpu_seconds, asked.cpu_seconds),
        wall_time: smaller(wall_ms, asked.wall_time_ms).map(Duration::from_millis),
        ..ours.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("procbridge-remote-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_worker_gives_only_what_both_hold() {
        let data = tmp_dir("data");
        let out = tmp_dir("out");
        let worker = Policy::builder()
            .allow_run("echo")
            .unwrap()
            .allow_run("true")
            .unwrap()
            .dir(&data, "/data", DirPerms::ReadWrite)
            .unwrap()
            .dir(&out, "/out", DirPerms::ReadWrite)
            .unwrap()
            .env("A", "worker")
            .unwrap()
            .env("B", "worker")
            .unwrap()
            .network(true)
            .build();
        let mut job = worker.asked_of_others();
        job.commands = vec!["echo".into(), "rm".into()];
        job.dirs = vec![("/data".into(), false), ("/etc".into(), true)];
        job.env = vec!["A".into(), "HOME".into()];
        job.network = false;
        let remote = worker.granted_to(&job);
        assert!(remote.resolve_command("echo").is_ok());
        assert!(remote.resolve_command("true").is_err(), "not asked");
        assert!(remote.resolve_command("rm").is_err(), "never granted");
        let dirs: Vec<_> = remote.dirs().iter().map(|d| (&*d.guest, d.perms)).collect();
        assert_eq!(dirs, [("/data", DirPerms::ReadOnly)]);
        assert_eq!(remote.env(), [("A".to_string(), "worker".to_string())]);
        assert!(!remote.network());
    }

    #[test]
    fn limits_are_the_smaller_of_the_two() {
        let mut builder = Policy::builder();
        builder.limits_mut().max_processes = 8;
        builder.limits_mut().cpu_seconds = Some(30);
        let worker = builder.build();
        let mut asked = worker.asked_of_others();
        asked.limits.max_processes = 100;
        asked.limits.max_memory_bytes = 1 << 20;
        asked.limits.cpu_seconds = None;
        asked.limits.wall_time_ms = Some(1500);
        let limits = worker.granted_to(&asked).limits().clone();
        assert_eq!(limits.max_processes, 8);
        assert_eq!(limits.max_memory_bytes, 1 << 20);
        assert_eq!(limits.cpu_seconds, Some(30));
        assert_eq!(limits.wall_time, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn a_request_round_trips_through_json() {
        let policy = Policy::builder().allow_run("echo").unwrap().build();
        let asked = policy.asked_of_others();
        let json = serde_json::to_string(&asked).unwrap();
        assert_eq!(serde_json::from_str::<GrantRequest>(&json).unwrap(), asked);
    }
}
