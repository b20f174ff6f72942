/*
 * install.c - step Install: in <new>/tq_saas,
 *   ./darwin-client install --data.source=local --execute.type=k8s
 *       --template.file=darwin_update_template_<ts>.yaml
 * detached under host/child.h's supervisor, at most once per request,
 * proven two ways as update.sh is (design.md section 8): status.launch is
 * written before the start, and the launch marker lives in the request's
 * folder <dir>/install (one folder per request, never reused). While
 * either says it was launched and its outcome is not a known failure, it
 * is never started again; a failed install is not retried by this
 * resource (a new resource is a new request). Never killed on a timer:
 * past spec.timeouts.install it is reported slow (InstallSlow). The
 * finalizer is held while it runs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "host/child.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "status.h"
#include "ap_int.h"

static void state_dir(const tqu_ap_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/install", run->dir);
}

int tqu__ap_installer_running(tqu_ap_run *run)
{
    char sdir[PATH_MAX + 16];
    tqu_detached_status st;
    if (!run->dir[0])
        return 0;
    state_dir(run, sdir, sizeof(sdir));
    if (!tqu_is_dir(sdir))
        return 0;
    if (tqu_detached_poll(sdir, NULL, 0, &st))
        return st.state != TQU_DETACHED_NOT_LAUNCHED && st.state != TQU_DETACHED_FINISHED;
    return st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_STARTING;
}

static void set_install_status(tqu_ap_run *run, const tqu_detached_status *st)
{
    cJSON *u = cJSON_CreateObject();
    if (!u)
        return;
    int bad = !cJSON_AddStringToObject(u, "command", st->command) ||
              !cJSON_AddStringToObject(u, "logFile", st->log_path) ||
              (st->child_pid && !cJSON_AddNumberToObject(u, "pid", st->child_pid)) ||
              (st->started_at[0] && !cJSON_AddStringToObject(u, "startedAt", st->started_at)) ||
              !cJSON_AddNumberToObject(u, "elapsedSeconds", st->elapsed > 0 ? (double)(long long)st->elapsed : 0) ||
              !cJSON_AddStringToObject(u, "outputTail", st->tail);
    if (!bad && st->state == TQU_DETACHED_FINISHED)
        bad = !cJSON_AddNumberToObject(u, "exitCode", st->exit_code);
    if (bad)
        cJSON_Delete(u);
    else
        k8s_json_put(run->status, "install", u);
}

static void set_outcome(tqu_ap_run *run, const char *outcome)
{
    cJSON *l = cJSON_GetObjectItemCaseSensitive(run->status, "launch");
    if (l)
        k8s_json_put(l, "outcome", cJSON_CreateString(outcome));
}

static void drop_finalizer(tqu_ap_run *run)
{
    k8s_err err;
    if (tqu_may_act(run->ctl))
        k8s_finalizer_remove(run->ctl->client, &TQU_AP_RESOURCE, run->obj, TQU_AP_FINALIZER, &err);
}

static void finished(tqu_ap_run *run, const tqu_detached_status *st, tqu_outcome *o)
{
    drop_finalizer(run);
    if (st->state == TQU_DETACHED_LOST) {
        tqu_out(o, TQU_OUT_FAILED, "InstallOutcomeUnknown",
                "the installer was started but its outcome is unknown (%s); it is never started twice: check %s and "
                "the access point with the vendor", st->message, st->log_path);
        return;
    }
    int ok = !st->timed_out && !st->cancelled && st->exit_code == 0;
    set_outcome(run, ok ? "Succeeded" : "Failed");
    if (!ok) {
        tqu_out(o, TQU_OUT_FAILED, "InstallFailed", "./darwin-client install %s %d after %.0f s; last output: %s",
                st->exit_code < 0 ? "was killed by signal" : "exited with", st->exit_code < 0 ? st->signal : st->exit_code,
                st->elapsed, st->tail);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "./darwin-client install finished successfully after %.0f s", st->elapsed);
}

int tqu__ap_record_launch(tqu_ap_run *run, const char *sdir)
{
    char now[40];
    cJSON *prev = cJSON_DetachItemFromObjectCaseSensitive(run->status, "launch");
    cJSON *l = cJSON_CreateObject();
    k8s_time_now(now, sizeof(now));
    if (!l || !cJSON_AddNumberToObject(l, "generation", (double)run->generation) ||
        !cJSON_AddStringToObject(l, "startedAt", now) || !cJSON_AddStringToObject(l, "folder", sdir) ||
        !cJSON_AddStringToObject(l, "outcome", "Unknown")) {
        cJSON_Delete(l);
        l = NULL;
    }
    /* k8s_json_put owns l from here (it frees it when it fails) */
    if (!l || k8s_json_put(run->status, "launch", l) || tqu_job_write_status((tqu_job *)run)) {
        /* not recorded: no launch entry may stay in memory, or the
         * engine's next status write would persist an Unknown launch of
         * an installer that never ran (then InstallOutcomeUnknown) */
        cJSON_DeleteItemFromObjectCaseSensitive(run->status, "launch");
        if (prev && !cJSON_AddItemToObject(run->status, "launch", prev))
            cJSON_Delete(prev);
        return -1;
    }
    cJSON_Delete(prev);
    return 0;
}

