/*
 * resolve.c - what every step reads: the settings the spec names, the
 * Deployments and etcd keys they live in, with their current values; and
 * the two ways of changing them (correct, restore).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "host/fsutil.h"
#include "runtime/log.h"
#include "tuning_int.h"

/* ------------------------------------------------------------ etcd client */

static void etcd_fail(tqu_outcome *o, int rc, const etcd_err *e, const char *what)
{
    if (rc == ETCD_ETLS)
        tqu_out(o, TQU_OUT_BLOCKED, "EtcdTLSFailed",
                "%s: TLS with the etcd failed (%s): check spec.etcd.tlsSecretRef (ca.crt, tls.crt, tls.key) and the endpoints",
                what, e->message);
    else if (rc == ETCD_EUNREACHABLE || rc == ETCD_ETIMEOUT ||
             (rc == ETCD_EHTTP && (e->http_code >= 500 || e->grpc_code == 14)))
        tqu_out(o, TQU_OUT_BLOCKED, "EtcdUnreachable",
                "%s: the etcd cannot be reached (%s): check spec.etcd.endpoints and that etcd runs", what,
                e->message);
    else
        tqu_out(o, TQU_OUT_BLOCKED, "EtcdError", "%s: %s (%s)", what, etcd_strerror(rc), e->message);
}

int tqu_tt_etcd_open(tqu_tt_run *run, tqu_outcome *o, etcd_client **out)
{
    etcd_config cfg;
    etcd_err e;
    k8s_blob b[3];
    cJSON *sec = NULL;
    k8s_err err;
    char ebuf[1200];
    int rc = -1;
    memset(&cfg, 0, sizeof(cfg));
    memset(&e, 0, sizeof(e));
    memset(b, 0, sizeof(b));
    *out = NULL;
    cfg.endpoints = run->spec.endpoints;
    cfg.n_endpoints = run->spec.n_endpoints;
    cfg.connect_timeout_ms = 1000;
    cfg.timeout_ms = 5000;
    if (run->spec.tls_secret[0]) {
        static const char *const names[3] = { "ca.crt", "tls.crt", "tls.key" };
        if (k8s_get(run->ctl->client, &K8S_SECRETS, run->ns, run->spec.tls_secret, &sec, &err)) {
            if (k8s_err_is(&err, "NotFound") || k8s_err_is(&err, "Forbidden"))
                tqu_out(o, TQU_OUT_BLOCKED, "EtcdTLSFailed", "Secret %s/%s (spec.etcd.tlsSecretRef): %s", run->ns,
                        run->spec.tls_secret, k8s_err_str(&err, ebuf, sizeof(ebuf)));
            else
                tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Secret %s/%s: %s", run->ns, run->spec.tls_secret,
                        k8s_err_str(&err, ebuf, sizeof(ebuf)));
            goto out;
        }
        for (int i = 0; i < 3; i++) {
            const char *v = k8s_json_str(sec, "data", names[i], NULL);
            if (v && k8s_base64_decode(v, strlen(v), &b[i])) {
                tqu_out(o, TQU_OUT_BLOCKED, "EtcdTLSFailed", "Secret %s/%s: %s is not base64", run->ns,
                        run->spec.tls_secret, names[i]);
                goto out;
            }
        }
        if (!b[0].data && !b[1].data) {
            tqu_out(o, TQU_OUT_BLOCKED, "EtcdTLSFailed", "Secret %s/%s has neither ca.crt nor tls.crt", run->ns,
                    run->spec.tls_secret);
            goto out;
        }
        cfg.ca_pem = (const char *)b[0].data;
        cfg.ca_len = b[0].len;
        cfg.cert_pem = (const char *)b[1].data;
        cfg.cert_len = b[1].len;
        cfg.key_pem = (const char *)b[2].data;
        cfg.key_len = b[2].len;
    }
    rc = etcd_client_new(&cfg, out, &e);
    if (rc) {
        if (rc == ETCD_EINVAL)
            tqu_out(o, TQU_OUT_BLOCKED, run->spec.tls_secret[0] ? "EtcdTLSFailed" : "InvalidEtcd",
                    "cannot use the etcd settings: %s", e.message);
        else
            tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        rc = -1;
    }
