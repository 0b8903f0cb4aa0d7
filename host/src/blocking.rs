//! Running a guest — blocking work — from whatever thread the embedder
//! calls on.
//!
//! A guest's WASI calls block on a Tokio runtime. From a plain thread, or
//! a `spawn_blocking` thread, that is fine. On a worker thread of the
//! embedder's multi-threaded Tokio runtime, blocking would panic ("Cannot
//! start a runtime from within a runtime"): the work runs inside
//! `tokio::task::block_in_place`, which hands the worker's other tasks to
//! another thread first. Inside a current-thread runtime nothing can block
//! the thread: the call fails with [`CannotBlock`], which says what to use
//! instead (the async forms, which run the guest on a blocking thread
//! themselves).

use tokio::runtime::{Handle, RuntimeFlavor};

/// A blocking call was made where it cannot block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a blocking procbridge call was made inside a current-thread Tokio runtime, \
     which it would stall: use the async form (`call_async`, `run_async`) or a \
     multi-threaded runtime"
)]
pub struct CannotBlock;

/// Runs `f`, which blocks, on this thread: directly, or inside
/// `block_in_place` on a Tokio worker thread.
///
/// # Errors
/// [`CannotBlock`] inside a current-thread Tokio runtime (`f` is not run).
pub(crate) fn run_blocking<R>(f: impl FnOnce() -> R) -> Result<R, CannotBlock> {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => Ok(f()),
        Ok(RuntimeFlavor::CurrentThread) => Err(CannotBlock),
        // On a worker thread it moves the worker's tasks elsewhere; on any
        // other thread (`spawn_blocking`, a thread that only entered the
        // runtime) it just runs `f`.
        Ok(_) => Ok(tokio::task::block_in_place(f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_work_runs_on_plain_and_worker_threads_and_is_refused_where_it_would_stall() {
        assert_eq!(run_blocking(|| 1), Ok(1));
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert_eq!(multi.block_on(async { run_blocking(|| 2) }), Ok(2));
        let inside_spawn =
            multi.block_on(async { tokio::spawn(async { run_blocking(|| 3) }).await.unwrap() });
        assert_eq!(inside_spawn, Ok(3));
        let single = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(
            single.block_on(async { run_blocking(|| 4) }),
            Err(CannotBlock)
        );
        let blocking_thread =
            single.block_on(async { tokio::task::spawn_blocking(|| run_blocking(|| 5)).await });
        // A current-thread runtime's blocking threads are refused too (they
        // cannot be told from its own thread); the message says what to use.
        assert_eq!(blocking_thread.unwrap(), Err(CannotBlock));
    }
}
