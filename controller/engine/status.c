/*
 * status.c - status transitions of the step engine (see engine.h).
 * Pure functions over the status JSON and a workflow's steps table: no
 * I/O, no clock except "now" for timestamps, so unit tests can drive
 * every transition.
 */
#include <stdio.h>
#include <string.h>
#include "status.h"
#include "engine.h"

static int set_str(cJSON *o, const char *k, const char *v)
{
    return k8s_json_put(o, k, cJSON_CreateString(v ? v : "")) ? -1 : 0;
}

static int set_num(cJSON *o, const char *k, double v)
{
    return k8s_json_put(o, k, cJSON_CreateNumber(v)) ? -1 : 0;
}

static void del(cJSON *o, const char *k)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
}

int tqu_status_init_steps(cJSON *status, const tqu_workflow *wf)
{
    cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(status, "steps");
    cJSON *steps = cJSON_CreateArray();
    int rc = 0;

    if (!steps) {
        if (old)
            cJSON_AddItemToObject(status, "steps", old);
        return -1;
    }
    for (int i = 0; i < wf->nsteps; i++) {
        cJSON *found = NULL, *it;
        cJSON_ArrayForEach(it, old) {
            const char *n = k8s_json_str(it, "name", NULL);
            if (n && strcmp(n, wf->steps[i].name) == 0) {
                found = it;
                break;
            }
        }
        cJSON *s = found ? cJSON_Duplicate(found, 1) : cJSON_CreateObject();
        if (k8s_json_append(steps, s)) {
            rc = -1;
            break;
        }
        if (!found && (set_str(s, "name", wf->steps[i].name) || set_str(s, "state", "Pending") ||
                       set_num(s, "attempts", 0)))
            rc = -1;
    }
    if (k8s_json_put(status, "steps", steps)) {
        /* keep what was there rather than lose it */
        if (old && !cJSON_AddItemToObject(status, "steps", old))
            cJSON_Delete(old);
        return -1;
    }
    cJSON_Delete(old);
    return rc;
}

cJSON *tqu_status_step(cJSON *status, const tqu_workflow *wf, int id)
{
    cJSON *it;
    if (id < 0 || id >= wf->nsteps)
        return NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(status, "steps")) {
        const char *n = k8s_json_str(it, "name", NULL);
        if (n && strcmp(n, wf->steps[id].name) == 0)
            return it;
    }
    return NULL;
}

const char *tqu_status_step_state(const cJSON *status, const tqu_workflow *wf, int id)
{
    const char *s = k8s_json_str(tqu_status_step((cJSON *)status, wf, id), "state", NULL);
    return s ? s : "Pending";
}

