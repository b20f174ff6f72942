/*
 * extract.c - Preflight's extraction of the new package from
 * spec.packages.archive, when update.sh is not there yet: cancellable,
 * never two tars into one folder, never half a package in place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "host/child.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "steps_int.h"

/*
 * The archive is extracted into a fresh folder inside the new package
 * folder, EXTRACT_TMP<pid>-<n> (a tar left running by a killed controller
 * never writes where the new one does), and its entries renamed into place only when tar
 * has finished: a tar killed half-way (the controller stopping, a crash)
 * leaves only that folder, removed before the next try. tar runs with the
 * controller's stop flag as its cancel: SIGTERM to its process group, then
 * SIGKILL, so shutdown is not held up by a long extraction.
 */
#define EXTRACT_TMP ".tqu-extract-"        /* + <pid>-<n>: one per attempt */
#define EXTRACT_GRACE_MS 2000

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        return -1;
    return 0;
}

/* Remove the folder tree at path (symlinks not followed, other mounts not
 * entered); 0 when it is gone. */
static int remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Remove every leftover EXTRACT_TMP folder in dir (best effort); how many
 * were found. */
static int remove_leftovers(const char *dir, int remove)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX * 2];
    int found = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, EXTRACT_TMP, strlen(EXTRACT_TMP)))
            continue;
        found++;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (remove && remove_tree(p) < 0)
            tqu_log(TQU_WARN, "cannot remove an unfinished extraction", "path", p, "error", strerror(errno), NULL);
    }
    closedir(d);
    return found;
}

/* Every entry of tmp renamed into dir, none replacing one there. 0, or -1
 * with the clashing or failing name in bad. */
static int move_entries(const char *tmp, const char *dir, char *bad, size_t blen)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (!d || dfd < 0) {
        snprintf(bad, blen, "%s: %s", !d ? tmp : dir, strerror(errno));
        rc = -1;
        goto out;
    }
    for (;;) {
        errno = 0;
        if (!(e = readdir(d))) {
            if (errno) {
                snprintf(bad, blen, "%s: %s", tmp, strerror(errno));
                rc = -1;
            }
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (renameat2(dirfd(d), e->d_name, dfd, e->d_name, RENAME_NOREPLACE) < 0) {
            snprintf(bad, blen, "%s/%s: %s", dir, e->d_name,
                     errno == EEXIST ? "already there (from an earlier extraction?): remove it"
                                     : strerror(errno));
            rc = -1;
            break;
        }
    }
    if (!rc && fsync(dfd) < 0) {
        snprintf(bad, blen, "%s: %s", dir, strerror(errno));
        rc = -1;
    }
out:
    if (d)
        closedir(d);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

/* Extract the new package when update.sh is not there yet. */
int tqu__extract_archive(tqu_run *run, tqu_outcome *o, char *note, size_t nlen)
{
    char n[PATH_MAX], arch[PATH_MAX * 2], log[PATH_MAX + 32], ferr[512], cmd[TQU_CHILD_CMD_MAX];
    char mark[PATH_MAX + 32], tmp[PATH_MAX + 32];
    tqu_child_result r;

    tqu__new_dir(run, n, sizeof(n));
    if (run->spec.packages_archive[0] == '/')
        snprintf(arch, sizeof(arch), "%s", run->spec.packages_archive);
    else
        snprintf(arch, sizeof(arch), "%s/%s", n, run->spec.packages_archive);
    /* what tar reads and where it writes, as they are now */
    if (tqu__confine(run, "spec.packages.archive", arch, 0, o) ||
        tqu__confine(run, "spec.packages.root/spec.toVersion", n, 0, o))
        return -1;
    if (!tqu_is_file(arch)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
            "the new package %s has no update.sh and the archive %s (spec.packages.archive) is not there: "
            "copy the release package to the deploy machine", n, arch);
        return -1;
    }
    if (run->spec.dry_run) {
        snprintf(note, nlen, "would extract %s into %s", arch, n);
        return 0;
    }
    if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return -1;
    }
    snprintf(log, sizeof(log), "%s/extract.log", run->dir);
    snprintf(mark, sizeof(mark), "%s/extracted", run->dir);
    static unsigned long attempts;
    snprintf(tmp, sizeof(tmp), "%s/%s%ld-%lu", n, EXTRACT_TMP, (long)getpid(),
             __atomic_add_fetch(&attempts, 1, __ATOMIC_RELAXED));
    unlink(mark);
    /* leftovers of a tar that never finished: their files are not trusted */
    remove_leftovers(n, 1);
    if (mkdir(tmp, 0755) < 0) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageExtractFailed", "cannot prepare %s for the extraction: %s", tmp,
            strerror(errno));
        return -1;
    }
    const char *argv[] = { "tar", "-xf", arch, "-C", tmp, NULL };
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv,
                          .cwd = n, .log_path = log, .log_truncate = 1, .timeout_ms = EXTRACT_TIMEOUT_MS,
                          .grace_ms = EXTRACT_GRACE_MS, .cancel = &run->ctl->stopping };
    tqu__format_cmd(run, (char *const *)argv, 0, cmd, sizeof(cmd));
    tqu_log(TQU_INFO, "extracting the new package", "key", run->key, "command", cmd, NULL);
    int rc = tqu_child_run(&cs, &r);
    if (!rc && r.cancelled) {
        /* the next start removes the partial folder and extracts again (not now:
           shutdown must be quick) */
        tqu_out(o, TQU_OUT_ERROR, "Interrupted", "the extraction of %s was stopped by the controller stopping; "
            "it runs again", arch);
        return -1;
    }
    if (rc || !r.exited || r.exit_code != 0) {
        remove_tree(tmp);
        tqu_out(o, TQU_OUT_BLOCKED, "PackageExtractFailed", "%s failed: %s%s%s", cmd,
            r.error[0] ? r.error : r.timed_out ? "timed out" : "non-zero exit", r.tail[0] ? "; last output: " : "",
            r.tail);
        return -1;
    }
    ferr[0] = '\0';
    if (move_entries(tmp, n, ferr, sizeof(ferr)) || rmdir(tmp) < 0) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageExtractFailed", "%s extracted, but not moved into place: %s", arch,
            ferr[0] ? ferr : strerror(errno));
        return -1;
    }
    /* only a tar that finished makes the package count as extracted */
    if (tqu_write_file_atomic(mark, arch, strlen(arch), 0600, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return -1;
    }
    snprintf(note, nlen, "extracted %s", arch);
    return 0;
}

/* An extraction of ours that never finished (the controller died during
 * it, or was stopped): update.sh may exist while the package is
 * incomplete; or its temporary folder is still there. */
int tqu__extraction_interrupted(const tqu_run *run)
{
    char log[PATH_MAX + 32], mark[PATH_MAX + 32], n[PATH_MAX];
    snprintf(log, sizeof(log), "%s/extract.log", run->dir);
    snprintf(mark, sizeof(mark), "%s/extracted", run->dir);
    tqu__new_dir(run, n, sizeof(n));
    return (tqu_is_file(log) && !tqu_is_file(mark)) || remove_leftovers(n, 0) > 0;
}
