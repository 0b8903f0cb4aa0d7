//! The seed's `os.fork()` story:
//!
//! ```python
//! print('Process (%s) start...' % os.getpid())
//! pid = os.fork()
//! if pid == 0:
//!     print('I am child process (%s) and my parent is %s.' % (os.getpid(), os.getppid()))
//! else:
//!     print('I (%s) just created a child process (%s).' % (os.getpid(), pid))
//! ```
//!
//! Run it: `procbridge run target/guests/fork.wasm`.

use procbridge_sdk::os;

fn main() {
    println!("Process ({}) start...", os::getpid());
    // Only works on Unix/Linux/Mac (and under procbridge):
    let pid = os::fork().expect("fork");
    if pid == 0 {
        println!(
            "I am child process ({}) and my parent is {}.",
            os::getpid(),
            os::getppid()
        );
    } else {
        println!(
            "I ({}) just created a child process ({}).",
            os::getpid(),
            pid
        );
    }
}
