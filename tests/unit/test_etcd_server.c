/*
 * test_etcd_server.c - the etcd/ client against a REAL etcd (Debian's
 * etcd-server, /usr/bin/etcd), started here on free loopback ports with a
 * data folder of its own; no control plane needed, so it runs with the
 * unit tests (and under ASan and valgrind, which wrap only this program).
 *
 * Checked against the real `etcdctl` too: put/range/delete; a watch sees
 * an `etcdctl put` within 1 s; the watch survives an etcd restart (same
 * port and data folder) without losing or repeating an event; compaction
 * is reported and the watch goes on; TLS with a CA and certificates made
 * by openssl here: the right CA works, a wrong CA is ETCD_ETLS; an
 * unreachable endpoint is ETCD_EUNREACHABLE at once, and the next endpoint
 * is used. Prints the watch latency (etcdctl put -> callback, p50/p99 over
 * 100 puts) and shows that an idle watch sends nothing.
 *
 * Every etcd started here dies with this process (PR_SET_PDEATHSIG) and is
 * stopped by the group teardown, which also removes the folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <curl/curl.h>
#include <cmocka.h>
#include "etcd.h"
#include "testutil.h"

extern char **environ;

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#define OPENSSL_BIN "/usr/bin/openssl"

struct server {
    char name[16];
    char dir[512];          /* data folder */
    char log[512];
    char url[64];           /* client URL */
    char peer[64];
    int tls;
    pid_t pid;
};

static char tmp[256];                  /* everything of this run */
static struct server plain, secure;
static char ca_pem[4096], cert_pem[4096], key_pem[4096], other_ca_pem[4096];
static size_t ca_len, cert_len, key_len, other_ca_len;

