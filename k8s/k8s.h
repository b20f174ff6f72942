/*
 * k8s.h - a small Kubernetes client for C.
 *
 * Loads client configuration (kubeconfig files or the in-cluster service
 * account), speaks the REST API over libcurl with connection reuse, keeps
 * the API server's Status body on every failure, retries 429/5xx within
 * bounds, rate-limits itself, and gives a few cJSON accessors so callers
 * work on plain JSON trees instead of generated models. It knows nothing of
 * Tianqing: the controller in ../controller builds on it.
 *
 * Conventions (see ../../shared/docs/style.md):
 *  - every function that can fail returns int: 0 (K8S_OK) on success or a
 *    k8s_rc; when an k8s_err pointer is given it is filled with the detail;
 *  - _init fills a caller-owned struct, _release frees its insides,
 *    _new/_free allocate and free the struct too;
 *  - "caller frees" is written next to every function that hands over memory.
 *
 * Thread safety: a k8s_client is used by one thread at a time. Threads that
 * need the API concurrently (a watch, a worker) each make their own client
 * from the same k8s_config (k8s_client_new copies what it needs).
 */
#ifndef K8S_H
#define K8S_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cjson/cJSON.h>

/* ------------------------------------------------------------------ errors */

typedef enum k8s_rc {
    K8S_OK = 0,
    K8S_ENOMEM,     /* an allocation failed */
    K8S_EINVAL,     /* the caller passed something unusable */
    K8S_ECONFIG,    /* kubeconfig/in-cluster configuration is missing or wrong */
    K8S_EIO,        /* a local file could not be read or written */
    K8S_ECONNECT,   /* the server could not be reached (DNS, refused, reset) */
    K8S_ETLS,       /* TLS failed: unknown CA, bad certificate or key */
    K8S_ETIMEOUT,   /* the request or stream timed out */
    K8S_EAPI,       /* the server answered with an error status (see err.code/reason) */
    K8S_EPARSE,     /* a body was not the JSON we expected */
    K8S_ETOOBIG,    /* a body went over its size cap */
    K8S_EEXEC,      /* a credential plugin failed */
    K8S_ESTOPPED,   /* a stream was stopped by its callback or by k8s_client_stop */
    K8S_RC_MAX
} k8s_rc;

/*
 * The detail of a failure. Fixed-size buffers so that filling it can never
 * fail itself (even after ENOMEM). message always names the file or server
 * concerned when there is one. Never contains a secret (tokens, keys).
 */
typedef struct k8s_err {
    k8s_rc rc;
    long code;             /* HTTP status, 0 when there was no HTTP answer */
    char reason[64];       /* Status.reason: NotFound, AlreadyExists, Conflict,
                              Invalid, Expired, Gone, TooManyRequests, Forbidden... */
    char message[1024];    /* Status.message, or what went wrong locally */
    char causes[1024];     /* details.causes as "field: message; field: message" */
    long retry_after;      /* seconds from Retry-After, 0 when absent */
} k8s_err;

/* Static text for a result code; never NULL. */
const char *k8s_strerror(int rc);

/* Clear an error to K8S_OK. */
void k8s_err_clear(k8s_err *err);

