/*
 * prom_parse.h - a small, strict parser of the Prometheus text exposition
 * format 0.0.4, for tests (test_metrics.c, test_health.c). Header-only.
 *
 * It accepts only what a correct exporter writes, and a little less:
 *  - every line ends in '\n', including the last; no empty lines, and no
 *    comments other than "# HELP name text" and "# TYPE name type";
 *  - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 *    [a-zA-Z_][a-zA-Z0-9_]* (not "__" reserved, no duplicates), label
 *    values only use the escapes \\ \" \n; HELP text only \\ and \n;
 *  - every sample's family (histogram: name_bucket/_sum/_count) has both
 *    HELP and TYPE before its first sample; TYPE at most once and never
 *    after a sample; a family's lines form one group; no duplicate series;
 *  - values are floats ("+Inf", "-Inf", "NaN" spelled so; no hex);
 *  - counters are >= 0 and (house rule) named *_total;
 *  - histograms: per label set, _bucket le values ascending and ending in
 *    "+Inf", cumulative counts non-decreasing, +Inf == _count, _sum present.
 *
 * prom_parse() returns 0, or -1 with "line N: what" in doc->err.
 * prom_doc_release() frees what a parse (even a failed one) allocated.
 */
#ifndef PROM_PARSE_H
#define PROM_PARSE_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_MAX_LABELS 8

typedef struct prom_label {
    char name[64];
    char value[256];
} prom_label;

typedef struct prom_sample {
    char name[128];
    int family;                 /* index in doc->fam */
    int nlabels;
    prom_label label[PROM_MAX_LABELS];
    double value;
} prom_sample;

typedef struct prom_family {
    char name[128];
    char type[16];              /* "" until TYPE */
    int help, closed, nsamples;
} prom_family;

typedef struct prom_doc {
    prom_family *fam;
    int nfam;
    prom_sample *s;
    int ns;
    char err[512];
} prom_doc;

static inline void prom_doc_release(prom_doc *d)
{
    free(d->fam);
    free(d->s);
    d->fam = NULL;
    d->s = NULL;
    d->nfam = d->ns = 0;
}

