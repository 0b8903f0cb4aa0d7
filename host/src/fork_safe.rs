//! A once-cell that a fork cannot leave locked: [`ForkSafeOnce`].
//!
//! `std::sync::OnceLock` makes other threads wait while one thread fills
//! it. A process forked at that moment inherits the cell as "being filled"
//! but not the thread filling it, and its first `get_or_init` waits for
//! ever. Guest processes are forks of a host that may run guests on
//! several threads at once (a `PluginPool`, a cluster worker), so the
//! cells that fork children reach are of this kind instead: nobody waits;
//! threads that race to fill one each make a value, the first stored wins
//! and the others are dropped. Filling one twice must do no harm.
//!
//! ```text
//! static FILTER: ForkSafeOnce<Filter> = ForkSafeOnce::new();
//! let filter = FILTER.get_or_init(|| Filter::new(Profile::Command));
//! ```

use std::sync::atomic::{AtomicPtr, Ordering};

/// A value made once (or a few times, by racing threads, one of which is
/// kept), which a fork child never waits for. See the [module
/// docs](self).
pub(crate) struct ForkSafeOnce<T> {
    value: AtomicPtr<T>,
}

impl<T> ForkSafeOnce<T> {
    /// An empty cell.
    pub(crate) const fn new() -> ForkSafeOnce<T> {
        ForkSafeOnce {
            value: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The value, once stored.
    pub(crate) fn get(&self) -> Option<&T> {
        let value = self.value.load(Ordering::Acquire);
        // SAFETY: a non-null pointer is a Box stored by `get_or_init`,
        // freed only when the cell is dropped.
        (!value.is_null()).then(|| unsafe { &*value })
    }

    /// The value, made by `init` if none is stored yet. A thread that
    /// loses the race to store its value drops it and gets the winner's.
    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let made = Box::into_raw(Box::new(init()));
        match self.value.compare_exchange(
            std::ptr::null_mut(),
            made,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: stored; lives as long as the cell.
            Ok(_) => unsafe { &*made },
            Err(stored) => {
                // SAFETY: `made` was never shared; `stored` is the winner's
                // Box, which lives as long as the cell.
                unsafe {
                    drop(Box::from_raw(made));
                    &*stored
                }
            }
        }
    }
}

impl<T> Default for ForkSafeOnce<T> {
    fn default() -> ForkSafeOnce<T> {
        ForkSafeOnce::new()
    }
}

impl<T> Drop for ForkSafeOnce<T> {
    fn drop(&mut self) {
        let value = *self.value.get_mut();
        if !value.is_null() {
            // SAFETY: the Box stored by `get_or_init`, no longer shared.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ForkSafeOnce<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ForkSafeOnce").field(&self.get()).finish()
    }
}

// SAFETY: as `OnceLock<T>`: the cell hands out `&T` to every thread and
// may drop a `T` made on another thread.
unsafe impl<T: Send + Sync> Sync for ForkSafeOnce<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for ForkSafeOnce<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    #[test]
    fn racing_threads_all_get_the_one_value_kept() {
        let cell = Arc::new(ForkSafeOnce::new());
        let made = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(4));
        let got: Vec<usize> = (0..4)
            .map(|i| {
                let (cell, made, start) = (cell.clone(), made.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    *cell.get_or_init(|| {
                        made.fetch_add(1, Ordering::SeqCst);
                        i
                    })
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(made.load(Ordering::SeqCst) >= 1);
        assert!(got.iter().all(|&v| v == got[0]), "{got:?}");
        assert_eq!(cell.get(), Some(&got[0]));
    }

    /// A child forked while another thread of its parent is filling the
    /// cell fills it itself. (With a `OnceLock` it waits for ever: the
    /// thread filling it is not in the child.)
    #[test]
    fn a_child_forked_while_the_cell_is_being_filled_does_not_wait() {
        static CELL: ForkSafeOnce<u32> = ForkSafeOnce::new();
        let filling = Arc::new(Barrier::new(2));
        let forked = Arc::new(Barrier::new(2));
        let filler = {
            let (filling, forked) = (filling.clone(), forked.clone());
            std::thread::spawn(move || {
                *CELL.get_or_init(|| {
                    filling.wait();
                    forked.wait();
                    1
                })
            })
        };
        filling.wait();
        // SAFETY: the child only reads the cell and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let got = *CELL.get_or_init(|| 2);
            // SAFETY: ends the child without running the parent's atexit.
            unsafe { libc::_exit(if got == 2 { 0 } else { 1 }) };
        }
        assert!(pid > 0);
        forked.wait();
        assert_eq!(filler.join().unwrap(), 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child without blocking.
            let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if reaped == pid {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the child waited for a cell its parent was filling");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
