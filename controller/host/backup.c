/*
 * backup.c - the BackupDeployments step's engine: every Deployment, listed
 * page by page and streamed to deploy_<stamp>.json (a v1 List) and
 * deploy_<stamp>.log (kubectl's no-headers table), both written atomically
 * with their sha256 computed on the way. See backup.h for the contract.
 *
 * How the table is written without keeping the rows: kubectl's printer
 * (text/tabwriter with minwidth 6, padding 3, pad char ' ') makes every
 * column but the last as wide as its widest cell + 3, at least 6, and
 * those widths are only known after the last row. While the list streams,
 * each row goes unpadded ("ns\tname\tready\tup\tavail\tage\n") to a scratch
 * file, created in the backup folder and unlinked at once (nothing can be
 * left behind), and the widest cell of each column is tracked; after the
 * list the scratch file is read back and written padded to the .log temp
 * file. The extra local I/O is about 60 bytes per Deployment.
 *
 * Every file of this module goes through struct bfile: a 64 KiB write buffer,
 * the sha256 (OpenSSL EVP) of every byte handed to it, and fsutil.h's
 * tqu_atomic, which creates the temp file, commits it without replacing
 * anything, or removes it on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "backup.h"
#include "fsutil.h"

#define IO_BUF (64 * 1024)
#define PAGE_SIZE_ITEMS 500
#define NCOLS 6                  /* NAMESPACE NAME READY UP-TO-DATE AVAILABLE AGE */
#define TAB_MINWIDTH 6           /* kubectl: printers.GetNewTabWriter */
#define TAB_PADDING 3

ssize_t (*tqu_backup__write)(int fd, const void *buf, size_t n) = write;

/* ------------------------------------------------------------ files */

typedef struct bfile {
    tqu_atomic at;               /* the temp file (at.fd) until committed */
    const char *name;            /* for messages: the final path */
    const char *role;            /* for messages: "" or " (table scratch file)" */
    EVP_MD_CTX *md;              /* NULL: no checksum (scratch) */
    char *buf;                   /* IO_BUF bytes, owned */
    size_t n;                    /* bytes waiting in buf */
    uint64_t bytes;              /* bytes handed to out_add since open/reset */
} bfile;

static void out_init(bfile *o, const char *name, const char *role)
{
    memset(o, 0, sizeof(*o));
    tqu_atomic_init(&o->at);
    o->name = name;
    o->role = role;
}

static int out_fail(bfile *o, const char *op, int e, k8s_err *err)
{
    return k8s_err_set(err, K8S_EIO, "backup file %s%s: %s: %s", o->name, o->role,
                       op, strerror(e));
}

/*
 * Create the temp file .<base>.tmp.XXXXXX (mode 0600) in the folder dirfd
 * (dir, for messages). scratch: unlink it at once (it is only read back
 * through its fd). want_md: keep a sha256.
 */
static int out_open(bfile *o, int dirfd, const char *dir, const char *base, int scratch,
                    int want_md, k8s_err *err)
{
    int e;

    if (!(o->buf = malloc(IO_BUF)))
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    if (want_md) {
        if (!(o->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(o->md, EVP_sha256(), NULL))
            return k8s_err_set(err, K8S_ENOMEM, "backup file %s: cannot start sha256", o->name);
    }
    e = tqu_atomic_begin(&o->at, dirfd, base, 0600, (uid_t)-1, (gid_t)-1);
    if (e)
        return strcmp(o->at.op, "create") == 0
            ? k8s_err_set(err, K8S_EIO, "backup folder %s: cannot create a file for %s%s: %s",
                          dir, o->name, o->role, strerror(e))
            : out_fail(o, o->at.op, e, err);
    if (scratch) {
        if (unlinkat(dirfd, o->at.tmp, 0) != 0)
            return out_fail(o, "unlink scratch file", errno, err);
        o->at.tmp[0] = '\0';
    }
    return K8S_OK;
}

static int out_flush(bfile *o, k8s_err *err)
{
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = tqu_backup__write(o->at.fd, o->buf + off, o->n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return out_fail(o, "write", errno, err);
        }
        if (w == 0)
            return out_fail(o, "write", EIO, err);
        off += (size_t)w;
    }
    o->n = 0;
    return K8S_OK;
}

