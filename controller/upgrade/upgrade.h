/*
 * upgrade.h - the upgrade's step machine (design.md section 2).
 *
 * Eight steps, in order: Validate, Preflight, BackupDeployments, PaasCheck,
 * SabreCleanup, Upgrade, CdnTuning, Verify. Each is recorded in
 * status.steps before and after it runs, announced with an Event, and
 * idempotent: a reconcile may stop anywhere (crash, leadership loss) and the
 * next one continues from the recorded state and the files in the request's
 * state folder (<backupDir>/<namespace>.<name>.<uid>/).
 *
 * Outcomes of a step: done, skipped, waiting (for the window), running (a
 * vendor process is still working), blocked (a person must act; re-checked
 * every minute, and at once on a new generation), failed (final until the
 * spec changes), or a transient error (retried with backoff).
 *
 * The pure parts (status transitions) are separate from the I/O so that
 * tests/unit/test_upgrade.c can drive them.
 */
#ifndef TQU_UPGRADE_H
#define TQU_UPGRADE_H

#include "k8s.h"
#include "engine/outcome.h"

enum tqu_step_id {
    TQU_STEP_VALIDATE = 0,
    TQU_STEP_PREFLIGHT,
    TQU_STEP_BACKUP,
    TQU_STEP_PAAS,
    TQU_STEP_SABRE,
    TQU_STEP_UPGRADE,
    TQU_STEP_CDN,
    TQU_STEP_VERIFY,
    TQU_STEP_COUNT
};

extern const char *const tqu_step_names[TQU_STEP_COUNT];


/* ---- pure status transitions (no I/O) ---- */

/* Make sure status.steps lists the eight steps in order (others dropped). */
int tqu_status_init_steps(cJSON *status);
/* The step object of id in status.steps. */
cJSON *tqu_status_step(cJSON *status, int id);
const char *tqu_status_step_state(const cJSON *status, int id);
/*
 * A new generation: steps that are Failed or Blocked go back to Pending so
 * they run again; so do Validate and Preflight (read-only checks) as long as
 * nothing has changed the cluster yet; completed steps are kept.
 */
void tqu_status_new_generation(cJSON *status);
/* Record a step starting (Running, attempts+1, startedAt). */
int tqu_status_step_start(cJSON *status, int id, const char *message);
/* Record an outcome on a step and the resource's phase, message and the
 * kstatus conditions (Ready, Reconciling, Stalled). */
int tqu_status_apply(cJSON *status, int id, const tqu_outcome *o, long long generation);
/* Everything done: phase Succeeded, Ready=True. dry_run changes wording. */
int tqu_status_succeeded(cJSON *status, long long generation, int dry_run);
/* Set phase/message/conditions for a state that is not a step's (Paused,
 * AnotherUpgradeActive blocked, invalid spec). */
int tqu_status_set_phase(cJSON *status, const char *phase, const char *reason,
                         const char *message, long long generation);

/* The first step that is not Succeeded or Skipped, or TQU_STEP_COUNT. */
int tqu_status_next_step(const cJSON *status);

#endif
