/*
 * runtime.c - the runtime around tqu_reconcile (see runtime.h).
 *
 * Threads: the informer's list/watch thread (enqueues keys), the leader
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

/* ---------------------------------------------------------- informer hooks */

static void on_tqu_event(void *ud, k8s_event_type type, const char *key, const cJSON *obj)
{
    tqu_controller *ctl = ud;
    __atomic_add_fetch(&ctl->cache_changes, 1, __ATOMIC_RELAXED);
    if (tqu_log_enabled(TQU_DEBUG))
        tqu_log(TQU_DEBUG, "watch event", "key", key,
                "type", type == K8S_ADDED ? "ADDED" : type == K8S_MODIFIED ? "MODIFIED" : "DELETED", NULL);
    /* A change whose status already reflects its generation is (almost
     * always) our own status write coming back: reconciling it again would
     * loop. Timed progress (a running update.sh) is polled by requeue-after
     * instead. Spec changes bump the generation; so does a deletion. */
    if (type == K8S_MODIFIED && !k8s_json_get(obj, "metadata", "deletionTimestamp", NULL) &&
        k8s_json_int(obj, -1, "metadata", "generation", NULL) ==
            k8s_json_int(obj, -2, "status", "observedGeneration", NULL))
        return;
    int rc = k8s_queue_add(ctl->queue, key);
    if (rc && rc != K8S_ESTOPPED)
        tqu_log(TQU_ERROR, "could not queue a watch event; it is handled at the next resync",
                "key", key, "error", k8s_strerror(rc), NULL);
    tqu_metrics_set_queue_depth((long)k8s_queue_len(ctl->queue, NULL));
}

static void on_watch_restart(void *ud)
{
    (void)ud;
    tqu_metrics_watch_restart(TQU_PLURAL);
}

static void on_relist(void *ud)
{
    (void)ud;
    tqu_log(TQU_INFO, "relisted after the watch expired", "resource", TQU_PLURAL, NULL);
    tqu_metrics_watch_relist(TQU_PLURAL);
}

/* A failed list or watch: info, with the delay before the next try, so an
 * outage shows its backoff (0.8 s doubling to 30 s) in the log. */
static void on_informer_error(void *ud, const char *what, const k8s_err *err, double retry_in)
{
    char ebuf[1200], delay[32];
    (void)ud;
    snprintf(delay, sizeof(delay), "%.3f", retry_in);
    tqu_log(TQU_INFO, "list/watch failed; retrying", "resource", TQU_PLURAL, "op", what,
            "error", k8s_err_str(err, ebuf, sizeof(ebuf)), "retryIn", delay, NULL);
}

/* ------------------------------------------------- tqu_upgrades{phase} */

struct phase_tally {
    tqu_controller *ctl;
    struct { char phase[64]; long count; } v[24];
    tqu_phase_count out[24];
    size_t n;
};

