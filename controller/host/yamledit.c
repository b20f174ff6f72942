/*
 * yamledit.c - byte-exact edits of a YAML file (see yamledit.h).
 *
 * One scan (libyaml's parser events, the whole stream) checks the file is
 * one document with a mapping root, finds the node at a path (a key twice
 * on the way is an error) and gives its byte range. libyaml's marks count
 * characters, not bytes, so a cursor walks the UTF-8 text to turn a mark
 * into a byte offset (the marks come nearly in order: linear overall).
 *
 * An edit splices raw text into a copy of the file, then scans the copy
 * again before anything is written: the events outside the node (hashed,
 * SHA-256) must be those of the original and the node must read as asked
 * (the new scalar, or the same events as the other file's section).
 * Comments and layout never reach the parser's events, so they stay as the
 * bytes were. Values are never put in messages (s3 holds credentials).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yaml.h>
#include "fsutil.h"
#include "yamledit.h"

#define YE_MAX_DEPTH 200      /* nesting deeper than this is refused (recursion) */
#define YE_MAX_COMPS 16       /* path components */
#define YE_MAX_ANCHORS 4096   /* more is refused (each alias is looked up in a list) */

const char *tqu_yaml_strerror(int rc)
{
    switch (rc) {
    case TQU_YAML_OK: return "ok";
    case TQU_YAML_EIO: return "cannot read or write the file";
    case TQU_YAML_EPARSE: return "not one YAML document with a mapping root";
    case TQU_YAML_ENOTFOUND: return "key not found";
    case TQU_YAML_EDUP: return "key appears twice";
    case TQU_YAML_EKIND: return "node of the wrong kind";
    case TQU_YAML_ETOOBIG: return "too big";
    case TQU_YAML_EINVAL: return "invalid argument";
    case TQU_YAML_ENOMEM: return "out of memory";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------ the scan */

typedef struct ye_comp {
    const char *s;
    size_t len;
} ye_comp;

enum { YE_NONE = 0, YE_SCALAR, YE_COLLECTION, YE_ALIAS };

/* What the scan found at the path. */
typedef struct ye_node {
    int kind;                 /* YE_*; YE_NONE: not found */
    int flow;                 /* inside a flow collection (or one itself) */
    int block_scalar;         /* a literal or folded scalar */
    size_t start, end;        /* its bytes (see tqu_yaml_locate) */
    size_t key_start;         /* where its key begins */
    size_t line, col;         /* 1-based, of the node */
    char *value;              /* the scalar's value (owned), NUL-terminated */
    size_t vlen;
} ye_node;

typedef struct ye_scan {
    const char *name;         /* for messages */
    const char *text;
    size_t len;
    yaml_parser_t parser;
    size_t ch, byte;          /* cursor: character ch begins at byte */
    const ye_comp *comps;
    size_t ncomps;
    ye_node node;
    EVP_MD_CTX *outer;        /* events outside the node (NULL: not hashed) */
    EVP_MD_CTX *inner;        /* the node's events (NULL: not hashed) */
    int in_node;              /* events go to inner */
    int loose_key;            /* the path's last key: its value only (style free) */
    int rc;                   /* the first failure */
    int parse_failed;         /* libyaml failed: stop at once */
    char **anchors;           /* the anchors seen so far (owned), for the aliases */
    size_t nanchors;
    char msg[512];
} ye_scan;

static void ye_node_release(ye_node *n)
{
    free(n->value);
    memset(n, 0, sizeof(*n));
}

/* Record a failure; the first one wins, except that a parse error or an
 * allocation failure replaces a semantic one (the file is broken anyway). */
static void __attribute__((format(printf, 3, 4))) ye_fail(ye_scan *s, int rc, const char *fmt, ...)
{
    va_list ap;

    if (s->rc && !(s->rc != TQU_YAML_EPARSE && s->rc != TQU_YAML_ENOMEM &&
                   (rc == TQU_YAML_EPARSE || rc == TQU_YAML_ENOMEM)))
        return;
    s->rc = rc;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
    va_end(ap);
}

/* The byte where character ch begins (the text is valid UTF-8: libyaml
 * read it). */
static size_t byte_at(ye_scan *s, size_t ch)
{
    const unsigned char *t = (const unsigned char *)s->text;

    while (s->ch < ch && s->byte < s->len) {
        unsigned char c = t[s->byte];
        size_t w = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        s->byte = s->byte + w > s->len ? s->len : s->byte + w;
        s->ch++;
    }
    while (s->ch > ch && s->byte > 0) {
        s->byte--;
        while (s->byte > 0 && (t[s->byte] & 0xc0) == 0x80)
            s->byte--;
        s->ch--;
    }
    return s->byte;
}

/* Line and column (1-based) of a byte offset, for libyaml's reader errors
 * (which give bytes). */
static void line_col(const char *t, size_t len, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (t[i] == '\n' || (t[i] == '\r' && (i + 1 >= len || t[i + 1] != '\n'))) {
            l++;
            c = 1;
        } else if (t[i] != '\r' && ((unsigned char)t[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void parse_error(ye_scan *s)
{
    yaml_parser_t *p = &s->parser;
    size_t line, col;

    s->parse_failed = 1;
    if (p->error == YAML_MEMORY_ERROR) {
        ye_fail(s, TQU_YAML_ENOMEM, "%s: out of memory while parsing", s->name);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        line_col(s->text, s->len, p->problem_offset, &line, &col);
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: %s", s->name, line, col,
                p->problem ? p->problem : "cannot read the text");
        return;
    }
    if (p->context)
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: %s (%s at line %zu)", s->name,
                p->problem_mark.line + 1, p->problem_mark.column + 1,
                p->problem ? p->problem : "syntax error", p->context, p->context_mark.line + 1);
    else
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: %s", s->name, p->problem_mark.line + 1,
                p->problem_mark.column + 1, p->problem ? p->problem : "syntax error");
}

static int next_event(ye_scan *s, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&s->parser, ev)) {
        parse_error(s);
        return -1;
    }
    return 0;
}

/* ---- signatures: the events, framed, hashed */

static void hash_bytes(ye_scan *s, const void *p, size_t n)
{
    EVP_MD_CTX *h = s->in_node ? s->inner : s->outer;
    uint64_t len = n;

    if (!h)
        return;
    if (!EVP_DigestUpdate(h, &len, sizeof(len)) || (n && !EVP_DigestUpdate(h, p, n)))
        ye_fail(s, TQU_YAML_ENOMEM, "%s: cannot hash the events", s->name);
}

static void hash_str(ye_scan *s, const yaml_char_t *str)
{
    hash_bytes(s, str ? (const char *)str : "\xff", str ? strlen((const char *)str) : 1);
}

static void hash_event(ye_scan *s, const yaml_event_t *ev)
{
    char type = (char)('A' + ev->type);

    hash_bytes(s, &type, 1);
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        hash_bytes(s, ev->data.scalar.value, ev->data.scalar.length);
        if (s->loose_key)
            break;
        hash_str(s, ev->data.scalar.anchor);
        hash_str(s, ev->data.scalar.tag);
        hash_bytes(s, ev->data.scalar.plain_implicit ? "p" : "-", 1);
        hash_bytes(s, ev->data.scalar.quoted_implicit ? "q" : "-", 1);
        break;
    case YAML_ALIAS_EVENT:
        hash_str(s, ev->data.alias.anchor);
        break;
    case YAML_SEQUENCE_START_EVENT:
        hash_str(s, ev->data.sequence_start.anchor);
        hash_str(s, ev->data.sequence_start.tag);
        break;
    case YAML_MAPPING_START_EVENT:
        hash_str(s, ev->data.mapping_start.anchor);
        hash_str(s, ev->data.mapping_start.tag);
        break;
    default:
        break;
    }
}

