//! The worker's side: `procbridge worker --nats URL`.
//!
//! A worker takes one chunk of tasks at a time from the shared consumer,
//! runs it in an instance kept for that job (see `instance.rs`: a
//! [`Plugin`](crate::Plugin) of the job's module, no `_start`, the task
//! exports called as a pool worker calls them; for a Python job, the
//! worker's own interpreter serving the job's batches), under the worker's
//! policy narrowed to the job's grants, and
//! publishes the reply frame to the job's result subject. While a chunk
//! runs, the worker tells the server every third of [`ACK_WAIT`] that it is
//! still at it; a worker that dies stops saying so, and the chunk goes to
//! another.
//!
//! The NATS side runs on a runtime of its own on a second thread; the
//! guests run on the thread that called [`serve`], as `Runtime::run` does
//! (a Python job's interpreter on a thread of its own).

use super::connect::{self, Cluster};
use super::instance::{Instance, Module, NotReturned, Python};
use super::queue::ClusterQueue;
use super::seal::{self, ClusterKey};
use super::wire::{
    self, failed_reply, reply_chunk, reply_to_all, too_large, SharedQueue, TaskHeaders,
};
use super::{alive_subject, cancel_subject, output_subject, ACK_WAIT, MAX_DELIVER, TASKS, WORKERS};
use crate::api::queue::{QueueHandle, KIND as QUEUE_KIND};
use crate::pool::frame;
use crate::python::Bundle;
use crate::{audit, GuestBuilder, HostState, OutputSink, Policy, Runtime, StdStream, Stdio};
use anyhow::{anyhow, Context};
use async_nats::jetstream::{self, consumer, AckKind};
use futures_util::{FutureExt, StreamExt};
use procbridge_abi::pool::{STATUS_FAILED, STATUS_OK, STATUS_WORKER_LOST};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How many jobs' instances a worker keeps (the oldest goes first).
const KEPT_JOBS: usize = 8;
/// How many compiled modules a worker keeps.
const KEPT_PROGRAMS: usize = 16;
/// A chunk whose relay does not answer is handed out again after this, up
/// to [`RELAY_ASKED`] times, before it is dropped.
const RELAY_RETRY: Duration = Duration::from_secs(1);
/// See [`RELAY_RETRY`].
const RELAY_ASKED: i64 = 3;
/// The digests of the modules the executor has (shared with the NATS side,
/// which fetches only the others).
type Loaded = Arc<Mutex<HashSet<String>>>;
/// How many cancelled jobs a worker remembers.
const KEPT_CANCELLED: usize = 1024;

/// Serves tasks from `cluster` under `policy` until the process is
/// stopped. `ready` is called once the worker takes tasks.
///
/// # Errors
/// When the server cannot be reached at start, or the worker's own
/// machinery fails.
pub fn serve(
    runtime: Runtime,
    cluster: &Cluster,
    policy: Policy,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let (orders, taken) = crossbeam_channel::bounded::<Order>(1);
    let (output, lines) = tokio::sync::mpsc::channel(OUTPUT_LINES_WAITING);
    let loaded = Loaded::default();
    let (started, is_ready) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let nats = std::thread::Builder::new()
        .name("procbridge-nats".into())
        .spawn({
            let (loaded, cluster) = (loaded.clone(), cluster.clone());
            move || cluster.block_on(take_tasks(&cluster, orders, lines, loaded, started))
        })
        .context("cannot start the worker's NATS thread")?;
    match is_ready.recv() {
        Ok(Ok(())) => ready(),
        Ok(Err(err)) => return Err(err),
        Err(_) => {}
    }
    let mut executor = Executor::new(Arc::new(runtime), policy, output, loaded, cluster.clone());
    for order in taken {
        let reply = executor.run(&order);
        let _ = order.done.send(reply);
    }
    match nats.join() {
        Ok(result) => result,
        Err(_) => Err(anyhow!("the worker's NATS thread panicked")),
    }
}

/// A chunk for the executor.
struct Order {
    headers: TaskHeaders,
    /// The module, when the executor has not seen it yet.
    module: Option<Vec<u8>>,
    /// The request frame.
    frame: bytes::Bytes,
    done: oneshot::Sender<Vec<u8>>,
}

