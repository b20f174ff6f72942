/*
 * test_disk.c - the Preflight disk rules and their measurements
 * (controller/host/disk.c), and the file-system helpers they and the rest of
 * the controller use (controller/host/fsutil.c).
 *
 * The rules run against injected measurements (a fake statvfs and walk) so
 * the boundaries can be hit to the byte without filling a disk; the real
 * statvfs runs on /tmp and the real walk on a tree built here with known
 * sizes, hard links, symbolic links and a sparse file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "k8s.h"
#include "failalloc.h"
#include "testutil.h"
#include "host/fsutil.h"
#include "host/disk.h"

#define GiB TQU_GIB

static char tmp[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    return test_mkdtemp(tmp, sizeof(tmp), "test_disk");
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(tmp);
}

static const char *in_tmp(const char *name)
{
    static char path[4][PATH_MAX];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", tmp, name);
    return p;
}

/* ------------------------------------------------------ a fake machine */

struct fake_fs {
    const char *path;          /* NULL ends the list */
    uint64_t total, avail, free;
    int err;                   /* errno to fail with, 0 = fine */
};

struct fake {
    struct fake_fs fs[6];
    const char *mongo_path;
    uint64_t mongo_apparent, mongo_allocated, mongo_errors;
    int mongo_err;
    int usage_calls, size_calls;
};

static int fake_usage(void *ud, const char *path, tqu_disk_space *out, char *err, size_t errlen)
{
    struct fake *f = ud;
    f->usage_calls++;
    memset(out, 0, sizeof(*out));
    for (struct fake_fs *fs = f->fs; fs->path; fs++) {
        if (strcmp(fs->path, path) != 0)
            continue;
        if (fs->err) {
            out->sys_errno = fs->err;
            snprintf(err, errlen, "%s: statvfs: %s", path, strerror(fs->err));
            return K8S_EIO;
        }
        out->total = fs->total;
        out->avail = fs->avail;
        out->free = fs->free ? fs->free : fs->avail;
        out->used = fs->total - fs->avail;
        return K8S_OK;
    }
    out->sys_errno = ENOENT;
    snprintf(err, errlen, "%s: statvfs: %s", path, strerror(ENOENT));
    return K8S_EIO;
}

static int fake_size(void *ud, const char *path, tqu_tree_size *out, char *err, size_t errlen)
{
    struct fake *f = ud;
    f->size_calls++;
    memset(out, 0, sizeof(*out));
    if (strcmp(path, f->mongo_path) != 0 || f->mongo_err) {
        out->sys_errno = f->mongo_err ? f->mongo_err : ENOENT;
        snprintf(err, errlen, "%s: %s", path, strerror(out->sys_errno));
        return K8S_EIO;
    }
    out->apparent = f->mongo_apparent;
    out->allocated = f->mongo_allocated;
    out->errors = f->mongo_errors;
    if (f->mongo_errors)
        snprintf(out->first_error, sizeof(out->first_error), "%s/journal: Permission denied", path);
    return K8S_OK;
}

/* The runbook's numbers: /qaxdata of 1000 GiB, 70 GiB reserve, 80 %. */
static struct fake machine(void)
{
    struct fake f = {
        .fs = { { "/qaxdata", 1000 * GiB, 500 * GiB, 0, 0 }, { NULL, 0, 0, 0, 0 } },
        .mongo_path = "/qaxdata/s/services/mongo/data",
        .mongo_apparent = 100 * GiB,
        .mongo_allocated = 90 * GiB,
    };
    return f;
}

static tqu_disk_params params(void)
{
    tqu_disk_params p = {
        .data_root = "/qaxdata",
        .mongo_data_dir = "/qaxdata/s/services/mongo/data",
        .data_backup_enabled = 1,
        .data_backup_dir = "/qaxdata",
        .reserve_gib = 70,
        .max_usage_percent = 80,
    };
    return p;
}

static int check(struct fake *f, const tqu_disk_params *p, tqu_disk_verdict *v)
{
    tqu_disk_ops ops = { fake_usage, fake_size, f };
    return tqu_disk_check(p, &ops, v);
}

/* ------------------------------------------------------- rule (b) */

