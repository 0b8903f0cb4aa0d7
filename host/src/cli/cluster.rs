//! The flags that name a NATS server: `--nats` and how to log in to it.

use anyhow::Context;
use clap::Args;
use procbridge::cluster::Cluster;
use std::path::PathBuf;

/// Where the cluster's NATS server (with JetStream) is.
#[derive(Debug, Default, Args)]
pub(crate) struct ClusterOptions {
    /// Send the tasks of the job's Pools to `procbridge worker`s through
    /// this NATS server (nats://HOST:PORT; JetStream enabled), instead of
    /// to local worker processes. See docs/cluster.md.
    #[arg(long, value_name = "URL")]
    pub(crate) nats: Option<String>,

    /// Log in to the NATS server with this credentials file.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_creds: Option<PathBuf>,

    /// Require TLS to the NATS server, trusting the certificates in this
    /// PEM file.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_ca: Option<PathBuf>,

    /// Sign every task, result and output line with a key made from this
    /// file's contents (at least 16 bytes, shared by the job and its
    /// workers), and refuse those not signed with it. See docs/cluster.md.
    #[arg(long, value_name = "FILE", requires = "nats")]
    cluster_key: Option<PathBuf>,

    /// Where the job's Pools run their tasks (with --nats; default
    /// cluster).
    #[arg(long, value_enum, value_name = "WHERE", requires = "nats")]
    pool: Option<Placement>,

    /// Where the job's Queues and JoinableQueues live (with --nats;
    /// default cluster: in JetStream, reachable from its tasks on other
    /// machines).
    #[arg(long, value_enum, value_name = "WHERE", requires = "nats")]
    queues: Option<Placement>,

    /// Where the job's spawn-method Processes run (with --nats; default
    /// local; fork-method ones always run here).
    #[arg(long, value_enum, value_name = "WHERE", requires = "nats")]
    processes: Option<Placement>,
}

/// `--pool` and `--queues`: on this machine, or on the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Placement {
    Local,
    Cluster,
}

impl ClusterOptions {
    /// The cluster named, if any.
    ///
    /// # Errors
    /// When `--cluster-key`'s file cannot be read or is too short.
    pub(crate) fn cluster(&self) -> anyhow::Result<Option<Cluster>> {
        let Some(url) = &self.nats else {
            return Ok(None);
        };
        let mut cluster = Cluster::new(url.clone());
        if let Some(path) = &self.nats_creds {
            cluster = cluster.credentials(path);
        }
        if let Some(path) = &self.nats_ca {
            cluster = cluster.root_certificate(path);
        }
        if let Some(path) = &self.cluster_key {
            let secret =
                std::fs::read(path).with_context(|| format!("--cluster-key {}", path.display()))?;
            cluster = cluster
                .signing_key(&secret)
                .with_context(|| format!("--cluster-key {}", path.display()))?;
        }
        Ok(Some(cluster))
    }

    /// Whether the job's pools send their tasks to the cluster.
    pub(crate) fn pools_on_cluster(&self) -> bool {
        self.pool != Some(Placement::Local)
    }

    /// Whether the job's spawn-method processes run on the cluster.
    pub(crate) fn processes_on_cluster(&self) -> bool {
        self.processes == Some(Placement::Cluster)
    }

    /// Whether the job's queues live in JetStream.
    pub(crate) fn queues_on_cluster(&self) -> bool {
        self.queues != Some(Placement::Local)
    }
}
