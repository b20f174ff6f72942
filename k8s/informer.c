/*
 * informer.c - list + watch cache of one resource type (see informer.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backoff.h"
#include "informer.h"
#include "k8s_int.h"

/* ------------------------------------------------------------- the store */

struct entry {
    char *key;
    cJSON *obj;
    struct entry *next;
};

struct store {
    struct entry **b;
    size_t nb, n;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int store_init(struct store *s)
{
    s->nb = 64;
    s->n = 0;
    s->b = calloc(s->nb, sizeof(*s->b));
    return s->b ? K8S_OK : K8S_ENOMEM;
}

static void store_release(struct store *s)
{
    for (size_t i = 0; s->b && i < s->nb; i++) {
        struct entry *e = s->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e->key);
            cJSON_Delete(e->obj);
            free(e);
        }
    }
    free(s->b);
    s->b = NULL;
    s->nb = s->n = 0;
}

static struct entry *store_find(const struct store *s, const char *key)
{
    struct entry *e = s->b[hash(key) % s->nb];
    for (; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void store_grow(struct store *s)
{
    size_t nb = s->nb * 2;
    struct entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return;   /* stays correct, only slower */
    for (size_t i = 0; i < s->nb; i++) {
        struct entry *e = s->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t h = hash(e->key) % nb;
            e->next = b[h];
            b[h] = e;
        }
    }
    free(s->b);
    s->b = b;
    s->nb = nb;
}

/* Takes ownership of obj (also on failure). Replaces an existing entry. */
static int store_put(struct store *s, const char *key, cJSON *obj)
{
    struct entry *e = store_find(s, key);
    if (e) {
        cJSON_Delete(e->obj);
        e->obj = obj;
        return K8S_OK;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        cJSON_Delete(obj);
        return K8S_ENOMEM;
    }
    e->obj = obj;
    size_t h = hash(key) % s->nb;
    e->next = s->b[h];
    s->b[h] = e;
    if (++s->n > s->nb)
        store_grow(s);
    return K8S_OK;
}

/* Unlinks and returns the object (caller frees), or NULL. */
static cJSON *store_take(struct store *s, const char *key)
{
    struct entry **pp = &s->b[hash(key) % s->nb];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct entry *e = *pp;
            cJSON *obj = e->obj;
            *pp = e->next;
            free(e->key);
            free(e);
            s->n--;
            return obj;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ informer */

struct k8s_informer {
    k8s_client *list_client;    /* list and watch share one client/thread */
    k8s_resource res;
    char *group, *version, *plural;
    char *ns, *field_selector, *label_selector;
    k8s_informer_opts o;

    pthread_t th;
    int started;
    atomic_int stopping;
    pthread_mutex_t mu;          /* guards store, synced, last_contact */
    pthread_cond_t cv;           /* synced changes; stop wakes sleepers */
    struct store store;
    int synced;
    double last_contact;

    /* watch-thread state */
    char *rv;                    /* last resourceVersion seen */
    int need_list;
    int events_this_watch;
    int gone;                    /* 410 seen in the stream */
    int listed_rv_unused;        /* rv comes from a list, no event since */
};

char *k8s_object_key(const cJSON *obj)
{
    const char *ns = k8s_json_str(obj, "metadata", "namespace", NULL);
    const char *name = k8s_json_str(obj, "metadata", "name", NULL);
    char *key = NULL;
    if (!name)
        return NULL;
    if (ns && ns[0]) {
        if (asprintf(&key, "%s/%s", ns, name) < 0)
            return NULL;
        return key;
    }
    return strdup(name);
}

static char *dup_opt(const char *s, int *ok)
{
    char *d;
    if (!s)
        return NULL;
    if (!(d = strdup(s)))
        *ok = 0;
    return d;
}

int k8s_informer_new(const k8s_config *cfg, const k8s_informer_opts *opts,
                     k8s_informer **out, k8s_err *err)
{
    k8s_informer *inf;
    int ok = 1, rc;

    *out = NULL;
    if (!opts || !opts->resource || !opts->on_event)
        return k8s_err_set(err, K8S_EINVAL, "informer: resource and on_event are required");
    inf = calloc(1, sizeof(*inf));
    if (!inf)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    inf->o = *opts;
    inf->o.client_opts = NULL;
    if (!inf->o.idle_timeout_s)
        inf->o.idle_timeout_s = 90;
    if (inf->o.backoff_initial_s <= 0)
        inf->o.backoff_initial_s = 0.8;
    if (inf->o.backoff_max_s <= 0)
        inf->o.backoff_max_s = 30;
    if (inf->o.page_size <= 0)
        inf->o.page_size = 500;
    inf->group = dup_opt(opts->resource->group, &ok);
    inf->version = dup_opt(opts->resource->version, &ok);
    inf->plural = dup_opt(opts->resource->plural, &ok);
    inf->ns = dup_opt(opts->namespace, &ok);
    inf->field_selector = dup_opt(opts->field_selector, &ok);
    inf->label_selector = dup_opt(opts->label_selector, &ok);
    inf->res.group = inf->group;
    inf->res.version = inf->version;
    inf->res.plural = inf->plural;
    inf->res.namespaced = opts->resource->namespaced;
    inf->o.resource = &inf->res;
    inf->o.namespace = inf->ns;
    inf->o.field_selector = inf->field_selector;
    inf->o.label_selector = inf->label_selector;
    pthread_mutex_init(&inf->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&inf->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!ok || store_init(&inf->store)) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto fail;
    }
    {
        k8s_client_opts co = { 0 };
        if (opts->client_opts)
            co = *opts->client_opts;
        /* the stream and list must not be cut by a whole-request timeout
         * shorter than a large list: lists get 60 s */
        if (!co.timeout_ms)
            co.timeout_ms = 60000;
        /* No retries inside the client: a failed list or watch comes back
         * at once and the informer's backoff (0.8 s doubling to 30 s,
         * reported through on_error) decides when to try again. With the
         * client's own retries (5, from 0.2 s) the real cadence during an
         * outage was neither of the two. */
        if (!co.max_retries)
            co.max_retries = -1;
        rc = k8s_client_new(cfg, &co, &inf->list_client, err);
        if (rc)
            goto fail;
    }
    inf->need_list = 1;
    *out = inf;
    return K8S_OK;
fail:
    k8s_informer_free(inf);
    return rc;
}

/* Sleep up to s seconds, waking early when stopping. Returns 1 if stopping. */
static int nap(k8s_informer *inf, double s)
{
    return k8s__nap(&inf->mu, &inf->cv, &inf->stopping, s);
}

static void touch(k8s_informer *inf)
{
    pthread_mutex_lock(&inf->mu);
    inf->last_contact = k8s__now();
    pthread_mutex_unlock(&inf->mu);
}

/* Drop fields the cache does not need (they are large and churn). */
static void trim(cJSON *obj)
{
    cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    if (md)
        cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
}

/* ----------------------------------------------------------------- list */

struct list_ctx {
    k8s_informer *inf;
    struct store fresh;
    int failed;
};

static int on_list_item(void *ud, const cJSON *item, int restart)
{
    struct list_ctx *lc = ud;
    char *key;
    cJSON *copy;

    if (restart) {
        store_release(&lc->fresh);
        if (store_init(&lc->fresh))
            return lc->failed = 1;
    }
    if (!item)
        return 0;
    key = k8s_object_key(item);
    copy = cJSON_Duplicate(item, 1);
    if (!key || !copy) {
        free(key);
        cJSON_Delete(copy);
        return lc->failed = 1;
    }
    trim(copy);
    if (store_put(&lc->fresh, key, copy)) {
        free(key);
        return lc->failed = 1;
    }
    free(key);
    return 0;
}

static const char *rv_of(const cJSON *obj)
{
    return k8s_json_str(obj, "metadata", "resourceVersion", NULL);
}

/*
 * List everything, then swap it in as the cache and deliver the difference
 * from the old cache: ADDED for new keys, MODIFIED where the
 * resourceVersion differs (an opaque string: equality only), DELETED for
 * keys that are gone. Unchanged objects are not delivered again.
 */
static int relist(k8s_informer *inf, k8s_err *err)
{
    struct list_ctx lc = { .inf = inf };
    k8s_list_opts lo = { .label_selector = inf->label_selector,
                         .field_selector = inf->field_selector,
                         .limit = inf->o.page_size };
    char *rv = NULL;
    struct store old;
    int rc, first;

    if (store_init(&lc.fresh))
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    rc = k8s_list(inf->list_client, &inf->res, inf->ns, &lo, on_list_item, &lc, &rv, err);
    if (!rc && lc.failed)
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory while listing %s", inf->plural);
    if (rc) {
        store_release(&lc.fresh);
        free(rv);
        return rc;
    }
    pthread_mutex_lock(&inf->mu);
    old = inf->store;
    inf->store = lc.fresh;
    first = !inf->synced;
    inf->last_contact = k8s__now();
    pthread_mutex_unlock(&inf->mu);

    /* deliver the difference (callbacks without the lock) */
    for (size_t i = 0; i < inf->store.nb; i++) {
        for (struct entry *e = inf->store.b[i]; e; e = e->next) {
            struct entry *was = store_find(&old, e->key);
            if (!was)
                inf->o.on_event(inf->o.ud, K8S_ADDED, e->key, e->obj);
            else {
                const char *a = rv_of(was->obj), *b = rv_of(e->obj);
                if (!a || !b || strcmp(a, b) != 0)
                    inf->o.on_event(inf->o.ud, K8S_MODIFIED, e->key, e->obj);
            }
        }
    }
    for (size_t i = 0; i < old.nb; i++)
        for (struct entry *e = old.b[i]; e; e = e->next)
            if (!store_find(&inf->store, e->key))
                inf->o.on_event(inf->o.ud, K8S_DELETED, e->key, e->obj);
    store_release(&old);

    free(inf->rv);
    inf->rv = rv;
    inf->need_list = 0;
    inf->listed_rv_unused = 1;
    if (!first && inf->o.on_relist)
        inf->o.on_relist(inf->o.ud);
    pthread_mutex_lock(&inf->mu);
    inf->synced = 1;
    pthread_cond_broadcast(&inf->cv);
    pthread_mutex_unlock(&inf->mu);
    return K8S_OK;
}

/* ---------------------------------------------------------------- watch */

static int set_rv(k8s_informer *inf, const cJSON *obj)
{
    const char *rv = rv_of(obj);
    char *d;
    if (!rv)
        return 0;
    if (!(d = strdup(rv)))
        return -1;
    free(inf->rv);
    inf->rv = d;
    return 0;
}

/* One watch line. Returns non-zero to end the stream. */
static int on_watch_line(void *ud, const char *line, size_t len)
{
    k8s_informer *inf = ud;
    cJSON *ev = NULL, *obj;
    const char *type;
    char *key = NULL;
    int stop = 0;

    touch(inf);
    if (atomic_load(&inf->stopping))
        return 1;
    if (k8s_json_parse(line, len, &ev, NULL))
        return 1;   /* a broken stream: reconnect */
    type = k8s_json_str(ev, "type", NULL);
    obj = cJSON_DetachItemFromObjectCaseSensitive(ev, "object");
    if (!type || !obj) {
        stop = 1;
        goto out;
    }
    if (strcmp(type, "ERROR") == 0) {
        /* {"type":"ERROR","object":{"kind":"Status","code":410,...}} */
        long long code = k8s_json_int(obj, 0, "code", NULL);
        const char *reason = k8s_json_str(obj, "reason", NULL);
        if (code == 410 || (reason && (strcmp(reason, "Expired") == 0 || strcmp(reason, "Gone") == 0)))
            inf->gone = 1;
        stop = 1;
        goto out;
    }
    if (strcmp(type, "BOOKMARK") == 0) {
        if (set_rv(inf, obj))
            stop = 1;
        goto out;
    }
    k8s_event_type et;
    if (strcmp(type, "ADDED") == 0)
        et = K8S_ADDED;
    else if (strcmp(type, "MODIFIED") == 0)
        et = K8S_MODIFIED;
    else if (strcmp(type, "DELETED") == 0)
        et = K8S_DELETED;
    else
        goto out;   /* unknown type: ignore */
    if (!(key = k8s_object_key(obj)) || set_rv(inf, obj)) {
        stop = 1;
        inf->need_list = 1;   /* lost an event to ENOMEM: resync */
        goto out;
    }
    trim(obj);
    inf->events_this_watch++;
    if (et == K8S_DELETED) {
        pthread_mutex_lock(&inf->mu);
        cJSON *was = store_take(&inf->store, key);
        pthread_mutex_unlock(&inf->mu);
        cJSON_Delete(was);
        inf->o.on_event(inf->o.ud, et, key, obj);
    } else {
        cJSON *copy = cJSON_Duplicate(obj, 1);
        int prc;
        pthread_mutex_lock(&inf->mu);
        /* an ADDED for a key we have is a MODIFIED to the handler */
        if (et == K8S_ADDED && store_find(&inf->store, key))
            et = K8S_MODIFIED;
        prc = copy ? store_put(&inf->store, key, copy) : K8S_ENOMEM;
        pthread_mutex_unlock(&inf->mu);
        if (prc) {
            stop = 1;
            inf->need_list = 1;
            goto out;
        }
        inf->o.on_event(inf->o.ud, et, key, obj);
    }
out:
    free(key);
    cJSON_Delete(obj);
    cJSON_Delete(ev);
    return stop;
}

static char *watch_path(k8s_informer *inf)
{
    char *base = k8s_path(&inf->res, inf->ns, NULL, NULL), *rv = NULL, *fs = NULL, *ls = NULL;
    k8s_buf b;
    int rc;
    long timeout = 300 + rand() % 301;   /* 300..600 s, as client-go */

    k8s_buf_init(&b, 64 * 1024);
    if (!base || !(rv = k8s_escape(inf->rv ? inf->rv : "")) ||
        (inf->field_selector && !(fs = k8s_escape(inf->field_selector))) ||
        (inf->label_selector && !(ls = k8s_escape(inf->label_selector)))) {
        rc = K8S_ENOMEM;
        goto out;
    }
    rc = k8s_buf_printf(&b, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld&resourceVersion=%s",
                        base, timeout, rv);
    if (!rc && fs)
        rc = k8s_buf_printf(&b, "&fieldSelector=%s", fs);
    if (!rc && ls)
        rc = k8s_buf_printf(&b, "&labelSelector=%s", ls);
out:
    free(base);
    free(rv);
    free(fs);
    free(ls);
    if (rc) {
        k8s_buf_release(&b);
        return NULL;
    }
    return k8s_buf_detach(&b, NULL);
}

/* Report a failure to the on_error hook (if any). */
static void report(k8s_informer *inf, const char *what, const k8s_err *err, double retry_in)
{
    if (inf->o.on_error)
        inf->o.on_error(inf->o.ud, what, err, retry_in);
}

static void *run(void *arg)
{
    k8s_informer *inf = arg;
    int failures = 0;            /* failed lists/watches in a row */
    k8s_err err;

    while (!atomic_load(&inf->stopping)) {
        const char *what = NULL;   /* set when this round failed */
        k8s_err_clear(&err);
        if (inf->need_list) {
            if (relist(inf, &err))
                what = "list";
        }
        if (!what && !atomic_load(&inf->stopping)) {
            char *path = watch_path(inf);
            double t0 = k8s__now();
            int rc, just_listed = !inf->need_list && inf->listed_rv_unused;
            if (!path) {
                k8s_err_set(&err, K8S_ENOMEM, "out of memory");
                what = "watch";
            } else {
                inf->events_this_watch = 0;
                inf->gone = 0;
                rc = k8s_stream(inf->list_client, path, inf->o.idle_timeout_s, on_watch_line, inf, &err);
                free(path);
                if (atomic_load(&inf->stopping))
                    break;
                double lived = k8s__now() - t0;
                int quick_and_empty = lived < 1.0 && inf->events_this_watch == 0;
                /* A watch that lived (or delivered) was healthy: whatever
                 * ended it, the next failure starts the backoff afresh.
                 * (Before, the count was only reset when the watch also
                 * ended cleanly, so a server restart after hours of health
                 * inherited the delay of an outage long past.) */
                if (lived >= 30.0 || inf->events_this_watch > 0)
                    failures = 0;
                if (inf->events_this_watch > 0)
                    inf->listed_rv_unused = 0;
                if (inf->gone || (rc == K8S_EAPI && (err.code == 410 || k8s_err_is(&err, "Expired") ||
                                                     k8s_err_is(&err, "Gone")))) {
                    /* relist at once: not a failure, unless the watch from
                     * a list's own resourceVersion is refused at once (a
                     * server that cannot serve it would make us list in a
                     * tight loop) */
                    inf->need_list = 1;
                    if (just_listed && quick_and_empty) {
                        k8s_err_set(&err, K8S_EAPI, "watch from a fresh list's resourceVersion expired at once");
                        what = "watch";
                    }
                } else if (rc == K8S_OK || rc == K8S_ESTOPPED ||
                           (rc == K8S_ETIMEOUT && lived >= (double)inf->o.idle_timeout_s)) {
                    /* the server ended the watch (timeoutSeconds), or it
                     * was silent for idle_timeout_s: watch again at once.
                     * Silence is not a failure: a server before 1.27 sends
                     * a bookmark only just before timeoutSeconds (300..600
                     * s), so a quiet resource's watch is cut every 90 s
                     * (was: logged as a failed watch, with a backoff). */
                    if (quick_and_empty) {
                        k8s_err_set(&err, K8S_ECONNECT, "watch ended after %.1f s without events", lived);
                        what = "watch";
                    }
                } else {
                    what = "watch";
                }
                if (inf->o.on_watch_restart)
                    inf->o.on_watch_restart(inf->o.ud);
            }
        }
        if (what) {
            double d = k8s__backoff(inf->o.backoff_initial_s, inf->o.backoff_max_s, failures,
                                    (double)rand() / RAND_MAX);
            /* a server that asked us to wait (429 Retry-After) is obeyed,
             * within the cap */
            if (err.retry_after > 0 && (double)err.retry_after > d)
                d = (double)err.retry_after < inf->o.backoff_max_s ? (double)err.retry_after
                                                                    : inf->o.backoff_max_s;
            if (failures < 1000)
                failures++;
            report(inf, what, &err, d);
            if (nap(inf, d))
                break;
        }
    }
    return NULL;
}

int k8s_informer_start(k8s_informer *inf, k8s_err *err)
{
    if (inf->started)
        return K8S_OK;
    if (pthread_create(&inf->th, NULL, run, inf))
        return k8s_err_set(err, K8S_ENOMEM, "informer: cannot start a thread");
    inf->started = 1;
    return K8S_OK;
}

int k8s_informer_synced(k8s_informer *inf)
{
    int s;
    pthread_mutex_lock(&inf->mu);
    s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

int k8s_informer_wait_synced(k8s_informer *inf, double timeout_s)
{
    struct timespec ts;
    int s;
    k8s__deadline(&ts, timeout_s);
    pthread_mutex_lock(&inf->mu);
    while (!inf->synced && !atomic_load(&inf->stopping))
        if (pthread_cond_timedwait(&inf->cv, &inf->mu, &ts) == ETIMEDOUT)
            break;
    s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

cJSON *k8s_informer_get(k8s_informer *inf, const char *key)
{
    cJSON *copy = NULL;
    pthread_mutex_lock(&inf->mu);
    struct entry *e = store_find(&inf->store, key);
    if (e)
        copy = cJSON_Duplicate(e->obj, 1);
    pthread_mutex_unlock(&inf->mu);
    return copy;
}

int k8s_informer_keys(k8s_informer *inf, void (*fn)(void *ud, const char *key), void *ud)
{
    char **keys;
    size_t n = 0;
    pthread_mutex_lock(&inf->mu);
    keys = calloc(inf->store.n + 1, sizeof(*keys));
    if (!keys) {
        pthread_mutex_unlock(&inf->mu);
        return K8S_ENOMEM;
    }
    for (size_t i = 0; i < inf->store.nb; i++)
        for (struct entry *e = inf->store.b[i]; e; e = e->next)
            if ((keys[n] = strdup(e->key)) != NULL)
                n++;
    pthread_mutex_unlock(&inf->mu);
    for (size_t i = 0; i < n; i++) {
        fn(ud, keys[i]);
        free(keys[i]);
    }
    free(keys);
    return K8S_OK;
}

size_t k8s_informer_size(k8s_informer *inf)
{
    size_t n;
    pthread_mutex_lock(&inf->mu);
    n = inf->store.n;
    pthread_mutex_unlock(&inf->mu);
    return n;
}

double k8s_informer_last_contact_age(k8s_informer *inf)
{
    double t;
    pthread_mutex_lock(&inf->mu);
    t = inf->last_contact;
    pthread_mutex_unlock(&inf->mu);
    return t > 0 ? k8s__now() - t : 1e9;
}

void k8s_informer_stop(k8s_informer *inf)
{
    if (!inf || !inf->started)
        return;
    atomic_store(&inf->stopping, 1);
    k8s_client_stop(inf->list_client);
    pthread_mutex_lock(&inf->mu);
    pthread_cond_broadcast(&inf->cv);
    pthread_mutex_unlock(&inf->mu);
    pthread_join(inf->th, NULL);
    inf->started = 0;
}

void k8s_informer_free(k8s_informer *inf)
{
    if (!inf)
        return;
    k8s_informer_stop(inf);
    k8s_client_free(inf->list_client);
    store_release(&inf->store);
    pthread_mutex_destroy(&inf->mu);
    pthread_cond_destroy(&inf->cv);
    free(inf->group);
    free(inf->version);
    free(inf->plural);
    free(inf->ns);
    free(inf->field_selector);
    free(inf->label_selector);
    free(inf->rv);
    free(inf);
}
