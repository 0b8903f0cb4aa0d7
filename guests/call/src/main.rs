//! The seed's `subprocess.call` story: run a command, let its output pass
//! through, print its exit code.
//!
//! Run it: `procbridge run --allow-run ls target/guests/call.wasm ls -l /`
//! (with no arguments it runs `echo hello from a child process`).

use procbridge_sdk::subprocess;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = vec!["echo".into(), "hello from a child process".into()];
    }
    println!("$ {}", args.join(" "));
    match subprocess::call(&args) {
        Ok(code) => println!("Exit code: {}", code),
        Err(err) => {
            eprintln!("call failed: {}", err);
            std::process::exit(1);
        }
    }
}
