/*
 * status.c - status writes, conditions and finalizers (see status.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "k8s_int.h"
#include "status.h"

cJSON *k8s_condition_get(const cJSON *status, const char *type)
{
    cJSON *c;
    cJSON_ArrayForEach(c, k8s_json_get(status, "conditions", NULL)) {
        const char *t = k8s_json_str(c, "type", NULL);
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

/* Set key to a string value; 1 if it changed, -1 on ENOMEM. */
static int set_str(cJSON *obj, const char *key, const char *val)
{
    cJSON *cur = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(cur) && strcmp(cur->valuestring, val) == 0)
        return 0;
    return k8s_json_put(obj, key, cJSON_CreateString(val)) ? -1 : 1;
}

static int set_num(cJSON *obj, const char *key, double val)
{
    cJSON *cur = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(cur) && cur->valuedouble == val)
        return 0;
    return k8s_json_put(obj, key, cJSON_CreateNumber(val)) ? -1 : 1;
}

int k8s_condition_set(cJSON *status, const char *type, const char *cstatus,
                      const char *reason, const char *message, long long generation)
{
    cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    cJSON *c;
    char now[40];
    int changed = 0, r;

    if (!cJSON_IsArray(conds)) {
        if (conds)
            cJSON_DeleteItemFromObjectCaseSensitive(status, "conditions");
        if (!(conds = cJSON_AddArrayToObject(status, "conditions")))
            return -1;
    }
    c = k8s_condition_get(status, type);
    if (!c) {
        if (!(c = cJSON_CreateObject()))
            return -1;
        if (k8s_json_append(conds, c))
            return -1;
        if (set_str(c, "type", type) < 0)
            return -1;
        changed = 1;
    }
    const char *old = k8s_json_str(c, "status", NULL);
    if (!old || strcmp(old, cstatus) != 0 || !k8s_json_str(c, "lastTransitionTime", NULL)) {
        k8s_time_now(now, sizeof(now));
        if (set_str(c, "lastTransitionTime", now) < 0)
            return -1;
        changed = 1;
    }
    if ((r = set_str(c, "status", cstatus)) < 0)
        return -1;
    changed |= r;
    if ((r = set_str(c, "reason", reason)) < 0)
        return -1;
    changed |= r;
    if ((r = set_str(c, "message", message ? message : "")) < 0)
        return -1;
    changed |= r;
    if ((r = set_num(c, "observedGeneration", (double)generation)) < 0)
        return -1;
    changed |= r;
    return changed;
}

