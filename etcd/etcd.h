/*
 * etcd.h - a small etcd v3 client for C.
 *
 * Speaks etcd's v3 JSON gateway (POST /v3/kv/range, /v3/kv/put,
 * /v3/kv/deleterange and the streaming /v3/watch; etcd 3.4 and later) over
 * libcurl: keys and values travel base64-encoded in JSON, revisions come
 * back with every answer. A client has a list of endpoints and moves to the
 * next one when an endpoint cannot be reached; TLS material is handed to
 * libcurl from memory (never written to a file) and the server's
 * certificate is always verified when TLS is used. A watch delivers PUT and
 * DELETE events to a callback, reconnects with a jittered, capped backoff
 * resuming after the last revision it saw, and recovers from compaction.
 * It knows nothing of Tianqing or Kubernetes.
 *
 * Conventions (as k8s/k8s.h):
 *  - every function that can fail returns int: 0 (ETCD_OK) or an etcd_rc;
 *    when an etcd_err pointer is given it is filled with the detail;
 *  - _new/_free allocate and free a struct, _release frees the insides of
 *    a caller-owned one;
 *  - messages never hold a secret: no value, no key material, no PEM.
 *
 * Thread safety: an etcd_client is used by one thread at a time, except
 * etcd_client_stop/etcd_client_resume which any thread may call. A watch
 * blocks its thread, so it gets a client of its own.
 */
#ifndef ETCD_H
#define ETCD_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ errors */

typedef enum etcd_rc {
    ETCD_OK = 0,
    ETCD_ENOMEM,        /* an allocation failed */
    ETCD_EINVAL,        /* the caller passed something unusable */
    ETCD_EUNREACHABLE,  /* no endpoint could be connected to (refused, DNS, connect timeout) */
    ETCD_ETLS,          /* TLS failed: unknown CA, bad certificate or key, handshake refused */
    ETCD_ETIMEOUT,      /* connected, but the answer did not come in time */
    ETCD_EHTTP,         /* etcd answered with an error: err.http_code, err.grpc_code, err.message */
    ETCD_EPARSE,        /* an answer was not the JSON we expected */
    ETCD_ETOOBIG,       /* an answer went over the client's max_body */
    ETCD_ESTOPPED,      /* stopped by etcd_client_stop or by a watch callback */
    ETCD_RC_MAX
} etcd_rc;

/*
 * The detail of a failure. Fixed-size buffers, so filling it never fails.
 * message names the endpoint concerned when there is one.
 */
typedef struct etcd_err {
    etcd_rc rc;
    long http_code;        /* HTTP status; 0 when there was no HTTP answer */
    int grpc_code;         /* the gateway's "code" (gRPC status: 3 invalid
                              argument, 11 out of range, 14 unavailable...), or 0 */
    char message[512];     /* etcd's "message", or what went wrong locally */
} etcd_err;

/* Static text for a result code; never NULL. */
const char *etcd_strerror(int rc);

/* ------------------------------------------------------------------ client */

typedef struct etcd_client etcd_client;

typedef struct etcd_config {
    const char *const *endpoints;   /* "http://127.0.0.1:2379", "https://h:2379";
                                       no user:password@ part, no path */
    size_t n_endpoints;
    /* TLS, all optional, PEM text (not NUL-terminated necessarily). With a
     * CA it is the only trust anchor; without one the system's CAs are. */
    const char *ca_pem;   size_t ca_len;
    const char *cert_pem; size_t cert_len;   /* client certificate ... */
    const char *key_pem;  size_t key_len;    /* ... and its key: both or neither */
    long connect_timeout_ms;   /* per endpoint; 0 = 2000 */
    long timeout_ms;           /* a whole request (not a watch); 0 = 10000 */
    size_t max_body;           /* cap of an answer or one watch message; 0 = 16 MiB */
} etcd_config;

/*
 * Make a client. It copies everything from cfg (cfg may be freed after);
 * the key is wiped from memory when the client is freed. Fails with
 * ETCD_EINVAL for no endpoint, an endpoint that is not http(s)://host[:port],
 * a certificate without its key; ETCD_ENOMEM.
 */
int etcd_client_new(const etcd_config *cfg, etcd_client **out, etcd_err *err);
void etcd_client_free(etcd_client *c);

/*
 * Ask a request or watch running on c (in another thread) to stop; it
 * returns ETCD_ESTOPPED within milliseconds (the transfer's poll is woken
 * up). Thread-safe; c must not be freed meanwhile. Requests made after it
 * fail with ETCD_ESTOPPED until etcd_client_resume().
 */
void etcd_client_stop(etcd_client *c);
void etcd_client_resume(etcd_client *c);

/* HTTP requests sent by c so far (a watch counts once per connection). */
uint64_t etcd_client_requests(const etcd_client *c);

