//! The compiled-module cache: a second run of the same module does not
//! compile it again.
//!
//! Entries are wasmtime's serialized modules, keyed by the SHA-256 of the
//! module's bytes and of the engine's compatibility hash (wasmtime version
//! and compilation settings). They are written atomically (temporary file and
//! rename) into a directory only the current user can read.
//!
//! # Trust
//! Loading an entry runs the native code in it, so the cache directory must
//! be as trusted as the `procbridge` binary itself; it is created with mode
//! `0700`. An entry that fails to load is compiled again and replaced.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::{Engine, Module};

/// A directory of compiled modules.
#[derive(Clone, Debug)]
pub struct ModuleCache {
    dir: PathBuf,
}

/// Where a loaded module came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and stored in the cache, if there is one).
    Compiled,
    /// Loaded from the cache without compiling.
    Cached,
}

impl ModuleCache {
    /// A cache in `dir`, created on first store.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModuleCache { dir: dir.into() }
    }

    /// The default location: `$PROCBRIDGE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/procbridge`, else `$HOME/.cache/procbridge`.
    ///
    /// # Ambient authority
    /// Reads the process environment.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("PROCBRIDGE_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("procbridge")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("procbridge")))
    }

    /// The directory entries are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut digest = Sha256::new();
        digest.update(engine_hash.finish().to_le_bytes());
        digest.update(bytes);
        let hex: String = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("{hex}.cwasm"))
    }

    /// Loads the compiled form of `bytes`, compiling and storing it when it is
    /// not cached yet. Cache write failures are not errors: the module is
    /// still returned.
    ///
    /// # Errors
    /// When `bytes` is not a valid module.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Module, Origin)> {
        let path = self.entry_path(engine, bytes);
        if path.is_file() {
            // SAFETY: entries are only written by `store` below, into a
            // directory private to this user; see "Trust" above.
            if let Ok(module) = unsafe { Module::deserialize_file(engine, &path) } {
                return Ok((module, Origin::Cached));
            }
        }
        let module = Module::new(engine, bytes).map_err(anyhow::Error::from)?;
        let _ = self.store(&module, &path);
        Ok((module, Origin::Compiled))
    }

    fn store(&self, module: &Module, path: &Path) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let bytes = module.serialize().map_err(anyhow::Error::from)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(())
    }
}
