//! A ring of length-prefixed messages over a byte slice.
//!
//! Positions are `u64` byte counters that only grow (`head` is where the
//! oldest message starts, `tail` where the next one goes); a position's
//! offset in the slice is `pos % capacity`. A message is a little-endian
//! `u32` length followed by its bytes, wrapping around the end of the slice.
//! These functions only move bytes: the caller commits a change by storing
//! the new `head` or `tail` afterwards, which is what makes a process killed
//! half-way harmless.

/// Bytes a message of `len` bytes takes in the ring.
pub(crate) fn record_len(len: usize) -> u64 {
    4 + len as u64
}

fn copy_in(data: &mut [u8], pos: u64, bytes: &[u8]) {
    let cap = data.len();
    let start = (pos % cap as u64) as usize;
    let first = bytes.len().min(cap - start);
    data[start..start + first].copy_from_slice(&bytes[..first]);
    let rest = bytes.len() - first;
    data[..rest].copy_from_slice(&bytes[first..]);
}

fn copy_out(data: &[u8], pos: u64, out: &mut [u8]) {
    let cap = data.len();
    let start = (pos % cap as u64) as usize;
    let first = out.len().min(cap - start);
    out[..first].copy_from_slice(&data[start..start + first]);
    let rest = out.len() - first;
    out[first..].copy_from_slice(&data[..rest]);
}

/// Writes a message at `tail`; returns the new tail. The caller has checked
/// that `record_len(msg.len())` bytes are free.
pub(crate) fn push(data: &mut [u8], tail: u64, msg: &[u8]) -> u64 {
    copy_in(data, tail, &(msg.len() as u32).to_le_bytes());
    copy_in(data, tail + 4, msg);
    tail + record_len(msg.len())
}

/// The length of the message at `head`, if it fits in the `used` bytes
/// from `head` (it always does unless the memory was corrupted).
pub(crate) fn peek_len(data: &[u8], head: u64, used: u64) -> Option<usize> {
    if used < 4 {
        return None;
    }
    let mut len = [0u8; 4];
    copy_out(data, head, &mut len);
    let len = u32::from_le_bytes(len) as usize;
    (record_len(len) <= used).then_some(len)
}

/// The bytes of the message at `head`, whose length `peek_len` gave, as
/// two slices (the second is empty unless the message wraps around).
pub(crate) fn slices(data: &[u8], head: u64, len: usize) -> (&[u8], &[u8]) {
    let cap = data.len();
    let start = ((head + 4) % cap as u64) as usize;
    let first = len.min(cap - start);
    (&data[start..start + first], &data[..len - first])
}

/// Copies out the message at `head`, whose length `peek_len` gave.
#[cfg(test)]
pub(crate) fn read(data: &[u8], head: u64, len: usize) -> Vec<u8> {
    let (a, b) = slices(data, head, len);
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
pub(crate) fn count(data: &[u8], head: u64, tail: u64) -> Option<u64> {
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
            assert_eq!(count(&data, head, tail), Some(1));
            let len = peek_len(&data, head, tail - head).unwrap();
            assert_eq!(read(&data, head, len), msg);
            head += record_len(len);
        }
        assert_eq!(head, tail);
        assert_eq!(count(&data, head, tail), Some(0));
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
                assert_eq!(count(&data[..16], head, tail), Some(3));
                let mut pos = head;
                for msg in [b"a", b"b", b"c"] {
                    let len = peek_len(&data[..32], pos, tail - pos).unwrap();
                    assert_eq!(read(&data[..32], pos, len), msg, "lap {lap} start {start}");
                    pos += record_len(len);
                }
                double(&mut data, head, tail, 32);
                assert_eq!(count(&data, head, tail), Some(3));
                assert_eq!(read(&data, head + 10, 1), b"c");
            }
        }
    }

    #[test]
    fn count_sees_whole_messages_only() {
        let mut data = vec![0u8; 64];
        let mut tail = push(&mut data, 0, b"abc");
        tail = push(&mut data, tail, b"");
        tail = push(&mut data, tail, b"hello");
        assert_eq!(count(&data, 0, tail), Some(3));
        assert_eq!(count(&data, 0, tail - 1), None);
        assert_eq!(peek_len(&data, 0, 3), None);
    }
}
