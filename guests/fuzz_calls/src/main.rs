//! The fuzzer's guest: runs a sequence of raw host calls decoded from its
//! first argument (hex), with hostile arguments. The fuzz target
//! (`fuzz/fuzz_targets/host_calls.rs`) runs it once per input.
//!
//! The dispatcher is made from the ABI table (`procbridge_abi::functions!`):
//! opcode `i` calls the table's function `i`, and each of its parameters is
//! decoded by its kind, so a function added to the table is driven without a
//! change here (one that forks, stops the process or blocks without a
//! timeout needs a rule in `drive!`; a changed signature of a function that
//! has one does not build). The imports are this guest's own, made from the
//! same table (every parameter a plain number), not the SDK's.
//!
//! Input: a sequence of operations, each an opcode byte (modulo the number
//! of functions plus three actions: write bytes into the scratch buffer,
//! `proc_exit` in the middle, trap in the middle) followed by its arguments
//! and a byte naming the slot its result goes to. An argument of kind `ptr`,
//! `len`, `handle` or `int` is a tag byte then: a value from a table of edge
//! cases, four raw bytes, the result of an earlier call (handles), an
//! address inside a scratch buffer, or an `i32` the host wrote into the
//! buffer's first KiB (`pipe_new`'s handles). A `ptr_mut` (with its `len`)
//! or `i32_mut` points inside the scratch buffer (with room for what the
//! host writes) or outside memory, so the guest's own data is never
//! overwritten and the run cannot loop. A `timeout` is bounded (never `-1`):
//! an endless wait on `cat` is correct behaviour, not a finding.
//!
//! Nothing may fork the fuzzer or stop it (see `docs/fuzzing.md`):
//!
//! - `fork` is never called (its opcode does nothing);
//! - `process_start` is called only so that it fails before forking: with
//!   an unknown method, an unknown flag, or a target named by this guest
//!   (this module exports no task function, which `tests/all/fuzz_guest.rs`
//!   checks);
//! - `pool_new` only with a processes count, `maxtasksperchild` or task
//!   timeout out of range;
//! - `kill` never of the fuzzer's own pid;
//! - `pipe_send` (it has no timeout: a pipe nobody reads blocks when full)
//!   sends at most 96 KiB per input.
//!
//! Every decision is made from values in this guest's own data, where the
//! host never writes. With a second argument `trace`, each operation prints
//! `fuzz_calls: NAME RESULT` (`skipped` when it was not called).

use procbridge_abi::process::{METHOD_DEFAULT, METHOD_FORK, METHOD_SPAWN};
use procbridge_abi::{Errno, NO_TIMEOUT};

const SCRATCH: usize = 4096;
const SLOTS: usize = 8;
const MAX_CALLS: usize = 64;

/// `pool_new`'s processes count is 1 to 256 (`docs/abi.md`).
const POOL_MAX_PROCESSES: i32 = 256;
/// What `pipe_send` may send per input, each message counted with 2 KiB
/// of framing to spare: well within an unread socket's buffer.
const PIPE_BUDGET: u32 = 96 << 10;
/// The longest message `pipe_send` may send.
const PIPE_MAX_SEND: i32 = 64 << 10;

const SMALL: [i32; 16] = [
    0,
    1,
    2,
    7,
    8,
    16,
    -1,
    -2,
    -3,
    4096,
    65536,
    i32::MAX,
    i32::MIN,
    65532,
    1 << 20,
    3,
];

/// Timeouts in microseconds: none waits forever.
const TIMEOUTS: [i64; 8] = [0, 1, 1000, 20_000, -2, i64::MIN, i64::MIN + 1, -1000];

/// Task names `process_start` may be given: none is a task export of this
/// module (no such export, exports of another type, invalid UTF-8, over
/// 256 bytes).
const TARGETS: [&[u8]; 9] = [
    b"",
    b"_start",
    b"main",
    b"memory",
    b"__heap_base",
    b"no_such_task",
    b"\xff\xfe",
    b"task\0",
    &[b'a'; 300],
];

/// The raw imports of module `procbridge`, one per function of the table,
/// every parameter a number (pointers are addresses).
mod host {
    macro_rules! imports {
        ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
            #[link(wasm_import_module = "procbridge")]
            extern "C" {
                $($(
                    // `fork` is never called.
                    #[allow(dead_code)]
                    pub fn $name($($param: procbridge_abi::wasm_type!($kind)),*) -> i32;
                )*)*
            }
        };
    }

    procbridge_abi::functions!(imports);
}

