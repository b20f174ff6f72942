/*
 * paas.c - classify darwin-client paas_check output and switch the
 * upgrade's PaaS check off in update.sh (see paas.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "k8s.h"
#include "host/fsutil.h"
#include "paas.h"

/* ------------------------------------------------------------ vocabulary */

static const struct component_def {
    const char *name;
    int edr;
    const char *alias[5];
} components[] = {
    { "es", 1, { "es", "elasticsearch", "elastic", NULL } },
    { "flink", 1, { "flink", NULL } },
    { "sabre", 1, { "sabre", NULL } },
    { "mongodb", 0, { "mongodb", "mongo", "mongod", NULL } },
    { "redis", 0, { "redis", NULL } },
    { "postgres", 0, { "postgres", "postgresql", "pg", "pgsql", NULL } },
    { "kafka", 0, { "kafka", NULL } },
    { "zookeeper", 0, { "zookeeper", "zk", NULL } },
    { "etcd", 0, { "etcd", NULL } },
    { "clickhouse", 0, { "clickhouse", "ck", NULL } },
    { "minio", 0, { "minio", "s3", NULL } },
    { "nginx", 0, { "nginx", NULL } },
    { "mysql", 0, { "mysql", "mariadb", NULL } },
    { "rabbitmq", 0, { "rabbitmq", NULL } },
    { "hadoop", 0, { "hadoop", "hdfs", "yarn", NULL } },
    { "hbase", 0, { "hbase", NULL } },
    { "registry", 0, { "registry", "harbor", NULL } },
    { "coredns", 0, { "coredns", NULL } },
    { "xinghai", 0, { "xinghai", "xh", NULL } },
};
#define NCOMP (sizeof(components) / sizeof(components[0]))
_Static_assert(NCOMP <= TQU_PAAS_NCOMPONENTS, "raise TQU_PAAS_NCOMPONENTS");

static const char *const fail_words[] = {
    "fail", "fails", "failed", "failing", "failure", "failures",
    "error", "errors", "errored", "unhealthy", "unavailable", "unreachable",
    "crashloopbackoff", "notready", NULL,
};
/* After "not": */
static const char *const not_words[] = { "ready", "healthy", "running", "available", NULL };
/* A failure word right after one of these (spaces between) is negated. */
static const char *const neg_before[] = { "no", "0", "zero", "without", "not", NULL };
/* ... or followed by [:=：]? and one of these. */
static const char *const neg_after[] = { "none", "nil", "null", "false", NULL };

static const char *const zh_fail_words[] = { "失败", "错误", "异常", "不健康", "未就绪", "不可用", NULL };
static const char *const zh_neg_before[] = { "无", "没有", "未发现", NULL };

static int is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Token t[0..n) equals the lower-case word w, ignoring case. */
static int tok_eq(const char *t, size_t n, const char *w)
{
    size_t i;
    for (i = 0; i < n && w[i]; i++)
        if (lower((unsigned char)t[i]) != (unsigned char)w[i])
            return 0;
    return i == n && w[i] == '\0';
}

static int tok_in(const char *t, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (tok_eq(t, n, *words))
            return 1;
    return 0;
}

/* Whether what follows position p is a negating count or value:
 * spaces, optional ':' '=' or '：', spaces, then 0 / none / nil / <nil> /
 * null / false as a whole word. */
static size_t skip_separator(const char *s, size_t n, size_t p)
{
    if (p < n && (s[p] == ':' || s[p] == '='))
        return p + 1;
    if (p + 3 <= n && memcmp(s + p, "：", 3) == 0)
        return p + 3;
    return p;
}

static int negated_after(const char *s, size_t n, size_t p)
{
    size_t q, sep;
    while (p < n && s[p] == ' ')
        p++;
    sep = skip_separator(s, n, p);
    if (sep == p) {
        /* one word between: "failed jobs: 0", "errors found = 0" */
        for (q = p; q < n && is_word((unsigned char)s[q]); q++)
            ;
        while (q > p && q < n && s[q] == ' ')
            q++;
        if (q > p && skip_separator(s, n, q) > q)
            sep = skip_separator(s, n, q);
    }
    p = sep;
    while (p < n && s[p] == ' ')
        p++;
    if (p + 5 <= n && memcmp(s + p, "<nil>", 5) == 0)
        return 1;
    for (q = p; q < n && is_word((unsigned char)s[q]); q++)
        ;
    if (q == p || (q < n && s[q] == '.'))
        return 0;
    return tok_eq(s + p, q - p, "0") || tok_in(s + p, q - p, neg_after);
}