static void test_usage_boundary(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    /* used 730 GiB + 70 = 800 GiB = exactly 80 %: passes */
    f.fs[0].avail = 270 * GiB;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    assert_string_equal(v.code, "DiskSpaceOK");
    assert_true(v.usage_checked && v.usage_ok);
    assert_int_equal(v.usage_need, 800 * GiB);
    assert_int_equal(v.usage_limit, 800 * GiB);
    assert_contains(v.message, "/qaxdata: 730.0 GiB used + 70 GiB reserve = 80.0% of 1000.0 GiB (limit 80%)");
    /* one byte more: fails, with the amount to free rounded up */
    f.fs[0].avail = 270 * GiB - 1;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_USAGE_TOO_HIGH);
    assert_string_equal(v.code, "DiskUsageTooHigh");
    assert_false(v.usage_ok);
    assert_true(v.backup_ok);
    assert_contains(v.message, "/qaxdata: 730.1 GiB used + 70 GiB reserve = 80.0% of 1000.0 GiB, over the 80% limit");
    assert_contains(v.message, "Docker's image garbage collection");
    assert_contains(v.message, "free at least 0.1 GiB on /qaxdata");
    /* clearly over: 850 used */
    f.fs[0].avail = 150 * GiB;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_USAGE_TOO_HIGH);
    assert_contains(v.message, "850.0 GiB used + 70 GiB reserve = 92.0% of 1000.0 GiB");
    assert_contains(v.message, "free at least 120.0 GiB");
    /* other limits and reserves come from the resource */
    p.max_usage_percent = 100;
    p.reserve_gib = 150;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    p.reserve_gib = 151;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_USAGE_TOO_HIGH);
    /* a limit that does not divide evenly: 1 % of 999 bytes is 9.99 bytes */
    p = params();
    p.data_backup_enabled = 0;
    p.reserve_gib = 0;
    p.max_usage_percent = 1;
    f.fs[0].total = 999;
    f.fs[0].avail = 989;       /* used 10 > 9.99 */
    assert_int_equal(check(&f, &p, &v), TQU_DISK_USAGE_TOO_HIGH);
    f.fs[0].avail = 990;       /* used 9 */
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    /* huge numbers do not overflow */
    f.fs[0].total = UINT64_MAX;
    f.fs[0].avail = 0;
    p.reserve_gib = UINT64_MAX / 2;
    p.max_usage_percent = 100;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_USAGE_TOO_HIGH);
}

/* ------------------------------------------------------- rule (a) */

static void test_backup_boundary(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    p.data_backup_dir = "/backup";
    f.fs[1] = (struct fake_fs){ "/backup", 200 * GiB, 100 * GiB, 0, 0 };
    /* exactly the MongoDB size (the larger of apparent and allocated) */
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    assert_true(v.backup_checked && v.backup_ok);
    assert_int_equal(v.backup_need, 100 * GiB);
    assert_string_equal(v.backup_measured_at, "/backup");
    assert_contains(v.message, "backup: 100.0 GiB available at /backup (dataBackup.dir) for 100.0 GiB of MongoDB data in /qaxdata/s/services/mongo/data");
    /* one byte short */
    f.fs[1].avail = 100 * GiB - 1;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_INSUFFICIENT_BACKUP_SPACE);
    assert_string_equal(v.code, "InsufficientBackupSpace");
    assert_false(v.backup_ok);
    assert_true(v.usage_ok);                     /* rule (b) still evaluated */
    assert_contains(v.message, "the data backup needs room for the MongoDB data: /qaxdata/s/services/mongo/data holds 100.0 GiB but /backup (dataBackup.dir) has only 99.9 GiB available: free at least 0.1 GiB there, or set spec.dataBackup.dir");
    /* allocated larger than apparent (many small files): allocated counts */
    f.fs[1].avail = 100 * GiB;
    f.mongo_allocated = 100 * GiB + 1;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_INSUFFICIENT_BACKUP_SPACE);
    assert_int_equal(v.backup_need, 100 * GiB + 1);
}

static void test_backup_disabled_skips_rule_a(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    p.data_backup_enabled = 0;
    p.data_backup_dir = NULL;
    f.mongo_apparent = 10000 * GiB;               /* would never fit */
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    assert_false(v.backup_checked);
    assert_true(v.backup_ok);
    assert_int_equal(f.size_calls, 0);            /* not even measured */
    assert_contains(v.message, "data backup disabled (update.sh -d false): backup space not checked");
    /* the same with the backup on: refused */
    p = params();
    assert_int_equal(check(&f, &p, &v), TQU_DISK_INSUFFICIENT_BACKUP_SPACE);
}

