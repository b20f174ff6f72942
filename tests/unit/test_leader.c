/*
 * test_leader.c - Lease leader election against a small fake API server on
 * loopback that keeps one Lease (GET, POST, PUT with resourceVersion
 * checks) and can answer late or not at all - what a real server cannot be
 * made to do on demand:
 *
 *  - a renewal whose answer comes late (the server stored it at once)
 *    counts from when it was sent: the leader never believes it leads more
 *    than renew_deadline after the last renewal the server stored, so it
 *    has stopped before anyone else may take over;
 *  - k8s_leader_release against a server that has stopped answering
 *    returns within one request timeout (the renewal in flight is cut
 *    short), so a shutdown stays within its deadline;
 *  - a clean release empties holderIdentity.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
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
#include "leader.h"
#include "testutil.h"

/* ------------------------------------------------------ the fake server */

static struct {
    int fd, port;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cJSON *lease;            /* NULL: 404 */
    long rv;
    double last_store;       /* monotonic time the last PUT/POST was stored */
    int stores;
    double reply_delay;      /* once: seconds before answering a PUT (after
                                storing it); then the server hangs */
    int hang;                /* answer nothing (until cleared or the end) */
    int ending;
    int conns_open;
} fk;

static int read_request(int fd, char *buf, size_t cap, char **body)
{
    size_t len = 0;
    char *end = NULL;
    long clen = 0;
    while (!end) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
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
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *body = end + 4;
    return 0;
}

static void reply(int fd, int code, const char *body)
{
    char head[256];
    const char *reason = code == 200 ? "OK" : code == 201 ? "Created" : code == 404 ? "Not Found" : "Conflict";
    snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             code, reason, strlen(body));
    send(fd, head, strlen(head), MSG_NOSIGNAL);
    send(fd, body, strlen(body), MSG_NOSIGNAL);
}

/* With mu held: wait until `until` (and while hang is set), or the end. */
static void wait_until_locked(double until)
{
    while (!fk.ending && (fk.hang || test_now() < until)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&fk.cv, &fk.mu, &ts);
    }
}

static void *conn_main(void *arg)
{
    int fd = (int)(long)arg;
    char buf[1 << 16];
    char *body;

    while (read_request(fd, buf, sizeof(buf), &body) == 0) {
        char *out = NULL;
        int code = 200;
        pthread_mutex_lock(&fk.mu);
        if (fk.hang) {
            wait_until_locked(0);
            pthread_mutex_unlock(&fk.mu);
            break;
        }
        if (strncmp(buf, "GET ", 4) == 0) {
            if (fk.lease)
                out = cJSON_PrintUnformatted(fk.lease);
            else
                code = 404;
        } else if (strncmp(buf, "POST ", 5) == 0 || strncmp(buf, "PUT ", 4) == 0) {
            int put = buf[1] == 'U';
            cJSON *in = cJSON_Parse(body);
            const char *rv = k8s_json_str(in, "metadata", "resourceVersion", NULL);
            char cur[32];
            snprintf(cur, sizeof(cur), "%ld", fk.rv);
            if (!in || (put && (!fk.lease || !rv || strcmp(rv, cur) != 0)) || (!put && fk.lease)) {
                code = 409;
                cJSON_Delete(in);
            } else {
                char nrv[32];
                snprintf(nrv, sizeof(nrv), "%ld", ++fk.rv);
                cJSON *md = cJSON_GetObjectItemCaseSensitive(in, "metadata");
                cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
                cJSON_AddStringToObject(md, "resourceVersion", nrv);
                cJSON_Delete(fk.lease);
                fk.lease = in;
                fk.last_store = test_now();
                fk.stores++;
                code = put ? 200 : 201;
                out = cJSON_PrintUnformatted(fk.lease);
                if (put && fk.reply_delay > 0) {
                    wait_until_locked(test_now() + fk.reply_delay);
                    fk.reply_delay = 0;
                    fk.hang = 1;
                }
            }
        }
        pthread_mutex_unlock(&fk.mu);
        reply(fd, code, out ? out : "{\"kind\":\"Status\",\"code\":0}");
        free(out);
    }
    close(fd);
    pthread_mutex_lock(&fk.mu);
    fk.conns_open--;
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(fk.fd, NULL, NULL);
        pthread_t th;
        if (c < 0)
            break;
        pthread_mutex_lock(&fk.mu);
        fk.conns_open++;
        pthread_mutex_unlock(&fk.mu);
        if (pthread_create(&th, NULL, conn_main, (void *)(long)c) == 0)
            pthread_detach(th);
    }
    return NULL;
}

static int setup(void **state)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    (void)state;
    memset(&fk, 0, sizeof(fk));
    pthread_mutex_init(&fk.mu, NULL);
    pthread_cond_init(&fk.cv, NULL);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fk.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fk.fd < 0 || bind(fk.fd, (struct sockaddr *)&a, sizeof(a)) || listen(fk.fd, 8))
        return -1;
    getsockname(fk.fd, (struct sockaddr *)&a, &al);
    fk.port = ntohs(a.sin_port);
    return pthread_create(&fk.th, NULL, accept_main, NULL);
}

