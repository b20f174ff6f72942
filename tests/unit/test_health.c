/*
 * test_health.c - the health and metrics endpoint, spoken to over real
 * sockets with libcurl: probe answers in both states, /metrics with its
 * Content-Type and a body that parses (prom_parse.h), 404/405, keep-alive,
 * addresses (bad, busy, IPv6, every address), prompt stop with clients
 * still connected, repeated start/stop, concurrent scrapes, and what an
 * allocation failure on the server's side turns into.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <curl/curl.h>
#include "k8s.h"
#include "failalloc.h"
#include "runtime/health.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "prom_parse.h"
#include "testutil.h"

/* Response bodies are kept with the real allocator so that failing the
 * server's allocations never fails the test's own. */
void *__real_realloc(void *p, size_t n);

/* ---------------------------------------------------------------- hooks */

typedef struct probes {
    atomic_int healthy;         /* 0 unhealthy */
    atomic_int ready;           /* 0 not ready, 1 ready, 2 standby */
    atomic_int calls;
} probes;

static int hook_healthy(void *ud, char *why, size_t len)
{
    probes *p = ud;
    atomic_fetch_add(&p->calls, 1);
    if (!atomic_load(&p->healthy)) {
        snprintf(why, len, "worker stuck for 300s");
        return 0;
    }
    return 1;
}

static int hook_ready(void *ud, char *why, size_t len)
{
    probes *p = ud;
    atomic_fetch_add(&p->calls, 1);
    switch (atomic_load(&p->ready)) {
    case 0:
        snprintf(why, len, "cache of tianqingupgrades not synced yet");
        return 0;
    case 2:
        snprintf(why, len, "ok: standby, not the leader (pod-b)");
        return 1;
    default:
        return 1;
    }
}

/* --------------------------------------------------------------- client */

typedef struct resp {
    long code;
    char ctype[128];
    char allow[64];
    char *body;
    size_t len, cap;
    long connects;
} resp;

static void resp_release(resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    resp *r = ud;
    size_t n = sz * nm;
    if (r->len + n + 1 > r->cap) {
        size_t cap = (r->len + n + 1) * 2;
        char *b = __real_realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    resp *r = ud;
    size_t n = sz * nm;
    if (n > 6 && strncasecmp(p, "allow:", 6) == 0) {
        size_t m = n - 6;
        while (m && (p[6 + m - 1] == '\r' || p[6 + m - 1] == '\n'))
            m--;
        while (m && p[6] == ' ') {
            p++;
            m--;
        }
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)m, p + 6);
    }
    return n;
}

/*
 * One request; curl may be a handle to reuse (keep-alive) or NULL.
 * host is "127.0.0.1" or "[::1]". Returns the CURLcode.
 */
static int request_on(CURL *curl, const char *method, const char *host, int port,
                      const char *path, resp *r)
{
    char url[256];
    int own = !curl, rc;

    memset(r, 0, sizeof(*r));
    if (own)
        curl = curl_easy_init();
    assert_non_null(curl);
    snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    /* generous: under valgrind several scrapers and a recorder share 2 CPUs */
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "a=1&b=2");
    } else if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{\"x\":1}");
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    rc = (int)curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->code);
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
        curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r->connects);
    }
    if (own)
        curl_easy_cleanup(curl);
    return rc;
}

static void get(int port, const char *path, resp *r)
{
    int rc = request_on(NULL, "GET", "127.0.0.1", port, path, r);
    if (rc != CURLE_OK)
        fail_msg("GET %s: %s", path, curl_easy_strerror((CURLcode)rc));
}

static void expect(int port, const char *method, const char *path, long code, const char *body)
{
    resp r;
    int rc = request_on(NULL, method, "127.0.0.1", port, path, &r);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror((CURLcode)rc));
    if (r.code != code)
        fail_msg("%s %s: %ld, want %ld (%s)", method, path, r.code, code, r.body ? r.body : "");
    if (body)
        assert_string_equal(r.body ? r.body : "", body);
    resp_release(&r);
}

