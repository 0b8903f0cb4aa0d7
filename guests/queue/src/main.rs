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
use procbridge_sdk::{os, task};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// `random.random()`: a float in [0, 1), from the host's random source.
fn random() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

// Code run by the writer process:
task!(
    fn write(q: Queue) {
        println!("Process to write: {}", os::getpid());
        for value in ["A", "B", "C"] {
            println!("Put {} to queue...", value);
            q.put(value).unwrap();
            std::thread::sleep(Duration::from_secs_f64(random()));
        }
    }
);

// Code run by the reader process:
task!(
    fn read(q: Queue) {
        println!("Process to read: {}", os::getpid());
        loop {
            let value: String = q.get().unwrap();
            println!("Get {} from queue.", value);
        }
    }
);

fn main() -> Result<(), procbridge_sdk::Error> {
    // The parent creates the Queue and passes it to each child:
    let q = Queue::new()?;
    let mut pw = Process::new(write).args((q.clone(),));
    let mut pr = Process::new(read).args((q.clone(),));
    // Start the writer, then the reader:
    pw.start()?;
    pr.start()?;
    // Wait for the writer to end:
    pw.join()?;
    // The reader loops forever and cannot be joined: terminate it.
    pr.terminate()?;
    Ok(())
}
