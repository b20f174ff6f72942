/*
 * fsutil.c - atomic writes, mkdir -p, whole-file reads, SHA-256 and file
 * tails (see fsutil.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "fsutil.h"

int tqu__seterr(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void tqu__appendf(char *buf, size_t size, const char *sep, const char *fmt, ...)
{
    size_t off = strnlen(buf, size), n = sep ? strlen(sep) : 0;
    va_list ap;

    if (off + 1 >= size)
        return;
    if (off > 0 && n && off + n + 1 < size) {
        memcpy(buf + off, sep, n + 1);
        off += n;
    }
    va_start(ap, fmt);
    vsnprintf(buf + off, size - off, fmt, ap);
    va_end(ap);
}

/* Split path into its folder (into dir, "." when there is none) and name. */
static int split_path(const char *path, char *dir, size_t dirlen, const char **name)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (!slash) {
        if (dirlen < 2)
            return -1;
        strcpy(dir, ".");
        *name = path;
        return 0;
    }
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= dirlen)
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    *name = slash + 1;
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------ atomic writes */

void tqu_atomic_init(tqu_atomic *a)
{
    a->fd = -1;
    a->dirfd = -1;
    a->name[0] = '\0';
    a->op = "";
    a->committed = 0;
    a->tmp[0] = '\0';
}

/*
 * Fill the last 6 characters of a->tmp with a fresh suffix: the clock, the
 * process and a counter mixed, so neither threads nor a forked copy of
 * this process repeat one (O_EXCL settles a clash anyway).
 */
static void temp_suffix(char *x)
{
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static unsigned long long seq;
    struct timespec ts;
    unsigned long long v;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 30) ^
        ((unsigned long long)getpid() << 40) ^
        (__atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED) * 0x9E3779B97F4A7C15ULL);
    for (int i = 0; i < 6; i++, v /= 62)
        x[i] = chars[v % 62];
}

