/*
 * roots.c - the allowed roots and the path rules (see roots.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "k8s.h"
#include "fsutil.h"
#include "roots.h"

void tqu_roots_init(tqu_roots *r)
{
    memset(r, 0, sizeof(*r));
}

void tqu_roots_release(tqu_roots *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->given[i]);
        free(r->resolved[i]);
    }
    memset(r, 0, sizeof(*r));
}

int tqu_roots_clean(const char *path, int relative_ok, char *why, size_t whylen)
{
    const char *p, *s;
    size_t len;

    if (!path || !*path)
        return tqu__seterr(why, whylen, K8S_EINVAL, "is empty");
    len = strlen(path);
    if (len >= PATH_MAX)
        return tqu__seterr(why, whylen, K8S_EINVAL, "is too long (%zu bytes)", len);
    for (p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return tqu__seterr(why, whylen, K8S_EINVAL, "contains a control character (0x%02x)",
                               (unsigned)(unsigned char)*p);
    if (path[0] != '/' && !relative_ok)
        return tqu__seterr(why, whylen, K8S_EINVAL, "is not an absolute path");
    if (strcmp(path, "/") == 0)
        return 0;
    /* the components between the leading "/" and one trailing "/" */
    s = path[0] == '/' ? path + 1 : path;
    len = strlen(s);
    if (len && s[len - 1] == '/')
        len--;
    for (size_t i = 0; i <= len;) {
        size_t n = 0;
        while (i + n < len && s[i + n] != '/')
            n++;
        if (n == 0)
            return tqu__seterr(why, whylen, K8S_EINVAL, "has an empty component (\"//\")");
        if (n == 1 && s[i] == '.')
            return tqu__seterr(why, whylen, K8S_EINVAL, "has a \".\" component");
        if (n == 2 && s[i] == '.' && s[i + 1] == '.')
            return tqu__seterr(why, whylen, K8S_EINVAL, "has a \"..\" component");
        i += n + 1;
    }
    return 0;
}

int tqu_roots_resolve(const char *path, char *out, size_t outlen, char *why, size_t whylen)
{
    char buf[PATH_MAX], res[PATH_MAX];
    size_t len, cut;
    struct stat st;
    int rc;

    if (out && outlen)
        out[0] = '\0';
    if ((rc = tqu_roots_clean(path, 0, why, whylen)))
        return rc;
    if (!out || !outlen)
        return tqu__seterr(why, whylen, K8S_EINVAL, "cannot be resolved: no room for the result");
    len = strlen(path);
    memcpy(buf, path, len + 1);
    if (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* the longest prefix that exists: buf[0..cut), cut at a '/' or the end */
    for (cut = len;;) {
        char save = buf[cut];
        const char *pre = cut ? buf : "/";
        buf[cut] = '\0';
        if (realpath(pre, res)) {
            buf[cut] = save;
            break;
        }
        int e = errno;
        if (e != ENOENT && e != ENOTDIR) {
            tqu__seterr(why, whylen, K8S_EIO, "cannot be resolved: %s: %s", pre, strerror(e));
            buf[cut] = save;
            return K8S_EIO;
        }
        if (e == ENOENT && lstat(pre, &st) == 0) {
            tqu__seterr(why, whylen, K8S_EINVAL,
                        "cannot be resolved: %s is a symbolic link to something that does not exist", pre);
            buf[cut] = save;
            return K8S_EINVAL;
        }
        buf[cut] = save;
        while (cut > 0 && buf[cut - 1] != '/')
            cut--;
        if (cut > 0)
            cut--;   /* onto the '/' before the component just dropped */
    }
    /* the components that do not exist, as written (buf + cut is "" or "/...") */
    int n = snprintf(out, outlen, "%s%s", strcmp(res, "/") == 0 && buf[cut] ? "" : res, buf + cut);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return tqu__seterr(why, whylen, K8S_EINVAL, "is too long once resolved");
    }
    return 0;
}

