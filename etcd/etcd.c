/*
 * etcd.c - the etcd v3 client's transport: endpoints, TLS, requests to the
 * JSON gateway and the watch loop (see etcd.h).
 *
 * Each client owns one CURL easy handle driven through its own multi
 * handle, so connections are reused between requests and a transfer can
 * be woken up from another thread (curl_multi_wakeup) the moment
 * etcd_client_stop is called, instead of at curl's next progress tick.
 * Certificates and keys go to libcurl as in-memory blobs, never files;
 * peer and host verification are always on. Request and answer bodies are
 * wiped after use as they may carry values that are secrets.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <curl/curl.h>
#include "etcd.h"
#include "etcd_int.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000L
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_BODY ((size_t)16 << 20)
#define ERROR_BODY_CAP ((size_t)64 << 10)
#define DEFAULT_BACKOFF_INITIAL_S 0.1
#define DEFAULT_BACKOFF_MAX_S 5.0
#define MAX_ENDPOINT_LEN 512          /* so endpoint + path fits perform()'s url[] */

typedef struct blob {
    unsigned char *data;
    size_t len;
} blob;

struct etcd_client {
    CURLM *multi;
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    char **endpoints;      /* "scheme://host:port", no trailing slash */
    size_t n_endpoints;
    size_t cur;            /* the endpoint that answered last */
    blob ca, cert, key;
    long connect_timeout_ms, timeout_ms;
    size_t max_body;
    unsigned rng;          /* backoff jitter, xorshift */
    atomic_int stop;
    atomic_uint_fast64_t requests;
};

/* ----------------------------------------------------------- lifecycle */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int blob_copy(blob *dst, const char *src, size_t len)
{
    dst->data = NULL;
    dst->len = 0;
    if (!src || !len)
        return ETCD_OK;
    if (!(dst->data = malloc(len)))
        return ETCD_ENOMEM;
    memcpy(dst->data, src, len);
    dst->len = len;
    return ETCD_OK;
}

static void blob_free(blob *b)
{
    etcd__wipe(b->data, b->len);
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/*
 * Check one endpoint, "http(s)://host[:port][/]", and copy it without the
 * slash. Never echoes an endpoint that holds user information.
 */
static int endpoint_copy(const char *ep, size_t i, char **out, etcd_err *err)
{
    const char *auth;
    size_t n, alen;

    *out = NULL;
    if (!ep)
        return etcd__err_set(err, ETCD_EINVAL, "endpoint %zu is missing", i);
    if (strncmp(ep, "http://", 7) == 0)
        auth = ep + 7;
    else if (strncmp(ep, "https://", 8) == 0)
        auth = ep + 8;
    else
        return etcd__err_set(err, ETCD_EINVAL, "endpoint %zu is not an http:// or https:// URL", i);
    alen = strcspn(auth, "/?#");
    if (memchr(auth, '@', alen))
        return etcd__err_set(err, ETCD_EINVAL, "endpoint %zu holds user information "
                             "(user:password@), which is not supported", i);
    if (!alen || (auth[alen] && strcmp(auth + alen, "/") != 0))
        return etcd__err_set(err, ETCD_EINVAL, "endpoint %zu \"%s\" must be scheme://host[:port]",
                             i, ep);
    n = (size_t)(auth - ep) + alen;
    if (n > MAX_ENDPOINT_LEN)
        return etcd__err_set(err, ETCD_EINVAL, "endpoint %zu is longer than %d bytes", i,
                             MAX_ENDPOINT_LEN);
    if (!(*out = strndup(ep, n)))
        return etcd__err_set(err, ETCD_ENOMEM, "out of memory");
    return ETCD_OK;
}

int etcd_client_new(const etcd_config *cfg, etcd_client **out, etcd_err *err)
{
    etcd_client *c = NULL;
    int rc;

    *out = NULL;
    if (!cfg || !cfg->endpoints || !cfg->n_endpoints)
        return etcd__err_set(err, ETCD_EINVAL, "no etcd endpoint given");
    if (!cfg->cert_len != !cfg->key_len)
        return etcd__err_set(err, ETCD_EINVAL, "a client certificate needs its key and a key "
                             "its certificate");
    pthread_once(&global_once, global_init);
    if (!(c = calloc(1, sizeof(*c))))
        return etcd__err_set(err, ETCD_ENOMEM, "out of memory");
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
                                                        : DEFAULT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    c->rng = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)c ^ 0x9e3779b9u;
    if (!c->rng)
        c->rng = 1;
    if (!(c->endpoints = calloc(cfg->n_endpoints, sizeof(*c->endpoints)))) {
        rc = etcd__err_set(err, ETCD_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_endpoints; i++) {
        rc = endpoint_copy(cfg->endpoints[i], i, &c->endpoints[i], err);
        if (rc)
            goto fail;
        c->n_endpoints = i + 1;
    }
    if (blob_copy(&c->ca, cfg->ca_pem, cfg->ca_len) ||
        blob_copy(&c->cert, cfg->cert_pem, cfg->cert_len) ||
        blob_copy(&c->key, cfg->key_pem, cfg->key_len) ||
        !(c->multi = curl_multi_init()) || !(c->easy = curl_easy_init())) {
        rc = etcd__err_set(err, ETCD_ENOMEM, "out of memory");
        goto fail;
    }
    *out = c;
    return ETCD_OK;
fail:
    etcd_client_free(c);
    return rc;
}

void etcd_client_free(etcd_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c->endpoints);
    blob_free(&c->ca);
    blob_free(&c->cert);
    blob_free(&c->key);
    free(c);
}

