//! The whole tree's output, line by line: [`OutputSink`].
//!
//! A guest's `fork` children, `Process`es and `Pool` workers are OS
//! processes of their own, so output kept in the embedder's memory
//! ([`crate::Stdio::Capture`]) never sees theirs. A sink is an OS pipe
//! instead: every guest process of the tree writes its stdout and stderr
//! into it as records tagged with its pid and stream, and a thread of the
//! embedder reads them and hands each complete line to the embedder.
//!
//! ```
//! use procbridge::{GuestBuilder, OutputSink, Stdio};
//!
//! let (sink, lines) = OutputSink::channel()?;
//! let mut guest = GuestBuilder::new();
//! guest.stdout(Stdio::Sink(sink.clone())).stderr(Stdio::Sink(sink));
//! // ... run it; then, for every line any process of the tree wrote:
//! // let line = lines.recv()?;  // line.pid, line.stream, line.text()
//! # drop(lines);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Each `write` a guest makes becomes records of at most `PIPE_BUF` bytes,
//! which the kernel never interleaves, so lines of different processes
//! never mix; a line written in pieces is joined again per process and
//! stream. The reading thread ends once every copy of the sink is dropped
//! and every process that held one has ended; a last line without a
//! newline is handed over then. [`OutputSink::sync`] waits until every
//! line this process wrote before it has been handed over. A command a
//! guest runs with its stdout or stderr inherited writes into a pipe of its
//! own, whose lines a thread of the guest's process relays into the sink
//! under the command's pid.

use bytes::Bytes;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Which stream a line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a process of the tree wrote (without its newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The OS process that wrote it.
    pub pid: u32,
    /// Stdout or stderr.
    pub stream: StdStream,
    /// The line's bytes.
    pub line: Vec<u8>,
}

impl OutputLine {
    /// The line as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.line).into_owned()
    }
}

/// Where every guest process of a tree writes; see the [module docs](self).
/// Cheap to clone: clones write into the same sink.
#[derive(Clone)]
pub struct OutputSink {
    writer: Arc<OwnedFd>,
    barriers: Arc<Barriers>,
}

/// The sink's barriers: [`OutputSink::sync`] writes one into the pipe and
/// waits until the reading thread has passed it.
#[derive(Default)]
struct Barriers {
    /// The last barrier written (held while writing, so that barriers go
    /// into the pipe in the order of their numbers).
    written: Mutex<u64>,
    /// The last barrier the reading thread passed; `u64::MAX` once it
    /// ended.
    passed: Mutex<u64>,
    reached: Condvar,
}

impl Barriers {
    fn pass(&self, barrier: u64) {
        let mut passed = self.passed.lock().unwrap_or_else(|e| e.into_inner());
        *passed = (*passed).max(barrier);
        self.reached.notify_all();
    }
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSink")
            .field("fd", &self.writer.as_raw_fd())
            .finish()
    }
}

/// A record's header: pid (u32), stream (u8), flags (u8), length (u16).
const HEADER: usize = 8;
/// The most bytes one record carries (a record is written atomically).
const MAX_DATA: usize = libc::PIPE_BUF - HEADER;
/// Flag: the line goes on in the next record.
const PARTIAL: u8 = 1;
/// Flag: not a line but a barrier of [`OutputSink::sync`], its number the
/// record's 8 bytes.
const BARRIER: u8 = 2;

