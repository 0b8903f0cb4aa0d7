//! Single calls on the cluster's workers, each waited for here: a
//! spawn-method process's target (`--processes cluster`, see
//! [`super::process`]) and the batches of a Python job's pool
//! (`cluster_call`).
//!
//! A [`RemoteCalls`] listens on a relay subject of its own (a random id,
//! never a pid) for as long as it lives: it answers the workers' question
//! whether it still waits, and passes its calls' output lines on to this
//! process's stdout and stderr. Each call is a chunk of one task.

use super::relay::{self, Listening};
use super::{connect, wire, JobLink};
use crate::pool::frame;
use anyhow::{bail, Context};
use procbridge_abi::pool::{STATUS_OK, STATUS_WORKER_LOST};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A caller idle this long listens afresh before its next call: in between
/// nobody ran its client, so the server may have closed the connection
/// (unanswered pings) or removed its results' consumer (inactive).
const IDLE: Duration = Duration::from_secs(30);

/// A call's arguments over the server's message limit.
#[derive(Debug, thiserror::Error)]
#[error("its arguments ({size} bytes) are over the NATS server's message limit ({limit} bytes)")]
pub(crate) struct TooBig {
    size: usize,
    limit: usize,
}

/// One call: what runs, and what it may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    /// The task export (a Python job's: [`crate::python::TASK`]).
    pub(crate) target: &'a str,
    pub(crate) args: &'a [u8],
    /// The JSON of the grants it asks for.
    pub(crate) grants: &'a str,
    /// The JSON of the job's queues in JetStream it holds (empty: none).
    pub(crate) queues: &'a str,
    /// Whether it runs in an instance of its own (a process's target)
    /// rather than the job's kept one.
    pub(crate) fresh: bool,
}

/// How a call that reached a worker did not return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It failed (a task error, a trap, an exit), or its result was
    /// refused: the message.
    Failed(String),
    /// Its workers were lost, as often as the cluster retries.
    Lost(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Failed(message) => f.write_str(message),
            Failure::Lost(message) => write!(f, "its worker was lost: {message}"),
        }
    }
}

/// Calls on the cluster from this process, one at a time.
pub(crate) struct RemoteCalls {
    /// `None` in a fork child's copy, which must not touch the parent's
    /// connection.
    inner: Option<Inner>,
    pid: u32,
}

struct Inner {
    runtime: tokio::runtime::Runtime,
    link: Arc<JobLink>,
    me: u32,
    listening: Listening,
    last_chunk: u64,
    /// When the last call ended.
    idle_since: Instant,
}

impl std::fmt::Debug for RemoteCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCalls")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl RemoteCalls {
    /// Connects and listens.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub(crate) fn open(link: Arc<JobLink>) -> anyhow::Result<RemoteCalls> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the NATS client's runtime")?;
        let me = random_relay_id();
        let listening = runtime.block_on(relay::listen(&link, me))?;
        Ok(RemoteCalls {
            inner: Some(Inner {
                runtime,
                link,
                me,
                listening,
                last_chunk: 0,
                idle_since: Instant::now(),
            }),
            pid: std::process::id(),
        })
    }

    /// Whether this process opened it (a fork child must open its own).
    pub(crate) fn is_mine(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Runs `call` on a worker: the bytes it returned, or how it failed
    /// (`Ok(Err)`).
    ///
    /// # Errors
    /// When the server cannot be reached, or the arguments are over its
    /// message limit ([`TooBig`]).
    pub(crate) fn call(&mut self, call: &Call<'_>) -> anyhow::Result<Result<Vec<u8>, Failure>> {
        let Some(inner) = self
            .inner
            .as_mut()
            .filter(|_| self.pid == std::process::id())
        else {
            bail!("a copy made by fork cannot call the cluster");
        };
        inner.last_chunk += 1;
        let chunk = inner.last_chunk;
        let Inner {
            runtime,
            link,
            me,
            listening,
            idle_since,
            ..
        } = inner;
        let outcome = runtime.block_on(async {
            if idle_since.elapsed() >= IDLE {
                *listening = relay::listen(link, *me).await?;
            }
            call_once(listening, link, *me, chunk, call).await
        });
        *idle_since = Instant::now();
        outcome
    }
}