void etcd_client_stop(etcd_client *c)
{
    atomic_store(&c->stop, 1);
    curl_multi_wakeup(c->multi);
}

void etcd_client_resume(etcd_client *c)
{
    atomic_store(&c->stop, 0);
}

uint64_t etcd_client_requests(const etcd_client *c)
{
    return (uint64_t)atomic_load(&c->requests);
}

/* ------------------------------------------------------------- transfer */

/* What one HTTP exchange gathers. */
struct xfer {
    etcd_client *c;
    etcd__buf body;         /* a unary answer, or any error answer */
    long status;
    /* a watch stream (fn != NULL): 2xx bytes go through the framer */
    etcd__framer framer;
    etcd__watch_state *st;
    etcd_watch_fn fn;
    void *ud;
    etcd_err msg_err;       /* why a watch message stopped the stream */
    int write_rc;           /* why on_write stopped the transfer */
    int restart;            /* compaction: the stream ends, a new one starts */
    int connect_failed;     /* nothing reached the server: another endpoint may */
};

static void xfer_init(struct xfer *x, etcd_client *c, size_t cap)
{
    memset(x, 0, sizeof(*x));
    x->c = c;
    etcd__buf_init(&x->body, cap);
    etcd__framer_init(&x->framer, c->max_body);
}

static void xfer_release(struct xfer *x)
{
    etcd__buf_release(&x->body);
    etcd__framer_release(&x->framer);
}

static int on_object(void *ud, const char *obj, size_t len)
{
    struct xfer *x = ud;
    int rc = etcd__watch_message(x->st, obj, len, x->fn, x->ud, &x->msg_err);
    if (rc)
        return rc;
    if (x->st->restart) {
        x->restart = 1;
        return -1;
    }
    return 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    long code = 0;
    int rc;

    curl_easy_getinfo(x->c->easy, CURLINFO_RESPONSE_CODE, &code);
    if (x->fn && code >= 200 && code < 300) {
        rc = etcd__framer_feed(&x->framer, p, len, on_object, x);
        if (rc == -1 && x->restart)
            return 0;
        if (rc) {
            x->write_rc = rc;
            if ((int)x->msg_err.rc == rc)
                ;   /* a watch message said why */
            else if (rc == ETCD_ETOOBIG)
                etcd__err_set(&x->msg_err, rc, "a watch message is larger than %zu bytes",
                              x->c->max_body);
            else if (rc == ETCD_EPARSE)
                etcd__err_set(&x->msg_err, rc, "the watch stream is not a sequence of "
                              "JSON objects");
            else
                etcd__err_set(&x->msg_err, rc, "%s", etcd_strerror(rc));
            return 0;
        }
        return len;
    }
    rc = etcd__buf_add(&x->body, p, len);
    if (rc) {
        x->write_rc = rc;
        return 0;
    }
    return len;
}

