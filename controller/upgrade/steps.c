/*
 * steps.c - the upgrade's steps table (name, what it does, run, plan), the
 * workflow the engine drives, and the request's state folder. One file per
 * step: validate.c, preflight.c, backup.c, paas_check.c, sabre.c,
 * upgrade.c, cdn.c, verify.c.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"
#include "upgrade.h"

/* A per-request folder: the namespace, name and uid keep two requests (or
 * a deleted and re-created one) apart. */
int tqu_steps_kept_dir(tqu_run *run)
{
    const char *kept = k8s_json_str(run->obj, "status", "backup", "folder", NULL);
    if (kept && kept[0] == '/' && strlen(kept) < sizeof(run->dir)) {
        snprintf(run->dir, sizeof(run->dir), "%s", kept);
        return 0;
    }
    return -1;
}

void tqu_steps_state_dir(tqu_run *run)
{
    /* Once a request has a folder (its backup is recorded there) it keeps
     * it: a spec.backupDir changed mid-run must not hide a running
     * update.sh's launch marker and let a second one start. */
    if (tqu_steps_kept_dir(run) == 0)
        return;
    snprintf(run->dir, sizeof(run->dir), "%s/%s.%s.%s", run->spec.backup_dir, run->ns, run->name,
             run->uid ? run->uid : "nouid");
}

/* ------------------------------------------------------------ the hooks */

/* The spec, into run->spec (its strings point into run->spec_src), and the
 * state folder. A spec that does not parse still gets the recorded folder
 * when status has one, so a running update.sh is seen. */
static int load(tqu_job *job, const char **reason, char *msg, size_t len)
{
    tqu_run *run = (tqu_run *)job;
    run->spec_src = cJSON_Duplicate(run->obj, 1);
    if (!run->spec_src) {
        snprintf(msg, len, "out of memory");
        *reason = "OutOfMemory";
        tqu_steps_kept_dir(run);
        return -1;
    }
    if (tqu_spec_parse(run->spec_src, &run->spec, reason, msg, len)) {
        tqu_steps_kept_dir(run);
        return -1;
    }
    tqu_steps_state_dir(run);
    return 0;
}

static void unload(tqu_job *job)
{
    cJSON_Delete(((tqu_run *)job)->spec_src);
}

static int dry_run(const tqu_job *job)
{
    return ((const tqu_run *)job)->spec.dry_run;
}

static int paused(const tqu_job *job)
{
    return ((const tqu_run *)job)->spec.paused;
}

/* Only what the state folder says (no folder known: no backup was ever
 * taken, so update.sh, which comes after it, never started). */
static int vendor_running(tqu_job *job)
{
    tqu_run *run = (tqu_run *)job;
    return run->dir[0] && tqu_steps_vendor_running(run);
}

static void settled(tqu_job *job, tqu_result *res)
{
    tqu_run *run = (tqu_run *)job;
    /* a TianqingRestore put darwin-cdn back as it was: leave it so */
    if (k8s_json_str(run->obj, "metadata", "annotations", TQU_ANNOTATION_CDN_RESTORED, NULL))
        return;
    if (!strcmp(tqu_status_step_state(run->status, run->wf, TQU_STEP_CDN), "Succeeded"))
        tqu_steps_keep_cdn_tuned(run, res);
}

/* PaasCheck, a check that runs the vendor's tool from the old package,
 * runs again in a new generation when what it checked changed. */
static int inputs(tqu_job *job, int id, char *buf, size_t len)
{
    const tqu_spec *sp = &((tqu_run *)job)->spec;
    if (id != TQU_STEP_PAAS)
        return 0;
    snprintf(buf, len, "from=%s root=%s template=%s edr=%d", sp->from_version, sp->packages_root,
             sp->template_path, sp->edr_enabled);
    return 1;
}

/* update.sh's exit code, once it ended */
static int exit_code(const tqu_job *job, long long *code)
{
    const cJSON *c = k8s_json_get(job->status, "upgrade", "exitCode", NULL);
    if (!cJSON_IsNumber(c))
        return 0;
    *code = (long long)c->valuedouble;
    return 1;
}

/* ------------------------------------------------------------ the table */

const k8s_resource TQU_RESOURCE = { TQU_GROUP, TQU_VERSION_API, TQU_PLURAL, 1 };

/* The runbook's eight steps, in order (design.md section 2). */
static const tqu_step steps[TQU_STEP_COUNT] = {
    [TQU_STEP_VALIDATE] = { "Validate",
        "checking the spec, the upgrade route and the standard-install rule",
        tqu__step_validate, NULL, TQU_STEP_CHECK },
    [TQU_STEP_PREFLIGHT] = { "Preflight",
        "checking packages, template, disk space, node clocks, confirmations and the SSH Secret",
        tqu__step_preflight, tqu__plan_preflight, TQU_STEP_CHECK },
    [TQU_STEP_BACKUP] = { "BackupDeployments",
        "saving the list and the manifests of every Deployment",
        tqu__step_backup, tqu__plan_backup, 0 },
    [TQU_STEP_PAAS] = { "PaasCheck",
        "running the darwin-client PaaS health check",
        tqu__step_paas, tqu__plan_paas, TQU_STEP_CHANGES },
    [TQU_STEP_SABRE] = { "SabreCleanup",
        "removing the old sabre Deployment and Service",
        tqu__step_sabre, tqu__plan_sabre, TQU_STEP_CHANGES },
    [TQU_STEP_UPGRADE] = { "Upgrade",
        "running the vendor's update.sh",
        tqu__step_upgrade, tqu__plan_upgrade, TQU_STEP_CHANGES },
    [TQU_STEP_CDN] = { "CdnTuning",
        "tuning the darwin-cdn Deployment (cache volume, anti-affinity)",
        tqu__step_cdn, tqu__plan_cdn, TQU_STEP_CHANGES },
    [TQU_STEP_VERIFY] = { "Verify",
        "waiting for every Deployment to be rolled out and available",
        tqu__step_verify, tqu__plan_verify, 0 },
};

const tqu_workflow tqu_upgrade_workflow = {
    .rec = {
        .kind = "TianqingUpgrade",
        .resource = &TQU_RESOURCE,
        .reconcile = tqu_engine_reconcile,
        .report_phases = tqu_metrics_set_phase_counts,
        .workflow = &tqu_upgrade_workflow,
    },
    .steps = steps,
    .nsteps = TQU_STEP_COUNT,
    .job_size = sizeof(tqu_run),
    .finalizer = TQU_FINALIZER,
    .slot = "upgrade",
    .slot_busy_reason = "AnotherUpgradeActive",
    .noun = "upgrade",
    .succeeded_reason = "UpgradeSucceeded",
    .succeeded_message = "the upgrade is complete and every Deployment is available",
    .succeeded_log = "upgrade succeeded",
    .load = load,
    .unload = unload,
    .dry_run = dry_run,
    .paused = paused,
    .vendor_running = vendor_running,
    .settled = settled,
    .inputs = inputs,
    .exit_code = exit_code,
};
