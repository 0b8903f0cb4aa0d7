//! Supervision of the process tree: the tree-wide limit on live processes
//! and the parent-death rule.
//!
//! # The limit
//!
//! Every OS process a guest starts (an `os.fork` child, a `Process`, and
//! later pool workers and commands) takes one slot of a table shared by the
//! whole tree. The table lives in an anonymous `MAP_SHARED` mapping made by
//! the first process that starts a child (the root); every descendant
//! inherits the mapping through `fork`, so a grandchild's claim is counted
//! against the same limit as the root's. A claim over the limit is `EAGAIN`,
//! as `fork(2)` gives when `RLIMIT_NPROC` is reached: a fork bomb gets an
//! error in the guest, and the host stays responsive.
//!
//! The protocol, for code that starts processes:
//!
//! ```ignore
//! # fn main() -> Result<(), procbridge::BridgeError> {
//! use crate::supervisor;
//! let claim = supervisor::claim(64)?;         // EAGAIN when the tree is full
//! let child = std::process::Command::new("true").spawn().unwrap();
//! let slot = claim.commit(child.id());        // a failed start drops the claim instead
//! // ... once the child has been reaped:
//! supervisor::release(slot);
//! # Ok(()) }
//! ```
//!
//! A slot whose process is gone without being released (its parent was
//! killed) is reclaimed lazily: when the table looks full, slots whose pid
//! no longer exists (`kill(pid, 0)` is `ESRCH`) are freed.
//!
//! # Memory
//!
//! Each slot also counts the wasm linear memory its process holds, so that
//! `Limits::max_total_memory_bytes` bounds the whole tree. A guest process
//! holds memory from the moment it is forked (a copy of its parent's
//! instance), so its parent reserves it in the claimed slot before the fork
//! ([`Claim::reserve_memory`], `ENOMEM` past the limit); the child takes the
//! slot over with that memory, and its instance's growth adds to it
//! ([`memory_grow`]).
//!
//! # Parent death
//!
//! Every child calls [`bind_to_parent`] first thing: the kernel sends it
//! `SIGKILL` when its parent dies, so killing the root (even with `SIGKILL`)
//! takes the whole tree down, one generation after the other.

use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::fork_safe::ForkSafeOnce;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// The most processes one tree can track, whatever the limits say.
pub const CAPACITY: usize = 1024;

#[repr(C)]
struct Table {
    live: AtomicU32,
    /// `0` free; `-pid` reserved by process `pid` for a child it is about to
    /// start; `pid` a live child; [`FREEING`] being freed.
    slots: [AtomicI32; CAPACITY],
    /// Bytes of wasm linear memory held by the process of each slot.
    memory: [AtomicU64; CAPACITY],
    /// Bytes of wasm linear memory held by the root (which has no slot).
    root_memory: AtomicU64,
}

/// A slot being freed: its memory is cleared before it can be claimed
/// again, so a new claim's reservation is never wiped by the old owner's
/// release.
const FREEING: i32 = i32::MIN;

/// The slot of this process in the table (`usize::MAX`: the root).
static OWN_SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The table's address, inherited by every descendant through `fork`.
static TABLE: ForkSafeOnce<Option<&'static Table>> = ForkSafeOnce::new();

fn table() -> BridgeResult<&'static Table> {
    // Two threads racing to map it leave one small mapping unused.
    let table = TABLE.get_or_init(|| {
        // SAFETY: a fresh anonymous mapping; zeroed memory is a valid table
        // (all atomics zero). It is never unmapped.
        unsafe {
            let ptr = libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Table>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if ptr == libc::MAP_FAILED {
                None
            } else {
                Some(&*(ptr as *const Table))
            }
        }
    });
    table.ok_or_else(|| {
        BridgeError::new(
            Errno::NoMem,
            "cannot map the process table shared by the process tree",
        )
    })
}

/// A slot reserved for a child that is about to start. Dropping it without
/// [`commit`](Claim::commit) gives the slot back (the start failed).
#[derive(Debug)]
#[must_use = "a claim is given back when dropped"]
pub struct Claim {
    index: usize,
}

/// A committed slot, to [`release`] once its process has been reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    index: usize,
    pid: i32,
}

