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
 * The engine (controller/engine/) records the steps and drives them from
 * the table in steps.c; tests/unit/test_upgrade.c drives its transitions
 * with this workflow's table.
 */
#ifndef TQU_UPGRADE_H
#define TQU_UPGRADE_H

#include "k8s.h"
#include "engine/engine.h"

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

/* The TianqingUpgrade workflow: its steps table (steps.c), registered
 * with the runtime by main.c as &tqu_upgrade_workflow.rec. */
extern const tqu_workflow tqu_upgrade_workflow;

#endif