__attribute__((format(printf, 3, 4)))
static inline int prom__fail(prom_doc *d, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(d->err, sizeof(d->err), "line %d: ", line);
    va_start(ap, fmt);
    vsnprintf(d->err + n, sizeof(d->err) - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static inline int prom__name_start(int c, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static inline int prom__name_char(int c, int colon)
{
    return prom__name_start(c, colon) || (c >= '0' && c <= '9');
}

/* Read a name at *p into out (cap bytes); returns its length, 0 if none. */
static inline size_t prom__name(const char **p, const char *end, int colon, char *out, size_t cap)
{
    const char *s = *p;
    size_t n;

    if (s >= end || !prom__name_start((unsigned char)*s, colon))
        return 0;
    while (s < end && prom__name_char((unsigned char)*s, colon))
        s++;
    n = (size_t)(s - *p);
    if (n >= cap)
        return 0;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = s;
    return n;
}

static inline int prom__float(const char *s, size_t n, double *v)
{
    char tmp[64], *e;

    if (n == 4 && memcmp(s, "+Inf", 4) == 0) {
        *v = INFINITY;
        return 0;
    }
    if (n == 4 && memcmp(s, "-Inf", 4) == 0) {
        *v = -INFINITY;
        return 0;
    }
    if (n == 3 && memcmp(s, "NaN", 3) == 0) {
        *v = NAN;
        return 0;
    }
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789.eE+-", s[i]))
            return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *v = strtod(tmp, &e);
    return *e == '\0' ? 0 : -1;
}

static inline int prom__family_index(const prom_doc *d, const char *name)
{
    for (int i = 0; i < d->nfam; i++)
        if (strcmp(d->fam[i].name, name) == 0)
            return i;
    return -1;
}

static inline const prom_family *prom_family_of(const prom_doc *d, const char *name)
{
    int i = prom__family_index(d, name);
    return i < 0 ? NULL : &d->fam[i];
}

static inline const char *prom_label_value(const prom_sample *s, const char *name)
{
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->label[i].name, name) == 0)
            return s->label[i].value;
    return NULL;
}

/* Same name and the same label set, ignoring label `skip` (may be NULL). */
static inline int prom__same_series(const prom_sample *a, const prom_sample *b, const char *skip)
{
    int na = 0, nb = 0;

    if (strcmp(a->name, b->name) != 0)
        return 0;
    for (int i = 0; i < a->nlabels; i++) {
        const char *v;
        if (skip && strcmp(a->label[i].name, skip) == 0)
            continue;
        na++;
        v = prom_label_value(b, a->label[i].name);
        if (!v || strcmp(v, a->label[i].value) != 0)
            return 0;
    }
    for (int i = 0; i < b->nlabels; i++)
        if (!skip || strcmp(b->label[i].name, skip) != 0)
            nb++;
    return na == nb;
}

/* A family opened by a line: the current group changes to it. */
static inline int prom__enter(prom_doc *d, int line, const char *name, int *current)
{
    int f = prom__family_index(d, name);

    if (f < 0) {
        prom_family *nf = realloc(d->fam, sizeof(*nf) * (size_t)(d->nfam + 1));
        if (!nf)
            return prom__fail(d, line, "out of memory");
        d->fam = nf;
        f = d->nfam++;
        memset(&d->fam[f], 0, sizeof(d->fam[f]));
        snprintf(d->fam[f].name, sizeof(d->fam[f].name), "%s", name);
    }
    if (f != *current) {
        if (d->fam[f].closed)
            return prom__fail(d, line, "family %s appears in two separate groups", name);
        if (*current >= 0)
            d->fam[*current].closed = 1;
        *current = f;
    }
    return f;
}

static inline int prom__comment(prom_doc *d, int line, const char *p, const char *end, int *current)
{
    char name[128];
    int help, f;

    if (end - p >= 7 && memcmp(p, "# HELP ", 7) == 0)
        help = 1;
    else if (end - p >= 7 && memcmp(p, "# TYPE ", 7) == 0)
        help = 0;
    else
        return prom__fail(d, line, "unexpected comment: %.*s", (int)(end - p), p);
    p += 7;
    if (!prom__name(&p, end, 1, name, sizeof(name)))
        return prom__fail(d, line, "bad metric name");
    if (p >= end || *p != ' ' || p + 1 >= end)
        return prom__fail(d, line, "%s without text", help ? "HELP" : "TYPE");
    p++;
    f = prom__enter(d, line, name, current);
    if (f < 0)
        return -1;
    if (help) {
        if (d->fam[f].help)
            return prom__fail(d, line, "second HELP for %s", name);
        for (; p < end; p++)
            if (*p == '\\' && (p + 1 >= end || (p[1] != '\\' && p[1] != 'n')))
                return prom__fail(d, line, "bad escape in HELP of %s", name);
            else if (*p == '\\')
                p++;
        d->fam[f].help = 1;
        return 0;
    }
    if (d->fam[f].type[0])
        return prom__fail(d, line, "second TYPE for %s", name);
    if (d->fam[f].nsamples)
        return prom__fail(d, line, "TYPE for %s after its samples", name);
    static const char *const types[] = { "counter", "gauge", "histogram", "summary", "untyped" };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if ((size_t)(end - p) == strlen(types[i]) && memcmp(p, types[i], (size_t)(end - p)) == 0)
            snprintf(d->fam[f].type, sizeof(d->fam[f].type), "%s", types[i]);
    if (!d->fam[f].type[0])
        return prom__fail(d, line, "unknown type %.*s", (int)(end - p), p);
    if (strcmp(d->fam[f].type, "counter") == 0 &&
        (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total") != 0))
        return prom__fail(d, line, "counter %s does not end in _total", name);
    return 0;
}

/* The family a sample name belongs to, or -1. */
static inline int prom__family_of_sample(const prom_doc *d, const char *name, const char **suffix)
{
    static const char *const sfx[] = { "_bucket", "_sum", "_count" };
    int f = prom__family_index(d, name);

    *suffix = "";
    if (f >= 0 && strcmp(d->fam[f].type, "histogram") != 0)
        return f;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), m = strlen(sfx[i]);
        char base[128];
        if (n <= m || strcmp(name + n - m, sfx[i]) != 0 || n - m >= sizeof(base))
            continue;
        memcpy(base, name, n - m);
        base[n - m] = '\0';
        f = prom__family_index(d, base);
        if (f >= 0 && (strcmp(d->fam[f].type, "histogram") == 0 ||
                       (i > 0 && strcmp(d->fam[f].type, "summary") == 0))) {
            *suffix = sfx[i];
            return f;
        }
    }
    return -1;
}

static inline int prom__sample(prom_doc *d, int line, const char *p, const char *end, int *current)
{
    prom_sample s;
    const char *suffix, *v;
    int f;

    memset(&s, 0, sizeof(s));
    if (!prom__name(&p, end, 1, s.name, sizeof(s.name)))
        return prom__fail(d, line, "bad metric name");
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            prom_label *l;
            size_t n = 0;
            if (p < end && *p == '}') {
                p++;
                break;
            }
            if (s.nlabels == PROM_MAX_LABELS)
                return prom__fail(d, line, "too many labels");
            l = &s.label[s.nlabels];
            if (!prom__name(&p, end, 0, l->name, sizeof(l->name)))
                return prom__fail(d, line, "bad label name");
            if (strncmp(l->name, "__", 2) == 0)
                return prom__fail(d, line, "reserved label name %s", l->name);
            if (prom_label_value(&s, l->name))
                return prom__fail(d, line, "duplicate label %s", l->name);
            if (end - p < 2 || p[0] != '=' || p[1] != '"')
                return prom__fail(d, line, "expected =\" after label %s", l->name);
            p += 2;
            for (;; p++) {
                char c;
                if (p >= end)
                    return prom__fail(d, line, "unterminated label value");
                if (*p == '"')
                    break;
                c = *p;
                if (c == '\\') {
                    if (++p >= end)
                        return prom__fail(d, line, "unterminated escape");
                    if (*p == '\\' || *p == '"')
                        c = *p;
                    else if (*p == 'n')
                        c = '\n';
                    else
                        return prom__fail(d, line, "bad escape \\%c in label value", *p);
                }
                if (n + 1 >= sizeof(l->value))
                    return prom__fail(d, line, "label value too long");
                l->value[n++] = c;
            }
            l->value[n] = '\0';
            p++;
            s.nlabels++;
            if (p < end && *p == ',')
                p++;
            else if (p >= end || *p != '}')
                return prom__fail(d, line, "expected , or } after label value");
        }
    }
    if (p >= end || *p != ' ')
        return prom__fail(d, line, "expected a space before the value");
    p++;
    v = p;
    while (p < end && *p != ' ')
        p++;
    if (prom__float(v, (size_t)(p - v), &s.value))
        return prom__fail(d, line, "bad value %.*s", (int)(p - v), v);
    if (p < end) {  /* timestamp: an integer */
        const char *t = ++p;
        if (p < end && *p == '-')
            p++;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == t || p != end)
            return prom__fail(d, line, "bad timestamp");
    }

    f = prom__family_of_sample(d, s.name, &suffix);
    if (f < 0 || !d->fam[f].help || !d->fam[f].type[0])
        return prom__fail(d, line, "sample %s without HELP and TYPE before it", s.name);
    if (prom__enter(d, line, d->fam[f].name, current) < 0)
        return -1;
    s.family = f;
    if (strcmp(suffix, "_bucket") == 0) {
        double le;
        const char *lv = prom_label_value(&s, "le");
        if (!lv || prom__float(lv, strlen(lv), &le) || isnan(le))
            return prom__fail(d, line, "bucket %s without a valid le", s.name);
    } else if (strcmp(d->fam[f].type, "histogram") == 0 && prom_label_value(&s, "le")) {
        return prom__fail(d, line, "le label on %s", s.name);
    }
    if (strcmp(d->fam[f].type, "counter") == 0 && !(s.value >= 0))
        return prom__fail(d, line, "counter %s is %g", s.name, s.value);
    for (int i = 0; i < d->ns; i++)
        if (prom__same_series(&d->s[i], &s, NULL))
            return prom__fail(d, line, "duplicate series %s", s.name);

    prom_sample *ns = realloc(d->s, sizeof(*ns) * (size_t)(d->ns + 1));
    if (!ns)
        return prom__fail(d, line, "out of memory");
    d->s = ns;
    d->s[d->ns++] = s;
    d->fam[f].nsamples++;
    return 0;
}