int k8s_status_update(k8s_client *c, const k8s_resource *r, const char *ns,
                      const char *name, const cJSON *obj, k8s_status_fn fn, void *ud,
                      int *written, cJSON **out, k8s_err *err)
{
    cJSON *live = NULL, *status = NULL, *stored = NULL;
    int rc = K8S_OK;

    if (written)
        *written = 0;
    if (out)
        *out = NULL;
    for (int attempt = 0; attempt < 5; attempt++) {
        cJSON_Delete(live);
        live = NULL;
        if (obj && attempt == 0) {
            if (!(live = cJSON_Duplicate(obj, 1))) {
                rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
                goto out;
            }
        } else {
            rc = k8s_get(c, r, ns, name, &live, err);
            if (rc)
                goto out;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(live, "status");
        status = cur ? cJSON_Duplicate(cur, 1) : cJSON_CreateObject();
        if (!status) {
            rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
            goto out;
        }
        rc = fn(ud, live, status);
        if (rc)
            goto out;
        if (cur && cJSON_Compare(cur, status, 1)) {
            /* nothing changed: no write, no churn */
            if (out) {
                *out = live;
                live = NULL;
            }
            goto out;
        }
        rc = k8s_json_put(live, "status", status);
        status = NULL;
        if (rc) {
            rc = k8s_err_set(err, rc, "out of memory");
            goto out;
        }
        rc = k8s_replace_status(c, r, ns, name, live, &stored, err);
        if (rc == K8S_OK) {
            if (written)
                *written = 1;
            if (out) {
                *out = stored;
                stored = NULL;
            }
            goto out;
        }
        if (!(rc == K8S_EAPI && err && err->code == 409))
            goto out;
        k8s__sleep(0.01 * (1 << attempt));
    }
out:
    cJSON_Delete(live);
    cJSON_Delete(status);
    cJSON_Delete(stored);
    return rc;
}

int k8s_has_finalizer(const cJSON *obj, const char *f)
{
    cJSON *it;
    cJSON_ArrayForEach(it, k8s_json_get(obj, "metadata", "finalizers", NULL))
        if (cJSON_IsString(it) && strcmp(it->valuestring, f) == 0)
            return 1;
    return 0;
}

/*
 * JSON patch: `test` that metadata.resourceVersion is still the one we
 * read, then add/replace the edited finalizers list. A concurrent writer
 * makes the test fail (422/409): re-read and try again.
 */
static int finalizer_edit(k8s_client *c, const k8s_resource *r, const cJSON *obj0,
                          const char *f, int add, k8s_err *err)
{
    const char *ns = k8s_json_str(obj0, "metadata", "namespace", NULL);
    const char *name = k8s_json_str(obj0, "metadata", "name", NULL);
    cJSON *obj = NULL, *patch = NULL;
    int rc = K8S_OK;

    if (!name)
        return k8s_err_set(err, K8S_EINVAL, "finalizer: object has no name");
    for (int attempt = 0; attempt < 5; attempt++) {
        cJSON_Delete(obj);
        obj = NULL;
        cJSON_Delete(patch);
        patch = NULL;
        if (attempt == 0)
            obj = cJSON_Duplicate(obj0, 1);
        else if ((rc = k8s_get(c, r, ns, name, &obj, err)))
            goto out;
        if (!obj) {
            rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
            goto out;
        }
        if (k8s_has_finalizer(obj, f) == add) {
            rc = K8S_OK;
            goto out;
        }
        cJSON *cur = k8s_json_get(obj, "metadata", "finalizers", NULL);
        cJSON *next = cJSON_CreateArray(), *it, *op;
        patch = cJSON_CreateArray();
        if (!next || !patch) {
            cJSON_Delete(next);
            rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
            goto out;
        }
        int bad = 0;
        cJSON_ArrayForEach(it, cur)
            if (!(cJSON_IsString(it) && strcmp(it->valuestring, f) == 0))
                bad |= k8s_json_append(next, cJSON_CreateString(it->valuestring ? it->valuestring : ""));
        if (add)
            bad |= k8s_json_append(next, cJSON_CreateString(f));
        /* guard: the resourceVersion we read is still current */
        const char *rv = k8s_json_str(obj, "metadata", "resourceVersion", NULL);
        op = cJSON_CreateObject();
        if (!cJSON_AddStringToObject(op, "op", "test") ||
            !cJSON_AddStringToObject(op, "path", "/metadata/resourceVersion") ||
            !cJSON_AddStringToObject(op, "value", rv ? rv : ""))
            bad = 1;
        bad |= k8s_json_append(patch, op);
        op = cJSON_CreateObject();
        if (!cJSON_AddStringToObject(op, "op", cur ? "replace" : "add") ||
            !cJSON_AddStringToObject(op, "path", "/metadata/finalizers"))
            bad = 1;
        bad |= k8s_json_put(op, "value", next);
        bad |= k8s_json_append(patch, op);
        if (bad) {
            rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
            goto out;
        }
        rc = k8s_patch(c, r, ns, name, NULL, K8S_CT_JSON_PATCH, patch, NULL, err);
        if (rc == K8S_OK)
            goto out;
        /* a failed test op comes back as 422 Invalid (or 409) */
        if (!(rc == K8S_EAPI && err && (err->code == 409 || err->code == 422)))
            goto out;
        k8s__sleep(0.01 * (1 << attempt));
    }
out:
    cJSON_Delete(obj);
    cJSON_Delete(patch);
    return rc;
}

int k8s_finalizer_add(k8s_client *c, const k8s_resource *r, const cJSON *obj,
                      const char *f, k8s_err *err)
{
    return finalizer_edit(c, r, obj, f, 1, err);
}

int k8s_finalizer_remove(k8s_client *c, const k8s_resource *r, const cJSON *obj,
                         const char *f, k8s_err *err)
{
    return finalizer_edit(c, r, obj, f, 0, err);
}

int k8s_deployment_rolled_out(const cJSON *d, long long *available, long long *wanted)
{
    long long want = k8s_json_int(d, 1, "spec", "replicas", NULL);
    long long gen = k8s_json_int(d, 0, "metadata", "generation", NULL);
    long long obs = k8s_json_int(d, 0, "status", "observedGeneration", NULL);
    long long upd = k8s_json_int(d, 0, "status", "updatedReplicas", NULL);
    long long avail = k8s_json_int(d, 0, "status", "availableReplicas", NULL);
    long long total = k8s_json_int(d, 0, "status", "replicas", NULL);
    if (available)
        *available = avail;
    if (wanted)
        *wanted = want;
    return obs >= gen && upd >= want && total <= upd && avail >= want;
}
