//! Starting the child process: `clone(CLONE_VM | CLONE_VFORK)` and `execve`,
//! as `posix_spawn` does, plus the confinement `posix_spawn` cannot express
//! (a session of its own, parent-death signal, `no_new_privs`, Landlock,
//! seccomp, close-on-exec for every inherited descriptor). The host uses it
//! directly where the jail is missing; the jail's helper uses it for every
//! command.
//!
//! Why not `fork`: the host maps a large address space (the engine, compiled
//! code, guest memories), and copying its page tables made every spawn
//! noticeably slower than `std::process::Command`, which uses `posix_spawn`.
//! With `CLONE_VFORK` the parent thread is suspended until the child has
//! called `execve` (or exited), so nothing is copied; the child runs on a
//! stack of its own and only makes system calls, with every signal blocked
//! until just before `execve`.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use crate::confine::Confinement;

/// Everything the child needs, prepared before the clone (the child must
/// not allocate).
pub(crate) struct Launch {
    path: CString,
    // Owners of the pointers in `argv` and `envp`.
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// Where the child starts.
    cwd: Cwd,
    /// For fd 0, 1, 2: the descriptor to install there, or `-1` to keep the
    /// host's own.
    stdio: [RawFd; 3],
    parent: libc::pid_t,
    /// Applied in the child just before `execve`.
    confinement: Arc<Confinement>,
    /// The uid and gid to switch to first (all supplementary groups
    /// dropped); `None`: keep the parent's.
    identity: Option<(libc::uid_t, libc::gid_t)>,
    /// The signals the child puts back to their default action.
    signals: Dispositions,
    /// Set by the child when a step fails: `errno`.
    error: AtomicI32,
}

/// Which signals a child puts back to their default action before
/// `execve`: the parent's handlers must never run in the child (which
/// shares the parent's memory until `execve`), and ignored signals must not
/// stay ignored in the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dispositions {
    /// Bit `n - 1` for signal `n`.
    mask: u64,
}

impl Dispositions {
    /// Every signal (but `SIGKILL` and `SIGSTOP`, which cannot be
    /// changed): what a process whose handlers may change at any time must
    /// reset.
    pub(crate) fn all() -> Dispositions {
        let mut mask = 0;
        for sig in 1..=libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                mask |= Dispositions::bit(sig);
            }
        }
        Dispositions { mask }
    }

    /// The signals this process does not leave at their default action now
    /// (ignored or handled): enough for a process whose handlers do not
    /// change afterwards, such as the jail's helper, which then spares
    /// every command a system call per signal.
    pub(crate) fn changed_now() -> Dispositions {
        let mut mask = 0;
        for sig in 1..=libc::SIGRTMAX() {
            let mut action = KernelSigaction::default();
            // SAFETY: reads the disposition into a valid struct of the
            // kernel's layout.
            let read = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    std::ptr::null::<KernelSigaction>(),
                    &mut action,
                    8usize,
                )
            } == 0;
            if !read || action.handler != libc::SIG_DFL {
                mask |= Dispositions::bit(sig);
            }
        }
        Dispositions {
            mask: mask & Dispositions::all().mask,
        }
    }

    fn contains(self, sig: libc::c_int) -> bool {
        self.mask & Dispositions::bit(sig) != 0
    }

    /// Signal `sig`'s bit (`0` for a number outside 1..=64).
    fn bit(sig: libc::c_int) -> u64 {
        match sig {
            1..=64 => 1 << (sig - 1),
            _ => 0,
        }
    }
}

/// `struct sigaction` as the `rt_sigaction` system call takes it.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Puts `sig` back to its default action. A raw system call: the C
/// library refuses to touch the two signals it keeps for its threads (32
/// and 33), which a command must not inherit ignored either.
///
/// # Safety
/// Changes this process's signal dispositions; async-signal-safe.
unsafe fn set_default_action(sig: libc::c_int) {
    let action = KernelSigaction::default();
    // SAFETY: a valid struct of the kernel's layout (SIG_DFL is 0, no
    // flags, an empty mask).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &action,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        );
    }
}

/// The working directory of a child.
#[derive(Debug)]
pub(crate) enum Cwd {
    /// The parent's.
    Inherit,
    /// An opened directory (the child `fchdir`s into it).
    Fd(RawFd),
    /// A path, resolved by the child (inside the jail, where every path
    /// stays inside the jail).
    Path(CString),
}

/// Stack for the child; it runs a few system calls only.
const STACK_SIZE: usize = 64 * 1024;

impl Launch {
    /// Prepares a launch of `path` with `argv` (including `argv[0]`), the
    /// whole environment `env` (`KEY=VALUE` entries), a working directory,
    /// and the descriptors to install as stdio.
    pub(crate) fn new<A: AsRef<[u8]>, E: AsRef<[u8]>>(
        path: &Path,
        argv: &[A],
        env: &[E],
        cwd: Cwd,
        stdio: [RawFd; 3],
        confinement: Arc<Confinement>,
    ) -> io::Result<Launch> {
        let c = |bytes: &[u8]| {
            CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        };
        let mut strings = Vec::with_capacity(argv.len() + env.len());
        for arg in argv {
            strings.push(c(arg.as_ref())?);
        }
        for entry in env {
            strings.push(c(entry.as_ref())?);
        }
        let pointers: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        let mut argv_ptrs = pointers[..argv.len()].to_vec();
        argv_ptrs.push(std::ptr::null());
        let mut envp = pointers[argv.len()..].to_vec();
        envp.push(std::ptr::null());
        Ok(Launch {
            path: c(path.as_os_str().as_bytes())?,
            _strings: strings,
            argv: argv_ptrs,
            envp,
            cwd,
            stdio,
            parent: std::process::id() as libc::pid_t,
            confinement,
            identity: None,
            signals: Dispositions::all(),
            error: AtomicI32::new(0),
        })
    }

