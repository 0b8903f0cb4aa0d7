//! The seed's os.fork() story, in Zig (guests/fork is the same in Rust):
//!
//!   print('Process (%s) start...' % os.getpid())
//!   pid = os.fork()
//!   if pid == 0:
//!       print('I am child process (%s) and my parent is %s.' % (os.getpid(), os.getppid()))
//!   else:
//!       print('I (%s) just created a child process (%s).' % (os.getpid(), pid))
//!
//! The host functions are imported from the module "procbridge" (docs/abi.md).
//! Output goes straight to WASI's fd_write, unbuffered, so nothing is left
//! in a buffer for the forked child to print again.
//!
//! Build: guests/build zig (target/guests/zig_fork.wasm).
//! Run it: procbridge run target/guests/zig_fork.wasm

const std = @import("std");
const wasi = std.os.wasi;

extern "procbridge" fn getpid() i32;
extern "procbridge" fn getppid() i32;
extern "procbridge" fn fork() i32;
extern "procbridge" fn waitpid(pid: i32, options: i32, status_ptr: *i32) i32;

/// Formats one line and writes it to stdout (fd 1) at once.
fn print(comptime fmt: []const u8, args: anytype) void {
    var buf: [256]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, fmt, args) catch return;
    var rest = line;
    while (rest.len > 0) {
        const iov = [_]wasi.ciovec_t{.{ .base = rest.ptr, .len = rest.len }};
        var written: usize = 0;
        if (wasi.fd_write(1, &iov, iov.len, &written) != .SUCCESS) return;
        rest = rest[written..];
    }
}

pub fn main() u8 {
    print("Process ({d}) start...\n", .{getpid()});
    // Only works on Unix/Linux/Mac (and under procbridge):
    const pid = fork();
    if (pid < 0) {
        print("fork failed: errno {d}\n", .{-pid});
        return 1;
    }
    if (pid == 0) {
        print("I am child process ({d}) and my parent is {d}.\n", .{ getpid(), getppid() });
        return 0;
    }
    print("I ({d}) just created a child process ({d}).\n", .{ getpid(), pid });
    var status: i32 = 0;
    if (waitpid(pid, 0, &status) != pid) return 1;
    return 0;
}