static int teardown(void **state)
{
    (void)state;
    shutdown(fk.fd, SHUT_RDWR);
    close(fk.fd);
    pthread_join(fk.th, NULL);
    pthread_mutex_lock(&fk.mu);
    fk.ending = 1;
    pthread_cond_broadcast(&fk.cv);
    double until = test_now() + 10;
    while (fk.conns_open > 0 && test_now() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&fk.cv, &fk.mu, &ts);
    }
    pthread_mutex_unlock(&fk.mu);
    cJSON_Delete(fk.lease);
    pthread_mutex_destroy(&fk.mu);
    pthread_cond_destroy(&fk.cv);
    return 0;
}

static k8s_leader *leader(double lease, double deadline, double retry, const char *id)
{
    char url[64];
    k8s_config cfg = { 0 };
    k8s_leader_opts o = { .namespace = "ns", .name = "lock", .identity = id,
                          .lease_duration_s = lease, .renew_deadline_s = deadline,
                          .retry_period_s = retry };
    k8s_leader *l = NULL;
    k8s_err err;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fk.port);
    cfg.server = url;
    assert_int_equal(k8s_leader_new(&cfg, &o, &l, &err), K8S_OK);
    assert_int_equal(k8s_leader_start(l, &err), K8S_OK);
    return l;
}

static int wait_leading(k8s_leader *l, double timeout)
{
    double until = test_now() + timeout;
    while (!k8s_leader_is_leader(l) && test_now() < until)
        usleep(10 * 1000);
    return k8s_leader_is_leader(l);
}

/* ------------------------------------------------------------- the tests */

static void test_late_answer_counts_from_request(void **state)
{
    (void)state;
    k8s_leader *l = leader(3, 2, 0.5, "me");
    assert_true(wait_leading(l, 5));
    /* the next renewal is stored at once but answered 1 s later; then the
     * server stops answering: that renewal is the last one */
    pthread_mutex_lock(&fk.mu);
    fk.reply_delay = 1.0;
    pthread_mutex_unlock(&fk.mu);
    double end = test_now() + 4.5, worst = 0;
    int leading_seen = 0;
    while (test_now() < end) {
        pthread_mutex_lock(&fk.mu);
        double stored = fk.last_store;
        pthread_mutex_unlock(&fk.mu);
        if (k8s_leader_is_leader(l)) {
            leading_seen++;
            /* measured after the call: is_leader was true at most now */
            double since = test_now() - stored;
            if (since > worst)
                worst = since;
        }
        usleep(5 * 1000);
    }
    pthread_mutex_lock(&fk.mu);
    fk.hang = 0;             /* let the release through */
    pthread_cond_broadcast(&fk.cv);
    pthread_mutex_unlock(&fk.mu);
    printf("# leading up to %.3f s after the last stored renewal (deadline 2 s)\n", worst);
    assert_true(leading_seen > 0);
    /* never past the deadline counted from the server's store (small slack
     * for the poll itself) */
    if (worst > 2.0 + 0.05)
        fail_msg("believed it led %.3f s after the last renewal the server stored (deadline 2 s)", worst);
    k8s_leader_free(l);
}

static void test_release_with_hung_server_is_bounded(void **state)
{
    (void)state;
    k8s_leader *l = leader(15, 10, 0.3, "me");
    assert_true(wait_leading(l, 5));
    usleep(400 * 1000);
    pthread_mutex_lock(&fk.mu);
    fk.hang = 1;              /* accepts, reads, never answers */
    pthread_mutex_unlock(&fk.mu);
    usleep(500 * 1000);       /* a renewal is now in flight */
    double t0 = test_now();
    k8s_leader_release(l);
    double took = test_now() - t0;
    printf("# release with the server hung took %.2f s (request timeout 5 s)\n", took);
    /* the renewal in flight is cut short; only the release's own request
     * runs into the timeout */
    assert_true(took < 6.5);
    k8s_leader_free(l);
}

static void test_clean_release_empties_holder(void **state)
{
    (void)state;
    k8s_leader *l = leader(15, 10, 0.3, "me");
    assert_true(wait_leading(l, 5));
    k8s_leader_release(l);
    assert_false(k8s_leader_is_leader(l));
    pthread_mutex_lock(&fk.mu);
    assert_string_equal(k8s_json_str(fk.lease, "spec", "holderIdentity", NULL), "");
    pthread_mutex_unlock(&fk.mu);
    k8s_leader_free(l);
    /* a successor takes it at once, without waiting out the lease */
    k8s_leader *next = leader(15, 10, 0.3, "next");
    assert_true(wait_leading(next, 2));
    pthread_mutex_lock(&fk.mu);
    assert_string_equal(k8s_json_str(fk.lease, "spec", "holderIdentity", NULL), "next");
    pthread_mutex_unlock(&fk.mu);
    k8s_leader_free(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_late_answer_counts_from_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_with_hung_server_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_release_empties_holder, setup, teardown),
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
