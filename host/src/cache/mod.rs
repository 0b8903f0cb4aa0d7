//! The compiled-module cache: a second run of the same module does not
//! compile it again.
//!
//! # Trust
//!
//! An entry is native code (a wasmtime serialized module): loading it runs
//! whatever it contains, outside the wasm sandbox. So an entry is loaded
//! only when it deserves it:
//!
//! * **The directory** must belong to the current user (the effective uid)
//!   and not be writable by group or others; otherwise the cache is not used
//!   (one warning). It is created `0700`.
//! * **Each entry** likewise (an entry that is not is not loaded: it is
//!   compiled again and replaced), and must be a regular file, not a
//!   symbolic link.
//! * **Entries are authenticated.** An entry is
//!   `MAGIC (8 bytes) | MAC (32 bytes) | serialized module`, where the MAC
//!   is the keyed BLAKE3, under the user's cache key, of the magic, the
//!   engine's compatibility hash (wasmtime version and settings), the
//!   BLAKE3 digest of the module's bytes and the digest of the serialized
//!   module (a list of the digests of its 4 MiB pieces, so that pieces are
//!   checked in parallel; see [`mac`]). The entry's
//!   name is derived from the same two hashes, and the MAC covers them, so an
//!   entry is only good under its own name: a valid entry of another module
//!   planted under this one's name fails like a forged or edited one.
//!   Anything that does not authenticate (replaced, edited, truncated,
//!   garbage, another format) is never loaded: the module is compiled again,
//!   the entry replaced, and one warning printed.
//! * **The key** (32 random bytes from `getrandom`) lives outside the cache
//!   directory, in the user's configuration:
//!   `$XDG_CONFIG_HOME/procbridge/cache.key`, else
//!   `~/.config/procbridge/cache.key` ([`ModuleCache::default_key_file`]),
//!   created `0600` in a `0700` directory, and is only used when it is the
//!   user's alone (not readable or writable by group or others). Keeping it
//!   apart from the cache (rather than next to it) means that a job granted
//!   the cache's directory, or its parent (`~/.cache`), can write entries
//!   but cannot read the key, so it cannot forge one.
//! * **Loading is from the verified bytes.** An entry is read once, through
//!   a descriptor opened relative to the checked directory, into a sealed
//!   memfd (see [`sealed`]), its MAC checked over exactly those bytes, and
//!   the module loaded from them: nothing can be swapped in between the
//!   check and the load.
//! * **Grants.** A job granted a directory inside (or containing) the cache
//!   directory, or containing the key, could tamper with the cache or read
//!   the key: the CLI does not use the cache for such a job
//!   ([`ModuleCache::exposed_to`]). A job that was granted the key's
//!   directory has seen the key: delete the key file to make a new one (the
//!   entries are then compiled again).
//!
//! # Cost of a hit
//!
//! A module file loaded before and unchanged since is known by its identity
//! (see [`known`]): a hit reads neither the module nor its digest, only a
//! small record, then copies and checks the entry (in parallel) and maps
//! it. A module given as bytes, or a file not yet remembered, is hashed
//! once (BLAKE3) to find its entry.
//!
//! # Size
//!
//! The entries take at most [`ModuleCache::max_bytes`] (default 1 GiB, or
//! `$PROCBRIDGE_CACHE_MAX_MB` MiB): after each store the least recently
//! used entries are removed (an entry's times are set on each hit).
//! [`ModuleCache::entries`], [`ModuleCache::clean`] and
//! [`ModuleCache::trim`] list, empty and trim the cache (`procbridge
//! cache`); next to each entry a small `HEX.pbinfo` file says which module
//! it was compiled from (for the list only: it is never trusted).

mod dir;
mod key;
mod known;
mod mac;
mod manage;
mod sealed;

use crate::diag::{self, Compiled};
use crate::policy::Policy;
use anyhow::Result;
use dir::{CacheDir, Problem};
use key::Key;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;
use wasmtime::{Engine, Module};

pub use manage::{CacheEntry, Removed};

/// The default size cap of the entries.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The first bytes of every entry (the format's version is its last byte).
const MAGIC: &[u8; 8] = b"PBCACHE2";

/// Bytes before the serialized module: the magic and the MAC.
const HEADER: usize = MAGIC.len() + 32;

