//! Issue 12: the module cache is trusted only when it deserves it. An entry
//! is native code; a job that could write the cache must not be able to
//! make a later run execute code of its choosing.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch directory with the two modules, a cache directory and a
/// configuration directory (where the cache key lives).
struct Scratch {
    tmp: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        // The trusted module, and the attacker's.
        std::fs::write(tmp.path().join("seven.wat"), exits_with(7)).unwrap();
        std::fs::write(tmp.path().join("planted.wat"), exits_with(42)).unwrap();
        Scratch { tmp }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `procbridge run --cache-dir CACHE [ARGS] MODULE` with its key under
    /// this scratch directory.
    fn run(&self, cache: &Path, args: &[&str], module: &str) -> Output {
        procbridge()
            .env("XDG_CONFIG_HOME", self.path("config"))
            .args(["run", "--cache-dir"])
            .arg(cache)
            .args(args)
            .arg(self.path(module))
            .output()
            .unwrap()
    }
}

/// The entries (compiled modules) in `dir`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".pbcache")
}

/// The records of module identities in `dir`.
fn records(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".pbknown")
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(list) => list
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Replaces `path` with `bytes` (a new file, as an attacker would write it).
fn plant(path: &Path, bytes: &[u8]) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn warnings(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("procbridge: warning: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_replaced_cache_entry_is_compiled_again_never_run() {
    let s = Scratch::new();
    let cache = s.path("cache");
    let out = s.run(&cache, &[], "seven.wat");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let [entry] = &entries(&cache)[..] else {
        panic!("{:?}", entries(&cache))
    };
    let genuine = std::fs::read(entry).unwrap();

    // The attacker's own module, compiled for this very engine.
    let runtime = procbridge::Runtime::with_cache(None).unwrap();
    let compiled = runtime
        .load_bytes("planted.wat", exits_with(42).as_bytes())
        .unwrap()
        .module()
        .serialize()
        .unwrap();
    // The attacker's module as the cache itself stored it (a valid entry,
    // under another name).
    let other = s.path("other-cache");
    assert_eq!(s.run(&other, &[], "planted.wat").status.code(), Some(42));
    let [other_entry] = &entries(&other)[..] else {
        panic!("{:?}", entries(&other))
    };
    let renamed = std::fs::read(other_entry).unwrap();
    let mut edited = genuine.clone();
    let last = edited.len() - 1;
    edited[last] ^= 1;

    for (what, bytes) in [
        ("another compiled module", &compiled[..]),
        ("another module's entry", &renamed[..]),
        ("garbage", &b"garbage"[..]),
        ("a truncated entry", &genuine[..genuine.len() / 2]),
        ("an edited entry", &edited[..]),
        ("an empty file", &b""[..]),
    ] {
        plant(entry, bytes);
        let out = s.run(&cache, &[], "seven.wat");
        assert_eq!(out.status.code(), Some(7), "{what}: {}", stderr(&out));
        assert_eq!(warnings(&out).len(), 1, "{what}: {}", stderr(&out));
        // The entry was replaced by a good one, used by the next run.
        assert_ne!(std::fs::read(entry).unwrap(), bytes, "{what}");
        let out = s.run(&cache, &[], "seven.wat");
        assert_eq!(out.status.code(), Some(7), "{what}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{what}");
    }
}

#[test]
fn a_cache_inside_or_around_a_granted_directory_is_not_used() {
    let s = Scratch::new();
    let granted = s.path("granted");
    std::fs::create_dir(&granted).unwrap();
    let granted_str = granted.to_str().unwrap();
    let inner = s.path("outer/work");
    std::fs::create_dir_all(&inner).unwrap();
    // The cache inside a read-write grant, a grant inside the cache, and a
    // read-only grant above both.
    for (cache, args) in [
        (granted.join("cache"), ["--dir", granted_str]),
        (s.path("outer"), ["--dir", inner.to_str().unwrap()]),
        (
            granted.join("cache"),
            ["--dir-ro", s.tmp.path().to_str().unwrap()],
        ),
    ] {
        let out = s.run(&cache, &args, "seven.wat");
        assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
        let warned = warnings(&out);
        assert_eq!(warned.len(), 1, "{args:?}: {}", stderr(&out));
        assert!(warned[0].contains("granted"), "{}", warned[0]);
        assert!(
            entries(&cache).is_empty(),
            "{args:?}: {:?}",
            entries(&cache)
        );
    }

    // A cache that already holds the entry is not read either: its time of
    // last use does not move.
    let cache = granted.join("cache");
    assert_eq!(s.run(&cache, &[], "seven.wat").status.code(), Some(7));
    let [entry] = &entries(&cache)[..] else {
        panic!("{:?}", entries(&cache))
    };
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .append(true)
        .open(entry)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = s.run(&cache, &["--dir", granted_str], "seven.wat");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(warnings(&out).len(), 1, "{}", stderr(&out));
    assert_eq!(std::fs::metadata(entry).unwrap().modified().unwrap(), old);

    // The key is secret: a grant that would let the job read it turns the
    // cache off too.
    let config = s.path("config");
    let out = s.run(
        &s.path("cache3"),
        &["--dir-ro", config.to_str().unwrap()],
        "seven.wat",
    );
    assert_eq!(out.status.code(), Some(7));
    let warned = warnings(&out);
    assert_eq!(warned.len(), 1, "{}", stderr(&out));
    assert!(warned[0].contains("key"), "{}", warned[0]);
    assert!(entries(&s.path("cache3")).is_empty());
}

#[test]
fn a_cache_others_can_write_is_not_used() {
    let s = Scratch::new();
    let cache = s.path("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o770)).unwrap();
    let out = s.run(&cache, &[], "seven.wat");
    assert_eq!(out.status.code(), Some(7));
    let warned = warnings(&out);
    assert_eq!(warned.len(), 1, "{}", stderr(&out));
    assert!(
        warned[0].contains("writable by group or others"),
        "{}",
        warned[0]
    );
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));

    // A good directory, with an entry others may write: not loaded.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(s.run(&cache, &[], "seven.wat").status.code(), Some(7));
    let [entry] = &entries(&cache)[..] else {
        panic!("{:?}", entries(&cache))
    };
    let runtime = procbridge::Runtime::with_cache(None).unwrap();
    let planted = runtime
        .load_bytes("planted.wat", exits_with(42).as_bytes())
        .unwrap()
        .module()
        .serialize()
        .unwrap();
    plant(entry, &planted);
    std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = s.run(&cache, &[], "seven.wat");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let warned = warnings(&out);
    assert_eq!(warned.len(), 1, "{}", stderr(&out));
    assert!(
        warned[0].contains("writable by group or others"),
        "{}",
        warned[0]
    );

    // An entry owned by someone else (only root can make one).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        plant(entry, &planted);
        std::os::unix::fs::chown(entry, Some(65534), Some(65534)).unwrap();
        let out = s.run(&cache, &[], "seven.wat");
        assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
        let warned = warnings(&out);
        assert_eq!(warned.len(), 1, "{}", stderr(&out));
        assert!(warned[0].contains("owned by"), "{}", warned[0]);
    }
}

