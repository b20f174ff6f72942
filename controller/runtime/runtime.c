/*
 * runtime.c - the generic runtime around the registered reconcilers (see
 * runtime.h).
 *
 * Threads: one list/watch thread per informer (enqueue keys), the leader
 * election thread (with --leader-elect), the health server's thread, one
 * worker, and the main thread, which waits for a signal or for the
 * leadership to end. Nothing polls: the worker blocks on the queue, the
 * main thread in sigtimedwait.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "connect.h"
#include "runtime.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "runtime_int.h"

#define SHUTDOWN_DEADLINE_S 28
/* Of those, how long the current reconcile may take to finish; the rest
 * is for the Lease release (5 s request timeout) and the informer. */
#define WORKER_GRACE_S 10

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int tqu_may_act(tqu_controller *ctl)
{
    if (ctl->stopping)
        return 0;
    return !ctl->leader || k8s_leader_is_leader(ctl->leader);
}

/* One registered reconciler, its informer and its change count. */
struct tqu_kind {
    tqu_controller *ctl;
    const tqu_reconciler *rec;
    k8s_informer *informer;
    unsigned long changes;       /* informer events seen (atomic): recount phases */
    unsigned long counted;       /* main thread: changes at the last count */
    struct tqu_claim claim;      /* this process acts on the kind only while held */
};

static struct tqu_kind *kind_of(tqu_controller *ctl, const k8s_resource *res)
{
    for (size_t i = 0; i < ctl->nkinds; i++)
        if (ctl->kinds[i].rec->resource == res ||
            (!strcmp(ctl->kinds[i].rec->resource->plural, res->plural) &&
             !strcmp(ctl->kinds[i].rec->resource->group, res->group)))
            return &ctl->kinds[i];
    return NULL;
}

/* The queue's key of an object: "<plural>/<namespace>/<name>". */
static int queue_add(tqu_controller *ctl, const struct tqu_kind *k, const char *key, double after)
{
    char qk[640];
    if ((size_t)snprintf(qk, sizeof(qk), "%s/%s", k->rec->resource->plural, key) >= sizeof(qk))
        return K8S_EINVAL;
    return after > 0 ? k8s_queue_add_after(ctl->queue, qk, after) : k8s_queue_add(ctl->queue, qk);
}

cJSON *tqu_cache_get(tqu_controller *ctl, const k8s_resource *res, const char *key)
{
    struct tqu_kind *k = kind_of(ctl, res);
    return k && k->informer ? k8s_informer_get(k->informer, key) : NULL;
}

void tqu_cache_keys(tqu_controller *ctl, const k8s_resource *res,
                    void (*fn)(void *ud, const char *key), void *ud)
{
    struct tqu_kind *k = kind_of(ctl, res);
    if (k && k->informer)
        k8s_informer_keys(k->informer, fn, ud);
}

void tqu_requeue(tqu_controller *ctl, const k8s_resource *res, const char *key)
{
    struct tqu_kind *k = kind_of(ctl, res);
    if (k)
        queue_add(ctl, k, key, 0);
}

static void requeue_kind_key(void *ud, const char *key)
{
    struct tqu_kind *k = ud;
    queue_add(k->ctl, k, key, 0);
}

void tqu_requeue_all(tqu_controller *ctl)
{
    for (size_t i = 0; i < ctl->nkinds; i++)
        if (ctl->kinds[i].informer)
            k8s_informer_keys(ctl->kinds[i].informer, requeue_kind_key, &ctl->kinds[i]);
}

/* ---------------------------------------------------------- informer hooks */