static void test_both_fail(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    f.fs[0].avail = 50 * GiB;                     /* 950 used; and 50 < 100 of MongoDB */
    assert_int_equal(check(&f, &p, &v), TQU_DISK_INSUFFICIENT_BACKUP_SPACE);
    assert_false(v.backup_ok);
    assert_false(v.usage_ok);
    assert_contains(v.message, "has only 50.0 GiB available");
    assert_contains(v.message, "; /qaxdata: 950.0 GiB used + 70 GiB reserve = 102.0% of 1000.0 GiB, over the 80% limit");
    assert_null(strchr(v.message, '\n'));
}

static void test_missing_paths(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    /* MongoDB data folder missing */
    f.mongo_path = "/elsewhere";
    assert_int_equal(check(&f, &p, &v), TQU_DISK_PATH_MISSING);
    assert_string_equal(v.code, "PathMissing");
    assert_contains(v.message, "MongoDB data folder /qaxdata/s/services/mongo/data does not exist: set spec.disk.mongoDataDir");
    assert_true(v.usage_checked);                 /* rule (b) still evaluated */
    /* data root missing */
    f = machine();
    f.fs[0].path = "/other";
    p.data_backup_enabled = 0;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_PATH_MISSING);
    assert_contains(v.message, "data root /qaxdata does not exist: set spec.disk.dataRoot");
    /* PathMissing outranks a rule failure */
    f = machine();
    f.fs[0].avail = 10 * GiB;
    f.mongo_path = "/elsewhere";
    p = params();
    assert_int_equal(check(&f, &p, &v), TQU_DISK_PATH_MISSING);
    assert_contains(v.message, "over the 80% limit");
}

/* A backup folder that does not exist yet is measured where it will be made. */
static void test_backup_dir_not_yet_there(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    p.data_backup_dir = "/qaxdata/backup/2024";
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    assert_string_equal(v.backup_measured_at, "/qaxdata");
    assert_contains(v.message, "/qaxdata/backup/2024 (dataBackup.dir; does not exist yet, measured on /qaxdata)");
    /* nothing on the way exists (the fake has no "/"): an error, not a pass */
    p.data_backup_dir = "/nothere/x";
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    assert_contains(v.message, "cannot measure the data backup folder /nothere/x");
}

static void test_measurement_errors(void **state)
{
    struct fake f = machine();
    tqu_disk_params p = params();
    tqu_disk_verdict v;
    (void)state;
    f.fs[0].err = EACCES;
    p.data_backup_enabled = 0;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    assert_string_equal(v.code, "DiskCheckError");
    assert_contains(v.message, "cannot measure the data root: /qaxdata: statvfs: Permission denied");
    /* walk errors below the top: a lower bound, said so */
    f = machine();
    f.mongo_errors = 2;
    p = params();
    assert_int_equal(check(&f, &p, &v), TQU_DISK_OK);
    assert_contains(v.message, "for at least 100.0 GiB of MongoDB data");
    assert_contains(v.message, "2 entries under /qaxdata/s/services/mongo/data could not be read (first: /qaxdata/s/services/mongo/data/journal: Permission denied), so its size is a lower bound");
    /* the top cannot be read */
    f.mongo_errors = 0;
    f.mongo_err = EACCES;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    assert_contains(v.message, "cannot measure the MongoDB data: /qaxdata/s/services/mongo/data: Permission denied");
    /* a zero-sized file system */
    f = machine();
    f.fs[0].total = 0;
    f.fs[0].avail = 0;
    p.data_backup_enabled = 0;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    /* unusable parameters */
    p = params();
    p.max_usage_percent = 0;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    p = params();
    p.data_root = "";
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    p = params();
    p.data_backup_dir = NULL;
    assert_int_equal(check(&f, &p, &v), TQU_DISK_CHECK_ERROR);
    assert_int_equal(tqu_disk_check(NULL, NULL, &v), TQU_DISK_CHECK_ERROR);
    assert_int_equal(tqu_disk_check(&p, NULL, NULL), TQU_DISK_CHECK_ERROR);
    assert_string_equal(tqu_disk_reason_code((tqu_disk_reason)99), "Unknown");
}

/* ------------------------------------------------------ real measurements */

