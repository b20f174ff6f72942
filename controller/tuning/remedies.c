/*
 * remedies.c - load remedies/remedies.yaml (see remedies.h and the file's
 * own comment for the format).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "k8s.h"
#include "host/fsutil.h"
#include "remedies.h"

extern const char tqu_remedies_builtin[];

const char *const tqu_remedies_names[TQU_REM_COUNT] = {
    "globalRateLimitEnable", "globalMaxRequestPerUnit", "serviceMaxRequestPerUnit",
    "cdnMaxRequest", "cdnDiskSpace",
};

static int fail(char *err, size_t errlen, const char *name, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, const char *name, const yaml_node_t *n, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%d: %s", name, n ? (int)n->start_mark.line + 1 : 0, what);
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE ||
        strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return NULL;
    return (const char *)n->data.scalar.value;
}

/* 0 if tmpl uses only the placeholders allowed (config_ns_ok: {configNs}
 * too, and it must then appear), and only key-safe characters. */
static const char *check_template(const char *tmpl, int service)
{
    int has_ns = 0;
    if (!tmpl[0])
        return "is empty";
    for (const char *p = tmpl; *p; p++) {
        if (*p == '{') {
            if (!strncmp(p, "{prefix}", 8)) {
                p += 7;
            } else if (!strncmp(p, "{configNs}", 10)) {
                if (!service)
                    return "uses {configNs}, which only serviceMaxRequestPerUnit may use";
                has_ns = 1;
                p += 9;
            } else {
                return "has an unknown placeholder (only {prefix} and {configNs})";
            }
        } else if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '}') {
            return "has a space, a control character or a stray }";
        }
    }
    if (service && !has_ns)
        return "must use {configNs} (each service has its own key)";
    return NULL;
}

int tqu_remedies_parse(const char *text, size_t len, const char *name, tqu_remedies *out,
                       char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root, *keys = NULL;
    int rc = -1, have_doc = 0, seen[TQU_REM_COUNT] = { 0 };

    memset(out, 0, sizeof(*out));
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%d: %s", name, (int)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "not YAML");
        goto out;
    }
    have_doc = 1;
    root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        fail(err, errlen, name, root, "expected a mapping with version and keys");
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key), *vn = yaml_document_get_node(&doc, p->value);
        const char *k = scalar(kn);
        if (k && !strcmp(k, "version")) {
            const char *v = scalar(vn);
            if (!v || strcmp(v, "1")) {
                fail(err, errlen, name, vn, "version: expected 1");
                goto out;
            }
        } else if (k && !strcmp(k, "keys")) {
            keys = vn;
        } else {
            fail(err, errlen, name, kn, "unknown field \"%.64s\" (version, keys)", k ? k : "?");
            goto out;
        }
    }
    if (!keys || keys->type != YAML_MAPPING_NODE) {
        fail(err, errlen, name, keys ? keys : root, "keys: expected a mapping of the settings");
        goto out;
    }
    for (yaml_node_pair_t *p = keys->data.mapping.pairs.start; p < keys->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&doc, p->key), *vn = yaml_document_get_node(&doc, p->value);
        const char *k = scalar(kn), *why;
        int id = -1;
        for (int i = 0; k && i < TQU_REM_COUNT; i++)
            if (!strcmp(k, tqu_remedies_names[i]))
                id = i;
        if (id < 0) {
            fail(err, errlen, name, kn, "keys: unknown setting \"%.64s\"", k ? k : "?");
            goto out;
        }
        if (seen[id]++) {
            fail(err, errlen, name, kn, "keys: %s appears twice", k);
            goto out;
        }
        if (!vn || vn->type != YAML_MAPPING_NODE) {
            fail(err, errlen, name, vn, "keys.%s: expected a mapping with key", k);
            goto out;
        }
        out->confirmed[id] = 1;
        for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
            yaml_node_t *fk = yaml_document_get_node(&doc, q->key), *fv = yaml_document_get_node(&doc, q->value);
            const char *f = scalar(fk), *v = scalar(fv);
            if (!f || !v) {
                fail(err, errlen, name, fk, "keys.%s: expected text fields (key, confirmed, note)", k);
                goto out;
            }
            if (!strcmp(f, "key")) {
                if (strlen(v) >= TQU_REM_MAX_KEY) {
                    fail(err, errlen, name, fv, "keys.%s.key: longer than %d bytes", k, TQU_REM_MAX_KEY - 1);
                    goto out;
                }
                snprintf(out->key[id], TQU_REM_MAX_KEY, "%s", v);
            } else if (!strcmp(f, "confirmed")) {
                if (strcasecmp(v, "true") && strcasecmp(v, "false")) {
                    fail(err, errlen, name, fv, "keys.%s.confirmed: expected true or false", k);
                    goto out;
                }
                out->confirmed[id] = !strcasecmp(v, "true");
            } else if (!strcmp(f, "note")) {
                snprintf(out->note[id], sizeof(out->note[id]), "%s", v);
            } else {
                fail(err, errlen, name, fk, "keys.%s: unknown field \"%.64s\" (key, confirmed, note)", k, f);
                goto out;
            }
        }
        if (!out->key[id][0]) {
            fail(err, errlen, name, vn, "keys.%s: no key", k);
            goto out;
        }
        why = check_template(out->key[id], id == TQU_REM_SERVICE_MAX);
        if (why) {
            fail(err, errlen, name, vn, "keys.%s.key \"%.128s\" %s", k, out->key[id], why);
            goto out;
        }
    }
    for (int i = 0; i < TQU_REM_COUNT; i++)
        if (!seen[i]) {
            fail(err, errlen, name, keys, "keys: %s is missing", tqu_remedies_names[i]);
            goto out;
        }
    rc = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int tqu_remedies_load(const char *path, tqu_remedies *out, char *err, size_t errlen)
{
    k8s_buf b;
    char ferr[512];
    int rc;
    if (!path)
        return tqu_remedies_parse(tqu_remedies_builtin, strlen(tqu_remedies_builtin),
                                  "remedies/remedies.yaml (built in)", out, err, errlen);
    k8s_buf_init(&b, 0);
    if (tqu_read_file(path, 1 << 20, &b, ferr, sizeof(ferr))) {
        snprintf(err, errlen, "--remedies-file: %s", ferr);
        k8s_buf_release(&b);
        return -1;
    }
    rc = tqu_remedies_parse(b.data ? b.data : "", b.len, path, out, err, errlen);
    k8s_buf_release(&b);
    return rc;
}

int tqu_remedies_key(const char *tmpl, const char *prefix, const char *config_ns, char *buf,
                     size_t len)
{
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        const char *add = NULL;
        size_t n = 1;
        if (!strncmp(p, "{prefix}", 8)) {
            add = prefix;
            n = 8;
        } else if (!strncmp(p, "{configNs}", 10)) {
            add = config_ns;
            n = 10;
            if (!add)
                return -1;
        }
        if (add) {
            size_t l = strlen(add);
            if (o + l >= len)
                return -1;
            memcpy(buf + o, add, l);
            o += l;
        } else {
            if (o + 1 >= len)
                return -1;
            buf[o++] = *p;
        }
        p += n;
    }
    if (o >= len)
        return -1;
    buf[o] = '\0';
    return 0;
}
