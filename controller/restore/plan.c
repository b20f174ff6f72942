/*
 * plan.c - step 2, Plan: every target, live against saved, field by field,
 * into status.plan: one entry per object (create, replace or none) with
 * the JSON paths that differ, server-set fields aside, and one for
 * update.sh. Changes nothing; a dry run ends here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/fsutil.h"
#include "diff.h"
#include "restore.h"

#define SCRIPT_MAX ((size_t)8 << 20)

/* One object's entry. *differs: 1 when it would change. 0, or -1 with o
 * filled. */
static int plan_obj(tqu_restore_job *r, const tqu_restore_obj *ob, cJSON *plan, int *differs, tqu_outcome *o)
{
    char target[600], detail[PATH_MAX + 128], ebuf[1200];
    cJSON *live = NULL, *paths = cJSON_CreateArray(), *e;
    const char *action;
    k8s_err err;
    int n = 0, rc = -1;

    tqu__restore_obj_name(ob, target, sizeof(target));
    if (!paths)
        goto nomem;
    if (k8s_get(r->ctl->client, ob->res, ob->ns, ob->name, &live, &err)) {
        if (!k8s_err_is(&err, "NotFound")) {
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read %s: %s", target, k8s_err_str(&err, ebuf, sizeof(ebuf)));
            goto out;
        }
        action = "create";
        snprintf(detail, sizeof(detail), "absent now: created from %s", ob->from);
    } else {
        if ((n = tqu_restore_diff(ob->saved, live, paths)) < 0)
            goto nomem;
        action = n ? "replace" : "none";
        if (n)
            snprintf(detail, sizeof(detail), "%d field%s differ%s from %s", n, n == 1 ? "" : "s",
                     n == 1 ? "s" : "", ob->from);
        else
            snprintf(detail, sizeof(detail), "as saved in %s: nothing to do", ob->from);
    }
    *differs = strcmp(action, "none") != 0;
    if (tqu_plan_add(plan, "Apply", action, target, detail))
        goto nomem;
    e = cJSON_GetArrayItem(plan, cJSON_GetArraySize(plan) - 1);
    if (k8s_json_put(e, "paths", paths)) {
        paths = NULL;
        goto nomem;
    }
    paths = NULL;
    rc = 0;
    goto out;
nomem:
    tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
out:
    cJSON_Delete(paths);
    cJSON_Delete(live);
    return rc;
}

/* update.sh's entry: equal to the original, or written back. */
static int plan_script(const tqu_restore_set *set, cJSON *plan, int *differs, tqu_outcome *o)
{
    char err[PATH_MAX + 256], detail[PATH_MAX * 2 + 128];
    k8s_buf orig, now;
    int rc = -1, same;

    k8s_buf_init(&orig, SCRIPT_MAX);
    k8s_buf_init(&now, SCRIPT_MAX);
    if (tqu_read_file(set->script_orig, SCRIPT_MAX, &orig, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_FAILED, "BackupFileMissing", "%s; nothing was restored", err);
        goto out;
    }
    if (tqu_read_file(set->script_target, SCRIPT_MAX, &now, err, sizeof(err)) == 0) {
        same = now.len == orig.len && !memcmp(now.data, orig.data, now.len);
        snprintf(detail, sizeof(detail), same ? "as the original kept in %s: nothing to do" :
                 "differs from the original kept in %s: written back (the current one kept first)", set->script_orig);
    } else {
        same = 0;
        snprintf(detail, sizeof(detail), "absent now: the original kept in %s written back", set->script_orig);
    }
    *differs = !same;
    if (tqu_plan_add(plan, "Apply", same ? "none" : "write", set->script_target, detail)) {
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        goto out;
    }
    rc = 0;
out:
    k8s_buf_release(&orig);
    k8s_buf_release(&now);
    return rc;
}

void tqu__restore_step_plan(tqu_job *job, tqu_outcome *o)
{
    tqu_restore_job *r = (tqu_restore_job *)job;
    tqu_restore_set set;
    cJSON *plan = NULL;
    char names[1024] = "", t[600];
    size_t off = 0, ndiff = 0;
    int d;

    if (tqu__restore_sources(r, &set, o))
        goto out;
    if (!(plan = cJSON_CreateArray())) {
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < set.n; i++) {
        if (plan_obj(r, &set.objs[i], plan, &d, o))
            goto out;
        if (!d)
            continue;
        ndiff++;
        tqu__restore_obj_name(&set.objs[i], t, sizeof(t));
        if (off < sizeof(names))
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "", t);
    }
    if (set.script) {
        if (plan_script(&set, plan, &d, o))
            goto out;
        if (d && off < sizeof(names))
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "", "update.sh");
        ndiff += (size_t)d;
    }
    k8s_json_put(r->status, "plan", plan);
    plan = NULL;
    if (ndiff)
        tqu_out(o, TQU_OUT_DONE, "PlanReady", "%zu of %zu target%s differ%s from the upgrade's backup: %s "
            "(status.plan lists the fields)%s%s", ndiff, set.n + (size_t)set.script, set.n + (size_t)set.script == 1 ? "" : "s",
            ndiff == 1 ? "s" : "", names, set.notes[0] ? "; " : "", set.notes);
    else
        tqu_out(o, TQU_OUT_DONE, "NothingToRestore", "all %zu target%s are as the upgrade saved them%s%s",
            set.n + (size_t)set.script, set.n + (size_t)set.script == 1 ? "" : "s", set.notes[0] ? "; " : "", set.notes);
out:
    cJSON_Delete(plan);
    tqu__restore_set_release(&set);
}
