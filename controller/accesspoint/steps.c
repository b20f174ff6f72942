/*
 * steps.c - TianqingAccessPointUpgrade's steps table, its hooks, and the
 * workflow the engine drives (design.md section 10). One file per step,
 * in the runbook's order (chapter 7): validate.c, legacy.c (below
 * 10.3.0.3201 only), extract.c, gather.c, decrypt.c, convert.c, stage.c,
 * images.c, proxysvc.c, cdn.c, install.c, verify.c.
 */
#include <stdio.h>
#include <string.h>
#include "ap_int.h"

const k8s_resource TQU_AP_RESOURCE = { TQU_GROUP, TQU_VERSION_API, TQU_AP_PLURAL, 1 };

static int load(tqu_job *job, const char **reason, char *msg, size_t len)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    const char *kept;
    run->spec_src = cJSON_Duplicate(run->obj, 1);
    if (!run->spec_src) {
        *reason = "OutOfMemory";
        snprintf(msg, len, "out of memory");
        return -1;
    }
    if (tqu_ap_spec_parse(run->spec_src, &run->spec, reason, msg, len))
        return -1;
    /* the first folder stays: its launch marker and kept originals */
    kept = k8s_json_str(run->obj, "status", "folder", NULL);
    if (kept && kept[0] == '/' && strlen(kept) < sizeof(run->dir))
        snprintf(run->dir, sizeof(run->dir), "%s", kept);
    else
        snprintf(run->dir, sizeof(run->dir), "%s/%s.%s.%s.ap", run->spec.backup_dir, run->ns, run->name,
                 run->uid ? run->uid : "nouid");
    return 0;
}

static void unload(tqu_job *job)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    cJSON_Delete(run->spec_src);
    run->spec_src = NULL;
}

static int dry_run(const tqu_job *job)
{
    return ((const tqu_ap_run *)job)->spec.dry_run;
}

static int paused(const tqu_job *job)
{
    return ((const tqu_ap_run *)job)->spec.paused;
}

static int vendor_running(tqu_job *job)
{
    return tqu__ap_installer_running((tqu_ap_run *)job);
}

static int exit_code(const tqu_job *job, long long *code)
{
    const cJSON *c = k8s_json_get(job->status, "install", "exitCode", NULL);
    if (!cJSON_IsNumber(c))
        return 0;
    *code = (long long)c->valuedouble;
    return 1;
}

/* A new generation reruns a succeeded step whose inputs changed (the
 * engine compares a digest of this text): every step that reads the new
 * package or makes the template the installer uses, so Install never
 * starts with the previous spec's package, template or images. */
static int inputs(tqu_job *job, int id, char *buf, size_t len)
{
    const tqu_ap_spec *sp = &((tqu_ap_run *)job)->spec;
    int n;
    if (id != AP_EXTRACT && id != AP_GATHER && id != AP_DECRYPT && id != AP_CONVERT && id != AP_STAGE &&
        id != AP_IMAGES_STEP && id != AP_CDN)
        return 0;
    n = snprintf(buf, len, "root=%s to=%s", sp->packages_root, sp->to_version);
    if (n < 0 || (size_t)n >= len)
        return 1;
    if (id == AP_EXTRACT)
        snprintf(buf + n, len - (size_t)n, " archive=%s md5=%s", sp->archive, sp->md5);
    if (id == AP_GATHER || id == AP_CONVERT || id == AP_CDN)
        snprintf(buf + n, len - (size_t)n, " from=%s pc=%s saas=%s deploy=%s", sp->from_version, sp->plan_client_dir,
                 sp->saas_dir, sp->deploy_id);
    if (id == AP_IMAGES_STEP) {
        size_t m = (size_t)n;
        m += (size_t)snprintf(buf + m, len - m, " images=%s user=%s", sp->images, sp->ssh_user);
        for (int i = 0; i < sp->nmachines && m < len; i++)
            m += (size_t)snprintf(buf + m, len - m, " %s:%d", sp->machines[i].host, sp->machines[i].port);
    }
    return 1;
}

static const tqu_step steps[AP_NSTEPS] = {
    [AP_VALIDATE] = { "Validate", "checking the versions, the folders (allowed roots) and the packages",
                      tqu__ap_step_validate, NULL, TQU_STEP_CHECK },
    [AP_LEGACY] = { "Legacy", "below 10.3.0.3201: the Docker-based access point is uninstalled only when confirmed",
                    tqu__ap_step_legacy, tqu__ap_plan_legacy, 0 },
    [AP_EXTRACT] = { "Extract", "checking the node package's md5 and extracting it into <root>/<toVersion>",
                     tqu__ap_step_extract, tqu__ap_plan_extract, 0 },
    [AP_GATHER] = { "Gather", "copying deploy-server.db, the ansible inventory, template.yaml.enc, darwin-client "
                    "and the darwin template into the new plan_client folder",
                    tqu__ap_step_gather, NULL, 0 },
    [AP_DECRYPT] = { "Decrypt", "./darwin-client decrypt --file=template.yaml.enc", tqu__ap_step_decrypt, NULL, 0 },
    [AP_CONVERT] = { "ConvertTemplate", "./plan_client update template (the s3 section fixed once when going to 10.7)",
                     tqu__ap_step_convert, NULL, 0 },
    [AP_STAGE] = { "Stage", "copying the converted template and darwin-client into <new>/tq_saas",
                   tqu__ap_step_stage, NULL, 0 },
    [AP_IMAGES_STEP] = { "LoadImages", "docker load of the console images here and, over SSH, on every machine",
                         tqu__ap_step_images, tqu__ap_plan_images, TQU_STEP_CHANGES },
    [AP_PROXY] = { "ProxyService", "checking that Service proxy-pp has port 30083 (fixsvc.sh, md5 checked, if not)",
                   tqu__ap_step_proxy, tqu__ap_plan_proxy, TQU_STEP_CHANGES },
    [AP_CDN] = { "CdnSetting", "setting the template's web.darwincdn to proxy-pp:8083 (the original kept)",
                 tqu__ap_step_cdn, tqu__ap_plan_cdn, 0 },
    [AP_INSTALL] = { "Install", "./darwin-client install --data.source=local --execute.type=k8s (detached, once)",
                     tqu__ap_step_install, tqu__ap_plan_install, TQU_STEP_CHANGES },
    [AP_VERIFY] = { "Verify", "waiting for every Deployment to be rolled out and available",
                    tqu__ap_step_verify, NULL, 0 },
};

const tqu_workflow tqu_accesspoint_workflow = {
    .rec = {
        .kind = "TianqingAccessPointUpgrade",
        .resource = &TQU_AP_RESOURCE,
        .reconcile = tqu_engine_reconcile,
        .workflow = &tqu_accesspoint_workflow,
    },
    .steps = steps,
    .nsteps = AP_NSTEPS,
    .job_size = sizeof(tqu_ap_run),
    .finalizer = TQU_AP_FINALIZER,
    .slot = "accesspoint",
    .slot_busy_reason = "AnotherAccessPointUpgradeActive",
    .noun = "access point upgrade",
    .succeeded_reason = "AccessPointUpgraded",
    .succeeded_message = "the access point is installed at the new version and every Deployment is available",
    .succeeded_log = "access point upgraded",
    .load = load,
    .unload = unload,
    .dry_run = dry_run,
    .paused = paused,
    .vendor_running = vendor_running,
    .inputs = inputs,
    .exit_code = exit_code,
};