static int out_add(bfile *o, const void *p, size_t len, k8s_err *err)
{
    const char *s = p;
    if (o->md && len && !EVP_DigestUpdate(o->md, p, len))
        return k8s_err_set(err, K8S_EIO, "backup file %s: sha256 update failed", o->name);
    o->bytes += len;
    while (len) {
        size_t k = IO_BUF - o->n;
        if (k > len)
            k = len;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
        if (o->n == IO_BUF) {
            int rc = out_flush(o, err);
            if (rc)
                return rc;
        }
    }
    return K8S_OK;
}

static int out_adds(bfile *o, const char *s, k8s_err *err)
{
    return out_add(o, s, strlen(s), err);
}

/* Back to an empty file (the list restarted). */
static int out_reset(bfile *o, k8s_err *err)
{
    o->n = 0;
    o->bytes = 0;
    if (ftruncate(o->at.fd, 0) != 0 || lseek(o->at.fd, 0, SEEK_SET) != 0)
        return out_fail(o, "truncate", errno, err);
    if (o->md && !EVP_DigestInit_ex(o->md, EVP_sha256(), NULL))
        return k8s_err_set(err, K8S_EIO, "backup file %s: sha256 restart failed", o->name);
    return K8S_OK;
}

/* Flush; hex gets the sha256 (when kept). */
static int out_finish(bfile *o, char hex[65], k8s_err *err)
{
    int rc = out_flush(o, err);
    if (rc)
        return rc;
    if (o->md && hex) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!EVP_DigestFinal_ex(o->md, md, &mdlen) || mdlen != 32)
            return k8s_err_set(err, K8S_EIO, "backup file %s: sha256 failed", o->name);
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return K8S_OK;
}

/*
 * fsync the finished temp file and move it to its final name, never
 * replacing a file; then fsync the folder. *committed: whether the final
 * file exists (also when only the folder's fsync failed).
 */
static int out_commit(bfile *o, int *committed, k8s_err *err)
{
    int e = tqu_atomic_commit(&o->at, TQU_ATOMIC_NOREPLACE);

    *committed = o->at.committed;
    if (e == EEXIST && !o->at.committed)
        return k8s_err_set(err, K8S_EIO, "backup file %s already exists", o->name);
    return e ? out_fail(o, o->at.op, e, err) : K8S_OK;
}

/* Close and remove whatever is left; safe to call twice. */
static void out_release(bfile *o)
{
    tqu_atomic_abort(&o->at);
    EVP_MD_CTX_free(o->md);
    o->md = NULL;
    free(o->buf);
    o->buf = NULL;
}

/* ------------------------------------------------------------ helpers */

