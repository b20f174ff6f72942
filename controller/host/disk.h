/*
 * disk.h - the disk rules of the Preflight step (procedure.md section 3.1):
 *  (a) the free space where update.sh writes its data backup
 *      (spec.dataBackup.dir, when the data backup is enabled) must hold the
 *      MongoDB data (the size of spec.disk.mongoDataDir);
 *  (b) on spec.disk.dataRoot (also Docker's data root):
 *      (used + reserveGiB GiB) / total <= maxUsagePercent / 100,
 *      or Docker's image garbage collection may fire during the upgrade.
 * plus the two measurements they need: a file system's usage (statvfs) and
 * the size of a folder tree (a real walk). Both can be replaced through
 * tqu_disk_ops, so tests can simulate a full disk without filling one.
 *
 * Sizes are bytes; GiB = 2^30 bytes. What the numbers mean:
 *  - total = f_blocks x f_frsize; avail = f_bavail x f_frsize (what an
 *    unprivileged writer may still use); free = f_bfree x f_frsize
 *    (includes the root-reserved blocks);
 *  - used = total - avail: the figure the kubelet's image garbage
 *    collector works from (capacity - available), so the root-reserved
 *    blocks count as used. It is df's Used plus the reserved blocks, so
 *    rule (b) is slightly stricter than reading df on ext4 (XFS has no
 *    reserve: the same);
 *  - rule (a) compares avail with the larger of the tree's apparent size
 *    (sum of st_size: what a copy writes) and its allocated size (sum of
 *    st_blocks x 512: what du shows; bigger for small files).
 * The walk does not follow symbolic links (except the top folder itself),
 * does not cross into other file systems, counts a hard-linked file once,
 * ignores entries that vanish during the walk (a live MongoDB rotates
 * files), and counts other unreadable entries without failing: the size is
 * then a lower bound and the check says so in its message.
 */
#ifndef TQU_DISK_H
#define TQU_DISK_H

#include <stddef.h>
#include <stdint.h>

#define TQU_GIB ((uint64_t)1 << 30)

typedef struct tqu_disk_space {
    uint64_t total, used, free, avail;   /* bytes, see above */
    int sys_errno;                        /* on failure: the errno (ENOENT: missing) */
} tqu_disk_space;

typedef struct tqu_tree_size {
    uint64_t apparent;       /* sum of st_size */
    uint64_t allocated;      /* sum of st_blocks * 512 */
    uint64_t files, dirs;    /* entries counted (files: anything not a folder) */
    uint64_t errors;         /* entries that could not be read (not counted) */
    char first_error[256];   /* "path: strerror" of the first, or "" */
    int sys_errno;           /* on failure of the top folder: errno (ENOENT: missing) */
} tqu_tree_size;

/*
 * statvfs(path). Returns 0 or K8S_EIO (err: "path: statvfs: ...",
 * out->sys_errno set) / K8S_EINVAL (NULL arguments).
 */
int tqu_disk_usage(const char *path, tqu_disk_space *out, char *err, size_t errlen);

/*
 * Walk the tree under path (see above). Returns 0 (errors below path are
 * counted in out, not fatal), or K8S_EIO when path itself cannot be read
 * (out->sys_errno: ENOENT when missing), K8S_ENOMEM, K8S_EINVAL.
 */
int tqu_dir_size(const char *path, tqu_tree_size *out, char *err, size_t errlen);

/* The measurements, replaceable for tests. NULL members use the real ones.
 * An injected function reports a missing path with sys_errno = ENOENT and
 * a non-zero return. */
typedef struct tqu_disk_ops {
    int (*usage)(void *ud, const char *path, tqu_disk_space *out, char *err, size_t errlen);
    int (*dir_size)(void *ud, const char *path, tqu_tree_size *out, char *err, size_t errlen);
    void *ud;
} tqu_disk_ops;

typedef struct tqu_disk_params {
    const char *data_root;            /* spec.disk.dataRoot: /qaxdata */
    const char *mongo_data_dir;       /* spec.disk.mongoDataDir */
    int data_backup_enabled;          /* spec.dataBackup.enabled */
    const char *data_backup_dir;      /* spec.dataBackup.dir: /qaxdata */
    uint64_t reserve_gib;             /* spec.disk.reserveGiB: 70 */
    unsigned max_usage_percent;       /* spec.disk.maxUsagePercent: 80 (1..100) */
} tqu_disk_params;

typedef enum tqu_disk_reason {
    TQU_DISK_OK = 0,                  /* "DiskSpaceOK" */
    TQU_DISK_PATH_MISSING,            /* "PathMissing": dataRoot or mongoDataDir does not exist */
    TQU_DISK_INSUFFICIENT_BACKUP_SPACE, /* "InsufficientBackupSpace": rule (a) */
    TQU_DISK_USAGE_TOO_HIGH,          /* "DiskUsageTooHigh": rule (b) */
    TQU_DISK_CHECK_ERROR,             /* "DiskCheckError": a measurement failed otherwise,
                                         or the parameters are unusable */
} tqu_disk_reason;

typedef struct tqu_disk_verdict {
    tqu_disk_reason reason;           /* the first failure, or TQU_DISK_OK */
    const char *code;                 /* CamelCase of reason (static) */
    int backup_checked;               /* rule (a) was evaluated (backup enabled, sizes known) */
    int backup_ok;                    /* rule (a) passed or was skipped */
    int usage_checked;                /* rule (b) was evaluated */
    int usage_ok;                     /* rule (b) passed */
    tqu_disk_space root;              /* dataRoot */
    tqu_disk_space backup;            /* where the backup goes (when checked) */
    char backup_measured_at[256];     /* dataBackup.dir, or its nearest existing parent */
    tqu_tree_size mongo;              /* mongoDataDir (when measured) */
    uint64_t backup_need;             /* max(mongo.apparent, mongo.allocated) */
    uint64_t usage_need;              /* used + reserve */
    uint64_t usage_limit;             /* total * maxUsagePercent / 100 */
    char message[1024];               /* one line: each rule's numbers in GiB; remedies */
} tqu_disk_verdict;

const char *tqu_disk_reason_code(tqu_disk_reason reason);

/*
 * Apply both rules (rule (a) is skipped when the data backup is disabled).
 * A missing dataBackup.dir is measured on its nearest existing parent
 * (update.sh creates it there) and said so. All rules are evaluated even
 * after a failure so the message gives every problem; reason is the first
 * (PathMissing, then InsufficientBackupSpace, then DiskUsageTooHigh,
 * DiskCheckError). ops NULL: the real measurements.
 * Fills *v completely and returns v->reason (0: both rules pass).
 */
int tqu_disk_check(const tqu_disk_params *p, const tqu_disk_ops *ops, tqu_disk_verdict *v);

#endif
