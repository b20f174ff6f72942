/*
 * disk.c - file-system usage, folder sizes and the Preflight disk rules
 * (see disk.h).
 */
#include <errno.h>
#include <fts.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include "k8s.h"
#include "fsutil.h"
#include "disk.h"

/* ---------------------------------------------------------- measurements */

/*
 * Keep e in *sys_errno and fail with "<path>: <errno text>" (with op:
 * "<path>: <op>: <errno text>"): K8S_ENOMEM for ENOMEM, else K8S_EIO.
 */
static int sys_fail(int *sys_errno, int e, const char *path, const char *op, char *err, size_t errlen)
{
    *sys_errno = e;
    return tqu__seterr(err, errlen, e == ENOMEM ? K8S_ENOMEM : K8S_EIO, "%s: %s%s%s", path,
                       op ? op : "", op ? ": " : "", strerror(e));
}

int tqu_disk_usage(const char *path, tqu_disk_space *out, char *err, size_t errlen)
{
    struct statvfs sv;
    uint64_t frsize;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!path || !*path || !out)
        return tqu__seterr(err, errlen, K8S_EINVAL, "statvfs: no path");
    if (statvfs(path, &sv) < 0)
        return sys_fail(&out->sys_errno, errno, path, "statvfs", err, errlen);
    frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    out->total = (uint64_t)sv.f_blocks * frsize;
    out->free = (uint64_t)sv.f_bfree * frsize;
    out->avail = (uint64_t)sv.f_bavail * frsize;
    out->used = out->total > out->avail ? out->total - out->avail : 0;
    return K8S_OK;
}

/* A set of (dev, ino) for files with more than one link, so each counts once. */
typedef struct inode_set {
    struct inode_key { dev_t dev; ino_t ino; } *v;
    size_t n, alloc;          /* alloc: power of two, 0 = empty */
} inode_set;