/// A directory of compiled modules.
#[derive(Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    key_file: Option<PathBuf>,
    max_bytes: u64,
    shared: Arc<Shared>,
}

/// What the clones of one cache share: its key, once read, and which
/// warnings were given.
#[derive(Default)]
struct Shared {
    key: OnceLock<Result<Key, String>>,
    warned: AtomicU8,
}

impl std::fmt::Debug for ModuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCache")
            .field("dir", &self.dir)
            .field("key_file", &self.key_file)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Where a loaded module came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and stored in the cache, if there is one).
    Compiled,
    /// Loaded from the cache without compiling.
    Cached,
}

/// What a warning is about; each is given once per cache.
#[derive(Clone, Copy)]
enum Warning {
    /// The cache is not used (directory or key not trustworthy).
    Untrusted = 1,
    /// An entry was refused.
    Entry = 2,
    /// The cache cannot be written.
    Unwritable = 4,
}

impl ModuleCache {
    /// A cache in `dir` (created on first use), with the key in
    /// [`ModuleCache::default_key_file`] and a size cap of
    /// `$PROCBRIDGE_CACHE_MAX_MB` MiB, else [`DEFAULT_MAX_BYTES`].
    ///
    /// # Ambient authority
    /// Reads the process environment.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModuleCache {
            dir: dir.into(),
            key_file: Self::default_key_file(),
            max_bytes: Self::default_max_bytes(),
            shared: Arc::default(),
        }
    }

    /// The default size cap: `$PROCBRIDGE_CACHE_MAX_MB` MiB when it is a
    /// number, else [`DEFAULT_MAX_BYTES`].
    ///
    /// # Ambient authority
    /// Reads the process environment.
    pub fn default_max_bytes() -> u64 {
        std::env::var("PROCBRIDGE_CACHE_MAX_MB")
            .ok()
            .and_then(|mb| mb.trim().parse::<u64>().ok())
            .map_or(DEFAULT_MAX_BYTES, |mb| mb.saturating_mul(1 << 20))
    }

    /// Keeps the key in `path` instead (outside the cache directory; see
    /// "Trust" above).
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self.shared = Arc::default();
        self
    }

    /// Lets the entries take at most `bytes`; the least recently used go
    /// first.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The most the entries may take, in bytes.
    pub fn size_cap(&self) -> u64 {
        self.max_bytes
    }

    /// The default location: `$PROCBRIDGE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/procbridge`, else `$HOME/.cache/procbridge`.
    ///
    /// # Ambient authority
    /// Reads the process environment.
    pub fn default_dir() -> Option<PathBuf> {
        env_path("PROCBRIDGE_CACHE_DIR")
            .or_else(|| env_path("XDG_CACHE_HOME").map(|d| d.join("procbridge")))
            .or_else(|| env_path("HOME").map(|d| d.join(".cache").join("procbridge")))
    }

    /// The default key file: `$XDG_CONFIG_HOME/procbridge/cache.key`, else
    /// `$HOME/.config/procbridge/cache.key`.
    ///
    /// # Ambient authority
    /// Reads the process environment.
    pub fn default_key_file() -> Option<PathBuf> {
        env_path("XDG_CONFIG_HOME")
            .or_else(|| env_path("HOME").map(|d| d.join(".config")))
            .map(|d| d.join("procbridge").join("cache.key"))
    }

    /// The directory entries are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why a guest running under `policy` could tamper with this cache: a
    /// granted directory inside or containing the cache directory, or
    /// containing the key file (paths compared canonical, as grants are).
    /// `None` when it cannot.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> anyhow::Result<()> {
    /// use procbridge::{DirPerms, ModuleCache, Policy};
    /// let policy = Policy::builder().dir("/home/me", "/home", DirPerms::ReadWrite)?.build();
    /// let cache = ModuleCache::new("/home/me/.cache/procbridge");
    /// assert!(cache.exposed_to(&policy).is_some());
    /// # Ok(()) }
    /// ```
    pub fn exposed_to(&self, policy: &Policy) -> Option<String> {
        let dir = resolved(&self.dir);
        let key = self.key_file.as_deref().map(resolved);
        for grant in policy.dirs() {
            let granted = grant.host.display();
            if dir.starts_with(&grant.host) {
                return Some(format!(
                    "the module cache {} is inside the granted directory {granted}",
                    dir.display()
                ));
            }
            if grant.host.starts_with(&dir) {
                return Some(format!(
                    "the module cache {} contains the granted directory {granted}",
                    dir.display()
                ));
            }
            if let Some(key) = key.as_ref().filter(|k| k.starts_with(&grant.host)) {
                return Some(format!(
                    "the module cache key {} is inside the granted directory {granted}",
                    key.display()
                ));
            }
        }
        None
    }

    /// Loads the compiled form of `bytes`, compiling and storing it when
    /// there is no trustworthy entry for it (see "Trust" above). Problems
    /// with the cache are not errors: each kind is one warning on stderr
    /// (`procbridge: warning: ...`), and the module is compiled.
    ///
    /// # Errors
    /// When `bytes` is not a valid module.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Module, Origin)> {
        self.load_named(engine, "a module given as bytes", bytes)
    }

    /// [`load`](ModuleCache::load) of the module `name` (for messages and
    /// the list of entries).
    pub(crate) fn load_named(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Module, Origin)> {
        match self.trusted() {
            Some((dir, key)) => {
                let hashes = [&engine_hash(engine)[..], &mac::digest(bytes)[..]];
                self.load_or_compile(engine, &dir, &key, name, bytes, hashes)
            }
            None => Ok((compile(engine, name, bytes)?, Origin::Compiled)),
        }
    }

    /// Loads the module in `file`, like [`load`](ModuleCache::load), but
    /// finds the entry of a file seen before by its identity, without
    /// reading it (see [`known`]). `binary` turns the file's contents into a
    /// wasm binary (WAT text is compiled to one); it runs only when the file
    /// has to be read.
    ///
    /// # Errors
    /// [`FileLoadError::Read`] when the file cannot be read;
    /// [`FileLoadError::Invalid`] when `binary` refuses it or it is not a
    /// valid module.
    pub(crate) fn load_file(
        &self,
        engine: &Engine,
        name: &str,
        file: &File,
        binary: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, String>,
    ) -> Result<(Module, Origin), FileLoadError> {
        // Messages and the list of entries name the file by its absolute
        // path.
        let absolute = std::path::absolute(name).map(|p| p.display().to_string());
        let name = absolute.as_deref().unwrap_or(name);
        let identity = known::Identity::of(file).map_err(FileLoadError::Read)?;
        let trusted = self.trusted();
        let engine_hash = engine_hash(engine);
        // The digest whose entry was tried already (and was missing or
        // refused): it is not tried twice.
        let mut tried = None;
        if let Some((dir, key)) = &trusted {
            if let Some(digest) = known::digest(dir, key, &identity) {
                let hashes = [&engine_hash[..], &digest[..]];
                if let Some(module) = self.load_entry(engine, dir, key, name, hashes) {
                    return Ok((module, Origin::Cached));
                }
                tried = Some(digest);
            }
        }
        let contents = read_whole(file, identity.size()).map_err(FileLoadError::Read)?;
        let bytes = binary(contents).map_err(FileLoadError::Invalid)?;
        let Some((dir, key)) = trusted else {
            let module = compile(engine, name, &bytes).map_err(invalid)?;
            return Ok((module, Origin::Compiled));
        };
        let digest = mac::digest(&bytes);
        let hashes = [&engine_hash[..], &digest[..]];
        let loaded = match tried == Some(digest) {
            true => self.compile_and_store(engine, &dir, &key, name, &bytes, hashes),
            false => self.load_or_compile(engine, &dir, &key, name, &bytes, hashes),
        };
        if loaded.is_ok() && known::Identity::of(file).is_ok_and(|now| now == identity) {
            known::remember(&dir, &key, &identity, &digest, SystemTime::now());
        }
        loaded.map_err(invalid)
    }

    /// The checked directory and key, or `None` (with a warning) when the
    /// cache is not used.
    fn trusted(&self) -> Option<(CacheDir, Key)> {
        match self.open() {
            Ok(trusted) => Some(trusted),
            Err(Problem::Untrusted(why)) => {
                self.warn(
                    Warning::Untrusted,
                    &format!("{why}: compiling without the cache"),
                );
                None
            }
            Err(Problem::Unwritable(why)) => {
                self.warn(
                    Warning::Unwritable,
                    &format!("{why}: compiling without the cache"),
                );
                None
            }
        }
    }

    /// The entry of the module `bytes` (`hashes`: the engine's and the
    /// module's), or the module compiled and stored.
    fn load_or_compile(
        &self,
        engine: &Engine,
        dir: &CacheDir,
        key: &Key,
        name: &str,
        bytes: &[u8],
        hashes: [&[u8]; 2],
    ) -> Result<(Module, Origin)> {
        match self.load_entry(engine, dir, key, name, hashes) {
            Some(module) => Ok((module, Origin::Cached)),
            None => self.compile_and_store(engine, dir, key, name, bytes, hashes),
        }
    }

    /// Compiles `bytes` and stores the result as its entry (a failure to
    /// store is one warning).
    fn compile_and_store(
        &self,
        engine: &Engine,
        dir: &CacheDir,
        key: &Key,
        name: &str,
        bytes: &[u8],
        hashes: [&[u8]; 2],
    ) -> Result<(Module, Origin)> {
        let compiling = diag::compiling(name, bytes.len());
        let module = Module::new(engine, bytes)?;
        let entry = entry_name(hashes);
        match store(dir, key, hashes, &module, name) {
            Ok(size) => {
                tracing::debug!(
                    "stored {name} in the module cache as {} ({})",
                    dir.path_of(&entry).display(),
                    diag::size(size)
                );
                let removed = dir.evict(self.max_bytes);
                if removed.entries > 0 {
                    tracing::info!(
                        "the module cache was over its cap of {}: removed the {} least recently \
                         used entries ({})",
                        diag::size(self.max_bytes),
                        removed.entries,
                        diag::size(removed.bytes)
                    );
                }
                compiling.finish(Compiled::Cached);
            }
            Err(e) => {
                compiling.finish(Compiled::NotCached);
                self.warn(
                    Warning::Unwritable,
                    &format!(
                        "cannot write the module cache {}: {e:#}; compiled modules are not kept",
                        self.dir.display()
                    ),
                );
            }
        }
        Ok((module, Origin::Compiled))
    }

    /// The module of entry `name` when there is one and it authenticates;
    /// otherwise `None`, with a warning for an entry that is refused.
    fn load_entry(
        &self,
        engine: &Engine,
        dir: &CacheDir,
        key: &Key,
        module_name: &str,
        hashes: [&[u8]; 2],
    ) -> Option<Module> {
        let name = &entry_name(hashes);
        let (file, len) = match dir.open_entry(name, self.max_bytes) {
            Ok(Some(found)) => found,
            Ok(None) => {
                tracing::info!("module cache miss for {module_name}: compiling it");
                return None;
            }
            Err(why) => {
                self.warn(
                    Warning::Entry,
                    &format!("{why}: it is compiled again and replaced"),
                );
                return None;
            }
        };
        let loaded = match load_sealed(engine, &file, len, key, hashes) {
            Some(loaded) => loaded,
            None => load_in_memory(engine, dir, name, &file, len, key, hashes),
        };
        match loaded {
            Ok(module) => {
                dir.touch(&file);
                tracing::info!(
                    "module cache hit for {module_name}: {} ({})",
                    dir.path_of(name).display(),
                    diag::size(len)
                );
                Some(module)
            }
            Err(Refused::Unreadable(why)) => {
                self.warn(
                    Warning::Entry,
                    &format!("{why}: it is compiled again and replaced"),
                );
                None
            }
            Err(Refused::Invalid(why)) => {
                self.refused(dir, name, &why);
                None
            }
        }
    }

    /// The checked directory and the key, or why the cache is not used.
    fn open(&self) -> Result<(CacheDir, Key), Problem> {
        let dir = CacheDir::open(&self.dir)?;
        tracing::debug!("module cache: {}", self.dir.display());
        let key = self.shared.key.get_or_init(|| match &self.key_file {
            Some(path) => key::load_or_create(path),
            None => Err(
                "there is no place for the module cache key (set HOME or XDG_CONFIG_HOME)".into(),
            ),
        });
        match key {
            Ok(key) => Ok((dir, *key)),
            Err(why) => Err(Problem::Untrusted(why.clone())),
        }
    }

    fn refused(&self, dir: &CacheDir, name: &str, why: &str) {
        self.warn(
            Warning::Entry,
            &format!(
                "the module cache entry {} {why}: it is compiled again and replaced",
                dir.path_of(name).display()
            ),
        );
    }

    fn warn(&self, which: Warning, message: &str) {
        let bit = which as u8;
        if self.shared.warned.fetch_or(bit, Ordering::AcqRel) & bit == 0 {
            diag::warning(message);
        }
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Why an entry was not loaded.
enum Refused {
    /// It could not be read (a sentence naming it).
    Unreadable(String),
    /// It is not a good entry (what is wrong with it).
    Invalid(String),
}

/// Loads the entry from a sealed copy of its payload (see [`sealed`]), or
/// `None` where this machine cannot run code from a memfd.
fn load_sealed(
    engine: &Engine,
    file: &std::fs::File,
    len: u64,
    key: &Key,
    hashes: [&[u8]; 2],
) -> Option<Result<Module, Refused>> {
    use std::os::unix::fs::FileExt;
    if len < HEADER as u64 {
        return Some(Err(Refused::Invalid("is too short to be an entry".into())));
    }
    let mut header = [0u8; HEADER];
    if let Err(e) = file.read_exact_at(&mut header, 0) {
        return Some(Err(Refused::Unreadable(format!(
            "cannot read a module cache entry: {e}"
        ))));
    }
    if !header.starts_with(MAGIC) {
        return Some(Err(Refused::Invalid(NOT_OUR_FORMAT.into())));
    }
    let (memfd, digest) = sealed::copy(file, HEADER as u64, len - HEADER as u64).ok()?;
    if let Err(why) = authenticate(&header, &digest, key, hashes) {
        return Some(Err(Refused::Invalid(why.into())));
    }
    // SAFETY: the memfd holds what `store` below serialized for this module
    // and engine: its MAC under the user's key, kept outside the cache,
    // checked over the digest of exactly the bytes the memfd holds, which
    // was sealed against every change (see "Trust"). Where the memfd cannot
    // be mapped executable, the entry is loaded from memory instead.
    unsafe { Module::deserialize_open_file(engine, memfd) }
        .ok()
        .map(Ok)
}

/// Loads the entry from its bytes read into memory.
fn load_in_memory(
    engine: &Engine,
    dir: &CacheDir,
    name: &str,
    file: &std::fs::File,
    len: u64,
    key: &Key,
    hashes: [&[u8]; 2],
) -> Result<Module, Refused> {
    let entry = dir.read(name, file, len).map_err(Refused::Unreadable)?;
    let payload = verify(&entry, key, hashes).map_err(|why| Refused::Invalid(why.into()))?;
    // SAFETY: `payload` is what `store` below serialized for this module and
    // engine: its MAC under the user's key, kept outside the cache, checked
    // over these very bytes (see "Trust").
    unsafe { Module::deserialize(engine, payload) }
        .map_err(|e| Refused::Invalid(format!("does not load ({e})")))
}

/// The serialized module of `entry` if it authenticates, or why not.
fn verify<'a>(entry: &'a [u8], key: &Key, hashes: [&[u8]; 2]) -> Result<&'a [u8], &'static str> {
    if entry.len() < HEADER {
        return Err("is too short to be an entry");
    }
    let (header, payload) = entry.split_at(HEADER);
    authenticate(header, &mac::payload_digest(payload), key, hashes)?;
    Ok(payload)
}

