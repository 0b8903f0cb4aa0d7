/*
 * The seed's Popen(...).communicate(input) story, in C (guests/communicate
 * is the same in Rust): feed input to a command through a pipe, capture
 * what it prints, print its exit code.
 *
 *   p = subprocess.Popen(args, stdin=PIPE, stdout=PIPE, stderr=PIPE)
 *   output, err = p.communicate(b'set q=mx\npython.org\nexit\n')
 *   print(output.decode('utf-8'), end='')
 *   print('Exit code:', p.returncode)
 *
 * Run it: procbridge run --allow-run sort target/guests/c_communicate.wasm
 * (another command can be given: ... c_communicate.wasm tr a-z A-Z).
 */
#include "procbridge.h"

/* Python's exception for an errno, as the Rust SDK prints it. */
static const char *python_error(int32_t err) {
    switch (err) {
    case PB_EPERM: return "PermissionError";
    case PB_ENOENT: return "FileNotFoundError";
    case PB_EPIPE: return "BrokenPipeError";
    case PB_ETIMEDOUT: return "TimeoutError";
    default: return "OSError";
    }
}

int main(int argc, char **argv) {
    static char *fallback[] = {"sort"};
    char **args = argv + 1;
    int n = argc - 1;
    if (n <= 0) {
        args = fallback;
        n = 1;
    }
    pb_list cmd = {0};
    printf("$");
    for (int i = 0; i < n; i++) {
        printf(" %s", args[i]);
        pb_list_push_str(&cmd, args[i]);
    }
    printf("\n");
    static const char input[] = "set q=mx\npython.org\nexit\n";
    int32_t out[2] = {0, 0}; /* the length of the stdout part, the return code */
    int32_t h = pb_popen(cmd.data, cmd.len, 0, PB_ENV_INHERIT, 0, 0, PB_STDIO_PIPE,
                         PB_STDIO_PIPE, PB_STDIO_PIPE);
    int32_t len = h < 0 ? h
                        : pb_popen_communicate(h, input, (int32_t)sizeof input - 1,
                                               PB_NO_TIMEOUT, 0, out);
    if (len < 0) {
        fprintf(stderr, "communicate failed: %s: [Errno %d] %s\n", python_error(-len), -len,
                pb_last_error_message());
        return 1;
    }
    /* stdout then stderr, in one result. */
    char *both = pb_take(len);
    if (!both) {
        fprintf(stderr, "communicate failed: cannot take the output\n");
        return 1;
    }
    fwrite(both, 1, (size_t)out[0], stdout);
    fwrite(both + out[0], 1, (size_t)(len - out[0]), stderr);
    printf("Exit code: %d\n", out[1]);
    free(both);
    pb_popen_close(h);
    pb_list_free(&cmd);
    return 0;
}