static size_t inode_hash(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

/* 1: newly added, 0: already there, <0: out of memory. */
static int inode_add(inode_set *s, dev_t dev, ino_t ino)
{
    size_t i;
    if ((s->n + 1) * 2 > s->alloc) {
        size_t na = s->alloc ? s->alloc * 2 : 64;
        struct inode_key *nv = calloc(na, sizeof(*nv));
        if (!nv)
            return -1;
        for (size_t k = 0; k < s->alloc; k++) {
            if (s->v[k].ino == 0 && s->v[k].dev == 0)
                continue;
            for (i = inode_hash(s->v[k].dev, s->v[k].ino) & (na - 1); nv[i].ino || nv[i].dev;
                 i = (i + 1) & (na - 1))
                ;
            nv[i] = s->v[k];
        }
        free(s->v);
        s->v = nv;
        s->alloc = na;
    }
    if (ino == 0 && dev == 0)
        ino = (ino_t)-1;       /* keep the empty-slot marker free */
    for (i = inode_hash(dev, ino) & (s->alloc - 1); s->v[i].ino || s->v[i].dev; i = (i + 1) & (s->alloc - 1))
        if (s->v[i].dev == dev && s->v[i].ino == ino)
            return 0;
    s->v[i].dev = dev;
    s->v[i].ino = ino;
    s->n++;
    return 1;
}

static void note_error(tqu_tree_size *out, const char *path, int e)
{
    if (out->errors++ == 0)
        snprintf(out->first_error, sizeof(out->first_error), "%s: %s", path, strerror(e));
}

static void count(tqu_tree_size *out, const struct stat *st)
{
    out->apparent += st->st_size > 0 ? (uint64_t)st->st_size : 0;
    out->allocated += (uint64_t)st->st_blocks * 512;
}

int tqu_dir_size(const char *path, tqu_tree_size *out, char *err, size_t errlen)
{
    char *const argv[] = { (char *)path, NULL };
    inode_set seen = { 0 };
    struct stat st;
    FTS *fts = NULL;
    FTSENT *e;
    int rc = K8S_OK;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!path || !*path || !out)
        return tqu__seterr(err, errlen, K8S_EINVAL, "size: no path");
    if (stat(path, &st) < 0)
        return sys_fail(&out->sys_errno, errno, path, NULL, err, errlen);
    fts = fts_open(argv, FTS_PHYSICAL | FTS_COMFOLLOW | FTS_XDEV | FTS_NOCHDIR, NULL);
    if (!fts)
        return sys_fail(&out->sys_errno, errno, path, NULL, err, errlen);
    errno = 0;
    while ((e = fts_read(fts)) != NULL) {
        switch (e->fts_info) {
        case FTS_D:
            out->dirs++;
            count(out, e->fts_statp);
            break;
        case FTS_DNR:                  /* a folder we cannot read: its size only */
            out->dirs++;
            count(out, e->fts_statp);
            note_error(out, e->fts_path, e->fts_errno);
            break;
        case FTS_DP:                   /* a folder again, after its contents */
        case FTS_DC:                   /* a cycle: cannot happen without following links */
            break;
        case FTS_NS:
        case FTS_NSOK:
        case FTS_ERR:
            if (e->fts_info != FTS_ERR && e->fts_errno == ENOENT && e->fts_level > 0)
                break;                 /* vanished meanwhile */
            if (e->fts_level == 0) {
                rc = sys_fail(&out->sys_errno, e->fts_errno, path, NULL, err, errlen);
                goto out;
            }
            note_error(out, e->fts_path, e->fts_errno);
            break;
        default:                       /* files, links, devices, sockets */
            out->files++;
            if (e->fts_statp->st_nlink > 1 && !S_ISDIR(e->fts_statp->st_mode)) {
                int added = inode_add(&seen, e->fts_statp->st_dev, e->fts_statp->st_ino);
                if (added < 0) {
                    rc = tqu__seterr(err, errlen, K8S_ENOMEM, "%s: out of memory", path);
                    goto out;
                }
                if (added == 0)
                    break;             /* another link to a file already counted */
            }
            count(out, e->fts_statp);
            break;
        }
        errno = 0;
    }
    if (errno)
        rc = sys_fail(&out->sys_errno, errno, path, "walk", err, errlen);
out:
    fts_close(fts);
    free(seen.v);
    return rc;
}

/* ------------------------------------------------------------------ rules */

static const char *const reason_codes[] = {
    [TQU_DISK_OK] = "DiskSpaceOK",
    [TQU_DISK_PATH_MISSING] = "PathMissing",
    [TQU_DISK_INSUFFICIENT_BACKUP_SPACE] = "InsufficientBackupSpace",
    [TQU_DISK_USAGE_TOO_HIGH] = "DiskUsageTooHigh",
    [TQU_DISK_CHECK_ERROR] = "DiskCheckError",
};

const char *tqu_disk_reason_code(tqu_disk_reason reason)
{
    if ((int)reason < 0 || (size_t)reason >= sizeof(reason_codes) / sizeof(reason_codes[0]))
        return "Unknown";
    return reason_codes[reason];
}

static int real_usage(void *ud, const char *path, tqu_disk_space *out, char *err, size_t errlen)
{
    (void)ud;
    return tqu_disk_usage(path, out, err, errlen);
}

static int real_dir_size(void *ud, const char *path, tqu_tree_size *out, char *err, size_t errlen)
{
    (void)ud;
    return tqu_dir_size(path, out, err, errlen);
}

/* Lower-priority reasons (larger values) give way to higher ones. */
static void fail_with(tqu_disk_verdict *v, tqu_disk_reason r)
{
    if (v->reason == TQU_DISK_OK || r < v->reason)
        v->reason = r;
}

/* Add a sentence to v's message ("; " between). */
#define msg_add(v, ...) tqu__appendf((v)->message, sizeof((v)->message), "; ", __VA_ARGS__)

