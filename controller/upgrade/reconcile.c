/*
 * reconcile.c - one reconcile of a TianqingUpgrade: read it fresh, work out
 * where it stands, run the next steps in order, record each in status
 * before and after it runs, and announce transitions as Events.
 *
 * The steps themselves are in steps.c; the status transitions in
 * upgrade.c. Every write is preceded by tqu_may_act(): a controller that is
 * not (or no longer) the leader changes nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runtime/connect.h"
#include "runtime/runtime.h"
#include "runtime/log.h"
#include "status.h"
#include "steps.h"
#include "upgrade.h"

#define BLOCKED_RECHECK_S 60.0

static int replace_status(void *ud, const cJSON *obj, cJSON *status)
{
    const cJSON *want = ud;
    cJSON *it;
    (void)obj;
    /* status is edited in place: empty it, then copy want's members */
    while (status->child) {
        it = cJSON_DetachItemViaPointer(status, status->child);
        cJSON_Delete(it);
    }
    cJSON_ArrayForEach(it, want) {
        if (k8s_json_put(status, it->string, cJSON_Duplicate(it, 1)))
            return K8S_ENOMEM;
    }
    return 0;
}

/* Write run->status if it differs from what is stored; keeps run->obj the
 * stored object. Returns 0, or -1 (logged) when the write failed. */
static int write_status(tqu_run *run)
{
    k8s_err err;
    char ebuf[1200];
    cJSON *stored = NULL;
    int written = 0;

    if (!tqu_may_act(run->ctl))
        return -1;
    if (k8s_status_update(run->ctl->client, &TQU_RESOURCE, run->ns, run->name, run->obj,
                          replace_status, run->status, &written, &stored, &err)) {
        tqu_log(TQU_WARN, "status update failed", "key", run->key,
                "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        return -1;
    }
    if (stored) {
        cJSON_Delete(run->obj);
        run->obj = stored;
    }
    return 0;
}

/* An Event, best effort (never fails the reconcile). */
void tqu_event(tqu_run *run, const char *type, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!tqu_may_act(run->ctl))
        return;
    int rc = k8s_event(run->ctl->recorder, run->obj, type, reason, "%s", msg);
    if (rc && rc != K8S_ESTOPPED)
        tqu_log(TQU_DEBUG, "event not recorded", "key", run->key, "reason", reason,
                "error", k8s_strerror(rc), NULL);
}

static const char *phase_of(const cJSON *status)
{
    const char *p = k8s_json_str(status, "phase", NULL);
    return p ? p : "";
}

static int phase_is(const cJSON *status, const char *p)
{
    return strcmp(phase_of(status), p) == 0;
}

static void log_outcome(tqu_run *run, int id, const tqu_outcome *o)
{
    static const char *const kinds[] = { "done", "skipped", "waiting", "running", "blocked", "failed", "error" };
    tqu_log(o->kind >= TQU_OUT_BLOCKED ? TQU_WARN : TQU_INFO, "step", "key", run->key,
            "step", tqu_step_names[id], "outcome", kinds[o->kind],
            "reason", o->reason ? o->reason : "", "message", o->message, NULL);
}

/* The step's message as recorded (copied: a status edit frees the item). */
static void step_message(const cJSON *status, int id, char *buf, size_t len)
{
    const char *m = k8s_json_str(tqu_status_step((cJSON *)status, id), "message", NULL);
    snprintf(buf, len, "%s", m ? m : "");
}

/* Events for a step's outcome, only when something changed: a new state,
 * or, for Blocked, Failed and Waiting, a new message (a different problem).
 * A re-check that finds the same problem again (a Blocked step every
 * minute) announces nothing: the Event's count would otherwise be patched
 * on every re-check, an API write per minute in steady state. */
