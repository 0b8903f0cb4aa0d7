//! Which confinement layers this machine provides, and saying so.
//!
//! Where a layer is missing, procbridge says at start-up what that means
//! (one line on stderr per missing layer, once per process);
//! `procbridge policy check` lists them all.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// One layer and whether this machine has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// What it is.
    pub name: &'static str,
    /// `None` when present; else why not and what that means.
    pub missing: Option<String>,
}

/// Prints `message` as a warning on stderr, once per process.
pub fn warn(message: &str) {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.insert(message.to_string()) {
        eprintln!("procbridge: warning: {message}");
    }
}

/// The layers of the jail and of procbridge's own processes, as this
/// machine provides them (probed: a child process tries to make the
/// namespaces).
pub fn probe() -> Vec<Layer> {
    let mut layers = Vec::new();
    let namespaces = probe_namespaces();
    for (name, flag) in [
        (
            "user namespace (commands are never root)",
            libc::CLONE_NEWUSER,
        ),
        (
            "PID namespace (nothing outlives the job)",
            libc::CLONE_NEWPID,
        ),
        (
            "mount namespace (only system files and grants are there)",
            libc::CLONE_NEWNS,
        ),
        (
            "network namespace (no network without --network)",
            libc::CLONE_NEWNET,
        ),
    ] {
        let missing = match namespaces {
            Ok(()) => None,
            Err(errno) => Some(format!(
                "cannot be made here ({}, {flag:#x})",
                std::io::Error::from_raw_os_error(errno)
            )),
        };
        layers.push(Layer { name, missing });
    }
    layers.push(Layer {
        name: "pids cgroup (the process limit counts every process of the jail)",
        missing: super::jail::probe_cgroup().err().map(|e| e.to_string()),
    });
    layers.push(Layer {
        name: "seccomp (no namespaces, mounts, ptrace, keyrings, bpf, TIOCSTI)",
        missing: (!super::seccomp::available()).then(|| "not in this kernel".to_string()),
    });
    layers.push(Layer {
        name: "Landlock (files, TCP, signals and abstract sockets)",
        missing: match super::landlock::abi_version() {
            Some(_) => None,
            None => Some("not in this kernel".to_string()),
        },
    });
    layers
}

/// Whether a child process can make the jail's namespaces: the errno of
/// `unshare` otherwise.
fn probe_namespaces() -> Result<(), i32> {
    // SAFETY: the child only makes system calls and exits.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(*libc::__errno_location());
        }
        if pid == 0 {
            let flags = libc::CLONE_NEWUSER
                | libc::CLONE_NEWNS
                | libc::CLONE_NEWPID
                | libc::CLONE_NEWNET
                | libc::CLONE_NEWIPC
                | libc::CLONE_NEWUTS;
            let code = if libc::unshare(flags) == 0 {
                0
            } else {
                *libc::__errno_location()
            };
            libc::_exit(code);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            errno => Err(errno),
        }
    }
}

/// Confines procbridge's own process once its grants are open: no
/// capabilities, `no_new_privs`, and the seccomp filter of calls a wasmtime
/// host never needs (with `execve` refused when `no_exec`: no command is
/// ever started from this process). Done once per process; forked children
/// inherit it.
///
/// # Errors
/// When the kernel refuses a step.
pub fn harden_process(no_exec: bool) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Copied into forked children with the rest of the memory, as the
    // filter itself is.
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.load(Ordering::Acquire) {
        return Ok(());
    }
    super::drop_privileges()?;
    let seccomp = super::seccomp::available();
    if seccomp {
        super::seccomp::Filter::new(super::seccomp::Profile::Guest { no_exec })?
            .apply_to_all_threads()?;
    }
    DONE.store(true, Ordering::Release);
    tracing::info!(
        "procbridge's own processes are confined by: no capabilities, no_new_privs{}",
        match (seccomp, no_exec) {
            (true, true) => "; seccomp (no execve)",
            (true, false) => "; seccomp",
            (false, _) => " (no seccomp on this kernel)",
        }
    );
    Ok(())
}
