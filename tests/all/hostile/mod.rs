//! Adversarial guests, written in WAT to say what no compiler would: every
//! host function called with out-of-bounds and wrapping pointers, huge
//! lengths, invalid UTF-8, bad timeouts, forged, closed, reused and foreign
//! handles, calls in odd orders, and guests ending in the middle of things.
//! Each call must give the errno `docs/abi.md` documents (or trap that
//! guest alone); the host never panics, leaks or hangs.
//!
//! A case is a [`Script`]: a list of host calls, each with the value it must
//! return. The generated guest checks them in order and on the first
//! mismatch prints which check failed, the value it got and the host's
//! message, and exits with `100 + index` (at most 125: WASI refuses
//! higher exit codes). Cases are listed in [`cases!`]:
//! the list is also how [`every_host_function_has_a_hostile_case`] knows
//! that each registered function is attacked. Cases that fork run through
//! the `procbridge` CLI, never in the test process.

mod channels;
mod endings;
mod os;
mod pool;
mod process;
mod script;
mod subprocess;

use crate::support::*;
pub use script::{Script, Via};
use std::collections::BTreeSet;

/// One hostile case: a script and how it runs.
pub struct Case {
    pub name: &'static str,
    pub script: fn() -> Script,
}

/// Declares the cases: one `#[test]` each, and the [`CASES`] list.
macro_rules! cases {
    ($($module:ident :: $name:ident,)*) => {
        /// Every hostile case, for the coverage check.
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($name), script: $module::$name },)*
        ];
        $(
            #[test]
            fn $name() {
                $module::$name().assert_passes(stringify!($name));
            }
        )*
    };
}

cases! {
    os::identity_ignores_everything,
    os::last_error_bad_buffers,
    os::take_result_bad_buffers_keep_the_result,
    os::waitpid_without_children,
    os::cpu_count_is_the_machines,
    os::times_bad_buffers_and_real_counts,
    os::kill_reaches_only_own_fork_children,
    os::fork_child_exits_in_the_middle,
    os::fork_child_cannot_use_parent_handles,
    subprocess::popen_bad_pointers_and_lists,
    subprocess::popen_invalid_utf8_and_bad_values,
    subprocess::popen_denied_and_refused,
    subprocess::forged_closed_and_reused_handles,
    subprocess::bad_timeouts,
    subprocess::huge_timeouts_do_not_overflow,
    subprocess::io_bad_pointers_and_lengths,
    subprocess::calls_after_the_child_ended,
    subprocess::stdio_handles_that_cannot_give,
    subprocess::handle_table_full,
    subprocess::stopped_child_is_still_closed,
    subprocess::popen_call_bad_arguments_and_timeouts,
    process::start_bad_arguments,
    process::odd_orders,
    process::bad_handles,
    process::task_exits_and_traps_in_the_middle,
    process::task_hand_back_outside_a_task,
    process::task_hand_back_bad_pointers,
    process::foreign_process_handle,
    process::daemon_cannot_start_children,
    process::process_limit_is_eagain,
    channels::queue_new_bad_arguments,
    channels::queue_bad_pointers_and_timeouts,
    channels::queue_full_and_over_its_bytes,
    channels::queue_join_and_task_done,
    channels::queue_after_shutdown_and_close,
    channels::channel_forged_and_wrong_kind_handles,
    channels::pipe_new_bad_arguments,
    channels::pipe_bad_pointers_and_timeouts,
    channels::pipe_wrong_direction_and_closed_ends,
    channels::channels_handle_table_full,
    pool::pool_bad_settings_and_handles,
    pool::cluster_call_without_a_cluster,
    pool::pool_odd_orders,
    pool::pool_terminate_in_the_middle,
    pool::pool_tasks_that_go_wrong,
    pool::pool_process_limit_is_eagain,
    pool::pool_and_queue_in_a_fork_child,
}

/// Every function the runtime registers is called by at least one case.
/// A new host function needs a line in [`cases!`] (and its signature in
/// [`script::SIGNATURES`]).
#[test]
fn every_host_function_has_a_hostile_case() {
    let mut covered = BTreeSet::new();
    for case in CASES {
        let called = (case.script)().called();
        assert!(
            !called.is_empty(),
            "case {} calls no host function",
            case.name
        );
        covered.extend(called);
    }
    let missing: Vec<&str> = runtime()
        .bridge_functions()
        .into_iter()
        .filter(|name| !covered.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "host functions without a hostile case in tests/all/hostile: {missing:?}"
    );
}

/// Every signature in the table is the one the host registers: a module
/// importing all of them links.
#[test]
fn signatures_match_the_host() {
    let mut script = Script::new(Via::Library);
    for (name, _) in script::SIGNATURES {
        script = script.raw(&format!("(drop (i32.const 0)) ;; ${name}\n"));
    }
    let wat = script.wat_importing_all();
    runtime()
        .load_bytes("signatures.wat", wat.as_bytes())
        .expect("every signature in the table links against the host");
}