/* ---- ranges */

static int is_blank(char c) { return c == ' ' || c == '\t'; }
static int is_break(char c) { return c == '\n' || c == '\r'; }

/*
 * From the end of a node's content: past blanks and a comment to the end
 * of the line (before its line break), when nothing else follows on it;
 * else e itself.
 */
static size_t line_end(const char *t, size_t len, size_t e)
{
    size_t p = e;

    while (p < len && is_blank(t[p]))
        p++;
    if (p < len && t[p] == '#')
        while (p < len && !is_break(t[p]))
            p++;
    return p >= len || is_break(t[p]) ? p : e;
}

/* The end of a scalar: a block scalar's mark lies past its trailing blank
 * lines, which belong to what follows; its last content line ends it. */
static size_t scalar_end(ye_scan *s, const yaml_event_t *ev, size_t start)
{
    size_t e = byte_at(s, ev->end_mark.index);

    if (ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
        ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE) {
        while (e > start && (is_blank(s->text[e - 1]) || is_break(s->text[e - 1])))
            e--;
        while (e < s->len && is_blank(s->text[e]))
            e++;
    }
    return e;
}

static const char *kind_name(yaml_event_type_t t)
{
    switch (t) {
    case YAML_SCALAR_EVENT: return "a scalar";
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "no node";
    }
}

/* "web.darwincdn" for the first n components, into buf. */
static const char *path_text(const ye_scan *s, size_t n, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        tqu__appendf(buf, size, ".", "%.*s", (int)s->comps[i].len, s->comps[i].s);
    return buf;
}

/*
 * An anchor defined (remembered) or an alias used (its anchor must come
 * before it: libyaml's parser does not check that, every loader does, and
 * an edit could take the anchor away). -1: stop (failure recorded).
 */
static int check_anchor(ye_scan *s, const yaml_event_t *ev)
{
    const yaml_char_t *a = NULL;
    char **grown;

    switch (ev->type) {
    case YAML_SCALAR_EVENT: a = ev->data.scalar.anchor; break;
    case YAML_SEQUENCE_START_EVENT: a = ev->data.sequence_start.anchor; break;
    case YAML_MAPPING_START_EVENT: a = ev->data.mapping_start.anchor; break;
    case YAML_ALIAS_EVENT:
        for (size_t i = 0; i < s->nanchors; i++)
            if (!strcmp(s->anchors[i], (const char *)ev->data.alias.anchor))
                return 0;
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: alias *%.64s has no anchor before it", s->name,
                ev->start_mark.line + 1, ev->start_mark.column + 1,
                (const char *)ev->data.alias.anchor);
        return 0;
    default: break;
    }
    if (!a)
        return 0;
    if (s->nanchors == YE_MAX_ANCHORS) {
        s->parse_failed = 1;
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: more than %d anchors", s->name,
                ev->start_mark.line + 1, ev->start_mark.column + 1, YE_MAX_ANCHORS);
        return -1;
    }
    grown = realloc(s->anchors, (s->nanchors + 1) * sizeof(*grown));
    if (grown)
        s->anchors = grown;
    if (!grown || !(s->anchors[s->nanchors] = strdup((const char *)a))) {
        s->parse_failed = 1;
        ye_fail(s, TQU_YAML_ENOMEM, "%s: out of memory", s->name);
        return -1;
    }
    s->nanchors++;
    return 0;
}

static int walk_node(ye_scan *s, yaml_event_t *ev, int depth, long match, int flow,
                     size_t *start, size_t *end);

/*
 * The entries of a collection whose start event ev was seen: each child
 * walked; a mapping on the path looks for its key. *end: the byte after
 * its content (see tqu_yaml_locate). Deletes nothing of ev.
 */
