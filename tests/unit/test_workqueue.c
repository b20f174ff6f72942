/*
 * test_workqueue.c - the controller work queue: dedupe, never two workers
 * on one key, dirty keys re-queued on done, exact backoff and token bucket
 * timings on a fake clock, delayed adds (order, earliest wins), shutdown,
 * concurrent workers, and allocation failures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "k8s.h"
#include "workqueue.h"
#include "failalloc.h"
#include "testutil.h"

/* ------------------------------------------------------------- helpers */

typedef struct fake_clock {
    pthread_mutex_t mu;
    double t;
} fake_clock;

static fake_clock fclock = { PTHREAD_MUTEX_INITIALIZER, 0 };

static double fake_now(void *ud)
{
    fake_clock *c = ud;
    double t;
    pthread_mutex_lock(&c->mu);
    t = c->t;
    pthread_mutex_unlock(&c->mu);
    return t;
}

static void clock_set(double t)
{
    pthread_mutex_lock(&fclock.mu);
    fclock.t = t;
    pthread_mutex_unlock(&fclock.mu);
}

static const k8s_clock fake = { fake_now, &fclock };

/* A queue on the fake clock, set to 0; opts may be NULL. */
static k8s_queue *fake_queue(const k8s_queue_opts *opts)
{
    k8s_queue_opts o = { 0 };
    k8s_queue *q = NULL;
    if (opts)
        o = *opts;
    o.clock = &fake;
    clock_set(0);
    assert_int_equal(k8s_queue_new(&o, &q), K8S_OK);
    assert_non_null(q);
    return q;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* try_get must give exactly this key (left being processed). */
static void expect_get(k8s_queue *q, const char *want)
{
    const char *key = NULL;
    assert_int_equal(k8s_queue_try_get(q, &key), K8S_OK);
    assert_non_null(key);
    assert_string_equal(key, want);
}

static void expect_nothing(k8s_queue *q)
{
    const char *key = (const char *)1;
    assert_int_equal(k8s_queue_try_get(q, &key), K8S_OK);
    assert_null(key);
}

/* get + done in one go. */
static void expect_get_done(k8s_queue *q, const char *want)
{
    expect_get(q, want);
    assert_int_equal(k8s_queue_done(q, want), K8S_OK);
}

static void expect_len(k8s_queue *q, size_t ready, size_t waiting)
{
    size_t w = 12345;
    assert_int_equal(k8s_queue_len(q, &w), ready);
    assert_int_equal(w, waiting);
}

/* --------------------------------------------------------------- basics */

static void test_new_opts(void **state)
{
    k8s_queue *q = (k8s_queue *)1;
    k8s_clock noclock = { NULL, NULL };
    k8s_queue_opts o = { 0 };
    (void)state;

    assert_int_equal(k8s_queue_new(NULL, &q), K8S_OK);
    k8s_queue_free(q);
    k8s_queue_free(NULL);
    assert_int_equal(k8s_queue_new(NULL, NULL), K8S_EINVAL);
    o.base_delay = -1;
    assert_int_equal(k8s_queue_new(&o, &q), K8S_EINVAL);
    assert_null(q);
    o.base_delay = 0;
    o.burst = -1;
    assert_int_equal(k8s_queue_new(&o, &q), K8S_EINVAL);
    o.burst = 0;
    o.clock = &noclock;
    assert_int_equal(k8s_queue_new(&o, &q), K8S_EINVAL);
    assert_null(q);
}

static void test_invalid_args(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    const char *key;
    (void)state;

    assert_int_equal(k8s_queue_add(q, NULL), K8S_EINVAL);
    assert_int_equal(k8s_queue_add(q, ""), K8S_EINVAL);
    assert_int_equal(k8s_queue_add_after(q, NULL, 1), K8S_EINVAL);
    assert_int_equal(k8s_queue_add_after(q, "a/b", NAN), K8S_EINVAL);
    assert_int_equal(k8s_queue_add_rate_limited(q, NULL), K8S_EINVAL);
    assert_int_equal(k8s_queue_try_get(q, NULL), K8S_EINVAL);
    assert_int_equal(k8s_queue_try_get(NULL, &key), K8S_EINVAL);
    assert_int_equal(k8s_queue_done(q, NULL), K8S_EINVAL);
    assert_int_equal(k8s_queue_num_requeues(q, NULL), 0);
    k8s_queue_forget(q, NULL);
    expect_len(q, 0, 0);
    k8s_queue_free(q);
}

static void test_dedupe(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    (void)state;

    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_add(q, "ns/b"), K8S_OK);
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    expect_len(q, 2, 0);
    /* FIFO, each once */
    expect_get_done(q, "ns/a");
    expect_get_done(q, "ns/b");
    expect_nothing(q);
    expect_len(q, 0, 0);
    /* once done and gone, the key can be queued again */
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    expect_get_done(q, "ns/a");
    k8s_queue_free(q);
}

