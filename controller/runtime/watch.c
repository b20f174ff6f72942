/*
 * watch.c - secondary watches (see runtime.h).
 *
 * One informer per watched object, narrowed by namespace and field
 * selector metadata.name=<name>, so its cache holds one object whatever
 * the size of the cluster. Any change re-queues the watch's owners, whose
 * reconcile puts back what they keep in place. The owner lists are read
 * by the informers' threads and changed by the worker: watch_lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime.h"
#include "runtime_int.h"
#include "log.h"
#include "metrics.h"

struct owner {
    struct owner *next;
    const k8s_resource *res;
    char *key;
};

struct tqu_watch {
    struct tqu_watch *next;
    tqu_controller *ctl;
    const k8s_resource *res;
    char *ns, *name;
    k8s_informer *inf;
    struct owner *owners;
};

static void on_change(void *ud, k8s_event_type type, const char *key, const cJSON *obj)
{
    struct tqu_watch *w = ud;
    (void)obj;
    if (tqu_log_enabled(TQU_DEBUG))
        tqu_log(TQU_DEBUG, "watched object changed", "resource", w->res->plural, "key", key,
                "type", type == K8S_ADDED ? "ADDED" : type == K8S_MODIFIED ? "MODIFIED" : "DELETED", NULL);
    pthread_mutex_lock(&w->ctl->watch_lock);
    for (struct owner *o = w->owners; o; o = o->next)
        tqu_requeue(w->ctl, o->res, o->key);
    pthread_mutex_unlock(&w->ctl->watch_lock);
}

static void on_restart(void *ud)
{
    tqu_metrics_watch_restart(((struct tqu_watch *)ud)->res->plural);
}

static void on_relist(void *ud)
{
    tqu_metrics_watch_relist(((struct tqu_watch *)ud)->res->plural);
}

static void watch_free(struct tqu_watch *w)
{
    if (!w)
        return;
    k8s_informer_free(w->inf);
    while (w->owners) {
        struct owner *o = w->owners;
        w->owners = o->next;
        free(o->key);
        free(o);
    }
    free(w->ns);
    free(w->name);
    free(w);
}

static int same_res(const k8s_resource *a, const k8s_resource *b)
{
    return a == b || (!strcmp(a->plural, b->plural) && !strcmp(a->group, b->group));
}

int tqu_watch_object(tqu_controller *ctl, const k8s_resource *res, const char *ns, const char *name,
                     const k8s_resource *owner_res, const char *owner_key)
{
    struct tqu_watch *w;
    struct owner *o;
    char fs[512], ebuf[1200];
    k8s_err err;
    int rc = -1;

    for (w = ctl->watches; w; w = w->next)
        if (same_res(w->res, res) && !strcmp(w->ns, ns) && !strcmp(w->name, name))
            break;
    if (w) {
        for (o = w->owners; o; o = o->next)
            if (same_res(o->res, owner_res) && !strcmp(o->key, owner_key))
                return 0;
    }
    o = calloc(1, sizeof(*o));
    if (!o || !(o->key = strdup(owner_key)))
        goto out;
    o->res = owner_res;
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w || !(w->ns = strdup(ns)) || !(w->name = strdup(name)))
            goto fail_new;
        w->ctl = ctl;
        w->res = res;
        w->owners = o;   /* before the informer starts: its first ADDED re-queues the owner */
        snprintf(fs, sizeof(fs), "metadata.name=%s", name);
        k8s_informer_opts io = {
            .resource = res,
            .namespace = ns,
            .field_selector = fs,
            .on_event = on_change,
            .ud = w,
            .on_watch_restart = on_restart,
            .on_relist = on_relist,
        };
        if (k8s_informer_new(ctl->cfg, &io, &w->inf, &err) || k8s_informer_start(w->inf, &err)) {
            tqu_log(TQU_WARN, "cannot watch an object; its drift is corrected only on resync",
                    "resource", res->plural, "namespace", ns, "name", name,
                    "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            o = NULL;   /* freed with w */
            goto fail_new;
        }
        w->next = ctl->watches;
        ctl->watches = w;
        tqu_log(TQU_INFO, "watching an object to keep it in shape", "resource", res->plural,
                "namespace", ns, "name", name, "owner", owner_key, NULL);
        return 0;
    }
    pthread_mutex_lock(&ctl->watch_lock);
    o->next = w->owners;
    w->owners = o;
    pthread_mutex_unlock(&ctl->watch_lock);
    return 0;

fail_new:
    watch_free(w);
out:
    if (o) {
        free(o->key);
        free(o);
    }
    if (rc)
        tqu_log(TQU_WARN, "cannot watch an object", "resource", res->plural, "namespace", ns, "name", name, NULL);
    return rc;
}

void tqu_watch_drop_owner(tqu_controller *ctl, const k8s_resource *owner_res, const char *owner_key)
{
    struct tqu_watch **pw = &ctl->watches;
    while (*pw) {
        struct tqu_watch *w = *pw;
        pthread_mutex_lock(&ctl->watch_lock);
        for (struct owner **po = &w->owners; *po;) {
            struct owner *o = *po;
            if (same_res(o->res, owner_res) && !strcmp(o->key, owner_key)) {
                *po = o->next;
                free(o->key);
                free(o);
            } else {
                po = &o->next;
            }
        }
        int empty = w->owners == NULL;
        pthread_mutex_unlock(&ctl->watch_lock);
        if (empty) {
            *pw = w->next;
            tqu_log(TQU_INFO, "no longer watching an object", "resource", w->res->plural,
                    "namespace", w->ns, "name", w->name, NULL);
            watch_free(w);   /* joins its thread: no callback runs after this */
        } else {
            pw = &w->next;
        }
    }
}

void tqu__watches_free(tqu_controller *ctl)
{
    while (ctl->watches) {
        struct tqu_watch *w = ctl->watches;
        ctl->watches = w->next;
        watch_free(w);
    }
}
