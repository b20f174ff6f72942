/*
 * backup.c - step 3, BackupDeployments: the list and manifests of every
 * Deployment, recorded once per request in its state folder.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "host/backup.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"

/* ------------------------------------------------------- BackupDeployments */

/* The backup's record, written after it completes, so a crash before the
 * status write does not make the next run take a second backup. */
static int backup_record_path(const tqu_run *run, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/backup.json", run->dir) >= (int)len ? -1 : 0;
}

static int load_backup_record(const tqu_run *run, tqu_backup_result *r)
{
    char path[PATH_MAX + 32], err[256];
    k8s_buf b;
    cJSON *j = NULL;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    if (backup_record_path(run, path, sizeof(path)))
        return -1;
    k8s_buf_init(&b, 64 * 1024);
    if (tqu_read_file(path, 64 * 1024, &b, err, sizeof(err)) == 0 &&
        k8s_json_parse(b.data, b.len, &j, NULL) == 0) {
        const char *d = k8s_json_str(j, "folder", NULL), *lp = k8s_json_str(j, "listFile", NULL),
                   *jp = k8s_json_str(j, "manifestsFile", NULL), *ls = k8s_json_str(j, "listSha256", NULL),
                   *js = k8s_json_str(j, "manifestsSha256", NULL);
        if (d && lp && jp && ls && js && strlen(ls) == 64 && strlen(js) == 64) {
            snprintf(r->dir, sizeof(r->dir), "%s", d);
            snprintf(r->log_path, sizeof(r->log_path), "%s", lp);
            snprintf(r->json_path, sizeof(r->json_path), "%s", jp);
            memcpy(r->log_sha256, ls, 65);
            memcpy(r->json_sha256, js, 65);
            r->count = (long)k8s_json_int(j, 0, "deploymentCount", NULL);
            /* tqu_backup_verify compares sizes before checksums, and the
             * record keeps no sizes: left at 0, every recorded backup
             * "no longer matched" and a retry after a crash between this
             * record and the status write took a second backup. The
             * sha256 decides; the sizes are the files' own. */
            struct stat fst;
            if (stat(r->log_path, &fst) == 0)
                r->log_bytes = (uint64_t)fst.st_size;
            if (stat(r->json_path, &fst) == 0)
                r->json_bytes = (uint64_t)fst.st_size;
            rc = 0;
        }
    }
    cJSON_Delete(j);
    k8s_buf_release(&b);
    return rc;
}

static cJSON *backup_json(const tqu_backup_result *r)
{
    char now[40];
    cJSON *b = cJSON_CreateObject();
    k8s_time_now(now, sizeof(now));
    if (!b || !cJSON_AddStringToObject(b, "folder", r->dir) ||
        !cJSON_AddStringToObject(b, "listFile", r->log_path) ||
        !cJSON_AddStringToObject(b, "listSha256", r->log_sha256) ||
        !cJSON_AddStringToObject(b, "manifestsFile", r->json_path) ||
        !cJSON_AddStringToObject(b, "manifestsSha256", r->json_sha256) ||
        !cJSON_AddNumberToObject(b, "deploymentCount", (double)r->count) ||
        !cJSON_AddStringToObject(b, "completedAt", now)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
}

static void set_status_backup(tqu_run *run, cJSON *b)
{
    k8s_json_put(run->status, "backup", b);
}

/*
 * What a crash (kill -9, power loss) left of an earlier, unrecorded attempt
 * in the request's folder. tqu_backup_deployments renames deploy_<stamp>.json
 * and then deploy_<stamp>.log into place, and only after both does this step
 * write backup.json: a crash in between leaves final files that no record
 * names (and a crash while writing leaves temp files .deploy_<stamp>.*.XXXXXX).
 * The retry takes a backup with a new stamp, so without this the folder would
 * hold two backups, one of them unrecorded and possibly half made. Nothing
 * relies on such files (status.backup is written after the record), and the
 * cluster has not been changed yet (SabreCleanup comes later), so they are
 * removed. Called only when there is no backup.json at all: a recorded
 * backup that fails its checksums is kept for a person to look at.
 */
static void remove_unrecorded_backup_files(const tqu_run *run)
{
    DIR *d = opendir(run->dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        int final = strncmp(n, "deploy_", 7) == 0 &&
                    ((l > 12 && strcmp(n + l - 5, ".json") == 0) || (l > 11 && strcmp(n + l - 4, ".log") == 0));
        if (!final && strncmp(n, ".deploy_", 8) != 0)
            continue;
        if (unlinkat(dirfd(d), n, 0) == 0)
            tqu_log(TQU_WARN, "removed a file of an interrupted, unrecorded backup", "key", run->key,
                    "folder", run->dir, "file", n, NULL);
    }
    closedir(d);
}

void tqu__step_backup(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    tqu_backup_result r;
    k8s_err err;
    char ebuf[1200], ferr[512], stamp[TQU_BACKUP_STAMP_MAX + 1], path[PATH_MAX + 32];
    cJSON *b;

    /* the folder written to is confined (re-checked: a Blocked backup is
     * retried without Validate) */
    if (tqu__confine_spec(run, o))
        return;
    /* a complete backup of this request is reused, never taken twice */
    if (load_backup_record(run, &r) == 0) {
        if (tqu_backup_verify(&r, &err) == 0) {
            const cJSON *kept = k8s_json_get(run->status, "backup", NULL);
            if (!kept || !k8s_json_str(kept, "manifestsSha256", NULL)) {
                b = backup_json(&r);
                if (b)
                    set_status_backup(run, b);
            }
            tqu_out(o, TQU_OUT_DONE, "BackupComplete", "%ld Deployments saved in %s (checksums verified)", r.count,
                r.dir);
            return;
        }
        tqu_log(TQU_WARN, "the earlier backup no longer matches its checksums; taking a new one", "key", run->key,
                "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
    } else {
        struct stat rst;
        if (backup_record_path(run, path, sizeof(path)) == 0 && lstat(path, &rst) != 0 && errno == ENOENT)
            remove_unrecorded_backup_files(run);
    }
    if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot create the backup folder: %s (spec.backupDir)", ferr);
        return;
    }
    tqu_backup_stamp(time(NULL), stamp, sizeof(stamp));
    if (tqu_backup_deployments(run->ctl->client, run->dir, stamp, &r, &err)) {
        if (err.rc == K8S_EIO || err.rc == K8S_ETOOBIG)
            tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "%s: free space in spec.backupDir or point it elsewhere",
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "backup of the Deployments: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    b = backup_json(&r);
    char *text = b ? cJSON_Print(b) : NULL;
    if (!text || backup_record_path(run, path, sizeof(path)) ||
        tqu_write_file_atomic(path, text, strlen(text), 0600, ferr, sizeof(ferr))) {
        free(text);
        cJSON_Delete(b);
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot record the backup: %s", text ? ferr : "out of memory");
        return;
    }
    free(text);
    set_status_backup(run, b);
    tqu_log(TQU_INFO, "backed up the Deployments", "key", run->key, "folder", r.dir, NULL);
    tqu_out(o, TQU_OUT_DONE, "BackupComplete", "%ld Deployments saved: %s and %s", r.count, r.log_path, r.json_path);
}
