//! What the kernel must be allowed to execute for a granted program to run:
//! the program itself, the ELF interpreter it names (`PT_INTERP`, the
//! dynamic loader), and for a script the interpreter on its `#!` line (and
//! that interpreter's loader).
//!
//! The execute right of a confined command covers exactly these files, so
//! an exec wrapper (`env id`, `find -exec`) cannot start anything else.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Scripts naming scripts: how deep `#!` lines are followed (the kernel
/// itself stops at 4).
const MAX_DEPTH: usize = 4;
/// The longest `#!` line or interpreter path read.
const MAX_LINE: usize = 256;

const PT_INTERP: u32 = 3;

/// The canonical paths of every file executing `program` needs, the
/// program's own first.
///
/// # Errors
/// When `program` (or an interpreter it names) cannot be read.
pub fn files_to_execute(program: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    add(program, 0, &mut files)?;
    Ok(files)
}

fn add(path: &Path, depth: usize, files: &mut Vec<PathBuf>) -> io::Result<()> {
    let real = std::fs::canonicalize(path)?;
    if files.contains(&real) {
        return Ok(());
    }
    // Canonical: no link left; still never follow one, never block on a
    // FIFO, and take regular files only.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", real.display()),
        ));
    }
    files.push(real.clone());
    let mut head = [0u8; MAX_LINE];
    let n = read_up_to(&mut file, &mut head)?;
    let head = &head[..n];
    if let Some(line) = head.strip_prefix(b"#!") {
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        if let Some(interpreter) = shebang_interpreter(line) {
            add(Path::new(&interpreter), depth + 1, files)?;
        }
    } else if let Some(interpreter) = elf_interpreter(&mut file, head)? {
        add(Path::new(&interpreter), depth + 1, files)?;
    }
    Ok(())
}

/// The interpreter of a `#!` line (without the `#!`).
fn shebang_interpreter(line: &[u8]) -> Option<String> {
    let line = line.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let path = line.split_whitespace().next()?;
    path.starts_with('/').then(|| path.to_string())
}

/// The `PT_INTERP` path of an ELF file, if it has one.
fn elf_interpreter(file: &mut File, head: &[u8]) -> io::Result<Option<String>> {
    if head.len() < 0x40 || &head[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        _ => return Ok(None),
    };
    let little = match head[5] {
        1 => true,
        2 => false,
        _ => return Ok(None),
    };
    let int = |bytes: &[u8]| -> u64 {
        let mut value = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            let shift = if little { i } else { bytes.len() - 1 - i };
            value |= u64::from(b) << (8 * shift);
        }
        value
    };
    let (phoff, phentsize, phnum) = if wide {
        (
            int(&head[0x20..0x28]),
            int(&head[0x36..0x38]),
            int(&head[0x38..0x3a]),
        )
    } else {
        (
            int(&head[0x1c..0x20]),
            int(&head[0x2a..0x2c]),
            int(&head[0x2c..0x2e]),
        )
    };
    if phentsize == 0 || phentsize > 256 || phnum > 4096 {
        return Ok(None);
    }
    let mut table = vec![0u8; (phentsize * phnum) as usize];
    file.seek(SeekFrom::Start(phoff))?;
    file.read_exact(&mut table)?;
    for entry in table.chunks_exact(phentsize as usize) {
        if int(&entry[..4]) as u32 != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (int(&entry[8..16]), int(&entry[0x20..0x28]))
        } else {
            (int(&entry[4..8]), int(&entry[16..20]))
        };
        if size == 0 || size as usize > MAX_LINE {
            return Ok(None);
        }
        let mut path = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut path)?;
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        return Ok(std::str::from_utf8(&path[..end]).ok().map(str::to_string));
    }
    Ok(None)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_program_needs_its_loader() {
        let files = files_to_execute(Path::new("/bin/true")).unwrap();
        assert_eq!(files[0], std::fs::canonicalize("/bin/true").unwrap());
        assert_eq!(files.len(), 2, "{files:?}");
        let loader = files[1].file_name().unwrap().to_string_lossy().into_owned();
        assert!(loader.starts_with("ld-"), "{files:?}");
    }

    #[test]
    fn a_script_needs_its_interpreter_and_the_interpreters_loader() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sh");
        std::fs::write(&script, "#!/bin/sh -e\necho hi\n").unwrap();
        let files = files_to_execute(&script).unwrap();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files[1], std::fs::canonicalize("/bin/sh").unwrap());
        // A script naming itself does not loop.
        std::fs::write(&script, format!("#!{}\n", script.display())).unwrap();
        assert_eq!(files_to_execute(&script).unwrap().len(), 1);
    }

    #[test]
    fn fifos_and_devices_are_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let script = dir.path().join("job.sh");
        std::fs::write(&script, format!("#!{}\n", fifo.display())).unwrap();
        let err = files_to_execute(&script).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(files_to_execute(Path::new("/dev/null")).is_err());
    }

    #[test]
    fn files_that_are_neither_need_only_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"\x7fELF\x02\x01garbage").unwrap();
        assert_eq!(files_to_execute(&data).unwrap().len(), 1);
        assert!(files_to_execute(&dir.path().join("missing")).is_err());
    }
}
