//! The bounded per-instance handle table.
//!
//! A guest never sees a host resource: it sees a small positive integer that
//! names an entry here. Handles carry a generation, so a closed handle that is
//! used again, or a number that was never handed out, is `EBADF` rather than
//! someone else's resource. Each entry also remembers the OS process that
//! created it: after `fork`, the child may use only the entries marked
//! inheritable (channels); the others belong to the parent and are refused.

use crate::errno::{BridgeError, BridgeResult, Errno};
use std::any::Any;

/// The default number of handles an instance may hold open at once.
pub const DEFAULT_MAX_HANDLES: usize = 1024;

const INDEX_BITS: u32 = 16;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u32 = 0x7fff;

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

struct Entry {
    value: Box<dyn Any + Send>,
    kind: &'static str,
    owner_pid: u32,
    inheritable: bool,
    /// When it was made, in the table's count of insertions: a fork child
    /// made after it holds a copy.
    serial: u64,
}

/// A bounded table from guest handles to host resources of any type.
pub struct HandleTable {
    slots: Vec<Slot>,
    free: Vec<usize>,
    max: usize,
    live: usize,
    /// Insertions so far.
    serial: u64,
}

impl std::fmt::Debug for HandleTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleTable")
            .field("live", &self.live)
            .field("max", &self.max)
            .finish()
    }
}

impl HandleTable {
    /// An empty table holding at most `max` open handles (at most 65535).
    pub fn new(max: usize) -> Self {
        HandleTable {
            slots: Vec::new(),
            free: Vec::new(),
            max: max.min(INDEX_MASK as usize),
            live: 0,
            serial: 0,
        }
    }

    /// The number of open handles.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no handle is open.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Stores `value` and returns its handle. `kind` names it in errors.
    ///
    /// # Errors
    /// `EMFILE` when the table is full.
    pub fn insert<T: Any + Send>(&mut self, kind: &'static str, value: T) -> BridgeResult<i32> {
        self.insert_entry(kind, Box::new(value), false)
    }

    /// Like [`insert`](Self::insert), for a resource a fork child may keep
    /// using (a queue or pipe end).
    pub fn insert_inheritable<T: Any + Send>(
        &mut self,
        kind: &'static str,
        value: T,
    ) -> BridgeResult<i32> {
        self.insert_entry(kind, Box::new(value), true)
    }

    fn insert_entry(
        &mut self,
        kind: &'static str,
        value: Box<dyn Any + Send>,
        inheritable: bool,
    ) -> BridgeResult<i32> {
        if self.live >= self.max {
            return Err(crate::audit::limit(BridgeError::new(
                Errno::MFile,
                format!("too many open handles (limit {})", self.max),
            )));
        }
        self.serial += 1;
        let entry = Entry {
            value,
            kind,
            owner_pid: crate::process_local::pid(),
            inheritable,
            serial: self.serial,
        };
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.entry = Some(entry);
        self.live += 1;
        Ok(Self::handle(slot.generation, index))
    }

    /// How many handles were ever made: a process forked now holds a copy
    /// of every inheritable handle whose [`serial_of`](Self::serial_of) is
    /// at most this.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The serial of an open inheritable handle (a queue or a pipe end) of
    /// any kind.
    ///
    /// # Errors
    /// `EBADF` for a handle that is not open; `EINVAL` for one a child
    /// cannot hold (a process, a command, a pool).
    pub fn serial_of(&self, handle: i32) -> BridgeResult<u64> {
        let entry = self
            .open_entry(handle)
            .ok_or_else(|| BridgeError::bad_handle(handle, "queue or pipe"))?;
        if !entry.inheritable {
            return Err(BridgeError::invalid(format!(
                "a {} handle cannot be given to another process: only queues and pipe ends can",
                entry.kind
            )));
        }
        Ok(entry.serial)
    }

    /// The open entry a handle names (its index and generation match), of
    /// any kind and owner.
    fn open_entry(&self, handle: i32) -> Option<&Entry> {
        self.index_of(handle)
            .and_then(|index| self.slots[index].entry.as_ref())
    }

    /// The slot index a handle names, if the slot exists and has the
    /// handle's generation.
    fn index_of(&self, handle: i32) -> Option<usize> {
        let raw = handle as u32;
        let index = (raw & INDEX_MASK) as usize;
        if handle <= 0 || index == 0 {
            return None;
        }
        let slot = self.slots.get(index - 1)?;
        (slot.generation == raw >> INDEX_BITS).then_some(index - 1)
    }

