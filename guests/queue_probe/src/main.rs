//! A test guest: runs the queue and pipe scenarios named in its arguments
//! within one process, printing one line per observation for the tests in
//! `tests/all/queue.rs` and `tests/all/pipe.rs` to compare.
//!
//! Run it: `procbridge run target/guests/queue_probe.wasm order timeouts`.

use procbridge_sdk::multiprocessing::{Connection, JoinableQueue, Pipe, Queue};
use procbridge_sdk::{Errno, Error, ErrorKind};
use std::time::{Duration, Instant};

type Result = std::result::Result<(), Error>;

fn main() {
    let mut failed = false;
    for scenario in std::env::args().skip(1) {
        let result = match scenario.as_str() {
            "order" => order(),
            "timeouts" => timeouts(),
            "nowait" => nowait(),
            "maxsize" => maxsize(),
            "close" => close(),
            "shutdown" => shutdown(),
            "joinable" => joinable(),
            "bad_handles" => bad_handles(),
            "flood" => flood(),
            "big" => big(),
            "grow" => grow(),
            "decode" => decode(),
            "pipe" => pipe(),
            "pipe_eof" => pipe_eof(),
            other => Err(Error::new(Errno::Inval, format!("no scenario {other}"))),
        };
        if let Err(err) = result {
            println!("{scenario}: error {err}");
            failed = true;
        }
    }
    std::process::exit(i32::from(failed));
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn order() -> Result {
    let q = Queue::new()?;
    for value in ["A", "B", "C"] {
        q.put(value)?;
    }
    q.put(42u32)?;
    q.put(vec![1u8, 2, 3])?;
    println!("qsize {}", q.qsize()?);
    for _ in 0..3 {
        let value: String = q.get()?;
        println!("get {value}");
    }
    println!("get {}", q.get::<u32>()?);
    println!("get {:?}", q.get::<Vec<u8>>()?);
    println!("empty {}", q.empty()?);
    Ok(())
}

fn timeouts() -> Result {
    let q = Queue::with_maxsize(1)?;
    let start = Instant::now();
    let got = q.get_timeout::<String>(ms(50));
    println!("get_timeout {:?} waited {}", got, start.elapsed() >= ms(50));
    q.put("x")?;
    let start = Instant::now();
    let put = q.put_timeout("y", ms(50));
    println!("put_timeout {:?} waited {}", put, start.elapsed() >= ms(50));
    println!("get_timeout {:?}", q.get_timeout::<String>(ms(50)));
    Ok(())
}

fn nowait() -> Result {
    let q = Queue::with_maxsize(1)?;
    println!("get_nowait {:?}", q.get_nowait::<String>());
    println!("put_nowait {:?}", q.put_nowait("a"));
    println!("put_nowait {:?}", q.put_nowait("b"));
    println!("get_nowait {:?}", q.get_nowait::<String>());
    Ok(())
}

fn maxsize() -> Result {
    let q = Queue::with_maxsize(2)?;
    println!(
        "empty {} full {} qsize {}",
        q.empty()?,
        q.full()?,
        q.qsize()?
    );
    q.put(1u8)?;
    q.put(2u8)?;
    println!(
        "empty {} full {} qsize {}",
        q.empty()?,
        q.full()?,
        q.qsize()?
    );
    let unbounded = Queue::new()?;
    for i in 0..1000u32 {
        unbounded.put(i)?;
    }
    println!(
        "unbounded full {} qsize {}",
        unbounded.full()?,
        unbounded.qsize()?
    );
    Ok(())
}

fn close() -> Result {
    let q = Queue::new()?;
    let raw = q.as_raw();
    q.put("kept")?;
    q.close()?;
    let stale = Queue::from_raw(raw);
    println!("put after close {:?}", errno_of_put(stale.put("x")));
    println!("get after close {:?}", errno_of_get(stale.get::<String>()));
    println!(
        "qsize after close {:?}",
        stale.qsize().map_err(|e| e.errno())
    );
    println!("close again {:?}", stale.close().map_err(|e| e.errno()));
    Ok(())
}

fn shutdown() -> Result {
    let q = Queue::new()?;
    q.put("left")?;
    q.shutdown()?;
    println!("put {:?}", q.put("late"));
    println!("get {:?}", q.get::<String>());
    println!("get {:?}", q.get::<String>());
    println!("get_nowait {:?}", q.get_nowait::<String>());
    Ok(())
}

fn joinable() -> Result {
    let q = JoinableQueue::new()?;
    q.join()?;
    println!("join empty ok");
    q.put("task 1")?;
    q.put("task 2")?;
    println!(
        "join_timeout {:?}",
        q.join_timeout(ms(20)).map_err(|e| e.errno())
    );
    for _ in 0..2 {
        let task: String = q.get()?;
        q.task_done()?;
        println!("done {task}");
    }
    q.join()?;
    println!("join ok");
    println!("task_done extra {:?}", q.task_done().map_err(|e| e.errno()));
    let plain = Queue::new()?;
    let as_joinable = JoinableQueue::from_raw(plain.as_raw());
    println!(
        "task_done plain {:?}",
        as_joinable.task_done().map_err(|e| e.errno())
    );
    println!("join plain {:?}", as_joinable.join().map_err(|e| e.errno()));
    let _ = as_joinable.into_raw();
    Ok(())
}

fn errno_of_put(r: std::result::Result<(), Error>) -> Option<Errno> {
    r.err().map(|e| e.errno())
}

fn errno_of_get<T>(r: std::result::Result<T, Error>) -> Option<Errno> {
    r.err().map(|e| e.errno())
}

fn bad_handles() -> Result {
    let (a, b) = Pipe(true)?;
    for raw in [0, -1, 12345, i32::MAX, a.as_raw()] {
        let q = Queue::from_raw(raw);
        println!("queue {} put {:?}", name(raw, &a), errno_of_put(q.put("x")));
        println!(
            "queue {} get {:?}",
            name(raw, &a),
            errno_of_get(q.get::<String>())
        );
        let _ = q.into_raw();
    }
    let q = Queue::new()?;
    let c = Connection::from_raw(q.as_raw());
    println!(
        "pipe queue-handle send {:?}",
        c.send("x").map_err(|e| e.errno())
    );
    let _ = c.into_raw();
    drop(b);
    Ok(())
}

fn name(raw: i32, pipe_end: &Connection) -> String {
    if raw == pipe_end.as_raw() {
        "pipe-handle".to_string()
    } else {
        raw.to_string()
    }
}

fn flood() -> Result {
    // An unbounded queue holding at most 1 KiB: 100-byte messages take 104.
    // At the limit a put that may not wait fails; one that may waits for a
    // getter (here, until its timeout).
    let q = Queue::with_limits(0, 1024)?;
    let mut n = 0;
    let err = loop {
        match q.put_nowait(vec![7u8; 100]) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    println!("flood put {n} then {:?}", errno_of_put(Err(err.clone())));
    println!("full {:?}", err.kind());
    println!(
        "waiting put {:?}",
        errno_of_put(q.put_timeout(vec![7u8; 100], ms(20)))
    );
    println!(
        "too big {:?}",
        errno_of_put(Queue::with_limits(0, 1 << 20)?.put(vec![0u8; 2 << 20]))
    );
    println!(
        "limit {:?}",
        Queue::with_limits(0, 65 << 20)
            .map(|_| ())
            .map_err(|e| e.errno())
    );
    Ok(())
}

fn big() -> Result {
    let q = Queue::with_limits(0, 4 << 20)?;
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    q.put(&big)?;
    q.put("small")?;
    q.put(&big)?;
    let a: Vec<u8> = q.get()?;
    let s: String = q.get()?;
    let b: Vec<u8> = q.get()?;
    println!("queue big {} {} {}", a == big, s, b == big);
    // One process: the message must fit in the socket's buffer.
    let big = &big[..64 << 10];
    let (x, y) = Pipe(true)?;
    x.send(big)?;
    x.send("small")?;
    let a: Vec<u8> = y.recv()?;
    let s: String = y.recv()?;
    println!("pipe big {} {}", a == big, s);
    Ok(())
}

/// An unbounded queue with the default limit holds 40 MiB of waiting
/// messages (its ring grows from 64 KiB), then gives them back in order.
fn grow() -> Result {
    let q = Queue::new()?;
    let mut message = vec![7u8; 1 << 20];
    for i in 0..40u8 {
        message[0] = i;
        q.put(&message)?;
    }
    let mut in_order = true;
    for i in 0..40u8 {
        let got: Vec<u8> = q.get()?;
        in_order &= got.len() == 1 << 20 && got[0] == i;
    }
    println!("grew to 40 MiB in order {in_order}");
    Ok(())
}

fn decode() -> Result {
    let q = Queue::new()?;
    q.put([1u8, 2])?;
    q.put([0xffu8, 0xfe])?;
    println!("u32 {:?}", errno_of_get(q.get::<u32>()));
    println!("string {:?}", errno_of_get(q.get::<String>()));
    Ok(())
}

fn pipe() -> Result {
    let (a, b) = Pipe(true)?;
    a.send("ping")?;
    println!("poll {}", b.poll(Some(ms(100)))?);
    let got: String = b.recv()?;
    b.send(format!("{got}-pong"))?;
    println!("recv {}", a.recv::<String>()?);
    println!("poll empty {}", a.poll(Some(Duration::ZERO))?);
    let start = Instant::now();
    println!(
        "recv_timeout {:?} waited {}",
        a.recv_timeout::<String>(ms(50)),
        start.elapsed() >= ms(50)
    );
    let (r, w) = Pipe(false)?;
    println!(
        "one-way send on reader {:?}",
        r.send("x").map_err(|e| e.errno())
    );
    println!(
        "one-way recv on writer {:?}",
        w.recv::<String>().map_err(|e| Error::from(e).errno())
    );
    w.send(1.5f64)?;
    println!("one-way {}", r.recv::<f64>()?);
    Ok(())
}

fn pipe_eof() -> Result {
    let (a, b) = Pipe(true)?;
    b.send("last words")?;
    b.close()?;
    println!("recv {:?}", a.recv::<String>());
    println!("poll at eof {}", a.poll(Some(Duration::ZERO))?);
    println!(
        "recv {:?}",
        a.recv::<String>().map_err(|e| e.kind()) == Err(ErrorKind::EndOfFile)
    );
    println!("send {:?}", a.send("anyone?").map_err(|e| e.errno()));
    let raw = a.as_raw();
    a.close()?;
    let stale = Connection::from_raw(raw);
    println!(
        "send after close {:?}",
        stale.send("x").map_err(|e| e.errno())
    );
    let _ = stale.into_raw();
    Ok(())
}
