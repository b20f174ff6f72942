/*
 * client.c - REST requests to the Kubernetes API server over libcurl.
 *
 * One CURL easy handle per client, so connections are reused (TCP
 * keep-alive on). Certificates and keys are handed to libcurl as in-memory
 * blobs, never written to files. Every failure keeps the API server's
 * Status (code, reason, message, causes). 429, 5xx and connection failures
 * are retried with bounded backoff honouring Retry-After; a 401 refreshes
 * file- or plugin-provided credentials and retries once. A token bucket
 * limits the request rate (client-go's defaults: 5 QPS, burst 10).
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <pthread.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include "k8s.h"
#include "k8s_int.h"

#define TOKEN_REREAD_S 60          /* re-read a token file this often */
#define EXEC_EXPIRY_MARGIN_S 10    /* refresh plugin credentials this early */
#define RETRY_AFTER_MAX_S 30
#define STATUS_BODY_CAP (1u << 20) /* keep at most 1 MiB of an error body */

const k8s_resource K8S_NAMESPACES = { "", "v1", "namespaces", 0 };
const k8s_resource K8S_CONFIGMAPS = { "", "v1", "configmaps", 1 };
const k8s_resource K8S_SECRETS = { "", "v1", "secrets", 1 };
const k8s_resource K8S_SERVICES = { "", "v1", "services", 1 };
const k8s_resource K8S_EVENTS = { "", "v1", "events", 1 };
const k8s_resource K8S_NODES = { "", "v1", "nodes", 0 };
const k8s_resource K8S_DEPLOYMENTS = { "apps", "v1", "deployments", 1 };
const k8s_resource K8S_LEASES = { "coordination.k8s.io", "v1", "leases", 1 };
const k8s_resource K8S_CRDS = { "apiextensions.k8s.io", "v1", "customresourcedefinitions", 0 };

struct k8s_client {
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    k8s_client_opts opts;
    char *user_agent;

    /* what the client keeps of the k8s_config */
    char *server;          /* URL base used in requests */
    char *connect_to;      /* CURLOPT_CONNECT_TO entry for tls-server-name */
    int insecure;
    k8s_blob ca, cert, key;
    char *static_token;
    char *token_file;
    k8s_exec_config *exec;

    /* credentials in use */
    char *token;           /* from token_file or exec */
    double token_read_at;  /* monotonic seconds */
    k8s_exec_credential cred;
    int have_cred;

    /* rate limiter */
    double tokens, last_refill;

    k8s_request_observer observer;
    void *observer_ud;
    atomic_int stop;
};

/* ---------------------------------------------------------------- helpers */

static k8s_request_observer default_observer;
static void *default_observer_ud;

void k8s_set_default_observer(k8s_request_observer fn, void *ud)
{
    default_observer = fn;
    default_observer_ud = ud;
}

double k8s__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void k8s__sleep(double seconds)
{
    struct timespec ts;
    if (seconds <= 0)
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int blob_copy(k8s_blob *dst, const k8s_blob *src)
{
    dst->data = NULL;
    dst->len = 0;
    if (!src->data || !src->len)
        return K8S_OK;
    dst->data = malloc(src->len);
    if (!dst->data)
        return K8S_ENOMEM;
    memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    return K8S_OK;
}

/* strdup that treats NULL as NULL; *ok cleared on allocation failure. */
static char *dup_or_null(const char *s, int *ok)
{
    char *d;
    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

static char **strv_dup(char *const *v, int *ok)
{
    size_t n = 0, i;
    char **d;
    if (!v)
        return NULL;
    while (v[n])
        n++;
    d = calloc(n + 1, sizeof(*d));
    if (!d) {
        *ok = 0;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        d[i] = strdup(v[i]);
        if (!d[i]) {
            *ok = 0;
            break;
        }
    }
    return d;
}

static k8s_exec_config *exec_dup(const k8s_exec_config *e, int *ok)
{
    k8s_exec_config *d;
    if (!e)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d) {
        *ok = 0;
        return NULL;
    }
    d->api_version = dup_or_null(e->api_version, ok);
    d->argv = strv_dup(e->argv, ok);
    d->env = strv_dup(e->env, ok);
    return d;
}

/*
 * Split "https://host:port/prefix" into host and port for tls-server-name:
 * requests then go to https://<tls_server_name>:port/prefix and curl is told
 * to connect to the real host (CURLOPT_CONNECT_TO), so the certificate is
 * verified against tls_server_name and SNI carries it, as in client-go.
 */
static int setup_server(k8s_client *c, const char *server, const char *tls_name,
                        k8s_err *err)
{
    CURLU *u = NULL;
    char *host = NULL, *port = NULL, *url = NULL;
    int rc = K8S_OK;

    if (!server || strncmp(server, "https://", 8) != 0) {
        if (server && strncmp(server, "http://", 7) == 0 && !tls_name) {
            c->server = strdup(server);
            return c->server ? K8S_OK : k8s_err_set(err, K8S_ENOMEM, "out of memory");
        }
        return k8s_err_set(err, K8S_ECONFIG, "server \"%s\" is not an https:// URL",
                           server ? server : "");
    }
    if (!tls_name) {
        c->server = strdup(server);
        return c->server ? K8S_OK : k8s_err_set(err, K8S_ENOMEM, "out of memory");
    }
    u = curl_url();
    if (!u) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, server, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, tls_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        rc = k8s_err_set(err, K8S_ECONFIG, "server \"%s\" or tls-server-name \"%s\" is not valid",
                         server, tls_name);
        goto out;
    }
    /* curl_url_get adds a trailing "/" to a bare host. */
    size_t n = strlen(url);
    if (n && url[n - 1] == '/')
        url[n - 1] = '\0';
    c->server = strdup(url);
    if (asprintf(&c->connect_to, "%s:%s:%s:%s", tls_name, port, host, port) < 0)
        c->connect_to = NULL;
    if (!c->server || !c->connect_to)
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
out:
    curl_free(host);
    curl_free(port);
    curl_free(url);
    curl_url_cleanup(u);
    return rc;
}