/* Whether the line holds a failure word that is not negated. */
static int has_failure(const char *s, size_t n)
{
    size_t i = 0, ps = 0, pn = 0;   /* previous token */
    int prev = 0, spaces_only = 0, high = 0;

    while (i < n) {
        size_t j;
        if (!is_word((unsigned char)s[i])) {
            if ((unsigned char)s[i] >= 0x80)
                high = 1;
            if (s[i] != ' ')
                spaces_only = 0;
            i++;
            continue;
        }
        for (j = i; j < n && is_word((unsigned char)s[j]); j++)
            ;
        if (tok_in(s + i, j - i, fail_words)) {
            int neg = (prev && spaces_only && tok_in(s + ps, pn, neg_before)) ||
                      negated_after(s, n, j);
            if (!neg)
                return 1;
        } else if (tok_eq(s + i, j - i, "not")) {
            size_t k = j, m;
            while (k < n && (s[k] == ' ' || s[k] == '_' || s[k] == '-'))
                k++;
            for (m = k; m < n && is_word((unsigned char)s[m]); m++)
                ;
            if (k > j && m > k && tok_in(s + k, m - k, not_words) &&
                !(prev && spaces_only && tok_in(s + ps, pn, neg_before)))
                return 1;
        }
        prev = 1;
        ps = i;
        pn = j - i;
        spaces_only = 1;
        i = j;
    }
    if (!high)
        return 0;
    for (const char *const *w = zh_fail_words; *w; w++) {
        size_t wl = strlen(*w);
        const char *p = s, *end = s + n;
        while ((p = memmem(p, (size_t)(end - p), *w, wl)) != NULL) {
            int neg = negated_after(s, n, (size_t)(p - s) + wl);
            for (const char *const *nb = zh_neg_before; *nb && !neg; nb++) {
                size_t nl = strlen(*nb);
                if ((size_t)(p - s) >= nl && memcmp(p - nl, *nb, nl) == 0)
                    neg = 1;
            }
            if (!neg)
                return 1;
            p += wl;
        }
    }
    return 0;
}

/* The component a token names, or -1. */
static int component_of(const char *t, size_t n)
{
    size_t stripped = n;
    while (stripped > 0 && t[stripped - 1] >= '0' && t[stripped - 1] <= '9')
        stripped--;
    if (stripped == 0)
        return -1;
    for (size_t c = 0; c < NCOMP; c++)
        for (const char *const *a = components[c].alias; *a; a++)
            if (tok_eq(t, n, *a) || (stripped < n && stripped >= 2 && tok_eq(t, stripped, *a)))
                return (int)c;
    return -1;
}

/* ----------------------------------------------------------- classifier */