static void on_event(void *ud, k8s_event_type type, const char *key, const cJSON *obj)
{
    struct tqu_kind *k = ud;
    tqu_controller *ctl = k->ctl;
    __atomic_add_fetch(&k->changes, 1, __ATOMIC_RELAXED);
    if (tqu_log_enabled(TQU_DEBUG))
        tqu_log(TQU_DEBUG, "watch event", "resource", k->rec->resource->plural, "key", key,
                "type", type == K8S_ADDED ? "ADDED" : type == K8S_MODIFIED ? "MODIFIED" : "DELETED", NULL);
    /* A change whose status already reflects its generation is (almost
     * always) our own status write coming back: reconciling it again would
     * loop. Timed progress (a running update.sh) is polled by requeue-after
     * instead. Spec changes bump the generation; so does a deletion. */
    if (type == K8S_MODIFIED && !k8s_json_get(obj, "metadata", "deletionTimestamp", NULL) &&
        k8s_json_int(obj, -1, "metadata", "generation", NULL) ==
            k8s_json_int(obj, -2, "status", "observedGeneration", NULL))
        return;
    int rc = queue_add(ctl, k, key, 0);
    if (rc && rc != K8S_ESTOPPED)
        tqu_log(TQU_ERROR, "could not queue a watch event; it is handled at the next resync",
                "key", key, "error", k8s_strerror(rc), NULL);
    tqu_metrics_set_queue_depth((long)k8s_queue_len(ctl->queue, NULL));
}

static void on_watch_restart(void *ud)
{
    tqu_metrics_watch_restart(((struct tqu_kind *)ud)->rec->resource->plural);
}

static void on_relist(void *ud)
{
    const char *plural = ((struct tqu_kind *)ud)->rec->resource->plural;
    /* counted before the log line: whoever reads the line sees the count */
    tqu_metrics_watch_relist(plural);
    tqu_log(TQU_INFO, "relisted after the watch expired", "resource", plural, NULL);
}

/* A failed list or watch: info, with the delay before the next try, so an
 * outage shows its backoff (0.8 s doubling to 30 s) in the log. */
static void on_informer_error(void *ud, const char *what, const k8s_err *err, double retry_in)
{
    char ebuf[1200], delay[32];
    snprintf(delay, sizeof(delay), "%.3f", retry_in);
    tqu_log(TQU_INFO, "list/watch failed; retrying", "resource", ((struct tqu_kind *)ud)->rec->resource->plural,
            "op", what, "error", k8s_err_str(err, ebuf, sizeof(ebuf)), "retryIn", delay, NULL);
}

/* ------------------------------------------------- resources by phase */

struct phase_tally {
    k8s_informer *inf;
    struct { char phase[64]; long count; } v[24];
    tqu_phase_count out[24];
    size_t n;
};

static void tally_key(void *ud, const char *key)
{
    struct phase_tally *t = ud;
    cJSON *obj = k8s_informer_get(t->inf, key);
    const char *p = obj ? k8s_json_str(obj, "status", "phase", NULL) : NULL;
    size_t i;

    if (!obj)
        return;
    if (!p)
        p = "";   /* counted as "unknown" */
    for (i = 0; i < t->n && strcmp(t->v[i].phase, p) != 0; i++)
        ;
    if (i == t->n && t->n < sizeof(t->v) / sizeof(t->v[0]))
        snprintf(t->v[t->n++].phase, sizeof(t->v[0].phase), "%s", p);
    if (i < t->n)   /* the CRD's phase enum keeps the distinct values far fewer */
        t->v[i].count++;
    cJSON_Delete(obj);
}

/* Count each kind's cached resources by status.phase for /metrics, when
 * its cache changed since the last count (the main thread, every few
 * seconds). */
static void count_phases(tqu_controller *ctl)
{
    for (size_t k = 0; k < ctl->nkinds; k++) {
        struct tqu_kind *kind = &ctl->kinds[k];
        unsigned long now = __atomic_load_n(&kind->changes, __ATOMIC_RELAXED);
        if (!kind->rec->report_phases || now == kind->counted || !k8s_informer_synced(kind->informer))
            continue;
        struct phase_tally *t = calloc(1, sizeof(*t));
        if (!t)
            return;
        kind->counted = now;
        t->inf = kind->informer;
        k8s_informer_keys(kind->informer, tally_key, t);
        for (size_t i = 0; i < t->n; i++)
            t->out[i] = (tqu_phase_count){ .phase = t->v[i].phase, .count = t->v[i].count };
        kind->rec->report_phases(t->out, t->n);
        free(t);
    }
}