int tqu__ap_template_stale(const tqu_ap_run *run, const char *t)
{
    char saas[PATH_MAX];
    const char *base = t ? strrchr(t, '/') : NULL;
    tqu__ap_new_saas(run, saas, sizeof(saas));
    return !base || (size_t)(base - t) != strlen(saas) || strncmp(t, saas, (size_t)(base - t)) != 0;
}

static void launch(tqu_ap_run *run, const char *sdir, tqu_outcome *o)
{
    const char *t = k8s_json_str(run->status, "template", NULL), *base;
    char saas[PATH_MAX], tf[PATH_MAX + 32], log[PATH_MAX + 32], err[PATH_MAX + 256], ebuf[1200];
    tqu_detached_status st;
    k8s_err kerr;

    if (tqu__ap_window_gate(run, o, "the installer could start") || tqu__ap_confine_spec(run, o))
        return;
    if (!t || !(base = strrchr(t, '/')) || tqu__ap_confine(run, "status.template", t, o)) {
        if (!t)
            tqu_out(o, TQU_OUT_FAILED, "TemplateNotConverted", "status.template is not set");
        return;
    }
    /* the template staged for this spec's package, never a previous one */
    tqu__ap_new_saas(run, saas, sizeof(saas));
    if (tqu__ap_template_stale(run, t)) {
        tqu_out(o, TQU_OUT_BLOCKED, "TemplateNotStaged", "status.template %s is not in %s (the package of "
                "spec.toVersion): the installer is not started; change the spec to stage the template again", t, saas);
        return;
    }
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        return;
    }
    if (k8s_finalizer_add(run->ctl->client, &TQU_AP_RESOURCE, run->obj, TQU_AP_FINALIZER, &kerr)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot add the finalizer: %s", k8s_err_str(&kerr, ebuf, sizeof(ebuf)));
        return;
    }
    if (tqu_mkdir_p(sdir, 0700, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", err);
        return;
    }
    snprintf(tf, sizeof(tf), "--template.file=%s", base + 1);
    snprintf(log, sizeof(log), "%s/install.log", sdir);
    /* the second record, in status, before anything starts */
    if (tqu__ap_record_launch(run, sdir)) {
        tqu_out(o, TQU_OUT_ERROR, "LaunchNotRecorded", "the installer is not started: its launch could not be recorded "
                "in status first");
        return;
    }
    char *argv[] = { "./darwin-client", "install", "--data.source=local", "--execute.type=k8s", tf, NULL };
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = argv, .cwd = saas, .log_path = log,
                          .log_truncate = 1, .timeout_ms = 0 };
    int rc = tqu_detached_start(&cs, sdir, &st);
    if (st.state == TQU_DETACHED_NOT_LAUNCHED) {
        set_outcome(run, "Failed");     /* it never ran */
        tqu_out(o, rc == TQU_CHILD_ENOCWD || rc == TQU_CHILD_ENOTFOUND ? TQU_OUT_BLOCKED : TQU_OUT_FAILED,
                "InstallNotStarted", "./darwin-client install could not be started in %s: %s", saas, st.message);
        return;
    }
    set_install_status(run, &st);
    if (st.state == TQU_DETACHED_FINISHED || st.state == TQU_DETACHED_LOST) {
        finished(run, &st, o);
        return;
    }
    tqu_log(TQU_INFO, "installer started", "key", run->key, "command", st.command, NULL);
    tqu_event(run, "Normal", "InstallStarted", "installer started: %s", st.command);
    tqu_out(o, TQU_OUT_RUNNING, "InstallRunning", "./darwin-client install started; output in %s", log);
    o->requeue_after = 10;
}