static int walk_collection(ye_scan *s, const yaml_event_t *ev, int depth, long match, int flow,
                           size_t start, size_t *end)
{
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    yaml_event_type_t end_type = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    int on_path = match >= 0 && (size_t)match < s->ncomps && is_map;
    size_t last = start, cs, ce, hits = 0, first_line = 0;
    char pbuf[256];
    yaml_event_t child;
    int rc = 0;

    if (ev->type == YAML_MAPPING_START_EVENT)
        flow = flow || ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
    else
        flow = flow || ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
    for (;;) {
        long child_match = -1;
        if (next_event(s, &child) < 0)
            return -1;
        if (child.type == end_type) {
            if (flow)
                last = byte_at(s, child.end_mark.index);
            hash_event(s, &child);
            yaml_event_delete(&child);
            break;
        }
        if (is_map) {
            const ye_comp *want = on_path ? &s->comps[match] : NULL;
            int hit = want && child.type == YAML_SCALAR_EVENT &&
                      child.data.scalar.length == want->len &&
                      memcmp(child.data.scalar.value, want->s, want->len) == 0;
            size_t kline = child.start_mark.line + 1, kcol = child.start_mark.column + 1;
            size_t kstart = 0;
            if (hit && ++hits == 2)
                ye_fail(s, TQU_YAML_EDUP, "%s:%zu:%zu: key \"%s\" appears twice (first at line %zu)",
                        s->name, kline, kcol, path_text(s, (size_t)match + 1, pbuf, sizeof(pbuf)),
                        first_line);
            if (hit && hits == 1) {
                first_line = kline;
                child_match = match + 1;
            }
            s->loose_key = hit && (size_t)match + 1 == s->ncomps;
            rc = walk_node(s, &child, depth + 1, -1, flow, &kstart, &ce);
            s->loose_key = 0;
            if (rc < 0)
                return -1;
            if (next_event(s, &child) < 0)
                return -1;
            rc = walk_node(s, &child, depth + 1, child_match, flow, &cs, &ce);
            if (rc < 0)
                return -1;
            if (child_match >= 0 && (size_t)child_match == s->ncomps)
                s->node.key_start = kstart;
        } else {
            rc = walk_node(s, &child, depth + 1, -1, flow, &cs, &ce);
            if (rc < 0)
                return -1;
        }
        if (!flow)
            last = line_end(s->text, s->len, ce);
    }
    if (on_path && hits == 0) {
        char key[128];
        if (match == 0)
            ye_fail(s, TQU_YAML_ENOTFOUND, "%s:%zu:%zu: no key \"%s\" in the root mapping", s->name,
                    ev->start_mark.line + 1, ev->start_mark.column + 1,
                    path_text(s, 1, key, sizeof(key)));
        else
            ye_fail(s, TQU_YAML_ENOTFOUND, "%s:%zu:%zu: no key \"%.*s\" in \"%s\"", s->name,
                    ev->start_mark.line + 1, ev->start_mark.column + 1, (int)s->comps[match].len,
                    s->comps[match].s, path_text(s, (size_t)match, pbuf, sizeof(pbuf)));
    }
    *end = last;
    return 0;
}

/*
 * One node, its first event ev (deleted here). match: how many path
 * components led here (-1: off the path); == ncomps: this is the node.
 */
static int walk_node(ye_scan *s, yaml_event_t *ev, int depth, long match, int flow,
                     size_t *start, size_t *end)
{
    int target = match >= 0 && (size_t)match == s->ncomps;
    int was_in = s->in_node;
    char pbuf[256];
    int rc = 0;

    *start = byte_at(s, ev->start_mark.index);
    *end = *start;
    if (depth > YE_MAX_DEPTH) {
        s->parse_failed = 1;
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: nested deeper than %d levels", s->name,
                ev->start_mark.line + 1, ev->start_mark.column + 1, YE_MAX_DEPTH);
        rc = -1;
        goto out;
    }
    if (target) {
        hash_bytes(s, "\x7fnode", 5);   /* where the node was, in the outer events */
        s->in_node = 1;
        s->node.start = *start;
        s->node.line = ev->start_mark.line + 1;
        s->node.col = ev->start_mark.column + 1;
        s->node.flow = flow;
    }
    hash_event(s, ev);
    if (check_anchor(s, ev) < 0) {
        rc = -1;
        goto out;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        *end = scalar_end(s, ev, *start);
        if (target) {
            s->node.kind = YE_SCALAR;
            s->node.block_scalar = ev->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                                   ev->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
            s->node.value = malloc(ev->data.scalar.length + 1);
            if (!s->node.value) {
                ye_fail(s, TQU_YAML_ENOMEM, "%s: out of memory", s->name);
                rc = -1;
                goto out;
            }
            memcpy(s->node.value, ev->data.scalar.value, ev->data.scalar.length);
            s->node.value[ev->data.scalar.length] = '\0';
            s->node.vlen = ev->data.scalar.length;
        }
        break;
    case YAML_ALIAS_EVENT:
        *end = byte_at(s, ev->end_mark.index);
        if (target)
            s->node.kind = YE_ALIAS;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (target)
            s->node.kind = YE_COLLECTION;
        rc = walk_collection(s, ev, depth, match, flow, *start, end);
        break;
    default:
        s->parse_failed = 1;
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: unexpected parser event", s->name,
                ev->start_mark.line + 1, ev->start_mark.column + 1);
        rc = -1;
        break;
    }
    if (rc == 0 && match >= 0 && !target && ev->type != YAML_MAPPING_START_EVENT)
        ye_fail(s, TQU_YAML_ENOTFOUND, "%s:%zu:%zu: \"%s\" is %s, not a mapping (no key \"%.*s\")",
                s->name, ev->start_mark.line + 1, ev->start_mark.column + 1,
                match == 0 ? "the root" : path_text(s, (size_t)match, pbuf, sizeof(pbuf)),
                kind_name(ev->type), (int)s->comps[match].len, s->comps[match].s);
    if (target)
        s->node.end = *end;
out:
    s->in_node = was_in;
    yaml_event_delete(ev);
    return rc;
}

/*
 * Scan text (named name in messages) for the node at comps; the outer and
 * inner digests (either may be NULL) receive the events outside it and its
 * own. Returns TQU_YAML_OK with s->node filled, or a code with s->msg.
 * Release s->node after.
 */