/* ----------------------------------------------------------- lifecycle */

static void global_init(void)
{
    static atomic_int done;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (atomic_load(&done))
        return;
    pthread_mutex_lock(&mu);
    if (!atomic_load(&done)) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        atomic_store(&done, 1);
    }
    pthread_mutex_unlock(&mu);
}

int k8s_client_new(const k8s_config *cfg, const k8s_client_opts *opts,
                   k8s_client **out, k8s_err *err)
{
    k8s_client *c;
    int ok = 1, rc;

    *out = NULL;
    if (!cfg || !cfg->server)
        return k8s_err_set(err, K8S_EINVAL, "no API server configured");
    global_init();
    c = calloc(1, sizeof(*c));
    if (!c)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    if (opts)
        c->opts = *opts;
    if (c->opts.qps == 0)
        c->opts.qps = 5;
    if (c->opts.burst <= 0)
        c->opts.burst = 10;
    if (c->opts.max_retries == 0)
        c->opts.max_retries = 5;
    if (c->opts.timeout_ms <= 0)
        c->opts.timeout_ms = 30000;
    if (c->opts.connect_timeout_ms <= 0)
        c->opts.connect_timeout_ms = 10000;
    if (!c->opts.max_body)
        c->opts.max_body = K8S_BUF_DEFAULT_CAP;
    c->user_agent = strdup(c->opts.user_agent ? c->opts.user_agent : "k8s-c");
    c->opts.user_agent = NULL;
    c->tokens = c->opts.burst;
    c->last_refill = k8s__now();
    c->observer = default_observer;
    c->observer_ud = default_observer_ud;
    c->insecure = cfg->insecure_skip_tls_verify;

    rc = setup_server(c, cfg->server, cfg->tls_server_name, err);
    if (rc)
        goto fail;
    if (blob_copy(&c->ca, &cfg->ca) || blob_copy(&c->cert, &cfg->client_cert) ||
        blob_copy(&c->key, &cfg->client_key))
        ok = 0;
    c->static_token = dup_or_null(cfg->token, &ok);
    c->token_file = dup_or_null(cfg->token_file, &ok);
    c->exec = exec_dup(cfg->exec, &ok);
    c->curl = curl_easy_init();
    if (!ok || !c->curl || !c->user_agent) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto fail;
    }
    *out = c;
    return K8S_OK;
fail:
    k8s_client_free(c);
    return rc;
}

void k8s_client_free(k8s_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->user_agent);
    free(c->server);
    free(c->connect_to);
    k8s_blob_release(&c->ca);
    k8s_blob_release(&c->cert);
    k8s_blob_release(&c->key);
    k8s__secret_free(c->static_token);
    free(c->token_file);
    k8s__exec_config_free(c->exec);
    k8s__secret_free(c->token);
    k8s_exec_credential_release(&c->cred);
    free(c);
}

void k8s_client_set_observer(k8s_client *c, k8s_request_observer fn, void *ud)
{
    c->observer = fn;
    c->observer_ud = ud;
}

void k8s_client_stop(k8s_client *c)
{
    atomic_store(&c->stop, 1);
}

void k8s_client_resume(k8s_client *c)
{
    atomic_store(&c->stop, 0);
}