/// One argument decoded by its kind.
macro_rules! arg {
    ($m:ident, ptr) => {
        $m.int()
    };
    ($m:ident, len) => {
        $m.int()
    };
    ($m:ident, handle) => {
        $m.int()
    };
    ($m:ident, int) => {
        $m.int()
    };
    ($m:ident, i32_mut) => {
        $m.out()
    };
    ($m:ident, timeout) => {
        $m.timeout()
    };
}

/// Decodes a function's arguments in order, then calls it.
macro_rules! call {
    ($m:ident $name:ident [$($arg:ident)*]) => {{
        let _ = &$m;
        // SAFETY: every argument is a number to the host, which checks it;
        // the host writes only where `out`/`out_cap` point: inside the
        // scratch buffer (with room) or outside memory.
        unsafe { host::$name($($arg),*) }
    }};
    ($m:ident $name:ident [$($arg:ident)*] $ptr:ident: ptr_mut, $cap:ident: len, $($rest:tt)*) => {{
        let ($ptr, $cap) = $m.out_cap();
        call!($m $name [$($arg)* $ptr $cap] $($rest)*)
    }};
    ($m:ident $name:ident [$($arg:ident)*] $ptr:ident: ptr_mut, $($rest:tt)*) => {
        compile_error!(concat!(
            stringify!($name),
            ": a `ptr_mut` without its `len` after it: say how much the host may write"
        ))
    };
    ($m:ident $name:ident [$($arg:ident)*] $param:ident: $kind:ident, $($rest:tt)*) => {{
        let $param = arg!($m, $kind);
        call!($m $name [$($arg)* $param] $($rest)*)
    }};
}

/// How one function of the table is driven: `None` when it was not called.
/// The functions that could fork or stop the fuzzer have their own rule,
/// for exactly the signature it was written for.
macro_rules! drive {
    (fork()) => {
        |_: &mut Machine| None
    };
    (kill($pid:ident: int, $signal:ident: int)) => {
        |m: &mut Machine| m.kill()
    };
    (process_start(
        $target:ident: ptr, $target_len:ident: len,
        $args:ident: ptr, $args_len:ident: len,
        $method:ident: int, $flags:ident: int
    )) => {
        |m: &mut Machine| m.process_start()
    };
    (pool_new($processes:ident: int, $maxtasks:ident: int, $timeout:ident: timeout)) => {
        |m: &mut Machine| m.pool_new()
    };
    (pipe_send($c:ident: handle, $ptr:ident: ptr, $len:ident: len)) => {
        |m: &mut Machine| m.pipe_send()
    };
    ($name:ident $params:tt) => {
        drive!(@checked $name $params)
    };
    (@checked fork $params:tt) => { drive!(@changed fork) };
    (@checked kill $params:tt) => { drive!(@changed kill) };
    (@checked process_start $params:tt) => { drive!(@changed process_start) };
    (@checked pool_new $params:tt) => { drive!(@changed pool_new) };
    (@checked pipe_send $params:tt) => { drive!(@changed pipe_send) };
    (@checked $name:ident($($param:ident: $kind:ident),*)) => {
        |m: &mut Machine| Some(call!(m $name [] $($param: $kind,)*))
    };
    (@changed $name:ident) => {
        compile_error!(concat!(
            "the signature of `",
            stringify!($name),
            "` changed: check that its rule in fuzz_calls still cannot fork or stop the fuzzer"
        ))
    };
}

/// A function of the table and how it is driven.
struct Function {
    name: &'static str,
    drive: fn(&mut Machine) -> Option<i32>,
}

macro_rules! functions {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
        /// Every function of the table, in its order: opcode `i` is `FUNCTIONS[i]`.
        const FUNCTIONS: &[Function] = &[
            $($(Function {
                name: stringify!($name),
                drive: drive!($name($($param: $kind),*)),
            },)*)*
        ];
    };
}

procbridge_abi::functions!(functions);

/// The actions after the functions' opcodes.
const POKE: usize = FUNCTIONS.len();
const EXIT: usize = POKE + 1;
const TRAP: usize = POKE + 2;
const OPCODES: usize = TRAP + 1;

struct Input {
    data: Vec<u8>,
    pos: usize,
}

