/*
 * paas_check.c - step 4, PaasCheck: darwin-client's PaaS health check,
 * and the update.sh edit it may call for (EDR off).
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
#include "host/backup.h"
#include "host/child.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "paas.h"
#include "status.h"
#include "steps_int.h"

/* ---------------------------------------------------------------- PaasCheck */

static void lines_text(const tqu_paas_lines *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->nkept && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s\"%s\"", i ? ", " : "", l->text[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

void tqu__step_paas(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    char tmpl[PATH_MAX], cwd[PATH_MAX + 16], log[PATH_MAX + 32], tflag[PATH_MAX + 32], ferr[512];
    char cmd[TQU_CHILD_CMD_MAX], us[PATH_MAX + 128], failing[512], lines[1024];
    tqu_child_result r;
    tqu_paas_result pr;

    if (tqu__template_path(run, tmpl, sizeof(tmpl), o))
        return;
    snprintf(cwd, sizeof(cwd), "%s/%s/tq_saas", run->spec.packages_root, run->spec.from_version);
    snprintf(log, sizeof(log), "%s/paas_check.log", run->dir);
    snprintf(tflag, sizeof(tflag), "--template.file=%s", tmpl);
    if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return;
    }
    const char *argv[] = { "./darwin-client", "install", "--data.source=local", "--execute.type=k8s", tflag,
                           "--actions=paas_check", NULL };
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv, .cwd = cwd,
                          .log_path = log, .log_truncate = 1,
                          .timeout_ms = tqu_duration_ms(run->spec.timeout_paas_s), .cancel = &run->ctl->stopping };
    tqu__format_cmd(run, (char *const *)argv, 0, cmd, sizeof(cmd));
    tqu_log(TQU_INFO, "running the PaaS check", "key", run->key, "command", cmd, "cwd", cwd, NULL);
    if (tqu_child_run(&cs, &r)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckNotRun", "%s (in %s): %s", cmd, cwd, r.error);
        return;
    }
    if (r.cancelled) {
        tqu_out(o, TQU_OUT_ERROR, "Interrupted", "the PaaS check was interrupted by the controller stopping; it runs again");
        return;
    }
    if (r.timed_out) {
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckTimedOut",
            "darwin-client paas_check did not finish within %.0f s (spec.timeouts.paasCheck); output in %s",
            run->spec.timeout_paas_s, log);
        return;
    }
    if (tqu_paas_classify_file(log, r.exited ? r.exit_code : -1, &pr, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckUnreadable", "cannot read the PaaS check's output: %s", ferr);
        return;
    }
    /* the failing components with their lines, for the message */
    size_t off = 0;
    lines[0] = failing[0] = '\0';
    for (int i = 0; i < TQU_PAAS_NCOMPONENTS; i++) {
        const tqu_paas_component *c = &pr.comp[i];
        if (!c->name || !c->failed.nkept)
            continue;
        int w = snprintf(failing + off, sizeof(failing) - off, "%s%s", off ? ", " : "", c->name);
        if (w > 0 && (size_t)w < sizeof(failing) - off)
            off += (size_t)w;
        if (!lines[0])
            lines_text(&c->failed, lines, sizeof(lines));
    }
    switch (pr.verdict) {
    case TQU_PAAS_PASS:
        tqu_out(o, TQU_OUT_DONE, "PaasCheckPassed", "%s (output in %s)", pr.message, log);
        break;
    case TQU_PAAS_ONLY_EDR_COMPONENTS:
        if (run->spec.edr_enabled) {
            tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckFailed",
                "%s failed the PaaS check and the EDR module is used (spec.edrEnabled): repair them first, e.g. %s",
                failing, lines);
            break;
        }
        tqu__update_sh(run, us, sizeof(us));
        if (tqu_paas_disable_check(us, run->dir, ferr, sizeof(ferr))) {
            tqu_out(o, TQU_OUT_BLOCKED, "UpdateScriptEditFailed", "%s", ferr);
            break;
        }
        {
            /* the original, where paas.h says it is kept, for TianqingRestore */
            char real[PATH_MAX], orig[PATH_MAX * 2 + 8], rerr[512];
            if (realpath(us, real)) {
                snprintf(orig, sizeof(orig), "%s%s.orig", run->dir, real);
                if (tqu_is_file(orig) && tqu_backup_record_file(run->status, "update.sh", orig, real, rerr, sizeof(rerr)))
                    tqu_log(TQU_WARN, "cannot record the original update.sh", "key", run->key, "error", rerr, NULL);
            }
        }
        tqu_log(TQU_INFO, "update.sh told to skip its PaaS check", "key", run->key, "file", us, NULL);
        tqu_out(o, TQU_OUT_DONE, "PaasCheckEdrOnly",
            "only %s failed and EDR is off (expected): %s", failing, ferr);
        break;
    case TQU_PAAS_OTHER_COMPONENTS:
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckFailed",
            "PaaS components failed: %s; repair them before upgrading (e.g. %s; full output in %s)", failing, lines,
            log);
        break;
    default:
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckUnknownFailure",
            "darwin-client paas_check exited with %d and named no component (%s): read %s and repair the cause",
            r.exited ? r.exit_code : -1, pr.message, log);
        break;
    }
    tqu_paas_release(&pr);
}
