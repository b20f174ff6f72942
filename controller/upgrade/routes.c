/*
 * routes.c - load the upgrade route table (routes/routes.yaml) with
 * libyaml's document API and check requested upgrades against it (see
 * routes.h; the file format is documented in routes/routes.yaml).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "k8s.h"
#include "host/fsutil.h"
#include "routes.h"

/* ------------------------------------------------------------------ load */

typedef struct loader {
    yaml_document_t *doc;
    const char *name;          /* file name for messages */
    char *err;
    size_t errlen;
} loader;

static int node_line(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 0;
}

/* "name:line: ..." and K8S_EPARSE. */
static int fail_at(loader *ld, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(loader *ld, const yaml_node_t *n, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return tqu__seterr(ld->err, ld->errlen, K8S_EPARSE, "%s:%d: %s", ld->name, node_line(n), what);
}

static int oom(loader *ld)
{
    return tqu__seterr(ld->err, ld->errlen, K8S_ENOMEM, "%s: out of memory", ld->name);
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n ? n->type : YAML_NO_NODE) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

/* The scalar's text if n is a scalar without NUL bytes, else NULL. */
static const char *scalar(const yaml_node_t *n, size_t *len)
{
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return NULL;
    if (len)
        *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

/* Parse a version scalar; what names it in messages ("target", "sources[3]"). */
static int get_version(loader *ld, const yaml_node_t *n, const char *what, tqu_version *out)
{
    const char *s = scalar(n, NULL);
    if (!s)
        return fail_at(ld, n, "%s: expected a version A.B.C.D, found %s", what, node_kind(n));
    if (tqu_version_parse(s, out) != K8S_OK)
        return fail_at(ld, n, "%s: \"%.64s\" is not a version A.B.C.D (four numbers, each at most 2147483647)",
                       what, s);
    return K8S_OK;
}

/* A one-line copy of a text scalar (control characters become spaces). */
static int get_text(loader *ld, const yaml_node_t *n, const char *what, char **out)
{
    size_t len;
    const char *s = scalar(n, &len);
    char *p;

    if (!s)
        return fail_at(ld, n, "%s: expected text, found %s", what, node_kind(n));
    if (len > TQU_ROUTES_MAX_TEXT)
        return fail_at(ld, n, "%s: longer than %d bytes", what, TQU_ROUTES_MAX_TEXT);
    p = strdup(s);
    if (!p)
        return oom(ld);
    for (char *q = p; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = ' ';
    free(*out);
    *out = p;
    return K8S_OK;
}

static int get_bool(loader *ld, const yaml_node_t *n, const char *what, int *out)
{
    const char *s = scalar(n, NULL);
    if (s && strcasecmp(s, "true") == 0)
        *out = 1;
    else if (s && strcasecmp(s, "false") == 0)
        *out = 0;
    else
        return fail_at(ld, n, "%s: expected true or false, found %s%.32s%s", what,
                       s ? "\"" : node_kind(n), s ? s : "", s ? "\"" : "");
    return K8S_OK;
}

/* Key of a mapping pair, which must be a scalar. */
static const char *pair_key(loader *ld, const yaml_node_pair_t *pair, const yaml_node_t **kn, int *rc)
{
    const char *k;
    *kn = yaml_document_get_node(ld->doc, pair->key);
    k = scalar(*kn, NULL);
    if (!k)
        *rc = fail_at(ld, *kn, "a key must be plain text, found %s", node_kind(*kn));
    return k;
}

/* A key may appear once per mapping. */
static int check_dup_key(loader *ld, const yaml_node_t *map, const yaml_node_pair_t *upto,
                         const char *key, const yaml_node_t *kn)
{
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < upto; p++) {
        const char *k = scalar(yaml_document_get_node(ld->doc, p->key), NULL);
        if (k && strcmp(k, key) == 0)
            return fail_at(ld, kn, "key \"%s\" appears twice", key);
    }
    return K8S_OK;
}

static int cmp_versions(const void *a, const void *b)
{
    return tqu_version_cmp(a, b);
}

static void route_release(tqu_route *r)
{
    free(r->sources);
    free(r->reference);
    free(r->notes);
    memset(r, 0, sizeof(*r));
}

/*
 * The number of items of the list at key (1 to max) into *n, or the
 * failure: "<key>: expected <kind>, found ...", "<key>: the list is
 * empty", "<key>: more than <max> <unit>".
 */
static int list_len(loader *ld, const yaml_node_t *seq, const char *key, const char *kind, size_t max,
                    const char *unit, size_t *n)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return fail_at(ld, seq, "%s: expected %s, found %s", key, kind, node_kind(seq));
    *n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (*n == 0)
        return fail_at(ld, seq, "%s: the list is empty", key);
    if (*n > max)
        return fail_at(ld, seq, "%s: more than %zu %s", key, max, unit);
    return K8S_OK;
}

static int load_sources(loader *ld, const yaml_node_t *seq, tqu_route *r)
{
    size_t n, i = 0;
    yaml_node_item_t *it;
    char what[48];
    int rc;

    if ((rc = list_len(ld, seq, "sources", "a list of versions", TQU_ROUTES_MAX_SOURCES, "versions", &n)))
        return rc;
    free(r->sources);
    r->nsources = 0;
    r->sources = calloc(n, sizeof(*r->sources));
    if (!r->sources)
        return oom(ld);
    for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++, i++) {
        const yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        snprintf(what, sizeof(what), "sources[%zu]", i);
        if ((rc = get_version(ld, item, what, &r->sources[i])) != K8S_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (tqu_version_cmp(&r->sources[j], &r->sources[i]) == 0) {
                char vb[TQU_VERSION_BUFLEN];
                return fail_at(ld, item, "sources[%zu]: %s is listed twice", i,
                               tqu_version_format(&r->sources[i], vb, sizeof(vb)));
            }
    }
    r->nsources = n;
    return K8S_OK;
}

static int load_route(loader *ld, const yaml_node_t *map, size_t idx, tqu_route *r)
{
    const yaml_node_t *kn, *vn, *sources_node = NULL;
    int rc = K8S_OK, have_target = 0, have_std = 0;

    r->line = node_line(map);
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(ld, map, "routes[%zu]: expected a mapping (target, standardInstallOnly, sources...), found %s",
                       idx, node_kind(map));
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = pair_key(ld, p, &kn, &rc);
        if (!k)
            return rc;
        if ((rc = check_dup_key(ld, map, p, k, kn)) != K8S_OK)
            return rc;
        vn = yaml_document_get_node(ld->doc, p->value);
        if (strcmp(k, "target") == 0) {
            rc = get_version(ld, vn, "target", &r->target);
            have_target = 1;
        } else if (strcmp(k, "standardInstallOnly") == 0) {
            rc = get_bool(ld, vn, "standardInstallOnly", &r->standard_install_only);
            have_std = 1;
        } else if (strcmp(k, "sources") == 0) {
            sources_node = vn;
            rc = load_sources(ld, vn, r);
        } else if (strcmp(k, "reference") == 0) {
            rc = get_text(ld, vn, "reference", &r->reference);
        } else if (strcmp(k, "notes") == 0) {
            rc = get_text(ld, vn, "notes", &r->notes);
        } else {
            rc = fail_at(ld, kn, "routes[%zu]: unknown key \"%.64s\" (expected target, standardInstallOnly, sources, reference, notes)",
                         idx, k);
        }
        if (rc)
            return rc;
    }
    if (!have_target)
        return fail_at(ld, map, "routes[%zu]: \"target\" is missing", idx);
    if (!sources_node)
        return fail_at(ld, map, "routes[%zu]: \"sources\" is missing", idx);
    if (!have_std)
        return fail_at(ld, map, "routes[%zu]: \"standardInstallOnly\" is missing (true or false)", idx);
    for (size_t i = 0; i < r->nsources; i++)
        if (tqu_version_cmp(&r->sources[i], &r->target) >= 0) {
            char a[TQU_VERSION_BUFLEN], b[TQU_VERSION_BUFLEN];
            const yaml_node_item_t *it = sources_node->data.sequence.items.start + i;
            return fail_at(ld, yaml_document_get_node(ld->doc, *it),
                           "sources[%zu]: %s is not older than the target %s", i,
                           tqu_version_format(&r->sources[i], a, sizeof(a)),
                           tqu_version_format(&r->target, b, sizeof(b)));
        }
    qsort(r->sources, r->nsources, sizeof(*r->sources), cmp_versions);
    return K8S_OK;
}