/* Fill err (if not NULL) with rc and a printf-style message; returns rc. */
int k8s_err_set(k8s_err *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "NotFound: deployments.apps \"x\" not found (404)" style one-liner into buf. */
const char *k8s_err_str(const k8s_err *err, char *buf, size_t len);

/* True when err is an API error with this Status.reason (e.g. "NotFound"). */
int k8s_err_is(const k8s_err *err, const char *reason);

/* ------------------------------------------------------------------ buffer */

/*
 * A growable byte buffer with a hard cap. data is always NUL-terminated
 * (when not NULL). Appending past cap fails with K8S_ETOOBIG and leaves the
 * buffer as it was.
 */
typedef struct k8s_buf {
    char *data;
    size_t len;
    size_t alloc;
    size_t cap;      /* maximum len; 0 means K8S_BUF_DEFAULT_CAP */
    int wipe;        /* 1: it holds secrets: every block is wiped (OPENSSL_cleanse)
                        before it is freed or moved (no realloc); kept by release */
} k8s_buf;

#define K8S_BUF_DEFAULT_CAP ((size_t)64 << 20)   /* 64 MiB */

void k8s_buf_init(k8s_buf *b, size_t cap);
void k8s_buf_release(k8s_buf *b);
void k8s_buf_reset(k8s_buf *b);              /* len = 0, keeps memory */
int k8s_buf_add(k8s_buf *b, const void *p, size_t n);
int k8s_buf_adds(k8s_buf *b, const char *s);
int k8s_buf_printf(k8s_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hand over data (caller frees) and reinitialise b. May return NULL if empty. */
char *k8s_buf_detach(k8s_buf *b, size_t *len);
/* Drop the first n bytes. */
void k8s_buf_consume(k8s_buf *b, size_t n);

/* ------------------------------------------------------------------ config */

typedef struct k8s_blob {
    unsigned char *data;   /* owned; PEM text for certificates and keys */
    size_t len;
} k8s_blob;

/*
 * Decode standard (padded) base64; CR, LF, space and tab anywhere are
 * ignored, as Go's decoder does. out->data is NUL-terminated (not counted
 * in len); caller frees with k8s_blob_release. Returns K8S_EINVAL for bad
 * input (there is no err: the caller names the field, never the data) or
 * K8S_ENOMEM. On failure out is left empty.
 */
int k8s_base64_decode(const char *in, size_t len, k8s_blob *out);

/* Wipe (OPENSSL_cleanse) and free a blob's data; leaves it empty. */
void k8s_blob_release(k8s_blob *b);

/* A client-go credential plugin (users[].user.exec). */
typedef struct k8s_exec_config {
    char *api_version;     /* client.authentication.k8s.io/v1beta1 etc. */
    char **argv;           /* argv[0] = command (resolved against the kubeconfig's
                              folder when it contains a '/'), NULL-terminated */
    char **env;            /* extra "NAME=VALUE" entries, NULL-terminated */
} k8s_exec_config;

typedef struct k8s_config {
    char *server;              /* "https://host:port", no trailing slash */
    char *tls_server_name;     /* or NULL */
    int insecure_skip_tls_verify;
    k8s_blob ca;               /* PEM bundle, or empty: system CAs */
    k8s_blob client_cert;      /* PEM, or empty */
    k8s_blob client_key;       /* PEM, or empty */
    char *token;               /* static bearer token, or NULL */
    char *token_file;          /* re-read periodically and on 401, or NULL */
    k8s_exec_config *exec;     /* or NULL */
    char *namespace;           /* context's namespace, in-cluster namespace, or "default" */
    char *context;             /* context name used, or NULL in-cluster */
    char *source;              /* for messages: the kubeconfig file(s) or "in-cluster" */
} k8s_config;

/*
 * Load configuration the way kubectl does:
 *   kubeconfig != NULL: that one file;
 *   else $KUBECONFIG: a ':'-separated list, merged (the first file to set a
 *        map entry or current-context wins);
 *   else ~/.kube/config when it exists;
 *   else the in-cluster service account (k8s_config_load_incluster("/")).
 * context: NULL means current-context. Relative paths in a file resolve
 * against that file's folder. Certificate and key files are read into
 * memory here, so a missing or unreadable one fails at load time.
 * On failure cfg is left empty (nothing to release) and err names the file
 * and the problem in one line.
 */
int k8s_config_load(k8s_config *cfg, const char *kubeconfig,
                    const char *context, k8s_err *err);

/*
 * In-cluster configuration: $KUBERNETES_SERVICE_HOST/PORT (IPv6 bracketed),
 * <root>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}.
 * root is "/" in production and a temporary folder in tests. The token is
 * referenced as token_file so the client re-reads it.
 */
int k8s_config_load_incluster(k8s_config *cfg, const char *root, k8s_err *err);

void k8s_config_release(k8s_config *cfg);

/* The result of running a credential plugin. */
typedef struct k8s_exec_credential {
    char *token;               /* or NULL */
    k8s_blob client_cert;      /* PEM or empty */
    k8s_blob client_key;       /* PEM or empty */
    int64_t expires;           /* unix seconds, 0 = no expiry given */
} k8s_exec_credential;

/*
 * Run the plugin from its argv (no shell), with its env added to ours and
 * KUBERNETES_EXEC_INFO set, stdin closed; parse the ExecCredential it
 * prints. Bounded in time (30 s) and output size. Fails with K8S_EEXEC and
 * the plugin's exit status and a short stderr excerpt in err.
 */
int k8s_exec_credential_get(const k8s_exec_config *exec, k8s_exec_credential *out,
                            k8s_err *err);
void k8s_exec_credential_release(k8s_exec_credential *c);

/* ------------------------------------------------------------------ client */

typedef struct k8s_client k8s_client;

typedef struct k8s_client_opts {
    double qps;                /* client-side rate limit; 0 = default 5, <0 = unlimited */
    int burst;                 /* 0 = default 10 */
    int max_retries;           /* for 429/5xx/connection errors; 0 = default 5, <0 = none */
    long timeout_ms;           /* whole request; 0 = default 30000 */
    long connect_timeout_ms;   /* 0 = default 10000 */
    size_t max_body;           /* response cap; 0 = K8S_BUF_DEFAULT_CAP */
    const char *user_agent;    /* NULL = "k8s-c" */
} k8s_client_opts;

/* Makes its own copy of everything in cfg. opts may be NULL. */
int k8s_client_new(const k8s_config *cfg, const k8s_client_opts *opts,
                   k8s_client **out, k8s_err *err);
void k8s_client_free(k8s_client *c);

/* Ask a stream or request running on c in another thread to stop soon
 * (within about a second); it then fails with K8S_ESTOPPED. Async-signal-
 * and thread-safe. k8s_client_resume() clears the flag. */
void k8s_client_stop(k8s_client *c);
void k8s_client_resume(k8s_client *c);

/* Counters, for metrics: requests by verb and status code (0: no answer),
 * with the seconds they took. A stream (a watch) is counted once, when its
 * answer's headers are in, with the time to them; not when it ends. */
typedef void (*k8s_request_observer)(void *ud, const char *verb, long code,
                                     double seconds);
void k8s_client_set_observer(k8s_client *c, k8s_request_observer fn, void *ud);
/* The observer every client made afterwards starts with (process-wide
 * metrics); set it once at start-up, before other threads make clients. */
void k8s_set_default_observer(k8s_request_observer fn, void *ud);

/* A resource type. */
typedef struct k8s_resource {
    const char *group;        /* "" for the core group */
    const char *version;      /* "v1" */
    const char *plural;       /* "configmaps" */
    int namespaced;
} k8s_resource;

extern const k8s_resource K8S_NAMESPACES, K8S_CONFIGMAPS, K8S_SECRETS,
    K8S_SERVICES, K8S_EVENTS, K8S_NODES, K8S_DEPLOYMENTS, K8S_LEASES,
    K8S_CRDS;

/*
 * Build "/api/v1/namespaces/ns/configmaps/name/status" style paths with every
 * part percent-encoded. ns/name/sub may be NULL. Caller frees.
 */
char *k8s_path(const k8s_resource *r, const char *ns, const char *name,
               const char *subresource);

/* Percent-encode one path segment or query value (RFC 3986 unreserved kept).
 * Caller frees. */
char *k8s_escape(const char *s);

#define K8S_CT_JSON            "application/json"
#define K8S_CT_MERGE_PATCH     "application/merge-patch+json"
#define K8S_CT_STRATEGIC_PATCH "application/strategic-merge-patch+json"
#define K8S_CT_JSON_PATCH      "application/json-patch+json"

/*
 * The one request primitive. path includes any query ("?limit=500").
 * body may be NULL. On 2xx, *out (if out != NULL) gets the parsed body
 * (caller frees with cJSON_Delete; NULL for an empty body). On failure
 * returns the k8s_rc and fills err; an API error keeps code, reason,
 * message and causes from the Status body. 429, 5xx and connection errors
 * are retried up to max_retries with backoff, honouring Retry-After (capped
 * at 30 s); a 401 first refreshes file/exec credentials and retries once.
 */
int k8s_request(k8s_client *c, const char *method, const char *path,
                const char *content_type, const char *body, size_t body_len,
                cJSON **out, k8s_err *err);

/* Convenience wrappers over k8s_request (ns NULL for cluster scope). */
int k8s_get(k8s_client *c, const k8s_resource *r, const char *ns,
            const char *name, cJSON **out, k8s_err *err);
/*
 * k8s_get of an object that holds secrets (a Secret): every buffer of ours
 * that held the response body is wiped before it is freed (libcurl's and
 * OpenSSL's own transfer buffers are theirs). Free *out with
 * k8s_json_wipe_delete.
 */
int k8s_get_sensitive(k8s_client *c, const k8s_resource *r, const char *ns,
                      const char *name, cJSON **out, k8s_err *err);
/* Wipe every string of the tree (values and keys), then cJSON_Delete it. NULL: nothing. */
void k8s_json_wipe_delete(cJSON *j);
int k8s_create(k8s_client *c, const k8s_resource *r, const char *ns,
               const cJSON *obj, cJSON **out, k8s_err *err);
int k8s_replace(k8s_client *c, const k8s_resource *r, const char *ns,
                const char *name, const cJSON *obj, cJSON **out, k8s_err *err);
/* content_type: one of K8S_CT_*_PATCH. sub: NULL or "status". */
int k8s_patch(k8s_client *c, const k8s_resource *r, const char *ns,
              const char *name, const char *sub, const char *content_type,
              const cJSON *patch, cJSON **out, k8s_err *err);
int k8s_delete(k8s_client *c, const k8s_resource *r, const char *ns,
               const char *name, k8s_err *err);
/* PUT to /status: only status is taken by the server; spec is ignored. */
int k8s_replace_status(k8s_client *c, const k8s_resource *r, const char *ns,
                       const char *name, const cJSON *obj, cJSON **out,
                       k8s_err *err);

typedef struct k8s_list_opts {
    const char *label_selector;   /* or NULL */
    const char *field_selector;   /* or NULL */
    int limit;                    /* page size; 0 = 500 */
} k8s_list_opts;

/*
 * Paginated list: calls fn once per item (the cJSON item is only valid
 * during the call), following `continue` until done. An expired continue
 * token (410) restarts the list from the beginning, once; fn is then
 * called once with item NULL and restart=1 (before any item of the new
 * list, even when it is empty) so it can drop what it kept. On success
 * *resource_version (if not NULL) gets the list's resourceVersion (caller
 * frees). fn returns 0 to go on, non-zero to stop (K8S_ESTOPPED).
 */
typedef int (*k8s_item_fn)(void *ud, const cJSON *item, int restart);
int k8s_list(k8s_client *c, const k8s_resource *r, const char *ns,
             const k8s_list_opts *opts, k8s_item_fn fn, void *ud,
             char **resource_version, k8s_err *err);

/*
 * Streaming GET: the body is delivered line by line as it arrives (lines
 * may span chunks; every complete line is delivered at once, without
 * waiting for more data). Used for watches. A line longer than max_body
 * fails with K8S_ETOOBIG. idle_timeout_s: no bytes for this long is
 * K8S_ETIMEOUT (0 = none). fn returns non-zero to stop.
 */
typedef int (*k8s_line_fn)(void *ud, const char *line, size_t len);
int k8s_stream(k8s_client *c, const char *path, long idle_timeout_s,
               k8s_line_fn fn, void *ud, k8s_err *err);

/* ---------------------------------------------------------------- JSON */

/*
 * Small accessors over cJSON trees. Paths are key lists ending in NULL:
 *   k8s_json_str(obj, "metadata", "name", NULL)
 * They return NULL / the default when a key is missing or of another type.
 */
cJSON *k8s_json_get(const cJSON *obj, ...) __attribute__((sentinel));
const char *k8s_json_str(const cJSON *obj, ...) __attribute__((sentinel));
/* Numbers (and only numbers) give their value, anything else dflt. */
long long k8s_json_int(const cJSON *obj, long long dflt, ...) __attribute__((sentinel));
/* JSON true/false; anything else dflt. */
int k8s_json_bool(const cJSON *obj, int dflt, ...) __attribute__((sentinel));

/*
 * Put item under key in obj, replacing what is there; append item to the
 * array arr. Both take ownership of item in every case: when cJSON cannot
 * add it (it failed to copy the key) item is freed here, so callers never
 * leak. item may be NULL (a failed cJSON_Create*): K8S_ENOMEM.
 */
int k8s_json_put(cJSON *obj, const char *key, cJSON *item);
int k8s_json_append(cJSON *arr, cJSON *item);

/* Parse/print with our error type. Caller frees. */
int k8s_json_parse(const char *s, size_t len, cJSON **out, k8s_err *err);
char *k8s_json_print(const cJSON *obj);   /* unformatted; NULL on ENOMEM */

/* Set cJSON's allocator hooks to malloc/free (used by fault-injection tests
 * to route cJSON through wrapped allocators). */
void k8s_json_init_hooks(void *(*m)(size_t), void (*f)(void *));

/* ---------------------------------------------------------------- time */

/*
 * RFC 3339 times as the API server writes them (metav1.Time, MicroTime,
 * an ExecCredential's expirationTimestamp) and as specs carry them.
 *
 * k8s_time_parse accepts exactly YYYY-MM-DD "T" hh:mm:ss, an optional
 * fraction of one or more digits (dropped), then "Z" or +hh:mm / -hh:mm
 * ("t" and "z" also): "2026-12-05T22:00:00+08:00", "2026-12-05T14:00:00Z",
 * "2026-12-05T14:00:00.123456Z". *out gets Unix seconds. Anything else is
 * K8S_EINVAL with *out unchanged: no zone, a short or one-digit offset
 * ("+08", "+8"), a cut string, trailing characters, a date that does not
 * exist (02-30), hour 24. It reads s only up to its NUL.
 */
int k8s_time_parse(const char *s, time_t *out);

/*
 * The same from fields (UTC; year 0-9999, month 1-12, a day that exists in
 * that month, hour 0-23, minute 0-59, second 0-60): K8S_EINVAL otherwise.
 */
int k8s_time_from_utc(int year, int mon, int day, int hour, int min, int sec, time_t *out);

/* Room for any time k8s_time_format writes for a year of four digits. */
#define K8S_TIME_LEN 32

/*
 * t as RFC 3339 UTC, "2026-12-05T14:00:00Z"; with usec >= 0 also the
 * microseconds, as metav1.MicroTime: "2026-12-05T14:00:00.000123Z".
 * Cut to len - 1 characters; "" when t cannot be shown. Returns buf.
 */
char *k8s_time_format(time_t t, long usec, char *buf, size_t len);

/* The current time as k8s_time_format writes it, without / with microseconds. */
char *k8s_time_now(char *buf, size_t len);
char *k8s_time_now_micro(char *buf, size_t len);

#endif /* K8S_H */