static int valid_stamp(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > TQU_BACKUP_STAMP_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

char *tqu_backup_stamp(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (!len)
        return buf;
    buf[0] = '\0';
    if (localtime_r(&t, &tm))
        strftime(buf, len, "%Y%m%d-%H%M%S", &tm);
    return buf;
}

/* "<a><ua>", or "<a><ua><b><ub>" when b is not 0 ("5m", "5m30s"). */
static char *two_units(char *buf, size_t len, long long a, char ua, long long b, char ub)
{
    if (b == 0)
        snprintf(buf, len, "%lld%c", a, ua);
    else
        snprintf(buf, len, "%lld%c%lld%c", a, ua, b, ub);
    return buf;
}

/* Go's HumanDuration, on whole seconds. */
char *tqu_backup_age(long long secs, char *buf, size_t len)
{
    long long m, h;
    if (secs < -1) {
        snprintf(buf, len, "<invalid>");
        return buf;
    }
    if (secs < 0)
        secs = 0;
    m = secs / 60;
    h = secs / 3600;
    if (secs < 60 * 2)
        return two_units(buf, len, secs, 's', 0, 0);
    if (m < 10)
        return two_units(buf, len, m, 'm', secs % 60, 's');
    if (m < 60 * 3)
        return two_units(buf, len, m, 'm', 0, 0);
    if (h < 8)
        return two_units(buf, len, h, 'h', m % 60, 'm');
    if (h < 48)
        return two_units(buf, len, h, 'h', 0, 0);
    if (h < 24 * 8)
        return two_units(buf, len, h / 24, 'd', h % 24, 'h');
    if (h < 24 * 365 * 2)
        return two_units(buf, len, h / 24, 'd', 0, 0);
    if (h < 24 * 365 * 8)
        return two_units(buf, len, h / 24 / 365, 'y', (h / 24) % 365, 'd');
    return two_units(buf, len, h / 24 / 365, 'y', 0, 0);
}

/* Write s as a JSON string (the escapes cJSON itself uses). */
static int json_string(bfile *o, const char *s, k8s_err *err)
{
    static const char hexd[] = "0123456789abcdef";
    const char *run = s;
    int rc = out_add(o, "\"", 1, err);
    for (; !rc && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        const char *esc = NULL;
        char u[7];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hexd[ch >> 4];
            u[5] = hexd[ch & 15];
            u[6] = '\0';
            esc = u;
        }
        rc = out_add(o, run, (size_t)(s - run), err);
        if (!rc)
            rc = out_adds(o, esc, err);
        run = s + 1;
    }
    if (!rc)
        rc = out_add(o, run, (size_t)(s - run), err);
    if (!rc)
        rc = out_add(o, "\"", 1, err);
    return rc;
}

/* ------------------------------------------------------------ the run */

typedef struct run {
    bfile json, scratch, log;
    char *pbuf;                  /* IO_BUF: printing values, later reading the scratch */
    size_t width[NCOLS - 1];     /* widest cell of every column but AGE */
    long count;
    int restarts;
    int failed;                  /* err below is set */
    k8s_err err;
} run;

static const char JSON_HEAD[] = "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[";

/* Print one value unformatted, into pbuf when it fits. */
static int json_value(run *r, bfile *o, const cJSON *v, k8s_err *err)
{
    if (cJSON_PrintPreallocated((cJSON *)v, r->pbuf, IO_BUF - 8, 0))
        return out_adds(o, r->pbuf, err);
    char *s = cJSON_PrintUnformatted(v);
    if (!s)
        return k8s_err_set(err, K8S_ENOMEM, "out of memory");
    int rc = out_adds(o, s, err);
    cJSON_free(s);
    return rc;
}

/* The members of obj as ,"key":value pairs, without those named in skip
 * (NULL-terminated, may be NULL); top: obj is the item, whose metadata is
 * written without managedFields. */
static int json_members(run *r, bfile *o, const cJSON *obj, const char *const *skip,
                        int first, int top, k8s_err *err)
{
    const cJSON *ch;
    int rc = K8S_OK;
    cJSON_ArrayForEach(ch, obj) {
        int skipped = 0;
        for (const char *const *k = skip; k && *k; k++)
            if (ch->string && !strcmp(ch->string, *k))
                skipped = 1;
        if (skipped || !ch->string)
            continue;
        if (!first && (rc = out_add(o, ",", 1, err)))
            return rc;
        first = 0;
        if ((rc = json_string(o, ch->string, err)) || (rc = out_add(o, ":", 1, err)))
            return rc;
        if (top && !strcmp(ch->string, "metadata") && cJSON_IsObject(ch)) {
            static const char *const md_skip[] = { "managedFields", NULL };
            if ((rc = out_add(o, "{", 1, err)) ||
                (rc = json_members(r, o, ch, md_skip, 1, 0, err)) ||
                (rc = out_add(o, "}", 1, err)))
                return rc;
        } else if ((rc = json_value(r, o, ch, err))) {
            return rc;
        }
    }
    return rc;
}

static int write_item_json(run *r, const cJSON *item, k8s_err *err)
{
    static const char *const skip[] = { "apiVersion", "kind", NULL };
    bfile *o = &r->json;
    int rc = out_adds(o, r->count ? ",\n" : "\n", err);
    if (!rc)
        rc = out_adds(o, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"", err);
    if (!rc)
        rc = json_members(r, o, item, skip, 0, 1, err);
    if (!rc)
        rc = out_add(o, "}", 1, err);
    return rc;
}

