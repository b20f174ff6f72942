/*
 * upgrade.c - step 6, Upgrade: the vendor's update.sh, detached, at most
 * once per request. The SSH password is read from the Secret only when
 * update.sh is started, passed in its argv, and appears nowhere else: the
 * command line kept in status and files shows it as ***.
 *
 * At most once, proven two ways (design.md section 8): the launch is
 * recorded in status.launch before it starts, and by the launch marker in
 * the state folder; while either says an attempt's outcome is not a known
 * failure it is never started again. It is never killed on a timer: past
 * spec.timeouts.upgrade it is reported slow (UpgradeSlow); spec.stop stops
 * it (UpgradeStopped).
 *
 * Reads: the spec, status.launch, the state folder. Changes: status.launch
 * (written before the start), the state folder, the finalizer. A crash
 * anywhere leaves either no marker (nothing ran: started again) or a
 * marker (followed, never started again).
 */
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

static tqu_job *job_of(tqu_run *run)
{
    return (tqu_job *)run;
}

/* The Reconciling condition's reason as last written. */
static int reconciling_reason_is(const tqu_run *run, const char *reason)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, k8s_json_get(run->status, "conditions", NULL)) {
        const char *t = k8s_json_str(c, "type", NULL), *r = k8s_json_str(c, "reason", NULL);
        if (t && r && !strcmp(t, "Reconciling"))
            return !strcmp(r, reason);
    }
    return 0;
}

static int was_slow(const tqu_run *run)
{
    return reconciling_reason_is(run, "UpgradeSlow");
}

static int is_stopping(const tqu_run *run)
{
    return reconciling_reason_is(run, "UpgradeStopping");
}

