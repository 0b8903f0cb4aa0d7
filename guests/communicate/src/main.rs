//! The seed's `Popen(...).communicate(input)` story: feed input to a
//! command through a pipe, capture what it prints, print its exit code.
//!
//! Run it: `procbridge run --allow-run sort target/guests/communicate.wasm`
//! (another command can be given: `... communicate.wasm tr a-z A-Z`).

use procbridge_sdk::subprocess::{Popen, PIPE};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = vec!["sort".into()];
    }
    println!("$ {}", args.join(" "));
    let result = Popen::builder(&args)
        .stdin(PIPE)
        .stdout(PIPE)
        .stderr(PIPE)
        .spawn()
        .and_then(|mut p| {
            let (output, err) = p.communicate(Some(b"set q=mx\npython.org\nexit\n"), None)?;
            Ok((p, output, err))
        });
    match result {
        Ok((p, output, err)) => {
            print!("{}", String::from_utf8_lossy(&output));
            eprint!("{}", String::from_utf8_lossy(&err));
            println!("Exit code: {}", p.returncode().unwrap_or(-1));
        }
        Err(err) => {
            eprintln!("communicate failed: {}", err);
            std::process::exit(1);
        }
    }
}
