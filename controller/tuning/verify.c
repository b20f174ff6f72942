/*
 * verify.c - step 4, Verify: every Deployment whose arguments Apply
 * changed is rolled out (as kubectl rollout status).
 */
#include <stdio.h>
#include <string.h>
#include "tuning_int.h"

void tqu_tt_step_verify(tqu_job *job, tqu_outcome *o)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    char names[1024] = "";
    int waiting = 0;
    if (tqu_tt_resolve(run, o))
        return;
    for (int i = 0; i < run->ndeps; i++) {
        const cJSON *d = run->deps[i].obj;
        long long want = k8s_json_int(d, 1, "spec", "replicas", NULL);
        long long gen = k8s_json_int(d, 0, "metadata", "generation", NULL);
        long long obs = k8s_json_int(d, 0, "status", "observedGeneration", NULL);
        long long upd = k8s_json_int(d, 0, "status", "updatedReplicas", NULL);
        long long avail = k8s_json_int(d, 0, "status", "availableReplicas", NULL);
        long long total = k8s_json_int(d, 0, "status", "replicas", NULL);
        if (obs >= gen && upd >= want && total <= upd && avail >= want)
            continue;
        size_t l = strlen(names);
        snprintf(names + l, sizeof(names) - l, "%s%s/%s (%lld/%lld available)", waiting ? ", " : "", run->deps[i].ns,
                 run->deps[i].name, avail, want);
        waiting++;
    }
    if (waiting) {
        tqu_out(o, TQU_OUT_RUNNING, "WaitingForRollout", "waiting for %d Deployments to roll out: %s", waiting, names);
        o->requeue_after = 5;
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "%d Deployments rolled out with their arguments", run->ndeps);
}
