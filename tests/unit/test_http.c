/*
 * test_http.c - the k8s/ client's request behaviour, checked byte for byte
 * against a scripted HTTP server on loopback (in the style of curl's
 * request-verification tests): exact headers, one connection reused,
 * 429/5xx retried within bounds and Retry-After honoured, Status bodies
 * kept, a 401 re-reading the token file, body caps, and watch lines framed
 * across chunks and delivered without waiting for the next chunk.
 *
 * The real API server is exercised in tests/integration; this covers what
 * a real server cannot be made to do on demand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "k8s.h"
#include "k8s_int.h"
#include "failalloc.h"
#include "curlspy.h"
#include "testutil.h"

/* ------------------------------------------------------- scripted server */

#define MAX_STEPS 256
#define MAX_REQS 32

struct step {
    const char *head;      /* status line + headers, without the final CRLF */
    const char *body;      /* sent with Content-Length, or NULL */
    const char **chunks;   /* chunked: NULL-terminated pieces */
    int wait_between;      /* chunked: wait for srv.go before each next chunk */
    int close_after;       /* close the connection after this response */
    void (*before)(void);  /* run by the server before it answers */
};

static struct {
    int fd, port;
    pthread_t th;
    struct step steps[MAX_STEPS];
    int nsteps;
    char *reqs[MAX_REQS];
    int nreqs;
    int connections;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;                 /* incremented by the test to release a chunk */
} srv;

static int read_request(int fd, char **out)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    long clen = 0;

    while (!end) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < end)
        clen = strtol(cl + 17, NULL, 10);
    size_t want = (size_t)(end + 4 - buf) + (size_t)clen;
    while (len < want) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = strdup(buf);
    return 0;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *server_main(void *arg)
{
    int step = 0;
    (void)arg;
    while (step < srv.nsteps) {
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            break;
        pthread_mutex_lock(&srv.mu);
        srv.connections++;
        pthread_mutex_unlock(&srv.mu);
        while (step < srv.nsteps) {
            char *req = NULL;
            if (read_request(c, &req))
                break;
            pthread_mutex_lock(&srv.mu);
            if (srv.nreqs < MAX_REQS)
                srv.reqs[srv.nreqs++] = req;
            else
                free(req);
            pthread_mutex_unlock(&srv.mu);
            struct step *s = &srv.steps[step++];
            char head[2048];
            if (s->before)
                s->before();
            if (s->chunks) {
                snprintf(head, sizeof(head), "%s\r\nTransfer-Encoding: chunked\r\n\r\n", s->head);
                send_all(c, head, strlen(head));
                for (int i = 0; s->chunks[i]; i++) {
                    if (i && s->wait_between) {
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_sec += 3;
                        pthread_mutex_lock(&srv.mu);
                        while (srv.go < i)
                            if (pthread_cond_timedwait(&srv.cv, &srv.mu, &until))
                                break;
                        pthread_mutex_unlock(&srv.mu);
                    }
                    char sz[32];
                    snprintf(sz, sizeof(sz), "%zx\r\n", strlen(s->chunks[i]));
                    send_all(c, sz, strlen(sz));
                    send_all(c, s->chunks[i], strlen(s->chunks[i]));
                    send_all(c, "\r\n", 2);
                }
                send_all(c, "0\r\n\r\n", 5);
            } else {
                const char *body = s->body ? s->body : "";
                snprintf(head, sizeof(head), "%s\r\nContent-Length: %zu\r\n\r\n", s->head, strlen(body));
                send_all(c, head, strlen(head));
                send_all(c, body, strlen(body));
            }
            if (s->close_after)
                break;
        }
        close(c);
    }
    return NULL;
}

static void server_start(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(srv.fd >= 0);
    assert_int_equal(bind(srv.fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(srv.fd, 8), 0);
    getsockname(srv.fd, (struct sockaddr *)&a, &al);
    srv.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&srv.th, NULL, server_main, NULL), 0);
}

