/*
 * steps.c - the upgrade's steps table and dispatcher, and the request's
 * state folder. One file per step: validate.c, preflight.c, backup.c,
 * paas_check.c, sabre.c, upgrade.c, cdn.c, verify.c.
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

const char *tqu_steps_describe(int id)
{
    static const char *const what[TQU_STEP_COUNT] = {
        "checking the spec, the upgrade route and the standard-install rule",
        "checking packages, template, disk space, node clocks, confirmations and the SSH Secret",
        "saving the list and the manifests of every Deployment",
        "running the darwin-client PaaS health check",
        "removing the old sabre Deployment and Service",
        "running the vendor's update.sh",
        "tuning the darwin-cdn Deployment (cache volume, anti-affinity)",
        "waiting for every Deployment to be rolled out and available",
    };
    return id >= 0 && id < TQU_STEP_COUNT ? what[id] : "";
}

/* -------------------------------------------------------------- dispatcher */

void tqu_steps_run(tqu_run *run, int id, tqu_outcome *o)
{
    memset(o, 0, sizeof(*o));
    switch (id) {
    case TQU_STEP_VALIDATE: tqu__step_validate(run, o); break;
    case TQU_STEP_PREFLIGHT: tqu__step_preflight(run, o); break;
    case TQU_STEP_BACKUP: tqu__step_backup(run, o); break;
    case TQU_STEP_PAAS: tqu__step_paas(run, o); break;
    case TQU_STEP_SABRE: tqu__step_sabre(run, o); break;
    case TQU_STEP_UPGRADE: tqu__step_upgrade(run, o); break;
    case TQU_STEP_CDN: tqu__step_cdn(run, o); break;
    case TQU_STEP_VERIFY: tqu__step_verify(run, o); break;
    default: tqu_out(o, TQU_OUT_FAILED, "UnknownStep", "unknown step %d", id); break;
    }
}