impl Drop for RemoteCalls {
    /// Passes on the output lines that trail the last result, and stops
    /// listening.
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        if self.pid != std::process::id() {
            std::mem::forget(inner);
            return;
        }
        let Inner {
            runtime,
            link,
            me,
            listening,
            ..
        } = &mut inner;
        runtime.block_on(async {
            listening.pass_on_trailing_output().await;
            relay::stop_listening(&listening.js, link, *me).await;
        });
    }
}

async fn call_once(
    listening: &mut Listening,
    link: &JobLink,
    me: u32,
    chunk: u64,
    call: &Call<'_>,
) -> anyhow::Result<Result<Vec<u8>, Failure>> {
    let size = call.args.len() + call.grants.len() + call.queues.len() + relay::OTHER_HEADERS;
    let limit = listening.client.server_info().max_payload;
    if size > limit {
        return Err(TooBig { size, limit }.into());
    }
    let mut items = Vec::with_capacity(call.args.len() + 4);
    items.extend_from_slice(&(call.args.len() as u32).to_le_bytes());
    items.extend_from_slice(call.args);
    let mut request = Vec::new();
    frame::push_request(&mut request, chunk, call.target, 1, &items);
    // A call lost with its worker runs again, as a pool's task does.
    let sending = wire::Sending {
        grants: call.grants,
        queues: call.queues,
        retry_lost: true,
        fresh: call.fresh,
    };
    let (subject, headers, payload) = wire::task(link, me, chunk, &request, &sending);
    connect::publish_stored(&listening.js, subject, headers, payload).await;
    let outcome = loop {
        let arrival = listening.next_result().await?;
        let _ = arrival.message.ack().await;
        match arrival.refusal() {
            Some((id, why)) if id == chunk => break Err(Failure::Failed(why)),
            Some(_) => {}
            None if arrival.refused.is_some() => {}
            None => {
                if let Some(outcome) = outcome_of(chunk, &arrival.message.payload) {
                    break outcome;
                }
            }
        }
    };
    // The lines that came with the result are written before it is used.
    listening.pass_on_waiting_output();
    Ok(outcome)
}

/// A relay id for a caller: random, in the upper half of `u32`, where no
/// pid is (a pid comes back, and with it a result subject whose stored
/// results, or de-duplication ids, would be taken for this one's).
fn random_relay_id() -> u32 {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into it.
    unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    u32::from_le_bytes(bytes) | 1 << 31
}

/// The outcome of the one task in a reply frame for `chunk`; `None` for
/// anything else (a duplicate, or a frame that is not such a reply).
fn outcome_of(chunk: u64, body: &[u8]) -> Option<Result<Vec<u8>, Failure>> {
    let Ok(Some((payload, len))) = frame::next_frame(body) else {
        return None;
    };
    let reply = frame::reply(payload)
        .ok()
        .filter(|r| r.id == chunk && len == body.len())?;
    let (&end, item) = (reply.ends.first()?, reply.items);
    // An item: a u32 length, then the status byte and its payload.
    let item = item.get(4..end)?;
    let (&status, bytes) = item.split_first()?;
    let message = || String::from_utf8_lossy(bytes).into_owned();
    Some(match status {
        STATUS_OK => Ok(bytes.to_vec()),
        STATUS_WORKER_LOST => Err(Failure::Lost(message())),
        _ => Err(Failure::Failed(message())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use procbridge_abi::pool::STATUS_FAILED;

    fn reply(id: u64, status: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::push_reply(&mut out, id, false, &[(status, payload.to_vec())]);
        out
    }

    #[test]
    fn the_one_task_s_status_is_the_call_s_outcome() {
        assert_eq!(
            outcome_of(1, &reply(1, STATUS_OK, b"bytes")),
            Some(Ok(b"bytes".to_vec()))
        );
        assert_eq!(
            outcome_of(3, &reply(3, STATUS_FAILED, b"boom")),
            Some(Err(Failure::Failed("boom".into())))
        );
        assert_eq!(
            outcome_of(1, &reply(1, STATUS_WORKER_LOST, b"gone")),
            Some(Err(Failure::Lost("gone".into())))
        );
        // Another chunk's reply, a truncated frame, junk: not an outcome.
        assert_eq!(outcome_of(1, &reply(2, STATUS_OK, b"")), None);
        let whole = reply(1, STATUS_OK, b"x");
        assert_eq!(outcome_of(1, &whole[..whole.len() - 1]), None);
        assert_eq!(outcome_of(1, b"junk"), None);
    }

    #[test]
    fn caller_ids_are_never_pids() {
        for _ in 0..64 {
            assert!(random_relay_id() > i32::MAX as u32);
        }
    }
}
