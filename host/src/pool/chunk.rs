//! A chunk: consecutive items of one submission sent to a worker as one
//! request (`chunksize` items; `1` for `apply_async`).

use crate::errno::{BridgeError, BridgeResult};
use std::sync::Arc;

/// Consecutive items of one batch, run by one worker in order.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    /// Its request id (unique in the pool).
    pub(crate) id: u64,
    /// The batch it belongs to.
    pub(crate) batch: u64,
    /// The index of its first item in the batch.
    pub(crate) first: usize,
    /// The task export to call.
    pub(crate) name: Arc<str>,
    /// How many items it has.
    pub(crate) count: usize,
    /// Each item's arguments in the list encoding (as a request carries
    /// them), kept until the reply comes, so that a chunk that never
    /// started on a dead worker can be sent to another.
    pub(crate) items: Vec<u8>,
}

impl Chunk {
    /// The bytes of arguments it holds.
    pub(crate) fn size(&self) -> usize {
        self.items.len()
    }
}

/// The byte offset where each item of a list-encoded `list` ends.
///
/// # Errors
/// `EINVAL` for a malformed list or more than `max_items` items.
pub(crate) fn item_ends(list: &[u8], max_items: usize) -> BridgeResult<Vec<usize>> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < list.len() {
        if ends.len() == max_items {
            return Err(BridgeError::invalid(
                "task arguments: list has too many items",
            ));
        }
        let len = list
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| BridgeError::invalid("task arguments: list is truncated"))?;
        at = at
            .checked_add(4 + len)
            .filter(|&end| end <= list.len())
            .ok_or_else(|| BridgeError::invalid("task arguments: list is truncated"))?;
        ends.push(at);
    }
    Ok(ends)
}

/// Splits the list-encoded `list` (items ending at `ends`) into chunks of
/// `chunksize` items, numbered from `*next_id`.
pub(crate) fn split(
    batch: u64,
    name: &Arc<str>,
    list: &[u8],
    ends: &[usize],
    chunksize: usize,
    next_id: &mut u64,
) -> Vec<Chunk> {
    let chunksize = chunksize.max(1);
    let mut chunks = Vec::with_capacity(ends.len() / chunksize + 1);
    let mut start = 0;
    for (part, part_ends) in ends.chunks(chunksize).enumerate() {
        let end = part_ends[part_ends.len() - 1];
        chunks.push(Chunk {
            id: *next_id,
            batch,
            first: part * chunksize,
            name: name.clone(),
            count: part_ends.len(),
            items: list[start..end].to_vec(),
        });
        *next_id += 1;
        start = end;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_in_order() {
        let name: Arc<str> = Arc::from("f");
        let mut next = 5;
        let items: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; i as usize]).collect();
        let list = procbridge_abi::list::encode(&items);
        let ends = item_ends(&list, 100).unwrap();
        assert_eq!(ends.len(), 7);
        let chunks = split(1, &name, &list, &ends, 3, &mut next);
        assert_eq!(
            chunks
                .iter()
                .map(|c| (c.id, c.first, c.count))
                .collect::<Vec<_>>(),
            vec![(5, 0, 3), (6, 3, 3), (7, 6, 1)]
        );
        assert_eq!(next, 8);
        assert_eq!(
            procbridge_abi::list::decode(&chunks[1].items).unwrap(),
            items[3..6].to_vec()
        );
        assert_eq!(chunks.iter().map(Chunk::size).sum::<usize>(), list.len());
    }

    #[test]
    fn malformed_lists_are_refused() {
        assert!(item_ends(&[9, 0, 0, 0, 1], 10).is_err());
        assert!(item_ends(&[1, 0], 10).is_err());
        assert!(item_ends(&[0; 12], 2).is_err());
        assert_eq!(item_ends(&[], 0).unwrap(), Vec::<usize>::new());
        assert_eq!(item_ends(&[0; 12], 3).unwrap(), vec![4, 8, 12]);
    }
}