static void test_real_statvfs(void **state)
{
    tqu_disk_space u;
    struct statvfs sv;
    char err[256];
    (void)state;
    assert_int_equal(tqu_disk_usage("/tmp", &u, err, sizeof(err)), K8S_OK);
    assert_int_equal(statvfs("/tmp", &sv), 0);
    assert_true(u.total > 0);
    assert_int_equal(u.total, (uint64_t)sv.f_blocks * sv.f_frsize);
    assert_true(u.avail <= u.free && u.free <= u.total);
    assert_int_equal(u.used + u.avail, u.total);
    assert_int_equal(tqu_disk_usage("/nonexistent/dir", &u, err, sizeof(err)), K8S_EIO);
    assert_int_equal(u.sys_errno, ENOENT);
    assert_string_equal(err, "/nonexistent/dir: statvfs: No such file or directory");
    assert_int_equal(tqu_disk_usage(NULL, &u, err, sizeof(err)), K8S_EINVAL);
}

static void put(const char *name, size_t size)
{
    char *data = malloc(size + 1);
    assert_non_null(data);
    memset(data, 'm', size);
    assert_int_equal(tqu_write_file_atomic(in_tmp(name), data, size, 0644, NULL, 0), K8S_OK);
    free(data);
}

static void test_real_walk(void **state)
{
    tqu_tree_size s;
    struct stat st;
    char err[256];
    uint64_t apparent = 0, allocated = 0;
    const char *dirs[] = { "mongo", "mongo/data", "mongo/data/journal", "mongo/data/diagnostic.data" };
    const char *files[] = { "mongo/data/collection-0.wt", "mongo/data/index-1.wt", "mongo/data/empty",
                            "mongo/data/journal/WiredTigerLog.0000000001", "mongo/data/diagnostic.data/metrics" };
    const size_t sizes[] = { 1 << 20, 10000, 0, 4096, 1 };
    (void)state;

    for (size_t i = 0; i < 4; i++)
        assert_int_equal(mkdir(in_tmp(dirs[i]), 0755), 0);
    for (size_t i = 0; i < 5; i++)
        put(files[i], sizes[i]);
    /* a hard link: counted once */
    assert_int_equal(link(in_tmp("mongo/data/collection-0.wt"), in_tmp("mongo/data/collection-0.link")), 0);
    /* a symbolic link to a big file outside: the link counts, not the target */
    put("outside.bin", 3 << 20);
    assert_int_equal(symlink(in_tmp("outside.bin"), in_tmp("mongo/data/outside.lnk")), 0);
    /* a sparse file: 64 MiB apparent, almost nothing allocated */
    int fd = open(in_tmp("mongo/data/sparse.wt"), O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 64 << 20), 0);
    assert_int_equal(pwrite(fd, "x", 1, (64 << 20) - 1), 1);
    close(fd);

    /* what the walk must find, from lstat of each entry */
    const char *all[] = { "mongo", "mongo/data", "mongo/data/journal", "mongo/data/diagnostic.data",
                          "mongo/data/collection-0.wt", "mongo/data/index-1.wt", "mongo/data/empty",
                          "mongo/data/journal/WiredTigerLog.0000000001", "mongo/data/diagnostic.data/metrics",
                          "mongo/data/outside.lnk", "mongo/data/sparse.wt" };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(lstat(in_tmp(all[i]), &st), 0);
        apparent += (uint64_t)st.st_size;
        allocated += (uint64_t)st.st_blocks * 512;
    }
    assert_int_equal(tqu_dir_size(in_tmp("mongo"), &s, err, sizeof(err)), K8S_OK);
    assert_int_equal(s.dirs, 4);
    assert_int_equal(s.files, 8);          /* 5 files + hard link + symlink + sparse */
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.apparent, apparent);
    assert_int_equal(s.allocated, allocated);
    assert_true(s.apparent > (64u << 20) + (1u << 20));
    assert_true(s.apparent < (64u << 20) + (2u << 20));     /* the 3 MiB target is not counted */
    assert_true(s.allocated < s.apparent);                   /* the sparse file */

    /* a symbolic link as the top folder is followed */
    assert_int_equal(symlink(in_tmp("mongo"), in_tmp("mongo-link")), 0);
    tqu_tree_size s2;
    assert_int_equal(tqu_dir_size(in_tmp("mongo-link"), &s2, err, sizeof(err)), K8S_OK);
    assert_int_equal(s2.apparent, s.apparent);

    /* a single file */
    assert_int_equal(tqu_dir_size(in_tmp("outside.bin"), &s2, err, sizeof(err)), K8S_OK);
    assert_int_equal(s2.apparent, 3 << 20);
    assert_int_equal(s2.files, 1);

    /* unreadable folders count as errors, not failures (root reads everything) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(in_tmp("mongo/data/journal"), 0), 0);
        assert_int_equal(tqu_dir_size(in_tmp("mongo"), &s2, err, sizeof(err)), K8S_OK);
        assert_int_equal(s2.errors, 1);
        assert_contains(s2.first_error, "journal: Permission denied");
        chmod(in_tmp("mongo/data/journal"), 0755);
    }

    /* missing */
    assert_int_equal(tqu_dir_size(in_tmp("nope"), &s2, err, sizeof(err)), K8S_EIO);
    assert_int_equal(s2.sys_errno, ENOENT);
    assert_contains(err, "nope: No such file or directory");
    assert_int_equal(tqu_dir_size("", &s2, err, sizeof(err)), K8S_EINVAL);

    /* the whole check on the real machine: the tree as MongoDB data, /tmp as
     * data root and backup folder; 100 % with no reserve always holds */
    tqu_disk_params p = {
        .data_root = tmp, .mongo_data_dir = in_tmp("mongo"), .data_backup_enabled = 1,
        .data_backup_dir = in_tmp("backup-not-made-yet"), .reserve_gib = 0, .max_usage_percent = 100,
    };
    tqu_disk_verdict v;
    assert_int_equal(tqu_disk_check(&p, NULL, &v), TQU_DISK_OK);
    assert_string_equal(v.backup_measured_at, tmp);
    assert_int_equal(v.mongo.apparent, s.apparent);
    assert_contains(v.message, "does not exist yet, measured on ");
    /* and an impossible reserve fails it */
    p.reserve_gib = UINT64_MAX / GiB;
    assert_int_equal(tqu_disk_check(&p, NULL, &v), TQU_DISK_USAGE_TOO_HIGH);
}