/* ------------------------------------------------------------ credentials */

/*
 * Make sure c->token / c->cred are fresh. force: re-read/re-run now (after
 * a 401). Leaves the previous credentials in place when a refresh fails.
 */
static int refresh_credentials(k8s_client *c, int force, k8s_err *err)
{
    double now = k8s__now();
    int rc;

    if (c->token_file && (force || !c->token || now - c->token_read_at >= TOKEN_REREAD_S)) {
        k8s_blob b = { 0 };
        rc = k8s__read_file(c->token_file, 64 * 1024, &b, err);
        if (rc) {
            if (c->token)   /* keep using the last good token */
                return K8S_OK;
            return rc;
        }
        size_t n = b.len;
        while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' ||
                     b.data[n - 1] == ' ' || b.data[n - 1] == '\t'))
            n--;
        char *t = strndup((const char *)b.data, n);
        k8s_blob_release(&b);
        if (!t)
            return k8s_err_set(err, K8S_ENOMEM, "out of memory");
        k8s__secret_free(c->token);
        c->token = t;
        c->token_read_at = now;
    }
    if (c->exec) {
        time_t wall = time(NULL);
        int expired = c->have_cred && c->cred.expires &&
                      (int64_t)wall >= c->cred.expires - EXEC_EXPIRY_MARGIN_S;
        if (force || !c->have_cred || expired) {
            k8s_exec_credential cred = { 0 };
            rc = k8s_exec_credential_get(c->exec, &cred, err);
            if (rc)
                return rc;
            k8s_exec_credential_release(&c->cred);
            c->cred = cred;
            c->have_cred = 1;
        }
    }
    return K8S_OK;
}

static const char *bearer_token(const k8s_client *c)
{
    if (c->have_cred && c->cred.token)
        return c->cred.token;
    if (c->token)
        return c->token;
    return c->static_token;
}

/* ------------------------------------------------------------ rate limit */

static void rate_limit(k8s_client *c)
{
    double now, wait;
    if (c->opts.qps < 0)
        return;
    now = k8s__now();
    c->tokens += (now - c->last_refill) * c->opts.qps;
    if (c->tokens > c->opts.burst)
        c->tokens = c->opts.burst;
    c->last_refill = now;
    if (c->tokens < 1) {
        wait = (1 - c->tokens) / c->opts.qps;
        k8s__sleep(wait);
        c->tokens = 1;
        c->last_refill = k8s__now();
    }
    c->tokens -= 1;
}

/* ------------------------------------------------------------- transfer */

struct xfer {
    k8s_client *c;
    k8s_buf body;
    long retry_after;
    /* streaming */
    k8s_line_fn line_fn;
    void *line_ud;
    long status;           /* HTTP status, known once headers are in */
    int stopped_by_fn;
    int too_big;
    long idle_timeout_s;   /* streams: no byte for this long is a timeout */
    double last_byte;      /* monotonic time of the last byte received */
    int idle_expired;
    /* streams are counted for the observer when their headers are in */
    const char *verb;
    double t0;
    int observed;
};

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    static const char ra[] = "retry-after:";

    if (len > sizeof(ra) - 1 && strncasecmp(p, ra, sizeof(ra) - 1) == 0) {
        long v = strtol(p + sizeof(ra) - 1, NULL, 10);
        x->retry_after = v > 0 ? v : 0;
    }
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->retry_after = 0;
    }
    /* The blank line after a final status's headers: a stream (a watch
     * may then run for many minutes) counts as answered now, with the time
     * its answer took, as client-go's request metrics do. */
    if (x->line_fn && !x->observed && x->status >= 200 && (len == 2 || len == 1) &&
        (p[0] == '\r' || p[0] == '\n') && x->c->observer) {
        x->observed = 1;
        x->c->observer(x->c->observer_ud, x->verb, x->status, k8s__now() - x->t0);
    }
    return len;
}

