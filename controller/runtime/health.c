/*
 * health.c - /healthz, /readyz and /metrics over libwebsockets (see
 * health.h).
 *
 * We make, bind and listen on the socket ourselves: that gives exact
 * address handling (":8081" is every address, IPv6 and IPv4), port 0, and
 * errno-precise messages, where libwebsockets' own listener treats most
 * bind failures as "retry later". The listening socket is adopted into the
 * lws_context as a raw file descriptor; when it is readable we accept()
 * and hand each connection to lws as an HTTP socket. One thread runs
 * lws_service(); tqu_health_stop() sets a flag and wakes it with
 * lws_cancel_service().
 *
 * Each request's body is built whole in LWS_CALLBACK_HTTP (probes and the
 * metrics text are small: KiBs) and sent in pieces from
 * LWS_CALLBACK_HTTP_WRITEABLE, one piece per writeable callback.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <libwebsockets.h>
#include "health.h"
#include "k8s.h"
#include "log.h"
#include "metrics.h"

#define PIECE 16384              /* bytes per lws_write of a body */
#define METRICS_CAP (4u << 20)   /* the metrics text is KiBs; refuse to build MiBs */
#define MAX_CONNECTIONS 64       /* lws fds: the listener, its wake-up fd, clients */
#define ACCEPT_PAUSE_MS 250      /* after EMFILE and the like */

struct tqu_health {
    tqu_health_hooks hooks;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws *listener;        /* the adopted listening socket */
    int listen_fd;               /* owned by us until adopted */
    int port;
    int paused;                  /* accept paused after EMFILE etc. */
    int accept_failing;          /* and that was logged */
    lws_sorted_usec_list_t resume;
    atomic_int stop;
    pthread_t thread;
};

/* One request's answer, in the connection's per-session data. */
typedef struct answer {
    int pending;                 /* headers sent, body (maybe empty) to send */
    const char *body;
    char *owned;                 /* body when allocated; freed here */
    size_t len, off;
} answer;

static void answer_release(answer *a)
{
    if (!a)
        return;
    free(a->owned);
    memset(a, 0, sizeof(*a));
}

/* One line into err (when given). */
__attribute__((format(printf, 3, 4)))
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

/* ------------------------------------------------------------ listening */

/*
 * Split "host:port" / "[v6]:port" / ":port" into host (may be "") and
 * port. Returns 0, or K8S_EINVAL with err filled.
 */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen,
                      char *err, size_t errlen)
{
    const char *colon, *p;
    size_t n;

    if (!addr || !addr[0]) {
        fail(err, errlen, "empty health address (want host:port, e.g. :8081)");
        return K8S_EINVAL;
    }
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') {
            fail(err, errlen, "health address \"%s\": want [ipv6]:port, e.g. [::1]:8081", addr);
            return K8S_EINVAL;
        }
        n = (size_t)(close - addr - 1);
        colon = close + 1;
        p = addr + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            fail(err, errlen, "health address \"%s\": missing port (want host:port, e.g. :8081)",
                 addr);
            return K8S_EINVAL;
        }
        n = (size_t)(colon - addr);
        p = addr;
        if (memchr(addr, ':', n)) {
            fail(err, errlen, "health address \"%s\": put an IPv6 address in brackets, e.g. [::1]:8081",
                 addr);
            return K8S_EINVAL;
        }
    }
    if (n >= hostlen) {
        fail(err, errlen, "health address \"%s\": host too long", addr);
        return K8S_EINVAL;
    }
    memcpy(host, p, n);
    host[n] = '\0';
    colon++;
    n = strlen(colon);
    if (n == 0 || n > 5 || strspn(colon, "0123456789") != n || atol(colon) > 65535) {
        fail(err, errlen, "health address \"%s\": port must be a number from 0 to 65535", addr);
        return K8S_EINVAL;
    }
    if (n >= portlen)
        return K8S_EINVAL;
    memcpy(port, colon, n + 1);
    return K8S_OK;
}