static void tally_key(void *ud, const char *key)
{
    struct phase_tally *t = ud;
    cJSON *obj = k8s_informer_get(t->ctl->informer, key);
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

/* Count the cached resources by status.phase for /metrics, when the cache
 * changed since the last count (the main thread, every few seconds). */
static void count_phases(tqu_controller *ctl, unsigned long *seen)
{
    unsigned long now = __atomic_load_n(&ctl->cache_changes, __ATOMIC_RELAXED);
    if (now == *seen || !k8s_informer_synced(ctl->informer))
        return;
    *seen = now;
    struct phase_tally *t = calloc(1, sizeof(*t));
    if (!t)
        return;
    t->ctl = ctl;
    k8s_informer_keys(ctl->informer, tally_key, t);
    for (size_t i = 0; i < t->n; i++)
        t->out[i] = (tqu_phase_count){ .phase = t->v[i].phase, .count = t->v[i].count };
    tqu_metrics_set_phase_counts(t->out, t->n);
    free(t);
}

/* ------------------------------------------------------------ the worker */

static void *worker(void *arg)
{
    tqu_controller *ctl = arg;
    const char *key;

    while (k8s_queue_get(ctl->queue, &key) == K8S_OK) {
        size_t waiting = 0;
        if (!tqu_may_act(ctl)) {
            /* A standby drops the key: when it becomes the leader it
             * queues every cached key again (on_started_leading). */
            k8s_queue_done(ctl->queue, key);
            continue;
        }
        double t0 = mono_now();
        if (tqu_log_enabled(TQU_DEBUG))
            tqu_log(TQU_DEBUG, "reconciling", "key", key, NULL);
        tqu_result r = tqu_reconcile(ctl, key);
        double dt = mono_now() - t0;
        if (tqu_log_enabled(TQU_DEBUG)) {
            char secs[32];
            snprintf(secs, sizeof(secs), "%.3f", dt);
            tqu_log(TQU_DEBUG, "reconciled", "key", key,
                    "result", r.error ? "error" : r.requeue_after > 0 ? "requeue" : "success",
                    "seconds", secs, NULL);
        }
        if (r.error) {
            tqu_metrics_reconcile("error", dt);
            k8s_queue_add_rate_limited(ctl->queue, key);
        } else {
            k8s_queue_forget(ctl->queue, key);
            if (r.requeue_after > 0) {
                tqu_metrics_reconcile("requeue", dt);
                k8s_queue_add_after(ctl->queue, key, r.requeue_after);
            } else {
                tqu_metrics_reconcile("success", dt);
            }
        }
        k8s_queue_done(ctl->queue, key);
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
    if (!k8s_informer_synced(ctl->informer)) {
        snprintf(why, len, "cache of %s not synced yet", TQU_PLURAL);
        return 0;
    }
    if (ctl->leader && !k8s_leader_is_leader(ctl->leader)) {
        snprintf(why, len, "ok: standby, not the leader (%s)", k8s_leader_identity(ctl->leader));
        return 1;
    }
    snprintf(why, len, "ok");
    return 1;
}

static void requeue_key(void *ud, const char *key)
{
    k8s_queue_add((k8s_queue *)ud, key);
}

static void on_started_leading(void *ud)
{
    tqu_controller *ctl = ud;
    tqu_log(TQU_INFO, "became the leader", "identity", k8s_leader_identity(ctl->leader), NULL);
    tqu_metrics_set_leader(1);
    /* look at everything again now that we may act */
    k8s_informer_keys(ctl->informer, requeue_key, ctl->queue);
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
                       const char *server_version)
{
    tqu_controller ctl = { .opts = opts, .cfg = cfg, .client = client };
    tqu_health *health = NULL;
    pthread_t worker_th;
    int worker_started = 0, exit_code = 1;
    k8s_err err;
    char ebuf[1200];
    sigset_t sigs;

    snprintf(ctl.server_version, sizeof(ctl.server_version), "%s", server_version ? server_version : "");

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
    k8s_informer_opts io = {
        .resource = &TQU_RESOURCE,
        .namespace = opts->namespace,
        .on_event = on_tqu_event,
        .ud = &ctl,
        .on_watch_restart = on_watch_restart,
        .on_relist = on_relist,
        .on_error = on_informer_error,
    };
    if (k8s_informer_new(cfg, &io, &ctl.informer, &err)) {
        tqu_log(TQU_ERROR, "cannot make the informer", "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        goto out;
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

    if (k8s_informer_start(ctl.informer, &err)) {
        tqu_log(TQU_ERROR, "cannot start the informer", "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        goto out;
    }
    if (pthread_create(&worker_th, NULL, worker, &ctl)) {
        tqu_log(TQU_ERROR, "cannot start the worker", NULL);
        goto out;
    }
    worker_started = 1;
    tqu_log(TQU_INFO, "controller started", "namespace", opts->namespace ? opts->namespace : "(all)",
            "server", cfg->server, "serverVersion", ctl.server_version, NULL);

    unsigned long counted = 0;
    for (;;) {
        struct timespec ts = { .tv_sec = 5, .tv_nsec = 0 };
        count_phases(&ctl, &counted);
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
    /* the cdn watches call into the informer and queue: stop them first */
    tqu_controller_release_watches(&ctl);
    k8s_informer_free(ctl.informer);
    if (ctl.leader) {
        if (exit_code == 0)
            k8s_leader_release(ctl.leader);
        k8s_leader_free(ctl.leader);
    }
    tqu_health_stop(health);
    k8s_recorder_free(ctl.recorder);
    k8s_queue_free(ctl.queue);
    alarm(0);
    tqu_log(TQU_INFO, "stopped", NULL);
    return exit_code;
}