/* Deliver every complete line in x->body to the callback; keep the tail. */
static int dispatch_lines(struct xfer *x)
{
    size_t start = 0;
    char *nl;

    while (start < x->body.len &&
           (nl = memchr(x->body.data + start, '\n', x->body.len - start)) != NULL) {
        size_t len = (size_t)(nl - (x->body.data + start));
        *nl = '\0';
        if (len && x->line_fn(x->line_ud, x->body.data + start, len)) {
            x->stopped_by_fn = 1;
            k8s_buf_consume(&x->body, (size_t)(nl - x->body.data) + 1);
            return -1;
        }
        start = (size_t)(nl - x->body.data) + 1;
    }
    k8s_buf_consume(&x->body, start);
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    int rc;

    x->last_byte = k8s__now();
    rc = k8s_buf_add(&x->body, p, len);
    if (rc) {
        x->too_big = rc == K8S_ETOOBIG;
        return 0;   /* makes curl fail with CURLE_WRITE_ERROR */
    }
    /* Only a 2xx stream is split into lines; an error body is kept whole. */
    if (x->line_fn && x->status >= 200 && x->status < 300 && dispatch_lines(x))
        return 0;
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = ud;
    (void)dt; (void)dn; (void)ut; (void)un;
    if (atomic_load(&x->c->stop))
        return 1;
    /* curl's low-speed check averages over a window; a watch needs "no
     * byte for N seconds", so time it here (curl calls this >= 1/s). */
    if (x->idle_timeout_s > 0 && k8s__now() - x->last_byte > (double)x->idle_timeout_s) {
        x->idle_expired = 1;
        return 1;
    }
    return 0;
}

/* Fill err from an error response's Status body (or its absence). */
static void parse_status(const char *body, size_t len, long code, k8s_err *err)
{
    cJSON *j = NULL;
    const char *reason, *message;
    cJSON *causes;

    if (!err)
        return;
    k8s_err_clear(err);
    err->rc = K8S_EAPI;
    err->code = code;
    if (body && len)
        j = cJSON_ParseWithLength(body, len);
    reason = k8s_json_str(j, "reason", NULL);
    message = k8s_json_str(j, "message", NULL);
    if (reason)
        snprintf(err->reason, sizeof(err->reason), "%s", reason);
    else {
        /* No Status body: name the reason the API server would have used. */
        const char *r = code == 400 ? "BadRequest" : code == 401 ? "Unauthorized" :
                        code == 403 ? "Forbidden" : code == 404 ? "NotFound" :
                        code == 405 ? "MethodNotAllowed" : code == 409 ? "Conflict" :
                        code == 410 ? "Gone" : code == 415 ? "UnsupportedMediaType" :
                        code == 422 ? "Invalid" : code == 429 ? "TooManyRequests" :
                        code == 504 ? "Timeout" : code >= 500 ? "InternalError" : "Unknown";
        snprintf(err->reason, sizeof(err->reason), "%s", r);
    }
    if (message)
        snprintf(err->message, sizeof(err->message), "%s", message);
    else if (body && len)
        snprintf(err->message, sizeof(err->message), "%.*s",
                 (int)(len > 200 ? 200 : len), body);
    else
        snprintf(err->message, sizeof(err->message), "HTTP %ld", code);
    causes = k8s_json_get(j, "details", "causes", NULL);
    if (cJSON_IsArray(causes)) {
        size_t off = 0;
        cJSON *cause;
        cJSON_ArrayForEach(cause, causes) {
            const char *f = k8s_json_str(cause, "field", NULL);
            const char *m = k8s_json_str(cause, "message", NULL);
            int w = snprintf(err->causes + off, sizeof(err->causes) - off, "%s%s%s%s",
                             off ? "; " : "", f ? f : "", f && m ? ": " : "", m ? m : "");
            if (w < 0 || (size_t)w >= sizeof(err->causes) - off)
                break;
            off += (size_t)w;
        }
    }
    cJSON_Delete(j);
}

static int curl_to_rc(CURLcode cc, const struct xfer *x)
{
    switch (cc) {
    case CURLE_OK:
        return K8S_OK;
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return K8S_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return K8S_ETIMEOUT;
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ENGINE_INITFAILED:
        return K8S_ETLS;
    case CURLE_WRITE_ERROR:
        if (x->stopped_by_fn)
            return K8S_ESTOPPED;
        return x->too_big ? K8S_ETOOBIG : K8S_ENOMEM;
    case CURLE_ABORTED_BY_CALLBACK:
        return x->idle_expired ? K8S_ETIMEOUT : K8S_ESTOPPED;
    case CURLE_OUT_OF_MEMORY:
        return K8S_ENOMEM;
    default:
        return K8S_ECONNECT;
    }
}

#define SETOPT(opt, val) do { if (curl_easy_setopt(c->curl, opt, val) != CURLE_OK) goto nomem; } while (0)

/*
 * One HTTP exchange, no retries. Status and body land in *x; the return is
 * the transport result (K8S_OK when an HTTP answer of any status came back).
 */
