//! The seed's `multiprocessing.Process` story:
//!
//! ```python
//! def run_proc(name):
//!     print('Run child process %s (%s)...' % (name, os.getpid()))
//!
//! if __name__=='__main__':
//!     print('Parent process %s.' % os.getpid())
//!     p = Process(target=run_proc, args=('test',))
//!     print('Child process will start.')
//!     p.start()
//!     p.join()
//!     print('Child process end.')
//! ```
//!
//! Run it: `procbridge run target/guests/process.wasm` (add `spawn` to use
//! the spawn start method).

use procbridge_sdk::multiprocessing::{Process, StartMethod};
use procbridge_sdk::{os, task};

// The code the child process runs:
task!(
    fn run_proc(name: String) {
        println!("Run child process {} ({})...", name, os::getpid());
    }
);

fn main() {
    let method = match std::env::args().nth(1).as_deref() {
        Some("spawn") => StartMethod::Spawn,
        _ => StartMethod::Fork,
    };
    println!("Parent process {}.", os::getpid());
    let mut p = Process::new(run_proc)
        .args((String::from("test"),))
        .start_method(method);
    println!("Child process will start.");
    p.start().expect("start");
    p.join().expect("join");
    println!("Child process end.");
}