/* Socket, bind, listen on one address. Returns the fd or -1 with errno. */
static int listen_on(const struct sockaddr *sa, socklen_t salen, int v6only)
{
    int fd, one = 1, e;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (sa->sa_family == AF_INET6 && v6only >= 0 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) ||
        bind(fd, sa, salen) != 0 || listen(fd, 64) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Listen on addr; returns the fd and *port, or -1 with err filled and
 * *rc set. */
static int make_listener(const char *addr, int *port, int *rc, char *err, size_t errlen)
{
    char host[256], service[8];
    struct addrinfo hints, *res = NULL, *ai;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd = -1, first_errno = 0, g;

    *rc = split_addr(addr, host, sizeof(host), service, sizeof(service), err, errlen);
    if (*rc)
        return -1;

    if (!host[0]) {
        /* every address: IPv6 and IPv4 on one socket, or IPv4 alone when
         * the host has no IPv6 */
        struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
                                   .sin6_port = htons((uint16_t)atoi(service)) };
        struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY),
                                  .sin_port = htons((uint16_t)atoi(service)) };
        fd = listen_on((struct sockaddr *)&s6, sizeof(s6), 0);
        if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
            fd = listen_on((struct sockaddr *)&s4, sizeof(s4), -1);
        first_errno = errno;
    } else {
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        g = getaddrinfo(host, service, &hints, &res);
        if (g != 0) {
            fail(err, errlen, "health address \"%s\": cannot resolve \"%s\": %s", addr, host,
                 g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
            *rc = g == EAI_MEMORY ? K8S_ENOMEM : K8S_EINVAL;
            return -1;
        }
        for (ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = listen_on(ai->ai_addr, ai->ai_addrlen, -1);
            if (fd < 0 && !first_errno)
                first_errno = errno;
        }
        freeaddrinfo(res);
    }
    if (fd < 0) {
        fail(err, errlen, "cannot listen on %s: %s", addr, strerror(first_errno));
        *rc = first_errno == ENOMEM || first_errno == ENOBUFS ? K8S_ENOMEM : K8S_EIO;
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        fail(err, errlen, "cannot listen on %s: getsockname: %s", addr, strerror(errno));
        close(fd);
        *rc = K8S_EIO;
        return -1;
    }
    *port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                     : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* ------------------------------------------------------------- requests */

static void resume_accepting(lws_sorted_usec_list_t *sul)
{
    tqu_health *h = lws_container_of(sul, tqu_health, resume);

    h->paused = 0;
    if (h->listener)
        lws_rx_flow_control(h->listener, 1);
}

/* The listening socket is readable: accept what is waiting. */
static int accept_connections(tqu_health *h)
{
    for (int i = 0; i < 16; i++) {
        int fd = accept4(h->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            /* Out of descriptors or memory: the connection stays queued
             * and the socket stays readable, so stop polling it for a
             * while instead of spinning. */
            if (!h->accept_failing)     /* once per spell, not every retry */
                tqu_log(TQU_WARN, "health endpoint: cannot accept connections", "error",
                        strerror(errno), NULL);
            h->accept_failing = 1;
            if (!h->paused && h->listener) {
                h->paused = 1;
                lws_rx_flow_control(h->listener, 0);
                lws_sul_schedule(h->ctx, 0, &h->resume, resume_accepting,
                                 ACCEPT_PAUSE_MS * LWS_US_PER_MS);
            }
            return 0;
        }
        h->accept_failing = 0;
        /* Headers and body leave in separate writes: without this, Nagle
         * and the client's delayed ACK add 40 ms to every answer. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* On failure lws closes fd itself (e.g. over MAX_CONNECTIONS). */
        lws_adopt_socket_vhost(h->vh, fd);
    }
    return 0;
}

/* Ask a probe hook; fills a (owned text or a constant). Returns the status. */
static unsigned probe(int (*hook)(void *, char *, size_t), void *ud, answer *a)
{
    char why[512];
    int ok = 1;

    memset(why, 0, sizeof(why));
    if (hook)
        ok = hook(ud, why, sizeof(why));
    why[sizeof(why) - 1] = '\0';
    if (why[0])
        a->owned = strdup(why);
    a->body = a->owned ? a->owned : ok ? "ok" : "not ok";
    a->len = strlen(a->body);
    return ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE;
}

static int on_request(tqu_health *h, struct lws *wsi, answer *a, const char *path)
{
    unsigned char headers[LWS_PRE + 1024], *start = headers + LWS_PRE, *p = start,
                  *end = headers + sizeof(headers) - 1;
    const char *ctype = "text/plain; charset=utf-8";
    unsigned status;

    answer_release(a);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        status = HTTP_STATUS_METHOD_NOT_ALLOWED;
        /* no body for HEAD */
        a->body = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0 ? "" : "method not allowed";
    } else if (strcmp(path, "/healthz") == 0) {
        status = probe(h->hooks.healthy, h->hooks.ud, a);
    } else if (strcmp(path, "/readyz") == 0) {
        status = probe(h->hooks.ready, h->hooks.ud, a);
    } else if (strcmp(path, "/metrics") == 0) {
        k8s_buf b;
        int rc;
        k8s_buf_init(&b, METRICS_CAP);
        rc = tqu_metrics_render(&b);
        if (rc == K8S_OK && b.data) {
            a->owned = k8s_buf_detach(&b, NULL);
            a->body = a->owned;
            ctype = "text/plain; version=0.0.4; charset=utf-8";
            status = HTTP_STATUS_OK;
        } else {
            k8s_buf_release(&b);
            tqu_log(TQU_WARN, "health endpoint: cannot render metrics", "error",
                    k8s_strerror(rc), NULL);
            a->body = "cannot render metrics";
            status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
        }
    } else {
        status = HTTP_STATUS_NOT_FOUND;
        a->body = "not found";
    }
    a->len = strlen(a->body);

    if (lws_add_http_common_headers(wsi, status, ctype, a->len, &p, end) ||
        (status == HTTP_STATUS_METHOD_NOT_ALLOWED &&
         lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                     (const unsigned char *)"GET", 3, &p, end)) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        answer_release(a);
        return -1;
    }
    a->pending = 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_writeable(struct lws *wsi, answer *a)
{
    unsigned char buf[LWS_PRE + PIECE];
    size_t n;
    int last;

    if (!a || !a->pending)
        return 0;
    n = a->len - a->off;
    if (n > PIECE)
        n = PIECE;
    last = a->off + n == a->len;
    memcpy(buf + LWS_PRE, a->body + a->off, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1;
    a->off += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    answer_release(a);
    /* keep-alive: ready for the next request, or close */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    tqu_health *h = lws_context_user(lws_get_context(wsi));
    answer *a = user;

    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        return accept_connections(h);
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        h->listener = NULL;
        return 0;
    case LWS_CALLBACK_HTTP:
        if (!a)
            return -1;
        return on_request(h, wsi, a, in ? (const char *)in : "");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi, a);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        answer_release(a);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    { "tqu-health", callback, sizeof(answer), 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* --------------------------------------------------------------- thread */

/*
 * libwebsockets' error lines, into our log. A client can provoke them
 * (a header too long, too many connections), so at most LWS_LOG_BURST
 * lines a minute get through; the rest are counted.
 */
#define LWS_LOG_BURST 5
static pthread_mutex_t lws_log_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t lws_log_window;
static int lws_log_lines;
static long lws_log_dropped;

static void lws_log_line(int level, const char *line)
{
    char buf[512], dropped[32] = "";
    time_t now = time(NULL);
    size_t n;
    int emit;

    (void)level;
    pthread_mutex_lock(&lws_log_lock);
    if (now - lws_log_window >= 60) {
        if (lws_log_dropped)
            snprintf(dropped, sizeof(dropped), "%ld", lws_log_dropped);
        lws_log_window = now;
        lws_log_lines = 0;
        lws_log_dropped = 0;
    }
    emit = lws_log_lines < LWS_LOG_BURST;
    if (emit)
        lws_log_lines++;
    else
        lws_log_dropped++;
    pthread_mutex_unlock(&lws_log_lock);
    if (dropped[0])
        tqu_log(TQU_WARN, "libwebsockets: lines suppressed", "count", dropped, NULL);
    if (!emit)
        return;
    snprintf(buf, sizeof(buf), "%s", line);
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    tqu_log(TQU_WARN, "libwebsockets", "detail", buf, NULL);
}

static void *serve(void *arg)
{
    tqu_health *h = arg;

    while (!atomic_load(&h->stop)) {
        if (lws_service(h->ctx, 0) < 0) {
            tqu_log(TQU_ERROR, "health endpoint: the service loop failed; not serving any more",
                    NULL);
            break;
        }
    }
    return NULL;
}

int tqu_health_start(const char *addr, const tqu_health_hooks *hooks, tqu_health **out,
                     char *err, size_t errlen)
{
    struct lws_context_creation_info info;
    lws_sock_file_fd_type fd;
    sigset_t all, old;
    tqu_health *h = NULL;
    int rc, e;

    if (err && errlen)
        err[0] = '\0';
    if (!out) {
        fail(err, errlen, "tqu_health_start: out is NULL");
        return K8S_EINVAL;
    }
    *out = NULL;
    h = calloc(1, sizeof(*h));
    if (!h) {
        fail(err, errlen, "health endpoint: out of memory");
        return K8S_ENOMEM;
    }
    if (hooks)
        h->hooks = *hooks;
    atomic_init(&h->stop, 0);
    h->listen_fd = make_listener(addr, &h->port, &rc, err, errlen);
    if (h->listen_fd < 0)
        goto fail;

    lws_set_log_level(LLL_ERR, lws_log_line);
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols;
    info.vhost_name = "tqu-health";
    info.server_string = "tianqing-upgrade-controller";
    info.user = h;
    info.count_threads = 1;
    info.fd_limit_per_thread = MAX_CONNECTIONS;
    info.timeout_secs = 10;
    info.keepalive_timeout = 5;
    h->ctx = lws_create_context(&info);
    if (!h->ctx) {
        fail(err, errlen, "health endpoint: cannot create the libwebsockets context");
        rc = K8S_ENOMEM;
        goto fail;
    }
    h->vh = lws_create_vhost(h->ctx, &info);
    if (!h->vh) {
        fail(err, errlen, "health endpoint: cannot create the libwebsockets vhost");
        rc = K8S_ENOMEM;
        goto fail;
    }
    fd.filefd = h->listen_fd;
    h->listener = lws_adopt_descriptor_vhost(h->vh, LWS_ADOPT_RAW_FILE_DESC, fd, "tqu-health", NULL);
    if (!h->listener) {
        fail(err, errlen, "health endpoint: libwebsockets would not take the listening socket");
        rc = K8S_ENOMEM;
        goto fail;
    }
    /* from here on lws owns (and closes) the listening socket */

    /* The thread takes no signals: they belong to the controller's main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&h->thread, NULL, serve, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        fail(err, errlen, "health endpoint: cannot start its thread: %s", strerror(e));
        rc = e == ENOMEM || e == EAGAIN ? K8S_ENOMEM : K8S_EIO;
        goto fail;
    }
    pthread_setname_np(h->thread, "tqu-health");
    *out = h;
    return K8S_OK;

fail:
    if (!h->listener && h->listen_fd >= 0)
        close(h->listen_fd);
    if (h->ctx)
        lws_context_destroy(h->ctx);
    free(h);
    return rc;
}

int tqu_health_port(const tqu_health *h)
{
    return h ? h->port : 0;
}

void tqu_health_stop(tqu_health *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, 1);
    lws_cancel_service(h->ctx);
    pthread_join(h->thread, NULL);
    lws_sul_cancel(&h->resume);
    lws_context_destroy(h->ctx);
    free(h);
}
