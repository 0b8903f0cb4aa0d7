//! Queues and pipes across real OS processes.
//!
//! Children are made with `fork` from this (multi-threaded) test process:
//! that is sound here only because a child does nothing but use the channel
//! (glibc keeps `malloc` usable after `fork`) and then `_exit`s, never
//! returning into the test harness.

use super::*;
use crate::errno::Errno;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Held by every test that forks or that waits for end-of-file, so that a
/// child forked by one test does not keep another test's pipe end open.
pub(super) static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A forked child, killed and reaped on drop if still running.
struct Child {
    pid: libc::pid_t,
    reaped: bool,
}

fn fork_child(body: impl FnOnce() -> i32) -> Child {
    // SAFETY: see the module docs: the child only runs `body`, which touches
    // channels, and exits without unwinding into the harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
        // SAFETY: ends the child at once, running no atexit handlers.
        unsafe { libc::_exit(code) };
    }
    Child { pid, reaped: false }
}

impl Child {
    /// Waits for the child; its raw wait status.
    fn wait(&mut self) -> i32 {
        let mut status = 0;
        // SAFETY: our own child; `status` is writable.
        let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(rc, self.pid);
        self.reaped = true;
        status
    }

    /// Waits for the child and returns its exit code (panics if signalled).
    fn exit_code(&mut self) -> i32 {
        let status = self.wait();
        assert!(
            libc::WIFEXITED(status),
            "child died of a signal: {status:#x}"
        );
        libc::WEXITSTATUS(status)
    }

    fn running(&self) -> bool {
        let mut status = 0;
        // SAFETY: as in `wait`, without blocking.
        unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) == 0 }
    }

    fn kill(&self, signal: libc::c_int) {
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(self.pid, signal) };
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill(libc::SIGKILL);
            self.wait();
        }
    }
}

fn queue(maxsize: usize) -> Queue {
    Queue::new(QueueConfig {
        maxsize,
        ..QueueConfig::default()
    })
    .unwrap()
}

fn id_message(writer: u32, seq: u32) -> [u8; 8] {
    let mut m = [0; 8];
    m[..4].copy_from_slice(&writer.to_le_bytes());
    m[4..].copy_from_slice(&seq.to_le_bytes());
    m
}

fn parse_id(m: &[u8]) -> (u32, u32) {
    let w = u32::from_le_bytes(m[..4].try_into().unwrap());
    let s = u32::from_le_bytes(m[4..8].try_into().unwrap());
    (w, s)
}

fn ms(n: u64) -> Wait {
    Wait::timeout(Some(Duration::from_millis(n)))
}

#[test]
fn one_writer_three_readers_each_message_exactly_once_in_order() {
    let _serial = serial();
    const N: u32 = 20_000;
    let q = queue(0);
    let results = queue(0);
    let mut readers: Vec<Child> = (0..3)
        .map(|_| {
            fork_child(|| {
                let mut last = None;
                loop {
                    let m = q.get(Wait::Forever).unwrap();
                    if m.is_empty() {
                        return 0;
                    }
                    let (_, seq) = parse_id(&m);
                    if last.is_some_and(|l| seq <= l) {
                        return 2; // FIFO broken for this writer
                    }
                    last = Some(seq);
                    results.put(&m, Wait::Forever).unwrap();
                }
            })
        })
        .collect();
    let mut writer = fork_child(|| {
        for seq in 0..N {
            q.put(&id_message(7, seq), Wait::Forever).unwrap();
        }
        for _ in 0..3 {
            q.put(b"", Wait::Forever).unwrap();
        }
        0
    });
    assert_eq!(writer.exit_code(), 0);
    for r in &mut readers {
        assert_eq!(r.exit_code(), 0, "a reader saw messages out of order");
    }
    let mut seen = HashSet::new();
    while let Ok(m) = results.get(Wait::Never) {
        assert_eq!(parse_id(&m).0, 7);
        assert!(seen.insert(parse_id(&m).1), "a message was delivered twice");
    }
    assert_eq!(seen.len(), N as usize, "a message was lost");
    assert_eq!(q.qsize().unwrap(), 0);
}