void tqu__ap_step_install(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char sdir[PATH_MAX + 16];
    tqu_detached_status st;
    struct stat sb;
    const cJSON *rec = k8s_json_get(run->status, "launch", NULL);
    const char *rec_outcome = k8s_json_str(rec, "outcome", NULL);

    state_dir(run, sdir, sizeof(sdir));
    /* a folder that cannot be read says nothing: a running installer is
     * never reported Failed (nor its finalizer dropped) for it; only a
     * folder not there yet means never launched */
    int prc = tqu_detached_poll(sdir, NULL, 10, &st);
    if (prc && !(st.state == TQU_DETACHED_NOT_LAUNCHED && lstat(sdir, &sb) < 0 && errno == ENOENT)) {
        tqu_out(o, TQU_OUT_ERROR, "StateUnreadable", "cannot read %s: %s", sdir, st.message);
        return;
    }
    if (st.state == TQU_DETACHED_NOT_LAUNCHED) {
        /* no marker; status may still say it was launched (the folder lost,
         * or another controller with another backupDir): never again */
        if (rec && rec_outcome && strcmp(rec_outcome, "Failed")) {
            if (!strcmp(rec_outcome, "Succeeded")) {
                tqu_out(o, TQU_OUT_DONE, NULL, "the installer succeeded earlier (status.launch)");
                return;
            }
            tqu_out(o, TQU_OUT_FAILED, "InstallOutcomeUnknown",
                    "the installer was launched (status.launch, folder %s) but %s holds no record of it; it is never "
                    "started twice: check the access point with the vendor, then delete this resource",
                    k8s_json_str(rec, "folder", NULL) ? k8s_json_str(rec, "folder", NULL) : "?", sdir);
            return;
        }
        launch(run, sdir, o);
        return;
    }
    set_install_status(run, &st);
    if (st.state == TQU_DETACHED_STARTING || st.state == TQU_DETACHED_RUNNING) {
        const char *last = strrchr(st.tail, '\n');
        last = last ? last + 1 : st.tail;
        o->requeue_after = 10;
        if (st.elapsed > run->spec.timeout_install_s) {
            tqu_out(o, TQU_OUT_RUNNING, "InstallSlow", "./darwin-client install has run for %.0f s, past "
                    "spec.timeouts.install (%.0f s); it is not stopped (pid %d); last output: %s", st.elapsed,
                    run->spec.timeout_install_s, (int)st.child_pid, last[0] ? last : "(none yet)");
            return;
        }
        tqu_out(o, TQU_OUT_RUNNING, "InstallRunning", "./darwin-client install running for %.0f s (pid %d); last output: %s",
                st.elapsed, (int)st.child_pid, last[0] ? last : "(none yet)");
        return;
    }
    finished(run, &st, o);
}
