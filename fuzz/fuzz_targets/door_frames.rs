//! Drives the door (`procbridge python`'s way into the host functions)
//! with arbitrary frames and arbitrary WASI arguments, against a real
//! instance.
//!
//! Each input is handed (hex) to a fixed WAT guest, given a door, which
//! decodes it into up to 64 operations: an opcode byte, then its arguments.
//!
//! | `op & 7` | operation |
//! |---|---|
//! | 0, 7 | a `u16` length and that many bytes: copied into the scratch region (at `(op >> 3) * 8` in it) and written to the door as one frame |
//! | 1 | the last frame's write again (its iovec as it now is in memory) |
//! | 2 | `fd_write` to the door with a pointer (the iovec), a length byte (`255` is `-1`) and a pointer (`nwritten`); bit 3 of `op` set: to bound door `op >> 4 & 7` (below) |
//! | 3 | `path_open`: a byte (bits 0-1: in descriptor 3, 3, the door, or the next byte; bit 2: follow symlinks; bit 3: `O_DIRECTORY`), a name (`0`: `door`; bit 7 set: bound door name `n & 15` of [`BOUND_NAMES`]; else `n & 15` bytes) and a result pointer |
//! | 4 | `fd_read` on the door, or (bit 3 of `op` set) bound door `op >> 4 & 7`, with a pointer, a length byte and a pointer |
//! | 5 | a byte: odd closes the door (bit 1: its directory, descriptor 3; bit 2: bound door `b >> 3 & 7`), even is `fd_fdstat_get` on the door (bit 2: on bound door `b >> 3 & 7`) with a pointer |
//! | 6 | `proc_exit` with the next byte (bit 3 of `op` set), or a trap |
//!
//! A pointer is a tag byte then: an offset (`u16`) in the scratch region,
//! a low address (`u16`: the last frame's iovec is at `0x30`, its
//! `nwritten` at `0x38`), the end of memory less a byte, or four raw bytes.
//!
//! Before every write to the door the guest reads the frame it will hand
//! over (through the iovec, as the host will) and makes it safe to run in
//! the fuzzer's own process: `fork`, `process_start` and `pool_new` (which
//! would fork the fuzzer) get their name changed (the host answers
//! `-ENOSYS`), as does `kill` of the fuzzer's own pid; `i64` timeouts of
//! `-1` become 1 ms and longer ones are cut below 10 ms; `pipe_send` may
//! send 96 KiB in all per input (it has no timeout: a pipe nobody reads
//! blocks when full, as it should). Bound doors (`bind/FUNCTION/HANDLE`)
//! are opened only by the names in [`BOUND_NAMES`], built from constants
//! just before each `path_open` (names the guest's memory held could be
//! overwritten into one without a timeout); a write to one counts against
//! the same 96 KiB. Everything that decides this lives in
//! wasm globals and locals, where no host call can write. The policy grants
//! `true` only.
//!
//! The guest may trap or exit anywhere; the host must not panic, and after
//! every run no child process and no file descriptor may be left behind.
//!
//! `cargo +nightly fuzz run door_frames` from the repository root.
#![no_main]

mod common;

use common::{hex, no_children, open_fds};
use libfuzzer_sys::fuzz_target;
use procbridge::python::DOOR_FD;
use procbridge::{GuestBuilder, Policy, Program, Runtime, Stdio};
use std::sync::{Arc, OnceLock};

/// The bound doors the guest may open: every function that can be bound,
/// on the first handles, each receive and `queue_put` with a timeout (a
/// door waiting forever would hang the fuzzer), and names refused.
const BOUND_NAMES: [&str; 16] = [
    "bind/queue_get/1/1000",
    "bind/queue_put/1/1000",
    "bind/pipe_recv/1/1000",
    "bind/pipe_send/1",
    "bind/queue_get/2/0",
    "bind/queue_put/2/0",
    "bind/pipe_recv/2/0",
    "bind/pipe_send/2",
    "bind/queue_get/3/500",
    "bind/pipe_send/3",
    "bind/pipe_recv/3/999",
    "bind/queue_put/3/2000",
    "bind/getpid/1",
    "bind/queue_get/0/0",
    "bind/queue_get/1/-2",
    "bind/queue_new/1",
];

