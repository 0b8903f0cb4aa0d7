//! A pool of instances of one plugin, for concurrent calls.

use super::{CallError, CallErrorKind, Instantiator, Plugin};
use crate::blocking::run_blocking;
use crate::ctx::GuestBuilder;
use crate::runtime::Program;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
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
            .field("size", &self.shared.size)
            .finish_non_exhaustive()
    }
}

struct Shared {
    name: String,
    size: usize,
    idle: Mutex<Idle>,
    /// Signalled when an instance is given back to a waiting call.
    given_back: Condvar,
    program: Program,
    origin: Arc<GuestBuilder>,
    runtime: Instantiator,
    /// Each call's timeout: nanoseconds, [`NO_TIMEOUT`] for none.
    timeout: AtomicU64,
    /// Instances ended and not yet replaced (building one failed).
    missing: AtomicUsize,
}

/// The idle instances.
struct Idle {
    /// The last given back on top (its memory is the likeliest to be in
    /// the cache).
    plugins: Vec<Plugin>,
    /// Calls waiting for one (a call that finds one idle makes no system
    /// call to wake nobody).
    waiting: usize,
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
        let shared = Arc::new(Shared {
            name: program.name().to_string(),
            size,
            idle: Mutex::new(Idle {
                plugins: Vec::with_capacity(size),
                waiting: 0,
            }),
            given_back: Condvar::new(),
            program: program.clone(),
            origin,
            runtime: runtime.clone(),
            timeout: AtomicU64::new(encode_timeout(timeout)),
            missing: AtomicUsize::new(0),
        });
        shared.give_back(first);
        for _ in 1..size {
            shared.give_back(shared.fresh()?);
        }
        Ok(PluginPool { shared })
    }

    /// How many instances it holds.
    pub fn size(&self) -> usize {
        self.shared.size
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
    /// As [`Plugin::call`].
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
    /// As [`Plugin::call`].
    pub fn call_blocking(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        run_blocking(|| self.shared.call(export, input))
            .map_err(|e| CallError::new(&self.shared.name, export, CallErrorKind::CannotBlock(e)))?
    }
}

impl Shared {
    fn call(&self, export: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let fail = |kind| CallError::new(&self.name, export, kind);
        let mut plugin = self.take().map_err(|e| {
            fail(CallErrorKind::Host(format!(
                "no instance to call: building one failed: {e:#}"
            )))
        })?;
        plugin.set_call_timeout(decode_timeout(self.timeout.load(Ordering::Relaxed)));
        let result = plugin.call_here(export, input);
        if plugin.is_alive() {
            self.give_back(plugin);
        } else {
            match self.fresh() {
                Ok(fresh) => self.give_back(fresh),
                // Built on a later call instead.
                Err(_) => {
                    self.missing.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        result
    }

    /// An idle instance: one given back, or one built in place of an
    /// instance that could not be replaced, or the next given back.
    fn take(&self) -> anyhow::Result<Plugin> {
        if let Some(plugin) = self.lock_idle().plugins.pop() {
            return Ok(plugin);
        }
        let claimed = self
            .missing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| m.checked_sub(1))
            .is_ok();
        if claimed {
            return self.fresh().inspect_err(|_| {
                self.missing.fetch_add(1, Ordering::SeqCst);
            });
        }
        let mut idle = self.lock_idle();
        loop {
            if let Some(plugin) = idle.plugins.pop() {
                return Ok(plugin);
            }
            idle.waiting += 1;
            idle = self
                .given_back
                .wait(idle)
                .unwrap_or_else(|p| p.into_inner());
            idle.waiting -= 1;
        }
    }

    /// A new instance (on the calling thread, which may block: the pool's
    /// calls run on blocking threads, or the caller's own).
    fn fresh(&self) -> anyhow::Result<Plugin> {
        self.runtime
            .instantiate_here(&self.program, self.origin.build()?)
    }

    fn give_back(&self, plugin: Plugin) {
        let mut idle = self.lock_idle();
        idle.plugins.push(plugin);
        if idle.waiting > 0 {
            drop(idle);
            self.given_back.notify_one();
        }
    }

    fn lock_idle(&self) -> MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
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
