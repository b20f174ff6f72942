/*
 * codec.c - the etcd client's pure parts: capped buffer, base64, request
 * bodies, answer parsing, watch stream framing and messages, backoff (see
 * etcd_int.h). No I/O here, so all of it is unit-tested without a server.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include "etcd.h"
#include "etcd_int.h"

static const char *const rc_text[ETCD_RC_MAX] = {
    [ETCD_OK] = "success",
    [ETCD_ENOMEM] = "out of memory",
    [ETCD_EINVAL] = "invalid argument",
    [ETCD_EUNREACHABLE] = "etcd unreachable",
    [ETCD_ETLS] = "TLS error",
    [ETCD_ETIMEOUT] = "timed out",
    [ETCD_EHTTP] = "etcd answered with an error",
    [ETCD_EPARSE] = "malformed answer from etcd",
    [ETCD_ETOOBIG] = "answer too large",
    [ETCD_ESTOPPED] = "stopped",
};

const char *etcd_strerror(int rc)
{
    if (rc < 0 || rc >= ETCD_RC_MAX || !rc_text[rc])
        return "unknown error";
    return rc_text[rc];
}

int etcd__err_set(etcd_err *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        memset(err, 0, sizeof(*err));
        err->rc = (etcd_rc)rc;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return rc;
}

void etcd__wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

/* ------------------------------------------------------------ buffer */

