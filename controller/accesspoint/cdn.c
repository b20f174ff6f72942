/*
 * cdn.c - step CdnSetting: the converted template's web.darwincdn must be
 * proxy-pp:8083. Corrected in place (host/yamledit.h: only that scalar's
 * bytes change), the original kept in the request's folder as
 * <template>.before-cdn (the first original is the one kept). Already so:
 * nothing written.
 */
#include <stdio.h>
#include <string.h>
#include "host/yamledit.h"
#include "ap_int.h"

void tqu__ap_step_cdn(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    const char *t = k8s_json_str(run->status, "template", NULL), *base;
    char kept[PATH_MAX * 2], err[1024];
    int changed = 0, rc;

    if (tqu__ap_confine_spec(run, o))
        return;
    if (!t || !(base = strrchr(t, '/'))) {
        tqu_out(o, TQU_OUT_FAILED, "TemplateNotConverted", "status.template is not set");
        return;
    }
    if (tqu__ap_confine(run, "status.template", t, o))
        return;
    snprintf(kept, sizeof(kept), "%s%s.before-cdn", run->dir, base);
    rc = tqu_yaml_set_scalar(t, "web.darwincdn", AP_DARWINCDN, kept, &changed, err, sizeof(err));
    if (rc) {
        tqu_out(o, rc == TQU_YAML_EIO ? TQU_OUT_BLOCKED : TQU_OUT_FAILED, "CdnSettingFailed",
                "cannot set web.darwincdn in %s: %s", t, err);
        return;
    }
    if (changed) {
        tqu__ap_keep_record(run, t, kept);
        tqu_out(o, TQU_OUT_DONE, NULL, "web.darwincdn set to %s in %s (original kept in %s)", AP_DARWINCDN, base + 1, kept);
    } else {
        tqu_out(o, TQU_OUT_DONE, NULL, "web.darwincdn is %s already", AP_DARWINCDN);
    }
}
