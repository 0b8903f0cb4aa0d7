//! A chunk: consecutive items of one submission sent to a worker as one
//! request (`chunksize` items; `1` for `apply_async`).

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
    /// Each item's arguments (kept until the reply comes, so a chunk that
    /// never started on a dead worker can be sent to another).
    pub(crate) items: Vec<Vec<u8>>,
}

impl Chunk {
    /// The bytes of arguments it holds.
    pub(crate) fn size(&self) -> usize {
        self.items.iter().map(Vec::len).sum()
    }
}

/// Splits `items` into chunks of `chunksize`, numbered from `*next_id`.
pub(crate) fn split(
    batch: u64,
    name: &Arc<str>,
    items: Vec<Vec<u8>>,
    chunksize: usize,
    next_id: &mut u64,
) -> Vec<Chunk> {
    let chunksize = chunksize.max(1);
    let mut chunks = Vec::with_capacity(items.len() / chunksize + 1);
    let mut items = items.into_iter();
    let mut first = 0;
    loop {
        let part: Vec<Vec<u8>> = items.by_ref().take(chunksize).collect();
        if part.is_empty() {
            return chunks;
        }
        let len = part.len();
        chunks.push(Chunk {
            id: *next_id,
            batch,
            first,
            name: name.clone(),
            items: part,
        });
        *next_id += 1;
        first += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_in_order() {
        let name: Arc<str> = Arc::from("f");
        let mut next = 5;
        let items = (0..7u8).map(|i| vec![i]).collect();
        let chunks = split(1, &name, items, 3, &mut next);
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks
                .iter()
                .map(|c| (c.id, c.first, c.items.len()))
                .collect::<Vec<_>>(),
            vec![(5, 0, 3), (6, 3, 3), (7, 6, 1)]
        );
        assert_eq!(next, 8);
        assert_eq!(chunks[2].items, vec![vec![6]]);
    }
}
