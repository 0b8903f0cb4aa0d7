//! The job's side: a pool worker that runs nothing itself.
//!
//! A relay is started as a local pool worker is (a forked child with a
//! socket to the pool), so the pool schedules, times out and replaces it as
//! it does any worker. It publishes each request frame it is sent to the
//! task stream and writes the results back, in the order the requests
//! came, as they arrive on its own result subject. Its requests may run on
//! different workers at once: a relay with several chunks in flight spreads
//! them over the cluster.

use super::seal::{self, ClusterKey};
use super::wire::Sending;
use super::{alive_subject, connect, output_subject, result_subject, wire, JobLink, RESULTS};
use crate::api::queue::{QueueHandle, KIND as QUEUE_KIND};
use crate::ctx::HostState;
use crate::pool::frame;
use anyhow::{anyhow, bail, Context};
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use procbridge_abi::pool::STATUS_FAILED;
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmtime::Caller;

/// Serves the pool on `sock` until it stops this worker; then ends the
/// process.
/// `retry_lost`: whether a chunk whose worker was lost runs again on
/// another (see `Pool::set_retry_lost`).
pub(crate) fn serve(
    caller: &mut Caller<'_, HostState>,
    sock: OwnedFd,
    link: &JobLink,
    retry_lost: bool,
) -> ! {
    let queues = shared_queues(caller.data());
    // A pool of a process that dropped grants asks for no more than it has.
    let grants = link.grants_of(&caller.data().bridge.policy);
    let sending = Sending {
        grants: &grants,
        queues: &queues,
        retry_lost,
        fresh: false,
    };
    let code = match link.cluster.block_on(relay(sock, link, &sending)) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!(
                "procbridge: a pool worker's link to {}: {err:#}",
                link.cluster.display_url()
            );
            1
        }
    };
    crate::process::exit_child(caller.data_mut(), code)
}

/// What a task message's headers take besides its grants and queues, at
/// most: their names, the ids, the reply subject, who runs the job.
pub(super) const OTHER_HEADERS: usize = 2048;

/// The job's queues in JetStream this relay holds (every one made before
/// the pool forked it, which includes those given to the pool), as the
/// task header carries them: JSON, or empty for none.
pub(crate) fn shared_queues(state: &HostState) -> String {
    let mut queues = Vec::new();
    state
        .bridge
        .handles
        .for_each_inheritable::<QueueHandle>(QUEUE_KIND, |handle, queue| {
            if let QueueHandle::Cluster(queue) = queue {
                queues.push(wire::SharedQueue {
                    handle,
                    queue: queue.spec().clone(),
                });
            }
        });
    if queues.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&queues).unwrap_or_default()
    }
}

/// What the relay has sent and not yet answered.
#[derive(Debug, Default)]
struct InFlight {
    /// Chunk ids, in the order the pool sent them.
    order: VecDeque<u64>,
    /// How many tasks each holds.
    tasks: HashMap<u64, usize>,
    /// Results that came before those of earlier chunks.
    arrived: HashMap<u64, bytes::Bytes>,
}

impl InFlight {
    /// Notes a chunk of `tasks` tasks sent.
    fn send(&mut self, id: u64, tasks: usize) {
        self.order.push_back(id);
        self.tasks.insert(id, tasks);
    }

    /// Fails every task of chunk `id` with `why`, if it is still waited
    /// for; `false` if not.
    fn fail(&mut self, id: u64, why: &str) -> bool {
        let Some(&tasks) = self.tasks.get(&id) else {
            return false;
        };
        let mut body = Vec::new();
        let items = vec![(STATUS_FAILED, why.as_bytes().to_vec()); tasks];
        frame::push_reply(&mut body, id, false, &items);
        self.arrive(body.into())
    }

