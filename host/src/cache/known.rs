//! Modules the cache has seen, known by file identity: a cached run finds
//! its entry without reading or hashing the module.
//!
//! A module's entry is named by the digest of its bytes, which costs a read
//! and a hash of the whole file (for CPython's 26 MB, about a fifth of a
//! cached start-up). So once a file's digest is known, the cache remembers
//! it by the file's identity — device, inode, size, modification and change
//! times — in a small record, `HEX.pbknown`, authenticated like the entries
//! (a keyed BLAKE3 MAC under the user's cache key, kept outside the cache).
//! The next load of the same, unchanged file takes the digest from the
//! record.
//!
//! # Why a file's identity is enough
//!
//! Writing a file, truncating it, renaming it or linking it sets its change
//! time (`ctime`) to the current time, and no one but the kernel sets it (a
//! process can set the modification time, never the change time). So a
//! file with the same identity as when its digest was taken holds the same
//! bytes — as long as the change happened after a clock tick. A change
//! within the same tick as the recorded one would keep the times, so a
//! record is only written for a file whose change time is at least
//! [`SETTLED`] old: any change after that is seen (the same reasoning as
//! git's "racy" index entries). A record that does not authenticate or does
//! not match is ignored: the module is read and hashed as before.
//!
//! One writer goes unseen for a while: a process that has the module mapped
//! shared and writable changes the file's times only on the first write to
//! a page after it was written back, so later writes to a page still dirty
//! keep them. Until the page is written back (about half a minute), a run
//! may then use the compiled code of the module's previous contents. That
//! is code this user compiled from this file before, never code anyone
//! else chose; whoever can write the module chooses what runs anyway.
//!
//! The record says which bytes the module has; the entry it leads to is
//! still authenticated on every load.

use super::dir::CacheDir;
use super::key::Key;
use super::mac;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

/// File names of records: `HEX.pbknown`.
pub(crate) const SUFFIX: &str = ".pbknown";

/// The first bytes of every record (the format's version is its last byte).
const MAGIC: &[u8; 8] = b"PBKNOWN1";

/// A file changed less than this long ago may change again within the same
/// tick of the file-time clock: its digest is not recorded yet.
pub(crate) const SETTLED: Duration = Duration::from_secs(2);

/// Length of a record: magic, MAC, identity, digest.
const LEN: usize = MAGIC.len() + 32 + Identity::LEN + 32;

/// What tells a file's contents apart without reading them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    const LEN: usize = 7 * 8;

    /// The identity of an open file.
    pub(crate) fn of(file: &File) -> std::io::Result<Identity> {
        let meta = file.metadata()?;
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file last changed at least [`SETTLED`] before `now`.
    pub(crate) fn settled(&self, now: SystemTime) -> bool {
        let changed = match u64::try_from(self.ctime.0) {
            Ok(secs) => SystemTime::UNIX_EPOCH + Duration::new(secs, self.ctime.1 as u32),
            Err(_) => return false,
        };
        now.duration_since(changed).is_ok_and(|age| age >= SETTLED)
    }

    fn bytes(&self) -> [u8; Self::LEN] {
        let fields = [
            self.dev,
            self.ino,
            self.size,
            self.mtime.0 as u64,
            self.mtime.1 as u64,
            self.ctime.0 as u64,
            self.ctime.1 as u64,
        ];
        let mut out = [0u8; Self::LEN];
        for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }

    /// The record's file name: where this device and inode's digest is
    /// kept (keyed, so names say nothing about the files).
    fn record_name(&self, key: &Key) -> String {
        let name = mac::mac(
            key,
            &[MAGIC, &self.dev.to_le_bytes(), &self.ino.to_le_bytes()],
        );
        let hex: String = name[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}{SUFFIX}")
    }
}

/// The digest recorded for the file with `identity`, when a record
/// authenticates and matches it.
pub(crate) fn digest(dir: &CacheDir, key: &Key, identity: &Identity) -> Option<[u8; 32]> {
    let record = dir.read_small(&identity.record_name(key), LEN)?;
    let digest = check(&record, key, identity)?;
    Some(digest)
}

/// Records `digest` for the file with `identity`, if it has settled (see
/// the module docs). Failing to record is not an error: the next load
/// hashes again.
pub(crate) fn remember(
    dir: &CacheDir,
    key: &Key,
    identity: &Identity,
    digest: &[u8; 32],
    now: SystemTime,
) {
    if identity.settled(now) {
        let _ = dir.write(
            &identity.record_name(key),
            &[&record(key, identity, digest)],
        );
    }
}

fn record(key: &Key, identity: &Identity, digest: &[u8; 32]) -> Vec<u8> {
    let fields = identity.bytes();
    let tag = mac::mac(key, &[MAGIC, &fields, digest]);
    [&MAGIC[..], &tag, &fields, digest].concat()
}

/// The digest in `record` if it authenticates under `key` and is about
/// `identity`.
fn check(record: &[u8], key: &Key, identity: &Identity) -> Option<[u8; 32]> {
    if record.len() != LEN || &record[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (tag, rest) = record[MAGIC.len()..].split_at(32);
    let (fields, digest) = rest.split_at(Identity::LEN);
    let expected = mac::mac(key, &[MAGIC, fields, digest]);
    if !mac::same(&expected, tag) || fields != identity.bytes() {
        return None;
    }
    digest.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (4, 5),
            ctime: (6, 7),
        }
    }

    #[test]
    fn a_record_is_good_only_for_its_file_under_its_key() {
        let key = [7u8; 32];
        let digest = [9u8; 32];
        let good = record(&key, &identity(), &digest);
        assert_eq!(check(&good, &key, &identity()), Some(digest));
        assert_eq!(check(&good, &[8u8; 32], &identity()), None);
        for changed in [
            Identity {
                size: 4,
                ..identity()
            },
            Identity {
                ino: 5,
                ..identity()
            },
            Identity {
                mtime: (4, 6),
                ..identity()
            },
            Identity {
                ctime: (6, 8),
                ..identity()
            },
        ] {
            assert_eq!(check(&good, &key, &changed), None, "{changed:?}");
        }
        for at in 0..good.len() {
            let mut edited = good.clone();
            edited[at] ^= 1;
            assert_eq!(check(&edited, &key, &identity()), None, "byte {at}");
        }
        assert_eq!(check(&good[..LEN - 1], &key, &identity()), None);
    }

    #[test]
    fn only_a_file_that_changed_a_while_ago_is_settled() {
        let changed = SystemTime::UNIX_EPOCH + Duration::new(6, 7);
        let settled = identity();
        assert!(!settled.settled(changed));
        assert!(!settled.settled(changed + SETTLED - Duration::from_nanos(1)));
        assert!(settled.settled(changed + SETTLED));
        // A change time in the future (a clock set back) is never settled.
        assert!(!settled.settled(changed - Duration::from_secs(1)));
    }

    #[test]
    fn record_names_depend_on_the_file_and_the_key() {
        let key = [7u8; 32];
        let name = identity().record_name(&key);
        assert!(name.ends_with(SUFFIX));
        assert_eq!(
            name,
            Identity {
                size: 9,
                ..identity()
            }
            .record_name(&key)
        );
        assert_ne!(
            name,
            Identity {
                ino: 9,
                ..identity()
            }
            .record_name(&key)
        );
        assert_ne!(name, identity().record_name(&[8u8; 32]));
    }
}
