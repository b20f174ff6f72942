/*
 * validate.c - step Validate: the versions (parsed by spec.c), every folder
 * the spec names inside the allowed roots (design.md section 8), the
 * request's own folder created, and the new package there (or its
 * archive). Changes nothing but the request's folder.
 */
#include <stdio.h>
#include <string.h>
#include "host/fsutil.h"
#include "ap_int.h"

void tqu__ap_step_validate(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char err[PATH_MAX + 256], p[PATH_MAX * 2];

    if (tqu__ap_confine_spec(run, o))
        return;
    if (tqu_mkdir_p(run->dir, 0700, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", err);
        return;
    }
    k8s_json_put(run->status, "folder", cJSON_CreateString(run->dir));
    cJSON *plan = tqu_plan_build(job);
    if (!plan || k8s_json_put(run->status, "plan", plan)) {
        tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
        return;
    }
    if (run->spec.legacy) {
        tqu_out(o, TQU_OUT_DONE, NULL, "%s is below 10.3.0.3201: the Docker-based access point (Legacy step)",
                run->spec.from_version);
        return;
    }
    if (run->spec.archive[0]) {
        if (run->spec.archive[0] == '/')
            snprintf(p, sizeof(p), "%s", run->spec.archive);
        else
            snprintf(p, sizeof(p), "%s/%s", run->spec.packages_root, run->spec.archive);
        if (!tqu_is_file(p)) {
            tqu_out(o, TQU_OUT_BLOCKED, "PackageNotFound", "the node package %s (spec.packages.archive) is not there", p);
            return;
        }
    } else {
        tqu__ap_plan_client(run, p, sizeof(p));
        if (!tqu_is_dir(p)) {
            tqu_out(o, TQU_OUT_BLOCKED, "PackageNotFound",
                    "%s is not there: unpack the %s node package under %s, or set spec.packages.archive", p,
                    run->spec.to_version, run->spec.packages_root);
            return;
        }
    }
    if (!tqu_is_dir(run->spec.plan_client_dir)) {
        tqu_out(o, TQU_OUT_BLOCKED, "InstalledAccessPointNotFound", "%s (spec.install.planClientDir) is not there",
                run->spec.plan_client_dir);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "%s to %s; %d other machine(s)%s", run->spec.from_version, run->spec.to_version,
            run->spec.nmachines, run->spec.to_10_7 ? "; going to 10.7: the s3 section may be fixed" : "");
}
