//! Deadlines for guest code: wasmtime's epoch interruption, ticked by one
//! thread per runtime.
//!
//! A runtime built with epoch interruption (the default) compiles a check
//! into every loop and function entry of the guest; [`Ticker`] advances the
//! engine's epoch every tick, and a store whose deadline passes traps with
//! [`wasmtime::Trap::Interrupt`] — the call returns an error and the thread
//! that made it, the embedder's, goes on. A store without a deadline gets
//! one so far away it is never reached.
//!
//! The ticking thread starts with the first deadline set, and holds the
//! engine weakly: it ends with the runtime. A `fork` child has no such
//! thread; it starts its own if it sets a deadline.

use std::sync::Mutex;
use std::time::Duration;
use wasmtime::{Engine, EngineWeak, Store};

/// How often the epoch advances by default: the granularity of deadlines.
pub const DEFAULT_TICK: Duration = Duration::from_millis(1);

/// Ticks that are never reached (`current + FAR` cannot overflow).
const FAR: u64 = u64::MAX / 2;

/// The thread advancing one engine's epoch.
pub(crate) struct Ticker {
    tick: Duration,
    /// The process that started the thread (a fork child starts its own).
    started_in: Mutex<Option<u32>>,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker").field("tick", &self.tick).finish()
    }
}

impl Ticker {
    pub(crate) fn new(tick: Duration) -> Ticker {
        Ticker {
            tick: tick.max(Duration::from_micros(100)),
            started_in: Mutex::new(None),
        }
    }

    /// Sets `store`'s deadline `timeout` from now (`None`: never), starting
    /// the ticking thread if this process has none.
    ///
    /// # Errors
    /// When the thread cannot be started (the process's thread limit).
    pub(crate) fn arm<T>(
        &self,
        store: &mut Store<T>,
        timeout: Option<Duration>,
    ) -> std::io::Result<()> {
        let Some(timeout) = timeout else {
            store.set_epoch_deadline(FAR);
            return Ok(());
        };
        self.start(store.engine())?;
        store.set_epoch_deadline(self.ticks(timeout));
        Ok(())
    }

    /// Ticks covering `timeout`: one more than it spans, since the current
    /// tick may be about to end.
    pub(crate) fn ticks(&self, timeout: Duration) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        let whole = timeout.as_nanos().div_ceil(tick);
        u64::try_from(whole)
            .unwrap_or(FAR)
            .saturating_add(1)
            .min(FAR)
    }

    fn start(&self, engine: &Engine) -> std::io::Result<()> {
        let pid = std::process::id();
        let mut started = self.started_in.lock().unwrap_or_else(|p| p.into_inner());
        if *started == Some(pid) {
            return Ok(());
        }
        let weak = engine.weak();
        let tick = self.tick;
        std::thread::Builder::new()
            .name("procbridge-epoch".into())
            .spawn(move || tick_until_dropped(&weak, tick))?;
        *started = Some(pid);
        Ok(())
    }
}

fn tick_until_dropped(engine: &EngineWeak, tick: Duration) {
    loop {
        std::thread::sleep(tick);
        match engine.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => return,
        }
    }
}

/// Makes `store`'s deadline-passing a trap, and its deadline never.
pub(crate) fn no_deadline<T>(store: &mut Store<T>) {
    store.epoch_deadline_trap();
    store.set_epoch_deadline(FAR);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_spans_whole_ticks_and_one_more() {
        let ticker = Ticker::new(Duration::from_millis(1));
        assert_eq!(ticker.ticks(Duration::ZERO), 1);
        assert_eq!(ticker.ticks(Duration::from_micros(1)), 2);
        assert_eq!(ticker.ticks(Duration::from_millis(50)), 51);
        assert_eq!(ticker.ticks(Duration::MAX), FAR);
        // A tick below 100 µs is 100 µs.
        assert_eq!(Ticker::new(Duration::ZERO).tick, Duration::from_micros(100));
    }
}
