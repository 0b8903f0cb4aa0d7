//! The `procbridge` command; see `procbridge --help`.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
