//! A ring of length-prefixed messages over a byte slice.
//!
//! Positions are `u64` byte counters that only grow (`head` is where the
//! oldest message starts, `tail` where the next one goes); a position's
//! offset in the slice is `pos % capacity`. A message is a little-endian
//! `u32` length followed by its bytes, wrapping around the end of the slice.
//! These functions only move bytes: the caller commits a change by storing
//! the new `head` or `tail` afterwards, which is what makes a process killed
//! half-way harmless. [`RawRing`] is the ring as putters and getters share
//! it (each touching only its own bytes); the free functions are for a
//! ring the caller has to itself.

/// Bytes a message of `len` bytes takes in the ring.
pub(crate) fn record_len(len: usize) -> u64 {
    4 + len as u64
}

/// A ring's bytes by address, for a ring that putters write past its
/// `tail` while getters read before it, each side under its own lock: no
/// Rust reference ever covers bytes the other side may touch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawRing {
    base: *mut u8,
    capacity: usize,
}

impl RawRing {
    /// The ring of `capacity` bytes at `base`.
    ///
    /// # Safety
    /// `base` must be valid for reads and writes of `capacity` (non-zero)
    /// bytes for as long as the `RawRing` is used.
    pub(crate) unsafe fn new(base: *mut u8, capacity: usize) -> RawRing {
        RawRing { base, capacity }
    }

    /// The ring over `data`, which the caller has to itself.
    pub(crate) fn over(data: &mut [u8]) -> RawRing {
        RawRing {
            base: data.as_mut_ptr(),
            capacity: data.len(),
        }
    }

    /// Its size in bytes.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// The byte ranges `pos..pos + len` covers: the second is empty unless
    /// it wraps around the end.
    fn spans(&self, pos: u64, len: usize) -> ((usize, usize), usize) {
        let start = (pos % self.capacity as u64) as usize;
        let first = len.min(self.capacity - start);
        ((start, first), len - first)
    }

    /// # Safety
    /// Nobody else reads or writes `pos..pos + bytes.len()` meanwhile.
    unsafe fn copy_in(&self, pos: u64, bytes: &[u8]) {
        let ((start, first), rest) = self.spans(pos, bytes.len());
        // SAFETY: both ranges lie inside the ring (`spans`), which the
        // caller owns for them; `bytes` is not in the ring.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(start), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), self.base, rest);
        }
    }

    /// Writes a message at `tail`; returns the new tail.
    ///
    /// # Safety
    /// `record_len(msg.len())` bytes from `tail` are free, and nobody else
    /// reads or writes them until the caller publishes the new tail.
    pub(crate) unsafe fn push(&self, tail: u64, msg: &[u8]) -> u64 {
        // SAFETY: the caller owns the record's bytes.
        unsafe {
            self.copy_in(tail, &(msg.len() as u32).to_le_bytes());
            self.copy_in(tail + 4, msg);
        }
        tail + record_len(msg.len())
    }

    /// The length of the message at `head`, if it fits in the `used` bytes
    /// from `head` (it always does unless the memory was corrupted). Indexes
    /// that claim more bytes than the ring holds are corruption too: `None`,
    /// so that no slice ever reaches past the ring.
    ///
    /// # Safety
    /// The `used` bytes from `head` are whole messages nobody writes while
    /// the caller reads them.
    pub(crate) unsafe fn peek_len(&self, head: u64, used: u64) -> Option<usize> {
        if used < 4 || used > self.capacity as u64 {
            return None;
        }
        // SAFETY: the four bytes at `head` are in the caller's range.
        let (a, b) = unsafe { self.slices_at(head, 4) };
        let mut len = [0u8; 4];
        len[..a.len()].copy_from_slice(a);
        len[a.len()..].copy_from_slice(b);
        let len = u32::from_le_bytes(len) as usize;
        (record_len(len) <= used).then_some(len)
    }

    /// The bytes of the message at `head`, whose length `peek_len` gave, as
    /// two slices (the second is empty unless the message wraps around).
    ///
    /// # Safety
    /// As [`peek_len`](Self::peek_len), for as long as the slices live.
    pub(crate) unsafe fn slices<'a>(&self, head: u64, len: usize) -> (&'a [u8], &'a [u8]) {
        // SAFETY: as the caller promises.
        unsafe { self.slices_at(head + 4, len) }
    }

    /// # Safety
    /// As [`slices`](Self::slices), for `pos..pos + len`.
    unsafe fn slices_at<'a>(&self, pos: u64, len: usize) -> (&'a [u8], &'a [u8]) {
        let ((start, first), rest) = self.spans(pos, len);
        // SAFETY: both ranges lie inside the ring, and nobody writes them
        // while the slices live (the caller's promise).
        unsafe {
            (
                std::slice::from_raw_parts(self.base.add(start), first),
                std::slice::from_raw_parts(self.base, rest),
            )
        }
    }
}

