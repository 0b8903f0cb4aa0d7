//! A host handle shared by the clones of a `Queue` or `Connection`: closed
//! when the last clone is dropped, unless it was only received (a task's
//! argument) or released with `into_raw`.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

/// A counted reference to one handle of this process.
#[derive(Clone)]
pub(crate) struct SharedHandle(Rc<Inner>);

struct Inner {
    raw: i32,
    /// Whether dropping the last clone closes the handle.
    owned: Cell<bool>,
    /// The host call that closes it (`queue_close`, `pipe_close`).
    close: fn(i32) -> i32,
}

impl SharedHandle {
    /// A handle this process owns: the last clone dropped closes it.
    pub(crate) fn owned(raw: i32, close: fn(i32) -> i32) -> SharedHandle {
        SharedHandle(Rc::new(Inner {
            raw,
            owned: Cell::new(true),
            close,
        }))
    }

    /// A handle this process holds a copy of but does not own here (a
    /// task's argument): dropping never closes it.
    pub(crate) fn received(raw: i32, close: fn(i32) -> i32) -> SharedHandle {
        let handle = SharedHandle::owned(raw, close);
        handle.0.owned.set(false);
        handle
    }

    /// The handle's number.
    pub(crate) fn raw(&self) -> i32 {
        self.0.raw
    }

    /// The number, which no clone closes any more.
    pub(crate) fn release(&self) -> i32 {
        self.0.owned.set(false);
        self.0.raw
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owned.get() {
            // An already closed handle is EBADF, which there is no one to
            // report to.
            let _ = (self.close)(self.raw);
        }
    }
}

impl fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.raw)
    }
}
