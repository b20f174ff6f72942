/*
 * test_informer.c - k8s_informer against a real kube-apiserver and etcd
 * (tests/cluster/with-cluster.sh), under faults.
 *
 *  - Objects larger than 64 KiB (ConfigMaps of ~100 KiB) arrive whole,
 *    once, in order, each before the next is created (within 2 s: nothing
 *    waits for a following event to push it out); then MODIFIED and
 *    DELETED the same way.
 *  - etcd compacted at its head and the API server restarted while the
 *    informer's thread is held: the watch gets 410, the informer lists
 *    again and delivers only the difference: ADDED for the object created
 *    during the outage, DELETED for the one deleted, nothing for the
 *    unchanged ones (no duplicate ADDED).
 *  - The API server down for a few seconds: every failed list/watch is
 *    reported through on_error with its delay (0.8 s doubling, +/-20 %
 *    jitter, never below 0.64 s), and the informer recovers by itself: an
 *    object created after the server is back arrives within seconds.
 *  - A silent watch cut by the idle timeout is watched again at once, not
 *    reported as a failure.
 *
 * The fault tests restart the shared API server; they leave it running.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "k8s.h"
#include "informer.h"
#include "testutil.h"

#define BIG (100 * 1024)

/* Run argv (no shell); its stdout into out (NUL-terminated, may be NULL).
 * Returns the exit status, or -1. */
static int run(char *const argv[], char *out, size_t outlen)
{
    int p[2], status;
    size_t n = 0;
    pid_t pid;

    if (pipe(p))
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        char tmp[4096];
        ssize_t r = read(p[0], tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (out && n + 1 < outlen) {
            size_t k = (size_t)r < outlen - 1 - n ? (size_t)r : outlen - 1 - n;
            memcpy(out + n, tmp, k);
            n += k;
        }
    }
    if (out)
        out[n] = '\0';
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void cluster(const char *verb)
{
    char *argv[] = { (char *)test_env("TQU_CLUSTER_SH"), (char *)verb, (char *)test_env("TQU_CLUSTER_DIR"), NULL };
    if (run(argv, NULL, 0) != 0)
        fail_msg("cluster.sh %s failed", verb);
}

/* etcdctl compact <head revision> (ETCDCTL_* come from the cluster env). */
static void compact_etcd_at_head(void)
{
    static char out[65536];
    char rev[32];
    char *st[] = { "etcdctl", "endpoint", "status", "-w", "json", NULL };
    char *cp[] = { "etcdctl", "compact", rev, NULL };
    cJSON *j;
    assert_int_equal(run(st, out, sizeof(out)), 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    cJSON *hdr = k8s_json_get(cJSON_GetArrayItem(j, 0), "Status", "header", NULL);
    long long r = k8s_json_int(hdr, 0, "revision", NULL);
    cJSON_Delete(j);
    assert_true(r > 0);
    snprintf(rev, sizeof(rev), "%lld", r);
    assert_int_equal(run(cp, NULL, 0), 0);
}

static void make_namespace(k8s_client *c, char *ns, size_t len, const char *prefix)
{
    k8s_err err;
    snprintf(ns, len, "%s-%ld", prefix, (long)getpid());
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Namespace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "name", ns);
    int rc = k8s_create(c, &K8S_NAMESPACES, NULL, o, NULL, &err);
    cJSON_Delete(o);
    if (rc && !k8s_err_is(&err, "AlreadyExists"))
        fail_msg("create namespace %s: %s", ns, err.message);
}

/* The ~100 KiB value of object `seed`: a pattern that shows any byte lost,
 * doubled or moved. Caller frees. */
static char *big_value(int seed)
{
    char *v = malloc(BIG + 1);
    assert_non_null(v);
    for (int j = 0; j < BIG; j++)
        v[j] = (char)('a' + (j * 7 + seed * 13 + j / 1000) % 26);
    v[BIG] = '\0';
    return v;
}

static void put_configmap(k8s_client *c, const char *ns, const char *name, const char *value,
                          int replace)
{
    k8s_err err;
    cJSON *cm = cJSON_CreateObject(), *out = NULL;
    cJSON_AddStringToObject(cm, "apiVersion", "v1");
    cJSON_AddStringToObject(cm, "kind", "ConfigMap");
    cJSON *md = cJSON_AddObjectToObject(cm, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(md, "namespace", ns);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(cm, "data"), "k", value);
    int rc = replace ? k8s_replace(c, &K8S_CONFIGMAPS, ns, name, cm, &out, &err)
                     : k8s_create(c, &K8S_CONFIGMAPS, ns, cm, &out, &err);
    cJSON_Delete(cm);
    cJSON_Delete(out);
    if (rc)
        fail_msg("%s configmap %s/%s: %s", replace ? "replace" : "create", ns, name, err.message);
}

static void delete_configmap(k8s_client *c, const char *ns, const char *name)
{
    k8s_err err;
    if (k8s_delete(c, &K8S_CONFIGMAPS, ns, name, &err))
        fail_msg("delete configmap %s/%s: %s", ns, name, err.message);
}

/* ------------------------------------------------- what the informer saw */

struct seen_event {
    k8s_event_type type;
    char key[128];
    char *value;            /* data.k, owned */
    double at;
};

struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct seen_event ev[256];
    int n;
    int relists, restarts;
    int errors;
    double retry_in[64];
    char what[64][8];
    char error_msg[64][160];
    double error_at[64];
    /* the gate: an ADDED of this key holds the informer's thread */
    char gate_key[128];
    int gate_held, gate_open;
};

