/*
 * etcd_int.h - internals of the etcd/ module: the pure parts (buffer,
 * base64, request bodies, answer parsing, watch stream framing, backoff)
 * that etcd.c builds on and the unit tests check without a server.
 *
 * Not part of the contract in etcd.h: names carry a double underscore
 * (etcd__) and may change with the module. Only etcd/ and its tests
 * include this file.
 */
#ifndef ETCD_INT_H
#define ETCD_INT_H

#include <stddef.h>
#include <stdint.h>
#include "etcd.h"

/* Fill err (if not NULL) with rc and a printf-style message; returns rc. */
int etcd__err_set(etcd_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Wipe n bytes at p (values may be secrets); p may be NULL. */
void etcd__wipe(void *p, size_t n);

/* ------------------------------------------------------------ buffer */

/*
 * A growable byte buffer with a hard cap (after curl's dynbuf). data is
 * NUL-terminated when not NULL. Adding past cap fails with ETCD_ETOOBIG and
 * leaves the buffer as it was. Release wipes the bytes before freeing.
 */
typedef struct etcd__buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap;
} etcd__buf;

void etcd__buf_init(etcd__buf *b, size_t cap);
void etcd__buf_release(etcd__buf *b);
int etcd__buf_add(etcd__buf *b, const void *p, size_t n);
/* Drop the first n bytes. */
void etcd__buf_consume(etcd__buf *b, size_t n);

/* ------------------------------------------------------------ base64 */

/* Standard padded base64 of n bytes; caller frees; NULL on ENOMEM. */
char *etcd__b64_encode(const void *p, size_t n);
/*
 * Decode standard padded base64 (len bytes of s). *out gets a
 * NUL-terminated copy (caller frees), *out_len its length. ETCD_EPARSE for
 * bad input, ETCD_ENOMEM; on failure *out is NULL.
 */
int etcd__b64_decode(const char *s, size_t len, char **out, size_t *out_len);

/*
 * The range_end of a prefix: key with its last byte below 0xff increased
 * and what follows dropped; "\0" (every key >= key) when there is no such
 * byte (key empty or all 0xff). *end is NUL-terminated, caller frees.
 */
int etcd__prefix_end(const char *key, size_t len, char **end, size_t *end_len);

/* ------------------------------------------------------ request bodies */

/*
 * JSON bodies of the gateway's requests; caller frees (etcd__free_body:
 * it wipes); NULL on ENOMEM. Revisions and limits are sent as strings,
 * as the gateway writes int64 itself.
 */
char *etcd__range_body(const char *key, int prefix, int64_t limit);
char *etcd__put_body(const char *key, const char *value, size_t value_len);
char *etcd__delete_body(const char *key, int prefix);
/* {"create_request":{key, range_end, start_revision}}; start_revision 0: from now */
char *etcd__watch_body(const char *key, int prefix, int64_t start_revision);
void etcd__free_body(char *body);

/* ------------------------------------------------------ answer parsing */

/*
 * Parse a 2xx answer. Fields proto3 leaves out when zero or empty (kvs,
 * count, more, value, deleted) count as zero/empty; a missing header, a
 * kv without a key, bad base64 or a number that is not an int64 (the
 * gateway writes them as strings) is ETCD_EPARSE. On failure out is left
 * empty.
 */
int etcd__parse_range(const char *body, size_t len, etcd_range_result *out, etcd_err *err);
int etcd__parse_put(const char *body, size_t len, int64_t *revision, etcd_err *err);
int etcd__parse_delete(const char *body, size_t len, int64_t *deleted, int64_t *revision,
                       etcd_err *err);
/*
 * An error answer (any non-2xx): ETCD_EHTTP with http_code, the gateway's
 * "code" and "message" ({"error":..., "code":N, "message":...}); a body
 * that is not that keeps its first 200 bytes as the message. Returns
 * ETCD_EHTTP.
 */
int etcd__parse_error(const char *body, size_t len, long http_code, etcd_err *err);

/* ------------------------------------------------ watch stream framing */

/*
 * Splits a byte stream into top-level JSON objects, whatever the chunking:
 * an object split across chunks is kept until complete, several objects
 * in one chunk are each delivered at once. Strings (with escapes) are
 * skipped so braces inside them do not count. Whitespace between objects
 * is ignored; any other byte there is ETCD_EPARSE. An object longer than
 * the cap is ETCD_ETOOBIG.
 */
typedef struct etcd__framer {
    etcd__buf buf;    /* bytes not yet delivered */
    size_t scan;      /* how far buf has been scanned */
    size_t start;     /* where the current object starts */
    int depth, in_str, esc;
} etcd__framer;

typedef int (*etcd__object_fn)(void *ud, const char *obj, size_t len);

void etcd__framer_init(etcd__framer *f, size_t cap);
void etcd__framer_release(etcd__framer *f);
/*
 * Feed n bytes; fn is called for each complete object. Returns 0, the
 * framer's error, or fn's non-zero return (delivery then stops; the
 * framer is left unusable until released).
 */
int etcd__framer_feed(etcd__framer *f, const char *p, size_t n, etcd__object_fn fn, void *ud);

/* What a watch keeps across its messages and connections. */
typedef struct etcd__watch_state {
    int64_t next_rev;          /* the revision to resume from; 0 = from now */
    int created;               /* this connection's watch was created */
    int restart;               /* compacted: reconnect from now, at once */
    int64_t compacted;         /* compact_revision to report once created again */
    int failed;                /* a connection failed since the last "created" */
    void (*on_open)(void *ud); /* told at the first "created" after a failure */
} etcd__watch_state;

/*
 * One message of the watch stream: {"result":{header, created, canceled,
 * compact_revision, events}} or {"error":{...}}. Delivers each event to fn
 * and advances next_rev past it. A compaction sets restart and next_rev 0,
 * and the next "created" reports ETCD_EVENT_COMPACTED. Returns ETCD_OK,
 * ETCD_ESTOPPED (fn said stop), ETCD_EPARSE, ETCD_EHTTP (an error message
 * or a cancel without compaction), ETCD_ENOMEM.
 */
int etcd__watch_message(etcd__watch_state *st, const char *obj, size_t len,
                        etcd_watch_fn fn, void *ud, etcd_err *err);

/* ------------------------------------------------------------ backoff */

/*
 * The delay before reconnect number failures+1 (failures >= 0 in a row):
 * min(initial * 2^failures, max) scaled by 0.8 + 0.4 * jitter_unit
 * (uniform in [0, 1], clamped) and capped at max again: always within
 * [0.8 * initial, max] for 0 < initial <= max; 0 for non-positive
 * arguments; no overflow for a huge failures.
 */
double etcd__backoff(double initial, double max, int failures, double jitter_unit);

#endif /* ETCD_INT_H */