static void server_stop(void)
{
    shutdown(srv.fd, SHUT_RDWR);
    close(srv.fd);
    pthread_join(srv.th, NULL);
    for (int i = 0; i < srv.nreqs; i++)
        free(srv.reqs[i]);
    pthread_mutex_destroy(&srv.mu);
    pthread_cond_destroy(&srv.cv);
    memset(&srv, 0, sizeof(srv));
}

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    server_stop();
    return 0;
}

static void script(const char *head, const char *body)
{
    srv.steps[srv.nsteps].head = head;
    srv.steps[srv.nsteps].body = body;
    srv.nsteps++;
}

static k8s_client *client(const char *token, const char *token_file, int max_retries)
{
    char url[64];
    k8s_config cfg = { 0 };
    k8s_client_opts o = { .qps = -1, .max_retries = max_retries, .timeout_ms = 5000 };
    k8s_client *c = NULL;
    k8s_err err;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    cfg.server = url;
    cfg.token = (char *)token;
    cfg.token_file = (char *)token_file;
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    return c;
}

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strcasestr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

#define OK_JSON "HTTP/1.1 200 OK\r\nContent-Type: application/json"
#define STATUS_404 "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\"," \
    "\"message\":\"configmaps \\\"x\\\" not found\",\"reason\":\"NotFound\"," \
    "\"details\":{\"name\":\"x\",\"kind\":\"configmaps\"},\"code\":404}"

/* ---------------------------------------------------------------- tests */

/* Exactly one Accept and one Content-Type, the token, the method, the body,
 * an escaped path; three requests over one connection. */
static void test_request_shape_and_reuse(void **state)
{
    k8s_err err;
    cJSON *out = NULL;
    (void)state;
    script(OK_JSON, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a b\"}}");
    script(OK_JSON, "{}");
    script(OK_JSON, "{}");
    server_start();
    k8s_client *c = client("tok-123", NULL, 0);

    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, "ns 1", "a b/c", &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "metadata", "name", NULL), "a b");
    cJSON_Delete(out);
    cJSON *patch = cJSON_Parse("{\"data\":{\"k\":\"v\"}}");
    assert_int_equal(k8s_patch(c, &K8S_DEPLOYMENTS, "ns", "d", NULL, K8S_CT_STRATEGIC_PATCH, patch, NULL, &err), K8S_OK);
    cJSON_Delete(patch);
    assert_int_equal(k8s_delete(c, &K8S_CONFIGMAPS, "ns", "x", &err), K8S_OK);
    k8s_client_free(c);

    assert_int_equal(srv.nreqs, 3);
    assert_int_equal(srv.connections, 1);
    assert_true(strncmp(srv.reqs[0], "GET /api/v1/namespaces/ns%201/configmaps/a%20b%2Fc HTTP/1.1\r\n", 60) == 0);
    assert_int_equal(count_occurrences(srv.reqs[0], "\r\nAccept:"), 1);
    assert_int_equal(count_occurrences(srv.reqs[0], "\r\nContent-Type:"), 0);
    assert_non_null(strstr(srv.reqs[0], "\r\nAccept: application/json\r\n"));
    assert_non_null(strstr(srv.reqs[0], "\r\nAuthorization: Bearer tok-123\r\n"));

    assert_true(strncmp(srv.reqs[1], "PATCH /apis/apps/v1/namespaces/ns/deployments/d HTTP/1.1\r\n", 58) == 0);
    assert_int_equal(count_occurrences(srv.reqs[1], "\r\nAccept:"), 1);
    assert_int_equal(count_occurrences(srv.reqs[1], "\r\nContent-Type:"), 1);
    assert_non_null(strstr(srv.reqs[1], "\r\nContent-Type: application/strategic-merge-patch+json\r\n"));
    assert_non_null(strstr(srv.reqs[1], "\r\n\r\n{\"data\":{\"k\":\"v\"}}"));
    assert_null(strcasestr(srv.reqs[1], "Expect:"));

    assert_true(strncmp(srv.reqs[2], "DELETE /api/v1/namespaces/ns/configmaps/x HTTP/1.1\r\n", 51) == 0);
}