static void test_dirty_while_processing(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    const char *key;
    (void)state;

    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_add(q, "ns/b"), K8S_OK);
    assert_int_equal(k8s_queue_try_get(q, &key), K8S_OK);
    assert_string_equal(key, "ns/a");
    /* ns/a is being processed: adding it again does not make it ready */
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    expect_len(q, 1, 0);
    expect_get(q, "ns/b");
    expect_nothing(q);
    /* done with a different but equal string works; a is ready again, once */
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    expect_len(q, 1, 0);
    expect_get(q, "ns/a");
    expect_nothing(q);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_done(q, "ns/b"), K8S_OK);
    /* not re-added: gone for good */
    expect_nothing(q);
    expect_len(q, 0, 0);
    k8s_queue_free(q);
}

static void test_done_misuse(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    (void)state;

    assert_int_equal(k8s_queue_done(q, "ns/unknown"), K8S_EINVAL);
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    /* queued but not handed out: done is refused and changes nothing */
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_EINVAL);
    expect_len(q, 1, 0);
    expect_get(q, "ns/a");
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_EINVAL);
    expect_nothing(q);
    k8s_queue_free(q);
}

/* --------------------------------------------------------- rate limiting */

/* key must not be ready just before t and be ready at exactly t. */
static void expect_ready_at(k8s_queue *q, const char *key, double t)
{
    clock_set(t - 1e-6);
    expect_nothing(q);
    clock_set(t);
    expect_get(q, key);
}

static void test_backoff_sequence(void **state)
{
    k8s_queue_opts o = { .max_delay = 0.1 };
    k8s_queue *q = fake_queue(&o);
    const double want[] = { 0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1 };
    double t = 0;
    size_t i;
    (void)state;

    assert_int_equal(k8s_queue_num_requeues(q, "ns/a"), 0);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(k8s_queue_add_rate_limited(q, "ns/a"), K8S_OK);
        assert_int_equal(k8s_queue_num_requeues(q, "ns/a"), (int)i + 1);
        expect_len(q, 0, 1);
        expect_ready_at(q, "ns/a", t + want[i]);
        t += want[i];
        assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
        /* the failure count outlives processing */
        assert_int_equal(k8s_queue_num_requeues(q, "ns/a"), (int)i + 1);
    }
    /* forget resets the sequence (and frees the key: nothing else holds it) */
    k8s_queue_forget(q, "ns/a");
    assert_int_equal(k8s_queue_num_requeues(q, "ns/a"), 0);
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/a"), K8S_OK);
    expect_ready_at(q, "ns/a", t + 0.005);
    t += 0.005;
    /* forget while processing keeps the key handed out */
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/a"), K8S_OK);   /* count 2 */
    k8s_queue_forget(q, "ns/a");
    assert_int_equal(k8s_queue_num_requeues(q, "ns/a"), 0);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    /* the delayed add made while processing still comes, at t + 10 ms */
    expect_ready_at(q, "ns/a", t + 0.01);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    /* per key: another key starts at 5 ms */
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/b"), K8S_OK);
    expect_ready_at(q, "ns/b", t + 0.01 + 0.005);
    assert_int_equal(k8s_queue_done(q, "ns/b"), K8S_OK);
    k8s_queue_free(q);
}

static void test_backoff_default_cap(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    double t = 0;
    int i;
    (void)state;

    /* 5 ms * 2^17 = 655.36 s; the 19th failure would be 1310.72 s: capped.
     * Add, take, done without waiting: the delay is from each call's time. */
    for (i = 0; i < 25; i++) {
        double want = i < 18 ? 0.005 * (double)(1L << i) : 1000.0;
        assert_int_equal(k8s_queue_add_rate_limited(q, "ns/a"), K8S_OK);
        expect_ready_at(q, "ns/a", t + want);
        t += want;
        assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    }
    assert_int_equal(k8s_queue_num_requeues(q, "ns/a"), 25);
    k8s_queue_free(q);
}

