/*
 * tuning_int.h - internals shared by TianqingTuning's step files (tqu_tt_
 * prefix): the reconcile's context, the settings (one per status.items[]
 * entry) and what the steps read of etcd and of the Deployments.
 */
#ifndef TQU_TUNING_INT_H
#define TQU_TUNING_INT_H

#include <limits.h>
#include "etcd.h"
#include "engine/engine.h"
#include "remedies.h"
#include "spec.h"
#include "tuning.h"

#define TQU_TT_PLURAL "tianqingtunings"
#define TQU_TT_FINALIZER "upgrade.tianqing.io/restore-originals"
#define TQU_TT_ABSENT "absent"
#define TQU_TT_MAX_SETTINGS (TQU_TT_MAX_SERVICES * 2 + 8)
#define TQU_TT_MAX_DEPLOYS (TQU_TT_MAX_SERVICES + 2)

extern const k8s_resource TQU_TT_RESOURCE;
extern tqu_remedies tqu_tt_remedies;

enum { TQU_TT_ETCD = 0, TQU_TT_ARG };
enum { TQU_TT_STEP_VALIDATE = 0, TQU_TT_STEP_BACKUP, TQU_TT_STEP_APPLY, TQU_TT_STEP_VERIFY, TQU_TT_STEP_COUNT };

typedef struct tqu_tt_setting {
    int kind;                 /* TQU_TT_ETCD or TQU_TT_ARG */
    char name[160];           /* status.items[].name */
    char target[600];         /* "etcd:<key>" or "<ns>/<deploy>/<container>:-<arg>" */
    char desired[256];        /* the value (etcd) or the whole argument (-x=y) */
    char key[520];            /* etcd key */
    int dep;                  /* index into run->deps (ARG, and a service's key) */
    char arg[64];             /* ARG: the flag name without dashes (control.type) */
    int svc;                  /* index of the service, or -1 */
    /* what resolve found */
    int present;
    char observed[1024];      /* value, or the whole argument; "" when absent */
    int corrected;            /* set by the last tqu_tt_correct */
} tqu_tt_setting;

typedef struct tqu_tt_deploy {
    const char *ns, *name, *want_container;   /* from the spec */
    cJSON *obj;               /* as read */
    int cidx;                 /* container index */
    char container[64];
    int changes;              /* an ARG of it needs changing */
} tqu_tt_deploy;

typedef struct tqu_tt_run {
    TQU_JOB_HEAD
    cJSON *spec_src;
    tqu_tt_spec spec;
    char dir[PATH_MAX];
    tqu_tt_setting set[TQU_TT_MAX_SETTINGS];
    int nset;
    tqu_tt_deploy deps[TQU_TT_MAX_DEPLOYS];
    int ndeps;
    etcd_client *etcd;
    int resolved;
} tqu_tt_run;

/* The four steps, one file each. */
void tqu_tt_step_validate(tqu_job *job, tqu_outcome *o);   /* validate.c */
void tqu_tt_step_backup(tqu_job *job, tqu_outcome *o);     /* backup.c */
void tqu_tt_step_apply(tqu_job *job, tqu_outcome *o);      /* apply.c */
void tqu_tt_step_verify(tqu_job *job, tqu_outcome *o);     /* verify.c */
int tqu_tt_plan_apply(tqu_job *job, cJSON *plan);          /* apply.c */

/* resolve.c: read every Deployment and etcd key the spec names and fill
 * run->set (observed values): 0, or -1 with o Blocked/Error. Once per
 * reconcile (run->resolved). */
int tqu_tt_resolve(tqu_tt_run *run, tqu_outcome *o);
/* An etcd client for the spec (TLS from the Secret): 0, or -1 with o. */
int tqu_tt_etcd_open(tqu_tt_run *run, tqu_outcome *o, etcd_client **out);
/* Whether a TianqingUpgrade's Upgrade step is Running (who names it): 1,
 * 0, or -1 on an API error. */
int tqu_tt_upgrade_running(tqu_tt_run *run, char *who, size_t len);
/* status.items[] from run->set, with originals from the status (or
 * originals given) and each state. */
int tqu_tt_items_update(tqu_tt_run *run, const cJSON *originals);
/* The recorded original of a setting (status.items[]), or NULL. */
const char *tqu_tt_original(const tqu_tt_run *run, const char *target);
/* Correct every setting that differs (etcd puts; Deployment patches when
 * deploys != 0): count changed, or -1 with o. what lists them. */
int tqu_tt_correct(tqu_tt_run *run, int deploys, tqu_outcome *o, char *what, size_t wlen);
/* apply.c: watch what the tuning keeps (its etcd keys, its Deployments) and
 * correct it: Deployment arguments only inside spec.window (*in_window; *w
 * the window's outcome when outside). Returns as tqu_tt_correct. */
int tqu_tt_keep(tqu_tt_run *run, tqu_outcome *o, tqu_outcome *w, int *in_window, char *what, size_t wlen);
/* apply.c: the settings the last tqu_tt_keep corrected were drift (changed
 * outside the controller, not a first apply): counted in
 * tqu_tuning_drift_corrections_total{namespace,name,item}. */
extern const tqu_counter_family tqu_tt_drift_metric;
void tqu_tt_count_drift(const tqu_tt_run *run);
/* Put every original back (deletion): 0 done, -1 with o. */
int tqu_tt_restore(tqu_tt_run *run, tqu_outcome *o, char *what, size_t wlen);
/* 0 inside spec.window (or none); else o Waiting, -1. */
int tqu_tt_window_gate(tqu_tt_run *run, tqu_outcome *o);

/* deploy.c: pure helpers over Deployments (unit-tested). */
/* The container: named want, else the only one, else the one named like
 * the Deployment; its index, or -1. */
int tqu_tt_container(const cJSON *d, const char *want);
/* config.ns in the Deployment (the container's args -config.ns=x,
 * --config.ns x; env values; annotations; the label config.ns): how many
 * distinct values (first into out). */
int tqu_tt_find_config_ns(const cJSON *d, int cidx, char *out, size_t len);
/* Index of the argument -name[=v] / --name[=v] in args, or -1; the whole
 * argument into buf. */
int tqu_tt_arg_find(const cJSON *args, const char *name, char *buf, size_t len);
/* A copy of args with -name set to token (replaced in place, or added at
 * the end), or with it removed when token is NULL. NULL on ENOMEM. */
cJSON *tqu_tt_args_set(const cJSON *args, const char *name, const char *token);
/* The JSON patch: a test of the current args (or of the container's name
 * when it has none) and the new args. NULL on ENOMEM. */
cJSON *tqu_tt_args_patch(int cidx, const char *cname, const cJSON *cur, const cJSON *want);

/* watch.c: the etcd watch of a resource's keys (a thread each), whose
 * events re-queue it. */
int tqu_tt_watch_ensure(tqu_tt_run *run);
void tqu_tt_watch_stop(const char *key);
void tqu_tt_watch_stop_all(void);

#endif