static int perform(k8s_client *c, const char *method, const char *path,
                   const char *ctype, const char *body, size_t body_len,
                   long idle_timeout_s, struct xfer *x, k8s_err *err)
{
    struct curl_slist *hdrs = NULL, *h;   /* hdrs: CONNECT_TO entries */
    char *url = NULL, *auth = NULL;
    const char *tok;
    CURLcode cc;
    int rc;

    curl_easy_reset(c->curl);
    c->errbuf[0] = '\0';
    if (asprintf(&url, "%s%s", c->server, path) < 0) {
        url = NULL;
        goto nomem;
    }
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    /* Through an HTTPS proxy (https_proxy in the environment, as client-go
     * honours it), the proxy's answer to CONNECT is not the server's: keep
     * its status line and headers out of on_header. */
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(CURLOPT_USERAGENT, c->user_agent);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    /* A stream (idle_timeout_s != 0) has no overall time limit. */
    SETOPT(CURLOPT_TIMEOUT_MS, idle_timeout_s ? 0L : c->opts.timeout_ms);
    x->idle_timeout_s = idle_timeout_s > 0 ? idle_timeout_s : 0;
    x->last_byte = k8s__now();
    SETOPT(CURLOPT_PROTOCOLS_STR, "https,http");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
    if (c->ca.len) {
        /* The kubeconfig's CA is the only trust anchor, as in client-go.
         * Beside a blob libcurl would still look up issuers in the
         * system's certificate folder (CURLOPT_CAPATH, /etc/ssl/certs), so
         * a server certificate from any public CA would pass. */
        struct curl_blob b = { c->ca.data, c->ca.len, CURL_BLOB_COPY };
        SETOPT(CURLOPT_CAINFO, (char *)NULL);
        /* a TLS backend without CA folders has none to clear */
        cc = curl_easy_setopt(c->curl, CURLOPT_CAPATH, (char *)NULL);
        if (cc != CURLE_OK && cc != CURLE_NOT_BUILT_IN)
            goto nomem;
        SETOPT(CURLOPT_CAINFO_BLOB, &b);
    }
    {
        const k8s_blob *cert = c->have_cred && c->cred.client_cert.len ? &c->cred.client_cert : &c->cert;
        const k8s_blob *key = c->have_cred && c->cred.client_key.len ? &c->cred.client_key : &c->key;
        if (cert->len && key->len) {
            struct curl_blob cb = { cert->data, cert->len, CURL_BLOB_COPY };
            struct curl_blob kb = { key->data, key->len, CURL_BLOB_COPY };
            SETOPT(CURLOPT_SSLCERT_BLOB, &cb);
            SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
            SETOPT(CURLOPT_SSLKEY_BLOB, &kb);
            SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    if (c->connect_to) {
        /* hdrs holds the CONNECT_TO list; freed at out: */
        if (!(hdrs = curl_slist_append(NULL, c->connect_to)))
            goto nomem;
        SETOPT(CURLOPT_CONNECT_TO, hdrs);
    }
    {
        struct curl_slist *req = NULL;
        if (!(h = curl_slist_append(req, "Accept: application/json")))
            goto nomem_req;
        req = h;
        if (body) {
            char ct[128];
            snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : K8S_CT_JSON);
            if (!(h = curl_slist_append(req, ct)))
                goto nomem_req;
            req = h;
        }
        if ((tok = bearer_token(c)) != NULL) {
            if (asprintf(&auth, "Authorization: Bearer %s", tok) < 0) {
                auth = NULL;
                goto nomem_req;
            }
            if (!(h = curl_slist_append(req, auth)))
                goto nomem_req;
            req = h;
        }
        /* "Expect: 100-continue" would add a round trip on large bodies. */
        if (!(h = curl_slist_append(req, "Expect:")))
            goto nomem_req;
        req = h;
        if (curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, req) != CURLE_OK)
            goto nomem_req;

        if (strcmp(method, "GET") == 0) {
            curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
            if (body) {
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            }
        }
        curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, x);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);

        x->c = c;
        cc = curl_easy_perform(c->curl);
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &x->status);
        curl_slist_free_all(req);
        req = NULL;
        /* the header holds the token: wipe it */
        k8s__secret_free(auth);
        auth = NULL;
        rc = curl_to_rc(cc, x);
        if (rc == K8S_ETOOBIG)
            k8s_err_set(err, rc, "response from %s%s is larger than %zu bytes",
                        c->server, path, x->body.cap);
        else if (rc == K8S_ESTOPPED)
            k8s_err_set(err, rc, "request to %s%s stopped", c->server, path);
        else if (rc == K8S_ETIMEOUT && x->idle_expired)
            k8s_err_set(err, rc, "%s%s: no data for %ld s", c->server, path, x->idle_timeout_s);
        else if (rc)
            k8s_err_set(err, rc, "%s %s%s: %s", method, c->server, path,
                        c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
        goto out;
nomem_req:
        curl_slist_free_all(req);
        goto nomem;
    }
nomem:
    rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
