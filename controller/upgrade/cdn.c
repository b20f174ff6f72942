/*
 * cdn.c - step 7, CdnTuning: the darwin-cdn Deployment's cache volume and
 * anti-affinity, saved first, and kept in place after success.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "host/fsutil.h"
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"

/* --------------------------------------------------------------- CdnTuning */

static const char *app_label(const cJSON *d)
{
    const char *a = k8s_json_str(d, "spec", "template", "metadata", "labels", "app", NULL);
    return a ? a : k8s_json_str(d, "spec", "selector", "matchLabels", "app", NULL);
}

/* The cdn container: named darwin-cdn, else named like the Deployment, else
 * the only one. */
static const cJSON *cdn_container(const cJSON *d, const char *dname)
{
    const cJSON *c, *only = NULL;
    int n = 0;
    cJSON_ArrayForEach(c, k8s_json_get(d, "spec", "template", "spec", "containers", NULL)) {
        const char *name = k8s_json_str(c, "name", NULL);
        if (name && (!strcmp(name, CDN_CONTAINER) || !strcmp(name, dname)))
            return c;
        only = c;
        n++;
    }
    return n == 1 ? only : NULL;
}

static int has_volume(const cJSON *d, const char *host_path)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, k8s_json_get(d, "spec", "template", "spec", "volumes", NULL)) {
        const char *n = k8s_json_str(v, "name", NULL);
        const char *p = k8s_json_str(v, "hostPath", "path", NULL);
        const char *t = k8s_json_str(v, "hostPath", "type", NULL);
        if (n && !strcmp(n, CDN_VOLUME))
            return p && !strcmp(p, host_path) && t && !strcmp(t, "DirectoryOrCreate");
    }
    return 0;
}

static int has_mount(const cJSON *c)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, k8s_json_get(c, "volumeMounts", NULL)) {
        const char *n = k8s_json_str(m, "name", NULL), *p = k8s_json_str(m, "mountPath", NULL);
        if (n && p && !strcmp(n, CDN_VOLUME) && !strcmp(p, CDN_MOUNT))
            return 1;
    }
    return 0;
}

static int has_anti_affinity(const cJSON *d, const char *app)
{
    const cJSON *t, *e, *v;
    cJSON_ArrayForEach(t, k8s_json_get(d, "spec", "template", "spec", "affinity", "podAntiAffinity",
                                       "requiredDuringSchedulingIgnoredDuringExecution", NULL)) {
        const char *tk = k8s_json_str(t, "topologyKey", NULL);
        if (!tk || strcmp(tk, HOST_KEY))
            continue;
        cJSON_ArrayForEach(e, k8s_json_get(t, "labelSelector", "matchExpressions", NULL)) {
            const char *k = k8s_json_str(e, "key", NULL), *op = k8s_json_str(e, "operator", NULL);
            if (!k || !op || strcmp(k, "app") || strcmp(op, "In"))
                continue;
            cJSON_ArrayForEach(v, k8s_json_get(e, "values", NULL))
                if (cJSON_IsString(v) && !strcmp(v->valuestring, app))
                    return 1;
        }
        const char *ml = k8s_json_str(t, "labelSelector", "matchLabels", "app", NULL);
        if (ml && !strcmp(ml, app))
            return 1;
    }
    return 0;
}

/*
 * The strategic merge patch that tunes the Deployment (only the parts that
 * are missing), or NULL when it is already tuned. *why gets a failure text
 * when the Deployment cannot be tuned (no app label, no cdn container).
 */