/* One cell of the scratch row; tabs/newlines cannot occur in names the API
 * server accepts, but never let one break the row. */
static int cell(run *r, int col, const char *s, int last, k8s_err *err)
{
    size_t n = strlen(s);
    int rc = K8S_OK;
    if (strpbrk(s, "\t\n"))
        return k8s_err_set(err, K8S_EPARSE, "Deployment field \"%s\" holds a tab or newline", s);
    if (col < NCOLS - 1 && n > r->width[col])
        r->width[col] = n;
    rc = out_add(&r->scratch, s, n, err);
    if (!rc)
        rc = out_add(&r->scratch, last ? "\n" : "\t", 1, err);
    return rc;
}

static int write_item_row(run *r, const cJSON *item, k8s_err *err)
{
    const char *ns = k8s_json_str(item, "metadata", "namespace", NULL);
    const char *name = k8s_json_str(item, "metadata", "name", NULL);
    const char *created = k8s_json_str(item, "metadata", "creationTimestamp", NULL);
    long long desired = k8s_json_int(item, 0, "spec", "replicas", NULL);
    long long ready = k8s_json_int(item, 0, "status", "readyReplicas", NULL);
    long long updated = k8s_json_int(item, 0, "status", "updatedReplicas", NULL);
    long long avail = k8s_json_int(item, 0, "status", "availableReplicas", NULL);
    char rd[48], up[24], av[24], age[32];
    time_t t;
    int rc;

    snprintf(rd, sizeof(rd), "%lld/%lld", ready, desired);
    snprintf(up, sizeof(up), "%lld", updated);
    snprintf(av, sizeof(av), "%lld", avail);
    if (created && k8s_time_parse(created, &t) == K8S_OK)
        tqu_backup_age((long long)(time(NULL) - t), age, sizeof(age));
    else
        snprintf(age, sizeof(age), "<unknown>");
    if ((rc = cell(r, 0, ns ? ns : "", 0, err)) || (rc = cell(r, 1, name ? name : "", 0, err)) ||
        (rc = cell(r, 2, rd, 0, err)) || (rc = cell(r, 3, up, 0, err)) ||
        (rc = cell(r, 4, av, 0, err)) || (rc = cell(r, 5, age, 1, err)))
        return rc;
    return K8S_OK;
}

static int restart_files(run *r, k8s_err *err)
{
    int rc = out_reset(&r->json, err);
    if (!rc)
        rc = out_reset(&r->scratch, err);
    if (!rc)
        rc = out_adds(&r->json, JSON_HEAD, err);
    memset(r->width, 0, sizeof(r->width));
    r->count = 0;
    r->restarts++;
    return rc;
}

static int on_item(void *ud, const cJSON *item, int restart)
{
    run *r = ud;
    int rc = K8S_OK;
    if (r->failed)
        return 1;
    if (restart)
        rc = restart_files(r, &r->err);
    if (!rc && item)
        rc = write_item_json(r, item, &r->err);
    if (!rc && item)
        rc = write_item_row(r, item, &r->err);
    if (rc) {
        r->failed = 1;
        return 1;
    }
    if (item)
        r->count++;
    return 0;
}

/* One padded row from the scratch line "a\tb\tc\td\te\tage". */
static int write_row(run *r, char *line, k8s_err *err)
{
    static const char spaces[] = "                                ";
    char *p = line;
    int rc = K8S_OK;
    for (int col = 0; col < NCOLS - 1 && !rc; col++) {
        char *tab = strchr(p, '\t');
        if (!tab)
            return k8s_err_set(err, K8S_EIO, "backup file %s (table scratch file): malformed row",
                               r->log.name);
        size_t n = (size_t)(tab - p);
        size_t w = r->width[col] + TAB_PADDING;
        if (w < TAB_MINWIDTH)
            w = TAB_MINWIDTH;
        rc = out_add(&r->log, p, n, err);
        for (size_t pad = w - n; !rc && pad; ) {
            size_t k = pad < sizeof(spaces) - 1 ? pad : sizeof(spaces) - 1;
            rc = out_add(&r->log, spaces, k, err);
            pad -= k;
        }
        p = tab + 1;
    }
    if (!rc)
        rc = out_adds(&r->log, p, err);
    if (!rc)
        rc = out_add(&r->log, "\n", 1, err);
    return rc;
}

