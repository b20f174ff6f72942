/*
 * template.c - darwin template discovery (see template.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "k8s.h"
#include "host/fsutil.h"
#include "template.h"

#define LIST_SHOWN 8        /* names listed in a message before "and N more" */

int tqu_template_default_dir(const char *packages_root, char *buf, size_t len)
{
    int n;
    size_t rl;

    if (!packages_root || !*packages_root || !buf || !len)
        return K8S_EINVAL;
    rl = strlen(packages_root);
    while (rl > 1 && packages_root[rl - 1] == '/')
        rl--;
    n = snprintf(buf, len, "%.*s/%s", (int)rl, strcmp(packages_root, "/") == 0 ? "" : packages_root,
                 TQU_TEMPLATE_SUBDIR);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return K8S_EINVAL;
    }
    return K8S_OK;
}

/* ------------------------------------------------------------- timestamps */

static unsigned digits(const char *s, int n)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (unsigned)(s[i] - '0');
    return v;
}

/* YYYYMMDD[hhmm[ss[SSS]]] -> ms, validating every field. */
static int calendar_ms(const char *s, size_t len, long long *ms)
{
    unsigned y = digits(s, 4), mo = digits(s + 4, 2), d = digits(s + 6, 2);
    unsigned h = 0, mi = 0, sec = 0, milli = 0;
    time_t t;

    if (len >= 12) {
        h = digits(s + 8, 2);
        mi = digits(s + 10, 2);
    }
    if (len >= 14)
        sec = digits(s + 12, 2);
    if (len >= 17)
        milli = digits(s + 14, 3);
    if (y < 1970 || k8s_time_from_utc((int)y, (int)mo, (int)d, (int)h, (int)mi, (int)sec, &t) != K8S_OK)
        return K8S_EINVAL;
    *ms = (long long)t * 1000 + milli;
    return K8S_OK;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

int tqu_template_name_time(const char *name, long long *ms)
{
    const size_t pl = sizeof(TQU_TEMPLATE_UPDATE_PREFIX) - 1;
    const char *ts;
    size_t len;
    long long v = 0;

    if (!name || !ms || strncmp(name, TQU_TEMPLATE_UPDATE_PREFIX, pl) != 0 || !has_suffix(name, ".yaml"))
        return K8S_EINVAL;
    ts = name + pl;
    len = strlen(ts) - 5;
    if (len == 0 || len > 17)
        return K8S_EINVAL;
    for (size_t i = 0; i < len; i++)
        if (ts[i] < '0' || ts[i] > '9')
            return K8S_EINVAL;
    switch (len) {
    case 8: case 12: case 14: case 17:
        return calendar_ms(ts, len, ms);
    case 9: case 10: case 13:
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (ts[i] - '0');
        *ms = len == 13 ? v : v * 1000;
        return K8S_OK;
    default:
        return K8S_EINVAL;
    }
}

/* ------------------------------------------------------------- discovery */

typedef struct cand {
    char *name;
    long long ms;
} cand;

typedef struct cand_list {
    cand *v;
    size_t n, alloc;
} cand_list;

static int cand_add(cand_list *l, const char *name, long long ms)
{
    if (l->n == l->alloc) {
        size_t na = l->alloc ? l->alloc * 2 : 8;
        cand *nv = realloc(l->v, na * sizeof(*nv));
        if (!nv)
            return K8S_ENOMEM;
        l->v = nv;
        l->alloc = na;
    }
    if (!(l->v[l->n].name = strdup(name)))
        return K8S_ENOMEM;
    l->v[l->n++].ms = ms;
    return K8S_OK;
}

static void cand_release(cand_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

/* Newest first; equal times by name, for stable messages. */
static int cmp_newest(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->ms != y->ms)
        return x->ms > y->ms ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const cand *)a)->name, ((const cand *)b)->name);
}

/* Append to out->message (truncating quietly: it is a bounded one-liner). */
#define msg_add(out, ...) tqu__appendf((out)->message, sizeof((out)->message), NULL, __VA_ARGS__)

/* "a, b, c and 3 more" of l->v[from..to). */
static void msg_list(tqu_template *out, const cand_list *l, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (i - from == LIST_SHOWN) {
            msg_add(out, " and %zu more", to - i);
            return;
        }
        msg_add(out, "%s%s", i > from ? ", " : "", l->v[i].name);
    }
}

