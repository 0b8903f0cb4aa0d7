/*
 * The seed's Queue story, in C (guests/queue is the same in Rust): the
 * parent creates a Queue and hands it to two processes; the writer puts
 * 'A', 'B', 'C' with random sleeps, the reader gets forever; the parent
 * joins the writer and terminates the reader.
 *
 *   def write(q):
 *       print('Process to write: %s' % os.getpid())
 *       for value in ['A', 'B', 'C']:
 *           print('Put %s to queue...' % value)
 *           q.put(value)
 *           time.sleep(random.random())
 *
 *   def read(q):
 *       print('Process to read: %s' % os.getpid())
 *       while True:
 *           value = q.get(True)
 *           print('Get %s from queue.' % value)
 *
 * A queue handle is a number the children inherit: it is passed to them in
 * their arguments as decimal text ("3"), followed by SCALE.
 *
 * Run it: procbridge run target/guests/c_queue.wasm [SCALE]; SCALE (default
 * 1) multiplies the random sleeps.
 */
#include "procbridge.h"
#include <time.h>

/* random.random(): a xorshift generator seeded by the clock and the pid,
 * stepped on each call. */
static double random_unit(void) {
    static uint64_t x;
    if (!x) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        x = ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec)
            ^ ((uint64_t)pb_getpid() << 32);
        x |= 1;
    }
    for (int i = 0; i < 4; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return (double)(x >> 11) / (double)(1ull << 53);
}

static void sleep_secs(double secs) {
    struct timespec nap = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&nap, 0);
}

/* Code run by the writer process. */
PB_TASK(write) {
    (void)args_len;
    char *rest = 0;
    int32_t q = (int32_t)strtol(args, &rest, 10);
    double scale = strtod(rest, 0);
    printf("Process to write: %d\n", pb_getpid());
    fflush(stdout);
    static const char *values[] = {"A", "B", "C"};
    for (int i = 0; i < 3; i++) {
        printf("Put %s to queue...\n", values[i]);
        fflush(stdout);
        if (pb_queue_put(q, values[i], (int32_t)strlen(values[i]), PB_NO_TIMEOUT) < 0) {
            pb_fail(pb_last_error_message());
            return 1;
        }
        /* At least 20 ms, so that the reader gets 'C' before it is
         * terminated. */
        double secs = random_unit() * scale;
        sleep_secs(secs < 0.02 ? 0.02 : secs);
    }
    return 0;
}

/* Code run by the reader process. */
PB_TASK(read) {
    (void)args_len;
    int32_t q = (int32_t)strtol(args, 0, 10);
    printf("Process to read: %d\n", pb_getpid());
    fflush(stdout);
    for (;;) {
        char value[256];
        int32_t n = pb_queue_get(q, value, (int32_t)sizeof value, PB_NO_TIMEOUT);
        if (n < 0) {
            pb_fail(pb_last_error_message());
            return 1;
        }
        if (n <= (int32_t)sizeof value) {
            printf("Get %.*s from queue.\n", (int)n, value);
        } else {
            char *big = pb_take(n);
            printf("Get %s from queue.\n", big ? big : "?");
            free(big);
        }
        /* It is terminated, never returns: print each line now. */
        fflush(stdout);
    }
}

static int32_t start(const char *target, const char *args) {
    fflush(stdout);
    return pb_process_start(target, (int32_t)strlen(target), args, (int32_t)strlen(args),
                            PB_METHOD_DEFAULT, 0);
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
    /* The parent creates the Queue and passes it to each child: */
    int32_t q = pb_queue_new(0, 0, 0);
    if (q < 0) return failed("Queue()");
    char args[64];
    snprintf(args, sizeof args, "%d %s", q, scale);
    /* Start the writer, then the reader: */
    int32_t pw = start("write", args);
    if (pw < 0) return failed("start writer");
    int32_t pr = start("read", args);
    if (pr < 0) return failed("start reader");
    /* Wait for the writer to end: */
    if (pb_process_join(pw, PB_NO_TIMEOUT) < 0) return failed("join writer");
    /* The reader loops forever and cannot be joined: terminate it. */
    if (pb_process_terminate(pr) < 0) return failed("terminate reader");
    pb_process_join(pr, PB_NO_TIMEOUT);
    return 0;
}
