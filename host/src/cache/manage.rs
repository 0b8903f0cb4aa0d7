//! Listing, emptying and trimming the cache (`procbridge cache`), and the
//! notes that say which module an entry was compiled from.
//!
//! An entry's name is a digest: it says nothing of the module. So when an
//! entry is stored, a note `HEX.pbinfo` is written next to `HEX.pbcache`
//! with the module's name (its absolute path, for a file). Notes are only
//! ever shown, never trusted: an entry loads or not by its MAC alone. A
//! note goes with its entry (eviction and cleaning remove both).

use super::dir::{CacheDir, DirFile, Problem, ENTRY_SUFFIX, STALE_TMP};
use super::known;
use super::ModuleCache;
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// File names of notes: `HEX.pbinfo`.
pub(crate) const INFO_SUFFIX: &str = ".pbinfo";

/// The first line of a note (the format's version is its last character).
const INFO_MAGIC: &[u8] = b"PBINFO1\n";

/// The longest note read.
const MAX_INFO: usize = 8192;

/// One compiled module in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// The entry's file.
    pub path: PathBuf,
    /// The module it was compiled from, as it was loaded (the absolute
    /// path of a file), when known: entries written by earlier versions
    /// say nothing.
    pub module: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last used (stored, or loaded from the cache).
    pub last_used: SystemTime,
}

/// What [`ModuleCache::clean`] or [`ModuleCache::trim`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Entries (compiled modules) removed.
    pub entries: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Writes the note of `entry`: it holds the module `module`. Failing to
/// is not an error (the list says "unknown").
pub(crate) fn describe(dir: &CacheDir, entry: &str, module: &str) {
    let _ = dir.write(&note_of(entry), &[INFO_MAGIC, module.as_bytes()]);
}

/// The note's name of an entry's.
fn note_of(entry: &str) -> String {
    format!(
        "{}{INFO_SUFFIX}",
        entry.strip_suffix(ENTRY_SUFFIX).unwrap_or(entry)
    )
}

/// The entry's name of a note's.
pub(crate) fn entry_of(note: &str) -> String {
    format!(
        "{}{ENTRY_SUFFIX}",
        note.strip_suffix(INFO_SUFFIX).unwrap_or(note)
    )
}

/// The module a note names, if it is one.
fn read_note(dir: &CacheDir, entry: &str) -> Option<String> {
    let note = dir.read_small(&note_of(entry), MAX_INFO)?;
    let module = note.strip_prefix(INFO_MAGIC)?;
    Some(String::from_utf8_lossy(module).into_owned())
}

/// Whether `name` is one procbridge gives its files: an entry or a note
/// (`HEX.pbcache`, `HEX.pbinfo`, 64 hex digits) or a record of a module's
/// identity (`HEX.pbknown`, 32).
fn our_name(name: &str) -> bool {
    [(ENTRY_SUFFIX, 64), (INFO_SUFFIX, 64), (known::SUFFIX, 32)]
        .iter()
        .any(|&(suffix, digits)| hex_named(name, suffix, digits))
}

/// Whether `name` is `digits` lowercase hex digits then `suffix`.
pub(super) fn hex_named(name: &str, suffix: &str, digits: usize) -> bool {
    name.strip_suffix(suffix).is_some_and(|stem| {
        stem.len() == digits
            && stem
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether procbridge wrote `file` (entries, notes, records, and the
/// temporary files of writers that died: `NAME.tmpPID.SEQ` older than
/// [`STALE_TMP`](super::dir::STALE_TMP)): what cleaning removes. Anything else in the directory
/// is left alone (a `.cwasm` of wasmtime's, a file of the user's), and so
/// is a temporary file a job may be writing now.
pub(super) fn ours(file: &DirFile, now: SystemTime) -> bool {
    let Some((name, tmp)) = file.name.split_once(".tmp") else {
        return our_name(&file.name);
    };
    let written_by_us = tmp
        .split_once('.')
        .is_some_and(|(pid, seq)| all_digits(pid) && all_digits(seq));
    let stale = now
        .duration_since(file.modified)
        .is_ok_and(|age| age > STALE_TMP);
    our_name(name) && written_by_us && stale
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

impl ModuleCache {
    /// The entries, most recently used first; none when the directory does
    /// not exist.
    ///
    /// # Errors
    /// When the directory may not be used (it is not the user's alone; see
    /// "Trust" above) or cannot be opened.
    pub fn entries(&self) -> Result<Vec<CacheEntry>> {
        let Some(dir) = self.existing()? else {
            return Ok(Vec::new());
        };
        let mut entries: Vec<CacheEntry> = dir
            .files()
            .into_iter()
            .filter(|file| file.name.ends_with(ENTRY_SUFFIX) && our_name(&file.name))
            .map(|file| CacheEntry {
                path: dir.path_of(&file.name),
                module: read_note(&dir, &file.name),
                size: file.size,
                last_used: file.modified,
            })
            .collect();
        entries.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.path.cmp(&b.path)));
        Ok(entries)
    }

    /// Removes every entry, or with `unused_for` those not used for that
    /// long; with every entry go the records of the modules' identities
    /// (see the module docs) and what writers that died left. Files that
    /// are not procbridge's are left alone, and so are temporary files
    /// younger than an hour (a job may be writing one now).
    ///
    /// # Errors
    /// As [`entries`](ModuleCache::entries).
    pub fn clean(&self, unused_for: Option<Duration>) -> Result<Removed> {
        let Some(dir) = self.existing()? else {
            return Ok(Removed::default());
        };
        let now = SystemTime::now();
        let stale = |file: &DirFile| match unused_for {
            None => true,
            Some(age) => now
                .duration_since(file.modified)
                .is_ok_and(|unused| unused >= age),
        };
        let mut removed = Removed::default();
        let files = dir.files();
        for file in &files {
            if file.name.ends_with(ENTRY_SUFFIX) && our_name(&file.name) && stale(file) {
                dir.unlink(&file.name);
                dir.unlink(&note_of(&file.name));
                removed.entries += 1;
                removed.bytes += file.size;
            }
        }
        if unused_for.is_none() {
            for file in files.iter().filter(|file| ours(file, now)) {
                dir.unlink(&file.name);
            }
        }
        if removed.entries > 0 {
            tracing::info!(
                "removed {} entries ({}) from the module cache {}",
                removed.entries,
                crate::diag::size(removed.bytes),
                self.dir.display()
            );
        }
        Ok(removed)
    }

    /// Removes the least recently used entries until the rest take at
    /// most [`size_cap`](ModuleCache::size_cap) (as each store does).
    ///
    /// # Errors
    /// As [`entries`](ModuleCache::entries).
    pub fn trim(&self) -> Result<Removed> {
        match self.existing()? {
            Some(dir) => Ok(dir.evict(self.max_bytes)),
            None => Ok(Removed::default()),
        }
    }

    /// The directory, checked, when it exists.
    fn existing(&self) -> Result<Option<CacheDir>> {
        match std::fs::symlink_metadata(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
        match CacheDir::open_existing(&self.dir) {
            Ok(dir) => Ok(Some(dir)),
            Err(Problem::Untrusted(why) | Problem::Unwritable(why)) => Err(anyhow!(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_entries_name_each_other() {
        let entry = format!("abc{ENTRY_SUFFIX}");
        assert_eq!(note_of(&entry), format!("abc{INFO_SUFFIX}"));
        assert_eq!(entry_of(&note_of(&entry)), entry);
    }
}