/// Why an entry of another format is refused.
const NOT_OUR_FORMAT: &str = "is not in the cache's format";

/// Whether `header` (magic and MAC) authenticates a payload with digest
/// `payload_digest` ([`mac::payload_digest`]), or why not.
fn authenticate(
    header: &[u8],
    payload_digest: &[u8; 32],
    key: &Key,
    hashes: [&[u8]; 2],
) -> Result<(), &'static str> {
    let (magic, tag) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return Err(NOT_OUR_FORMAT);
    }
    let expected = mac::mac(key, &[MAGIC, hashes[0], hashes[1], payload_digest]);
    if !mac::same(&expected, tag) {
        return Err("does not authenticate with this user's cache key (it was modified, or written with another key)");
    }
    Ok(())
}

/// Compiles `bytes` (the module `name`) without the cache.
pub(crate) fn compile(engine: &Engine, name: &str, bytes: &[u8]) -> Result<Module> {
    let compiling = diag::compiling(name, bytes.len());
    let module = Module::new(engine, bytes)?;
    compiling.finish(Compiled::NotCached);
    Ok(module)
}

/// Serializes `module` into its entry, with its MAC, and says which
/// module it is next to it (see [`manage`]); the entry's size.
fn store(
    dir: &CacheDir,
    key: &Key,
    hashes: [&[u8]; 2],
    module: &Module,
    name: &str,
) -> Result<u64> {
    let payload = module.serialize()?;
    let digest = mac::payload_digest(&payload);
    let tag = mac::mac(key, &[MAGIC, hashes[0], hashes[1], &digest]);
    let entry = entry_name(hashes);
    dir.write(&entry, &[MAGIC, &tag, &payload])?;
    manage::describe(dir, &entry, name);
    Ok((HEADER + payload.len()) as u64)
}