    /// Takes in a result frame; `false` when it answers nothing this relay
    /// is waiting for (a duplicate, or not a reply frame at all).
    fn arrive(&mut self, mut body: bytes::Bytes) -> bool {
        let Some(id) = reply_id(&body) else {
            return false;
        };
        if !self.order.contains(&id) || self.arrived.contains_key(&id) {
            return false;
        }
        // The remote instance that could not go on is the worker's, not
        // this relay's: the pool keeps sending here.
        if body[12] != 0 {
            let mut owned = body.to_vec();
            owned[12] = 0;
            body = owned.into();
        }
        self.arrived.insert(id, body);
        true
    }

    /// The results that can be written now, in the pool's order.
    fn ready(&mut self) -> Vec<bytes::Bytes> {
        let mut out = Vec::new();
        while let Some(body) = self.order.front().and_then(|id| self.arrived.remove(id)) {
            if let Some(id) = self.order.pop_front() {
                self.tasks.remove(&id);
            }
            out.push(body);
        }
        out
    }
}

/// The chunk id of a well-formed reply frame that is the whole of `body`.
fn reply_id(body: &[u8]) -> Option<u64> {
    match frame::next_frame(body) {
        Ok(Some((payload, len))) if len == body.len() => frame::reply(payload).ok().map(|r| r.id),
        _ => None,
    }
}

/// What a relay (or a remote process's stand-in) hears: its results, the
/// workers asking whether it still waits, its tasks' output lines.
pub(super) struct Listening {
    pub(super) client: async_nats::Client,
    pub(super) js: jetstream::Context,
    pub(super) incoming: consumer::pull::Stream,
    pub(super) alive: async_nats::Subscriber,
    pub(super) output: async_nats::Subscriber,
    /// The cluster's key: results and output lines not signed with it are
    /// refused.
    pub(super) key: Option<ClusterKey>,
}

/// A result message, and whether its signature was refused.
pub(super) struct Arrival {
    pub(super) message: jetstream::Message,
    /// Why it is not taken as it is (the cluster has a key, and it is not
    /// signed with it); `None`: it is.
    pub(super) refused: Option<String>,
}

impl Arrival {
    /// The chunk it claims to answer, and why its tasks fail instead, when
    /// it is refused.
    pub(super) fn refusal(&self) -> Option<(u64, String)> {
        let why = self.refused.as_ref()?;
        let id = reply_id(&self.message.payload)?;
        Some((id, why.clone()))
    }
}

impl Listening {
    /// The next result message, passing on output lines and answering the
    /// workers meanwhile. (Cancel-safe: dropped at an await, it loses at
    /// most an answer to a worker, which asks again.)
    pub(super) async fn next_result(&mut self) -> anyhow::Result<Arrival> {
        loop {
            tokio::select! {
                Some(line) = self.output.next() => self.pass_on(&line),
                Some(asked) = self.alive.next() => {
                    if let Some(reply) = asked.reply {
                        let _ = self.client.publish(reply, bytes::Bytes::new()).await;
                    }
                }
                message = self.incoming.next() => match message {
                    Some(Ok(message)) => {
                        let checked = seal::check(self.key.as_ref(), seal::Kind::Result, &message);
                        let refused = checked.err().map(|why| {
                            format!(
                                "a result came for its chunk that the job refused: {why} with \
                                 the cluster's key (are the workers given the job's \
                                 --cluster-key?)"
                            )
                        });
                        return Ok(Arrival { message, refused });
                    }
                    // Missed heartbeats while the server restarts: the
                    // stream goes on once it is back.
                    Some(Err(err)) => tracing::debug!("results: {err}"),
                    None => bail!("the result subscription ended"),
                },
            }
        }
    }

    /// Passes on the output lines that trail the last result, until none
    /// came for [`OUTPUT_TRAILS`].
    pub(super) async fn pass_on_trailing_output(&mut self) {
        while let Ok(Some(line)) = tokio::time::timeout(OUTPUT_TRAILS, self.output.next()).await {
            self.pass_on(&line);
        }
    }