#[test]
fn a_cache_that_cannot_be_written_is_one_warning() {
    let s = Scratch::new();
    std::fs::write(s.path("file"), b"").unwrap();
    let cache = s.path("file/cache");
    let out = s.run(&cache, &[], "seven.wat");
    assert_eq!(out.status.code(), Some(7));
    let warned = warnings(&out);
    assert_eq!(warned.len(), 1, "{}", stderr(&out));
    assert!(warned[0].contains("cannot"), "{}", warned[0]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let cache = s.path("readonly");
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o500)).unwrap();
        let out = s.run(&cache, &[], "seven.wat");
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(warnings(&out).len(), 1, "{}", stderr(&out));
    }
}

/// A module that exits with `n`.
fn exits_with(n: i32) -> String {
    format!(
        r#"(module
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call $exit (i32.const {n}))))"#
    )
}

#[test]
fn eviction_removes_the_least_recently_used_entries() {
    use procbridge::{Origin, Runtime};
    let tmp = tempfile::tempdir().unwrap();
    let load = |rt: &Runtime, n: i32| {
        rt.load_bytes("m.wat", exits_with(n).as_bytes())
            .unwrap()
            .origin()
    };
    // The size of one entry (the three modules differ by one constant).
    let probe = tmp.path().join("probe");
    load(&Runtime::with_cache(Some(test_cache(&probe))).unwrap(), 1);
    let size = std::fs::metadata(&entries(&probe)[0]).unwrap().len();

    let cache = tmp.path().join("cache");
    let capped = test_cache(&cache).max_bytes(size * 5 / 2);
    let rt = Runtime::with_cache(Some(capped)).unwrap();
    assert_eq!(load(&rt, 1), Origin::Compiled);
    assert_eq!(load(&rt, 2), Origin::Compiled);
    // 1 is used again: 2 is now the least recently used.
    assert_eq!(load(&rt, 1), Origin::Cached);
    assert_eq!(load(&rt, 3), Origin::Compiled);
    assert_eq!(entries(&cache).len(), 2);
    assert_eq!(load(&rt, 1), Origin::Cached);
    assert_eq!(load(&rt, 3), Origin::Cached);
    assert_eq!(load(&rt, 2), Origin::Compiled);

    // The cap from the command line, in MiB: 0 keeps nothing at all.
    let module = tmp.path().join("nine.wat");
    std::fs::write(&module, exits_with(9)).unwrap();
    let out = procbridge()
        .args(["run", "--cache-max-mb", "0", "--cache-dir"])
        .arg(&cache)
        .arg(&module)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
}

