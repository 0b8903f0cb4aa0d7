//! Test guest for granted directories: `fs_probe read PATH` or
//! `fs_probe write PATH TEXT` tries the file operation through WASI and
//! prints `ok ...` or `error KIND`, for the escape tests.

use std::io::ErrorKind;

fn kind(err: &std::io::Error) -> &'static str {
    match err.kind() {
        ErrorKind::NotFound => "NotFound",
        ErrorKind::PermissionDenied => "PermissionDenied",
        _ => "Other",
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let op = args.first().map(String::as_str).unwrap_or("");
    let path = args.get(1).cloned().unwrap_or_default();
    match op {
        "read" => match std::fs::read_to_string(&path) {
            Ok(text) => println!("ok {}", text.trim_end()),
            Err(err) => println!("error {} {}", kind(&err), err),
        },
        "write" => {
            let text = args.get(2).cloned().unwrap_or_default();
            match std::fs::write(&path, text) {
                Ok(()) => println!("ok written"),
                Err(err) => println!("error {} {}", kind(&err), err),
            }
        }
        _ => {
            eprintln!("usage: fs_probe read PATH | write PATH TEXT");
            std::process::exit(2);
        }
    }
}
