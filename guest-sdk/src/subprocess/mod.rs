//! Python's `subprocess`: run commands the host granted, as real OS
//! processes.
//!
//! | Python | here |
//! |---|---|
//! | `subprocess.call(args)` | [`call`] |
//! | `subprocess.run(args, capture_output=True, input=..., timeout=..., check=True)` | [`run_with`] and [`RunOptions`] |
//! | `check_call`, `check_output` | [`check_call`], [`check_output`] |
//! | `Popen(args, stdin=PIPE, ...)` | [`Popen::builder`] … [`PopenBuilder::spawn`] |
//! | `PIPE`, `DEVNULL`, `STDOUT` | [`PIPE`], [`DEVNULL`], [`STDOUT`] |
//! | `CalledProcessError`, `TimeoutExpired` | [`CalledProcessError`], [`TimeoutExpired`] in [`SubprocessError`] |
//!
//! A command runs only if the host granted it (`procbridge run --allow-run
//! sort ...`); anything else fails with a permission error naming it. The
//! child gets only the environment the guest was granted (or the one given),
//! and a working directory only inside a granted directory.
//!
//! ```no_run
//! use procbridge_sdk::subprocess::{self, Popen, PIPE};
//!
//! let code = subprocess::call(["ls", "-l"])?;
//! println!("Exit code: {}", code);
//!
//! let mut p = Popen::builder(["sort"]).stdin(PIPE).stdout(PIPE).stderr(PIPE).spawn()?;
//! let (output, _err) = p.communicate(Some(b"b\na\n"), None)?;
//! print!("{}", String::from_utf8_lossy(&output));
//! println!("Exit code: {:?}", p.returncode());
//! # Ok::<(), procbridge_sdk::subprocess::SubprocessError>(())
//! ```

mod error;
mod popen;
mod run;

pub use error::{CalledProcessError, SubprocessError, TimeoutExpired};
pub use popen::{Popen, PopenBuilder, Stdio, Stream, DEVNULL, PIPE, STDOUT};
pub use run::{call, check_call, check_output, run, run_with, CompletedProcess, RunOptions};

use crate::time::timeout_us;
