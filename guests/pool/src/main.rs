//! The seed's `multiprocessing.Pool` story:
//!
//! ```python
//! def long_time_task(name):
//!     print('Run task %s (%s)...' % (name, os.getpid()))
//!     start = time.time()
//!     time.sleep(random.random() * 3)
//!     end = time.time()
//!     print('Task %s runs %0.2f seconds.' % (name, (end - start)))
//!
//! if __name__=='__main__':
//!     print('Parent process %s.' % os.getpid())
//!     p = Pool(4)
//!     for i in range(5):
//!         p.apply_async(long_time_task, args=(i,))
//!     print('Waiting for all subprocesses done...')
//!     p.close()
//!     p.join()
//!     print('All subprocesses done.')
//! ```
//!
//! Run it: `procbridge run target/guests/pool.wasm [SCALE]`; `SCALE`
//! (default 1) multiplies the random sleeps, so `0.1` runs ten times faster.

use procbridge_sdk::multiprocessing::Pool;
use procbridge_sdk::{os, task};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `random.random()`: a xorshift generator seeded by the clock and the pid.
fn random() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut x = nanos ^ ((os::getpid() as u64) << 32) | 1;
    for _ in 0..4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    (x >> 11) as f64 / (1u64 << 53) as f64
}

// The task the workers run.
task!(
    fn long_time_task(name: i64, scale: f64) {
        println!("Run task {} ({})...", name, os::getpid());
        let start = Instant::now();
        // At least 20 ms, so that the first four tasks are all running before
        // any ends (Python's random() * 3 is below that 0.7% of the time).
        let secs = (random() * 3.0 * scale).max(0.02);
        std::thread::sleep(Duration::from_secs_f64(secs));
        println!(
            "Task {} runs {:.2} seconds.",
            name,
            start.elapsed().as_secs_f64()
        );
    }
);

fn main() {
    let scale: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("Parent process {}.", os::getpid());
    let p = Pool::new(4).expect("Pool(4)");
    let mut results = Vec::new();
    for i in 0..5 {
        results.push(
            p.apply_async(long_time_task, (i, scale))
                .expect("apply_async"),
        );
    }
    println!("Waiting for all subprocesses done...");
    p.close().expect("close");
    p.join().expect("join");
    println!("All subprocesses done.");
}
