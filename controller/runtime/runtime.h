/*
 * runtime.h - the generic controller runtime: it knows no kind.
 *
 * Each workflow registers a reconciler (a resource and a reconcile
 * function). The runtime keeps one informer per registered resource, one
 * work queue for all of them (a key is "<plural>/<namespace>/<name>" in the
 * queue, handed to the reconciler as "<namespace>/<name>"), one worker that
 * reconciles one key at a time, optional leader election, the Event
 * recorder, the health/metrics server, one-at-a-time slots, and secondary
 * watches on single objects (a Deployment a workflow keeps in shape) whose
 * changes re-queue the keys that asked for them.
 *
 * Threads: informers (enqueue), the elector, the health server, the worker
 * (reconcile, slots, watch registration) and the main thread (signals,
 * phase counts). Everything a reconciler calls here is for the worker.
 */
#ifndef TQU_RUNTIME_H
#define TQU_RUNTIME_H

#include <pthread.h>
#include "k8s.h"
#include "events.h"
#include "informer.h"
#include "leader.h"
#include "workqueue.h"
#include "metrics.h"
#include "options.h"

/* All of the project's kinds live in one API group. */
#define TQU_GROUP "upgrade.tianqing.io"
#define TQU_VERSION_API "v1alpha1"

typedef struct tqu_controller tqu_controller;

/* Result of one reconcile. */
typedef struct tqu_result {
    int error;               /* non-zero: retry with backoff */
    double requeue_after;    /* > 0: look again after this many seconds */
} tqu_result;

/* What a workflow gives the runtime (a static, registered from main.c). */
typedef struct tqu_reconciler {
    const char *kind;                 /* "TianqingUpgrade": messages */
    const k8s_resource *resource;     /* the custom resource it owns */
    /* Bring one object ("namespace/name") closer to its spec. */
    tqu_result (*reconcile)(tqu_controller *ctl, const struct tqu_reconciler *self, const char *key);
    /* Optional: the resources counted by status.phase, for /metrics. */
    void (*report_phases)(const tqu_phase_count *counts, size_t n);
    const void *workflow;             /* the engine's descriptor (opaque here) */
    /* Optional: stop the workflow's own threads that call tqu_requeue
     * (called once at shutdown, after the worker, before the queue goes). */
    void (*stop)(void);
    /* Optional, NULL-terminated: the workflow's labelled counters, shown
     * in /metrics from the start (before their first count). */
    const tqu_counter_family *const *metrics;
} tqu_reconciler;

struct tqu_kind;       /* one registered reconciler and its informer */
struct tqu_watch;      /* one secondary watch */
struct tqu_slot;       /* one one-at-a-time slot */

struct tqu_controller {
    const tqu_options *opts;
    const k8s_config *cfg;
    k8s_client *client;          /* the worker's client */
    k8s_recorder *recorder;
    k8s_queue *queue;
    k8s_leader *leader;          /* NULL without --leader-elect */
    char server_version[64];
    char identity[256];          /* holder of the workflows' claims (claim.c) */
    volatile int stopping;
    struct tqu_kind *kinds;      /* registered reconcilers */
    size_t nkinds;
    pthread_mutex_t watch_lock;  /* watches' owner lists (worker and informers) */
    struct tqu_watch *watches;
    struct tqu_slot *slots;      /* worker only */
};

/*
 * Whether this process may change anything now: always without leader
 * election; with it, only while the lease is held and fresh. Reconcile
 * code checks this before every write.
 */
int tqu_may_act(tqu_controller *ctl);

/* ---- the cache of a registered resource (any thread) ---- */

/* A deep copy of the cached object "namespace/name" of res, or NULL. */
cJSON *tqu_cache_get(tqu_controller *ctl, const k8s_resource *res, const char *key);
/* fn for every cached key ("namespace/name") of res. */
void tqu_cache_keys(tqu_controller *ctl, const k8s_resource *res,
                    void (*fn)(void *ud, const char *key), void *ud);
/* Queue one key of res now / every cached key of every registered kind. */
void tqu_requeue(tqu_controller *ctl, const k8s_resource *res, const char *key);
void tqu_requeue_all(tqu_controller *ctl);

/* ---- one-at-a-time slots (worker only) ----
 * A slot is a name ("upgrade"); at most one key holds it in this process.
 * A workflow asks before it acts and also looks at its cached resources
 * (a restarted controller has no claim in memory). */

/* The key holding slot, or NULL. */
const char *tqu_slot_holder(tqu_controller *ctl, const char *slot);
/* Claim slot for key (idempotent). 0, or -1 when another key holds it or
 * on out of memory (then the holder is left as it was). */
int tqu_slot_claim(tqu_controller *ctl, const char *slot, const char *key);
/* Release slot if key holds it; every key of every kind looks again. */
void tqu_slot_release(tqu_controller *ctl, const char *slot, const char *key);

/* ---- secondary watches (register from the worker) ----
 * A watch on one object (resource, namespace, name: narrowed by field
 * selector, so the cache holds one object whatever the cluster's size).
 * Any change to it re-queues its owners: (owner resource, owner key)
 * pairs. Idempotent per owner. Dropped when the last owner goes. */
int tqu_watch_object(tqu_controller *ctl, const k8s_resource *res, const char *ns, const char *name,
                     const k8s_resource *owner_res, const char *owner_key);
/* Remove an owner from every watch (its object was deleted). */
void tqu_watch_drop_owner(tqu_controller *ctl, const k8s_resource *owner_res, const char *owner_key);

/*
 * Run until SIGTERM/SIGINT (exit 0 after a clean shutdown within 30 s) or
 * until leadership is lost (exit 1), reconciling the n registered kinds.
 * Takes ownership of nothing: the caller still releases cfg and client.
 */
int tqu_controller_run(const tqu_options *opts, const k8s_config *cfg, k8s_client *client,
                       const char *server_version, const tqu_reconciler *const *recs, size_t n);

#endif
