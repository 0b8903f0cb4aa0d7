//! The messages on the cluster's streams.
//!
//! A task message's payload is the request frame the pool wrote for a local
//! worker (`pool::frame`: chunk id, export name, the items' arguments), and
//! a result message's payload is the reply frame a local worker would have
//! written back. What a worker on another machine needs besides is in the
//! headers below.

use super::queue::QueueSpec;
use super::seal::{self, ClusterKey};
use super::{result_subject, task_subject, JobLink};
use crate::policy::GrantRequest;
use crate::pool::frame;
use anyhow::{anyhow, Context};
use async_nats::HeaderMap;
use procbridge_abi::pool::STATUS_FAILED;
use serde::{Deserialize, Serialize};

/// A queue of the job in JetStream, under the handle number its tasks
/// know it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SharedQueue {
    pub(crate) handle: i32,
    pub(crate) queue: QueueSpec,
}

/// The job's id.
const JOB: &str = "Procbridge-Job";
/// The SHA-256 of the job's module, in hex.
const MODULE: &str = "Procbridge-Module";
/// The subject the chunk's results go to.
const REPLY: &str = "Procbridge-Reply";
/// The grants the job's tasks ask for ([`GrantRequest`], JSON).
const GRANTS: &str = "Procbridge-Grants";
/// Who runs the job (for the worker's audit log).
const WHO: &str = "Procbridge-Who";
/// The job's queues in JetStream that its tasks may hold ([`SharedQueue`]s,
/// JSON; absent when there are none).
const QUEUES: &str = "Procbridge-Queues";
/// `no` when a chunk whose worker was lost must not run again (it fails
/// as worker-lost instead); absent, it runs again.
const RETRY: &str = "Procbridge-Retry";
/// `yes` when the chunk runs in an instance of its own (a spawn-method
/// process's target), made for it and dropped after.
const FRESH: &str = "Procbridge-Fresh";
/// NATS's de-duplication id.
pub(super) const MSG_ID: &str = "Nats-Msg-Id";

/// The headers of a task message, all covered by its signature.
pub(super) const TASK_HEADERS: &[&str] = &[
    JOB, MODULE, REPLY, GRANTS, WHO, QUEUES, RETRY, FRESH, MSG_ID,
];

/// What a sender's task messages carry besides the job's own headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sending<'a> {
    /// The JSON of the [`GrantRequest`] its tasks ask for (the job's, or
    /// less for a process that dropped some).
    pub(crate) grants: &'a str,
    /// The JSON of the job's [`SharedQueue`]s the sender holds (empty:
    /// none).
    pub(crate) queues: &'a str,
    /// Whether a chunk whose worker was lost runs again on another.
    pub(crate) retry_lost: bool,
    /// Whether it runs in an instance of its own, made for it and dropped
    /// after (a spawn-method process's target), rather than the job's.
    pub(crate) fresh: bool,
}

/// A task message to publish: its subject, headers and payload.
pub(crate) fn task(
    link: &JobLink,
    relay: u32,
    chunk: u64,
    frame: &[u8],
    sending: &Sending<'_>,
) -> (String, HeaderMap, bytes::Bytes) {
    let mut headers = HeaderMap::new();
    if !sending.queues.is_empty() {
        headers.insert(QUEUES, sending.queues);
    }
    if !sending.retry_lost {
        headers.insert(RETRY, "no");
    }
    if sending.fresh {
        headers.insert(FRESH, "yes");
    }
    headers.insert(JOB, link.job.as_str());
    headers.insert(MODULE, link.module.as_str());
    headers.insert(REPLY, result_subject(&link.job, relay).as_str());
    headers.insert(GRANTS, sending.grants);
    headers.insert(WHO, link.who.as_str());
    headers.insert(MSG_ID, format!("{}.{relay}.{chunk}", link.job).as_str());
    let subject = task_subject(&link.job);
    if let Some(key) = link.cluster.key() {
        seal::sign(key, seal::Kind::Task, &subject, &mut headers, frame);
    }
    (subject, headers, bytes::Bytes::copy_from_slice(frame))
}

/// What a worker reads off a task message's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskHeaders {
    pub(crate) job: String,
    pub(crate) module: String,
    pub(crate) reply: String,
    pub(crate) grants: GrantRequest,
    pub(crate) who: String,
    pub(crate) queues: Vec<SharedQueue>,
    /// Whether it runs again after its worker was lost.
    pub(crate) retry_lost: bool,
    /// Whether it runs in an instance of its own.
    pub(crate) fresh: bool,
}

