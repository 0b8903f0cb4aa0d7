//! The log file and its size cap, shared by the whole tree; everything
//! here but [`open`] is async-signal-safe.

use super::Kind;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Room kept at the end of the log for the record saying it was truncated.
const TRUNCATED_ROOM: u64 = 512;

/// Bytes the tree has written, in a `MAP_SHARED` mapping made before the
/// first fork.
#[repr(C)]
struct Shared {
    /// Bytes claimed by records (including ones that did not fit).
    written: AtomicU64,
    /// `1` once the truncated record has been claimed.
    truncated: AtomicU32,
}

/// Keeps the file open; its descriptor is [`FD`].
static FILE: OnceLock<File> = OnceLock::new();
/// The log's descriptor, `-1` until [`open`]. Set last (the others are
/// ready when it is).
static FD: AtomicI32 = AtomicI32::new(-1);
static SHARED: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
static MAX_BYTES: AtomicU64 = AtomicU64::new(u64::MAX);

/// The open log. Everything in it is async-signal-safe to use.
#[derive(Clone, Copy)]
struct Log {
    fd: i32,
    shared: &'static Shared,
    max_bytes: u64,
}

enum Room {
    /// The record fits: write it.
    Fits,
    /// It does not, and it is the first that does not: write the
    /// truncated record instead.
    Last,
    /// The log is closed to more records.
    Full,
}

impl Log {
    fn get() -> Option<Log> {
        let fd = FD.load(Ordering::Acquire);
        let shared = SHARED.load(Ordering::Acquire);
        if fd < 0 || shared.is_null() {
            return None;
        }
        Some(Log {
            fd,
            // SAFETY: set once by `open` to a mapping that is never unmapped.
            shared: unsafe { &*shared },
            max_bytes: MAX_BYTES.load(Ordering::Acquire),
        })
    }

    fn room(&self, len: usize) -> Room {
        if self.shared.truncated.load(Ordering::Acquire) != 0 {
            return Room::Full;
        }
        let len = len as u64;
        let before = self.shared.written.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len).saturating_add(TRUNCATED_ROOM) <= self.max_bytes {
            return Room::Fits;
        }
        if self.shared.truncated.swap(1, Ordering::AcqRel) == 0 {
            Room::Last
        } else {
            Room::Full
        }
    }

    /// Appends a record within the cap. Async-signal-safe.
    fn append(&self, record: &[u8]) {
        match self.room(record.len()) {
            Room::Fits => self.write_all(record),
            Room::Last => {
                let mut line = SignalLine::new(Kind::Truncated);
                line.push(b",\"outcome\":\"the audit log reached its limit of ");
                line.push_u64(self.max_bytes);
                line.push(b" bytes; nothing more is written\"}\n");
                self.write_all(line.bytes());
            }
            Room::Full => {}
        }
    }

    /// One `write` (a record is never split among processes' records by
    /// `O_APPEND`); more only if the kernel wrote part of it.
    fn write_all(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: write(2) from a live buffer; async-signal-safe.
            let n = unsafe { libc::write(self.fd, bytes.as_ptr().cast(), bytes.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return;
            }
            bytes = &bytes[n as usize..];
        }
    }
}

/// Appends a record to the log, if one is open, within its cap.
/// Async-signal-safe.
pub(super) fn append(record: &[u8]) {
    if let Some(log) = Log::get() {
        log.append(record);
    }
}

/// A record built without allocating, for signal handlers: a fixed buffer
/// and integers formatted by hand.
struct SignalLine {
    buf: [u8; 512],
    len: usize,
}

impl SignalLine {
    /// `{"time":...,"pid":...,"ppid":...,"event":"KIND"` (no closing brace).
    fn new(kind: Kind) -> SignalLine {
        let mut line = SignalLine {
            buf: [0; 512],
            len: 0,
        };
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime, getpid and getppid are async-signal-safe;
        // `now` is a valid timespec.
        let (pid, ppid) = unsafe {
            libc::clock_gettime(libc::CLOCK_REALTIME, &mut now);
            (libc::getpid(), libc::getppid())
        };
        line.push(b"{\"time\":");
        line.push_u64(now.tv_sec as u64);
        line.push(b".");
        let micros = (now.tv_nsec / 1000) as u64;
        for digit in [100_000, 10_000, 1000, 100, 10, 1] {
            line.push(&[b'0' + (micros / digit % 10) as u8]);
        }
        line.push(b",\"pid\":");
        line.push_u64(pid as u64);
        line.push(b",\"ppid\":");
        line.push_u64(ppid as u64);
        line.push(b",\"event\":\"");
        line.push(match kind {
            Kind::Limit => b"limit",
            Kind::Truncated => b"truncated",
            _ => b"other",
        });
        line.push(b"\"");
        line
    }

    /// Appends `bytes`, or as much as fits.
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Records a limit hit from a signal handler (the CPU limit): no
/// allocation, no lock, no rate limit (it ends the process). `outcome` must
/// need no escaping in JSON (no quote, backslash or control character).
pub(crate) fn record_limit_in_signal_handler(outcome: &str) {
    let Some(log) = Log::get() else { return };
    let mut line = SignalLine::new(Kind::Limit);
    line.push(b",\"outcome\":\"");
    line.push(outcome.as_bytes());
    line.push(b"\"");
    let suppressed = super::rate::take_suppressed_in_signal_handler();
    if suppressed > 0 {
        line.push(b",\"suppressed\":");
        line.push_u64(suppressed);
    }
    line.push(b"}\n");
    log.append(line.bytes());
}

/// Opens the audit log for this process and every process it forks; the
/// job may write at most `max_bytes` to it (see the module docs).
///
/// # Ambient authority
/// Opens `path` for appending.
///
/// # Errors
/// When the file cannot be opened, or a log is already open.
pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if FILE.get().is_some() {
        return Err(already_open());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    // SAFETY: a fresh anonymous shared mapping; zeroed memory is a valid
    // `Shared` (all atomics zero). It is never unmapped.
    let shared = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<Shared>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if shared == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let fd = file.as_raw_fd();
    FILE.set(file).map_err(|_| already_open())?;
    MAX_BYTES.store(max_bytes, Ordering::Release);
    SHARED.store(shared.cast(), Ordering::Release);
    FD.store(fd, Ordering::Release);
    Ok(())
}

fn already_open() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::AlreadyExists, "audit log already open")
}

/// Whether an audit log is open.
pub fn is_open() -> bool {
    FD.load(Ordering::Acquire) >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_lines_are_json() {
        let mut line = SignalLine::new(Kind::Limit);
        line.push(b",\"outcome\":\"x\",\"n\":");
        line.push_u64(0);
        line.push(b"}");
        let json: serde_json::Value = serde_json::from_slice(line.bytes()).unwrap();
        assert_eq!(json["event"], "limit");
        assert_eq!(json["pid"], std::process::id());
        assert_eq!(json["n"], 0);
        assert!(json["time"].as_f64().unwrap() > 1.7e9);
    }
}
