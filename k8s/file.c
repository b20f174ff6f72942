/*
 * file.c - small file helpers shared by the k8s/ modules.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "k8s_int.h"

int k8s__read_file(const char *path, size_t cap, k8s_blob *out, k8s_err *err)
{
    int fd, rc = K8S_OK;
    unsigned char *p = NULL, *np;
    size_t len = 0, alloc = 0;
    ssize_t n;

    out->data = NULL;
    out->len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return k8s_err_set(err, K8S_EIO, "%s: %s", path, strerror(errno));
    for (;;) {
        if (alloc - len < 4096 + 1) {
            size_t na = alloc ? alloc * 2 : 8192;
            if (na > cap + 4096 + 1)
                na = cap + 4096 + 1;
            if (na <= alloc) {
                rc = k8s_err_set(err, K8S_ETOOBIG, "%s: larger than %zu bytes", path, cap);
                goto out;
            }
            np = realloc(p, na);
            if (!np) {
                rc = k8s_err_set(err, K8S_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            p = np;
            alloc = na;
        }
        n = read(fd, p + len, alloc - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = k8s_err_set(err, K8S_EIO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > cap) {
            rc = k8s_err_set(err, K8S_ETOOBIG, "%s: larger than %zu bytes", path, cap);
            goto out;
        }
    }
    if (!p && !(p = malloc(1))) {
        rc = k8s_err_set(err, K8S_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    p[len] = '\0';
    out->data = p;
    out->len = len;
    p = NULL;
out:
    if (p) {
        OPENSSL_cleanse(p, alloc);
        free(p);
    }
    close(fd);
    return rc;
}
