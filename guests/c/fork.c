/*
 * The seed's os.fork() story, in C (guests/fork is the same in Rust):
 *
 *   print('Process (%s) start...' % os.getpid())
 *   pid = os.fork()
 *   if pid == 0:
 *       print('I am child process (%s) and my parent is %s.' % (os.getpid(), os.getppid()))
 *   else:
 *       print('I (%s) just created a child process (%s).' % (os.getpid(), pid))
 *
 * Build: guests/build c (target/guests/c_fork.wasm).
 * Run it: procbridge run target/guests/c_fork.wasm
 */
#include "procbridge.h"

int main(void) {
    /* Whole lines, one write each: fully buffered, flushed after each line.
     * (Line-buffered stdio hands WASI's fd_write a line in two pieces, which
     * the host writes one at a time, so another process's line could come
     * between them.) */
    setvbuf(stdout, 0, _IOFBF, BUFSIZ);
    printf("Process (%d) start...\n", pb_getpid());
    /* The child is a copy of this instance, stdio buffers included. */
    fflush(stdout);
    int32_t pid = pb_fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", pb_last_error_message());
        return 1;
    }
    if (pid == 0) {
        printf("I am child process (%d) and my parent is %d.\n", pb_getpid(), pb_getppid());
        return 0;
    }
    printf("I (%d) just created a child process (%d).\n", pb_getpid(), pid);
    fflush(stdout);
    int32_t status = 0;
    if (pb_waitpid(pid, 0, &status) < 0) {
        fprintf(stderr, "waitpid: %s\n", pb_last_error_message());
        return 1;
    }
    return 0;
}