    fn locate(&self, handle: i32, kind: &str) -> BridgeResult<usize> {
        let bad = || BridgeError::bad_handle(handle, kind);
        let index = self.index_of(handle).ok_or_else(bad)?;
        let entry = self.slots[index].entry.as_ref().ok_or_else(bad)?;
        if entry.kind != kind {
            return Err(bad());
        }
        // Inheritable entries (channels, on the hot path) need no pid.
        if !entry.inheritable && entry.owner_pid != crate::process_local::pid() {
            return Err(BridgeError::new(
                Errno::BadF,
                format!(
                    "{kind} handle {handle} belongs to process {}, not to this one",
                    entry.owner_pid
                ),
            ));
        }
        Ok(index)
    }

    /// Borrows the resource behind `handle`, which must be of type `T` and
    /// kind `kind`.
    ///
    /// # Errors
    /// `EBADF` for a handle that is not open, of another kind, or owned by
    /// another process.
    pub fn get<T: Any + Send>(&mut self, handle: i32, kind: &str) -> BridgeResult<&mut T> {
        let index = self.locate(handle, kind)?;
        self.slots[index]
            .entry
            .as_mut()
            .and_then(|e| e.value.downcast_mut::<T>())
            .ok_or_else(|| BridgeError::bad_handle(handle, kind))
    }

