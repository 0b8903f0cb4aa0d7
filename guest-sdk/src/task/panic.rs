//! A panic inside a task becomes the task's error: the caller's `get()`
//! (or the parent's stderr, for a `Process`) shows its message and where it
//! happened, as Python shows the worker's exception.

use crate::sys;
use std::any::Any;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// How many task calls are running (a batch runs items inside one call).
/// A wasm32-wasip1 module has one thread: plain statics, which cost a
/// load and a store per call where a `thread_local!` costs a lookup.
static DEPTH: AtomicU32 = AtomicU32::new(0);
/// Whether the panic hook is in place.
static HOOKED: AtomicBool = AtomicBool::new(false);

/// Marks a task call as running while it lives.
pub(crate) struct Running(());

impl Running {
    /// Enters a task call, installing the panic hook the first time.
    #[inline]
    pub(crate) fn enter() -> Running {
        if !HOOKED.swap(true, Ordering::Relaxed) {
            install();
        }
        DEPTH.fetch_add(1, Ordering::Relaxed);
        Running(())
    }
}

impl Drop for Running {
    #[inline]
    fn drop(&mut self) {
        DEPTH.fetch_sub(1, Ordering::Relaxed);
    }
}

fn install() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if DEPTH.load(Ordering::Relaxed) == 0 {
            return previous(info);
        }
        let message = describe(info.payload(), info.location());
        crate::os::flush_std();
        // The instance traps right after (guests abort on panic); the host
        // reports the task as failed with this message. Should the host
        // refuse it, the message goes to stderr as without a task.
        if sys::task_error(message.as_bytes()) < 0 {
            previous(info);
        }
    }));
}

/// `panicked at 'MESSAGE', FILE:LINE:COLUMN`, on every toolchain.
fn describe(payload: &(dyn Any + Send), location: Option<&Location<'_>>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("Box<dyn Any>")
    };
    match location {
        Some(at) => format!(
            "panicked at '{}', {}:{}:{}",
            text,
            at.file(),
            at.line(),
            at.column()
        ),
        None => format!("panicked at '{}'", text),
    }
}