static int fail(tqu_template *out, int rc, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(tqu_template *out, int rc, const char *reason, const char *fmt, ...)
{
    va_list ap;
    out->path[0] = '\0';
    out->kind = TQU_TEMPLATE_NONE;
    out->reason = reason;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    return rc;
}

/* The chosen file must be a regular file we can open for reading. */
static int check_readable(const char *path, char *why, size_t len)
{
    struct stat st;
    int fd;
    if (stat(path, &st) < 0) {
        snprintf(why, len, "%s", strerror(errno));
        return errno == ENOENT ? K8S_EINVAL : K8S_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, len, "not a regular file");
        return K8S_EIO;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, len, "cannot be opened for reading: %s", strerror(errno));
        return K8S_EIO;
    }
    close(fd);
    return K8S_OK;
}

static int join(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s%s%s", dir, has_suffix(dir, "/") ? "" : "/", name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static int explicit_template(const char *path, tqu_template *out)
{
    char why[256];
    int rc = check_readable(path, why, sizeof(why));

    if (rc == K8S_EINVAL)
        return fail(out, K8S_EIO, "TemplateNotFound",
                    "spec.template %s: %s: give the path of the cluster's darwin template, or leave spec.template empty to discover it",
                    path, why);
    if (rc)
        return fail(out, K8S_EIO, "TemplateUnreadable",
                    "spec.template %s: %s: it must be a readable regular file", path, why);
    if (strlen(path) >= sizeof(out->path))
        return fail(out, K8S_EINVAL, "TemplateUnreadable", "spec.template: path too long");
    strcpy(out->path, path);
    out->kind = TQU_TEMPLATE_EXPLICIT;
    snprintf(out->message, sizeof(out->message), "using spec.template %s", path);
    return K8S_OK;
}

/* Choose the discovered template dir/name, of this kind: 0, or the failure (out->reason set). */
static int choose(tqu_template *out, const char *dir, const char *name, tqu_template_kind kind)
{
    char full[PATH_MAX], why[256];
    int rc;

    if (join(full, sizeof(full), dir, name) < 0)
        return fail(out, K8S_EINVAL, "TemplateUnreadable", "%s/%s: path too long", dir, name);
    if ((rc = check_readable(full, why, sizeof(why))) != K8S_OK)
        return fail(out, K8S_EIO, "TemplateUnreadable", "%s: %s", full, why);
    strcpy(out->path, full);
    out->kind = kind;
    return K8S_OK;
}

int tqu_template_find(const char *dir, const char *explicit_path, tqu_template *out)
{
    cand_list upd = { 0 }, inst = { 0 }, odd = { 0 };
    char ignored[600] = "";
    size_t nignored = 0, iglen = 0;
    DIR *d = NULL;
    struct dirent *de;
    int rc = K8S_OK;

    if (!out)
        return K8S_EINVAL;
    memset(out, 0, sizeof(*out));
    if (explicit_path && *explicit_path) {
        rc = explicit_template(explicit_path, out);
        one_line(out->message);
        return rc;
    }
    if (!dir || !*dir)
        return fail(out, K8S_EINVAL, "TemplateNotFound", "no template folder and no spec.template given");
    d = opendir(dir);
    if (!d)
        return fail(out, K8S_EIO, "TemplateDirUnreadable",
                    "template folder %s: %s: check spec.packages.root (the folder is <root>/%s) or set spec.template",
                    dir, strerror(errno), TQU_TEMPLATE_SUBDIR);
    for (;;) {
        const char *name, *note = NULL;
        struct stat st;
        long long ms = 0;
        int is_update, is_install;

        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno) {
                rc = fail(out, K8S_EIO, "TemplateDirUnreadable", "template folder %s: %s", dir,
                          strerror(errno));
                goto out;
            }
            break;
        }
        name = de->d_name;
        is_update = strncmp(name, TQU_TEMPLATE_UPDATE_PREFIX, sizeof(TQU_TEMPLATE_UPDATE_PREFIX) - 1) == 0;
        is_install = strncmp(name, TQU_TEMPLATE_INSTALL_PREFIX, sizeof(TQU_TEMPLATE_INSTALL_PREFIX) - 1) == 0 &&
                     strlen(name) > sizeof(TQU_TEMPLATE_INSTALL_PREFIX) - 1 + 5;
        if ((!is_update && !is_install) || !has_suffix(name, ".yaml"))
            continue;
        if (fstatat(dirfd(d), name, &st, 0) < 0)
            note = errno == ENOENT ? "dangling link" : "cannot stat";
        else if (!S_ISREG(st.st_mode))
            note = "not a regular file";
        else if (is_update && tqu_template_name_time(name, &ms) != K8S_OK)
            note = "timestamp not understood";
        if (note) {
            if (is_update && strcmp(note, "timestamp not understood") == 0 &&
                (rc = cand_add(&odd, name, 0)) != K8S_OK)
                goto nomem;
            if (iglen + 1 < sizeof(ignored)) {
                int n = snprintf(ignored + iglen, sizeof(ignored) - iglen, "%s%s (%s)",
                                 nignored ? ", " : "", name, note);
                if (n > 0)
                    iglen += (size_t)n;
            }
            nignored++;
            continue;
        }
        if ((rc = cand_add(is_update ? &upd : &inst, name, ms)) != K8S_OK)
            goto nomem;
    }

    if (upd.n > 0) {
        size_t ties = 1;
        qsort(upd.v, upd.n, sizeof(*upd.v), cmp_newest);
        while (ties < upd.n && upd.v[ties].ms == upd.v[0].ms)
            ties++;
        if (ties > 1) {
            rc = fail(out, K8S_EINVAL, "TemplateAmbiguous",
                      "ambiguous: %zu update templates in %s carry the same newest timestamp: ", ties, dir);
            msg_list(out, &upd, 0, ties);
            msg_add(out, ": set spec.template to the one written by the last upgrade");
            goto out;
        }
        if ((rc = choose(out, dir, upd.v[0].name, TQU_TEMPLATE_UPDATE)) != K8S_OK)
            goto out;
        out->time_ms = upd.v[0].ms;
        msg_add(out, "using %s: the newest of %zu update template%s by the timestamp in the name",
                out->path, upd.n, upd.n == 1 ? "" : "s");
        if (upd.n > 1) {
            msg_add(out, " (older: ");
            msg_list(out, &upd, 1, upd.n);
            msg_add(out, ")");
        }
        if (inst.n > 0)
            msg_add(out, "; %zu install template%s not used", inst.n, inst.n == 1 ? "" : "s");
    } else if (odd.n > 0) {
        qsort(odd.v, odd.n, sizeof(*odd.v), cmp_name);
        rc = fail(out, K8S_EINVAL, "TemplateAmbiguous",
                  "%s holds update templates but none has a timestamp this controller understands (",
                  dir);
        msg_list(out, &odd, 0, odd.n);
        msg_add(out, "): set spec.template to the one written by the last upgrade");
        goto out;
    } else if (inst.n == 1) {
        if ((rc = choose(out, dir, inst.v[0].name, TQU_TEMPLATE_INSTALL)) != K8S_OK)
            goto out;
        msg_add(out, "using %s: no darwin_update_template_<timestamp>.yaml (never upgraded), the one install template",
                out->path);
    } else if (inst.n == 0) {
        rc = fail(out, K8S_EINVAL, "TemplateNotFound",
                  "no darwin template in %s (neither darwin_update_template_<timestamp>.yaml nor darwin_template_<deployID>.yaml)",
                  dir);
        if (nignored)
            msg_add(out, "; ignored: %s%s", ignored, iglen + 1 >= sizeof(ignored) ? "..." : "");
        msg_add(out, ": check spec.packages.root or set spec.template");
        goto out;
    } else {
        qsort(inst.v, inst.n, sizeof(*inst.v), cmp_name);
        rc = fail(out, K8S_EINVAL, "TemplateAmbiguous", "ambiguous: %zu install templates in %s: ", inst.n, dir);
        msg_list(out, &inst, 0, inst.n);
        msg_add(out, ": set spec.template to the one of this cluster");
        goto out;
    }
    if (nignored)
        msg_add(out, "; ignored: %s%s", ignored, iglen + 1 >= sizeof(ignored) ? "..." : "");
    rc = K8S_OK;
    goto out;
nomem:
    rc = fail(out, K8S_ENOMEM, "OutOfMemory", "template folder %s: out of memory", dir);
out:
    one_line(out->message);   /* names may hold any byte but '/' and NUL */
    if (d)
        closedir(d);
    cand_release(&upd);
    cand_release(&inst);
    cand_release(&odd);
    return rc;
}