static int keep_line(tqu_paas_lines *l, const char *s, size_t n, unsigned long lineno)
{
    size_t cut;
    char *p;

    l->count++;
    if (l->nkept >= TQU_PAAS_KEEP_LINES)
        return K8S_OK;
    while (n > 0 && (*s == ' '))
        s++, n--;
    while (n > 0 && s[n - 1] == ' ')
        n--;
    cut = n;
    if (cut > TQU_PAAS_KEEP_LINE_LEN) {
        cut = TQU_PAAS_KEEP_LINE_LEN;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    p = malloc(cut + (cut < n ? 4 : 1));
    if (!p)
        return K8S_ENOMEM;
    memcpy(p, s, cut);
    if (cut < n)
        memcpy(p + cut, "...", 3), cut += 3;
    p[cut] = '\0';
    l->text[l->nkept] = p;
    l->line_no[l->nkept++] = lineno;
    return K8S_OK;
}

static int judge_line(tqu_paas_result *r)
{
    const char *s = r->buf;
    size_t n = r->len, i = 0;
    unsigned char seen[NCOMP] = { 0 };
    int named = 0, rc;
    unsigned long lineno = ++r->lines;

    if (!has_failure(s, n))
        return K8S_OK;
    while (i < n) {
        size_t j;
        int c;
        if (!is_word((unsigned char)s[i])) {
            i++;
            continue;
        }
        for (j = i; j < n && is_word((unsigned char)s[j]); j++)
            ;
        c = component_of(s + i, j - i);
        if (c >= 0 && !seen[c]) {
            seen[c] = 1;
            named = 1;
            if ((rc = keep_line(&r->comp[c].failed, s, n, lineno)) != K8S_OK)
                return rc;
        }
        i = j;
    }
    if (!named)
        return keep_line(&r->unattributed, s, n, lineno);
    return K8S_OK;
}

int tqu_paas_init(tqu_paas_result *r)
{
    if (!r)
        return K8S_EINVAL;
    memset(r, 0, sizeof(*r));
    for (size_t c = 0; c < NCOMP; c++) {
        r->comp[c].name = components[c].name;
        r->comp[c].edr = components[c].edr;
    }
    r->code = tqu_paas_verdict_code(TQU_PAAS_PASS);
    r->buf = malloc(TQU_PAAS_LINE_MAX);
    return r->buf ? K8S_OK : K8S_ENOMEM;
}

static void lines_release(tqu_paas_lines *l)
{
    for (size_t i = 0; i < l->nkept; i++)
        free(l->text[i]);
    memset(l, 0, sizeof(*l));
}

void tqu_paas_release(tqu_paas_result *r)
{
    if (!r)
        return;
    for (size_t c = 0; c < TQU_PAAS_NCOMPONENTS; c++)
        lines_release(&r->comp[c].failed);
    lines_release(&r->unattributed);
    free(r->buf);
    r->buf = NULL;
    r->len = 0;
}

int tqu_paas_feed(tqu_paas_result *r, const void *data, size_t len)
{
    const unsigned char *p = data;
    int rc;

    if (!r || !r->buf || (!data && len))
        return K8S_EINVAL;
    r->bytes += len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == '\n') {
            r->esc = 0;
            rc = judge_line(r);
            r->len = 0;
            r->overlong = 0;
            if (rc)
                return rc;
            continue;
        }
        switch (r->esc) {
        case 1:                       /* after ESC */
            r->esc = c == '[' ? 2 : c == ']' ? 3 : 0;
            continue;
        case 2:                       /* CSI: parameters, then a final byte */
            if (c >= 0x40 && c <= 0x7e)
                r->esc = 0;
            continue;
        case 3:                       /* OSC: up to BEL or ESC \ */
            if (c == 0x07)
                r->esc = 0;
            else if (c == 0x1b)
                r->esc = 1;
            continue;
        }
        if (c == 0x1b) {
            /* a colour change separates words as the eye sees them */
            if (r->len > 0 && r->len < TQU_PAAS_LINE_MAX && r->buf[r->len - 1] != ' ')
                r->buf[r->len++] = ' ';
            r->esc = 1;
            continue;
        }
        if (c < 0x20 || c == 0x7f)      /* CR, TAB, NUL, BEL, backspace... */
            c = ' ';
        if (r->len < TQU_PAAS_LINE_MAX) {
            r->buf[r->len++] = (char)c;
        } else if (!r->overlong) {
            r->overlong = 1;
            r->long_lines++;
        }
    }
    return K8S_OK;
}

const char *tqu_paas_verdict_code(tqu_paas_verdict v)
{
    switch (v) {
    case TQU_PAAS_PASS: return "Passed";
    case TQU_PAAS_ONLY_EDR_COMPONENTS: return "OnlyEdrComponentsFailed";
    case TQU_PAAS_OTHER_COMPONENTS: return "OtherComponentsFailed";
    case TQU_PAAS_UNKNOWN_FAILURE: return "UnknownFailure";
    }
    return "Unknown";
}

const tqu_paas_component *tqu_paas_component_get(const tqu_paas_result *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t c = 0; c < NCOMP; c++)
        if (r->comp[c].name && strcmp(r->comp[c].name, name) == 0)
            return &r->comp[c];
    return NULL;
}

#define msg_add(r, ...) tqu__appendf((r)->message, sizeof((r)->message), NULL, __VA_ARGS__)

/* "es, flink" of the failed components with edr == want (or any, want < 0). */
static size_t list_failed(tqu_paas_result *r, int want)
{
    size_t n = 0;
    for (size_t c = 0; c < NCOMP; c++)
        if (r->comp[c].failed.count && (want < 0 || r->comp[c].edr == want))
            msg_add(r, "%s%s", n++ ? ", " : "", r->comp[c].name);
    return n;
}

static void exit_text(const tqu_paas_result *r, char *buf, size_t len)
{
    if (r->exit_code < 0)
        snprintf(buf, len, "did not exit normally");
    else
        snprintf(buf, len, "exited %d", r->exit_code);
}