/// WAT that writes bound door name `$idx` at `0x2F100` from constants and
/// sets `$plen` to its length.
fn bound_name_wat() -> String {
    let mut wat = String::new();
    for (i, name) in BOUND_NAMES.iter().enumerate() {
        let mut bytes = [0u8; 24];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        wat += &format!("(if (i32.eq (local.get $idx) (i32.const {i})) (then ");
        for (k, word) in bytes.chunks(8).enumerate() {
            let word = i64::from_le_bytes(word.try_into().expect("8 bytes"));
            wat += &format!("(i64.store (i32.const {}) (i64.const {word})) ", 0x2F100 + 8 * k);
        }
        wat += &format!("(local.set $plen (i32.const {}))))\n", name.len());
    }
    wat
}

/// The guest's memory (4 pages):
///
/// | address | what |
/// |---|---|
/// | `0x0000` | a `getpid` frame, used once at the start to learn the pid |
/// | `0x0020` | `"door"` |
/// | `0x0030` | the iovec of the last frame (8 bytes), `nwritten` at `0x38` |
/// | `0x0040` | `args_sizes_get`'s answers |
/// | `0x1000` | the decoded input (at most 64 KiB) |
/// | `0x11000` | the scratch region: frames, names (`0x2F000`) |
/// | `0x30000` | `argv` (memory grows if it does not fit) |
fn guest_wat() -> String {
    let name_i32 = |s: &[u8; 4]| i32::from_le_bytes(*s);
    let name_i64 = |s: &[u8; 8]| i64::from_le_bytes(*s);
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 4)
  (data (i32.const 0x0) "PBD1\00\00\00\00\06getpid\00")
  (data (i32.const 0x20) "door")

  ;; What makes frames safe: never in memory.
  (global $pid (mut i32) (i32.const 0))
  (global $budget (mut i32) (i32.const 0x18000))
  ;; The input.
  (global $pos (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  ;; A frame's arguments as the host decodes them: the first three before
  ;; the rest is spliced in, their count, where the rest goes.
  (global $a0 (mut i32) (i32.const 0))
  (global $a1 (mut i32) (i32.const 0))
  (global $a2 (mut i32) (i32.const 0))
  (global $cnt (mut i32) (i32.const 0))
  (global $slot (mut i32) (i32.const -1))
  (global $ra (mut i32) (i32.const 0))
  (global $rl (mut i32) (i32.const 0))

  (func $mem_bytes (result i64)
    (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))

  ;; Whether [addr, addr + len) is inside memory.
  (func $inside (param $addr i32) (param $len i32) (result i32)
    (i64.le_u
      (i64.add (i64.extend_i32_u (local.get $addr)) (i64.extend_i32_u (local.get $len)))
      (call $mem_bytes)))

  ;; The next input byte (0 past the end).
  (func $byte (result i32)
    (local $b i32)
    (if (i32.lt_u (global.get $pos) (global.get $end))
      (then (local.set $b (i32.load8_u (global.get $pos)))))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
    (local.get $b))

  (func $u16 (result i32)
    (i32.or (call $byte) (i32.shl (call $byte) (i32.const 8))))

  (func $u32 (result i32)
    (i32.or (call $u16) (i32.shl (call $u16) (i32.const 16))))

  ;; A pointer: scratch offset, low address, end of memory less a byte,
  ;; or raw.
  (func $ptr (result i32)
    (local $tag i32)
    (local.set $tag (i32.and (call $byte) (i32.const 3)))
    (if (i32.eqz (local.get $tag))
      (then (return (i32.add (i32.const 0x11000) (call $u16)))))
    (if (i32.eq (local.get $tag) (i32.const 1))
      (then (return (call $u16))))
    (if (i32.eq (local.get $tag) (i32.const 2))
      (then (return (i32.sub (i32.wrap_i64 (call $mem_bytes)) (call $byte)))))
    (call $u32))

  ;; A count: a byte, 255 is -1.
  (func $count (result i32)
    (local $b i32)
    (local.set $b (call $byte))
    (if (result i32) (i32.eq (local.get $b) (i32.const 255))
      (then (i32.const -1))
      (else (local.get $b))))

  ;; Changes the first byte of the frame's name: no such function.
  (func $mangle (param $base i32)
    (i32.store8 offset=9 (local.get $base)
      (i32.xor (i32.load8_u offset=9 (local.get $base)) (i32.const 0x20))))

  (func $push (param $v i32)
    (if (i32.eqz (global.get $cnt)) (then (global.set $a0 (local.get $v))))
    (if (i32.eq (global.get $cnt) (i32.const 1)) (then (global.set $a1 (local.get $v))))
    (if (i32.eq (global.get $cnt) (i32.const 2)) (then (global.set $a2 (local.get $v))))
    (global.set $cnt (i32.add (global.get $cnt) (i32.const 1))))

  ;; Argument $i (0 to 2) of the decoded call, the rest spliced in.
  (func $arg (param $i i32) (result i32)
    (if (i32.ge_s (global.get $slot) (i32.const 0))
      (then
        (if (i32.eq (local.get $i) (global.get $slot)) (then (return (global.get $ra))))
        (if (i32.eq (local.get $i) (i32.add (global.get $slot) (i32.const 1)))
          (then (return (global.get $rl))))
        (if (i32.gt_s (local.get $i) (global.get $slot))
          (then (local.set $i (i32.sub (local.get $i) (i32.const 2)))))))
    (if (i32.eqz (local.get $i)) (then (return (global.get $a0))))
    (if (i32.eq (local.get $i) (i32.const 1)) (then (return (global.get $a1))))
    (global.get $a2))

  ;; Makes the frame at [base, base + len) (inside memory) safe to call,
  ;; decoding it as the host's `frame::decode` does.
  (func $sanitize (param $base i32) (param $len i32)
    (local $n i32) (local $p i32) (local $kind i32) (local $argc i32) (local $i i32)
    (local $tag i32) (local $l i32) (local $t i64) (local $ok i32) (local $total i32)
    ;; Shorter than the header and a name length: nothing is called.
    (if (i32.lt_u (local.get $len) (i32.const 9)) (then (return)))
    (local.set $n (i32.load8_u offset=8 (local.get $base)))
    (local.set $p (i32.add (i32.const 9) (local.get $n)))
    (if (i32.gt_u (local.get $p) (local.get $len)) (then (return)))
    (if (i32.eq (local.get $n) (i32.const 4))
      (then
        (if (i32.eq (i32.load offset=9 (local.get $base)) (i32.const {fork}))
          (then (call $mangle (local.get $base)) (return)))
        (if (i32.eq (i32.load offset=9 (local.get $base)) (i32.const {kill}))
          (then (local.set $kind (i32.const 1))))))
    (if (i32.eq (local.get $n) (i32.const 8))
      (then
        (if (i64.eq (i64.load offset=9 (local.get $base)) (i64.const {pool_new}))
          (then (call $mangle (local.get $base)) (return)))))
    (if (i32.eq (local.get $n) (i32.const 13))
      (then
        (if (i32.and
              (i64.eq (i64.load offset=9 (local.get $base)) (i64.const {process_}))
              (i64.eq (i64.load offset=14 (local.get $base)) (i64.const {ss_start})))
          (then (call $mangle (local.get $base)) (return)))))
    (if (i32.eq (local.get $n) (i32.const 9))
      (then
        (if (i32.and
              (i64.eq (i64.load offset=9 (local.get $base)) (i64.const {pipe_sen}))
              (i32.eq (i32.load8_u offset=17 (local.get $base)) (i32.const 0x64)))
          (then (local.set $kind (i32.const 2))))))
    ;; The arguments (every frame: its timeouts are bounded).
    (global.set $cnt (i32.const 0))
    (global.set $slot (i32.const -1))
    (block $malformed
      (br_if $malformed (i32.ge_u (local.get $p) (local.get $len)))
      (local.set $argc (i32.load8_u (i32.add (local.get $base) (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $malformed (i32.gt_u (local.get $argc) (i32.const 16)))
      (block $args_end
        (loop $next
          (br_if $args_end (i32.ge_u (local.get $i) (local.get $argc)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $malformed (i32.ge_u (local.get $p) (local.get $len)))
          (local.set $tag (i32.load8_u (i32.add (local.get $base) (local.get $p))))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (block $tagged
            ;; 'i'
            (if (i32.eq (local.get $tag) (i32.const 0x69))
              (then
                (br_if $malformed (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $len)))
                (call $push (i32.load (i32.add (local.get $base) (local.get $p))))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (br $tagged)))
            ;; 'I': -1 waits forever, a long timeout nearly so.
            (if (i32.eq (local.get $tag) (i32.const 0x49))
              (then
                (br_if $malformed (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $len)))
                (local.set $t (i64.load (i32.add (local.get $base) (local.get $p))))
                (if (i64.eq (local.get $t) (i64.const -1))
                  (then
                    (local.set $t (i64.const 1000))
                    (i64.store (i32.add (local.get $base) (local.get $p)) (local.get $t))))
                (if (i64.gt_s (local.get $t) (i64.const 10000))
                  (then
                    (local.set $t (i64.rem_u (local.get $t) (i64.const 10000)))
                    (i64.store (i32.add (local.get $base) (local.get $p)) (local.get $t))))
                (call $push (i32.wrap_i64 (local.get $t)))
                (local.set $p (i32.add (local.get $p) (i32.const 8)))
                (br $tagged)))
            ;; 'b' and 'B'
            (if (i32.or (i32.eq (local.get $tag) (i32.const 0x62)) (i32.eq (local.get $tag) (i32.const 0x42)))
              (then
                (br_if $malformed (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $len)))
                (local.set $l (i32.load (i32.add (local.get $base) (local.get $p))))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (br_if $malformed (i32.gt_u (local.get $l) (i32.sub (local.get $len) (local.get $p))))
                (call $push (i32.add (local.get $base) (local.get $p)))
                (if (i32.eq (local.get $tag) (i32.const 0x42))
                  (then (call $push (local.get $l))))
                (local.set $p (i32.add (local.get $p) (local.get $l)))
                (br $tagged)))
            ;; 'R', once
            (if (i32.eq (local.get $tag) (i32.const 0x52))
              (then
                (br_if $malformed (i32.ge_s (global.get $slot) (i32.const 0)))
                (global.set $slot (global.get $cnt))
                (br $tagged)))
            (br $malformed))
          (br $next)))
      (if (i32.ge_s (global.get $slot) (i32.const 0))
        (then
          (global.set $ra (i32.add (local.get $base) (local.get $p)))
          (global.set $rl (i32.sub (local.get $len) (local.get $p)))
          (local.set $total (i32.add (global.get $cnt) (i32.const 2))))
        (else
          (br_if $malformed (i32.ne (local.get $p) (local.get $len)))
          (local.set $total (global.get $cnt))))
      (local.set $ok (i32.const 1)))
    ;; kill: never the fuzzer itself (a frame not decoded here is not
    ;; trusted either).
    (if (i32.eq (local.get $kind) (i32.const 1))
      (then
        (if (i32.eqz (local.get $ok))
          (then (call $mangle (local.get $base)) (return)))
        (if (i32.and
              (i32.ge_u (local.get $total) (i32.const 1))
              (i32.eq (call $arg (i32.const 0)) (global.get $pid)))
          (then (call $mangle (local.get $base))))))
    ;; pipe_send: within the budget.
    (if (i32.eq (local.get $kind) (i32.const 2))
      (then
        (if (i32.eqz (local.get $ok))
          (then (call $mangle (local.get $base)) (return)))
        (if (i32.ge_u (local.get $total) (i32.const 3))
          (then
            (local.set $l (call $arg (i32.const 2)))
            (if (i32.or
                  (i32.gt_u (local.get $l) (i32.const 0x10000))
                  (i32.gt_u (i32.add (local.get $l) (i32.const 2048)) (global.get $budget)))
              (then (call $mangle (local.get $base)))
              (else
                (global.set $budget
                  (i32.sub (global.get $budget) (i32.add (local.get $l) (i32.const 2048)))))))))))

  ;; fd_write to the door, after making the frame the host will read safe.
  (func $write (param $iovs i32) (param $iovs_len i32) (param $nwritten i32)
    (local $base i32) (local $len i32)
    (if (i32.and (i32.eq (local.get $iovs_len) (i32.const 1))
                 (call $inside (local.get $iovs) (i32.const 8)))
      (then
        (local.set $base (i32.load (local.get $iovs)))
        (local.set $len (i32.load offset=4 (local.get $iovs)))
        (if (call $inside (local.get $base) (local.get $len))
          (then
            (call $sanitize (local.get $base) (local.get $len))
            ;; Making it safe must not have moved the frame (an iovec
            ;; inside its own frame).
            (if (i32.or (i32.ne (i32.load (local.get $iovs)) (local.get $base))
                        (i32.ne (i32.load offset=4 (local.get $iovs)) (local.get $len)))
              (then (return)))))))
    (drop (call $fd_write (i32.const {door_fd}) (local.get $iovs) (local.get $iovs_len) (local.get $nwritten))))

  ;; Bound door `op >> 4 & 7`'s descriptor.
  (func $bound_fd (param $op i32) (result i32)
    (i32.add (i32.const {first_bound})
      (i32.and (i32.shr_u (local.get $op) (i32.const 4)) (i32.const 7))))

  ;; fd_write to a bound door, counted against the pipe budget (it may be
  ;; a pipe_send): skipped when its one buffer would overdraw it.
  (func $bound_write (param $fd i32) (param $iovs i32) (param $iovs_len i32) (param $nwritten i32)
    (local $len i32)
    (if (i32.and (i32.eq (local.get $iovs_len) (i32.const 1))
                 (call $inside (local.get $iovs) (i32.const 8)))
      (then
        (local.set $len (i32.load offset=4 (local.get $iovs)))
        (if (i32.lt_u (global.get $budget) (i32.const 2048)) (then (return)))
        (if (i32.gt_u (local.get $len) (i32.sub (global.get $budget) (i32.const 2048)))
          (then (return)))
        (global.set $budget
          (i32.sub (global.get $budget) (i32.add (local.get $len) (i32.const 2048))))))
    (drop (call $fd_write (local.get $fd) (local.get $iovs) (local.get $iovs_len) (local.get $nwritten))))

  (func $hex (param $c i32) (result i32)
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 0x30)) (i32.const 10))
      (then (return (i32.sub (local.get $c) (i32.const 0x30)))))
    (local.set $c (i32.or (local.get $c) (i32.const 0x20)))
    (if (i32.lt_u (i32.sub (local.get $c) (i32.const 0x61)) (i32.const 6))
      (then (return (i32.sub (local.get $c) (i32.const 0x57)))))
    (i32.const 0))

  (func $step
    (local $op i32) (local $kind i32) (local $at i32) (local $len i32) (local $b i32)
    (local $fd i32) (local $path i32) (local $plen i32) (local $i i32) (local $idx i32)
    (local.set $op (call $byte))
    (local.set $kind (i32.and (local.get $op) (i32.const 7)))
    ;; A frame from the input, in the scratch region.
    (if (i32.or (i32.eqz (local.get $kind)) (i32.eq (local.get $kind) (i32.const 7)))
      (then
        (local.set $at (i32.add (i32.const 0x11000)
                                (i32.shl (i32.shr_u (local.get $op) (i32.const 3)) (i32.const 3))))
        (local.set $len (call $u16))
        (if (i32.ge_u (global.get $pos) (global.get $end))
          (then (local.set $len (i32.const 0)))
          (else
            (if (i32.gt_u (local.get $len) (i32.sub (global.get $end) (global.get $pos)))
              (then (local.set $len (i32.sub (global.get $end) (global.get $pos)))))))
        (memory.copy (local.get $at) (global.get $pos) (local.get $len))
        (global.set $pos (i32.add (global.get $pos) (local.get $len)))
        (i32.store (i32.const 0x30) (local.get $at))
        (i32.store (i32.const 0x34) (local.get $len))
        (call $write (i32.const 0x30) (i32.const 1) (i32.const 0x38))
        (return)))
    ;; The last frame again.
    (if (i32.eq (local.get $kind) (i32.const 1))
      (then (call $write (i32.const 0x30) (i32.const 1) (i32.const 0x38)) (return)))
    (if (i32.eq (local.get $kind) (i32.const 2))
      (then
        (if (i32.and (local.get $op) (i32.const 8))
          (then (call $bound_write (call $bound_fd (local.get $op)) (call $ptr) (call $count) (call $ptr)))
          (else (call $write (call $ptr) (call $count) (call $ptr))))
        (return)))
    (if (i32.eq (local.get $kind) (i32.const 3))
      (then
        (local.set $b (call $byte))
        (local.set $fd (i32.const 3))
        (if (i32.eq (i32.and (local.get $b) (i32.const 3)) (i32.const 2))
          (then (local.set $fd (i32.const {door_fd}))))
        (if (i32.eq (i32.and (local.get $b) (i32.const 3)) (i32.const 3))
          (then (local.set $fd (call $byte))))
        (local.set $plen (call $byte))
        (if (i32.eqz (local.get $plen))
          (then
            (local.set $path (i32.const 0x20))
            (local.set $plen (i32.const 4)))
          (else (if (i32.and (local.get $plen) (i32.const 0x80))
          (then
            (local.set $idx (i32.and (local.get $plen) (i32.const 15)))
            (local.set $path (i32.const 0x2F100))
            {bound_names})
          (else
            (local.set $path (i32.const 0x2F000))
            (local.set $plen (i32.and (local.get $plen) (i32.const 15)))
            (block $copied
              (loop $copy
                (br_if $copied (i32.ge_u (local.get $i) (local.get $plen)))
                (i32.store8 (i32.add (local.get $path) (local.get $i)) (call $byte))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $copy)))))))
        ;; No O_CREAT, O_EXCL, O_TRUNC: nothing is written to the directory.
        (drop (call $path_open
          (local.get $fd)
          (i32.and (i32.shr_u (local.get $b) (i32.const 2)) (i32.const 1))
          (local.get $path) (local.get $plen)
          (i32.and (i32.shr_u (local.get $b) (i32.const 2)) (i32.const 2))
          (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0)
          (call $ptr)))
        (return)))
    (if (i32.eq (local.get $kind) (i32.const 4))
      (then
        (local.set $fd (i32.const {door_fd}))
        (if (i32.and (local.get $op) (i32.const 8))
          (then (local.set $fd (call $bound_fd (local.get $op)))))
        (drop (call $fd_read (local.get $fd) (call $ptr) (call $count) (call $ptr)))
        (return)))
    (if (i32.eq (local.get $kind) (i32.const 5))
      (then
        (local.set $b (call $byte))
        (local.set $fd (select (i32.const 3) (i32.const {door_fd}) (i32.and (local.get $b) (i32.const 2))))
        (if (i32.and (local.get $b) (i32.const 4))
          (then (local.set $fd (call $bound_fd (i32.shl (local.get $b) (i32.const 1))))))
        (if (i32.and (local.get $b) (i32.const 1))
          (then (drop (call $fd_close (local.get $fd))))
          (else (drop (call $fd_fdstat_get (local.get $fd) (call $ptr)))))
        (return)))
    ;; 6: ending in the middle, with whatever is still open.
    (if (i32.and (local.get $op) (i32.const 8))
      (then (call $proc_exit (call $byte))))
    (unreachable))

  (func (export "_start")
    (local $argc i32) (local $size i32) (local $need i64) (local $s i32) (local $slen i32)
    (local $stop i32) (local $n i32) (local $k i32) (local $ops i32)
    (if (call $args_sizes_get (i32.const 0x40) (i32.const 0x44)) (then (unreachable)))
    (local.set $argc (i32.load (i32.const 0x40)))
    (local.set $size (i32.load (i32.const 0x44)))
    (if (i32.lt_u (local.get $argc) (i32.const 2)) (then (return)))
    (local.set $need
      (i64.add (i64.const 0x30000)
        (i64.add (i64.mul (i64.extend_i32_u (local.get $argc)) (i64.const 4))
                 (i64.extend_i32_u (local.get $size)))))
    (if (i64.gt_u (local.get $need) (call $mem_bytes))
      (then
        (if (i32.eq
              (memory.grow (i32.wrap_i64
                (i64.shr_u (i64.add (i64.sub (local.get $need) (call $mem_bytes)) (i64.const 0xFFFF))
                           (i64.const 16))))
              (i32.const -1))
          (then (unreachable)))))
    (if (call $args_get (i32.const 0x30000)
                        (i32.add (i32.const 0x30000) (i32.shl (local.get $argc) (i32.const 2))))
      (then (unreachable)))
    (local.set $s (i32.load (i32.const 0x30004)))
    (local.set $stop (i32.wrap_i64 (local.get $need)))
    (block $counted
      (loop $count
        (br_if $counted (i32.ge_u (i32.add (local.get $s) (local.get $slen)) (local.get $stop)))
        (br_if $counted (i32.eqz (i32.load8_u (i32.add (local.get $s) (local.get $slen)))))
        (local.set $slen (i32.add (local.get $slen) (i32.const 1)))
        (br $count)))
    (local.set $n (i32.shr_u (local.get $slen) (i32.const 1)))
    (if (i32.gt_u (local.get $n) (i32.const 0x10000)) (then (local.set $n (i32.const 0x10000))))
    (block $decoded
      (loop $decode
        (br_if $decoded (i32.ge_u (local.get $k) (local.get $n)))
        (i32.store8 (i32.add (i32.const 0x1000) (local.get $k))
          (i32.or
            (i32.shl (call $hex (i32.load8_u (i32.add (local.get $s) (i32.shl (local.get $k) (i32.const 1)))))
                     (i32.const 4))
            (call $hex (i32.load8_u offset=1 (i32.add (local.get $s) (i32.shl (local.get $k) (i32.const 1)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $decode)))
    (global.set $pos (i32.const 0x1000))
    (global.set $end (i32.add (i32.const 0x1000) (local.get $n)))
    ;; The pid `kill` must not be given, through the door.
    (i32.store (i32.const 0x30) (i32.const 0))
    (i32.store (i32.const 0x34) (i32.const 16))
    (if (call $fd_write (i32.const {door_fd}) (i32.const 0x30) (i32.const 1) (i32.const 0x38))
      (then (unreachable)))
    (global.set $pid (i32.load (i32.const 4)))
    (if (i32.le_s (global.get $pid) (i32.const 0)) (then (unreachable)))
    (block $done
      (loop $run
        (br_if $done (i32.ge_u (local.get $ops) (i32.const 64)))
        (br_if $done (i32.ge_u (global.get $pos) (global.get $end)))
        (call $step)
        (local.set $ops (i32.add (local.get $ops) (i32.const 1)))
        (br $run)))))
"#,
        door_fd = DOOR_FD,
        first_bound = DOOR_FD + 1,
        bound_names = bound_name_wat(),
        fork = name_i32(b"fork"),
        kill = name_i32(b"kill"),
        pool_new = name_i64(b"pool_new"),
        process_ = name_i64(b"process_"),
        ss_start = name_i64(b"ss_start"),
        pipe_sen = name_i64(b"pipe_sen"),
    )
}

struct Harness {
    runtime: Runtime,
    program: Program,
    policy: Arc<Policy>,
    door: Arc<cap_std::fs::Dir>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = Runtime::with_cache(None).expect("runtime");
        let program = runtime
            .load_bytes("door_frames.wat", guest_wat().as_bytes())
            .expect("load the door_frames guest");
        let limits = common::limits();
        let policy = Policy::builder()
            .allow_run("true")
            .expect("grant true")
            .limits(limits)
            .build();
        // The door's directory: any empty one (the guest never creates
        // anything in it).
        let dir = std::env::temp_dir().join("procbridge-fuzz-door");
        std::fs::create_dir_all(&dir).expect("create the door's directory");
        let door = cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority())
            .expect("open the door's directory");
        let harness = Harness {
            runtime,
            program,
            policy: Arc::new(policy),
            door: Arc::new(door),
        };
        // The first run opens what lives as long as the process (the I/O
        // runtime's descriptors, the process table): not leaks. It also
        // checks the guest works: it learns its pid through the door.
        let first = run(&harness, &[]);
        assert_eq!(first, Some(0), "the door_frames guest is broken");
        harness
    })
}

/// The guest's exit code, `None` when it trapped.
fn run(h: &Harness, data: &[u8]) -> Option<i32> {
    let mut guest = GuestBuilder::new();
    guest
        .arg("door_frames")
        .arg(hex(data))
        .stdin(Stdio::Null)
        .stdout(Stdio::Null)
        .stderr(Stdio::Null)
        .policy(h.policy.clone())
        .door(h.door.clone(), "/dev/procbridge");
    let state = guest.build().expect("guest state");
    // A trap or an exit code is the guest's business; a panic is a finding.
    h.runtime.run(&h.program, state).ok()
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let fds = open_fds();
    let _ = run(h, data);
    assert!(no_children(), "a child process outlived its guest");
    assert_eq!(open_fds(), fds, "file descriptors leaked");
});