out:
    /* Drop references to our stack before the options go stale. */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(hdrs);
    k8s__secret_free(auth);
    free(url);
    return rc;
}

static const char *verb_of(const char *method, const char *path)
{
    if (strcmp(method, "GET") == 0)
        return strstr(path, "watch=") ? "WATCH" : strstr(path, "?limit=") ? "LIST" : "GET";
    return method;
}

static int retryable_status(long code)
{
    return code == 429 || (code >= 500 && code != 501);
}

/*
 * The request loop shared by k8s_request and k8s_stream: rate limit,
 * credentials, retries. For streams (line_fn != NULL) a 2xx answer has
 * already been delivered line by line; no retry after data went out.
 */
static int do_request(k8s_client *c, const char *method, const char *path,
                      const char *ctype, const char *body, size_t body_len,
                      long idle_timeout_s, k8s_line_fn line_fn, void *line_ud,
                      cJSON **out, k8s_err *err, int sensitive)
{
    int attempt = 0, refreshed = 0, rc;
    int idempotent = strcmp(method, "POST") != 0;
    struct xfer x;
    double t0;

    if (out)
        *out = NULL;
    for (;;) {
        memset(&x, 0, sizeof(x));
        k8s_buf_init(&x.body, c->opts.max_body);
        x.body.wipe = sensitive;        /* the body of a Secret: wiped before free */
        x.line_fn = line_fn;
        x.line_ud = line_ud;

        if (atomic_load(&c->stop)) {
            rc = k8s_err_set(err, K8S_ESTOPPED, "request to %s%s stopped", c->server, path);
            goto out;
        }
        rate_limit(c);
        rc = refresh_credentials(c, 0, err);
        if (rc)
            goto out;
        t0 = k8s__now();
        x.verb = verb_of(method, path);
        x.t0 = t0;
        rc = perform(c, method, path, ctype, body, body_len, line_fn ? idle_timeout_s : 0, &x, err);
        if (c->observer && !x.observed)
            c->observer(c->observer_ud, x.verb, rc ? 0 : x.status, k8s__now() - t0);

        if (rc == K8S_OK && x.status >= 200 && x.status < 300) {
            if (line_fn) {
                /* A final line without a newline is still a line. */
                if (x.body.len && line_fn(line_ud, x.body.data, x.body.len))
                    rc = k8s_err_set(err, K8S_ESTOPPED, "stream stopped");
            } else if (out && x.body.len) {
                rc = k8s_json_parse(x.body.data, x.body.len, out, err);
                if (rc == K8S_EPARSE)
                    k8s_err_set(err, K8S_EPARSE, "%s %s%s: response is not valid JSON",
                                method, c->server, path);
            }
            goto out;
        }
        if (rc == K8S_OK) {
            parse_status(x.body.data, x.body.len, x.status, err);
            rc = K8S_EAPI;
            if (err)
                err->retry_after = x.retry_after;
            if (x.status == 401 && !refreshed && (c->token_file || c->exec)) {
                refreshed = 1;
                if (refresh_credentials(c, 1, NULL) == K8S_OK) {
                    k8s_buf_release(&x.body);
                    continue;
                }
            }
            if (!retryable_status(x.status) || attempt >= c->opts.max_retries ||
                c->opts.max_retries < 0)
                goto out;
        } else {
            /* Transport failure: retry connection-level failures, but a
             * non-idempotent request only if it never reached the server. */
            if (rc != K8S_ECONNECT && rc != K8S_ETIMEOUT)
                goto out;
            if (c->opts.max_retries < 0 || attempt >= c->opts.max_retries)
                goto out;
            if (!idempotent && rc != K8S_ECONNECT)
                goto out;
            if (line_fn && x.status >= 200 && x.status < 300)
                goto out;   /* a stream that was delivering: caller decides */
        }
        {
            double delay = 0.2 * pow(2, attempt);
            if (x.retry_after > 0)
                delay = x.retry_after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : (double)x.retry_after;
            if (delay > RETRY_AFTER_MAX_S)
                delay = RETRY_AFTER_MAX_S;
            delay *= 1.0 + 0.2 * ((double)rand() / RAND_MAX);
            k8s_buf_release(&x.body);
            /* sleep in slices so k8s_client_stop is honoured */
            double until = k8s__now() + delay;
            while (k8s__now() < until && !atomic_load(&c->stop))
                k8s__sleep(until - k8s__now() > 0.1 ? 0.1 : until - k8s__now());
        }
        attempt++;
    }
out:
    k8s_buf_release(&x.body);
    return rc;
}