/* ": es line 12 \"...\"; flink line 40 \"...\"" for failed components. */
static void quote_lines(tqu_paas_result *r, int want)
{
    int first = 1;
    for (size_t c = 0; c < NCOMP; c++) {
        const tqu_paas_lines *l = &r->comp[c].failed;
        if (!l->count || (want >= 0 && r->comp[c].edr != want))
            continue;
        msg_add(r, "%s%s line %lu \"%.120s\"", first ? ": " : "; ", r->comp[c].name, l->line_no[0],
                l->text[0]);
        first = 0;
    }
}

int tqu_paas_finish(tqu_paas_result *r, int exit_code)
{
    size_t edr = 0, other = 0;
    char ex[48];
    int rc = K8S_OK;

    if (!r || !r->buf)
        return K8S_EINVAL;
    if (r->len > 0 || r->overlong) {
        rc = judge_line(r);
        r->len = 0;
        r->overlong = 0;
        if (rc)
            return rc;
    }
    r->exit_code = exit_code;
    for (size_t c = 0; c < NCOMP; c++)
        if (r->comp[c].failed.count)
            *(r->comp[c].edr ? &edr : &other) += 1;
    if (other)
        r->verdict = TQU_PAAS_OTHER_COMPONENTS;
    else if (edr)
        r->verdict = TQU_PAAS_ONLY_EDR_COMPONENTS;
    else if (exit_code != 0)
        r->verdict = TQU_PAAS_UNKNOWN_FAILURE;
    else
        r->verdict = TQU_PAAS_PASS;
    r->code = tqu_paas_verdict_code(r->verdict);
    exit_text(r, ex, sizeof(ex));
    r->message[0] = '\0';
    switch (r->verdict) {
    case TQU_PAAS_PASS:
        msg_add(r, "PaaS check passed: darwin-client exited 0 and named no failing component (%lu lines)",
                r->lines);
        if (r->unattributed.count)
            msg_add(r, "; %lu failure line%s named no component, first at line %lu: \"%.120s\"",
                    r->unattributed.count, r->unattributed.count == 1 ? "" : "s",
                    r->unattributed.line_no[0], r->unattributed.text[0]);
        break;
    case TQU_PAAS_ONLY_EDR_COMPONENTS:
        msg_add(r, "only EDR components failed the PaaS check (");
        list_failed(r, 1);
        msg_add(r, "; darwin-client %s, %lu lines)", ex, r->lines);
        quote_lines(r, 1);
        break;
    case TQU_PAAS_OTHER_COMPONENTS:
        msg_add(r, "PaaS components failed the check: ");
        list_failed(r, 0);
        if (edr) {
            msg_add(r, " (and EDR: ");
            list_failed(r, 1);
            msg_add(r, ")");
        }
        msg_add(r, "; repair them before the upgrade (darwin-client %s, %lu lines)", ex, r->lines);
        quote_lines(r, 0);
        break;
    case TQU_PAAS_UNKNOWN_FAILURE:
        msg_add(r, "darwin-client paas_check %s but no known component was named in a failure line (%lu lines)",
                ex, r->lines);
        if (r->unattributed.count)
            msg_add(r, "; %lu failure line%s, first at line %lu: \"%.160s\"", r->unattributed.count,
                    r->unattributed.count == 1 ? "" : "s", r->unattributed.line_no[0],
                    r->unattributed.text[0]);
        msg_add(r, ": read the check's output and repair what it reports");
        break;
    }
    if (r->long_lines)
        msg_add(r, " [%lu line%s over %d bytes judged on their start]", r->long_lines,
                r->long_lines == 1 ? "" : "s", TQU_PAAS_LINE_MAX);
    return K8S_OK;
}

int tqu_paas_classify_text(const char *text, size_t len, int exit_code, tqu_paas_result *r)
{
    int rc = tqu_paas_init(r);
    if (rc == K8S_OK)
        rc = tqu_paas_feed(r, text, len);
    if (rc == K8S_OK)
        rc = tqu_paas_finish(r, exit_code);
    if (rc && r)
        tqu_paas_release(r);
    return rc;
}

static int feed_chunk(void *ud, const void *data, size_t len)
{
    return tqu_paas_feed(ud, data, len);
}

int tqu_paas_classify_file(const char *path, int exit_code, tqu_paas_result *r,
                           char *err, size_t errlen)
{
    int rc;

    if (!path || !r)
        return tqu__seterr(err, errlen, K8S_EINVAL, "paas_check output: no file given");
    if ((rc = tqu_paas_init(r)) != K8S_OK)
        return tqu__seterr(err, errlen, rc, "%s: out of memory", path);
    rc = tqu_read_chunks(path, feed_chunk, r, err, errlen);
    if (rc == K8S_ENOMEM)           /* from tqu_paas_feed; a read error is named already */
        tqu__seterr(err, errlen, rc, "%s: out of memory", path);
    if (rc == K8S_OK && (rc = tqu_paas_finish(r, exit_code)) != K8S_OK)
        tqu__seterr(err, errlen, rc, "%s: out of memory", path);
    if (rc)
        tqu_paas_release(r);
    return rc;
}

