//! A Python job as a cluster's workers get it: not the interpreter (each
//! worker runs its own, installed by `guests/install-python`) but what
//! they need to run the job's pool tasks: which interpreter and library
//! the job runs, and its main script, imported on the worker as
//! `__mp_main__` (as Python's spawn start method does) so that functions
//! pickled by reference from `__main__` are found.
//!
//! It travels in the object store in place of a module (see
//! [`crate::cluster`]): [`MAGIC`], then the ABI's list encoding
//! ([`procbridge_abi::list`]) of the interpreter's SHA-256, the library's
//! version, the source as `procbridge._main` takes it (mode, argv0, file,
//! payload), then the job's arguments (`sys.argv[1:]`).
//!
//! ```
//! use procbridge::python::{Bundle, Source};
//!
//! let bundle = Bundle::new("ab".repeat(32), Source::Code("print(1)".into()), vec![]);
//! let bytes = bundle.to_bytes();
//! assert!(Bundle::is_bundle(&bytes));
//! assert_eq!(Bundle::parse(&bytes)?, bundle);
//! # Ok::<(), anyhow::Error>(())
//! ```

use super::{library, Source};
use anyhow::{anyhow, bail, Context};

/// How many fields every bundle has, before the job's arguments.
const FIXED: usize = 6;
/// The most arguments a bundle may carry.
const MAX_ARGS: usize = 1 << 16;

/// How a bundle starts (a module starts `\0asm`).
pub const MAGIC: &[u8] = b"\0procbridge-python 1\n";

/// A Python job for the cluster's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The SHA-256 (hex) of the interpreter's `.wasm` the job runs.
    pub interpreter: String,
    /// The version of procbridge's Python library the job runs.
    pub library: String,
    /// What the job runs: its `__main__`.
    pub source: Source,
    /// Its arguments (`sys.argv[1:]`).
    pub args: Vec<String>,
}

impl Bundle {
    /// A bundle of `source` with `args` for the interpreter whose SHA-256
    /// is `interpreter`, with this build's library.
    pub fn new(interpreter: String, source: Source, args: Vec<String>) -> Bundle {
        Bundle {
            interpreter,
            library: library::version(),
            source,
            args,
        }
    }

    /// Whether `bytes` is a bundle (and not a module).
    pub fn is_bundle(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// Its bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (mode, argv0, file, payload) = self.source.main_args();
        let fields: [&[u8]; FIXED] = [
            self.interpreter.as_bytes(),
            self.library.as_bytes(),
            mode.as_bytes(),
            argv0.as_bytes(),
            file.as_bytes(),
            &payload,
        ];
        let mut out = MAGIC.to_vec();
        for field in fields
            .into_iter()
            .chain(self.args.iter().map(String::as_bytes))
        {
            procbridge_abi::list::push(&mut out, field);
        }
        out
    }

    /// Reads one.
    ///
    /// # Errors
    /// When `bytes` is not a well-formed bundle.
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Bundle> {
        let Some(list) = bytes.strip_prefix(MAGIC) else {
            bail!("not a Python job");
        };
        let fields = procbridge_abi::list::decode_max(list, FIXED + MAX_ARGS)
            .map_err(|e| anyhow!("a malformed Python job: {e:?}"))?;
        let text = |i: usize| -> anyhow::Result<String> {
            String::from_utf8(fields[i].to_vec()).context("a malformed Python job")
        };
        if fields.len() < FIXED {
            bail!(
                "a malformed Python job: {} fields, not {FIXED}",
                fields.len()
            );
        }
        let (mode, argv0, file) = (text(2)?, text(3)?, text(4)?);
        let source = match mode.as_str() {
            "script" => Source::Script {
                name: argv0,
                file,
                source: fields[5].to_vec(),
            },
            "code" => Source::Code(text(5)?),
            "module" => Source::Module(argv0),
            other => bail!("a malformed Python job: mode {other:?}"),
        };
        let args = (FIXED..fields.len())
            .map(text)
            .collect::<anyhow::Result<_>>()?;
        Ok(Bundle {
            interpreter: text(0)?,
            library: text(1)?,
            source,
            args,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_survives_the_trip() {
        for source in [
            Source::Script {
                name: "job.py".into(),
                file: "/jobs/job.py".into(),
                source: b"print('hi')\n".to_vec(),
            },
            Source::Code("import os".into()),
            Source::Module("json.tool".into()),
        ] {
            let bundle = Bundle::new("cd".repeat(32), source, vec!["a".into(), "".into()]);
            assert_eq!(Bundle::parse(&bundle.to_bytes()).unwrap(), bundle);
        }
    }

    #[test]
    fn modules_and_junk_are_not_bundles() {
        assert!(!Bundle::is_bundle(b"\0asm\x01\0\0\0"));
        assert!(Bundle::parse(b"\0asm\x01\0\0\0").is_err());
        let mut cut = Bundle::new("x".into(), Source::Code("1".into()), vec![]).to_bytes();
        cut.truncate(cut.len() - 1);
        assert!(Bundle::parse(&cut).is_err());
        let mut bad_mode = MAGIC.to_vec();
        let fields: [&[u8]; 6] = [b"i", b"l", b"exec", b"a", b"f", b"p"];
        bad_mode.extend_from_slice(&procbridge_abi::list::encode(&fields));
        assert!(Bundle::parse(&bad_mode).is_err());
    }
}
