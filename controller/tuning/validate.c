/*
 * validate.c - step 1, Validate: every Deployment, container, config.ns
 * and etcd key the spec names can be read; status.plan lists every key
 * and argument with its current and desired value (a dry run stops here).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "host/roots.h"
#include "tuning_int.h"

void tqu_tt_step_validate(tqu_job *job, tqu_outcome *o)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    int todo = 0;
    char note[512] = "", why[PATH_MAX + 1024];
    /* the originals are written there: inside an allowed root (design.md
     * section 8), or nothing is read or written */
    if (tqu_roots_check(&run->ctl->opts->allowed_roots, run->spec.backup_dir, 0, NULL, 0, why, sizeof(why))) {
        tqu_out(o, TQU_OUT_FAILED, "PathNotAllowed", "spec.backupDir \"%.512s\" %s", run->spec.backup_dir, why);
        return;
    }
    if (tqu_tt_resolve(run, o))
        return;
    cJSON *plan = tqu_plan_build(job);
    if (!plan || k8s_json_put(run->status, "plan", plan)) {
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        return;
    }
    for (int i = 0; i < run->nset; i++)
        todo += !(run->set[i].present && !strcmp(run->set[i].observed, run->set[i].desired));
    if ((run->spec.cdn_max_request && !tqu_tt_remedies.confirmed[TQU_REM_CDN_MAX_REQUEST]) ||
        (run->spec.cdn_disk_space && !tqu_tt_remedies.confirmed[TQU_REM_CDN_DISK_SPACE]))
        snprintf(note, sizeof(note), "; the cdn key names are to be confirmed per site (remedies/remedies.yaml)");
    tqu_out(o, TQU_OUT_DONE, NULL, "%d settings, %d to change (status.plan)%s", run->nset, todo, note);
}