/* A Status body is kept: code, reason, message, causes. */
static void test_status_body_kept(void **state)
{
    k8s_err err;
    (void)state;
    script("HTTP/1.1 404 Not Found\r\nContent-Type: application/json", STATUS_404);
    script("HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json",
           "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"x is invalid\",\"reason\":\"Invalid\","
           "\"details\":{\"causes\":[{\"reason\":\"FieldValueInvalid\",\"message\":\"bad\",\"field\":\"spec.a\"},"
           "{\"message\":\"worse\",\"field\":\"spec.b\"}]},\"code\":422}");
    script("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain", "forbidden: no");
    server_start();
    k8s_client *c = client(NULL, NULL, 0);
    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, "ns", "x", NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.reason, "NotFound");
    assert_string_equal(err.message, "configmaps \"x\" not found");
    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, "ns", "x", NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_string_equal(err.causes, "spec.a: bad; spec.b: worse");
    /* no Status body: the reason is derived from the code, the text kept */
    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, "ns", "x", NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 403);
    assert_string_equal(err.reason, "Forbidden");
    assert_string_equal(err.message, "forbidden: no");
    k8s_client_free(c);
}

/* 429 with Retry-After: 1 then 503 then 200: retried, waiting >= 1 s. */
static void test_retry_429_5xx(void **state)
{
    k8s_err err;
    (void)state;
    script("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json",
           "{\"kind\":\"Status\",\"reason\":\"TooManyRequests\",\"code\":429,\"message\":\"slow down\"}");
    script("HTTP/1.1 503 Service Unavailable", "");
    script(OK_JSON, "{\"ok\":true}");
    server_start();
    k8s_client *c = client(NULL, NULL, 0);
    double t0 = k8s__now();
    cJSON *out = NULL;
    assert_int_equal(k8s_request(c, "GET", "/x", NULL, NULL, 0, &out, &err), K8S_OK);
    double dt = k8s__now() - t0;
    assert_true(dt >= 1.0);
    assert_true(dt < 5.0 * test_slack());
    assert_true(k8s_json_bool(out, 0, "ok", NULL));
    cJSON_Delete(out);
    assert_int_equal(srv.nreqs, 3);
    k8s_client_free(c);
}

