/*
 * engine.c - one reconcile of any workflow (see engine.h): read the object
 * fresh, work out where it stands, run the next steps of the workflow's
 * table in order, record each in status before and after it runs, and
 * announce transitions as Events.
 *
 * The steps are the workflow's; the status transitions are in status.c.
 * Every write is preceded by tqu_may_act(): a controller that is not (or
 * no longer) the leader changes nothing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runtime/runtime.h"
#include "runtime/log.h"
#include "status.h"
#include "engine.h"

#define BLOCKED_RECHECK_S 60.0

struct write_ctx {
    const cJSON *want;         /* the status to store */
    const cJSON *base;         /* the status our decision was based on */
    long long generation;      /* the generation it was based on */
    int changed_under_us;
};

/* Called with the live object: the first time our own copy, after a 409
 * the object read again. If someone else changed its spec or status in
 * between (a person, another controller), what we decided may be wrong:
 * stop, and decide again from a fresh read (design.md section 8). A
 * change of metadata only (our own finalizer patch, a label) is fine. */
static int replace_status(void *ud, const cJSON *obj, cJSON *status)
{
    struct write_ctx *w = ud;
    cJSON *it;
    const cJSON *live = k8s_json_get(obj, "status", NULL);
    if (k8s_json_int(obj, 0, "metadata", "generation", NULL) != w->generation ||
        !((!live && !w->base) || (live && w->base && cJSON_Compare(live, w->base, 1)))) {
        w->changed_under_us = 1;
        return K8S_ESTOPPED;
    }
    /* status is edited in place: empty it, then copy want's members */
    while (status->child) {
        it = cJSON_DetachItemViaPointer(status, status->child);
        cJSON_Delete(it);
    }
    cJSON_ArrayForEach(it, w->want) {
        if (k8s_json_put(status, it->string, cJSON_Duplicate(it, 1)))
            return K8S_ENOMEM;
    }
    return 0;
}

/* Write run->status if it differs from what is stored; keeps run->obj the
 * stored object. Returns 0, or -1 (logged) when the write failed or the
 * object changed under us (then the caller stops; the key is retried and
 * decided again). */