int k8s_request(k8s_client *c, const char *method, const char *path,
                const char *content_type, const char *body, size_t body_len,
                cJSON **out, k8s_err *err)
{
    if (!c || !method || !path)
        return k8s_err_set(err, K8S_EINVAL, "k8s_request: missing argument");
    return do_request(c, method, path, content_type, body, body_len, 0, NULL, NULL, out, err, 0);
}

int k8s_stream(k8s_client *c, const char *path, long idle_timeout_s,
               k8s_line_fn fn, void *ud, k8s_err *err)
{
    if (!c || !path || !fn)
        return k8s_err_set(err, K8S_EINVAL, "k8s_stream: missing argument");
    /* A stream has no overall timeout; idle_timeout_s bounds silence. */
    return do_request(c, "GET", path, NULL, NULL, 0, idle_timeout_s > 0 ? idle_timeout_s : -1,
                      fn, ud, NULL, err, 0);
}

/* ------------------------------------------------------------------ paths */

char *k8s_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), i, o = 0;
    char *d = malloc(n * 3 + 1);
    if (!d)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            d[o++] = (char)ch;
        } else {
            d[o++] = '%';
            d[o++] = hex[ch >> 4];
            d[o++] = hex[ch & 15];
        }
    }
    d[o] = '\0';
    return d;
}

char *k8s_path(const k8s_resource *r, const char *ns, const char *name,
               const char *subresource)
{
    k8s_buf b;
    char *e = NULL;
    int rc = 0;

    k8s_buf_init(&b, 64 * 1024);
    if (r->group && r->group[0])
        rc = k8s_buf_printf(&b, "/apis/%s/%s", r->group, r->version);
    else
        rc = k8s_buf_printf(&b, "/api/%s", r->version);
    if (!rc && ns && r->namespaced) {
        if (!(e = k8s_escape(ns)))
            goto fail;
        rc = k8s_buf_printf(&b, "/namespaces/%s", e);
        free(e);
    }
    if (!rc)
        rc = k8s_buf_printf(&b, "/%s", r->plural);
    if (!rc && name) {
        if (!(e = k8s_escape(name)))
            goto fail;
        rc = k8s_buf_printf(&b, "/%s", e);
        free(e);
    }
    if (!rc && name && subresource)
        rc = k8s_buf_printf(&b, "/%s", subresource);
    if (rc)
        goto fail;
    return k8s_buf_detach(&b, NULL);
fail:
    k8s_buf_release(&b);
    return NULL;
}

/* ------------------------------------------------------------ wrappers */

static int send_json(k8s_client *c, const char *method, const k8s_resource *r,
                     const char *ns, const char *name, const char *sub,
                     const char *ctype, const cJSON *obj, cJSON **out, k8s_err *err)
{
    char *path = k8s_path(r, ns, name, sub);
    char *body = NULL;
    int rc;

    if (out)
        *out = NULL;
    if (!path)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    if (obj && !(body = cJSON_PrintUnformatted(obj))) {
        free(path);
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    }
    rc = k8s_request(c, method, path, ctype, body, body ? strlen(body) : 0, out, err);
    free(body);
    free(path);
    return rc;
}

int k8s_get(k8s_client *c, const k8s_resource *r, const char *ns,
            const char *name, cJSON **out, k8s_err *err)
{
    return send_json(c, "GET", r, ns, name, NULL, NULL, NULL, out, err);
}

int k8s_get_sensitive(k8s_client *c, const k8s_resource *r, const char *ns,
                      const char *name, cJSON **out, k8s_err *err)
{
    char *path;
    int rc;

    if (out)
        *out = NULL;
    if (!c || !r)
        return k8s_err_set(err, K8S_EINVAL, "k8s_get_sensitive: missing argument");
    path = k8s_path(r, ns, name, NULL);
    if (!path)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    rc = do_request(c, "GET", path, NULL, NULL, 0, 0, NULL, NULL, out, err, 1);
    free(path);
    return rc;
}

/* Wipe the strings of j and its siblings after it, recursively. */
static void json_wipe(cJSON *j)
{
    for (; j; j = j->next) {
        if (j->valuestring && !(j->type & cJSON_IsReference))
            OPENSSL_cleanse(j->valuestring, strlen(j->valuestring));
        if (j->string && !(j->type & cJSON_StringIsConst))
            OPENSSL_cleanse(j->string, strlen(j->string));
        if (!(j->type & cJSON_IsReference))
            json_wipe(j->child);
    }
}

void k8s_json_wipe_delete(cJSON *j)
{
    if (j) {
        cJSON *next = j->next;      /* j alone, not the siblings it may have */
        j->next = NULL;
        json_wipe(j);
        j->next = next;
    }
    cJSON_Delete(j);
}