/* ------------------------------------------------------------ the worker */

static void *worker(void *arg)
{
    tqu_controller *ctl = arg;
    const char *qkey;

    while (k8s_queue_get(ctl->queue, &qkey) == K8S_OK) {
        size_t waiting = 0;
        const char *slash = strchr(qkey, '/');
        struct tqu_kind *k = NULL;
        for (size_t i = 0; slash && i < ctl->nkinds; i++) {
            const char *pl = ctl->kinds[i].rec->resource->plural;
            if (strlen(pl) == (size_t)(slash - qkey) && !strncmp(pl, qkey, (size_t)(slash - qkey)))
                k = &ctl->kinds[i];
        }
        if (!k || !tqu_may_act(ctl) || (!ctl->leader && !tqu__claim_held(&k->claim))) {
            /* A standby drops the key: when it becomes the leader, or
             * claims the workflow, it queues every cached key again
             * (on_started_leading, on_claimed). */
            k8s_queue_done(ctl->queue, qkey);
            continue;
        }
        const char *key = slash + 1;
        double t0 = mono_now();
        if (tqu_log_enabled(TQU_DEBUG))
            tqu_log(TQU_DEBUG, "reconciling", "resource", k->rec->resource->plural, "key", key, NULL);
        tqu_result r = k->rec->reconcile(ctl, k->rec, key);
        double dt = mono_now() - t0;
        if (tqu_log_enabled(TQU_DEBUG)) {
            char secs[32];
            snprintf(secs, sizeof(secs), "%.3f", dt);
            tqu_log(TQU_DEBUG, "reconciled", "resource", k->rec->resource->plural, "key", key,
                    "result", r.error ? "error" : r.requeue_after > 0 ? "requeue" : "success",
                    "seconds", secs, NULL);
        }
        if (r.error) {
            tqu_metrics_reconcile("error", dt);
            k8s_queue_add_rate_limited(ctl->queue, qkey);
        } else {
            k8s_queue_forget(ctl->queue, qkey);
            if (r.requeue_after > 0) {
                tqu_metrics_reconcile("requeue", dt);
                k8s_queue_add_after(ctl->queue, qkey, r.requeue_after);
            } else {
                tqu_metrics_reconcile("success", dt);
            }
        }
        k8s_queue_done(ctl->queue, qkey);
        tqu_metrics_set_queue_depth((long)k8s_queue_len(ctl->queue, &waiting));
    }
    return NULL;
}

/* --------------------------------------------------------- health hooks */

static int hook_healthy(void *ud, char *why, size_t len)
{
    tqu_controller *ctl = ud;
    if (ctl->leader && k8s_leader_lost(ctl->leader)) {
        snprintf(why, len, "leadership lost");
        return 0;
    }
    snprintf(why, len, "ok");
    return 1;
}

static int hook_ready(void *ud, char *why, size_t len)
{
    tqu_controller *ctl = ud;
    for (size_t i = 0; i < ctl->nkinds; i++)
        if (!k8s_informer_synced(ctl->kinds[i].informer)) {
            snprintf(why, len, "cache of %s not synced yet", ctl->kinds[i].rec->resource->plural);
            return 0;
        }
    if (ctl->leader && !k8s_leader_is_leader(ctl->leader)) {
        snprintf(why, len, "ok: standby, not the leader (%s)", k8s_leader_identity(ctl->leader));
        return 1;
    }
    snprintf(why, len, "ok");
    return 1;
}

/* Without --leader-elect, claim every workflow (claim.c): the one actor
 * per site (with it, the leader's Lease is that claim); the keys are
 * queued again as each is claimed. */
static int start_claims(tqu_controller *ctl)
{
    for (size_t i = 0; i < ctl->nkinds; i++)
        if (!ctl->kinds[i].claim.elector &&
            tqu__claim_start(ctl, &ctl->kinds[i].claim, ctl->kinds[i].rec->resource->plural))
            return -1;
    return 0;
}

