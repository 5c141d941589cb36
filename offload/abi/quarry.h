// SPDX-License-Identifier: Apache-2.0
/*
 * quarry.h - the host-call ABI of Quarry storage functions: version 1, and the input window
 * of version 2 (below the v1 host calls).
 *
 * A Quarry function is a WASI preview1 *command* module: it exports `_start` and `memory`, and
 * behaves like a Unix filter. Build one with
 *
 *     clang --target=wasm32-wasi -O2 -I offload/abi -o fn.wasm fn.c
 *
 * (examples/functions/build.sh shows the exact invocation and the Debian packages it needs).
 *
 * Streams
 *   stdin   the object body (for `put`: the request body), streamed. Read it in a loop with
 *           read(0, buf, 64 KiB); never assume the whole object fits in memory.
 *   stdout  the result, streamed to the client or to the store (see the event table).
 *   stderr  each line goes to the daemon log, tagged with the function name.
 *   exit    status 0 is success; any other status fails the request, and the client gets an
 *           error that names the function. A function may exit before reading all of stdin
 *           (head does); that is not an error.
 *
 * Events (QUARRY_EVENT), what each one reads and where its output goes
 *   before-get  stdin empty;              stdout discarded;     may rewrite_key or redirect
 *   after-get   stdin the stored body;    stdout the response body
 *   put         stdin the request body;   stdout the body that is stored
 *   put-done    stdin the stored body;    stdout discarded;     runs after the object is stored
 *   delete      stdin empty;              stdout discarded
 *   copy        stdin the copied body;    stdout discarded;     runs after the copy is stored
 *   invoke      stdin the stored body;    stdout the response body (`quarry invoke`)
 *
 * Environment
 *   QUARRY_PARAM_<NAME>    each parameter (manifest defaults, then `fn deploy --param`, then
 *                          `trigger add --param`, then the request's x-quarry-param-* headers);
 *                          NAME is the parameter name upper-cased with '-' turned into '_'
 *   QUARRY_FUNCTION        the function's deployed name
 *   QUARRY_EVENT           one of the event names above
 *   QUARRY_BUCKET          the trigger's bucket
 *   QUARRY_KEY             the object key
 *   QUARRY_SIZE            the body size in bytes, decimal; absent when unknown (chunked PUT)
 *   QUARRY_CONTENT_TYPE    the object's (or request's) content type
 *   QUARRY_ETAG            the object's ETag, when known
 *   QUARRY_META_<NAME>     each user-metadata entry (x-amz-meta-<name>), NAME as for params
 *
 * Host calls
 *   Imported from the wasm module "quarry". Pointers and lengths are i32 (wasm32 `size_t`),
 *   offsets and sizes of objects are i64. A negative result is one of the QUARRY_E* codes below.
 *   Text (header and metadata names and values, keys, URLs, messages) is passed as (pointer,
 *   length) with no NUL terminator; it must be UTF-8, and names and values must not contain
 *   CR, LF or NUL (QUARRY_EINVAL otherwise). Object contents are plain bytes.
 */
#ifndef QUARRY_H
#define QUARRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUARRY_ABI_VERSION 1

/* Results of host calls. */
#define QUARRY_OK 0
#define QUARRY_EINVAL (-1)    /* invalid argument: bad name, bad UTF-8, pointer out of memory */
#define QUARRY_EPERM (-2)     /* not permitted: the manifest lacks the permission */
#define QUARRY_ENOENT (-3)    /* not found: no such object */
#define QUARRY_ETOOBIG (-4)   /* too large: value, metadata or object over its limit */
#define QUARRY_EEVENT (-5)    /* not available for this event */
#define QUARRY_EIO (-6)       /* I/O error in the store */

#define QUARRY_IMPORT(name) __attribute__((import_module("quarry"), import_name(name)))

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Sets a header of the response to the client. Available on before-get, after-get and
 * invoke; QUARRY_EEVENT elsewhere. Allowed names (case-insensitive): content-type,
 * content-length, content-disposition, content-encoding, content-language, cache-control,
 * expires, and any name starting with x-amz-meta- or x-quarry-; QUARRY_EPERM for any other.
 * Setting a header twice keeps the last value. Call it before writing any output: the
 * response head goes out with the first output byte, and a call after that returns
 * QUARRY_EEVENT. The host drops the stored content-length whenever a function writes the
 * body, unless the function sets content-length itself (the output must then have exactly
 * that length).
 */
QUARRY_IMPORT("set_header")
int32_t quarry_set_header(const char *name, size_t name_len, const char *value, size_t value_len);

/*
 * Sets or replaces one user-metadata entry (the part after x-amz-meta-, stored lower-cased).
 * On put it is stored with the object; on put-done and copy it updates the stored object
 * after the function returns with status 0. QUARRY_EEVENT on other events; QUARRY_ETOOBIG
 * when the object's metadata would exceed the store's limit (2 KiB in all, as S3).
 */
QUARRY_IMPORT("set_metadata")
int32_t quarry_set_metadata(const char *name, size_t name_len, const char *value, size_t value_len);

/*
 * before-get only: read KEY (same bucket) instead of the requested key. The request then
 * goes on as if the client had asked for KEY; QUARRY_EINVAL for an empty key or one over
 * 1024 bytes.
 */
QUARRY_IMPORT("rewrite_key")
int32_t quarry_rewrite_key(const char *key, size_t key_len);

/*
 * before-get only: answer the request with 307 Temporary Redirect and Location: URL.
 * The function should then exit 0; the object is not read.
 */