void etcd__buf_init(etcd__buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void etcd__buf_release(etcd__buf *b)
{
    if (b->data)
        etcd__wipe(b->data, b->alloc);
    free(b->data);
    etcd__buf_init(b, b->cap);
}

int etcd__buf_add(etcd__buf *b, const void *p, size_t n)
{
    size_t need, nalloc;
    char *d;

    if (n > b->cap || b->len > b->cap - n)
        return ETCD_ETOOBIG;
    need = b->len + n + 1;
    if (need > b->alloc) {
        nalloc = b->alloc ? b->alloc : 256;
        while (nalloc < need)
            nalloc = nalloc > ((size_t)-1) / 2 ? need : nalloc * 2;
        if (nalloc > b->cap + 1)
            nalloc = b->cap + 1;
        /* not realloc: the old block may hold a value, wipe it */
        d = malloc(nalloc);
        if (!d)
            return ETCD_ENOMEM;
        if (b->data) {
            memcpy(d, b->data, b->len);
            etcd__wipe(b->data, b->alloc);
            free(b->data);
        }
        b->data = d;
        b->alloc = nalloc;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return ETCD_OK;
}

void etcd__buf_consume(etcd__buf *b, size_t n)
{
    if (!b->data)
        return;
    if (n >= b->len)
        n = b->len;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

/* ------------------------------------------------------------ base64 */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd__b64_encode(const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i, o = 0;
    char *d;

    if (n > ((size_t)-1 - 1) / 4 * 3 - 3)
        return NULL;
    d = malloc((n + 2) / 3 * 4 + 1);
    if (!d)
        return NULL;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        d[o++] = b64[v >> 18];
        d[o++] = b64[(v >> 12) & 63];
        d[o++] = b64[(v >> 6) & 63];
        d[o++] = b64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
        d[o++] = b64[v >> 18];
        d[o++] = b64[(v >> 12) & 63];
        d[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        d[o++] = '=';
    }
    d[o] = '\0';
    return d;
}

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

int etcd__b64_decode(const char *s, size_t len, char **out, size_t *out_len)
{
    size_t i, o = 0, pad = 0;
    char *d;

    *out = NULL;
    *out_len = 0;
    if (len % 4)
        return ETCD_EPARSE;
    if (len && s[len - 1] == '=')
        pad++;
    if (len > 1 && s[len - 2] == '=')
        pad++;
    d = malloc(len / 4 * 3 + 1);
    if (!d)
        return ETCD_ENOMEM;
    for (i = 0; i < len; i += 4) {
        int v[4];
        int last = i + 4 == len;
        for (int k = 0; k < 4; k++) {
            v[k] = b64_val((unsigned char)s[i + k]);
            if (v[k] < 0 && !(last && s[i + k] == '=' && k >= 4 - (int)pad)) {
                free(d);
                return ETCD_EPARSE;
            }
        }
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
                     (unsigned)(v[2] < 0 ? 0 : v[2]) << 6 | (unsigned)(v[3] < 0 ? 0 : v[3]);
        d[o++] = (char)(w >> 16);
        if (v[2] >= 0)
            d[o++] = (char)((w >> 8) & 255);
        if (v[3] >= 0)
            d[o++] = (char)(w & 255);
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return ETCD_OK;
}

int etcd__prefix_end(const char *key, size_t len, char **end, size_t *end_len)
{
    size_t n = len;
    char *d;

    while (n && (unsigned char)key[n - 1] == 0xff)
        n--;
    if (!n) {
        d = calloc(1, 2);   /* "\0": every key >= key */
        if (!d)
            return ETCD_ENOMEM;
        *end = d;
        *end_len = 1;
        return ETCD_OK;
    }
    d = malloc(n + 1);
    if (!d)
        return ETCD_ENOMEM;
    memcpy(d, key, n);
    d[n - 1] = (char)((unsigned char)d[n - 1] + 1);
    d[n] = '\0';
    *end = d;
    *end_len = n;
    return ETCD_OK;
}

/* ------------------------------------------------------ request bodies */

/* Add key (and range_end for a prefix) base64-encoded to obj. 0 or ENOMEM. */
static int add_key(cJSON *obj, const char *key, int prefix)
{
    size_t klen = strlen(key), elen;
    char *k = NULL, *e = NULL, *eb = NULL;
    int rc = ETCD_ENOMEM;

    if (!(k = etcd__b64_encode(key, klen)) || !cJSON_AddStringToObject(obj, "key", k))
        goto out;
    if (prefix) {
        if (etcd__prefix_end(key, klen, &e, &elen) ||
            !(eb = etcd__b64_encode(e, elen)) ||
            !cJSON_AddStringToObject(obj, "range_end", eb))
            goto out;
    }
    rc = ETCD_OK;
out:
    free(k);
    free(e);
    free(eb);
    return rc;
}

static int add_i64(cJSON *obj, const char *name, int64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return cJSON_AddStringToObject(obj, name, s) ? ETCD_OK : ETCD_ENOMEM;
}

/* Print and free obj; NULL (and obj freed) when anything failed. */
static char *finish(cJSON *obj, int rc)
{
    char *s = NULL;
    if (obj && rc == ETCD_OK)
        s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return s;
}

char *etcd__range_body(const char *key, int prefix, int64_t limit)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_key(o, key, prefix) : ETCD_ENOMEM;
    if (!rc && limit > 0)
        rc = add_i64(o, "limit", limit);
    return finish(o, rc);
}

char *etcd__put_body(const char *key, const char *value, size_t value_len)
{
    cJSON *o = cJSON_CreateObject(), *item = NULL;
    char *v = NULL, *s = NULL;
    int rc = o ? add_key(o, key, 0) : ETCD_ENOMEM;

    if (!rc && (!(v = etcd__b64_encode(value, value_len)) ||
                !(item = cJSON_AddStringToObject(o, "value", v))))
        rc = ETCD_ENOMEM;
    if (!rc)
        s = cJSON_PrintUnformatted(o);
    /* the value may be a secret: wipe the tree's copy and ours (the
     * printed body is wiped by etcd__free_body) */
    if (!rc)
        etcd__wipe(item->valuestring, strlen(item->valuestring));
    if (v) {
        etcd__wipe(v, strlen(v));
        free(v);
    }
    cJSON_Delete(o);
    return s;
}

char *etcd__delete_body(const char *key, int prefix)
{
    cJSON *o = cJSON_CreateObject();
    int rc = o ? add_key(o, key, prefix) : ETCD_ENOMEM;
    return finish(o, rc);
}

char *etcd__watch_body(const char *key, int prefix, int64_t start_revision)
{
    cJSON *o = cJSON_CreateObject(), *cr = NULL;
    int rc = ETCD_ENOMEM;

    if (!o || !(cr = cJSON_AddObjectToObject(o, "create_request")))
        goto out;
    rc = add_key(cr, key, prefix);
    if (!rc && start_revision > 0)
        rc = add_i64(cr, "start_revision", start_revision);
out:
    return finish(o, rc);
}

void etcd__free_body(char *body)
{
    if (body)
        etcd__wipe(body, strlen(body));
    free(body);
}

/* ------------------------------------------------------ answer parsing */

/*
 * obj.name as an int64: the gateway writes int64 as a decimal string;
 * a JSON number is taken too. Missing (or null): 0. Else ETCD_EPARSE.
 */
static int get_i64(const cJSON *obj, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return ETCD_OK;
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        char *end;
        long long x;
        if (!s[0] || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
            return ETCD_EPARSE;
        errno = 0;
        x = strtoll(s, &end, 10);
        if (errno || *end)
            return ETCD_EPARSE;
        *out = (int64_t)x;
        return ETCD_OK;
    }
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != (double)(int64_t)d || d > 9007199254740992.0 || d < -9007199254740992.0)
            return ETCD_EPARSE;
        *out = (int64_t)d;
        return ETCD_OK;
    }
    return ETCD_EPARSE;
}

static int get_bool(const cJSON *obj, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, name));
}