/* Bounded: with max_retries 2, three 500s give up with the last status. */
static void test_retry_bounded(void **state)
{
    k8s_err err;
    (void)state;
    for (int i = 0; i < 3; i++)
        script("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json",
               "{\"kind\":\"Status\",\"reason\":\"InternalError\",\"code\":500,\"message\":\"boom\"}");
    server_start();
    k8s_client *c = client(NULL, NULL, 2);
    assert_int_equal(k8s_request(c, "GET", "/x", NULL, NULL, 0, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 500);
    assert_string_equal(err.reason, "InternalError");
    assert_int_equal(srv.nreqs, 3);
    k8s_client_free(c);
}

/* 4xx other than 429 is not retried; POST is not retried on 500 either? It
 * is: the server answered, so nothing was half-done. 409 is final. */
static void test_no_retry_on_409(void **state)
{
    k8s_err err;
    (void)state;
    script("HTTP/1.1 409 Conflict\r\nContent-Type: application/json",
           "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"code\":409,\"message\":\"modified\"}");
    server_start();
    k8s_client *c = client(NULL, NULL, 5);
    assert_int_equal(k8s_request(c, "PUT", "/x", K8S_CT_JSON, "{}", 2, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 409);
    assert_int_equal(srv.nreqs, 1);
    k8s_client_free(c);
}

/* A 401 re-reads the token file and retries once with the new token. */
static char token_path[128];

static void write_token(const char *t)
{
    FILE *f = fopen(token_path, "w");
    assert_non_null(f);
    fputs(t, f);
    fclose(f);
}

static void rotate_token(void)
{
    write_token("new-token\n");
}

static void test_401_rereads_token_file(void **state)
{
    char dir[PATH_MAX];
    k8s_err err;
    (void)state;
    assert_int_equal(test_mkdtemp(dir, sizeof(dir), "tqu-http"), 0);
    snprintf(token_path, sizeof(token_path), "%s/token", dir);
    write_token("old-token\n");
    script("HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json",
           "{\"kind\":\"Status\",\"reason\":\"Unauthorized\",\"code\":401,\"message\":\"Unauthorized\"}");
    srv.steps[0].before = rotate_token;   /* the kubelet rotated it meanwhile */
    script(OK_JSON, "{}");
    server_start();
    k8s_client *c = client(NULL, token_path, 0);
    assert_int_equal(k8s_request(c, "GET", "/x", NULL, NULL, 0, NULL, &err), K8S_OK);
    assert_int_equal(srv.nreqs, 2);
    assert_non_null(strstr(srv.reqs[0], "Authorization: Bearer old-token\r\n"));
    assert_non_null(strstr(srv.reqs[1], "Authorization: Bearer new-token\r\n"));
    k8s_client_free(c);
    unlink(token_path);
    rmdir(dir);
}

/* A body over the cap fails with K8S_ETOOBIG, cleanly. */
static void test_body_cap(void **state)
{
    char big[5000];
    k8s_err err;
    k8s_config cfg = { 0 };
    k8s_client *c = NULL;
    char url[64];
    (void)state;
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    script(OK_JSON, big);
    server_start();
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    cfg.server = url;
    k8s_client_opts o = { .qps = -1, .max_body = 1024, .max_retries = -1 };
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    assert_int_equal(k8s_request(c, "GET", "/big", NULL, NULL, 0, NULL, &err), K8S_ETOOBIG);
    assert_non_null(strstr(err.message, "larger than 1024"));
    k8s_client_free(c);
}

/* Connection refused: K8S_ECONNECT naming the server, after bounded retries. */
static void test_unreachable(void **state)
{
    k8s_config cfg = { .server = "https://127.0.0.1:1" };
    k8s_client_opts o = { .qps = -1, .max_retries = 1 };
    k8s_client *c = NULL;
    k8s_err err;
    (void)state;
    srv.nsteps = 0;
    server_start();   /* unused; keeps teardown uniform */
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    assert_int_equal(k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err), K8S_ECONNECT);
    assert_non_null(strstr(err.message, "https://127.0.0.1:1"));
    k8s_client_free(c);
}

/*
 * With a CA in the kubeconfig, that CA is the only trust anchor (as in
 * client-go): libcurl must not also trust the system's bundle or its
 * certificate folder, which it uses by default beside a CA blob. Without
 * one, the system's CAs stay in force.
 */
static void test_ca_is_the_only_trust_anchor(void **state)
{
    static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    k8s_config cfg = { .server = "https://127.0.0.1:1" };
    k8s_client_opts o = { .qps = -1, .max_retries = 1 };
    k8s_client *c = NULL;
    k8s_err err;
    const void *v;
    (void)state;
    srv.nsteps = 0;
    server_start();   /* unused; keeps teardown uniform */

    cfg.ca.data = (unsigned char *)pem;
    cfg.ca.len = sizeof(pem) - 1;
    curlspy_reset();
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    assert_int_not_equal(k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err), K8S_OK);
    k8s_client_free(c);
    assert_true(curlspy_count(CURLOPT_CAINFO_BLOB, &v) > 0);
    assert_non_null(v);
    assert_true(curlspy_count(CURLOPT_CAINFO, &v) > 0);
    assert_null(v);
    assert_true(curlspy_count(CURLOPT_CAPATH, &v) > 0);
    assert_null(v);

    cfg.ca.data = NULL;
    cfg.ca.len = 0;
    curlspy_reset();
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    assert_int_not_equal(k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err), K8S_OK);
    k8s_client_free(c);
    assert_int_equal(curlspy_count(CURLOPT_CAINFO_BLOB, NULL), 0);
    assert_int_equal(curlspy_count(CURLOPT_CAINFO, NULL), 0);
    assert_int_equal(curlspy_count(CURLOPT_CAPATH, NULL), 0);
}