static void test_token_bucket(void **state)
{
    k8s_queue *q = fake_queue(NULL);   /* 10 qps, burst 100 */
    char key[32];
    int i;
    (void)state;

    for (i = 0; i < 102; i++) {
        snprintf(key, sizeof(key), "ns/k%03d", i);
        assert_int_equal(k8s_queue_add_rate_limited(q, key), K8S_OK);
    }
    expect_len(q, 0, 102);
    clock_set(0.005);
    expect_len(q, 100, 2);   /* the burst: per-key 5 ms only */
    clock_set(0.1 - 1e-6);
    expect_len(q, 100, 2);
    clock_set(0.1);
    expect_len(q, 101, 1);   /* the 101st waits for a token: 0.1 s */
    clock_set(0.2 - 1e-6);
    expect_len(q, 101, 1);
    clock_set(0.2);
    expect_len(q, 102, 0);
    for (i = 0; i < 102; i++) {
        snprintf(key, sizeof(key), "ns/k%03d", i);
        expect_get_done(q, key);
    }
    /* 10 s later the bucket is full again (but no fuller than the burst) */
    clock_set(10.2);
    for (i = 0; i < 101; i++) {
        snprintf(key, sizeof(key), "ns/j%03d", i);
        assert_int_equal(k8s_queue_add_rate_limited(q, key), K8S_OK);
    }
    clock_set(10.2 + 0.005);
    expect_len(q, 100, 1);
    clock_set(10.3);
    expect_len(q, 101, 0);

    /* the max of both: a key with 6 failures (5 ms * 64 = 0.32 s) behind a
     * bucket delay of 0.1 s waits 0.32 s */
    k8s_queue_free(q);
    k8s_queue_opts o = { .burst = 1 };
    q = fake_queue(&o);
    for (i = 0; i < 6; i++) {
        assert_int_equal(k8s_queue_add_rate_limited(q, "ns/slow"), K8S_OK);
        clock_set(100.0 * (i + 1));
        expect_get_done(q, "ns/slow");
    }
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/other"), K8S_OK);  /* token */
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/slow"), K8S_OK);   /* 0.32 s */
    clock_set(600.1);
    expect_get_done(q, "ns/other");
    expect_nothing(q);
    expect_ready_at(q, "ns/slow", 600.0 + 0.005 * 64);
    assert_int_equal(k8s_queue_done(q, "ns/slow"), K8S_OK);
    k8s_queue_free(q);

    /* qps < 0: no bucket at all */
    o.qps = -1;
    q = fake_queue(&o);
    for (i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "ns/n%03d", i);
        assert_int_equal(k8s_queue_add_rate_limited(q, key), K8S_OK);
    }
    clock_set(0.005);
    expect_len(q, 300, 0);
    k8s_queue_free(q);
}

/* ---------------------------------------------------------- delayed adds */

static void test_add_after_order(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    (void)state;

    assert_int_equal(k8s_queue_add_after(q, "ns/a", 3), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/b", 1), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/c", 2), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/d", 2), K8S_OK);
    expect_len(q, 0, 4);
    expect_nothing(q);
    clock_set(1);
    expect_len(q, 1, 3);
    /* all due at once: by time, then by order of the adds */
    clock_set(5);
    expect_len(q, 4, 0);
    expect_get_done(q, "ns/b");
    expect_get_done(q, "ns/c");
    expect_get_done(q, "ns/d");
    expect_get_done(q, "ns/a");
    expect_nothing(q);
    /* delay <= 0 is a plain add */
    assert_int_equal(k8s_queue_add_after(q, "ns/e", 0), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/f", -3), K8S_OK);
    expect_len(q, 2, 0);
    expect_get_done(q, "ns/e");
    expect_get_done(q, "ns/f");
    k8s_queue_free(q);
}

static void test_add_after_earliest_wins(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    (void)state;

    /* a later request does not postpone an earlier one */
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 2), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 5), K8S_OK);
    expect_len(q, 0, 1);
    expect_ready_at(q, "ns/a", 2);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    expect_len(q, 0, 0);   /* the 5 s request was merged, not kept */

    /* an earlier request brings it forward */
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 10), K8S_OK);   /* 12 */
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 1), K8S_OK);    /* 3 */
    expect_len(q, 0, 1);
    expect_ready_at(q, "ns/a", 3);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    clock_set(20);
    expect_nothing(q);

    /* a plain add makes it ready now and drops the timer */
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 10), K8S_OK);
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    expect_len(q, 1, 0);
    expect_get_done(q, "ns/a");
    clock_set(40);
    expect_nothing(q);

    /* a ready key ignores a delayed add */
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 10), K8S_OK);
    expect_len(q, 1, 0);
    expect_get_done(q, "ns/a");
    clock_set(60);
    expect_nothing(q);
    k8s_queue_free(q);
}