cJSON *tqu__cdn_patch(const tqu_spec *spec, const cJSON *d, const char **why, char *what, size_t wlen)
{
    const char *dname = k8s_json_str(d, "metadata", "name", NULL);
    const char *app = app_label(d);
    const cJSON *c = cdn_container(d, dname ? dname : "");
    int want_vol = spec->cdn_cache_persistence, want_aa = spec->cdn_anti_affinity;
    int need_vol, need_mount, need_aa;
    cJSON *patch = NULL, *pod;

    *why = NULL;
    what[0] = '\0';
    if (want_vol && !c) {
        *why = "no container named darwin-cdn (or like the Deployment) and more than one container";
        return NULL;
    }
    if (want_aa && !app) {
        *why = "the Deployment's pods have no app label to spread on";
        return NULL;
    }
    need_vol = want_vol && !has_volume(d, spec->cdn_cache_host_path);
    need_mount = want_vol && !has_mount(c);
    need_aa = want_aa && !has_anti_affinity(d, app);
    if (!need_vol && !need_mount && !need_aa)
        return NULL;

    /* cJSON's Add* helpers return NULL (and free what they made) on
     * failure and accept NULL parents, so one check per item suffices */
    int bad = 0;
    patch = cJSON_CreateObject();
    pod = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "spec"),
                                                          "template"), "spec");
    if (!pod)
        goto nomem;
    if (need_vol) {
        cJSON *vol = cJSON_CreateObject();
        cJSON *hp = cJSON_AddObjectToObject(vol, "hostPath");
        bad |= !cJSON_AddStringToObject(vol, "name", CDN_VOLUME) ||
               !cJSON_AddStringToObject(hp, "path", spec->cdn_cache_host_path) ||
               !cJSON_AddStringToObject(hp, "type", "DirectoryOrCreate");
        bad |= k8s_json_append(cJSON_AddArrayToObject(pod, "volumes"), vol);
    }
    if (need_mount) {
        cJSON *ctr = cJSON_CreateObject(), *m = cJSON_CreateObject();
        bad |= !cJSON_AddStringToObject(m, "name", CDN_VOLUME) ||
               !cJSON_AddStringToObject(m, "mountPath", CDN_MOUNT) ||
               !cJSON_AddStringToObject(ctr, "name", k8s_json_str(c, "name", NULL));
        bad |= k8s_json_append(cJSON_AddArrayToObject(ctr, "volumeMounts"), m);
        bad |= k8s_json_append(cJSON_AddArrayToObject(pod, "containers"), ctr);
    }
    if (need_aa) {
        /* a required anti-affinity on the Deployment's real app label (the
         * runbook's literal '$deployment_name' was never expanded) */
        cJSON *aa = cJSON_AddObjectToObject(cJSON_AddObjectToObject(pod, "affinity"), "podAntiAffinity");
        cJSON *term = cJSON_CreateObject(), *expr = cJSON_CreateObject();
        bad |= !cJSON_AddStringToObject(expr, "key", "app") ||
               !cJSON_AddStringToObject(expr, "operator", "In") ||
               !cJSON_AddStringToObject(term, "topologyKey", HOST_KEY);
        bad |= k8s_json_append(cJSON_AddArrayToObject(expr, "values"), cJSON_CreateString(app));
        bad |= k8s_json_append(cJSON_AddArrayToObject(cJSON_AddObjectToObject(term, "labelSelector"),
                                                      "matchExpressions"), expr);
        bad |= k8s_json_append(cJSON_AddArrayToObject(aa, "requiredDuringSchedulingIgnoredDuringExecution"), term);
    }
    if (bad)
        goto nomem;
    snprintf(what, wlen, "%s%s%s", need_vol || need_mount ? "hostPath cache volume " CDN_VOLUME " at " CDN_MOUNT : "",
             (need_vol || need_mount) && need_aa ? " and " : "",
             need_aa ? "required pod anti-affinity on app=" : "");
    if (need_aa) {
        size_t l = strlen(what);
        snprintf(what + l, wlen - l, "%s per %s", app, HOST_KEY);
    }
    return patch;
nomem:
    cJSON_Delete(patch);
    *why = "out of memory";
    return NULL;
}

