/*
 * common.c - what the access point upgrade's steps share: the package
 * layout, folders confined to the allowed roots, the window, file copies
 * and checksums, the installed template, short vendor commands.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "host/fsutil.h"
#include "host/roots.h"
#include "runtime/log.h"
#include "ap_int.h"

void tqu__ap_new_dir(const tqu_ap_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run->spec.packages_root, run->spec.to_version);
}

void tqu__ap_plan_client(const tqu_ap_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s", run->spec.packages_root, run->spec.to_version, AP_PLAN_CLIENT);
}

void tqu__ap_new_saas(const tqu_ap_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/tq_saas", run->spec.packages_root, run->spec.to_version);
}

void tqu__ap_images(const tqu_ap_run *run, char *buf, size_t len)
{
    if (run->spec.images[0])
        snprintf(buf, len, "%s", run->spec.images);
    else
        snprintf(buf, len, "%s/%s/tq_saas/%s", run->spec.packages_root, run->spec.to_version, AP_IMAGES);
}

int tqu__ap_confine(tqu_ap_run *run, const char *field, const char *path, tqu_outcome *o)
{
    char why[PATH_MAX + 1024], p[512];
    size_t i;

    if (tqu_roots_check(&run->ctl->opts->allowed_roots, path ? path : "", 0, NULL, 0, why, sizeof(why)) == 0)
        return 0;
    for (i = 0; path && path[i] && i + 1 < sizeof(p); i++)
        p[i] = (unsigned char)path[i] < 0x20 || path[i] == 0x7f ? '?' : path[i];
    p[i] = '\0';
    tqu_out(o, TQU_OUT_FAILED, "PathNotAllowed", "%s \"%s\" %s", field, p, why);
    tqu_log(TQU_WARN, "path refused", "key", run->key, "field", field, "path", p, "why", why, NULL);
    return -1;
}

/* p is q or a folder above it (both resolved) */
static int holds(const char *p, const char *q)
{
    size_t n = strlen(p);
    return p[0] && q[0] && !strncmp(p, q, n) && (q[n] == '\0' || q[n] == '/' || (n == 1 && p[0] == '/'));
}

/* The legacy install folder, removed with rm -rf: strictly below one of
 * the allowed roots (never a root itself) or, while the controller runs
 * with the default root only (/qaxdata), strictly below /data01, where
 * the Docker-based access point lives (design.md section 8); and never
 * the request's folder or spec.backupDir, nor a folder holding them. */
int tqu__ap_confine_legacy(tqu_ap_run *run, tqu_outcome *o)
{
    const tqu_roots *r = &run->ctl->opts->allowed_roots;
    const char *dir = run->spec.legacy_dir;
    char why[PATH_MAX + 256], res[PATH_MAX], other[PATH_MAX];
    tqu_roots d;
    int ok = 0;

    res[0] = '\0';
    if (r->n == 1 && !strcmp(r->given[0], "/qaxdata")) {
        tqu_roots_init(&d);
        ok = tqu_roots_add(&d, "/data01", why, sizeof(why)) == 0 &&
             tqu_roots_check(&d, dir, TQU_ROOTS_STRICT, res, sizeof(res), why, sizeof(why)) == 0;
        tqu_roots_release(&d);
    }
    if (!ok && tqu_roots_check(r, dir, TQU_ROOTS_STRICT, res, sizeof(res), why, sizeof(why)))
        goto refused;
    const char *mine[] = { run->dir, run->spec.backup_dir };
    for (size_t i = 0; i < 2; i++) {
        if (!mine[i][0])
            continue;
        if (tqu_roots_resolve(mine[i], other, sizeof(other), why, sizeof(why)) || holds(res, other)) {
            if (holds(res, other))
                snprintf(why, sizeof(why), "resolves to \"%s\", which holds %s (%s)", res,
                         i ? "spec.backupDir" : "the request's folder", other);
            goto refused;
        }
    }
    return 0;
refused:
    tqu_out(o, TQU_OUT_FAILED, "PathNotAllowed", "spec.legacy.installDir \"%s\" %s", dir, why);
    tqu_log(TQU_WARN, "path refused", "key", run->key, "field", "spec.legacy.installDir", "why", why, NULL);
    return -1;
}

