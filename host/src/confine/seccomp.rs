//! seccomp filters: the system calls a confined command, and procbridge's
//! own guest processes, never need.
//!
//! Built with `seccompiler` (Firecracker's filter compiler), never as
//! hand-written BPF. Both filters allow everything else (a deny list, as
//! Docker's default profile is in effect for these calls) and refuse with
//! `EPERM`:
//!
//! * creating or entering namespaces (`unshare`, `setns`, `clone` with a
//!   `CLONE_NEW*` flag); `clone3` answers `ENOSYS` so that C libraries fall
//!   back to `clone`, whose flags the filter can read;
//! * the mount family (`mount`, `umount2`, `pivot_root`, `chroot`,
//!   `open_tree`, `move_mount`, `fsopen`, `fsconfig`, `fsmount`, `fspick`,
//!   `mount_setattr`);
//! * `ptrace`, `process_vm_readv`/`writev`, `pidfd_getfd`;
//! * `keyctl`, `add_key`, `request_key`, `bpf`, `perf_event_open`,
//!   `userfaultfd`, `io_uring_*`, `open_by_handle_at`;
//! * `kexec_*`, module loading, `reboot`, `swapon`/`swapoff`, `acct`,
//!   `quotactl`, clocks, host names, `iopl`/`ioperm`, `syslog`,
//!   `vhangup`, `uselib`, `lookup_dcookie`;
//! * `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)`, which type into a terminal
//!   (compared on the low 32 bits, as the terminal driver reads them);
//! * `socket(AF_VSOCK)`: sockets to the hypervisor, which network
//!   namespaces do not confine.
//!
//! The guest-process filter ([`Profile::Guest`]) may also refuse `execve`
//! and `execveat`: when commands run in the jail, nothing in procbridge's
//! own processes ever executes a program, so a bug in the wasm sandbox
//! cannot start one either.
//!
//! On an x86-64 kernel that runs x32 system calls, the same numbers with the
//! x32 bit set are refused too.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::io;

/// Which filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// For a granted command, applied just before `execve`.
    Command,
    /// For procbridge's own processes once grants are open; `no_exec`
    /// refuses `execve` too.
    Guest {
        /// Refuse `execve` and `execveat`.
        no_exec: bool,
    },
}

/// A compiled filter, ready to be applied (in a child between `fork` and
/// `exec` too: applying it allocates nothing).
#[derive(Debug)]
pub struct Filter {
    /// Refuses with `EPERM`.
    deny: BpfProgram,
    /// Answers `ENOSYS` (`clone3`).
    nosys: BpfProgram,
}

const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;
/// Every `CLONE_NEW*` flag.
const CLONE_NEW_ANY: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64
    | 0x80; // CLONE_NEWTIME
/// The x32 system-call bit of x86-64.
#[cfg(target_arch = "x86_64")]
const X32: i64 = 0x4000_0000;

/// Refused outright, whatever the arguments.
const DENIED: &[libc::c_long] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_open_by_handle_at,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    libc::SYS_lookup_dcookie,
];