static int scan(ye_scan *s, const char *name, const char *text, size_t len, const ye_comp *comps,
                size_t ncomps, EVP_MD_CTX *outer, EVP_MD_CTX *inner)
{
    yaml_event_t ev;
    size_t st, en;
    int ok = 0;

    memset(s, 0, sizeof(*s));
    s->name = name;
    s->text = text;
    s->len = len;
    s->comps = comps;
    s->ncomps = ncomps;
    s->outer = outer;
    s->inner = inner;
    if (!yaml_parser_initialize(&s->parser)) {
        ye_fail(s, TQU_YAML_ENOMEM, "%s: out of memory (parser)", name);
        return s->rc;
    }
    /* libyaml would read UTF-16 (and its marks would count that); a UTF-8
     * byte order mark is skipped by it, uncounted */
    if (len >= 2 && (((unsigned char)text[0] == 0xfe && (unsigned char)text[1] == 0xff) ||
                     ((unsigned char)text[0] == 0xff && (unsigned char)text[1] == 0xfe))) {
        ye_fail(s, TQU_YAML_EPARSE, "%s:1:1: UTF-16 text (UTF-8 expected)", name);
        goto out;
    }
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        s->byte = 3;
    yaml_parser_set_input_string(&s->parser, (const unsigned char *)text, len);
    if (next_event(s, &ev) < 0)
        goto out;
    yaml_event_delete(&ev);   /* stream start */
    if (next_event(s, &ev) < 0)
        goto out;
    if (ev.type != YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        ye_fail(s, TQU_YAML_EPARSE, "%s:1:1: no YAML document", name);
        goto out;
    }
    yaml_event_delete(&ev);
    if (next_event(s, &ev) < 0)
        goto out;
    if (ev.type != YAML_MAPPING_START_EVENT) {
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: the root is %s, not a mapping", name,
                ev.start_mark.line + 1, ev.start_mark.column + 1, kind_name(ev.type));
        yaml_event_delete(&ev);
        goto out;
    }
    if (walk_node(s, &ev, 0, 0, 0, &st, &en) < 0)
        goto out;
    if (next_event(s, &ev) < 0)
        goto out;
    yaml_event_delete(&ev);   /* document end */
    if (next_event(s, &ev) < 0)
        goto out;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        ye_fail(s, TQU_YAML_EPARSE, "%s:%zu:%zu: a second document (one expected)", name,
                ev.start_mark.line + 1, ev.start_mark.column + 1);
        yaml_event_delete(&ev);
        goto out;
    }
    yaml_event_delete(&ev);
    ok = 1;
out:
    yaml_parser_delete(&s->parser);
    for (size_t i = 0; i < s->nanchors; i++)
        free(s->anchors[i]);
    free(s->anchors);
    s->anchors = NULL;
    s->nanchors = 0;
    if (!ok && !s->rc)
        ye_fail(s, TQU_YAML_EPARSE, "%s: cannot parse", name);
    if (!s->rc && s->node.kind == YE_NONE)
        ye_fail(s, TQU_YAML_ENOTFOUND, "%s: not found", name);   /* not reached */
    return s->rc;
}

/* Split a dotted path into comps. */
static int split_path(const char *path, ye_comp *comps, size_t *n)
{
    const char *p = path;

    *n = 0;
    if (!path || !*path)
        return -1;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 0 || *n == YE_MAX_COMPS)
            return -1;
        comps[*n].s = p;
        comps[*n].len = len;
        (*n)++;
        if (!dot)
            return 0;
        p = dot + 1;
    }
}

int tqu_yaml_locate(const char *text, size_t len, const char *path, size_t *start, size_t *end,
                    int *is_scalar, char *err, size_t errlen)
{
    ye_comp comps[YE_MAX_COMPS];
    size_t n;
    ye_scan s;
    int rc;

    if (!text || !start || !end || split_path(path, comps, &n) < 0)
        return tqu__seterr(err, errlen, TQU_YAML_EINVAL, "locate: no text or a bad path \"%s\"",
                           path ? path : "");
    if (len > TQU_YAML_MAX_BYTES)
        return tqu__seterr(err, errlen, TQU_YAML_ETOOBIG, "<text>: %zu bytes, more than %u", len,
                           TQU_YAML_MAX_BYTES);
    rc = scan(&s, "<text>", text, len, comps, n, NULL, NULL);
    if (rc == TQU_YAML_OK) {
        *start = s.node.start;
        *end = s.node.end;
        if (is_scalar)
            *is_scalar = s.node.kind == YE_SCALAR;
    } else {
        tqu__seterr(err, errlen, rc, "%s", s.msg);
    }
    ye_node_release(&s.node);
    return rc;
}

/* ------------------------------------------------------------ files */

typedef struct ye_file {
    const char *path;
    char *text;
    size_t len;
    struct stat st;
} ye_file;

static void ye_file_release(ye_file *f)
{
    free(f->text);
    f->text = NULL;
    f->len = 0;
}

static int read_all(int fd, char *buf, size_t want, size_t *got)
{
    *got = 0;
    while (*got < want) {
        ssize_t r = read(fd, buf + *got, want - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

/* Read a regular file whole (symbolic links followed), with its stat. */
static int read_yaml_file(const char *path, ye_file *f, char *err, size_t errlen)
{
    int fd = -1, rc = TQU_YAML_OK;
    size_t got = 0, more = 0;
    char extra;

    memset(f, 0, sizeof(*f));
    f->path = path;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &f->st) < 0) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(f->st.st_mode)) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: not a regular file", path);
        goto out;
    }
    if ((uintmax_t)f->st.st_size > TQU_YAML_MAX_BYTES) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ETOOBIG, "%s: %jd bytes, more than %u", path,
                         (intmax_t)f->st.st_size, TQU_YAML_MAX_BYTES);
        goto out;
    }
    f->text = malloc((size_t)f->st.st_size + 1);
    if (!f->text) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (read_all(fd, f->text, (size_t)f->st.st_size, &got) < 0 ||
        (got == (size_t)f->st.st_size && read_all(fd, &extra, 1, &more) < 0)) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: read: %s", path, strerror(errno));
        goto out;
    }
    if (got != (size_t)f->st.st_size || more) {
        /* grew or shrank while read: try again later rather than guess */
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: changed while being read", path);
        goto out;
    }
    f->len = (size_t)f->st.st_size;
    f->text[f->len] = '\0';
