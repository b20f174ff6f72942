/*
 * validate.c - step 1, Validate: the referenced TianqingUpgrade exists, no
 * vendor command of it runs, and every file the targets need is in its
 * backup folder with the sha256 its status recorded. Also the loader the
 * later steps use (they check again right before they act).
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "host/fsutil.h"
#include "restore.h"

#define MANIFEST_MAX ((size_t)256 << 20)   /* the full backup of 2,000+ Deployments */

void tqu__restore_obj_name(const tqu_restore_obj *ob, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s/%s", ob->kind, ob->ns, ob->name);
}

void tqu__restore_set_release(tqu_restore_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        cJSON_Delete(set->objs[i].saved);
    free(set->objs);
    cJSON_Delete(set->upgrade);
    memset(set, 0, sizeof(*set));
}

static void note(tqu_restore_set *set, const char *fmt, const char *what)
{
    size_t off = strlen(set->notes);
    snprintf(set->notes + off, sizeof(set->notes) - off, "%s", off ? "; " : "");
    off = strlen(set->notes);
    snprintf(set->notes + off, sizeof(set->notes) - off, fmt, what);
}

/* The entry of status.backup.files[] named name, or NULL. */
static const cJSON *file_entry(const cJSON *upgrade, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, k8s_json_get(upgrade, "status", "backup", "files", NULL)) {
        const char *n = k8s_json_str(e, "name", NULL);
        if (n && !strcmp(n, name))
            return e;
    }
    return NULL;
}

/* path is in the folder and its sha256 is want: 0, or -1 with o Failed. */
static int check_file(const tqu_restore_set *set, const char *what, const char *path, const char *want,
                      tqu_outcome *o)
{
    char hex[65], err[PATH_MAX + 256];
    size_t fl = strlen(set->folder);
    struct stat st;

    if (!path || !want || strncmp(path, set->folder, fl) || path[fl] != '/' || strstr(path, "/../")) {
        tqu_out(o, TQU_OUT_FAILED, "BackupCorrupt",
            "the upgrade's record of %s is incomplete or points outside its backup folder %s: nothing was restored",
            what, set->folder);
        return -1;
    }
    if (stat(path, &st) != 0) {
        tqu_out(o, TQU_OUT_FAILED, "BackupFileMissing", "%s of the upgrade's backup is missing: %s: %s; nothing was restored",
            what, path, strerror(errno));
        return -1;
    }
    if (tqu_sha256_file(path, hex, NULL, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_FAILED, "BackupFileMissing", "%s of the upgrade's backup cannot be read: %s; nothing was restored",
            what, err);
        return -1;
    }
    if (strcmp(hex, want)) {
        tqu_out(o, TQU_OUT_FAILED, "BackupCorrupt",
            "%s has sha256 %s, the upgrade recorded %s: the file changed since it was saved (tampered or "
            "truncated); nothing was restored", path, hex, want);
        return -1;
    }
    return 0;
}

static int add_obj(tqu_restore_set *set, const char *from, cJSON *saved, int cdn, tqu_outcome *o)
{
    const char *kind = k8s_json_str(saved, "kind", NULL);
    const char *ns = k8s_json_str(saved, "metadata", "namespace", NULL);
    const char *name = k8s_json_str(saved, "metadata", "name", NULL);
    tqu_restore_obj *ob;

    if (!kind || !ns || !name || strlen(ns) >= sizeof(ob->ns) || strlen(name) >= sizeof(ob->name) ||
        (strcmp(kind, "Deployment") && strcmp(kind, "Service"))) {
        tqu_out(o, TQU_OUT_FAILED, "BackupCorrupt", "%s holds no Deployment or Service with a namespace and a name",
            from);
        cJSON_Delete(saved);
        return -1;
    }
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->objs[i].kind, kind) && !strcmp(set->objs[i].ns, ns) && !strcmp(set->objs[i].name, name)) {
            /* the earliest copy wins: the full backup comes first */
            set->objs[i].cdn |= cdn;
            cJSON_Delete(saved);
            return 0;
        }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        tqu_restore_obj *p = realloc(set->objs, cap * sizeof(*p));
        if (!p) {
            tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
            cJSON_Delete(saved);
            return -1;
        }
        set->objs = p;
        set->cap = cap;
    }
    ob = &set->objs[set->n++];
    memset(ob, 0, sizeof(*ob));
    ob->kind = !strcmp(kind, "Deployment") ? "Deployment" : "Service";
    ob->res = !strcmp(kind, "Deployment") ? &K8S_DEPLOYMENTS : &K8S_SERVICES;
    snprintf(ob->ns, sizeof(ob->ns), "%s", ns);
    snprintf(ob->name, sizeof(ob->name), "%s", name);
    snprintf(ob->from, sizeof(ob->from), "%s", from);
    ob->saved = saved;
    ob->cdn = cdn;
    return 0;
}