static int load_routes(loader *ld, const yaml_node_t *seq, tqu_routes *t)
{
    size_t n, i = 0;
    int rc;

    if ((rc = list_len(ld, seq, "routes", "a list", TQU_ROUTES_MAX_ROUTES, "routes", &n)))
        return rc;
    if (t->routes)
        return fail_at(ld, seq, "key \"routes\" appears twice");
    t->routes = calloc(n, sizeof(*t->routes));
    if (!t->routes)
        return oom(ld);
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, i++) {
        const yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        t->nroutes = i + 1;    /* so that tqu_routes_free releases it */
        if ((rc = load_route(ld, item, i, &t->routes[i])) != K8S_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (tqu_version_cmp(&t->routes[j].target, &t->routes[i].target) == 0) {
                char vb[TQU_VERSION_BUFLEN];
                return fail_at(ld, item, "routes[%zu]: target %s is already listed at line %d", i,
                               tqu_version_format(&t->routes[i].target, vb, sizeof(vb)),
                               t->routes[j].line);
            }
    }
    return K8S_OK;
}

static int load_top(loader *ld, tqu_routes *t)
{
    const yaml_node_t *root = yaml_document_get_root_node(ld->doc), *kn, *vn;
    int rc = K8S_OK, have_schema = 0;

    if (!root)
        return tqu__seterr(ld->err, ld->errlen, K8S_EPARSE,
                           "%s: empty (expected schemaVersion: 1 and routes:)", ld->name);
    if (root->type != YAML_MAPPING_NODE)
        return fail_at(ld, root, "expected a mapping with schemaVersion and routes, found %s",
                       node_kind(root));
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const char *k = pair_key(ld, p, &kn, &rc), *s;
        if (!k)
            return rc;
        if ((rc = check_dup_key(ld, root, p, k, kn)) != K8S_OK)
            return rc;
        vn = yaml_document_get_node(ld->doc, p->value);
        if (strcmp(k, "schemaVersion") == 0) {
            s = scalar(vn, NULL);
            if (!s || strcmp(s, "1") != 0)
                return fail_at(ld, vn, "schemaVersion: this controller reads schemaVersion 1, found %s%.32s%s",
                               s ? "\"" : node_kind(vn), s ? s : "", s ? "\"" : "");
            have_schema = 1;
        } else if (strcmp(k, "routes") == 0) {
            if ((rc = load_routes(ld, vn, t)) != K8S_OK)
                return rc;
        } else {
            return fail_at(ld, kn, "unknown key \"%.64s\" (expected schemaVersion, routes)", k);
        }
    }
    if (!have_schema)
        return fail_at(ld, root, "\"schemaVersion: 1\" is missing");
    if (!t->routes)
        return fail_at(ld, root, "\"routes\" is missing");
    return K8S_OK;
}