static int is(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

int tqu_status_next_step(const cJSON *status, const tqu_workflow *wf)
{
    for (int i = 0; i < wf->nsteps; i++) {
        const char *st = tqu_status_step_state(status, wf, i);
        if (!is(st, "Succeeded") && !is(st, "Skipped"))
            return i;
    }
    return wf->nsteps;
}

int tqu_status_changes_started(const cJSON *status, const tqu_workflow *wf)
{
    for (int i = 0; i < wf->nsteps; i++)
        if ((wf->steps[i].flags & TQU_STEP_CHANGES) && !is(tqu_status_step_state(status, wf, i), "Pending"))
            return 1;
    return 0;
}

void tqu_status_new_generation(cJSON *status, const tqu_workflow *wf)
{
    /* While a step runs (a vendor process), the spec is frozen: nothing is
     * reset under it. Once every step is done there is nothing to redo.
     * Otherwise steps that are Failed or Blocked run again, and so do the
     * checks (TQU_STEP_CHECK), whatever ran before: a retry after a
     * failure never runs a vendor command with inputs nobody checked. */
    int running = 0, done = 1;
    for (int i = 0; i < wf->nsteps; i++) {
        const char *st = tqu_status_step_state(status, wf, i);
        running |= is(st, "Running");
        done &= is(st, "Succeeded") || is(st, "Skipped");
    }
    if (running || done)
        return;
    for (int i = 0; i < wf->nsteps; i++) {
        cJSON *s = tqu_status_step(status, wf, i);
        const char *st = k8s_json_str(s, "state", NULL);
        int rerun = is(st, "Failed") || is(st, "Blocked") || (wf->steps[i].flags & TQU_STEP_CHECK);
        if (s && rerun && !is(st, "Pending")) {
            set_str(s, "state", "Pending");
            del(s, "completedAt");
        }
    }
}

/* ---------------------------------------------------------- history[] */

int tqu_status_history_start(cJSON *status, long long generation)
{
    cJSON *h = cJSON_GetObjectItemCaseSensitive(status, "history");
    cJSON *e;
    char now[40];

    if (!cJSON_IsArray(h)) {
        cJSON_DeleteItemFromObjectCaseSensitive(status, "history");
        h = cJSON_CreateArray();
        if (!h || k8s_json_put(status, "history", h))
            return -1;
    }
    k8s_time_now(now, sizeof(now));
    e = cJSON_GetArrayItem(h, 0);
    if (e && is(k8s_json_str(e, "outcome", NULL), "Running")) {
        if (k8s_json_int(e, -1, "generation", NULL) == generation)
            return 0;   /* this attempt goes on */
        if (set_str(e, "outcome", "Superseded") || set_str(e, "completed", now) ||
            set_str(e, "reason", "NewGeneration"))
            return -1;
    }
    e = cJSON_CreateObject();
    if (!e || set_num(e, "generation", (double)generation) || set_str(e, "started", now) ||
        set_str(e, "outcome", "Running")) {
        cJSON_Delete(e);
        return -1;
    }
    if (!cJSON_InsertItemInArray(h, 0, e)) {
        cJSON_Delete(e);
        return -1;
    }
    while (cJSON_GetArraySize(h) > TQU_HISTORY_MAX)
        cJSON_DeleteItemFromArray(h, cJSON_GetArraySize(h) - 1);
    return 0;
}

int tqu_status_history_end(cJSON *status, const char *outcome, const char *reason, int has_exit,
                           long long exit_code)
{
    cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(status, "history"), 0);
    char now[40];
    if (!e || !is(k8s_json_str(e, "outcome", NULL), "Running"))
        return 0;
    k8s_time_now(now, sizeof(now));
    if (set_str(e, "outcome", outcome) || set_str(e, "completed", now) ||
        (reason && set_str(e, "reason", reason)) ||
        (has_exit && set_num(e, "exitCode", (double)exit_code)))
        return -1;
    return 0;
}

static int conditions(cJSON *status, const char *phase, const char *reason, const char *message,
                      long long gen);

int tqu_status_step_start(cJSON *status, const tqu_workflow *wf, int id, const char *message,
                          long long generation)
{
    cJSON *s = tqu_status_step(status, wf, id);
    char now[40];
    if (!s)
        return -1;
    k8s_time_now(now, sizeof(now));
    const char *st = k8s_json_str(s, "state", NULL);
    if (!is(st, "Running")) {
        if (set_num(s, "attempts", (double)k8s_json_int(s, 0, "attempts", NULL) + 1) ||
            set_str(s, "startedAt", now))
            return -1;
        del(s, "completedAt");
    }
    if (set_str(s, "state", "Running") || set_str(s, "message", message))
        return -1;
    if (!k8s_json_str(status, "startedAt", NULL) && set_str(status, "startedAt", now))
        return -1;
    del(status, "completedAt");
    if (set_str(status, "currentStep", wf->steps[id].name) || set_str(status, "phase", "Running") ||
        set_num(status, "observedGeneration", (double)generation))
        return -1;
    char msg[2200];
    snprintf(msg, sizeof(msg), "%s: %s", wf->steps[id].name, message);
    /* the conditions follow the phase at once: a step that starts after a
     * Blocked or Failed state (the slot came free, a new generation) is
     * Reconciling, no longer Stalled, while it runs */
    if (set_str(status, "message", msg))
        return -1;
    return conditions(status, "Running", "StepStarted", msg, generation);
}

