/*
 * plan.c - the access point upgrade's entries of status.plan: what each
 * step that runs a vendor command or changes the access point will do,
 * for a dry run to show before anything changes.
 */
#include <stdio.h>
#include "ap_int.h"

int tqu__ap_plan_extract(tqu_job *job, cJSON *plan)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char dir[PATH_MAX];
    if (!run->spec.archive[0] || run->spec.legacy)
        return 0;
    tqu__ap_new_dir(run, dir, sizeof(dir));
    return tqu_plan_add(plan, "Extract", "extract", dir, run->spec.archive);
}

int tqu__ap_plan_images(tqu_job *job, cJSON *plan)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char images[PATH_MAX * 2], host[300];
    if (run->spec.legacy)
        return 0;
    tqu__ap_images(run, images, sizeof(images));
    if (tqu_plan_add(plan, "LoadImages", "docker load", "local", images))
        return -1;
    for (int i = 0; i < run->spec.nmachines; i++) {
        const tqu_ap_machine *m = &run->spec.machines[i];
        snprintf(host, sizeof(host), "%s:%d", m->host, m->port);
        if (tqu_plan_add(plan, "LoadImages", "copy and docker load", host, images))
            return -1;
    }
    return 0;
}

int tqu__ap_plan_proxy(tqu_job *job, cJSON *plan)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char target[600];
    if (run->spec.legacy)
        return 0;
    snprintf(target, sizeof(target), "Service %s/%s", run->spec.proxy_ns, run->spec.proxy_name);
    return tqu_plan_add(plan, "ProxyService", "check port 30083", target,
                        run->spec.fixsvc_path[0] ? run->spec.fixsvc_path : "no fixsvc.sh given");
}

int tqu__ap_plan_cdn(tqu_job *job, cJSON *plan)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    if (run->spec.legacy)
        return 0;
    return tqu_plan_add(plan, "CdnSetting", "set web.darwincdn", "darwin_update_template_<timestamp>.yaml",
                        AP_DARWINCDN);
}

int tqu__ap_plan_install(tqu_job *job, cJSON *plan)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char dir[PATH_MAX];
    if (run->spec.legacy)
        return 0;
    tqu__ap_new_saas(run, dir, sizeof(dir));
    return tqu_plan_add(plan, "Install", "command", dir,
                        "./darwin-client install --data.source=local --execute.type=k8s "
                        "--template.file=darwin_update_template_<timestamp>.yaml");
}

int tqu__ap_plan_legacy(tqu_job *job, cJSON *plan)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    if (!run->spec.legacy)
        return 0;
    return tqu_plan_add(plan, "Legacy", run->spec.confirm_uninstall ? "uninstall" : "none (confirmUninstall is false)",
                        run->spec.legacy_dir, "docker rm -f of every container, the folder removed, docker restarted");
}