/* The histogram rules, checked once everything is read. */
static inline int prom__check_histograms(prom_doc *d)
{
    for (int i = 0; i < d->ns; i++) {
        const prom_sample *a = &d->s[i];
        const prom_family *f = &d->fam[a->family];
        size_t fl = strlen(f->name);
        double prev_le = -INFINITY, prev = 0, sum_seen = 0, count = -1;
        int first = 1, done = 0;

        if (strcmp(f->type, "histogram") != 0)
            continue;
        if (strcmp(a->name + fl, "_bucket") != 0) {
            /* a _sum or _count needs buckets with the same labels */
            int found = 0;
            for (int j = 0; j < d->ns && !found; j++) {
                prom_sample key = *a;
                snprintf(key.name, sizeof(key.name), "%s", d->s[j].name);
                found = d->s[j].family == a->family &&
                        strcmp(d->s[j].name + fl, "_bucket") == 0 &&
                        prom__same_series(&d->s[j], &key, "le");
            }
            if (!found)
                return snprintf(d->err, sizeof(d->err), "%s without buckets", a->name), -1;
            continue;
        }
        /* only start at the first bucket of each label set */
        for (int j = 0; j < i; j++)
            if (strcmp(d->s[j].name + fl, "_bucket") == 0 && d->s[j].family == a->family &&
                prom__same_series(&d->s[j], a, "le"))
                done = 1;
        if (done)
            continue;
        for (int j = i; j < d->ns; j++) {
            const prom_sample *b = &d->s[j];
            if (b->family != a->family)
                continue;
            const char *sfx = b->name + fl;
            prom_sample key = *b;
            snprintf(key.name, sizeof(key.name), "%s", a->name);
            if (!prom__same_series(&key, a, "le"))
                continue;
            if (strcmp(sfx, "_bucket") == 0) {
                double le = NAN;
                prom__float(prom_label_value(b, "le"), strlen(prom_label_value(b, "le")), &le);
                if (!first && !(le > prev_le))
                    return snprintf(d->err, sizeof(d->err), "%s: le %g not above %g", a->name, le,
                                    prev_le), -1;
                if (!(b->value >= prev) || b->value < 0)
                    return snprintf(d->err, sizeof(d->err), "%s{le=%g}: %g below the previous %g",
                                    a->name, le, b->value, prev), -1;
                prev_le = le;
                prev = b->value;
                first = 0;
            } else if (strcmp(sfx, "_sum") == 0) {
                sum_seen = 1;
            } else if (strcmp(sfx, "_count") == 0) {
                count = b->value;
            }
        }
        if (!isinf(prev_le) || prev_le < 0)
            return snprintf(d->err, sizeof(d->err), "%s: last bucket is not +Inf", a->name), -1;
        if (count != prev)
            return snprintf(d->err, sizeof(d->err), "%s: _count %g != +Inf bucket %g", f->name,
                            count, prev), -1;
        if (!sum_seen)
            return snprintf(d->err, sizeof(d->err), "%s: no _sum", f->name), -1;
    }
    return 0;
}

