/*
 * steps.c - TianqingTuning's steps table (name, what it does, run, plan),
 * its hooks, and the workflow the engine drives (design.md section 9).
 * One file per step: validate.c, backup.c, apply.c, verify.c. After
 * success the settings are kept in place (settled): drift in etcd (an
 * etcd watch, watch.c) or in a Deployment (a secondary watch) re-queues
 * the resource, and what changed back is corrected with a TuningRestored
 * Event. Deleting the resource puts the originals back (finalize).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/log.h"
#include "tuning_int.h"

tqu_remedies tqu_tt_remedies;

int tqu_tuning_init(const char *remedies_file, char *msg, size_t len)
{
    return tqu_remedies_load(remedies_file, &tqu_tt_remedies, msg, len);
}

static int load(tqu_job *job, const char **reason, char *msg, size_t len)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    const char *kept;
    run->spec_src = cJSON_Duplicate(run->obj, 1);
    if (!run->spec_src) {
        *reason = "OutOfMemory";
        snprintf(msg, len, "out of memory");
        return -1;
    }
    if (tqu_tt_spec_parse(run->spec_src, &run->spec, reason, msg, len))
        return -1;
    /* the first folder stays: its originals are the ones to put back */
    kept = k8s_json_str(run->obj, "status", "backupFolder", NULL);
    if (kept && kept[0] == '/' && strlen(kept) < sizeof(run->dir))
        snprintf(run->dir, sizeof(run->dir), "%s", kept);
    else
        snprintf(run->dir, sizeof(run->dir), "%s/%s.%s.%s", run->spec.backup_dir, run->ns, run->name,
                 run->uid ? run->uid : "nouid");
    return 0;
}

static void unload(tqu_job *job)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    for (int i = 0; i < run->ndeps; i++)
        cJSON_Delete(run->deps[i].obj);
    etcd_client_free(run->etcd);
    cJSON_Delete(run->spec_src);
}

static int dry_run(const tqu_job *job)
{
    return ((const tqu_tt_run *)job)->spec.dry_run;
}

static int paused(const tqu_job *job)
{
    return ((const tqu_tt_run *)job)->spec.paused;
}

/* Succeeded: keep every setting in place. */
static void settled(tqu_job *job, tqu_result *res)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    tqu_outcome o;
    char who[512], what[1500];
    memset(&o, 0, sizeof(o));
    int up = tqu_tt_upgrade_running(run, who, sizeof(who));
    if (up > 0) {
        /* the upgrade rewrites what we set: wait, and apply again after it */
        char m[1024];
        snprintf(m, sizeof(m), "the Upgrade step of TianqingUpgrade %s is running: the remedies are applied again after it", who);
        for (int id = TQU_TT_STEP_APPLY; id < TQU_TT_STEP_COUNT; id++) {
            cJSON *s = tqu_status_step(run->status, run->wf, id);
            k8s_json_put(s, "state", cJSON_CreateString("Pending"));
            k8s_json_put(s, "message", cJSON_CreateString("to run again after the upgrade"));
        }
        k8s_json_put(run->status, "currentStep", cJSON_CreateString("Apply"));
        tqu_status_set_phase(run->status, "Waiting", "UpgradeInProgress", m, run->generation);
        if (tqu_job_write_status(job) == 0)
            tqu_event(run, "Normal", "UpgradeInProgress", "%s", m);
        res->requeue_after = 30;
        return;
    }
    if (tqu_tt_resolve(run, &o)) {
        tqu_log(TQU_WARN, "cannot check the tuning", "key", run->key, "reason", o.reason ? o.reason : "",
                "message", o.message, NULL);
        if (o.kind == TQU_OUT_ERROR)
            res->error = 1;
        else
            res->requeue_after = 60;
        return;
    }
    /* a setting new in this generation has no original yet: back it up
     * (and apply it) through the steps, not here */
    for (int i = 0; i < run->nset; i++) {
        if (tqu_tt_original(run, run->set[i].target))
            continue;
        for (int id = TQU_TT_STEP_BACKUP; id < TQU_TT_STEP_COUNT; id++) {
            cJSON *st = tqu_status_step(run->status, run->wf, id);
            k8s_json_put(st, "state", cJSON_CreateString("Pending"));
            k8s_json_put(st, "message", cJSON_CreateString("to run again: the spec names a new setting"));
        }
        tqu_status_set_phase(run->status, "Running", "NewSettings",
                             "the spec names a new setting: its original is saved before it is applied",
                             run->generation);
        tqu_job_write_status(job);
        return;
    }
    tqu_outcome w;
    int in_window;
    int n = tqu_tt_keep(run, &o, &w, &in_window, what, sizeof(what));
    if (n < 0) {
        tqu_log(TQU_WARN, "cannot correct the tuning", "key", run->key, "message", o.message, NULL);
        res->error = o.kind == TQU_OUT_ERROR;
        if (!res->error)
            res->requeue_after = 60;
    }
    if (n > 0) {
        long long d = k8s_json_int(run->status, 0, "drifted", NULL) + n;
        k8s_json_put(run->status, "drifted", cJSON_CreateNumber((double)d));
        tqu_log(TQU_INFO, "drift corrected", "key", run->key, "what", what, NULL);
        tqu_tt_count_drift(run);
    }
    tqu_tt_items_update(run, NULL);
    if (tqu_job_write_status(job) == 0 && n > 0)
        tqu_event(run, "Warning", "TuningRestored", "changed back, set again: %s", what);
    if (!in_window && w.requeue_after > 0)
        res->requeue_after = w.requeue_after;
}