static tqu_health *start(const char *addr, const tqu_health_hooks *hooks)
{
    tqu_health *h = NULL;
    char err[256];
    if (tqu_health_start(addr, hooks, &h, err, sizeof(err)) != K8S_OK)
        fail_msg("start %s: %s", addr, err);
    assert_non_null(h);
    assert_true(tqu_health_port(h) > 0);
    return h;
}

static int ipv6_loopback(void)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;
    if (fd < 0)
        return 0;
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* ---------------------------------------------------------------- tests */

static void test_probes(void **state)
{
    probes p;
    tqu_health_hooks hooks = { .healthy = hook_healthy, .ready = hook_ready, .ud = &p };
    tqu_health *h;
    resp r;
    (void)state;

    atomic_init(&p.healthy, 1);
    atomic_init(&p.ready, 0);
    atomic_init(&p.calls, 0);
    h = start("127.0.0.1:0", &hooks);
    int port = tqu_health_port(h);

    get(port, "/healthz", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "ok");
    assert_string_equal(r.ctype, "text/plain; charset=utf-8");
    resp_release(&r);

    expect(port, "GET", "/readyz", 503, "cache of tianqingupgrades not synced yet");
    atomic_store(&p.ready, 1);
    expect(port, "GET", "/readyz", 200, "ok");
    atomic_store(&p.ready, 2);
    expect(port, "GET", "/readyz", 200, "ok: standby, not the leader (pod-b)");

    atomic_store(&p.healthy, 0);
    expect(port, "GET", "/healthz", 503, "worker stuck for 300s");
    atomic_store(&p.healthy, 1);
    expect(port, "GET", "/healthz", 200, "ok");
    assert_int_equal(atomic_load(&p.calls), 6);

    tqu_health_stop(h);

    /* no hooks: always ok */
    h = start("127.0.0.1:0", NULL);
    expect(tqu_health_port(h), "GET", "/healthz", 200, "ok");
    expect(tqu_health_port(h), "GET", "/readyz", 200, "ok");
    tqu_health_stop(h);
}

static void test_metrics_endpoint(void **state)
{
    char name[80];
    tqu_health *h;
    prom_doc d = { 0 };
    resp r;
    (void)state;

    /* fill every table so the body spans several writes */
    tqu_metrics_reset();
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof(name), "resource-%02d-%s", i,
                 "with-a-long-name-to-make-the-body-large-enough-xx");
        tqu_metrics_watch_restart(name);
        tqu_metrics_watch_relist(name);
    }
    static const char *const verbs[] = { "GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE" };
    for (int v = 0; v < 7; v++)
        for (int c = 0; c < 24; c++)
            tqu_metrics_api_request(NULL, verbs[v], 200 + c, 0.001 * c);
    tqu_metrics_reconcile("success", 0.02);
    tqu_metrics_set_leader(1);

    h = start("127.0.0.1:0", NULL);
    get(tqu_health_port(h), "/metrics", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    if (r.len <= 16384)      /* health.c writes 16 KiB pieces */
        fail_msg("body of %zu bytes: too small to span several writes", r.len);
    if (prom_parse(r.body, r.len, &d) != 0)
        fail_msg("invalid /metrics: %s", d.err);
    assert_true(prom_value(&d, "tqu_reconcile_total", "result", "success", NULL) == 1);
    assert_true(prom_value(&d, "tqu_leader", NULL) == 1);
    assert_true(prom_value(&d, "tqu_api_requests_total", "verb", "DELETE", "code", "223", NULL) == 1);
    assert_true(prom_value(&d, "tqu_watch_relists_total", "resource", name, NULL) == 1);
    assert_non_null(prom_find(&d, "process_resident_memory_bytes", NULL));
    prom_doc_release(&d);
    resp_release(&r);

    /* a query string does not change the path */
    expect(tqu_health_port(h), "GET", "/metrics?debug=1", 200, NULL);
    tqu_health_stop(h);
    tqu_metrics_reset();
}