int k8s_create(k8s_client *c, const k8s_resource *r, const char *ns,
               const cJSON *obj, cJSON **out, k8s_err *err)
{
    return send_json(c, "POST", r, ns, NULL, NULL, K8S_CT_JSON, obj, out, err);
}

int k8s_replace(k8s_client *c, const k8s_resource *r, const char *ns,
                const char *name, const cJSON *obj, cJSON **out, k8s_err *err)
{
    return send_json(c, "PUT", r, ns, name, NULL, K8S_CT_JSON, obj, out, err);
}

int k8s_replace_status(k8s_client *c, const k8s_resource *r, const char *ns,
                       const char *name, const cJSON *obj, cJSON **out, k8s_err *err)
{
    return send_json(c, "PUT", r, ns, name, "status", K8S_CT_JSON, obj, out, err);
}

int k8s_patch(k8s_client *c, const k8s_resource *r, const char *ns,
              const char *name, const char *sub, const char *content_type,
              const cJSON *patch, cJSON **out, k8s_err *err)
{
    if (!content_type)
        return k8s_err_set(err, K8S_EINVAL, "k8s_patch: no patch type");
    return send_json(c, "PATCH", r, ns, name, sub, content_type, patch, out, err);
}

int k8s_delete(k8s_client *c, const k8s_resource *r, const char *ns,
               const char *name, k8s_err *err)
{
    return send_json(c, "DELETE", r, ns, name, NULL, NULL, NULL, NULL, err);
}

/* ------------------------------------------------------------------ list */

int k8s_list(k8s_client *c, const k8s_resource *r, const char *ns,
             const k8s_list_opts *opts, k8s_item_fn fn, void *ud,
             char **resource_version, k8s_err *err)
{
    char *base = k8s_path(r, ns, NULL, NULL);
    char *cont = NULL, *rv = NULL, *ls = NULL, *fs = NULL;
    int limit = opts && opts->limit > 0 ? opts->limit : 500;
    int restarted = 0, rc = K8S_OK;
    k8s_buf path;
    cJSON *page = NULL;

    k8s_buf_init(&path, 64 * 1024);
    if (resource_version)
        *resource_version = NULL;
    if (!base)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    if ((opts && opts->label_selector && !(ls = k8s_escape(opts->label_selector))) ||
        (opts && opts->field_selector && !(fs = k8s_escape(opts->field_selector)))) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        k8s_buf_reset(&path);
        rc = k8s_buf_printf(&path, "%s?limit=%d", base, limit);
        if (!rc && ls)
            rc = k8s_buf_printf(&path, "&labelSelector=%s", ls);
        if (!rc && fs)
            rc = k8s_buf_printf(&path, "&fieldSelector=%s", fs);
        if (!rc && cont)
            rc = k8s_buf_printf(&path, "&continue=%s", cont);
        if (rc) {
            rc = k8s_err_set(err, rc, "out of memory");
            goto out;
        }
        cJSON_Delete(page);
        page = NULL;
        rc = k8s_request(c, "GET", path.data, NULL, NULL, 0, &page, err);
        if (rc == K8S_EAPI && cont && err && err->code == 410 && !restarted) {
            /* The continue token expired: list again from the start. */
            restarted = 1;
            free(cont);
            cont = NULL;
            if (fn(ud, NULL, 1)) {
                rc = k8s_err_set(err, K8S_ESTOPPED, "list of %s stopped", r->plural);
                goto out;
            }
            continue;
        }
        if (rc)
            goto out;
        cJSON *items = k8s_json_get(page, "items", NULL);
        cJSON *it;
        if (!cJSON_IsArray(items)) {
            rc = k8s_err_set(err, K8S_EPARSE, "list of %s: no items array", r->plural);
            goto out;
        }
        cJSON_ArrayForEach(it, items) {
            if (fn(ud, it, 0)) {
                rc = k8s_err_set(err, K8S_ESTOPPED, "list of %s stopped", r->plural);
                goto out;
            }
        }
        const char *prv = k8s_json_str(page, "metadata", "resourceVersion", NULL);
        const char *pc = k8s_json_str(page, "metadata", "continue", NULL);
        free(rv);
        rv = prv ? strdup(prv) : NULL;
        if (prv && !rv) {
            rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
            goto out;
        }
        free(cont);
        cont = NULL;
        if (!pc || !pc[0])
            break;
        if (!(cont = k8s_escape(pc))) {
            rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (resource_version) {
        *resource_version = rv;
        rv = NULL;
    }
out:
    cJSON_Delete(page);
    k8s_buf_release(&path);
    free(base);
    free(cont);
    free(rv);
    free(ls);
    free(fs);
    return rc;
}