static void test_add_after_while_processing(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    (void)state;

    /* requeue-after from inside the reconcile: comes after done, on time */
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    expect_get(q, "ns/a");
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 30), K8S_OK);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    expect_ready_at(q, "ns/a", 30);

    /* its time comes while it is still being processed: dirty, ready on done */
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 5), K8S_OK);   /* 35 */
    clock_set(40);
    expect_len(q, 0, 0);
    expect_nothing(q);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    expect_get(q, "ns/a");

    /* dirty while processing: a delayed add changes nothing */
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 5), K8S_OK);
    expect_len(q, 0, 0);
    assert_int_equal(k8s_queue_done(q, "ns/a"), K8S_OK);
    expect_get_done(q, "ns/a");
    clock_set(100);
    expect_nothing(q);
    k8s_queue_free(q);
}

/* Hundreds of waiting keys with ties, moved earlier and taken out of the
 * heap at random places: they come out by (time, first add). */
#define NMANY 600

typedef struct many_item {
    int id;
    double t;
    int removed;
} many_item;

static int many_cmp(const void *a, const void *b)
{
    const many_item *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->id - y->id;
}

static void test_many_delayed(void **state)
{
    static many_item it[NMANY];
    k8s_queue *q = fake_queue(NULL);
    unsigned seed = 12345;
    char key[32];
    size_t nremoved = 0;
    int i;
    (void)state;

    for (i = 0; i < NMANY; i++) {
        seed = seed * 1103515245u + 12345u;
        it[i].id = i;
        it[i].t = (double)(1 + (seed >> 16) % 200) / 100.0;   /* many ties */
        it[i].removed = 0;
        snprintf(key, sizeof(key), "ns/m%04d", i);
        assert_int_equal(k8s_queue_add_after(q, key, it[i].t), K8S_OK);
    }
    for (i = 0; i < NMANY; i += 7) {   /* earlier: moves up, keeps its place among ties */
        snprintf(key, sizeof(key), "ns/m%04d", i);
        it[i].t /= 2;
        assert_int_equal(k8s_queue_add_after(q, key, it[i].t), K8S_OK);
        assert_int_equal(k8s_queue_add_after(q, key, it[i].t * 3), K8S_OK);   /* no effect */
    }
    for (i = 3; i < NMANY; i += 11) {   /* ready now: out of the heap */
        snprintf(key, sizeof(key), "ns/m%04d", i);
        assert_int_equal(k8s_queue_add(q, key), K8S_OK);
        it[i].removed = 1;
        nremoved++;
    }
    expect_len(q, nremoved, NMANY - nremoved);
    for (i = 3; i < NMANY; i += 11) {
        snprintf(key, sizeof(key), "ns/m%04d", i);
        expect_get_done(q, key);
    }
    qsort(it, NMANY, sizeof(it[0]), many_cmp);
    clock_set(3);
    expect_len(q, NMANY - nremoved, 0);
    for (i = 0; i < NMANY; i++) {
        if (it[i].removed)
            continue;
        snprintf(key, sizeof(key), "ns/m%04d", it[i].id);
        expect_get_done(q, key);
    }
    expect_nothing(q);
    k8s_queue_free(q);
}

/* -------------------------------------------------------------- shutdown */

