/*
 * engine.h - the step engine every workflow runs on (design.md section 7).
 *
 * A workflow is a static table of steps, like git's builtin table: each
 * step has its name (status.steps[].name), a one-line description, its
 * entries of status.plan and its run function. The engine owns one
 * reconcile: it reads the object fresh, records status.steps[] before and
 * after each step, the phase, the kstatus conditions (Ready, Reconciling,
 * Stalled) and Events on transitions; it honours pause and dry run, keeps
 * a finalizer while a vendor process runs, takes the workflow's
 * one-at-a-time slot, and resumes after a crash from what status records.
 *
 * A workflow's own context (its parsed spec, its state folder) is a
 * struct that begins with TQU_JOB_HEAD, so the engine and the steps see
 * the same object: the engine allocates job_size bytes, fills the head,
 * and the workflow's load hook fills the rest.
 */
#ifndef TQU_ENGINE_H
#define TQU_ENGINE_H

#include "runtime/runtime.h"
#include "outcome.h"

struct tqu_workflow;

/* The fields every workflow's context starts with. obj is replaced by
 * every status write (the object as stored); status is the one being
 * built. */
#define TQU_JOB_HEAD                                                                        \
    tqu_controller *ctl;                                                                    \
    const struct tqu_workflow *wf;                                                          \
    const char *key, *ns, *name, *uid;  /* uid points into uid_buf: valid all along */     \
    char uid_buf[128];                                                                      \
    long long generation;                                                                   \
    cJSON *obj;                                                                             \
    cJSON *status;                                                                          \
    int step_was_pending;  /* the step being run was Pending before this reconcile started \
                              it (a fresh start, or a retry after a new generation) */

typedef struct tqu_job {
    TQU_JOB_HEAD
} tqu_job;

/* Step flags. */
#define TQU_STEP_CHECK   1u   /* a read-only check: also runs in a dry run */
#define TQU_STEP_CHANGES 2u   /* changes something outside the controller's own
                                 folder (a vendor tool, the cluster) */

typedef struct tqu_step {
    const char *name;         /* "Validate" */
    const char *description;  /* what it does, one line, for status and Events */
    /* Run it: fill o (engine/outcome.h). Idempotent: may be re-run after a
     * crash at any point. */
    void (*run)(tqu_job *job, tqu_outcome *o);
    /* Its entries of status.plan (tqu_plan_add), or NULL: 0, or -1. */
    int (*plan)(tqu_job *job, cJSON *plan);
    unsigned flags;
} tqu_step;

typedef struct tqu_workflow {
    tqu_reconciler rec;        /* what the runtime sees; rec.reconcile is
                                  tqu_engine_reconcile, rec.workflow this */
    const tqu_step *steps;
    int nsteps;
    size_t job_size;           /* sizeof the workflow's context */
    const char *finalizer;     /* held while a vendor process runs, or NULL */
    const char *slot;          /* one at a time (runtime slot name), or NULL */
    const char *slot_busy_reason;  /* "AnotherUpgradeActive": Blocked while another holds it */
    const char *noun;          /* "upgrade": messages ("another upgrade is...") */
    const char *succeeded_reason, *succeeded_message, *succeeded_log;
    /* Parse the spec into the job (the job's obj is read). 0, or -1 with
     * *reason and msg. Called on every reconcile, also on deletion. */
    int (*load)(tqu_job *job, const char **reason, char *msg, size_t len);
    /* Free what load made (also after a failed load). */
    void (*unload)(tqu_job *job);
    /* The spec's dryRun and paused (after a successful load). */
    int (*dry_run)(const tqu_job *job);
    int (*paused)(const tqu_job *job);
    /* 1 while a vendor process started for this object still runs (may be
     * called after a failed load: then only what status records is known). */
    int (*vendor_running)(tqu_job *job);
    /* Succeeded and nothing new: keep what it set in place (may be NULL). */
    void (*settled)(tqu_job *job, tqu_result *res);
    /* May be NULL. The spec fields step id depends on, as text into buf:
     * 1, or 0 when the step has none. A succeeded step whose inputs differ
     * in a new generation runs again. */
    int (*inputs)(tqu_job *job, int id, char *buf, size_t len);
    /* May be NULL. The exit code of the vendor command of this attempt, for
     * status.history[]: 1 with *code set, or 0 when there is none. */
    int (*exit_code)(const tqu_job *job, long long *code);
    /* May be NULL. On deletion, while wf->finalizer is held and no vendor
     * process runs: undo what the workflow set (TianqingTuning puts the
     * originals back). 0: the finalizer may go; 1: not yet (res says when
     * to look again). */
    int (*finalize)(tqu_job *job, tqu_result *res);
} tqu_workflow;