static int is_tls_error(CURLcode cc, const char *msg)
{
    switch (cc) {
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_USE_SSL_FAILED:
        return 1;
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
        /* a server that refuses our certificate says so with an alert
         * after the handshake (TLS 1.3): libcurl reports a read error */
        return strstr(msg, "SSL") != NULL || strstr(msg, "alert") != NULL;
    default:
        return 0;
    }
}

#define SETOPT(opt, val) do { if (curl_easy_setopt(e, opt, val) != CURLE_OK) goto nomem; } while (0)

/*
 * One HTTP POST to endpoint idx, no retries. The answer lands in *x (status,
 * body or framed stream); the return is the transport's result: ETCD_OK
 * when an HTTP answer of any status came back. timeout_ms 0: none.
 */
static int perform(etcd_client *c, size_t idx, const char *path, const char *body,
                   long timeout_ms, struct xfer *x, etcd_err *err)
{
    CURL *e = c->easy;
    struct curl_slist *hdrs = NULL, *h;
    char url[1024];
    CURLcode cc = CURLE_OK;
    CURLMsg *msg;
    int rc, running = 1, done = 0, added = 0, left;

    curl_easy_reset(e);
    c->errbuf[0] = '\0';
    snprintf(url, sizeof(url), "%s%s", c->endpoints[idx], path);
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    /* a watch is silent while nothing changes: keep-alive finds a dead peer */
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TCP_KEEPIDLE, 15L);
    SETOPT(CURLOPT_TCP_KEEPINTVL, 5L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
    /* Always verified: there is no switch to turn this off. */
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca.len) {
        /* The configured CA is the only trust anchor: beside a blob libcurl
         * would still consult the system's CA file and folder. */
        struct curl_blob b = { c->ca.data, c->ca.len, CURL_BLOB_COPY };
        SETOPT(CURLOPT_CAINFO, (char *)NULL);
        cc = curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
        if (cc != CURLE_OK && cc != CURLE_NOT_BUILT_IN)
            goto nomem;
        SETOPT(CURLOPT_CAINFO_BLOB, &b);
    }
    if (c->cert.len && c->key.len) {
        struct curl_blob cb = { c->cert.data, c->cert.len, CURL_BLOB_COPY };
        struct curl_blob kb = { c->key.data, c->key.len, CURL_BLOB_COPY };
        SETOPT(CURLOPT_SSLCERT_BLOB, &cb);
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(CURLOPT_SSLKEY_BLOB, &kb);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (!(h = curl_slist_append(hdrs, "Content-Type: application/json")))
        goto nomem;
    hdrs = h;
    if (!(h = curl_slist_append(hdrs, "Expect:")))
        goto nomem;
    hdrs = h;
    SETOPT(CURLOPT_HTTPHEADER, hdrs);
    SETOPT(CURLOPT_POSTFIELDS, body);
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, x);

    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto nomem;
    added = 1;
    atomic_fetch_add(&c->requests, 1);
    while (!done) {
        if (atomic_load(&c->stop)) {
            rc = etcd__err_set(err, ETCD_ESTOPPED, "request to %s stopped", url);
            goto out;
        }
        if (curl_multi_perform(c->multi, &running) != CURLM_OK)
            goto nomem;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) {
                cc = msg->data.result;
                done = 1;
            }
        }
        if (!done && running &&
            curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK)
            goto nomem;
        if (!done && !running) {   /* cannot happen: no DONE message for e */
            cc = CURLE_GOT_NOTHING;
            done = 1;
        }
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);
    if (cc == CURLE_OK) {
        rc = ETCD_OK;
    } else if (cc == CURLE_WRITE_ERROR && x->restart) {
        rc = ETCD_OK;
    } else if (cc == CURLE_WRITE_ERROR && x->write_rc) {
        rc = x->write_rc;
        if ((int)x->msg_err.rc == rc) {
            if (err)
                *err = x->msg_err;
        } else if (rc == ETCD_ETOOBIG) {
            etcd__err_set(err, rc, "answer from %s is larger than %zu bytes", url, x->body.cap);
        } else {
            etcd__err_set(err, rc, "%s: %s", url, etcd_strerror(rc));
        }
    } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
               cc == CURLE_COULDNT_RESOLVE_PROXY) {
        x->connect_failed = 1;
        rc = etcd__err_set(err, ETCD_EUNREACHABLE, "%s: %s", url,
                           c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t ct = 0;
        curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &ct);
        x->connect_failed = ct == 0;
        rc = etcd__err_set(err, ct == 0 ? ETCD_EUNREACHABLE : ETCD_ETIMEOUT, "%s: %s", url,
                           c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    } else if (is_tls_error(cc, c->errbuf)) {
        rc = etcd__err_set(err, ETCD_ETLS, "%s: %s", url,
                           c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    } else if (cc == CURLE_OUT_OF_MEMORY) {
        rc = etcd__err_set(err, ETCD_ENOMEM, "out of memory");
    } else {
        /* the connection broke (etcd restarting, reset, nothing answered) */
        rc = etcd__err_set(err, ETCD_EUNREACHABLE, "%s: %s", url,
                           c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    }
    goto out;
nomem:
    rc = etcd__err_set(err, ETCD_ENOMEM, "out of memory");
out:
    if (added)
        curl_multi_remove_handle(c->multi, e);
    /* drop references to our stack before they go stale */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);
    return rc;
}

/*
 * perform() on the endpoint that answered last, then on each other one
 * while none can be connected to (nothing was sent, so even a put may move
 * on). x is reset between tries.
 */
static int request(etcd_client *c, const char *path, const char *body, long timeout_ms,
                   struct xfer *x, size_t cap, etcd_err *err)
{
    int rc = ETCD_EUNREACHABLE;
    etcd__watch_state *st = x->st;
    etcd_watch_fn fn = x->fn;
    void *ud = x->ud;

    for (size_t i = 0; i < c->n_endpoints; i++) {
        size_t idx = (c->cur + i) % c->n_endpoints;
        xfer_release(x);
        xfer_init(x, c, cap);
        x->st = st;
        x->fn = fn;
        x->ud = ud;
        rc = perform(c, idx, path, body, timeout_ms, x, err);
        if (rc == ETCD_EUNREACHABLE && x->connect_failed)
            continue;
        c->cur = idx;
        break;
    }
    return rc;
}

/* A unary call: 2xx answer in x->body, or ETCD_EHTTP with etcd's error. */
static int call(etcd_client *c, const char *path, const char *body, struct xfer *x,
                etcd_err *err)
{
    int rc;

    if (!body)
        return etcd__err_set(err, ETCD_ENOMEM, "out of memory");
    if (atomic_load(&c->stop))
        return etcd__err_set(err, ETCD_ESTOPPED, "request stopped");
    rc = request(c, path, body, c->timeout_ms, x, c->max_body, err);
    if (rc == ETCD_OK && (x->status < 200 || x->status >= 300))
        rc = etcd__parse_error(x->body.data, x->body.len, x->status, err);
    return rc;
}

/* ------------------------------------------------------------------ kv */

int etcd_range(etcd_client *c, const char *key, int prefix, int64_t limit,
               etcd_range_result *out, etcd_err *err)
{
    struct xfer x;
    char *body;
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!c || !key || !out || limit < 0)
        return etcd__err_set(err, ETCD_EINVAL, "etcd_range: missing argument");
    xfer_init(&x, c, c->max_body);
    body = etcd__range_body(key, prefix, limit);
    rc = call(c, "/v3/kv/range", body, &x, err);
    if (!rc)
        rc = etcd__parse_range(x.body.data ? x.body.data : "", x.body.len, out, err);
    etcd__free_body(body);
    xfer_release(&x);
    return rc;
}

