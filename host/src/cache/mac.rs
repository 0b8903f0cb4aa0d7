//! The cache's MAC — keyed BLAKE3 under the user's cache key — and a
//! comparison whose time does not depend on where two MACs differ.
//!
//! BLAKE3 in keyed mode is a PRF (a MAC without HMAC's two passes), and it
//! is several times faster than SHA-256: checking a 25 MB entry costs a few
//! milliseconds where HMAC-SHA256 cost about fifteen.

use super::key::Key;

/// The MAC under `key` of the concatenation of `parts`.
pub(crate) fn mac(key: &Key, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The payload of an entry is hashed in pieces of this size, so that
/// pieces can be hashed (and copied) in parallel.
pub(crate) const PIECE: usize = 4 << 20;

/// The digest of an entry's payload, which its MAC covers: the BLAKE3 of
/// its length and the BLAKE3 digests of its [`PIECE`]-sized pieces, in
/// order (a hash list; as collision-resistant as BLAKE3 itself).
pub(crate) fn payload_digest(payload: &[u8]) -> [u8; 32] {
    let pieces: Vec<[u8; 32]> = payload.chunks(PIECE).map(digest).collect();
    digest_of_pieces(payload.len() as u64, &pieces)
}

/// [`payload_digest`] from the digests of the pieces of a payload of `len`
/// bytes.
pub(crate) fn digest_of_pieces(len: u64, pieces: &[[u8; 32]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"procbridge payload");
    hasher.update(&len.to_le_bytes());
    for piece in pieces {
        hasher.update(piece);
    }
    hasher.finalize().into()
}

/// The digest (unkeyed BLAKE3) of `bytes`: a module's name in the cache.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    blake3::hash(bytes).into()
}

/// Whether `a` and `b` are equal, in a time that depends only on their
/// lengths.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    a.len() == b.len() && std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn blake3_test_vectors() {
        // The official test vectors' key, and their input of length 0 and 1.
        let key: Key = *b"whats the Elvish word for friend";
        assert_eq!(
            hex(&digest(b"")),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(
            hex(&mac(&key, &[])),
            "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"
        );
        assert_eq!(
            hex(&mac(&key, &[&[0]])),
            "6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b"
        );
    }

    #[test]
    fn the_parts_are_one_message_and_the_key_matters() {
        let key = [7u8; 32];
        let whole = mac(&key, &[b"compiled code"]);
        assert_eq!(mac(&key, &[b"comp", b"", b"iled code"]), whole);
        assert_ne!(mac(&[8u8; 32], &[b"compiled code"]), whole);
        assert_ne!(mac(&key, &[b"compiled codE"]), whole);
    }

    #[test]
    fn a_payload_digest_covers_every_byte_and_the_length() {
        let payload: Vec<u8> = (0..(PIECE + 10)).map(|i| i as u8).collect();
        let whole = payload_digest(&payload);
        let mut edited = payload.clone();
        edited[PIECE + 3] ^= 1;
        assert_ne!(payload_digest(&edited), whole);
        assert_ne!(payload_digest(&payload[..PIECE]), whole);
        assert_ne!(payload_digest(b""), payload_digest(&[0]));
    }

    #[test]
    fn comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }
}
