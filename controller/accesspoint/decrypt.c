/*
 * decrypt.c - step Decrypt: ./darwin-client decrypt --file=template.yaml.enc
 * in the new plan_client folder, which writes template.yaml. Run again
 * after a crash (it only rewrites template.yaml); a template.yaml already
 * edited by ConvertTemplate is not this step's (it never runs again once
 * done).
 */
#include <stdio.h>
#include "ap_int.h"

void tqu__ap_step_decrypt(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char pc[PATH_MAX], out[PATH_MAX + 32];
    tqu_child_result res;
    char *argv[] = { "./darwin-client", "decrypt", "--file=template.yaml.enc", NULL };

    if (tqu__ap_confine_spec(run, o))
        return;
    tqu__ap_plan_client(run, pc, sizeof(pc));
    if (tqu__ap_run(run, argv, pc, run->spec.timeout_convert_s, "decrypt.log", &res, o))
        return;
    if (!res.exited || res.exit_code) {
        tqu_out(o, TQU_OUT_FAILED, "DecryptFailed", "./darwin-client decrypt ended with %d%s: %s", res.exit_code,
                res.timed_out ? " (spec.timeouts.convert)" : "", res.tail);
        return;
    }
    snprintf(out, sizeof(out), "%s/template.yaml", pc);
    if (!tqu_is_file(out)) {
        tqu_out(o, TQU_OUT_FAILED, "DecryptFailed", "./darwin-client decrypt wrote no %s: %s", out, res.tail);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "%s decrypted", out);
}
