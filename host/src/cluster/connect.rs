//! Reaching the NATS server, and what every member sets up on it: the
//! streams, the workers' consumer, the module store.

use super::seal::ClusterKey;
use super::{MAX_DELIVER, MODULES, RESULTS, TASKS, WORKERS};
use anyhow::{anyhow, bail, Context};
use async_nats::jetstream::{self, consumer, object_store, stream};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Where the cluster's NATS server is, and how to log in.
///
/// ```
/// let cluster = procbridge::cluster::Cluster::new("nats://127.0.0.1:4222")
///     .credentials("job.creds")
///     .root_certificate("ca.pem");
/// assert_eq!(cluster.url(), "nats://127.0.0.1:4222");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    url: String,
    credentials: Option<PathBuf>,
    root_certificate: Option<PathBuf>,
    key: Option<ClusterKey>,
}

impl Cluster {
    /// The server at `url` (`nats://host:port`, `tls://host:port`, or a
    /// comma-separated list of them; `nats://user:password@host:port` or
    /// `nats://token@host:port` logs in).
    pub fn new(url: impl Into<String>) -> Cluster {
        Cluster {
            url: url.into(),
            credentials: None,
            root_certificate: None,
            key: None,
        }
    }

    /// Logs in with a NATS credentials file (a user JWT and its key).
    pub fn credentials(mut self, path: impl Into<PathBuf>) -> Cluster {
        self.credentials = Some(path.into());
        self
    }

    /// Requires TLS, trusting the certificates in this PEM file.
    pub fn root_certificate(mut self, path: impl Into<PathBuf>) -> Cluster {
        self.root_certificate = Some(path.into());
        self
    }

    /// Signs every task, result and output line sent with a key derived
    /// from `secret` (a key file's contents, shared by the job and its
    /// workers), and refuses those not signed with it. See
    /// `docs/cluster.md`, "Signed messages".
    ///
    /// # Errors
    /// When `secret` is shorter than 16 bytes.
    pub fn signing_key(mut self, secret: &[u8]) -> anyhow::Result<Cluster> {
        self.key = Some(ClusterKey::from_secret(secret)?);
        Ok(self)
    }

    /// The key messages are signed with, if any.
    pub(crate) fn key(&self) -> Option<&ClusterKey> {
        self.key.as_ref()
    }

    /// The server's address as given (with any login in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's address for messages: any password or token left out.
    pub fn display_url(&self) -> String {
        redacted(&self.url)
    }

    /// A new connection. It reconnects by itself when the server goes away
    /// and comes back.
    ///
    /// # Errors
    /// When the server cannot be reached (within a few seconds) or refuses
    /// the login.
    pub(crate) async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        // Reply subjects are made from random ids whose generator a forked
        // child (a relay) shares with its parent and its siblings: a prefix
        // naming this process keeps each one's replies its own.
        let mut options = async_nats::ConnectOptions::new()
            .name("procbridge")
            .custom_inbox_prefix(format!("_INBOX.procbridge.{}", inbox_token()))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None);
        let (urls, login) = split_login(&self.url);
        match login {
            Some(Login::UserPassword(user, password)) => {
                options = options.user_and_password(user, password);
            }
            Some(Login::Token(token)) => options = options.token(token),
            None => {}
        }
        if let Some(path) = &self.credentials {
            options = options
                .credentials_file(path)
                .await
                .with_context(|| format!("NATS credentials {}", path.display()))?;
        }
        if let Some(path) = &self.root_certificate {
            options = options
                .add_root_certificates(path.clone())
                .require_tls(true);
        }
        options
            .connect(urls.as_str())
            .await
            .with_context(|| format!("cannot reach the NATS server at {}", redacted(&self.url)))
    }

    /// Runs `future` to its end on a runtime of its own, on this thread.
    ///
    /// # Errors
    /// The future's error, or why the runtime could not be made.
    pub(crate) fn block_on<T>(
        &self,
        future: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the NATS client's runtime")?
            .block_on(future)
    }
}

/// A login given in a server address (`nats://user:password@host`, or
/// `nats://token@host`).
#[derive(Debug, PartialEq, Eq)]
enum Login {
    UserPassword(String, String),
    Token(String),
}

/// The addresses without their logins, and the first login found.
fn split_login(urls: &str) -> (String, Option<Login>) {
    let mut login = None;
    let bare: Vec<String> = urls
        .split(',')
        .map(|url| {
            let (scheme, rest) = url.trim().split_once("://").unwrap_or(("", url.trim()));
            let Some((info, host)) = rest.rsplit_once('@') else {
                return url.trim().to_string();
            };
            login.get_or_insert_with(|| match info.split_once(':') {
                Some((user, password)) => Login::UserPassword(user.into(), password.into()),
                None => Login::Token(info.into()),
            });
            if scheme.is_empty() {
                host.to_string()
            } else {
                format!("{scheme}://{host}")
            }
        })
        .collect();
    (bare.join(","), login)
}

