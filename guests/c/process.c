/*
 * The seed's multiprocessing.Process story, in C (guests/process is the
 * same in Rust):
 *
 *   def run_proc(name):
 *       print('Run child process %s (%s)...' % (name, os.getpid()))
 *
 *   if __name__=='__main__':
 *       print('Parent process %s.' % os.getpid())
 *       p = Process(target=run_proc, args=('test',))
 *       print('Child process will start.')
 *       p.start()
 *       p.join()
 *       print('Child process end.')
 *
 * Run it: procbridge run target/guests/c_process.wasm [spawn]
 */
#include "procbridge.h"

/* The code the child process runs: an export named run_proc, given its
 * arguments as bytes. */
PB_TASK(run_proc) {
    printf("Run child process %.*s (%d)...\n", (int)args_len, args, pb_getpid());
    return 0;
}

int main(int argc, char **argv) {
    int32_t method = PB_METHOD_FORK;
    if (argc > 1 && strcmp(argv[1], "spawn") == 0) method = PB_METHOD_SPAWN;
    printf("Parent process %d.\n", pb_getpid());
    printf("Child process will start.\n");
    fflush(stdout);
    const char *target = "run_proc", *name = "test";
    int32_t p = pb_process_start(target, (int32_t)strlen(target), name, (int32_t)strlen(name),
                                 method, 0);
    if (p < 0 || pb_process_join(p, PB_NO_TIMEOUT) < 0) {
        fprintf(stderr, "process: %s\n", pb_last_error_message());
        return 1;
    }
    pb_process_close(p);
    printf("Child process end.\n");
    return 0;
}
