//! Forking the host process from inside a host call.
//!
//! The child is a copy of the whole host process: the guest's instance and
//! memory, its WASI state, its handle table. Before the fork the host
//! flushes its own stdout and stderr; in the child it then
//!
//! 1. asks for `SIGKILL` when its parent dies ([`supervisor::bind_to_parent`]);
//! 2. confines itself ([`HostState::harden`]: no capabilities, no new
//!    privileges, the host's seccomp filter), as every guest process is;
//! 3. forgets the handles that belong to the parent (its `Process` and
//!    command entries) and the parent's `os.fork` children, keeping the
//!    inheritable entries (queues, pipes);
//! 4. marks the guest state as running in a child, so that when the guest
//!    ends the OS process ends (`_exit`), never returning into the
//!    embedder; a host panic in the child ends it too (exit code 101)
//!    rather than unwinding into the embedder's frames.
//!
//! This is only sound because the host runs a guest on one thread and keeps
//! no helper threads holding state the child needs: see
//! `docs/processes.md`.

use super::{flush_host_stdio, Start};
use crate::ctx::HostState;
use crate::errno::{BridgeError, BridgeResult, Errno};
use crate::supervisor::{self, Slot};

/// Which side of a fork this is.
#[derive(Debug)]
pub(crate) enum Forked {
    /// The parent, with the child's committed supervisor slot.
    Parent(Slot),
    /// The child.
    Child,
}

/// Forks the host process, counting the child against the tree's limits:
/// its process, and its wasm memory from the moment of the fork.
///
/// # Errors
/// `EAGAIN` when the tree has as many live processes as the policy allows,
/// or the OS refuses to fork; `ENOMEM` when the child's memory would take
/// the tree past its memory limit.
pub(crate) fn fork_host(state: &mut HostState, start: Start<'_>) -> BridgeResult<Forked> {
    let limits = state.bridge.policy.limits();
    let claim = supervisor::claim(limits.max_processes)?;
    claim.reserve_memory(start.memory(state), limits.max_total_memory_bytes)?;
    flush_host_stdio();
    never_unwind_into_the_embedder();
    let parent = crate::process_local::pid();
    // SAFETY: see the module docs and docs/processes.md for what makes the
    // child's use of inherited state sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        return Err(BridgeError::new(Errno::Again, format!("fork: {err}")));
    }
    if pid == 0 {
        claim.adopt_in_child();
        become_child(state, parent);
        return Ok(Forked::Child);
    }
    let slot = claim.commit(pid as u32);
    start.record(pid as u32);
    tracing::debug!("{} started: pid {pid} (parent {parent})", start.describe());
    Ok(Forked::Parent(slot))
}

fn become_child(state: &mut HostState, parent: u32) {
    supervisor::bind_to_parent(parent);
    if let Err(err) = state.harden() {
        eprintln!(
            "procbridge: child {}: cannot drop its privileges: {err}",
            std::process::id()
        );
        flush_host_stdio();
        // SAFETY: ends this child process, which has run no guest code yet.
        unsafe { libc::_exit(1) }
    }
    state.bridge.handles.for_each_foreign(
        crate::subprocess::KIND,
        crate::subprocess::Popen::close_pipes_in_fork_child,
    );
    state.bridge.handles.for_each_foreign(
        crate::pool::POOL_KIND,
        crate::pool::pump::SharedPool::close_in_fork_child,
    );
    crate::subprocess::relay::forget_parents_relayer();
    state.bridge.handles.forget_foreign();
    state.bridge.process.forget_parents_children();
    state.bridge.process.in_child = true;
}

/// A panic in a child must not unwind into the code of the embedder that
/// started the root guest (those frames are the parent's): the hook
/// reports it as the hook before it did, then ends the process.
///
/// The hook is installed once, by the first process that forks a guest
/// process, around the hook in place then; in that process it only passes
/// panics on. Every process of the tree but that one is a child it ends.
/// Installing it in each child instead cost the child's first run of the
/// hook machinery's code and the allocator's, a page fault each: about a
/// tenth of a fork. An embedder that sets its own hook after its guests
/// have forked should call the hook it replaces.
fn never_unwind_into_the_embedder() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let installer = std::process::id();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if std::process::id() != installer {
                flush_host_stdio();
                // SAFETY: ends this child process.
                unsafe { libc::_exit(101) }
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::never_unwind_into_the_embedder;

    #[test]
    fn a_panic_ends_a_fork_child_and_unwinds_in_its_parent() {
        never_unwind_into_the_embedder();
        // SAFETY: the child only panics, which the hook turns into _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let outcome = std::panic::catch_unwind(|| panic!("a host panic in a child"));
            // Not reached: the hook ended the child. Say so by exit code.
            let code = if outcome.is_err() { 3 } else { 4 };
            // SAFETY: ends the child.
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 101, "the child unwound");
        // Installing is once only, and the parent's panics still unwind.
        never_unwind_into_the_embedder();
        let outcome = std::panic::catch_unwind(|| panic!("a host panic in the parent"));
        assert!(outcome.is_err());
    }
}
