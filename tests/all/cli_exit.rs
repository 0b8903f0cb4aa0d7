//! How a run ends on the command line: a guest's panic is one short line
//! (its own message is above it), the wasm backtrace only with `-v`; a
//! guest whose output is piped into `head` ends quietly, as a native
//! program does, by SIGPIPE.

use crate::support::*;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

#[test]
fn a_guest_panic_is_its_message_and_one_short_line() {
    let out = procbridge()
        .env_remove("RUST_BACKTRACE")
        .args(["run", guest("sdk_probe").to_str().unwrap(), "panic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(134));
    let err = stderr(&out);
    assert!(
        err.contains("panicked at 'index out of bounds: the len is 0 but the index is 3'"),
        "{err}"
    );
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("procbridge:"))
        .collect();
    assert_eq!(
        ours,
        [
            "procbridge: the guest panicked or aborted (wasm trap: wasm `unreachable` \
          instruction executed); its message is above; run with -v for the wasm backtrace"
        ],
        "{err}"
    );
    assert!(!err.contains("wasm backtrace:\n"), "{err}");
}

#[test]
fn with_v_a_trap_shows_the_wasm_backtrace() {
    let out = procbridge()
        .env_remove("RUST_BACKTRACE")
        .args(["-v", "run", guest("sdk_probe").to_str().unwrap(), "panic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(134));
    let err = stderr(&out);
    assert!(err.contains("wasm backtrace:"), "{err}");
    assert!(err.contains("rust_panic"), "{err}");
}

/// `procbridge run flood.wasm | head -1`: the guest's process dies of
/// SIGPIPE like `yes | head -1`, printing nothing.
#[test]
fn output_piped_into_a_closed_reader_ends_quietly_by_sigpipe() {
    let mut child = procbridge()
        .env_remove("RUST_BACKTRACE")
        .args(["run", guest("sdk_probe").to_str().unwrap(), "flood"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 7];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"line 0\n");
    drop(stdout);
    let (status, err) = stderr_and_status(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?} {err}");
    assert_eq!(err, "", "nothing on stderr");
}