/* ------------------------------------------------------------ streaming */

struct lines {
    int n;
    char got[8][200000];
    size_t len[8];
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct lines *l = ud;
    if (l->n < 8) {
        memcpy(l->got[l->n], line, len < sizeof(l->got[0]) ? len : sizeof(l->got[0]) - 1);
        l->len[l->n] = len;
    }
    l->n++;
    /* release the server's next chunk: proves we did not wait for it */
    pthread_mutex_lock(&srv.mu);
    srv.go++;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    return 0;
}

static void test_stream_framing(void **state)
{
    static struct lines l;
    static char bigline[100 * 1024];
    k8s_err err;
    (void)state;
    memset(&l, 0, sizeof(l));
    /* a >64 KiB event split over two chunks, events split mid-line, two
     * events in one chunk, and a final line without a newline */
    memset(bigline, 'x', sizeof(bigline) - 1);
    bigline[0] = '{';
    bigline[sizeof(bigline) - 2] = '}';
    char half1[60000], *half2 = bigline + 59999;
    memcpy(half1, bigline, 59999);
    half1[59999] = '\0';
    static char *tail;
    tail = malloc(strlen(half2) + 2);
    sprintf(tail, "%s\n", half2);
    const char *chunks[] = { "{\"a\":1}\n{\"b\"", ":2}\n", half1, tail, "{\"c\":3}\n{\"d\":4}\n{\"e\":5}", NULL };
    srv.steps[0] = (struct step){ .head = OK_JSON, .chunks = chunks, .wait_between = 0 };
    srv.nsteps = 1;
    server_start();
    k8s_client *c = client(NULL, NULL, 0);
    assert_int_equal(k8s_stream(c, "/watch", 5, on_line, &l, &err), K8S_OK);
    assert_int_equal(l.n, 6);
    assert_string_equal(l.got[0], "{\"a\":1}");
    assert_string_equal(l.got[1], "{\"b\":2}");
    assert_int_equal(l.len[2], strlen(bigline));
    assert_memory_equal(l.got[2], bigline, strlen(bigline));
    assert_string_equal(l.got[3], "{\"c\":3}");
    assert_string_equal(l.got[5], "{\"e\":5}");
    free(tail);
    k8s_client_free(c);
}

/* Each complete line is handed over at once: the server sends the next
 * chunk only after the callback saw the previous line (else 3 s stall). */
static void test_stream_no_wait(void **state)
{
    static struct lines l;
    k8s_err err;
    (void)state;
    memset(&l, 0, sizeof(l));
    static const char *chunks[] = { "{\"n\":1}\n", "{\"n\":2}\n", "{\"n\":3}\n", NULL };
    srv.steps[0] = (struct step){ .head = OK_JSON, .chunks = chunks, .wait_between = 1 };
    srv.nsteps = 1;
    server_start();
    k8s_client *c = client(NULL, NULL, 0);
    double t0 = k8s__now();
    assert_int_equal(k8s_stream(c, "/watch", 5, on_line, &l, &err), K8S_OK);
    assert_true(k8s__now() - t0 < 2.0 * test_slack());
    assert_int_equal(l.n, 3);
    k8s_client_free(c);
}

struct observed {
    int n;
    char verb[16];
    long code;
    int lines_before;      /* lines delivered when the observer was called */
    const struct lines *l;
};

static void observe(void *ud, const char *verb, long code, double seconds)
{
    struct observed *o = ud;
    (void)seconds;
    o->n++;
    snprintf(o->verb, sizeof(o->verb), "%s", verb);
    o->code = code;
    o->lines_before = o->l->n;
}