out:
    for (int i = 0; i < 3; i++)
        k8s_blob_release(&b[i]);
    if (sec) {
        /* the Secret's data: wiped before it is freed */
        cJSON *d, *it;
        d = k8s_json_get(sec, "data", NULL);
        cJSON_ArrayForEach(it, d)
            if (cJSON_IsString(it))
                OPENSSL_cleanse(it->valuestring, strlen(it->valuestring));
        cJSON_Delete(sec);
    }
    return rc;
}

/* ---------------------------------------------------------- the settings */

static int add_dep(tqu_tt_run *run, const char *ns, const char *name, const char *container)
{
    tqu_tt_deploy *d = &run->deps[run->ndeps];
    d->ns = ns;
    d->name = name;
    d->want_container = container;
    d->cidx = -1;
    return run->ndeps++;
}

static tqu_tt_setting *add_set(tqu_tt_run *run, int kind, const char *name)
{
    tqu_tt_setting *s = &run->set[run->nset++];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->dep = -1;
    s->svc = -1;
    snprintf(s->name, sizeof(s->name), "%s", name);
    return s;
}

static void etcd_set(tqu_tt_run *run, const char *name, int rem, const char *cfg_ns, const char *fmt, long long v,
                     const char *sv)
{
    tqu_tt_setting *s = add_set(run, TQU_TT_ETCD, name);
    tqu_remedies_key(tqu_tt_remedies.key[rem], run->spec.key_prefix, cfg_ns, s->key, sizeof(s->key));
    memcpy(s->target, "etcd:", 5);
    memcpy(s->target + 5, s->key, strlen(s->key) + 1);
    if (sv)
        snprintf(s->desired, sizeof(s->desired), "%s", sv);
    else
        snprintf(s->desired, sizeof(s->desired), fmt, v);
}

static void arg_set(tqu_tt_run *run, const char *name, int dep, const char *arg, const char *token)
{
    tqu_tt_setting *s = add_set(run, TQU_TT_ARG, name);
    tqu_tt_deploy *d = &run->deps[dep];
    s->dep = dep;
    snprintf(s->arg, sizeof(s->arg), "%s", arg);
    snprintf(s->desired, sizeof(s->desired), "%s", token);
    char t[sizeof(s->target)];
    snprintf(t, sizeof(t), "%s/%s/%s:-%s", d->ns, d->name, d->container, arg);
    memcpy(s->target, t, sizeof(t));
}