/* Copy the scratch file into the log, padded. */
static int write_table(run *r, k8s_err *err)
{
    size_t have = 0;
    int rc = out_flush(&r->scratch, err);
    if (rc)
        return rc;
    if (lseek(r->scratch.at.fd, 0, SEEK_SET) != 0)
        return out_fail(&r->scratch, "seek", errno, err);
    for (;;) {
        ssize_t got = read(r->scratch.at.fd, r->pbuf + have, IO_BUF - 1 - have);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return out_fail(&r->scratch, "read", errno, err);
        }
        if (got == 0)
            break;
        have += (size_t)got;
        r->pbuf[have] = '\0';
        char *line = r->pbuf, *nl;
        while ((nl = memchr(line, '\n', have - (size_t)(line - r->pbuf)))) {
            *nl = '\0';
            if ((rc = write_row(r, line, err)))
                return rc;
            line = nl + 1;
        }
        have -= (size_t)(line - r->pbuf);
        memmove(r->pbuf, line, have);
        if (have == IO_BUF - 1)
            return k8s_err_set(err, K8S_EIO, "backup file %s (table scratch file): row too long",
                               r->log.name);
    }
    if (have)
        return k8s_err_set(err, K8S_EIO, "backup file %s (table scratch file): truncated row",
                           r->log.name);
    return K8S_OK;
}

/* Prefix an error's message, keeping code/reason/causes. */
static void err_prefix(k8s_err *err, const char *prefix)
{
    char tmp[sizeof(err->message)];
    size_t p, m;
    if (!err)
        return;
    p = strlen(prefix);
    m = strlen(err->message);
    if (p > sizeof(tmp) - 1)
        p = sizeof(tmp) - 1;
    if (m > sizeof(tmp) - 1 - p)
        m = sizeof(tmp) - 1 - p;     /* cut the end of the server's message */
    memcpy(tmp, prefix, p);
    memcpy(tmp + p, err->message, m);
    tmp[p + m] = '\0';
    memcpy(err->message, tmp, p + m + 1);
}