impl Slot {
    /// The pid the slot was committed to.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }
}

impl Claim {
    /// Records that the slot now holds the live process `pid`.
    pub fn commit(self, pid: u32) -> Slot {
        let index = self.index;
        std::mem::forget(self);
        if let Ok(table) = table() {
            table.slots[index].store(pid as i32, Ordering::Release);
        }
        Slot {
            index,
            pid: pid as i32,
        }
    }

    /// Accounts `bytes` of wasm memory to the claimed slot before the child
    /// exists (the instance it will hold), unless the tree would then hold
    /// more than `limit`: a child's memory counts from the moment of the
    /// fork, so no number of children can take the tree past the limit.
    /// A start that fails gives the memory back with the slot.
    ///
    /// # Errors
    /// `ENOMEM` (a limit hit for the audit log) when the limit would be
    /// passed; `ENOMEM` when the shared table cannot be mapped.
    pub fn reserve_memory(&self, bytes: u64, limit: u64) -> BridgeResult<()> {
        let table = table()?;
        add_memory(table, &table.memory[self.index], bytes, limit).map_err(|held| {
            const MIB: u64 = 1 << 20;
            crate::audit::limit(BridgeError::new(
                Errno::NoMem,
                format!(
                    "a new process with {} MiB of wasm memory would bring the process tree \
                     to {} MiB, over its limit of {} MiB",
                    bytes.div_ceil(MIB),
                    held.saturating_add(bytes).div_ceil(MIB),
                    limit / MIB
                ),
            ))
        })
    }

    /// In a `fork` child: takes the claimed slot, and the memory the parent
    /// reserved in it, as this process's own. The parent commits the
    /// original claim.
    pub fn adopt_in_child(self) {
        OWN_SLOT.store(self.index, Ordering::Release);
        std::mem::forget(self);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(table) = table() {
            table.memory[self.index].store(0, Ordering::Release);
            table.slots[self.index].store(0, Ordering::Release);
            table.live.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Reserves a slot for one more live process in the tree, refusing when
/// `limit` processes (at most [`CAPACITY`]) are already live.
///
/// # Errors
/// `EAGAIN` when the tree is full; `ENOMEM` when the shared table cannot be
/// mapped.
pub fn claim(limit: usize) -> BridgeResult<Claim> {
    let table = table()?;
    let limit = limit.min(CAPACITY) as u32;
    let me = -(std::process::id() as i32);
    for attempt in 0..2 {
        let before = table.live.fetch_add(1, Ordering::AcqRel);
        if before < limit {
            for (index, slot) in table.slots.iter().enumerate() {
                if slot
                    .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(Claim { index });
                }
            }
        }
        table.live.fetch_sub(1, Ordering::AcqRel);
        if attempt == 0 {
            reclaim_dead(table);
        }
    }
    Err(crate::audit::limit(BridgeError::new(
        Errno::Again,
        format!("the process tree already has {limit} live processes (the limit)"),
    )))
}

/// Gives back the slot of a process that has been reaped.
pub fn release(slot: Slot) {
    if let Ok(table) = table() {
        free(table, slot.index, slot.pid);
    }
}

/// Frees slot `index` if it still holds `value`.
fn free(table: &Table, index: usize, value: i32) {
    let slot = &table.slots[index];
    if slot
        .compare_exchange(value, FREEING, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        table.memory[index].store(0, Ordering::Release);
        slot.store(0, Ordering::Release);
        table.live.fetch_sub(1, Ordering::AcqRel);
    }
}

fn own_memory(table: &Table) -> &AtomicU64 {
    match OWN_SLOT.load(Ordering::Acquire) {
        usize::MAX => &table.root_memory,
        index => &table.memory[index],
    }
}

/// The bytes of wasm linear memory the whole tree holds.
pub fn tree_memory() -> u64 {
    match table() {
        Ok(table) => {
            table.root_memory.load(Ordering::Acquire)
                + table
                    .memory
                    .iter()
                    .map(|m| m.load(Ordering::Acquire))
                    .sum::<u64>()
        }
        Err(_) => 0,
    }
}

/// Accounts `delta` more bytes of wasm memory to this process, unless the
/// tree would then hold more than `limit`.
///
/// # Errors
/// The tree's total (without `delta`) when the limit would be passed.
pub fn memory_grow(delta: u64, limit: u64) -> Result<(), u64> {
    match table() {
        Ok(table) => add_memory(table, own_memory(table), delta, limit),
        // Without the shared table only the per-instance limit applies.
        Err(_) => Ok(()),
    }
}

/// Adds `delta` to `counter` (one slot's memory, or the root's) unless the
/// tree would then hold more than `limit`; returns the tree's total
/// without `delta` when it would.
fn add_memory(table: &Table, counter: &AtomicU64, delta: u64, limit: u64) -> Result<(), u64> {
    for attempt in 0..2 {
        counter.fetch_add(delta, Ordering::AcqRel);
        let total = tree_memory();
        if total <= limit {
            return Ok(());
        }
        counter.fetch_sub(delta, Ordering::AcqRel);
        if attempt == 0 {
            reclaim_dead(table);
        } else {
            return Err(total.saturating_sub(delta));
        }
    }
    Ok(())
}

/// Gives back `bytes` of wasm memory accounted to this process.
pub fn memory_shrink(bytes: u64) {
    if let Ok(table) = table() {
        let own = own_memory(table);
        let _ = own.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_sub(bytes))
        });
    }
}

