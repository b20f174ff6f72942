/*
 * ap_int.h - what the access point upgrade's step files share (tqu__ap_
 * prefix): the job, the package layout, and small helpers in common.c.
 *
 * The package layout (design.md section 10), new = <packages.root>/<toVersion>:
 *   <new>/tq_paas/skylar/skylar_linuxserver_client/plan_client/plan_client
 *   <new>/tq_paas/skylar/skylar_linuxserver_client/darwin-client/darwin-client
 *   <new>/tq_saas/template.yaml.enc, skylar_linux_console_images.tar
 * The request's own folder (state, logs, kept originals) is
 * <backupDir>/<namespace>.<name>.<uid>.ap.
 */
#ifndef TQU_AP_INT_H
#define TQU_AP_INT_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "host/child.h"
#include "host/fsutil.h"
#include "engine/engine.h"
#include "accesspoint.h"
#include "spec.h"

#define TQU_AP_PLURAL "tianqingaccesspointupgrades"
#define TQU_AP_FINALIZER "upgrade.tianqing.io/accesspoint-installer"
#define AP_CLIENT_DIR "tq_paas/skylar/skylar_linuxserver_client"
#define AP_PLAN_CLIENT AP_CLIENT_DIR "/plan_client"
#define AP_DARWIN_CLIENT AP_CLIENT_DIR "/darwin-client/darwin-client"
#define AP_IMAGES "skylar_linux_console_images.tar"
#define AP_DARWINCDN "proxy-pp:8083"
#define AP_PROXY_PORT 30083
/* where the images archive goes on another machine (home-relative) */
#define AP_REMOTE_DIR "tianqing-ap-upgrade"

extern const k8s_resource TQU_AP_RESOURCE;

typedef struct tqu_ap_run {
    TQU_JOB_HEAD
    cJSON *spec_src;            /* a copy of obj: spec's strings point into it */
    tqu_ap_spec spec;
    char dir[PATH_MAX];         /* the request's own folder */
} tqu_ap_run;

enum {
    AP_VALIDATE, AP_LEGACY, AP_EXTRACT, AP_GATHER, AP_DECRYPT, AP_CONVERT, AP_STAGE, AP_IMAGES_STEP,
    AP_PROXY, AP_CDN, AP_INSTALL, AP_VERIFY, AP_NSTEPS
};

/* The steps, one file each. */
void tqu__ap_step_validate(tqu_job *job, tqu_outcome *o);   /* validate.c */
void tqu__ap_step_legacy(tqu_job *job, tqu_outcome *o);     /* legacy.c */
void tqu__ap_step_extract(tqu_job *job, tqu_outcome *o);    /* extract.c */
void tqu__ap_step_gather(tqu_job *job, tqu_outcome *o);     /* gather.c */
void tqu__ap_step_decrypt(tqu_job *job, tqu_outcome *o);    /* decrypt.c */
void tqu__ap_step_convert(tqu_job *job, tqu_outcome *o);    /* convert.c */
void tqu__ap_step_stage(tqu_job *job, tqu_outcome *o);      /* stage.c */
void tqu__ap_step_images(tqu_job *job, tqu_outcome *o);     /* images.c */
void tqu__ap_step_proxy(tqu_job *job, tqu_outcome *o);      /* proxysvc.c */
void tqu__ap_step_cdn(tqu_job *job, tqu_outcome *o);        /* cdn.c */
void tqu__ap_step_install(tqu_job *job, tqu_outcome *o);    /* install.c */
void tqu__ap_step_verify(tqu_job *job, tqu_outcome *o);     /* verify.c */

/* Their entries of status.plan (plan.c). */
int tqu__ap_plan_extract(tqu_job *job, cJSON *plan);
int tqu__ap_plan_images(tqu_job *job, cJSON *plan);
int tqu__ap_plan_proxy(tqu_job *job, cJSON *plan);
int tqu__ap_plan_cdn(tqu_job *job, cJSON *plan);
int tqu__ap_plan_install(tqu_job *job, cJSON *plan);
int tqu__ap_plan_legacy(tqu_job *job, cJSON *plan);