static inline int prom_parse(const char *text, size_t len, prom_doc *d)
{
    const char *p = text, *end = text + len;
    int line = 0, current = -1;

    memset(d, 0, sizeof(*d));
    if (memchr(text, '\0', len))
        return prom__fail(d, 0, "NUL byte in the text");
    if (len && text[len - 1] != '\n')
        return prom__fail(d, 0, "the text does not end in a newline");
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        line++;
        if (nl == p)
            return prom__fail(d, line, "empty line");
        if (*p == '#') {
            if (prom__comment(d, line, p, nl, &current))
                return -1;
        } else if (prom__sample(d, line, p, nl, &current)) {
            return -1;
        }
        p = nl + 1;
    }
    for (int i = 0; i < d->nfam; i++)
        if (!d->fam[i].help || !d->fam[i].type[0])
            return prom__fail(d, line, "family %s lacks HELP or TYPE", d->fam[i].name);
    return prom__check_histograms(d);
}

/*
 * The sample with this name and exactly these labels (pairs of name,
 * value, ending in NULL), or NULL.
 */
__attribute__((sentinel))
static inline const prom_sample *prom_find(const prom_doc *d, const char *name, ...)
{
    prom_sample key;
    va_list ap;
    const char *k;

    memset(&key, 0, sizeof(key));
    snprintf(key.name, sizeof(key.name), "%s", name);
    va_start(ap, name);
    while ((k = va_arg(ap, const char *)) != NULL && key.nlabels < PROM_MAX_LABELS) {
        snprintf(key.label[key.nlabels].name, sizeof(key.label[0].name), "%s", k);
        snprintf(key.label[key.nlabels].value, sizeof(key.label[0].value), "%s",
                 va_arg(ap, const char *));
        key.nlabels++;
    }
    va_end(ap);
    for (int i = 0; i < d->ns; i++)
        if (prom__same_series(&d->s[i], &key, NULL))
            return &d->s[i];
    return NULL;
}

/* The value of that sample, or NAN when there is none. */
#define prom_value(d, ...) prom__value(prom_find((d), __VA_ARGS__))
static inline double prom__value(const prom_sample *s)
{
    return s ? s->value : NAN;
}

#endif
