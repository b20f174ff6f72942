/*
 * watch.c - drift in etcd, seen without polling: for each TianqingTuning a
 * thread runs etcd_watch on its keys (their common prefix, or each key
 * when they share none) and re-queues the resource on every change of one
 * of them. The registry is guarded by one mutex; the worker starts and
 * stops watches, the watch threads only call tqu_requeue (thread-safe).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/log.h"
#include "tuning_int.h"

struct tt_thread {
    etcd_client *c;
    char prefix[520];
    pthread_t th;
    int started;
    struct tt_watch *w;
};

struct tt_watch {
    char key[512];                   /* the owner "namespace/name" */
    char sig[TQU_TT_MAX_SETTINGS * (520 + 256 + 2) + 16 * 520 + 300];   /* endpoints, TLS, key=value... */
    char keys[TQU_TT_MAX_SETTINGS][520];
    char want[TQU_TT_MAX_SETTINGS][256];   /* each key's desired value */
    int nkeys;
    tqu_controller *ctl;
    struct tt_thread th[TQU_TT_MAX_SETTINGS];
    int nth;
    struct tt_watch *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct tt_watch *watches;

/* A change of one of the keys re-queues the owner, unless it puts the
 * desired value (the controller's own correction: nothing to do). */
static int on_event(void *ud, const etcd_event *ev)
{
    struct tt_thread *t = ud;
    struct tt_watch *w = t->w;
    int ours = ev->type == ETCD_EVENT_COMPACTED;
    for (int i = 0; !ours && i < w->nkeys; i++)
        if (ev->key && !strcmp(ev->key, w->keys[i]))
            ours = ev->type != ETCD_EVENT_PUT || !ev->value || strcmp(ev->value, w->want[i]) != 0;
    if (ours)
        tqu_requeue(w->ctl, &TQU_TT_RESOURCE, w->key);
    return 0;
}

/* etcd is back after an outage: look again (a deletion waiting for it). */
static void on_open(void *ud)
{
    struct tt_thread *t = ud;
    tqu_log(TQU_INFO, "etcd watch open again", "key", t->w->key, NULL);
    tqu_requeue(t->w->ctl, &TQU_TT_RESOURCE, t->w->key);
}

static void *run_thread(void *ud)
{
    struct tt_thread *t = ud;
    etcd_watch_opts opts = { .prefix = 1, .on_open = on_open };
    etcd_err e;
    memset(&e, 0, sizeof(e));
    int rc = etcd_watch(t->c, t->prefix, &opts, on_event, t, &e);
    if (rc != ETCD_ESTOPPED)
        tqu_log(TQU_WARN, "etcd watch ended", "key", t->w->key, "error", e.message, NULL);
    return NULL;
}

static void stop_one(struct tt_watch *w)
{
    for (int i = 0; i < w->nth; i++)
        if (w->th[i].c)
            etcd_client_stop(w->th[i].c);
    for (int i = 0; i < w->nth; i++) {
        if (w->th[i].started)
            pthread_join(w->th[i].th, NULL);
        etcd_client_free(w->th[i].c);
    }
    free(w);
}

/* Unlink the owner's watch (under lock); the caller stops it. */
static struct tt_watch *take(const char *key)
{
    for (struct tt_watch **p = &watches; *p; p = &(*p)->next)
        if (!strcmp((*p)->key, key)) {
            struct tt_watch *w = *p;
            *p = w->next;
            return w;
        }
    return NULL;
}

void tqu_tt_watch_stop(const char *key)
{
    pthread_mutex_lock(&lock);
    struct tt_watch *w = take(key);
    pthread_mutex_unlock(&lock);
    if (w)
        stop_one(w);
}

void tqu_tt_watch_stop_all(void)
{
    pthread_mutex_lock(&lock);
    struct tt_watch *w = watches;
    watches = NULL;
    pthread_mutex_unlock(&lock);
    while (w) {
        struct tt_watch *next = w->next;
        stop_one(w);
        w = next;
    }
}

int tqu_tt_watch_ensure(tqu_tt_run *run)
{
    struct tt_watch *w = calloc(1, sizeof(*w)), *old;
    tqu_outcome o;
    size_t off = 0, common = 0;
    if (!w)
        return -1;
    snprintf(w->key, sizeof(w->key), "%s", run->key);
    w->ctl = run->ctl;
    for (size_t i = 0; i < run->spec.n_endpoints; i++)
        off += (size_t)snprintf(w->sig + off, sizeof(w->sig) - off, "%s,", run->spec.endpoints[i]);
    off += (size_t)snprintf(w->sig + off, sizeof(w->sig) - off, "|%s|", run->spec.tls_secret);
    for (int i = 0; i < run->nset; i++)
        if (run->set[i].kind == TQU_TT_ETCD) {
            snprintf(w->want[w->nkeys], sizeof(w->want[0]), "%s", run->set[i].desired);
            snprintf(w->keys[w->nkeys++], sizeof(w->keys[0]), "%s", run->set[i].key);
            if (off < sizeof(w->sig))
                off += (size_t)snprintf(w->sig + off, sizeof(w->sig) - off, "%s=%s,", run->set[i].key,
                                        run->set[i].desired);
        }
    if (!w->nkeys) {
        free(w);
        tqu_tt_watch_stop(run->key);
        return 0;
    }
    pthread_mutex_lock(&lock);
    for (old = watches; old; old = old->next)
        if (!strcmp(old->key, w->key))
            break;
    int same = old && !strcmp(old->sig, w->sig);
    pthread_mutex_unlock(&lock);
    if (same) {
        free(w);
        return 0;
    }
    tqu_tt_watch_stop(run->key);

    /* the keys' common prefix: one stream; none: one stream per key */
    common = strlen(w->keys[0]);
    for (int i = 1; i < w->nkeys; i++) {
        size_t j = 0;
        while (j < common && w->keys[i][j] == w->keys[0][j])
            j++;
        common = j;
    }
    w->nth = common ? 1 : w->nkeys;
    for (int i = 0; i < w->nth; i++) {
        struct tt_thread *t = &w->th[i];
        t->w = w;
        if (common)
            snprintf(t->prefix, sizeof(t->prefix), "%.*s", (int)common, w->keys[0]);
        else
            snprintf(t->prefix, sizeof(t->prefix), "%s", w->keys[i]);
        memset(&o, 0, sizeof(o));
        if (tqu_tt_etcd_open(run, &o, &t->c))
            goto fail;
        if (pthread_create(&t->th, NULL, run_thread, t))
            goto fail;
        t->started = 1;
    }
    pthread_mutex_lock(&lock);
    w->next = watches;
    watches = w;
    pthread_mutex_unlock(&lock);
    return 0;
fail:
    tqu_log(TQU_WARN, "cannot watch the etcd keys", "key", run->key, NULL);
    stop_one(w);
    return -1;
}
