/*
 * steps_cluster.c - the steps that change or check the cluster through the
 * API: SabreCleanup, CdnTuning (and keeping it in place), Verify, and the
 * cluster-side checks of Preflight (SSH Secret, node clocks).
 *
 * Safety: every object is saved to the request's state folder (atomically)
 * before it is deleted or patched, and nothing is sent when the cluster is
 * already as wanted (no churn).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "host/fsutil.h"
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"
#include "version.h"

#define SABRE_NS "default-sabre-server"
#define SABRE_DEPLOY "sabre-server"
#define SABRE_SVC "sabre-server-service"
#define CDN_VOLUME "darwin-cdn-data"
#define CDN_MOUNT "/home/s/darwin-cdn/data/"
#define CDN_CONTAINER "darwin-cdn"
#define HOST_KEY "kubernetes.io/hostname"


/* Save obj as <dir>/<file> (once: an existing copy is the original). */
int tqu__save_manifest(tqu_run *run, const cJSON *obj, const char *file, char *err, size_t errlen)
{
    char path[PATH_MAX + 256];
    struct stat st;
    char *text;
    int rc;

    if (tqu_mkdir_p(run->dir, 0700, err, errlen))
        return -1;
    snprintf(path, sizeof(path), "%s/%s", run->dir, file);
    if (stat(path, &st) == 0)
        return 0;
    text = cJSON_Print(obj);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = tqu_write_file_atomic(path, text, strlen(text), 0600, err, errlen);
    free(text);
    return rc ? -1 : 0;
}

/* ------------------------------------------------------------ SabreCleanup */

static int sabre_remove(tqu_run *run, const k8s_resource *r, const char *name, const char *file,
                        const char *kind, tqu_outcome *o, char *note, size_t nlen)
{
    k8s_err err;
    char ebuf[1200], ferr[512];
    cJSON *obj = NULL;

    if (k8s_get(run->ctl->client, r, SABRE_NS, name, &obj, &err)) {
        if (k8s_err_is(&err, "NotFound")) {
            snprintf(note, nlen, "%s %s/%s already gone", kind, SABRE_NS, name);
            return 0;
        }
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read %s %s/%s: %s", kind, SABRE_NS, name,
            k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    /* the manifest first: nothing is deleted that was not saved */
    if (tqu__save_manifest(run, obj, file, ferr, sizeof(ferr))) {
        cJSON_Delete(obj);
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot save %s %s/%s before deleting it: %s", kind,
            SABRE_NS, name, ferr);
        return -1;
    }
    cJSON_Delete(obj);
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        return -1;
    }
    if (k8s_delete(run->ctl->client, r, SABRE_NS, name, &err) && !k8s_err_is(&err, "NotFound")) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot delete %s %s/%s: %s", kind, SABRE_NS, name,
            k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    snprintf(note, nlen, "deleted %s %s/%s (saved as %s/%s)", kind, SABRE_NS, name, run->dir, file);
    tqu_log(TQU_INFO, "deleted the old sabre object", "key", run->key, "kind", kind, "name", name, NULL);
    return 0;
}

void tqu__step_sabre(tqu_run *run, tqu_outcome *o)
{
    tqu_version initial, cutoff;
    char n1[512], n2[512];

    if (tqu_version_parse(run->spec.initial_version, &initial) ||
        tqu_version_parse("10.5.0.3000", &cutoff)) {
        tqu_out(o, TQU_OUT_FAILED, "InvalidVersion", "spec.initialVersion \"%s\" is not a version",
            run->spec.initial_version);
        return;
    }
    if (tqu_version_cmp(&initial, &cutoff) >= 0) {
        tqu_out(o, TQU_OUT_SKIPPED, "SabreNotPresent",
            "initialVersion %s is 10.5.0.3000 or later: there is no old sabre to remove",
            run->spec.initial_version);
        return;
    }
    /* deleting the old sabre changes the production cluster: only inside
     * the agreed window, like the upgrade itself */
    if (tqu__window_gate(run, o, "the old sabre could be removed"))
        return;
    if (sabre_remove(run, &K8S_DEPLOYMENTS, SABRE_DEPLOY, "sabre-server.deployment.json", "Deployment",
                     o, n1, sizeof(n1)) ||
        sabre_remove(run, &K8S_SERVICES, SABRE_SVC, "sabre-server-service.service.json", "Service",
                     o, n2, sizeof(n2)))
        return;
    tqu_out(o, TQU_OUT_DONE, "SabreRemoved", "%s; %s", n1, n2);
}

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