int tqu_atomic_begin(tqu_atomic *a, int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid)
{
    size_t n = name ? strlen(name) : 0;
    int e;

    tqu_atomic_init(a);
    a->dirfd = dirfd;
    a->op = "create";
    if (n == 0 || strchr(name, '/'))
        return EINVAL;
    if (n + sizeof("..tmp.XXXXXX") > sizeof(a->tmp))
        return ENAMETOOLONG;
    memcpy(a->name, name, n + 1);
    a->tmp[0] = '.';
    memcpy(a->tmp + 1, name, n);
    memcpy(a->tmp + 1 + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    for (int tries = 0; tries < 100; tries++) {
        temp_suffix(a->tmp + n + 6);
        a->fd = openat(dirfd, a->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (a->fd >= 0 || errno != EEXIST)
            break;
    }
    if (a->fd < 0) {
        e = errno;
        a->tmp[0] = '\0';
        return e;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(a->fd, uid, gid) < 0) {
        a->op = "chown";
        goto fail;
    }
    /* After fchown, which may clear set-id bits. */
    if (fchmod(a->fd, mode & 07777) < 0) {
        a->op = "chmod";
        goto fail;
    }
    a->op = "";
    return 0;
fail:
    e = errno;
    tqu_atomic_abort(a);
    return e;
}

/* Give the closed temporary file its final name: 0 or an errno value. */
static int atomic_rename(tqu_atomic *a, unsigned flags)
{
    a->op = "rename";
    if (!(flags & TQU_ATOMIC_NOREPLACE))
        return renameat(a->dirfd, a->tmp, a->dirfd, a->name) < 0 ? errno : 0;
    if (renameat2(a->dirfd, a->tmp, a->dirfd, a->name, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return errno;
    /* A file system without RENAME_NOREPLACE: link() does not replace either. */
    a->op = "link";
    if (linkat(a->dirfd, a->tmp, a->dirfd, a->name, 0) < 0)
        return errno;
    unlinkat(a->dirfd, a->tmp, 0);
    return 0;
}

int tqu_atomic_commit(tqu_atomic *a, unsigned flags)
{
    int e = 0;

    if (a->fd < 0 || !a->tmp[0]) {
        a->op = "commit";
        return EBADF;
    }
    if (fsync(a->fd) < 0) {
        e = errno;
        a->op = "fsync";
    }
    /* Linux closes the descriptor even when close reports EINTR. */
    if (close(a->fd) < 0 && !e && errno != EINTR) {
        e = errno;
        a->op = "close";
    }
    a->fd = -1;
    if (!e)
        e = atomic_rename(a, flags);
    if (e) {
        tqu_atomic_abort(a);
        return e;
    }
    a->tmp[0] = '\0';
    a->committed = 1;
    /* Some file systems cannot fsync a folder; that is not a failure. */
    if (fsync(a->dirfd) < 0 && errno != EINVAL && errno != EROFS) {
        a->op = "fsync of folder";
        return errno;
    }
    a->op = "";
    return 0;
}

void tqu_atomic_abort(tqu_atomic *a)
{
    int e = errno;

    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (a->tmp[0])
        unlinkat(a->dirfd, a->tmp, 0);
    a->tmp[0] = '\0';
    errno = e;
}

int tqu_write_file_atomic_as(const char *path, const void *data, size_t len, mode_t mode,
                             uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *name;
    tqu_atomic a;
    int dirfd, e;

    if (!path || !*path || (!data && len))
        return tqu__seterr(err, errlen, K8S_EINVAL, "write: no path or no data");
    if (split_path(path, dir, sizeof(dir), &name) < 0 || !*name)
        return tqu__seterr(err, errlen, K8S_EINVAL, "%s: not a file path", path);
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return tqu__seterr(err, errlen, K8S_EIO, "%s: create temporary file in %s: %s", path,
                           dir, strerror(errno));
    e = tqu_atomic_begin(&a, dirfd, name, mode, uid, gid);
    if (!e && write_all(a.fd, data, len) < 0) {
        e = errno;
        a.op = "write";
    }
    if (!e)
        e = tqu_atomic_commit(&a, 0);
    tqu_atomic_abort(&a);
    close(dirfd);
    if (!e)
        return K8S_OK;
    if (strcmp(a.op, "create") == 0)
        return tqu__seterr(err, errlen, K8S_EIO, "%s: create temporary file in %s: %s", path, dir,
                           strerror(e));
    if (strcmp(a.op, "fsync of folder") == 0)
        return tqu__seterr(err, errlen, K8S_EIO, "%s: fsync of folder %s: %s", path, dir, strerror(e));
    return tqu__seterr(err, errlen, K8S_EIO, "%s: %s: %s", path, a.op, strerror(e));
}

int tqu_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          char *err, size_t errlen)
{
    return tqu_write_file_atomic_as(path, data, len, mode, (uid_t)-1, (gid_t)-1, err, errlen);
}

int tqu_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t len;
    struct stat st;

    if (!path || !*path)
        return tqu__seterr(err, errlen, K8S_EINVAL, "mkdir: empty path");
    len = strlen(path);
    if (len >= sizeof(buf))
        return tqu__seterr(err, errlen, K8S_EINVAL, "%s: path too long", path);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* Walk the components; create each that is missing. */
    for (char *p = buf + 1;; p++) {
        int last = *p == '\0';
        if (*p != '/' && !last)
            continue;
        if (!last && p[-1] == '/')
            continue;          /* "a//b" */
        *p = '\0';
        if (mkdir(buf, mode) < 0) {
            int e = errno;
            if (e != EEXIST) {
                /* A parent that exists but cannot be written reports EACCES
                 * only for the first missing component; name it. */
                return tqu__seterr(err, errlen, K8S_EIO, "%s: mkdir %s: %s", path, buf, strerror(e));
            }
            if (stat(buf, &st) < 0)
                return tqu__seterr(err, errlen, K8S_EIO, "%s: %s: %s", path, buf, strerror(errno));
            if (!S_ISDIR(st.st_mode))
                return tqu__seterr(err, errlen, K8S_EIO, "%s: %s: %s", path, buf, strerror(ENOTDIR));
        }
        if (last)
            break;
        *p = '/';
    }
    return K8S_OK;
}

/* Open path for reading and fstat it: the descriptor, or -1 with err "<path>: <errno text>". */
static int open_stat(const char *path, struct stat *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0 && fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        fd = -1;
    }
    if (fd < 0)
        tqu__seterr(err, errlen, K8S_EIO, "%s: %s", path, strerror(errno));
    return fd;
}

int tqu_read_chunks(const char *path, tqu_chunk_fn fn, void *ud, char *err, size_t errlen)
{
    char chunk[32768];
    int fd, rc = K8S_OK;
    struct stat st;

    if (!path || !fn)
        return tqu__seterr(err, errlen, K8S_EINVAL, "read: no path");
    if ((fd = open_stat(path, &st, err, errlen)) < 0)
        return K8S_EIO;
    if (S_ISDIR(st.st_mode)) {
        rc = tqu__seterr(err, errlen, K8S_EIO, "%s: %s", path, strerror(EISDIR));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = tqu__seterr(err, errlen, K8S_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0 || (rc = fn(ud, chunk, (size_t)n)) != K8S_OK)
            break;
    }
out:
    close(fd);
    return rc;
}

static int buf_chunk(void *ud, const void *data, size_t len)
{
    return k8s_buf_add(ud, data, len);
}

int tqu_read_file(const char *path, size_t cap, k8s_buf *out, char *err, size_t errlen)
{
    int rc;

    if (!path || !out)
        return tqu__seterr(err, errlen, K8S_EINVAL, "read: no path");
    if (cap)
        out->cap = cap;
    k8s_buf_reset(out);
    rc = tqu_read_chunks(path, buf_chunk, out, err, errlen);
    if (rc == K8S_ETOOBIG)
        rc = tqu__seterr(err, errlen, rc, "%s: larger than %zu bytes", path, out->cap);
    else if (rc == K8S_ENOMEM)
        rc = tqu__seterr(err, errlen, rc, "%s: out of memory", path);
    if (rc == K8S_OK && !out->data && (rc = k8s_buf_add(out, "", 0)) != K8S_OK)
        rc = tqu__seterr(err, errlen, rc, "%s: out of memory", path);
    if (rc)
        k8s_buf_release(out);
    return rc;
}

typedef struct digest {
    EVP_MD_CTX *ctx;
    uint64_t bytes;
    int failed;
} digest;

static int digest_chunk(void *ud, const void *data, size_t len)
{
    digest *d = ud;
    d->bytes += len;
    if (EVP_DigestUpdate(d->ctx, data, len))
        return K8S_OK;
    d->failed = 1;
    return K8S_EIO;
}

int tqu_sha256_file(const char *path, char hex[65], uint64_t *bytes, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    digest d = { NULL, 0, 0 };
    int rc;

    if (hex)
        hex[0] = '\0';
    if (!path || !hex)
        return tqu__seterr(err, errlen, K8S_EINVAL, "sha256: no path");
    d.ctx = EVP_MD_CTX_new();
    if (!d.ctx || !EVP_DigestInit_ex(d.ctx, EVP_sha256(), NULL)) {
        rc = tqu__seterr(err, errlen, K8S_ENOMEM, "%s: sha256: cannot set up the digest", path);
        goto out;
    }
    rc = tqu_read_chunks(path, digest_chunk, &d, err, errlen);
    if (rc == K8S_OK && (!EVP_DigestFinal_ex(d.ctx, md, &mdlen) || mdlen != 32))
        d.failed = 1;
    if (d.failed)
        rc = tqu__seterr(err, errlen, K8S_EIO, "%s: sha256 failed", path);
    if (rc)
        goto out;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (bytes)
        *bytes = d.bytes;
out:
    EVP_MD_CTX_free(d.ctx);
    return rc;
}

int tqu_read_tail(const char *path, size_t max_bytes, size_t max_lines, k8s_buf *out,
                  char *err, size_t errlen)
{
    struct stat st;
    off_t start;
    size_t want, got = 0, skip = 0;
    char *p = NULL;
    int fd, rc = K8S_OK;

    if (!path || !out)
        return tqu__seterr(err, errlen, K8S_EINVAL, "tail: no path");
    if (!max_bytes)
        max_bytes = 65536;
    k8s_buf_reset(out);
    if ((fd = open_stat(path, &st, err, errlen)) < 0)
        return K8S_EIO;
    if (!S_ISREG(st.st_mode)) {
        rc = tqu__seterr(err, errlen, K8S_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    start = (uintmax_t)st.st_size > max_bytes ? st.st_size - (off_t)max_bytes : 0;
    want = (size_t)(st.st_size - start);
    p = malloc(want + 1);
    if (!p) {
        rc = tqu__seterr(err, errlen, K8S_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    while (got < want) {
        ssize_t n = pread(fd, p + got, want - got, start + (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = tqu__seterr(err, errlen, K8S_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;      /* truncated meanwhile */
        got += (size_t)n;
    }
    if (start > 0 && got > 0) {
        /* Drop the partial first line, if the window holds a later line. */
        char *nl = memchr(p, '\n', got);
        if (nl && (size_t)(nl - p) + 1 < got)
            skip = (size_t)(nl - p) + 1;
        else
            while (skip < got && ((unsigned char)p[skip] & 0xC0) == 0x80)
                skip++;
    }
    if (max_lines > 0 && got > skip) {
        /* Keep the last max_lines lines: scan back from the end. */
        size_t i = got, lines = 0;
        if (p[i - 1] == '\n')
            i--;
        while (i > skip) {
            if (p[i - 1] == '\n' && ++lines == max_lines)
                break;
            i--;
        }
        skip = i;
    }
    rc = k8s_buf_add(out, p + skip, got - skip);
    if (rc == K8S_ETOOBIG)
        rc = tqu__seterr(err, errlen, rc, "%s: %zu bytes do not fit the buffer (cap %zu)", path,
                         got - skip, out->cap);
    else if (rc)
        rc = tqu__seterr(err, errlen, rc, "%s: out of memory", path);
out:
    free(p);
    close(fd);
    if (rc)
        k8s_buf_release(out);
    return rc;
}

int tqu_is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int tqu_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