/* A watch counts for the metrics once, when its answer's headers are in:
 * before any event, not when the stream ends. */
static void test_stream_observed_at_headers(void **state)
{
    static struct lines l;
    struct observed o = { .l = &l };
    k8s_err err;
    (void)state;
    memset(&l, 0, sizeof(l));
    static const char *chunks[] = { "{\"n\":1}\n", "{\"n\":2}\n", NULL };
    srv.steps[0] = (struct step){ .head = OK_JSON, .chunks = chunks, .wait_between = 1 };
    srv.nsteps = 1;
    server_start();
    k8s_client *c = client(NULL, NULL, 0);
    k8s_client_set_observer(c, observe, &o);
    assert_int_equal(k8s_stream(c, "/api/v1/pods?watch=1", 5, on_line, &l, &err), K8S_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.verb, "WATCH");
    assert_int_equal(o.code, 200);
    assert_int_equal(o.lines_before, 0);
    k8s_client_free(c);
}

/*
 * Through an HTTPS proxy the proxy's own answer to CONNECT is not the API
 * server's: a tunnel that opens and then fails must not count as a watch
 * answered 200. The scripted server plays the proxy and closes the tunnel.
 */
static void test_stream_through_proxy_counts_server_answer(void **state)
{
    static struct lines l;
    struct observed o = { .l = &l };
    char url[64], proxy[64];
    k8s_config cfg = { 0 };
    k8s_client_opts opts = { .qps = -1, .max_retries = 0, .timeout_ms = 5000 };
    k8s_client *c = NULL;
    k8s_err err;
    (void)state;
    memset(&l, 0, sizeof(l));
    script("HTTP/1.1 200 Connection established", NULL);
    srv.steps[0].close_after = 1;
    server_start();
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", srv.port);
    unsetenv("NO_PROXY");
    unsetenv("no_proxy");
    setenv("https_proxy", proxy, 1);
    cfg.server = url;
    assert_int_equal(k8s_client_new(&cfg, &opts, &c, &err), K8S_OK);
    k8s_client_set_observer(c, observe, &o);
    assert_int_not_equal(k8s_stream(c, "/api/v1/pods?watch=1", 5, on_line, &l, &err), K8S_OK);
    unsetenv("https_proxy");
    assert_int_equal(srv.nreqs, 1);
    assert_int_equal(strncmp(srv.reqs[0], "CONNECT ", 8), 0);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.verb, "WATCH");
    assert_int_equal(o.code, 0);
    k8s_client_free(c);
}

/* A stream that goes silent past the idle timeout fails with ETIMEOUT. */
static void test_stream_idle_timeout(void **state)
{
    static struct lines l;
    k8s_err err;
    (void)state;
    memset(&l, 0, sizeof(l));
    static const char *chunks[] = { "{\"n\":1}\n", "{\"n\":2}\n", NULL };
    /* wait_between with nobody releasing: the server stalls 3 s */
    srv.steps[0] = (struct step){ .head = OK_JSON, .chunks = chunks, .wait_between = 1 };
    srv.go = -100;
    srv.nsteps = 1;
    server_start();
    k8s_client *c = client(NULL, NULL, -1);
    double t0 = k8s__now();
    int rc = k8s_stream(c, "/watch", 1, on_line, &l, &err);
    assert_int_equal(rc, K8S_ETIMEOUT);
    assert_true(k8s__now() - t0 < 2.9 * test_slack());
    k8s_client_free(c);
}

/* ----------------------------------------------------- fault injection */

/* Every allocation in a request can fail: a clean error, no crash, no leak
 * (LeakSanitizer/valgrind check the latter). */