/// A digest of the engine's compatibility hash (wasmtime version and
/// compilation settings): entries of another engine are other entries.
fn engine_hash(engine: &Engine) -> [u8; 32] {
    /// Feeds what a `Hash` implementation writes into BLAKE3.
    struct Digest(blake3::Hasher);
    impl Hasher for Digest {
        fn finish(&self) -> u64 {
            // Unused: the digest is taken from the inner hasher.
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut digest = Digest(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut digest);
    digest.0.finalize().into()
}

/// The file name of the entry for a module and engine (`hashes`: the
/// engine's, the module's).
fn entry_name(hashes: [&[u8]; 2]) -> String {
    let name = mac::digest(
        &[
            &b"procbridge module cache entry"[..],
            MAGIC,
            hashes[0],
            hashes[1],
        ]
        .concat(),
    );
    let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}{}", dir::ENTRY_SUFFIX)
}

/// Why [`ModuleCache::load_file`] failed.
#[derive(Debug)]
pub(crate) enum FileLoadError {
    /// The file could not be read.
    Read(std::io::Error),
    /// It is not a valid module (why).
    Invalid(String),
}

fn invalid(e: impl Into<anyhow::Error>) -> FileLoadError {
    FileLoadError::Invalid(format!("{:#}", e.into()))
}

/// Reads `file` whole, from where it is (its start, when just opened);
/// `size` is what it is expected to hold.
fn read_whole(file: &File, size: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut reader = file;
    reader.read_to_end(&mut contents)?;
    Ok(contents)
}

/// `path` made absolute and canonical as far as it exists (symbolic links
/// resolved), with the part that does not exist yet appended as written
/// (`.` and `..` resolved by name, which is right where nothing exists).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::from("/");
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(canonical) = out.canonicalize() {
                    out = canonical;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_through_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
        assert_eq!(resolved(&real.join("link/a/b")), real.join("a/b"));
        assert_eq!(resolved(&real.join("a/../b")), real.join("b"));
    }

    #[test]
    fn an_entry_authenticates_only_under_its_own_key_and_hashes() {
        let key = [7u8; 32];
        let (engine, module) = ([1u8; 32], [2u8; 32]);
        let payload = b"compiled code";
        let tag = mac::mac(
            &key,
            &[MAGIC, &engine, &module, &mac::payload_digest(payload)],
        );
        let entry = [&MAGIC[..], &tag, payload].concat();
        assert_eq!(verify(&entry, &key, [&engine, &module]), Ok(&payload[..]));
        assert!(verify(&entry, &[8u8; 32], [&engine, &module]).is_err());
        assert!(verify(&entry, &key, [&engine, &[3u8; 32]]).is_err());
        assert!(verify(&entry, &key, [&[3u8; 32], &module]).is_err());
        assert!(verify(&entry[..HEADER - 1], &key, [&engine, &module]).is_err());
        let mut edited = entry.clone();
        *edited.last_mut().unwrap() ^= 1;
        assert!(verify(&edited, &key, [&engine, &module]).is_err());
    }
}
