//! Queues that live in JetStream: a job's `Queue` and `JoinableQueue`
//! when it runs with `--nats`, shared by its processes and by its tasks on
//! other machines.
//!
//! Each queue is two streams, made by the process that creates the queue
//! and deleted when the job ends ([`delete_job_queues`]):
//!
//! | stream | subject | what |
//! |---|---|---|
//! | `PROCBRIDGE_Q_<job>_<id>` | `procbridge.queue.<job>.<id>.items` | the messages: file storage, work-queue retention, at most `maxsize` messages and `max_bytes` bytes (a put past them waits) |
//! | `PROCBRIDGE_Q_<job>_<id>_CTL` | `procbridge.queue.<job>.<id>.ctl.*` | `done`: one empty message per `task_done`; `shutdown`: there once the queue is shut down |
//!
//! Every getter pulls from one durable consumer (`getters`), one message at
//! a time, and acknowledges it before `get` returns (an acknowledgement the
//! server confirms): a message is got by one getter, in the order the
//! server stored them. Every put carries a de-duplication id, so a put
//! sent again across a reconnect is stored once. A getter killed between
//! the two leaves its message unacknowledged; the server hands it to
//! another getter after [`GET_ACK_WAIT`].
//!
//! A joinable queue's unfinished count is the number of messages ever
//! stored (the items stream's last sequence number) less the number of
//! `done` messages: nothing to keep in step, and nothing lost in a restart.
//!
//! Each OS process (a fork child too) opens its own connection the first
//! time it uses a cluster queue, on a runtime of its own without threads:
//! the connection is driven while a call waits on it (between calls an
//! idle connection may be dropped by the server, and is made again on the
//! next call).

use super::seal;
use super::Cluster;
use crate::channel::{QueueConfig, Wait};
use crate::errno::{BridgeError, BridgeResult, Errno};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A getter's message not acknowledged for this long (its process died
/// between taking and acknowledging it) goes to another getter.
pub const GET_ACK_WAIT: Duration = Duration::from_secs(30);

/// What the server stores with each message besides its subject and
/// payload, at most: the de-duplication header and the record's own fields.
const MESSAGE_OVERHEAD: usize = 128;

/// The most queues one OS process may make in the server: a queue's
/// streams stay until its job ends, whether or not its handle was closed.
/// (What they may hold together is the server's to bound: JetStream's
/// storage limits on the job's account.)
pub const MAX_QUEUES_PER_PROCESS: usize = 256;

/// Queues this process has made in the server.
static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The consumer every getter of a queue pulls from.
const GETTERS: &str = "getters";

/// The longest one pull waits on the server before the getter looks at the
/// shutdown flag and its own deadline again.
const LONGEST_PULL: Duration = Duration::from_secs(1);

/// What names a queue in the cluster, and how it was made: what a task
/// message carries for each queue its job shares with its pools.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueSpec {
    /// The job that made it.
    pub(crate) job: String,
    /// Its id in the job (hex).
    pub(crate) id: String,
    /// The most messages it holds (`0`: no limit but its bytes).
    pub(crate) maxsize: usize,
    /// The most bytes it holds.
    pub(crate) max_bytes: usize,
    /// Whether it counts unfinished tasks.
    pub(crate) joinable: bool,
}

impl QueueSpec {
    fn stream(&self) -> String {
        format!("PROCBRIDGE_Q_{}_{}", self.job, self.id)
    }

    fn control_stream(&self) -> String {
        format!("{}_CTL", self.stream())
    }

    fn prefix(&self) -> String {
        format!("procbridge.queue.{}.{}", self.job, self.id)
    }

    fn items_subject(&self) -> String {
        format!("{}.items", self.prefix())
    }

    fn done_subject(&self) -> String {
        format!("{}.ctl.done", self.prefix())
    }

    fn shutdown_subject(&self) -> String {
        format!("{}.ctl.shutdown", self.prefix())
    }

