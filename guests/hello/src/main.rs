//! The first guest: prints its arguments, the environment it was granted,
//! and its real pid and parent pid.
//!
//! Run it: `procbridge run --env GREETING=hi target/guests/hello.wasm a b`.

use procbridge_sdk::os;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{}", args.join(" "));
    for (key, value) in std::env::vars() {
        println!("env {key}={value}");
    }
    println!("pid {}", os::getpid());
    println!("ppid {}", os::getppid());
    if let Some(code) = std::env::var("HELLO_EXIT")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        std::process::exit(code);
    }
}
