//! The results of one submission (`apply_async`, `map_async`, ...): one
//! outcome per item, in submission order, plus the order they finished in
//! (for `imap_unordered`).
//!
//! Outcomes are kept as the guest receives them (the list encoding: a
//! `u32` length, a status byte, the payload), in the buffers they arrived
//! in: a worker's reply for a chunk is stored as one buffer and each item
//! points into it, so a result costs no allocation of its own.

use procbridge_abi::pool::{STATUS_TERMINATED, STATUS_TIMED_OUT, STATUS_WORKER_LOST};
use std::collections::VecDeque;

/// An outcome the pool itself gives (not a worker's reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its worker died under it.
    WorkerLost(String),
    /// It ran over the per-task timeout.
    TimedOut(String),
    /// The pool was terminated first.
    Terminated,
}

impl Outcome {
    /// The item as the guest receives it: length, status, message.
    fn encode(&self) -> Vec<u8> {
        let (status, message) = match self {
            Outcome::WorkerLost(m) => (STATUS_WORKER_LOST, m.as_str()),
            Outcome::TimedOut(m) => (STATUS_TIMED_OUT, m.as_str()),
            Outcome::Terminated => (STATUS_TERMINATED, "the pool was terminated"),
        };
        let mut out = Vec::with_capacity(5 + message.len());
        out.extend_from_slice(&(message.len() as u32 + 1).to_le_bytes());
        out.push(status);
        out.extend_from_slice(message.as_bytes());
        out
    }
}

/// Where a finished item's encoded outcome is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    buf: u32,
    start: u32,
    end: u32,
}

/// What `pool_result_next` finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The next result: `u32` item index, then status and payload.
    Item(Vec<u8>),
    /// The next result has not finished yet.
    Pending,
    /// Every result has been handed out.
    Exhausted,
}

/// The outcomes of one submission.
#[derive(Debug)]
pub(crate) struct Batch {
    slots: Vec<Option<Slot>>,
    bufs: Vec<Vec<u8>>,
    done: usize,
    /// Item indices in the order they finished.
    finished: VecDeque<usize>,
    /// `imap`'s cursor.
    next_ordered: usize,
}

impl Batch {
    /// A batch of `items` unfinished tasks.
    pub(crate) fn new(items: usize) -> Batch {
        Batch {
            slots: vec![None; items],
            bufs: Vec::new(),
            done: 0,
            finished: VecDeque::new(),
            next_ordered: 0,
        }
    }

    /// Records the outcomes of items `first..`: `items` holds them in the
    /// list encoding, item `k` ending at `ends[k]`. Items already finished
    /// keep their outcome.
    pub(crate) fn finish_encoded(&mut self, first: usize, items: &[u8], ends: &[usize]) {
        let Ok(buf) = u32::try_from(self.bufs.len()) else {
            return;
        };
        let mut start = 0;
        let mut used = false;
        for (offset, &end) in ends.iter().enumerate() {
            if let Some(slot @ None) = self.slots.get_mut(first + offset) {
                *slot = Some(Slot {
                    buf,
                    start: start as u32,
                    end: end as u32,
                });
                self.done += 1;
                self.finished.push_back(first + offset);
                used = true;
            }
            start = end;
        }
        if used {
            self.bufs.push(items.to_vec());
        }
    }

    /// Records `outcome` for items `first..first + count` that have none.
    pub(crate) fn finish(&mut self, first: usize, count: usize, outcome: &Outcome) {
        let item = outcome.encode();
        let end = first.saturating_add(count).min(self.slots.len());
        for index in first..end {
            self.finish_shared(index, &item);
        }
    }

    /// Marks every unfinished item with `outcome`.
    pub(crate) fn finish_all(&mut self, outcome: &Outcome) {
        self.finish(0, self.slots.len(), outcome);
    }

    /// Points item `index` at the encoded `item`, stored once however many
    /// items in a row share it.
    fn finish_shared(&mut self, index: usize, item: &[u8]) {
        if !matches!(self.slots.get(index), Some(None)) {
            return;
        }
        let reuse = self.bufs.last().is_some_and(|last| last.as_slice() == item);
        if !reuse {
            self.bufs.push(item.to_vec());
        }
        let buf = (self.bufs.len() - 1) as u32;
        self.slots[index] = Some(Slot {
            buf,
            start: 0,
            end: item.len() as u32,
        });
        self.done += 1;
        self.finished.push_back(index);
    }