    /// Whether it is a well-formed queue of `job`: a worker opens no other
    /// job's queue for a task, whatever its message says.
    pub(crate) fn belongs_to(&self, job: &str) -> bool {
        self.job == job
            && !self.id.is_empty()
            && self.id.len() <= 32
            && self.id.chars().all(|c| c.is_ascii_hexdigit())
            && self.max_bytes > 0
    }
}

/// A queue in JetStream, as a process holds it: where the server is and
/// which queue. Copies (fork children, pool workers, tasks on other
/// machines) all reach the same messages.
#[derive(Clone, Debug)]
pub(crate) struct ClusterQueue {
    cluster: Cluster,
    spec: QueueSpec,
}

impl ClusterQueue {
    /// Makes a queue of `job` in the cluster.
    ///
    /// # Errors
    /// `EIO` when the server cannot be reached or refuses the streams.
    pub(crate) fn create(
        cluster: &Cluster,
        job: &str,
        config: QueueConfig,
    ) -> BridgeResult<ClusterQueue> {
        let spec = QueueSpec {
            job: job.to_string(),
            id: super::new_job_id()[..16].to_string(),
            maxsize: config.maxsize,
            max_bytes: config.max_bytes,
            joinable: config.joinable,
        };
        let link = Link::get(cluster)?;
        if MADE.fetch_add(1, Ordering::SeqCst) >= MAX_QUEUES_PER_PROCESS {
            MADE.fetch_sub(1, Ordering::SeqCst);
            return Err(crate::audit::limit(BridgeError::new(
                Errno::NoMem,
                format!(
                    "this process has made {MAX_QUEUES_PER_PROCESS} queues in the NATS server, \
                     the most it may (they stay until the job ends)"
                ),
            )));
        }
        link.run(async {
            let js = &link.js;
            let items = stream::Config {
                name: spec.stream(),
                subjects: vec![spec.items_subject()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                max_messages: if spec.maxsize == 0 {
                    -1
                } else {
                    spec.maxsize as i64
                },
                max_bytes: spec.max_bytes as i64,
                discard: stream::DiscardPolicy::New,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            let created = js.create_stream(items).await.map_err(cluster_error)?;
            created
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(GETTERS.to_string()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: GET_ACK_WAIT,
                    ..Default::default()
                })
                .await
                .map_err(cluster_error)?;
            js.create_stream(stream::Config {
                name: spec.control_stream(),
                subjects: vec![format!("{}.ctl.*", spec.prefix())],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(cluster_error)?;
            Ok(())
        })?;
        Ok(ClusterQueue {
            cluster: cluster.clone(),
            spec,
        })
    }

    /// The queue `spec` names, reached through `cluster` (a worker's copy
    /// of a job's queue). Nothing is asked of the server until it is used.
    pub(crate) fn open(cluster: &Cluster, spec: QueueSpec) -> ClusterQueue {
        ClusterQueue {
            cluster: cluster.clone(),
            spec,
        }
    }

    /// What names it, for task messages.
    pub(crate) fn spec(&self) -> &QueueSpec {
        &self.spec
    }

    /// This process's view of the queue: its connection, and the queue's
    /// consumer and shutdown flag.
    fn opened(&self) -> BridgeResult<(&'static Link, Arc<Opened>)> {
        let link = Link::get(&self.cluster)?;
        let opened = link.open(&self.spec)?;
        Ok((link, opened))
    }

    /// Puts a message once the server has stored it, waiting for room as
    /// `wait` says (and, while the server cannot be reached, for it).
    ///
    /// # Errors
    /// As a local queue's: `E2BIG`, `EAGAIN`, `ETIMEDOUT`, `ENOBUFS`,
    /// `EPIPE` after a shutdown; `EIO` when the server refuses it.
    pub(crate) fn put(&self, msg: &[u8], wait: Wait) -> BridgeResult<()> {
        let (link, opened) = self.opened()?;
        // The server stores the subject and the de-duplication id with
        // each message, and sends none over its own size limit.
        let stored = msg.len() + self.spec.items_subject().len() + MESSAGE_OVERHEAD;
        let largest = self
            .spec
            .max_bytes
            .min(link.client.server_info().max_payload);
        if stored > largest {
            return Err(BridgeError::new(
                Errno::TooBig,
                format!(
                    "a message of {} bytes does not fit in a queue of {} bytes \
                     (the NATS server stores {} bytes with each, and sends at most {})",
                    msg.len(),
                    self.spec.max_bytes,
                    stored - msg.len(),
                    link.client.server_info().max_payload
                ),
            ));
        }
        if opened.is_shut_down() {
            return Err(shut_down());
        }
        let id = link.next_message_id();
        let payload = bytes::Bytes::copy_from_slice(msg);
        link.run(async {
            let started = std::time::Instant::now();
            let mut backoff = Duration::from_millis(1);
            loop {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", id.as_str());
                if let Some(key) = self.cluster.key() {
                    let subject = self.spec.items_subject();
                    seal::sign(key, seal::Kind::QueueItem, &subject, &mut headers, &payload);
                }
                let sent = link.js.publish_with_headers(
                    self.spec.items_subject(),
                    headers,
                    payload.clone(),
                );
                let stored = match within(CALL_TIMEOUT, sent).await {
                    Ok(Ok(ack)) => within(CALL_TIMEOUT, std::future::IntoFuture::into_future(ack))
                        .await
                        .and_then(|acked| acked.map(drop).map_err(|e| e.to_string())),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(err) => Err(err),
                };
                let err = match stored {
                    Ok(()) => return Ok(()),
                    Err(err) => err,
                };
                let full = err.contains("maximum messages") || err.contains("maximum bytes");
                if full && matches!(wait, Wait::Never) && self.spec.maxsize == 0 {
                    return Err(BridgeError::new(
                        Errno::NoBufs,
                        format!("the queue holds its limit of {} bytes", self.spec.max_bytes),
                    ));
                }
                if !full && !transient(&err) {
                    return Err(BridgeError::new(
                        Errno::Io,
                        format!("the NATS server refused the message: {err}"),
                    ));
                }
                if !full && opened.is_gone().await {
                    return Err(gone());
                }
                if opened.is_shut_down() {
                    return Err(shut_down());
                }
                let what = if full {
                    "put on a full queue"
                } else {
                    "put while the NATS server cannot be reached"
                };
                // A put that may not wait for room still waits a moment for
                // the server (a reconnect), then says it would block.
                let left = match wait {
                    Wait::Never if !full => {
                        let left = RECONNECT_GRACE.saturating_sub(started.elapsed());
                        if left.is_zero() {
                            return Err(BridgeError::new(Errno::Again, format!("{what}: {err}")));
                        }
                        Some(left)
                    }
                    _ => wait.remaining(what)?,
                };
                let nap = left.map_or(backoff, |left| left.min(backoff));
                tokio::time::sleep(nap).await;
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
        })
    }

    /// Takes the next message, waiting for one as `wait` says.
    ///
    /// A message is acknowledged, and the server's confirmation awaited,
    /// before it is returned: no other getter is handed it. Only when the
    /// confirmation never comes (the connection lost at that moment) may
    /// the server hand it out again after [`GET_ACK_WAIT`].
    ///
    /// # Errors
    /// `EAGAIN` or `ETIMEDOUT` when none came; `EPIPE` when the queue is
    /// shut down and empty, or gone (its job ended); `EIO` when the server
    /// refuses.
    pub(crate) fn get(&self, wait: Wait) -> BridgeResult<Vec<u8>> {
        let (link, opened) = self.opened()?;
        link.run(async {
            loop {
                let left = if matches!(wait, Wait::Never) {
                    Some(Duration::ZERO)
                } else {
                    wait.left()
                };
                let pull = left
                    .map_or(LONGEST_PULL, |left| left.min(LONGEST_PULL))
                    .max(Duration::from_millis(10));
                let taken = opened
                    .consumer
                    .batch()
                    .max_messages(1)
                    .expires(pull)
                    .messages();
                // The pull's own expiry ends it; the timer is for a pull
                // whose request was lost with the connection.
                let message = match within(pull + CALL_TIMEOUT, async {
                    match taken.await {
                        Ok(mut batch) => batch.next().await.map(|m| m.map_err(|e| e.to_string())),
                        Err(err) => Some(Err(err.to_string())),
                    }
                })
                .await
                {
                    Ok(message) => message,
                    Err(err) => Some(Err(err)),
                };
                match message {
                    Some(Ok(message)) => {
                        confirm(&message).await;
                        match seal::check(self.cluster.key(), seal::Kind::QueueItem, &message) {
                            Ok(()) => return Ok(message.payload.to_vec()),
                            // Taken off the queue, and never handed out.
                            Err(why) => eprintln!(
                                "procbridge: a message on queue {} was dropped: {why} with the \
                                 cluster's key",
                                self.spec.id
                            ),
                        }
                    }
                    Some(Err(err)) => {
                        tracing::debug!("pulling from a queue: {err}");
                        if opened.is_gone().await {
                            return Err(gone());
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    None => {}
                }
                // A shutdown while this process was away from the server
                // reached no subscription: the control stream has it.
                if opened.is_shut_down() || opened.shut_down_in_store().await {
                    opened.shutdown.store(true, Ordering::SeqCst);
                    return Err(shut_down());
                }
                wait.remaining("get from an empty queue")?;
            }
        })
    }

    /// How many messages wait in it.
    ///
    /// # Errors
    /// `EIO` when the server cannot be asked.
    pub(crate) fn qsize(&self) -> BridgeResult<usize> {
        let (link, opened) = self.opened()?;
        let state = link.run(async { opened.items_state().await })?;
        Ok(state.messages as usize)
    }

    /// Whether it holds `maxsize` messages (never, for an unbounded queue).
    ///
    /// # Errors
    /// As [`qsize`](Self::qsize).
    pub(crate) fn is_full(&self) -> BridgeResult<bool> {
        Ok(self.spec.maxsize > 0 && self.qsize()? >= self.spec.maxsize)
    }

    /// Shuts it down everywhere: puts fail with `EPIPE`, gets once it is
    /// empty.
    ///
    /// # Errors
    /// `EIO` when the server cannot be reached.
    pub(crate) fn shutdown(&self) -> BridgeResult<()> {
        let (link, opened) = self.opened()?;
        link.run(async {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", "shutdown");
            link.js
                .publish_with_headers(self.spec.shutdown_subject(), headers, bytes::Bytes::new())
                .await
                .map_err(cluster_error)?
                .await
                .map_err(cluster_error)?;
            Ok::<_, BridgeError>(())
        })?;
        opened.shutdown.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Marks one task got from a joinable queue as done.
    ///
    /// # Errors
    /// `EINVAL` for a queue that is not joinable, or when every task is
    /// done already; `EIO` when the server cannot be reached.
    pub(crate) fn task_done(&self) -> BridgeResult<()> {
        self.check_joinable()?;
        let (link, opened) = self.opened()?;
        link.run(async {
            loop {
                // The last `done` seen is the one this one must follow:
                // two callers with one task left cannot both count it.
                let last = opened.last_done().await?;
                if opened.unfinished().await? == 0 {
                    return Err(BridgeError::invalid("task_done() called too many times"));
                }
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    last.to_string().as_str(),
                );
                let stored = link
                    .js
                    .publish_with_headers(self.spec.done_subject(), headers, bytes::Bytes::new())
                    .await
                    .map_err(cluster_error)?
                    .await;
                match stored {
                    Ok(_) => return Ok(()),
                    Err(err) if matches!(err.kind(), PublishErrorKind::WrongLastSequence) => {
                        continue
                    }
                    Err(err) => return Err(cluster_error(err)),
                }
            }
        })
    }

    /// Waits until every task put in the joinable queue is done.
    ///
    /// # Errors
    /// `EINVAL` for a queue that is not joinable; `EAGAIN` or `ETIMEDOUT`
    /// when tasks remain; `EIO` when the server cannot be reached.
    pub(crate) fn join(&self, wait: Wait) -> BridgeResult<()> {
        self.check_joinable()?;
        let (link, opened) = self.opened()?;
        link.run(async {
            let mut nap = Duration::from_millis(1);
            loop {
                if opened.unfinished().await? == 0 {
                    return Ok(());
                }
                let left = wait.remaining("join with tasks not done")?;
                tokio::time::sleep(left.map_or(nap, |left| left.min(nap))).await;
                nap = (nap * 2).min(Duration::from_millis(50));
            }
        })
    }

    fn check_joinable(&self) -> BridgeResult<()> {
        if self.spec.joinable {
            Ok(())
        } else {
            Err(BridgeError::invalid("the queue is not a JoinableQueue"))
        }
    }
}

fn shut_down() -> BridgeError {
    BridgeError::new(Errno::Pipe, "the queue is shut down")
}

fn gone() -> BridgeError {
    BridgeError::new(
        Errno::Pipe,
        "the queue is gone from the NATS server (its job ended, or it was deleted)",
    )
}

/// How long one request to the server may take before it counts as lost.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a put that may not wait still waits for a server that cannot
/// be reached (a reconnect) before it says it would block.
const RECONNECT_GRACE: Duration = Duration::from_secs(1);

/// `future`'s output, or an error once `limit` has passed.
async fn within<T>(
    limit: Duration,
    future: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| "timed out".to_string())
}

/// Acknowledges a message got, waiting for the server to confirm it; a
/// few tries, a moment apart, when the confirmation does not come.
async fn confirm(message: &jetstream::Message) {
    for _ in 0..3 {
        match within(CALL_TIMEOUT, message.double_ack()).await {
            Ok(Ok(())) => return,
            Ok(Err(err)) => tracing::debug!("acknowledging a queue message: {err}"),
            Err(err) => tracing::debug!("acknowledging a queue message: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cluster_error(err: impl std::fmt::Display) -> BridgeError {
    BridgeError::new(Errno::Io, format!("the queue's NATS server: {err}"))
}

/// Whether a publish failed for want of the server (to be tried again)
/// rather than because it refused the message.
fn transient(err: &str) -> bool {
    // While JetStream starts again after a restart, a publish finds no
    // responder, which the client reports as no stream (a stream that is
    // really gone is told apart by asking for it).
    [
        "timed out",
        "broken pipe",
        "no responders",
        "no stream found",
        "disconnect",
        "connection",
    ]
    .iter()
    .any(|what| err.to_ascii_lowercase().contains(what))
}

/// A queue as one process has opened it.
struct Opened {
    spec: QueueSpec,
    js: jetstream::Context,
    consumer: consumer::PullConsumer,
    /// Set once the queue is known to be shut down.
    shutdown: AtomicBool,
    /// The queue's shutdown subject, as heard (while a call drives the
    /// connection); dropped, and unsubscribed, with the queue.
    notices: Mutex<async_nats::Subscriber>,
}

impl Opened {
    /// Whether the queue is known to be shut down: marked here, or heard.
    fn is_shut_down(&self) -> bool {
        if self.shutdown.load(Ordering::SeqCst) {
            return true;
        }
        let mut notices = self
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(Some(_)) = futures_util::FutureExt::now_or_never(notices.next()) {
            self.shutdown.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Whether the server says the queue's stream is not there (a server
    /// that cannot be asked does not say so).
    async fn is_gone(&self) -> bool {
        match within(CALL_TIMEOUT, self.js.get_stream(self.spec.stream())).await {
            Ok(Err(err)) => err.to_string().contains("stream not found"),
            _ => false,
        }
    }

    /// Whether the control stream holds the shutdown marker.
    async fn shut_down_in_store(&self) -> bool {
        let Ok(Ok(control)) =
            within(CALL_TIMEOUT, self.js.get_stream(self.spec.control_stream())).await
        else {
            return false;
        };
        matches!(
            within(
                CALL_TIMEOUT,
                control.get_last_raw_message_by_subject(&self.spec.shutdown_subject())
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// The items stream's state: one request (looking a stream up brings
    /// its current state).
    async fn items_state(&self) -> BridgeResult<stream::State> {
        let items = self
            .js
            .get_stream(self.spec.stream())
            .await
            .map_err(cluster_error)?;
        Ok(items.cached_info().state.clone())
    }

    /// The sequence number of the last `done` message (`0`: none yet).
    async fn last_done(&self) -> BridgeResult<u64> {
        let control = self
            .js
            .get_stream(self.spec.control_stream())
            .await
            .map_err(cluster_error)?;
        match control
            .get_last_raw_message_by_subject(&self.spec.done_subject())
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(err) if matches!(err.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(0),
            Err(err) => Err(cluster_error(err)),
        }
    }

    /// Messages ever stored less `task_done`s.
    async fn unfinished(&self) -> BridgeResult<u64> {
        let put = self.items_state().await?.last_sequence;
        let control = self
            .js
            .get_stream(self.spec.control_stream())
            .await
            .map_err(cluster_error)?;
        let done = control
            .info_with_subjects(self.spec.done_subject())
            .await
            .map_err(cluster_error)?
            .filter_map(|entry| async move { entry.ok() })
            .fold(0, |sum, (_, n)| async move { sum + n as u64 })
            .await;
        Ok(put.saturating_sub(done))
    }
}

/// This process's connection to the cluster, with the runtime that drives
/// it and the queues opened through it.
struct Link {
    /// The fork count of the process that made it (see
    /// [`crate::process_local::forks`]).
    forks: u64,
    cluster: Cluster,
    runtime: tokio::runtime::Runtime,
    js: jetstream::Context,
    client: async_nats::Client,
    /// Makes this process's de-duplication ids its own.
    token: String,
    sent: AtomicU64,
    queues: Mutex<HashMap<String, Arc<Opened>>>,
}

/// The link [`Link::get`] made last. Never freed, and no lock: a fork child
/// must not find one held by a thread it does not have (it makes its own).
static LINK: AtomicPtr<Link> = AtomicPtr::new(std::ptr::null_mut());

impl Link {
    /// This process's link to `cluster`, made on first use.
    fn get(cluster: &Cluster) -> BridgeResult<&'static Link> {
        let forks = crate::process_local::forks();
        let seen = LINK.load(Ordering::SeqCst);
        // SAFETY: `LINK` holds null or a leaked box, never freed.
        if let Some(link) = unsafe { seen.as_ref() } {
            if link.forks == forks && link.cluster == *cluster {
                return Ok(link);
            }
        }
        // No thread of its own (the connection is driven while a call
        // waits in `run`): a fork never copies a thread's locks held.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("procbridge-nats")
            .enable_all()
            .build()
            .map_err(|e| BridgeError::io("starting the NATS client", e))?;
        // The JetStream context starts a task: made on the runtime.
        let (client, js) = runtime
            .block_on(async {
                let client = cluster.connect().await?;
                let js = jetstream::new(client.clone());
                anyhow::Ok((client, js))
            })
            .map_err(|e| BridgeError::new(Errno::Io, format!("{e:#}")))?;
        let made = Box::into_raw(Box::new(Link {
            forks,
            cluster: cluster.clone(),
            js,
            client,
            runtime,
            token: super::new_job_id(),
            sent: AtomicU64::new(0),
            queues: Mutex::new(HashMap::new()),
        }));
        match LINK.compare_exchange(seen, made, Ordering::SeqCst, Ordering::SeqCst) {
            // SAFETY: leaked from here on.
            Ok(_) => Ok(unsafe { &*made }),
            // Another thread made one first: it is this process's; this
            // one is left alone (its runtime's thread is running).
            Err(_) => Link::get(cluster),
        }
    }

    /// Runs `future` on the link's runtime, waiting here for its end.
    fn run<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// A de-duplication id no other put has.
    fn next_message_id(&self) -> String {
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        format!("{}.{n}", self.token)
    }

    /// The queue as this process sees it, opened on first use: its
    /// consumer bound, its shutdown watched.
    fn open(&self, spec: &QueueSpec) -> BridgeResult<Arc<Opened>> {
        let mut queues = self
            .queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(opened) = queues.get(&spec.stream()) {
            return Ok(opened.clone());
        }
        let opened = Arc::new(self.run(async {
            let items = self
                .js
                .get_stream(spec.stream())
                .await
                .map_err(|e| BridgeError::new(Errno::Io, format!("the queue is gone: {e}")))?;
            let consumer = items.get_consumer(GETTERS).await.map_err(cluster_error)?;
            let shutdown = AtomicBool::new(false);
            let notices = self
                .client
                .subscribe(spec.shutdown_subject())
                .await
                .map_err(cluster_error)?;
            // A shutdown before the subscription is in the stream.
            let control = self
                .js
                .get_stream(spec.control_stream())
                .await
                .map_err(cluster_error)?;
            if control
                .get_last_raw_message_by_subject(&spec.shutdown_subject())
                .await
                .is_ok()
            {
                shutdown.store(true, Ordering::SeqCst);
            }
            Ok::<_, BridgeError>(Opened {
                spec: spec.clone(),
                js: self.js.clone(),
                consumer,
                shutdown,
                notices: Mutex::new(notices),
            })
        })?);
        queues.insert(spec.stream(), opened.clone());
        Ok(opened)
    }
}

/// Closes this process's connections to `job`'s queues (a worker that no
/// longer keeps an instance of the job).
pub(crate) fn forget_job(job: &str) {
    // SAFETY: `LINK` holds null or a leaked box, never freed.
    let Some(link) = (unsafe { LINK.load(Ordering::SeqCst).as_ref() }) else {
        return;
    };
    if link.forks != crate::process_local::forks() {
        return;
    }
    let gone: Vec<Arc<Opened>> = {
        let mut queues = link
            .queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names: Vec<String> = queues
            .iter()
            .filter(|(_, opened)| opened.spec.job == job)
            .map(|(name, _)| name.clone())
            .collect();
        names
            .iter()
            .filter_map(|name| queues.remove(name))
            .collect()
    };
    // Unsubscribing is a message to the server: sent on the link's runtime.
    link.run(async move { drop(gone) });
}

/// Deletes the queues `job` made (when it ends).
///
/// # Errors
/// When the server cannot be reached.
pub(crate) async fn delete_job_queues(js: &jetstream::Context, job: &str) -> anyhow::Result<usize> {
    let prefix = format!("PROCBRIDGE_Q_{job}_");
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|name| async move { name.ok() })
        .filter(|name| std::future::ready(name.starts_with(&prefix)))
        .collect()
        .await;
    let mut deleted = 0;
    for name in names {
        if js.delete_stream(&name).await.is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> QueueSpec {
        QueueSpec {
            job: "abc123".into(),
            id: "00ff".into(),
            maxsize: 0,
            max_bytes: 1024,
            joinable: false,
        }
    }

    #[test]
    fn a_queue_s_names_are_its_job_s() {
        let spec = spec();
        assert_eq!(spec.stream(), "PROCBRIDGE_Q_abc123_00ff");
        assert_eq!(spec.control_stream(), "PROCBRIDGE_Q_abc123_00ff_CTL");
        assert_eq!(spec.items_subject(), "procbridge.queue.abc123.00ff.items");
        assert_eq!(spec.done_subject(), "procbridge.queue.abc123.00ff.ctl.done");
        assert!(spec.belongs_to("abc123"));
        assert!(!spec.belongs_to("abc124"));
    }

    #[test]
    fn a_spec_naming_subjects_outside_its_queue_is_refused() {
        for id in [
            "",
            "00ff.>",
            "*",
            "x y",
            "0123456789abcdef0123456789abcdef0",
        ] {
            let spec = QueueSpec {
                id: id.into(),
                ..spec()
            };
            assert!(!spec.belongs_to("abc123"), "{id:?}");
        }
        let empty = QueueSpec {
            max_bytes: 0,
            ..spec()
        };
        assert!(!empty.belongs_to("abc123"));
    }

    #[test]
    fn only_a_missing_server_is_worth_another_try() {
        assert!(transient("timed out"));
        assert!(transient("Broken pipe"));
        assert!(transient("no stream found for given subject"));
        assert!(!transient("maximum message size exceeded"));
    }
}