/* The runtime's reconcile for every workflow: self->workflow is the
 * tqu_workflow. */
tqu_result tqu_engine_reconcile(tqu_controller *ctl, const tqu_reconciler *self, const char *key);

/* An Event about the job's object; best effort, only while we may act. */
void tqu_event(void *job, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write job->status if it differs from what is stored; job->obj becomes
 * the stored object. 0, or -1 (logged). */
int tqu_job_write_status(tqu_job *job);

/* ---- status.plan ---- */

/* Every step's plan entries, in step order; NULL on failure. Caller frees. */
cJSON *tqu_plan_build(tqu_job *job);
/* One entry {step, action, target, detail?}: 0, or -1. */
int tqu_plan_add(cJSON *plan, const char *step, const char *action, const char *target,
                 const char *detail);

/* ---- pure status transitions (engine/status.c; no I/O but the clock) ---- */

/* Make sure status.steps lists the workflow's steps in order (others dropped). */
int tqu_status_init_steps(cJSON *status, const tqu_workflow *wf);
/* The step object of id in status.steps. */
cJSON *tqu_status_step(cJSON *status, const tqu_workflow *wf, int id);
const char *tqu_status_step_state(const cJSON *status, const tqu_workflow *wf, int id);
/* The first step that is not Succeeded or Skipped, or wf->nsteps. */
int tqu_status_next_step(const cJSON *status, const tqu_workflow *wf);
/*
 * A new generation: steps that are Failed or Blocked go back to Pending so
 * they run again; so do the checks (TQU_STEP_CHECK) as long as no step
 * that changes the system (TQU_STEP_CHANGES) has started; completed steps
 * are kept.
 */
void tqu_status_new_generation(cJSON *status, const tqu_workflow *wf);
/* Record a step starting (Running, attempts+1, startedAt). */
int tqu_status_step_start(cJSON *status, const tqu_workflow *wf, int id, const char *message,
                          long long generation);
/* Record an outcome on a step and the resource's phase, message and the
 * kstatus conditions (Ready, Reconciling, Stalled). */
int tqu_status_apply(cJSON *status, const tqu_workflow *wf, int id, const tqu_outcome *o,
                     long long generation);
/* Everything done: phase Succeeded, Ready=True. dry_run changes wording. */
int tqu_status_succeeded(cJSON *status, const tqu_workflow *wf, long long generation, int dry_run);
/* 1 once a step that changes the system (TQU_STEP_CHANGES) is not Pending. */
int tqu_status_changes_started(const cJSON *status, const tqu_workflow *wf);
/* Between two workflows (neither may include the other): set on a
 * TianqingUpgrade by a TianqingRestore that put the upgrade's darwin-cdn
 * back as it was (value: the restore's name); the upgrade then no longer
 * keeps its CdnTuning in place. */
#define TQU_ANNOTATION_CDN_RESTORED TQU_GROUP "/cdn-restored-by"
/* status.history[] (newest first, at most TQU_HISTORY_MAX): a new attempt
 * of generation, started now (an unfinished newer entry is closed as
 * Superseded); and the end of the newest one. */
#define TQU_HISTORY_MAX 20
int tqu_status_history_start(cJSON *status, long long generation);
int tqu_status_history_end(cJSON *status, const char *outcome, const char *reason, int has_exit,
                           long long exit_code);
/* Set phase/message/conditions for a state that is not a step's (Paused,
 * another resource holds the slot, invalid spec). */
int tqu_status_set_phase(cJSON *status, const char *phase, const char *reason,
                         const char *message, long long generation);

#endif
