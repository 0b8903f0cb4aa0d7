//! The `fuzz_calls` guest (`guests/fuzz_calls`), run the way the fuzz
//! target `fuzz/fuzz_targets/host_calls.rs` runs it (through the library, in
//! this process, under its policy): every function of the ABI table has its
//! opcode (its index in the table) and is called, except `fork`; the ones
//! that could fork or stop the fuzzer never do; the guest exits normally and
//! the host never panics.
//!
//! The seed corpus (`fuzz/seeds/host_calls`) is written here, call by call
//! with the result each call must give, so it follows the table's order. To
//! rewrite it after a change to the table or to the guest's decoding:
//!
//! ```sh
//! PROCBRIDGE_BLESS=1 cargo test --release --test all fuzz_guest
//! ```

use crate::support::*;
use procbridge::{GuestBuilder, Limits, OutputCapture, Policy, Program, Stdio};
use procbridge_abi::Errno;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use wasmtime::{ExternType, ValType};

macro_rules! names {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
        [$($(stringify!($name)),*),*]
    };
}

/// The table's functions, in its order: the guest's opcodes.
const NAMES: [&str; procbridge_abi::FUNCTION_COUNT] = procbridge_abi::functions!(names);

/// The guest's actions, after the functions.
const POKE: u8 = NAMES.len() as u8;
const EXIT: u8 = POKE + 1;
const TRAP: u8 = POKE + 2;

/// The guest's timeouts (`TIMEOUTS` in its source), by index.
const TIMEOUTS: [i64; 4] = [0, 1, 1000, 20_000];

fn opcode(name: &str) -> u8 {
    NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("{name} is not in the table")) as u8
}

/// The fuzz target's policy (`fuzz/fuzz_targets/host_calls.rs` with
/// `common::limits`).
fn policy() -> Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let limits = Limits {
                max_handles: 16,
                max_processes: 8,
                max_output_bytes: 64 << 10,
                max_memory_bytes: 64 << 20,
                ..Limits::default()
            };
            let policy = Policy::builder()
                .allow_run("true")
                .and_then(|p| p.allow_run("cat"))
                .expect("grant true and cat")
                .limits(limits)
                .build();
            Arc::new(policy)
        })
        .clone()
}

fn program() -> &'static Program {
    static PROGRAM: OnceLock<Program> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        runtime()
            .load_file(guest("fuzz_calls"))
            .expect("load fuzz_calls")
    })
}

/// One run of the guest.
#[derive(Debug)]
struct Run {
    /// The exit code, or the error (a trap).
    code: Result<i32, String>,
    /// Each operation's name and result (`skipped` when not called).
    trace: Vec<(String, String)>,
    /// What the guest and the host printed there (shown by failures).
    #[allow(dead_code)]
    stderr: String,
}

/// Runs the guest on `input` as the fuzz target does (stdin and stderr
/// null there; here stdout carries the trace), failing on a host panic.
fn run(input: &[u8]) -> Run {
    let out = OutputCapture::new(1 << 20);
    let err = OutputCapture::new(1 << 20);
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    let mut guest = GuestBuilder::new();
    guest
        .arg("fuzz_calls")
        .arg(hex.clone())
        .arg("trace")
        .stdin(Stdio::Null)
        .stdout(Stdio::Capture(out.clone()))
        .stderr(Stdio::Capture(err.clone()))
        .policy(policy());
    let state = guest.build().expect("guest state");
    let code = catch_unwind(AssertUnwindSafe(|| runtime().run(program(), state)))
        .unwrap_or_else(|_| panic!("the host panicked on input {hex}"))
        .map_err(|e| format!("{e:#}"));
    let trace = out
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("fuzz_calls: "))
        .map(|l| {
            let (name, ret) = l.split_once(' ').unwrap_or((l, ""));
            (name.to_string(), ret.to_string())
        })
        .collect();
    let stderr = err.text();
    assert!(
        !stderr.contains("panicked"),
        "the host panicked on input {hex}:\n{stderr}"
    );
    Run {
        code,
        trace,
        stderr,
    }
}