impl TaskHeaders {
    /// Reads and checks them: the job id a subject token, the module a
    /// SHA-256 in hex, the reply subject the job's own.
    ///
    /// # Errors
    /// Naming the header that is missing or malformed.
    pub(crate) fn read(headers: Option<&HeaderMap>) -> anyhow::Result<TaskHeaders> {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
                .ok_or_else(|| anyhow!("a task message without its {name} header"))
        };
        let job = get(JOB)?;
        if job.is_empty() || !job.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(anyhow!("a task message with a malformed {JOB} header"));
        }
        let module = get(MODULE)?;
        if module.len() != 64 || !module.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(anyhow!(
                "a task message whose {MODULE} header is no SHA-256"
            ));
        }
        let reply = get(REPLY)?;
        let relay = reply
            .strip_prefix(&format!("procbridge.result.{job}."))
            .and_then(|relay| relay.parse::<u32>().ok());
        if relay.is_none() {
            return Err(anyhow!(
                "a task message whose results would go to {reply:?}, not to its job"
            ));
        }
        let grants = serde_json::from_str(&get(GRANTS)?)
            .with_context(|| format!("a task message with a malformed {GRANTS} header"))?;
        let queues: Vec<SharedQueue> = match get(QUEUES) {
            Ok(json) => serde_json::from_str(&json)
                .with_context(|| format!("a task message with a malformed {QUEUES} header"))?,
            Err(_) => Vec::new(),
        };
        if let Some(other) = queues.iter().find(|q| !q.queue.belongs_to(&job)) {
            return Err(anyhow!(
                "a task message naming a queue that is not its job's ({}.{})",
                other.queue.job,
                other.queue.id
            ));
        }
        Ok(TaskHeaders {
            job,
            module,
            reply,
            grants,
            who: get(WHO).unwrap_or_default(),
            queues,
            retry_lost: get(RETRY).map_or(true, |retry| retry != "no"),
            fresh: get(FRESH).is_ok_and(|fresh| fresh == "yes"),
        })
    }

    /// The de-duplication id of the result of chunk `chunk`.
    pub(crate) fn result_id(&self, chunk: u64) -> String {
        format!("{}.r.{chunk}", self.reply)
    }
}

/// The headers of a result message with de-duplication id `id`, going to
/// `subject` with `payload` (signed with `key`, if any).
pub(crate) fn result_headers(
    id: &str,
    key: Option<&ClusterKey>,
    subject: &str,
    payload: &[u8],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, id);
    if let Some(key) = key {
        seal::sign(key, seal::Kind::Result, subject, &mut headers, payload);
    }
    headers
}

/// The reply for a chunk whose results (`size` bytes) are over the server's
/// message limit: each task fails saying so, or, if even that is too large
/// (a chunk of very many items), with an empty message.
pub(crate) fn too_large(request: &[u8], size: usize, limit: usize) -> Vec<u8> {
    let why = format!(
        "the chunk's results ({size} bytes) are over the NATS server's message limit \
         ({limit} bytes): send fewer items per chunk, or raise max_payload"
    );
    let reply = reply_to_all(request, STATUS_FAILED, &why);
    if reply.len() <= limit {
        return reply;
    }
    reply_to_all(request, STATUS_FAILED, "")
}

/// The chunk id a reply frame answers.
pub(crate) fn reply_chunk(reply: &[u8]) -> u64 {
    reply
        .get(4..12)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
}

/// A reply failing every item of `request` (a request frame) with
/// `message`; for a frame that is not a request, a reply to chunk 0.
pub(crate) fn failed_reply(request: &[u8], message: &str) -> Vec<u8> {
    reply_to_all(request, STATUS_FAILED, message)
}

