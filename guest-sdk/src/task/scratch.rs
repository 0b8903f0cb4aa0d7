//! The plugin fast path's scratch buffer (`procbridge_abi::scratch`): a
//! plugin host writes a call's arguments into it and reads the result's
//! place from its header, with no host calls. [`plugin!`](crate::plugin!)
//! defines one and exports it.
// The buffer is memory the host writes outside Rust's view: raw pointers.
#![allow(unsafe_code)]

use procbridge_abi::scratch as abi;
use std::borrow::Cow;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A scratch buffer with a data area of `N` bytes, in a `static` (zeroed
/// memory: it adds nothing to the module's size). Used by
/// [`plugin!`](crate::plugin!).
#[doc(hidden)]
#[repr(C, align(8))]
pub struct Scratch<const N: usize>(UnsafeCell<Area<N>>);

#[repr(C)]
struct Area<const N: usize> {
    header: [u32; 4],
    data: [u8; N],
}

// SAFETY: the module is single-threaded; the buffer is only touched by the
// task call running, between the host's writes before it and reads after.
unsafe impl<const N: usize> Sync for Scratch<N> {}

/// The buffer the host was given (null: none, every call takes the host
/// calls) and its data area's size.
static HEADER: AtomicPtr<u32> = AtomicPtr::new(std::ptr::null_mut());
static CAPACITY: AtomicUsize = AtomicUsize::new(0);

impl<const N: usize> Scratch<N> {
    /// An empty buffer.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Scratch(UnsafeCell::new(Area {
            header: [0; 4],
            data: [0; N],
        }))
    }

    /// Makes this the module's buffer: what `procbridge_scratch` returns.
    pub fn register(&'static self) -> i32 {
        let area = self.0.get();
        // SAFETY: `area` is valid for the program's life; only the task
        // code of this module touches it.
        let header = unsafe { std::ptr::addr_of_mut!((*area).header) }.cast::<u32>();
        let capacity = N.min(u32::MAX as usize);
        // SAFETY: as above; the header is four aligned `u32`s.
        unsafe {
            header.add(abi::CAPACITY / 4).write(capacity as u32);
            header.add(abi::FLAGS / 4).write(0);
        }
        CAPACITY.store(capacity, Ordering::Relaxed);
        HEADER.store(header, Ordering::Relaxed);
        header as usize as i32
    }
}

/// This call's flags (`0` without a buffer), cleared so that a call the
/// host makes by the task ABI's host calls (a pool worker, a `Process`)
/// never reads stale ones.
#[inline]
pub(super) fn begin() -> u32 {
    let header = HEADER.load(Ordering::Relaxed);
    if header.is_null() {
        return 0;
    }
    // SAFETY: a registered header lives for the program's life.
    unsafe {
        let flags = header.add(abi::FLAGS / 4);
        let value = flags.read_volatile();
        flags.write_volatile(0);
        value
    }
}

/// The arguments the host wrote into the buffer, `None` if `len` is not
/// inside it. Valid until the next call (the host reads a result borrowed
/// from them after this one returns).
#[inline]
pub(super) fn args(len: i32) -> Option<&'static [u8]> {
    let header = HEADER.load(Ordering::Relaxed);
    let len = usize::try_from(len).ok()?;
    if header.is_null() || len > CAPACITY.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the data area follows the header and holds `CAPACITY` bytes;
    // the host wrote `len` of them before the call and writes none during
    // it.
    Some(unsafe { std::slice::from_raw_parts(header.cast::<u8>().add(abi::HEADER_LEN), len) })
}

/// The last result handed back through the header: the host reads it after
/// the call returns, so it lives until the next one. A static, not a
/// `thread_local!` (see `Scratch`: one thread).
struct LastResult(UnsafeCell<Vec<u8>>);

// SAFETY: the module is single-threaded; only `hand_back` touches it.
unsafe impl Sync for LastResult {}

static RESULT: LastResult = LastResult(UnsafeCell::new(Vec::new()));

/// Hands `bytes` back through the header; the status the task returns.
/// Borrowed bytes (the call's arguments in the buffer, or a static) are
/// handed back where they are: they stay until the next call.
#[inline]
pub(super) fn hand_back(bytes: Cow<'static, [u8]>) -> i32 {
    let header = HEADER.load(Ordering::Relaxed);
    let (ptr, len) = (bytes.as_ptr() as usize as u32, bytes.len() as u32);
    // SAFETY: one thread, and no reference to the result outlives this
    // statement (the host reads its bytes after the call).
    let previous = unsafe { &mut *RESULT.0.get() };
    match bytes {
        Cow::Owned(bytes) => *previous = bytes,
        Cow::Borrowed(_) if previous.capacity() != 0 => *previous = Vec::new(),
        Cow::Borrowed(_) => {}
    }
    // SAFETY: `begin` saw this header registered (a call with flags).
    unsafe {
        header.add(abi::RESULT_PTR / 4).write_volatile(ptr);
        header.add(abi::RESULT_LEN / 4).write_volatile(len);
    }
    abi::STATUS_RESULT_IN_SCRATCH
}

/// Stdout, locked at the first call and held: the module has one thread,
/// and the lock lets that thread in again (`print!` in a task, the exit's
/// flush), so holding it only saves locking it at each call's end.
struct HeldStdout(UnsafeCell<Option<std::io::StdoutLock<'static>>>);

// SAFETY: the module is single-threaded (`flush_stdout` is not used with
// threads); only `flush_stdout` touches it.
unsafe impl Sync for HeldStdout {}

static STDOUT: HeldStdout = HeldStdout(UnsafeCell::new(None));

/// Writes out what stdout holds (text printed without a newline).
#[inline]
pub(super) fn flush_stdout() {
    use std::io::Write;
    // SAFETY: one thread, and `flush` runs no code of the task's.
    let held = unsafe { &mut *STDOUT.0.get() };
    let _ = held.get_or_insert_with(|| std::io::stdout().lock()).flush();
}