/* What the running test uses, for the teardown after a failed assertion. */
static struct seen *cur_seen;
static k8s_informer *cur_inf;

static void seen_init(struct seen *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    cur_seen = s;
}

static void seen_release(struct seen *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->ev[i].value);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static void on_event(void *ud, k8s_event_type type, const char *key, const cJSON *obj)
{
    struct seen *s = ud;
    const char *v = k8s_json_str(obj, "data", "k", NULL);
    pthread_mutex_lock(&s->mu);
    if (s->n < (int)(sizeof(s->ev) / sizeof(s->ev[0]))) {
        struct seen_event *e = &s->ev[s->n++];
        e->type = type;
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->value = v ? strdup(v) : NULL;
        e->at = test_now();
    }
    pthread_cond_broadcast(&s->cv);
    if (type == K8S_ADDED && s->gate_key[0] && strcmp(key, s->gate_key) == 0) {
        /* hold the informer's thread (inside the watch stream) until the
         * test opens the gate; 120 s at most so a failed test cannot hang */
        double until = test_now() + 120;
        s->gate_held = 1;
        pthread_cond_broadcast(&s->cv);
        while (!s->gate_open && test_now() < until) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        s->gate_held = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_relist(void *ud)
{
    struct seen *s = ud;
    pthread_mutex_lock(&s->mu);
    s->relists++;
    pthread_mutex_unlock(&s->mu);
}

static void on_restart(void *ud)
{
    struct seen *s = ud;
    pthread_mutex_lock(&s->mu);
    s->restarts++;
    pthread_mutex_unlock(&s->mu);
}

static void on_error(void *ud, const char *what, const k8s_err *err, double retry_in)
{
    struct seen *s = ud;
    pthread_mutex_lock(&s->mu);
    if (s->errors < 64) {
        snprintf(s->error_msg[s->errors], sizeof(s->error_msg[0]), "%s", err ? err->message : "");
        s->retry_in[s->errors] = retry_in;
        snprintf(s->what[s->errors], sizeof(s->what[0]), "%s", what);
        s->error_at[s->errors] = test_now();
    }
    s->errors++;
    pthread_mutex_unlock(&s->mu);
}

/* Wait until at least n events were seen; 1 if so. */
static int wait_events(struct seen *s, int n, double timeout)
{
    double until = test_now() + timeout;
    int ok;
    pthread_mutex_lock(&s->mu);
    while (s->n < n && test_now() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    ok = s->n >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static const char *type_name(k8s_event_type t)
{
    return t == K8S_ADDED ? "ADDED" : t == K8S_MODIFIED ? "MODIFIED" : "DELETED";
}

static void expect_event(struct seen *s, int i, k8s_event_type type, const char *key)
{
    pthread_mutex_lock(&s->mu);
    if (i >= s->n) {
        pthread_mutex_unlock(&s->mu);
        fail_msg("event %d (%s %s) never came", i, type_name(type), key);
    }
    struct seen_event e = s->ev[i];
    pthread_mutex_unlock(&s->mu);
    if (e.type != type || strcmp(e.key, key) != 0)
        fail_msg("event %d: want %s %s, got %s %s", i, type_name(type), key, type_name(e.type), e.key);
}

static k8s_informer *start_informer(const k8s_config *cfg, const char *ns, struct seen *s)
{
    k8s_err err;
    k8s_informer *inf = NULL;
    k8s_informer_opts o = {
        .resource = &K8S_CONFIGMAPS,
        .namespace = ns,
        .on_event = on_event,
        .ud = s,
        .on_watch_restart = on_restart,
        .on_relist = on_relist,
        .on_error = on_error,
    };
    if (k8s_informer_new(cfg, &o, &inf, &err) || k8s_informer_start(inf, &err))
        fail_msg("informer: %s", err.message);
    cur_inf = inf;
    assert_true(k8s_informer_wait_synced(inf, 30));
    return inf;
}

/* Stop the informer (joining its thread) and forget what it saw. */
static void finish(k8s_informer *inf, struct seen *s)
{
    k8s_informer_free(inf);
    cur_inf = NULL;
    seen_release(s);
    cur_seen = NULL;
}

/* After a failed assertion: open the gate, stop the thread, then free. */
static int teardown(void **state)
{
    (void)state;
    if (cur_seen) {
        pthread_mutex_lock(&cur_seen->mu);
        cur_seen->gate_open = 1;
        pthread_cond_broadcast(&cur_seen->cv);
        pthread_mutex_unlock(&cur_seen->mu);
    }
    if (cur_inf)
        k8s_informer_free(cur_inf);
    cur_inf = NULL;
    if (cur_seen)
        seen_release(cur_seen);
    cur_seen = NULL;
    return 0;
}

/* ------------------------------------------------ objects over 64 KiB */

static void test_large_objects_whole_once_in_order(void **state)
{
    k8s_config cfg;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    static struct seen s;   /* static: a failed assertion must not leave the
                               informer's thread writing to a dead frame */
    char ns[64], key[128], name[32];
    char *vals[3];
    (void)state;

    seen_init(&s);
    make_namespace(c, ns, sizeof(ns), "it-inf-big");
    k8s_informer *inf = start_informer(&cfg, ns, &s);
    assert_int_equal(s.n, 0);   /* a fresh namespace: nothing listed */

    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "big-%d", i);
        vals[i] = big_value(i);
        double t0 = test_now();
        put_configmap(c, ns, name, vals[i], 0);
        /* the event must come now, not when a later event pushes it out */
        if (!wait_events(&s, i + 1, 2.0))
            fail_msg("ADDED %s (%d bytes) did not arrive within 2 s of the create", name, BIG);
        snprintf(key, sizeof(key), "%s/%s", ns, name);
        expect_event(&s, i, K8S_ADDED, key);
        assert_non_null(s.ev[i].value);
        assert_int_equal(strlen(s.ev[i].value), BIG);
        assert_string_equal(s.ev[i].value, vals[i]);
        printf("# ADDED %s (%d KiB) after %.3f s\n", name, BIG / 1024, s.ev[i].at - t0);
    }
    /* modify the middle one: MODIFIED, whole, at once */
    char *v1b = big_value(42);
    put_configmap(c, ns, "big-1", v1b, 1);
    assert_true(wait_events(&s, 4, 2.0));
    snprintf(key, sizeof(key), "%s/big-1", ns);
    expect_event(&s, 3, K8S_MODIFIED, key);
    assert_string_equal(s.ev[3].value, v1b);
    /* the cache holds the new object whole */
    cJSON *got = k8s_informer_get(inf, key);
    assert_non_null(got);
    assert_string_equal(k8s_json_str(got, "data", "k", NULL), v1b);
    cJSON_Delete(got);
    /* delete the last one */
    delete_configmap(c, ns, "big-2");
    assert_true(wait_events(&s, 5, 2.0));
    snprintf(key, sizeof(key), "%s/big-2", ns);
    expect_event(&s, 4, K8S_DELETED, key);
    assert_string_equal(s.ev[4].value, vals[2]);   /* the last known state */
    assert_null(k8s_informer_get(inf, key));
    /* nothing more: each object exactly once */
    usleep(500 * 1000);
    assert_int_equal(s.n, 5);
    assert_int_equal(k8s_informer_size(inf), 2);

    finish(inf, &s);
    for (int i = 0; i < 3; i++)
        free(vals[i]);
    free(v1b);
    k8s_delete(c, &K8S_NAMESPACES, NULL, ns, NULL);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ---------------------- compaction at the head + API server restart */

static void test_relist_after_compaction_and_restart(void **state)
{
    k8s_config cfg;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    static struct seen s;   /* static: a failed assertion must not leave the
                               informer's thread writing to a dead frame */
    char ns[64], ka[128], kb[128], kc[128], kgate[128];
    (void)state;

    seen_init(&s);
    make_namespace(c, ns, sizeof(ns), "it-inf-relist");
    put_configmap(c, ns, "a", "a0", 0);
    put_configmap(c, ns, "b", "b0", 0);
    snprintf(ka, sizeof(ka), "%s/a", ns);
    snprintf(kb, sizeof(kb), "%s/b", ns);
    snprintf(kc, sizeof(kc), "%s/c", ns);
    snprintf(kgate, sizeof(kgate), "%s/gate", ns);
    snprintf(s.gate_key, sizeof(s.gate_key), "%s", kgate);

    k8s_informer *inf = start_informer(&cfg, ns, &s);
    assert_int_equal(s.n, 2);   /* the first list: a and b, once each */
    assert_int_equal(s.ev[0].type, K8S_ADDED);
    assert_int_equal(s.ev[1].type, K8S_ADDED);
    assert_int_equal(s.relists, 0);

    /* Hold the informer's thread inside its watch stream. */
    put_configmap(c, ns, "gate", "g", 0);
    assert_true(wait_events(&s, 3, 5));
    expect_event(&s, 2, K8S_ADDED, kgate);
    pthread_mutex_lock(&s.mu);
    assert_true(s.gate_held);
    pthread_mutex_unlock(&s.mu);

    /* The outage: the watch's connection dies with the server; meanwhile
     * c is created, b deleted, other writes happen, etcd is compacted at
     * its head and the server restarted, so no watch can resume: the
     * informer must list again. */
    cluster("restart-apiserver");
    put_configmap(c, ns, "c", "c0", 0);
    delete_configmap(c, ns, "b");
    for (int i = 0; i < 5; i++) {
        char v[16];
        snprintf(v, sizeof(v), "f%d", i);
        put_configmap(c, "default", "it-inf-filler", v, i > 0);
    }
    compact_etcd_at_head();
    cluster("restart-apiserver");

    /* Let the informer go on. */
    double t0 = test_now();
    pthread_mutex_lock(&s.mu);
    s.gate_open = 1;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);

    /* exactly: ADDED c, DELETED b (the relist's difference) */
    if (!wait_events(&s, 5, 30))
        fail_msg("after the restart only %d events (want 5); relists %d", s.n, s.relists);
    printf("# relisted and delivered the difference %.2f s after the thread was released\n",
           s.ev[4].at - t0);
    expect_event(&s, 3, K8S_ADDED, kc);
    expect_event(&s, 4, K8S_DELETED, kb);
    assert_string_equal(s.ev[4].value, "b0");
    /* on_relist comes after the difference has been delivered */
    double until = test_now() + 5;
    pthread_mutex_lock(&s.mu);
    while (s.relists < 1 && test_now() < until) {
        pthread_mutex_unlock(&s.mu);
        usleep(20 * 1000);
        pthread_mutex_lock(&s.mu);
    }
    assert_true(s.relists >= 1);
    pthread_mutex_unlock(&s.mu);
    /* nothing handled twice: no ADDED again for a or the gate */
    usleep(1000 * 1000);
    pthread_mutex_lock(&s.mu);
    int n = s.n;
    pthread_mutex_unlock(&s.mu);
    for (int i = 3; i < n; i++)
        if (strcmp(s.ev[i].key, ka) == 0 || strcmp(s.ev[i].key, kgate) == 0)
            fail_msg("event %d: %s %s delivered again after the relist", i, type_name(s.ev[i].type),
                     s.ev[i].key);
    assert_int_equal(n, 5);
    /* the cache is the server's state */
    assert_int_equal(k8s_informer_size(inf), 3);
    cJSON *got = k8s_informer_get(inf, kc);
    assert_non_null(got);
    cJSON_Delete(got);
    assert_null(k8s_informer_get(inf, kb));

    /* and it watches again: a change now arrives at once */
    put_configmap(c, ns, "a", "a1", 1);
    assert_true(wait_events(&s, 6, 5));
    expect_event(&s, 5, K8S_MODIFIED, ka);
    assert_string_equal(s.ev[5].value, "a1");

    finish(inf, &s);
    k8s_delete(c, &K8S_NAMESPACES, NULL, ns, NULL);
    k8s_delete(c, &K8S_CONFIGMAPS, "default", "it-inf-filler", NULL);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ------------------------------ API server down: backoff and recovery */

static void test_backoff_and_recovery_when_server_down(void **state)
{
    k8s_config cfg;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    static struct seen s;   /* static: a failed assertion must not leave the
                               informer's thread writing to a dead frame */
    char ns[64], key[128];
    (void)state;

    seen_init(&s);
    make_namespace(c, ns, sizeof(ns), "it-inf-down");
    k8s_informer *inf = start_informer(&cfg, ns, &s);

    cluster("stop-apiserver");
    double down = test_now();
    /* let it fail a few times: at about 0, 0.8 and 2.4 s (+/-20 %); it
     * fails again while the server starts (its port opens after ~1 s) */
    while (test_now() - down < 3.5)
        usleep(100 * 1000);
    cluster("start-apiserver");
    double back = test_now();

    put_configmap(c, ns, "after", "x", 0);
    snprintf(key, sizeof(key), "%s/after", ns);
    if (!wait_events(&s, 1, 40))
        fail_msg("no event within 40 s of the server being back (%d errors)", s.errors);
    expect_event(&s, 0, K8S_ADDED, key);
    printf("# server back after %.1f s down; object created afterwards seen %.2f s after the server was ready\n",
           back - down, s.ev[0].at - back);

    pthread_mutex_lock(&s.mu);
    int errors = s.errors < 64 ? s.errors : 64;
    printf("# %d failures reported, delays:", s.errors);
    for (int i = 0; i < errors; i++)
        printf(" %s %.3f", s.what[i], s.retry_in[i]);
    printf("\n");
    /* at least three failures while down, every delay in [0.64, 30] and
     * about doubling: each within the jitter of 2x the one before */
    assert_true(errors >= 3);
    for (int i = 0; i < errors; i++) {
        if (s.retry_in[i] < 0.8 * 0.8 - 1e-9 || s.retry_in[i] > 30)
            fail_msg("delay %d: %.3f s outside [0.64, 30]", i, s.retry_in[i]);
        if (i > 0 && s.error_at[i] - s.error_at[i - 1] < s.retry_in[i - 1] - 0.05)
            fail_msg("failure %d came %.3f s after the previous one, before its delay %.3f s",
                     i, s.error_at[i] - s.error_at[i - 1], s.retry_in[i - 1]);
    }
    for (int i = 1; i < errors && i < 4; i++) {
        double ratio = s.retry_in[i] / s.retry_in[i - 1];
        if (ratio < 2 * 0.8 / 1.2 - 1e-9 || ratio > 2 * 1.2 / 0.8 + 1e-9)
            fail_msg("delay %d / delay %d = %.2f: not about doubling", i, i - 1, ratio);
    }
    /* the first failure starts at the initial delay */
    assert_true(s.retry_in[0] <= 0.8 * 1.2 + 1e-9);
    pthread_mutex_unlock(&s.mu);

    /* A healthy watch (it delivers an event) resets the backoff: the next
     * outage starts again at 0.8 s, not where the last one ended. */
    put_configmap(c, ns, "tick", "x", 0);
    assert_true(wait_events(&s, 2, 5));
    pthread_mutex_lock(&s.mu);
    int e0 = s.errors;
    pthread_mutex_unlock(&s.mu);
    cluster("stop-apiserver");
    double until = test_now() + 5;
    pthread_mutex_lock(&s.mu);
    while (s.errors == e0 && test_now() < until) {
        pthread_mutex_unlock(&s.mu);
        usleep(50 * 1000);
        pthread_mutex_lock(&s.mu);
    }
    int e1 = s.errors;
    double first = e0 < 64 ? s.retry_in[e0] : 0;
    pthread_mutex_unlock(&s.mu);
    cluster("start-apiserver");
    assert_true(e1 > e0);
    printf("# second outage after a healthy watch: first delay %.3f s\n", first);
    pthread_mutex_lock(&s.mu);
    for (int i = 0; i < s.errors && i < 64; i++)
        printf("#   failure %d: %s in %.3f s: %.120s\n", i, s.what[i], s.retry_in[i], s.error_msg[i]);
    pthread_mutex_unlock(&s.mu);
    if (first > 0.8 * 1.2 + 1e-9)
        fail_msg("first delay of the second outage %.3f s: the backoff was not reset", first);

    finish(inf, &s);
    k8s_delete(c, &K8S_NAMESPACES, NULL, ns, NULL);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ----------------------------- a silent watch is cut, not a failure */

/* A quiet resource gets no bytes for minutes from a 1.20 server (bookmarks
 * only just before timeoutSeconds): the idle timeout ends the watch, and
 * the informer watches again at once, without reporting a failure or
 * backing off, and without delivering anything again. */
static void test_silent_watch_is_not_a_failure(void **state)
{
    k8s_config cfg;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    k8s_err err;
    static struct seen s;   /* static: a failed assertion must not leave the
                               informer's thread writing to a dead frame */
    char ns[64], key[128];
    k8s_informer *inf = NULL;
    (void)state;

    seen_init(&s);
    make_namespace(c, ns, sizeof(ns), "it-inf-quiet");
    put_configmap(c, ns, "there", "x", 0);
    k8s_informer_opts o = {
        .resource = &K8S_CONFIGMAPS, .namespace = ns, .on_event = on_event, .ud = &s,
        .on_watch_restart = on_restart, .on_relist = on_relist, .on_error = on_error,
        .idle_timeout_s = 2,
    };
    if (k8s_informer_new(&cfg, &o, &inf, &err) || k8s_informer_start(inf, &err))
        fail_msg("informer: %s", err.message);
    cur_inf = inf;
    assert_true(k8s_informer_wait_synced(inf, 30));
    usleep(7500 * 1000);   /* silent: cut after 2 s, three times or so */
    pthread_mutex_lock(&s.mu);
    printf("# 7.5 s silent: %d watch restarts, %d failures reported\n", s.restarts, s.errors);
    assert_true(s.restarts >= 2);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.relists, 0);
    assert_int_equal(s.n, 1);   /* the first list's ADDED only */
    pthread_mutex_unlock(&s.mu);
    /* still watching: a change arrives at once */
    put_configmap(c, ns, "later", "y", 0);
    assert_true(wait_events(&s, 2, 2.0));
    snprintf(key, sizeof(key), "%s/later", ns);
    expect_event(&s, 1, K8S_ADDED, key);

    finish(inf, &s);
    k8s_delete(c, &K8S_NAMESPACES, NULL, ns, NULL);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_large_objects_whole_once_in_order, teardown),
        cmocka_unit_test_teardown(test_relist_after_compaction_and_restart, teardown),
        cmocka_unit_test_teardown(test_backoff_and_recovery_when_server_down, teardown),
        cmocka_unit_test_teardown(test_silent_watch_is_not_a_failure, teardown),
    };
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