#[test]
fn four_writers_three_readers_on_a_tiny_queue_lose_nothing() {
    // Writers are woken together at the low-water mark, and a reader that
    // leaves messages behind wakes the next reader: with more sleepers than
    // slots, every message still arrives exactly once, and every writer and
    // reader ends.
    let _serial = serial();
    const N: u32 = 5_000;
    // The nap that would hide a lost wake-up is 30 s in tests: a run
    // within seconds had none.
    let started = std::time::Instant::now();
    let q = queue(2);
    let results = queue(0);
    let mut readers: Vec<Child> = (0..3)
        .map(|_| {
            fork_child(|| loop {
                let m = q.get(ms(20_000)).unwrap();
                if m.is_empty() {
                    return 0;
                }
                results.put(&m, Wait::Forever).unwrap();
            })
        })
        .collect();
    let mut writers: Vec<Child> = (0..4u32)
        .map(|w| {
            let q = &q;
            fork_child(move || {
                for seq in 0..N {
                    q.put(&id_message(w, seq), ms(20_000)).unwrap();
                }
                0
            })
        })
        .collect();
    for w in &mut writers {
        assert_eq!(w.exit_code(), 0, "a writer was left waiting");
    }
    for _ in 0..3 {
        q.put(b"", ms(20_000)).unwrap();
    }
    for r in &mut readers {
        assert_eq!(r.exit_code(), 0, "a reader was left waiting");
    }
    let mut seen = HashSet::new();
    while let Ok(m) = results.get(Wait::Never) {
        assert!(seen.insert(parse_id(&m)), "a message was delivered twice");
    }
    assert_eq!(seen.len(), 4 * N as usize, "a message was lost");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "a waiter slept until its nap ended: {:?}",
        started.elapsed()
    );
}

#[test]
fn two_writers_keep_their_own_order() {
    let _serial = serial();
    const N: u32 = 10_000;
    let q = queue(64);
    let mut writers: Vec<Child> = (0..2u32)
        .map(|w| {
            let q = &q;
            fork_child(move || {
                for seq in 0..N {
                    q.put(&id_message(w, seq), Wait::Forever).unwrap();
                }
                0
            })
        })
        .collect();
    let mut next = [0u32; 2];
    for _ in 0..2 * N {
        let (w, seq) = parse_id(&q.get(ms(10_000)).unwrap());
        assert_eq!(seq, next[w as usize], "writer {w} out of order");
        next[w as usize] += 1;
    }
    for w in &mut writers {
        assert_eq!(w.exit_code(), 0);
    }
}