/// A reply giving every item of `request` the status `status` and
/// `message`.
pub(crate) fn reply_to_all(request: &[u8], status: u8, message: &str) -> Vec<u8> {
    let (id, count) = match frame::next_frame(request) {
        Ok(Some((payload, _))) => match frame::request(payload) {
            Ok(r) => (r.id, r.items.len()),
            Err(_) => (0, 0),
        },
        _ => (0, 0),
    };
    let mut out = Vec::new();
    let items = vec![(status, message.as_bytes().to_vec()); count];
    frame::push_reply(&mut out, id, false, &items);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;

    fn asked() -> GrantRequest {
        GrantRequest {
            commands: vec!["echo".into()],
            dirs: vec![("/data".into(), false)],
            ..GrantRequest::default()
        }
    }

    fn link() -> JobLink {
        JobLink {
            cluster: Cluster::new("nats://127.0.0.1:1"),
            job: "00ff".repeat(8),
            module: "ab".repeat(32),
            grants: serde_json::to_string(&asked()).unwrap(),
            request: asked(),
            who: "uid 0 on here, pid 1".into(),
            pools: true,
            queues: true,
            processes: false,
        }
    }

    fn sending<'a>(link: &'a JobLink, queues: &'a str, retry_lost: bool) -> Sending<'a> {
        Sending {
            grants: &link.grants,
            queues,
            retry_lost,
            fresh: !retry_lost,
        }
    }

    fn shared(job: &str) -> SharedQueue {
        SharedQueue {
            handle: 3,
            queue: QueueSpec {
                job: job.into(),
                id: "0123".into(),
                maxsize: 2,
                max_bytes: 4096,
                joinable: true,
            },
        }
    }

    #[test]
    fn a_worker_reads_what_a_relay_wrote() {
        let link = link();
        let queues = serde_json::to_string(&[shared(&link.job)]).unwrap();
        let (subject, headers, payload) =
            task(&link, 42, 7, b"frame", &sending(&link, &queues, true));
        assert_eq!(subject, format!("procbridge.task.{}", link.job));
        assert_eq!(&payload[..], b"frame");
        let read = TaskHeaders::read(Some(&headers)).unwrap();
        assert_eq!(read.job, link.job);
        assert_eq!(read.module, link.module);
        assert_eq!(read.reply, format!("procbridge.result.{}.42", link.job));
        assert_eq!(read.grants, asked());
        assert_eq!(read.who, link.who);
        assert_eq!(read.queues, [shared(&link.job)]);
        assert!(read.retry_lost);
        assert!(!read.fresh);
        let (_, headers, _) = task(&link, 42, 7, b"frame", &sending(&link, "", false));
        let read = TaskHeaders::read(Some(&headers)).unwrap();
        assert_eq!(read.queues, []);
        assert!(!read.retry_lost);
        assert!(read.fresh);
    }

    #[test]
    fn malformed_headers_are_named() {
        let link = link();
        let (_, headers, _) = task(&link, 1, 1, b"", &sending(&link, "", true));
        let without = |name: &str| {
            let mut h = HeaderMap::new();
            for (key, values) in headers.iter() {
                if AsRef::<str>::as_ref(key) != name {
                    for v in values {
                        h.insert(key.clone(), v.clone());
                    }
                }
            }
            h
        };
        for name in [JOB, MODULE, REPLY, GRANTS] {
            let err = TaskHeaders::read(Some(&without(name))).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        assert!(TaskHeaders::read(None).is_err());
        let mut other_job = headers.clone();
        other_job.insert(REPLY, "procbridge.result.someone-else.1");
        let err = TaskHeaders::read(Some(&other_job)).unwrap_err();
        assert!(err.to_string().contains("not to its job"), "{err}");
        let mut bad_module = headers.clone();
        bad_module.insert(MODULE, "../../etc/passwd");
        assert!(TaskHeaders::read(Some(&bad_module)).is_err());
        let mut bad_grants = headers.clone();
        bad_grants.insert(GRANTS, "{");
        assert!(TaskHeaders::read(Some(&bad_grants)).is_err());
        // A queue of another job, or one whose id would widen the
        // subjects it reaches, is refused with the whole message.
        let mut others_queue = headers.clone();
        let json = serde_json::to_string(&[shared("someoneelse")]).unwrap();
        others_queue.insert(QUEUES, json.as_str());
        let err = TaskHeaders::read(Some(&others_queue)).unwrap_err();
        assert!(err.to_string().contains("not its job's"), "{err}");
        let mut wildcard = shared(&link.job);
        wildcard.queue.id = ">".into();
        let mut wide = headers.clone();
        wide.insert(QUEUES, serde_json::to_string(&[wildcard]).unwrap().as_str());
        assert!(TaskHeaders::read(Some(&wide)).is_err());
        let mut bad_queues = headers;
        bad_queues.insert(QUEUES, "[{");
        let err = TaskHeaders::read(Some(&bad_queues)).unwrap_err();
        assert!(err.to_string().contains(QUEUES), "{err}");
    }

    #[test]
    fn a_chunk_that_cannot_run_fails_each_of_its_items() {
        let mut request = Vec::new();
        frame::push_request(
            &mut request,
            9,
            "square",
            2,
            &procbridge_abi::list::encode(&[b"1", b"2"]),
        );
        let reply = failed_reply(&request, "no module");
        assert_eq!(reply_chunk(&reply), 9);
        let (payload, _) = frame::next_frame(&reply).unwrap().unwrap();
        let decoded = frame::reply(payload).unwrap();
        assert_eq!(decoded.id, 9);
        assert_eq!(decoded.ends.len(), 2);
        let junk = failed_reply(b"junk", "no module");
        assert_eq!(reply_chunk(&junk), 0);
    }

    #[test]
    fn results_over_the_message_limit_become_a_failure_that_fits() {
        let items: Vec<Vec<u8>> = (0..1000).map(|i| i.to_string().into_bytes()).collect();
        let mut request = Vec::new();
        frame::push_request(
            &mut request,
            5,
            "square",
            1000,
            &procbridge_abi::list::encode(&items),
        );
        let said = too_large(&request, 5_000_000, 200_000);
        assert!(said.len() <= 200_000);
        let (payload, _) = frame::next_frame(&said).unwrap().unwrap();
        let reply = frame::reply(payload).unwrap();
        assert_eq!((reply.id, reply.ends.len()), (5, 1000));
        assert!(String::from_utf8_lossy(&said).contains("over the NATS server's message limit"));
        // Too many items for the message: each fails with an empty one.
        let bare = too_large(&request, 5_000_000, 10_000);
        assert_eq!(bare.len(), 4 + 13 + 1000 * 5);
    }
}
