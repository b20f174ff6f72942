/*
 * events.c - Event recording with aggregation by count (see events.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "events.h"
#include "k8s_int.h"
#include "status.h"

#define CACHE_SIZE 512          /* remembered (object, reason, message) */
#define LIMIT_SLOTS 256         /* objects with their own token bucket */

struct seen {
    char *id;                   /* uid \n type \n reason \n message */
    char *ns, *name;            /* the Event object */
    long long count;
    double used;                /* for LRU replacement */
};

struct bucket {
    char *uid;
    double tokens, last;
};

struct k8s_recorder {
    k8s_client *client;
    char *component, *host;
    pthread_mutex_t mu;
    struct seen cache[CACHE_SIZE];
    struct bucket buckets[LIMIT_SLOTS];
    int burst;
    double refill_s;
};

int k8s_recorder_new(const k8s_config *cfg, const char *component, const char *host,
                     k8s_recorder **out, k8s_err *err)
{
    k8s_recorder *r = calloc(1, sizeof(*r));
    k8s_client_opts co = { .timeout_ms = 5000, .max_retries = 1 };
    int rc;

    *out = NULL;
    if (!r)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    pthread_mutex_init(&r->mu, NULL);
    r->burst = 25;
    r->refill_s = 300;
    r->component = strdup(component ? component : "k8s-c");
    r->host = host ? strdup(host) : NULL;
    if (!r->component || (host && !r->host)) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto fail;
    }
    rc = k8s_client_new(cfg, &co, &r->client, err);
    if (rc)
        goto fail;
    *out = r;
    return K8S_OK;
fail:
    k8s_recorder_free(r);
    return rc;
}

void k8s_recorder_free(k8s_recorder *r)
{
    if (!r)
        return;
    for (int i = 0; i < CACHE_SIZE; i++) {
        free(r->cache[i].id);
        free(r->cache[i].ns);
        free(r->cache[i].name);
    }
    for (int i = 0; i < LIMIT_SLOTS; i++)
        free(r->buckets[i].uid);
    k8s_client_free(r->client);
    free(r->component);
    free(r->host);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void k8s_recorder_set_limits(k8s_recorder *r, int burst, double refill_s)
{
    pthread_mutex_lock(&r->mu);
    r->burst = burst;
    r->refill_s = refill_s;
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        free(r->buckets[i].uid);
        r->buckets[i].uid = NULL;
    }
    pthread_mutex_unlock(&r->mu);
}

/* Take a token from uid's bucket; 0 when none is left. Caller holds mu. */
static int allow(k8s_recorder *r, const char *uid)
{
    double now = k8s__now();
    struct bucket *b = NULL, *oldest = &r->buckets[0];
    for (int i = 0; i < LIMIT_SLOTS; i++) {
        if (r->buckets[i].uid && strcmp(r->buckets[i].uid, uid) == 0) {
            b = &r->buckets[i];
            break;
        }
        if (!r->buckets[i].uid || r->buckets[i].last < oldest->last)
            oldest = &r->buckets[i];
    }
    if (!b) {
        char *u = strdup(uid);
        if (!u)
            return 1;   /* cannot track: let it through */
        b = oldest;
        free(b->uid);
        b->uid = u;
        b->tokens = r->burst;
        b->last = now;
    }
    b->tokens += (now - b->last) / r->refill_s;
    if (b->tokens > r->burst)
        b->tokens = r->burst;
    b->last = now;
    if (b->tokens < 1)
        return 0;
    b->tokens -= 1;
    return 1;
}

