/*
 * steps.h - the eight steps' I/O: what each does against the cluster, the
 * deploy machine's files and the vendor's tools (design.md section 2,
 * procedure.md). Run by the engine from the table in steps.c.
 */
#ifndef TQU_STEPS_H
#define TQU_STEPS_H

#include <limits.h>
#include "engine/engine.h"
#include "spec.h"
#include "upgrade.h"

/* Kept while a vendor process started by the controller may be running. */
#define TQU_FINALIZER "upgrade.tianqing.io/vendor-process"

#define TQU_PLURAL "tianqingupgrades"
extern const k8s_resource TQU_RESOURCE;

/* One reconcile's context: the engine's head, then the upgrade's own. */
typedef struct tqu_run {
    TQU_JOB_HEAD
    cJSON *spec_src;           /* a copy of obj as read, kept for the whole
                                  reconcile: spec's strings point into it */
    tqu_spec spec;
    char dir[PATH_MAX];        /* the request's state folder in spec.backupDir */
    char tmpl[PATH_MAX];       /* the template Preflight chose (for the plan) */
} tqu_run;

/* Load the route table (a file, or NULL for the built-in one) once at
 * start; msg gets one line on failure. */
int tqu_steps_init(const char *routes_file, char *msg, size_t len);
void tqu_steps_cleanup(void);

/* run->dir from status.backup.folder when the request has one: 0, else -1
 * (run->dir untouched). Needs no spec. */
int tqu_steps_kept_dir(tqu_run *run);
/* Fill run->dir: the recorded folder, else <backupDir>/<namespace>.<name>.<uid>. */
void tqu_steps_state_dir(tqu_run *run);
/* 1 while the vendor upgrade started for this request is still running. */
int tqu_steps_vendor_running(tqu_run *run);
/* After success: put the CDN tuning back if the Deployment lost it. */
void tqu_steps_keep_cdn_tuned(tqu_run *run, tqu_result *res);

#endif