static void test_not_found_and_methods(void **state)
{
    tqu_health *h;
    CURL *c;
    resp r;
    (void)state;

    h = start("127.0.0.1:0", NULL);
    int port = tqu_health_port(h);
    expect(port, "GET", "/nope", 404, "not found");
    expect(port, "GET", "/", 404, "not found");
    expect(port, "GET", "/healthz/", 404, "not found");
    expect(port, "GET", "/metricsx", 404, "not found");

    static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        assert_int_equal(request_on(NULL, methods[i], "127.0.0.1", port, "/metrics", &r), CURLE_OK);
        if (r.code != 405)
            fail_msg("%s: %ld, want 405", methods[i], r.code);
        assert_string_equal(r.allow, "GET");
        assert_string_equal(r.body, "method not allowed");
        resp_release(&r);
    }
    assert_int_equal(request_on(NULL, "HEAD", "127.0.0.1", port, "/healthz", &r), CURLE_OK);
    assert_int_equal(r.code, 405);
    assert_int_equal(r.len, 0);
    resp_release(&r);

    /* a POST body is read and dropped; the connection serves the next request */
    c = curl_easy_init();
    assert_int_equal(request_on(c, "POST", "127.0.0.1", port, "/healthz", &r), CURLE_OK);
    assert_int_equal(r.code, 405);
    resp_release(&r);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(request_on(c, "GET", "127.0.0.1", port, "/healthz", &r), CURLE_OK);
        assert_int_equal(r.code, 200);
        assert_string_equal(r.body, "ok");
        assert_int_equal(r.connects, 0);    /* reused */
        resp_release(&r);
    }
    curl_easy_cleanup(c);
    tqu_health_stop(h);
}

static void test_keepalive(void **state)
{
    tqu_health *h;
    CURL *c;
    resp r;
    long connects = 0;
    (void)state;

    h = start("127.0.0.1:0", NULL);
    c = curl_easy_init();
    for (int i = 0; i < 50; i++) {
        assert_int_equal(request_on(c, "GET", "127.0.0.1", tqu_health_port(h),
                                    i % 2 ? "/metrics" : "/readyz", &r), CURLE_OK);
        assert_int_equal(r.code, 200);
        connects += r.connects;
        resp_release(&r);
    }
    assert_int_equal(connects, 1);
    curl_easy_cleanup(c);
    tqu_health_stop(h);
}

static void test_bad_addresses(void **state)
{
    static const char *const bad[] = {
        "", "8081", "127.0.0.1", "127.0.0.1:", ":", "127.0.0.1:99999", "127.0.0.1:65536",
        "127.0.0.1:80x", "127.0.0.1:-1", "[::1]8081", "[::1", "::1:8081", "[::1]:",
        "127.0.0.1:123456",
    };
    char err[256];
    tqu_health *h;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = (tqu_health *)&h;   /* must be set to NULL */
        err[0] = '\0';
        int rc = tqu_health_start(bad[i], NULL, &h, err, sizeof(err));
        if (rc != K8S_EINVAL)
            fail_msg("\"%s\": rc %d (%s), want K8S_EINVAL", bad[i], rc, err);
        assert_null(h);
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
    }
    h = (tqu_health *)&h;
    assert_int_equal(tqu_health_start(NULL, NULL, &h, err, sizeof(err)), K8S_EINVAL);
    assert_null(h);
    assert_int_equal(tqu_health_start(":0", NULL, NULL, err, sizeof(err)), K8S_EINVAL);
    /* err may be NULL */
    assert_int_equal(tqu_health_start("x", NULL, &h, NULL, 0), K8S_EINVAL);

    /* a well-formed address this host does not have (TEST-NET-1) */
    assert_int_equal(tqu_health_start("192.0.2.1:0", NULL, &h, err, sizeof(err)), K8S_EIO);
    assert_null(h);
    assert_non_null(strstr(err, "192.0.2.1:0"));
    tqu_health_stop(NULL);
}

