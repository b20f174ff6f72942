/*
 * restore.h - TianqingRestore (design.md section 11): put back what a
 * TianqingUpgrade changed, from the upgrade's own backups. The workflow
 * the engine drives (steps.c) and what its step files share (tqu__restore_
 * prefix): validate.c, plan.c, apply.c, verify.c.
 *
 * Sources, all in the upgrade's status.backup.folder and checked against
 * the sha256 the upgrade recorded in its status (status.backup.files[],
 * status.backup.manifestsSha256):
 *   sabre         sabre-server.deployment.json, sabre-server-service.service.json
 *   cdn           darwin-cdn.before-tuning.json
 *   updateScript  update.sh (the original PaasCheck kept before its edit)
 *   deployments   items of status.backup.manifestsFile (the full backup)
 */
#ifndef TQU_RESTORE_H
#define TQU_RESTORE_H

#include <limits.h>
#include "engine/engine.h"
#include "spec.h"

#define TQU_RESTORE_PLURAL "tianqingrestores"
extern const k8s_resource TQU_RESTORE_RESOURCE;
/* The TianqingUpgrades a restore reads (its own definition: workflows do
 * not include each other). */
extern const k8s_resource TQU_RESTORE_UPGRADES;
extern const tqu_workflow tqu_restore_workflow;

/* One reconcile's context: the engine's head, then the restore's own. */
typedef struct tqu_restore_job {
    TQU_JOB_HEAD
    cJSON *spec_src;            /* a copy of obj: spec's strings point into it */
    tqu_restore_spec spec;
} tqu_restore_job;

enum { TQU_RESTORE_VALIDATE, TQU_RESTORE_PLAN, TQU_RESTORE_APPLY, TQU_RESTORE_VERIFY, TQU_RESTORE_NSTEPS };

/* One object to put back. */
typedef struct tqu_restore_obj {
    const k8s_resource *res;    /* K8S_DEPLOYMENTS or K8S_SERVICES */
    const char *kind;           /* "Deployment", "Service" (static) */
    char ns[254], name[254];
    char from[PATH_MAX];        /* the kept file it comes from */
    cJSON *saved;               /* the saved manifest (owned) */
    int cdn;                    /* the upgrade's darwin-cdn (targets.cdn) */
} tqu_restore_obj;

/* Everything a restore puts back, its sources checked. */
typedef struct tqu_restore_set {
    cJSON *upgrade;             /* the TianqingUpgrade, as read (owned) */
    char folder[PATH_MAX];      /* its status.backup.folder */
    char dir[PATH_MAX];         /* the restore's own folder, beside it */
    tqu_restore_obj *objs;
    size_t n, cap;
    int script;                 /* update.sh: the original is known */
    char script_orig[PATH_MAX], script_target[PATH_MAX];
    char notes[1024];           /* targets with nothing to restore, and why */
} tqu_restore_set;

/* validate.c: read the upgrade, refuse while a vendor command of it runs,
 * check every source file's sha256 and load the objects: 0, or -1 with o
 * filled (Blocked, Failed, or Error for the API). Release set after. */
int tqu__restore_sources(tqu_restore_job *job, tqu_restore_set *set, tqu_outcome *o);
void tqu__restore_set_release(tqu_restore_set *set);
/* "Deployment default/darwin-cdn" */
void tqu__restore_obj_name(const tqu_restore_obj *ob, char *buf, size_t len);

/* The steps, one file each. */
void tqu__restore_step_validate(tqu_job *job, tqu_outcome *o);   /* validate.c */
void tqu__restore_step_plan(tqu_job *job, tqu_outcome *o);       /* plan.c */
void tqu__restore_step_apply(tqu_job *job, tqu_outcome *o);      /* apply.c */
void tqu__restore_step_verify(tqu_job *job, tqu_outcome *o);     /* verify.c */

#endif
