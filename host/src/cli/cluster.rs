//! The flags that name a NATS server: `--nats` and how to log in to it.

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
}

impl ClusterOptions {
    /// The cluster named, if any.
    pub(crate) fn cluster(&self) -> Option<Cluster> {
        let mut cluster = Cluster::new(self.nats.clone()?);
        if let Some(path) = &self.nats_creds {
            cluster = cluster.credentials(path);
        }
        if let Some(path) = &self.nats_ca {
            cluster = cluster.root_certificate(path);
        }
        Some(cluster)
    }
}