void tqu__step_cdn(tqu_run *run, tqu_outcome *o)
{
    tqu_controller_watch_cdn(run->ctl, run->spec.cdn_namespace, run->spec.cdn_deployment);
    cdn_tune(run, o, 0);
}

void tqu_steps_keep_cdn_tuned(tqu_run *run, tqu_result *res)
{
    tqu_outcome o;
    memset(&o, 0, sizeof(o));
    tqu_controller_watch_cdn(run->ctl, run->spec.cdn_namespace, run->spec.cdn_deployment);
    cdn_tune(run, &o, 1);
    if (o.kind == TQU_OUT_ERROR)
        res->error = 1;
    else if (o.kind == TQU_OUT_DONE && o.reason && !strcmp(o.reason, "CdnTuningRestored"))
        tqu_event(run, "Warning", "CdnTuningRestored", "%s (it had been changed back)", o.message);
    else if (o.kind == TQU_OUT_BLOCKED)
        tqu_log(TQU_WARN, "cannot keep the cdn tuning", "key", run->key, "message", o.message, NULL);
}

/* ------------------------------------------------------------------ Verify */

struct verify {
    long total, ready;
    char names[1024];
    size_t off;
    long shown;
};

static int verify_item(void *ud, const cJSON *d, int restart)
{
    struct verify *v = ud;
    if (restart)
        memset(v, 0, sizeof(*v));
    if (!d)
        return 0;
    long long want = k8s_json_int(d, 1, "spec", "replicas", NULL);
    long long gen = k8s_json_int(d, 0, "metadata", "generation", NULL);
    long long obs = k8s_json_int(d, 0, "status", "observedGeneration", NULL);
    long long upd = k8s_json_int(d, 0, "status", "updatedReplicas", NULL);
    long long avail = k8s_json_int(d, 0, "status", "availableReplicas", NULL);
    long long total = k8s_json_int(d, 0, "status", "replicas", NULL);
    v->total++;
    /* as kubectl rollout status: observed, all updated, no old ones left,
     * all available */
    if (obs >= gen && upd >= want && total <= upd && avail >= want) {
        v->ready++;
        return 0;
    }
    if (v->shown < 10 && v->off < sizeof(v->names) - 1) {
        int w = snprintf(v->names + v->off, sizeof(v->names) - v->off, "%s%s/%s (%lld/%lld available)",
                         v->shown ? ", " : "", k8s_json_str(d, "metadata", "namespace", NULL),
                         k8s_json_str(d, "metadata", "name", NULL), avail, want);
        if (w > 0)
            v->off += (size_t)w;
        v->shown++;
    }
    return 0;
}