#[test]
fn a_full_queue_blocks_its_writer_until_read() {
    let _serial = serial();
    let q = queue(2);
    let mut writer = fork_child(|| {
        for i in 0..5u8 {
            q.put(&[i], Wait::Forever).unwrap();
        }
        0
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(writer.running(), "the writer should wait on the full queue");
    assert_eq!(q.qsize().unwrap(), 2);
    assert!(q.is_full().unwrap());
    for i in 0..5u8 {
        assert_eq!(q.get(ms(5000)).unwrap(), [i]);
    }
    assert_eq!(writer.exit_code(), 0);
}

#[test]
fn a_get_with_timeout_wakes_for_a_message_from_another_process() {
    let _serial = serial();
    let q = queue(0);
    let mut writer = fork_child(|| {
        std::thread::sleep(Duration::from_millis(100));
        q.put(b"late", Wait::Forever).unwrap();
        0
    });
    let start = Instant::now();
    assert_eq!(q.get(ms(5000)).unwrap(), b"late");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(90) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(writer.exit_code(), 0);
    assert_eq!(q.get(ms(50)).unwrap_err().errno, Errno::TimedOut);
}

#[test]
fn a_reader_killed_in_get_loses_nothing_meant_for_others() {
    let _serial = serial();
    let q = queue(0);
    let done = queue(0);
    let mut victim = fork_child(|| {
        let m = q.get(Wait::Forever).unwrap();
        done.put(&m, Wait::Forever).unwrap();
        0
    });
    std::thread::sleep(Duration::from_millis(100));
    victim.kill(libc::SIGTERM);
    let status = victim.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
    let mut survivor = fork_child(|| {
        let a = q.get(Wait::Forever).unwrap();
        let b = q.get(Wait::Forever).unwrap();
        i32::from(!(a == b"one" && b == b"two"))
    });
    q.put(b"one", Wait::Forever).unwrap();
    q.put(b"two", Wait::Forever).unwrap();
    assert_eq!(survivor.exit_code(), 0);
    assert_eq!(done.qsize().unwrap(), 0, "the killed reader got nothing");
}

#[test]
fn a_process_dying_with_the_lock_held_does_not_wedge_the_queue() {
    let _serial = serial();
    let q = queue(0);
    q.put(b"before", Wait::Forever).unwrap();
    let mut child = fork_child(|| {
        // Die half-way through a put: the message's bytes and the new tail
        // are written, its count is not, and the lock is never released.
        std::mem::forget(q.put_uncounted(b"half-put"));
        0
    });
    assert_eq!(child.exit_code(), 0);
    assert_eq!(
        q.qsize().unwrap(),
        2,
        "the recount includes the committed message"
    );
    assert_eq!(q.get(Wait::Never).unwrap(), b"before");
    assert_eq!(q.get(Wait::Never).unwrap(), b"half-put");
    q.put(b"after", Wait::Never).unwrap();
    assert_eq!(q.get(Wait::Never).unwrap(), b"after");
}

#[test]
fn the_ring_grows_under_readers_in_other_processes_and_loses_nothing() {
    // Writers outrun the readers, so the ring doubles (under both locks)
    // while readers take messages of every size, some wrapped around its
    // end. Each message carries its writer, its sequence number, and bytes
    // that say both, checked by the reader.
    let _serial = serial();
    const N: u32 = 3_000;
    let q = Queue::new(QueueConfig {
        max_bytes: 8 << 20,
        ..QueueConfig::default()
    })
    .unwrap();
    let results = queue(0);
    let body = |w: u32, seq: u32| {
        let mut m = id_message(w, seq).to_vec();
        let len = 8 + (seq as usize * 7_919 + w as usize * 104_729) % 4_000;
        m.extend((8..len).map(|i| (i as u32 ^ seq ^ w) as u8));
        m
    };
    let mut readers: Vec<Child> = (0..2)
        .map(|_| {
            fork_child(|| {
                let mut last = [None::<u32>; 2];
                loop {
                    let m = q.get(ms(20_000)).unwrap();
                    if m.is_empty() {
                        return 0;
                    }
                    let (w, seq) = parse_id(&m);
                    if m != body(w, seq) {
                        return 2;
                    }
                    if last[w as usize].is_some_and(|l| l >= seq) {
                        return 3;
                    }
                    last[w as usize] = Some(seq);
                    results.put(&m[..8], Wait::Forever).unwrap();
                }
            })
        })
        .collect();
    let mut writers: Vec<Child> = (0..2u32)
        .map(|w| {
            let q = &q;
            fork_child(move || {
                for seq in 0..N {
                    q.put(&body(w, seq), ms(20_000)).unwrap();
                }
                0
            })
        })
        .collect();
    for w in &mut writers {
        assert_eq!(w.exit_code(), 0, "a writer failed");
    }
    assert!(
        q.capacity() > super::queue::INITIAL_RING_BYTES,
        "the ring never grew"
    );
    for _ in 0..2 {
        q.put(b"", ms(20_000)).unwrap();
    }
    for r in &mut readers {
        assert_eq!(r.exit_code(), 0, "a reader saw a bad or reordered message");
    }
    let mut seen = HashSet::new();
    while let Ok(m) = results.get(Wait::Never) {
        assert!(seen.insert(parse_id(&m)), "a message was delivered twice");
    }
    assert_eq!(seen.len(), 2 * N as usize, "a message was lost");
}

#[test]
fn a_reader_dying_with_its_lock_held_does_not_wedge_the_queue() {
    let _serial = serial();
    let q = queue(0);
    q.put(b"taken", Wait::Forever).unwrap();
    q.put(b"left", Wait::Forever).unwrap();
    let mut child = fork_child(|| {
        // Die half-way through a get: the message is taken, its count is
        // not lowered, and the getters' lock is never released.
        std::mem::forget(q.get_uncounted());
        0
    });
    assert_eq!(child.exit_code(), 0);
    assert_eq!(q.get(Wait::Never).unwrap(), b"left");
    assert_eq!(
        q.qsize().unwrap(),
        0,
        "the recount left out the taken message"
    );
    assert_eq!(q.get(Wait::Never).unwrap_err().errno, Errno::Again);
    q.put(b"after", Wait::Never).unwrap();
    assert_eq!(q.get(Wait::Never).unwrap(), b"after");
}

#[test]
fn shutdown_wakes_a_blocked_reader_in_another_process() {
    let _serial = serial();
    let q = queue(0);
    let mut reader = fork_child(|| match q.get(Wait::Forever) {
        Err(e) if e.errno == Errno::Pipe => 0,
        _ => 1,
    });
    std::thread::sleep(Duration::from_millis(100));
    q.shutdown().unwrap();
    assert_eq!(reader.exit_code(), 0);
}

#[test]
fn joinable_queue_join_waits_for_a_worker_process() {
    let _serial = serial();
    let q = Queue::new(QueueConfig {
        joinable: true,
        ..QueueConfig::default()
    })
    .unwrap();
    for i in 0..3u8 {
        q.put(&[i], Wait::Forever).unwrap();
    }
    let mut worker = fork_child(|| {
        for _ in 0..3 {
            q.get(Wait::Forever).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            q.task_done().unwrap();
        }
        0
    });
    assert_eq!(q.join(ms(10)).unwrap_err().errno, Errno::TimedOut);
    q.join(ms(10_000)).unwrap();
    assert_eq!(worker.exit_code(), 0);
}

#[test]
fn pipe_sees_end_of_file_when_the_peer_process_dies() {
    let _serial = serial();
    let (mut mine, theirs) = pipe(true).unwrap();
    let mut child = {
        let mut theirs = theirs;
        let child = fork_child(move || {
            theirs.send(b"hello from the child").unwrap();
            // Block until killed.
            let _ = theirs.recv(Wait::Forever);
            3
        });
        // `fork_child` dropped the closure, and with it the parent's copy
        // of the child's end, as a Python parent closes it.
        child
    };
    assert_eq!(mine.recv(ms(5000)).unwrap(), b"hello from the child");
    child.kill(libc::SIGKILL);
    child.wait();
    let start = Instant::now();
    assert_eq!(mine.recv(Wait::Forever).unwrap_err().errno, Errno::Pipe);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(mine.send(b"anyone?").unwrap_err().errno, Errno::Pipe);
}

#[test]
fn pipe_ping_pong_and_terminate_of_a_blocked_receiver() {
    let _serial = serial();
    let (mut a, b) = pipe(true).unwrap();
    let mut echo = {
        let mut b = b;
        fork_child(move || loop {
            match b.recv(Wait::Forever) {
                Ok(m) => b.send(&m).unwrap(),
                Err(_) => return 0,
            }
        })
    };
    for i in 0..1000u32 {
        a.send(&i.to_le_bytes()).unwrap();
        assert_eq!(a.recv(ms(5000)).unwrap(), i.to_le_bytes());
    }
    echo.kill(libc::SIGTERM);
    let status = echo.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
}
