/*
 * attempt.c - update.sh's attempts as the Upgrade step records them: the
 * newest attempt folder in the state folder, status.upgrade (what runs or
 * ran, its output), status.launch (the second record of a launch, design.md
 * section 8), and the outcome of an attempt that has ended.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "host/child.h"
#include "status.h"
#include "steps_int.h"

int tqu__latest_attempt(const char *dir, char *buf, size_t len, long long *gen)
{
    DIR *d;
    struct dirent *e;
    int rc = 0;

    *gen = 0;
    buf[0] = '\0';
    d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;     /* no folder: nothing ever launched from it */
    for (;;) {
        long long g;
        char tail;
        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno)
                rc = -1;                     /* a failed scan is no "no attempt" */
            break;
        }
        if (sscanf(e->d_name, "upgrade-g%lld%c", &g, &tail) == 1 && g > *gen)
            *gen = g;
    }
    if (rc) {
        int e2 = errno;
        closedir(d);
        errno = e2;
        *gen = 0;
        return rc;
    }
    closedir(d);
    if (*gen)
        snprintf(buf, len, "%s/upgrade-g%lld", dir, *gen);
    return 0;
}

/* status.upgrade.elapsedSeconds: whole seconds, never negative (the CRD refuses it). */
static double elapsed_seconds(double e)
{
    return e > 0 ? (double)(long long)e : 0;
}

void tqu__upgrade_status_set(tqu_run *run, const tqu_detached_status *st, const char *state_dir)
{
    cJSON *u = cJSON_CreateObject();
    char exitf[PATH_MAX + 16];
    snprintf(exitf, sizeof(exitf), "%s/exit", state_dir);
    if (!u)
        return;
    int bad = !cJSON_AddStringToObject(u, "command", st->command) ||
              !cJSON_AddStringToObject(u, "logFile", st->log_path) ||
              !cJSON_AddStringToObject(u, "exitCodeFile", exitf) ||
              (st->child_pid && !cJSON_AddNumberToObject(u, "pid", st->child_pid)) ||
              (st->started_at[0] && !cJSON_AddStringToObject(u, "startedAt", st->started_at)) ||
              !cJSON_AddNumberToObject(u, "elapsedSeconds", elapsed_seconds(st->elapsed)) ||
              !cJSON_AddStringToObject(u, "outputTail", st->tail);
    if (!bad && st->state == TQU_DETACHED_FINISHED)
        bad = !cJSON_AddNumberToObject(u, "exitCode", st->exit_code) ||
              (st->finished_at[0] && !cJSON_AddStringToObject(u, "completedAt", st->finished_at));
    if (bad)
        cJSON_Delete(u);
    else
        k8s_json_put(run->status, "upgrade", u);
}

/* The last lines of install_saas.log, masked with redact; without a
 * mask nothing is shown (it could hold the password). */
static void install_log_tail(const tqu_run *run, const char *const *redact, char *buf, size_t len)
{
    if (!redact) {
        snprintf(buf, len, "%s", TQU__NOT_MASKABLE);
        return;
    }
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s/tq_saas/install_saas.log", run->spec.packages_root, run->spec.to_version);
    if (tqu_child_tail(p, 0, 8, redact, buf, len))
        snprintf(buf, len, "(no %s)", p);
}

/* status.launch: the second record of a launch (design.md section 8). */
int tqu__record_launch(tqu_run *run, const char *folder, const char *outcome)
{
    cJSON *l = cJSON_CreateObject();
    char now[40];
    k8s_time_now(now, sizeof(now));
    if (!l || !cJSON_AddNumberToObject(l, "generation", (double)run->generation) ||
        !cJSON_AddStringToObject(l, "startedAt", now) || !cJSON_AddStringToObject(l, "folder", folder) ||
        !cJSON_AddStringToObject(l, "outcome", outcome) || k8s_json_put(run->status, "launch", l)) {
        return -1;
    }
    return 0;
}

/* The launch's outcome, once known (a LOST one stays Unknown). */
void tqu__record_outcome(tqu_run *run, const char *outcome)
{
    cJSON *l = cJSON_GetObjectItemCaseSensitive(run->status, "launch");
    if (l)
        k8s_json_put(l, "outcome", cJSON_CreateString(outcome));
}

void tqu__upgrade_finished(tqu_run *run, const tqu_detached_status *st, const char *const *redact, tqu_outcome *o)
{
    char tail[2048];
    k8s_err err;
    /* the vendor process is over: the finalizer can go */
    if (tqu_may_act(run->ctl))
        k8s_finalizer_remove(run->ctl->client, &TQU_RESOURCE, run->obj, TQU_FINALIZER, &err);
    if (st->state != TQU_DETACHED_LOST)
        tqu__record_outcome(run, st->state == TQU_DETACHED_FINISHED && !st->timed_out && !st->cancelled &&
                            st->exit_code == 0 ? "Succeeded" : "Failed");
    if (st->state == TQU_DETACHED_FINISHED && st->cancelled) {
        install_log_tail(run, redact, tail, sizeof(tail));
        tqu_out(o, TQU_OUT_FAILED, "UpgradeStopped",
            "update.sh was stopped (spec.stop) after %.0f s; last lines of install_saas.log: %s; "
            "set spec.stop to false to run it again", st->elapsed, tail);
        return;
    }
    if (st->state == TQU_DETACHED_LOST) {
        tqu_out(o, TQU_OUT_FAILED, "UpgradeOutcomeUnknown",
            "update.sh was started but its outcome is unknown (%s); it is never started twice: check %s and the "
            "cluster, and ask the vendor (TAC)", st->message, st->log_path);
        return;
    }
    if (st->timed_out) {
        install_log_tail(run, redact, tail, sizeof(tail));
        tqu_out(o, TQU_OUT_FAILED, "UpgradeTimedOut",
            "update.sh was stopped after %.0f s (spec.timeouts.upgrade); last lines of install_saas.log: %s",
            st->elapsed, tail);
        return;
    }
    if (st->exit_code != 0) {
        install_log_tail(run, redact, tail, sizeof(tail));
        if (st->exit_code < 0)
            tqu_out(o, TQU_OUT_FAILED, "UpgradeFailed", "update.sh was killed by signal %d after %.0f s; last lines of "
                "install_saas.log: %s", st->signal, st->elapsed, tail);
        else
            tqu_out(o, TQU_OUT_FAILED, "UpgradeFailed", "update.sh exited with %d after %.0f s; last lines of "
                "install_saas.log: %s", st->exit_code, st->elapsed, tail);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, "UpgradeSucceeded", "update.sh finished successfully after %.0f s", st->elapsed);
}