impl Input {
    fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }

    fn b(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }

    fn raw(&mut self) -> i32 {
        let mut bytes = [0u8; 4];
        for b in bytes.iter_mut() {
            *b = self.b();
        }
        i32::from_le_bytes(bytes)
    }
}

struct Machine {
    input: Input,
    scratch: Vec<u8>,
    slots: [i32; SLOTS],
    pipe_budget: u32,
    trace: bool,
}

impl Machine {
    fn scratch_base(&mut self) -> i32 {
        self.scratch.as_mut_ptr() as i32
    }

    fn scratch_at(&mut self) -> i32 {
        let offset = u16::from_le_bytes([self.input.b(), self.input.b()]) as usize % SCRATCH;
        self.scratch_base() + offset as i32
    }

    /// An `i32` the host may have written into the scratch buffer (in its
    /// first KiB, both of `pipe_new`'s handles).
    fn scratch_i32(&mut self) -> i32 {
        let at = self.input.b() as usize * 4;
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&self.scratch[at..at + 4]);
        i32::from_le_bytes(bytes)
    }

    /// Any `i32`: values, lengths, handles, read-only pointers.
    fn int(&mut self) -> i32 {
        match self.input.b() % 5 {
            0 => SMALL[self.input.b() as usize % SMALL.len()],
            1 => self.input.raw(),
            2 => self.slots[self.input.b() as usize % SLOTS],
            3 => self.scratch_at(),
            _ => self.scratch_i32(),
        }
    }

    /// A pointer the host may write to: in the scratch buffer (with room
    /// for what the callers write) or outside memory.
    fn out(&mut self) -> i32 {
        let memory = (core::arch::wasm32::memory_size(0) * 65536) as i64;
        match self.input.b() % 4 {
            0 => {
                let offset = self.input.b() as i32 * 8;
                self.scratch_base() + offset
            }
            1 => (memory - 2) as i32,
            2 => memory as i32,
            _ => [-1, -4, i32::MIN, i32::MAX][self.input.b() as usize % 4],
        }
    }

    /// An output pointer and its capacity: inside the scratch buffer with
    /// room for the capacity, or outside memory with a hostile capacity.
    fn out_cap(&mut self) -> (i32, i32) {
        let ptr = self.out();
        let base = self.scratch_base();
        let inside = ptr >= base && ptr < base + SCRATCH as i32;
        let cap = match self.input.b() % 4 {
            _ if inside => self.input.b() as i32 * 8,
            0 => self.input.b() as i32,
            1 => -1,
            2 => i32::MAX,
            _ => 2048,
        };
        (ptr, cap)
    }

    fn timeout(&mut self) -> i64 {
        TIMEOUTS[self.input.b() as usize % TIMEOUTS.len()]
    }

    fn poke(&mut self) {
        let offset = self.input.b() as usize * 16;
        let n = self.input.b() as usize % 64;
        for i in 0..n {
            let b = self.input.b();
            self.scratch[(offset + i) % SCRATCH] = b;
        }
    }

    /// `kill`, never of this very process (the fuzzer).
    fn kill(&mut self) -> Option<i32> {
        let (pid, signal) = (self.int(), self.int());
        // SAFETY: numbers only.
        if pid == unsafe { host::getpid() } {
            return None;
        }
        // SAFETY: numbers only; the pid is not ours, and this guest has no
        // fork children: the host refuses it.
        Some(unsafe { host::kill(pid, signal) })
    }

    /// `process_start`, always refused before the host forks: a mode byte
    /// picks a target named by this guest (no task export has its name: the
    /// host answers `ENOENT`, `EINVAL` or `E2BIG` whatever the method and
    /// flags), or any target with an unknown method, or with an unknown
    /// flag.
    fn process_start(&mut self) -> Option<i32> {
        let mode = self.input.b() % 3;
        let (target, target_len) = if mode == 0 {
            let name = TARGETS[self.input.b() as usize % TARGETS.len()];
            (name.as_ptr() as i32, name.len() as i32)
        } else {
            (self.int(), self.int())
        };
        let (args, args_len) = (self.int(), self.int());
        let (mut method, mut flags) = (self.int(), self.int());
        match mode {
            0 => {}
            1 => {
                if matches!(method, METHOD_DEFAULT | METHOD_FORK | METHOD_SPAWN) {
                    method = -1 - method;
                }
            }
            // No flag will ever be the sign bit.
            _ => flags |= i32::MIN,
        }
        // SAFETY: numbers only; the host only reads guest memory here.
        Some(unsafe { host::process_start(target, target_len, args, args_len, method, flags) })
    }

    /// `pool_new`, always refused before the host forks a worker: a mode
    /// byte picks which argument is out of range.
    fn pool_new(&mut self) -> Option<i32> {
        let mode = self.input.b() % 3;
        let (mut processes, mut maxtasks, mut timeout) = (self.int(), self.int(), self.timeout());
        match mode {
            0 => {
                if (1..=POOL_MAX_PROCESSES).contains(&processes) {
                    processes = -processes;
                }
            }
            1 => {
                if maxtasks >= 0 {
                    maxtasks = -1 - maxtasks;
                }
            }
            // Positive is a task timeout, -1 none: both valid.
            _ => {
                if timeout > 0 {
                    timeout = -1 - timeout;
                } else if timeout == NO_TIMEOUT {
                    timeout = 0;
                }
            }
        }
        // SAFETY: numbers only.
        Some(unsafe { host::pool_new(processes, maxtasks, timeout) })
    }

    /// `pipe_send` within the input's budget. A negative length is over any
    /// limit (`E2BIG`, nothing sent).
    fn pipe_send(&mut self) -> Option<i32> {
        let (c, ptr, len) = (self.int(), self.int(), self.int());
        if len >= 0 {
            let cost = len as u32 + 2048;
            if len > PIPE_MAX_SEND || cost > self.pipe_budget {
                return None;
            }
            self.pipe_budget -= cost;
        }
        // SAFETY: numbers only; the host only reads guest memory here.
        Some(unsafe { host::pipe_send(c, ptr, len) })
    }

    /// Runs one operation; `false` when the input is used up.
    fn step(&mut self) -> bool {
        let op = match self.input.byte() {
            Some(op) => op as usize % OPCODES,
            None => return false,
        };
        let (name, ret) = match op {
            POKE => {
                self.poke();
                ("poke", Some(0))
            }
            // Ending in the middle, with whatever is still open.
            EXIT => {
                let code = self.input.b() as i32;
                self.trace_line("exit", Some(code));
                std::process::exit(code)
            }
            TRAP => {
                self.trace_line("trap", None);
                core::arch::wasm32::unreachable()
            }
            _ => {
                let function = &FUNCTIONS[op];
                (function.name, (function.drive)(self))
            }
        };
        self.trace_line(name, ret);
        let slot = self.input.b() as usize % SLOTS;
        self.slots[slot] = ret.unwrap_or(Errno::NoSys.to_return());
        true
    }

    fn trace_line(&self, name: &str, ret: Option<i32>) {
        if self.trace {
            match ret {
                Some(ret) => println!("fuzz_calls: {name} {ret}"),
                None => println!("fuzz_calls: {name} skipped"),
            }
        }
    }
}