/* Deleted: put every original back (restoreOnDelete), stop the watch. */
static int finalize(tqu_job *job, tqu_result *res)
{
    tqu_tt_run *run = (tqu_tt_run *)job;
    tqu_outcome o;
    char what[1500];
    memset(&o, 0, sizeof(o));
    if (run->spec_src && run->spec.n_endpoints && run->spec.restore_on_delete) {
        if (tqu_tt_restore(run, &o, what, sizeof(what))) {
            tqu_log(TQU_WARN, "cannot put the originals back yet", "key", run->key, "message", o.message, NULL);
            tqu_event(run, "Warning", o.reason ? o.reason : "RestoreFailed",
                      "deletion waits until the originals are back: %s", o.message);
            res->requeue_after = o.kind == TQU_OUT_ERROR ? 5 : 30;
            return 1;
        }
        tqu_event(run, "Normal", "OriginalsRestored", "the originals are back%s%s", what[0] ? ": " : " (nothing had changed)", what);
        tqu_log(TQU_INFO, "originals restored", "key", run->key, "what", what, NULL);
    } else if (!run->spec_src || !run->spec.n_endpoints) {
        tqu_log(TQU_WARN, "deleted with a spec that does not parse: originals not restored", "key", run->key, NULL);
    }
    tqu_tt_watch_stop(run->key);
    return 0;
}

static void stop(void)
{
    tqu_tt_watch_stop_all();
}

const k8s_resource TQU_TT_RESOURCE = { TQU_GROUP, TQU_VERSION_API, TQU_TT_PLURAL, 1 };

static const tqu_step steps[TQU_TT_STEP_COUNT] = {
    [TQU_TT_STEP_VALIDATE] = { "Validate",
        "reading every Deployment, container, config.ns and etcd key the spec names",
        tqu_tt_step_validate, tqu_tt_plan_apply, TQU_STEP_CHECK },
    [TQU_TT_STEP_BACKUP] = { "Backup",
        "saving the original etcd values and Deployment manifests",
        tqu_tt_step_backup, NULL, 0 },
    [TQU_TT_STEP_APPLY] = { "Apply",
        "writing the etcd keys and the Deployment arguments",
        tqu_tt_step_apply, NULL, TQU_STEP_CHANGES },
    [TQU_TT_STEP_VERIFY] = { "Verify",
        "waiting for the changed Deployments to roll out",
        tqu_tt_step_verify, NULL, 0 },
};

static const tqu_counter_family *const drift_metrics[] = { &tqu_tt_drift_metric, NULL };

const tqu_workflow tqu_tuning_workflow = {
    .rec = {
        .kind = "TianqingTuning",
        .resource = &TQU_TT_RESOURCE,
        .reconcile = tqu_engine_reconcile,
        .workflow = &tqu_tuning_workflow,
        .stop = stop,
        .metrics = drift_metrics,
    },
    .steps = steps,
    .nsteps = TQU_TT_STEP_COUNT,
    .job_size = sizeof(tqu_tt_run),
    .finalizer = TQU_TT_FINALIZER,
    .slot = NULL,
    .slot_busy_reason = "AnotherTuningActive",
    .noun = "tuning",
    .succeeded_reason = "TuningApplied",
    .succeeded_message = "every setting is in place and kept so",
    .succeeded_log = "tuning applied",
    .load = load,
    .unload = unload,
    .dry_run = dry_run,
    .paused = paused,
    .settled = settled,
    .finalize = finalize,
};