static cJSON *read_json(const char *path, size_t cap, tqu_outcome *o)
{
    char err[PATH_MAX + 256];
    k8s_buf b;
    cJSON *j = NULL;

    k8s_buf_init(&b, cap);
    if (tqu_read_file(path, cap, &b, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_FAILED, "BackupFileMissing", "%s; nothing was restored", err);
    } else if (k8s_json_parse(b.data, b.len, &j, NULL)) {
        tqu_out(o, TQU_OUT_FAILED, "BackupCorrupt", "%s is not JSON; nothing was restored", path);
        j = NULL;
    }
    k8s_buf_release(&b);
    return j;
}

/* A kept manifest by its name in status.backup.files[]. 0 (added, or
 * nothing to restore: noted), or -1. */
static int kept_manifest(tqu_restore_set *set, const char *file, const char *what, tqu_outcome *o)
{
    const cJSON *e = file_entry(set->upgrade, file);
    char p[PATH_MAX + 256];
    struct stat st;
    cJSON *j;

    if (!e) {
        snprintf(p, sizeof(p), "%s/%s", set->folder, file);
        if (stat(p, &st) == 0) {
            tqu_out(o, TQU_OUT_FAILED, "BackupNotRecorded",
                "%s is in the backup folder but the upgrade's status.backup.files has no checksum for it "
                "(saved by an older controller?): it cannot be checked, so nothing was restored", p);
            return -1;
        }
        note(set, "%s: the upgrade saved nothing (it changed nothing there)", what);
        return 0;
    }
    if (check_file(set, file, k8s_json_str(e, "path", NULL), k8s_json_str(e, "sha256", NULL), o))
        return -1;
    if (!(j = read_json(k8s_json_str(e, "path", NULL), 16 << 20, o)))
        return -1;
    return add_obj(set, k8s_json_str(e, "path", NULL), j, !strcmp(what, "cdn"), o);
}

