/*
 * workqueue.c - the controller work queue (see workqueue.h).
 *
 * Every key the queue knows has one item, found through a chained hash
 * table. An item exists while it is dirty (wants processing), being
 * processed, waiting for a delayed add, or has a non-zero failure count;
 * it is freed as soon as none of these holds. Ready items (dirty and not
 * being processed) sit on a FIFO list threaded through the items, so
 * queueing never allocates; waiting items sit in a binary min-heap ordered
 * by (ready_at, sequence), each item remembering its heap index so an
 * earlier add can move it up and a plain add can take it out.
 *
 * Invariants (checked by assertions in debug builds):
 *  - on the ready list  <=>  dirty && !processing;
 *  - dirty  =>  not waiting (a ready key needs no delayed add);
 *  - nready is the length of the ready list, nitems the number of items.
 *
 * One mutex guards everything; one condition variable (on CLOCK_MONOTONIC)
 * wakes getters: signalled for each key made ready and for a new earliest
 * waiting key, broadcast on shutdown and poke.
 */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "workqueue.h"

#define NOT_WAITING SIZE_MAX
#define MIN_BUCKETS 64
#define MIN_HEAP 16
#define MAX_WAIT_S 3600.0   /* longest single condvar wait; we re-check after */

struct wq_item {
    struct wq_item *hnext;       /* hash chain */
    struct wq_item *qnext;       /* ready list */
    size_t heap_idx;             /* index in q->heap, or NOT_WAITING */
    double ready_at;             /* when waiting: queue-clock time to be ready */
    uint64_t seq;                /* when waiting: order among equal ready_at */
    uint32_t hash;
    int failures;                /* add_rate_limited calls since forget */
    unsigned char dirty;         /* wants processing (ready, or re-added while processing) */
    unsigned char processing;    /* handed out by get, not yet done */
    char key[];                  /* NUL-terminated copy */
};

struct k8s_queue {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    k8s_clock clock;             /* clock.now NULL: CLOCK_MONOTONIC */

    double base_delay, max_delay;
    double qps;                  /* < 0: no token bucket */
    int burst;
    double tokens, last_refill;

    struct wq_item **buckets;    /* nbuckets (a power of two) chains */
    size_t nbuckets, nitems;

    struct wq_item *ready_head, *ready_tail;
    size_t nready;

    struct wq_item **heap;       /* nheap used of heap_cap */
    size_t nheap, heap_cap;
    uint64_t seq;

    int shutting_down;
};

/* ------------------------------------------------------------------ time */

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double queue_now(const k8s_queue *q)
{
    return q->clock.now ? q->clock.now(q->clock.ud) : monotonic_now();
}

/* Wait on q->cond (lock held) for at most seconds of real time (> 0). */
static void timed_wait(k8s_queue *q, double seconds)
{
    struct timespec ts;
    double whole;

    if (seconds > MAX_WAIT_S)
        seconds = MAX_WAIT_S;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    whole = (double)(time_t)seconds;
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cond, &q->mu, &ts);   /* ETIMEDOUT is fine */
}

/* ------------------------------------------------------------ hash table */

