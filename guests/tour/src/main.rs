//! A tour of the SDK's typed tasks: a Queue between two Processes, a Pool
//! of squares, and Pool tasks writing into a Queue made after the Pool.
//! It prints, pids aside, what this Python program prints (Python's own
//! Queue cannot be given to Pool tasks: it needs a Manager's queue there):
//!
//! ```python
//! import os
//! from multiprocessing import Manager, Pool, Process, Queue
//!
//! def write(q, values):
//!     print('Process to write: %s' % os.getpid(), flush=True)
//!     for value in values:
//!         print('Put %s to queue...' % value, flush=True)
//!         q.put(value)
//!
//! def read(q):
//!     print('Process to read: %s' % os.getpid(), flush=True)
//!     while True:
//!         value = q.get()
//!         print('Get %s from queue.' % value, flush=True)
//!
//! def square(x):
//!     return x * x
//!
//! def produce(q, n):
//!     q.put(n)
//!
//! if __name__ == '__main__':
//!     q = Queue()
//!     pw = Process(target=write, args=(q, ['A', 'B', 'C']))
//!     pr = Process(target=read, args=(q,))
//!     pw.start(); pr.start()
//!     pw.join(); pr.terminate()
//!     with Pool(4) as pool:
//!         print(pool.map(square, range(10)))
//!         print(pool.apply_async(square, (12,)).get())
//!         out = Manager().Queue()
//!         pending = [pool.apply_async(produce, (out, n)) for n in range(8)]
//!         for r in pending:
//!             r.get()
//!         print(sorted(out.get() for _ in range(8)))
//!         q.put('done')
//!         pool.close()
//!         pool.join()
//! ```
//!
//! Run it: `procbridge run target/guests/tour.wasm`.

use procbridge_sdk::multiprocessing::{Pool, Process, Queue};
use procbridge_sdk::{os, task};

task!(
    fn write(q: Queue, values: Vec<String>) {
        println!("Process to write: {}", os::getpid());
        for value in values {
            println!("Put {} to queue...", value);
            q.put(value).unwrap();
        }
    }
);

task!(
    fn read(q: Queue) {
        println!("Process to read: {}", os::getpid());
        loop {
            let value: String = q.get().unwrap();
            println!("Get {} from queue.", value);
        }
    }
);

task!(
    fn square(x: i64) -> i64 {
        x * x
    }
);

task!(
    fn produce(q: Queue, n: i64) {
        q.put(n).unwrap();
    }
);

fn main() -> Result<(), procbridge_sdk::Error> {
    let q = Queue::new()?;
    let values = vec!["A".to_string(), "B".to_string(), "C".to_string()];
    let mut pw = Process::new(write).args((q.clone(), values));
    let mut pr = Process::new(read).args((q.clone(),));
    pw.start()?;
    pr.start()?;
    pw.join()?;
    pr.terminate()?;

    let pool = Pool::new(4)?;
    let squares: Vec<i64> = pool.map(square, 0..10)?;
    println!("{:?}", squares);
    println!("{}", pool.apply_async(square, (12,))?.get()?);
    let out = Queue::new()?;
    let pending: Vec<_> = (0..8)
        .map(|n| pool.apply_async(produce, (out.clone(), n)))
        .collect::<Result<_, _>>()?;
    for r in pending {
        r.get()?;
    }
    let mut got: Vec<i64> = (0..8).map(|_| out.get()).collect::<Result<_, _>>()?;
    got.sort();
    println!("{:?}", got);
    q.put("done")?;
    pool.close()?;
    pool.join()?;
    Ok(())
}