out:
    if (fd >= 0)
        close(fd);
    if (rc)
        ye_file_release(f);
    return rc;
}

/*
 * Write data to path atomically with the original's mode and owner (the
 * owner only given when it differs from ours). flags: TQU_ATOMIC_NOREPLACE
 * or 0. Returns 0, EEXIST (noreplace, already there; err not set) or
 * TQU_YAML_EIO with err.
 */
static int write_atomic(const char *path, const char *data, size_t len, const struct stat *st,
                        unsigned flags, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/'), *name;
    uid_t uid = st->st_uid == geteuid() ? (uid_t)-1 : st->st_uid;
    gid_t gid = st->st_gid == getegid() ? (gid_t)-1 : st->st_gid;
    tqu_atomic a;
    int dirfd = -1, e = 0, rc = 0;

    tqu_atomic_init(&a);
    if (!slash) {
        strcpy(dir, ".");
        name = path;
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof(dir)) {
            rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: path too long", path);
            goto out;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
        name = slash + 1;
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: folder %s: %s", path, dir, strerror(errno));
        goto out;
    }
    e = tqu_atomic_begin(&a, dirfd, name, st->st_mode & 07777, uid, gid);
    for (size_t off = 0; !e && off < len;) {
        ssize_t w = write(a.fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            e = errno;
            a.op = "write";
            break;
        }
        off += (size_t)w;
    }
    if (!e)
        e = tqu_atomic_commit(&a, flags);
    if (e == EEXIST && (flags & TQU_ATOMIC_NOREPLACE) && !a.committed)
        rc = EEXIST;
    else if (e && !a.committed)
        rc = tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: %s: %s", path, a.op, strerror(e));
    /* committed but the folder's fsync failed: the file is there; not an error */
out:
    tqu_atomic_abort(&a);
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

/* Keep a copy of the original at keep_path unless something is there. */
static int keep_original(const char *keep_path, const ye_file *f, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    if (!keep_path || !*keep_path)
        return TQU_YAML_OK;
    if (lstat(keep_path, &st) == 0)
        return TQU_YAML_OK;   /* the first original is the one kept */
    if (errno != ENOENT)
        return tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: %s (the copy of %s)", keep_path,
                           strerror(errno), f->path);
    rc = write_atomic(keep_path, f->text, f->len, &f->st, TQU_ATOMIC_NOREPLACE, err, errlen);
    return rc == EEXIST ? TQU_YAML_OK : rc;
}

/*
 * Replace f's file with data: the real path (symbolic links followed) is
 * written, after the copy for keep_path, and only if the file is still the
 * one that was read.
 */
static int commit_edit(ye_file *f, const char *data, size_t len, const char *keep_path,
                       char *err, size_t errlen)
{
    char real[PATH_MAX];
    struct stat now;
    int rc;

    if (!realpath(f->path, real))
        return tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: %s", f->path, strerror(errno));
    if (keep_path && !strcmp(keep_path, f->path))
        return tqu__seterr(err, errlen, TQU_YAML_EINVAL, "%s: the copy would replace the file itself",
                           f->path);
    rc = keep_original(keep_path, f, err, errlen);
    if (rc)
        return rc;
    if (stat(real, &now) < 0)
        return tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: %s", f->path, strerror(errno));
    if (now.st_ino != f->st.st_ino || now.st_dev != f->st.st_dev || now.st_size != f->st.st_size ||
        now.st_mtim.tv_sec != f->st.st_mtim.tv_sec || now.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec)
        return tqu__seterr(err, errlen, TQU_YAML_EIO, "%s: changed while being edited; not written",
                           f->path);
    return write_atomic(real, data, len, &f->st, 0, err, errlen);
}

/* ------------------------------------------------------------ digests */

typedef struct ye_digest {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len;
} ye_digest;

static EVP_MD_CTX *digest_new(void)
{
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    if (h && !EVP_DigestInit_ex(h, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(h);
        h = NULL;
    }
    return h;
}

static int digest_end(EVP_MD_CTX *h, ye_digest *d)
{
    return EVP_DigestFinal_ex(h, d->md, &d->len) ? 0 : -1;
}

static int digest_eq(const ye_digest *a, const ye_digest *b)
{
    return a->len == b->len && memcmp(a->md, b->md, a->len) == 0;
}

/*
 * Scan text with digests of the outer and the node's events (either
 * pointer may be NULL: not wanted). On success the node is in s->node.
 */
static int scan_digests(ye_scan *s, const char *name, const char *text, size_t len,
                        const ye_comp *comps, size_t ncomps, ye_digest *outer, ye_digest *inner)
{
    EVP_MD_CTX *ho = outer ? digest_new() : NULL, *hi = inner ? digest_new() : NULL;
    int rc;

    if ((outer && !ho) || (inner && !hi)) {
        memset(s, 0, sizeof(*s));
        ye_fail(s, TQU_YAML_ENOMEM, "%s: out of memory (digest)", name);
        rc = s->rc;
        goto out;
    }
    rc = scan(s, name, text, len, comps, ncomps, ho, hi);
    if (rc == TQU_YAML_OK && ((ho && digest_end(ho, outer) < 0) || (hi && digest_end(hi, inner) < 0))) {
        ye_fail(s, TQU_YAML_ENOMEM, "%s: cannot hash the events", name);
        rc = s->rc;
    }
out:
    EVP_MD_CTX_free(ho);
    EVP_MD_CTX_free(hi);
    return rc;
}

/* ------------------------------------------------------------ scalars */

int tqu_yaml_get_scalar(const char *file, const char *path, char *out, size_t outlen, char *err,
                        size_t errlen)
{
    ye_comp comps[YE_MAX_COMPS];
    size_t n;
    ye_file f = {0};
    ye_scan s;
    int rc;

    memset(&s, 0, sizeof(s));
    if (out && outlen)
        out[0] = '\0';
    if (!file || !*file || !out || !outlen || split_path(path, comps, &n) < 0)
        return tqu__seterr(err, errlen, TQU_YAML_EINVAL, "%s: no file, no room or a bad path \"%s\"",
                           file ? file : "", path ? path : "");
    rc = read_yaml_file(file, &f, err, errlen);
    if (rc)
        goto out;
    rc = scan(&s, file, f.text, f.len, comps, n, NULL, NULL);
    if (rc) {
        tqu__seterr(err, errlen, rc, "%s", s.msg);
        goto out;
    }
    if (s.node.kind != YE_SCALAR) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EKIND, "%s:%zu:%zu: \"%s\" is %s, not a scalar", file,
                         s.node.line, s.node.col, path,
                         s.node.kind == YE_ALIAS ? "an alias" : "a collection");
        goto out;
    }
    if (s.node.vlen >= outlen) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ETOOBIG, "%s:%zu:%zu: \"%s\" holds %zu bytes, room for %zu",
                         file, s.node.line, s.node.col, path, s.node.vlen, outlen - 1);
        goto out;
    }
    memcpy(out, s.node.value, s.node.vlen + 1);