static void test_shutdown(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    const char *key = (const char *)1;
    (void)state;

    /* one key in every state, then shut down and free: nothing leaks */
    assert_int_equal(k8s_queue_add(q, "ns/processing"), K8S_OK);
    expect_get(q, "ns/processing");
    assert_int_equal(k8s_queue_add(q, "ns/ready"), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/waiting", 5), K8S_OK);
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/failed"), K8S_OK);
    k8s_queue_shutdown(q);
    k8s_queue_shutdown(q);   /* idempotent */
    /* stop taking work at once, even with keys ready */
    assert_int_equal(k8s_queue_try_get(q, &key), K8S_ESTOPPED);
    assert_null(key);
    key = (const char *)1;
    assert_int_equal(k8s_queue_get(q, &key), K8S_ESTOPPED);
    assert_null(key);
    /* adds are ignored */
    assert_int_equal(k8s_queue_add(q, "ns/new"), K8S_ESTOPPED);
    assert_int_equal(k8s_queue_add_after(q, "ns/new", 1), K8S_ESTOPPED);
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/failed"), K8S_ESTOPPED);
    assert_int_equal(k8s_queue_num_requeues(q, "ns/failed"), 1);
    expect_len(q, 1, 2);
    /* the worker still finishes its key */
    assert_int_equal(k8s_queue_add(q, "ns/processing"), K8S_ESTOPPED);
    assert_int_equal(k8s_queue_done(q, "ns/processing"), K8S_OK);
    k8s_queue_free(q);
}

/* A thread doing one k8s_queue_get (and done). Its state is guarded by a
 * mutex rather than atomics so helgrind can follow it too. */
typedef struct getter {
    k8s_queue *q;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, finished;
    int rc;                 /* read after getter_join */
    char key[64];           /* "" when get gave no key */
} getter;

static void *getter_main(void *arg)
{
    getter *g = arg;
    const char *key = NULL;
    int rc;

    pthread_mutex_lock(&g->mu);
    g->started = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    rc = k8s_queue_get(g->q, &key);
    pthread_mutex_lock(&g->mu);
    g->rc = rc;
    if (key)
        snprintf(g->key, sizeof(g->key), "%s", key);
    pthread_mutex_unlock(&g->mu);
    if (key)
        k8s_queue_done(g->q, key);
    pthread_mutex_lock(&g->mu);
    g->finished = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Start a getter and give it time to block. */
static void getter_start(getter *g, k8s_queue *q)
{
    memset(g, 0, sizeof(*g));
    g->q = q;
    g->rc = -1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    assert_int_equal(pthread_create(&g->th, NULL, getter_main, g), 0);
    pthread_mutex_lock(&g->mu);
    while (!g->started)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    sleep_s(0.05);
}

static int getter_finished(getter *g)
{
    int f;
    pthread_mutex_lock(&g->mu);
    f = g->finished;
    pthread_mutex_unlock(&g->mu);
    return f;
}

/* Wait up to seconds for the getter to finish, then join it; fail if it
 * does not (leaving the thread: the test has failed anyway). */
static void getter_join(getter *g, double seconds)
{
    struct timespec ts;
    int f;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)seconds + 1;
    pthread_mutex_lock(&g->mu);
    while (!g->finished && pthread_cond_timedwait(&g->cv, &g->mu, &ts) == 0)
        ;
    f = g->finished;
    pthread_mutex_unlock(&g->mu);
    assert_true(f);
    assert_int_equal(pthread_join(g->th, NULL), 0);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void test_shutdown_wakes_getter(void **state)
{
    k8s_queue *q;
    getter g[3];
    int i;
    (void)state;

    /* blocked with nothing at all, and with a key waiting far ahead */
    assert_int_equal(k8s_queue_new(NULL, &q), K8S_OK);
    assert_int_equal(k8s_queue_add_after(q, "ns/later", 3000), K8S_OK);
    for (i = 0; i < 3; i++)
        getter_start(&g[i], q);
    for (i = 0; i < 3; i++)
        assert_false(getter_finished(&g[i]));   /* still blocked */
    k8s_queue_shutdown(q);
    for (i = 0; i < 3; i++) {
        getter_join(&g[i], 2);
        assert_int_equal(g[i].rc, K8S_ESTOPPED);
        assert_string_equal(g[i].key, "");
    }
    k8s_queue_free(q);

    q = fake_queue(NULL);
    getter_start(&g[0], q);
    k8s_queue_shutdown(q);
    getter_join(&g[0], 2);
    assert_int_equal(g[0].rc, K8S_ESTOPPED);
    k8s_queue_free(q);
}

static void test_get_blocks(void **state)
{
    k8s_queue *q;
    getter g;
    const char *key;
    double t0;
    (void)state;

    /* real clock: a blocked get wakes for an add from another thread ... */
    assert_int_equal(k8s_queue_new(NULL, &q), K8S_OK);
    getter_start(&g, q);
    assert_false(getter_finished(&g));
    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    getter_join(&g, 2);
    assert_int_equal(g.rc, K8S_OK);
    assert_string_equal(g.key, "ns/a");

    /* ... and for a delayed key, not before its time */
    t0 = test_now();
    assert_int_equal(k8s_queue_add_after(q, "ns/b", 0.1), K8S_OK);
    assert_int_equal(k8s_queue_get(q, &key), K8S_OK);
    assert_string_equal(key, "ns/b");
    assert_true(test_now() - t0 >= 0.1);
    assert_true(test_now() - t0 < 2 * test_slack());
    assert_int_equal(k8s_queue_done(q, key), K8S_OK);

    /* a getter waiting for a far key picks up a nearer one added later */
    assert_int_equal(k8s_queue_add_after(q, "ns/far", 3000), K8S_OK);
    getter_start(&g, q);
    t0 = test_now();
    assert_int_equal(k8s_queue_add_after(q, "ns/near", 0.05), K8S_OK);
    getter_join(&g, 2);
    assert_int_equal(g.rc, K8S_OK);
    assert_string_equal(g.key, "ns/near");
    assert_true(test_now() - t0 >= 0.05);
    k8s_queue_free(q);
}

static void test_poke_fake_clock(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    getter g;
    (void)state;

    /* 1000 fake seconds: the getter sleeps up to that long in real time
     * unless poked after the clock moved */
    assert_int_equal(k8s_queue_add_after(q, "ns/a", 1000), K8S_OK);
    getter_start(&g, q);
    k8s_queue_poke(q);   /* clock not moved: back to sleep */
    sleep_s(0.05);
    assert_false(getter_finished(&g));
    clock_set(1000);
    k8s_queue_poke(q);
    getter_join(&g, 2);
    assert_int_equal(g.rc, K8S_OK);
    assert_string_equal(g.key, "ns/a");
    k8s_queue_free(q);
}

/* ------------------------------------------------------------ concurrency */

#define CKEYS 200
#define CWORKERS 4
#define CPRODUCERS 2
#define CROUNDS 30

typedef struct conc {
    k8s_queue *q;
    atomic_int inflight[CKEYS];
    atomic_long added[CKEYS];     /* producer adds started, per key */
    atomic_long seen[CKEYS];      /* added[] as read when processing began */
    atomic_long processed;
    atomic_long overlaps;         /* a key handed to two workers at once */
    atomic_long errors;           /* unexpected return codes */
} conc;

typedef struct conc_thread {
    conc *c;
    unsigned seed;
} conc_thread;

static void *producer_main(void *arg)
{
    conc_thread *t = arg;
    conc *c = t->c;
    char key[32];
    int r, i;

    for (r = 0; r < CROUNDS; r++) {
        for (i = 0; i < CKEYS; i++) {
            int k = (int)(rand_r(&t->seed) % CKEYS);
            snprintf(key, sizeof(key), "ns/c%03d", k);
            atomic_fetch_add(&c->added[k], 1);
            if (k8s_queue_add(c->q, key) != K8S_OK)
                atomic_fetch_add(&c->errors, 1);
            if (i % 16 == 0)   /* let the workers in now and then */
                sched_yield();
        }
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    conc_thread *t = arg;
    conc *c = t->c;
    const char *key;
    int k, rc;

    while ((rc = k8s_queue_get(c->q, &key)) == K8S_OK) {
        k = atoi(key + 4);
        if (atomic_fetch_add(&c->inflight[k], 1) != 0)
            atomic_fetch_add(&c->overlaps, 1);
        atomic_store(&c->seen[k], atomic_load(&c->added[k]));
        switch (rand_r(&t->seed) % 8) {
        case 0:   /* failed: retry later */
            if (k8s_queue_add_rate_limited(c->q, key) != K8S_OK)
                atomic_fetch_add(&c->errors, 1);
            break;
        case 1:   /* timed wait */
            if (k8s_queue_add_after(c->q, key, 0.001) != K8S_OK)
                atomic_fetch_add(&c->errors, 1);
            break;
        case 2:   /* changed again while we work */
            if (k8s_queue_add(c->q, key) != K8S_OK)
                atomic_fetch_add(&c->errors, 1);
            break;
        default:
            k8s_queue_forget(c->q, key);
            break;
        }
        sched_yield();
        atomic_fetch_sub(&c->inflight[k], 1);
        atomic_fetch_add(&c->processed, 1);
        if (k8s_queue_done(c->q, key) != K8S_OK)
            atomic_fetch_add(&c->errors, 1);
    }
    if (rc != K8S_ESTOPPED)
        atomic_fetch_add(&c->errors, 1);
    return NULL;
}

static int all_seen(conc *c)
{
    int k;
    for (k = 0; k < CKEYS; k++)
        if (atomic_load(&c->seen[k]) != atomic_load(&c->added[k]))
            return 0;
    return 1;
}

static void test_concurrent_workers(void **state)
{
    static conc c;
    k8s_queue_opts o = { .base_delay = 0.0001, .max_delay = 0.002, .qps = -1 };
    conc_thread pt[CPRODUCERS], wt[CWORKERS];
    pthread_t pth[CPRODUCERS], wth[CWORKERS];
    double deadline;
    int i, k;
    (void)state;

    memset(&c, 0, sizeof(c));
    assert_int_equal(k8s_queue_new(&o, &c.q), K8S_OK);
    for (i = 0; i < CWORKERS; i++) {
        wt[i].c = &c;
        wt[i].seed = 100u + (unsigned)i;
        assert_int_equal(pthread_create(&wth[i], NULL, worker_main, &wt[i]), 0);
    }
    for (i = 0; i < CPRODUCERS; i++) {
        pt[i].c = &c;
        pt[i].seed = 200u + (unsigned)i;
        assert_int_equal(pthread_create(&pth[i], NULL, producer_main, &pt[i]), 0);
    }
    for (i = 0; i < CPRODUCERS; i++)
        assert_int_equal(pthread_join(pth[i], NULL), 0);
    /* every add is followed by a processing that began after it */
    deadline = test_now() + 60;
    while (!all_seen(&c) && test_now() < deadline)
        sleep_s(0.01);
    k8s_queue_shutdown(c.q);
    for (i = 0; i < CWORKERS; i++)
        assert_int_equal(pthread_join(wth[i], NULL), 0);

    assert_int_equal(atomic_load(&c.overlaps), 0);
    assert_int_equal(atomic_load(&c.errors), 0);
    for (k = 0; k < CKEYS; k++) {
        assert_int_equal(atomic_load(&c.inflight[k]), 0);
        assert_int_equal(atomic_load(&c.seen[k]), atomic_load(&c.added[k]));
    }
    assert_true(atomic_load(&c.processed) >= CKEYS);
    k8s_queue_free(c.q);
}

/* ---------------------------------------------------- allocation failures */

static void test_alloc_new(void **state)
{
    k8s_queue *q;
    long n;
    int rc;
    (void)state;

    for (n = 1;; n++) {
        q = (k8s_queue *)1;
        failalloc_fail_at(n);
        rc = k8s_queue_new(NULL, &q);
        failalloc_fail_at(0);
        if (rc == K8S_OK) {
            k8s_queue_free(q);
            if (!failalloc_failed())
                break;
            continue;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_null(q);
    }
    assert_true(n > 1);
}

static void test_alloc_add(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    char key[32];
    long n;
    int i, rc;
    (void)state;

    assert_int_equal(k8s_queue_add(q, "ns/a"), K8S_OK);
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        rc = k8s_queue_add(q, "ns/b");
        failalloc_fail_at(0);
        if (rc == K8S_OK)
            break;
        assert_int_equal(rc, K8S_ENOMEM);
        expect_len(q, 1, 0);
    }
    assert_true(n > 1);
    expect_len(q, 2, 0);
    expect_get_done(q, "ns/a");
    expect_get_done(q, "ns/b");

    /* the 65th key grows the hash table: failing that is not an error */
    for (i = 0; i < 64; i++) {
        snprintf(key, sizeof(key), "ns/h%02d", i);
        assert_int_equal(k8s_queue_add(q, key), K8S_OK);
    }
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        rc = k8s_queue_add(q, "ns/h64");
        failalloc_fail_at(0);
        if (rc == K8S_OK && !failalloc_failed())
            break;
        if (rc == K8S_OK) {   /* the growth failed: the key is in all the same */
            expect_len(q, 65, 0);
            assert_int_equal(k8s_queue_add(q, "ns/h64"), K8S_OK);   /* still one */
            expect_len(q, 65, 0);
            for (i = 0; i < 65; i++) {
                snprintf(key, sizeof(key), "ns/h%02d", i);
                expect_get(q, key);
            }
            for (i = 0; i < 65; i++) {
                snprintf(key, sizeof(key), "ns/h%02d", i);
                assert_int_equal(k8s_queue_done(q, key), K8S_OK);
            }
            for (i = 0; i < 64; i++) {
                snprintf(key, sizeof(key), "ns/h%02d", i);
                assert_int_equal(k8s_queue_add(q, key), K8S_OK);
            }
            continue;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        expect_len(q, 64, 0);
    }
    expect_len(q, 65, 0);
    for (i = 0; i < 65; i++) {
        snprintf(key, sizeof(key), "ns/h%02d", i);
        expect_get_done(q, key);
    }
    k8s_queue_free(q);
}

static void test_alloc_add_after(void **state)
{
    k8s_queue *q = fake_queue(NULL);
    char key[32];
    long n;
    int i, rc;
    (void)state;

    /* a new key: the item, then the heap */
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        rc = k8s_queue_add_after(q, "ns/new", 5);
        failalloc_fail_at(0);
        if (rc == K8S_OK)
            break;
        assert_int_equal(rc, K8S_ENOMEM);
        expect_len(q, 0, 0);
    }
    assert_int_equal(n, 3);   /* both allocations were failed once */
    expect_len(q, 0, 1);

    /* a known key (being processed) with a full heap: only the heap grows */
    assert_int_equal(k8s_queue_add(q, "ns/p"), K8S_OK);
    expect_get(q, "ns/p");
    for (i = 1; i < 16; i++) {
        snprintf(key, sizeof(key), "ns/w%02d", i);
        assert_int_equal(k8s_queue_add_after(q, key, 10 + i), K8S_OK);
    }
    expect_len(q, 0, 16);
    failalloc_fail_at(1);
    assert_int_equal(k8s_queue_add_after(q, "ns/p", 1), K8S_ENOMEM);
    failalloc_fail_at(0);
    expect_len(q, 0, 16);
    assert_int_equal(k8s_queue_done(q, "ns/p"), K8S_OK);   /* not dirty: gone */
    clock_set(1);
    expect_nothing(q);
    assert_int_equal(k8s_queue_add(q, "ns/p"), K8S_OK);
    expect_get(q, "ns/p");
    assert_int_equal(k8s_queue_add_after(q, "ns/p", 1), K8S_OK);   /* at 2 */
    expect_len(q, 0, 17);
    assert_int_equal(k8s_queue_done(q, "ns/p"), K8S_OK);
    expect_ready_at(q, "ns/p", 2);
    assert_int_equal(k8s_queue_done(q, "ns/p"), K8S_OK);
    clock_set(100);
    expect_get_done(q, "ns/new");
    for (i = 1; i < 16; i++) {
        snprintf(key, sizeof(key), "ns/w%02d", i);
        expect_get_done(q, key);
    }
    expect_nothing(q);
    k8s_queue_free(q);
}

static void test_alloc_add_rate_limited(void **state)
{
    k8s_queue_opts o = { .burst = 1 };
    k8s_queue *q = fake_queue(&o);
    long n;
    int rc;
    (void)state;

    for (n = 1;; n++) {
        failalloc_fail_at(n);
        rc = k8s_queue_add_rate_limited(q, "ns/k");
        failalloc_fail_at(0);
        if (rc == K8S_OK)
            break;
        assert_int_equal(rc, K8S_ENOMEM);
        /* no failure counted, no key, no token taken */
        assert_int_equal(k8s_queue_num_requeues(q, "ns/k"), 0);
        expect_len(q, 0, 0);
    }
    assert_true(n > 1);
    assert_int_equal(k8s_queue_num_requeues(q, "ns/k"), 1);
    expect_len(q, 0, 1);
    /* only the successful call took the single token: the next one owes 0.1 s */
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/k2"), K8S_OK);
    clock_set(0.005);
    expect_get(q, "ns/k");
    expect_nothing(q);
    expect_ready_at(q, "ns/k2", 0.1);
    assert_int_equal(k8s_queue_done(q, "ns/k2"), K8S_OK);

    /* a known key (being processed, 1 failure) with a full heap */
    k8s_queue_forget(q, "ns/k2");
    clock_set(1000);   /* bucket full again */
    for (n = 0; n < 16; n++) {
        char key[32];
        snprintf(key, sizeof(key), "ns/w%02ld", n);
        assert_int_equal(k8s_queue_add_after(q, key, 50), K8S_OK);
    }
    failalloc_fail_at(1);
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/k"), K8S_ENOMEM);
    failalloc_fail_at(0);
    assert_int_equal(k8s_queue_num_requeues(q, "ns/k"), 1);
    expect_len(q, 0, 16);
    assert_int_equal(k8s_queue_add_rate_limited(q, "ns/k"), K8S_OK);
    assert_int_equal(k8s_queue_num_requeues(q, "ns/k"), 2);
    assert_int_equal(k8s_queue_done(q, "ns/k"), K8S_OK);
    expect_ready_at(q, "ns/k", 1000.0 + 0.01);   /* 5 ms * 2; the token was there */
    assert_int_equal(k8s_queue_done(q, "ns/k"), K8S_OK);
    k8s_queue_free(q);   /* 16 keys still waiting */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_opts),
        cmocka_unit_test(test_invalid_args),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_dirty_while_processing),
        cmocka_unit_test(test_done_misuse),
        cmocka_unit_test(test_backoff_sequence),
        cmocka_unit_test(test_backoff_default_cap),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_add_after_order),
        cmocka_unit_test(test_add_after_earliest_wins),
        cmocka_unit_test(test_add_after_while_processing),
        cmocka_unit_test(test_many_delayed),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_shutdown_wakes_getter),
        cmocka_unit_test(test_get_blocks),
        cmocka_unit_test(test_poke_fake_clock),
        cmocka_unit_test(test_concurrent_workers),
        cmocka_unit_test(test_alloc_new),
        cmocka_unit_test(test_alloc_add),
        cmocka_unit_test(test_alloc_add_after),
        cmocka_unit_test(test_alloc_add_rate_limited),
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