/* ------------------------------------------------------ update.sh edit */

#define MARKER "execute.type=k8s"
#define FLAG " --paas.check=false"
#define UPDATE_SH_MAX ((size_t)8 << 20)

static int marker_char(unsigned char c)
{
    return is_word(c) || c == '_' || c == '.';
}

/* Whether the line [s, e) sets paas.check to anything but false. */
static int conflicting_flag(const char *s, const char *e)
{
    static const char key[] = "paas.check=";
    const char *p = s;
    while ((p = memmem(p, (size_t)(e - p), key, sizeof(key) - 1)) != NULL) {
        const char *v = p + sizeof(key) - 1, *q = v;
        while (q < e && marker_char((unsigned char)*q))
            q++;
        if ((size_t)(q - v) != 5 || memcmp(v, "false", 5) != 0)
            return 1;
        p = q;
    }
    return 0;
}

/* Append " 12" style line numbers to a bounded list. */
static void add_lineno(char *buf, size_t len, size_t *shown, unsigned long line)
{
    size_t off = strlen(buf);
    if (*shown == 10) {
        if (off + 5 < len)
            strcat(buf, " ...");
        (*shown)++;
        return;
    }
    if (*shown > 10)
        return;
    snprintf(buf + off, len - off, "%s%lu", off ? ", " : "", line);
    (*shown)++;
}