out:
    ye_node_release(&s.node);
    ye_file_release(&f);
    return rc;
}

/* The code point at p (n bytes left) and its length; -1: not UTF-8. */
static long utf8_next(const unsigned char *p, size_t n, size_t *w)
{
    long cp;
    size_t need;

    if (p[0] < 0x80) {
        *w = 1;
        return p[0];
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        need = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        need = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        need = 4;
        cp = p[0] & 0x07;
    } else {
        return -1;
    }
    if (n < need)
        return -1;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *w = need;
    return cp;
}

/* YAML's line breaks: \n, \r, NEL, LS, PS. */
static int is_line_break_cp(long cp)
{
    return cp == '\n' || cp == '\r' || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

/* Characters a plain (or any unescaped) scalar must not hold. */
static int needs_escape_cp(long cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0xfeff ||
           cp == 0xfffe || cp == 0xffff;
}

/*
 * Whether a plain scalar with this text would be read by a YAML 1.1 or 1.2
 * loader (the vendor's tools are Go) as something other than a string:
 * null, a boolean, a number, a timestamp, a merge key. Conservative: any
 * text that starts like a number counts.
 */
static int looks_typed(const char *v)
{
    static const char *const words[] = {
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
        "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        "y", "Y", "n", "N", "<<", "=", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
        "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
    };
    const char *p = v;

    if (!*v)
        return 1;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcmp(v, words[i]))
            return 1;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '.')
        p++;
    return *p >= '0' && *p <= '9';
}

/* Whether libyaml reads text (as the value of a key, in a block or a flow
 * mapping) as one plain scalar equal to v: 1 yes, 0 no, -1 out of memory. */
static int plain_reads_back(const char *v, size_t vlen, int flow)
{
    yaml_parser_t p;
    yaml_event_t ev;
    char *doc;
    size_t n = 0;
    int ok = 1, i = 0;

    doc = malloc(vlen + 16);
    if (!doc)
        return -1;
    n = (size_t)sprintf(doc, flow ? "{k: %s}\n" : "k: %s\n", v);
    if (!yaml_parser_initialize(&p)) {
        free(doc);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)doc, n);
    for (;; i++) {
        yaml_event_type_t t;
        if (!yaml_parser_parse(&p, &ev)) {
            ok = p.error == YAML_MEMORY_ERROR ? -1 : 0;
            break;
        }
        t = ev.type;
        if (i == 4)
            ok = t == YAML_SCALAR_EVENT && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                 ev.data.scalar.length == vlen && memcmp(ev.data.scalar.value, v, vlen) == 0;
        if (i == 5)
            ok = ok && t == YAML_MAPPING_END_EVENT;
        yaml_event_delete(&ev);
        if (!ok || t == YAML_STREAM_END_EVENT)
            break;
    }
    if (ok == 1 && i != 7)
        ok = 0;
    yaml_parser_delete(&p);
    free(doc);
    return ok;
}

/* Whether v may be written plain here (see tqu_yaml_set_scalar): 1 yes,
 * 0 no, -1 out of memory. */
static int plain_ok(const char *v, size_t vlen, int flow)
{
    const unsigned char *p = (const unsigned char *)v;
    int ok;

    if (looks_typed(v))
        return 0;
    for (size_t i = 0, w; i < vlen; i += w) {
        long cp = utf8_next(p + i, vlen - i, &w);
        if (cp < 0 || needs_escape_cp(cp))
            return 0;
        /* older parsers (Go's yaml.v2) refuse ':' in a flow plain scalar */
        if (flow && strchr(":,[]{}#", (int)cp))
            return 0;
    }
    ok = plain_reads_back(v, vlen, 0);
    if (ok == 1 && flow)
        ok = plain_reads_back(v, vlen, 1);
    return ok;
}

/* v double-quoted, escaped, appended to b. */
static int add_quoted(k8s_buf *b, const char *v, size_t vlen)
{
    const unsigned char *p = (const unsigned char *)v;
    int rc = k8s_buf_add(b, "\"", 1);

    for (size_t i = 0, w = 1; !rc && i < vlen; i += w) {
        long cp = utf8_next(p + i, vlen - i, &w);
        if (cp == '"' || cp == '\\')
            rc = k8s_buf_printf(b, "\\%c", (char)cp);
        else if (cp == '\t')
            rc = k8s_buf_add(b, "\\t", 2);
        else if (cp >= 0 && cp <= 0xff && needs_escape_cp(cp))
            rc = k8s_buf_printf(b, "\\x%02X", (unsigned)cp);
        else if (cp >= 0 && needs_escape_cp(cp))
            rc = k8s_buf_printf(b, "\\u%04lX", (unsigned long)cp);
        else
            rc = k8s_buf_add(b, p + i, w);
    }
    return rc ? rc : k8s_buf_add(b, "\"", 1);
}