static uint32_t hash_key(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static struct wq_item *find(const k8s_queue *q, const char *key, uint32_t h)
{
    struct wq_item *e;
    for (e = q->buckets[h & (q->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Double the table when it is full; on ENOMEM keep the old one (the
 * chains just get longer), so this never fails. */
static void maybe_grow(k8s_queue *q)
{
    struct wq_item **nb;
    size_t n, i;

    if (q->nitems <= q->nbuckets || q->nbuckets > SIZE_MAX / 2 / sizeof(*nb))
        return;
    n = q->nbuckets * 2;
    nb = calloc(n, sizeof(*nb));
    if (!nb)
        return;
    for (i = 0; i < q->nbuckets; i++) {
        struct wq_item *e = q->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(q->buckets);
    q->buckets = nb;
    q->nbuckets = n;
}

/* A new idle item for key (hash h), linked into the table. */
static int item_create(k8s_queue *q, const char *key, uint32_t h,
                       struct wq_item **out)
{
    size_t len = strlen(key);
    struct wq_item *e;

    *out = NULL;
    if (len > SIZE_MAX - sizeof(*e) - 1)
        return K8S_ENOMEM;
    e = malloc(sizeof(*e) + len + 1);
    if (!e)
        return K8S_ENOMEM;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, len + 1);
    e->heap_idx = NOT_WAITING;
    e->hash = h;
    e->hnext = q->buckets[h & (q->nbuckets - 1)];
    q->buckets[h & (q->nbuckets - 1)] = e;
    q->nitems++;
    maybe_grow(q);
    *out = e;
    return K8S_OK;
}

/* Free e if nothing keeps it any more. */
static void maybe_release(k8s_queue *q, struct wq_item *e)
{
    struct wq_item **pp;

    if (e->dirty || e->processing || e->heap_idx != NOT_WAITING || e->failures)
        return;
    for (pp = &q->buckets[e->hash & (q->nbuckets - 1)]; *pp != e; pp = &(*pp)->hnext)
        assert(*pp);
    *pp = e->hnext;
    q->nitems--;
    free(e);
}

/* ------------------------------------------------------------ delay heap */

static int heap_less(const struct wq_item *a, const struct wq_item *b)
{
    if (a->ready_at != b->ready_at)
        return a->ready_at < b->ready_at;
    return a->seq < b->seq;
}

static void heap_set(k8s_queue *q, size_t i, struct wq_item *e)
{
    q->heap[i] = e;
    e->heap_idx = i;
}

static void sift_up(k8s_queue *q, size_t i)
{
    struct wq_item *e = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(e, q->heap[parent]))
            break;
        heap_set(q, i, q->heap[parent]);
        i = parent;
    }
    heap_set(q, i, e);
}

static void sift_down(k8s_queue *q, size_t i)
{
    struct wq_item *e = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->nheap)
            break;
        if (c + 1 < q->nheap && heap_less(q->heap[c + 1], q->heap[c]))
            c++;
        if (!heap_less(q->heap[c], e))
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, e);
}

/* Room for one more waiting item; leaves the heap as it was on failure. */
static int heap_reserve(k8s_queue *q)
{
    struct wq_item **nh;
    size_t ncap;

    if (q->nheap < q->heap_cap)
        return K8S_OK;
    if (q->heap_cap > SIZE_MAX / 2 / sizeof(*nh))
        return K8S_ENOMEM;
    ncap = q->heap_cap ? q->heap_cap * 2 : MIN_HEAP;
    nh = realloc(q->heap, ncap * sizeof(*nh));
    if (!nh)
        return K8S_ENOMEM;
    q->heap = nh;
    q->heap_cap = ncap;
    return K8S_OK;
}

/* Insert e (not waiting) to be ready at t; room must have been reserved. */
static void heap_push(k8s_queue *q, struct wq_item *e, double t)
{
    assert(e->heap_idx == NOT_WAITING && q->nheap < q->heap_cap);
    e->ready_at = t;
    e->seq = q->seq++;
    q->heap[q->nheap] = e;
    e->heap_idx = q->nheap++;
    sift_up(q, e->heap_idx);
}

static void heap_remove(k8s_queue *q, struct wq_item *e)
{
    size_t i = e->heap_idx;
    struct wq_item *last;

    assert(i < q->nheap && q->heap[i] == e);
    e->heap_idx = NOT_WAITING;
    last = q->heap[--q->nheap];
    if (last == e)
        return;
    heap_set(q, i, last);
    if (i > 0 && heap_less(last, q->heap[(i - 1) / 2]))
        sift_up(q, i);
    else
        sift_down(q, i);
}

/* ------------------------------------------------------------ ready list */

/* client-go's Add on a known item: drop any delayed add, mark dirty, queue
 * unless it is being processed (done() queues it then). */
static void mark_ready(k8s_queue *q, struct wq_item *e)
{
    if (e->heap_idx != NOT_WAITING)
        heap_remove(q, e);
    if (e->dirty)
        return;
    e->dirty = 1;
    if (e->processing)
        return;
    e->qnext = NULL;
    if (q->ready_tail)
        q->ready_tail->qnext = e;
    else
        q->ready_head = e;
    q->ready_tail = e;
    q->nready++;
    pthread_cond_signal(&q->cond);
}

static struct wq_item *ready_pop(k8s_queue *q)
{
    struct wq_item *e = q->ready_head;
    if (!e)
        return NULL;
    q->ready_head = e->qnext;
    if (!q->ready_head)
        q->ready_tail = NULL;
    e->qnext = NULL;
    q->nready--;
    return e;
}

/* Make every waiting item whose time has come ready. */
static void promote(k8s_queue *q, double now)
{
    while (q->nheap && q->heap[0]->ready_at <= now)
        mark_ready(q, q->heap[0]);
}

/* ---------------------------------------------------------- rate limiter */

/* Per-key backoff: base * 2^failures, capped (doubling is exact). */
static double backoff_delay(const k8s_queue *q, int failures)
{
    double d = q->base_delay;
    int i;
    for (i = 0; i < failures && d < q->max_delay; i++)
        d *= 2;
    return d < q->max_delay ? d : q->max_delay;
}

/* The token bucket's delay for one more token at now, without taking it:
 * *tokens is what the bucket holds after taking it (negative: owed). */
static double bucket_delay(const k8s_queue *q, double now, double *tokens)
{
    double elapsed = now - q->last_refill;

    *tokens = q->tokens;
    if (q->qps < 0)
        return 0;
    if (elapsed > 0)
        *tokens += elapsed * q->qps;
    if (*tokens > (double)q->burst)
        *tokens = (double)q->burst;
    *tokens -= 1;
    return *tokens >= 0 ? 0 : -*tokens / q->qps;
}

/* ------------------------------------------------------------------- API */

int k8s_queue_new(const k8s_queue_opts *opts, k8s_queue **out)
{
    k8s_queue_opts o = { 0 };
    k8s_queue *q = NULL;
    pthread_condattr_t ca;
    int rc = K8S_ENOMEM, have_mu = 0, have_cond = 0;

    if (!out)
        return K8S_EINVAL;
    *out = NULL;
    if (opts)
        o = *opts;
    if (isnan(o.base_delay) || isnan(o.max_delay) || isnan(o.qps) ||
        o.base_delay < 0 || o.max_delay < 0 || o.burst < 0 ||
        (o.clock && !o.clock->now))
        return K8S_EINVAL;

    q = calloc(1, sizeof(*q));
    if (!q)
        goto out;
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        goto out;
    have_mu = 1;
    if (pthread_condattr_init(&ca) != 0)
        goto out;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(&q->cond, &ca) == 0)
        have_cond = 1;
    pthread_condattr_destroy(&ca);
    if (!have_cond)
        goto out;
    q->buckets = calloc(MIN_BUCKETS, sizeof(*q->buckets));
    if (!q->buckets)
        goto out;
    q->nbuckets = MIN_BUCKETS;

    if (o.clock)
        q->clock = *o.clock;
    q->base_delay = o.base_delay > 0 ? o.base_delay : K8S_QUEUE_DEFAULT_BASE_DELAY;
    q->max_delay = o.max_delay > 0 ? o.max_delay : K8S_QUEUE_DEFAULT_MAX_DELAY;
    q->qps = o.qps != 0 ? o.qps : K8S_QUEUE_DEFAULT_QPS;
    q->burst = o.burst > 0 ? o.burst : K8S_QUEUE_DEFAULT_BURST;
    q->tokens = (double)q->burst;
    q->last_refill = queue_now(q);

    *out = q;
    q = NULL;
    rc = K8S_OK;
out:
    if (q) {
        free(q->buckets);
        if (have_cond)
            pthread_cond_destroy(&q->cond);
        if (have_mu)
            pthread_mutex_destroy(&q->mu);
        free(q);
    }
    return rc;
}