static void on_started_leading(void *ud)
{
    tqu_controller *ctl = ud;
    tqu_log(TQU_INFO, "became the leader", "identity", k8s_leader_identity(ctl->leader), NULL);
    tqu_metrics_set_leader(1);
    /* look at everything again now that we may act */
    tqu_requeue_all(ctl);
}

static void on_stopped_leading(void *ud)
{
    (void)ud;
    tqu_metrics_set_leader(0);
    /* wake the main thread; it says why it exits */
    kill(getpid(), SIGUSR1);
}

/* ------------------------------------------------------------------ run */

int tqu_controller_run(const tqu_options *opts, const k8s_config *cfg, k8s_client *client,
                       const char *server_version, const tqu_reconciler *const *recs, size_t n)
{
    tqu_controller ctl = { .opts = opts, .cfg = cfg, .client = client };
    tqu_health *health = NULL;
    pthread_t worker_th;
    int worker_started = 0, exit_code = 1;
    k8s_err err;
    char ebuf[1200];
    sigset_t sigs;

    snprintf(ctl.server_version, sizeof(ctl.server_version), "%s", server_version ? server_version : "");
    tqu__claim_identity(ctl.identity, sizeof(ctl.identity));
    pthread_mutex_init(&ctl.watch_lock, NULL);

    /* Signals are taken synchronously by the main thread; block them in
     * every thread before any is started. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (k8s_queue_new(NULL, &ctl.queue)) {
        tqu_log(TQU_ERROR, "out of memory", NULL);
        goto out;
    }
    {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        if (k8s_recorder_new(cfg, "tianqing-upgrade-controller", host[0] ? host : NULL,
                             &ctl.recorder, &err)) {
            tqu_log(TQU_ERROR, "cannot make the event recorder", "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            goto out;
        }
    }
    ctl.kinds = calloc(n ? n : 1, sizeof(*ctl.kinds));
    if (!ctl.kinds) {
        tqu_log(TQU_ERROR, "out of memory", NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct tqu_kind *k = &ctl.kinds[i];
        k->ctl = &ctl;
        k->rec = recs[i];
        for (const tqu_counter_family *const *m = recs[i]->metrics; m && *m; m++)
            tqu_metrics_register(*m);
        ctl.nkinds++;
        k8s_informer_opts io = {
            .resource = recs[i]->resource,
            .namespace = opts->namespace,
            .on_event = on_event,
            .ud = k,
            .on_watch_restart = on_watch_restart,
            .on_relist = on_relist,
            .on_error = on_informer_error,
        };
        if (k8s_informer_new(cfg, &io, &k->informer, &err)) {
            tqu_log(TQU_ERROR, "cannot make the informer", "resource", recs[i]->resource->plural,
                    "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            goto out;
        }
    }

    if (opts->health_addr && opts->health_addr[0]) {
        tqu_health_hooks hooks = { .healthy = hook_healthy, .ready = hook_ready, .ud = &ctl };
        char herr[512];
        if (tqu_health_start(opts->health_addr, &hooks, &health, herr, sizeof(herr))) {
            tqu_log(TQU_ERROR, "cannot serve health and metrics", "addr", opts->health_addr, "error", herr, NULL);
            goto out;
        }
        char port[16];
        snprintf(port, sizeof(port), "%d", tqu_health_port(health));
        tqu_log(TQU_INFO, "serving /healthz, /readyz and /metrics", "addr", opts->health_addr, "port", port, NULL);
    }

    if (opts->leader_elect) {
        k8s_leader_opts lo = {
            .namespace = opts->leader_election_namespace ? opts->leader_election_namespace : cfg->namespace,
            .name = opts->leader_election_id,
            .on_started = on_started_leading,
            .on_stopped = on_stopped_leading,
            .ud = &ctl,
        };
        if (k8s_leader_new(cfg, &lo, &ctl.leader, &err) || k8s_leader_start(ctl.leader, &err)) {
            tqu_log(TQU_ERROR, "cannot start leader election", "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            goto out;
        }
        tqu_log(TQU_INFO, "waiting for the leadership", "lease", lo.name, "namespace", lo.namespace,
                "identity", k8s_leader_identity(ctl.leader), NULL);
    } else {
        tqu_metrics_set_leader(1);
    }

    for (size_t i = 0; i < ctl.nkinds; i++)
        if (k8s_informer_start(ctl.kinds[i].informer, &err)) {
            tqu_log(TQU_ERROR, "cannot start the informer", "resource", ctl.kinds[i].rec->resource->plural,
                    "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            goto out;
        }
    if (!opts->leader_elect && start_claims(&ctl))
        goto out;
    if (pthread_create(&worker_th, NULL, worker, &ctl)) {
        tqu_log(TQU_ERROR, "cannot start the worker", NULL);
        goto out;
    }
    worker_started = 1;
    tqu_log(TQU_INFO, "controller started", "namespace", opts->namespace ? opts->namespace : "(all)",
            "server", cfg->server, "serverVersion", ctl.server_version, NULL);

    for (;;) {
        struct timespec ts = { .tv_sec = 5, .tv_nsec = 0 };
        count_phases(&ctl);
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            tqu_log(TQU_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
            exit_code = 0;
            break;
        }
        /* Lost by the local clock (the renew deadline passed, e.g. while
         * the process was stopped) or told by the elector: the main thread
         * may see it first, so the line is logged here, once. */
        if (ctl.leader && k8s_leader_lost(ctl.leader)) {
            tqu_log(TQU_ERROR, "lost the leadership: exiting", "identity", k8s_leader_identity(ctl.leader),
                    NULL);
            exit_code = 1;
            break;
        }
        for (size_t i = 0; i < ctl.nkinds; i++)
            tqu__claim_check(&ctl.kinds[i].claim);

    }

