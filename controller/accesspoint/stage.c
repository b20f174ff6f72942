/*
 * stage.c - step Stage: the converted darwin_update_template_<ts>.yaml
 * (status.template) and darwin-client copied into <new>/tq_saas, where
 * the installer runs. Atomic copies: a crash is repaired by running it
 * again.
 */
#include <stdio.h>
#include <string.h>
#include "ap_int.h"

void tqu__ap_step_stage(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char pc[PATH_MAX], saas[PATH_MAX], src[PATH_MAX * 2], dst[PATH_MAX * 2], err[PATH_MAX * 2 + 256];
    const char *t = k8s_json_str(run->status, "template", NULL), *base;

    if (tqu__ap_confine_spec(run, o))
        return;
    if (!t || !(base = strrchr(t, '/'))) {
        tqu_out(o, TQU_OUT_FAILED, "TemplateNotConverted", "status.template is not set: ConvertTemplate did not finish");
        return;
    }
    if (tqu__ap_confine(run, "status.template", t, o))
        return;
    tqu__ap_plan_client(run, pc, sizeof(pc));
    tqu__ap_new_saas(run, saas, sizeof(saas));
    snprintf(src, sizeof(src), "%s%s", pc, base);
    if (tqu__ap_copy_file(src, t, 0600, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StageFailed", "cannot copy %s: %s", src, err);
        return;
    }
    snprintf(src, sizeof(src), "%s/darwin-client", pc);
    snprintf(dst, sizeof(dst), "%s/darwin-client", saas);
    if (tqu__ap_copy_file(src, dst, 0700, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StageFailed", "cannot copy %s: %s", src, err);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "%s and darwin-client in %s", base + 1, saas);
}
