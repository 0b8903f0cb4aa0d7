//! The Python modules procbridge ships (in `host/python/`), built into the
//! binary and written once to a directory named by their hash, which Python
//! guests see read-only at [`super::LIBRARY_GUEST_PATH`].

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Every file of the library: its path below the library and its content.
pub(crate) const FILES: &[(&str, &str)] = &[
    (
        "sitecustomize.py",
        include_str!("../../python/sitecustomize.py"),
    ),
    (
        "procbridge/__init__.py",
        include_str!("../../python/procbridge/__init__.py"),
    ),
    (
        "procbridge/_door.py",
        include_str!("../../python/procbridge/_door.py"),
    ),
    (
        "procbridge/_os.py",
        include_str!("../../python/procbridge/_os.py"),
    ),
    (
        "procbridge/_main.py",
        include_str!("../../python/procbridge/_main.py"),
    ),
    (
        "procbridge/_serve.py",
        include_str!("../../python/procbridge/_serve.py"),
    ),
    (
        "procbridge/_locks.py",
        include_str!("../../python/procbridge/_locks.py"),
    ),
    ("subprocess.py", include_str!("../../python/subprocess.py")),
    (
        "multiprocessing/__init__.py",
        include_str!("../../python/multiprocessing/__init__.py"),
    ),
    (
        "multiprocessing/process.py",
        include_str!("../../python/multiprocessing/process.py"),
    ),
    (
        "multiprocessing/queues.py",
        include_str!("../../python/multiprocessing/queues.py"),
    ),
    (
        "multiprocessing/connection.py",
        include_str!("../../python/multiprocessing/connection.py"),
    ),
    (
        "multiprocessing/pool.py",
        include_str!("../../python/multiprocessing/pool.py"),
    ),
    (
        "multiprocessing/synchronize.py",
        include_str!("../../python/multiprocessing/synchronize.py"),
    ),
    (
        "multiprocessing/_pump.py",
        include_str!("../../python/multiprocessing/_pump.py"),
    ),
];

/// Writes the library below `python` (once per content) and opens it:
/// its path and the open directory.
///
/// # Errors
/// When it cannot be written or opened.
pub(crate) fn install(python: &Path) -> std::io::Result<(PathBuf, cap_std::fs::Dir)> {
    let dir = python.join(format!("lib-{}", version()));
    if !complete(&dir) {
        write(python, &dir)?;
    }
    let open = cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority())?;
    Ok((dir, open))
}

/// The library's version: a digest of its files (16 hex digits).
pub(crate) fn version() -> String {
    let mut digest = Sha256::new();
    for (name, content) in FILES {
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(content.as_bytes());
        digest.update([0]);
    }
    digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `dir` holds every file with its content.
fn complete(dir: &Path) -> bool {
    FILES.iter().all(|(name, content)| {
        std::fs::read(dir.join(name)).is_ok_and(|found| found == content.as_bytes())
    })
}

/// Writes the files into a fresh directory next to `dir`, then moves it
/// into place (so no process ever sees half a library).
fn write(python: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(python)?;
    let staging = python.join(format!(".lib-staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    for (name, content) in FILES {
        let path = staging.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
    }
    if std::fs::rename(&staging, dir).is_ok() {
        return Ok(());
    }
    // Another process put the same library in place first: it may be
    // running from it, so it stays.
    if complete(dir) {
        let _ = std::fs::remove_dir_all(&staging);
        return Ok(());
    }
    // A damaged library: moved aside, ours put in its place.
    let aside = python.join(format!(".lib-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(dir, &aside)?;
    let placed = std::fs::rename(&staging, dir);
    let _ = std::fs::remove_dir_all(&aside);
    match placed {
        Err(_) if complete(dir) => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_written_once_and_repaired() {
        let python = tempfile::tempdir().unwrap();
        install(python.path()).unwrap();
        let dirs: Vec<_> = std::fs::read_dir(python.path())
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        let lib = dirs[0].path();
        assert!(complete(&lib));
        // A changed file is put back.
        std::fs::write(lib.join("subprocess.py"), "raise SystemExit(3)").unwrap();
        install(python.path()).unwrap();
        assert!(complete(&lib));
    }

    #[test]
    fn a_second_install_never_pulls_the_library_from_under_a_running_job() {
        // Two first runs at once: the one that finds the library missing
        // writes it while the other already runs from it.
        let python = tempfile::tempdir().unwrap();
        let (dir, running) = install(python.path()).unwrap();
        write(python.path(), &dir).unwrap();
        for (name, content) in FILES {
            let found = running.read_to_string(name).unwrap();
            assert_eq!(found, *content, "{name}");
        }
        let left: Vec<_> = std::fs::read_dir(python.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "staging left behind: {left:?}");
    }
}