#[test]
fn a_cached_module_runs_from_a_sealed_copy_not_from_the_entry() {
    // A cache hit maps a sealed memfd holding the authenticated module:
    // the entry on disk can change afterwards without changing what runs,
    // and the code is file-backed (a fork copies no page tables for it).
    let s = Scratch::new();
    let cache = procbridge::ModuleCache::new(s.path("cache"))
        .key_file(s.path("config/procbridge/cache.key"));
    let runtime = procbridge::Runtime::with_cache(Some(cache)).unwrap();
    let first = runtime.load_file(s.path("seven.wat")).unwrap();
    assert_eq!(first.origin(), procbridge::Origin::Compiled);
    let memfds = || {
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|line| line.contains("memfd:procbridge-module"))
            .count()
    };
    let before = memfds();
    let cached = runtime.load_file(s.path("seven.wat")).unwrap();
    assert_eq!(cached.origin(), procbridge::Origin::Cached);
    assert!(
        memfds() > before,
        "the cached module is not mapped from a memfd"
    );
    // Overwriting the entry now does not reach the loaded module.
    let [entry] = &entries(&s.path("cache"))[..] else {
        panic!("{:?}", entries(&s.path("cache")))
    };
    std::fs::write(
        entry,
        vec![0u8; std::fs::metadata(entry).unwrap().len() as usize],
    )
    .unwrap();
    let guest = procbridge::GuestBuilder::new().build().unwrap();
    assert_eq!(runtime.run(&cached, guest).unwrap(), 7);
}

/// A runtime with its own cache and key under `s`.
fn cached_runtime(s: &Scratch) -> procbridge::Runtime {
    let cache = procbridge::ModuleCache::new(s.path("cache"))
        .key_file(s.path("config/procbridge/cache.key"));
    procbridge::Runtime::with_cache(Some(cache)).unwrap()
}

fn exit_code(runtime: &procbridge::Runtime, program: &procbridge::Program) -> i32 {
    let guest = procbridge::GuestBuilder::new().build().unwrap();
    runtime.run(program, guest).unwrap()
}

/// Waits until files written now count as settled (their change time is
/// old enough for the cache to remember them by identity).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2100));
}