static void test_address_in_use(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    char addr[64], err[256];
    tqu_health *h, *h2 = NULL;
    int fd;
    (void)state;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(tqu_health_start(addr, NULL, &h2, err, sizeof(err)), K8S_EIO);
    assert_null(h2);
    assert_non_null(strstr(err, "in use"));
    assert_non_null(strstr(err, addr));
    close(fd);

    /* and a second server on the port of a first */
    h = start("127.0.0.1:0", NULL);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tqu_health_port(h));
    assert_int_equal(tqu_health_start(addr, NULL, &h2, err, sizeof(err)), K8S_EIO);
    assert_non_null(strstr(err, "in use"));
    expect(tqu_health_port(h), "GET", "/healthz", 200, "ok");    /* the first is unharmed */
    tqu_health_stop(h);
}

static void test_address_forms(void **state)
{
    tqu_health *h;
    resp r;
    int v6 = ipv6_loopback();
    (void)state;

    /* every address: reachable over IPv4 (and IPv6 when the host has it) */
    h = start(":0", NULL);
    expect(tqu_health_port(h), "GET", "/healthz", 200, "ok");
    if (v6) {
        assert_int_equal(request_on(NULL, "GET", "[::1]", tqu_health_port(h), "/healthz", &r),
                         CURLE_OK);
        assert_int_equal(r.code, 200);
        resp_release(&r);
    }
    tqu_health_stop(h);

    h = start("0.0.0.0:0", NULL);
    expect(tqu_health_port(h), "GET", "/healthz", 200, "ok");
    tqu_health_stop(h);

    h = start("localhost:0", NULL);
    tqu_health_stop(h);

    if (v6) {
        h = start("[::1]:0", NULL);
        assert_int_equal(request_on(NULL, "GET", "[::1]", tqu_health_port(h), "/readyz", &r),
                         CURLE_OK);
        assert_int_equal(r.code, 200);
        resp_release(&r);
        /* bound to ::1 only */
        assert_int_not_equal(request_on(NULL, "GET", "127.0.0.1", tqu_health_port(h), "/readyz", &r),
                             CURLE_OK);
        resp_release(&r);
        tqu_health_stop(h);
    } else {
        fprintf(stderr, "(no IPv6 loopback here: [::1] not tested)\n");
    }
}

/* Connect a raw socket to 127.0.0.1:port. */
static int raw_connect(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void test_stop_is_prompt_with_clients(void **state)
{
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    tqu_health *h;
    CURL *c;
    resp r;
    int port, idle, partial, reader;
    double t;
    (void)state;

    for (int i = 0; i < 40; i++)      /* a large body */
        tqu_metrics_api_request(NULL, "GET", 100 + i, 1);
    h = start("127.0.0.1:0", NULL);
    port = tqu_health_port(h);

    c = curl_easy_init();           /* an idle keep-alive connection */
    assert_int_equal(request_on(c, "GET", "127.0.0.1", port, "/healthz", &r), CURLE_OK);
    resp_release(&r);
    idle = raw_connect(port);       /* connected, says nothing */
    partial = raw_connect(port);    /* half a request */
    assert_int_equal(write(partial, "GET /heal", 9), 9);
    reader = raw_connect(port);     /* asks for /metrics many times and never reads */
    for (int i = 0; i < 50; i++)
        if (write(reader, req, strlen(req)) < 0)
            break;
    usleep(200 * 1000);

    t = test_now();
    tqu_health_stop(h);
    t = test_now() - t;
    if (t >= 1.0)
        fail_msg("stop took %.3f s", t);

    /* nothing listens any more */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
    close(idle);
    close(partial);
    close(reader);
    curl_easy_cleanup(c);
    tqu_metrics_reset();
}

static void test_start_stop_many(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        tqu_health *h = start("127.0.0.1:0", NULL);
        if (i % 2)
            expect(tqu_health_port(h), "GET", "/metrics", 200, NULL);
        double t = test_now();
        tqu_health_stop(h);
        assert_true(test_now() - t < 1.0 * test_slack());
    }
}

typedef struct scraper {
    int port;
    int ok;
    char err[600];
} scraper;

