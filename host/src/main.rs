//! The `procbridge` command; see `procbridge --help`.

mod cli;

fn main() {
    // Errors (a guest's `proc_exit` is one) would capture a host backtrace
    // when RUST_BACKTRACE is set, costing milliseconds per exit in every
    // child process; panics still honour RUST_BACKTRACE. Set while the
    // process is single-threaded, before anything reads the environment.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    std::process::exit(cli::main());
}