/// Inputs that call function `op` first: its arguments from one byte
/// repeated (edge values, scratch addresses, slots, bytes the host wrote),
/// and with live handles made first (a `cat`, a queue, a pipe) and passed to
/// it. The bytes left over run as more calls, none of them an action.
fn inputs_for(op: u8) -> Vec<(Vec<u8>, usize)> {
    let fill = |first: &[u8], byte: u8| {
        let mut input = first.to_vec();
        input.push(op);
        input.extend(std::iter::repeat_n(byte, 48));
        input
    };
    let mut inputs: Vec<(Vec<u8>, usize)> = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0b, 0xff]
        .iter()
        .map(|&b| (fill(&[], b), 0))
        .collect();
    // Byte 0x02: every number is slot 2, every timeout 1 ms.
    let cat = Seed::new().call("popen", &cat_args(), Want::Positive, 2);
    let queue = Seed::new().call(
        "queue_new",
        &[Arg::Raw(1), Arg::Raw(0), Arg::Raw(1)],
        Want::Positive,
        2,
    );
    // Byte 0x09: every number is the pipe's second handle (the `i32` at
    // scratch offset 36), every timeout 1 µs.
    let pipe = Seed::new().call("pipe_new", &[Arg::Raw(1), Arg::Out(32)], Want::Eq(0), 0);
    inputs.push((fill(&cat.bytes, 0x02), 1));
    inputs.push((fill(&queue.bytes, 0x02), 1));
    inputs.push((fill(&pipe.bytes, 0x09), 1));
    inputs
}

#[test]
fn every_function_of_the_table_has_its_opcode() {
    let ops = NAMES.len() as u8;
    for op in 0..ops {
        let name = NAMES[op as usize];
        let mut called = 0;
        for (input, at) in inputs_for(op) {
            let run = run(&input);
            assert_eq!(run.code, Ok(0), "{name}: input {input:02x?}: {run:?}");
            let (traced, ret) = run
                .trace
                .get(at)
                .unwrap_or_else(|| panic!("{name}: no trace: {run:?}"));
            assert_eq!(traced, name, "opcode {op} is not {name}: {run:?}");
            if ret != "skipped" {
                ret.parse::<i32>()
                    .unwrap_or_else(|_| panic!("{name}: not a result: {run:?}"));
                called += 1;
            }
        }
        if name == "fork" {
            assert_eq!(called, 0, "fork was called");
        } else {
            assert!(called > 0, "{name} was never called");
        }
    }
}

#[test]
fn the_fuzz_guest_exports_no_task_function() {
    // So `process_start` of any name fails before the host forks.
    for export in program().module().exports() {
        if let ExternType::Func(ty) = export.ty() {
            let params: Vec<ValType> = ty.params().collect();
            let results: Vec<ValType> = ty.results().collect();
            let task = params.len() == 1
                && matches!(params[0], ValType::I32)
                && results.len() == 1
                && matches!(results[0], ValType::I32);
            assert!(
                !task,
                "fuzz_calls exports a task function `{}`",
                export.name()
            );
        }
    }
}

#[test]
fn nothing_forks_or_signals_the_fuzzer() {
    // Every mode of process_start and pool_new, with arguments that would
    // otherwise start processes (method and flags valid, 2 workers).
    let mut seed = Seed::new();
    for target in 0..9u8 {
        for method in 0..3 {
            seed = seed.call(
                "process_start",
                &[
                    Arg::Byte(0),
                    Arg::Byte(target),
                    Arg::Raw(0),
                    Arg::Raw(0),
                    Arg::Raw(method),
                    Arg::Raw(0),
                ],
                Want::Negative,
                0,
            );
        }
    }
    for method in 0..3 {
        for mode in 1..3 {
            seed = seed.call(
                "process_start",
                &[
                    Arg::Byte(mode),
                    Arg::At(0),
                    Arg::Raw(4),
                    Arg::Raw(0),
                    Arg::Raw(0),
                    Arg::Raw(method),
                    Arg::Raw(0),
                ],
                Want::Eq(Errno::Inval.to_return()),
                0,
            );
        }
    }
    for mode in 0..3 {
        for processes in [1, 2, 256] {
            seed = seed.call(
                "pool_new",
                &[
                    Arg::Byte(mode),
                    Arg::Raw(processes),
                    Arg::Raw(0),
                    Arg::Timeout(1000),
                ],
                Want::Eq(Errno::Inval.to_return()),
                0,
            );
        }
    }
    let seed = seed
        .call("fork", &[], Want::Skipped, 0)
        .call("getpid", &[], Want::Positive, 1)
        .call("kill", &[Arg::Slot(1), Arg::Raw(9)], Want::Skipped, 0)
        .call("kill", &[Arg::Slot(1), Arg::Raw(15)], Want::Skipped, 0);
    seed.assert_runs("nothing_forks_or_signals_the_fuzzer");
}

