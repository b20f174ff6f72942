/*
 * steps.h - the eight steps' I/O: what each does against the cluster, the
 * deploy machine's files and the vendor's tools (design.md section 2,
 * procedure.md). Called by reconcile.c with the run's context.
 */
#ifndef TQU_STEPS_H
#define TQU_STEPS_H

#include <limits.h>
#include "runtime/runtime.h"
#include "spec.h"
#include "upgrade.h"

/* Kept while a vendor process started by the controller may be running. */
#define TQU_FINALIZER "upgrade.tianqing.io/vendor-process"

/* One reconcile's context. */
typedef struct tqu_run {
    tqu_controller *ctl;
    const char *key, *ns, *name, *uid;
    long long generation;
    cJSON *obj;                /* the resource as last read or written (replaced by
                                  every status write) */
    cJSON *spec_src;           /* a copy of obj as read, kept for the whole
                                  reconcile: spec's strings point into it */
    cJSON *status;             /* the status being built */
    tqu_spec spec;
    int step_was_pending;      /* the step being run was Pending before this
                                  reconcile started it (a fresh start, or a
                                  retry after a new generation reset it) */
    char dir[PATH_MAX];        /* the request's state folder in spec.backupDir */
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
/* One line saying what a step does, for status and Events. */
const char *tqu_steps_describe(int id);
/* Run step id; fills *o. */
void tqu_steps_run(tqu_run *run, int id, tqu_outcome *o);
/* 1 while the vendor upgrade started for this request is still running. */
int tqu_steps_vendor_running(tqu_run *run);
/* After success: put the CDN tuning back if the Deployment lost it. */
void tqu_steps_keep_cdn_tuned(tqu_run *run, tqu_result *res);

/* An Event about the run's resource; best effort. */
void tqu_event(tqu_run *run, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