    /// Passes on the output lines already here, without waiting.
    pub(super) fn pass_on_waiting_output(&mut self) {
        use futures_util::FutureExt;
        while let Some(Some(line)) = self.output.next().now_or_never() {
            self.pass_on(&line);
        }
    }

    /// Writes an output line out, unless the job has a key and the line is
    /// not signed with it.
    fn pass_on(&self, line: &async_nats::Message) {
        match seal::check(self.key.as_ref(), seal::Kind::Output, line) {
            Ok(()) => write_line(&line.payload),
            Err(why) => tracing::debug!("an output line refused ({why}), dropped"),
        }
    }
}

/// Connects, and listens on the subjects of relay `me` of the job.
pub(super) async fn listen(link: &JobLink, me: u32) -> anyhow::Result<Listening> {
    let client = link.cluster.connect().await?;
    let js = jetstream::new(client.clone());
    let results = js
        .get_stream(RESULTS)
        .await
        .map_err(|e| anyhow!("the result stream: {e}"))?;
    let name = format!("relay-{}-{me}", link.job);
    let consumer: consumer::PullConsumer = results
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: result_subject(&link.job, me),
                ack_policy: consumer::AckPolicy::Explicit,
                // A relay that died leaves nothing behind for long.
                inactive_threshold: Duration::from_secs(600),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow!("cannot subscribe to results: {e}"))?;
    let incoming = consumer
        .messages()
        .await
        .map_err(|e| anyhow!("cannot subscribe to results: {e}"))?;
    let alive = client
        .subscribe(alive_subject(&result_subject(&link.job, me)))
        .await
        .map_err(|e| anyhow!("cannot answer the workers: {e}"))?;
    let output = client
        .subscribe(output_subject(&result_subject(&link.job, me)))
        .await
        .map_err(|e| anyhow!("cannot subscribe to the tasks' output: {e}"))?;
    Ok(Listening {
        client,
        js,
        incoming,
        alive,
        output,
        key: link.cluster.key().cloned(),
    })
}

async fn relay(sock: OwnedFd, link: &JobLink, sending: &Sending<'_>) -> anyhow::Result<()> {
    let sock = std::os::unix::net::UnixStream::from(sock);
    sock.set_nonblocking(true)?;
    let mut sock = tokio::net::UnixStream::from_std(sock)?;
    let me = std::process::id();
    let mut listening = listen(link, me).await?;
    let mut input = Vec::with_capacity(64 << 10);
    let mut in_flight = InFlight::default();
    'serving: loop {
        tokio::select! {
            read = sock.read_buf(&mut input) => {
                if read.context("reading the pool's requests")? == 0 {
                    break;
                }
                let mut used = 0;
                while let Some((payload, len)) = frame::next_frame(&input[used..])
                    .map_err(|_| anyhow!("a malformed request from the pool"))?
                {
                    let request = frame::request(payload)
                        .map_err(|_| anyhow!("a malformed request from the pool"))?;
                    if request.id == frame::STOP {
                        break 'serving;
                    }
                    let id = request.id;
                    in_flight.send(id, request.items.len());
                    let limit = listening.client.server_info().max_payload;
                    let frame = &input[used..used + len];
                    // The headers count too.
                    let headers = sending.grants.len() + sending.queues.len() + OTHER_HEADERS;
                    if len + headers > limit {
                        // It could never be sent: its tasks fail here.
                        let why = format!(
                            "the chunk's arguments ({len} bytes, and {headers} bytes of headers) \
                             are over the NATS server's message limit ({limit} bytes): send \
                             fewer items per chunk"
                        );
                        in_flight.arrive(wire::failed_reply(frame, &why).into());
                    } else {
                        let (subject, headers, payload) = wire::task(link, me, id, frame, sending);
                        connect::publish_stored(&listening.js, subject, headers, payload).await;
                    }
                    used += len;
                    for body in in_flight.ready() {
                        sock.write_all(&body).await.context("writing a reply to the pool")?;
                    }
                }
                input.drain(..used);
            }
            message = listening.next_result() => {
                let arrival = message?;
                let taken = match arrival.refusal() {
                    Some((id, why)) => in_flight.fail(id, &why),
                    None if arrival.refused.is_some() => false,
                    None => in_flight.arrive(arrival.message.payload.clone()),
                };
                let message = arrival.message;
                if !taken {
                    tracing::debug!(
                        "a result this worker does not wait for ({} {:?}; waiting for {:?}), dropped",
                        message.subject,
                        reply_id(&message.payload),
                        in_flight.order
                    );
                }
                let _ = message.ack().await;
                // The chunk's output lines came ahead of its result (one
                // connection, in order): they go out before the pool hears
                // the result, or a job ending at once would lose them.
                listening.pass_on_waiting_output();
                for body in in_flight.ready() {
                    sock.write_all(&body).await.context("writing a reply to the pool")?;
                }
            }
        }
    }
    // Output lines of the last tasks may trail their results.
    listening.pass_on_trailing_output().await;
    stop_listening(&listening.js, link, me).await;
    Ok(())
}