/// The addresses with any password or token left out, for messages.
pub(crate) fn redacted(urls: &str) -> String {
    let (bare, login) = split_login(urls);
    match login {
        Some(Login::UserPassword(user, _)) => format!("{bare} (as {user})"),
        Some(Login::Token(_)) => format!("{bare} (with a token)"),
        None => bare,
    }
}

/// A token no other process's connection has: this process's pid and
/// fresh random bytes.
fn inbox_token() -> String {
    format!("{}{}", std::process::id(), super::new_job_id())
}

/// Makes sure the streams, the workers' consumer and the module store
/// exist (each member does it: the first one creates them).
///
/// # Errors
/// When JetStream is not enabled on the server, or it refuses.
pub(crate) async fn setup(client: &async_nats::Client) -> anyhow::Result<jetstream::Context> {
    let js = jetstream::new(client.clone());
    let work_queue = |name: &str, subjects: &str| stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        // Results nobody takes (their job died) do not stay for ever.
        max_age: Duration::from_secs(24 * 3600),
        ..Default::default()
    };
    let want = work_queue(TASKS, "procbridge.task.*");
    let mut tasks = js.get_or_create_stream(want.clone()).await.map_err(|e| {
        anyhow!("cannot set up the task stream (is JetStream enabled: nats-server -js?): {e}")
    })?;
    same_settings(&want, &tasks.info().await?.config)?;
    let want = work_queue(RESULTS, "procbridge.result.*.*");
    let mut results = js
        .get_or_create_stream(want.clone())
        .await
        .map_err(|e| anyhow!("cannot set up the result stream: {e}"))?;
    same_settings(&want, &results.info().await?.config)?;
    let workers: consumer::PullConsumer = tasks
        .get_or_create_consumer(
            WORKERS,
            consumer::pull::Config {
                durable_name: Some(WORKERS.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: super::ACK_WAIT,
                max_deliver: MAX_DELIVER,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow!("cannot set up the workers' consumer: {e}"))?;
    let shared = &workers.cached_info().config;
    if shared.ack_policy != consumer::AckPolicy::Explicit || !shared.filter_subject.is_empty() {
        bail!(
            "the consumer {WORKERS} of stream {TASKS} exists with other settings (acknowledgements \
             {:?}, subjects {:?}): delete it (`nats consumer rm {TASKS} {WORKERS}`), and the \
             first member to connect makes it again",
            shared.ack_policy,
            shared.filter_subject
        );
    }
    if js.get_object_store(MODULES).await.is_err() {
        js.create_object_store(object_store::Config {
            bucket: MODULES.to_string(),
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("cannot set up the module store: {e}"))?;
    }
    Ok(js)
}

/// Checks that a stream found on the server is the one procbridge makes:
/// a stream made by another program, or by a hostile member of the
/// account, that keeps acknowledged tasks, takes other subjects or lives
/// in memory would break what the cluster promises.
fn same_settings(want: &stream::Config, found: &stream::Config) -> anyhow::Result<()> {
    let mut subjects = found.subjects.clone();
    subjects.sort();
    let mut differences = Vec::new();
    if subjects != want.subjects {
        differences.push(format!("subjects {subjects:?}, not {:?}", want.subjects));
    }
    if found.retention != want.retention {
        differences.push(format!(
            "retention {:?}, not {:?}",
            found.retention, want.retention
        ));
    }
    if found.storage != want.storage {
        differences.push(format!(
            "storage {:?}, not {:?}",
            found.storage, want.storage
        ));
    }
    if differences.is_empty() {
        return Ok(());
    }
    bail!(
        "the stream {} exists with other settings ({}): delete it (`nats stream rm {}`), and \
         the first member to connect makes it again",
        want.name,
        differences.join("; "),
        want.name
    )
}

/// Publishes `payload` on `subject` until the server has stored it,
/// backing off up to 2 s between tries. `headers` carry a de-duplication
/// id, so a message sent again after a lost acknowledgement is stored
/// once. (Sizes over the server's limit are the caller's to refuse: they
/// would never be stored.)
pub(crate) async fn publish_stored(
    js: &jetstream::Context,
    subject: String,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let sent = js
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await;
        match sent {
            Ok(ack) => match ack.await {
                Ok(_) => return,
                Err(err) => tracing::debug!("publishing on {subject}: {err}"),
            },
            Err(err) => tracing::debug!("publishing on {subject}: {err}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// The most bytes of module a worker fetches (the 26 MB CPython module ten
/// times over): an object over it is refused before it is read.
pub(crate) const MAX_MODULE_BYTES: usize = 256 << 20;

/// Stores `module` under `digest` unless it is there already. An object
/// under that name whose size or recorded digest is not the module's
/// (stored by a broken or hostile member) is replaced.
pub(crate) async fn put_module(
    js: &jetstream::Context,
    digest: &str,
    module: &[u8],
) -> anyhow::Result<()> {
    let store = js
        .get_object_store(MODULES)
        .await
        .map_err(|e| anyhow!("the module store: {e}"))?;
    if let Ok(info) = store.info(digest).await {
        let sha = super::sha2_digest(module);
        if info.size == module.len() && info.digest.as_deref() == Some(&object_digest(&sha)) {
            return Ok(());
        }
        tracing::warn!("module {digest}: the stored object is not this module; replacing it");
        store
            .delete(digest)
            .await
            .map_err(|e| anyhow!("cannot replace the stored module: {e}"))?;
    }
    let mut reader = module;
    store
        .put(digest, &mut reader)
        .await
        .map_err(|e| anyhow!("cannot store the module: {e}"))?;
    Ok(())
}

/// The module stored under `digest`, checked to hash to it.
///
/// # Errors
/// [`ModuleRefused`] when it is missing, over [`MAX_MODULE_BYTES`], or its
/// content does not match its digest; another error when the store cannot
/// be read now.
pub(crate) async fn get_module(js: &jetstream::Context, digest: &str) -> anyhow::Result<Vec<u8>> {
    let store = js
        .get_object_store(MODULES)
        .await
        .map_err(|e| anyhow!("the module store: {e}"))?;
    let mut object = store.get(digest).await.map_err(|e| {
        let why = format!("module {digest}: {e}");
        match e.kind() {
            // No job stored it under that name: fetching again finds none.
            object_store::GetErrorKind::NotFound | object_store::GetErrorKind::InvalidName => {
                ModuleRefused(why).into()
            }
            _ => anyhow!(why),
        }
    })?;
    check_module_size(digest, object.info().size)?;
    let mut bytes = Vec::new();
    // The recorded size is the storer's word: the read stops past the cap.
    (&mut object)
        .take(MAX_MODULE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .with_context(|| format!("reading module {digest}"))?;
    check_module_size(digest, bytes.len())?;
    let actual = crate::policy::to_hex(&super::sha2_digest(&bytes));
    if actual != digest {
        return Err(ModuleRefused(format!(
            "module {digest}: its content hashes to {actual}; refused"
        ))
        .into());
    }
    Ok(bytes)
}

/// A module no worker will run, however often it is fetched: not in the
/// store, over the size cap, or not the content its digest names. Any
/// other failure to fetch one (a server restarting, a connection lost) may
/// pass.
#[derive(Debug)]
pub(crate) struct ModuleRefused(String);

impl std::fmt::Display for ModuleRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModuleRefused {}

/// Refuses a module over [`MAX_MODULE_BYTES`].
fn check_module_size(digest: &str, size: usize) -> anyhow::Result<()> {
    if size > MAX_MODULE_BYTES {
        return Err(ModuleRefused(format!(
            "module {digest} is {size} bytes, over the {} MiB a worker fetches; refused",
            MAX_MODULE_BYTES >> 20
        ))
        .into());
    }
    Ok(())
}

/// The digest the object store records for content whose SHA-256 is
/// `sha`: `SHA-256=` and the URL-safe base64 of it, padded.
fn object_digest(sha: &[u8; 32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::from("SHA-256=");
    for chunk in sha.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_s_digest_of_a_module_is_url_safe_base64_of_its_sha256() {
        // SHA-256 of "abc", as the object store records it.
        let sha = super::super::sha2_digest(b"abc");
        assert_eq!(
            object_digest(&sha),
            "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="
        );
    }

    #[test]
    fn a_module_over_the_cap_is_refused_before_it_is_read() {
        assert!(check_module_size("d", MAX_MODULE_BYTES).is_ok());
        let err = check_module_size("d", MAX_MODULE_BYTES + 1).unwrap_err();
        assert!(err.to_string().contains("over the 256 MiB"), "{err}");
    }

    #[test]
    fn a_login_in_the_address_is_taken_out_of_it_and_out_of_messages() {
        assert_eq!(
            split_login("tls://job:s3cret@127.0.0.1:4222"),
            (
                "tls://127.0.0.1:4222".to_string(),
                Some(Login::UserPassword("job".into(), "s3cret".into()))
            )
        );
        assert_eq!(
            split_login("nats://t0ken@a:1,nats://b:2"),
            (
                "nats://a:1,nats://b:2".to_string(),
                Some(Login::Token("t0ken".into()))
            )
        );
        assert_eq!(split_login("nats://a:1"), ("nats://a:1".to_string(), None));
        let shown = redacted("nats://job:s3cret@a:1");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(shown, "nats://a:1 (as job)");
    }
}
