/*
 * steps_int.h - internals shared by the upgrade's step files (tqu__ prefix).
 */
#ifndef TQU_STEPS_INT_H
#define TQU_STEPS_INT_H

#include <openssl/crypto.h>
#include "k8s.h"
#include "host/child.h"
#include "host/fsutil.h"
#include "steps.h"

#define PLAN_CLIENT "tq_paas/skylar/skylar_linuxserver_client/plan_client"
#define EXTRACT_TIMEOUT_MS (2L * 3600 * 1000)
#define SABRE_NS "default-sabre-server"
#define SABRE_DEPLOY "sabre-server"
#define SABRE_SVC "sabre-server-service"
#define CDN_VOLUME "darwin-cdn-data"
#define CDN_MOUNT "/home/s/darwin-cdn/data/"
#define CDN_CONTAINER "darwin-cdn"
#define HOST_KEY "kubernetes.io/hostname"
/* update.sh's argv slot of the SSH password (tqu__upgrade_argv) */
#define PASSWORD_ARG 11

/* The eight steps, one file each, in order. */
void tqu__step_validate(tqu_job *job, tqu_outcome *o);   /* validate.c */
void tqu__step_preflight(tqu_job *job, tqu_outcome *o);  /* preflight.c */
void tqu__step_backup(tqu_job *job, tqu_outcome *o);     /* backup.c */
void tqu__step_paas(tqu_job *job, tqu_outcome *o);       /* paas_check.c */
void tqu__step_sabre(tqu_job *job, tqu_outcome *o);      /* sabre.c */
void tqu__step_upgrade(tqu_job *job, tqu_outcome *o);    /* upgrade.c */
void tqu__step_cdn(tqu_job *job, tqu_outcome *o);        /* cdn.c */
void tqu__step_verify(tqu_job *job, tqu_outcome *o);     /* verify.c */

/* Each step's entries of status.plan (plan.c), for the table. */
int tqu__plan_preflight(tqu_job *job, cJSON *plan);
int tqu__plan_backup(tqu_job *job, cJSON *plan);
int tqu__plan_paas(tqu_job *job, cJSON *plan);
int tqu__plan_sabre(tqu_job *job, cJSON *plan);
int tqu__plan_upgrade(tqu_job *job, cJSON *plan);
int tqu__plan_cdn(tqu_job *job, cJSON *plan);
int tqu__plan_verify(tqu_job *job, cJSON *plan);

/* paths.c: the package folders (old: fromVersion, new: toVersion), update.sh */
void tqu__old_dir(const tqu_run *run, char *buf, size_t len);
void tqu__new_dir(const tqu_run *run, char *buf, size_t len);
void tqu__update_sh(const tqu_run *run, char *buf, size_t len);
int tqu__is_exec(const char *p);
/* The darwin template to use (spec, else found in the new package): 0, or
 * -1 with o filled. Called right before a vendor command starts, it also
 * checks again every path of the spec and the template itself against
 * the allowed roots (tqu__confine_spec; design.md section 8). */
int tqu__template_path(tqu_run *run, char *buf, size_t len, tqu_outcome *o);
/* Folders are confined (design.md section 8; --allowed-root): 0 when path,
 * named field in messages, resolves inside an allowed root (strict: a
 * hostPath mounted into pods, strictly below one); else -1 with o Failed,
 * reason PathNotAllowed: `spec.packages.root "/etc" is outside the allowed
 * roots (/qaxdata)`. */
int tqu__confine(tqu_run *run, const char *field, const char *path, int strict, tqu_outcome *o);
/* Every path the spec names (and the request's state folder): 0, or -1
 * with o Failed PathNotAllowed for the first one refused. Reads nothing
 * but the paths' folders (realpath). */
int tqu__confine_spec(tqu_run *run, tqu_outcome *o);
/* argv of update.sh, with the password slot given (*** for display). */
void tqu__upgrade_argv(const tqu_run *run, const char *tmpl, const char *password, char *o_dir,
                       size_t olen, char *n_dir, size_t nlen, char *port, size_t plen,
                       const char *argv[20]);
/* A vendor command line as run (with --exec-prefix), secret args as ***. */
void tqu__format_cmd(const tqu_run *run, char *const *argv, unsigned long long secret, char *buf,
                     size_t len);
/* Steps that change the cluster run only inside spec.window: 0 inside it
 * (or without one); else o is Waiting (before) or Failed (after), -1. */
int tqu__window_gate(tqu_run *run, tqu_outcome *o, const char *what);
/* Save obj as <dir>/<file> (once: an existing copy is the original), and
 * record it in status.backup.files[]. */
int tqu__save_manifest(tqu_run *run, const cJSON *obj, const char *file, char *err, size_t errlen);

/* attempt.c: the newest attempt folder <dir>/upgrade-g<N> into buf, *gen = N
 * (0: none, or no folder at all). -1 with errno when the folder cannot be
 * listed (opendir or readdir failed): never read that as "no attempt". */
int tqu__latest_attempt(const char *dir, char *buf, size_t len, long long *gen);
/* attempt.c: status.upgrade from a poll of the attempt in state_dir */
void tqu__upgrade_status_set(tqu_run *run, const tqu_detached_status *st, const char *state_dir);
/* attempt.c: status.launch {generation, startedAt, folder, outcome}; -1 without memory */
int tqu__record_launch(tqu_run *run, const char *folder, const char *outcome);
/* attempt.c: status.launch.outcome, once known */
void tqu__record_outcome(tqu_run *run, const char *outcome);
/* attempt.c: an ended (or lost) attempt: the finalizer released, the outcome
 * recorded and reported (redact masks the log's last lines; NULL: not shown) */
void tqu__upgrade_finished(tqu_run *run, const tqu_detached_status *st, const char *const *redact,
                           tqu_outcome *o);

/* In place of vendor output when the password to mask it with is unknown. */
#define TQU__NOT_MASKABLE "(not shown: the SSH Secret could not be read to mask it)"

/* extract.c: the new package from spec.packages.archive into its folder
 * (a note of what was done in note); 0, or -1 with o set */
int tqu__extract_archive(tqu_run *run, tqu_outcome *o, char *note, size_t nlen);
/* extract.c: an extraction of ours began and never finished */
int tqu__extraction_interrupted(const tqu_run *run);

/* secret.c */
int tqu__check_secret(tqu_run *run, tqu_outcome *o);
int tqu__read_password(tqu_run *run, char *buf, size_t len, tqu_outcome *o);
/* secret.c: the password of a running update.sh kept for uid (a locked,
 * undumped page; best effort), looked up, and wiped when it has ended */
void tqu__mask_keep(const char *uid, const char *pw);
const char *tqu__mask_get(const char *uid);
void tqu__mask_drop(const char *uid);

/* preflight.c */
int tqu__check_node_clocks(tqu_run *run, tqu_outcome *o, char *note, size_t nlen);

/* cdn.c: the strategic merge patch for the cdn Deployment, or NULL when
 * tuned (or when it cannot be tuned: *why says why). Caller frees. */
cJSON *tqu__cdn_patch(const tqu_spec *spec, const cJSON *d, const char **why, char *what, size_t wlen);

#endif