/*
 * Where a scalar's own text begins after its properties (anchor, tag),
 * comments and line breaks between them included; start if it has none.
 */
static size_t after_properties(const char *t, size_t start, size_t end)
{
    size_t p = start;

    if (start >= end || (t[start] != '&' && t[start] != '!'))
        return start;
    for (;;) {
        while (p < end && (is_blank(t[p]) || is_break(t[p])))
            p++;
        if (p < end && t[p] == '#') {
            while (p < end && !is_break(t[p]))
                p++;
            continue;
        }
        if (p < end && (t[p] == '&' || t[p] == '!')) {
            while (p < end && !is_blank(t[p]) && !is_break(t[p]))
                p++;
            continue;
        }
        return p;
    }
}

/* text with [s, e) replaced by repl (and a blank first when the place
 * needs one), into out. */
static int splice_text(k8s_buf *out, const char *text, size_t len, size_t s, size_t e, const char *repl,
                  size_t rlen, int blank_first)
{
    int rc;

    k8s_buf_reset(out);
    rc = k8s_buf_add(out, text, s);
    if (!rc && blank_first)
        rc = k8s_buf_add(out, " ", 1);
    if (!rc)
        rc = k8s_buf_add(out, repl, rlen);
    if (!rc)
        rc = k8s_buf_add(out, text + e, len - e);
    return rc;
}

int tqu_yaml_set_scalar(const char *file, const char *path, const char *value,
                        const char *keep_path, int *changed, char *err, size_t errlen)
{
    ye_comp comps[YE_MAX_COMPS];
    size_t n, vlen, at;
    ye_file f = {0};
    ye_scan s, s2;
    ye_digest d_old, d_new;
    k8s_buf repl, out;
    int rc, blank_first, plain;

    memset(&s, 0, sizeof(s));
    memset(&s2, 0, sizeof(s2));
    k8s_buf_init(&repl, 0);
    k8s_buf_init(&out, 0);
    if (changed)
        *changed = 0;
    if (!file || !*file || !value || split_path(path, comps, &n) < 0) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EINVAL, "%s: no file, no value or a bad path \"%s\"",
                         file ? file : "", path ? path : "");
        goto out;
    }
    rc = read_yaml_file(file, &f, err, errlen);
    if (rc)
        goto out;
    rc = scan_digests(&s, file, f.text, f.len, comps, n, &d_old, NULL);
    if (rc) {
        tqu__seterr(err, errlen, rc, "%s", s.msg);
        goto out;
    }
    if (s.node.kind != YE_SCALAR) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EKIND, "%s:%zu:%zu: \"%s\" is %s, not a scalar", file,
                         s.node.line, s.node.col, path,
                         s.node.kind == YE_ALIAS ? "an alias" : "a collection");
        goto out;
    }
    vlen = strlen(value);
    for (size_t i = 0, w = 1; i < vlen; i += w) {
        long cp = utf8_next((const unsigned char *)value + i, vlen - i, &w);
        if (cp < 0 || is_line_break_cp(cp)) {
            rc = tqu__seterr(err, errlen, TQU_YAML_EINVAL, "%s:%zu:%zu: the new value of \"%s\" %s",
                             file, s.node.line, s.node.col, path,
                             cp < 0 ? "is not UTF-8 text" : "holds a line break");
            goto out;
        }
    }
    if (vlen > TQU_YAML_MAX_BYTES / 2) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EINVAL, "%s: the new value of \"%s\" is too long",
                         file, path);
        goto out;
    }
    if (s.node.vlen == vlen && memcmp(s.node.value, value, vlen) == 0)
        goto out;   /* already so: nothing written */
    at = after_properties(f.text, s.node.start, s.node.end);
    blank_first = at > 0 && !is_blank(f.text[at - 1]) && !is_break(f.text[at - 1]) &&
                  !strchr("[{,", f.text[at - 1]);
    /* plain when that is safe here, else (or if plain does not read back) quoted */
    plain = plain_ok(value, vlen, s.node.flow);
    if (plain < 0) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ENOMEM, "%s: out of memory", file);
        goto out;
    }
    for (int quoted = !plain;; quoted++) {
        k8s_buf_reset(&repl);
        rc = quoted ? add_quoted(&repl, value, vlen) : k8s_buf_add(&repl, value, vlen);
        if (!rc)
            rc = splice_text(&out, f.text, f.len, at, s.node.end, repl.data, repl.len, blank_first);
        if (rc) {
            rc = tqu__seterr(err, errlen, TQU_YAML_ENOMEM, "%s: out of memory", file);
            goto out;
        }
        ye_node_release(&s2.node);
        rc = scan_digests(&s2, file, out.data, out.len, comps, n, &d_new, NULL);
        if (rc == TQU_YAML_ENOMEM) {
            tqu__seterr(err, errlen, rc, "%s", s2.msg);
            goto out;
        }
        if (rc == TQU_YAML_OK && s2.node.kind == YE_SCALAR && s2.node.vlen == vlen &&
            memcmp(s2.node.value, value, vlen) == 0 && digest_eq(&d_old, &d_new))
            break;
        if (quoted) {
            rc = tqu__seterr(err, errlen, TQU_YAML_EINVAL,
                             "%s:%zu:%zu: \"%s\" cannot be given that value in place "
                             "(the file would not read back the same); not written",
                             file, s.node.line, s.node.col, path);
            goto out;
        }
    }
    rc = commit_edit(&f, out.data, out.len, keep_path, err, errlen);
    if (rc == TQU_YAML_OK && changed)
        *changed = 1;
out:
    ye_node_release(&s.node);
    ye_node_release(&s2.node);
    k8s_buf_release(&repl);
    k8s_buf_release(&out);
    ye_file_release(&f);
    return rc;
}

/* ------------------------------------------------------------ sections */

