#include "procbridge.h"
#include <stdio.h>

int main(void) {
    printf("Process (%d) start...\n", pb_getpid());
    fflush(stdout);
    int pid = pb_fork();
    if (pid == 0) {
        printf("I am child process (%d) and my parent is %d.\n", pb_getpid(), pb_getppid());
        return 0;
    }
    int status = 0;
    pb_waitpid(pid, 0, &status);
    pb_list argv = {0};
    pb_list_push_str(&argv, "cat");
    int h = pb_popen(argv.data, argv.len, 0, PB_ENV_INHERIT, 0, 0, PB_STDIO_PIPE, PB_STDIO_PIPE, PB_STDIO_NULL);
    if (h < 0) {
        fprintf(stderr, "popen: %s\n", pb_last_error_message());
        return 1;
    }
    int32_t out[2];
    int n = pb_popen_communicate(h, "hello\n", 6, PB_NO_TIMEOUT, 0, out);
    char *buf = pb_take(n);
    printf("%.*sExit code: %d\n", out[0], buf, out[1]);
    pb_list_free(&argv);
    return 0;
}