    /// Removes and returns the resource behind `handle`; the handle is dead
    /// from then on, even if its slot is reused.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn remove<T: Any + Send>(&mut self, handle: i32, kind: &str) -> BridgeResult<T> {
        let index = self.locate(handle, kind)?;
        if !self.slots[index]
            .entry
            .as_ref()
            .is_some_and(|e| e.value.is::<T>())
        {
            return Err(BridgeError::bad_handle(handle, kind));
        }
        let entry = self.free_slot(index);
        match entry.value.downcast::<T>() {
            Ok(value) => Ok(*value),
            Err(_) => Err(BridgeError::bad_handle(handle, kind)),
        }
    }

    fn free_slot(&mut self, index: usize) -> Entry {
        let slot = &mut self.slots[index];
        let entry = slot.entry.take().expect("located slot is occupied");
        slot.generation = (slot.generation + 1) & GENERATION_MASK;
        self.free.push(index);
        self.live -= 1;
        entry
    }

    /// Calls `f` on every entry of `kind` that belongs to another OS
    /// process: in a fork child, to close the descriptors of the parent's
    /// resources before [`forget_foreign`](Self::forget_foreign) (the
    /// child can never use them, and an inherited pipe end would keep the
    /// parent's command from seeing end of file).
    pub fn for_each_foreign<T: Any>(&mut self, kind: &'static str, mut f: impl FnMut(&mut T)) {
        let pid = crate::process_local::pid();
        for slot in &mut self.slots {
            if let Some(entry) = slot.entry.as_mut() {
                if entry.kind == kind && !entry.inheritable && entry.owner_pid != pid {
                    if let Some(value) = entry.value.downcast_mut::<T>() {
                        f(value);
                    }
                }
            }
        }
    }

    /// Calls `f` on every entry of `kind` this OS process owns.
    pub(crate) fn for_each_own<T: Any>(&mut self, kind: &'static str, mut f: impl FnMut(&mut T)) {
        let pid = crate::process_local::pid();
        for slot in &mut self.slots {
            if let Some(entry) = slot.entry.as_mut() {
                if entry.kind == kind && entry.owner_pid == pid {
                    if let Some(value) = entry.value.downcast_mut::<T>() {
                        f(value);
                    }
                }
            }
        }
    }

    /// Calls `f` on every inheritable entry of `kind` (whoever made it),
    /// with its handle: what a process can give to a pool's workers.
    pub(crate) fn for_each_inheritable<T: Any>(
        &self,
        kind: &'static str,
        mut f: impl FnMut(i32, &T),
    ) {
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(entry) = slot.entry.as_ref() {
                if entry.kind == kind && entry.inheritable {
                    if let Some(value) = entry.value.downcast_ref::<T>() {
                        f(Self::handle(slot.generation, index), value);
                    }
                }
            }
        }
    }

    /// Stores an inheritable `value` under `handle`, a number another
    /// table gave out (a job's queue, in its task's instance on another
    /// machine).
    ///
    /// # Errors
    /// `EBADF` for a number no table gives out; `EINVAL` when the number's
    /// slot is in use; `EMFILE` when the table is full.
    pub(crate) fn insert_inheritable_at<T: Any + Send>(
        &mut self,
        handle: i32,
        kind: &'static str,
        value: T,
    ) -> BridgeResult<()> {
        let raw = handle as u32;
        let index = (raw & INDEX_MASK) as usize;
        let generation = raw >> INDEX_BITS;
        if handle <= 0 || index == 0 || generation > GENERATION_MASK {
            return Err(BridgeError::bad_handle(handle, kind));
        }
        let index = index - 1;
        if index >= self.max {
            return Err(BridgeError::bad_handle(handle, kind));
        }
        if self.live >= self.max {
            return Err(crate::audit::limit(BridgeError::new(
                Errno::MFile,
                format!("too many open handles (limit {})", self.max),
            )));
        }
        if index >= self.slots.len() {
            let first_new = self.slots.len();
            self.slots.resize_with(index + 1, || Slot {
                generation: 0,
                entry: None,
            });
            self.free.extend(first_new..index);
        }
        // A generation below the slot's would make numbers handed out and
        // closed before name something again.
        let slot = &self.slots[index];
        if slot.entry.is_some() || slot.generation > generation {
            return Err(BridgeError::invalid(format!(
                "handle {handle} cannot be given a {kind}: its slot is in use, or was"
            )));
        }
        self.free.retain(|&free| free != index);
        self.serial += 1;
        let slot = &mut self.slots[index];
        slot.generation = generation;
        slot.entry = Some(Entry {
            value: Box::new(value),
            kind,
            owner_pid: crate::process_local::pid(),
            inheritable: true,
            serial: self.serial,
        });
        self.live += 1;
        Ok(())
    }

    fn handle(generation: u32, index: usize) -> i32 {
        ((generation << INDEX_BITS) | (index as u32 + 1)) as i32
    }

    /// Called in a fork child: entries it may not use are forgotten without
    /// running their destructors (they belong to the parent: dropping a
    /// process entry here would kill or reap the parent's child).
    pub fn forget_foreign(&mut self) {
        let pid = crate::process_local::pid();
        for index in 0..self.slots.len() {
            let foreign = self.slots[index]
                .entry
                .as_ref()
                .is_some_and(|e| !e.inheritable && e.owner_pid != pid);
            if foreign {
                std::mem::forget(self.free_slot(index));
            }
        }
    }

    /// Moves the inheritable entries (channels) into a new table, under the
    /// same handle numbers: for a spawned child's fresh instance, so a queue
    /// handle passed in its arguments keeps working.
    pub fn take_inheritable(&mut self) -> HandleTable {
        let mut table = HandleTable::new(self.max);
        // The entries keep their serials: so does the count, or a pool made
        // from the new table would take them for newer than its workers.
        table.serial = self.serial;
        for index in 0..self.slots.len() {
            table.slots.push(Slot {
                generation: self.slots[index].generation,
                entry: None,
            });
            let inheritable = self.slots[index]
                .entry
                .as_ref()
                .is_some_and(|e| e.inheritable);
            if inheritable {
                let generation = self.slots[index].generation;
                let entry = self.free_slot(index);
                table.slots[index].entry = Some(entry);
                table.slots[index].generation = generation;
                table.live += 1;
            } else {
                table.free.push(index);
            }
        }
        // Hand out low indexes first, as a fresh table does.
        table.free.reverse();
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_goes_under_the_number_another_table_gave() {
        let mut theirs = HandleTable::new(8);
        theirs.insert("pool", 0u8).unwrap();
        let q = theirs.insert_inheritable("queue", 7u32).unwrap();
        let mut seen = Vec::new();
        theirs.for_each_inheritable::<u32>("queue", |h, v| seen.push((h, *v)));
        assert_eq!(seen, [(q, 7)]);

        let mut ours = HandleTable::new(8);
        ours.insert_inheritable_at(q, "queue", 9u32).unwrap();
        assert_eq!(*ours.get::<u32>(q, "queue").unwrap(), 9);
        // Its slot is taken; the slots below stay usable.
        let err = ours.insert_inheritable_at(q, "queue", 10u32).unwrap_err();
        assert_eq!(err.errno, Errno::Inval);
        assert_eq!(*ours.get::<u32>(q, "queue").unwrap(), 9);
        assert_eq!(ours.len(), 1);
        let other = ours.insert("pool", 1u8).unwrap();
        assert_ne!(other, q);
        assert_eq!(ours.len(), 2);
        // A closed handle's number does not come back to life.
        ours.remove::<u8>(other, "pool").unwrap();
        let err = ours
            .insert_inheritable_at(other, "queue", 1u32)
            .unwrap_err();
        assert_eq!(err.errno, Errno::Inval);
        assert!(ours.get::<u32>(other, "queue").is_err());
        for bad in [0, -1, 9 + (1 << 16), i32::MAX] {
            assert_eq!(
                ours.insert_inheritable_at(bad, "queue", 1u32)
                    .unwrap_err()
                    .errno,
                Errno::BadF,
                "{bad}"
            );
        }
    }

    #[test]
    fn insert_get_remove() {
        let mut table = HandleTable::new(4);
        let h = table.insert("thing", 7u32).unwrap();
        assert!(h > 0);
        assert_eq!(*table.get::<u32>(h, "thing").unwrap(), 7);
        *table.get::<u32>(h, "thing").unwrap() = 8;
        assert_eq!(table.remove::<u32>(h, "thing").unwrap(), 8);
        assert!(table.is_empty());
    }

    #[test]
    fn closed_reused_forged_and_wrong_kind_handles_are_ebadf() {
        let mut table = HandleTable::new(4);
        let h = table.insert("thing", 1u32).unwrap();
        table.remove::<u32>(h, "thing").unwrap();
        let h2 = table.insert("thing", 2u32).unwrap();
        assert_ne!(h, h2, "a reused slot gets a new generation");
        for bad in [h, 0, -1, i32::MIN, i32::MAX, h2 + 1] {
            assert_eq!(
                table.get::<u32>(bad, "thing").unwrap_err().errno,
                Errno::BadF
            );
        }
        assert_eq!(
            table.get::<u32>(h2, "other").unwrap_err().errno,
            Errno::BadF
        );
        assert_eq!(
            table.get::<u64>(h2, "thing").unwrap_err().errno,
            Errno::BadF
        );
        assert_eq!(
            table.remove::<u64>(h2, "thing").unwrap_err().errno,
            Errno::BadF
        );
        assert_eq!(*table.get::<u32>(h2, "thing").unwrap(), 2);
    }

    #[test]
    fn inheritable_entries_move_with_their_numbers() {
        let mut table = HandleTable::new(8);
        let own = table.insert("process", 1u32).unwrap();
        let queue = table.insert_inheritable("queue", 2u32).unwrap();
        let mut moved = table.take_inheritable();
        assert_eq!(*moved.get::<u32>(queue, "queue").unwrap(), 2);
        assert_eq!(
            moved.get::<u32>(own, "process").unwrap_err().errno,
            Errno::BadF
        );
        assert_eq!(moved.len(), 1);
        assert!(table.get::<u32>(queue, "queue").is_err());
        let fresh = moved.insert("process", 3u32).unwrap();
        assert_ne!(fresh, queue);
        assert_eq!(*moved.get::<u32>(fresh, "process").unwrap(), 3);
        // A process forked from the new table holds the moved queue.
        assert!(moved.serial_of(queue).unwrap() <= moved.serial());
    }

    #[test]
    fn serials_say_which_handles_a_fork_holds() {
        let mut table = HandleTable::new(8);
        let queue = table.insert_inheritable("queue", 1u32).unwrap();
        let forked_at = table.serial();
        let later = table.insert_inheritable("pipe", 2u32).unwrap();
        assert!(table.serial_of(queue).unwrap() <= forked_at);
        assert!(table.serial_of(later).unwrap() > forked_at);
        let own = table.insert("process", 3u32).unwrap();
        assert_eq!(table.serial_of(own).unwrap_err().errno, Errno::Inval);
        for bad in [0, -1, 12345, queue + (1 << INDEX_BITS)] {
            assert_eq!(table.serial_of(bad).unwrap_err().errno, Errno::BadF);
        }
        table.remove::<u32>(queue, "queue").unwrap();
        assert_eq!(table.serial_of(queue).unwrap_err().errno, Errno::BadF);
    }

    #[test]
    fn table_is_bounded() {
        let mut table = HandleTable::new(2);
        table.insert("thing", ()).unwrap();
        let h = table.insert("thing", ()).unwrap();
        assert_eq!(table.insert("thing", ()).unwrap_err().errno, Errno::MFile);
        table.remove::<()>(h, "thing").unwrap();
        table.insert("thing", ()).unwrap();
    }
}
