//! Signed messages: members of a cluster that share a key (`--cluster-key
//! FILE`, [`Cluster::signing_key`](super::Cluster::signing_key)) sign what
//! they send each other and refuse what is not signed with it.
//!
//! The server's account is shared by everyone who may log in to it: any of
//! them can publish on the cluster's subjects. Without a key, a task
//! message's headers (its job, the grants it asks for, where its results
//! go) are believed as they come, within what the worker's own policy
//! allows. With one, a message whose signature does not match is refused,
//! so whoever holds no key can neither forge a task with another job's
//! identity or grants, nor slip a result or an output line into a job.
//!
//! Messages put on a job's queues are signed too; a getter drops one whose
//! signature does not match, so a guest never gets it.
//!
//! A signature is a keyed BLAKE3 hash (a MAC) of the kind of message, its
//! subject, the headers that kind carries and its payload, each one
//! length-prefixed; it travels in the [`SIGNATURE`] header, in hex. Replays
//! are bounded by what each kind is for: a task is run only while its
//! relay waits for it (the worker asks), and a result is taken once per
//! chunk.

use anyhow::bail;
use async_nats::HeaderMap;

/// The header that carries a message's signature.
pub(crate) const SIGNATURE: &str = "Procbridge-Signature";

/// The fewest bytes a key file may hold.
const MIN_SECRET: usize = 16;

/// The key the members of a cluster sign their messages with, derived
/// from a shared secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// The key derived from `secret` (a key file's bytes; surrounding
    /// whitespace, such as a final newline, left out).
    ///
    /// # Errors
    /// When the secret is shorter than 16 bytes.
    pub(crate) fn from_secret(secret: &[u8]) -> anyhow::Result<ClusterKey> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET {
            bail!(
                "a cluster key needs at least {MIN_SECRET} bytes (this one has {}); make one \
                 with `head -c 32 /dev/urandom | base64 > cluster.key`",
                secret.len()
            );
        }
        Ok(ClusterKey(blake3::derive_key(
            "procbridge 2026-12 cluster message signatures",
            secret,
        )))
    }
}

/// What a message is, and so which of its headers its signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A chunk of tasks, relay to worker.
    Task,
    /// A chunk's results, worker to relay.
    Result,
    /// A line a task printed, worker to relay.
    Output,
    /// A message put on a queue in JetStream.
    QueueItem,
}

impl Kind {
    fn tag(self) -> &'static [u8] {
        match self {
            Kind::Task => b"task",
            Kind::Result => b"result",
            Kind::Output => b"output",
            Kind::QueueItem => b"queue item",
        }
    }

    fn headers(self) -> &'static [&'static str] {
        match self {
            Kind::Task => super::wire::TASK_HEADERS,
            Kind::Result | Kind::QueueItem => &[super::wire::MSG_ID],
            Kind::Output => &[],
        }
    }
}

/// Signs a message: adds its [`SIGNATURE`] header.
pub(crate) fn sign(
    key: &ClusterKey,
    kind: Kind,
    subject: &str,
    headers: &mut HeaderMap,
    payload: &[u8],
) {
    let tag = mac(key, kind, subject, Some(headers), payload);
    headers.insert(SIGNATURE, tag.to_hex().as_str());
}

/// Checks a message's signature.
///
/// # Errors
/// Why it is refused: no signature, or one that does not match.
pub(crate) fn verify(
    key: &ClusterKey,
    kind: Kind,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> Result<(), &'static str> {
    let Some(given) = headers.and_then(|h| h.get(SIGNATURE)) else {
        return Err("it is not signed");
    };
    let given = blake3::Hash::from_hex(given.as_str()).map_err(|_| "its signature is malformed")?;
    // `blake3::Hash` compares in constant time.
    if given == mac(key, kind, subject, headers, payload) {
        Ok(())
    } else {
        Err("its signature does not match")
    }
}