/* Parse body to an object with a "header" object; its revision to *rev. */
static int parse_top(const char *body, size_t len, const char *what, cJSON **out,
                     int64_t *rev, etcd_err *err)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *h;

    *out = NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return etcd__err_set(err, ETCD_EPARSE, "%s: answer is not a JSON object", what);
    }
    h = cJSON_GetObjectItemCaseSensitive(j, "header");
    if (!cJSON_IsObject(h)) {
        cJSON_Delete(j);
        return etcd__err_set(err, ETCD_EPARSE, "%s: answer has no header", what);
    }
    if (get_i64(h, "revision", rev)) {
        cJSON_Delete(j);
        return etcd__err_set(err, ETCD_EPARSE, "%s: header.revision is not an integer", what);
    }
    *out = j;
    return ETCD_OK;
}

/* A base64 field of obj to a NUL-terminated copy; missing: "" unless required. */
static int get_bytes(const cJSON *obj, const char *name, int required, char **out,
                     size_t *out_len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    *out_len = 0;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return ETCD_EPARSE;
        *out = calloc(1, 1);
        return *out ? ETCD_OK : ETCD_ENOMEM;
    }
    if (!cJSON_IsString(v))
        return ETCD_EPARSE;
    return etcd__b64_decode(v->valuestring, strlen(v->valuestring), out, out_len);
}