static void test_request_alloc_failures(void **state)
{
    (void)state;
    for (int i = 0; i < 200; i++)
        script(OK_JSON, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"n\",\"labels\":{\"a\":\"b\"}}}");
    server_start();
    int clean = 0;
    for (long n = 1; n < 200 && !clean; n++) {
        k8s_client *c = NULL;
        k8s_err err;
        cJSON *out = NULL;
        k8s_config cfg = { 0 };
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
        cfg.server = url;
        cfg.token = "t";
        k8s_client_opts o = { .qps = -1, .max_retries = -1 };
        failalloc_fail_at(n);
        int rc = k8s_client_new(&cfg, &o, &c, &err);
        if (rc == K8S_OK)
            rc = k8s_get(c, &K8S_CONFIGMAPS, "ns", "n", &out, &err);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_string_equal(k8s_json_str(out, "metadata", "name", NULL), "n");
            clean = 1;
        } else if (rc == K8S_OK) {
            /* curl/cJSON may have recovered from the failure internally */
            assert_non_null(out);
        } else {
            assert_true(rc == K8S_ENOMEM || rc == K8S_EPARSE || rc == K8S_ECONNECT);
            assert_null(out);
        }
        cJSON_Delete(out);
        k8s_client_free(c);
    }
    assert_true(clean);
}

/* A cJSON free that notes whether a block still held the marker. */
static const char *wipe_marker;
static int wipe_seen;
static void *plain_malloc(size_t n)
{
    return malloc(n);
}
static void checking_free(void *p)
{
    if (p && wipe_marker && memmem(p, malloc_usable_size(p), wipe_marker, strlen(wipe_marker)))
        wipe_seen++;
    free(p);
}

/* A Secret read with k8s_get_sensitive: a body larger than one buffer
 * (the growth path that must not realloc), parsed intact; the tree freed
 * by k8s_json_wipe_delete holds the secret in no block it frees (with
 * cJSON_Delete it would: the check below sees it). */
static void test_get_sensitive_wiped(void **state)
{
    k8s_err err;
    cJSON *out = NULL;
    /* static: the server thread may still be in send() on the body when
     * the test returns; teardown joins it (ASan saw a free during send) */
    static char body[100000 + 256], pad[100000 + 1];
    size_t padn = 100000;
    cJSON_Hooks checking = { plain_malloc, checking_free }, plain = { plain_malloc, free };
    (void)state;

    memset(pad, 'a', padn);
    pad[padn] = '\0';
    snprintf(body, padn + 256, "{\"kind\":\"Secret\",\"metadata\":{\"annotations\":{\"pad\":\"%s\"}},"
             "\"data\":{\"password\":\"V1BFLU1BUktFUi0xMjM=\"},\"stringData\":{\"x\":\"WPE-MARK\"}}", pad);
    script(OK_JSON, body);
    server_start();
    k8s_client *c = client("tok", NULL, 0);
    assert_int_equal(k8s_get_sensitive(c, &K8S_SECRETS, "ns", "s", &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "data", "password", NULL), "V1BFLU1BUktFUi0xMjM=");
    assert_int_equal(strlen(k8s_json_str(out, "metadata", "annotations", "pad", NULL)), padn);
    k8s_client_free(c);

    cJSON_InitHooks(&checking);
    wipe_marker = "V1BFLU1BUktFUi0xMjM=";
    wipe_seen = 0;
    k8s_json_wipe_delete(out);
    assert_int_equal(wipe_seen, 0);
    /* the check sees what cJSON_Delete alone leaves */
    out = cJSON_Parse("{\"data\":{\"password\":\"V1BFLU1BUktFUi0xMjM=\"}}");
    assert_non_null(out);
    cJSON_Delete(out);
    assert_true(wipe_seen > 0);
    wipe_marker = NULL;
    cJSON_InitHooks(&plain);
    failalloc_install();
    k8s_json_wipe_delete(NULL);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_shape_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_sensitive_wiped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_body_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_429_5xx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_retry_on_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_rereads_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_is_the_only_trust_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_framing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_no_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_observed_at_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_through_proxy_counts_server_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