int tqu__ap_confine_spec(tqu_ap_run *run, tqu_outcome *o)
{
    const tqu_ap_spec *sp = &run->spec;
    char p[PATH_MAX * 2];

    if (tqu__ap_confine(run, "spec.backupDir", sp->backup_dir, o) ||
        (run->dir[0] && tqu__ap_confine(run, "spec.backupDir (the request's folder)", run->dir, o)))
        return -1;
    if (sp->legacy)
        return tqu__ap_confine_legacy(run, o);
    if (tqu__ap_confine(run, "spec.packages.root", sp->packages_root, o))
        return -1;
    tqu__ap_new_dir(run, p, sizeof(p));
    if (tqu__ap_confine(run, "spec.packages.root/spec.toVersion", p, o))
        return -1;
    if (sp->archive[0]) {
        if (sp->archive[0] == '/')
            snprintf(p, sizeof(p), "%s", sp->archive);
        else
            snprintf(p, sizeof(p), "%s/%s", sp->packages_root, sp->archive);
        if (tqu__ap_confine(run, "spec.packages.archive", p, o))
            return -1;
    }
    if (tqu__ap_confine(run, "spec.install.planClientDir", sp->plan_client_dir, o) ||
        tqu__ap_confine(run, "spec.install.saasDir", sp->saas_dir, o))
        return -1;
    tqu__ap_images(run, p, sizeof(p));
    if (tqu__ap_confine(run, "spec.images", p, o))
        return -1;
    if (sp->fixsvc_path[0] && tqu__ap_confine(run, "spec.fixsvc.path", sp->fixsvc_path, o))
        return -1;
    return 0;
}

int tqu__ap_window_gate(tqu_ap_run *run, tqu_outcome *o, const char *what)
{
    return tqu_window_gate(run->spec.has_window, run->spec.window_start, run->spec.window_end,
                           run->spec.window_start_text, run->spec.window_end_text, o, what);
}

int tqu__ap_copy_file(const char *src, const char *dst, mode_t mode, char *err, size_t errlen)
{
    char dir[PATH_MAX], buf[65536];
    const char *slash = strrchr(dst, '/');
    int in = -1, dfd = -1, rc = 0, e;
    tqu_atomic a;

    tqu_atomic_init(&a);
    if (!slash || (size_t)(slash - dst) >= sizeof(dir) || !slash[1])
        return tqu__seterr(err, errlen, K8S_EINVAL, "%s: not a file path", dst);
    memcpy(dir, dst, (size_t)(slash - dst));
    dir[slash - dst] = '\0';
    if (!dir[0])
        snprintf(dir, sizeof(dir), "/");
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = tqu__seterr(err, errlen, K8S_EIO, "%s: %s", src, strerror(errno));
        goto out;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = tqu__seterr(err, errlen, K8S_EIO, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if ((e = tqu_atomic_begin(&a, dfd, slash + 1, mode, (uid_t)-1, (gid_t)-1))) {
        rc = tqu__seterr(err, errlen, K8S_EIO, "%s: %s: %s", dst, a.op, strerror(e));
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = tqu__seterr(err, errlen, K8S_EIO, "%s: read: %s", src, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(a.fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = tqu__seterr(err, errlen, K8S_EIO, "%s: write: %s", dst, strerror(errno));
                goto out;
            }
            off += w;
        }
    }
    if ((e = tqu_atomic_commit(&a, 0)))
        rc = tqu__seterr(err, errlen, K8S_EIO, "%s: %s: %s", dst, a.op, strerror(e));
out:
    tqu_atomic_abort(&a);
    if (in >= 0)
        close(in);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static int md5_chunk(void *ud, const void *data, size_t len)
{
    return EVP_DigestUpdate(ud, data, len) == 1 ? 0 : K8S_ENOMEM;
}

int tqu__ap_md5_file(const char *path, char hex[33], char *err, size_t errlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int rc;

    hex[0] = '\0';
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
        rc = tqu__seterr(err, errlen, K8S_ENOMEM, "md5: cannot start");
        goto out;
    }
    rc = tqu_read_chunks(path, md5_chunk, ctx, err, errlen);
    if (rc)
        goto out;
    if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != 16) {
        rc = tqu__seterr(err, errlen, K8S_ENOMEM, "md5: cannot finish");
        goto out;
    }
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* The only darwin_template_*.yaml in dir: 1 found (name), 0 none, 2 several. */
static int find_template(const char *dir, char *name, size_t nlen, char *other, size_t olen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "darwin_template_", 16) || l <= 16 + 5 || strcmp(e->d_name + l - 5, ".yaml"))
            continue;
        if (n == 0)
            snprintf(name, nlen, "%s", e->d_name);
        else
            snprintf(other, olen, "%s", e->d_name);
        n++;
    }
    closedir(d);
    return n > 1 ? 2 : n;
}

