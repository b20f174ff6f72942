/*
 * convert.c - step ConvertTemplate: in the new plan_client folder,
 *   ./plan_client update template --src=darwin_template_<id>.yaml
 *       --new=template.yaml --pass_install_registry
 * which writes darwin_update_template_<timestamp>.yaml. Going from below
 * 10.7 to 10.7 or later, a failure is what the runbook describes (the old
 * s3 section must be carried over): the s3 section of template.yaml is
 * replaced by the old template's (host/yamledit.h: only those bytes
 * change; the original is kept in the request's folder as
 * template.yaml.orig) and the command is run once more. A failure after
 * that, or any other, is Failed ConvertFailed.
 *
 * status.template records the converted file's name as Stage will place
 * it (<new>/tq_saas/<name>). A crash before that record runs the step
 * again; the newest darwin_update_template_*.yaml is taken.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include "host/yamledit.h"
#include "runtime/log.h"
#include "ap_int.h"

/* The newest darwin_update_template_*.yaml in dir (by its timestamp name). */
static int newest_update_template(const char *dir, char *name, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    name[0] = '\0';
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "darwin_update_template_", 23) || l <= 23 + 5 || strcmp(e->d_name + l - 5, ".yaml"))
            continue;
        if (strcmp(e->d_name, name) > 0)
            snprintf(name, len, "%s", e->d_name);
    }
    closedir(d);
    return name[0] ? 0 : -1;
}

void tqu__ap_step_convert(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char pc[PATH_MAX], tpath[PATH_MAX], tname[NAME_MAX + 1], src[NAME_MAX + 16], name[NAME_MAX + 1];
    char tmpl[PATH_MAX + 32], old[PATH_MAX + NAME_MAX + 2], kept[PATH_MAX + 32], err[1024], saas[PATH_MAX];
    char staged[PATH_MAX + NAME_MAX + 2];
    tqu_child_result res;
    int fixed = 0;

    if (tqu__ap_confine_spec(run, o))
        return;
    if (tqu__ap_deploy_template(run, tpath, sizeof(tpath), tname, sizeof(tname), o))
        return;
    tqu__ap_plan_client(run, pc, sizeof(pc));
    snprintf(src, sizeof(src), "--src=%s", tname);
    char *argv[] = { "./plan_client", "update", "template", src, "--new=template.yaml", "--pass_install_registry", NULL };
    for (;;) {
        if (tqu__ap_run(run, argv, pc, run->spec.timeout_convert_s, fixed ? "convert-retry.log" : "convert.log", &res, o))
            return;
        if (res.exited && res.exit_code == 0)
            break;
        if (fixed || !run->spec.to_10_7 || res.timed_out) {
            tqu_out(o, TQU_OUT_FAILED, "ConvertFailed", "./plan_client update template ended with %d%s%s: %s",
                    res.exit_code, res.timed_out ? " (spec.timeouts.convert)" : "",
                    fixed ? " after the s3 section was replaced by the old template's" : "", res.tail);
            return;
        }
        /* the runbook's fix going to 10.7: the old template's s3 section */
        int changed = 0;
        snprintf(tmpl, sizeof(tmpl), "%s/template.yaml", pc);
        snprintf(old, sizeof(old), "%s/%s", pc, tname);
        snprintf(kept, sizeof(kept), "%s/template.yaml.orig", run->dir);
        int rc = tqu_yaml_replace_section(tmpl, old, "s3", kept, &changed, err, sizeof(err));
        if (rc) {
            tqu_out(o, TQU_OUT_FAILED, "ConvertFailed",
                    "./plan_client update template failed (%s), and the s3 section could not be carried over: %s",
                    res.tail, err);
            return;
        }
        if (!changed) {
            tqu_out(o, TQU_OUT_FAILED, "ConvertFailed",
                    "./plan_client update template ended with %d, and template.yaml's s3 section is already the old "
                    "template's: %s", res.exit_code, res.tail);
            return;
        }
        tqu__ap_keep_record(run, tmpl, kept);
        tqu_log(TQU_INFO, "s3 section of template.yaml replaced by the old template's; converting again", "key",
                run->key, "kept", kept, NULL);
        tqu_event(run, "Normal", "S3SectionCarriedOver",
                  "plan_client refused template.yaml; its s3 section was replaced by %s's (original kept in %s)", tname,
                  kept);
        fixed = 1;
    }
    if (newest_update_template(pc, name, sizeof(name))) {
        tqu_out(o, TQU_OUT_FAILED, "ConvertFailed", "./plan_client update template wrote no darwin_update_template_*.yaml "
                "in %s: %s", pc, res.tail);
        return;
    }
    tqu__ap_new_saas(run, saas, sizeof(saas));
    snprintf(staged, sizeof(staged), "%s/%s", saas, name);
    k8s_json_put(run->status, "template", cJSON_CreateString(staged));
    tqu_out(o, TQU_OUT_DONE, NULL, "%s written%s", name, fixed ? " (the s3 section carried over from the old template)" : "");
}