/* The full backup's items that spec.targets.deployments names. */
static int full_backup(tqu_restore_job *job, tqu_restore_set *set, tqu_outcome *o)
{
    const char *path = k8s_json_str(set->upgrade, "status", "backup", "manifestsFile", NULL);
    const char *sha = k8s_json_str(set->upgrade, "status", "backup", "manifestsSha256", NULL);
    const cJSON *it;
    cJSON *list;
    int rc = -1;

    if (check_file(set, "the Deployment manifests (status.backup.manifestsFile)", path, sha, o))
        return -1;
    if (!(list = read_json(path, MANIFEST_MAX, o)))
        return -1;
    for (size_t i = 0; i < job->spec.ndeployments; i++) {
        const char *want = job->spec.deployments[i], *slash = strchr(want, '/');
        int found = 0;
        cJSON_ArrayForEach(it, k8s_json_get(list, "items", NULL)) {
            const char *ns = k8s_json_str(it, "metadata", "namespace", NULL);
            const char *name = k8s_json_str(it, "metadata", "name", NULL);
            if (ns && name && strlen(ns) == (size_t)(slash - want) && !strncmp(ns, want, strlen(ns)) &&
                !strcmp(name, slash + 1))
                found = 1;
        }
        if (!found) {
            tqu_out(o, TQU_OUT_FAILED, "DeploymentNotInBackup",
                "Deployment %s is not in the upgrade's full backup %s: remove it from spec.targets.deployments",
                want, path);
            goto out;
        }
    }
    cJSON_ArrayForEach(it, k8s_json_get(list, "items", NULL)) {
        const char *ns = k8s_json_str(it, "metadata", "namespace", NULL);
        const char *name = k8s_json_str(it, "metadata", "name", NULL);
        int want = job->spec.all_deployments;
        for (size_t i = 0; !want && ns && name && i < job->spec.ndeployments; i++) {
            const char *d = job->spec.deployments[i], *slash = strchr(d, '/');
            want = strlen(ns) == (size_t)(slash - d) && !strncmp(ns, d, strlen(ns)) && !strcmp(name, slash + 1);
        }
        if (!want)
            continue;
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (!copy) {
            tqu_out(o, TQU_OUT_ERROR, "OutOfMemory", "out of memory");
            goto out;
        }
        if (!k8s_json_str(copy, "kind", NULL))
            k8s_json_put(copy, "kind", cJSON_CreateString("Deployment"));
        if (add_obj(set, path, copy, 0, o))
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(list);
    return rc;
}

int tqu__restore_sources(tqu_restore_job *job, tqu_restore_set *set, tqu_outcome *o)
{
    k8s_err err;
    char ebuf[1200], parent[PATH_MAX];
    const cJSON *st;
    const char *folder, *up_state = NULL, *uid;
    cJSON *s;

    memset(set, 0, sizeof(*set));
    if (k8s_get(job->ctl->client, &TQU_RESTORE_UPGRADES, job->ns, job->spec.upgrade, &set->upgrade, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_FAILED, "UpgradeNotFound",
                "TianqingUpgrade %s/%s not found: spec.upgradeRef.name must name an upgrade in this namespace "
                "(its backups are the source)", job->ns, job->spec.upgrade);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read TianqingUpgrade %s/%s: %s", job->ns, job->spec.upgrade,
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    st = k8s_json_get(set->upgrade, "status", NULL);
    /* never beside a vendor command: update.sh may be rewriting what we
     * would put back */
    cJSON_ArrayForEach(s, k8s_json_get(st, "steps", NULL)) {
        const char *n = k8s_json_str(s, "name", NULL);
        if (n && !strcmp(n, "Upgrade"))
            up_state = k8s_json_str(s, "state", NULL);
    }
    if ((up_state && !strcmp(up_state, "Running")) ||
        (k8s_json_get(st, "upgrade", "pid", NULL) && !k8s_json_get(st, "upgrade", "exitCode", NULL))) {
        tqu_out(o, TQU_OUT_BLOCKED, "VendorCommandRunning",
            "TianqingUpgrade %s/%s is running the vendor's update.sh: the restore waits until it has ended "
            "(or set spec.stop: true on the upgrade to stop it)", job->ns, job->spec.upgrade);
        return -1;
    }
    folder = k8s_json_str(st, "backup", "folder", NULL);
    if (!folder || folder[0] != '/' || strlen(folder) >= sizeof(set->folder) - 64) {
        tqu_out(o, TQU_OUT_FAILED, "BackupNotFound",
            "TianqingUpgrade %s/%s has no backup (status.backup.folder): it changed nothing that can be restored",
            job->ns, job->spec.upgrade);
        return -1;
    }
    snprintf(set->folder, sizeof(set->folder), "%s", folder);
    snprintf(parent, sizeof(parent), "%s", folder);
    /* the uid from obj as it is now: job->uid points into the object read
     * at the start, which the engine's first status write replaced */
    uid = k8s_json_str(job->obj, "metadata", "uid", NULL);
    snprintf(set->dir, sizeof(set->dir), "%s/%s.%s.%s.restore", dirname(parent), job->ns, job->name,
             uid ? uid : "nouid");

    /* the full backup first: the state before the upgrade changed anything */
    if ((job->spec.all_deployments || job->spec.ndeployments) && full_backup(job, set, o))
        return -1;
    if (job->spec.sabre && (kept_manifest(set, "sabre-server.deployment.json", "sabre", o) ||
                            kept_manifest(set, "sabre-server-service.service.json", "sabre Service", o)))
        return -1;
    if (job->spec.cdn && kept_manifest(set, "darwin-cdn.before-tuning.json", "cdn", o))
        return -1;
    if (job->spec.update_script) {
        const cJSON *e = file_entry(set->upgrade, "update.sh");
        const char *p = k8s_json_str(e, "path", NULL), *t = k8s_json_str(e, "target", NULL);
        if (!e) {
            note(set, "%s: the upgrade did not edit it (no original kept)", "update.sh");
        } else if (!t || t[0] != '/' || strlen(t) >= sizeof(set->script_target) || !p ||
                   strlen(p) >= sizeof(set->script_orig)) {
            tqu_out(o, TQU_OUT_FAILED, "BackupCorrupt", "the upgrade's record of the original update.sh is incomplete");
            return -1;
        } else {
            if (check_file(set, "the original update.sh", p, k8s_json_str(e, "sha256", NULL), o))
                return -1;
            set->script = 1;
            snprintf(set->script_orig, sizeof(set->script_orig), "%s", p);
            snprintf(set->script_target, sizeof(set->script_target), "%s", t);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- Validate */

void tqu__restore_step_validate(tqu_job *job, tqu_outcome *o)
{
    tqu_restore_job *r = (tqu_restore_job *)job;
    tqu_restore_set set;

    if (tqu__restore_sources(r, &set, o) == 0)
        tqu_out(o, TQU_OUT_DONE, "BackupVerified",
            "TianqingUpgrade %s: %zu object%s and %s to restore from %s, checksums match%s%s", r->spec.upgrade,
            set.n, set.n == 1 ? "" : "s", set.script ? "update.sh" : "no script", set.folder,
            set.notes[0] ? "; " : "", set.notes);
    tqu__restore_set_release(&set);
}
