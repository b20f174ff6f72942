/*
 * backup.c - step 2, Backup: the originals, before any change, into
 * <backupDir>/<namespace>.<name>.<uid>/: originals.json (each etcd key's
 * value or "absent", each argument as it was or "absent") and the
 * manifest of every Deployment it may change. Never overwritten: a
 * resumed run, or a new generation, keeps the first originals and only
 * adds those of new settings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "host/fsutil.h"
#include "tuning_int.h"

void tqu_tt_step_backup(tqu_job *job, tqu_outcome *o)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    char path[PATH_MAX + 64], ferr[512];
    k8s_buf b;
    cJSON *orig = NULL;
    char *text = NULL;
    int added = 0;
    struct stat st;

    if (tqu_tt_resolve(run, o))
        return;
    if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "%s (spec.backupDir)", ferr);
        return;
    }
    snprintf(path, sizeof(path), "%s/originals.json", run->dir);
    k8s_buf_init(&b, 0);
    if (tqu_read_file(path, 4 << 20, &b, ferr, sizeof(ferr)) == 0) {
        orig = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
        if (!cJSON_IsObject(orig)) {
            tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "%s is not the JSON this controller wrote: move it away", path);
            goto out;
        }
    } else if (stat(path, &st) == 0 || errno != ENOENT) {
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot read %s: %s", path, ferr);
        goto out;
    } else {
        orig = cJSON_CreateObject();
    }
    for (int i = 0; orig && i < run->nset; i++) {
        const tqu_tt_setting *s = &run->set[i];
        if (cJSON_GetObjectItemCaseSensitive(orig, s->target))
            continue;
        /* recorded in status by an earlier run whose file was lost: that one */
        const char *was = tqu_tt_original(run, s->target);
        if (k8s_json_put(orig, s->target, cJSON_CreateString(was ? was : s->present ? s->observed : TQU_TT_ABSENT)))
            goto nomem;
        added++;
    }
    if (!orig)
        goto nomem;
    for (int i = 0; i < run->ndeps; i++) {
        const tqu_tt_deploy *d = &run->deps[i];
        char mp[PATH_MAX + 600];
        snprintf(mp, sizeof(mp), "%s/deployment.%s.%s.json", run->dir, d->ns, d->name);
        if (stat(mp, &st) == 0)
            continue;
        char *m = cJSON_Print(d->obj);
        if (!m)
            goto nomem;
        int rc = tqu_write_file_atomic(mp, m, strlen(m), 0600, ferr, sizeof(ferr));
        free(m);
        if (rc) {
            tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot save Deployment %s/%s: %s", d->ns, d->name, ferr);
            goto out;
        }
    }
    if (added) {
        text = cJSON_Print(orig);
        if (!text)
            goto nomem;
        if (tqu_write_file_atomic(path, text, strlen(text), 0600, ferr, sizeof(ferr))) {
            tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot write %s: %s", path, ferr);
            goto out;
        }
    }
    if (tqu_tt_items_update(run, orig) ||
        k8s_json_put(run->status, "backupFolder", cJSON_CreateString(run->dir)))
        goto nomem;
    tqu_out(o, TQU_OUT_DONE, NULL, "originals of %d settings and %d Deployments saved in %s", run->nset, run->ndeps,
            run->dir);
    goto out;
nomem:
    tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
out:
    k8s_buf_release(&b);
    free(text);
    cJSON_Delete(orig);
}