    /// Makes the child switch to `uid` and `gid` (and no supplementary
    /// group) before anything else it does as the command.
    pub(crate) fn with_identity(mut self, uid: libc::uid_t, gid: libc::gid_t) -> Launch {
        self.identity = Some((uid, gid));
        self
    }

    /// Resets only `signals` in the child (see [`Dispositions::changed_now`]).
    pub(crate) fn with_signals(mut self, signals: Dispositions) -> Launch {
        self.signals = signals;
        self
    }

    /// Starts the child; returns its pid once it has called `execve`.
    ///
    /// # Errors
    /// The `errno` of the step that failed in the child (the child has been
    /// reaped), or of `clone` itself.
    pub(crate) fn spawn(&self) -> io::Result<libc::pid_t> {
        let mut stack = vec![0u8; STACK_SIZE];
        // The stack grows down; keep the top 16-byte aligned.
        let top = (stack.as_mut_ptr() as usize + STACK_SIZE) & !15;
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain signal-mask calls with valid sets. Blocking every
        // signal keeps the parent's handlers from running in the child,
        // which shares the parent's memory.
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        // SAFETY: `child_main` gets a pointer to `self`, which outlives the
        // child's use of it: CLONE_VFORK suspends this thread until the
        // child has exec'd or exited. The stack is ours and large enough.
        let pid = unsafe {
            libc::clone(
                child_main,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                self as *const Launch as *mut libc::c_void,
            )
        };
        let clone_error = io::Error::last_os_error();
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        drop(stack);
        if pid < 0 {
            return Err(clone_error);
        }
        let errno = self.error.load(Ordering::SeqCst);
        if errno != 0 {
            let mut status = 0;
            // SAFETY: reaps the child that failed before exec.
            unsafe {
                while libc::waitpid(pid, &mut status, 0) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
            };
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(pid)
    }
}

/// The child, between clone and exec: system calls only, no allocation.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Launch` the suspended parent keeps alive.
    let launch = unsafe { &*(arg as *const Launch) };
    let fail = || fail(launch);
    // SAFETY: system calls on this child's own state.
    unsafe {
        // Signals the host ignores (SIGPIPE) or handles go back to default.
        for sig in 1..=libc::SIGRTMAX() {
            if launch.signals.contains(sig) {
                set_default_action(sig);
            }
        }
        // A session of its own: no controlling terminal to type into, and
        // a process group the host can kill as a whole.
        if libc::setsid() < 0 {
            fail();
        }
        if let Some((uid, gid)) = launch.identity {
            // Permissions below (the working directory included) are the
            // command's own. (A change of ids clears the parent-death
            // signal: set it after.)
            // Raw system calls: the C library's wrappers would try to
            // change the ids of every thread of the (shared) parent too.
            if libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                fail();
            }
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            fail();
        }
        if libc::getppid() != launch.parent {
            // The parent died before the death signal was armed.
            *libc::__errno_location() = libc::ESRCH;
            fail();
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            fail();
        }
        for (target, &fd) in launch.stdio.iter().enumerate() {
            let target = target as RawFd;
            if fd < 0 {
                continue;
            }
            if fd == target {
                // Already in place: only clear close-on-exec.
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    fail();
                }
            } else if libc::dup2(fd, target) < 0 {
                fail();
            }
        }
        let moved = match &launch.cwd {
            Cwd::Inherit => 0,
            Cwd::Fd(fd) => libc::fchdir(*fd),
            Cwd::Path(path) => libc::chdir(path.as_ptr()),
        };
        if moved != 0 {
            fail();
        }
        // Resource limits, no capabilities, Landlock, seccomp: only system
        // calls.
        if launch.confinement.apply().is_err() {
            fail();
        }
        // Descriptors the host holds (module files, sockets, other
        // children's pipes) must not reach the child.
        let done = libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        ) == 0;
        if !done {
            let max = match libc::sysconf(libc::_SC_OPEN_MAX) {
                n if n > 0 => n.min(1 << 20) as RawFd,
                _ => 1024,
            };
            for fd in 3..max {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        let empty: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(
            launch.path.as_ptr(),
            launch.argv.as_ptr(),
            launch.envp.as_ptr(),
        );
    }
    fail()
}

/// Reports `errno` to the parent and leaves the child.
fn fail(launch: &Launch) -> ! {
    // SAFETY: reading this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    launch
        .error
        .store(if errno == 0 { libc::EIO } else { errno }, Ordering::SeqCst);
    // SAFETY: leaves the child without running any parent code.
    unsafe { libc::_exit(127) }
}