int tqu_roots_add(tqu_roots *r, const char *path, char *err, size_t errlen)
{
    char res[PATH_MAX], why[PATH_MAX + 128];
    char *g = NULL, *s = NULL;
    size_t len;
    int rc;

    if (r->n >= TQU_ROOTS_MAX)
        return tqu__seterr(err, errlen, K8S_EINVAL, "more than %d allowed roots", TQU_ROOTS_MAX);
    if ((rc = tqu_roots_resolve(path, res, sizeof(res), why, sizeof(why))))
        return tqu__seterr(err, errlen, rc, "%s", why);
    len = strlen(path);
    if (len > 1 && path[len - 1] == '/')
        len--;
    g = strndup(path, len);
    s = strdup(res);
    if (!g || !s) {
        free(g);
        free(s);
        return tqu__seterr(err, errlen, K8S_ENOMEM, "out of memory");
    }
    r->given[r->n] = g;
    r->resolved[r->n] = s;
    r->n++;
    return 0;
}

/* p is root or below it (strict: only below). Both without a trailing '/'. */
static int under(const char *p, const char *root, int strict)
{
    size_t rl = strlen(root);
    if (strcmp(root, "/") == 0)
        return !strict || strcmp(p, "/") != 0;
    if (strncmp(p, root, rl) != 0)
        return 0;
    return p[rl] == '/' || (!strict && p[rl] == '\0');
}

void tqu_roots_list(const tqu_roots *r, char *buf, size_t len)
{
    size_t off = 0;
    if (!len)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < r->n && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", r->resolved[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

int tqu_roots_check(const tqu_roots *r, const char *path, unsigned flags, char *resolved, size_t rlen,
                    char *why, size_t whylen)
{
    char res[PATH_MAX], lit[PATH_MAX], list[1024];
    int strict = (flags & TQU_ROOTS_STRICT) != 0, rc;
    int inside = 0, below = 0, written_below = 0;

    if (resolved && rlen)
        resolved[0] = '\0';
    tqu_roots_list(r, list, sizeof(list));
    if (!r->n)
        return tqu__seterr(why, whylen, K8S_EINVAL, "is not allowed: no allowed root is configured");
    if ((rc = tqu_roots_resolve(path, res, sizeof(res), why, whylen)))
        return rc;
    if (resolved && rlen)
        snprintf(resolved, rlen, "%s", res);
    snprintf(lit, sizeof(lit), "%s", path);
    size_t ll = strlen(lit);
    if (ll > 1 && lit[ll - 1] == '/')
        lit[ll - 1] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        inside |= under(res, r->resolved[i], 0);
        below |= under(res, r->resolved[i], 1);
        written_below |= under(lit, r->resolved[i], 1) || under(lit, r->given[i], 1);
    }
    if (!inside) {
        if (strcmp(res, lit) == 0)
            return tqu__seterr(why, whylen, K8S_EINVAL, "is outside the allowed roots (%s)", list);
        return tqu__seterr(why, whylen, K8S_EINVAL,
                           "resolves to \"%s\" (symbolic links followed), outside the allowed roots (%s)", res, list);
    }
    if (!strict)
        return 0;
    if (!below)
        return tqu__seterr(why, whylen, K8S_EINVAL,
                           "is an allowed root itself%s%s%s: a hostPath mounted into pods must be a sub-folder of one (%s)",
                           strcmp(res, lit) ? " (it resolves to \"" : "", strcmp(res, lit) ? res : "",
                           strcmp(res, lit) ? "\")" : "", list);
    if (!written_below)
        return tqu__seterr(why, whylen, K8S_EINVAL,
                           "reaches an allowed root only through a symbolic link of this machine (it resolves to \"%s\"): "
                           "a hostPath mounted into pods must be written as a sub-folder of one (%s)", res, list);
    return 0;
}