/// Writes a message at `tail` of a ring the caller has to itself; returns
/// the new tail. The caller has checked that `record_len(msg.len())` bytes
/// are free.
#[cfg(test)]
pub(crate) fn push(data: &mut [u8], tail: u64, msg: &[u8]) -> u64 {
    // SAFETY: `data` is borrowed exclusively.
    unsafe { RawRing::over(data).push(tail, msg) }
}

/// The length of the message at `head` of a ring the caller has to itself,
/// if it fits in the `used` bytes from `head`.
pub(crate) fn peek_len(data: &mut [u8], head: u64, used: u64) -> Option<usize> {
    // SAFETY: `data` is borrowed exclusively.
    unsafe { RawRing::over(data).peek_len(head, used) }
}

/// Copies out the message at `head`, whose length `peek_len` gave.
#[cfg(test)]
pub(crate) fn read(data: &mut [u8], head: u64, len: usize) -> Vec<u8> {
    // SAFETY: `data` is borrowed exclusively, and the copy is made before
    // the borrow ends.
    let (a, b) = unsafe { RawRing::over(data).slices(head, len) };
    [a, b].concat()
}

/// Moves the bytes between `head` and `tail` of a ring of `capacity` bytes
/// to where a ring of twice that size keeps them: each byte at `p` goes to
/// `p % (2 * capacity)`, which for some is `capacity` further on. `data`
/// holds at least `2 * capacity` bytes, and at most `capacity` are queued.
/// Only bytes past the first `capacity` are written.
pub(crate) fn double(data: &mut [u8], head: u64, tail: u64, capacity: u64) {
    let mut pos = head;
    while pos < tail {
        let lap = pos / capacity;
        let end = tail.min((lap + 1) * capacity);
        if lap % 2 == 1 {
            let from = (pos % capacity) as usize;
            let len = (end - pos) as usize;
            data.copy_within(from..from + len, from + capacity as usize);
        }
        pos = end;
    }
}

/// Counts the messages between `head` and `tail`; `None` if the bytes there
/// are not a sequence of whole messages.
pub(crate) fn count(data: &mut [u8], head: u64, tail: u64) -> Option<u64> {
    let mut pos = head;
    let mut n = 0;
    while pos < tail {
        let len = peek_len(data, pos, tail - pos)?;
        pos += record_len(len);
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_wrap_around_the_end() {
        let mut data = vec![0u8; 16];
        let (mut head, mut tail) = (0u64, 0u64);
        // Push and pop enough to wrap several times, at every alignment.
        for round in 0..40u8 {
            let msg: Vec<u8> = (0..(round % 9)).map(|i| i ^ round).collect();
            assert!(tail - head + record_len(msg.len()) <= 16);
            tail = push(&mut data, tail, &msg);
            assert_eq!(count(&mut data, head, tail), Some(1));
            let len = peek_len(&mut data, head, tail - head).unwrap();
            assert_eq!(read(&mut data, head, len), msg);
            head += record_len(len);
        }
        assert_eq!(head, tail);
        assert_eq!(count(&mut data, head, tail), Some(0));
    }

    #[test]
    fn a_doubled_ring_reads_the_same_messages_at_every_alignment() {
        for lap in 0..4u64 {
            for start in 0..16u64 {
                let mut data = vec![0u8; 64];
                let head = lap * 16 + start;
                // Three messages of 1 + 4 bytes: wrapping unless near 0.
                let mut tail = head;
                for msg in [b"a", b"b", b"c"] {
                    tail = push(&mut data[..16], tail, msg);
                }
                double(&mut data, head, tail, 16);
                // Bytes before 16 never move: the old ring is still whole.
                assert_eq!(count(&mut data[..16], head, tail), Some(3));
                let mut pos = head;
                for msg in [b"a", b"b", b"c"] {
                    let len = peek_len(&mut data[..32], pos, tail - pos).unwrap();
                    assert_eq!(
                        read(&mut data[..32], pos, len),
                        msg,
                        "lap {lap} start {start}"
                    );
                    pos += record_len(len);
                }
                double(&mut data, head, tail, 32);
                assert_eq!(count(&mut data, head, tail), Some(3));
                assert_eq!(read(&mut data, head + 10, 1), b"c");
            }
        }
    }

    #[test]
    fn count_sees_whole_messages_only() {
        let mut data = vec![0u8; 64];
        let mut tail = push(&mut data, 0, b"abc");
        tail = push(&mut data, tail, b"");
        tail = push(&mut data, tail, b"hello");
        assert_eq!(count(&mut data, 0, tail), Some(3));
        assert_eq!(count(&mut data, 0, tail - 1), None);
        assert_eq!(peek_len(&mut data, 0, 3), None);
        // Indexes further apart than the ring is long: corrupted, not read.
        let mut small = vec![0u8; 16];
        push(&mut small, 0, &[7; 12]);
        assert_eq!(peek_len(&mut small, 0, 16), Some(12));
        assert_eq!(peek_len(&mut small, 0, 17), None);
        small[..4].copy_from_slice(&40u32.to_le_bytes());
        assert_eq!(peek_len(&mut small, 0, 64), None);
    }
}