/// Deletes the result consumer of relay `me` (it expires by itself too),
/// and any result still stored for it.
pub(super) async fn stop_listening(js: &jetstream::Context, link: &JobLink, me: u32) {
    if let Ok(results) = js.get_stream(RESULTS).await {
        let _ = results
            .delete_consumer(&format!("relay-{}-{me}", link.job))
            .await;
        let _ = results.purge().filter(result_subject(&link.job, me)).await;
    }
}

/// How long a relay told to stop still passes on output, after the last
/// line it got.
pub(super) const OUTPUT_TRAILS: Duration = Duration::from_millis(100);

/// Writes a line of a remote task's output (a stream byte, 1 or 2, then
/// the line) to this process's stdout or stderr, which are the job's.
pub(super) fn write_line(payload: &[u8]) {
    use std::io::Write;
    match payload.split_first() {
        Some((1, line)) => {
            let _ = std::io::stdout().lock().write_all(line);
        }
        Some((2, line)) => {
            let _ = std::io::stderr().lock().write_all(line);
        }
        _ => tracing::debug!("a malformed output line, dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: u64, fatal: bool) -> bytes::Bytes {
        let mut out = Vec::new();
        frame::push_reply(&mut out, id, fatal, &[(0, b"4".to_vec())]);
        out.into()
    }

    #[test]
    fn results_go_back_in_the_order_the_chunks_came() {
        let mut in_flight = InFlight::default();
        in_flight.order.extend([3, 1, 2]);
        assert!(in_flight.arrive(reply(1, false)));
        assert!(in_flight.ready().is_empty(), "3 first");
        assert!(!in_flight.arrive(reply(1, false)), "a duplicate");
        assert!(!in_flight.arrive(reply(9, false)), "not waited for");
        assert!(in_flight.arrive(reply(3, false)));
        let ids: Vec<_> = in_flight
            .ready()
            .iter()
            .map(|b| reply_id(b).unwrap())
            .collect();
        assert_eq!(ids, [3, 1]);
        assert!(in_flight.arrive(reply(2, true)));
        let last = in_flight.ready();
        assert_eq!(reply_id(&last[0]), Some(2));
        let (payload, _) = frame::next_frame(&last[0]).unwrap().unwrap();
        assert!(!frame::reply(payload).unwrap().fatal, "the relay goes on");
        assert!(in_flight.order.is_empty());
    }

    #[test]
    fn what_is_not_one_whole_reply_frame_is_refused() {
        let mut in_flight = InFlight::default();
        in_flight.order.push_back(1);
        let good = reply(1, false);
        assert!(!in_flight.arrive(good.slice(..good.len() - 1)), "cut short");
        let mut two = good.to_vec();
        two.extend_from_slice(&good);
        assert!(!in_flight.arrive(two.into()), "trailing bytes");
        assert!(!in_flight.arrive(bytes::Bytes::from_static(b"junk")));
        assert!(in_flight.arrive(good));
    }
}