/* Read a Deployment and find its container: 0, or -1 with o. */
static int read_dep(tqu_tt_run *run, tqu_tt_deploy *d, const char *field, tqu_outcome *o)
{
    k8s_err err;
    char ebuf[1200];
    /* watched from the first read: a missing Deployment that appears, or
     * one replaced, re-queues the resource at once */
    tqu_watch_object(run->ctl, &K8S_DEPLOYMENTS, d->ns, d->name, &TQU_TT_RESOURCE, run->key);
    if (k8s_get(run->ctl->client, &K8S_DEPLOYMENTS, d->ns, d->name, &d->obj, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "DeploymentNotFound", "Deployment %s/%s (%s) not found: check the namespace and name",
                    d->ns, d->name, field);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Deployment %s/%s: %s", d->ns, d->name,
                    k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    d->cidx = tqu_tt_container(d->obj, d->want_container);
    if (d->cidx < 0) {
        if (d->want_container[0])
            tqu_out(o, TQU_OUT_BLOCKED, "ContainerNotFound", "Deployment %s/%s has no container named %s (%s.container)",
                    d->ns, d->name, d->want_container, field);
        else
            tqu_out(o, TQU_OUT_BLOCKED, "ContainerNotFound",
                    "Deployment %s/%s has several containers and none is named like it: set %s.container", d->ns,
                    d->name, field);
        return -1;
    }
    const char *cn = k8s_json_str(cJSON_GetArrayItem(k8s_json_get(d->obj, "spec", "template", "spec", "containers", NULL),
                                                     d->cidx), "name", NULL);
    snprintf(d->container, sizeof(d->container), "%s", cn ? cn : "");
    return 0;
}

static const cJSON *dep_args(const tqu_tt_deploy *d)
{
    return k8s_json_get(cJSON_GetArrayItem(k8s_json_get(d->obj, "spec", "template", "spec", "containers", NULL), d->cidx),
                        "args", NULL);
}

int tqu_tt_resolve(tqu_tt_run *run, tqu_outcome *o)
{
    const tqu_tt_spec *sp = &run->spec;
    char field[96], cfg_ns[256], name[160], tok[96];
    if (run->resolved)
        return 0;
    run->nset = 0;
    for (int i = 0; i < run->ndeps; i++)
        cJSON_Delete(run->deps[i].obj);
    run->ndeps = 0;

    if (sp->has_global) {
        etcd_set(run, "global/rateLimitEnable", TQU_REM_GLOBAL_ENABLE, NULL, NULL, 0,
                 sp->global_enabled ? "true" : "false");
        etcd_set(run, "global/maxRequestPerUnit", TQU_REM_GLOBAL_MAX, NULL, "%lld", sp->global_max, NULL);
    }
    for (int i = 0; i < sp->n_services; i++) {
        const tqu_tt_service *sv = &sp->services[i];
        int dep = add_dep(run, sv->ns, sv->deployment, sv->container);
        snprintf(field, sizeof(field), "spec.rateLimit.services[%d]", i);
        if (read_dep(run, &run->deps[dep], field, o))
            return -1;
        int n = tqu_tt_find_config_ns(run->deps[dep].obj, run->deps[dep].cidx, cfg_ns, sizeof(cfg_ns));
        if (n != 1) {
            if (sv->config_ns[0]) {
                snprintf(cfg_ns, sizeof(cfg_ns), "%s", sv->config_ns);
            } else if (n == 0) {
                tqu_out(o, TQU_OUT_BLOCKED, "ConfigNamespaceNotFound",
                        "Deployment %s/%s names no config.ns (container args, env, annotations): set %s.configNamespace",
                        sv->ns, sv->deployment, field);
                return -1;
            } else {
                tqu_out(o, TQU_OUT_BLOCKED, "ConfigNamespaceAmbiguous",
                        "Deployment %s/%s names %d different config.ns values: set %s.configNamespace", sv->ns,
                        sv->deployment, n, field);
                return -1;
            }
        }
        snprintf(name, sizeof(name), "service/%s/%s/controlType", sv->ns, sv->deployment);
        arg_set(run, name, dep, "control.type", "-control.type=config");
        run->set[run->nset - 1].svc = i;
        snprintf(name, sizeof(name), "service/%s/%s/maxRequestPerUnit", sv->ns, sv->deployment);
        etcd_set(run, name, TQU_REM_SERVICE_MAX, cfg_ns, "%lld", sv->max_request_per_unit, NULL);
        run->set[run->nset - 1].svc = i;
        run->set[run->nset - 1].dep = dep;
    }
    if (sp->has_edge2) {
        int dep = add_dep(run, sp->edge2_ns, sp->edge2_deployment, sp->edge2_container);
        if (read_dep(run, &run->deps[dep], "spec.edge2", o))
            return -1;
        snprintf(tok, sizeof(tok), "-edge2_max_clientnum=%lld", sp->edge2_max_clients);
        arg_set(run, "edge2/maxClients", dep, "edge2_max_clientnum", tok);
    }
    if (sp->cdn_max_request)
        etcd_set(run, "cdn/maxRequest", TQU_REM_CDN_MAX_REQUEST, NULL, "%lld", sp->cdn_max_request, NULL);
    if (sp->cdn_disk_space)
        etcd_set(run, "cdn/diskSpace", TQU_REM_CDN_DISK_SPACE, NULL, NULL, 0, sp->cdn_disk_space);

    /* the current values */
    for (int i = 0; i < run->nset; i++) {
        tqu_tt_setting *s = &run->set[i];
        if (s->kind == TQU_TT_ARG) {
            s->present = tqu_tt_arg_find(dep_args(&run->deps[s->dep]), s->arg, s->observed, sizeof(s->observed)) >= 0;
            if (!s->present)
                s->observed[0] = '\0';
            continue;
        }
        if (!run->etcd && tqu_tt_etcd_open(run, o, &run->etcd))
            return -1;
        etcd_range_result r;
        etcd_err e;
        memset(&e, 0, sizeof(e));
        int rc = etcd_range(run->etcd, s->key, 0, 1, &r, &e);
        if (rc) {
            etcd_fail(o, rc, &e, "cannot read the etcd keys");
            return -1;
        }
        s->present = r.n > 0;
        snprintf(s->observed, sizeof(s->observed), "%s", r.n ? r.kvs[0].value : "");
        etcd_range_result_release(&r);
    }
    run->resolved = 1;
    return 0;
}

static int applied(const tqu_tt_setting *s)
{
    return s->present && !strcmp(s->observed, s->desired);
}

/* ------------------------------------------------------------ status.items */

const char *tqu_tt_original(const tqu_tt_run *run, const char *target)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, k8s_json_get(run->status ? run->status : k8s_json_get(run->obj, "status", NULL), "items", NULL)) {
        const char *t = k8s_json_str(it, "target", NULL);
        if (t && !strcmp(t, target))
            return k8s_json_str(it, "original", NULL);
    }
    return NULL;
}

