//! The list encoding: byte strings, each prefixed by its little-endian `u32`
//! length.
//!
//! ```
//! use procbridge_abi::list;
//! let bytes = list::encode(&["echo", "hi"]);
//! assert_eq!(list::decode(&bytes).unwrap(), vec![b"echo".to_vec(), b"hi".to_vec()]);
//! ```

use alloc::vec::Vec;

/// Why a byte string is not a valid list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a length prefix or an item.
    Truncated,
    /// More items than the caller accepts.
    TooManyItems,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("list is truncated"),
            DecodeError::TooManyItems => f.write_str("list has too many items"),
        }
    }
}

/// Encodes items into the list format.
pub fn encode<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        push(&mut out, item.as_ref());
    }
    out
}

/// Appends one item to an encoded list.
pub fn push(out: &mut Vec<u8>, item: &[u8]) {
    out.extend_from_slice(&(item.len() as u32).to_le_bytes());
    out.extend_from_slice(item);
}

/// Iterates over the items of an encoded list without copying.
pub fn iter(bytes: &[u8]) -> Iter<'_> {
    Iter { rest: bytes }
}

/// Decodes a whole list into owned items.
pub fn decode(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    decode_max(bytes, usize::MAX)
}

/// Decodes a whole list, refusing more than `max_items` items.
pub fn decode_max(bytes: &[u8], max_items: usize) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut items = Vec::new();
    for item in iter(bytes) {
        if items.len() == max_items {
            return Err(DecodeError::TooManyItems);
        }
        items.push(item?.to_vec());
    }
    Ok(items)
}

/// Iterator over an encoded list; see [`iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<&'a [u8], DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        if self.rest.len() < 4 {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let (len, rest) = self.rest.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if rest.len() < len {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated));
        }
        let (item, rest) = rest.split_at(len);
        self.rest = rest;
        Some(Ok(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn empty_list_and_empty_items() {
        assert_eq!(decode(&[]).unwrap(), Vec::<Vec<u8>>::new());
        let bytes = encode(&["", "x", ""]);
        assert_eq!(decode(&bytes).unwrap(), vec![vec![], b"x".to_vec(), vec![]]);
    }

    #[test]
    fn truncated_inputs_are_errors() {
        let bytes = encode(&["hello"]);
        for cut in 1..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut]),
                Err(DecodeError::Truncated),
                "cut {cut}"
            );
        }
        // A length prefix that claims more than there is.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 1]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn item_limit() {
        let bytes = encode(&["a", "b", "c"]);
        assert_eq!(decode_max(&bytes, 2), Err(DecodeError::TooManyItems));
        assert_eq!(decode_max(&bytes, 3).unwrap().len(), 3);
    }
}
