/*
 * validate.c - step 1, Validate: every Deployment, container, config.ns
 * and etcd key the spec names can be read; status.plan lists every key
 * and argument with its current and desired value (a dry run stops here).
 */
#include <stdio.h>
#include <string.h>
#include "tuning_int.h"

void tqu_tt_step_validate(tqu_job *job, tqu_outcome *o)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    int todo = 0;
    char note[512] = "";
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