/// The NATS side: takes messages, hands them to the executor, publishes
/// the replies.
async fn take_tasks(
    cluster: &Cluster,
    orders: crossbeam_channel::Sender<Order>,
    mut lines: tokio::sync::mpsc::Receiver<Outgoing>,
    loaded: Loaded,
    started: std::sync::mpsc::Sender<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let setup = async {
        let client = cluster.connect().await?;
        let js = connect::setup(&client).await?;
        let consumer: consumer::PullConsumer = js
            .get_stream(TASKS)
            .await
            .map_err(|e| anyhow!("the task stream: {e}"))?
            .get_consumer(WORKERS)
            .await
            .map_err(|e| anyhow!("the workers' consumer: {e}"))?;
        let cancels = client
            .subscribe(cancel_subject("*"))
            .await
            .map_err(|e| anyhow!("cannot subscribe to cancellations: {e}"))?;
        // Output lines go out as they come, whatever the loop below waits
        // for (plain NATS: a line lost while the server is away is lost).
        let publisher = client.clone();
        let key = cluster.key().cloned();
        tokio::spawn(async move {
            while let Some(outgoing) = lines.recv().await {
                let (subject, payload) = match outgoing {
                    Outgoing::Line(subject, payload) => (subject, payload),
                    // Published (handed to the connection, ahead of the
                    // result published next on the same one).
                    Outgoing::Mark(told) => {
                        let _ = told.try_send(());
                        continue;
                    }
                };
                let mut headers = async_nats::HeaderMap::new();
                if let Some(key) = &key {
                    seal::sign(key, seal::Kind::Output, &subject, &mut headers, &payload);
                }
                let _ = publisher
                    .publish_with_headers(subject, headers, payload)
                    .await;
            }
        });
        anyhow::Ok((client, js, consumer, cancels))
    };
    let (client, js, consumer, mut cancels) = match setup.await {
        Ok(parts) => {
            let _ = started.send(Ok(()));
            parts
        }
        Err(err) => {
            let _ = started.send(Err(anyhow!("{err:#}")));
            return Err(err);
        }
    };
    let mut cancelled: VecDeque<String> = VecDeque::new();
    loop {
        let batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(err) => {
                tracing::debug!("fetching a task: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while let Some(message) = batch.next().await {
            let message = match message {
                Ok(message) => message,
                Err(err) => {
                    tracing::debug!("fetching a task: {err}");
                    continue;
                }
            };
            if let Err(why) = seal::check(cluster.key(), seal::Kind::Task, &message) {
                refuse_unsigned(&js, &message, why).await;
                continue;
            }
            let headers = match TaskHeaders::read(message.headers.as_ref()) {
                Ok(headers) => headers,
                Err(err) => {
                    eprintln!("procbridge worker: {err:#}; dropped");
                    let _ = message.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            note_cancellations(&mut cancels, &mut cancelled).await;
            let delivered = message.info().map_or(1, |info| info.delivered);
            if cancelled.contains(&headers.job) {
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            }
            if !relay_lives(&client, &headers).await {
                // Nobody listens for its results. Right after a server
                // restart that may be a relay not yet reconnected: the chunk
                // comes back a little later, and is dropped only when its
                // relay stays silent.
                let kind = if delivered < RELAY_ASKED {
                    AckKind::Nak(Some(RELAY_RETRY))
                } else {
                    AckKind::Term
                };
                let _ = message.ack_with(kind).await;
                continue;
            }
            if delivered > 1 && !headers.retry_lost {
                // Handed out before and not done: its worker was lost, and
                // its pool does not run such tasks again.
                let why = "the worker running this chunk ended, and its pool does not run \
                           lost tasks again";
                let reply = reply_to_all(&message.payload, STATUS_WORKER_LOST, why);
                finish(&js, cluster.key(), &message, &headers, reply).await;
                continue;
            }
            if delivered >= MAX_DELIVER {
                // Its workers died every time: this one would too.
                let why = format!(
                    "worker lost: this chunk was handed out {} times before without being done \
                     (its workers ended)",
                    delivered - 1
                );
                let reply = reply_to_all(&message.payload, STATUS_WORKER_LOST, &why);
                finish(&js, cluster.key(), &message, &headers, reply).await;
                continue;
            }
            let module = if lock(&loaded).contains(&headers.module) {
                None
            } else {
                match with_progress(&message, fetch_module(&js, &headers.module)).await {
                    Ok(bytes) => Some(bytes),
                    Err(err) => {
                        // The job hears why rather than waiting for ever.
                        let reply =
                            reply_to_all(&message.payload, STATUS_FAILED, &format!("{err:#}"));
                        finish(&js, cluster.key(), &message, &headers, reply).await;
                        continue;
                    }
                }
            };
            let (done, reply) = oneshot::channel();
            let order = Order {
                headers: headers.clone(),
                module,
                frame: message.payload.clone(),
                done,
            };
            if orders.send(order).is_err() {
                return Ok(());
            }
            match with_progress(&message, reply).await {
                Ok(reply) => finish(&js, cluster.key(), &message, &headers, reply).await,
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Refuses a task message not signed with the cluster's key: it is not
/// run, the refusal is logged and audited, and its sender (if it names a
/// relay of its job) is told why, unsigned, so that what this worker signs
/// never answers a message it could not check.
async fn refuse_unsigned(js: &jetstream::Context, message: &jetstream::Message, why: &str) {
    let claimed = TaskHeaders::read(message.headers.as_ref()).ok();
    let sender = claimed.as_ref().map_or_else(
        || String::from("a sender whose headers are malformed"),
        |h| format!("job {} ({})", h.job, h.who),
    );
    eprintln!(
        "procbridge worker: refused a task message from {sender}: {why} (this worker takes \
         only tasks signed with the cluster's key)"
    );
    audit::Event::new(audit::Kind::RemoteTask)
        .command(sender)
        .outcome(format!("refused: {why}"))
        .record();
    if let Some(headers) = claimed {
        let reply = reply_to_all(
            &message.payload,
            STATUS_FAILED,
            &format!(
                "refused by the worker: the task message {why}; this worker takes only tasks \
                 signed with the cluster's key (give the job the workers' --cluster-key)"
            ),
        );
        finish(js, None, message, &headers, reply).await;
    } else {
        let _ = message.ack_with(AckKind::Term).await;
    }
}

/// Takes in the cancellations that came while the loop waited (the
/// latest [`KEPT_CANCELLED`] jobs are remembered).
async fn note_cancellations(
    cancels: &mut async_nats::Subscriber,
    cancelled: &mut VecDeque<String>,
) {
    tokio::task::yield_now().await;
    while let Some(Some(message)) = cancels.next().now_or_never() {
        if let Some(job) = message.subject.as_str().rsplit('.').next() {
            if cancelled.len() == KEPT_CANCELLED {
                cancelled.pop_front();
            }
            cancelled.push_back(job.to_string());
        }
    }
}

/// Whether the relay that sent a chunk still waits for its results: it
/// answers on its alive subject while it lives. Only "no responders" (the
/// server knows nobody listens there) counts as gone; a timeout or a lost
/// connection runs the chunk anyway.
async fn relay_lives(client: &async_nats::Client, headers: &TaskHeaders) -> bool {
    let asked = client.request(alive_subject(&headers.reply), bytes::Bytes::new());
    match tokio::time::timeout(Duration::from_secs(1), asked).await {
        Ok(Err(err)) if err.kind() == async_nats::RequestErrorKind::NoResponders => {
            tracing::debug!(
                "job {}: its relay is gone ({}); chunk dropped",
                headers.job,
                alive_subject(&headers.reply)
            );
            false
        }
        _ => true,
    }
}

/// Awaits `work`, telling the server every third of [`ACK_WAIT`] that the
/// chunk is in progress (so that a module's download or a long chunk is not
/// taken for a dead worker).
async fn with_progress<T>(
    message: &jetstream::Message,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep(ACK_WAIT / 3) => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// How many times a worker fetches a module before it fails the task.
const MODULE_FETCHES: u32 = 6;

/// The module stored under `digest`, fetched again after a failure that a
/// server restarting or a lost connection explains: up to
/// [`MODULE_FETCHES`] times, waiting 250 ms, then twice as long each time
/// (about 8 s in all). A module refused for its size or content is not
/// fetched again.
async fn fetch_module(js: &jetstream::Context, digest: &str) -> anyhow::Result<Vec<u8>> {
    let mut delay = Duration::from_millis(250);
    let mut fetches = 1;
    loop {
        match connect::get_module(js, digest).await {
            Err(err)
                if fetches < MODULE_FETCHES
                    && err.downcast_ref::<connect::ModuleRefused>().is_none() =>
            {
                tracing::warn!("{err:#}; fetching module {digest} again in {delay:?}");
                tokio::time::sleep(delay).await;
                delay *= 2;
                fetches += 1;
            }
            fetched => return fetched,
        }
    }
}

/// Publishes the reply (retrying until it is stored) and acknowledges the
/// task.
async fn finish(
    js: &jetstream::Context,
    key: Option<&ClusterKey>,
    message: &jetstream::Message,
    headers: &TaskHeaders,
    mut reply: Vec<u8>,
) {
    let limit = js_limit(js);
    if reply.len() > limit {
        reply = too_large(&message.payload, reply.len(), limit);
    }
    let chunk = reply_chunk(&reply);
    let result_headers =
        wire::result_headers(&headers.result_id(chunk), key, &headers.reply, &reply);
    connect::publish_stored(js, headers.reply.clone(), result_headers, reply.into()).await;
    // A lost acknowledgement only makes the chunk run again, and its result
    // be dropped as a duplicate: no round trip to wait for here.
    if let Err(err) = message.ack().await {
        tracing::debug!("acknowledging a task: {err}");
    }
}

/// The largest message the server takes (what it said when we connected).
fn js_limit(js: &jetstream::Context) -> usize {
    js.client().server_info().max_payload
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The guest side: instances kept per job, and the chunks run in them.
struct Executor {
    runtime: Arc<Runtime>,
    policy: Policy,
    /// Modules compiled (or that failed to), the most recently used last.
    programs: Vec<(String, Result<Module, String>)>,
    /// The worker's Python interpreter, once a Python job came.
    python: Option<Arc<Python>>,
    /// Their digests, which the NATS side need not fetch again.
    loaded: Loaded,
    /// Jobs' instances, the most recently used last.
    jobs: Vec<KeptJob>,
    /// Where the instances' output lines go (published by the NATS side).
    output: Output,
    /// Where the jobs' queues are.
    cluster: Cluster,
}

/// Gives a new instance of the job the queues its chunk's relay holds,
/// under the handles the job knows them by, before its tasks make handles
/// of their own.
fn hold_queues(
    state: &mut HostState,
    cluster: &Cluster,
    queues: &[SharedQueue],
) -> Result<(), String> {
    for shared in queues {
        let queue = ClusterQueue::open(cluster, shared.queue.clone());
        state
            .bridge
            .handles
            .insert_inheritable_at(shared.handle, QUEUE_KIND, QueueHandle::Cluster(queue))
            .map_err(|e| format!("the worker cannot hold the job's queues: {e}"))?;
    }
    Ok(())
}

/// Output lines to publish.
type Output = tokio::sync::mpsc::Sender<Outgoing>;

/// What the executor hands the NATS side to publish.
enum Outgoing {
    /// An output line: subject and payload.
    Line(String, bytes::Bytes),
    /// Answered once every line before it is published.
    Mark(crossbeam_channel::Sender<()>),
}

/// How long a chunk's reply waits for the chunk's output lines to be
/// published before it goes without them (they follow it).
const OUTPUT_AHEAD_WAIT: Duration = Duration::from_secs(2);

/// How many output lines may wait to be published: past them, the thread
/// reading the job's output waits, and so, once its pipe is full, does the
/// task writing it (a task printing faster than the server takes lines
/// holds a bounded amount of the worker's memory).
const OUTPUT_LINES_WAITING: usize = 4096;

/// Waits until the lines a chunk's instance wrote are published, so that
/// they reach the job before the chunk's reply (published next, on the
/// same connection), as a local worker's writes reach the job's output
/// before its result does. Lines of processes the chunk started are not
/// waited for, nor lines the NATS side cannot publish for
/// [`OUTPUT_AHEAD_WAIT`].
fn send_output_ahead(sink: &OutputSink, output: &Output) {
    let deadline = std::time::Instant::now() + OUTPUT_AHEAD_WAIT;
    if !sink.sync(OUTPUT_AHEAD_WAIT) {
        return;
    }
    let (told, published) = crossbeam_channel::bounded(1);
    if output.blocking_send(Outgoing::Mark(told)).is_ok() {
        let _ = published.recv_deadline(deadline);
    }
}

/// A job's instance, and where its output goes now: to the relay whose
/// chunk it runs (or ran last). It serves only chunks that name the same
/// job, module, grants and queues (a message naming another job's id gets
/// an instance of its own, never that job's; a pool given a new queue
/// gets an instance that holds it).
struct KeptJob {
    job: String,
    module: String,
    grants: crate::policy::GrantRequest,
    queues: Vec<SharedQueue>,
    instance: Instance,
    output_to: Arc<Mutex<String>>,
    /// Where its output goes.
    sink: OutputSink,
}

impl KeptJob {
    fn serves(&self, headers: &TaskHeaders) -> bool {
        self.job == headers.job
            && self.module == headers.module
            && self.grants == headers.grants
            && self.queues == headers.queues
    }
}

impl Executor {
    fn new(
        runtime: Arc<Runtime>,
        policy: Policy,
        output: Output,
        loaded: Loaded,
        cluster: Cluster,
    ) -> Executor {
        Executor {
            runtime,
            policy,
            programs: Vec::new(),
            python: None,
            loaded,
            jobs: Vec::new(),
            output,
            cluster,
        }
    }

    /// Runs one chunk; returns its reply frame.
    fn run(&mut self, order: &Order) -> Vec<u8> {
        let request = match frame::next_frame(&order.frame) {
            Ok(Some((payload, len))) if len == order.frame.len() => frame::request(payload).ok(),
            _ => None,
        };
        let Some(request) = request else {
            return failed_reply(&order.frame, "a malformed task message");
        };
        let headers = &order.headers;
        audit::Event::new(audit::Kind::RemoteTask)
            .target(request.name)
            .command(format!("job {} ({})", headers.job, headers.who))
            .outcome(format!("module {}", headers.module))
            .record();
        // A spawn-method process's target gets an instance of its own,
        // dropped (its processes killed) once it returns.
        let mut one_off = None;
        let kept = if order.headers.fresh {
            match self.instantiate(order) {
                Ok(kept) => one_off.insert(kept),
                Err(message) => return failed_reply(&order.frame, &message),
            }
        } else {
            match self.kept(order) {
                Ok(kept) => kept,
                Err(message) => return failed_reply(&order.frame, &message),
            }
        };
        let instance = &mut kept.instance;

        let mut items = Vec::with_capacity(request.items.len());
        let mut ended = None;
        for args in &request.items {
            if let Some(why) = &ended {
                items.push((
                    STATUS_WORKER_LOST,
                    format!(
                        "not run: an earlier task of its chunk ended the worker's instance ({why})"
                    )
                    .into_bytes(),
                ));
                continue;
            }
            match instance.call(request.name, args, order.headers.fresh) {
                Ok(bytes) => items.push((STATUS_OK, bytes)),
                Err(NotReturned {
                    status,
                    message,
                    ended: gone,
                }) => {
                    if gone {
                        ended = Some(message.clone());
                    }
                    items.push((status, message.into_bytes()));
                }
            }
        }
        let mut out = Vec::new();
        frame::push_reply(&mut out, request.id, ended.is_some(), &items);
        let sink = kept.sink.clone();
        send_output_ahead(&sink, &self.output);
        out
    }

    /// The job's instance: the one kept, or a new one.
    fn kept(&mut self, order: &Order) -> Result<&mut KeptJob, String> {
        if let Some(at) = self
            .jobs
            .iter()
            .position(|kept| kept.serves(&order.headers) && kept.instance.is_alive())
        {
            let kept = self.jobs.remove(at);
            self.jobs.push(kept);
        } else {
            if let Some(at) = self.jobs.iter().position(|k| k.serves(&order.headers)) {
                self.drop_kept(at);
            }
            let kept = self.instantiate(order)?;
            if self.jobs.len() == KEPT_JOBS {
                self.drop_kept(0);
            }
            self.jobs.push(kept);
        }
        let kept = self.jobs.last_mut().expect("pushed above");
        *lock(&kept.output_to) = output_subject(&order.headers.reply);
        Ok(kept)
    }

    /// Drops a kept instance; the job's queues too, unless another kept
    /// instance of the job holds them.
    fn drop_kept(&mut self, at: usize) {
        let gone = self.jobs.remove(at);
        if !self.jobs.iter().any(|kept| kept.job == gone.job) {
            crate::cluster::queue::forget_job(&gone.job);
        }
    }

    /// A new instance for the job, its output going to its relays.
    fn instantiate(&mut self, order: &Order) -> Result<KeptJob, String> {
        let module = self.module(order)?;
        let policy = self.policy.granted_to(&order.headers.grants);
        let output_to = Arc::new(Mutex::new(output_subject(&order.headers.reply)));
        let sink = {
            let (output, output_to) = (self.output.clone(), output_to.clone());
            OutputSink::new(move |line| {
                let mut payload = Vec::with_capacity(line.line.len() + 2);
                payload.push(match line.stream {
                    StdStream::Stdout => 1,
                    StdStream::Stderr => 2,
                });
                payload.extend_from_slice(&line.line);
                payload.push(b'\n');
                // On the sink's own thread, outside any runtime.
                let subject = lock(&output_to).clone();
                let _ = output.blocking_send(Outgoing::Line(subject, payload.into()));
            })
            .map_err(|e| format!("the worker cannot pass on the job's output: {e}"))?
        };
        let configure = |guest: &mut GuestBuilder| {
            guest
                .policy(policy)
                .stdout(Stdio::Sink(sink.clone()))
                .stderr(Stdio::Sink(sink.clone()));
        };
        let cluster = self.cluster.clone();
        let (cluster, queues) = (&cluster, &order.headers.queues);
        let instance = match module {
            Module::Wasm(program) => {
                let mut guest = GuestBuilder::new();
                guest.arg(format!("module {}", order.headers.module));
                configure(&mut guest);
                let state = guest
                    .build()
                    .map_err(|e| format!("the worker cannot set up the job's grants: {e:#}"))?;
                let plugin = self
                    .runtime
                    .instantiate(&program, state)
                    .map_err(|e| format!("the worker cannot instantiate the module: {e:#}"))?;
                let instance = Instance::Wasm(plugin);
                instance
                    .with_state(|state| hold_queues(state, cluster, queues))
                    .unwrap_or(Ok(()))?;
                instance
            }
            Module::Python(bundle) => self
                .python()?
                .serve(&self.runtime, &bundle, configure, |state| {
                    hold_queues(state, cluster, queues)
                })
                .map_err(|e| format!("the worker cannot serve the Python job: {e:#}"))?,
        };
        Ok(KeptJob {
            job: order.headers.job.clone(),
            module: order.headers.module.clone(),
            grants: order.headers.grants.clone(),
            queues: order.headers.queues.clone(),
            instance,
            output_to,
            sink,
        })
    }

    /// The worker's Python interpreter, loaded at the first Python job
    /// (tried again at the next when it could not be: it may be installed
    /// since).
    fn python(&mut self) -> Result<Arc<Python>, String> {
        if let Some(python) = &self.python {
            return Ok(python.clone());
        }
        let python = Python::load(&self.runtime)
            .map(Arc::new)
            .map_err(|e| format!("this worker cannot run Python jobs: {e:#}"))?;
        Ok(self.python.insert(python).clone())
    }

    /// The job's module, compiled once per module (the last
    /// [`KEPT_PROGRAMS`] kept); a Python job's bundle, read.
    fn module(&mut self, order: &Order) -> Result<Module, String> {
        let digest = &order.headers.module;
        if let Some(at) = self.programs.iter().position(|(d, _)| d == digest) {
            let kept = self.programs.remove(at);
            self.programs.push(kept);
        } else {
            let Some(bytes) = &order.module else {
                // The NATS side saw it loaded; it was dropped since.
                lock(&self.loaded).remove(digest);
                return Err(format!(
                    "module {digest} is no longer loaded here; try again"
                ));
            };
            let loaded = if Bundle::is_bundle(bytes) {
                Bundle::parse(bytes)
                    .map(|bundle| Module::Python(Arc::new(bundle)))
                    .map_err(|e| format!("the worker cannot read Python job {digest}: {e:#}"))
            } else {
                self.runtime
                    .load_bytes(&format!("module {digest}"), bytes)
                    .map(Module::Wasm)
                    .map_err(|e| format!("the worker cannot load module {digest}: {e}"))
            };
            if self.programs.len() == KEPT_PROGRAMS {
                let (gone, _) = self.programs.remove(0);
                lock(&self.loaded).remove(&gone);
            }
            self.programs.push((digest.clone(), loaded));
            lock(&self.loaded).insert(digest.clone());
        }
        self.programs.last().expect("pushed above").1.clone()
    }
}
