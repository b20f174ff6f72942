/*
 * backup.h - the BackupDeployments step's engine (design.md section 2,
 * step 3): every Deployment in every namespace, listed in pages of 500 and
 * streamed to two files in a folder, each written atomically (temp file in
 * the same folder, fsync, rename without replacing, fsync of the folder):
 *
 *   deploy_<stamp>.log   the runbook's list, byte for byte the layout of
 *                        `kubectl get deployment -A --no-headers`
 *                        (NAMESPACE NAME READY UP-TO-DATE AVAILABLE AGE);
 *   deploy_<stamp>.json  the full manifests as a v1 List, one item per line,
 *                        each item with apiVersion apps/v1 and kind
 *                        Deployment, metadata.managedFields dropped.
 *
 * Memory does not grow with the number of Deployments: JSON items are
 * written as they arrive, and the table's rows go unpadded to an unlinked
 * scratch file in the same folder; when the list is complete the column
 * widths are known and the scratch file is copied, padded, into the .log.
 * So there is one list request sequence (no second list that could
 * disagree with the first) and constant memory (one page of the list plus
 * a few 64 KiB buffers).
 *
 * Files are created mode 0600 (manifests may hold configuration values).
 */
#ifndef TQU_BACKUP_H
#define TQU_BACKUP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "k8s.h"

#define TQU_BACKUP_STAMP_MAX 64          /* longest stamp accepted, without NUL */

/* What a backup made; also what tqu_backup_verify checks against (the
 * step keeps these fields in status.backup and rebuilds this struct from
 * them on a later run). Plain value: nothing to release. */
typedef struct tqu_backup_result {
    char dir[PATH_MAX];                  /* the folder, as given */
    char log_path[PATH_MAX];             /* dir/deploy_<stamp>.log */
    char json_path[PATH_MAX];            /* dir/deploy_<stamp>.json */
    long count;                          /* Deployments listed */
    char log_sha256[65];                 /* lower-case hex */
    char json_sha256[65];
    uint64_t log_bytes;
    uint64_t json_bytes;
    char resource_version[64];           /* of the list; "" if the server gave none */
    int restarts;                        /* list restarts after an expired continue token */
} tqu_backup_result;

/*
 * Back up every Deployment of the cluster into dir (which must exist and
 * be writable; it is not created). stamp names the files: 1-64 characters
 * of [A-Za-z0-9._-], not starting with '.' (see tqu_backup_stamp).
 *
 * Returns 0 and fills *res, or a k8s_rc with err naming the file and the
 * problem in one line:
 *   K8S_EINVAL  bad argument (stamp, path too long);
 *   K8S_EIO     the folder or a file could not be created, written, synced
 *               or renamed (ENOSPC, EDQUOT, EFBIG, EACCES...), or a final
 *               file of this stamp already exists (never replaced: verify
 *               it with tqu_backup_verify or pick a new stamp);
 *   any other   from the list (the API server's code/reason/message kept).
 * On failure no final file exists and no temp file is left behind, and
 * *res is zeroed. An expired continue token restarts the list once (the
 * files are rewritten from the start; res->restarts counts it).
 */
int tqu_backup_deployments(k8s_client *c, const char *dir, const char *stamp,
                           tqu_backup_result *res, k8s_err *err);

/*
 * Re-read both files of a recorded backup and check their sizes and
 * sha256. Returns 0 when both match, else K8S_EIO with err saying which
 * file is missing, unreadable or different (and the recorded and found
 * checksums). Changes nothing. err may be NULL.
 */
int tqu_backup_verify(const tqu_backup_result *recorded, k8s_err *err);

/*
 * The default stamp for time t in local time, "YYYYmmdd-HHMMSS" (the
 * runbook's deploy_<current time>.log). Returns buf; len >= 16.
 */
char *tqu_backup_stamp(time_t t, char *buf, size_t len);

/*
 * kubectl's AGE column for something created `seconds` ago
 * (k8s.io/apimachinery duration.HumanDuration): 45s, 3m12s, 95m, 3h12m,
 * 20h, 5d4h, 300d, 2y30d, 9y; "0s" for -1 s (clock skew), "<invalid>" below.
 * Returns buf; len >= 16.
 */
char *tqu_backup_age(long long seconds, char *buf, size_t len);

/* ---- kept files: what a workflow saves before it changes something ----
 * Each kept file is recorded in a status object's backup.files[] as
 * {name, path, sha256} (and target: the file it is a copy of, when given),
 * so a later TianqingRestore can refuse a copy that changed since. */

/* Record the file at path (its sha256 read now) under name in
 * status.backup.files[], replacing an entry of that name. 0, or -1 (err). */
int tqu_backup_record_file(cJSON *status, const char *name, const char *path, const char *target,
                           char *err, size_t errlen);

/*
 * Keep data as <dir>/<file> (dir created 0700, the file written atomically
 * with mode), once: an existing copy is the original and is kept as it is;
 * either way it is recorded in status (tqu_backup_record_file). 0, or -1.
 */
int tqu_backup_keep(cJSON *status, const char *dir, const char *file, const void *data, size_t len,
                    mode_t mode, const char *target, char *err, size_t errlen);
/* The same for a JSON object (indented), mode 0600. */
int tqu_backup_keep_json(cJSON *status, const char *dir, const char *file, const cJSON *obj,
                         char *err, size_t errlen);

/* For tests: every write(2) of this module goes through this pointer
 * (default: write), so a test can fail chosen writes (ENOSPC, EDQUOT). */
extern ssize_t (*tqu_backup__write)(int fd, const void *buf, size_t n);

#endif