impl Filter {
    /// Compiles the filter of `profile` for this machine's architecture.
    ///
    /// # Errors
    /// On an architecture seccompiler does not support.
    pub fn new(profile: Profile) -> io::Result<Filter> {
        let arch = target_arch()?;
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        let mut deny = |nr: i64, conditions: &[SeccompRule]| {
            for nr in with_x32(nr) {
                rules
                    .entry(nr)
                    .or_default()
                    .extend(conditions.iter().cloned());
            }
        };
        for &nr in DENIED {
            deny(nr, &[]);
        }
        if let Profile::Guest { no_exec: true } = profile {
            deny(libc::SYS_execve, &[]);
            deny(libc::SYS_execveat, &[]);
        }
        // ioctl(fd, TIOCSTI | TIOCLINUX, ...): the low 32 bits of the request.
        let ioctl_rules = [TIOCSTI, TIOCLINUX]
            .into_iter()
            .map(|request| rule(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request))
            .collect::<io::Result<Vec<_>>>()?;
        deny(libc::SYS_ioctl, &ioctl_rules);
        // clone(flags, ...) with any namespace flag: one rule per flag.
        let clone_rules = (0..64)
            .map(|bit| 1u64 << bit)
            .filter(|flag| CLONE_NEW_ANY & flag != 0)
            .map(|flag| {
                rule(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
            })
            .collect::<io::Result<Vec<_>>>()?;
        deny(libc::SYS_clone, &clone_rules);
        // Sockets to the hypervisor (vsock is not confined by network
        // namespaces).
        deny(
            libc::SYS_socket,
            &[rule(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                libc::AF_VSOCK as u64,
            )?],
        );
        // x32's own ioctl number.
        #[cfg(target_arch = "x86_64")]
        if x32_enabled() {
            rules.entry(514 | X32).or_default().extend(ioctl_rules);
        }

        let compile = |rules, action| -> io::Result<BpfProgram> {
            let filter =
                SeccompFilter::new(rules, SeccompAction::Allow, action, arch).map_err(invalid)?;
            filter.try_into().map_err(invalid)
        };
        let nosys: BTreeMap<i64, Vec<SeccompRule>> = with_x32(libc::SYS_clone3)
            .map(|nr| (nr, Vec::new()))
            .collect();
        Ok(Filter {
            deny: compile(rules, SeccompAction::Errno(libc::EPERM as u32))?,
            nosys: compile(nosys, SeccompAction::Errno(libc::ENOSYS as u32))?,
        })
    }

    /// Applies the filter to the calling thread (and sets `no_new_privs`).
    ///
    /// Async-signal-safe: two `prctl`/`seccomp` calls on memory prepared
    /// before, so it may run between `fork` and `exec`.
    ///
    /// # Errors
    /// When the kernel refuses (no seccomp).
    pub fn apply(&self) -> io::Result<()> {
        for program in [&self.deny, &self.nosys] {
            seccompiler::apply_filter(program).map_err(os_error)?;
        }
        Ok(())
    }

    /// Applies the filter to every thread of this process.
    ///
    /// # Errors
    /// When the kernel refuses (no seccomp, or a thread cannot be
    /// synchronised).
    pub fn apply_to_all_threads(&self) -> io::Result<()> {
        for program in [&self.deny, &self.nosys] {
            seccompiler::apply_filter_all_threads(program).map_err(os_error)?;
        }
        Ok(())
    }
}

/// Whether this kernel has seccomp filters.
pub fn available() -> bool {
    // SAFETY: a query with integer arguments.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

fn rule(index: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> io::Result<SeccompRule> {
    let condition = SeccompCondition::new(index, len, op, value).map_err(invalid)?;
    SeccompRule::new(vec![condition]).map_err(invalid)
}

/// `nr`, and its x32 twin where this kernel runs x32 system calls.
fn with_x32(nr: i64) -> impl Iterator<Item = i64> {
    #[cfg(target_arch = "x86_64")]
    let twin = x32_enabled().then_some(nr | X32);
    #[cfg(not(target_arch = "x86_64"))]
    let twin = None;
    std::iter::once(nr).chain(twin)
}

/// Whether this kernel runs x32 system calls (`CONFIG_X86_X32_ABI`): if
/// not, they fail with `ENOSYS` before any filter would see them, and the
/// filter (smaller by half) need not name them.
#[cfg(target_arch = "x86_64")]
fn x32_enabled() -> bool {
    static ENABLED: crate::fork_safe::ForkSafeOnce<bool> = crate::fork_safe::ForkSafeOnce::new();
    *ENABLED.get_or_init(|| {
        // SAFETY: x32's getpid, which has no arguments and no effect.
        let r = unsafe { libc::syscall(X32 | libc::SYS_getpid) };
        r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
    })
}

fn target_arch() -> io::Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(invalid)
}

fn invalid(err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("seccomp: {err}"))
}

fn os_error(err: seccompiler::Error) -> io::Error {
    match err {
        seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child with `profile` applied; returns its exit
    /// code.
    fn in_child(profile: Profile, f: fn() -> i32) -> i32 {
        let filter = Filter::new(profile).unwrap();
        // SAFETY: the child only makes system calls and exits.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                let code = if filter.apply().is_ok() { f() } else { 99 };
                libc::_exit(code);
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            libc::WEXITSTATUS(status)
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    #[test]
    fn namespaces_are_refused_and_plain_forks_are_not() {
        let code = in_child(Profile::Command, || {
            // SAFETY: system calls with integer arguments.
            unsafe {
                if libc::unshare(libc::CLONE_NEWUSER) == 0 || errno() != libc::EPERM {
                    return 1;
                }
                let clone3 = libc::syscall(libc::SYS_clone3, 0, 0);
                if clone3 != -1 || errno() != libc::ENOSYS {
                    return 2;
                }
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                if pid < 0 {
                    return 3;
                }
                libc::waitpid(pid, std::ptr::null_mut(), 0);
                // TIOCSTI with high bits set is still TIOCSTI.
                let r = libc::ioctl(0, (1u64 << 32 | TIOCSTI) as _, c"x".as_ptr());
                if r == 0 || errno() != libc::EPERM {
                    return 4;
                }
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn the_guest_profile_can_refuse_exec() {
        let code = in_child(Profile::Guest { no_exec: true }, || {
            let path = c"/bin/true";
            let argv = [path.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null()];
            // SAFETY: valid, NUL-terminated arrays of C strings.
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            if errno() == libc::EPERM {
                0
            } else {
                1
            }
        });
        assert_eq!(code, 0);
        let code = in_child(Profile::Guest { no_exec: false }, || {
            let path = c"/bin/sh";
            let argv = [
                path.as_ptr(),
                c"-c".as_ptr(),
                c"exit 7".as_ptr(),
                std::ptr::null(),
            ];
            let envp = [std::ptr::null()];
            // SAFETY: valid, NUL-terminated arrays of C strings.
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            1
        });
        assert_eq!(code, 7);
    }
}