int tqu_tt_items_update(tqu_tt_run *run, const cJSON *originals)
{
    cJSON *items = cJSON_CreateArray();
    long long n_applied = 0;
    /* once Apply has succeeded, a value that differs was changed back */
    int was_applied = !strcmp(tqu_status_step_state(run->status, run->wf, TQU_TT_STEP_APPLY), "Succeeded");
    if (!items)
        return -1;
    for (int i = 0; i < run->nset; i++) {
        const tqu_tt_setting *s = &run->set[i];
        const char *orig = originals ? k8s_json_str(originals, s->target, NULL) : NULL;
        if (!orig)
            orig = tqu_tt_original(run, s->target);
        cJSON *it = cJSON_CreateObject();
        int ok = applied(s);
        n_applied += ok;
        if (!it || !cJSON_AddStringToObject(it, "name", s->name) || !cJSON_AddStringToObject(it, "target", s->target) ||
            !cJSON_AddStringToObject(it, "desired", s->desired) ||
            !cJSON_AddStringToObject(it, "observed", s->present ? s->observed : TQU_TT_ABSENT) ||
            (orig && !cJSON_AddStringToObject(it, "original", orig)) ||
            !cJSON_AddStringToObject(it, "state", ok ? "Applied" : was_applied ? "Drifted" : "Pending") ||
            !cJSON_AddStringToObject(it, "message", ok ? "in place" : was_applied ? "changed back: being set again"
                                                                                    : "to be set by Apply") ||
            k8s_json_append(items, it)) {
            cJSON_Delete(it);
            cJSON_Delete(items);
            return -1;
        }
    }
    k8s_json_put(run->status, "applied", cJSON_CreateNumber((double)n_applied));
    if (!cJSON_GetObjectItemCaseSensitive(run->status, "drifted"))
        k8s_json_put(run->status, "drifted", cJSON_CreateNumber(0));
    return k8s_json_put(run->status, "items", items);
}

/* ------------------------------------------------------------- changing */

int tqu_tt_window_gate(tqu_tt_run *run, tqu_outcome *o)
{
    time_t now = time(NULL);
    if (!run->spec.has_window)
        return 0;
    if (now < run->spec.window_start) {
        tqu_out(o, TQU_OUT_WAIT, "WaitingForWindow",
                "the etcd keys are set; the Deployment arguments wait for the window opening at %s",
                run->spec.window_start_text);
        o->requeue_after = difftime(run->spec.window_start, now) + 1;
        return -1;
    }
    if (now >= run->spec.window_end) {
        tqu_out(o, TQU_OUT_BLOCKED, "WindowEnded",
                "the window ended at %s before the Deployment arguments were changed: set a new spec.window",
                run->spec.window_end_text);
        return -1;
    }
    return 0;
}

static void cat(char *what, size_t wlen, const char *fmt, const char *a, const char *b)
{
    size_t l = strlen(what);
    if (l + 4 < wlen)
        snprintf(what + l, wlen - l, fmt, l ? "; " : "", a, b);
}

/* Set (token) or remove (NULL) -arg in d's container, with a JSON patch
 * testing the current args. 0, or -1 with o. */
