//! The seed's Queue story: the parent creates a Queue and hands it to two
//! processes; the writer puts 'A', 'B', 'C' with random sleeps, the reader
//! gets forever; the parent joins the writer and terminates the reader.
//!
//! Run it: `procbridge run target/guests/queue.wasm`.
//!
//! ```python
//! def write(q):
//!     print('Process to write: %s' % os.getpid())
//!     for value in ['A', 'B', 'C']:
//!         print('Put %s to queue...' % value)
//!         q.put(value)
//!         time.sleep(random.random())
//!
//! def read(q):
//!     print('Process to read: %s' % os.getpid())
//!     while True:
//!         value = q.get(True)
//!         print('Get %s from queue.' % value)
//! ```

use procbridge_sdk::multiprocessing::{Process, Queue};
use procbridge_sdk::os;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The queue passed in a child's arguments (`args=(q,)`).
fn queue_arg(args: &[u8]) -> Result<Queue, String> {
    let mut raw = [0u8; 4];
    if args.len() != raw.len() {
        return Err(format!("expected a queue handle, got {} bytes", args.len()));
    }
    raw.copy_from_slice(args);
    Ok(Queue::from_raw(i32::from_le_bytes(raw)))
}

/// `random.random()`: a float in [0, 1), from the host's random source.
fn random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

// Code run by the writer process:
procbridge_sdk::task!(write, |args: &[u8]| -> Result<Vec<u8>, String> {
    let q = queue_arg(args)?;
    println!("Process to write: {}", os::getpid());
    for value in ["A", "B", "C"] {
        println!("Put {value} to queue...");
        q.put(value).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_secs_f64(random()));
    }
    Ok(Vec::new())
});

// Code run by the reader process:
procbridge_sdk::task!(read, |args: &[u8]| -> Result<Vec<u8>, String> {
    let q = queue_arg(args)?;
    println!("Process to read: {}", os::getpid());
    loop {
        let value: String = q.get().map_err(|e| e.to_string())?;
        println!("Get {value} from queue.");
    }
});

fn main() -> Result<(), procbridge_sdk::Error> {
    // The parent creates the Queue and passes it to each child:
    let q = Queue::new()?;
    let arg = q.as_raw().to_le_bytes();
    let mut pw = Process::new("write").args(&arg[..]);
    let mut pr = Process::new("read").args(&arg[..]);
    // Start the writer, then the reader:
    pw.start()?;
    pr.start()?;
    // Wait for the writer to end:
    pw.join()?;
    // The reader loops forever and cannot be joined: terminate it.
    pr.terminate()?;
    Ok(())
}