int tqu_backup_deployments(k8s_client *c, const char *dir, const char *stamp,
                           tqu_backup_result *res, k8s_err *err)
{
    tqu_backup_result *tmpres = NULL;
    run *r = NULL;
    char *rv = NULL, base[TQU_BACKUP_STAMP_MAX + 16], prefix[PATH_MAX + 64];
    struct stat st;
    int rc = K8S_OK, json_committed = 0, log_committed = 0, dirfd = -1;
    k8s_err lerr;
    k8s_list_opts lo = { .limit = PAGE_SIZE_ITEMS };

    if (res)
        memset(res, 0, sizeof(*res));
    if (!c || !dir || !dir[0] || !res)
        return k8s_err_set(err, K8S_EINVAL, "backup: client, folder and result are required");
    if (!valid_stamp(stamp))
        return k8s_err_set(err, K8S_EINVAL,
                           "backup: stamp \"%.80s\" is not 1-%d characters of [A-Za-z0-9._-] "
                           "(not starting with '.')", stamp ? stamp : "", TQU_BACKUP_STAMP_MAX);
    /* Everything is built in a heap copy and only copied to res on success. */
    if (!(tmpres = calloc(1, sizeof(*tmpres))) || !(r = calloc(1, sizeof(*r)))) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto out;
    }
    out_init(&r->json, tmpres->json_path, "");
    out_init(&r->scratch, tmpres->log_path, " (table scratch file)");
    out_init(&r->log, tmpres->log_path, "");
    if (strlen(dir) >= sizeof(tmpres->dir) - 2 * TQU_BACKUP_STAMP_MAX - 32) {
        rc = k8s_err_set(err, K8S_EINVAL, "backup folder %.200s...: path too long", dir);
        goto out;
    }
    snprintf(tmpres->dir, sizeof(tmpres->dir), "%s", dir);
    snprintf(tmpres->log_path, sizeof(tmpres->log_path), "%s/deploy_%s.log", dir, stamp);
    snprintf(tmpres->json_path, sizeof(tmpres->json_path), "%s/deploy_%s.json", dir, stamp);

    /* Fail fast, before listing, on a folder we cannot use. */
    if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = k8s_err_set(err, K8S_EIO, "backup folder %s: %s", dir, strerror(errno));
        goto out;
    }
    if (lstat(tmpres->log_path, &st) == 0 || lstat(tmpres->json_path, &st) == 0) {
        rc = k8s_err_set(err, K8S_EIO,
                         "backup file %s already exists (a backup with stamp %s was made "
                         "before: verify it, or use a new stamp)",
                         lstat(tmpres->json_path, &st) == 0 ? tmpres->json_path : tmpres->log_path,
                         stamp);
        goto out;
    }

    snprintf(base, sizeof(base), "deploy_%s.json", stamp);
    if ((rc = out_open(&r->json, dirfd, dir, base, 0, 1, err)))
        goto out;
    snprintf(base, sizeof(base), "deploy_%s.rows", stamp);
    if ((rc = out_open(&r->scratch, dirfd, dir, base, 1, 0, err)))
        goto out;
    if (!(r->pbuf = malloc(IO_BUF))) {
        rc = k8s_err_set(err, K8S_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = out_adds(&r->json, JSON_HEAD, err)))
        goto out;

    k8s_err_clear(&lerr);
    rc = k8s_list(c, &K8S_DEPLOYMENTS, NULL, &lo, on_item, r, &rv, &lerr);
    if (r->failed) {
        if (err)
            *err = r->err;
        rc = r->err.rc ? r->err.rc : K8S_EIO;
        goto out;
    }
    if (rc) {
        if (err) {
            *err = lerr;
            snprintf(prefix, sizeof(prefix), "backup to %s: list of Deployments: ",
                     tmpres->json_path);
            err_prefix(err, prefix);
        }
        goto out;
    }
    snprintf(tmpres->resource_version, sizeof(tmpres->resource_version), "%s", rv ? rv : "");

    /* Close the List. */
    if ((rc = out_adds(&r->json, "\n],\"metadata\":{\"resourceVersion\":", err)) ||
        (rc = json_string(&r->json, tmpres->resource_version, err)) ||
        (rc = out_adds(&r->json, "}}\n", err)) ||
        (rc = out_finish(&r->json, tmpres->json_sha256, err)))
        goto out;

    /* The table, padded now that the widths are known. */
    snprintf(base, sizeof(base), "deploy_%s.log", stamp);
    if ((rc = out_open(&r->log, dirfd, dir, base, 0, 1, err)) ||
        (rc = write_table(r, err)) ||
        (rc = out_finish(&r->log, tmpres->log_sha256, err)))
        goto out;

    if ((rc = out_commit(&r->json, &json_committed, err)) ||
        (rc = out_commit(&r->log, &log_committed, err)))
        goto out;

    tmpres->count = r->count;
    tmpres->restarts = r->restarts;
    tmpres->json_bytes = r->json.bytes;
    tmpres->log_bytes = r->log.bytes;
    *res = *tmpres;
out:
    if (rc) {
        /* Never leave a final file of a failed run behind (both were new:
         * out_commit does not replace). */
        if (json_committed && tmpres)
            unlink(tmpres->json_path);
        if (log_committed && tmpres)
            unlink(tmpres->log_path);
    }
    if (r) {
        out_release(&r->json);
        out_release(&r->scratch);
        out_release(&r->log);
        free(r->pbuf);
    }
    if (dirfd >= 0)
        close(dirfd);            /* after out_release, which removes temp files in it */
    free(r);
    free(tmpres);
    free(rv);
    return rc;
}

/* ------------------------------------------------------------ verify */