/* Many hard links: the inode set grows and every file counts once. */
static void test_walk_many_links(void **state)
{
    tqu_tree_size s;
    char err[256], name[64];
    (void)state;
    assert_int_equal(mkdir(in_tmp("t"), 0755), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "t/f%03d", i);
        put(name, 100);
        char l[64];
        snprintf(l, sizeof(l), "t/f%03d.link", i);
        assert_int_equal(link(in_tmp(name), in_tmp(l)), 0);
    }
    assert_int_equal(tqu_dir_size(in_tmp("t"), &s, err, sizeof(err)), K8S_OK);
    assert_int_equal(s.files, 600);
    struct stat st;
    assert_int_equal(stat(in_tmp("t"), &st), 0);
    assert_int_equal(s.apparent, 300 * 100 + (uint64_t)st.st_size);
    /* allocation failure in the inode set: a clean error */
    long n;
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        int rc = tqu_dir_size(in_tmp("t"), &s, err, sizeof(err));
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_contains(err, "out of memory");
    }
    assert_true(n > 3);
}

/* --------------------------------------------------------------- fsutil */

static void test_write_atomic(void **state)
{
    char err[512];
    struct stat st;
    k8s_buf b;
    (void)state;
    k8s_buf_init(&b, 0);
    assert_int_equal(tqu_write_file_atomic(in_tmp("a.txt"), "one\n", 4, 0640, err, sizeof(err)), K8S_OK);
    assert_int_equal(stat(in_tmp("a.txt"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    ino_t first = st.st_ino;
    /* replaced whole (a new inode renamed over the old), mode as given */
    assert_int_equal(tqu_write_file_atomic(in_tmp("a.txt"), "two\n", 4, 0600, err, sizeof(err)), K8S_OK);
    assert_int_equal(stat(in_tmp("a.txt"), &st), 0);
    assert_true(st.st_ino != first);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(tqu_read_file(in_tmp("a.txt"), 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "two\n");
    /* empty content */
    assert_int_equal(tqu_write_file_atomic(in_tmp("empty"), NULL, 0, 0644, err, sizeof(err)), K8S_OK);
    assert_int_equal(tqu_read_file(in_tmp("empty"), 0, &b, err, sizeof(err)), K8S_OK);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* failures name the path and leave nothing behind */
    assert_int_equal(tqu_write_file_atomic(in_tmp("no/such/dir/x"), "x", 1, 0644, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "no/such/dir/x: create temporary file in ");
    assert_contains(err, "No such file or directory");
    assert_int_equal(mkdir(in_tmp("adir"), 0755), 0);
    assert_int_equal(tqu_write_file_atomic(in_tmp("adir"), "x", 1, 0644, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "adir: rename: Is a directory");
    DIR *d = opendir(tmp);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp."))
            fail_msg("temporary file left: %s", de->d_name);
    closedir(d);
    assert_int_equal(tqu_write_file_atomic(NULL, "x", 1, 0644, err, sizeof(err)), K8S_EINVAL);
    assert_int_equal(tqu_write_file_atomic(in_tmp("x"), NULL, 1, 0644, err, sizeof(err)), K8S_EINVAL);
    assert_int_equal(tqu_write_file_atomic("dir/", "x", 1, 0644, err, sizeof(err)), K8S_EINVAL);
    /* a relative path works in the current folder */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmp), 0);
    assert_int_equal(tqu_write_file_atomic("rel.txt", "r", 1, 0644, err, sizeof(err)), K8S_OK);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(stat(in_tmp("rel.txt"), &st), 0);
    /* owner: only root can give a file away; keeping ours always works */
    assert_int_equal(tqu_write_file_atomic_as(in_tmp("own"), "o", 1, 0644, getuid(), getgid(), err, sizeof(err)), K8S_OK);
    k8s_buf_release(&b);
}

/* Entries of the test folder whose name contains part. */
static int count_named(const char *part)
{
    DIR *d = opendir(tmp);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, part) != NULL;
    closedir(d);
    return n;
}

/* The steps under every atomic write: begin, write the fd, commit or abort. */
static void test_atomic_steps(void **state)
{
    char err[512], name[300];
    struct stat st;
    k8s_buf b;
    tqu_atomic a;
    int dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    (void)state;
    k8s_buf_init(&b, 0);
    assert_true(dirfd >= 0);

    /* streamed, seeked back and truncated, committed without replacing */
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "s.json", 0640, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(count_named(".s.json.tmp."), 1);
    assert_int_equal(write(a.fd, "draft", 5), 5);
    assert_int_equal(ftruncate(a.fd, 0), 0);
    assert_int_equal(lseek(a.fd, 0, SEEK_SET), 0);
    assert_int_equal(write(a.fd, "final", 5), 5);
    assert_int_equal(access(in_tmp("s.json"), F_OK), -1);          /* nothing before commit */
    assert_int_equal(tqu_atomic_commit(&a, TQU_ATOMIC_NOREPLACE), 0);
    assert_int_equal(a.committed, 1);
    assert_string_equal(a.op, "");
    tqu_atomic_abort(&a);                                           /* a no-op now */
    assert_int_equal(tqu_read_file(in_tmp("s.json"), 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "final");
    assert_int_equal(stat(in_tmp("s.json"), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(count_named(".tmp."), 0);

    /* NOREPLACE: an existing file is kept, EEXIST, the temp file removed */
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "s.json", 0600, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(write(a.fd, "other", 5), 5);
    assert_int_equal(tqu_atomic_commit(&a, TQU_ATOMIC_NOREPLACE), EEXIST);
    assert_string_equal(a.op, "rename");
    assert_int_equal(a.committed, 0);
    assert_int_equal(tqu_read_file(in_tmp("s.json"), 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "final");
    assert_int_equal(count_named(".tmp."), 0);
    /* without the flag it replaces */
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "s.json", 0600, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(write(a.fd, "new", 3), 3);
    assert_int_equal(tqu_atomic_commit(&a, 0), 0);
    assert_int_equal(tqu_read_file(in_tmp("s.json"), 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "new");

    /* abort: the temp file goes, the target is untouched; twice is fine */
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "s.json", 0600, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(write(a.fd, "lost", 4), 4);
    tqu_atomic_abort(&a);
    tqu_atomic_abort(&a);
    assert_int_equal(a.fd, -1);
    assert_int_equal(count_named(".tmp."), 0);
    assert_int_equal(tqu_read_file(in_tmp("s.json"), 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "new");
    /* commit after abort, or without begin */
    assert_int_equal(tqu_atomic_commit(&a, 0), EBADF);
    tqu_atomic_init(&a);
    tqu_atomic_abort(&a);
    assert_int_equal(tqu_atomic_commit(&a, 0), EBADF);

    /* refusals, each naming the step */
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "a/b", 0600, (uid_t)-1, (gid_t)-1), EINVAL);
    assert_string_equal(a.op, "create");
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "", 0600, (uid_t)-1, (gid_t)-1), EINVAL);
    assert_int_equal(tqu_atomic_begin(&a, dirfd, NULL, 0600, (uid_t)-1, (gid_t)-1), EINVAL);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(tqu_atomic_begin(&a, dirfd, name, 0600, (uid_t)-1, (gid_t)-1), ENAMETOOLONG);
    name[NAME_MAX - 12] = '\0';                  /* the longest that leaves room for ".tmp.XXXXXX" */
    assert_int_equal(tqu_atomic_begin(&a, dirfd, name, 0600, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(tqu_atomic_commit(&a, 0), 0);
    assert_int_equal(tqu_atomic_begin(&a, -1, "x", 0600, (uid_t)-1, (gid_t)-1), EBADF);
    assert_string_equal(a.op, "create");
    assert_int_equal(a.fd, -1);
    assert_int_equal(mkdir(in_tmp("d"), 0755), 0);
    assert_int_equal(tqu_atomic_begin(&a, dirfd, "d", 0600, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(tqu_atomic_commit(&a, 0), EISDIR);
    assert_string_equal(a.op, "rename");
    assert_int_equal(count_named(".tmp."), 0);

    /* the name is copied: the caller may reuse its buffer before commit */
    char nbuf[32];
    snprintf(nbuf, sizeof(nbuf), "first.json");
    assert_int_equal(tqu_atomic_begin(&a, dirfd, nbuf, 0600, (uid_t)-1, (gid_t)-1), 0);
    snprintf(nbuf, sizeof(nbuf), "second.log");
    assert_int_equal(tqu_atomic_commit(&a, TQU_ATOMIC_NOREPLACE), 0);
    assert_int_equal(access(in_tmp("first.json"), F_OK), 0);
    assert_int_equal(access(in_tmp("second.log"), F_OK), -1);

    /* the names of many at once never clash */
    tqu_atomic many[64];
    for (int i = 0; i < 64; i++)
        assert_int_equal(tqu_atomic_begin(&many[i], dirfd, "m", 0600, (uid_t)-1, (gid_t)-1), 0);
    assert_int_equal(count_named(".m.tmp."), 64);
    for (int i = 0; i < 64; i++)
        tqu_atomic_abort(&many[i]);
    assert_int_equal(count_named(".m.tmp."), 0);
    close(dirfd);
    k8s_buf_release(&b);
}

static void test_mkdir_p(void **state)
{
    char err[512], path[PATH_MAX];
    struct stat st;
    (void)state;
    snprintf(path, sizeof(path), "%s/a/b//c/d/", tmp);
    assert_int_equal(tqu_mkdir_p(path, 0750, err, sizeof(err)), K8S_OK);
    assert_int_equal(stat(in_tmp("a/b/c/d"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(tqu_mkdir_p(path, 0750, err, sizeof(err)), K8S_OK);     /* again: fine */
    put("a/file", 1);
    snprintf(path, sizeof(path), "%s/a/file/sub", tmp);
    assert_int_equal(tqu_mkdir_p(path, 0750, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "a/file/sub: ");
    assert_contains(err, "/a/file: Not a directory");
    assert_int_equal(tqu_mkdir_p(in_tmp("a/file"), 0750, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "a/file: Not a directory");
    assert_int_equal(tqu_mkdir_p("/", 0750, err, sizeof(err)), K8S_OK);
    assert_int_equal(tqu_mkdir_p("", 0750, err, sizeof(err)), K8S_EINVAL);
    assert_int_equal(tqu_mkdir_p(NULL, 0750, NULL, 0), K8S_EINVAL);
}

static void test_sha256(void **state)
{
    char hex[65], err[256];
    uint64_t bytes = 0;
    (void)state;
    assert_int_equal(tqu_write_file_atomic(in_tmp("abc"), "abc", 3, 0644, NULL, 0), K8S_OK);
    assert_int_equal(tqu_sha256_file(in_tmp("abc"), hex, &bytes, err, sizeof(err)), K8S_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(bytes, 3);
    assert_int_equal(tqu_write_file_atomic(in_tmp("e"), "", 0, 0644, NULL, 0), K8S_OK);
    assert_int_equal(tqu_sha256_file(in_tmp("e"), hex, NULL, err, sizeof(err)), K8S_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* bigger than one read: 1,000,000 x 'a' */
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    assert_int_equal(tqu_write_file_atomic(in_tmp("million"), a, 1000000, 0644, NULL, 0), K8S_OK);
    free(a);
    assert_int_equal(tqu_sha256_file(in_tmp("million"), hex, &bytes, err, sizeof(err)), K8S_OK);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    assert_int_equal(bytes, 1000000);
    bytes = 7;
    assert_int_equal(tqu_sha256_file(in_tmp("gone"), hex, &bytes, err, sizeof(err)), K8S_EIO);
    assert_string_equal(hex, "");
    assert_contains(err, "gone: No such file or directory");
    assert_int_equal(bytes, 7);
    assert_int_equal(tqu_sha256_file(tmp, hex, NULL, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "Is a directory");
}

static void test_read_tail(void **state)
{
    char err[256];
    k8s_buf b;
    (void)state;
    k8s_buf_init(&b, 0);
    assert_int_equal(tqu_write_file_atomic(in_tmp("log"), "one\ntwo\nthree\nfour\n", 19, 0644, NULL, 0), K8S_OK);
    /* whole file */
    assert_int_equal(tqu_read_tail(in_tmp("log"), 1000, 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "one\ntwo\nthree\nfour\n");
    /* last lines */
    assert_int_equal(tqu_read_tail(in_tmp("log"), 1000, 2, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "three\nfour\n");
    assert_int_equal(tqu_read_tail(in_tmp("log"), 1000, 10, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "one\ntwo\nthree\nfour\n");
    /* last bytes, cut to whole lines: "ee\nfour\n" -> "four\n" */
    assert_int_equal(tqu_read_tail(in_tmp("log"), 8, 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "four\n");
    /* no final newline */
    assert_int_equal(tqu_write_file_atomic(in_tmp("log2"), "a\nb\nc", 5, 0644, NULL, 0), K8S_OK);
    assert_int_equal(tqu_read_tail(in_tmp("log2"), 100, 1, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "c");
    assert_int_equal(tqu_read_tail(in_tmp("log2"), 100, 2, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "b\nc");
    /* one long line without newline, cut in a UTF-8 character: whole characters only */
    assert_int_equal(tqu_write_file_atomic(in_tmp("zh"), "失败失败失败", 18, 0644, NULL, 0), K8S_OK);
    assert_int_equal(tqu_read_tail(in_tmp("zh"), 7, 0, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "失败");
    /* a big file: only the end is read */
    FILE *f = fopen(in_tmp("big"), "w");
    for (int i = 0; i < 200000; i++)
        fprintf(f, "line %d of the upgrade log\n", i);
    fclose(f);
    assert_int_equal(tqu_read_tail(in_tmp("big"), 4096, 3, &b, err, sizeof(err)), K8S_OK);
    assert_string_equal(b.data, "line 199997 of the upgrade log\nline 199998 of the upgrade log\nline 199999 of the upgrade log\n");
    /* empty file */
    assert_int_equal(tqu_write_file_atomic(in_tmp("e"), "", 0, 0644, NULL, 0), K8S_OK);
    assert_int_equal(tqu_read_tail(in_tmp("e"), 100, 5, &b, err, sizeof(err)), K8S_OK);
    assert_int_equal(b.len, 0);
    assert_non_null(b.data);
    /* errors */
    assert_int_equal(tqu_read_tail(in_tmp("gone"), 100, 5, &b, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "gone: No such file or directory");
    assert_int_equal(tqu_read_tail(tmp, 100, 5, &b, err, sizeof(err)), K8S_EINVAL);
    assert_contains(err, "not a regular file");
    /* out of memory */
    failalloc_fail_at(1);
    int rc = tqu_read_tail(in_tmp("big"), 4096, 3, &b, err, sizeof(err));
    failalloc_fail_at(0);
    assert_int_equal(rc, K8S_ENOMEM);
    assert_null(b.data);
    k8s_buf_release(&b);
}

static void test_read_file_cap(void **state)
{
    char err[256];
    k8s_buf b;
    (void)state;
    k8s_buf_init(&b, 0);
    put("ten", 10);
    assert_int_equal(tqu_read_file(in_tmp("ten"), 10, &b, err, sizeof(err)), K8S_OK);
    assert_int_equal(b.len, 10);
    assert_int_equal(tqu_read_file(in_tmp("ten"), 9, &b, err, sizeof(err)), K8S_ETOOBIG);
    assert_contains(err, "ten: larger than 9 bytes");
    assert_null(b.data);
    assert_int_equal(tqu_read_file(in_tmp("gone"), 9, &b, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "gone: No such file or directory");
    k8s_buf_release(&b);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_boundary),
        cmocka_unit_test(test_backup_boundary),
        cmocka_unit_test(test_backup_disabled_skips_rule_a),
        cmocka_unit_test(test_both_fail),
        cmocka_unit_test(test_missing_paths),
        cmocka_unit_test(test_backup_dir_not_yet_there),
        cmocka_unit_test(test_measurement_errors),
        cmocka_unit_test(test_real_statvfs),
        cmocka_unit_test_setup_teardown(test_real_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walk_many_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sha256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
