//! Beyond one machine: a job's `Pool` tasks run on workers on other
//! machines, through NATS JetStream.
//!
//! Three kinds of process take part, all `procbridge`:
//!
//! * **workers** (`procbridge worker --nats URL [POLICY OPTIONS]`, [`serve`])
//!   take tasks from the shared stream, one at a time, and run each in an
//!   instance of the job's module kept for that job, under the worker's
//!   policy narrowed to what the job holds ([`Policy::granted_to`]);
//! * **the job** (`procbridge run --nats URL job.wasm`) puts its module in
//!   the object store under its SHA-256 ([`JobLink::publish`]) before it
//!   starts; each of its `Pool`s then has **relays** for workers: forked
//!   children that take the pool's requests as a local worker would, send
//!   them to the stream, and hand the results back ([`relay`]), so the
//!   pool's scheduling, timeouts and worker-lost handling stay as they are.
//! * **a Python job** (`procbridge python --nats URL job.py`) puts a
//!   [`Bundle`] there instead of the interpreter, and its
//!   `multiprocessing.Pool` workers relay each batch with `cluster_call`
//!   (`remote`); a worker serves them in its own interpreter
//!   (`procbridge._serve`, see `process::serving`).
//!
//! What lives in JetStream (file storage, so a server restart loses
//! nothing):
//!
//! | name | what | retention |
//! |---|---|---|
//! | stream `PROCBRIDGE_TASKS`, subjects `procbridge.task.<job>` | one message per chunk of tasks | work queue: gone once a worker acknowledges it |
//! | consumer `workers` on it | shared by every worker: each message goes to one | a message not acknowledged within [`ACK_WAIT`] (a worker died) goes to another, up to [`MAX_DELIVER`] times |
//! | stream `PROCBRIDGE_RESULTS`, subjects `procbridge.result.<job>.<relay>` | one message per chunk's results | work queue, one consumer per relay |
//! | object store `procbridge-modules` | modules by SHA-256 | kept |
//!
//! A worker asks a chunk's relay whether it still waits before running
//! the chunk (plain NATS, answered by the relay while it lives): the chunks
//! of a job that was killed, or of a relay its pool replaced, are dropped
//! unrun. A job that ends normally also publishes a cancellation.
//!
//! Tasks run at least once: a worker that dies in the middle of a chunk
//! leaves it unacknowledged, and another worker runs it again. Publishing
//! uses de-duplication ids (`Nats-Msg-Id`), so a message sent twice across
//! a reconnect is stored once, and a relay takes one result per chunk.
//!
//! [`Policy::granted_to`]: crate::Policy::granted_to
//! [`Bundle`]: crate::python::Bundle
//! [`serve`]: worker::serve

mod connect;
mod instance;
pub(crate) mod process;
pub(crate) mod queue;
pub(crate) mod relay;
pub(crate) mod remote;
mod seal;
mod wire;
pub mod worker;

use crate::policy::GrantRequest;
pub use connect::Cluster;
use std::time::Duration;

/// The stream of tasks.
const TASKS: &str = "PROCBRIDGE_TASKS";
/// The stream of results.
const RESULTS: &str = "PROCBRIDGE_RESULTS";
/// The workers' shared consumer of [`TASKS`].
const WORKERS: &str = "workers";
/// The object store of modules.
const MODULES: &str = "procbridge-modules";
/// A chunk not acknowledged for this long goes to another worker; a worker
/// running one says it is still at it every third of this.
pub const ACK_WAIT: Duration = Duration::from_secs(3);
/// How many times a chunk is handed out before it fails.
const MAX_DELIVER: i64 = 5;

/// The subject of a job's tasks.
fn task_subject(job: &str) -> String {
    format!("procbridge.task.{job}")
}

/// The subject a relay's results come back on.
fn result_subject(job: &str, relay: u32) -> String {
    format!("procbridge.result.{job}.{relay}")
}

/// The subject a relay's tasks' output lines come back on (plain NATS),
/// for the relay whose results come on `result_subject`.
fn output_subject(result_subject: &str) -> String {
    result_subject.replacen("procbridge.result.", "procbridge.output.", 1)
}

/// The subject a relay answers on while it lives (plain NATS): a worker
/// asks before running a chunk, and "no responders" means the relay, and
/// whoever waited for the chunk's results, is gone.
fn alive_subject(result_subject: &str) -> String {
    result_subject.replacen("procbridge.result.", "procbridge.alive.", 1)
}

/// The subject that cancels a job's remaining tasks.
fn cancel_subject(job: &str) -> String {
    format!("procbridge.cancel.{job}")
}