static void kv_release(etcd_kv *kv)
{
    free(kv->key);
    if (kv->value)
        etcd__wipe(kv->value, kv->value_len);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

void etcd_range_result_release(etcd_range_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        kv_release(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

static int parse_kv(const cJSON *j, etcd_kv *kv)
{
    int rc;
    if (!cJSON_IsObject(j))
        return ETCD_EPARSE;
    rc = get_bytes(j, "key", 1, &kv->key, &kv->key_len);
    if (!rc)
        rc = get_bytes(j, "value", 0, &kv->value, &kv->value_len);
    if (!rc && (get_i64(j, "create_revision", &kv->create_revision) ||
                get_i64(j, "mod_revision", &kv->mod_revision) ||
                get_i64(j, "version", &kv->version)))
        rc = ETCD_EPARSE;
    return rc;
}

int etcd__parse_range(const char *body, size_t len, etcd_range_result *out, etcd_err *err)
{
    cJSON *j = NULL;
    const cJSON *kvs, *it;
    int rc;
    size_t n, i = 0;

    memset(out, 0, sizeof(*out));
    rc = parse_top(body, len, "range", &j, &out->revision, err);
    if (rc)
        return rc;
    if (get_i64(j, "count", &out->count)) {
        rc = etcd__err_set(err, ETCD_EPARSE, "range: count is not an integer");
        goto out;
    }
    out->more = get_bool(j, "more");
    kvs = cJSON_GetObjectItemCaseSensitive(j, "kvs");
    if (!kvs || cJSON_IsNull(kvs))
        goto out;
    if (!cJSON_IsArray(kvs)) {
        rc = etcd__err_set(err, ETCD_EPARSE, "range: kvs is not an array");
        goto out;
    }
    n = (size_t)cJSON_GetArraySize(kvs);
    if (n) {
        out->kvs = calloc(n, sizeof(*out->kvs));
        if (!out->kvs) {
            rc = etcd__err_set(err, ETCD_ENOMEM, "out of memory");
            goto out;
        }
    }
    cJSON_ArrayForEach(it, kvs) {
        out->n = i + 1;   /* so release frees what parse_kv filled */
        rc = parse_kv(it, &out->kvs[i]);
        if (rc == ETCD_ENOMEM) {
            etcd__err_set(err, rc, "out of memory");
            goto out;
        }
        if (rc) {
            etcd__err_set(err, rc, "range: kvs[%zu] is malformed (no key, bad base64 or "
                          "a revision that is not an integer)", i);
            goto out;
        }
        i++;
    }
out:
    if (rc)
        etcd_range_result_release(out);
    else if (err)
        memset(err, 0, sizeof(*err));
    cJSON_Delete(j);
    return rc;
}

int etcd__parse_put(const char *body, size_t len, int64_t *revision, etcd_err *err)
{
    cJSON *j = NULL;
    int64_t rev;
    int rc = parse_top(body, len, "put", &j, &rev, err);
    if (!rc && rev <= 0)
        rc = etcd__err_set(err, ETCD_EPARSE, "put: answer has no revision");
    if (!rc && revision)
        *revision = rev;
    cJSON_Delete(j);
    return rc;
}

int etcd__parse_delete(const char *body, size_t len, int64_t *deleted, int64_t *revision,
                       etcd_err *err)
{
    cJSON *j = NULL;
    int64_t rev, del = 0;
    int rc = parse_top(body, len, "delete", &j, &rev, err);
    if (!rc && get_i64(j, "deleted", &del))
        rc = etcd__err_set(err, ETCD_EPARSE, "delete: deleted is not an integer");
    if (!rc) {
        if (deleted)
            *deleted = del;
        if (revision)
            *revision = rev;
    }
    cJSON_Delete(j);
    return rc;
}

/* Fill err from the gateway's error object (top level or a stream's "error"). */
static void error_fields(const cJSON *e, long http_code, const char *body, size_t len,
                         etcd_err *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "error");
    const cJSON *gc = cJSON_GetObjectItemCaseSensitive(e, "grpc_code");
    const cJSON *hc = cJSON_GetObjectItemCaseSensitive(e, "http_code");

    err->rc = ETCD_EHTTP;
    err->http_code = http_code;
    if (cJSON_IsNumber(hc) && !http_code)
        err->http_code = (long)hc->valuedouble;
    if (cJSON_IsNumber(code))
        err->grpc_code = (int)code->valuedouble;
    else if (cJSON_IsNumber(gc))
        err->grpc_code = (int)gc->valuedouble;
    if (cJSON_IsString(m) && m->valuestring[0])
        snprintf(err->message, sizeof(err->message), "%s", m->valuestring);
    else if (cJSON_IsString(s) && s->valuestring[0])
        snprintf(err->message, sizeof(err->message), "%s", s->valuestring);
    else if (body && len)
        snprintf(err->message, sizeof(err->message), "%.*s", (int)(len > 200 ? 200 : len), body);
    else
        snprintf(err->message, sizeof(err->message), "HTTP %ld", http_code);
}

int etcd__parse_error(const char *body, size_t len, long http_code, etcd_err *err)
{
    cJSON *j;
    if (!err)
        return ETCD_EHTTP;
    memset(err, 0, sizeof(*err));
    j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    error_fields(cJSON_IsObject(j) ? j : NULL, http_code, body, len, err);
    cJSON_Delete(j);
    return ETCD_EHTTP;
}

/* ------------------------------------------------ watch stream framing */

void etcd__framer_init(etcd__framer *f, size_t cap)
{
    memset(f, 0, sizeof(*f));
    etcd__buf_init(&f->buf, cap);
}

void etcd__framer_release(etcd__framer *f)
{
    etcd__buf_release(&f->buf);
    etcd__framer_init(f, f->buf.cap);
}

int etcd__framer_feed(etcd__framer *f, const char *p, size_t n, etcd__object_fn fn, void *ud)
{
    size_t done = 0;   /* bytes of buf delivered or skipped */
    int rc = ETCD_OK;

    rc = etcd__buf_add(&f->buf, p, n);
    if (rc)
        return rc;
    for (size_t i = f->scan; i < f->buf.len; i++) {
        char ch = f->buf.data[i];
        if (f->depth == 0) {
            if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {
                done = i + 1;
                continue;
            }
            if (ch != '{') {
                rc = ETCD_EPARSE;
                goto out;
            }
            f->start = i;
            f->depth = 1;
            continue;
        }
        if (f->in_str) {
            if (f->esc)
                f->esc = 0;
            else if (ch == '\\')
                f->esc = 1;
            else if (ch == '"')
                f->in_str = 0;
            continue;
        }
        if (ch == '"')
            f->in_str = 1;
        else if (ch == '{' || ch == '[')
            f->depth++;
        else if ((ch == '}' || ch == ']') && --f->depth == 0) {
            rc = fn(ud, f->buf.data + f->start, i + 1 - f->start);
            done = i + 1;
            if (rc)
                goto out;
        }
    }
    /* keep the incomplete object; scanning resumes where it stopped */
    if (f->depth)
        done = f->start;
    etcd__buf_consume(&f->buf, done);
    f->start = 0;
    f->scan = f->buf.len;
    return ETCD_OK;
out:
    return rc;
}

/* ------------------------------------------------------------ watch */

static int deliver_event(etcd__watch_state *st, const cJSON *ev, etcd_watch_fn fn, void *ud,
                         etcd_err *err)
{
    const cJSON *kv = cJSON_GetObjectItemCaseSensitive(ev, "kv");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    etcd_event e;
    char *key = NULL, *value = NULL;
    size_t klen = 0, vlen = 0;
    int64_t mod = 0;
    int rc;

    memset(&e, 0, sizeof(e));
    if (!cJSON_IsObject(kv) || (type && !cJSON_IsString(type)))
        return etcd__err_set(err, ETCD_EPARSE, "watch: an event without kv");
    if (!type || strcmp(type->valuestring, "PUT") == 0)
        e.type = ETCD_EVENT_PUT;
    else if (strcmp(type->valuestring, "DELETE") == 0)
        e.type = ETCD_EVENT_DELETE;
    else
        return etcd__err_set(err, ETCD_EPARSE, "watch: event of unknown type");
    rc = get_bytes(kv, "key", 1, &key, &klen);
    if (!rc && e.type == ETCD_EVENT_PUT)
        rc = get_bytes(kv, "value", 0, &value, &vlen);
    if (!rc && (get_i64(kv, "mod_revision", &mod) || mod <= 0))
        rc = ETCD_EPARSE;
    if (rc) {
        if (rc == ETCD_ENOMEM)
            etcd__err_set(err, rc, "out of memory");
        else
            etcd__err_set(err, rc, "watch: an event with a bad key, value or mod_revision");
        goto out;
    }
    e.key = key;
    e.key_len = klen;
    e.value = value;
    e.value_len = vlen;
    e.mod_revision = mod;
    /* delivered, even when fn then says stop: never deliver it again */
    if (mod + 1 > st->next_rev)
        st->next_rev = mod + 1;
    if (fn(ud, &e))
        rc = etcd__err_set(err, ETCD_ESTOPPED, "watch stopped by its callback");
out:
    free(key);
    if (value)
        etcd__wipe(value, vlen);
    free(value);
    return rc;
}

int etcd__watch_message(etcd__watch_state *st, const char *obj, size_t len,
                        etcd_watch_fn fn, void *ud, etcd_err *err)
{
    cJSON *j = cJSON_ParseWithLength(obj, len);
    const cJSON *r, *h, *evs, *ev;
    int64_t rev = 0, compact = 0;
    int rc = ETCD_OK;

    if (!cJSON_IsObject(j)) {
        rc = etcd__err_set(err, ETCD_EPARSE, "watch: a message that is not a JSON object");
        goto out;
    }
    r = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (r) {
        if (err) {
            memset(err, 0, sizeof(*err));
            error_fields(cJSON_IsObject(r) ? r : NULL, 0, obj, len, err);
        }
        rc = ETCD_EHTTP;
        goto out;
    }
    r = cJSON_GetObjectItemCaseSensitive(j, "result");
    h = cJSON_GetObjectItemCaseSensitive(r, "header");
    if (!cJSON_IsObject(r) || !cJSON_IsObject(h) || get_i64(h, "revision", &rev) ||
        get_i64(r, "compact_revision", &compact)) {
        rc = etcd__err_set(err, ETCD_EPARSE, "watch: a message without result.header");
        goto out;
    }
    if (get_bool(r, "canceled")) {
        if (compact > 0) {
            st->compacted = compact;
            st->next_rev = 0;
            st->restart = 1;
            goto out;
        }
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "cancel_reason"));
        rc = etcd__err_set(err, ETCD_EHTTP, "watch canceled by etcd%s%s", why ? ": " : "",
                           why ? why : "");
        goto out;
    }
    if (get_bool(r, "created")) {
        st->created = 1;
        if (st->next_rev <= 0)
            st->next_rev = rev + 1;
        if (st->failed && st->on_open)
            st->on_open(ud);
        st->failed = 0;
        if (st->compacted) {
            etcd_event e;
            memset(&e, 0, sizeof(e));
            e.type = ETCD_EVENT_COMPACTED;
            e.mod_revision = rev;
            e.compact_revision = st->compacted;
            st->compacted = 0;
            if (fn(ud, &e)) {
                rc = etcd__err_set(err, ETCD_ESTOPPED, "watch stopped by its callback");
                goto out;
            }
        }
    }
    evs = cJSON_GetObjectItemCaseSensitive(r, "events");
    if (evs && !cJSON_IsNull(evs)) {
        if (!cJSON_IsArray(evs)) {
            rc = etcd__err_set(err, ETCD_EPARSE, "watch: events is not an array");
            goto out;
        }
        cJSON_ArrayForEach(ev, evs) {
            rc = deliver_event(st, ev, fn, ud, err);
            if (rc)
                goto out;
        }
    } else if (!get_bool(r, "created") && rev > 0 && rev + 1 > st->next_rev && st->created) {
        /* a progress notification: nothing up to rev is left to send */
        st->next_rev = rev + 1;
    }
out:
    cJSON_Delete(j);
    return rc;
}

/* ------------------------------------------------------------ backoff */

double etcd__backoff(double initial, double max, int failures, double jitter_unit)
{
    double d;

    if (!(initial > 0) || !(max > 0))
        return 0;
    if (initial > max)
        initial = max;
    if (!(jitter_unit >= 0))
        jitter_unit = 0;
    if (jitter_unit > 1)
        jitter_unit = 1;
    d = initial;
    for (int i = 0; i < failures && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    d *= 0.8 + 0.4 * jitter_unit;
    return d > max ? max : d;
}