void tqu__step_verify(tqu_run *run, tqu_outcome *o)
{
    struct verify v;
    k8s_err err;
    char ebuf[1200];

    memset(&v, 0, sizeof(v));
    if (k8s_list(run->ctl->client, &K8S_DEPLOYMENTS, NULL, NULL, verify_item, &v, NULL, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot list Deployments: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    if (v.ready == v.total) {
        tqu_out(o, TQU_OUT_DONE, "AllDeploymentsAvailable", "all %ld Deployments are rolled out and available", v.total);
        return;
    }
    const char *started = k8s_json_str(tqu_status_step(run->status, TQU_STEP_VERIFY), "startedAt", NULL);
    time_t t0 = started ? tqu_parse_time(started) : time(NULL);
    double waited = difftime(time(NULL), t0);
    long missing = v.total - v.ready;
    if (waited > run->spec.timeout_verify_s) {
        tqu_out(o, TQU_OUT_FAILED, "VerifyTimedOut",
            "%ld of %ld Deployments not available after %.0f s (spec.timeouts.verify): %s%s", missing, v.total,
            run->spec.timeout_verify_s, v.names, missing > v.shown ? ", ..." : "");
        return;
    }
    tqu_out(o, TQU_OUT_RUNNING, "WaitingForRollout", "waiting for %ld of %ld Deployments: %s%s", missing, v.total,
        v.names, missing > v.shown ? ", ..." : "");
    o->requeue_after = 5;
}

/* -------------------------------------------------- Preflight, cluster side */

/*
 * The SSH password, base64-decoded from the Secret, into buf (the caller
 * wipes it). 0 on success; on failure o says what is wrong and what to do.
 * The Secret's text is wiped before it is freed.
 */
int tqu__read_password(tqu_run *run, char *buf, size_t len, tqu_outcome *o)
{
    k8s_err err;
    char ebuf[1200];
    cJSON *sec = NULL;
    const char *name = run->spec.ssh_secret_name, *key = run->spec.ssh_secret_key;
    int rc = -1;

    if (k8s_get(run->ctl->client, &K8S_SECRETS, run->ns, name, &sec, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "SshSecretNotFound",
                "Secret %s/%s (spec.ssh.passwordSecretRef) not found: kubectl -n %s create secret generic %s "
                "--from-literal=%s=<password>", run->ns, name, run->ns, name, key);
        else if (err.code == 403)
            tqu_out(o, TQU_OUT_BLOCKED, "SshSecretForbidden",
                "the controller may not read Secret %s/%s: grant it get on secrets in %s (see manifests/)",
                run->ns, name, run->ns);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Secret %s/%s: %s", run->ns, name,
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    const char *v = k8s_json_str(sec, "data", key, NULL);
    if (v && v[0]) {
        k8s_blob b = { 0 };
        if (k8s_base64_decode(v, strlen(v), &b) == 0 && b.len > 0 && b.len < len &&
            !memchr(b.data, '\0', b.len)) {
            memcpy(buf, b.data, b.len);
            buf[b.len] = '\0';
            rc = 0;
        }
        k8s_blob_release(&b);
    }
    cJSON *it;
    cJSON_ArrayForEach(it, k8s_json_get(sec, "data", NULL))
        if (cJSON_IsString(it))
            OPENSSL_cleanse(it->valuestring, strlen(it->valuestring));
    cJSON_Delete(sec);
    if (rc)
        tqu_out(o, TQU_OUT_BLOCKED, "SshSecretKeyMissing",
            "Secret %s/%s has no non-empty key \"%s\" (spec.ssh.passwordSecretRef.key)", run->ns, name, key);
    return rc;
}

/* Preflight: the password is there and usable (read, then wiped). */
int tqu__check_secret(tqu_run *run, tqu_outcome *o)
{
    char password[1024];
    int rc = tqu__read_password(run, password, sizeof(password), o);
    OPENSSL_cleanse(password, sizeof(password));
    return rc;
}

struct clocks {
    time_t now;
    int leases, bad;
    char names[1024];
    size_t off;
};

static int clock_item(void *ud, const cJSON *l, int restart)
{
    struct clocks *c = ud;
    if (restart) {
        time_t now = c->now;
        memset(c, 0, sizeof(*c));
        c->now = now;
    }
    if (!l)
        return 0;
    const char *renew = k8s_json_str(l, "spec", "renewTime", NULL);
    long long dur = k8s_json_int(l, 40, "spec", "leaseDurationSeconds", NULL);
    time_t t = renew ? tqu_parse_time(renew) : -1;
    c->leases++;
    if (t < 0)
        return 0;
    double ahead = difftime(t, c->now), behind = difftime(c->now, t);
    const char *what = NULL;
    char why[128];
    if (ahead > 60) {
        snprintf(why, sizeof(why), "renewed %.0f s in the future: its clock is ahead", ahead);
        what = why;
    } else if (behind > (double)dur + 60) {
        snprintf(why, sizeof(why), "last renewed %.0f s ago: down, or its clock is behind", behind);
        what = why;
    }
    if (what) {
        c->bad++;
        if (c->off < sizeof(c->names) - 1) {
            int w = snprintf(c->names + c->off, sizeof(c->names) - c->off, "%s%s %s",
                             c->bad > 1 ? "; " : "", k8s_json_str(l, "metadata", "name", NULL), what);
            if (w > 0)
                c->off += (size_t)w;
        }
    }
    return 0;
}

/* Node clocks, judged by their Node Leases' renew times against ours. */
int tqu__check_node_clocks(tqu_run *run, tqu_outcome *o, char *note, size_t nlen)
{
    struct clocks c;
    k8s_err err;
    char ebuf[1200];

    memset(&c, 0, sizeof(c));
    c.now = time(NULL);
    if (k8s_list(run->ctl->client, &K8S_LEASES, "kube-node-lease", NULL, clock_item, &c, NULL, &err)) {
        if (err.code == 403) {
            snprintf(note, nlen, "node clocks not checked (no permission to list Leases in kube-node-lease)");
            return 0;
        }
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot list Node Leases: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    if (c.bad) {
        tqu_out(o, TQU_OUT_BLOCKED, "NodeClockSkew",
            "all servers must agree on date, time and time zone: %s; fix NTP/chrony on them", c.names);
        return -1;
    }
    if (c.leases == 0)
        snprintf(note, nlen, "no Node Leases reported, node clocks not compared");
    else
        snprintf(note, nlen, "clocks of %d nodes agree", c.leases);
    return 0;
}
