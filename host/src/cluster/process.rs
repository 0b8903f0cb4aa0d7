//! Spawn-method `Process`es on the cluster's workers (`--processes
//! cluster`).
//!
//! A spawn-method child starts as it does locally: a forked child of the
//! job, whose pid the parent sees, and which the parent joins, terminates
//! and reads the exit code of. Instead of a fresh instance of its own, the
//! child sends its target and arguments to the task stream as a chunk of
//! one task, with the grants the process keeps (a process started
//! `without_commands` asks for none) and the job's queues it holds; it
//! answers the workers' question whether it still waits, writes the task's
//! output to the job's stdout and stderr, and exits with the task's outcome:
//! `0` when it returned, `1` when it failed, trapped, exited or its workers
//! were lost (the message on stderr, as a local child's).
//!
//! Terminating the child before a worker starts the task drops the task
//! (the worker finds nobody waiting); once the task runs, it runs to its
//! end on the worker.

use super::relay;
use super::{connect, wire, JobLink};
use crate::ctx::HostState;
use crate::pool::frame;
use anyhow::bail;
use procbridge_abi::pool::{STATUS_OK, STATUS_WORKER_LOST};

/// Runs `target(args)` on a worker, standing in for it here; returns the
/// exit code this (child) process should end with.
/// `grants` is the JSON of what the process keeps.
pub(crate) fn run(
    link: &JobLink,
    parent: &HostState,
    grants: &str,
    target: &str,
    args: Vec<u8>,
) -> i32 {
    let pid = std::process::id();
    let queues = relay::shared_queues(parent);
    let outcome = link
        .cluster
        .block_on(stand_in(link, grants, &queues, target, &args));
    match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            eprintln!("Process {target} ({pid}): {message}");
            1
        }
        Err(err) => {
            eprintln!(
                "Process {target} ({pid}): cannot run on the cluster at {}: {err:#}",
                link.cluster.display_url()
            );
            1
        }
    }
}

/// Sends the task, and waits for its outcome: `Ok(Err(message))` when the
/// task did not return.
async fn stand_in(
    link: &JobLink,
    grants: &str,
    queues: &str,
    target: &str,
    args: &[u8],
) -> anyhow::Result<Result<(), String>> {
    let limit_hint = args.len() + grants.len() + queues.len() + relay::OTHER_HEADERS;
    // Not its pid: a pid comes back, and with it a result subject whose
    // stored results, or de-duplication ids, would be taken for this one's.
    let me = random_relay_id();
    let mut listening = relay::listen(link, me).await?;
    let limit = listening.client.server_info().max_payload;
    if limit_hint > limit {
        bail!(
            "its arguments ({} bytes) are over the NATS server's message limit ({limit} bytes)",
            args.len()
        );
    }
    let mut items = Vec::with_capacity(args.len() + 4);
    items.extend_from_slice(&(args.len() as u32).to_le_bytes());
    items.extend_from_slice(args);
    let mut request = Vec::new();
    frame::push_request(&mut request, 1, target, 1, &items);
    // A process lost with its worker runs again, as a pool's task does.
    let sending = wire::Sending {
        grants,
        queues,
        retry_lost: true,
        fresh: true,
    };
    let (subject, headers, payload) = wire::task(link, me, 1, &request, &sending);
    connect::publish_stored(&listening.js, subject, headers, payload).await;
    let outcome = loop {
        let arrival = listening.next_result().await?;
        let _ = arrival.message.ack().await;
        match arrival.refusal() {
            Some((1, why)) => break Err(why),
            Some(_) => {}
            None if arrival.refused.is_some() => {}
            None => {
                if let Some(outcome) = outcome_of(&arrival.message.payload) {
                    break outcome;
                }
            }
        }
    };
    // Output lines of the task may trail its result.
    listening.pass_on_trailing_output().await;
    relay::stop_listening(&listening.js, link, me).await;
    Ok(outcome)
}

/// A relay id for a stand-in: random, in the upper half of `u32`, where
/// no pid is.
fn random_relay_id() -> u32 {
    let mut bytes = [0u8; 4];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into it.
    unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    u32::from_le_bytes(bytes) | 1 << 31
}

/// The outcome of the one task in a reply frame for chunk 1; `None` for
/// anything else (a duplicate, or a frame that is not such a reply).
fn outcome_of(body: &[u8]) -> Option<Result<(), String>> {
    let Ok(Some((payload, len))) = frame::next_frame(body) else {
        return None;
    };
    let reply = frame::reply(payload)
        .ok()
        .filter(|r| r.id == 1 && len == body.len())?;
    let (&end, item) = (reply.ends.first()?, reply.items);
    // An item: a u32 length, then the status byte and its payload.
    let item = item.get(4..end)?;
    let (&status, message) = item.split_first()?;
    let message = String::from_utf8_lossy(message).into_owned();
    Some(match status {
        STATUS_OK => Ok(()),
        STATUS_WORKER_LOST => Err(format!("its worker was lost: {message}")),
        _ => Err(message),
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
    fn the_one_task_s_status_is_the_process_s_outcome() {
        assert_eq!(outcome_of(&reply(1, STATUS_OK, b"ignored")), Some(Ok(())));
        assert_eq!(
            outcome_of(&reply(1, STATUS_FAILED, b"boom")),
            Some(Err("boom".into()))
        );
        assert_eq!(
            outcome_of(&reply(1, STATUS_WORKER_LOST, b"gone")),
            Some(Err("its worker was lost: gone".into()))
        );
        // Another chunk's reply, a truncated frame, junk: not an outcome.
        assert_eq!(outcome_of(&reply(2, STATUS_OK, b"")), None);
        let whole = reply(1, STATUS_OK, b"x");
        assert_eq!(outcome_of(&whole[..whole.len() - 1]), None);
        assert_eq!(outcome_of(b"junk"), None);
    }
}
