//! A plugin pool's instances, each held by one call at a time, and the
//! waiting for a free one.
//!
//! Each instance has a lock word of its own: taking a free instance is one
//! compare-and-swap, giving it back one swap. A call that finds none free
//! marks the busy ones *wanted* before it sleeps, so the swap that frees
//! one tells whoever gives it back to wake the sleepers; a call that finds
//! one free never touches anything shared with the others, and never makes
//! a system call.

use super::Slot;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};

/// Held by a call.
const BUSY: u8 = 1;
/// A call sleeps until it is given back.
const WANTED: u8 = 2;

/// The instances of a pool.
pub(super) struct Members {
    members: Box<[Member]>,
    /// Held to sleep, and to wake the sleepers.
    sleep: Mutex<()>,
    given_back: Condvar,
}

struct Member {
    state: AtomicU8,
    slot: UnsafeCell<Slot>,
}

// SAFETY: `slot` is only touched through a `Held`, and one `Held` at a time
// exists for a member: it is made by the compare-and-swap that sets `BUSY`
// (acquire) and ends with the swap that clears it (release).
unsafe impl Sync for Member {}

/// An instance held by a call; given back when dropped.
pub(super) struct Held<'a> {
    member: &'a Member,
    members: &'a Members,
}

impl Members {
    pub(super) fn new(slots: Vec<Slot>) -> Members {
        Members {
            members: slots
                .into_iter()
                .map(|slot| Member {
                    state: AtomicU8::new(0),
                    slot: UnsafeCell::new(slot),
                })
                .collect(),
            sleep: Mutex::new(()),
            given_back: Condvar::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// A free instance: the first found (a lightly used pool keeps calling
    /// the same one, whose memory is in the cache), or the first given back.
    pub(super) fn take(&self) -> Held<'_> {
        if let Some(held) = self.members.iter().find_map(|m| self.try_hold(m)) {
            return held;
        }
        let mut guard = self.sleep.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            for member in self.members.iter() {
                if let Some(held) = self.hold_or_want(member) {
                    return held;
                }
            }
            // Every instance is busy and wanted: the first given back wakes
            // this (it takes `sleep` to do so, so not before this sleeps).
            guard = self
                .given_back
                .wait(guard)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn try_hold<'a>(&'a self, member: &'a Member) -> Option<Held<'a>> {
        let state = member.state.load(Ordering::Relaxed);
        if state & BUSY != 0 {
            return None;
        }
        member
            .state
            .compare_exchange(state, state | BUSY, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Held {
                member,
                members: self,
            })
    }

    /// Holds `member` if it is free, else marks it wanted.
    fn hold_or_want<'a>(&'a self, member: &'a Member) -> Option<Held<'a>> {
        let mut state = member.state.load(Ordering::Relaxed);
        loop {
            let (next, order) = match state {
                s if s & BUSY == 0 => (s | BUSY, Ordering::Acquire),
                s if s & WANTED != 0 => return None,
                s => (s | WANTED, Ordering::Relaxed),
            };
            match member
                .state
                .compare_exchange(state, next, order, Ordering::Relaxed)
            {
                Ok(_) if state & BUSY == 0 => {
                    return Some(Held {
                        member,
                        members: self,
                    })
                }
                Ok(_) => return None,
                Err(now) => state = now,
            }
        }
    }
}

impl Deref for Held<'_> {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        // SAFETY: this `Held` is the only one of its member (see `Member`).
        unsafe { &*self.member.slot.get() }
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Slot {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.member.slot.get() }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.member.state.swap(0, Ordering::Release) & WANTED != 0 {
            let _guard = self.members.sleep.lock().unwrap_or_else(|p| p.into_inner());
            // Every sleeper looks again: each marked every busy instance.
            self.members.given_back.notify_all();
        }
    }
}