static cJSON *new_event(k8s_recorder *r, const cJSON *obj, const char *ns, const char *type,
                        const char *reason, const char *msg, char *name_out, size_t name_len)
{
    char now[40];
    struct timespec ts;
    cJSON *ev = cJSON_CreateObject(), *md, *io, *src;
    const char *name = k8s_json_str(obj, "metadata", "name", NULL);

    clock_gettime(CLOCK_REALTIME, &ts);
    /* client-go: <name>.<hex unix nanoseconds> */
    snprintf(name_out, name_len, "%.200s.%llx", name ? name : "object",
             (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec);
    k8s_time_now(now, sizeof(now));
    if (!ev)
        return NULL;
    if (!cJSON_AddStringToObject(ev, "apiVersion", "v1") || !cJSON_AddStringToObject(ev, "kind", "Event") ||
        !(md = cJSON_AddObjectToObject(ev, "metadata")) || !cJSON_AddStringToObject(md, "name", name_out) ||
        !cJSON_AddStringToObject(md, "namespace", ns) ||
        !(io = cJSON_AddObjectToObject(ev, "involvedObject")) ||
        !cJSON_AddStringToObject(io, "apiVersion", k8s_json_str(obj, "apiVersion", NULL) ? k8s_json_str(obj, "apiVersion", NULL) : "") ||
        !cJSON_AddStringToObject(io, "kind", k8s_json_str(obj, "kind", NULL) ? k8s_json_str(obj, "kind", NULL) : "") ||
        !cJSON_AddStringToObject(io, "namespace", ns) ||
        !cJSON_AddStringToObject(io, "name", name ? name : "") ||
        !cJSON_AddStringToObject(io, "uid", k8s_json_str(obj, "metadata", "uid", NULL)) ||
        !cJSON_AddStringToObject(io, "resourceVersion", k8s_json_str(obj, "metadata", "resourceVersion", NULL) ? k8s_json_str(obj, "metadata", "resourceVersion", NULL) : "") ||
        !cJSON_AddStringToObject(ev, "type", type) || !cJSON_AddStringToObject(ev, "reason", reason) ||
        !cJSON_AddStringToObject(ev, "message", msg) ||
        !(src = cJSON_AddObjectToObject(ev, "source")) ||
        !cJSON_AddStringToObject(src, "component", r->component) ||
        (r->host && !cJSON_AddStringToObject(src, "host", r->host)) ||
        !cJSON_AddStringToObject(ev, "firstTimestamp", now) ||
        !cJSON_AddStringToObject(ev, "lastTimestamp", now) ||
        !cJSON_AddNumberToObject(ev, "count", 1) ||
        !cJSON_AddStringToObject(ev, "reportingComponent", r->component) ||
        !cJSON_AddStringToObject(ev, "reportingInstance", r->host ? r->host : r->component)) {
        cJSON_Delete(ev);
        return NULL;
    }
    return ev;
}

int k8s_event(k8s_recorder *r, const cJSON *obj, const char *type, const char *reason,
              const char *fmt, ...)
{
    char msg[1024], ename[256], now[40];
    const char *uid = k8s_json_str(obj, "metadata", "uid", NULL);
    const char *ns = k8s_json_str(obj, "metadata", "namespace", NULL);
    char *id = NULL;
    struct seen *hit = NULL, *slot;
    cJSON *body = NULL;
    k8s_err err;
    int rc = K8S_OK;
    va_list ap;

    if (!r || !uid || !ns || !type || !reason)
        return K8S_EINVAL;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (asprintf(&id, "%s\n%s\n%s\n%s", uid, type, reason, msg) < 0)
        return K8S_ENOMEM;

    pthread_mutex_lock(&r->mu);
    if (!allow(r, uid)) {
        pthread_mutex_unlock(&r->mu);
        free(id);
        return K8S_ESTOPPED;
    }
    slot = &r->cache[0];
    for (int i = 0; i < CACHE_SIZE; i++) {
        if (r->cache[i].id && strcmp(r->cache[i].id, id) == 0) {
            hit = &r->cache[i];
            break;
        }
        if (!r->cache[i].id || r->cache[i].used < slot->used)
            slot = &r->cache[i];
    }
    if (hit) {
        /* aggregate: PATCH count and lastTimestamp of the existing Event */
        char ens[256], en[256];
        long long count = hit->count + 1;
        snprintf(ens, sizeof(ens), "%s", hit->ns);
        snprintf(en, sizeof(en), "%s", hit->name);
        hit->used = k8s__now();
        pthread_mutex_unlock(&r->mu);
        k8s_time_now(now, sizeof(now));
        body = cJSON_CreateObject();
        if (!body || !cJSON_AddNumberToObject(body, "count", (double)count) ||
            !cJSON_AddStringToObject(body, "lastTimestamp", now)) {
            rc = K8S_ENOMEM;
            goto out;
        }
        rc = k8s_patch(r->client, &K8S_EVENTS, ens, en, NULL, K8S_CT_MERGE_PATCH, body, NULL, &err);
        if (rc == K8S_OK) {
            pthread_mutex_lock(&r->mu);
            for (int i = 0; i < CACHE_SIZE; i++)
                if (r->cache[i].id && strcmp(r->cache[i].id, id) == 0 && r->cache[i].count < count)
                    r->cache[i].count = count;
            pthread_mutex_unlock(&r->mu);
            goto out;
        }
        if (!(rc == K8S_EAPI && err.code == 404))
            goto out;
        /* the Event expired (1 h TTL): make a new one */
        cJSON_Delete(body);
        body = NULL;
        pthread_mutex_lock(&r->mu);
        slot = NULL;
        for (int i = 0; i < CACHE_SIZE; i++)
            if (r->cache[i].id && strcmp(r->cache[i].id, id) == 0)
                slot = &r->cache[i];
        if (!slot)
            slot = &r->cache[0];
    }
    /* slot is ours under the lock: fill it after the create succeeds */
    pthread_mutex_unlock(&r->mu);
    body = new_event(r, obj, ns, type, reason, msg, ename, sizeof(ename));
    if (!body) {
        rc = K8S_ENOMEM;
        goto out;
    }
    rc = k8s_create(r->client, &K8S_EVENTS, ns, body, NULL, &err);
    if (rc == K8S_OK) {
        char *dns = strdup(ns), *dn = strdup(ename);
        pthread_mutex_lock(&r->mu);
        if (dns && dn) {
            free(slot->id);
            free(slot->ns);
            free(slot->name);
            slot->id = id;
            slot->ns = dns;
            slot->name = dn;
            slot->count = 1;
            slot->used = k8s__now();
            id = NULL;
        } else {
            free(dns);
            free(dn);
        }
        pthread_mutex_unlock(&r->mu);
    }
out:
    cJSON_Delete(body);
    free(id);
    return rc;
}
