//! The results of one submission (`apply_async`, `map_async`, ...): one
//! outcome per item, in submission order, plus the order they finished in
//! (for `imap_unordered`).

use procbridge_abi::pool::{
    STATUS_FAILED, STATUS_OK, STATUS_TERMINATED, STATUS_TIMED_OUT, STATUS_WORKER_LOST,
};
use std::collections::VecDeque;

/// How one task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It returned these bytes.
    Returned(Vec<u8>),
    /// It reported an error or trapped.
    Failed(String),
    /// Its worker died under it.
    WorkerLost(String),
    /// It ran over the per-task timeout.
    TimedOut(String),
    /// The pool was terminated first.
    Terminated,
}

impl Outcome {
    /// An outcome from a worker's reply item.
    pub(crate) fn from_reply(status: u8, bytes: &[u8]) -> Outcome {
        let text = || String::from_utf8_lossy(bytes).into_owned();
        match status {
            STATUS_OK => Outcome::Returned(bytes.to_vec()),
            STATUS_FAILED => Outcome::Failed(text()),
            _ => Outcome::WorkerLost(text()),
        }
    }

    /// Appends the status byte and payload the guest receives.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let (status, payload): (u8, &[u8]) = match self {
            Outcome::Returned(bytes) => (STATUS_OK, bytes),
            Outcome::Failed(m) => (STATUS_FAILED, m.as_bytes()),
            Outcome::WorkerLost(m) => (STATUS_WORKER_LOST, m.as_bytes()),
            Outcome::TimedOut(m) => (STATUS_TIMED_OUT, m.as_bytes()),
            Outcome::Terminated => (STATUS_TERMINATED, b"the pool was terminated"),
        };
        out.push(status);
        out.extend_from_slice(payload);
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            Outcome::Returned(bytes) => bytes.len(),
            Outcome::Failed(m) | Outcome::WorkerLost(m) | Outcome::TimedOut(m) => m.len(),
            Outcome::Terminated => 23,
        }
    }
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
    outcomes: Vec<Option<Outcome>>,
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
            outcomes: vec![None; items],
            done: 0,
            finished: VecDeque::new(),
            next_ordered: 0,
        }
    }

    /// Records item `index`'s outcome (the first one recorded wins).
    pub(crate) fn finish(&mut self, index: usize, outcome: Outcome) {
        if let Some(slot @ None) = self.outcomes.get_mut(index) {
            *slot = Some(outcome);
            self.done += 1;
            self.finished.push_back(index);
        }
    }

    /// Marks every unfinished item with `outcome`.
    pub(crate) fn finish_all(&mut self, outcome: &Outcome) {
        for index in 0..self.outcomes.len() {
            self.finish(index, outcome.clone());
        }
    }

    /// Whether every item has finished.
    pub(crate) fn is_complete(&self) -> bool {
        self.done == self.outcomes.len()
    }

    /// Every outcome as a list (see `procbridge_abi::list`) of status byte
    /// plus payload, in submission order. Call once complete.
    pub(crate) fn encode_all(&self) -> Vec<u8> {
        let size: usize = self
            .outcomes
            .iter()
            .flatten()
            .map(|o| 4 + o.encoded_len())
            .sum();
        let mut out = Vec::with_capacity(size);
        for outcome in self.outcomes.iter().flatten() {
            out.extend_from_slice(&(outcome.encoded_len() as u32).to_le_bytes());
            outcome.encode_into(&mut out);
        }
        out
    }

    /// The next result in submission order (`ordered`) or finishing order.
    pub(crate) fn next(&mut self, ordered: bool) -> Next {
        let index = if ordered {
            if self.next_ordered == self.outcomes.len() {
                return Next::Exhausted;
            }
            if self.outcomes[self.next_ordered].is_none() {
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
        if let Some(outcome) = &self.outcomes[index] {
            outcome.encode_into(&mut out);
        }
        Next::Item(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_and_unordered_iteration() {
        let mut batch = Batch::new(3);
        assert_eq!(batch.next(true), Next::Pending);
        batch.finish(2, Outcome::Returned(b"c".to_vec()));
        batch.finish(2, Outcome::Failed("ignored".into()));
        assert_eq!(batch.next(true), Next::Pending);
        assert_eq!(batch.next(false), Next::Item(vec![2, 0, 0, 0, 0, b'c']));
        batch.finish(0, Outcome::Failed("x".into()));
        batch.finish_all(&Outcome::Terminated);
        assert!(batch.is_complete());
        assert_eq!(batch.next(true), Next::Item(vec![0, 0, 0, 0, 1, b'x']));
        assert_eq!(
            batch.next(true),
            Next::Item(
                vec![1, 0, 0, 0, 4]
                    .into_iter()
                    .chain(*b"the pool was terminated")
                    .collect()
            )
        );
        let all = procbridge_abi::list::decode(&batch.encode_all()).unwrap();
        assert_eq!(all[2], b"\0c");
        assert_eq!(all.len(), 3);
    }
}
