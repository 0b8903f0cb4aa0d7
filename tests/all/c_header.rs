//! `guest-sdk/c/procbridge.h` is made from the ABI table: this test renders
//! it and fails when the checked-in file differs. To rewrite it after a
//! change to the table:
//!
//! ```sh
//! PROCBRIDGE_BLESS=1 cargo test --release --test all c_header
//! ```

use crate::support::*;
use procbridge_abi::Errno;
use std::fmt::Write as _;

/// The C type of a parameter kind.
macro_rules! c_type {
    (ptr) => {
        "const void *"
    };
    (ptr_mut) => {
        "void *"
    };
    (i32_mut) => {
        "int32_t *"
    };
    (timeout) => {
        "int64_t "
    };
    ($kind:ident) => {
        "int32_t "
    };
}

/// Every function as a C prototype with its import attributes.
macro_rules! prototypes {
    ($($section:ident { $($name:ident($($param:ident: $kind:ident),*);)* })*) => {{
        let mut out = String::new();
        $(
            let _ = writeln!(out, "\n/* {} */", stringify!($section));
            $(
                let params: Vec<String> =
                    vec![$(format!("{}{}", c_type!($kind), stringify!($param))),*];
                let params = if params.is_empty() { String::from("void") } else { params.join(", ") };
                let _ = writeln!(
                    out,
                    "PB_IMPORT({name}) int32_t pb_{name}({params});",
                    name = stringify!($name),
                );
            )*
        )*
        out
    }};
}

/// Every constant as a `#define`.
macro_rules! defines {
    ($($group:ident { $($name:ident = $value:expr;)* })*) => {{
        let mut out = String::new();
        $($(
            let value = i64::from($value);
            let name = stringify!($name);
            let text = if name == "NO_TIMEOUT" {
                format!("((int64_t){value})")
            } else if value < 0 {
                format!("({value})")
            } else {
                value.to_string()
            };
            let _ = writeln!(out, "#define PB_{name} {text}");
        )*)*
        out
    }};
}

const HEAD: &str = r#"/*
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
"#;

const HELPERS: &str = r#"
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
"#;

/// The header, rendered from the table.
fn render() -> String {
    let mut out = String::from(HEAD);
    out.push_str("\n/* Errors: a failed call returns -PB_Exxx. */\n");
    for errno in Errno::ALL {
        let _ = writeln!(out, "#define PB_{} {}", errno.name(), errno as i32);
    }
    out.push_str("\n/* Constants (docs/abi.md, \"Constants\"). */\n");
    out.push_str(&procbridge_abi::constants!(defines));
    out.push_str("\n/* The host functions (docs/abi.md, \"Functions\"). */");
    out.push_str(&procbridge_abi::functions!(prototypes));
    out.push_str(HELPERS);
    out
}

fn header_path() -> std::path::PathBuf {
    root().join("guest-sdk/c/procbridge.h")
}

#[test]
fn the_c_header_is_made_from_the_table() {
    let rendered = render();
    if std::env::var_os("PROCBRIDGE_BLESS").is_some() {
        std::fs::create_dir_all(header_path().parent().unwrap()).unwrap();
        std::fs::write(header_path(), &rendered).unwrap();
    }
    let checked_in = std::fs::read_to_string(header_path()).unwrap_or_default();
    assert!(
        checked_in == rendered,
        "guest-sdk/c/procbridge.h is stale: rewrite it with \
         PROCBRIDGE_BLESS=1 cargo test --release --test all c_header"
    );
    for errno in Errno::ALL {
        assert!(rendered.contains(&format!("#define PB_{} ", errno.name())));
    }
    assert!(rendered.contains("PB_IMPORT(popen_communicate) int32_t pb_popen_communicate("));
    assert!(rendered.contains("#define PB_NO_TIMEOUT ((int64_t)-1)"));
}
