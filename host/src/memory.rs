//! Memory limits for guests: linear memory per instance, and for all the
//! instances of the process tree together.
//!
//! Every store gets a [`MemoryLimiter`]. Growing a memory past either limit
//! traps the guest with a message naming the limit (a memory bomb ends its
//! own process; the rest of the tree goes on). The tree-wide total is kept
//! in the supervisor's shared table: each process accounts what its
//! instances hold, and a process's share is forgotten when it is reaped.
//! A child's instance is accounted by its parent before the fork (see
//! `supervisor::Claim::reserve_memory`); a spawned child's fresh instance
//! uses that reservation first ([`MemoryLimiter::prepay`]).
//!
//! Every refusal is a limit hit in the audit log, where it happens (in
//! whichever process of the tree).

use crate::policy::Limits;
use crate::supervisor;
use wasmtime::ResourceLimiter;

const MIB: usize = 1 << 20;

/// Most elements of one table (tables cost host memory too).
const MAX_TABLE_ELEMENTS: usize = 10_000_000;

/// The limiter of one store.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    per_instance: usize,
    total: u64,
    /// Bytes of linear memory this store holds (accounted to the tree).
    held: u64,
    /// Bytes already accounted to this process for this store's first
    /// growth (a spawned child's fresh instance, reserved by its parent).
    prepaid: u64,
    /// A memory was asked for already: the next growth is not the
    /// instance's initial memory.
    started: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        MemoryLimiter {
            per_instance: limits.max_memory_bytes,
            total: limits.max_total_memory_bytes,
            held: 0,
            prepaid: 0,
            started: false,
        }
    }

    /// Takes `bytes` already accounted to this process as this store's:
    /// its growth uses them before asking the tree for more.
    pub(crate) fn prepay(&mut self, bytes: u64) {
        self.prepaid += bytes;
    }

    /// Gives back what is left of the prepaid bytes (once the instance
    /// exists).
    pub(crate) fn settle(&mut self) {
        supervisor::memory_shrink(std::mem::take(&mut self.prepaid));
    }

    /// Bytes of linear memory this store holds.
    pub(crate) fn held(&self) -> u64 {
        self.held
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let initial = !std::mem::replace(&mut self.started, true) && current == 0;
        if initial && desired > self.per_instance {
            return Err(too_small_to_start(
                desired,
                self.per_instance,
                MemoryScope::Instance,
            ));
        }
        if desired > self.per_instance {
            return Err(refused(format!(
                "memory limit of one instance reached: growing to {} MiB, the limit is {} MiB",
                desired.div_ceil(MIB),
                self.per_instance / MIB
            )));
        }
        let delta = desired.saturating_sub(current) as u64;
        let prepaid = delta.min(self.prepaid);
        if let Err(total) = supervisor::memory_grow(delta - prepaid, self.total) {
            if initial && total == 0 {
                return Err(too_small_to_start(
                    desired,
                    self.total as usize,
                    MemoryScope::Tree,
                ));
            }
            return Err(refused(format!(
                "memory limit of the process tree reached: {} MiB held, {} MiB more asked, the limit is {} MiB",
                total / MIB as u64,
                delta.div_ceil(MIB as u64),
                self.total / MIB as u64
            )));
        }
        self.prepaid -= prepaid;
        self.held += delta;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// A growth the limits refuse: a limit hit for the audit log, and the
/// guest's trap.
fn refused(message: String) -> wasmtime::Error {
    crate::audit::Event::new(crate::audit::Kind::Limit)
        .outcome(&message)
        .record();
    wasmtime::Error::new(MemoryLimitHit(message))
}

/// A module whose initial memory is over a limit: the limit, not the
/// guest, is at fault (in the audit log as a limit hit, on stderr only as
/// the error the run ends with).
fn too_small_to_start(needs: usize, limit: usize, of: MemoryScope) -> wasmtime::Error {
    let err = MemoryAtStart {
        needs_mib: needs.div_ceil(MIB) as u64,
        limit_mib: (limit / MIB) as u64,
        of,
    };
    crate::audit::Event::new(crate::audit::Kind::Limit)
        .outcome(err.to_string())
        .record_quietly();
    wasmtime::Error::new(err)
}

/// The module's initial linear memory is more than the policy lets one
/// instance (or the whole tree) have: it cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the module needs {needs_mib} MiB of memory to start; the limit of {of} is {limit_mib} MiB"
)]
pub struct MemoryAtStart {
    /// The memory the module declares, in MiB (rounded up).
    pub needs_mib: u64,
    /// The limit, in MiB.
    pub limit_mib: u64,
    /// Which limit.
    pub of: MemoryScope,
}

/// What a memory limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryScope {
    /// One wasm instance ([`crate::Limits::max_memory_bytes`]).
    Instance,
    /// All the instances of the process tree
    /// ([`crate::Limits::max_total_memory_bytes`]).
    Tree,
}

impl std::fmt::Display for MemoryScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryScope::Instance => "one instance",
            MemoryScope::Tree => "the process tree",
        })
    }
}

/// The error a guest traps with when its memory would grow past a limit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct MemoryLimitHit(String);

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        supervisor::memory_shrink(self.held + self.prepaid);
    }
}

/// Bytes of linear memory a fresh instance of `module` starts with.
pub(crate) fn initial_bytes(module: &wasmtime::Module) -> u64 {
    const WASM_PAGE: u64 = 64 << 10;
    let needs = module.resources_required();
    u64::from(needs.num_memories)
        .saturating_mul(needs.max_initial_memory_size.unwrap_or(0))
        .saturating_mul(WASM_PAGE)
}