#[test]
fn seeds_are_current_and_do_what_they_say() {
    let dir = root().join("fuzz/seeds/host_calls");
    let seeds = seeds();
    let bless = std::env::var_os("PROCBRIDGE_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, seed) in &seeds {
        seed.assert_runs(name);
        let path = dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(&seed.bytes[..]) {
            if bless {
                std::fs::write(&path, &seed.bytes).unwrap();
            } else {
                stale.push(name.to_string());
            }
        }
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !seeds.iter().any(|(n, _)| *n == name) {
            if bless {
                std::fs::remove_file(&path).unwrap();
            } else {
                stale.push(format!("{name} (not a seed any more)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz/seeds/host_calls is stale: {stale:?}; rewrite it with \
         PROCBRIDGE_BLESS=1 cargo test --release --test all fuzz_guest"
    );
}

/// An argument as the guest decodes it.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// Any number: four raw bytes.
    Raw(i32),
    /// The result of an earlier call.
    Slot(u8),
    /// The address of a scratch buffer offset.
    At(u16),
    /// The `i32` at a scratch buffer offset (a multiple of 4 below 1024).
    Loaded(u16),
    /// An output pointer at a scratch buffer offset (a multiple of 8 up to
    /// 2040).
    Out(u16),
    /// An output pointer and capacity in the scratch buffer (multiples of 8).
    OutCap(u16, u16),
    /// An output pointer 2 bytes before the end of memory (for a
    /// `ptr_mut`, its capacity follows: `Byte(0), Byte(n)` for `n`,
    /// `Byte(1)` for `-1`, `Byte(2)` for `i32::MAX`, `Byte(3)` for 2048).
    OutAtEnd,
    /// A timeout (one of the guest's).
    Timeout(i64),
    /// A byte (a mode, an index).
    Byte(u8),
}

impl Arg {
    fn encode(self, out: &mut Vec<u8>) {
        let eighth = |n: u16| {
            assert!(
                n.is_multiple_of(8) && n <= 2040,
                "{n}: not a multiple of 8 up to 2040"
            );
            (n / 8) as u8
        };
        match self {
            Arg::Raw(v) => {
                out.push(1);
                out.extend(v.to_le_bytes());
            }
            Arg::Slot(s) => out.extend([2, s]),
            Arg::At(offset) => {
                out.push(3);
                out.extend(offset.to_le_bytes());
            }
            Arg::Loaded(offset) => {
                assert!(offset.is_multiple_of(4) && offset < 1024, "{offset}");
                out.extend([4, (offset / 4) as u8]);
            }
            Arg::Out(offset) => out.extend([0, eighth(offset)]),
            Arg::OutCap(offset, cap) => out.extend([0, eighth(offset), 0, eighth(cap)]),
            Arg::OutAtEnd => out.push(1),
            Arg::Timeout(us) => {
                let index = TIMEOUTS.iter().position(|t| *t == us).expect("a timeout");
                out.push(index as u8);
            }
            Arg::Byte(b) => out.push(b),
        }
    }
}

/// What an operation must give.
#[derive(Clone, Copy, Debug)]
enum Want {
    Eq(i32),
    Positive,
    Negative,
    /// Not called.
    Skipped,
    /// Depends on timing.
    Any,
}

impl Want {
    fn accepts(self, ret: &str) -> bool {
        let value = ret.parse::<i32>();
        match self {
            Want::Eq(want) => value == Ok(want),
            Want::Positive => value.is_ok_and(|v| v > 0),
            Want::Negative => value.is_ok_and(|v| v < 0),
            Want::Skipped => ret == "skipped",
            Want::Any => value.is_ok(),
        }
    }
}

/// An input, operation by operation, with what each must give.
#[derive(Clone, Debug, Default)]
struct Seed {
    bytes: Vec<u8>,
    wants: Vec<(&'static str, Want)>,
    /// The exit code, `None` for a trap.
    code: Option<i32>,
}

impl Seed {
    fn new() -> Seed {
        Seed {
            code: Some(0),
            ..Seed::default()
        }
    }

    /// Calls `name` (its arguments in the table's order, a mode byte first
    /// for the guarded functions), its result going to `slot`.
    fn call(mut self, name: &'static str, args: &[Arg], want: Want, slot: u8) -> Seed {
        self.bytes.push(opcode(name));
        for arg in args {
            arg.encode(&mut self.bytes);
        }
        self.bytes.push(slot);
        self.wants.push((name, want));
        self
    }

    /// Writes `bytes` into the scratch buffer at `offset` (a multiple of
    /// 16); its result (`0`) goes to slot 7.
    fn poke(mut self, offset: usize, bytes: &[u8]) -> Seed {
        assert!(offset.is_multiple_of(16) && offset / 16 < 256 && bytes.len() < 64);
        self.bytes
            .extend([POKE, (offset / 16) as u8, bytes.len() as u8]);
        self.bytes.extend(bytes);
        self.bytes.push(7);
        self.wants.push(("poke", Want::Eq(0)));
        self
    }

    fn exit(mut self, code: u8) -> Seed {
        self.bytes.extend([EXIT, code]);
        self.wants.push(("exit", Want::Eq(code.into())));
        self.code = Some(code.into());
        self
    }

    fn trap(mut self) -> Seed {
        self.bytes.push(TRAP);
        self.wants.push(("trap", Want::Skipped));
        self.code = None;
        self
    }

    fn assert_runs(&self, what: &str) {
        let run = run(&self.bytes);
        match self.code {
            Some(code) => assert_eq!(run.code, Ok(code), "{what}: {run:?}"),
            None => assert!(run.code.is_err(), "{what}: no trap: {run:?}"),
        }
        assert_eq!(
            run.trace.len(),
            self.wants.len(),
            "{what}: operations run: {run:?}"
        );
        for (i, ((name, want), (traced, ret))) in self.wants.iter().zip(&run.trace).enumerate() {
            assert_eq!(name, traced, "{what}: operation {i}: {run:?}");
            assert!(
                want.accepts(ret),
                "{what}: operation {i} ({name}) gave {ret}, not {want:?}: {run:?}"
            );
        }
    }
}

/// `popen(["cat"])` with its stdin and stdout piped, stderr null.
fn cat_args() -> Vec<Arg> {
    popen_args(16, 7, -1, -1, -2)
}

/// `popen` of the list at scratch `offset` (`["true"]` at 0, `["cat"]` at
/// 16), the environment inherited, the default cwd.
fn popen_args(offset: u16, len: i32, stdin: i32, stdout: i32, stderr: i32) -> Vec<Arg> {
    vec![
        Arg::At(offset),
        Arg::Raw(len),
        Arg::Raw(0),
        Arg::Raw(procbridge_abi::subprocess::ENV_INHERIT),
        Arg::Raw(0),
        Arg::Raw(0),
        Arg::Raw(stdin),
        Arg::Raw(stdout),
        Arg::Raw(stderr),
    ]
}

/// The seed corpus: one input per kind of use, each checked call by call.
fn seeds() -> Vec<(&'static str, Seed)> {
    use Arg::*;
    use Want::*;
    let inval = Eq(Errno::Inval.to_return());
    let badf = Eq(Errno::BadF.to_return());
    let epipe = Eq(Errno::Pipe.to_return());
    let cat = || Seed::new().call("popen", &cat_args(), Positive, 0);
    vec![
        (
            "cat_write_read_close",
            cat()
                .call(
                    "popen_write",
                    &[Slot(0), At(80), Raw(3), Timeout(20_000)],
                    Any,
                    1,
                )
                .call(
                    "popen_read",
                    &[Slot(0), Raw(1), OutCap(800, 16), Timeout(20_000)],
                    Any,
                    2,
                )
                .call("popen_close_stdin", &[Slot(0)], Eq(0), 3)
                .call("popen_wait", &[Slot(0), Timeout(20_000), Out(160)], Any, 3)
                .call("popen_close", &[Slot(0)], Eq(0), 3),
        ),
        (
            "cat_communicate_take",
            cat()
                .poke(1024, b"8 bytes\n")
                .call(
                    "popen_communicate",
                    &[Slot(0), At(1024), Raw(8), Timeout(20_000), Raw(0), Out(160)],
                    Any,
                    6,
                )
                .call("take_result", &[OutCap(320, 8)], Any, 7)
                .call("popen_take_output", &[Slot(0), Out(168)], Any, 7)
                .call("last_error", &[OutCap(400, 64)], Any, 7)
                .call("popen_close", &[Slot(0)], Eq(0), 3),
        ),
        (
            "cat_exit_mid",
            cat()
                .call(
                    "popen_write",
                    &[Slot(0), At(80), Raw(3), Timeout(20_000)],
                    Any,
                    1,
                )
                .exit(3),
        ),
        (
            "cat_trap_mid",
            cat()
                .call(
                    "popen_write",
                    &[Slot(0), At(80), Raw(3), Timeout(20_000)],
                    Any,
                    1,
                )
                .trap(),
        ),
        (
            "true_wait_poll_signal_close",
            Seed::new()
                .call("popen", &popen_args(0, 8, -2, -2, -2), Positive, 0)
                .call("popen_pid", &[Slot(0)], Positive, 1)
                .call("popen_wait", &[Slot(0), Timeout(20_000), Out(0)], Any, 2)
                .call("popen_poll", &[Slot(0), Out(8)], Any, 2)
                .call("popen_send_signal", &[Slot(0), Raw(15)], Any, 2)
                .call("popen_close", &[Slot(0)], Eq(0), 2)
                .call("popen_poll", &[Slot(0), Out(8)], badf, 2),
        ),
        (
            "true_call_at_once",
            Seed::new()
                .call(
                    "popen_call",
                    &[popen_args(0, 8, -2, -2, -2), vec![Timeout(20_000), Out(0)]].concat(),
                    Any,
                    0,
                )
                .call(
                    "popen_call",
                    &[popen_args(16, 7, -1, -2, -2), vec![Timeout(20_000), Out(0)]].concat(),
                    inval,
                    0,
                ),
        ),
        (
            "errors",
            Seed::new()
                .call("last_error", &[OutAtEnd, Byte(0), Byte(64)], Any, 0)
                .call("take_result", &[OutCap(0, 8)], inval, 0)
                .call(
                    "waitpid",
                    &[Raw(-1), Raw(0), Out(0)],
                    Eq(Errno::Child.to_return()),
                    0,
                )
                .call("popen", &popen_args(64, 6, -2, -2, -2), inval, 0)
                .call("popen", &popen_args(16, 7, 99, -2, -2), badf, 0)
                .call(
                    "popen_read",
                    &[Raw(1), Raw(7), OutAtEnd, Byte(1), Timeout(0)],
                    Negative,
                    0,
                )
                .call("task_return", &[At(80), Raw(-1)], inval, 0)
                .call("task_error", &[Raw(i32::MAX), Raw(16)], inval, 0)
                .call("cpu_count", &[], Positive, 0)
                .call("getppid", &[], Positive, 0),
        ),
        (
            "queue_put_get_rest",
            Seed::new()
                .poke(1024, b"8 bytes\n")
                .call("queue_new", &[Raw(2), Raw(0), Raw(1)], Positive, 1)
                .call(
                    "queue_put",
                    &[Slot(1), At(80), Raw(3), Timeout(1000)],
                    Eq(0),
                    2,
                )
                .call(
                    "queue_put",
                    &[Slot(1), At(1024), Raw(8), Timeout(0)],
                    Eq(0),
                    2,
                )
                .call("queue_full", &[Slot(1)], Eq(1), 2)
                .call(
                    "queue_put",
                    &[Slot(1), At(80), Raw(3), Timeout(1)],
                    Eq(Errno::TimedOut.to_return()),
                    2,
                )
                .call("queue_qsize", &[Slot(1)], Eq(2), 2)
                .call(
                    "queue_get",
                    &[Slot(1), OutCap(1040, 16), Timeout(1000)],
                    Eq(3),
                    2,
                )
                .call(
                    "queue_get",
                    &[Slot(1), OutCap(1040, 0), Timeout(0)],
                    Eq(8),
                    2,
                )
                .call("take_result", &[OutCap(1048, 8)], Eq(0), 2)
                .call("queue_empty", &[Slot(1)], Eq(1), 2)
                .call("queue_task_done", &[Slot(1)], Eq(0), 2)
                .call("queue_task_done", &[Slot(1)], Eq(0), 2)
                .call("queue_join", &[Slot(1), Timeout(1000)], Eq(0), 2)
                .call("queue_shutdown", &[Slot(1)], Eq(0), 2)
                .call(
                    "queue_get",
                    &[Slot(1), OutCap(1040, 16), Timeout(0)],
                    epipe,
                    2,
                )
                .call("queue_close", &[Slot(1)], Eq(0), 2)
                .call("queue_qsize", &[Slot(1)], badf, 2),
        ),
        (
            "pipe_send_recv_close",
            Seed::new()
                .call("pipe_new", &[Raw(1), Out(32)], Eq(0), 0)
                .call("pipe_send", &[Loaded(32), At(80), Raw(3)], Eq(0), 0)
                .call("pipe_poll", &[Loaded(36), Timeout(1000)], Eq(1), 0)
                .call(
                    "pipe_recv",
                    &[Loaded(36), OutCap(1024, 16), Timeout(1000)],
                    Eq(3),
                    0,
                )
                .call(
                    "pipe_send",
                    &[Loaded(36), At(0), Raw(-1)],
                    Eq(Errno::TooBig.to_return()),
                    0,
                )
                .call("pipe_send", &[Loaded(36), At(0), Raw(70_000)], Skipped, 0)
                .call("pipe_close", &[Loaded(32)], Eq(0), 0)
                .call(
                    "pipe_recv",
                    &[Loaded(36), OutCap(1024, 16), Timeout(1000)],
                    epipe,
                    0,
                )
                .call("pipe_close", &[Loaded(36)], Eq(0), 0),
        ),
        (
            "refused_forks_and_kill",
            Seed::new()
                .call("fork", &[], Skipped, 0)
                .call(
                    "process_start",
                    &[Byte(0), Byte(5), Raw(0), Raw(0), Raw(0), Raw(0)],
                    Eq(Errno::NoEnt.to_return()),
                    0,
                )
                .call(
                    "process_start",
                    &[Byte(0), Byte(1), At(80), Raw(3), Raw(2), Raw(0)],
                    inval,
                    0,
                )
                .call(
                    "process_start",
                    &[Byte(1), At(0), Raw(8), At(80), Raw(3), Raw(1), Raw(0)],
                    inval,
                    0,
                )
                .call(
                    "process_start",
                    &[Byte(2), At(0), Raw(8), At(80), Raw(3), Raw(0), Raw(1)],
                    inval,
                    0,
                )
                .call(
                    "pool_new",
                    &[Byte(0), Raw(2), Raw(0), Timeout(1000)],
                    inval,
                    0,
                )
                .call(
                    "pool_new",
                    &[Byte(1), Raw(2), Raw(0), Timeout(1000)],
                    inval,
                    0,
                )
                .call(
                    "pool_new",
                    &[Byte(2), Raw(2), Raw(0), Timeout(1000)],
                    inval,
                    0,
                )
                .call("getpid", &[], Positive, 1)
                .call("kill", &[Slot(1), Raw(9)], Skipped, 0)
                .call("kill", &[Raw(1), Raw(9)], Eq(Errno::Srch.to_return()), 0)
                .call("kill", &[Raw(0), Raw(65)], inval, 0),
        ),
        (
            "foreign_handles",
            cat()
                .call("queue_new", &[Raw(0), Raw(0), Raw(0)], Positive, 1)
                .call("process_join", &[Slot(0), Timeout(1000)], badf, 2)
                .call("process_exitcode", &[Slot(1), Out(8)], badf, 2)
                .call(
                    "pool_submit",
                    &[Slot(0), At(80), Raw(3), At(0), Raw(8), Raw(1)],
                    badf,
                    2,
                )
                .call(
                    "pool_result_next",
                    &[Slot(1), Raw(0), Raw(0), Timeout(1000)],
                    badf,
                    2,
                )
                .call("pool_share", &[Slot(1), Slot(0)], badf, 2)
                .call("pool_pids", &[Slot(0)], badf, 2)
                .call("pipe_send", &[Slot(1), At(80), Raw(3)], badf, 2)
                .call("queue_get", &[Slot(0), OutCap(64, 8), Timeout(1)], badf, 2)
                .call("popen_close_stdin", &[Slot(1)], badf, 2)
                .call("queue_close", &[Slot(1)], Eq(0), 2),
        ),
    ]
}
