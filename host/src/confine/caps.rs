//! `no_new_privs` and dropping every capability, for a child before `exec`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once this process has locked its securebits and emptied its
/// bounding set for good ([`lock_down_inheritance`]): what it starts
/// inherits both, so [`drop_all`] only clears the current sets.
static INHERITANCE_LOCKED: AtomicBool = AtomicBool::new(false);

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets `PR_SET_NO_NEW_PRIVS`: `exec` can never grant more privileges.
///
/// # Safety
/// Affects the calling process for good; async-signal-safe.
pub(super) unsafe fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: a prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } as libc::c_long)
}

/// Drops every capability: the bounding set, root's implicit capabilities on
/// `exec`, and the current sets. Without `CAP_SETPCAP` (not root) there is
/// nothing to drop and this is a no-op.
///
/// # Safety
/// Affects the calling process for good; async-signal-safe.
pub(super) unsafe fn drop_all() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    // SAFETY: prctl/capget/capset with valid pointers to local structs.
    unsafe {
        let mut header = Header {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        check(libc::syscall(
            libc::SYS_capget,
            &mut header,
            data.as_mut_ptr(),
        ))?;
        if data.iter().all(|d| d.permitted == 0) {
            return Ok(());
        }
        if !INHERITANCE_LOCKED.load(Ordering::Acquire) {
            lock_securebits()?;
            drop_bounding_set()?;
        }
        let zero = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        check(libc::syscall(libc::SYS_capset, &mut header, zero.as_ptr()))
    }
}

/// Locks root's implicit capabilities away (the securebits) and empties
/// the bounding set, for this process and everything it starts, while
/// keeping its current capabilities: for the jail's helper, which needs
/// some of its own (credentials of other processes on a socket) but starts
/// commands that must have none. Each command then only clears its current
/// sets in [`drop_all`] instead of walking the bounding set again.
///
/// # Safety
/// Affects the calling process for good; async-signal-safe.
pub(super) unsafe fn lock_down_inheritance() -> io::Result<()> {
    // SAFETY: as documented on both.
    unsafe {
        lock_securebits()?;
        drop_bounding_set()?;
    }
    INHERITANCE_LOCKED.store(true, Ordering::Release);
    Ok(())
}

/// Sets and locks the securebits that take root's implicit capabilities
/// away on `exec` and on changes of uid.
///
/// # Safety
/// Affects the calling process for good; async-signal-safe.
unsafe fn lock_securebits() -> io::Result<()> {
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED;
    // SAFETY: a prctl with integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits, 0, 0, 0) } as libc::c_long)
}

/// Drops every capability still in the bounding set (reading first: a drop
/// replaces the process's credentials, a read does not).
///
/// # Safety
/// Affects the calling process for good; async-signal-safe.
pub(super) unsafe fn drop_bounding_set() -> io::Result<()> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments.
        match unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) } {
            // Past the last capability the kernel knows.
            r if r < 0 => break,
            0 => continue,
            // SAFETY: as above.
            _ => {
                check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } as libc::c_long)?
            }
        }
    }
    Ok(())
}
