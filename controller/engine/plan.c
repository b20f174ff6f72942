/*
 * plan.c - status.plan: every step's entries, in step order (see engine.h).
 */
#include "engine.h"

int tqu_plan_add(cJSON *plan, const char *step, const char *action, const char *target,
                 const char *detail)
{
    cJSON *e = cJSON_CreateObject();
    if (!cJSON_AddStringToObject(e, "step", step) || !cJSON_AddStringToObject(e, "action", action) ||
        !cJSON_AddStringToObject(e, "target", target) ||
        (detail && !cJSON_AddStringToObject(e, "detail", detail))) {
        cJSON_Delete(e);
        return -1;
    }
    return k8s_json_append(plan, e) ? -1 : 0;
}

cJSON *tqu_plan_build(tqu_job *job)
{
    cJSON *plan = cJSON_CreateArray();
    if (!plan)
        return NULL;
    for (int i = 0; i < job->wf->nsteps; i++)
        if (job->wf->steps[i].plan && job->wf->steps[i].plan(job, plan)) {
            cJSON_Delete(plan);
            return NULL;
        }
    return plan;
}
