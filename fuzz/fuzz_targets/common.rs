//! What both fuzz targets check after every input, and how they hand it
//! to their guest.

/// The limits both targets run their guest under: small, so that an input
/// reaches them quickly.
pub fn limits() -> procbridge::Limits {
    let mut limits = procbridge::Limits::default();
    limits.max_handles = 16;
    limits.max_processes = 8;
    limits.max_output_bytes = 64 << 10;
    limits.max_memory_bytes = 64 << 20;
    limits
}

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
