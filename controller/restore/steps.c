/*
 * steps.c - TianqingRestore's steps table (name, what it does, run) and
 * the workflow the engine drives. One file per step: validate.c, plan.c,
 * apply.c, verify.c.
 */
#include <stdio.h>
#include <string.h>
#include "restore.h"

const k8s_resource TQU_RESTORE_RESOURCE = { TQU_GROUP, TQU_VERSION_API, TQU_RESTORE_PLURAL, 1 };
const k8s_resource TQU_RESTORE_UPGRADES = { TQU_GROUP, TQU_VERSION_API, "tianqingupgrades", 1 };

/* ------------------------------------------------------------ the hooks */

static int load(tqu_job *job, const char **reason, char *msg, size_t len)
{
    tqu_restore_job *r = (tqu_restore_job *)job;
    r->spec_src = cJSON_Duplicate(r->obj, 1);
    if (!r->spec_src) {
        *reason = "OutOfMemory";
        snprintf(msg, len, "out of memory");
        return -1;
    }
    return tqu_restore_spec_parse(r->spec_src, &r->spec, reason, msg, len);
}

static void unload(tqu_job *job)
{
    tqu_restore_job *r = (tqu_restore_job *)job;
    tqu_restore_spec_release(&r->spec);
    cJSON_Delete(r->spec_src);
}

static int dry_run(const tqu_job *job)
{
    return ((const tqu_restore_job *)job)->spec.dry_run;
}

/* ------------------------------------------------------------ the table */

static const tqu_step steps[TQU_RESTORE_NSTEPS] = {
    [TQU_RESTORE_VALIDATE] = { "Validate",
        "checking the upgrade, the checksums of its backup files and that no vendor command runs",
        tqu__restore_step_validate, NULL, TQU_STEP_CHECK },
    [TQU_RESTORE_PLAN] = { "Plan",
        "comparing every target, live against saved, field by field",
        tqu__restore_step_plan, NULL, TQU_STEP_CHECK },
    [TQU_RESTORE_APPLY] = { "Apply",
        "putting back the saved objects and update.sh, each saved first as it is now",
        tqu__restore_step_apply, NULL, TQU_STEP_CHANGES },
    [TQU_RESTORE_VERIFY] = { "Verify",
        "waiting for the restored Deployments to be rolled out and available",
        tqu__restore_step_verify, NULL, 0 },
};

const tqu_workflow tqu_restore_workflow = {
    .rec = {
        .kind = "TianqingRestore",
        .resource = &TQU_RESTORE_RESOURCE,
        .reconcile = tqu_engine_reconcile,
        .workflow = &tqu_restore_workflow,
    },
    .steps = steps,
    .nsteps = TQU_RESTORE_NSTEPS,
    .job_size = sizeof(tqu_restore_job),
    .finalizer = NULL,
    .slot = "restore",
    .slot_busy_reason = "AnotherRestoreActive",
    .noun = "restore",
    .succeeded_reason = "RestoreSucceeded",
    .succeeded_message = "every target is back as the upgrade saved it and the restored Deployments are available",
    .succeeded_log = "restore succeeded",
    .load = load,
    .unload = unload,
    .dry_run = dry_run,
};