int etcd_put(etcd_client *c, const char *key, const char *value, size_t value_len,
             int64_t *revision, etcd_err *err)
{
    struct xfer x;
    char *body;
    int rc;

    if (!c || !key || (!value && value_len))
        return etcd__err_set(err, ETCD_EINVAL, "etcd_put: missing argument");
    if (!key[0])
        return etcd__err_set(err, ETCD_EINVAL, "etcd_put: empty key");
    xfer_init(&x, c, c->max_body);
    body = etcd__put_body(key, value ? value : "", value_len);
    rc = call(c, "/v3/kv/put", body, &x, err);
    if (!rc)
        rc = etcd__parse_put(x.body.data ? x.body.data : "", x.body.len, revision, err);
    etcd__free_body(body);
    xfer_release(&x);
    return rc;
}

int etcd_delete(etcd_client *c, const char *key, int prefix, int64_t *deleted,
                int64_t *revision, etcd_err *err)
{
    struct xfer x;
    char *body;
    int rc;

    if (!c || !key)
        return etcd__err_set(err, ETCD_EINVAL, "etcd_delete: missing argument");
    xfer_init(&x, c, c->max_body);
    body = etcd__delete_body(key, prefix);
    rc = call(c, "/v3/kv/deleterange", body, &x, err);
    if (!rc)
        rc = etcd__parse_delete(x.body.data ? x.body.data : "", x.body.len, deleted,
                                revision, err);
    etcd__free_body(body);
    xfer_release(&x);
    return rc;
}