/// What a job's pools need to send tasks to the cluster: where it is, the
/// job's id, its module's digest, and the grants its tasks ask for.
#[derive(Clone, Debug)]
pub struct JobLink {
    cluster: Cluster,
    job: String,
    module: String,
    /// The grants its tasks ask for, as the task header carries them
    /// (JSON, made once).
    grants: String,
    /// The same, to narrow a process's own grants to.
    request: GrantRequest,
    who: String,
    /// Whether its pools send their tasks to the cluster.
    pools: bool,
    /// Whether the queues it makes live in JetStream.
    queues: bool,
    /// Whether its spawn-method processes run on the cluster's workers.
    processes: bool,
}

impl JobLink {
    /// Puts `module` (the job's module's bytes) in the cluster's object
    /// store, unless it is there already, and returns the link for a job
    /// whose tasks ask for `grants`.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the module.
    pub fn publish(cluster: &Cluster, module: &[u8], grants: GrantRequest) -> anyhow::Result<Self> {
        let digest = crate::policy::to_hex(&sha2_digest(module));
        cluster.block_on(async {
            let client = cluster.connect().await?;
            let js = connect::setup(&client).await?;
            connect::put_module(&js, &digest, module).await
        })?;
        Ok(JobLink {
            cluster: cluster.clone(),
            job: new_job_id(),
            module: digest,
            grants: serde_json::to_string(&grants)?,
            request: grants,
            who: who_am_i(),
            pools: true,
            queues: true,
            processes: false,
        })
    }

    /// Whether the job's pools send their tasks to the cluster's workers
    /// (the default) or run them in local worker processes.
    pub fn pools_on_cluster(mut self, yes: bool) -> Self {
        self.pools = yes;
        self
    }

    /// Whether the queues the job makes live in JetStream, reachable from
    /// its tasks on other machines (the default), or in shared memory.
    pub fn queues_on_cluster(mut self, yes: bool) -> Self {
        self.queues = yes;
        self
    }

    /// Whether the job's spawn-method `Process`es run on the cluster's
    /// workers, or locally (the default). Fork-method ones always run
    /// locally.
    pub fn processes_on_cluster(mut self, yes: bool) -> Self {
        self.processes = yes;
        self
    }

    /// The grants a task sent by a process holding `policy` asks for, as
    /// JSON: what it holds (less, in a process that dropped some) within
    /// what the job published.
    pub(crate) fn grants_of(&self, policy: &crate::Policy) -> String {
        serde_json::to_string(&policy.granted_to(&self.request).asked_of_others())
            .unwrap_or_else(|_| self.grants.clone())
    }

    /// Whether its spawn-method processes run on the cluster.
    pub(crate) fn runs_processes(&self) -> bool {
        self.processes
    }

    /// Whether its pools' workers are relays to the cluster.
    pub(crate) fn runs_pools(&self) -> bool {
        self.pools
    }

    /// Whether `Queue()` in the job makes a queue in JetStream.
    pub(crate) fn holds_queues(&self) -> bool {
        self.queues
    }

    /// Where the cluster is.
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The job's id (in subjects and in the workers' audit logs).
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The SHA-256 of the job's module, in hex.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The job ended: tells every worker to drop its remaining tasks, and
    /// deletes the queues it made.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub fn finish(&self) -> anyhow::Result<()> {
        self.cluster.block_on(async {
            let client = self.cluster.connect().await?;
            client
                .publish(cancel_subject(&self.job), bytes::Bytes::new())
                .await?;
            client.flush().await?;
            let js = async_nats::jetstream::new(client);
            queue::delete_job_queues(&js, &self.job).await?;
            Ok(())
        })
    }
}

/// The SHA-256 of `bytes`.
pub(crate) fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// A new random job id (32 hex digits: a subject token).
fn new_job_id() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into it.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        // Never expected; time and pid still make a distinct id.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes[..8].copy_from_slice(&now.as_nanos().to_le_bytes()[..8]);
        bytes[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    crate::policy::to_hex(&bytes)
}

/// Who runs the job, for the workers' audit logs: user id, host name, pid.
fn who_am_i() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `name.len()` bytes into it.
    let host = if unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0 {
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    } else {
        String::from("unknown-host")
    };
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    format!("uid {uid} on {host}, pid {}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_distinct_subject_tokens() {
        let (a, b) = (new_job_id(), new_job_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(task_subject(&a), format!("procbridge.task.{a}"));
        assert_eq!(result_subject(&a, 7), format!("procbridge.result.{a}.7"));
    }
}