static int patch_arg(tqu_tt_run *run, const char *ns, const char *name, cJSON *d, int cidx, const char *cname,
                     const char *arg, const char *token, tqu_outcome *o)
{
    const cJSON *cur = k8s_json_get(cJSON_GetArrayItem(k8s_json_get(d, "spec", "template", "spec", "containers", NULL), cidx),
                                    "args", NULL);
    cJSON *want = tqu_tt_args_set(cur, arg, token), *patch = NULL, *out = NULL;
    k8s_err err;
    char ebuf[1200];
    int rc = -1;
    if (!want || !(patch = tqu_tt_args_patch(cidx, cname, cur, want))) {
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        goto done;
    }
    if (cur && cJSON_Compare(cur, want, 1)) {
        rc = 0;
        goto done;
    }
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        goto done;
    }
    if (k8s_patch(run->ctl->client, &K8S_DEPLOYMENTS, ns, name, NULL, K8S_CT_JSON_PATCH, patch, &out, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot patch Deployment %s/%s: %s", ns, name,
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(want);
    cJSON_Delete(patch);
    cJSON_Delete(out);
    return rc;
}

int tqu_tt_correct(tqu_tt_run *run, int deploys, tqu_outcome *o, char *what, size_t wlen)
{
    int n = 0;
    etcd_err e;
    what[0] = '\0';
    for (int i = 0; i < run->nset; i++)
        run->set[i].corrected = 0;
    for (int i = 0; i < run->nset; i++) {
        tqu_tt_setting *s = &run->set[i];
        if (s->kind != TQU_TT_ETCD || applied(s))
            continue;
        if (!tqu_may_act(run->ctl)) {
            tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
            return -1;
        }
        memset(&e, 0, sizeof(e));
        int rc = etcd_put(run->etcd, s->key, s->desired, strlen(s->desired), NULL, &e);
        if (rc) {
            etcd_fail(o, rc, &e, "cannot write the etcd keys");
            return -1;
        }
        tqu_log(TQU_INFO, "etcd key set", "key", run->key, "etcdKey", s->key, "value", s->desired, NULL);
        cat(what, wlen, "%s%s = %s", s->key, s->desired);
        s->present = 1;
        s->corrected = 1;
        snprintf(s->observed, sizeof(s->observed), "%s", s->desired);
        n++;
    }
    for (int i = 0; deploys && i < run->nset; i++) {
        tqu_tt_setting *s = &run->set[i];
        tqu_tt_deploy *d = &run->deps[s->dep >= 0 ? s->dep : 0];
        if (s->kind != TQU_TT_ARG || applied(s))
            continue;
        if (patch_arg(run, d->ns, d->name, d->obj, d->cidx, d->container, s->arg, s->desired, o))
            return -1;
        tqu_log(TQU_INFO, "Deployment argument set", "key", run->key, "target", s->target, "arg", s->desired, NULL);
        cat(what, wlen, "%s%s: %s", s->target, s->desired);
        s->present = 1;
        s->corrected = 1;
        snprintf(s->observed, sizeof(s->observed), "%s", s->desired);
        d->changes = 1;
        /* the next argument of the same Deployment is tested against what
         * this patch made: read it again */
        cJSON *fresh = NULL;
        k8s_err err;
        if (!k8s_get(run->ctl->client, &K8S_DEPLOYMENTS, d->ns, d->name, &fresh, &err)) {
            cJSON_Delete(d->obj);
            d->obj = fresh;
        }
        n++;
    }
    return n;
}

/* Put every original of status.items back: etcd keys (an absent one
 * deleted), Deployment arguments (an absent one removed). */
/* target -> original: originals.json of the backup folder (every setting
 * this resource ever changed, also those since dropped from the spec),
 * with status.items[] for any it lacks. NULL on ENOMEM. */
static cJSON *originals(tqu_tt_run *run)
{
    char path[PATH_MAX + 64], ferr[256];
    k8s_buf b;
    cJSON *m = NULL, *it;
    const char *folder = k8s_json_str(run->obj, "status", "backupFolder", NULL);
    k8s_buf_init(&b, 0);
    if (folder) {
        snprintf(path, sizeof(path), "%s/originals.json", folder);
        if (tqu_read_file(path, 4 << 20, &b, ferr, sizeof(ferr)) == 0)
            m = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
    }
    k8s_buf_release(&b);
    if (!cJSON_IsObject(m)) {
        cJSON_Delete(m);
        m = cJSON_CreateObject();
    }
    cJSON_ArrayForEach(it, k8s_json_get(run->obj, "status", "items", NULL)) {
        const char *t = k8s_json_str(it, "target", NULL), *orig = k8s_json_str(it, "original", NULL);
        if (m && t && orig && !cJSON_GetObjectItemCaseSensitive(m, t))
            k8s_json_put(m, t, cJSON_CreateString(orig));
    }
    return m;
}

int tqu_tt_restore(tqu_tt_run *run, tqu_outcome *o, char *what, size_t wlen)
{
    const cJSON *it;
    etcd_err e;
    int ret = -1;
    cJSON *all = originals(run);
    what[0] = '\0';
    if (!all) {
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(it, all) {
        const char *t = it->string, *orig = cJSON_IsString(it) ? it->valuestring : NULL;
        if (!t || !orig)
            continue;
        int absent = !strcmp(orig, TQU_TT_ABSENT);
        if (!strncmp(t, "etcd:", 5)) {
            const char *key = t + 5;
            etcd_range_result r;
            memset(&e, 0, sizeof(e));
            if (!run->etcd && tqu_tt_etcd_open(run, o, &run->etcd))
                goto out;
            int rc = etcd_range(run->etcd, key, 0, 1, &r, &e);
            if (rc) {
                etcd_fail(o, rc, &e, "cannot restore the etcd keys");
                goto out;
            }
            int same = absent ? r.n == 0 : (r.n && !strcmp(r.kvs[0].value, orig));
            etcd_range_result_release(&r);
            if (same)
                continue;
            rc = absent ? etcd_delete(run->etcd, key, 0, NULL, NULL, &e)
                        : etcd_put(run->etcd, key, orig, strlen(orig), NULL, &e);
            if (rc) {
                etcd_fail(o, rc, &e, "cannot restore the etcd keys");
                goto out;
            }
            cat(what, wlen, "%s%s = %s", key, absent ? "(deleted: it was absent)" : orig);
            continue;
        }
        /* <ns>/<deploy>/<container>:-<arg> */
        char ns[64], dn[254], cn[64], arg[64];
        if (sscanf(t, "%63[^/]/%253[^/]/%63[^:]:-%63s", ns, dn, cn, arg) != 4)
            continue;
        cJSON *d = NULL;
        k8s_err err;
        char ebuf[1200];
        if (k8s_get(run->ctl->client, &K8S_DEPLOYMENTS, ns, dn, &d, &err)) {
            if (k8s_err_is(&err, "NotFound"))
                continue;   /* gone: nothing to put back */
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Deployment %s/%s: %s", ns, dn, k8s_err_str(&err, ebuf, sizeof(ebuf)));
            goto out;
        }
        int cidx = tqu_tt_container(d, cn);
        char cur[1024];
        const cJSON *args = k8s_json_get(cJSON_GetArrayItem(k8s_json_get(d, "spec", "template", "spec", "containers", NULL), cidx),
                                         "args", NULL);
        int at = cidx >= 0 ? tqu_tt_arg_find(args, arg, cur, sizeof(cur)) : -1;
        int same = cidx < 0 || (absent ? at < 0 : (at >= 0 && !strcmp(cur, orig)));
        int rc = same ? 0 : patch_arg(run, ns, dn, d, cidx, cn, arg, absent ? NULL : orig, o);
        cJSON_Delete(d);
        if (rc)
            goto out;
        if (!same)
            cat(what, wlen, "%s%s: %s", t, absent ? "removed (it was absent)" : orig);
    }
    ret = 0;
out:
    cJSON_Delete(all);
    return ret;
}

/* ------------------------------------------------------- the upgrade */

int tqu_tt_upgrade_running(tqu_tt_run *run, char *who, size_t len)
{
    static const k8s_resource upgrades = { TQU_GROUP, TQU_VERSION_API, "tianqingupgrades", 1 };
    cJSON *list = NULL;
    const char *uname = NULL;
    k8s_err err;
    char path[512];
    int found = 0;
    snprintf(path, sizeof(path), "/apis/%s/%s/namespaces/%s/tianqingupgrades", TQU_GROUP, TQU_VERSION_API, run->ns);
    if (k8s_request(run->ctl->client, "GET", path, NULL, NULL, 0, &list, &err)) {
        cJSON_Delete(list);
        return k8s_err_is(&err, "NotFound") ? 0 : -1;
    }
    const cJSON *u, *st;
    cJSON_ArrayForEach(u, k8s_json_get(list, "items", NULL)) {
        cJSON_ArrayForEach(st, k8s_json_get(u, "status", "steps", NULL)) {
            const char *n = k8s_json_str(st, "name", NULL), *s = k8s_json_str(st, "state", NULL);
            if (n && s && !strcmp(n, "Upgrade") && !strcmp(s, "Running") && !found) {
                uname = k8s_json_str(u, "metadata", "name", NULL);
                snprintf(who, len, "%s/%s", run->ns, uname ? uname : "");
                found = 1;
            }
        }
    }
    /* its status changes re-queue the tuning: applied again as soon as
     * the Upgrade step ends, not at the next re-check */
    if (found && uname)
        tqu_watch_object(run->ctl, &upgrades, run->ns, uname, &TQU_TT_RESOURCE, run->key);
    cJSON_Delete(list);
    return found;
}