int tqu__ap_deploy_template(tqu_ap_run *run, char *path, size_t plen, char *name, size_t nlen, tqu_outcome *o)
{
    const char *dirs[2] = { run->spec.saas_dir, run->spec.plan_client_dir };
    char other[NAME_MAX + 1] = "";

    for (int i = 0; i < 2; i++) {
        if (run->spec.deploy_id[0]) {
            snprintf(name, nlen, "darwin_template_%s.yaml", run->spec.deploy_id);
            snprintf(path, plen, "%s/%s", dirs[i], name);
            if (tqu_is_file(path))
                return tqu__ap_confine(run, "the installed template", path, o);
            continue;
        }
        int f = find_template(dirs[i], name, nlen, other, sizeof(other));
        if (f == 2) {
            tqu_out(o, TQU_OUT_BLOCKED, "TemplateAmbiguous",
                    "%s holds more than one darwin_template_<id>.yaml (%s, %s, ...): set spec.deployId", dirs[i], name,
                    other);
            return -1;
        }
        if (f == 1) {
            snprintf(path, plen, "%s/%s", dirs[i], name);
            return tqu__ap_confine(run, "the installed template", path, o);
        }
    }
    if (run->spec.deploy_id[0])
        tqu_out(o, TQU_OUT_BLOCKED, "TemplateNotFound", "darwin_template_%s.yaml is in neither %s nor %s (spec.deployId)",
                run->spec.deploy_id, dirs[0], dirs[1]);
    else
        tqu_out(o, TQU_OUT_BLOCKED, "TemplateNotFound",
                "no darwin_template_<id>.yaml in %s or %s: copy the access point's template there, or set spec.install",
                dirs[0], dirs[1]);
    return -1;
}

int tqu__ap_run(tqu_ap_run *run, char *const *argv, const char *cwd, double timeout_s, const char *log,
                tqu_child_result *res, tqu_outcome *o)
{
    char logp[PATH_MAX + 64], cmd[1024];
    snprintf(logp, sizeof(logp), "%s/%s", run->dir, log);
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = argv, .cwd = cwd, .log_path = logp,
                          .log_truncate = 1, .timeout_ms = (long)(timeout_s * 1000),
                          .cancel = &run->ctl->stopping };
    tqu_child_format_argv(&cs, cmd, sizeof(cmd));
    tqu_log(TQU_INFO, "running", "key", run->key, "command", cmd, "cwd", cwd, NULL);
    int rc = tqu_child_run(&cs, res);
    if (rc == 0)
        return 0;
    tqu_out(o, rc == TQU_CHILD_ENOTFOUND || rc == TQU_CHILD_ENOCWD ? TQU_OUT_BLOCKED : TQU_OUT_FAILED,
            rc == TQU_CHILD_ENOTFOUND ? "ToolNotFound" : "ToolNotStarted", "%s could not be started in %s: %s", argv[0],
            cwd, res->error);
    return -1;
}

void tqu__ap_keep_record(tqu_ap_run *run, const char *path, const char *kept)
{
    cJSON *files = cJSON_GetObjectItemCaseSensitive(run->status, "files"), *it;
    if (!files) {
        if (k8s_json_put(run->status, "files", cJSON_CreateArray()))
            return;
        files = cJSON_GetObjectItemCaseSensitive(run->status, "files");
    }
    cJSON_ArrayForEach(it, files) {
        const char *p = k8s_json_str(it, "path", NULL);
        if (p && !strcmp(p, path))
            return;
    }
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "path", path) || !cJSON_AddStringToObject(e, "kept", kept)) {
        cJSON_Delete(e);
        return;
    }
    k8s_json_append(files, e);
}

int tqu__ap_container_id(const char *w, size_t n)
{
    if (n < 12 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((w[i] >= '0' && w[i] <= '9') || (w[i] >= 'a' && w[i] <= 'f')))
            return 0;
    return 1;
}

int tqu__ap_before_vendor(tqu_ap_run *run, int write_rc, const char *what, tqu_outcome *o)
{
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader: %s is not run", what);
        return -1;
    }
    if (write_rc) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "the status could not be written first: %s is not run", what);
        return -1;
    }
    return 0;
}
