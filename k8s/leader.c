/*
 * leader.c - Lease-based leader election (see leader.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>
#include "k8s_int.h"
#include "leader.h"

struct k8s_leader {
    k8s_client *client;
    k8s_leader_opts o;
    char *ns, *name, *identity;

    pthread_t th;
    int started;
    atomic_int stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;

    /* guarded by mu */
    int leading;
    int lost;
    double last_renew;         /* monotonic time of the last successful write */

    /* election thread only */
    char *observed_record;     /* holder + renewTime + transitions as last read */
    double observed_at;        /* local monotonic time it last changed */
};

int k8s_leader_new(const k8s_config *cfg, const k8s_leader_opts *opts,
                   k8s_leader **out, k8s_err *err)
{
    k8s_leader *l;
    int rc;
    k8s_client_opts co = { .timeout_ms = 5000, .max_retries = -1, .qps = -1 };

    *out = NULL;
    if (!opts || !opts->namespace || !opts->name)
        return k8s_err_set(err, K8S_EINVAL, "leader election: namespace and name are required");
    l = calloc(1, sizeof(*l));
    if (!l)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    l->o = *opts;
    if (l->o.lease_duration_s <= 0)
        l->o.lease_duration_s = 15;
    if (l->o.renew_deadline_s <= 0)
        l->o.renew_deadline_s = 10;
    if (l->o.retry_period_s <= 0)
        l->o.retry_period_s = 2;
    pthread_mutex_init(&l->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    l->ns = strdup(opts->namespace);
    l->name = strdup(opts->name);
    if (opts->identity) {
        l->identity = strdup(opts->identity);
    } else {
        char host[256] = "unknown";
        unsigned char r[6];
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        if (RAND_bytes(r, sizeof(r)) != 1)
            memset(r, 0, sizeof(r));
        if (asprintf(&l->identity, "%s_%02x%02x%02x%02x%02x%02x", host, r[0], r[1], r[2], r[3],
                     r[4], r[5]) < 0)
            l->identity = NULL;
    }
    if (!l->ns || !l->name || !l->identity) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto fail;
    }
    l->o.namespace = l->ns;
    l->o.name = l->name;
    l->o.identity = l->identity;
    /* requests must finish well within the renew deadline */
    rc = k8s_client_new(cfg, &co, &l->client, err);
    if (rc)
        goto fail;
    *out = l;
    return K8S_OK;
fail:
    k8s_leader_free(l);
    return rc;
}

const char *k8s_leader_identity(const k8s_leader *l)
{
    return l->identity;
}

int k8s_leader_is_leader(k8s_leader *l)
{
    int r;
    pthread_mutex_lock(&l->mu);
    r = l->leading && !l->lost && k8s__now() - l->last_renew < l->o.renew_deadline_s;
    pthread_mutex_unlock(&l->mu);
    return r;
}

int k8s_leader_lost(k8s_leader *l)
{
    int r;
    pthread_mutex_lock(&l->mu);
    r = l->lost || (l->leading && k8s__now() - l->last_renew >= l->o.renew_deadline_s);
    pthread_mutex_unlock(&l->mu);
    return r;
}

static int nap(k8s_leader *l, double s)
{
    return k8s__nap(&l->mu, &l->cv, &l->stopping, s);
}

static cJSON *lease_spec(const k8s_leader *l, const char *holder, const char *acquire,
                         long long transitions)
{
    char now[64];
    cJSON *spec = cJSON_CreateObject();
    k8s_time_now_micro(now, sizeof(now));
    if (!spec ||
        !cJSON_AddStringToObject(spec, "holderIdentity", holder) ||
        !cJSON_AddNumberToObject(spec, "leaseDurationSeconds", holder[0] ? (double)(long)l->o.lease_duration_s : 1) ||
        !cJSON_AddStringToObject(spec, "acquireTime", acquire ? acquire : now) ||
        !cJSON_AddStringToObject(spec, "renewTime", now) ||
        !cJSON_AddNumberToObject(spec, "leaseTransitions", (double)transitions)) {
        cJSON_Delete(spec);
        return NULL;
    }
    return spec;
}

/*
 * One attempt to acquire or renew. Returns 1 when we hold the lease after
 * it, 0 when another holds it (or a race was lost), -1 on an API error.
 */
