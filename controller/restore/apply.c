/*
 * apply.c - step 3, Apply (not in a dry run): every target that differs is
 * put back. The sources are checked again first (checksums, no vendor
 * command running). Each object is saved as it is now into the restore's
 * own folder, then created (absent) or replaced from the saved manifest,
 * server-set fields stripped, with the live resourceVersion as the
 * precondition: a 409 re-reads it and decides again. update.sh: the
 * current one kept first, then the original written back atomically.
 * Before darwin-cdn is put back the upgrade is annotated so it stops
 * keeping its CdnTuning in place. What changed is listed in
 * status.restored[]. Idempotent: a re-run finds what is already back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "host/backup.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "diff.h"
#include "restore.h"

#define SCRIPT_MAX ((size_t)8 << 20)
#define CONFLICT_RETRIES 5

static int restored_add(tqu_restore_job *r, const tqu_restore_obj *ob, const char *action)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(r->status, "restored"), *e, *it;
    if (!cJSON_IsArray(list) && k8s_json_put(r->status, "restored", list = cJSON_CreateArray()))
        return -1;
    cJSON_ArrayForEach(it, list)
        if (!strcmp(k8s_json_str(it, "kind", NULL) ? k8s_json_str(it, "kind", NULL) : "", ob->kind) &&
            !strcmp(k8s_json_str(it, "namespace", NULL) ? k8s_json_str(it, "namespace", NULL) : "", ob->ns) &&
            !strcmp(k8s_json_str(it, "name", NULL) ? k8s_json_str(it, "name", NULL) : "", ob->name))
            return 0;
    e = cJSON_CreateObject();
    if (!cJSON_AddStringToObject(e, "kind", ob->kind) || !cJSON_AddStringToObject(e, "namespace", ob->ns) ||
        !cJSON_AddStringToObject(e, "name", ob->name) || !cJSON_AddStringToObject(e, "action", action)) {
        cJSON_Delete(e);
        return -1;
    }
    return k8s_json_append(list, e) ? -1 : 0;
}

/* The body to send: the saved manifest, stripped; for a replace the live
 * resourceVersion (the precondition) and, for a Service, its allocated
 * cluster IPs (immutable). NULL on out of memory. */
static cJSON *body_of(const tqu_restore_obj *ob, const cJSON *live)
{
    cJSON *b = cJSON_Duplicate(ob->saved, 1), *spec;
    const char *rv;
    if (!b)
        return NULL;
    tqu_restore_strip(b);
    if (!live)
        return b;
    rv = k8s_json_str(live, "metadata", "resourceVersion", NULL);
    if (!rv || k8s_json_put(k8s_json_get(b, "metadata", NULL), "resourceVersion", cJSON_CreateString(rv)))
        goto bad;
    spec = k8s_json_get(b, "spec", NULL);
    if (!strcmp(ob->kind, "Service") && spec) {
        const cJSON *ip = k8s_json_get(live, "spec", "clusterIP", NULL);
        const cJSON *ips = k8s_json_get(live, "spec", "clusterIPs", NULL);
        if ((ip && k8s_json_put(spec, "clusterIP", cJSON_Duplicate(ip, 1))) ||
            (ips && k8s_json_put(spec, "clusterIPs", cJSON_Duplicate(ips, 1))))
            goto bad;
    }
    return b;
bad:
    cJSON_Delete(b);
    return NULL;
}

/* Put one object back. *changed: 1 when it was created or replaced. 0, or
 * -1 with o filled. */
