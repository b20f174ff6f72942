/*
 * apply.c - step 3, Apply: the etcd keys (puts) and the Deployment
 * arguments (JSON patches with a test of the current args; only inside
 * spec.window), after the finalizer that puts the originals back on
 * deletion. Waits while a TianqingUpgrade's Upgrade step runs.
 */
#include <stdio.h>
#include <string.h>
#include "runtime/log.h"
#include "status.h"
#include "tuning_int.h"

int tqu_tt_plan_apply(tqu_job *job, cJSON *plan)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    char detail[1400];
    for (int i = 0; i < run->nset; i++) {
        const tqu_tt_setting *s = &run->set[i];
        int same = s->present && !strcmp(s->observed, s->desired);
        snprintf(detail, sizeof(detail), "%s: current %s, desired %s%s", s->name, s->present ? s->observed : TQU_TT_ABSENT,
                 s->desired, same ? " (already set: no change)" : "");
        if (tqu_plan_add(plan, "Apply", same ? "Check" : s->kind == TQU_TT_ETCD ? "Update" : "Patch", s->target, detail))
            return -1;
    }
    return 0;
}

int tqu_tt_keep(tqu_tt_run *run, tqu_outcome *o, tqu_outcome *w, int *in_window, char *what, size_t wlen)
{
    tqu_tt_watch_ensure(run);
    for (int i = 0; i < run->ndeps; i++)
        tqu_watch_object(run->ctl, &K8S_DEPLOYMENTS, run->deps[i].ns, run->deps[i].name, &TQU_TT_RESOURCE, run->key);
    memset(w, 0, sizeof(*w));
    *in_window = tqu_tt_window_gate(run, w) == 0;
    return tqu_tt_correct(run, *in_window, o, what, wlen);
}

const tqu_counter_family tqu_tt_drift_metric = {
    "tqu_tuning_drift_corrections_total",
    "Settings a TianqingTuning found changed outside the controller and put back (item: status.items[].name).",
    { "namespace", "name", "item" },
};

void tqu_tt_count_drift(const tqu_tt_run *run)
{
    for (int i = 0; i < run->nset; i++)
        if (run->set[i].corrected)
            tqu_metrics_count(&tqu_tt_drift_metric, run->ns, run->name, run->set[i].name);
}

void tqu_tt_step_apply(tqu_job *job, tqu_outcome *o)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    char who[512], what[1500];
    k8s_err err;
    char ebuf[1200];
    int r = tqu_tt_upgrade_running(run, who, sizeof(who));
    if (r < 0) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot list the TianqingUpgrades of namespace %s", run->ns);
        return;
    }
    if (r > 0) {
        tqu_out(o, TQU_OUT_WAIT, "UpgradeInProgress",
                "the Upgrade step of TianqingUpgrade %s is running: the remedies are applied after it", who);
        o->requeue_after = 30;
        return;
    }
    if (tqu_tt_resolve(run, o))
        return;
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        return;
    }
    /* the finalizer first: deleting the resource then puts the originals back */
    if (k8s_finalizer_add(run->ctl->client, &TQU_TT_RESOURCE, run->obj, TQU_TT_FINALIZER, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot add the finalizer: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    tqu_outcome w;
    int in_window;
    int n = tqu_tt_keep(run, o, &w, &in_window, what, sizeof(what));
    tqu_tt_items_update(run, NULL);
    if (n < 0)
        return;
    if (!in_window) {
        for (int i = 0; i < run->nset; i++)
            if (run->set[i].kind == TQU_TT_ARG && strcmp(run->set[i].observed, run->set[i].desired)) {
                *o = w;
                return;
            }
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "%d settings in place, %d changed%s%s", run->nset, n, n ? ": " : "", what);
}