/// Checks a received message's signature when there is a key; with none,
/// every message passes.
///
/// # Errors
/// As [`verify`].
pub(crate) fn check(
    key: Option<&ClusterKey>,
    kind: Kind,
    message: &async_nats::Message,
) -> Result<(), &'static str> {
    match key {
        Some(key) => verify(
            key,
            kind,
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        ),
        None => Ok(()),
    }
}

fn mac(
    key: &ClusterKey,
    kind: Kind,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    field(&mut hasher, kind.tag());
    field(&mut hasher, subject.as_bytes());
    for name in kind.headers() {
        match headers.and_then(|h| h.get(*name)) {
            Some(value) => {
                hasher.update(&[1]);
                field(&mut hasher, value.as_str().as_bytes());
            }
            None => {
                hasher.update(&[0]);
            }
        }
    }
    field(&mut hasher, payload);
    hasher.finalize()
}

fn field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> ClusterKey {
        ClusterKey::from_secret(secret.as_bytes()).unwrap()
    }

    fn task_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Procbridge-Job", "abc");
        headers.insert("Procbridge-Grants", r#"{"commands":[]}"#);
        headers.insert("Nats-Msg-Id", "abc.1.1");
        headers
    }

    #[test]
    fn a_signed_message_verifies_and_any_change_to_it_does_not() {
        const SUBJECT: &str = "procbridge.task.abc";
        let k = key("correct horse battery staple");
        let task = |k: &ClusterKey, headers: &HeaderMap, payload: &[u8]| {
            verify(k, Kind::Task, SUBJECT, Some(headers), payload)
        };
        let mut headers = task_headers();
        sign(&k, Kind::Task, SUBJECT, &mut headers, b"frame");
        assert_eq!(task(&k, &headers, b"frame"), Ok(()));
        // Another payload, subject, kind or key.
        let mismatch = Err("its signature does not match");
        assert_eq!(task(&k, &headers, b"frame!"), mismatch);
        let elsewhere = verify(
            &k,
            Kind::Task,
            "procbridge.task.abd",
            Some(&headers),
            b"frame",
        );
        assert_eq!(elsewhere, mismatch);
        let as_result = verify(&k, Kind::Result, SUBJECT, Some(&headers), b"frame");
        assert_eq!(as_result, mismatch);
        assert_eq!(
            task(&key("another secret, as long"), &headers, b"frame"),
            mismatch
        );
        // A header changed, or one added that the signature covers.
        let mut widened = headers.clone();
        widened.insert("Procbridge-Grants", r#"{"commands":["sh"]}"#);
        assert_eq!(task(&k, &widened, b"frame"), mismatch);
        let mut fresh = headers.clone();
        fresh.insert("Procbridge-Fresh", "yes");
        assert_eq!(task(&k, &fresh, b"frame"), mismatch);
        // None at all, or a malformed one.
        assert_eq!(task(&k, &task_headers(), b"frame"), Err("it is not signed"));
        let none = verify(&k, Kind::Output, "s", None, b"");
        assert_eq!(none, Err("it is not signed"));
        let mut bad = task_headers();
        bad.insert(SIGNATURE, "zz");
        assert_eq!(task(&k, &bad, b"frame"), Err("its signature is malformed"));
    }

    #[test]
    fn fields_cannot_be_shifted_from_one_into_the_next() {
        let k = key("0123456789abcdef");
        let mut headers = HeaderMap::new();
        sign(&k, Kind::Output, "ab", &mut headers, b"c");
        assert!(verify(&k, Kind::Output, "a", Some(&headers), b"bc").is_err());
    }

    #[test]
    fn a_key_needs_sixteen_bytes_and_ignores_the_file_s_final_newline() {
        let err = ClusterKey::from_secret(b"short\n").unwrap_err().to_string();
        assert!(err.contains("at least 16 bytes (this one has 5)"), "{err}");
        assert_eq!(
            ClusterKey::from_secret(b"0123456789abcdef\n").unwrap(),
            ClusterKey::from_secret(b"0123456789abcdef").unwrap()
        );
        assert_eq!(format!("{:?}", key("0123456789abcdef")), "ClusterKey(..)");
    }
}
