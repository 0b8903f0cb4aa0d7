//! A pool of instances of one plugin, for concurrent calls.

use super::members::Members;
use super::{CallError, CallErrorKind, Caller, Instantiator, Settings, Slot};
use crate::blocking::run_blocking;
use crate::ctx::GuestBuilder;
use crate::runtime::Program;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `size` instances of one program; each call takes an idle one (waiting
/// for one if all are busy) and gives it back, so calls run concurrently
/// and instances are reused. An instance a call ended (a trap, a timeout)
/// is replaced by a fresh one, built from the same guest configuration.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use procbridge::{GuestBuilder, Runtime};
///
/// let runtime = Runtime::new()?;
/// let program = runtime.load_file("plugin.wasm")?;
/// let pool = runtime.plugin_pool(&program, GuestBuilder::new().build()?, 4)?;
/// let out = pool.call("count_vowels", b"Hello").await?;
/// # Ok(()) }
/// ```
pub struct PluginPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PluginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPool")
            .field("name", &self.shared.name)
            .field("size", &self.shared.members.len())
            .finish_non_exhaustive()
    }
}

struct Shared {
    name: String,
    /// The instances, each held by one call at a time.
    members: Members,
    program: Program,
    origin: Arc<GuestBuilder>,
    runtime: Instantiator,
    /// Each call's timeout: nanoseconds, [`NO_TIMEOUT`] for none.
    timeout: AtomicU64,
}

impl PluginPool {
    /// `size` instances; the first runs with `state`, the others (and
    /// replacements) with states built the way `state` was.
    pub(crate) fn new(
        runtime: &Instantiator,
        program: &Program,
        state: crate::HostState,
        size: usize,
    ) -> anyhow::Result<PluginPool> {
        anyhow::ensure!(size > 0, "a plugin pool needs at least one instance");
        let origin = state.bridge.process.origin.clone().ok_or_else(|| {
            anyhow::anyhow!("the guest state was not made by GuestBuilder::build")
        })?;
        let first = runtime.instantiate(program, state)?;
        let timeout = first.settings.timeout;
        let mut members = Vec::with_capacity(size);
        members.push(first.into_slot());
        for _ in 1..size {
            let state = origin.build()?;
            let plugin = runtime.instantiate(program, state)?;
            members.push(plugin.into_slot());
        }
        Ok(PluginPool {
            shared: Arc::new(Shared {
                name: program.name().to_string(),
                members: Members::new(members),
                program: program.clone(),
                origin,
                runtime: runtime.clone(),
                timeout: AtomicU64::new(encode_timeout(timeout)),
            }),
        })
    }

    /// How many instances it holds.
    pub fn size(&self) -> usize {
        self.shared.members.len()
    }

    /// The deadline of each call from now on (`None`: none).
    pub fn set_call_timeout(&self, timeout: Option<Duration>) {
        self.shared
            .timeout
            .store(encode_timeout(timeout), Ordering::Relaxed);
    }

    /// Calls `export` with `input` on an idle instance, on Tokio's
    /// blocking threads. Must be awaited inside a Tokio runtime.
    ///
    /// # Errors
    /// As [`Plugin::call`](super::Plugin::call).
    pub async fn call(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let shared = self.shared.clone();
        super::on_blocking_thread(&self.shared.name, export, input, move |export, input| {
            shared.call(export, input)
        })
        .await
    }

    /// [`PluginPool::call`] on this thread, blocking.
    ///
    /// # Errors
    /// As [`Plugin::call`](super::Plugin::call).
    pub fn call_blocking(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        run_blocking(|| self.shared.call(export, input))
            .map_err(|e| CallError::new(&self.shared.name, export, CallErrorKind::CannotBlock(e)))?
    }
}

impl Shared {
    fn call(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let mut slot = self.members.take();
        if let Slot::Ended(_) = &*slot {
            // A call ended it and building its replacement failed then:
            // build one now.
            *slot = self.fresh().map_err(|e| {
                CallError::new(
                    &self.name,
                    export,
                    CallErrorKind::Host(format!("no instance to call: building one failed: {e:#}")),
                )
            })?;
        }
        let caller = Caller {
            name: &self.name,
            settings: Settings {
                timeout: decode_timeout(self.timeout.load(Ordering::Relaxed)),
                fuel: None,
            },
            runtime: &self.runtime,
        };
        let result = caller.call(&mut slot, export, input);
        if let Slot::Ended(_) = &*slot {
            // Replaced now, or by the next call that takes it.
            if let Ok(fresh) = self.fresh() {
                *slot = fresh;
            }
        }
        result
    }

    /// A new instance (on the calling thread, which may block: the pool's
    /// calls run on blocking threads, or the caller's own).
    fn fresh(&self) -> anyhow::Result<Slot> {
        let plugin = self
            .runtime
            .instantiate_here(&self.program, self.origin.build()?)?;
        Ok(plugin.into_slot())
    }
}

/// No call timeout, in [`Shared::timeout`].
const NO_TIMEOUT: u64 = u64::MAX;

fn encode_timeout(timeout: Option<Duration>) -> u64 {
    match timeout {
        // Longer than 584 years: as good as none, but still a deadline.
        Some(t) => u64::try_from(t.as_nanos())
            .unwrap_or(NO_TIMEOUT - 1)
            .min(NO_TIMEOUT - 1),
        None => NO_TIMEOUT,
    }
}

fn decode_timeout(nanos: u64) -> Option<Duration> {
    (nanos != NO_TIMEOUT).then(|| Duration::from_nanos(nanos))
}
