/*
 * The seed's multiprocessing.Pool story, in C (guests/pool is the same in
 * Rust):
 *
 *   def long_time_task(name):
 *       print('Run task %s (%s)...' % (name, os.getpid()))
 *       start = time.time()
 *       time.sleep(random.random() * 3)
 *       end = time.time()
 *       print('Task %s runs %0.2f seconds.' % (name, (end - start)))
 *
 *   if __name__=='__main__':
 *       print('Parent process %s.' % os.getpid())
 *       p = Pool(4)
 *       for i in range(5):
 *           p.apply_async(long_time_task, args=(i,))
 *       print('Waiting for all subprocesses done...')
 *       p.close()
 *       p.join()
 *       print('All subprocesses done.')
 *
 * Run it: procbridge run target/guests/c_pool.wasm [SCALE]; SCALE (default
 * 1) multiplies the random sleeps, so 0.1 runs ten times faster.
 */
#include "procbridge.h"
#include <time.h>

/* random.random(): a xorshift generator seeded by the clock and the pid. */
static double random_unit(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t x = ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec)
                 ^ ((uint64_t)pb_getpid() << 32);
    x |= 1;
    for (int i = 0; i < 4; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return (double)(x >> 11) / (double)(1ull << 53);
}

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* The task the workers run; its arguments are "NAME SCALE". With
 * PB_TASK_BATCH a worker given several items runs them in one call. */
PB_TASK_BATCH(long_time_task) {
    (void)args_len;
    char *rest = 0;
    long name = strtol(args, &rest, 10);
    double scale = strtod(rest, 0);
    printf("Run task %ld (%d)...\n", name, pb_getpid());
    fflush(stdout);
    double start = seconds();
    /* At least 20 ms, so that the first four tasks are all running before
     * any ends (Python's random() * 3 is below that 0.7% of the time). */
    double secs = random_unit() * 3.0 * scale;
    if (secs < 0.02) secs = 0.02;
    struct timespec nap = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&nap, 0);
    printf("Task %ld runs %0.2f seconds.\n", name, seconds() - start);
    fflush(stdout);
    return 0;
}

static int failed(const char *what) {
    fprintf(stderr, "%s: %s\n", what, pb_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    /* Whole lines, one write each: fully buffered, flushed after each line.
     * (Line-buffered stdio hands WASI's fd_write a line in two pieces, which
     * the host writes one at a time, so another process's line could come
     * between them.) */
    setvbuf(stdout, 0, _IOFBF, BUFSIZ);
    const char *scale = argc > 1 ? argv[1] : "1";
    printf("Parent process %d.\n", pb_getpid());
    /* The workers are forked copies of this instance: flush first. */
    fflush(stdout);
    int32_t p = pb_pool_new(4, 0, PB_NO_TIMEOUT);
    if (p < 0) return failed("Pool(4)");
    const char *task = "long_time_task";
    int32_t ids[5];
    for (int i = 0; i < 5; i++) {
        char item[64];
        snprintf(item, sizeof item, "%d %s", i, scale);
        pb_list items = {0};
        pb_list_push_str(&items, item);
        ids[i] = pb_pool_submit(p, task, (int32_t)strlen(task), items.data, items.len, 1);
        pb_list_free(&items);
        if (ids[i] < 0) return failed("apply_async");
    }
    printf("Waiting for all subprocesses done...\n");
    fflush(stdout);
    if (pb_pool_close(p) < 0) return failed("close");
    if (pb_pool_join(p, PB_NO_TIMEOUT) < 0) return failed("join");
    /* Each result is a list of one item: a status byte, then the payload. */
    for (int i = 0; i < 5; i++) {
        int32_t n = pb_pool_result_get(p, ids[i], PB_NO_TIMEOUT);
        char *result = pb_take(n);
        if (!result) return failed("get");
        if (n < 5 || result[4] != PB_STATUS_OK) {
            fprintf(stderr, "task %d failed: %.*s\n", i, n > 5 ? n - 5 : 0, result + 5);
            return 1;
        }
        free(result);
    }
    pb_pool_drop(p);
    printf("All subprocesses done.\n");
    return 0;
}