static void *scrape(void *arg)
{
    scraper *s = arg;
    CURL *c = curl_easy_init();
    for (int i = 0; i < 25 && !s->err[0]; i++) {
        resp r;
        prom_doc d = { 0 };   /* released below even when the request failed */
        int rc = request_on(c, "GET", "127.0.0.1", s->port, "/metrics", &r);
        if (rc != CURLE_OK || r.code != 200)
            snprintf(s->err, sizeof(s->err), "GET /metrics: %s %ld",
                     curl_easy_strerror((CURLcode)rc), r.code);
        else if (prom_parse(r.body, r.len, &d) != 0)
            snprintf(s->err, sizeof(s->err), "parse: %s", d.err);
        else
            s->ok++;
        prom_doc_release(&d);
        resp_release(&r);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static atomic_int recording;

/*
 * Records metrics while the scrapers render them. It pauses 50 us between
 * records: a thread that never blocks starves the others under valgrind
 * (which runs one thread at a time), and the server then misses its own
 * 10 s timeout for an answer, closing a connection mid-body.
 */
static void *record(void *arg)
{
    const struct timespec pause = { 0, 50 * 1000 };
    (void)arg;
    while (atomic_load(&recording)) {
        tqu_metrics_reconcile("success", 0.01);
        tqu_metrics_api_request(NULL, "PATCH", 200, 0.02);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void test_concurrent_scrapes(void **state)
{
    pthread_t th[4], rec;
    scraper s[4];
    tqu_health *h;
    (void)state;

    h = start("127.0.0.1:0", NULL);
    atomic_store(&recording, 1);
    assert_int_equal(pthread_create(&rec, NULL, record, NULL), 0);
    for (int i = 0; i < 4; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        s[i].port = tqu_health_port(h);
        assert_int_equal(pthread_create(&th[i], NULL, scrape, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    atomic_store(&recording, 0);
    pthread_join(rec, NULL);
    for (int i = 0; i < 4; i++) {
        if (s[i].err[0])
            fail_msg("scraper %d: %s", i, s[i].err);
        assert_int_equal(s[i].ok, 25);
    }
    tqu_health_stop(h);
    tqu_metrics_reset();
}

/* The server's own allocations failing: clean errors, no crash, no leak. */
static void test_allocation_failures(void **state)
{
    probes p;
    tqu_health_hooks hooks = { .healthy = hook_healthy, .ready = hook_ready, .ud = &p };
    tqu_health *h = NULL;
    char err[256];
    long n;
    int rc;
    (void)state;

    atomic_init(&p.healthy, 1);
    atomic_init(&p.ready, 0);
    atomic_init(&p.calls, 0);
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        rc = tqu_health_start("127.0.0.1:0", &hooks, &h, err, sizeof(err));
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_null(h);
    }
    int port = tqu_health_port(h);

    /* The next allocation is the server's (curl and these buffers use the
     * real allocator): rendering fails, the scrape gets a 500. */
    char logpath[] = "/tmp/test_health_log_XXXXXX";
    int logfd = mkstemp(logpath);
    assert_true(logfd >= 0);
    unlink(logpath);
    tqu_log_set_fd(logfd);
    failalloc_fail_at(1);
    expect(port, "GET", "/metrics", 500, "cannot render metrics");
    assert_true(failalloc_failed());
    /* the reason cannot be copied: the status stands, with a generic body */
    failalloc_fail_at(1);
    expect(port, "GET", "/readyz", 503, "not ok");
    assert_true(failalloc_failed());
    failalloc_fail_at(0);
    tqu_log_set_fd(2);
    char logged[1024] = "";
    assert_true(pread(logfd, logged, sizeof(logged) - 1, 0) > 0);
    close(logfd);
    assert_non_null(strstr(logged, "cannot render metrics"));
    assert_non_null(strstr(logged, "out of memory"));
    expect(port, "GET", "/readyz", 503, "cache of tianqingupgrades not synced yet");
    expect(port, "GET", "/metrics", 200, NULL);
    tqu_health_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes),
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_not_found_and_methods),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_address_forms),
        cmocka_unit_test(test_stop_is_prompt_with_clients),
        cmocka_unit_test(test_start_stop_many),
        cmocka_unit_test(test_concurrent_scrapes),
        cmocka_unit_test(test_allocation_failures),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    tqu_metrics_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