static void announce(tqu_run *run, int id, const char *before, const char *before_msg, const tqu_outcome *o)
{
    const char *after = tqu_status_step_state(run->status, id);
    if (before && strcmp(before, after) == 0 &&
        ((before_msg && strcmp(before_msg, o->message) == 0) ||
         (o->kind != TQU_OUT_BLOCKED && o->kind != TQU_OUT_FAILED && o->kind != TQU_OUT_WAIT)))
        return;
    switch (o->kind) {
    case TQU_OUT_DONE:
        tqu_event(run, "Normal", "StepSucceeded", "%s: %s", tqu_step_names[id], o->message);
        break;
    case TQU_OUT_SKIPPED:
        tqu_event(run, "Normal", "StepSkipped", "%s: %s", tqu_step_names[id], o->message);
        break;
    case TQU_OUT_WAIT:
        tqu_event(run, "Normal", o->reason ? o->reason : "Waiting", "%s: %s", tqu_step_names[id], o->message);
        break;
    case TQU_OUT_BLOCKED:
    case TQU_OUT_FAILED:
        tqu_event(run, "Warning", o->reason ? o->reason : "Blocked", "%s: %s", tqu_step_names[id], o->message);
        break;
    default:
        break;
    }
}

/* Phase Paused before step next (an Event when it becomes so). */
static void set_paused(tqu_run *run, int next)
{
    char m[256];
    snprintf(m, sizeof(m), "paused before %s: set spec.paused to false to continue",
             next < TQU_STEP_COUNT ? tqu_step_names[next] : "the end");
    int was = phase_is(run->status, "Paused");
    tqu_status_set_phase(run->status, "Paused", "Paused", m, run->generation);
    write_status(run);
    if (!was)
        tqu_event(run, "Normal", "Paused", "%s", m);
}