QUARRY_IMPORT("redirect")
int32_t quarry_redirect(const char *url, size_t url_len);

/*
 * Ends the function now: the request fails with STATUS (400..599; other values become 500)
 * and MSG as its message. On put nothing is stored. Does not return: the host stops the
 * instance as proc_exit does.
 */
QUARRY_IMPORT("reject")
__attribute__((noreturn)) void quarry_reject(int32_t status, const char *msg, size_t msg_len);

/*
 * Size in bytes of another object KEY in the trigger's bucket. Needs the manifest
 * permission "read" (QUARRY_EPERM otherwise); QUARRY_ENOENT when there is no such object.
 */
QUARRY_IMPORT("object_size")
int64_t quarry_object_size(const char *key, size_t key_len);

/*
 * Reads up to BUF_LEN bytes of object KEY (trigger's bucket) at OFFSET into BUF. Returns
 * the number of bytes read, 0 at or past the end. Needs permission "read".
 */
QUARRY_IMPORT("object_read")
int64_t quarry_object_read(const char *key, size_t key_len, int64_t offset, char *buf,
                           size_t buf_len);

/*
 * Writes (creates or replaces) the whole object KEY in the trigger's bucket with the BUF_LEN
 * bytes at BUF. Needs permission "write". Writes made by a function do not fire triggers.
 */
QUARRY_IMPORT("object_write")
int32_t quarry_object_write(const char *key, size_t key_len, const char *buf, size_t buf_len);

/* --------------------------------------------------------------- ABI v2: the input window */

/*
 * The input window: instead of read(0, ...) the function names a buffer of its own memory
 * once, and each quarry_input_next() has the host write the next input bytes straight into
 * it (one copy, from the store's read buffer into the window; stdin costs a second copy
 * through WASI's stream buffer). A module that calls quarry_input_next is a window module:
 * its stdin is empty, and everything else (stdout, stderr, environment, the host calls
 * above) stays as in ABI v1.
 *
 *     static char window[1 << 20];
 *     quarry_input_window(window, sizeof window);
 *     for (int64_t n; (n = quarry_input_next()) > 0;) consume(window, n);
 */
#define QUARRY_WINDOW_ABI_VERSION 2

/*
 * Names the window: LEN bytes (1 byte to 16 MiB) at WINDOW, inside the module's memory.
 * QUARRY_EINVAL otherwise. May be called again to move or resize the window.
 */
QUARRY_IMPORT("input_window")
int32_t quarry_input_window(void *window, size_t len);

/*
 * Writes the next input bytes to the start of the window and returns how many (at most the
 * window's length; possibly fewer before the end), 0 at the end of the input. The window's
 * previous contents are overwritten. QUARRY_EINVAL when no window was named, QUARRY_EIO when
 * the input failed (the request then fails as an input error, not the function's).
 */
QUARRY_IMPORT("input_next")
int64_t quarry_input_next(void);

#ifdef __cplusplus
}
#endif

/* ------------------------------------------------------------------------------ helpers */

/*
 * Parameter NAME (as deployed: "max-lines"), or DFLT when it is not set. Looks up
 * QUARRY_PARAM_<NAME> with NAME upper-cased and '-' turned into '_'. Names longer than 96
 * bytes are never set.
 */
static inline const char *quarry_param(const char *name, const char *dflt) {
    char var[13 + 96 + 1] = "QUARRY_PARAM_";
    size_t n = strlen(name);
    if (n > 96) {
        return dflt;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '-') {
            c = '_';
        } else if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        var[13 + i] = c;
    }
    var[13 + n] = '\0';
    const char *v = getenv(var);
    return v ? v : dflt;
}

/* The event that started this run ("after-get", ...), or "" outside Quarry. */
static inline const char *quarry_event(void) {
    const char *v = getenv("QUARRY_EVENT");
    return v ? v : "";
}

/*
 * Reads up to LEN bytes of the input into BUF; returns the count, 0 at the end of the input,
 * -1 on error. One call may return less than LEN before the end.
 */
static inline ssize_t quarry_read(void *buf, size_t len) {
    return read(0, buf, len);
}

/* Writes all LEN bytes of BUF to the output; returns 0, or -1 when the output is closed. */
static inline int quarry_write_all(const void *buf, size_t len) {
    const char *p = (const char *)buf;
    while (len > 0) {
        ssize_t n = write(1, p, len);
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* quarry_set_header with NUL-terminated strings. */
static inline int32_t quarry_set_header_str(const char *name, const char *value) {
    return quarry_set_header(name, strlen(name), value, strlen(value));
}

/* quarry_set_metadata with NUL-terminated strings. */
static inline int32_t quarry_set_metadata_str(const char *name, const char *value) {
    return quarry_set_metadata(name, strlen(name), value, strlen(value));
}

/* quarry_reject with a NUL-terminated message. */
__attribute__((noreturn)) static inline void quarry_reject_str(int32_t status, const char *msg) {
    quarry_reject(status, msg, strlen(msg));
}

/* A short name for a host-call result, for log lines. */
static inline const char *quarry_strerror(int64_t rc) {
    switch (rc) {
    case QUARRY_OK: return "ok";
    case QUARRY_EINVAL: return "invalid argument";
    case QUARRY_EPERM: return "not permitted";
    case QUARRY_ENOENT: return "not found";
    case QUARRY_ETOOBIG: return "too large";
    case QUARRY_EEVENT: return "not available for this event";
    case QUARRY_EIO: return "I/O error";
    default: return rc < 0 ? "unknown error" : "ok";
    }
}

#endif /* QUARRY_H */
