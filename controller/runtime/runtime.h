/*
 * runtime.h - the controller's runtime: an informer on TianqingUpgrade
 * resources feeding a work queue, one worker that reconciles one key at a
 * time, optional leader election, Events, and the health/metrics server.
 * The reconcile function itself lives in reconcile.c.
 */
#ifndef TQU_CONTROLLER_H
#define TQU_CONTROLLER_H

#include "k8s.h"
#include "events.h"
#include "informer.h"
#include "leader.h"
#include "workqueue.h"
#include "options.h"

typedef struct tqu_controller {
    const tqu_options *opts;
    const k8s_config *cfg;
    k8s_client *client;          /* the worker's client */
    k8s_recorder *recorder;
    k8s_informer *informer;      /* TianqingUpgrade resources */
    k8s_queue *queue;
    k8s_leader *leader;          /* NULL without --leader-elect */
    char server_version[64];
    volatile int stopping;
    char *active_key;            /* holder of the one-upgrade slot (worker only) */
    struct tqu_cdn_watch {       /* watched cdn Deployments (worker only) */
        char *ns, *name;
        k8s_informer *inf;
    } cdn[4];
    int ncdn;
    unsigned long cache_changes; /* informer events seen (atomic): recount phases */
} tqu_controller;

/*
 * The one-upgrade-at-a-time slot. active_other: 1 if an upgrade other than
 * key holds it (this process's claim, or another resource whose status shows
 * it in progress), with who it is in who. claim/release by the worker.
 */
int tqu_controller_active_other(tqu_controller *ctl, const char *key, char *who, size_t len);
void tqu_controller_claim_slot(tqu_controller *ctl, const char *key);
void tqu_controller_release_slot(tqu_controller *ctl, const char *key);

/*
 * Keep a watch on one Deployment (by field selector, not the whole
 * cluster) so that a change to it re-queues every TianqingUpgrade: CdnTuning
 * stays in place after success. Idempotent; at most a few are kept.
 */
void tqu_controller_watch_cdn(tqu_controller *ctl, const char *ns, const char *name);
/* Stop and free those watches and the slot (at shutdown). */
void tqu_controller_release_watches(tqu_controller *ctl);

/*
 * Whether this process may change anything now: always without leader
 * election; with it, only while the lease is held and fresh. Reconcile
 * code checks this before every write.
 */
int tqu_may_act(tqu_controller *ctl);

/* Result of one reconcile. */
typedef struct tqu_result {
    int error;               /* non-zero: retry with backoff */
    double requeue_after;    /* > 0: look again after this many seconds */
} tqu_result;

/* reconcile.c: bring one TianqingUpgrade ("ns/name") closer to its spec. */
tqu_result tqu_reconcile(tqu_controller *ctl, const char *key);

/*
 * Run until SIGTERM/SIGINT (exit 0 after a clean shutdown within 30 s) or
 * until leadership is lost (exit 1). Takes ownership of nothing: the caller
 * still releases cfg and client afterwards.
 */
int tqu_controller_run(const tqu_options *opts, const k8s_config *cfg, k8s_client *client,
                       const char *server_version);

#endif