/* Bytes as GiB with one decimal, rounded down (up when round_up). */
static double gib(uint64_t bytes, int round_up)
{
    unsigned __int128 tenths = ((unsigned __int128)bytes * 10 + (round_up ? TQU_GIB - 1 : 0)) / TQU_GIB;
    return (double)tenths / 10.0;
}

int tqu_disk_check(const tqu_disk_params *p, const tqu_disk_ops *ops, tqu_disk_verdict *v)
{
    int (*usage)(void *, const char *, tqu_disk_space *, char *, size_t) = real_usage;
    int (*dir_size)(void *, const char *, tqu_tree_size *, char *, size_t) = real_dir_size;
    void *ud = NULL;
    char err[512], merr[512];
    int rc, mongo_ok = 0;

    if (!v)
        return TQU_DISK_CHECK_ERROR;
    memset(v, 0, sizeof(*v));
    v->backup_ok = 1;
    if (ops) {
        if (ops->usage)
            usage = ops->usage;
        if (ops->dir_size)
            dir_size = ops->dir_size;
        ud = ops->ud;
    }
    if (!p || !p->data_root || !*p->data_root || !p->mongo_data_dir || !*p->mongo_data_dir ||
        (p->data_backup_enabled && (!p->data_backup_dir || !*p->data_backup_dir)) ||
        p->max_usage_percent < 1 || p->max_usage_percent > 100) {
        v->backup_ok = 0;
        fail_with(v, TQU_DISK_CHECK_ERROR);
        msg_add(v, "disk check: dataRoot, mongoDataDir, dataBackup.dir (when enabled) and a maxUsagePercent of 1-100 are required");
        goto done;
    }

    /* Rule (a): room for the MongoDB data where the data backup goes. */
    if (!p->data_backup_enabled) {
        msg_add(v, "data backup disabled (update.sh -d false): backup space not checked");
    } else {
        char at[sizeof(v->backup_measured_at)];
        int measured = 0;
        snprintf(at, sizeof(at), "%s", p->data_backup_dir);
        /* The backup folder may not exist yet: measure where it will be made. */
        for (;;) {
            rc = usage(ud, at, &v->backup, err, sizeof(err));
            if (rc == K8S_OK) {
                measured = 1;
                break;
            }
            if (v->backup.sys_errno != ENOENT)
                break;
            char *slash = strrchr(at, '/');
            if (!slash || (slash == at && at[1] == '\0'))
                break;
            if (slash == at)
                slash[1] = '\0';
            else
                *slash = '\0';
        }
        snprintf(v->backup_measured_at, sizeof(v->backup_measured_at), "%s", at);
        rc = dir_size(ud, p->mongo_data_dir, &v->mongo, merr, sizeof(merr));
        if (rc == K8S_OK) {
            mongo_ok = 1;
            v->backup_need = v->mongo.apparent > v->mongo.allocated ? v->mongo.apparent : v->mongo.allocated;
        } else if (v->mongo.sys_errno == ENOENT) {
            v->backup_ok = 0;
            fail_with(v, TQU_DISK_PATH_MISSING);
            msg_add(v, "MongoDB data folder %s does not exist: set spec.disk.mongoDataDir to where MongoDB keeps its data on this machine",
                    p->mongo_data_dir);
        } else {
            v->backup_ok = 0;
            fail_with(v, TQU_DISK_CHECK_ERROR);
            msg_add(v, "cannot measure the MongoDB data: %s", merr);
        }
        if (!measured) {
            v->backup_ok = 0;
            fail_with(v, TQU_DISK_CHECK_ERROR);
            msg_add(v, "cannot measure the data backup folder %s: %s", p->data_backup_dir, err);
        } else if (mongo_ok) {
            const char *partial = v->mongo.errors ? "at least " : "";
            char where[400];
            if (strcmp(at, p->data_backup_dir) != 0)
                snprintf(where, sizeof(where), "%s (dataBackup.dir; does not exist yet, measured on %s)",
                         p->data_backup_dir, at);
            else
                snprintf(where, sizeof(where), "%s (dataBackup.dir)", at);
            v->backup_checked = 1;
            v->backup_ok = v->backup.avail >= v->backup_need;
            if (v->backup_ok) {
                msg_add(v, "backup: %.1f GiB available at %s for %s%.1f GiB of MongoDB data in %s",
                        gib(v->backup.avail, 0), where, partial, gib(v->backup_need, 1), p->mongo_data_dir);
            } else {
                fail_with(v, TQU_DISK_INSUFFICIENT_BACKUP_SPACE);
                msg_add(v, "the data backup needs room for the MongoDB data: %s holds %s%.1f GiB but %s has only %.1f GiB available: free at least %.1f GiB there, or set spec.dataBackup.dir to a file system with more room",
                        p->mongo_data_dir, partial, gib(v->backup_need, 1), where, gib(v->backup.avail, 0),
                        gib(v->backup_need - v->backup.avail, 1));
            }
            if (v->mongo.errors)
                msg_add(v, "%llu entr%s under %s could not be read (first: %s), so its size is a lower bound",
                        (unsigned long long)v->mongo.errors, v->mongo.errors == 1 ? "y" : "ies",
                        p->mongo_data_dir, v->mongo.first_error);
        }
    }

    /* Rule (b): used + reserve <= maxUsagePercent of dataRoot. */
    rc = usage(ud, p->data_root, &v->root, err, sizeof(err));
    if (rc != K8S_OK) {
        if (v->root.sys_errno == ENOENT) {
            fail_with(v, TQU_DISK_PATH_MISSING);
            msg_add(v, "data root %s does not exist: set spec.disk.dataRoot to the Tianqing data folder (Docker's data root)",
                    p->data_root);
        } else {
            fail_with(v, TQU_DISK_CHECK_ERROR);
            msg_add(v, "cannot measure the data root: %s", err);
        }
    } else if (v->root.total == 0) {
        fail_with(v, TQU_DISK_CHECK_ERROR);
        msg_add(v, "data root %s reports a file system size of 0", p->data_root);
    } else {
        unsigned __int128 need = (unsigned __int128)v->root.used + (unsigned __int128)p->reserve_gib * TQU_GIB;
        unsigned __int128 limit = (unsigned __int128)v->root.total * p->max_usage_percent / 100;
        double pct = (double)need * 100.0 / (double)v->root.total;
        v->usage_checked = 1;
        v->usage_need = need > UINT64_MAX ? UINT64_MAX : (uint64_t)need;
        v->usage_limit = (uint64_t)limit;
        /* Exact, in integers: need * 100 <= max% * total. */
        v->usage_ok = need * 100 <= (unsigned __int128)v->root.total * p->max_usage_percent;
        if (v->usage_ok) {
            msg_add(v, "%s: %.1f GiB used + %llu GiB reserve = %.1f%% of %.1f GiB (limit %u%%)",
                    p->data_root, gib(v->root.used, 1), (unsigned long long)p->reserve_gib, pct,
                    gib(v->root.total, 0), p->max_usage_percent);
        } else {
            unsigned __int128 o = (need * 100 - (unsigned __int128)v->root.total * p->max_usage_percent + 99) / 100;
            uint64_t over = o > UINT64_MAX ? UINT64_MAX : (uint64_t)o;
            fail_with(v, TQU_DISK_USAGE_TOO_HIGH);
            msg_add(v, "%s: %.1f GiB used + %llu GiB reserve = %.1f%% of %.1f GiB, over the %u%% limit (Docker's image garbage collection could fire during the upgrade): free at least %.1f GiB on %s (old packages under the packages root, unused images)",
                    p->data_root, gib(v->root.used, 1), (unsigned long long)p->reserve_gib, pct,
                    gib(v->root.total, 0), p->max_usage_percent, gib(over, 1), p->data_root);
        }
    }
done:
    v->code = tqu_disk_reason_code(v->reason);
    return (int)v->reason;
}
