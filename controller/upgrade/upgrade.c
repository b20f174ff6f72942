/*
 * upgrade.c - step 6, Upgrade: the vendor's update.sh, detached, at most
 * once per generation. The SSH password is read from the Secret only when
 * update.sh is started, passed in its argv, and appears nowhere else: the
 * command line kept in status and files shows it as ***.
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
#include "host/fsutil.h"
#include "runtime/log.h"
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

static void set_upgrade_status(tqu_run *run, const tqu_detached_status *st, const char *state_dir)
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

/* In place of vendor output when the password to mask it with is unknown. */
#define NOT_MASKABLE "(not shown: the SSH Secret could not be read to mask it)"

/* The last lines of install_saas.log, masked with redact; without a
 * mask nothing is shown (it could hold the password). */
static void install_log_tail(const tqu_run *run, const char *const *redact, char *buf, size_t len)
{
    if (!redact) {
        snprintf(buf, len, "%s", NOT_MASKABLE);
        return;
    }
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s/tq_saas/install_saas.log", run->spec.packages_root, run->spec.to_version);
    if (tqu_child_tail(p, 0, 8, redact, buf, len))
        snprintf(buf, len, "(no %s)", p);
}

static void finished(tqu_run *run, const tqu_detached_status *st, const char *const *redact, tqu_outcome *o)
{
    char tail[2048];
    k8s_err err;
    /* the vendor process is over: the finalizer can go */
    if (tqu_may_act(run->ctl))
        k8s_finalizer_remove(run->ctl->client, &TQU_RESOURCE, run->obj, TQU_FINALIZER, &err);
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

static void launch(tqu_run *run, tqu_outcome *o)
{
    char tmpl[PATH_MAX], odir[PATH_MAX], ndir[PATH_MAX], port[16], cwd[PATH_MAX + 128], sdir[PATH_MAX + 32];
    char log[PATH_MAX + 64], ferr[256], password[1024];
    const char *argv[20];
    tqu_detached_status st;
    k8s_err err;
    char ebuf[1200];

    if (tqu__window_gate(run, o, "update.sh could start"))
        return;
    if (tqu__template_path(run, tmpl, sizeof(tmpl), o))
        return;
    /* the finalizer first: the resource is not deleted under a running upgrade */
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        return;
    }
    if (k8s_finalizer_add(run->ctl->client, &TQU_RESOURCE, run->obj, TQU_FINALIZER, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot add the finalizer: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    if (tqu__read_password(run, password, sizeof(password), o))
        return;
    tqu__upgrade_argv(run, tmpl, password, odir, sizeof(odir), ndir, sizeof(ndir), port, sizeof(port), argv);
    snprintf(cwd, sizeof(cwd), "%s/%s", ndir, PLAN_CLIENT);
    snprintf(sdir, sizeof(sdir), "%s/upgrade-g%lld", run->dir, run->generation);
    snprintf(log, sizeof(log), "%s/update.sh.log", sdir);
    if (tqu_mkdir_p(sdir, 0700, ferr, sizeof(ferr))) {
        OPENSSL_cleanse(password, sizeof(password));
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return;
    }
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv,
                          .secret_args = TQU_CHILD_SECRET_ARG(PASSWORD_ARG), .cwd = cwd, .log_path = log,
                          .log_truncate = 1, .timeout_ms = (long)(run->spec.timeout_upgrade_s * 1000) };
    int rc = tqu_detached_start(&cs, sdir, &st);
    if (rc && (st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_FINISHED ||
               st.state == TQU_DETACHED_LOST || st.state == TQU_DETACHED_STARTING)) {
        /* the supervisor's report was late or lost, but update.sh was
         * launched: follow it, never report it as not started */
        const char *redact[] = { password, NULL };
        tqu_log(TQU_WARN, "update.sh launched, but its start was not confirmed in time; following it",
                "key", run->key, "state", tqu_detached_state_name(st.state), NULL);
        tqu_detached_poll(sdir, redact, 10, &st);
        set_upgrade_status(run, &st, sdir);
        if (st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_STARTING) {
            tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh started; output in %s", log);
            o->requeue_after = 10;
        } else {
            finished(run, &st, redact, o);   /* the password masks its log too */
        }
        OPENSSL_cleanse(password, sizeof(password));
        return;
    }
    OPENSSL_cleanse(password, sizeof(password));
    if (rc) {
        if (rc == TQU_CHILD_ELAUNCHED) {
            tqu_out(o, TQU_OUT_ERROR, "AlreadyLaunched", "update.sh was already launched for this generation");
            return;
        }
        tqu_out(o, rc == TQU_CHILD_ENOCWD || rc == TQU_CHILD_ENOTFOUND ? TQU_OUT_BLOCKED : TQU_OUT_FAILED,
            "UpgradeNotStarted", "update.sh could not be started in %s: %s", cwd, st.message);
        return;
    }
    tqu_log(TQU_INFO, "update.sh started", "key", run->key, "command", st.command, "cwd", cwd, NULL);
    tqu_event(run, "Normal", "UpgradeStarted", "update.sh started: %s", st.command);
    set_upgrade_status(run, &st, sdir);
    tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh started (it takes about an hour); output in %s", log);
    o->requeue_after = 10;
}

void tqu__step_upgrade(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    char sdir[PATH_MAX], password[1024];
    long long gen;
    tqu_detached_status st;
    tqu_outcome ignored;

    if (tqu__latest_attempt(run->dir, sdir, sizeof(sdir), &gen)) {
        /* fail closed: an attempt may be in there */
        tqu_out(o, TQU_OUT_ERROR, "StateUnreadable", "cannot list %s: %s; update.sh is not started "
            "while it cannot be told whether it was", run->dir, strerror(errno));
        return;
    }
    if (!gen) {
        launch(run, o);
        return;
    }
    /* update.sh's output is shown in status and Events: mask the password
     * in it (it could echo it, e.g. under set -x). Without the Secret there
     * is nothing to mask with, so no output is shown at all. */
    int have_pw = tqu__read_password(run, password, sizeof(password), &ignored) == 0;
    const char *redact[] = { have_pw ? password : NULL, NULL };
    int prc = tqu_detached_poll(sdir, redact, 10, &st);
    if (!have_pw)
        snprintf(st.tail, sizeof(st.tail), "%s", NOT_MASKABLE);
    if (prc) {
        tqu_out(o, TQU_OUT_ERROR, "StateUnreadable", "cannot read %s: %s", sdir, st.message);
        goto out;
    }
    /* no marker: nothing ever ran from that folder, so starting is safe */
    if (st.state == TQU_DETACHED_NOT_LAUNCHED) {
        launch(run, o);
        goto out;
    }
    set_upgrade_status(run, &st, sdir);
    if (st.state == TQU_DETACHED_STARTING) {
        /* between the launch marker and the supervisor's pid file: slow, not failed */
        tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh is starting (%s)", st.message);
        o->requeue_after = 5;
        goto out;
    }
    if (st.state == TQU_DETACHED_RUNNING) {
        /* the message carries the last line; status.upgrade.outputTail more */
        const char *last = strrchr(st.tail, '\n');
        last = last ? last + 1 : st.tail;
        tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh running for %.0f s (pid %d); last output: %s", st.elapsed,
            (int)st.child_pid, last[0] ? last : "(none yet)");
        o->requeue_after = 10;
        goto out;
    }
    /* A success counts whatever the generation. A known failure (non-zero
     * exit, timeout) of an older generation is started again only when the
     * step was recorded as Failed and a new generation reset it (it was
     * Pending before this reconcile started it): a spec edited while
     * update.sh ran (a pause, a longer timeout) is no request to run it
     * twice. LOST is never retried: update.sh may have run. */
    int ok = st.state == TQU_DETACHED_FINISHED && !st.timed_out && st.exit_code == 0;
    if (!ok && gen < run->generation && st.state == TQU_DETACHED_FINISHED && run->step_was_pending) {
        launch(run, o);
        goto out;
    }
    finished(run, &st, have_pw ? redact : NULL, o);
out:
    OPENSSL_cleanse(password, sizeof(password));
}

int tqu_steps_vendor_running(tqu_run *run)
{
    char sdir[PATH_MAX];
    long long gen;
    tqu_detached_status st;
    if (tqu__latest_attempt(run->dir, sdir, sizeof(sdir), &gen))
        return 1;                 /* cannot tell: keep the finalizer and the slot */
    if (!gen)
        return 0;
    if (tqu_detached_poll(sdir, NULL, 0, &st))
        return st.state != TQU_DETACHED_NOT_LAUNCHED && st.state != TQU_DETACHED_FINISHED;
    return st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_STARTING;
}