static void launch(tqu_run *run, tqu_outcome *o)
{
    char tmpl[PATH_MAX], odir[PATH_MAX], ndir[PATH_MAX], port[16], cwd[PATH_MAX + 128], sdir[PATH_MAX + 32];
    char log[PATH_MAX + 64], ferr[256], password[1024];
    const char *argv[20];
    tqu_detached_status st;
    k8s_err err;
    char ebuf[1200];

    if (run->spec.stop) {
        tqu_out(o, TQU_OUT_BLOCKED, "StopRequested",
            "spec.stop is true: update.sh is not started; set spec.stop to false to go on");
        return;
    }
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
    /* Recorded in status before it starts: with the launch marker, the
     * second record that keeps it to one run even if this folder is lost
     * or another controller (another /qaxdata) looks at the resource. No
     * timer: a slow upgrade is reported, never killed (spec.stop stops it). */
    if (tqu__record_launch(run, sdir, "Unknown") || tqu_job_write_status(job_of(run))) {
        OPENSSL_cleanse(password, sizeof(password));
        tqu_out(o, TQU_OUT_ERROR, "LaunchNotRecorded",
            "update.sh not started: its launch could not be recorded in status first");
        return;
    }
    tqu_log(TQU_INFO, "update.sh launch recorded in status", "key", run->key, "folder", sdir, NULL);
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv,
                          .secret_args = TQU_CHILD_SECRET_ARG(PASSWORD_ARG), .cwd = cwd, .log_path = log,
                          .log_truncate = 1, .timeout_ms = 0 };
    int rc = tqu_detached_start(&cs, sdir, &st);
    if (st.state != TQU_DETACHED_NOT_LAUNCHED)
        tqu__mask_keep(run->uid, password);   /* to mask its output while it runs */
    if (rc && (st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_FINISHED ||
               st.state == TQU_DETACHED_LOST || st.state == TQU_DETACHED_STARTING)) {
        /* the supervisor's report was late or lost, but update.sh was
         * launched: follow it, never report it as not started */
        const char *redact[] = { password, NULL };
        tqu_log(TQU_WARN, "update.sh launched, but its start was not confirmed in time; following it",
                "key", run->key, "state", tqu_detached_state_name(st.state), NULL);
        tqu_detached_poll(sdir, redact, 10, &st);
        tqu__upgrade_status_set(run, &st, sdir);
        if (st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_STARTING) {
            tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh started; output in %s", log);
            o->requeue_after = 10;
        } else {
            tqu__upgrade_finished(run, &st, redact, o);   /* the password masks its log too */
        }
        OPENSSL_cleanse(password, sizeof(password));
        return;
    }
    OPENSSL_cleanse(password, sizeof(password));
    if (rc && st.state == TQU_DETACHED_NOT_LAUNCHED)
        tqu__record_outcome(run, "Failed");   /* it never ran: nothing to wait for */
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
    tqu__upgrade_status_set(run, &st, sdir);
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
    int launched_now = 0;

    if (tqu__latest_attempt(run->dir, sdir, sizeof(sdir), &gen)) {
        /* fail closed: an attempt may be in there */
        tqu_out(o, TQU_OUT_ERROR, "StateUnreadable", "cannot list %s: %s; update.sh is not started "
            "while it cannot be told whether it was", run->dir, strerror(errno));
        return;
    }
    /* The status record of a launch whose outcome is not known, and no
     * local record of it (the folder was emptied, or another controller
     * with another /qaxdata launched it): it may be running or have run.
     * Never start it again. */
    const cJSON *rec = k8s_json_get(run->status, "launch", NULL);
    const char *rec_outcome = k8s_json_str(rec, "outcome", NULL);
    long long rec_gen = k8s_json_int(rec, 0, "generation", NULL);
    if (rec && rec_outcome && !strcmp(rec_outcome, "Unknown") && rec_gen > gen) {
        tqu_out(o, TQU_OUT_FAILED, "UpgradeOutcomeUnknown",
            "update.sh was launched for generation %lld (status.launch, folder %s) but this controller finds "
            "no record of it in %s (the folder was removed, or another controller with another folder "
            "launched it); it is never started twice: check install_saas.log and the cluster with the "
            "vendor (TAC), then delete this resource", rec_gen, k8s_json_str(rec, "folder", NULL) ?
            k8s_json_str(rec, "folder", NULL) : "?", run->dir);
        return;
    }
    if (rec && rec_outcome && !strcmp(rec_outcome, "Succeeded") && rec_gen > gen) {
        tqu_out(o, TQU_OUT_DONE, "UpgradeSucceeded", "update.sh succeeded earlier (status.launch, generation %lld)",
            rec_gen);
        return;
    }
    if (!gen) {
        launch(run, o);
        return;
    }
    /* update.sh's output is shown in status and Events: mask the password
     * in it (it could echo it, e.g. under set -x), with the copy kept since
     * the launch. Only a restarted controller reads the Secret here, once.
     * Without it there is nothing to mask with: no output is shown. */
    const char *kept = tqu__mask_get(run->uid);
    int have_pw = 1;
    if (kept) {
        snprintf(password, sizeof(password), "%s", kept);
    } else {
        have_pw = tqu__read_password(run, password, sizeof(password), &ignored) == 0;
        if (have_pw)
            tqu__mask_keep(run->uid, password);
    }
    const char *redact[] = { have_pw ? password : NULL, NULL };
    int prc = tqu_detached_poll(sdir, redact, 10, &st);
    if (!have_pw)
        snprintf(st.tail, sizeof(st.tail), "%s", TQU__NOT_MASKABLE);
    if (prc) {
        tqu_out(o, TQU_OUT_ERROR, "StateUnreadable", "cannot read %s: %s", sdir, st.message);
        goto out;
    }
    /* no marker: nothing ever ran from that folder, so starting is safe */
    if (st.state == TQU_DETACHED_NOT_LAUNCHED) {
        launch(run, o);
        launched_now = 1;
        goto out;
    }
    tqu__upgrade_status_set(run, &st, sdir);
    if (st.state == TQU_DETACHED_STARTING) {
        /* between the launch marker and the supervisor's pid file: slow, not failed */
        tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh is starting (%s)", st.message);
        o->requeue_after = 5;
        goto out;
    }
    if (st.state == TQU_DETACHED_RUNNING && run->spec.stop) {
        char kmsg[512];
        if (tqu_detached_kill(sdir, kmsg, sizeof(kmsg)))
            tqu_out(o, TQU_OUT_ERROR, "StopFailed", "cannot stop update.sh: %s", kmsg);
        else
            tqu_out(o, TQU_OUT_RUNNING, "UpgradeStopping", "stopping update.sh (spec.stop): SIGTERM sent to pid %d",
                (int)st.child_pid);
        o->requeue_after = 2;
        if (!is_stopping(run))
            tqu_event(run, "Warning", "UpgradeStopping", "spec.stop: update.sh (pid %d) is being stopped",
                      (int)st.child_pid);
        goto out;
    }
    if (st.state == TQU_DETACHED_RUNNING) {
        /* the message carries the last line; status.upgrade.outputTail more */
        const char *last = strrchr(st.tail, '\n');
        last = last ? last + 1 : st.tail;
        o->requeue_after = 10;
        if (st.elapsed > run->spec.timeout_upgrade_s) {
            /* slow is not failed: reported, never killed on a timer */
            tqu_out(o, TQU_OUT_RUNNING, "UpgradeSlow", "update.sh has run for %.0f s, past spec.timeouts.upgrade "
                "(%.0f s); it is not stopped: look at install_saas.log, or set spec.stop to true to stop it "
                "(pid %d); last output: %s", st.elapsed, run->spec.timeout_upgrade_s, (int)st.child_pid,
                last[0] ? last : "(none yet)");
            if (!was_slow(run))
                tqu_event(run, "Warning", "UpgradeSlow", "update.sh has run for %.0f s, past spec.timeouts.upgrade "
                          "(%.0f s); it is not stopped (spec.stop: true stops it)", st.elapsed,
                          run->spec.timeout_upgrade_s);
            goto out;
        }
        tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh running for %.0f s (pid %d); last output: %s", st.elapsed,
            (int)st.child_pid, last[0] ? last : "(none yet)");
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
        launched_now = 1;
        goto out;
    }
    tqu__upgrade_finished(run, &st, have_pw ? redact : NULL, o);
out:
    /* ended (or never ran): the kept copy goes */
    if (!launched_now && st.state != TQU_DETACHED_RUNNING && st.state != TQU_DETACHED_STARTING)
        tqu__mask_drop(run->uid);
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
