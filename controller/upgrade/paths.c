/*
 * paths.c - what the steps share: the package folders, the template,
 * update.sh's argv, vendor command lines, the window gate and the saving
 * of a manifest before it is changed.
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
#include "host/child.h"
#include "host/fsutil.h"
#include "host/roots.h"
#include "runtime/log.h"
#include "template.h"
#include "status.h"
#include "steps_int.h"

/* ------------------------------------------------------------------ paths */

void tqu__old_dir(const tqu_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run->spec.packages_root, run->spec.from_version);
}

void tqu__new_dir(const tqu_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run->spec.packages_root, run->spec.to_version);
}

void tqu__update_sh(const tqu_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s/update.sh", run->spec.packages_root, run->spec.to_version, PLAN_CLIENT);
}

int tqu__is_exec(const char *p)
{
    return tqu_is_file(p) && access(p, X_OK) == 0;
}

/* ---------------------------------------------------- folders are confined */

/* path for a message: control characters as '?', cut to fit */
static void shown(const char *path, char *buf, size_t len)
{
    size_t i;
    for (i = 0; path[i] && i + 1 < len; i++)
        buf[i] = (unsigned char)path[i] < 0x20 || path[i] == 0x7f ? '?' : path[i];
    buf[i] = '\0';
}

int tqu__confine(tqu_run *run, const char *field, const char *path, int strict, tqu_outcome *o)
{
    char why[PATH_MAX + 1024], p[512];

    if (tqu_roots_check(&run->ctl->opts->allowed_roots, path ? path : "", strict ? TQU_ROOTS_STRICT : 0, NULL, 0,
                        why, sizeof(why)) == 0)
        return 0;
    shown(path ? path : "", p, sizeof(p));
    tqu_out(o, TQU_OUT_FAILED, "PathNotAllowed", "%s \"%s\" %s", field, p, why);
    tqu_log(TQU_WARN, "path refused", "key", run->key, "field", field, "path", p, "why", why, NULL);
    return -1;
}

int tqu__confine_spec(tqu_run *run, tqu_outcome *o)
{
    const tqu_spec *sp = &run->spec;
    char old_dir[PATH_MAX], new_dir[PATH_MAX], arch[PATH_MAX * 2], why[256], p[512];
    const char *kept = k8s_json_str(run->obj, "status", "backup", "folder", NULL);

    if (tqu__confine(run, "spec.backupDir", sp->backup_dir, 0, o))
        return -1;
    if (run->dir[0] && tqu__confine(run, kept && !strcmp(kept, run->dir) ? "status.backup.folder"
                                                                         : "spec.backupDir (the request's folder)",
                                    run->dir, 0, o))
        return -1;
    if (tqu__confine(run, "spec.packages.root", sp->packages_root, 0, o))
        return -1;
    tqu__old_dir(run, old_dir, sizeof(old_dir));
    tqu__new_dir(run, new_dir, sizeof(new_dir));
    if (tqu__confine(run, "spec.packages.root/spec.fromVersion", old_dir, 0, o) ||
        tqu__confine(run, "spec.packages.root/spec.toVersion", new_dir, 0, o))
        return -1;
    if (sp->packages_archive[0]) {
        /* a file name in the new folder, or an absolute path */
        if (tqu_roots_clean(sp->packages_archive, 1, why, sizeof(why))) {
            shown(sp->packages_archive, p, sizeof(p));
            tqu_out(o, TQU_OUT_FAILED, "PathNotAllowed", "spec.packages.archive \"%s\" %s", p, why);
            return -1;
        }
        if (sp->packages_archive[0] == '/')
            snprintf(arch, sizeof(arch), "%s", sp->packages_archive);
        else
            snprintf(arch, sizeof(arch), "%s/%s", new_dir, sp->packages_archive);
        if (tqu__confine(run, "spec.packages.archive", arch, 0, o))
            return -1;
    }
    if (sp->template_path[0] && tqu__confine(run, "spec.template", sp->template_path, 0, o))
        return -1;
    if (sp->data_backup_enabled && tqu__confine(run, "spec.dataBackup.dir", sp->data_backup_dir, 0, o))
        return -1;
    if (tqu__confine(run, "spec.disk.dataRoot", sp->disk_data_root, 0, o) ||
        tqu__confine(run, "spec.disk.mongoDataDir", sp->disk_mongo_dir, 0, o))
        return -1;
    if (sp->cdn_cache_persistence && tqu__confine(run, "spec.cdn.cacheHostPath", sp->cdn_cache_host_path, 1, o))
        return -1;
    return 0;
}