    /// Whether every item has finished.
    pub(crate) fn is_complete(&self) -> bool {
        self.done == self.slots.len()
    }

    fn encoded(&self, slot: &Slot) -> &[u8] {
        &self.bufs[slot.buf as usize][slot.start as usize..slot.end as usize]
    }

    /// Every outcome as a list (see `procbridge_abi::list`) of status byte
    /// plus payload, in submission order. Call once complete.
    pub(crate) fn encode_all(&self) -> Vec<u8> {
        let slots = self.slots.iter().flatten();
        let size: usize = slots.clone().map(|s| (s.end - s.start) as usize).sum();
        let mut out = Vec::with_capacity(size);
        for slot in slots {
            out.extend_from_slice(self.encoded(slot));
        }
        out
    }

    /// The next result in submission order (`ordered`) or finishing order.
    pub(crate) fn next(&mut self, ordered: bool) -> Next {
        let index = if ordered {
            if self.next_ordered == self.slots.len() {
                return Next::Exhausted;
            }
            if self.slots[self.next_ordered].is_none() {
                return Next::Pending;
            }
            self.next_ordered += 1;
            self.next_ordered - 1
        } else {
            match self.finished.pop_front() {
                Some(index) => index,
                None if self.is_complete() => return Next::Exhausted,
                None => return Next::Pending,
            }
        };
        let mut out = (index as u32).to_le_bytes().to_vec();
        if let Some(slot) = &self.slots[index] {
            // Without the length prefix: status and payload.
            out.extend_from_slice(&self.encoded(slot)[4..]);
        }
        Next::Item(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_items(items: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let list = procbridge_abi::list::encode(items);
        let mut ends = Vec::new();
        let mut at = 0;
        for item in items {
            at += 4 + item.len();
            ends.push(at);
        }
        (list, ends)
    }

    #[test]
    fn ordered_and_unordered_iteration() {
        let mut batch = Batch::new(3);
        assert_eq!(batch.next(true), Next::Pending);
        let (items, ends) = reply_items(&[b"\0c"]);
        batch.finish_encoded(2, &items, &ends);
        let (items, ends) = reply_items(&[b"\x01ignored"]);
        batch.finish_encoded(2, &items, &ends);
        assert_eq!(batch.next(true), Next::Pending);
        assert_eq!(batch.next(false), Next::Item(vec![2, 0, 0, 0, 0, b'c']));
        batch.finish(0, 1, &Outcome::WorkerLost("x".into()));
        batch.finish_all(&Outcome::Terminated);
        assert!(batch.is_complete());
        assert_eq!(batch.next(true), Next::Item(vec![0, 0, 0, 0, 2, b'x']));
        let terminated: Vec<u8> = vec![1, 0, 0, 0, STATUS_TERMINATED]
            .into_iter()
            .chain(*b"the pool was terminated")
            .collect();
        assert_eq!(batch.next(true), Next::Item(terminated));
        let all = procbridge_abi::list::decode(&batch.encode_all()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0], b"\x02x");
        assert_eq!(all[2], b"\0c");
    }

    #[test]
    fn a_chunk_reply_is_one_buffer_and_shared_outcomes_are_stored_once() {
        let mut batch = Batch::new(1000);
        let payloads: Vec<Vec<u8>> = (0..500u32)
            .map(|i| [&[0u8][..], &i.to_le_bytes()].concat())
            .collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let (items, ends) = reply_items(&refs);
        batch.finish_encoded(0, &items, &ends);
        batch.finish_all(&Outcome::Terminated);
        assert!(batch.is_complete());
        assert_eq!(batch.bufs.len(), 2);
        let all = procbridge_abi::list::decode(&batch.encode_all()).unwrap();
        assert_eq!(all[499], payloads[499]);
        assert_eq!(all[500][0], STATUS_TERMINATED);
    }
}