/// The bytes of wasm memory accounted to this process.
pub fn own_memory_bytes() -> u64 {
    table().map_or(0, |table| own_memory(table).load(Ordering::Acquire))
}

/// The number of live processes the tree's table counts (`0` before any
/// child was started).
#[cfg(test)]
pub fn live() -> usize {
    match TABLE.get() {
        Some(Some(table)) => table.live.load(Ordering::Acquire) as usize,
        _ => 0,
    }
}

fn reclaim_dead(table: &Table) {
    for (index, slot) in table.slots.iter().enumerate() {
        let value = slot.load(Ordering::Acquire);
        if value == 0 || value == FREEING {
            continue;
        }
        let pid = value.unsigned_abs() as i32;
        // SAFETY: signal 0 only checks that the process exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            free(table, index, value);
        }
    }
}

/// Makes the calling process (a fresh child) die with `SIGKILL` when its
/// parent dies, and exits at once if `parent` is already gone (the parent
/// may have died between `fork` and this call).
pub fn bind_to_parent(parent: u32) {
    // SAFETY: prctl with integer arguments; getppid cannot fail.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() as u32 != parent {
            libc::_exit(128 + libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_stop_at_the_limit_and_come_back() {
        // The only test in this binary that uses the table (one test, so
        // nothing else claims concurrently).
        let base = live();
        let limit = base + 2;
        let a = claim(limit).unwrap().commit(std::process::id());
        let b = claim(limit).unwrap();
        let err = claim(limit).unwrap_err();
        assert_eq!(err.errno, Errno::Again);
        assert!(err.message.contains("limit"), "{}", err.message);
        drop(b); // a start that failed gives its slot back
        let c = claim(limit).unwrap().commit(std::process::id());
        assert_eq!(live(), base + 2);
        release(a);
        release(c);
        release(c); // a second release is harmless
        assert_eq!(live(), base);

        // Slots of dead processes are reclaimed.
        let table = table().unwrap();
        // A pid that cannot exist (above the kernel's pid_max).
        let dead = 0x3fff_fff0;
        let slot = claim(CAPACITY).unwrap().commit(dead as u32);
        assert_eq!(table.slots[slot.index].load(Ordering::Acquire), dead);
        reclaim_dead(table);
        assert_eq!(table.slots[slot.index].load(Ordering::Acquire), 0);

        // Memory reserved for a child counts at once, is refused past the
        // limit, and goes back with a start that failed.
        let before = tree_memory();
        let claim = claim(CAPACITY).unwrap();
        claim.reserve_memory(10, before + 15).unwrap();
        assert_eq!(tree_memory(), before + 10);
        let err = claim.reserve_memory(10, before + 15).unwrap_err();
        assert_eq!(err.errno, Errno::NoMem);
        assert!(err.message.contains("over its limit"), "{}", err.message);
        assert_eq!(tree_memory(), before + 10);
        drop(claim);
        assert_eq!(tree_memory(), before);
    }
}