/* ------------------------------------------------------------ processes */

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t l = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (s < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

/* environ plus ETCDCTL_API=3, for the children only (caller frees the array) */
static char **child_env(void)
{
    size_t n = 0;
    char **env;
    while (environ[n])
        n++;
    env = calloc(n + 2, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        env[i] = environ[i];
    env[n] = "ETCDCTL_API=3";
    return env;
}

/*
 * Start argv (no shell) with stdout+stderr to out_fd (or /dev/null when
 * -1). The child gets SIGKILL if this process dies first.
 */
static pid_t spawn(char *const argv[], int out_fd)
{
    char **env = child_env();
    pid_t pid;

    if (!env)
        return -1;
    pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        dup2(nul, 0);
        dup2(out_fd >= 0 ? out_fd : nul, 1);
        dup2(out_fd >= 0 ? out_fd : nul, 2);
        execve(argv[0], argv, env);
        _exit(127);
    }
    free(env);
    return pid;
}

/* Run argv to its end; its output (both streams) into out. Exit status or -1. */
static int run(char *const argv[], char *out, size_t outlen)
{
    int p[2], st = 0;
    size_t got = 0;
    ssize_t r;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid = spawn(argv, p[1]);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    for (;;) {
        char sink[256];
        if (out && got + 1 < outlen)
            r = read(p[0], out + got, outlen - 1 - got);
        else
            r = read(p[0], sink, sizeof(sink));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (out && got + 1 < outlen)
            got += (size_t)r;
    }
    close(p[0]);
    if (out && outlen)
        out[got] = '\0';
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int etcdctl(const struct server *s, char *out, size_t outlen, ...)
{
    char *argv[24];
    char ep[96], ca[600], cert[600], key[600];
    int n = 0;
    va_list ap;

    argv[n++] = ETCDCTL_BIN;
    snprintf(ep, sizeof(ep), "--endpoints=%s", s->url);
    argv[n++] = ep;
    if (s->tls) {
        snprintf(ca, sizeof(ca), "--cacert=%s/ca.crt", tmp);
        snprintf(cert, sizeof(cert), "--cert=%s/client.crt", tmp);
        snprintf(key, sizeof(key), "--key=%s/client.key", tmp);
        argv[n++] = ca;
        argv[n++] = cert;
        argv[n++] = key;
    }
    va_start(ap, outlen);
    while (n < 23 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    return run(argv, out, outlen);
}

static etcd_client *client_for(const struct server *s, const char *ca, size_t calen,
                               int with_cert)
{
    const char *eps[] = { s->url };
    etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .ca_pem = ca, .ca_len = calen,
                        .cert_pem = with_cert ? cert_pem : NULL, .cert_len = with_cert ? cert_len : 0,
                        .key_pem = with_cert ? key_pem : NULL, .key_len = with_cert ? key_len : 0,
                        .timeout_ms = 10000, .connect_timeout_ms = 10000 };
    etcd_client *c = NULL;
    etcd_err e;
    if (etcd_client_new(&cfg, &c, &e) != ETCD_OK)
        return NULL;
    return c;
}

static etcd_client *client(const struct server *s)
{
    return s->tls ? client_for(s, ca_pem, ca_len, 1) : client_for(s, NULL, 0, 0);
}

static int server_start(struct server *s)
{
    char *argv[32];
    char a_url[128], a_adv[128], a_peer[128], a_ipeer[128], a_cluster[160], a_dir[600];
    char a_cert[600], a_key[600], a_ca[600];
    int n = 0, fd, rc = -1;
    etcd_client *c = NULL;
    double t0 = test_now();

    snprintf(a_url, sizeof(a_url), "--listen-client-urls=%s", s->url);
    snprintf(a_adv, sizeof(a_adv), "--advertise-client-urls=%s", s->url);
    snprintf(a_peer, sizeof(a_peer), "--listen-peer-urls=%s", s->peer);
    snprintf(a_ipeer, sizeof(a_ipeer), "--initial-advertise-peer-urls=%s", s->peer);
    snprintf(a_cluster, sizeof(a_cluster), "--initial-cluster=%s=%s", s->name, s->peer);
    snprintf(a_dir, sizeof(a_dir), "--data-dir=%s", s->dir);
    argv[n++] = ETCD_BIN;
    argv[n++] = "--name";
    argv[n++] = s->name;
    argv[n++] = a_dir;
    argv[n++] = a_url;
    argv[n++] = a_adv;
    argv[n++] = a_peer;
    argv[n++] = a_ipeer;
    argv[n++] = a_cluster;
    argv[n++] = "--logger=zap";
    argv[n++] = "--log-level=warn";
    if (s->tls) {
        snprintf(a_cert, sizeof(a_cert), "--cert-file=%s/server.crt", tmp);
        snprintf(a_key, sizeof(a_key), "--key-file=%s/server.key", tmp);
        snprintf(a_ca, sizeof(a_ca), "--trusted-ca-file=%s/ca.crt", tmp);
        argv[n++] = a_cert;
        argv[n++] = a_key;
        argv[n++] = a_ca;
        argv[n++] = "--client-cert-auth";
    }
    argv[n] = NULL;
    fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    s->pid = spawn(argv, fd);
    close(fd);
    if (s->pid < 0)
        return -1;
    /* ready when a read answers */
    c = client(s);
    while (c && test_now() - t0 < 15) {
        etcd_range_result r;
        if (etcd_range(c, "ready", 0, 0, &r, NULL) == ETCD_OK) {
            etcd_range_result_release(&r);
            rc = 0;
            break;
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            break;
        }
        usleep(20000);
    }
    etcd_client_free(c);
    if (rc)
        fprintf(stderr, "# etcd %s did not start; see %s\n", s->name, s->log);
    return rc;
}

static void server_stop(struct server *s)
{
    double t0 = test_now();
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    while (test_now() - t0 < 10) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        usleep(10000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static int server_init(struct server *s, const char *name, int tls)
{
    int cp = free_port(), pp = free_port();
    if (cp < 0 || pp < 0 || cp == pp)
        return -1;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->dir, sizeof(s->dir), "%s/%s.etcd", tmp, name);
    snprintf(s->log, sizeof(s->log), "%s/%s.log", tmp, name);
    snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d", tls ? "https" : "http", cp);
    snprintf(s->peer, sizeof(s->peer), "http://127.0.0.1:%d", pp);
    s->tls = tls;
    return 0;
}

/* ------------------------------------------------------------ TLS files */

static int write_file(const char *name, const char *text)
{
    char p[600];
    FILE *f;
    snprintf(p, sizeof(p), "%s/%s", tmp, name);
    if (!(f = fopen(p, "w")))
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int read_file(const char *name, char *buf, size_t len, size_t *out)
{
    char p[600];
    FILE *f;
    snprintf(p, sizeof(p), "%s/%s", tmp, name);
    if (!(f = fopen(p, "r")))
        return -1;
    *out = fread(buf, 1, len - 1, f);
    buf[*out] = '\0';
    fclose(f);
    return *out ? 0 : -1;
}

/* openssl req/x509 for a CA, then a certificate it signs. */
static int make_ca(const char *name, const char *cn)
{
    char key[600], crt[600], subj[128];
    char *argv[] = { OPENSSL_BIN, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                     "-days", "2", "-subj", subj, NULL };
    snprintf(key, sizeof(key), "%s/%s.key", tmp, name);
    snprintf(crt, sizeof(crt), "%s/%s.crt", tmp, name);
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    return run(argv, NULL, 0);
}

static int make_cert(const char *name, const char *cn, const char *ext)
{
    char key[600], csr[600], crt[600], subj[128], extf[600], ca[600], cakey[600], ser[600];
    char *req[] = { OPENSSL_BIN, "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", subj, NULL };
    char *sign[] = { OPENSSL_BIN, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
                     "-CAserial", ser, "-CAcreateserial", "-out", crt, "-days", "2",
                     "-extfile", extf, NULL };
    snprintf(key, sizeof(key), "%s/%s.key", tmp, name);
    snprintf(csr, sizeof(csr), "%s/%s.csr", tmp, name);
    snprintf(crt, sizeof(crt), "%s/%s.crt", tmp, name);
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    snprintf(extf, sizeof(extf), "%s/%s.ext", tmp, name);
    snprintf(ca, sizeof(ca), "%s/ca.crt", tmp);
    snprintf(cakey, sizeof(cakey), "%s/ca.key", tmp);
    snprintf(ser, sizeof(ser), "%s/ca.srl", tmp);
    char extname[64];
    snprintf(extname, sizeof(extname), "%s.ext", name);
    if (write_file(extname, ext))
        return -1;
    if (run(req, NULL, 0) != 0)
        return -1;
    return run(sign, NULL, 0);
}

/* ------------------------------------------------------------ setup */

static void teardown_all(void)
{
    server_stop(&plain);
    server_stop(&secure);
    if (tmp[0]) {
        test_rmtree(tmp);
        tmp[0] = '\0';
    }
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (access(ETCD_BIN, X_OK) || access(ETCDCTL_BIN, X_OK) || access(OPENSSL_BIN, X_OK)) {
        fprintf(stderr, "# needs %s, %s and %s (scripts/install-deps.sh)\n", ETCD_BIN,
                ETCDCTL_BIN, OPENSSL_BIN);
        return -1;
    }
    if (test_mkdtemp(tmp, sizeof(tmp), "etcd-test") != 0)
        return -1;
    atexit(teardown_all);
    if (server_init(&plain, "plain", 0) || server_start(&plain))
        return -1;
    /* TLS material: a CA, a server certificate for 127.0.0.1, a client
     * certificate, and another CA that signed none of them */
    if (make_ca("ca", "etcd-test-ca") || make_ca("other-ca", "etcd-test-other-ca") ||
        make_cert("server", "etcd-test-server",
                  /* etcd's gateway dials its own gRPC server with this
                   * certificate, so it is a client certificate too */
                  "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n") ||
        make_cert("client", "etcd-test-client", "extendedKeyUsage=clientAuth\n") ||
        read_file("ca.crt", ca_pem, sizeof(ca_pem), &ca_len) ||
        read_file("client.crt", cert_pem, sizeof(cert_pem), &cert_len) ||
        read_file("client.key", key_pem, sizeof(key_pem), &key_len) ||
        read_file("other-ca.crt", other_ca_pem, sizeof(other_ca_pem), &other_ca_len)) {
        fprintf(stderr, "# openssl could not make the test certificates\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    teardown_all();
    return 0;
}

/* ------------------------------------------------------------ watcher */

#define MAXEV 512

struct seen {
    etcd_event_type type;
    char key[64];
    char value[64];
    int64_t rev, compact;
    double t;
};

struct watcher {
    pthread_t th;
    etcd_client *c;
    char key[64];
    etcd_watch_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct seen ev[MAXEV];
    int n, errors, opens, done, rc;
    etcd_err err;
};

static int w_event(void *ud, const etcd_event *ev)
{
    struct watcher *w = ud;
    pthread_mutex_lock(&w->mu);
    if (w->n < MAXEV) {
        struct seen *s = &w->ev[w->n];
        s->t = test_now();
        s->type = ev->type;
        snprintf(s->key, sizeof(s->key), "%s", ev->key ? ev->key : "");
        snprintf(s->value, sizeof(s->value), "%s", ev->value ? ev->value : "");
        s->rev = ev->mod_revision;
        s->compact = ev->compact_revision;
    }
    w->n++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void w_error(void *ud, const etcd_err *err, int failures, double delay)
{
    struct watcher *w = ud;
    (void)err;
    (void)failures;
    (void)delay;
    pthread_mutex_lock(&w->mu);
    w->errors++;
    pthread_mutex_unlock(&w->mu);
}

static void w_open(void *ud)
{
    struct watcher *w = ud;
    pthread_mutex_lock(&w->mu);
    w->opens++;
    pthread_mutex_unlock(&w->mu);
}

static void *w_main(void *arg)
{
    struct watcher *w = arg;
    etcd_err e;
    int rc = etcd_watch(w->c, w->key, &w->o, w_event, w, &e);
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->err = e;
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static struct watcher *watch_start(const struct server *s, const char *key, int64_t from)
{
    struct watcher *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_non_null(w->c = client(s));
    snprintf(w->key, sizeof(w->key), "%s", key);
    w->o.prefix = 1;
    w->o.start_revision = from;
    w->o.on_error = w_error;
    w->o.on_open = w_open;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    assert_int_equal(pthread_create(&w->th, NULL, w_main, w), 0);
    return w;
}

/* Wait until the watcher has n events (or ended); returns how many it has. */
static int watch_wait(struct watcher *w, int n, double timeout)
{
    struct timespec ts;
    int got;
    clock_gettime(CLOCK_REALTIME, &ts);
    timeout *= test_slack();
    ts.tv_sec += (time_t)timeout;
    ts.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    while (w->n < n && !w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break;
    got = w->n;
    pthread_mutex_unlock(&w->mu);
    return got;
}

/* Stop the watch from this thread; returns how long until it had ended. */
static double watch_stop(struct watcher *w)
{
    double t0 = test_now(), dt;
    etcd_client_stop(w->c);
    pthread_join(w->th, NULL);
    dt = test_now() - t0;
    assert_int_equal(w->rc, ETCD_ESTOPPED);
    etcd_client_free(w->c);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return dt;
}

/* Give a fresh watch time to be created before the changes it must see. */
static void settle(void)
{
    usleep(300000);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ tests */

/* put/range/delete, each checked with etcdctl as well. */
static void test_kv(void **state)
{
    etcd_client *c = client(&plain);
    etcd_range_result r;
    etcd_err e;
    int64_t rev = 0, rev2 = 0, del = -1;
    char out[4096];
    (void)state;

    assert_non_null(c);
    assert_int_equal(etcd_put(c, "t/kv/a", "v 1", 3, &rev, &e), ETCD_OK);
    assert_true(rev > 0);
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "get", "t/kv/a", "--print-value-only", NULL), 0);
    assert_string_equal(out, "v 1\n");
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", "t/kv/b", "from etcdctl", NULL), 0);
    assert_int_equal(etcd_range(c, "t/kv/", 1, 0, &r, &e), ETCD_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.kvs[0].key, "t/kv/a");
    assert_string_equal(r.kvs[0].value, "v 1");
    assert_int_equal(r.kvs[0].mod_revision, rev);
    assert_int_equal(r.kvs[0].create_revision, rev);
    assert_int_equal(r.kvs[0].version, 1);
    assert_string_equal(r.kvs[1].key, "t/kv/b");
    assert_string_equal(r.kvs[1].value, "from etcdctl");
    assert_int_equal(r.kvs[1].mod_revision, rev + 1);
    assert_int_equal(r.revision, rev + 1);
    etcd_range_result_release(&r);

    /* one key, not the prefix; a limit */
    assert_int_equal(etcd_range(c, "t/kv/", 0, 0, &r, &e), ETCD_OK);
    assert_int_equal(r.n, 0);
    etcd_range_result_release(&r);
    assert_int_equal(etcd_range(c, "t/kv/", 1, 1, &r, &e), ETCD_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.more, 1);
    etcd_range_result_release(&r);

    /* a value with NULs and newlines, and an overwrite */
    assert_int_equal(etcd_put(c, "t/kv/a", "x\0y\n", 4, &rev2, &e), ETCD_OK);
    assert_true(rev2 > rev);
    assert_int_equal(etcd_range(c, "t/kv/a", 0, 0, &r, &e), ETCD_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kvs[0].value_len, 4);
    assert_memory_equal(r.kvs[0].value, "x\0y\n", 4);
    assert_int_equal(r.kvs[0].version, 2);
    assert_int_equal(r.kvs[0].mod_revision, rev2);
    etcd_range_result_release(&r);

    /* an answer over the client's cap is refused, not truncated */
    {
        const char *eps[] = { plain.url };
        etcd_config small = { .endpoints = eps, .n_endpoints = 1, .max_body = 300 };
        etcd_client *sc = NULL;
        char v[400];
        memset(v, 'x', sizeof(v));
        assert_int_equal(etcd_put(c, "t/kv/b", v, sizeof(v), NULL, &e), ETCD_OK);
        assert_int_equal(etcd_client_new(&small, &sc, &e), ETCD_OK);
        assert_int_equal(etcd_range(sc, "t/kv/b", 0, 0, &r, &e), ETCD_ETOOBIG);
        assert_contains(e.message, "larger than 300 bytes");
        assert_null(r.kvs);
        assert_int_equal(etcd_range(sc, "t/kv/a", 0, 0, &r, &e), ETCD_OK);
        etcd_range_result_release(&r);
        etcd_client_free(sc);
    }

    assert_int_equal(etcd_delete(c, "t/kv/", 1, &del, &rev, &e), ETCD_OK);
    assert_int_equal(del, 2);
    assert_int_equal(rev, rev2 + 2);
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "get", "--prefix", "t/kv/", NULL), 0);
    assert_string_equal(out, "");
    assert_int_equal(etcd_delete(c, "t/kv/a", 0, &del, NULL, &e), ETCD_OK);
    assert_int_equal(del, 0);

    /* etcd's own refusal keeps its code and message: a value over the
     * server's 1.5 MiB request limit */
    {
        size_t n = 2u << 20;
        char *big = malloc(n);
        assert_non_null(big);
        memset(big, 'v', n);
        assert_int_equal(etcd_put(c, "t/kv/big", big, n, NULL, &e), ETCD_EHTTP);
        free(big);
        assert_int_equal(e.rc, ETCD_EHTTP);
        assert_true(e.http_code >= 400);
        assert_true(e.grpc_code != 0);
        assert_contains(e.message, "larger than max");
        fprintf(stderr, "# oversized put: HTTP %ld, gRPC code %d, \"%s\"\n", e.http_code,
                e.grpc_code, e.message);
    }
    etcd_client_free(c);
}

/* A watch sees etcdctl's put within 1 s, and a delete; stop is prompt. */
static void test_watch_etcdctl(void **state)
{
    struct watcher *w = watch_start(&plain, "t/w/", 0);
    char out[256];
    double t0, dt;
    (void)state;

    settle();
    t0 = test_now();
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", "t/w/x", "1", NULL), 0);
    assert_int_equal(watch_wait(w, 1, 1.0), 1);
    dt = w->ev[0].t - t0;
    assert_true(dt < 1.0 * test_slack());
    assert_int_equal(w->ev[0].type, ETCD_EVENT_PUT);
    assert_string_equal(w->ev[0].key, "t/w/x");
    assert_string_equal(w->ev[0].value, "1");
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "del", "t/w/x", NULL), 0);
    assert_int_equal(watch_wait(w, 2, 1.0), 2);
    assert_int_equal(w->ev[1].type, ETCD_EVENT_DELETE);
    assert_string_equal(w->ev[1].key, "t/w/x");
    assert_int_equal(w->ev[1].rev, w->ev[0].rev + 1);
    /* a key beside the prefix is not delivered */
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", "t/wx", "1", NULL), 0);
    usleep(200000);
    assert_int_equal(w->n, 2);
    assert_int_equal(w->errors, 0);
    dt = watch_stop(w);
    fprintf(stderr, "# etcd_client_stop -> watch returned: %.1f ms\n", dt * 1000);
    assert_true(dt < 0.5 * test_slack());
}

/*
 * Latency etcdctl put -> callback over 100 puts (etcdctl's own start-up
 * included), and our etcd_put -> callback; then 2 s of idle watch: no
 * request from the client, no gRPC call started in etcd, ~no CPU.
 */
static long grpc_started(void)
{
    CURL *h = curl_easy_init();
    char url[128];
    FILE *mem;
    char *buf = NULL;
    size_t len = 0;
    long total = -1;

    if (!h)
        return -1;
    mem = open_memstream(&buf, &len);
    snprintf(url, sizeof(url), "%s/metrics", plain.url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    if (mem && curl_easy_perform(h) == CURLE_OK) {
        fflush(mem);
        total = 0;
        for (char *p = buf; p && (p = strstr(p, "\ngrpc_server_started_total{")) != NULL; p++) {
            char *sp = strchr(p + 1, '}');
            if (sp)
                total += strtol(sp + 2, NULL, 10);
        }
    }
    if (mem)
        fclose(mem);
    free(buf);
    curl_easy_cleanup(h);
    return total;
}

static double thread_cpu(pthread_t th)
{
    clockid_t cid;
    struct timespec ts;
    if (pthread_getcpuclockid(th, &cid) || clock_gettime(cid, &ts))
        return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_watch_latency_and_idle(void **state)
{
    enum { N = 100 };
    struct watcher *w = watch_start(&plain, "t/lat/", 0);
    etcd_client *c = client(&plain);
    static double lat[N], own[N], run_s[N];
    char key[64], val[16], out[256];
    (void)state;

    settle();
    for (int i = 0; i < N; i++) {
        double t0;
        snprintf(key, sizeof(key), "t/lat/k%d", i % 5);
        snprintf(val, sizeof(val), "%d", i);
        t0 = test_now();
        assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", key, val, NULL), 0);
        run_s[i] = test_now() - t0;
        assert_int_equal(watch_wait(w, i + 1, 2.0), i + 1);
        lat[i] = w->ev[i].t - t0;
        assert_string_equal(w->ev[i].value, val);
    }
    for (int i = 0; i < N; i++) {
        double t0 = test_now();
        snprintf(val, sizeof(val), "own%d", i);
        assert_int_equal(etcd_put(c, "t/lat/own", val, strlen(val), NULL, NULL), ETCD_OK);
        assert_int_equal(watch_wait(w, N + i + 1, 2.0), N + i + 1);
        own[i] = w->ev[N + i].t - t0;
    }
    qsort(lat, N, sizeof(lat[0]), cmp_double);
    qsort(own, N, sizeof(own[0]), cmp_double);
    qsort(run_s, N, sizeof(run_s[0]), cmp_double);
    fprintf(stderr, "# etcdctl put, the whole process (start to exit): p50 %.1f ms\n",
            run_s[N / 2] * 1000);
    fprintf(stderr, "# watch latency, etcdctl put (process start included) -> callback, %d puts: "
            "p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", N, lat[N / 2] * 1000,
            lat[N * 99 / 100] * 1000, lat[N - 1] * 1000);
    fprintf(stderr, "# watch latency, etcd_put -> callback, %d puts: p50 %.2f ms, p99 %.2f ms\n",
            N, own[N / 2] * 1000, own[N * 99 / 100] * 1000);
    assert_true(lat[N * 99 / 100] < 2.0 * test_slack());   /* a measurement; the 1 s rule is test_watch_etcdctl */
    assert_true(own[N * 99 / 100] < 1.0 * test_slack());

    /* idle */
    uint64_t req0 = etcd_client_requests(w->c);
    long g0 = grpc_started();
    double cpu0 = thread_cpu(w->th);
    usleep(2000000);
    uint64_t req1 = etcd_client_requests(w->c);
    long g1 = grpc_started();
    double cpu1 = thread_cpu(w->th);
    fprintf(stderr, "# idle watch, 2 s: %llu requests from the client, %ld gRPC calls started "
            "in etcd, %.2f ms CPU of the watch thread\n", (unsigned long long)(req1 - req0),
            g1 - g0, (cpu1 - cpu0) * 1000);
    assert_int_equal(req1, req0);
    assert_int_equal(req0, 1);          /* one watch request, ever */
    assert_true(g0 >= 0);
    assert_int_equal(g1, g0);
    assert_true(cpu1 - cpu0 < 0.1 * test_slack());
    assert_int_equal(w->errors, 0);
    etcd_client_free(c);
    watch_stop(w);
}

/* etcd stops and starts again (same port and data): no event lost or repeated. */
static void test_watch_survives_restart(void **state)
{
    struct watcher *w = watch_start(&plain, "t/r/", 0);
    char out[256];
    double t0;
    (void)state;

    settle();
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", "t/r/a", "1", NULL), 0);
    assert_int_equal(watch_wait(w, 1, 2.0), 1);
    assert_int_equal(w->opens, 0);      /* the first stream is not "open again" */
    server_stop(&plain);
    t0 = test_now();
    assert_int_equal(server_start(&plain), 0);
    fprintf(stderr, "# etcd restarted in %.2f s\n", test_now() - t0);
    /* at once, most likely before the watch is back */
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", "t/r/b", "2", NULL), 0);
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "put", "t/r/c", "3", NULL), 0);
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "del", "t/r/a", NULL), 0);
    assert_int_equal(watch_wait(w, 4, 10.0), 4);
    usleep(300000);
    assert_int_equal(w->n, 4);          /* nothing twice */
    assert_string_equal(w->ev[0].key, "t/r/a");
    assert_string_equal(w->ev[1].key, "t/r/b");
    assert_string_equal(w->ev[1].value, "2");
    assert_string_equal(w->ev[2].key, "t/r/c");
    assert_int_equal(w->ev[3].type, ETCD_EVENT_DELETE);
    assert_string_equal(w->ev[3].key, "t/r/a");
    for (int i = 1; i < 4; i++)
        assert_true(w->ev[i].rev == w->ev[i - 1].rev + 1);
    assert_true(w->errors >= 1);
    assert_true(w->opens >= 1);         /* told that it is open again */
    fprintf(stderr, "# watch reconnected after %d failed attempts\n", w->errors);
    watch_stop(w);
}

/* A watch from a compacted revision: reported, then the watch goes on. */
static void test_watch_compaction(void **state)
{
    etcd_client *c = client(&plain);
    struct watcher *w;
    int64_t first = 0, rev = 0;
    char out[256], revs[32];
    (void)state;

    assert_int_equal(etcd_put(c, "t/cmp/a", "1", 1, &first, NULL), ETCD_OK);
    assert_int_equal(etcd_put(c, "t/cmp/a", "2", 1, &rev, NULL), ETCD_OK);
    assert_int_equal(etcd_put(c, "t/cmp/a", "3", 1, &rev, NULL), ETCD_OK);
    snprintf(revs, sizeof(revs), "%lld", (long long)rev);
    assert_int_equal(etcdctl(&plain, out, sizeof(out), "compact", revs, NULL), 0);
    w = watch_start(&plain, "t/cmp/", first);
    assert_int_equal(watch_wait(w, 1, 2.0), 1);
    assert_int_equal(w->ev[0].type, ETCD_EVENT_COMPACTED);
    assert_int_equal(w->ev[0].compact, rev);
    assert_true(w->ev[0].rev >= rev);
    assert_int_equal(etcd_put(c, "t/cmp/a", "4", 1, &rev, NULL), ETCD_OK);
    assert_int_equal(watch_wait(w, 2, 2.0), 2);
    assert_int_equal(w->ev[1].type, ETCD_EVENT_PUT);
    assert_string_equal(w->ev[1].value, "4");
    assert_int_equal(w->ev[1].rev, rev);
    assert_int_equal(w->errors, 0);
    watch_stop(w);
    etcd_client_free(c);
}

/* TLS: the right CA (and a client certificate) works, a wrong CA is ETCD_ETLS. */
static void test_tls(void **state)
{
    etcd_client *c;
    etcd_range_result r;
    etcd_err e;
    char out[256];
    int rc;
    (void)state;

    if (!secure.pid) {
        assert_int_equal(server_init(&secure, "secure", 1), 0);
        assert_int_equal(server_start(&secure), 0);
    }
    c = client_for(&secure, ca_pem, ca_len, 1);
    assert_non_null(c);
    assert_int_equal(etcd_put(c, "t/tls", "secret-value", 12, NULL, &e), ETCD_OK);
    assert_int_equal(etcdctl(&secure, out, sizeof(out), "get", "t/tls", "--print-value-only", NULL), 0);
    assert_string_equal(out, "secret-value\n");
    assert_int_equal(etcd_range(c, "t/tls", 0, 0, &r, &e), ETCD_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.kvs[0].value, "secret-value");
    etcd_range_result_release(&r);
    etcd_client_free(c);

    /* a CA that did not sign the server's certificate */
    c = client_for(&secure, other_ca_pem, other_ca_len, 1);
    assert_int_equal(etcd_range(c, "t/tls", 0, 0, &r, &e), ETCD_ETLS);
    assert_int_equal(e.rc, ETCD_ETLS);
    fprintf(stderr, "# wrong CA: %s: %s\n", etcd_strerror(e.rc), e.message);
    assert_not_contains(e.message, "PRIVATE KEY");
    etcd_client_free(c);

    /* no CA: the system's trust anchors do not know our test CA */
    c = client_for(&secure, NULL, 0, 1);
    rc = etcd_range(c, "t/tls", 0, 0, &r, &e);
    fprintf(stderr, "# no CA (system trust anchors): %s: %s\n", etcd_strerror(rc), e.message);
    assert_int_equal(rc, ETCD_ETLS);
    etcd_client_free(c);

    /* the right CA but no client certificate: the server refuses us. With
     * TLS 1.3 the refusal comes after the client's handshake is done: its
     * alert is read (ETCD_ETLS) or the connection is already reset, which
     * looks like any reset (ETCD_EUNREACHABLE); both happen here. */
    c = client_for(&secure, ca_pem, ca_len, 0);
    rc = etcd_range(c, "t/tls", 0, 0, &r, &e);
    fprintf(stderr, "# no client certificate: %s: %s\n", etcd_strerror(rc), e.message);
    assert_true(rc == ETCD_ETLS || rc == ETCD_EUNREACHABLE);
    etcd_client_free(c);
    server_stop(&secure);
}

/* Nothing listens: unreachable at once; the next endpoint is then used. */
static void test_unreachable(void **state)
{
    char dead[64];
    const char *eps[] = { dead, plain.url };
    etcd_config cfg = { .endpoints = eps, .n_endpoints = 1, .connect_timeout_ms = 10000 };
    etcd_client *c = NULL;
    etcd_range_result r;
    etcd_err e;
    double t0;
    (void)state;

    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", free_port());
    assert_int_equal(etcd_client_new(&cfg, &c, &e), ETCD_OK);
    t0 = test_now();
    assert_int_equal(etcd_range(c, "k", 0, 0, &r, &e), ETCD_EUNREACHABLE);
    fprintf(stderr, "# unreachable endpoint: %.1f ms: %s\n", (test_now() - t0) * 1000, e.message);
    assert_true(test_now() - t0 < 1.0 * test_slack());     /* refused at once, not a 10 s timeout */
    assert_contains(e.message, dead);
    etcd_client_free(c);

    cfg.n_endpoints = 2;
    assert_int_equal(etcd_client_new(&cfg, &c, &e), ETCD_OK);
    assert_int_equal(etcd_put(c, "t/fail-over", "1", 1, NULL, &e), ETCD_OK);
    assert_int_equal(etcd_client_requests(c), 2);
    /* the endpoint that answered is kept */
    assert_int_equal(etcd_range(c, "t/fail-over", 0, 0, &r, &e), ETCD_OK);
    assert_int_equal(r.n, 1);
    etcd_range_result_release(&r);
    assert_int_equal(etcd_client_requests(c), 3);
    etcd_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_watch_etcdctl),
        cmocka_unit_test(test_watch_latency_and_idle),
        cmocka_unit_test(test_watch_compaction),
        cmocka_unit_test(test_watch_survives_restart),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
