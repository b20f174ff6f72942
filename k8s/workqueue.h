/*
 * workqueue.h - a controller work queue: client-go's rate-limited delaying
 * work queue, in C.
 *
 * Keys are strings ("namespace/name"; the queue copies them). A key is
 * queued at most once however often it is added, and a key being processed
 * (between k8s_queue_get and k8s_queue_done) is never handed to a second
 * worker: adding it again marks it dirty and it becomes ready once done.
 * On failure a worker re-adds its key with k8s_queue_add_rate_limited
 * (per-key exponential backoff combined with an overall token bucket) and
 * on success calls k8s_queue_forget; timed waits use k8s_queue_add_after.
 *
 * A worker loop:
 *
 *   const char *key;
 *   while (k8s_queue_get(q, &key) == K8S_OK) {
 *       if (reconcile(key) == 0)
 *           k8s_queue_forget(q, key);
 *       else
 *           k8s_queue_add_rate_limited(q, key);
 *       k8s_queue_done(q, key);       // key is invalid from here on
 *   }
 *
 * All functions are thread-safe (one mutex and one condition variable per
 * queue), except k8s_queue_free, which must come after every other thread
 * has stopped using the queue (shut down, then join the workers).
 *
 * Delayed keys are promoted when a getter (or k8s_queue_len) looks at the
 * queue; no background thread is involved.
 */
#ifndef K8S_WORKQUEUE_H
#define K8S_WORKQUEUE_H

#include <stddef.h>
#include "k8s.h"

/*
 * A clock in seconds, monotonic (never goes back). Tests pass a fake one;
 * now() is called with the queue's lock held, from any thread using the
 * queue, so it must be thread-safe and must not call back into the queue.
 */
typedef struct k8s_clock {
    double (*now)(void *ud);
    void *ud;
} k8s_clock;

typedef struct k8s_queue k8s_queue;

typedef struct k8s_queue_opts {
    double base_delay;       /* per-key backoff: base_delay * 2^failures;
                                0 = default 0.005 s; must not be negative */
    double max_delay;        /* per-key backoff cap; 0 = default 1000 s */
    double qps;              /* overall token bucket refill rate; 0 = default 10,
                                < 0 = no token bucket */
    int burst;               /* token bucket size; 0 = default 100 */
    const k8s_clock *clock;  /* NULL = CLOCK_MONOTONIC; copied */
} k8s_queue_opts;

#define K8S_QUEUE_DEFAULT_BASE_DELAY 0.005
#define K8S_QUEUE_DEFAULT_MAX_DELAY  1000.0
#define K8S_QUEUE_DEFAULT_QPS        10.0
#define K8S_QUEUE_DEFAULT_BURST      100

/*
 * Make a queue; opts may be NULL for the defaults. On success *out is the
 * queue (free with k8s_queue_free). Returns K8S_EINVAL for unusable opts
 * (negative delays or burst, NaN, a clock without now) or K8S_ENOMEM
 * (also when the mutex or condition variable cannot be made); *out is then
 * NULL.
 */
int k8s_queue_new(const k8s_queue_opts *opts, k8s_queue **out);

/*
 * Free the queue and every key still in it (ready, delayed, being
 * processed). Keys handed out by k8s_queue_get become invalid. No other
 * thread may be using or waiting on the queue. NULL is a no-op.
 */
void k8s_queue_free(k8s_queue *q);

/*
 * Make key ready now. A key already ready is not queued twice; a key being
 * processed is marked dirty and becomes ready when it is done. A pending
 * delayed add of the key is dropped (the key is ready now, the earliest
 * time). Returns K8S_OK, K8S_EINVAL (NULL or empty key), K8S_ENOMEM (the
 * queue is unchanged), or K8S_ESTOPPED after k8s_queue_shutdown (the key
 * is ignored).
 */
int k8s_queue_add(k8s_queue *q, const char *key);

/*
 * Make key ready after delay seconds (measured on the queue's clock).
 * delay <= 0 is k8s_queue_add. The earliest request wins: if the key is
 * already ready (or dirty while processing) this does nothing, and if it
 * is already waiting it becomes ready at the earlier of the two times.
 * A key being processed can wait too: when its time comes it is marked
 * dirty and becomes ready once done. Returns as k8s_queue_add, and
 * K8S_EINVAL for a NaN delay.
 */
int k8s_queue_add_after(k8s_queue *q, const char *key, double delay);

/*
 * k8s_queue_add_after(key, d), d being the larger of the key's backoff,
 * min(base_delay * 2^failures, max_delay), and the token bucket's delay
 * (every call takes a token; once the burst is spent a token comes every
 * 1/qps seconds). Then the key's failure count grows by one. On any error
 * the failure count and the bucket are unchanged.
 */
int k8s_queue_add_rate_limited(k8s_queue *q, const char *key);

/*
 * Reset key's failure count to 0 (call after processing it successfully).
 * Does not remove the key from the queue. Unknown keys are ignored.
 */
void k8s_queue_forget(k8s_queue *q, const char *key);

/* How many times key went through k8s_queue_add_rate_limited since it was
 * last forgotten (0 for unknown keys). */
int k8s_queue_num_requeues(k8s_queue *q, const char *key);

/*
 * Take the next ready key, blocking until there is one. On K8S_OK *key
 * points to the queue's own copy: do not free or change it; it stays valid
 * until k8s_queue_done for that key (or k8s_queue_free) and the key is
 * "being processed" until then. Once k8s_queue_shutdown has been called
 * it returns K8S_ESTOPPED at once, even when keys are still ready ("stop
 * taking work"), with *key NULL. Otherwise it only fails with K8S_EINVAL
 * (q or key NULL).
 *
 * With a fake clock, a getter waiting for a delayed key sleeps for the
 * remaining fake time in real time at most; call k8s_queue_poke after
 * moving the fake clock to have it look again at once.
 */
int k8s_queue_get(k8s_queue *q, const char **key);

/*
 * k8s_queue_get without blocking: K8S_OK with *key set, K8S_OK with *key
 * NULL when nothing is ready, or K8S_ESTOPPED (and *key NULL) after
 * shutdown.
 */
int k8s_queue_try_get(k8s_queue *q, const char **key);

/*
 * End processing of key (the string from k8s_queue_get or an equal one).
 * If it was added again meanwhile it becomes ready again. The string
 * handed out by k8s_queue_get is invalid afterwards. Returns K8S_OK, or
 * K8S_EINVAL (and changes nothing) when key is not being processed.
 */
int k8s_queue_done(k8s_queue *q, const char *key);

/*
 * The number of ready keys (the "queue depth" metric). *waiting (if not
 * NULL) gets the number of keys waiting for a delayed add. Delayed keys
 * whose time has come count as ready.
 */
size_t k8s_queue_len(k8s_queue *q, size_t *waiting);

/*
 * Stop the queue: wakes every blocked getter, which returns K8S_ESTOPPED,
 * as do later gets; later adds are ignored (K8S_ESTOPPED). Keys still
 * being processed may be done as usual. Idempotent.
 */
void k8s_queue_shutdown(k8s_queue *q);

/* Wake blocked getters so they read the clock again (after a fake clock
 * was moved on). Harmless otherwise. */
void k8s_queue_poke(k8s_queue *q);

#endif /* K8S_WORKQUEUE_H */
