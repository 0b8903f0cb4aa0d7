//! The fuzzer's guest: runs a sequence of raw host calls decoded from its
//! first argument (hex), with hostile arguments. The fuzz target
//! (`fuzz/fuzz_targets/host_calls.rs`) runs it once per input.
//!
//! Input: a sequence of operations, each an opcode byte followed by its
//! arguments. An `i32` argument is a tag byte then: a value from a table of
//! edge cases, four raw bytes, the result of an earlier call (handles), or
//! an address inside a scratch buffer. Output pointers are kept inside the
//! scratch buffer or outside memory, so the guest's own data is never
//! overwritten and the run cannot loop. Timeouts are bounded (never `-1`):
//! an endless wait on `cat` is correct behaviour, not a finding.
//! `fork` and `process_start` are left out: they would fork the fuzzer.

use procbridge_sdk::sys;

const SCRATCH: usize = 4096;
const SLOTS: usize = 8;
const MAX_CALLS: usize = 64;

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
}

impl Machine {
    fn scratch_at(&mut self) -> i32 {
        let offset = u16::from_le_bytes([self.input.b(), self.input.b()]) as usize % SCRATCH;
        self.scratch.as_ptr() as i32 + offset as i32
    }

    /// Any `i32`: values, lengths, handles, read-only pointers.
    fn int(&mut self) -> i32 {
        match self.input.b() % 4 {
            0 => SMALL[self.input.b() as usize % SMALL.len()],
            1 => self.input.raw(),
            2 => self.slots[self.input.b() as usize % SLOTS],
            _ => self.scratch_at(),
        }
    }

    /// A pointer the host may write to: in the scratch buffer (with room
    /// for what the callers write) or outside memory.
    fn out(&mut self) -> i32 {
        let memory = (core::arch::wasm32::memory_size(0) * 65536) as i64;
        match self.input.b() % 4 {
            0 => {
                let offset = self.input.b() as i32 * 8;
                self.scratch.as_ptr() as i32 + offset
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
        let inside = ptr >= self.scratch.as_ptr() as i32
            && ptr < self.scratch.as_ptr() as i32 + SCRATCH as i32;
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

    /// Runs one operation; `false` when the input is used up.
    fn step(&mut self) -> bool {
        let op = match self.input.byte() {
            Some(op) => op,
            None => return false,
        };
        // SAFETY: every pointer is just a number to the host, which checks
        // it; the host only writes inside the scratch buffer or fails.
        let ret = unsafe {
            match op % 28 {
                0 => sys::getpid(),
                1 => sys::getppid(),
                2 => {
                    let (p, c) = self.out_cap();
                    sys::last_error(p as *mut u8, c)
                }
                3 => {
                    let (p, c) = self.out_cap();
                    sys::take_result(p as *mut u8, c)
                }
                4 => {
                    let (pid, options, status) = (self.int(), self.int(), self.out());
                    sys::waitpid(pid, options, status as *mut i32)
                }
                5 => {
                    let a = [
                        self.int(),
                        self.int(),
                        self.int(),
                        self.int(),
                        self.int(),
                        self.int(),
                        self.int(),
                        self.int(),
                        self.int(),
                    ];
                    sys::popen(
                        a[0] as *const u8,
                        a[1],
                        a[2] as *const u8,
                        a[3],
                        a[4] as *const u8,
                        a[5],
                        a[6],
                        a[7],
                        a[8],
                    )
                }
                6 => sys::popen_pid(self.int()),
                7 => {
                    let (h, p) = (self.int(), self.out());
                    sys::popen_poll(h, p as *mut i32)
                }
                8 => {
                    let (h, t, p) = (self.int(), self.timeout(), self.out());
                    sys::popen_wait(h, t, p as *mut i32)
                }
                9 => {
                    let (h, i, n, t, f, p) = (
                        self.int(),
                        self.int(),
                        self.int(),
                        self.timeout(),
                        self.int(),
                        self.out(),
                    );
                    sys::popen_communicate(h, i as *const u8, n, t, f, p as *mut i32)
                }
                10 => {
                    let (h, p) = (self.int(), self.out());
                    sys::popen_take_output(h, p as *mut i32)
                }
                11 => {
                    let (h, p, n, t) = (self.int(), self.int(), self.int(), self.timeout());
                    sys::popen_write(h, p as *const u8, n, t)
                }
                12 => {
                    let (h, s) = (self.int(), self.int());
                    let (p, c) = self.out_cap();
                    sys::popen_read(h, s, p as *mut u8, c, self.timeout())
                }
                13 => sys::popen_close_stdin(self.int()),
                14 => {
                    let (h, s) = (self.int(), self.int());
                    sys::popen_send_signal(h, s)
                }
                15 => sys::popen_close(self.int()),
                16 => {
                    let (h, t) = (self.int(), self.timeout());
                    sys::process_join(h, t)
                }
                17 => sys::process_is_alive(self.int()),
                18 => sys::process_pid(self.int()),
                19 => {
                    let (h, p) = (self.int(), self.out());
                    sys::process_exitcode(h, p as *mut i32)
                }
                20 => sys::process_terminate(self.int()),
                21 => sys::process_kill(self.int()),
                22 => sys::process_close(self.int()),
                23 => {
                    let (p, n) = (self.int(), self.int());
                    sys::task_return(p as *const u8, n)
                }
                24 => {
                    let (p, n) = (self.int(), self.int());
                    sys::task_error(p as *const u8, n)
                }
                25 => {
                    self.poke();
                    0
                }
                // Ending in the middle, with whatever is still open.
                26 => std::process::exit(self.input.b() as i32),
                _ => core::arch::wasm32::unreachable(),
            }
        };
        let slot = self.input.b() as usize % SLOTS;
        self.slots[slot] = ret;
        true
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
    let mut machine = Machine {
        input: Input { data, pos: 0 },
        scratch: scratch(),
        slots: [0; SLOTS],
    };
    let mut calls = 0;
    while calls < MAX_CALLS && machine.step() {
        calls += 1;
    }
}
