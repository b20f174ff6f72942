/*
 * steps_int.h - internals shared by the steps_*.c files (tqu__ prefix).
 */
#ifndef TQU_STEPS_INT_H
#define TQU_STEPS_INT_H

#include <openssl/crypto.h>
#include "k8s.h"
#include "steps.h"

/* steps_host.c: the deploy machine's steps */
void tqu__step_preflight(tqu_run *run, tqu_outcome *o);
void tqu__step_paas(tqu_run *run, tqu_outcome *o);
void tqu__step_upgrade(tqu_run *run, tqu_outcome *o);
/* Steps that change the cluster run only inside spec.window: 0 inside it
 * (or without one); else o is Waiting (before) or Failed (after), -1. */
int tqu__window_gate(tqu_run *run, tqu_outcome *o, const char *what);

/* steps_cluster.c */
void tqu__step_sabre(tqu_run *run, tqu_outcome *o);
void tqu__step_cdn(tqu_run *run, tqu_outcome *o);
void tqu__step_verify(tqu_run *run, tqu_outcome *o);
int tqu__check_secret(tqu_run *run, tqu_outcome *o);
int tqu__read_password(tqu_run *run, char *buf, size_t len, tqu_outcome *o);
int tqu__check_node_clocks(tqu_run *run, tqu_outcome *o, char *note, size_t nlen);
int tqu__save_manifest(tqu_run *run, const cJSON *obj, const char *file, char *err, size_t errlen);
/* The strategic merge patch for the cdn Deployment, or NULL when tuned
 * (or when it cannot be tuned: *why says why). Caller frees. */
cJSON *tqu__cdn_patch(const tqu_spec *spec, const cJSON *d, const char **why, char *what, size_t wlen);

#endif