int tqu_paas_disable_check(const char *update_sh, const char *backup_dir, char *msg, size_t len)
{
    char real[PATH_MAX], backup[PATH_MAX], bdir[PATH_MAX], e[PATH_MAX + 128];
    char edited[96] = "", conflict[96] = "";
    size_t total = 0, need = 0, nconf = 0, shown = 0, shown_c = 0, bl;
    unsigned long lineno = 0;
    k8s_buf in, outb;
    struct stat st;
    int rc, n, kept_backup = 0;
    const char *s, *end, *line;

    k8s_buf_init(&in, UPDATE_SH_MAX);
    k8s_buf_init(&outb, 0);
    if (!update_sh || !*update_sh || !backup_dir || !*backup_dir) {
        rc = tqu__seterr(msg, len, K8S_EINVAL, "paas.check edit: update.sh path and backup folder are required");
        goto out;
    }
    if (!realpath(update_sh, real)) {
        rc = tqu__seterr(msg, len, K8S_EIO, "%s: %s; file unchanged", update_sh, strerror(errno));
        goto out;
    }
    if (stat(real, &st) < 0) {
        rc = tqu__seterr(msg, len, K8S_EIO, "%s: %s; file unchanged", update_sh, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = tqu__seterr(msg, len, K8S_EIO, "%s: not a regular file; file unchanged", update_sh);
        goto out;
    }
    if ((rc = tqu_read_file(real, UPDATE_SH_MAX, &in, e, sizeof(e))) != K8S_OK) {
        tqu__seterr(msg, len, rc, "%s; file unchanged", e);
        goto out;
    }

    /* Pass 1: find the occurrences, line by line. */
    s = in.data;
    end = in.data + in.len;
    for (line = s; line < end;) {
        const char *le = memchr(line, '\n', (size_t)(end - line)), *p = line;
        int has_marker = 0, line_needs = 0;
        if (!le)
            le = end;
        lineno++;
        while ((p = memmem(p, (size_t)(le - p), MARKER, sizeof(MARKER) - 1)) != NULL) {
            const char *after = p + sizeof(MARKER) - 1;
            int word = (p == s || !marker_char((unsigned char)p[-1])) &&
                       (after == le || !marker_char((unsigned char)*after));
            if (word) {
                has_marker = 1;
                total++;
                if (!((size_t)(le - after) >= sizeof(FLAG) - 1 &&
                      memcmp(after, FLAG, sizeof(FLAG) - 1) == 0 &&
                      (after + sizeof(FLAG) - 1 == le ||
                       !marker_char((unsigned char)after[sizeof(FLAG) - 1])))) {
                    need++;
                    line_needs = 1;
                }
            }
            p = after;
        }
        if (has_marker && conflicting_flag(line, le)) {
            nconf++;
            add_lineno(conflict, sizeof(conflict), &shown_c, lineno);
        } else if (line_needs) {
            add_lineno(edited, sizeof(edited), &shown, lineno);
        }
        line = le + 1;
    }
    if (total == 0) {
        rc = tqu__seterr(msg, len, K8S_EINVAL,
                         "%s: no \"" MARKER "\" found: this is not the update.sh the runbook describes; file unchanged",
                         real);
        goto out;
    }
    if (nconf) {
        rc = tqu__seterr(msg, len, K8S_EINVAL,
                         "%s: line%s %s already set%s paas.check to something other than false beside " MARKER ": edit it by hand; file unchanged",
                         real, nconf == 1 ? "" : "s", conflict, nconf == 1 ? "s" : "");
        goto out;
    }
    if (need == 0) {
        tqu__seterr(msg, len, K8S_OK,
                    "%s: the PaaS check is already off (--paas.check=false follows all %zu occurrence%s of " MARKER "); nothing changed",
                    real, total, total == 1 ? "" : "s");
        rc = K8S_OK;
        goto out;
    }

    /* Keep the original, once. */
    bl = strlen(backup_dir);
    while (bl > 1 && backup_dir[bl - 1] == '/')
        bl--;
    n = snprintf(backup, sizeof(backup), "%.*s%s.orig", (int)bl, backup_dir, real);
    if (n < 0 || (size_t)n >= sizeof(backup)) {
        rc = tqu__seterr(msg, len, K8S_EINVAL, "%s: backup path under %s too long; file unchanged", real, backup_dir);
        goto out;
    }
    memcpy(bdir, backup, sizeof(bdir));
    *strrchr(bdir, '/') = '\0';
    {
        struct stat bst;
        if (lstat(backup, &bst) == 0) {
            kept_backup = 1;
        } else if (errno != ENOENT) {
            rc = tqu__seterr(msg, len, K8S_EIO, "backup of %s: %s: %s; file unchanged", real, backup,
                             strerror(errno));
            goto out;
        } else if ((rc = tqu_mkdir_p(bdir, 0700, e, sizeof(e))) != K8S_OK ||
                   (rc = tqu_write_file_atomic(backup, in.data, in.len, st.st_mode & 07777, e, sizeof(e))) != K8S_OK) {
            tqu__seterr(msg, len, rc, "backup of %s: %s; file unchanged", real, e);
            goto out;
        }
    }

    /* Pass 2: the edited text. */
    for (const char *p = s; p < end;) {
        const char *m = memmem(p, (size_t)(end - p), MARKER, sizeof(MARKER) - 1), *after;
        if (!m) {
            rc = k8s_buf_add(&outb, p, (size_t)(end - p));
            break;
        }
        after = m + sizeof(MARKER) - 1;
        if ((rc = k8s_buf_add(&outb, p, (size_t)(after - p))) != K8S_OK)
            break;
        p = after;
        if ((m == s || !marker_char((unsigned char)m[-1])) &&
            (after == end || !marker_char((unsigned char)*after))) {
            size_t left = (size_t)(end - after);
            int present = left >= sizeof(FLAG) - 1 && memcmp(after, FLAG, sizeof(FLAG) - 1) == 0 &&
                          (left == sizeof(FLAG) - 1 || !marker_char((unsigned char)after[sizeof(FLAG) - 1]));
            if (!present && (rc = k8s_buf_add(&outb, FLAG, sizeof(FLAG) - 1)) != K8S_OK)
                break;
        }
    }
    if (rc) {
        tqu__seterr(msg, len, rc, "%s: out of memory; file unchanged", real);
        goto out;
    }
    rc = tqu_write_file_atomic_as(real, outb.data, outb.len, st.st_mode & 07777,
                                  geteuid() == 0 ? st.st_uid : (uid_t)-1,
                                  geteuid() == 0 ? st.st_gid : (gid_t)-1, e, sizeof(e));
    if (rc) {
        tqu__seterr(msg, len, rc, "%s; file unchanged", e);
        goto out;
    }
    tqu__seterr(msg, len, K8S_OK,
                "%s: inserted --paas.check=false after " MARKER " on line%s %s (%zu of %zu occurrence%s); %s %s",
                real, need == 1 ? "" : "s", edited, need, total, total == 1 ? "" : "s",
                kept_backup ? "the original saved earlier is kept at" : "original saved as", backup);
    rc = K8S_OK;
out:
    k8s_buf_release(&in);
    k8s_buf_release(&outb);
    return rc;
}