/// Lists and strings a call can point at: `["true"]` at 0 (8 bytes),
/// `["cat"]` at 16 (7), `["A=B"]` at 32 (7), `"/"` at 48 (1), a list with
/// invalid UTF-8 at 64 (6), `"hi\n"` at 80 (3).
fn scratch() -> Vec<u8> {
    let mut s = vec![0u8; SCRATCH];
    let mut put = |at: usize, bytes: &[u8]| s[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\x04\0\0\0true");
    put(16, b"\x03\0\0\0cat");
    put(32, b"\x03\0\0\0A=B");
    put(48, b"/");
    put(64, b"\x02\0\0\0\xff\xfe");
    put(80, b"hi\n");
    s
}

fn decode_hex(text: &str) -> Vec<u8> {
    let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
    text.as_bytes()
        .chunks(2)
        .map(|p| digit(p[0]) << 4 | digit(*p.get(1).unwrap_or(&b'0')))
        .collect()
}

fn main() {
    let data = decode_hex(&std::env::args().nth(1).unwrap_or_default());
    let trace = std::env::args().nth(2).as_deref() == Some("trace");
    let mut machine = Machine {
        input: Input { data, pos: 0 },
        scratch: scratch(),
        slots: [0; SLOTS],
        pipe_budget: PIPE_BUDGET,
        trace,
    };
    let mut calls = 0;
    while calls < MAX_CALLS && machine.step() {
        calls += 1;
    }
}
