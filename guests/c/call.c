/*
 * The seed's subprocess.call story, in C (guests/call is the same in
 * Rust): run a command, let its output pass through, print its exit code.
 *
 *   print('$ ' + ' '.join(args))
 *   print('Exit code:', subprocess.call(args))
 *
 * Run it: procbridge run --allow-run ls target/guests/c_call.wasm ls -l /
 * (with no arguments it runs `echo hello from a child process`). Without
 * the grant the call fails as Python's does: PermissionError.
 */
#include "procbridge.h"

/* Python's exception for an errno, as the Rust SDK prints it. */
static const char *python_error(int32_t err) {
    switch (err) {
    case PB_EPERM: return "PermissionError";
    case PB_ENOENT: return "FileNotFoundError";
    case PB_ESRCH: return "ProcessLookupError";
    case PB_ECHILD: return "ChildProcessError";
    case PB_EAGAIN: return "BlockingIOError";
    case PB_EPIPE: return "BrokenPipeError";
    case PB_ETIMEDOUT: return "TimeoutError";
    default: return "OSError";
    }
}

int main(int argc, char **argv) {
    static char *fallback[] = {"echo", "hello from a child process"};
    char **args = argv + 1;
    int n = argc - 1;
    if (n <= 0) {
        args = fallback;
        n = 2;
    }
    pb_list cmd = {0};
    printf("$");
    for (int i = 0; i < n; i++) {
        printf(" %s", args[i]);
        pb_list_push_str(&cmd, args[i]);
    }
    printf("\n");
    /* The command writes to the same stdout: ours goes first. */
    fflush(stdout);
    int32_t code = 0;
    int32_t h = pb_popen(cmd.data, cmd.len, 0, PB_ENV_INHERIT, 0, 0, PB_STDIO_INHERIT,
                         PB_STDIO_INHERIT, PB_STDIO_INHERIT);
    int32_t ret = h < 0 ? h : pb_popen_wait(h, PB_NO_TIMEOUT, &code);
    if (ret < 0) {
        fprintf(stderr, "call failed: %s: [Errno %d] %s\n", python_error(-ret), -ret,
                pb_last_error_message());
        return 1;
    }
    pb_popen_close(h);
    pb_list_free(&cmd);
    printf("Exit code: %d\n", code);
    return 0;
}