/* The first byte of the line holding off. */
static size_t line_start(const char *t, size_t off)
{
    while (off > 0 && !is_break(t[off - 1]))
        off--;
    return off;
}

/*
 * src[s, e) as it goes into a file whose line breaks are CRLF (crlf) or
 * not, its lines after the first moved by delta columns (blank lines
 * untouched). -1: a line has too little indentation to move left.
 */
static int section_text(k8s_buf *b, const char *src, size_t s, size_t e, int crlf, long delta)
{
    int rc = 0;

    for (size_t i = s; !rc && i < e; i++) {
        char c = src[i];
        if (c == '\r' && i + 1 < e && src[i + 1] == '\n')
            continue;   /* the \n writes the break */
        if (c != '\n') {
            rc = k8s_buf_add(b, &c, 1);
            continue;
        }
        rc = k8s_buf_add(b, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
        if (!rc && delta) {
            size_t j = i + 1, lead = 0;
            while (j < e && src[j] == ' ')
                j++, lead++;
            if (j >= e || is_break(src[j]) || is_blank(src[j]))
                continue;   /* a blank line, or tab-indented: leave it */
            if (delta > 0) {
                for (long k = 0; !rc && k < delta; k++)
                    rc = k8s_buf_add(b, " ", 1);
            } else if (lead < (size_t)-delta) {
                return -1;
            } else {
                i += (size_t)-delta;
            }
        }
    }
    return rc ? -2 : 0;
}

static int crlf_file(const char *t, size_t len)
{
    const char *nl = memchr(t, '\n', len);
    return nl && nl > t && nl[-1] == '\r';
}

int tqu_yaml_replace_section(const char *file, const char *from_file, const char *key,
                             const char *keep_path, int *changed, char *err, size_t errlen)
{
    ye_comp comp;
    ye_file f = {0}, g = {0};
    ye_scan s, sf, s2;
    ye_digest d_old, d_from, d_new_outer, d_new_inner;
    k8s_buf sec, out;
    size_t ts, te, fs, fe;
    long delta;
    int rc;

    memset(&s, 0, sizeof(s));
    memset(&sf, 0, sizeof(sf));
    memset(&s2, 0, sizeof(s2));
    k8s_buf_init(&sec, 0);
    k8s_buf_init(&out, 0);
    if (changed)
        *changed = 0;
    if (!file || !*file || !from_file || !*from_file || !key || !*key) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EINVAL, "replace section: no file, no source or no key");
        goto out;
    }
    comp.s = key;
    comp.len = strlen(key);
    rc = read_yaml_file(file, &f, err, errlen);
    if (!rc)
        rc = read_yaml_file(from_file, &g, err, errlen);
    if (rc)
        goto out;
    rc = scan_digests(&s, file, f.text, f.len, &comp, 1, &d_old, NULL);
    if (rc) {
        tqu__seterr(err, errlen, rc, "%s", s.msg);
        goto out;
    }
    rc = scan_digests(&sf, from_file, g.text, g.len, &comp, 1, NULL, &d_from);
    if (rc) {
        tqu__seterr(err, errlen, rc, "%s", sf.msg);
        goto out;
    }
    if (s.node.kind == YE_ALIAS || sf.node.kind == YE_ALIAS) {
        ye_scan *a = s.node.kind == YE_ALIAS ? &s : &sf;
        rc = tqu__seterr(err, errlen, TQU_YAML_EKIND, "%s:%zu:%zu: \"%s\" is an alias", a->name,
                         a->node.line, a->node.col, key);
        goto out;
    }
    /* key line to the end of the value's last content line, in both */
    ts = s.node.key_start;
    te = line_end(f.text, f.len, s.node.end);
    fs = sf.node.key_start;
    fe = line_end(g.text, g.len, sf.node.end);
    delta = (long)(ts - line_start(f.text, ts)) - (long)(fs - line_start(g.text, fs));
    rc = section_text(&sec, g.text, fs, fe, crlf_file(f.text, f.len), delta);
    if (rc == -2) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ENOMEM, "%s: out of memory", file);
        goto out;
    }
    if (rc == -1) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EPARSE,
                         "%s:%zu:%zu: \"%s\" of %s cannot be indented to fit here; not written", file,
                         s.node.line, s.node.col, key, from_file);
        goto out;
    }
    if (te - ts == sec.len && memcmp(f.text + ts, sec.data ? sec.data : "", sec.len) == 0)
        goto out;   /* the same text already: nothing written */
    if (splice_text(&out, f.text, f.len, ts, te, sec.data ? sec.data : "", sec.len, 0)) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ENOMEM, "%s: out of memory", file);
        goto out;
    }
    if (out.len > TQU_YAML_MAX_BYTES) {
        rc = tqu__seterr(err, errlen, TQU_YAML_ETOOBIG, "%s: would grow past %u bytes; not written",
                         file, TQU_YAML_MAX_BYTES);
        goto out;
    }
    rc = scan_digests(&s2, file, out.data, out.len, &comp, 1, &d_new_outer, &d_new_inner);
    if (rc == TQU_YAML_ENOMEM) {
        tqu__seterr(err, errlen, rc, "%s", s2.msg);
        goto out;
    }
    if (rc || !digest_eq(&d_old, &d_new_outer) || !digest_eq(&d_from, &d_new_inner)) {
        rc = tqu__seterr(err, errlen, TQU_YAML_EPARSE,
                         "%s:%zu:%zu: \"%s\" of %s does not fit here (the file would not read back "
                         "the same); not written", file, s.node.line, s.node.col, key, from_file);
        goto out;
    }
    rc = commit_edit(&f, out.data, out.len, keep_path, err, errlen);
    if (rc == TQU_YAML_OK && changed)
        *changed = 1;
out:
    ye_node_release(&s.node);
    ye_node_release(&sf.node);
    ye_node_release(&s2.node);
    k8s_buf_release(&sec);
    k8s_buf_release(&out);
    ye_file_release(&f);
    ye_file_release(&g);
    return rc;
}
