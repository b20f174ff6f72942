/*
 * plan.c - the upgrade steps' entries of status.plan: every command and API
 * change the run will make, secrets shown as ***.
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
#include "host/child.h"
#include "version.h"
#include "status.h"
#include "steps_int.h"

/* Each step's entries of status.plan: every command and API change the run
 * will make, secrets as ***. The table in steps.c names them; Preflight
 * publishes the whole plan once it knows the template (run->tmpl). */

int tqu__plan_preflight(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    char n[PATH_MAX], cmd[TQU_CHILD_CMD_MAX], arch[PATH_MAX * 2];
    if (!run->spec.packages_archive[0])
        return 0;
    tqu__new_dir(run, n, sizeof(n));
    if (run->spec.packages_archive[0] == '/')
        snprintf(arch, sizeof(arch), "%s", run->spec.packages_archive);
    else
        snprintf(arch, sizeof(arch), "%s/%s", n, run->spec.packages_archive);
    const char *targv[] = { "tar", "-xf", arch, "-C", n, NULL };
    tqu__format_cmd(run, (char *const *)targv, 0, cmd, sizeof(cmd));
    return tqu_plan_add(plan, "Preflight", "run", cmd, "extract the new package, only if update.sh is not there yet");
}

int tqu__plan_backup(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    char buf[PATH_MAX * 2];
    int bad = 0;
    snprintf(buf, sizeof(buf), "%s/deploy_<time>.log", run->dir);
    bad |= tqu_plan_add(plan, "BackupDeployments", "write", buf,
                        "the Deployment list in the layout of kubectl get deployment -A --no-headers");
    snprintf(buf, sizeof(buf), "%s/deploy_<time>.json", run->dir);
    bad |= tqu_plan_add(plan, "BackupDeployments", "write", buf, "the full manifest of every Deployment (a v1 List)");
    return bad;
}

int tqu__plan_paas(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    char o[PATH_MAX], cmd[TQU_CHILD_CMD_MAX], buf[PATH_MAX * 2], d[1024], tflag[PATH_MAX + 32];
    int bad = 0;
    tqu__old_dir(run, o, sizeof(o));
    snprintf(tflag, sizeof(tflag), "--template.file=%s", run->tmpl);
    const char *pargv[] = { "./darwin-client", "install", "--data.source=local", "--execute.type=k8s",
                            tflag, "--actions=paas_check", NULL };
    tqu__format_cmd(run, (char *const *)pargv, 0, cmd, sizeof(cmd));
    snprintf(d, sizeof(d), "in %s/tq_saas, timeout %.0f s", o, run->spec.timeout_paas_s);
    bad |= tqu_plan_add(plan, "PaasCheck", "run", cmd, d);
    if (!run->spec.edr_enabled) {
        tqu__update_sh(run, buf, sizeof(buf));
        snprintf(d, sizeof(d), "only if es, flink and/or sabre alone fail (EDR off): insert \" --paas.check=false\" "
                 "after execute.type=k8s; the original is kept in %s", run->dir);
        bad |= tqu_plan_add(plan, "PaasCheck", "edit", buf, d);
    }
    return bad;
}

int tqu__plan_sabre(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    tqu_version initial, cutoff;
    int bad = 0;
    if (tqu_version_parse(run->spec.initial_version, &initial) == 0 &&
        tqu_version_parse("10.5.0.3000", &cutoff) == 0 && tqu_version_cmp(&initial, &cutoff) < 0) {
        const char *sd = run->spec.has_window ? "its manifest is saved first; inside the window" :
                                                "its manifest is saved first";
        bad |= tqu_plan_add(plan, "SabreCleanup", "delete", "Deployment default-sabre-server/sabre-server", sd);
        bad |= tqu_plan_add(plan, "SabreCleanup", "delete", "Service default-sabre-server/sabre-server-service", sd);
    }
    return bad;
}

int tqu__plan_upgrade(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    char o[PATH_MAX], n[PATH_MAX], port[16], cmd[TQU_CHILD_CMD_MAX], d[1024];
    const char *argv[20];
    tqu__upgrade_argv(run, run->tmpl, "***", o, sizeof(o), n, sizeof(n), port, sizeof(port), argv);
    tqu__format_cmd(run, (char *const *)argv, 0, cmd, sizeof(cmd));
    snprintf(d, sizeof(d), "in %s/%s, detached, at most once, timeout %.0f s%s%s%s", n, PLAN_CLIENT,
             run->spec.timeout_upgrade_s, run->spec.has_window ? ", only inside the window " : "",
             run->spec.has_window ? run->spec.window_start_text : "", run->spec.has_window ? " .. " : "");
    if (run->spec.has_window) {
        size_t l = strlen(d);
        snprintf(d + l, sizeof(d) - l, "%s", run->spec.window_end_text);
    }
    return tqu_plan_add(plan, "Upgrade", "run", cmd, d);
}

int tqu__plan_cdn(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    char buf[PATH_MAX * 2], d[1024];
    if (!run->spec.cdn_cache_persistence && !run->spec.cdn_anti_affinity)
        return 0;
    snprintf(buf, sizeof(buf), "Deployment %s/%s", run->spec.cdn_namespace, run->spec.cdn_deployment);
    snprintf(d, sizeof(d), "strategic merge patch:%s%s%s%s (saved first; kept in place afterwards)",
             run->spec.cdn_cache_persistence ? " hostPath volume darwin-cdn-data (DirectoryOrCreate) " : "",
             run->spec.cdn_cache_persistence ? run->spec.cdn_cache_host_path : "",
             run->spec.cdn_cache_persistence ? " mounted at /home/s/darwin-cdn/data/;" : "",
             run->spec.cdn_anti_affinity ? " required pod anti-affinity on its app label per kubernetes.io/hostname" : "");
    return tqu_plan_add(plan, "CdnTuning", "patch", buf, d);
}

int tqu__plan_verify(tqu_job *job, cJSON *plan)
{
    tqu_run *run = (tqu_run *)job;
    char d[1024];
    snprintf(d, sizeof(d), "rolled out and available within %.0f s", run->spec.timeout_verify_s);
    return tqu_plan_add(plan, "Verify", "wait", "every Deployment", d);
}