#[test]
fn a_module_seen_before_is_known_by_its_identity_and_a_changed_one_is_not() {
    // Issue 19: a cached load of an unchanged file takes its digest from an
    // authenticated record instead of reading and hashing the module. A
    // module changed in place — same size, its modification time put back —
    // is never run from the old module's entry.
    let s = Scratch::new();
    let runtime = cached_runtime(&s);
    let seven = s.path("seven.wat");
    // Written just now: too fresh to be remembered by identity.
    let first = runtime.load_file(&seven).unwrap();
    assert_eq!(first.origin(), procbridge::Origin::Compiled);
    assert!(records(&s.path("cache")).is_empty());
    settle();
    let second = runtime.load_file(&seven).unwrap();
    assert_eq!(second.origin(), procbridge::Origin::Cached);
    assert_eq!(records(&s.path("cache")).len(), 1);
    let third = runtime.load_file(&seven).unwrap();
    assert_eq!(third.origin(), procbridge::Origin::Cached);
    assert_eq!(exit_code(&runtime, &third), 7);

    let modified = std::fs::metadata(&seven).unwrap().modified().unwrap();
    // Same length, same modification time: only the content differs.
    let nine = exits_with(9);
    assert_eq!(nine.len(), exits_with(7).len());
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&seven)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, nine.as_bytes(), 0).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    assert_eq!(
        std::fs::metadata(&seven).unwrap().modified().unwrap(),
        modified
    );
    let changed = runtime.load_file(&seven).unwrap();
    assert_eq!(changed.origin(), procbridge::Origin::Compiled);
    assert_eq!(exit_code(&runtime, &changed), 9);
}

#[test]
fn a_forged_or_replayed_identity_record_is_ignored() {
    // A job that could write the cache directory could try to point a
    // module's record at another module's entry; records authenticate
    // under the user's key and name the file they are about.
    let s = Scratch::new();
    let runtime = cached_runtime(&s);
    settle();
    let seven = s.path("seven.wat");
    let planted = s.path("planted.wat");
    assert_eq!(exit_code(&runtime, &runtime.load_file(&seven).unwrap()), 7);
    let [seven_record] = &records(&s.path("cache"))[..] else {
        panic!("{:?}", records(&s.path("cache")))
    };
    assert_eq!(
        exit_code(&runtime, &runtime.load_file(&planted).unwrap()),
        42
    );
    let planted_record = records(&s.path("cache"))
        .into_iter()
        .find(|r| r != seven_record)
        .unwrap();
    let genuine = std::fs::read(seven_record).unwrap();
    let mut edited = genuine.clone();
    let last = edited.len() - 1;
    edited[last] ^= 1;
    for (what, bytes) in [
        (
            "the planted module's record",
            std::fs::read(&planted_record).unwrap(),
        ),
        ("an edited record", edited),
        ("garbage", b"garbage".to_vec()),
        ("an empty file", Vec::new()),
    ] {
        plant(seven_record, &bytes);
        let program = runtime.load_file(&seven).unwrap();
        assert_eq!(exit_code(&runtime, &program), 7, "{what}");
    }
}

#[test]
fn a_known_module_whose_entry_was_replaced_is_compiled_again_never_run() {
    // The record leads to the entry; a planted entry is refused there as
    // anywhere, and the module is compiled once more and stored again.
    let s = Scratch::new();
    settle();
    let cache = s.path("cache");
    assert_eq!(s.run(&cache, &[], "seven.wat").status.code(), Some(7));
    assert_eq!(records(&cache).len(), 1);
    let [entry] = &entries(&cache)[..] else {
        panic!("{:?}", entries(&cache))
    };
    plant(entry, b"garbage");
    let out = s.run(&cache, &[], "seven.wat");
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(warnings(&out).len(), 1, "{}", stderr(&out));
    assert_ne!(std::fs::read(entry).unwrap(), b"garbage");
    let out = s.run(&cache, &[], "seven.wat");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stderr(&out), "");
}
