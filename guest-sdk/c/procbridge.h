/*
 * procbridge.h: the procbridge host functions for guests written in C (or
 * Zig), compiled for wasm32-wasi, e.g. `zig cc -target wasm32-wasi`.
 *
 * Generated from the ABI table (abi/src/table.rs) by tests/all/c_header.rs:
 * do not edit. docs/abi.md says what every function does.
 *
 * Every function returns an int32_t: >= 0 is success (a handle, a pid, a
 * length, 0), a negative value is -PB_Exxx and pb_last_error_message()
 * says why. A result of variable length (captured output, a message) is
 * returned as its length n and fetched with pb_take(n).
 *
 * Flush stdio (fflush(stdout)) before pb_fork(), pb_process_start() and
 * the pool calls (pb_pool_new() forks the workers; a pool forks new ones
 * inside its other calls): a child is a copy of this instance, its stdio
 * buffers included.
 */
#ifndef PROCBRIDGE_H
#define PROCBRIDGE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PB_IMPORT(name) \
    __attribute__((import_module("procbridge"), import_name(#name)))

/* Errors: a failed call returns -PB_Exxx. */
#define PB_EPERM 1
#define PB_ENOENT 2
#define PB_ESRCH 3
#define PB_EIO 5
#define PB_E2BIG 7
#define PB_ENOEXEC 8
#define PB_EBADF 9
#define PB_ECHILD 10
#define PB_EAGAIN 11
#define PB_ENOMEM 12
#define PB_EFAULT 14
#define PB_EINVAL 22
#define PB_EMFILE 24
#define PB_EPIPE 32
#define PB_ENOSYS 38
#define PB_ENOBUFS 105
#define PB_ETIMEDOUT 110
#define PB_EOWNERDEAD 130

/* Constants (docs/abi.md, "Constants"). */
#define PB_NO_TIMEOUT ((int64_t)-1)
#define PB_NO_HANDLE 0
#define PB_STDIO_INHERIT 0
#define PB_STDIO_PIPE (-1)
#define PB_STDIO_NULL (-2)
#define PB_STDIO_STDOUT (-3)
#define PB_ENV_INHERIT (-1)
#define PB_STREAM_STDOUT 1
#define PB_STREAM_STDERR 2
#define PB_COMMUNICATE_KILL_ON_TIMEOUT 1
#define PB_METHOD_DEFAULT 0
#define PB_METHOD_FORK 1
#define PB_METHOD_SPAWN 2
#define PB_FLAG_DAEMON 1
#define PB_FLAG_DROP_RUN 2
#define PB_FLAG_DROP_DIRS 4
#define PB_FLAG_DROP_ENV 8
#define PB_WNOHANG 1
#define PB_STATUS_OK 0
#define PB_STATUS_FAILED 1
#define PB_STATUS_WORKER_LOST 2
#define PB_STATUS_TIMED_OUT 3
#define PB_STATUS_TERMINATED 4
#define PB_NEXT_ORDERED 0
#define PB_NEXT_UNORDERED 1

/* The host functions (docs/abi.md, "Functions"). */
/* os */
PB_IMPORT(getpid) int32_t pb_getpid(void);
PB_IMPORT(getppid) int32_t pb_getppid(void);
PB_IMPORT(last_error) int32_t pb_last_error(void *ptr, int32_t cap);
PB_IMPORT(take_result) int32_t pb_take_result(void *ptr, int32_t len);
PB_IMPORT(fork) int32_t pb_fork(void);
PB_IMPORT(kill) int32_t pb_kill(int32_t pid, int32_t signal);
PB_IMPORT(cpu_count) int32_t pb_cpu_count(void);
PB_IMPORT(waitpid) int32_t pb_waitpid(int32_t pid, int32_t options, int32_t *status_ptr);
PB_IMPORT(times) int32_t pb_times(void *ptr, int32_t cap);

/* subprocess */
PB_IMPORT(popen) int32_t pb_popen(const void *argv_ptr, int32_t argv_len, const void *env_ptr, int32_t env_len, const void *cwd_ptr, int32_t cwd_len, int32_t stdin, int32_t stdout, int32_t stderr);
PB_IMPORT(popen_pid) int32_t pb_popen_pid(int32_t h);
PB_IMPORT(popen_poll) int32_t pb_popen_poll(int32_t h, int32_t *code_ptr);
PB_IMPORT(popen_wait) int32_t pb_popen_wait(int32_t h, int64_t timeout_us, int32_t *code_ptr);
PB_IMPORT(popen_communicate) int32_t pb_popen_communicate(int32_t h, const void *in_ptr, int32_t in_len, int64_t timeout_us, int32_t flags, int32_t *out_ptr);
PB_IMPORT(popen_take_output) int32_t pb_popen_take_output(int32_t h, int32_t *out_ptr);
PB_IMPORT(popen_write) int32_t pb_popen_write(int32_t h, const void *ptr, int32_t len, int64_t timeout_us);
PB_IMPORT(popen_read) int32_t pb_popen_read(int32_t h, int32_t stream, void *ptr, int32_t cap, int64_t timeout_us);
PB_IMPORT(popen_close_stdin) int32_t pb_popen_close_stdin(int32_t h);
PB_IMPORT(popen_send_signal) int32_t pb_popen_send_signal(int32_t h, int32_t signal);
PB_IMPORT(popen_close) int32_t pb_popen_close(int32_t h);
PB_IMPORT(popen_call) int32_t pb_popen_call(const void *argv_ptr, int32_t argv_len, const void *env_ptr, int32_t env_len, const void *cwd_ptr, int32_t cwd_len, int32_t stdin, int32_t stdout, int32_t stderr, int64_t timeout_us, int32_t *code_ptr);

/* process */
PB_IMPORT(process_start) int32_t pb_process_start(const void *target_ptr, int32_t target_len, const void *args_ptr, int32_t args_len, int32_t method, int32_t flags);
PB_IMPORT(process_join) int32_t pb_process_join(int32_t h, int64_t timeout_us);
PB_IMPORT(process_is_alive) int32_t pb_process_is_alive(int32_t h);
PB_IMPORT(process_pid) int32_t pb_process_pid(int32_t h);
PB_IMPORT(process_exitcode) int32_t pb_process_exitcode(int32_t h, int32_t *ptr);
PB_IMPORT(process_terminate) int32_t pb_process_terminate(int32_t h);
PB_IMPORT(process_kill) int32_t pb_process_kill(int32_t h);
PB_IMPORT(process_close) int32_t pb_process_close(int32_t h);
PB_IMPORT(task_return) int32_t pb_task_return(const void *ptr, int32_t len);
PB_IMPORT(task_error) int32_t pb_task_error(const void *ptr, int32_t len);
PB_IMPORT(task_next) int32_t pb_task_next(void *ptr, int32_t cap);

/* queue */
PB_IMPORT(queue_new) int32_t pb_queue_new(int32_t maxsize, int32_t max_bytes, int32_t flags);
PB_IMPORT(queue_put) int32_t pb_queue_put(int32_t q, const void *ptr, int32_t len, int64_t timeout_us);
PB_IMPORT(queue_get) int32_t pb_queue_get(int32_t q, void *ptr, int32_t cap, int64_t timeout_us);
PB_IMPORT(queue_qsize) int32_t pb_queue_qsize(int32_t q);
PB_IMPORT(queue_empty) int32_t pb_queue_empty(int32_t q);
PB_IMPORT(queue_full) int32_t pb_queue_full(int32_t q);
PB_IMPORT(queue_close) int32_t pb_queue_close(int32_t q);
PB_IMPORT(queue_shutdown) int32_t pb_queue_shutdown(int32_t q);
PB_IMPORT(queue_task_done) int32_t pb_queue_task_done(int32_t q);
PB_IMPORT(queue_join) int32_t pb_queue_join(int32_t q, int64_t timeout_us);

/* pipe */
PB_IMPORT(pipe_new) int32_t pb_pipe_new(int32_t duplex, int32_t *out_ptr);
PB_IMPORT(pipe_send) int32_t pb_pipe_send(int32_t c, const void *ptr, int32_t len);
PB_IMPORT(pipe_recv) int32_t pb_pipe_recv(int32_t c, void *ptr, int32_t cap, int64_t timeout_us);
PB_IMPORT(pipe_poll) int32_t pb_pipe_poll(int32_t c, int64_t timeout_us);
PB_IMPORT(pipe_close) int32_t pb_pipe_close(int32_t c);

/* pool */
PB_IMPORT(pool_new) int32_t pb_pool_new(int32_t processes, int32_t maxtasksperchild, int64_t task_timeout_us);
PB_IMPORT(pool_submit) int32_t pb_pool_submit(int32_t h, const void *name_ptr, int32_t name_len, const void *items_ptr, int32_t items_len, int32_t chunksize);
PB_IMPORT(pool_result_ready) int32_t pb_pool_result_ready(int32_t h, int32_t id);
PB_IMPORT(pool_result_wait) int32_t pb_pool_result_wait(int32_t h, int32_t id, int64_t timeout_us);
PB_IMPORT(pool_result_get) int32_t pb_pool_result_get(int32_t h, int32_t id, int64_t timeout_us);
PB_IMPORT(pool_result_next) int32_t pb_pool_result_next(int32_t h, int32_t id, int32_t order, int64_t timeout_us);
PB_IMPORT(pool_result_drop) int32_t pb_pool_result_drop(int32_t h, int32_t id);
PB_IMPORT(pool_pids) int32_t pb_pool_pids(int32_t h);
PB_IMPORT(pool_close) int32_t pb_pool_close(int32_t h);
PB_IMPORT(pool_terminate) int32_t pb_pool_terminate(int32_t h);
PB_IMPORT(pool_join) int32_t pb_pool_join(int32_t h, int64_t timeout_us);
PB_IMPORT(pool_drop) int32_t pb_pool_drop(int32_t h);
PB_IMPORT(pool_share) int32_t pb_pool_share(int32_t h, int32_t handle);
PB_IMPORT(pool_retry_lost) int32_t pb_pool_retry_lost(int32_t h, int32_t retry);
PB_IMPORT(cluster_call) int32_t pb_cluster_call(const void *name_ptr, int32_t name_len, const void *args_ptr, int32_t args_len);

/* A list of byte strings (argv, env, a pool's items) in the ABI's list
 * encoding: each item a little-endian uint32 length, then its bytes.
 * Start with `pb_list l = {0};`, pass `l.data, l.len`, end with
 * pb_list_free(&l). */
typedef struct {
    uint8_t *data;
    int32_t len;
    int32_t cap;
} pb_list;

/* Appends bytes to a buffer; 0, or -PB_EINVAL or -PB_ENOMEM. */
static inline int32_t pb_list_append(pb_list *l, const void *ptr, int32_t len) {
    if (len < 0 || (int64_t)l->len + len > INT32_MAX / 2) return len < 0 ? -PB_EINVAL : -PB_ENOMEM;
    if (l->len + len > l->cap) {
        int32_t cap = l->cap ? l->cap : 64;
        while (cap < l->len + len) cap *= 2;
        uint8_t *data = (uint8_t *)realloc(l->data, (size_t)cap);
        if (!data) return -PB_ENOMEM;
        l->data = data;
        l->cap = cap;
    }
    if (len) memcpy(l->data + l->len, ptr, (size_t)len);
    l->len += len;
    return 0;
}

/* Appends one item; 0, or -PB_EINVAL (a negative length) or -PB_ENOMEM,
 * the list unchanged. */
static inline int32_t pb_list_push(pb_list *l, const void *ptr, int32_t len) {
    if (len < 0) return -PB_EINVAL;
    uint8_t prefix[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
    int32_t before = l->len;
    int32_t err = pb_list_append(l, prefix, 4);
    if (!err) err = pb_list_append(l, ptr, len);
    if (err) l->len = before;
    return err;
}

/* Appends a NUL-terminated string as one item. */
static inline int32_t pb_list_push_str(pb_list *l, const char *s) {
    return pb_list_push(l, s, (int32_t)strlen(s));
}

static inline void pb_list_free(pb_list *l) {
    free(l->data);
    l->data = 0;
    l->len = 0;
    l->cap = 0;
}

/* The message of the last failed call, as a C string (valid until the
 * next call of this function). */
static inline const char *pb_last_error_message(void) {
    static char message[1024];
    int32_t n = pb_last_error(message, (int32_t)sizeof message - 1);
    if (n < 0) n = 0;
    if (n > (int32_t)sizeof message - 1) n = (int32_t)sizeof message - 1;
    message[n] = 0;
    return message;
}

/* The result of n bytes a call left waiting, in a malloc'ed buffer with a
 * NUL after it (free it); NULL when n < 0 or on failure. */
static inline char *pb_take(int32_t n) {
    if (n < 0) return 0;
    char *buf = (char *)malloc((size_t)n + 1);
    if (!buf) return 0;
    if (pb_take_result(buf, n) < 0) {
        free(buf);
        return 0;
    }
    buf[n] = 0;
    return buf;
}

/* Tasks: code a Process or a Pool worker runs, exported by name.
 *
 *   PB_TASK(run_proc) {
 *       printf("Run child process %.*s (%d)...\n", (int)args_len, args, pb_getpid());
 *       return 0;
 *   }
 *
 * The body sees its arguments as `args` (NUL-terminated) and `args_len`,
 * hands back a result with pb_return(ptr, len) or fails with
 * pb_fail(message), and returns 0 (non-zero without pb_fail is a failure).
 * PB_TASK_BATCH(name) also exports `procbridge_batch.name`, with which a
 * pool runs a whole chunk of items in one call. stdio is flushed when a
 * task returns. */
typedef int32_t (*pb_task_body)(const char *args, int32_t args_len);

/* Set while a batch export runs one item: pb_return and pb_fail fill it.
 * Weak: one copy in the whole program, whichever file calls them. */
__attribute__((weak)) pb_list *pb_batch_item;
__attribute__((weak)) int pb_batch_failed;

static inline int32_t pb_return(const void *ptr, int32_t len) {
    if (pb_batch_item) {
        pb_batch_item->len = 0;
        return pb_list_append(pb_batch_item, ptr, len);
    }
    return pb_task_return(ptr, len);
}

static inline int32_t pb_fail(const char *message) {
    if (pb_batch_item) {
        pb_batch_failed = 1;
        pb_batch_item->len = 0;
        return pb_list_append(pb_batch_item, message, (int32_t)strlen(message));
    }
    return pb_task_error(message, (int32_t)strlen(message));
}

static inline int32_t pb_run_task(pb_task_body body, int32_t args_len) {
    char *args = pb_take(args_len);
    if (!args) {
        pb_fail("cannot take the task's arguments");
        return 1;
    }
    int32_t status = body(args, args_len);
    free(args);
    fflush(0);
    return status;
}

static inline int32_t pb_run_batch(pb_task_body body, int32_t args_len) {
    char *args = pb_take(args_len);
    if (!args) return 1;
    pb_list out = {0}, item = {0};
    int32_t at = 0;
    while (at + 4 <= args_len) {
        const uint8_t *p = (const uint8_t *)args + at;
        int32_t len = (int32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
        if (len < 0 || len > args_len - at - 4) break;
        char *copy = (char *)malloc((size_t)len + 1);
        if (!copy) break;
        memcpy(copy, p + 4, (size_t)len);
        copy[len] = 0;
        item.len = 0;
        pb_batch_item = &item;
        pb_batch_failed = 0;
        int32_t status = body(copy, len);
        pb_batch_item = 0;
        free(copy);
        uint8_t flag = (uint8_t)(pb_batch_failed || status != 0);
        if (status != 0 && !pb_batch_failed) item.len = 0;
        int32_t total = item.len + 1;
        uint8_t prefix[5] = {(uint8_t)total, (uint8_t)(total >> 8), (uint8_t)(total >> 16),
                             (uint8_t)(total >> 24), flag};
        pb_list_append(&out, prefix, 5);
        pb_list_append(&out, item.data, item.len);
        at += 4 + len;
    }
    free(args);
    fflush(0);
    pb_task_return(out.data, out.len);
    pb_list_free(&out);
    pb_list_free(&item);
    return 0;
}

#define PB_TASK(name)                                                         \
    static int32_t pb_task_##name(const char *args, int32_t args_len);       \
    __attribute__((export_name(#name))) int32_t pb_export_##name(int32_t n) { \
        return pb_run_task(pb_task_##name, n);                                \
    }                                                                         \
    static int32_t pb_task_##name(__attribute__((unused)) const char *args,  \
                                  __attribute__((unused)) int32_t args_len)

#define PB_TASK_BATCH(name)                                                   \
    static int32_t pb_task_##name(const char *args, int32_t args_len);       \
    __attribute__((export_name(#name))) int32_t pb_export_##name(int32_t n) { \
        return pb_run_task(pb_task_##name, n);                                \
    }                                                                         \
    __attribute__((export_name("procbridge_batch." #name))) int32_t          \
        pb_batch_##name(int32_t n) {                                          \
        return pb_run_batch(pb_task_##name, n);                               \
    }                                                                         \
    static int32_t pb_task_##name(__attribute__((unused)) const char *args,  \
                                  __attribute__((unused)) int32_t args_len)

#endif /* PROCBRIDGE_H */
