//! [`Script`]: a WAT guest that makes host calls and checks each result.

use crate::support::*;
use procbridge::{Errno, GuestBuilder, Limits, OutputCapture, Policy, Stdio};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The WAT type of a parameter kind of the ABI table.
macro_rules! wat_type {
    (timeout) => {
        "i64"
    };
    ($kind:ident) => {
        "i32"
    };
}

/// The WAT signature of every host function, from the ABI table.
macro_rules! signatures {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {
        pub const SIGNATURES: &[(&str, &str)] = &[
            $($(
                (
                    stringify!($name),
                    concat!("(param", $(" ", wat_type!($kind),)* ") (result i32)"),
                ),
            )*)*
        ];
    };
}

procbridge_abi::functions!(signatures);

/// Where a script runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// In this process, through the library (nothing may fork).
    Library,
    /// Through the `procbridge` CLI (for `fork` and `process_start`).
    Cli,
}

/// Commands every script may run.
pub const GRANTED: [&str; 3] = ["true", "cat", "sleep"];

/// What a check accepts.
#[derive(Clone, Debug)]
enum Want {
    Eq(i32),
    Expr(String),
    Positive,
}

/// A hostile guest under construction; see the module docs of `hostile`.
#[derive(Clone, Debug)]
pub struct Script {
    via: Via,
    data: Vec<(u32, Vec<u8>)>,
    funcs: String,
    body: String,
    checks: Vec<String>,
    max_handles: Option<usize>,
    cli_args: Vec<String>,
}

/// The harness's own memory: scripts keep below it.
const HARNESS: u32 = 0xFE00;

impl Script {
    pub fn new(via: Via) -> Self {
        Script {
            via,
            data: Vec::new(),
            funcs: String::new(),
            body: String::new(),
            checks: Vec::new(),
            max_handles: None,
            cli_args: Vec::new(),
        }
    }

    /// Bytes at guest address `at`.
    pub fn data(mut self, at: u32, bytes: &[u8]) -> Self {
        assert!(at as usize + bytes.len() <= HARNESS as usize);
        self.data.push((at, bytes.to_vec()));
        self
    }

    /// A procbridge list (u32-LE length-prefixed items) at `at`; returns its
    /// length in bytes too.
    pub fn list(self, at: u32, items: &[&[u8]]) -> Self {
        let mut bytes = Vec::new();
        for item in items {
            bytes.extend_from_slice(&(item.len() as u32).to_le_bytes());
            bytes.extend_from_slice(item);
        }
        self.data(at, &bytes)
    }

    /// Extra module fields: functions, task exports.
    pub fn func(mut self, wat: &str) -> Self {
        self.funcs.push_str(wat);
        self.funcs.push('\n');
        self
    }

    /// Instructions run as they are.
    pub fn raw(mut self, wat: &str) -> Self {
        self.body.push_str(wat);
        self.body.push('\n');
        self
    }

    fn check_with(mut self, call: &str, want: Want, keep: Option<&str>) -> Self {
        let index = self.checks.len();
        assert!(index < 150, "too many checks in one script");
        let bad = match &want {
            Want::Eq(v) => format!("(i32.ne (local.get $r) (i32.const {v}))"),
            Want::Expr(e) => format!("(i32.ne (local.get $r) {e})"),
            Want::Positive => "(i32.le_s (local.get $r) (i32.const 0))".to_string(),
        };
        let _ = writeln!(
            self.body,
            "(local.set $r {call})\n(if {bad} (then (call $fail (i32.const {index}) (local.get $r))))"
        );
        if let Some(global) = keep {
            let _ = writeln!(self.body, "(global.set {global} (local.get $r))");
        }
        self.checks.push(format!("{call} == {want:?}"));
        self
    }

    /// `call` must return `want`.
    pub fn expect(self, call: &str, want: i32) -> Self {
        self.check_with(call, Want::Eq(want), None)
    }

    /// `call` must return the value of the WAT expression `want`.
    pub fn expect_expr(self, call: &str, want: &str) -> Self {
        self.check_with(call, Want::Expr(want.to_string()), None)
    }

    /// `call` must fail with `errno`.
    pub fn errno(self, call: &str, errno: Errno) -> Self {
        self.check_with(call, Want::Eq(errno.to_return()), None)
    }

    /// `call` must return a positive value (a handle, a pid), kept in
    /// `global` (`$a`, `$b`, `$c` or `$d`).
    pub fn keep(self, global: &str, call: &str) -> Self {
        self.check_with(call, Want::Positive, Some(global))
    }