/* extract.c: the md5 a vendor file name ends with, before its extensions
 * ("node-10.7.0.2800-<32 hex>.tar.gz"), lower-cased: 0, or -1 when none. */
int tqu__ap_md5_from_name(const char *path, char out[33]);

/* install.c: 1 while the installer started for this request runs. */
int tqu__ap_installer_running(tqu_ap_run *run);
/* install.c: put status.launch {outcome: Unknown} and write the status: 0,
 * or -1 with status.launch as it was before (never a half-made record). */
int tqu__ap_record_launch(tqu_ap_run *run, const char *sdir);
/* install.c: 1 when template t (status.template) is not directly in
 * <packages.root>/<toVersion>/tq_saas (a previous spec's), else 0. */
int tqu__ap_template_stale(const tqu_ap_run *run, const char *t);

/* verify.c: when the Verify step's wait began (its startedAt); missing
 * or not a time, now, recorded in its status entry. */
time_t tqu__ap_verify_start(tqu_ap_run *run);

/* ---- common.c ---- */
void tqu__ap_new_dir(const tqu_ap_run *run, char *buf, size_t len);
void tqu__ap_plan_client(const tqu_ap_run *run, char *buf, size_t len);   /* the new one */
void tqu__ap_new_saas(const tqu_ap_run *run, char *buf, size_t len);      /* <new>/tq_saas */
void tqu__ap_images(const tqu_ap_run *run, char *buf, size_t len);
/* Folders are confined (design.md section 8): 0, or -1 with o Failed
 * PathNotAllowed naming field. */
int tqu__ap_confine(tqu_ap_run *run, const char *field, const char *path, tqu_outcome *o);
/* spec.legacy.installDir, removed with rm -rf: strictly below a root
 * (/data01 too with the default root only), never holding the request's
 * folder or spec.backupDir: 0, or -1 with o Failed PathNotAllowed. */
int tqu__ap_confine_legacy(tqu_ap_run *run, tqu_outcome *o);
/* Every path the spec names (the legacy path: only its own): 0 or -1. */
int tqu__ap_confine_spec(tqu_ap_run *run, tqu_outcome *o);
/* Steps that change the access point run only inside spec.window. */
int tqu__ap_window_gate(tqu_ap_run *run, tqu_outcome *o, const char *what);
/* Copy src to dst atomically with mode (dst's folder must exist): 0, or a
 * k8s_rc with err. */
int tqu__ap_copy_file(const char *src, const char *dst, mode_t mode, char *err, size_t errlen);
/* MD5 of a file as 32 lower-case hex digits: 0, or a k8s_rc with err. */
int tqu__ap_md5_file(const char *path, char hex[33], char *err, size_t errlen);
/* The installed darwin_template_<id>.yaml (spec.deployId, else the only
 * one in saasDir, then planClientDir): its path and file name. 0, or -1
 * with o Blocked (TemplateNotFound, TemplateAmbiguous). */
int tqu__ap_deploy_template(tqu_ap_run *run, char *path, size_t plen, char *name, size_t nlen,
                            tqu_outcome *o);
/* Run a short vendor command to completion (with --exec-prefix; output
 * in <dir>/<log>): 0 when it ran (res says how it ended), or -1 with o
 * filled (Blocked ToolNotFound, Failed). */
int tqu__ap_run(tqu_ap_run *run, char *const *argv, const char *cwd, double timeout_s, const char *log,
                tqu_child_result *res, tqu_outcome *o);
/* Whether the n bytes at w are a container id ([0-9a-f]{12,64}): 1 or 0. */
int tqu__ap_container_id(const char *w, size_t n);
/* Right before a vendor command (what) that changes the access point: 0
 * while this process may act and the status write before it (write_rc,
 * 0 when there was none) succeeded; else -1 with o Error NotLeader or
 * ApiError (retried). */
int tqu__ap_before_vendor(tqu_ap_run *run, int write_rc, const char *what, tqu_outcome *o);
/* Record a kept original in status.files[] (path, kept), once. */
void tqu__ap_keep_record(tqu_ap_run *run, const char *path, const char *kept);

#endif