static int try_acquire_or_renew(k8s_leader *l)
{
    k8s_err err;
    cJSON *lease = NULL, *spec = NULL, *body = NULL, *md;
    int rc, result = -1;
    double now = k8s__now();

    rc = k8s_get(l->client, &K8S_LEASES, l->ns, l->name, &lease, &err);
    if (rc == K8S_EAPI && err.code == 404) {
        body = cJSON_CreateObject();
        spec = lease_spec(l, l->identity, NULL, 0);
        if (!body || !spec)
            goto out;
        cJSON_AddStringToObject(body, "apiVersion", "coordination.k8s.io/v1");
        cJSON_AddStringToObject(body, "kind", "Lease");
        md = cJSON_AddObjectToObject(body, "metadata");
        if (!md || !cJSON_AddStringToObject(md, "name", l->name) ||
            !cJSON_AddStringToObject(md, "namespace", l->ns))
            goto out;
        int prc = k8s_json_put(body, "spec", spec);
        spec = NULL;
        if (prc)
            goto out;
        rc = k8s_create(l->client, &K8S_LEASES, l->ns, body, NULL, &err);
        if (rc == K8S_OK)
            result = 1;
        else if (rc == K8S_EAPI && (err.code == 409))
            result = 0;
        goto out;
    }
    if (rc)
        goto out;

    const char *holder = k8s_json_str(lease, "spec", "holderIdentity", NULL);
    const char *renew = k8s_json_str(lease, "spec", "renewTime", NULL);
    const char *acquire = k8s_json_str(lease, "spec", "acquireTime", NULL);
    long long dur = k8s_json_int(lease, 15, "spec", "leaseDurationSeconds", NULL);
    long long transitions = k8s_json_int(lease, 0, "spec", "leaseTransitions", NULL);
    int mine = holder && strcmp(holder, l->identity) == 0;
    char *record = NULL;

    if (asprintf(&record, "%s|%s|%lld", holder ? holder : "", renew ? renew : "", transitions) < 0)
        goto out;
    if (!l->observed_record || strcmp(l->observed_record, record) != 0) {
        free(l->observed_record);
        l->observed_record = record;
        l->observed_at = now;
    } else {
        free(record);
    }
    if (!mine && holder && holder[0] && now - l->observed_at < (double)dur &&
        !(l->o.holder_gone && l->o.holder_gone(l->o.ud, holder))) {
        result = 0;   /* held by another and not expired by our clock */
        goto out;
    }
    spec = lease_spec(l, l->identity, mine ? acquire : NULL, mine ? transitions : transitions + 1);
    if (!spec)
        goto out;
    if (k8s_json_put(lease, "spec", spec)) {
        spec = NULL;
        goto out;
    }
    spec = NULL;
    rc = k8s_replace(l->client, &K8S_LEASES, l->ns, l->name, lease, NULL, &err);
    if (rc == K8S_OK)
        result = 1;
    else if (rc == K8S_EAPI && err.code == 409)
        result = 0;
out:
    cJSON_Delete(lease);
    cJSON_Delete(spec);
    cJSON_Delete(body);
    return result;
}

static double jittered(double s)
{
    return s * (1.0 + 0.2 * ((double)rand() / RAND_MAX));
}

static void *run(void *arg)
{
    k8s_leader *l = arg;

    /* acquire */
    while (!atomic_load(&l->stopping)) {
        /* The lease counts from before the request, never from its
         * answer: the server stamped and stored it at some point in
         * between, and others time its expiry from when they saw that.
         * Timed from the answer, a reply that arrived late (a slow server,
         * or this process stopped while it was in flight) would stretch
         * our leadership past the moment another may take over. */
        double t0 = k8s__now();
        if (try_acquire_or_renew(l) == 1) {
            pthread_mutex_lock(&l->mu);
            l->leading = 1;
            l->last_renew = t0;
            pthread_mutex_unlock(&l->mu);
            break;
        }
        if (nap(l, jittered(l->o.retry_period_s)))
            return NULL;
    }
    if (atomic_load(&l->stopping))
        return NULL;
    if (l->o.on_started)
        l->o.on_started(l->o.ud);

    /* renew until the deadline passes without a successful renewal */
    while (!atomic_load(&l->stopping)) {
        if (nap(l, l->o.retry_period_s))
            break;
        if (k8s_leader_lost(l))
            break;
        double t0 = k8s__now();   /* see the acquire loop */
        int r = try_acquire_or_renew(l);
        pthread_mutex_lock(&l->mu);
        if (r == 1 && k8s__now() - l->last_renew < l->o.renew_deadline_s)
            l->last_renew = t0;
        pthread_mutex_unlock(&l->mu);
        if (r == 0)
            break;   /* someone else holds it now */
    }
    if (!atomic_load(&l->stopping)) {
        pthread_mutex_lock(&l->mu);
        l->lost = 1;
        l->leading = 0;
        pthread_mutex_unlock(&l->mu);
        if (l->o.on_stopped)
            l->o.on_stopped(l->o.ud);
    }
    return NULL;
}

int k8s_leader_start(k8s_leader *l, k8s_err *err)
{
    if (l->started)
        return K8S_OK;
    if (pthread_create(&l->th, NULL, run, l))
        return k8s_err_set(err, K8S_ENOMEM, "leader election: cannot start a thread");
    l->started = 1;
    return K8S_OK;
}

/* Give the lease up: empty holder, so a successor need not wait it out. */
static void release_lease(k8s_leader *l)
{
    k8s_err err;
    cJSON *lease = NULL, *spec;
    if (k8s_get(l->client, &K8S_LEASES, l->ns, l->name, &lease, &err))
        return;
    const char *holder = k8s_json_str(lease, "spec", "holderIdentity", NULL);
    if (holder && strcmp(holder, l->identity) == 0) {
        long long transitions = k8s_json_int(lease, 0, "spec", "leaseTransitions", NULL);
        spec = lease_spec(l, "", NULL, transitions);
        if (spec && k8s_json_put(lease, "spec", spec) == 0) {
            k8s_replace(l->client, &K8S_LEASES, l->ns, l->name, lease, NULL, &err);
        }
    }
    cJSON_Delete(lease);
}

void k8s_leader_release(k8s_leader *l)
{
    int was_leading;
    if (!l)
        return;
    atomic_store(&l->stopping, 1);
    /* Cut short a renewal in flight: against a server that accepts but
     * does not answer it would hold the shutdown for the request timeout
     * (twice: GET and PUT) before the release itself could start. */
    k8s_client_stop(l->client);
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->started) {
        pthread_join(l->th, NULL);
        l->started = 0;
    }
    k8s_client_resume(l->client);
    pthread_mutex_lock(&l->mu);
    was_leading = l->leading && !l->lost;
    l->leading = 0;
    pthread_mutex_unlock(&l->mu);
    if (was_leading)
        release_lease(l);
}

void k8s_leader_free(k8s_leader *l)
{
    if (!l)
        return;
    if (l->started)
        k8s_leader_release(l);
    k8s_client_free(l->client);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l->observed_record);
    free(l);
}