/* The template chosen by Preflight is kept in the state folder so that
 * PaasCheck and Upgrade use the same one even if new files appear. */
int tqu__template_path(tqu_run *run, char *buf, size_t len, tqu_outcome *o)
{
    char f[PATH_MAX + 32], err[256], tdir[PATH_MAX];
    k8s_buf b;
    tqu_template t;

    /* a vendor command starts next: its folders, as they are now */
    if (tqu__confine_spec(run, o))
        return -1;
    snprintf(f, sizeof(f), "%s/template", run->dir);
    k8s_buf_init(&b, PATH_MAX);
    if (tqu_read_file(f, PATH_MAX, &b, err, sizeof(err)) == 0 && b.len > 1 && b.data[0] == '/') {
        snprintf(buf, len, "%.*s", (int)strcspn(b.data, "\n"), b.data);
        k8s_buf_release(&b);
        return tqu__confine(run, run->spec.template_path[0] ? "spec.template" : "the template found in spec.packages.root",
                            buf, 0, o);
    }
    k8s_buf_release(&b);
    tqu_template_default_dir(run->spec.packages_root, tdir, sizeof(tdir));
    tqu_template_find(tdir, run->spec.template_path[0] ? run->spec.template_path : NULL, &t);
    if (t.reason) {
        tqu_out(o, TQU_OUT_BLOCKED, t.reason, "%s", t.message);
        return -1;
    }
    snprintf(buf, len, "%s", t.path);
    return tqu__confine(run, run->spec.template_path[0] ? "spec.template" : "the template found in spec.packages.root",
                        buf, 0, o);
}

/* argv of update.sh, with the password slot given (*** for display). */
void tqu__upgrade_argv(const tqu_run *run, const char *tmpl, const char *password, char *o_dir,
                         size_t olen, char *n_dir, size_t nlen, char *port, size_t plen,
                         const char *argv[20])
{
    tqu__old_dir(run, o_dir, olen);
    tqu__new_dir(run, n_dir, nlen);
    snprintf(port, plen, "%d", run->spec.ssh_port);
    int i = 0;
    argv[i++] = "sh";
    argv[i++] = "update.sh";
    argv[i++] = "-s"; argv[i++] = o_dir;
    argv[i++] = "-n"; argv[i++] = n_dir;
    argv[i++] = "-t"; argv[i++] = tmpl;
    argv[i++] = "-u"; argv[i++] = run->spec.ssh_user;
    argv[i++] = "-P"; argv[i++] = password;
    argv[i++] = "-p"; argv[i++] = port;
    argv[i++] = "-d"; argv[i++] = run->spec.data_backup_enabled ? run->spec.data_backup_dir : "false";
    argv[i] = NULL;
}

void tqu__format_cmd(const tqu_run *run, char *const *argv, unsigned long long secret, char *buf,
                       size_t len)
{
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = argv, .secret_args = secret };
    tqu_child_format_argv(&cs, buf, len);
}

/* ------------------------------------------------------------- the window */

int tqu__window_gate(tqu_run *run, tqu_outcome *o, const char *what)
{
    return tqu_window_gate(run->spec.has_window, run->spec.window_start, run->spec.window_end,
                           run->spec.window_start_text, run->spec.window_end_text, o, what);
}


/* Save obj as <dir>/<file> (once: an existing copy is the original), and
 * record it in status.backup.files[]. */
int tqu__save_manifest(tqu_run *run, const cJSON *obj, const char *file, char *err, size_t errlen)
{
    return tqu_backup_keep_json(run->status, run->dir, file, obj, err, errlen);
}
