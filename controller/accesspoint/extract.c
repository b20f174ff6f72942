/*
 * extract.c - step Extract: the node package's md5 (spec.packages.md5, or
 * the 32-hex digest its vendor file name ends with) checked, then the
 * archive extracted into <root>/<toVersion> with tar. No archive: the
 * package is unpacked already (Skipped). Re-running it extracts again
 * (tar overwrites): a crash half-way is repaired by the next run.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "host/fsutil.h"
#include "ap_int.h"

/* The 32 hex digits the file name ends with, before its extensions
 * ("node-10.7.0.2800-<md5>.tar.gz"): the rightmost run of exactly 32 hex
 * digits followed by a '.' or the end. */
int tqu__ap_md5_from_name(const char *path, char out[33])
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    for (size_t end = len; end >= 32; end--) {
        size_t i;
        if (end < len && base[end] != '.')
            continue;
        if (end > 32 && isxdigit((unsigned char)base[end - 33]))
            continue;
        for (i = end - 32; i < end && isxdigit((unsigned char)base[i]); i++)
            ;
        if (i != end)
            continue;
        for (i = 0; i < 32; i++)
            out[i] = (char)tolower((unsigned char)base[end - 32 + i]);
        out[32] = '\0';
        return 0;
    }
    return -1;
}

void tqu__ap_step_extract(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char arch[PATH_MAX * 2], want[33], got[33], err[PATH_MAX + 256], ndir[PATH_MAX];
    tqu_child_result res;

    if (!run->spec.archive[0]) {
        tqu_out(o, TQU_OUT_SKIPPED, NULL, "no spec.packages.archive: the package is unpacked already");
        return;
    }
    if (run->spec.archive[0] == '/')
        snprintf(arch, sizeof(arch), "%s", run->spec.archive);
    else
        snprintf(arch, sizeof(arch), "%s/%s", run->spec.packages_root, run->spec.archive);
    if (tqu__ap_confine(run, "spec.packages.archive", arch, o))
        return;
    if (run->spec.md5[0]) {
        for (int i = 0; i < 33; i++)
            want[i] = (char)tolower((unsigned char)run->spec.md5[i]);
    } else if (tqu__ap_md5_from_name(arch, want)) {
        tqu_out(o, TQU_OUT_BLOCKED, "ChecksumUnknown",
                "%s: its name ends with no md5 digest; set spec.packages.md5 to the one the vendor gives", arch);
        return;
    }
    if (tqu__ap_md5_file(arch, got, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageUnreadable", "%s", err);
        return;
    }
    if (strcmp(want, got)) {
        tqu_out(o, TQU_OUT_FAILED, "ArchiveChecksumMismatch",
                "%s has md5 %s, expected %s: the package is damaged or not the vendor's; copy it again", arch, got, want);
        return;
    }
    tqu__ap_new_dir(run, ndir, sizeof(ndir));
    if (tqu_mkdir_p(ndir, 0755, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageDirUnwritable", "%s", err);
        return;
    }
    char *argv[] = { "tar", "-xf", arch, "-C", ndir, NULL };
    if (tqu__ap_run(run, argv, ndir, 7200, "extract.log", &res, o))
        return;
    if (!res.exited || res.exit_code) {
        tqu_out(o, TQU_OUT_FAILED, "ExtractFailed", "tar -xf %s ended with %d: %s", arch, res.exit_code, res.tail);
        return;
    }
    tqu__ap_plan_client(run, ndir, sizeof(ndir));
    if (!tqu_is_dir(ndir)) {
        tqu_out(o, TQU_OUT_FAILED, "PackageLayoutUnknown", "%s holds no %s after extraction: not a node package",
                arch, AP_PLAN_CLIENT);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "md5 %s checked; extracted into %s/%s", got, run->spec.packages_root,
            run->spec.to_version);
}
