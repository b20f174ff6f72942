/*
 * verify.c - step 4, Verify: every setting is still in place (one
 * changed back meanwhile is set again) and every Deployment whose
 * arguments Apply changed is rolled out (as kubectl rollout status).
 */
#include <stdio.h>
#include <string.h>
#include "status.h"
#include "tuning_int.h"

void tqu_tt_step_verify(tqu_job *job, tqu_outcome *o)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    char names[1024] = "";
    int waiting = 0, drifted = 0;
    if (tqu_tt_resolve(run, o))
        return;
    /* a setting changed back while the rollouts ran (a Deployment replaced
     * by the vendor, a value put back): set again, then wait again */
    for (int i = 0; i < run->nset; i++)
        drifted += !(run->set[i].present && !strcmp(run->set[i].observed, run->set[i].desired));
    if (drifted) {
        char what[1500];
        tqu_outcome w;
        int in_window;
        int n = tqu_tt_keep(run, o, &w, &in_window, what, sizeof(what));
        if (n < 0)
            return;
        if (n > 0) {
            long long d = k8s_json_int(run->status, 0, "drifted", NULL) + n;
            k8s_json_put(run->status, "drifted", cJSON_CreateNumber((double)d));
            tqu_tt_count_drift(run);
            tqu_tt_items_update(run, NULL);
            tqu_event(run, "Warning", "TuningRestored", "changed back while the rollouts ran, set again: %s", what);
            tqu_out(o, TQU_OUT_RUNNING, "WaitingForRollout", "%d settings changed back and set again: %s", n, what);
            o->requeue_after = 2;
            return;
        }
    }
    for (int i = 0; i < run->ndeps; i++) {
        long long avail, want;
        if (k8s_deployment_rolled_out(run->deps[i].obj, &avail, &want))
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
