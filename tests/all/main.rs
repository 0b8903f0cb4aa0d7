//! procbridge's integration tests: guests are built from source with
//! `guests/build`, then run through the library and through the
//! `procbridge` binary. One module per area.

mod support;

mod abi_doc;
mod audit;
mod c_guests;
mod c_header;
mod cache;
mod cli;
mod cli_diag;
mod cli_exit;
mod code_layout;
mod confine;
mod door;
mod escapes;
mod fork;
mod fuzz_guest;
mod grants;
mod guest_build;
mod hello;
mod hints;
mod host_calls;
mod hostile;
mod jail;
mod pipe;
mod policy;
mod pool;
mod process;
mod python;
mod queue;
mod queue_procs;
mod sdk;
mod subprocess;
mod tree_memory;
mod wasi;
