//! What both fuzz targets check after every input, and how they hand it
//! to their guest.

/// The number of descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `true` when this process has no child, live or zombie.
pub fn no_children() -> bool {
    let mut status = 0;
    // SAFETY: plain syscall; WNOHANG never blocks.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    pid == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

/// The input as a guest argument.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}