void tqu_routes_free(tqu_routes *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nroutes; i++)
        route_release(&r->routes[i]);
    free(r->routes);
    free(r->path);
    free(r);
}

int tqu_routes_parse(const char *text, size_t len, const char *name, tqu_routes **out,
                     char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    tqu_routes *t = NULL;
    loader ld = { &doc, name ? name : "routes", err, errlen };
    int rc, have_doc = 0, have_parser = 0;

    if (out)
        *out = NULL;
    if (!text || !out)
        return tqu__seterr(err, errlen, K8S_EINVAL, "%s: no route table given", ld.name);
    if (len > TQU_ROUTES_MAX_BYTES)
        return tqu__seterr(err, errlen, K8S_ETOOBIG, "%s: larger than %zu bytes", ld.name,
                           TQU_ROUTES_MAX_BYTES);
    t = calloc(1, sizeof(*t));
    if (!t || !(t->path = strdup(ld.name))) {
        rc = oom(&ld);
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = oom(&ld);
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (parser.error == YAML_MEMORY_ERROR)
            rc = oom(&ld);
        else
            rc = tqu__seterr(err, errlen, K8S_EPARSE, "%s:%zu: not valid YAML: %s%s%s", ld.name,
                             parser.problem_mark.line + 1,
                             parser.problem ? parser.problem : "syntax error",
                             parser.context ? " " : "", parser.context ? parser.context : "");
        goto out;
    }
    have_doc = 1;
    if ((rc = load_top(&ld, t)) != K8S_OK)
        goto out;
    /* One document only: a second one would be silently ignored otherwise. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = tqu__seterr(err, errlen, K8S_EPARSE, "%s:%zu: not valid YAML after the first document: %s",
                         ld.name, parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "syntax error");
        goto out;
    }
    if (yaml_document_get_root_node(&extra)) {
        int line = (int)extra.start_mark.line + 1;
        yaml_document_delete(&extra);
        rc = tqu__seterr(err, errlen, K8S_EPARSE, "%s:%d: a second YAML document; the route table is one document",
                         ld.name, line);
        goto out;
    }
    yaml_document_delete(&extra);
    *out = t;
    t = NULL;
    rc = K8S_OK;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    tqu_routes_free(t);
    return rc;
}

int tqu_routes_load(const char *path, tqu_routes **out, char *err, size_t errlen)
{
    k8s_buf b;
    int rc;

    if (out)
        *out = NULL;
    if (!path || !*path || !out)
        return tqu__seterr(err, errlen, K8S_EINVAL, "route table: no file given");
    k8s_buf_init(&b, TQU_ROUTES_MAX_BYTES);
    rc = tqu_read_file(path, TQU_ROUTES_MAX_BYTES, &b, err, errlen);
    if (rc == K8S_OK)
        rc = tqu_routes_parse(b.data, b.len, path, out, err, errlen);
    k8s_buf_release(&b);
    return rc;
}

/* ----------------------------------------------------------------- check */

const tqu_route *tqu_routes_find(const tqu_routes *r, const tqu_version *target)
{
    if (!r || !target)
        return NULL;
    for (size_t i = 0; i < r->nroutes; i++)
        if (tqu_version_cmp(&r->routes[i].target, target) == 0)
            return &r->routes[i];
    return NULL;
}

int tqu_route_has_source(const tqu_route *route, const tqu_version *v)
{
    if (!route || !v)
        return 0;
    return bsearch(v, route->sources, route->nsources, sizeof(*route->sources), cmp_versions) != NULL;
}

static const char *const reason_codes[TQU_ROUTE_REASON_MAX] = {
    [TQU_ROUTE_OK] = "RouteSupported",
    [TQU_ROUTE_INVALID_VERSION] = "InvalidVersion",
    [TQU_ROUTE_DOWNGRADE_OR_SAME] = "DowngradeOrSameVersion",
    [TQU_ROUTE_INITIAL_AFTER_FROM] = "InitialAfterFrom",
    [TQU_ROUTE_UNSUPPORTED_TARGET] = "UnsupportedTargetVersion",
    [TQU_ROUTE_UNSUPPORTED_SOURCE] = "UnsupportedSourceVersion",
    [TQU_ROUTE_NON_STANDARD] = "NonStandardInstallation",
};

const char *tqu_route_reason_code(tqu_route_reason reason)
{
    if ((int)reason < 0 || reason >= TQU_ROUTE_REASON_MAX)
        return "Unknown";
    return reason_codes[reason];
}

/* "10.3.0.3200 ... 10.7.0.2704, 31 versions", or the whole list when short. */
static void describe_sources(const tqu_route *r, char *buf, size_t len)
{
    char a[TQU_VERSION_BUFLEN], b[TQU_VERSION_BUFLEN];
    size_t off = 0;

    buf[0] = '\0';
    if (r->nsources > 4) {
        snprintf(buf, len, "%s ... %s, %zu versions",
                 tqu_version_format(&r->sources[0], a, sizeof(a)),
                 tqu_version_format(&r->sources[r->nsources - 1], b, sizeof(b)), r->nsources);
        return;
    }
    for (size_t i = 0; i < r->nsources && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
                         tqu_version_format(&r->sources[i], a, sizeof(a)));
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

static int verdict(tqu_route_verdict *v, tqu_route_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int verdict(tqu_route_verdict *v, tqu_route_reason reason, const char *fmt, ...)
{
    va_list ap;
    v->reason = reason;
    v->code = tqu_route_reason_code(reason);
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof(v->message), fmt, ap);
    va_end(ap);
    return (int)reason;
}

int tqu_route_check(const tqu_routes *routes, const char *from, const char *initial,
                    const char *to, tqu_route_verdict *v)
{
    tqu_version vf, vi, vt;
    const tqu_route *r;
    char list[160], targets[256];
    size_t off = 0;
    const char *table = routes && routes->path ? routes->path : "(no route table)";

    if (!v)
        return TQU_ROUTE_INVALID_VERSION;
    memset(v, 0, sizeof(*v));
    if (tqu_version_parse(from, &vf))
        return verdict(v, TQU_ROUTE_INVALID_VERSION, "fromVersion \"%.64s\" is not a version A.B.C.D",
                       from ? from : "");
    if (tqu_version_parse(initial, &vi))
        return verdict(v, TQU_ROUTE_INVALID_VERSION, "initialVersion \"%.64s\" is not a version A.B.C.D",
                       initial ? initial : "");
    if (tqu_version_parse(to, &vt))
        return verdict(v, TQU_ROUTE_INVALID_VERSION, "toVersion \"%.64s\" is not a version A.B.C.D",
                       to ? to : "");
    r = tqu_routes_find(routes, &vt);
    v->route = r;
    if (tqu_version_cmp(&vt, &vf) == 0)
        return verdict(v, TQU_ROUTE_DOWNGRADE_OR_SAME,
                       "fromVersion and toVersion are both %s: the environment is already at the target, there is nothing to upgrade",
                       to);
    if (tqu_version_cmp(&vt, &vf) < 0)
        return verdict(v, TQU_ROUTE_DOWNGRADE_OR_SAME,
                       "toVersion %s is older than fromVersion %s: downgrades are not supported (a rollback is done by the vendor only)",
                       to, from);
    if (tqu_version_cmp(&vi, &vf) > 0)
        return verdict(v, TQU_ROUTE_INITIAL_AFTER_FROM,
                       "initialVersion %s is newer than fromVersion %s, which is impossible: set spec.initialVersion to the first version ever installed and spec.fromVersion to the version installed now",
                       initial, from);
    if (!r) {
        targets[0] = '\0';
        for (size_t i = 0; routes && i < routes->nroutes && off < sizeof(targets); i++) {
            char b[TQU_VERSION_BUFLEN];
            int n = snprintf(targets + off, sizeof(targets) - off, "%s%s", i ? ", " : "",
                             tqu_version_format(&routes->routes[i].target, b, sizeof(b)));
            if (n < 0)
                break;
            off += (size_t)n;
        }
        return verdict(v, TQU_ROUTE_UNSUPPORTED_TARGET,
                       "no upgrade route to %s in %s (targets: %s): choose a listed target, or update the route table from the vendor's knowledge-base article for %s",
                       to, table, targets[0] ? targets : "none", to);
    }
    describe_sources(r, list, sizeof(list));
    if (!tqu_route_has_source(r, &vf))
        return verdict(v, TQU_ROUTE_UNSUPPORTED_SOURCE,
                       "%s is not a supported starting point for %s (supported: %s): the vendor upgrades such environments only on request (TAC)",
                       from, to, list);
    if (r->standard_install_only && !tqu_route_has_source(r, &vi))
        return verdict(v, TQU_ROUTE_NON_STANDARD,
                       "initialVersion %s is not one of the supported versions for %s (supported: %s): an environment first installed at an unlisted release is not a standard installation, and the vendor upgrades it only on request (TAC)",
                       initial, to, list);
    return verdict(v, TQU_ROUTE_OK, "%s -> %s is a supported upgrade route%s%s%s (route table %s)",
                   from, to,
                   r->standard_install_only ? " (standard installation: first installed at " : "",
                   r->standard_install_only ? initial : "",
                   r->standard_install_only ? ")" : "", table);
}