void k8s_queue_free(k8s_queue *q)
{
    size_t i;

    if (!q)
        return;
    for (i = 0; i < q->nbuckets; i++) {
        struct wq_item *e = q->buckets[i], *next;
        for (; e; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(q->buckets);
    free(q->heap);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/*
 * The three adds. delay <= 0 means now; rate_limited adds the rate
 * limiter's delay (and, on success only, takes a token and counts a
 * failure). Everything that can fail is done before anything is changed.
 */
static int enqueue(k8s_queue *q, const char *key, double delay, int rate_limited)
{
    struct wq_item *e;
    double now, tokens = 0, t;
    uint32_t h;
    int rc = K8S_OK, created = 0;

    if (!q || !key || !*key || isnan(delay))
        return K8S_EINVAL;
    pthread_mutex_lock(&q->mu);
    if (q->shutting_down) {
        rc = K8S_ESTOPPED;
        goto out;
    }
    h = hash_key(key);
    e = find(q, key, h);
    if (!e) {
        rc = item_create(q, key, h, &e);
        if (rc)
            goto out;
        created = 1;
    }
    now = queue_now(q);
    if (rate_limited) {
        double b = bucket_delay(q, now, &tokens);
        double k = backoff_delay(q, e->failures);
        delay = b > k ? b : k;
    }
    if (delay > 0 && !e->dirty && e->heap_idx == NOT_WAITING) {
        rc = heap_reserve(q);
        if (rc)
            goto out;
    }

    /* commit: nothing below fails */
    if (rate_limited) {
        if (e->failures < INT_MAX)
            e->failures++;
        if (q->qps >= 0) {
            q->tokens = tokens;
            if (now > q->last_refill)
                q->last_refill = now;
        }
    }
    if (delay <= 0) {
        mark_ready(q, e);
    } else if (!e->dirty) {   /* a ready key is earlier than any delay */
        t = now + delay;
        if (e->heap_idx == NOT_WAITING) {
            heap_push(q, e, t);
        } else if (t < e->ready_at) {
            e->ready_at = t;
            sift_up(q, e->heap_idx);
        }
        if (q->heap[0] == e)   /* a new earliest: getters recompute their wait */
            pthread_cond_signal(&q->cond);
    }
out:
    if (rc && created)
        maybe_release(q, e);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int k8s_queue_add(k8s_queue *q, const char *key)
{
    return enqueue(q, key, 0, 0);
}

int k8s_queue_add_after(k8s_queue *q, const char *key, double delay)
{
    return enqueue(q, key, delay, 0);
}

int k8s_queue_add_rate_limited(k8s_queue *q, const char *key)
{
    return enqueue(q, key, 0, 1);
}

void k8s_queue_forget(k8s_queue *q, const char *key)
{
    struct wq_item *e;

    if (!q || !key)
        return;
    pthread_mutex_lock(&q->mu);
    e = find(q, key, hash_key(key));
    if (e) {
        e->failures = 0;
        maybe_release(q, e);
    }
    pthread_mutex_unlock(&q->mu);
}

int k8s_queue_num_requeues(k8s_queue *q, const char *key)
{
    struct wq_item *e;
    int n = 0;

    if (!q || !key)
        return 0;
    pthread_mutex_lock(&q->mu);
    e = find(q, key, hash_key(key));
    if (e)
        n = e->failures;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* get and try_get. */
static int dequeue(k8s_queue *q, const char **key, int block)
{
    struct wq_item *e;
    double now;
    int rc = K8S_OK;

    if (!key)
        return K8S_EINVAL;
    *key = NULL;
    if (!q)
        return K8S_EINVAL;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->shutting_down) {
            rc = K8S_ESTOPPED;
            goto out;
        }
        now = queue_now(q);
        promote(q, now);
        e = ready_pop(q);
        if (e) {
            assert(e->dirty && !e->processing && e->heap_idx == NOT_WAITING);
            e->dirty = 0;
            e->processing = 1;
            *key = e->key;
            if (q->ready_head)   /* pass the wake-up on */
                pthread_cond_signal(&q->cond);
            goto out;
        }
        if (!block)
            goto out;
        if (q->nheap)
            timed_wait(q, q->heap[0]->ready_at - now);
        else
            pthread_cond_wait(&q->cond, &q->mu);
    }
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int k8s_queue_get(k8s_queue *q, const char **key)
{
    return dequeue(q, key, 1);
}

int k8s_queue_try_get(k8s_queue *q, const char **key)
{
    return dequeue(q, key, 0);
}

int k8s_queue_done(k8s_queue *q, const char *key)
{
    struct wq_item *e;
    int rc = K8S_OK;

    if (!q || !key)
        return K8S_EINVAL;
    pthread_mutex_lock(&q->mu);
    e = find(q, key, hash_key(key));
    if (!e || !e->processing) {
        rc = K8S_EINVAL;
        goto out;
    }
    e->processing = 0;
    if (e->dirty) {
        /* re-added while processing: queue it now (clear dirty so
         * mark_ready does the queueing) */
        e->dirty = 0;
        mark_ready(q, e);
    } else {
        maybe_release(q, e);
    }
out:
    pthread_mutex_unlock(&q->mu);
    return rc;
}

size_t k8s_queue_len(k8s_queue *q, size_t *waiting)
{
    size_t n;

    if (!q) {
        if (waiting)
            *waiting = 0;
        return 0;
    }
    pthread_mutex_lock(&q->mu);
    promote(q, queue_now(q));
    n = q->nready;
    if (waiting)
        *waiting = q->nheap;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void k8s_queue_shutdown(k8s_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->shutting_down = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

void k8s_queue_poke(k8s_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}