/* ------------------------------------------------------------------ kv */

typedef struct etcd_kv {
    char *key;            /* NUL-terminated */
    size_t key_len;
    char *value;          /* NUL-terminated (not counted in value_len); "" if empty */
    size_t value_len;
    int64_t create_revision, mod_revision, version;
} etcd_kv;

typedef struct etcd_range_result {
    etcd_kv *kvs;         /* n entries, in key order */
    size_t n;
    int64_t count;        /* keys in the range (may exceed n with a limit) */
    int more;             /* more keys past the limit */
    int64_t revision;     /* the store's revision when read (header.revision) */
} etcd_range_result;

/* Free the kvs (values wiped first) and empty the result. */
void etcd_range_result_release(etcd_range_result *r);

/*
 * Read one key, or with prefix != 0 every key starting with key (key ""
 * with prefix: every key). limit 0 = no limit. On success *out is filled
 * (caller releases); a missing key is success with n == 0. On failure out
 * is left empty.
 */
int etcd_range(etcd_client *c, const char *key, int prefix, int64_t limit,
               etcd_range_result *out, etcd_err *err);

/*
 * Write key = value (value_len bytes, may hold NULs). *revision (if not
 * NULL) gets the new revision, which is the key's mod_revision.
 */
int etcd_put(etcd_client *c, const char *key, const char *value, size_t value_len,
             int64_t *revision, etcd_err *err);

/*
 * Delete one key, or with prefix != 0 every key starting with key.
 * *deleted (if not NULL) gets how many were deleted (0 is success),
 * *revision (if not NULL) the store's revision after it.
 */
int etcd_delete(etcd_client *c, const char *key, int prefix, int64_t *deleted,
                int64_t *revision, etcd_err *err);

/* ------------------------------------------------------------------ watch */

typedef enum etcd_event_type {
    ETCD_EVENT_PUT,
    ETCD_EVENT_DELETE,
    /*
     * The revisions the watch needed were compacted away: events between
     * the last one delivered and `revision` may be lost. The watch has
     * restarted from the current revision (`revision`; every later change
     * will be delivered) and the caller should read the keys again.
     * compact_revision is etcd's.
     */
    ETCD_EVENT_COMPACTED
} etcd_event_type;

/* Valid only during the callback. */
typedef struct etcd_event {
    etcd_event_type type;
    const char *key;          /* NUL-terminated; NULL for COMPACTED */
    size_t key_len;
    const char *value;        /* PUT: the new value (NUL-terminated); else NULL */
    size_t value_len;
    int64_t mod_revision;     /* PUT/DELETE: the change's revision;
                                 COMPACTED: the revision the watch restarted at */
    int64_t compact_revision; /* COMPACTED only */
} etcd_event;

/* Return 0 to go on, non-zero to end the watch (ETCD_ESTOPPED). */
typedef int (*etcd_watch_fn)(void *ud, const etcd_event *ev);

/*
 * Told of every failed connection of a watch before it waits delay_s
 * seconds and reconnects; failures counts them in a row (1, 2, ...).
 */
typedef void (*etcd_watch_error_fn)(void *ud, const etcd_err *err, int failures,
                                    double delay_s);

/*
 * Told that a stream is open again (etcd answered "created") after one or
 * more failed connections: changes made meanwhile are delivered as events,
 * but a caller that gave up on etcd while it was away can look again.
 */
typedef void (*etcd_watch_open_fn)(void *ud);

typedef struct etcd_watch_opts {
    int prefix;                 /* watch every key starting with key */
    int64_t start_revision;     /* deliver changes from this revision; 0 = from now */
    double backoff_initial_s;   /* 0 = 0.1 */
    double backoff_max_s;       /* 0 = 5 */
    etcd_watch_error_fn on_error;   /* may be NULL */
    etcd_watch_open_fn on_open;     /* may be NULL: open again after a failure */
} etcd_watch_opts;

/*
 * Watch key (or the prefix) and call fn for each event, in revision order,
 * until stopped. Blocks. A stream that breaks or cannot be opened (etcd
 * unreachable, restarting, answering 5xx or gRPC "unavailable") is opened
 * again after a backoff, from the revision after the last one seen, so no
 * event is lost or repeated; the backoff restarts once a stream is open.
 * An idle watch sends nothing (TCP keep-alive only).
 *
 * Returns ETCD_ESTOPPED after etcd_client_stop() or a non-zero fn; or the
 * error that no reconnect can fix: ETCD_ETLS, ETCD_EINVAL, ETCD_ENOMEM,
 * ETCD_EHTTP other than 5xx/unavailable. opts may be NULL.
 */
int etcd_watch(etcd_client *c, const char *key, const etcd_watch_opts *opts,
               etcd_watch_fn fn, void *ud, etcd_err *err);

#endif /* ETCD_H */
