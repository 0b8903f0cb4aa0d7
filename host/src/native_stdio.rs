//! The host's own stdout and stderr, handed to a guest as a native program
//! holds them: a write whose reader has gone (`procbridge run job.wasm |
//! head -1`) ends the process with `SIGPIPE`, quietly, instead of failing
//! the write (the guest would see `EIO` and panic, or print a traceback).
//! The `procbridge` command asks for this
//! ([`GuestBuilder::native_sigpipe`](crate::GuestBuilder::native_sigpipe));
//! an embedder keeps its own process alive by default.

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Standard output or error, dying of `SIGPIPE` on a broken pipe.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NativeStdio {
    Stdout,
    Stderr,
}

impl NativeStdio {
    fn inner(self) -> Box<dyn OutputStream> {
        match self {
            NativeStdio::Stdout => std::io::stdout().p2_stream(),
            NativeStdio::Stderr => std::io::stderr().p2_stream(),
        }
    }
}

impl IsTerminal for NativeStdio {
    fn is_terminal(&self) -> bool {
        match self {
            NativeStdio::Stdout => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            NativeStdio::Stderr => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

impl StdoutStream for NativeStdio {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(Guarded(self.inner()))
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        match self {
            NativeStdio::Stdout => std::io::stdout().async_stream(),
            NativeStdio::Stderr => std::io::stderr().async_stream(),
        }
    }
}

/// An output stream whose broken pipe ends the process.
struct Guarded(Box<dyn OutputStream>);

impl Guarded {
    /// wasmtime-wasi reports a broken pipe on stdio as a closed stream.
    fn check<T>(result: Result<T, StreamError>) -> Result<T, StreamError> {
        let broken = match &result {
            Err(StreamError::Closed) => true,
            Err(StreamError::LastOperationFailed(err)) => err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe),
            _ => false,
        };
        if broken {
            die_of_sigpipe();
        }
        result
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Guarded {
    async fn ready(&mut self) {
        self.0.ready().await;
    }
}

impl OutputStream for Guarded {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        Guarded::check(self.0.write(bytes))
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Guarded::check(self.0.flush())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Guarded::check(self.0.check_write())
    }
}

/// Ends this process as the kernel ends a native one that writes to a pipe
/// without a reader: by `SIGPIPE` (the job's other processes die with it,
/// through their parent-death signal).
fn die_of_sigpipe() -> ! {
    // SAFETY: restoring a signal's default action and raising it; the
    // process ends here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(128 + libc::SIGPIPE)
}
