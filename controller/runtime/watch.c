/*
 * watch.c - watches on the tuned cdn Deployment(s) (see runtime.h).
 *
 * One informer per Deployment, narrowed by namespace and field selector
 * metadata.name=<name>, so the cache holds one object whatever the size of
 * the cluster. Any change re-queues the TianqingUpgrades, whose reconcile
 * puts the tuning back if it was lost.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime.h"
#include "log.h"
#include "metrics.h"

static void requeue(void *ud, const char *key)
{
    k8s_queue_add(((tqu_controller *)ud)->queue, key);
}

static void on_cdn_event(void *ud, k8s_event_type type, const char *key, const cJSON *obj)
{
    tqu_controller *ctl = ud;
    (void)obj;
    if (tqu_log_enabled(TQU_DEBUG))
        tqu_log(TQU_DEBUG, "cdn Deployment changed", "deployment", key,
                "type", type == K8S_ADDED ? "ADDED" : type == K8S_MODIFIED ? "MODIFIED" : "DELETED", NULL);
    k8s_informer_keys(ctl->informer, requeue, ctl);
}

static void on_restart(void *ud)
{
    (void)ud;
    tqu_metrics_watch_restart("deployments");
}

static void on_relist(void *ud)
{
    (void)ud;
    tqu_metrics_watch_relist("deployments");
}

void tqu_controller_watch_cdn(tqu_controller *ctl, const char *ns, const char *name)
{
    char fs[512];
    k8s_err err;
    char ebuf[1200];

    for (int i = 0; i < ctl->ncdn; i++)
        if (!strcmp(ctl->cdn[i].ns, ns) && !strcmp(ctl->cdn[i].name, name))
            return;
    if (ctl->ncdn >= (int)(sizeof(ctl->cdn) / sizeof(ctl->cdn[0]))) {
        tqu_log(TQU_WARN, "too many cdn Deployments to watch; drift of this one is corrected only on resync",
                "namespace", ns, "deployment", name, NULL);
        return;
    }
    snprintf(fs, sizeof(fs), "metadata.name=%s", name);
    k8s_informer_opts io = {
        .resource = &K8S_DEPLOYMENTS,
        .namespace = ns,
        .field_selector = fs,
        .on_event = on_cdn_event,
        .ud = ctl,
        .on_watch_restart = on_restart,
        .on_relist = on_relist,
    };
    struct tqu_cdn_watch *w = &ctl->cdn[ctl->ncdn];
    w->ns = strdup(ns);
    w->name = strdup(name);
    if (!w->ns || !w->name || k8s_informer_new(ctl->cfg, &io, &w->inf, &err) ||
        k8s_informer_start(w->inf, &err)) {
        tqu_log(TQU_WARN, "cannot watch the cdn Deployment", "namespace", ns, "deployment", name,
                "error", w->ns && w->name ? k8s_err_str(&err, ebuf, sizeof(ebuf)) : "out of memory", NULL);
        k8s_informer_free(w->inf);
        free(w->ns);
        free(w->name);
        memset(w, 0, sizeof(*w));
        return;
    }
    ctl->ncdn++;
    tqu_log(TQU_INFO, "watching the cdn Deployment to keep its tuning", "namespace", ns, "deployment", name, NULL);
}

void tqu_controller_release_watches(tqu_controller *ctl)
{
    for (int i = 0; i < ctl->ncdn; i++) {
        k8s_informer_free(ctl->cdn[i].inf);
        free(ctl->cdn[i].ns);
        free(ctl->cdn[i].name);
    }
    ctl->ncdn = 0;
    free(ctl->active_key);
    ctl->active_key = NULL;
}