/* Ready / Reconciling / Stalled for a phase, following kstatus. */
static int conditions(cJSON *status, const char *phase, const char *reason, const char *message,
                      long long gen)
{
    int r = 0;
    const char *ready = "False", *reconciling = "False", *stalled = "False";
    if (is(phase, "Succeeded"))
        ready = "True";
    else if (is(phase, "Blocked") || is(phase, "Failed"))
        stalled = "True";
    else if (is(phase, "Running") || is(phase, "Pending") || is(phase, "Waiting"))
        reconciling = "True";
    /* Paused: none true; a person resumes it by setting paused: false */
    if (k8s_condition_set(status, "Ready", ready, reason, message, gen) < 0 ||
        k8s_condition_set(status, "Reconciling", reconciling, reason, message, gen) < 0 ||
        k8s_condition_set(status, "Stalled", stalled, reason, message, gen) < 0)
        r = -1;
    return r;
}

int tqu_status_set_phase(cJSON *status, const char *phase, const char *reason,
                         const char *message, long long generation)
{
    if (set_str(status, "phase", phase) || set_str(status, "message", message) ||
        set_num(status, "observedGeneration", (double)generation))
        return -1;
    if (is(phase, "Succeeded") || is(phase, "Failed")) {
        char now[40];
        k8s_time_now(now, sizeof(now));
        if (!k8s_json_str(status, "completedAt", NULL) && set_str(status, "completedAt", now))
            return -1;
    } else {
        del(status, "completedAt");
    }
    return conditions(status, phase, reason, message, generation);
}

int tqu_status_apply(cJSON *status, const tqu_workflow *wf, int id, const tqu_outcome *o,
                     long long generation)
{
    cJSON *s = tqu_status_step(status, wf, id);
    char now[40], msg[2200];
    const char *state, *phase, *reason = o->reason;

    if (!s)
        return -1;
    k8s_time_now(now, sizeof(now));
    switch (o->kind) {
    case TQU_OUT_DONE: state = "Succeeded"; phase = "Running"; reason = reason ? reason : "StepSucceeded"; break;
    case TQU_OUT_SKIPPED: state = "Skipped"; phase = "Running"; reason = reason ? reason : "StepSkipped"; break;
    case TQU_OUT_WAIT: state = "Pending"; phase = "Waiting"; reason = reason ? reason : "Waiting"; break;
    case TQU_OUT_RUNNING: state = "Running"; phase = "Running"; reason = reason ? reason : "StepRunning"; break;
    case TQU_OUT_BLOCKED: state = "Blocked"; phase = "Blocked"; reason = reason ? reason : "Blocked"; break;
    case TQU_OUT_FAILED: state = "Failed"; phase = "Failed"; reason = reason ? reason : "Failed"; break;
    default: state = "Running"; phase = "Running"; reason = reason ? reason : "Retrying"; break;
    }
    /* the same outcome again (a re-check) changes nothing, not even times */
    int same = is(k8s_json_str(s, "state", NULL), state) && is(k8s_json_str(s, "message", NULL), o->message);
    if (set_str(s, "state", state) || set_str(s, "message", o->message))
        return -1;
    if (!same && (o->kind == TQU_OUT_DONE || o->kind == TQU_OUT_SKIPPED || o->kind == TQU_OUT_FAILED ||
         o->kind == TQU_OUT_BLOCKED) && set_str(s, "completedAt", now))
        return -1;
    if (o->kind == TQU_OUT_WAIT)
        del(s, "completedAt");
    if (set_str(status, "currentStep", wf->steps[id].name))
        return -1;
    snprintf(msg, sizeof(msg), "%s: %s", wf->steps[id].name, o->message);
    return tqu_status_set_phase(status, phase, reason, msg, generation);
}

int tqu_status_succeeded(cJSON *status, const tqu_workflow *wf, long long generation, int dry_run)
{
    del(status, "currentStep");
    if (dry_run)
        return tqu_status_set_phase(status, "Succeeded", "DryRunComplete",
                                    "dry run complete: checks passed, status.plan lists every change; nothing was changed",
                                    generation);
    return tqu_status_set_phase(status, "Succeeded", wf->succeeded_reason, wf->succeeded_message, generation);
}