static int verify_file(const char *path, uint64_t bytes, const char *sha, k8s_err *err)
{
    char hex[65], ebuf[PATH_MAX + 128];
    uint64_t total = 0;
    int rc;

    if (!path || !path[0])
        return k8s_err_set(err, K8S_EIO, "backup: no file recorded");
    rc = tqu_sha256_file(path, hex, &total, ebuf, sizeof(ebuf));
    if (rc == K8S_ENOMEM)
        return k8s_err_set(err, rc, "out of memory");
    if (rc)
        return k8s_err_set(err, K8S_EIO, "backup file %s", ebuf);
    if (total != bytes)
        return k8s_err_set(err, K8S_EIO, "backup file %s: %llu bytes, recorded %llu", path,
                           (unsigned long long)total, (unsigned long long)bytes);
    if (strcasecmp(hex, sha ? sha : "") != 0)
        return k8s_err_set(err, K8S_EIO, "backup file %s: sha256 %s, recorded %s", path, hex,
                           sha ? sha : "");
    return K8S_OK;
}

int tqu_backup_verify(const tqu_backup_result *rec, k8s_err *err)
{
    int rc;
    if (!rec)
        return k8s_err_set(err, K8S_EINVAL, "backup: nothing recorded");
    rc = verify_file(rec->json_path, rec->json_bytes, rec->json_sha256, err);
    if (!rc)
        rc = verify_file(rec->log_path, rec->log_bytes, rec->log_sha256, err);
    return rc;
}

/* ------------------------------------------------------------ kept files */

int tqu_backup_record_file(cJSON *status, const char *name, const char *path, const char *target,
                           char *err, size_t errlen)
{
    char hex[65];
    cJSON *backup, *files, *e, *it;

    if (tqu_sha256_file(path, hex, NULL, err, errlen))
        return -1;
    backup = cJSON_GetObjectItemCaseSensitive(status, "backup");
    if (!cJSON_IsObject(backup) && k8s_json_put(status, "backup", backup = cJSON_CreateObject()))
        goto nomem;
    files = cJSON_GetObjectItemCaseSensitive(backup, "files");
    if (!cJSON_IsArray(files) && k8s_json_put(backup, "files", files = cJSON_CreateArray()))
        goto nomem;
    e = cJSON_CreateObject();
    if (!cJSON_AddStringToObject(e, "name", name) || !cJSON_AddStringToObject(e, "path", path) ||
        !cJSON_AddStringToObject(e, "sha256", hex) || (target && !cJSON_AddStringToObject(e, "target", target))) {
        cJSON_Delete(e);
        goto nomem;
    }
    cJSON_ArrayForEach(it, files) {
        const char *n = k8s_json_str(it, "name", NULL);
        if (n && !strcmp(n, name)) {
            if (cJSON_ReplaceItemViaPointer(files, it, e))
                return 0;
            cJSON_Delete(e);
            goto nomem;
        }
    }
    if (k8s_json_append(files, e) == K8S_OK)
        return 0;
nomem:
    tqu__seterr(err, errlen, K8S_ENOMEM, "%s: out of memory recording it", name);
    return -1;
}

int tqu_backup_keep(cJSON *status, const char *dir, const char *file, const void *data, size_t len,
                    mode_t mode, const char *target, char *err, size_t errlen)
{
    char path[PATH_MAX + 256];
    struct stat st;

    if (tqu_mkdir_p(dir, 0700, err, errlen))
        return -1;
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
        tqu__seterr(err, errlen, K8S_EINVAL, "%s/%s: path too long", dir, file);
        return -1;
    }
    if (stat(path, &st) != 0 && tqu_write_file_atomic(path, data, len, mode, err, errlen))
        return -1;
    return tqu_backup_record_file(status, file, path, target, err, errlen);
}

int tqu_backup_keep_json(cJSON *status, const char *dir, const char *file, const cJSON *obj,
                         char *err, size_t errlen)
{
    char *text = cJSON_Print(obj);
    int rc;
    if (!text) {
        tqu__seterr(err, errlen, K8S_ENOMEM, "%s: out of memory", file);
        return -1;
    }
    rc = tqu_backup_keep(status, dir, file, text, strlen(text), 0600, NULL, err, errlen);
    free(text);
    return rc;
}