/* Tune the Deployment if needed. Returns the outcome kind. */
static void cdn_tune(tqu_run *run, tqu_outcome *o, int restoring)
{
    const tqu_spec *sp = &run->spec;
    k8s_err err;
    char ebuf[1200], ferr[512], what[512];
    cJSON *d = NULL, *patch;
    const char *why;

    if (!sp->cdn_cache_persistence && !sp->cdn_anti_affinity) {
        tqu_out(o, TQU_OUT_SKIPPED, "CdnTuningDisabled", "spec.cdn.cachePersistence and antiAffinity are both false");
        return;
    }
    /* a hostPath mounted into pods on every node: strictly below an
     * allowed root, checked again here (the tuning is also kept in place
     * long after Validate ran, perhaps under other --allowed-root flags) */
    if (sp->cdn_cache_persistence && tqu__confine(run, "spec.cdn.cacheHostPath", sp->cdn_cache_host_path, 1, o))
        return;
    if (k8s_get(run->ctl->client, &K8S_DEPLOYMENTS, sp->cdn_namespace, sp->cdn_deployment, &d, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "CdnDeploymentNotFound",
                "Deployment %s/%s not found: check spec.cdn.namespace and spec.cdn.deployment",
                sp->cdn_namespace, sp->cdn_deployment);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Deployment %s/%s: %s", sp->cdn_namespace,
                sp->cdn_deployment, k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    patch = tqu__cdn_patch(sp, d, &why, what, sizeof(what));
    if (why) {
        tqu_out(o, TQU_OUT_BLOCKED, "CdnDeploymentUnexpected", "Deployment %s/%s cannot be tuned: %s",
            sp->cdn_namespace, sp->cdn_deployment, why);
        goto out;
    }
    if (!patch) {
        tqu_out(o, TQU_OUT_DONE, "CdnTuned", "Deployment %s/%s has the cache volume and the anti-affinity",
            sp->cdn_namespace, sp->cdn_deployment);
        goto out;
    }
    /* the Deployment as it was, before the first change */
    if (tqu__save_manifest(run, d, restoring ? "darwin-cdn.before-restore.json" : "darwin-cdn.before-tuning.json",
                           ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot save Deployment %s/%s before patching it: %s",
            sp->cdn_namespace, sp->cdn_deployment, ferr);
        goto out;
    }
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        goto out;
    }
    if (k8s_patch(run->ctl->client, &K8S_DEPLOYMENTS, sp->cdn_namespace, sp->cdn_deployment, NULL,
                  K8S_CT_STRATEGIC_PATCH, patch, NULL, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot patch Deployment %s/%s: %s", sp->cdn_namespace,
            sp->cdn_deployment, k8s_err_str(&err, ebuf, sizeof(ebuf)));
        goto out;
    }
    tqu_log(TQU_INFO, restoring ? "restored the cdn tuning" : "tuned the cdn Deployment", "key", run->key,
            "deployment", sp->cdn_deployment, "patch", what, NULL);
    tqu_out(o, TQU_OUT_DONE, restoring ? "CdnTuningRestored" : "CdnTuned", "patched Deployment %s/%s: %s",
        sp->cdn_namespace, sp->cdn_deployment, what);
out:
    cJSON_Delete(patch);
    cJSON_Delete(d);
}

void tqu__step_cdn(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    tqu_watch_object(run->ctl, &K8S_DEPLOYMENTS, run->spec.cdn_namespace, run->spec.cdn_deployment, &TQU_RESOURCE, run->key);
    cdn_tune(run, o, 0);
}

void tqu_steps_keep_cdn_tuned(tqu_run *run, tqu_result *res)
{
    tqu_outcome o;
    memset(&o, 0, sizeof(o));
    tqu_watch_object(run->ctl, &K8S_DEPLOYMENTS, run->spec.cdn_namespace, run->spec.cdn_deployment, &TQU_RESOURCE, run->key);
    cdn_tune(run, &o, 1);
    if (o.kind == TQU_OUT_ERROR)
        res->error = 1;
    else if (o.kind == TQU_OUT_DONE && o.reason && !strcmp(o.reason, "CdnTuningRestored"))
        tqu_event(run, "Warning", "CdnTuningRestored", "%s (it had been changed back)", o.message);
    else if (o.kind == TQU_OUT_BLOCKED || o.kind == TQU_OUT_FAILED)
        tqu_log(TQU_WARN, "cannot keep the cdn tuning", "key", run->key, "message", o.message, NULL);
}