static void handle_delete(tqu_run *run, tqu_result *res)
{
    if (!k8s_has_finalizer(run->obj, TQU_FINALIZER))
        return;
    if (tqu_steps_vendor_running(run)) {
        tqu_log(TQU_INFO, "deletion waits for the vendor process", "key", run->key, NULL);
        tqu_event(run, "Normal", "WaitingForVendorProcess",
                  "deletion waits until the running update.sh has finished");
        res->requeue_after = 30;
        return;
    }
    k8s_err err;
    char ebuf[1200];
    if (tqu_may_act(run->ctl) &&
        k8s_finalizer_remove(run->ctl->client, &TQU_RESOURCE, run->obj, TQU_FINALIZER, &err)) {
        tqu_log(TQU_WARN, "cannot remove the finalizer", "key", run->key,
                "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        res->error = 1;
    }
}

tqu_result tqu_reconcile(tqu_controller *ctl, const char *key)
{
    tqu_result res = { 0 };
    tqu_run run = { .ctl = ctl, .key = key };
    k8s_err err;
    char ebuf[1200], nsbuf[256];
    const char *slash = strchr(key, '/');
    const char *reason = NULL;

    if (!slash || (size_t)(slash - key) >= sizeof(nsbuf))
        return res;
    memcpy(nsbuf, key, (size_t)(slash - key));
    nsbuf[slash - key] = '\0';
    run.ns = nsbuf;
    run.name = slash + 1;

    /* Read it fresh: the cache may not have our own last write yet, and a
     * step must never run twice because of a stale read. */
    if (k8s_get(ctl->client, &TQU_RESOURCE, run.ns, run.name, &run.obj, &err)) {
        if (!k8s_err_is(&err, "NotFound")) {
            tqu_log(TQU_WARN, "cannot read the resource", "key", key,
                    "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            res.error = 1;
        }
        tqu_controller_release_slot(ctl, key);
        return res;
    }
    run.uid = k8s_json_str(run.obj, "metadata", "uid", NULL);
    run.generation = k8s_json_int(run.obj, 0, "metadata", "generation", NULL);

    if (k8s_json_str(run.obj, "metadata", "deletionTimestamp", NULL)) {
        /* The state folder, where a running update.sh is recorded, comes
         * from the spec: without it handle_delete never saw the vendor
         * process and removed the finalizer at once, under a running
         * update.sh. (A spec that no longer parses leaves it unknown.) */
        char dmsg[1024] = "out of memory";
        run.spec_src = cJSON_Duplicate(run.obj, 1);
        if (run.spec_src && tqu_spec_parse(run.spec_src, &run.spec, &reason, dmsg, sizeof(dmsg)) == 0)
            tqu_steps_state_dir(&run);
        else if (tqu_steps_kept_dir(&run) != 0)
            /* no spec and no recorded folder: no backup was ever taken, so
             * update.sh (which comes after it) never started */
            tqu_log(TQU_WARN, "deleted with a spec that does not parse and no state folder recorded",
                    "key", key, "error", dmsg, NULL);
        handle_delete(&run, &res);
        /* While update.sh still runs the upgrade is still under way: keep
         * the one-upgrade slot, or a second upgrade could start beside it. */
        if (!res.requeue_after)
            tqu_controller_release_slot(ctl, key);
        goto out;
    }

    const cJSON *cur = k8s_json_get(run.obj, "status", NULL);
    run.status = cur ? cJSON_Duplicate(cur, 1) : cJSON_CreateObject();
    if (!run.status || tqu_status_init_steps(run.status)) {
        res.error = 1;
        goto out;
    }
    long long observed = k8s_json_int(run.status, -1, "observedGeneration", NULL);
    int new_generation = observed != run.generation;
    if (new_generation && observed > 0)
        tqu_status_new_generation(run.status);

    /* the spec; an invalid one fails Validate */
    char smsg[1024];
    run.spec_src = cJSON_Duplicate(run.obj, 1);
    if (!run.spec_src) {
        res.error = 1;
        goto out;
    }
    if (tqu_spec_parse(run.spec_src, &run.spec, &reason, smsg, sizeof(smsg))) {
        tqu_outcome o = { .kind = TQU_OUT_FAILED, .reason = reason };
        snprintf(o.message, sizeof(o.message), "%s", smsg);
        /* copies: tqu_status_apply replaces (frees) the items they point into */
        char before[32], before_msg[sizeof(o.message)];
        snprintf(before, sizeof(before), "%s", tqu_status_step_state(run.status, TQU_STEP_VALIDATE));
        step_message(run.status, TQU_STEP_VALIDATE, before_msg, sizeof(before_msg));
        tqu_status_apply(run.status, TQU_STEP_VALIDATE, &o, run.generation);
        write_status(&run);
        announce(&run, TQU_STEP_VALIDATE, before, before_msg, &o);
        /* An update.sh started earlier may still run: keep the one-upgrade
         * slot and look again until the spec is fixed. */
        if (tqu_steps_kept_dir(&run) == 0 && tqu_steps_vendor_running(&run))
            res.requeue_after = 30;
        else
            tqu_controller_release_slot(ctl, key);
        goto out;
    }
    tqu_steps_state_dir(&run);

    /* Finished: keep the CDN tuning in place; nothing else to do. */
    if (!new_generation && phase_is(run.status, "Succeeded")) {
        tqu_controller_release_slot(ctl, key);
        if (!run.spec.dry_run && !strcmp(tqu_status_step_state(run.status, TQU_STEP_CDN), "Succeeded"))
            tqu_steps_keep_cdn_tuned(&run, &res);
        goto out;
    }
    /* Failed is final until the spec changes. */
    if (!new_generation && phase_is(run.status, "Failed")) {
        tqu_controller_release_slot(ctl, key);
        goto out;
    }

    /* Paused: no further step starts. A step under way (update.sh, the
     * rollout wait) is followed to its end first, as the CRD promises; the
     * loop below pauses before the step after it. (Before, pausing during
     * Upgrade stopped polling update.sh: its end, exit code and the
     * finalizer's removal waited for the resume, and the message said
     * "paused before Upgrade" while update.sh ran.) */
    int next = tqu_status_next_step(run.status);
    int next_running = next < TQU_STEP_COUNT && !strcmp(tqu_status_step_state(run.status, next), "Running");
    if (run.spec.paused && !next_running) {
        set_paused(&run, next);
        goto out;
    }

    /* One upgrade at a time (a dry run changes nothing and takes no slot). */
    if (!run.spec.dry_run) {
        char who[512];
        if (tqu_controller_active_other(ctl, key, who, sizeof(who))) {
            char m[1024];
            snprintf(m, sizeof(m), "another upgrade is in progress (%s); this one starts when it has finished", who);
            int was = phase_is(run.status, "Blocked");
            tqu_status_set_phase(run.status, "Blocked", "AnotherUpgradeActive", m, run.generation);
            write_status(&run);
            if (!was)
                tqu_event(&run, "Warning", "AnotherUpgradeActive", "%s", m);
            res.requeue_after = BLOCKED_RECHECK_S;
            goto out;
        }
        tqu_controller_claim_slot(ctl, key);
    }

    for (;;) {
        int id = tqu_status_next_step(run.status);
        if (id >= TQU_STEP_COUNT || (run.spec.dry_run && id > TQU_STEP_PREFLIGHT)) {
            int was = phase_is(run.status, "Succeeded");
            if (run.spec.dry_run)
                for (int i = TQU_STEP_PREFLIGHT + 1; i < TQU_STEP_COUNT; i++) {
                    cJSON *s = tqu_status_step(run.status, i);
                    const char *st = k8s_json_str(s, "state", NULL);
                    if (s && st && strcmp(st, "Pending") == 0)
                        k8s_json_put(s, "message", cJSON_CreateString("not run: dry run (see status.plan)"));
                }
            tqu_status_succeeded(run.status, run.generation, run.spec.dry_run);
            if (write_status(&run) == 0 && !was) {
                tqu_event(&run, "Normal", run.spec.dry_run ? "DryRunComplete" : "UpgradeSucceeded", "%s",
                          k8s_json_str(run.status, "message", NULL));
                tqu_log(TQU_INFO, run.spec.dry_run ? "dry run complete" : "upgrade succeeded", "key", key, NULL);
            }
            tqu_controller_release_slot(ctl, key);
            break;
        }
        if (!tqu_may_act(ctl))
            break;

        /* recorded before it runs */
        const char *before_c = tqu_status_step_state(run.status, id);
        char before[32], before_msg[sizeof(((tqu_outcome *)0)->message)];
        snprintf(before, sizeof(before), "%s", before_c);
        step_message(run.status, id, before_msg, sizeof(before_msg));
        run.step_was_pending = strcmp(before, "Pending") == 0;
        /* paused while the step before ran to its end: stop here */
        if (run.spec.paused && strcmp(before, "Running") != 0) {
            set_paused(&run, id);
            break;
        }
        /* A Blocked step, or one waiting (for its window: it stays Pending
         * with phase Waiting), is re-checked without recording a new start,
         * so a re-check that finds the same problem writes nothing (before,
         * every re-check of a waiting Upgrade added an attempt, two status
         * writes and a StepStarted Event). */
        const char *cur_step = k8s_json_str(run.status, "currentStep", NULL);
        int waiting = phase_is(run.status, "Waiting") && cur_step && !strcmp(cur_step, tqu_step_names[id]);
        if (strcmp(before, "Running") != 0 && strcmp(before, "Blocked") != 0 && !waiting) {
            tqu_status_step_start(run.status, id, tqu_steps_describe(id));
            if (write_status(&run)) {
                res.error = 1;
                break;
            }
            tqu_event(&run, "Normal", "StepStarted", "%s: %s", tqu_step_names[id], tqu_steps_describe(id));
            tqu_log(TQU_INFO, "step started", "key", key, "step", tqu_step_names[id], NULL);
        }

        tqu_outcome o;
        memset(&o, 0, sizeof(o));
        tqu_steps_run(&run, id, &o);
        log_outcome(&run, id, &o);

        if (o.kind == TQU_OUT_ERROR) {
            /* transient: keep the step Running, retry with backoff */
            tqu_status_apply(run.status, id, &o, run.generation);
            write_status(&run);
            res.error = 1;
            break;
        }
        tqu_status_apply(run.status, id, &o, run.generation);
        if (write_status(&run)) {
            res.error = 1;
            break;
        }
        announce(&run, id, before, before_msg, &o);
        if (o.kind == TQU_OUT_DONE || o.kind == TQU_OUT_SKIPPED)
            continue;
        if (o.kind == TQU_OUT_WAIT || o.kind == TQU_OUT_RUNNING)
            res.requeue_after = o.requeue_after > 0 ? o.requeue_after : 10;
        else if (o.kind == TQU_OUT_BLOCKED)
            res.requeue_after = BLOCKED_RECHECK_S;
        else if (o.kind == TQU_OUT_FAILED)
            tqu_controller_release_slot(ctl, key);
        break;
    }

out:
    cJSON_Delete(run.status);
    cJSON_Delete(run.obj);
    cJSON_Delete(run.spec_src);
    return res;
}