out:
    /* Stop intake, let the worker finish its key, then the rest. A
     * watchdog ends the process if this takes longer than the deadline. */
    ctl.stopping = 1;
    alarm(SHUTDOWN_DEADLINE_S);
    if (ctl.queue)
        k8s_queue_shutdown(ctl.queue);
    if (worker_started) {
        /* The current key gets WORKER_GRACE_S to finish. A reconcile stuck
         * on an API server that accepts but never answers would otherwise
         * hold the shutdown for the client's timeout and retries (30 s
         * each), past the watchdog: killed by SIGALRM, the Lease never
         * released. Then its requests are stopped (they fail with
         * K8S_ESTOPPED, and tqu_may_act() is already false, so nothing
         * else is written): the key is handed back to the next leader. */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WORKER_GRACE_S;
        if (pthread_timedjoin_np(worker_th, NULL, &dl) != 0) {
            tqu_log(TQU_WARN, "the current reconcile did not finish in time: stopping its requests",
                    NULL);
            k8s_client_stop(ctl.client);
            pthread_join(worker_th, NULL);
        }
    }
    /* a workflow's own threads (an etcd watch) re-queue keys: stop them
     * before the queue goes */
    for (size_t i = 0; i < n; i++)
        if (recs[i]->stop)
            recs[i]->stop();
    /* the secondary watches call into the informers and queue: stop them
     * first */
    tqu__watches_free(&ctl);
    tqu__slots_free(&ctl);
    for (size_t i = 0; i < ctl.nkinds; i++)
        tqu__claim_stop(&ctl.kinds[i].claim, exit_code == 0);
    /* the elector's thread reads the informers when it becomes the leader
     * (tqu_requeue_all): it ends before they go (a standby that won the
     * Lease while shutting down read a freed informer) */
    if (ctl.leader) {
        if (exit_code == 0)
            k8s_leader_release(ctl.leader);
        k8s_leader_free(ctl.leader);
    }
    for (size_t i = 0; i < ctl.nkinds; i++)
        k8s_informer_free(ctl.kinds[i].informer);
    free(ctl.kinds);
    tqu_health_stop(health);
    k8s_recorder_free(ctl.recorder);
    k8s_queue_free(ctl.queue);
    pthread_mutex_destroy(&ctl.watch_lock);
    alarm(0);
    tqu_log(TQU_INFO, "stopped", NULL);
    return exit_code;
}