static int apply_obj(tqu_restore_job *r, const tqu_restore_set *set, const tqu_restore_obj *ob, int *changed,
                     tqu_outcome *o)
{
    char target[600], ebuf[1200], ferr[PATH_MAX + 256], file[600];
    k8s_err err;
    cJSON *live = NULL, *body = NULL;
    int rc = -1;

    *changed = 0;
    tqu__restore_obj_name(ob, target, sizeof(target));
    for (int attempt = 0; attempt < CONFLICT_RETRIES; attempt++) {
        cJSON_Delete(live);
        cJSON_Delete(body);
        live = body = NULL;
        if (k8s_get(r->ctl->client, ob->res, ob->ns, ob->name, &live, &err)) {
            if (!k8s_err_is(&err, "NotFound")) {
                tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read %s: %s", target, k8s_err_str(&err, ebuf, sizeof(ebuf)));
                goto out;
            }
            live = NULL;
        } else {
            cJSON *paths = cJSON_CreateArray();
            int n = paths ? tqu_restore_diff(ob->saved, live, paths) : -1;
            cJSON_Delete(paths);
            if (n < 0) {
                tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
                goto out;
            }
            if (n == 0) {
                rc = 0;            /* already as saved */
                goto out;
            }
            /* as it is now, before it is changed (the first copy is kept) */
            snprintf(file, sizeof(file), "%s.%s.%s.before-restore.json", ob->kind, ob->ns, ob->name);
            if (tqu_backup_keep_json(r->status, set->dir, file, live, ferr, sizeof(ferr))) {
                tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot save %s before replacing it: %s", target, ferr);
                goto out;
            }
        }
        if (!(body = body_of(ob, live))) {
            tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
            goto out;
        }
        if (!tqu_may_act(r->ctl)) {
            tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
            goto out;
        }
        int w = live ? k8s_replace(r->ctl->client, ob->res, ob->ns, ob->name, body, NULL, &err)
                     : k8s_create(r->ctl->client, ob->res, ob->ns, body, NULL, &err);
        if (w == 0) {
            *changed = 1;
            if (restored_add(r, ob, live ? "replaced" : "created")) {
                tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
                goto out;
            }
            tqu_log(TQU_INFO, live ? "replaced from the upgrade's backup" : "created from the upgrade's backup",
                    "key", r->key, "object", target, "from", ob->from, NULL);
            rc = 0;
            goto out;
        }
        /* changed (or created) meanwhile: read it again and decide again */
        if (k8s_err_is(&err, "Conflict") || k8s_err_is(&err, "AlreadyExists"))
            continue;
        if (err.code == 400 || err.code == 422)
            tqu_out(o, TQU_OUT_FAILED, "ApplyRejected", "the API server refused %s from %s: %s", target, ob->from,
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot %s %s: %s", live ? "replace" : "create", target,
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        goto out;
    }
    tqu_out(o, TQU_OUT_ERROR, "Conflict", "%s kept changing under the restore (%d conflicts): trying again",
        target, CONFLICT_RETRIES);
out:
    cJSON_Delete(live);
    cJSON_Delete(body);
    return rc;
}

/* update.sh: the original written back when it differs. */
static int apply_script(tqu_restore_job *r, const tqu_restore_set *set, int *changed, tqu_outcome *o)
{
    char err[PATH_MAX + 256];
    k8s_buf orig, now;
    struct stat ost, tst;
    int rc = -1, have;

    *changed = 0;
    k8s_buf_init(&orig, SCRIPT_MAX);
    k8s_buf_init(&now, SCRIPT_MAX);
    if (tqu_read_file(set->script_orig, SCRIPT_MAX, &orig, err, sizeof(err)) || stat(set->script_orig, &ost)) {
        tqu_out(o, TQU_OUT_FAILED, "BackupFileMissing", "the original update.sh: %s", err);
        goto out;
    }
    have = tqu_read_file(set->script_target, SCRIPT_MAX, &now, err, sizeof(err)) == 0 &&
           stat(set->script_target, &tst) == 0;
    if (have && now.len == orig.len && !memcmp(now.data, orig.data, now.len)) {
        rc = 0;
        goto out;
    }
    if (have && tqu_backup_keep(r->status, set->dir, "update.sh.before-restore", now.data, now.len,
                                tst.st_mode & 07777, set->script_target, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot keep the current update.sh before writing it back: %s", err);
        goto out;
    }
    if (tqu_write_file_atomic_as(set->script_target, orig.data, orig.len, (have ? tst.st_mode : ost.st_mode) & 07777,
                                 have && geteuid() == 0 ? tst.st_uid : (uid_t)-1,
                                 have && geteuid() == 0 ? tst.st_gid : (gid_t)-1, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "UpdateScriptWriteFailed", "cannot write the original update.sh back: %s", err);
        goto out;
    }
    tqu_log(TQU_INFO, "wrote the original update.sh back", "key", r->key, "file", set->script_target,
            "from", set->script_orig, NULL);
    *changed = 1;
    rc = 0;
out:
    k8s_buf_release(&orig);
    k8s_buf_release(&now);
    return rc;
}

/* The upgrade no longer keeps darwin-cdn tuned once it is put back. */
static int release_cdn(tqu_restore_job *r, const tqu_restore_set *set, tqu_outcome *o)
{
    char ebuf[1200];
    k8s_err err;
    cJSON *patch;
    int rc;

    if (k8s_json_str(set->upgrade, "metadata", "annotations", TQU_ANNOTATION_CDN_RESTORED, NULL))
        return 0;
    patch = cJSON_CreateObject();
    if (!cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "metadata"), "annotations"),
                                 TQU_ANNOTATION_CDN_RESTORED, r->name)) {
        cJSON_Delete(patch);
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        return -1;
    }
    rc = k8s_patch(r->ctl->client, &TQU_RESTORE_UPGRADES, r->ns, r->spec.upgrade, NULL, K8S_CT_MERGE_PATCH, patch,
                   NULL, &err);
    cJSON_Delete(patch);
    if (rc)
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot annotate TianqingUpgrade %s/%s (%s): %s", r->ns, r->spec.upgrade,
            TQU_ANNOTATION_CDN_RESTORED, k8s_err_str(&err, ebuf, sizeof(ebuf)));
    return rc ? -1 : 0;
}

void tqu__restore_step_apply(tqu_job *job, tqu_outcome *o)
{
    tqu_restore_job *r = (tqu_restore_job *)job;
    tqu_restore_set set;
    char names[1024] = "", t[600];
    size_t off = 0, nchanged = 0;
    int changed;

    if (tqu__restore_sources(r, &set, o))
        goto out;
    if (!cJSON_IsObject(k8s_json_get(r->status, "backup", NULL)))
        k8s_json_put(r->status, "backup", cJSON_CreateObject());
    k8s_json_put(k8s_json_get(r->status, "backup", NULL), "folder", cJSON_CreateString(set.dir));
    if (!tqu_may_act(r->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        goto out;
    }
    for (size_t i = 0; i < set.n; i++) {
        const tqu_restore_obj *ob = &set.objs[i];
        if (ob->cdn && release_cdn(r, &set, o))
            goto out;
        if (apply_obj(r, &set, ob, &changed, o))
            goto out;
        if (!changed)
            continue;
        nchanged++;
        tqu__restore_obj_name(ob, t, sizeof(t));
        if (off < sizeof(names))
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "", t);
    }
    if (set.script) {
        if (apply_script(r, &set, &changed, o))
            goto out;
        if (changed && off < sizeof(names))
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "", set.script_target);
        nchanged += (size_t)changed;
    }
    if (nchanged)
        tqu_out(o, TQU_OUT_DONE, "Restored", "put back %zu target%s from the upgrade's backup: %s (each saved first in %s)",
            nchanged, nchanged == 1 ? "" : "s", names, set.dir);
    else
        tqu_out(o, TQU_OUT_DONE, "NothingToRestore", "every target is already as the upgrade saved it");
out:
    tqu__restore_set_release(&set);
}