/* ------------------------------------------------------------------ watch */

static double jitter(etcd_client *c)
{
    unsigned x = c->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c->rng = x;
    return (double)x / 4294967295.0;
}

/* Sleep up to s seconds; etcd_client_stop wakes it at once. */
static void pause_for(etcd_client *c, double s)
{
    double until = now_s() + s, left;
    while (!atomic_load(&c->stop) && (left = until - now_s()) > 0)
        curl_multi_poll(c->multi, NULL, 0, (int)(left * 1000) + 1, NULL);
}

/* Worth reconnecting after? (the rest is a bug, a refusal or bad TLS) */
static int transient(int rc, const etcd_err *e)
{
    if (rc == ETCD_EUNREACHABLE || rc == ETCD_ETIMEOUT || rc == ETCD_EPARSE)
        return 1;
    if (rc == ETCD_EHTTP)
        return e->http_code >= 500 || e->http_code == 429 || e->http_code == 0 ||
               e->grpc_code == 14 /* unavailable */ || e->grpc_code == 4 /* deadline */;
    return 0;
}

int etcd_watch(etcd_client *c, const char *key, const etcd_watch_opts *opts,
               etcd_watch_fn fn, void *ud, etcd_err *err)
{
    etcd_watch_opts o;
    etcd__watch_state st;
    etcd_err e;
    struct xfer x;
    int failures = 0, rc;

    if (!c || !key || !fn)
        return etcd__err_set(err, ETCD_EINVAL, "etcd_watch: missing argument");
    memset(&o, 0, sizeof(o));
    if (opts)
        o = *opts;
    if (!(o.backoff_initial_s > 0))
        o.backoff_initial_s = DEFAULT_BACKOFF_INITIAL_S;
    if (!(o.backoff_max_s > 0))
        o.backoff_max_s = DEFAULT_BACKOFF_MAX_S;
    memset(&st, 0, sizeof(st));
    st.next_rev = o.start_revision > 0 ? o.start_revision : 0;
    st.on_open = o.on_open;
    xfer_init(&x, c, ERROR_BODY_CAP);
    for (;;) {
        char *body;

        if (atomic_load(&c->stop)) {
            rc = etcd__err_set(err, ETCD_ESTOPPED, "watch stopped");
            goto out;
        }
        body = etcd__watch_body(key, o.prefix, st.next_rev);
        if (!body) {
            rc = etcd__err_set(err, ETCD_ENOMEM, "out of memory");
            goto out;
        }
        st.created = 0;
        st.restart = 0;
        x.st = &st;
        x.fn = fn;
        x.ud = ud;
        memset(&e, 0, sizeof(e));
        rc = request(c, "/v3/watch", body, 0, &x, ERROR_BODY_CAP, &e);
        etcd__free_body(body);
        if (rc == ETCD_OK && x.restart)
            continue;          /* compacted: a new watch from now, at once */
        if (rc == ETCD_OK && (x.status < 200 || x.status >= 300))
            rc = etcd__parse_error(x.body.data, x.body.len, x.status, &e);
        else if (rc == ETCD_OK)
            rc = etcd__err_set(&e, ETCD_EUNREACHABLE, "%s: the watch stream ended",
                               c->endpoints[c->cur]);
        if (rc == ETCD_ESTOPPED || !transient(rc, &e)) {
            if (err)
                *err = e;
            goto out;
        }
        if (st.created)
            failures = 0;      /* it worked until now: start the backoff again */
        double delay = etcd__backoff(o.backoff_initial_s, o.backoff_max_s, failures,
                                     jitter(c));
        failures++;
        st.failed = 1;
        if (o.on_error)
            o.on_error(ud, &e, failures, delay);
        pause_for(c, delay);
    }
out:
    xfer_release(&x);
    return rc;
}