int tqu_job_write_status(tqu_job *run)
{
    k8s_err err;
    char ebuf[1200];
    cJSON *stored = NULL;
    int written = 0;
    struct write_ctx w = { .want = run->status, .base = k8s_json_get(run->obj, "status", NULL),
                           .generation = run->generation };
    memset(&err, 0, sizeof(err));

    if (!tqu_may_act(run->ctl))
        return -1;
    if (k8s_status_update(run->ctl->client, run->wf->rec.resource, run->ns, run->name, run->obj,
                          replace_status, &w, &written, &stored, &err)) {
        if (w.changed_under_us)
            tqu_log(TQU_INFO, "the resource changed while it was being reconciled; deciding again",
                    "key", run->key, NULL);
        else
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
void tqu_event(void *job, const char *type, const char *reason, const char *fmt, ...)
{
    tqu_job *run = job;
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

static void log_outcome(tqu_job *run, int id, const tqu_outcome *o)
{
    static const char *const kinds[] = { "done", "skipped", "waiting", "running", "blocked", "failed", "error" };
    tqu_log(o->kind >= TQU_OUT_BLOCKED ? TQU_WARN : TQU_INFO, "step", "key", run->key,
            "step", run->wf->steps[id].name, "outcome", kinds[o->kind],
            "reason", o->reason ? o->reason : "", "message", o->message, NULL);
}

/* The step's message as recorded (copied: a status edit frees the item). */
static void step_message(const tqu_job *run, int id, char *buf, size_t len)
{
    const char *m = k8s_json_str(tqu_status_step(run->status, run->wf, id), "message", NULL);
    snprintf(buf, len, "%s", m ? m : "");
}

/* Events for a step's outcome, only when something changed: a new state,
 * or, for Blocked, Failed and Waiting, a new message (a different problem).
 * A re-check that finds the same problem again (a Blocked step every
 * minute) announces nothing: the Event's count would otherwise be patched
 * on every re-check, an API write per minute in steady state. */
static void announce(tqu_job *run, int id, const char *before, const char *before_msg, const tqu_outcome *o)
{
    const char *after = tqu_status_step_state(run->status, run->wf, id);
    const char *name = run->wf->steps[id].name;
    if (before && strcmp(before, after) == 0 &&
        ((before_msg && strcmp(before_msg, o->message) == 0) ||
         (o->kind != TQU_OUT_BLOCKED && o->kind != TQU_OUT_FAILED && o->kind != TQU_OUT_WAIT)))
        return;
    switch (o->kind) {
    case TQU_OUT_DONE:
        tqu_event(run, "Normal", "StepSucceeded", "%s: %s", name, o->message);
        break;
    case TQU_OUT_SKIPPED:
        tqu_event(run, "Normal", "StepSkipped", "%s: %s", name, o->message);
        break;
    case TQU_OUT_WAIT:
        tqu_event(run, "Normal", o->reason ? o->reason : "Waiting", "%s: %s", name, o->message);
        break;
    case TQU_OUT_BLOCKED:
    case TQU_OUT_FAILED:
        tqu_event(run, "Warning", o->reason ? o->reason : "Blocked", "%s: %s", name, o->message);
        break;
    default:
        break;
    }
}

/* Phase Paused before step next (an Event when it becomes so). */
static void set_paused(tqu_job *run, int next)
{
    char m[256];
    snprintf(m, sizeof(m), "paused before %s: set spec.paused to false to continue",
             next < run->wf->nsteps ? run->wf->steps[next].name : "the end");
    int was = phase_is(run->status, "Paused");
    tqu_status_set_phase(run->status, "Paused", "Paused", m, run->generation);
    tqu_job_write_status(run);
    if (!was)
        tqu_event(run, "Normal", "Paused", "%s", m);
}

static void handle_delete(tqu_job *run, tqu_result *res)
{
    const tqu_workflow *wf = run->wf;
    if (!wf->finalizer || !k8s_has_finalizer(run->obj, wf->finalizer))
        return;
    if (wf->vendor_running && wf->vendor_running(run)) {
        tqu_log(TQU_INFO, "deletion waits for the vendor process", "key", run->key, NULL);
        tqu_event(run, "Normal", "WaitingForVendorProcess",
                  "deletion waits until the running vendor process has finished");
        res->requeue_after = 30;
        return;
    }
    if (wf->finalize && wf->finalize(run, res))
        return;
    k8s_err err;
    char ebuf[1200];
    if (tqu_may_act(run->ctl) &&
        k8s_finalizer_remove(run->ctl->client, wf->rec.resource, run->obj, wf->finalizer, &err)) {
        tqu_log(TQU_WARN, "cannot remove the finalizer", "key", run->key,
                "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        res->error = 1;
    }
}

/* ------------------------------------------------- one at a time (slot) */

struct scan {
    const tqu_workflow *wf;
    tqu_controller *ctl;
    const char *self;
    char *who;
    size_t len;
    int found;
};

/* Whether a cached object's status shows a run under way: started, not
 * finished, not a dry run, not itself waiting for the slot. */
static int in_progress(const tqu_workflow *wf, const cJSON *obj)
{
    const cJSON *st = k8s_json_get(obj, "status", NULL);
    const char *phase = k8s_json_str(st, "phase", NULL);
    const cJSON *c;

    if (!phase || !k8s_json_str(st, "startedAt", NULL))
        return 0;
    if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed") || !strcmp(phase, "Pending"))
        return 0;
    if (!tqu_status_changes_started(st, wf))
        return 0;   /* only checks so far: they run beside other runs */
    /* being deleted: over, unless our finalizer still waits for a running
     * vendor process (then the run is very much under way) */
    if (k8s_json_get(obj, "metadata", "deletionTimestamp", NULL) &&
        !(wf->finalizer && k8s_has_finalizer(obj, wf->finalizer)))
        return 0;
    cJSON_ArrayForEach(c, k8s_json_get(st, "conditions", NULL)) {
        const char *t = k8s_json_str(c, "type", NULL), *r = k8s_json_str(c, "reason", NULL);
        if (t && r && !strcmp(t, "Stalled") && !strcmp(r, wf->slot_busy_reason))
            return 0;
    }
    return 1;
}

static void check_key(void *ud, const char *key)
{
    struct scan *s = ud;
    if (s->found || !strcmp(key, s->self))
        return;
    cJSON *obj = tqu_cache_get(s->ctl, s->wf->rec.resource, key);
    if (obj && in_progress(s->wf, obj)) {
        snprintf(s->who, s->len, "%s, phase %s", key, k8s_json_str(obj, "status", "phase", NULL));
        s->found = 1;
    }
    cJSON_Delete(obj);
}

/* 1 if another object holds the workflow's slot: this process's claim, or
 * one whose status shows a run in progress (a restarted controller has no
 * claim in memory); who names it. */
static int slot_taken(tqu_job *run, char *who, size_t len)
{
    const char *holder = tqu_slot_holder(run->ctl, run->wf->slot);
    if (holder) {
        if (!strcmp(holder, run->key))
            return 0;
        snprintf(who, len, "%s", holder);
        return 1;
    }
    struct scan s = { .wf = run->wf, .ctl = run->ctl, .self = run->key, .who = who, .len = len };
    tqu_cache_keys(run->ctl, run->wf->rec.resource, check_key, &s);
    return s.found;
}

static void release(tqu_job *run)
{
    if (run->wf->slot)
        tqu_slot_release(run->ctl, run->wf->slot, run->key);
}

/* A step's inputs, as recorded when it succeeded: a short digest of what
 * the workflow's inputs hook names (the spec fields it depends on). */
static void inputs_digest(tqu_job *run, int id, char out[17])
{
    char buf[8192];
    unsigned long long h = 1469598103934665603ULL;   /* FNV-1a */
    out[0] = '\0';
    if (!run->wf->inputs)
        return;
    buf[0] = '\0';
    if (!run->wf->inputs(run, id, buf, sizeof(buf)))
        return;
    for (const char *p = buf; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    snprintf(out, 17, "%016llx", h);
}

/* A new generation: a step that succeeded with other inputs than the new
 * spec gives it runs again (a later check whose inputs changed), unless a
 * step is running (the spec is frozen while a change runs). */
static void rerun_changed_inputs(tqu_job *run)
{
    const tqu_workflow *wf = run->wf;
    char d[17];
    int done = 1;
    for (int i = 0; i < wf->nsteps; i++) {
        const char *st = tqu_status_step_state(run->status, wf, i);
        if (!strcmp(st, "Running"))
            return;
        done &= !strcmp(st, "Succeeded") || !strcmp(st, "Skipped");
    }
    if (done)
        return;   /* a finished run is never run again */
    for (int i = 0; i < wf->nsteps; i++) {
        cJSON *s = tqu_status_step(run->status, wf, i);
        const char *was = k8s_json_str(s, "inputs", NULL);
        inputs_digest(run, i, d);
        if (!d[0] || !was || !strcmp(was, d) || strcmp(tqu_status_step_state(run->status, wf, i), "Succeeded"))
            continue;
        k8s_json_put(s, "state", cJSON_CreateString("Pending"));
        k8s_json_put(s, "message", cJSON_CreateString("to run again: its inputs in the spec changed"));
        cJSON_DeleteItemFromObjectCaseSensitive(s, "completedAt");
    }
}

/* The newest status.history[] entry ends (if it is still running). */
static void end_attempt(tqu_job *run, const char *outcome, const char *reason)
{
    long long code = 0;
    int has = run->wf->exit_code && run->wf->exit_code(run, &code);
    tqu_status_history_end(run->status, outcome, reason, has, code);
}

/* Take the workflow's slot for run: 1, or 0 with the object Blocked (the
 * workflow's busy reason) and res set to look again. */
static int take_slot(tqu_job *run, tqu_result *res)
{
    const tqu_workflow *wf = run->wf;
    char who[512], m[1024];
    if (!slot_taken(run, who, sizeof(who))) {
        /* out of memory: the cache scan still finds it once its status
         * says so */
        tqu_slot_claim(run->ctl, wf->slot, run->key);
        return 1;
    }
    snprintf(m, sizeof(m), "another %s is in progress (%s); this one starts when it has finished", wf->noun, who);
    int was = phase_is(run->status, "Blocked");
    tqu_status_set_phase(run->status, "Blocked", wf->slot_busy_reason, m, run->generation);
    tqu_job_write_status(run);
    if (!was)
        tqu_event(run, "Warning", wf->slot_busy_reason, "%s", m);
    res->requeue_after = BLOCKED_RECHECK_S;
    return 0;
}

/* ------------------------------------------------------------- reconcile */

/* Run the steps from the next one on until one stops; res says when to
 * look again. */
static void run_steps(tqu_job *run, int dry_run, int paused, tqu_result *res)
{
    const tqu_workflow *wf = run->wf;
    for (;;) {
        int id = tqu_status_next_step(run->status, wf);
        if (id >= wf->nsteps || (dry_run && !(wf->steps[id].flags & TQU_STEP_CHECK))) {
            int was = phase_is(run->status, "Succeeded");
            if (dry_run)
                for (int i = id; i < wf->nsteps; i++) {
                    cJSON *s = tqu_status_step(run->status, wf, i);
                    const char *st = k8s_json_str(s, "state", NULL);
                    if (s && st && strcmp(st, "Pending") == 0)
                        k8s_json_put(s, "message", cJSON_CreateString("not run: dry run (see status.plan)"));
                }
            tqu_status_succeeded(run->status, wf, run->generation, dry_run);
            end_attempt(run, dry_run ? "DryRun" : "Succeeded", dry_run ? "DryRunComplete" : wf->succeeded_reason);
            if (tqu_job_write_status(run) == 0 && !was) {
                tqu_event(run, "Normal", dry_run ? "DryRunComplete" : wf->succeeded_reason, "%s",
                          k8s_json_str(run->status, "message", NULL));
                tqu_log(TQU_INFO, dry_run ? "dry run complete" : wf->succeeded_log, "key", run->key, NULL);
            }
            release(run);
            return;
        }
        if (!tqu_may_act(run->ctl))
            return;

        /* recorded before it runs */
        const char *before_c = tqu_status_step_state(run->status, wf, id);
        char before[32], before_msg[sizeof(((tqu_outcome *)0)->message)];
        snprintf(before, sizeof(before), "%s", before_c);
        step_message(run, id, before_msg, sizeof(before_msg));
        run->step_was_pending = strcmp(before, "Pending") == 0;
        /* paused while the step before ran to its end: stop here */
        if (paused && strcmp(before, "Running") != 0) {
            set_paused(run, id);
            return;
        }
        /* One at a time: the checks run for every object, so each shows
         * its own problem; the slot is taken by the first step that
         * changes something outside the controller's own folder. */
        if ((wf->steps[id].flags & TQU_STEP_CHANGES) && wf->slot && !take_slot(run, res))
            return;
        /* A Blocked step, or one waiting (for its window: it stays Pending
         * with phase Waiting), is re-checked without recording a new start,
         * so a re-check that finds the same problem writes nothing (before,
         * every re-check of a waiting Upgrade added an attempt, two status
         * writes and a StepStarted Event). */
        const char *cur_step = k8s_json_str(run->status, "currentStep", NULL);
        const char *name = wf->steps[id].name;
        int waiting = phase_is(run->status, "Waiting") && cur_step && !strcmp(cur_step, name);
        if (strcmp(before, "Running") != 0 && strcmp(before, "Blocked") != 0 && !waiting) {
            tqu_status_step_start(run->status, wf, id, wf->steps[id].description, run->generation);
            tqu_status_history_start(run->status, run->generation);
            if (tqu_job_write_status(run)) {
                res->error = 1;
                return;
            }
            tqu_event(run, "Normal", "StepStarted", "%s: %s", name, wf->steps[id].description);
            tqu_log(TQU_INFO, "step started", "key", run->key, "step", name, NULL);
        }

        tqu_outcome o;
        memset(&o, 0, sizeof(o));
        wf->steps[id].run(run, &o);
        log_outcome(run, id, &o);

        if (o.kind == TQU_OUT_ERROR) {
            /* transient: keep the step Running, retry with backoff */
            tqu_status_apply(run->status, wf, id, &o, run->generation);
            tqu_job_write_status(run);
            res->error = 1;
            return;
        }
        tqu_status_apply(run->status, wf, id, &o, run->generation);
        if (o.kind == TQU_OUT_FAILED)
            end_attempt(run, "Failed", o.reason ? o.reason : "Failed");
        if (o.kind == TQU_OUT_DONE) {
            char d[17];
            inputs_digest(run, id, d);
            if (d[0])
                k8s_json_put(tqu_status_step(run->status, wf, id), "inputs", cJSON_CreateString(d));
        }
        if (tqu_job_write_status(run)) {
            res->error = 1;
            return;
        }
        announce(run, id, before, before_msg, &o);
        if (o.kind == TQU_OUT_DONE || o.kind == TQU_OUT_SKIPPED)
            continue;
        if (o.kind == TQU_OUT_WAIT || o.kind == TQU_OUT_RUNNING)
            res->requeue_after = o.requeue_after > 0 ? o.requeue_after : 10;
        else if (o.kind == TQU_OUT_BLOCKED)
            res->requeue_after = BLOCKED_RECHECK_S;
        else if (o.kind == TQU_OUT_FAILED)
            release(run);
        return;
    }
}

tqu_result tqu_engine_reconcile(tqu_controller *ctl, const tqu_reconciler *self, const char *key)
{
    const tqu_workflow *wf = self->workflow;
    tqu_result res = { 0 };
    tqu_job *run = NULL;
    k8s_err err;
    char ebuf[1200], nsbuf[256], lmsg[1024];
    const char *slash = strchr(key, '/');
    const char *reason = NULL;
    int loaded = 0;

    if (!slash || (size_t)(slash - key) >= sizeof(nsbuf))
        return res;
    run = calloc(1, wf->job_size);
    if (!run) {
        res.error = 1;
        return res;
    }
    memcpy(nsbuf, key, (size_t)(slash - key));
    nsbuf[slash - key] = '\0';
    run->ctl = ctl;
    run->wf = wf;
    run->key = key;
    run->ns = nsbuf;
    run->name = slash + 1;

    /* Read it fresh: the cache may not have our own last write yet, and a
     * step must never run twice because of a stale read. */
    if (k8s_get(ctl->client, wf->rec.resource, run->ns, run->name, &run->obj, &err)) {
        if (!k8s_err_is(&err, "NotFound")) {
            tqu_log(TQU_WARN, "cannot read the resource", "key", key,
                    "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
            res.error = 1;
        } else {
            tqu_watch_drop_owner(ctl, wf->rec.resource, key);
            release(run);
        }
        goto out;
    }
    /* a copy: run->obj is replaced (freed) by every status write */
    snprintf(run->uid_buf, sizeof(run->uid_buf), "%s", k8s_json_str(run->obj, "metadata", "uid", NULL) ?
             k8s_json_str(run->obj, "metadata", "uid", NULL) : "");
    run->uid = run->uid_buf[0] ? run->uid_buf : NULL;
    run->generation = k8s_json_int(run->obj, 0, "metadata", "generation", NULL);

    /* the spec; an invalid one fails the first step. The workflow keeps
     * what status records (its state folder) even then, so a running
     * vendor process is still seen. */
    snprintf(lmsg, sizeof(lmsg), "out of memory");
    loaded = wf->load(run, &reason, lmsg, sizeof(lmsg)) == 0;

    if (k8s_json_str(run->obj, "metadata", "deletionTimestamp", NULL)) {
        if (!loaded)
            tqu_log(TQU_WARN, "deleted with a spec that does not parse", "key", key, "error", lmsg, NULL);
        handle_delete(run, &res);
        /* While the vendor process still runs the run is still under way:
         * keep the slot, or a second one could start beside it. */
        if (!res.requeue_after) {
            tqu_watch_drop_owner(ctl, wf->rec.resource, key);
            release(run);
        }
        goto out;
    }

    const cJSON *cur = k8s_json_get(run->obj, "status", NULL);
    run->status = cur ? cJSON_Duplicate(cur, 1) : cJSON_CreateObject();
    if (!run->status || tqu_status_init_steps(run->status, wf)) {
        res.error = 1;
        goto out;
    }
    long long observed = k8s_json_int(run->status, -1, "observedGeneration", NULL);
    int new_generation = observed != run->generation;
    if (new_generation && observed > 0) {
        if (loaded)
            rerun_changed_inputs(run);
        tqu_status_new_generation(run->status, wf);
    }

    if (!loaded) {
        tqu_outcome o = { .kind = TQU_OUT_FAILED, .reason = reason };
        snprintf(o.message, sizeof(o.message), "%s", lmsg);
        /* copies: tqu_status_apply replaces (frees) the items they point into */
        char before[32], before_msg[sizeof(o.message)];
        snprintf(before, sizeof(before), "%s", tqu_status_step_state(run->status, wf, 0));
        step_message(run, 0, before_msg, sizeof(before_msg));
        tqu_status_apply(run->status, wf, 0, &o, run->generation);
        end_attempt(run, "Failed", reason ? reason : "Failed");
        tqu_job_write_status(run);
        announce(run, 0, before, before_msg, &o);
        /* A vendor process started earlier may still run: keep the slot
         * and look again until the spec is fixed. */
        if (wf->vendor_running && wf->vendor_running(run))
            res.requeue_after = 30;
        else
            release(run);
        goto out;
    }
    int dry_run = wf->dry_run ? wf->dry_run(run) : 0;
    int paused = wf->paused ? wf->paused(run) : 0;
    /* dryRun never makes a run that changed something a dry run: it is
     * followed to its end as a real one (design.md section 8). */
    if (dry_run && tqu_status_changes_started(run->status, wf)) {
        dry_run = 0;
        if (new_generation)
            tqu_event(run, "Warning", "DryRunIgnored",
                      "spec.dryRun is not acted on: this %s has already changed the system; it goes on as a real run",
                      wf->noun);
    }

    /* Finished: keep in place what it set; nothing else to do. */
    if (!new_generation && phase_is(run->status, "Succeeded")) {
        release(run);
        if (!dry_run && wf->settled)
            wf->settled(run, &res);
        goto out;
    }
    /* Failed is final until the spec changes. */
    if (!new_generation && phase_is(run->status, "Failed")) {
        release(run);
        goto out;
    }

    /* Paused: no further step starts. A step under way (a vendor process,
     * a rollout wait) is followed to its end first; run_steps pauses
     * before the step after it. */
    int next = tqu_status_next_step(run->status, wf);
    int next_running = next < wf->nsteps && !strcmp(tqu_status_step_state(run->status, wf, next), "Running");
    if (paused && !next_running) {
        set_paused(run, next);
        goto out;
    }

    run_steps(run, dry_run, paused, &res);

out:
    if (wf->unload)
        wf->unload(run);
    cJSON_Delete(run->status);
    cJSON_Delete(run->obj);
    free(run);
    return res;
}