    /// At most `n` open handles (library runs).
    pub fn max_handles(mut self, n: usize) -> Self {
        self.max_handles = Some(n);
        self
    }

    /// One more `procbridge run` flag (CLI runs).
    pub fn cli_arg(mut self, arg: &str) -> Self {
        self.cli_args.push(arg.to_string());
        self
    }

    /// The checks as WAT instructions, to embed in another function (a
    /// task, a fork child's branch). Check numbers restart at 0 there.
    pub fn body_text(&self) -> String {
        self.body.clone()
    }

    /// The host functions the script calls.
    pub fn called(&self) -> BTreeSet<String> {
        let text = format!("{}{}", self.funcs, self.body);
        SIGNATURES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                text.contains(&format!("(call ${name} "))
                    || text.contains(&format!("(call ${name})"))
            })
            .map(str::to_string)
            .collect()
    }

    /// The module, importing what it calls.
    pub fn wat(&self) -> String {
        self.module(&self.called())
    }

    /// The module, importing every function in [`SIGNATURES`].
    pub fn wat_importing_all(&self) -> String {
        self.module(&SIGNATURES.iter().map(|(n, _)| n.to_string()).collect())
    }

    fn module(&self, imports: &BTreeSet<String>) -> String {
        let mut wat = String::from("(module\n");
        for (name, sig) in SIGNATURES {
            if imports.contains(*name) {
                let _ = writeln!(
                    wat,
                    r#"(import "procbridge" "{name}" (func ${name} {sig}))"#
                );
            }
        }
        let _ = writeln!(wat, "{PRELUDE}");
        for (at, bytes) in &self.data {
            let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
            let _ = writeln!(wat, r#"(data (i32.const {at}) "{escaped}")"#);
        }
        let _ = writeln!(wat, "{}", self.funcs);
        let _ = writeln!(
            wat,
            "(func (export \"_start\") (local $r i32)\n{}\n(call $proc_exit (i32.const 0)))\n)",
            self.body
        );
        wat
    }

    /// Runs the script; its exit code, stdout and stderr.
    pub fn run(&self) -> Captured {
        match self.via {
            Via::Library => self.run_library(),
            Via::Cli => {
                let (mut cmd, _dir) = self.cli();
                let out = cmd.output().expect("run procbridge");
                Captured {
                    code: out.status.code().unwrap_or(-1),
                    stdout: stdout(&out),
                    stderr: stderr(&out),
                }
            }
        }
    }

    /// The `procbridge run` command for this script (CLI runs); the module
    /// file lives as long as the returned directory.
    pub fn cli(&self) -> (std::process::Command, tempfile::TempDir) {
        self.cli_for(&self.wat())
    }

    /// Like [`cli`](Self::cli), for the module text `wat`.
    pub fn cli_for(&self, wat: &str) -> (std::process::Command, tempfile::TempDir) {
        let (dir, path) = temp_file("hostile.wat", wat.as_bytes());
        let mut cmd = procbridge();
        cmd.arg("run");
        for name in GRANTED {
            cmd.args(["--allow-run", name]);
        }
        cmd.args(&self.cli_args).arg(&path);
        (cmd, dir)
    }

    fn run_library(&self) -> Captured {
        let rt = runtime();
        let program = rt
            .load_bytes("hostile.wat", self.wat().as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{}", self.wat()));
        let mut policy = Policy::builder();
        for name in GRANTED {
            policy = policy.allow_run(name).unwrap();
        }
        let mut limits = Limits::default();
        if let Some(n) = self.max_handles {
            limits.max_handles = n;
        }
        let policy = policy.limits(limits).build();
        let out = OutputCapture::new(1 << 20);
        let err = OutputCapture::new(1 << 20);
        let mut guest = GuestBuilder::new();
        guest
            .arg("hostile")
            .stdin(Stdio::Null)
            .stdout(Stdio::Capture(out.clone()))
            .stderr(Stdio::Capture(err.clone()))
            .policy(policy);
        let code = match rt.run(&program, guest.build().unwrap()) {
            Ok(code) => code,
            Err(e) => panic!(
                "the hostile guest trapped: {}",
                procbridge::runtime::causes(&e)
            ),
        };
        Captured {
            code,
            stdout: out.text(),
            stderr: err.text(),
        }
    }

    /// Runs the script and asserts every check held.
    pub fn assert_passes(&self, name: &str) {
        let out = self.run();
        if out.code != 0 {
            // The stderr line names the check (exit codes stop at 125).
            let index = out
                .stderr
                .split("check ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse::<i32>().ok())
                .or_else(|| out.code.checked_sub(100));
            let what = index
                .and_then(|i| self.checks.get(i as usize))
                .map(String::as_str)
                .unwrap_or("(not a check: the guest itself failed)");
            panic!(
                "{name}: exit code {}; failed check: {what}\nstdout: {}\nstderr: {}",
                out.code, out.stdout, out.stderr
            );
        }
    }
}

/// The harness part of every script: WASI imports, memory, globals, and
/// `$fail`, `$print` (a decimal line on stdout) and `$checkpoint` (prints
/// `ready` and waits for a byte on stdin).
const PRELUDE: &str = r#"
(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
(import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
(import "procbridge" "last_error" (func $harness_last_error (param i32 i32) (result i32)))
(memory (export "memory") 1)
(global $a (mut i32) (i32.const 0))
(global $b (mut i32) (i32.const 0))
(global $c (mut i32) (i32.const 0))
(global $d (mut i32) (i32.const 0))
(data (i32.const 0xFE80) "check ")
(data (i32.const 0xFE88) " got ")
(data (i32.const 0xFE90) ": ")
(data (i32.const 0xFE94) "\n")
(data (i32.const 0xFE98) "ready\n")
(func $write (param $fd i32) (param $ptr i32) (param $len i32)
  (i32.store (i32.const 0xFE00) (local.get $ptr))
  (i32.store (i32.const 0xFE04) (local.get $len))
  (drop (call $fd_write (local.get $fd) (i32.const 0xFE00) (i32.const 1) (i32.const 0xFE08))))
(func $fmt (param $v i32) (param $fd i32) (param $newline i32)
  (local $p i32) (local $neg i32) (local $u i64)
  (local.set $u (i64.extend_i32_s (local.get $v)))
  (if (i64.lt_s (local.get $u) (i64.const 0))
    (then (local.set $neg (i32.const 1))
          (local.set $u (i64.sub (i64.const 0) (local.get $u)))))
  (local.set $p (i32.const 0xFE40))
  (i32.store8 (i32.const 0xFE40) (i32.const 10))
  (loop $digits
    (local.set $p (i32.sub (local.get $p) (i32.const 1)))
    (i32.store8 (local.get $p)
      (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $u) (i64.const 10)))))
    (local.set $u (i64.div_u (local.get $u) (i64.const 10)))
    (br_if $digits (i64.ne (local.get $u) (i64.const 0))))
  (if (local.get $neg)
    (then (local.set $p (i32.sub (local.get $p) (i32.const 1)))
          (i32.store8 (local.get $p) (i32.const 45))))
  ;; One write, newline included: lines of processes sharing stdout do not
  ;; interleave.
  (call $write (local.get $fd) (local.get $p)
    (i32.add (i32.sub (i32.const 0xFE40) (local.get $p)) (local.get $newline))))
(func $print (param $v i32)
  (call $fmt (local.get $v) (i32.const 1) (i32.const 1)))
(func $fail (param $index i32) (param $got i32)
  (local $n i32)
  (call $write (i32.const 2) (i32.const 0xFE80) (i32.const 6))
  (call $fmt (local.get $index) (i32.const 2) (i32.const 0))
  (call $write (i32.const 2) (i32.const 0xFE88) (i32.const 5))
  (call $fmt (local.get $got) (i32.const 2) (i32.const 0))
  (call $write (i32.const 2) (i32.const 0xFE90) (i32.const 2))
  (local.set $n (call $harness_last_error (i32.const 0xFF00) (i32.const 255)))
  (if (i32.gt_s (local.get $n) (i32.const 255)) (then (local.set $n (i32.const 255))))
  (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
  (call $write (i32.const 2) (i32.const 0xFF00) (local.get $n))
  (call $write (i32.const 2) (i32.const 0xFE94) (i32.const 1))
  ;; WASI refuses exit codes from 126 up: the stderr line says which check.
  (call $proc_exit (i32.add (i32.const 100)
    (select (local.get $index) (i32.const 25) (i32.lt_u (local.get $index) (i32.const 25))))))
(func $checkpoint
  (call $write (i32.const 1) (i32.const 0xFE98) (i32.const 6))
  (i32.store (i32.const 0xFE00) (i32.const 0xFE60))
  (i32.store (i32.const 0xFE04) (i32.const 1))
  (drop (call $fd_read (i32.const 0) (i32.const 0xFE00) (i32.const 1) (i32.const 0xFE08))))
"#;