impl OutputSink {
    /// A sink handing each line to `deliver`, on a thread of its own.
    ///
    /// # Errors
    /// When the pipe or the thread cannot be made.
    pub fn new(deliver: impl FnMut(OutputLine) + Send + 'static) -> std::io::Result<OutputSink> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`. Close-on-exec:
        // commands never inherit the sink; fork children do (fork keeps
        // every descriptor).
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both are fresh descriptors owned from here on.
        let (reader, writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let barriers = Arc::new(Barriers::default());
        let passed = barriers.clone();
        std::thread::Builder::new()
            .name("procbridge-output".into())
            .spawn(move || {
                read_records(std::fs::File::from(reader), deliver, &passed);
                passed.pass(u64::MAX);
            })?;
        Ok(OutputSink {
            writer: Arc::new(writer),
            barriers,
        })
    }

    /// Waits, at most `timeout`, until every line this process wrote into
    /// the sink before the call has been handed over (to the function of
    /// [`OutputSink::new`]); returns whether it was. Lines of other
    /// processes of the tree, and of commands relayed by threads, are not
    /// waited for.
    ///
    /// ```
    /// use procbridge::OutputSink;
    ///
    /// let (sink, lines) = OutputSink::channel()?;
    /// // ... a guest writing into `sink` returns; then:
    /// assert!(sink.sync(std::time::Duration::from_secs(5)));
    /// // every line it wrote is in `lines` now
    /// # drop(lines);
    /// # Ok::<(), anyhow::Error>(())
    /// ```
    pub fn sync(&self, timeout: Duration) -> bool {
        let barrier = {
            let mut written = self
                .barriers
                .written
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *written += 1;
            let mut record = [0u8; HEADER + 8];
            record[..4].copy_from_slice(&crate::process_local::pid().to_le_bytes());
            record[5] = BARRIER;
            record[6..8].copy_from_slice(&8u16.to_le_bytes());
            record[HEADER..].copy_from_slice(&written.to_le_bytes());
            if write_record(&self.writer, &record).is_err() {
                return false;
            }
            *written
        };
        let deadline = Instant::now() + timeout;
        let mut passed = self
            .barriers
            .passed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while *passed < barrier {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            passed = self
                .barriers
                .reached
                .wait_timeout(passed, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *passed != u64::MAX
    }

    /// A sink whose lines arrive on a channel.
    ///
    /// # Errors
    /// As [`OutputSink::new`].
    pub fn channel() -> std::io::Result<(OutputSink, crossbeam_channel::Receiver<OutputLine>)> {
        let (send, receive) = crossbeam_channel::unbounded();
        let sink = OutputSink::new(move |line| {
            let _ = send.send(line);
        })?;
        Ok((sink, receive))
    }

    /// The writing end for one of a guest's streams.
    pub(crate) fn stream(&self, stream: StdStream) -> SinkStream {
        SinkStream {
            writer: self.writer.clone(),
            stream,
        }
    }

    /// A pipe for a command's `stream`: its writing end (for the command),
    /// and a function that, once the command's pid is known, relays what
    /// it writes into the sink on a thread, until the command and whatever
    /// inherited the pipe have closed it.
    ///
    /// # Errors
    /// When the pipe cannot be made.
    pub(crate) fn command_pipe(
        &self,
        stream: StdStream,
    ) -> std::io::Result<(OwnedFd, impl FnOnce(u32) + use<>)> {
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let sink = self.stream(stream);
        let start = move |pid: u32| {
            let relay = move || {
                let mut reader = std::fs::File::from(reader);
                let mut chunk = vec![0u8; MAX_DATA];
                loop {
                    match reader.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => {
                            if sink.write_as(pid, &chunk[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            };
            // Without a thread the command's output is lost, not the call.
            let _ = std::thread::Builder::new()
                .name("procbridge-relay".into())
                .spawn(relay);
        };
        Ok((writer, start))
    }
}

/// The reading thread: records to lines, until every writer is gone.
fn read_records(mut pipe: std::fs::File, mut deliver: impl FnMut(OutputLine), barriers: &Barriers) {
    // A fork child's copy of the sink numbers its barriers on its own:
    // only this process's are counted.
    let me = std::process::id();
    let mut partial: HashMap<(u32, StdStream), Vec<u8>> = HashMap::new();
    let mut header = [0u8; HEADER];
    let mut data = vec![0u8; MAX_DATA];
    while pipe.read_exact(&mut header).is_ok() {
        let pid = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let stream = if header[4] == 2 {
            StdStream::Stderr
        } else {
            StdStream::Stdout
        };
        let flags = header[5];
        let len = usize::from(u16::from_le_bytes([header[6], header[7]])).min(MAX_DATA);
        if pipe.read_exact(&mut data[..len]).is_err() {
            break;
        }
        if flags & BARRIER != 0 {
            if let (true, Ok(number)) = (pid == me, <[u8; 8]>::try_from(&data[..len])) {
                barriers.pass(u64::from_le_bytes(number));
            }
            continue;
        }
        let line = partial.entry((pid, stream)).or_default();
        line.extend_from_slice(&data[..len]);
        if flags & PARTIAL == 0 {
            let line = partial.remove(&(pid, stream)).unwrap_or_default();
            deliver(OutputLine { pid, stream, line });
        }
    }
    for ((pid, stream), line) in partial {
        if !line.is_empty() {
            deliver(OutputLine { pid, stream, line });
        }
    }
}

/// A guest stream writing into a sink.
#[derive(Clone)]
pub(crate) struct SinkStream {
    writer: Arc<OwnedFd>,
    stream: StdStream,
}

impl SinkStream {
    /// Writes `bytes` as records: each line complete or, for a last piece
    /// without its newline, partial. Nothing is kept between writes (a
    /// fork child must not inherit half a line of its parent's).
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_as(crate::process_local::pid(), bytes)
    }

    /// [`SinkStream::write_all`] for process `pid`.
    fn write_as(&self, pid: u32, bytes: &[u8]) -> std::io::Result<()> {
        let stream = match self.stream {
            StdStream::Stdout => 1u8,
            StdStream::Stderr => 2u8,
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            let (piece, ends_line) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) if at <= MAX_DATA => (&rest[..at], true),
                _ => (&rest[..rest.len().min(MAX_DATA)], false),
            };
            let mut record = Vec::with_capacity(HEADER + piece.len());
            record.extend_from_slice(&pid.to_le_bytes());
            record.push(stream);
            record.push(if ends_line { 0 } else { PARTIAL });
            record.extend_from_slice(&(piece.len() as u16).to_le_bytes());
            record.extend_from_slice(piece);
            self.write_record(&record)?;
            rest = &rest[piece.len() + usize::from(ends_line)..];
        }
        Ok(())
    }

    fn write_record(&self, record: &[u8]) -> std::io::Result<()> {
        write_record(&self.writer, record)
    }
}

/// Writes one record into the sink's pipe.
fn write_record(writer: &OwnedFd, record: &[u8]) -> std::io::Result<()> {
    loop {
        // SAFETY: a write of `record` to our own descriptor; at most
        // PIPE_BUF bytes, so all or nothing.
        let n = unsafe { libc::write(writer.as_raw_fd(), record.as_ptr().cast(), record.len()) };
        if n >= 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

impl IsTerminal for SinkStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SinkStream {
    async fn ready(&mut self) {}
}

impl OutputStream for SinkStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for SinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.write_all(buf).map(|()| buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
