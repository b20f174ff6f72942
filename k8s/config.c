/*
 * config.c - client configuration: kubeconfig files, read and merged the
 * way kubectl does, and the in-cluster service account.
 *
 * Each kubeconfig is parsed with libyaml's document loader and read in
 * place through a few type-checking accessors (no generic conversion).
 * With several files ($KUBECONFIG) every file stays loaded and a name is
 * looked up file by file, so "the first file that defines it wins" falls
 * out of the search order, and relative paths resolve against the folder of
 * the file that defined the entry. Certificates, keys and CAs end up in
 * memory (k8s_blob); token files are only checked here and re-read by the
 * client. Errors name the kubeconfig file and the entry, never a secret.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <openssl/evp.h>
#include "k8s_int.h"

#define KUBECONFIG_CAP ((size_t)16 << 20)   /* a kubeconfig file */
#define PEM_CAP ((size_t)4 << 20)           /* a CA bundle, certificate or key */
#define NAMESPACE_CAP ((size_t)4096)        /* the in-cluster namespace file */
#define SA_DIR "var/run/secrets/kubernetes.io/serviceaccount"

/* One loaded kubeconfig file. */
typedef struct kc_file {
    char *path;              /* as given, for messages */
    char *dir;               /* absolute folder, for relative paths in it */
    yaml_document_t doc;
    int have_doc;
} kc_file;

/* The files to merge, in precedence order. */
typedef struct kc_set {
    kc_file *files;
    size_t n;
} kc_set;

/* ------------------------------------------------------------ helpers */

/* malloc'ed printf; NULL on ENOMEM. */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void k8s__secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* Free a NULL-terminated string vector, wiping each string. */
static void strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        k8s__secret_free(v[i]);
    free(v);
}

void k8s__exec_config_free(k8s_exec_config *e)
{
    if (!e)
        return;
    free(e->api_version);
    strv_free(e->argv);
    strv_free(e->env);
    free(e);
}

void k8s_blob_release(k8s_blob *b)
{
    if (!b)
        return;
    if (b->data) {
        OPENSSL_cleanse(b->data, b->len);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
}

int k8s_base64_decode(const char *in, size_t len, k8s_blob *out)
{
    char *clean = NULL;
    unsigned char *data = NULL;
    size_t n = 0, pad = 0;
    int got, rc = K8S_OK;

    out->data = NULL;
    out->len = 0;
    if (len > (size_t)INT_MAX) {
        rc = K8S_EINVAL;
        goto out;
    }
    clean = malloc(len + 1);
    if (!clean) {
        rc = K8S_ENOMEM;
        goto out;
    }
    /* Drop the whitespace Go's decoder ignores, check the alphabet and that
     * '=' only pads the end (EVP_DecodeBlock is lax about both). */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t')
            continue;
        if (ch == '=') {
            pad++;
        } else if (pad || !(isalnum(ch) || ch == '+' || ch == '/')) {
            rc = K8S_EINVAL;
            goto out;
        }
        clean[n++] = (char)ch;
    }
    if (n % 4 != 0 || pad > 2) {
        rc = K8S_EINVAL;
        goto out;
    }
    data = malloc(n / 4 * 3 + 1);
    if (!data) {
        rc = K8S_ENOMEM;
        goto out;
    }
    got = n ? EVP_DecodeBlock(data, (const unsigned char *)clean, (int)n) : 0;
    if (got < 0 || (size_t)got < pad) {
        rc = K8S_EINVAL;
        goto out;
    }
    out->len = (size_t)got - pad;
    data[out->len] = '\0';
    out->data = data;
    data = NULL;
out:
    if (clean) {
        OPENSSL_cleanse(clean, len + 1);
        free(clean);
    }
    if (data) {
        OPENSSL_cleanse(data, n / 4 * 3 + 1);
        free(data);
    }
    return rc;
}

/* dir + "/" + rel, or rel itself when it is absolute. NULL on ENOMEM. */
static char *path_join(const char *dir, const char *rel)
{
    size_t n = strlen(dir);

    if (rel[0] == '/')
        return strdup(rel);
    if (n && dir[n - 1] == '/')
        return str_printf("%s%s", dir, rel);
    return str_printf("%s/%s", dir, rel);
}

/*
 * The absolute folder of path (not resolving symlinks, like Go's
 * filepath.Abs). Returns K8S_ENOMEM, or K8S_ECONFIG when the current folder
 * cannot be found for a relative path.
 */
static int abs_dir(const char *path, char **out, k8s_err *err)
{
    const char *slash = strrchr(path, '/');
    char cwd[PATH_MAX];

    *out = NULL;
    if (path[0] == '/') {
        *out = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
    } else {
        if (!getcwd(cwd, sizeof(cwd)))
            return k8s_err_set(err, K8S_ECONFIG, "kubeconfig %s: cannot find the current folder: %s",
                               path, strerror(errno));
        if (!slash)
            *out = strdup(cwd);
        else
            *out = str_printf("%s%s%.*s", cwd, strcmp(cwd, "/") ? "/" : "",
                              (int)(slash - path), path);
    }
    return *out ? K8S_OK : k8s_err_set(err, K8S_ENOMEM, "out of memory");
}

/* Fill err with "kubeconfig <path>: <message>"; returns rc. */
static int kc_err(k8s_err *err, int rc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int kc_err(k8s_err *err, int rc, const char *path, const char *fmt, ...)
{
    char msg[900];
    va_list ap;

    if (rc == K8S_ENOMEM)
        return k8s_err_set(err, rc, "kubeconfig %s: out of memory", path);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return k8s_err_set(err, rc, "kubeconfig %s: %s", path, msg);
}

/* ------------------------------------------------------- YAML accessors */

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a string";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

/* Absent, or a plain null scalar ("", ~, null). */
static int is_null(const yaml_node_t *n)
{
    const char *v;

    if (!n)
        return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* map[key], or NULL when map is NULL/not a mapping or has no such key. */
static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
    size_t klen = strlen(key);

    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == klen &&
            !memcmp(k->data.scalar.value, key, klen))
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* "kubeconfig <path>: line N: <where>: <field>: expected X, not Y" */
static int type_err(k8s_err *err, const kc_file *f, const yaml_node_t *n,
                    const char *where, const char *field, const char *expected)
{
    return kc_err(err, K8S_ECONFIG, f->path, "line %lu: %s%s%s: expected %s, not %s",
                  (unsigned long)n->start_mark.line + 1, where, *where ? ": " : "",
                  field, expected, node_kind(n));
}

/*
 * *out = the string map[key], or NULL when it is absent or null. K8S_ECONFIG
 * when it is not a scalar or holds a NUL character. *out points into the
 * document.
 */
static int get_str(const kc_file *f, yaml_node_t *map, const char *key,
                   const char *where, const char **out, k8s_err *err)
{
    yaml_node_t *n = map_get((yaml_document_t *)&f->doc, map, key);

    *out = NULL;
    if (is_null(n))
        return K8S_OK;
    if (n->type != YAML_SCALAR_NODE)
        return type_err(err, f, n, where, key, "a string");
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return kc_err(err, K8S_ECONFIG, f->path, "line %lu: %s%s%s: contains a NUL character",
                      (unsigned long)n->start_mark.line + 1, where, *where ? ": " : "", key);
    *out = (const char *)n->data.scalar.value;
    return K8S_OK;
}

/* A YAML 1.1 boolean (as Go's yaml reads them); absent/null is false. */
static int get_bool(const kc_file *f, yaml_node_t *map, const char *key,
                    const char *where, int *out, k8s_err *err)
{
    static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES",
                                       "y", "Y", "on", "On", "ON", NULL };
    static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO",
                                      "n", "N", "off", "Off", "OFF", NULL };
    yaml_node_t *n = map_get((yaml_document_t *)&f->doc, map, key);

    *out = 0;
    if (is_null(n))
        return K8S_OK;
    if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        const char *v = (const char *)n->data.scalar.value;
        for (size_t i = 0; yes[i]; i++)
            if (!strcmp(v, yes[i])) {
                *out = 1;
                return K8S_OK;
            }
        for (size_t i = 0; no[i]; i++)
            if (!strcmp(v, no[i]))
                return K8S_OK;
    }
    return kc_err(err, K8S_ECONFIG, f->path, "line %lu: %s: %s: expected true or false",
                  (unsigned long)n->start_mark.line + 1, where, key);
}

/* ---------------------------------------------------------- the files */

static void set_release(kc_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->files[i].path);
        free(set->files[i].dir);
        if (set->files[i].have_doc)
            yaml_document_delete(&set->files[i].doc);
    }
    free(set->files);
    set->files = NULL;
    set->n = 0;
}

/*
 * Check the shape kubectl insists on: a mapping at the top; clusters, users
 * and contexts lists of mappings with a string name, each name once, and a
 * mapping under cluster/user/context; current-context a string.
 */
static int validate_file(const kc_file *f, k8s_err *err)
{
    static const char *const lists[][2] = {
        { "clusters", "cluster" }, { "users", "user" }, { "contexts", "context" },
    };
    yaml_document_t *d = (yaml_document_t *)&f->doc;
    yaml_node_t *root = yaml_document_get_root_node(d);
    const char *s;
    int rc;

    if (is_null(root))
        return K8S_OK;
    if (root->type != YAML_MAPPING_NODE)
        return kc_err(err, K8S_ECONFIG, f->path, "expected a mapping at the top level, not %s",
                      node_kind(root));
    rc = get_str(f, root, "current-context", "", &s, err);
    if (rc)
        return rc;
    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        yaml_node_t *seq = map_get(d, root, lists[l][0]);
        if (is_null(seq))
            continue;
        if (seq->type != YAML_SEQUENCE_NODE)
            return type_err(err, f, seq, "", lists[l][0], "a list");
        for (yaml_node_item_t *it = seq->data.sequence.items.start;
             it < seq->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(d, *it), *inner;
            const char *name;
            char where[64];

            snprintf(where, sizeof(where), "%s[%d]", lists[l][0],
                     (int)(it - seq->data.sequence.items.start));
            if (!e || e->type != YAML_MAPPING_NODE)
                return kc_err(err, K8S_ECONFIG, f->path, "line %lu: %s: expected a mapping, not %s",
                              e ? (unsigned long)e->start_mark.line + 1 : 0UL, where,
                              e ? node_kind(e) : "nothing");
            rc = get_str(f, e, "name", where, &name, err);
            if (rc)
                return rc;
            inner = map_get(d, e, lists[l][1]);
            if (!is_null(inner) && inner->type != YAML_MAPPING_NODE)
                return type_err(err, f, inner, where, lists[l][1], "a mapping");
            if (!name)
                continue;
            for (yaml_node_item_t *o = seq->data.sequence.items.start; o < it; o++) {
                const char *other;
                if (get_str(f, yaml_document_get_node(d, *o), "name", "", &other, err) == K8S_OK &&
                    other && !strcmp(other, name))
                    return kc_err(err, K8S_ECONFIG, f->path, "line %lu: %s: duplicate name \"%s\"",
                                  (unsigned long)e->start_mark.line + 1, lists[l][0], name);
            }
        }
    }
    return K8S_OK;
}

/*
 * Read, parse and check one kubeconfig and append it to set. optional: a
 * file that does not exist is skipped (a $KUBECONFIG entry). Returns
 * K8S_ECONFIG naming the file, or K8S_ENOMEM.
 */
static int set_add(kc_set *set, const char *path, int optional, k8s_err *err)
{
    yaml_parser_t parser;
    int have_parser = 0, rc = K8S_OK;
    k8s_blob text = { 0 };
    kc_file *f, *files;
    k8s_err ferr;
    struct stat st;

    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->files[i].path, path))
            return K8S_OK;      /* listed twice: the first one counts */
    if (optional && stat(path, &st) != 0 && (errno == ENOENT || errno == ENOTDIR))
        return K8S_OK;
    rc = k8s__read_file(path, KUBECONFIG_CAP, &text, &ferr);
    if (rc) {
        if (rc == K8S_ENOMEM)
            return kc_err(err, rc, path, "out of memory");
        /* ferr: "<path>: <strerror>" or "<path>: larger than N bytes" */
        return k8s_err_set(err, K8S_ECONFIG, "kubeconfig %s", ferr.message);
    }
    files = realloc(set->files, (set->n + 1) * sizeof(*files));
    if (!files) {
        rc = kc_err(err, K8S_ENOMEM, path, "out of memory");
        goto out;
    }
    set->files = files;
    f = &set->files[set->n++];
    memset(f, 0, sizeof(*f));
    f->path = strdup(path);
    if (!f->path) {
        rc = kc_err(err, K8S_ENOMEM, path, "out of memory");
        goto out;
    }
    rc = abs_dir(path, &f->dir, err);
    if (rc)
        goto out;
    if (!yaml_parser_initialize(&parser)) {
        rc = kc_err(err, K8S_ENOMEM, path, "out of memory");
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, text.data, text.len);
    if (!yaml_parser_load(&parser, &f->doc)) {
        if (parser.error == YAML_MEMORY_ERROR)
            rc = kc_err(err, K8S_ENOMEM, path, "out of memory");
        else
            rc = kc_err(err, K8S_ECONFIG, path, "invalid YAML at line %lu, column %lu: %s%s%s",
                        (unsigned long)parser.problem_mark.line + 1,
                        (unsigned long)parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "syntax error",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        goto out;
    }
    f->have_doc = 1;
    rc = validate_file(f, err);
out:
    if (have_parser)
        yaml_parser_delete(&parser);
    k8s_blob_release(&text);
    return rc;
}

/*
 * The first file whose <list> has an entry named name: *file, and *inner =
 * that entry's <key> mapping (NULL when absent). Returns 0 when not found.
 */
static int find_entry(kc_set *set, const char *list, const char *key, const char *name,
                      kc_file **file, yaml_node_t **inner)
{
    for (size_t i = 0; i < set->n; i++) {
        kc_file *f = &set->files[i];
        yaml_node_t *seq;

        if (!f->have_doc)
            continue;
        seq = map_get(&f->doc, yaml_document_get_root_node(&f->doc), list);
        if (!seq || seq->type != YAML_SEQUENCE_NODE)
            continue;
        for (yaml_node_item_t *it = seq->data.sequence.items.start;
             it < seq->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(&f->doc, *it);
            yaml_node_t *n = map_get(&f->doc, e, "name");
            if (n && n->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)n->data.scalar.value, name)) {
                yaml_node_t *in = map_get(&f->doc, e, key);
                *file = f;
                *inner = is_null(in) ? NULL : in;
                return 1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------ entry loading */

/*
 * Fill blob from <key>-data (base64) or else from the file <key> (relative
 * to f's folder). Neither set: blob stays empty. Errors name the field and
 * the file, never the data.
 */
static int load_pem(const kc_file *f, yaml_node_t *map, const char *where,
                    const char *key, k8s_blob *blob, k8s_err *err)
{
    char data_key[64];
    const char *data, *file;
    char *path = NULL;
    k8s_err ferr;
    int rc;

    snprintf(data_key, sizeof(data_key), "%s-data", key);
    rc = get_str(f, map, data_key, where, &data, err);
    if (!rc)
        rc = get_str(f, map, key, where, &file, err);
    if (rc)
        goto out;
    if (data && *data) {
        rc = k8s_base64_decode(data, strlen(data), blob);
        if (rc == K8S_ENOMEM)
            rc = kc_err(err, rc, f->path, "out of memory");
        else if (rc)
            rc = kc_err(err, K8S_ECONFIG, f->path, "%s: %s is not valid base64", where, data_key);
        goto out;
    }
    if (!file || !*file)
        goto out;
    path = path_join(f->dir, file);
    if (!path) {
        rc = kc_err(err, K8S_ENOMEM, f->path, "out of memory");
        goto out;
    }
    rc = k8s__read_file(path, PEM_CAP, blob, &ferr);
    if (rc == K8S_ENOMEM) {
        rc = kc_err(err, rc, f->path, "out of memory");
    } else if (rc) {
        rc = kc_err(err, K8S_ECONFIG, f->path, "%s: %s %s", where, key, ferr.message);
    } else if (blob->len == 0) {
        k8s_blob_release(blob);
        rc = kc_err(err, K8S_ECONFIG, f->path, "%s: %s %s: file is empty", where, key, path);
    }
out:
    free(path);
    return rc;
}

static int load_cluster(const kc_file *f, const char *name, yaml_node_t *c,
                        k8s_config *cfg, k8s_err *err)
{
    const char *server, *tls_name, *proxy;
    char where[320];
    size_t n;
    int rc;

    snprintf(where, sizeof(where), "cluster \"%s\"", name);
    rc = get_str(f, c, "server", where, &server, err);
    if (!rc)
        rc = get_str(f, c, "tls-server-name", where, &tls_name, err);
    if (!rc)
        rc = get_str(f, c, "proxy-url", where, &proxy, err);
    if (!rc)
        rc = get_bool(f, c, "insecure-skip-tls-verify", where, &cfg->insecure_skip_tls_verify, err);
    if (rc)
        return rc;
    if (!server || !*server)
        return kc_err(err, K8S_ECONFIG, f->path, "%s has no server", where);
    if (proxy && *proxy)
        return kc_err(err, K8S_ECONFIG, f->path, "%s: proxy-url is not supported", where);
    cfg->server = strdup(server);
    if (!cfg->server)
        return kc_err(err, K8S_ENOMEM, f->path, "out of memory");
    n = strlen(cfg->server);
    while (n && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    if (!n)
        return kc_err(err, K8S_ECONFIG, f->path, "%s has no server", where);
    if (tls_name && *tls_name) {
        cfg->tls_server_name = strdup(tls_name);
        if (!cfg->tls_server_name)
            return kc_err(err, K8S_ENOMEM, f->path, "out of memory");
    }
    return load_pem(f, c, where, "certificate-authority", &cfg->ca, err);
}

/* A list of strings (null items are ""); *count items. */
static int check_str_list(const kc_file *f, yaml_node_t *seq, const char *where,
                          const char *field, size_t *count, k8s_err *err)
{
    *count = 0;
    if (is_null(seq))
        return K8S_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return type_err(err, f, seq, where, field, "a list");
    for (yaml_node_item_t *it = seq->data.sequence.items.start;
         it < seq->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node((yaml_document_t *)&f->doc, *it);
        if (e && !is_null(e) && e->type != YAML_SCALAR_NODE)
            return type_err(err, f, e, where, field, "a list of strings");
        (*count)++;
    }
    return K8S_OK;
}

/* users[].user.exec -> a k8s_exec_config (caller frees with k8s__exec_config_free). */
static int load_exec(const kc_file *f, const char *where, yaml_node_t *x,
                     k8s_exec_config **out, k8s_err *err)
{
    yaml_document_t *d = (yaml_document_t *)&f->doc;
    yaml_node_t *args, *env;
    const char *api, *cmd;
    k8s_exec_config *e = NULL;
    size_t nargs, nenv, i;
    char xwhere[340];
    int rc;

    *out = NULL;
    snprintf(xwhere, sizeof(xwhere), "%s: exec", where);
    if (x->type != YAML_MAPPING_NODE)
        return type_err(err, f, x, where, "exec", "a mapping");
    rc = get_str(f, x, "apiVersion", xwhere, &api, err);
    if (!rc)
        rc = get_str(f, x, "command", xwhere, &cmd, err);
    if (rc)
        goto out;
    if (!api || !*api) {
        rc = kc_err(err, K8S_ECONFIG, f->path, "%s: apiVersion is missing", xwhere);
        goto out;
    }
    if (!cmd || !*cmd) {
        rc = kc_err(err, K8S_ECONFIG, f->path, "%s: command is missing", xwhere);
        goto out;
    }
    args = map_get(d, x, "args");
    env = map_get(d, x, "env");
    rc = check_str_list(f, args, xwhere, "args", &nargs, err);
    if (rc)
        goto out;
    nenv = 0;
    if (!is_null(env)) {
        if (env->type != YAML_SEQUENCE_NODE) {
            rc = type_err(err, f, env, xwhere, "env", "a list");
            goto out;
        }
        nenv = (size_t)(env->data.sequence.items.top - env->data.sequence.items.start);
    }

    e = calloc(1, sizeof(*e));
    if (!e || !(e->api_version = strdup(api)) ||
        !(e->argv = calloc(nargs + 2, sizeof(char *))) ||
        !(e->env = calloc(nenv + 1, sizeof(char *)))) {
        rc = kc_err(err, K8S_ENOMEM, f->path, "out of memory");
        goto out;
    }
    /* client-go: a command with a '/' is relative to the kubeconfig's folder,
     * a bare name is looked up in PATH. */
    e->argv[0] = strchr(cmd, '/') ? path_join(f->dir, cmd) : strdup(cmd);
    if (!e->argv[0]) {
        rc = kc_err(err, K8S_ENOMEM, f->path, "out of memory");
        goto out;
    }
    for (i = 0; i < nargs; i++) {
        yaml_node_t *a = yaml_document_get_node(d, args->data.sequence.items.start[i]);
        const char *v = is_null(a) ? "" : (const char *)a->data.scalar.value;
        e->argv[i + 1] = strdup(v);
        if (!e->argv[i + 1]) {
            rc = kc_err(err, K8S_ENOMEM, f->path, "out of memory");
            goto out;
        }
    }
    for (i = 0; i < nenv; i++) {
        yaml_node_t *m = yaml_document_get_node(d, env->data.sequence.items.start[i]);
        const char *name, *value;
        char ewhere[sizeof(xwhere) + 32];

        snprintf(ewhere, sizeof(ewhere), "%s: env[%zu]", xwhere, i);
        if (!m || m->type != YAML_MAPPING_NODE) {
            rc = m ? type_err(err, f, m, xwhere, "env", "a list of {name, value}")
                   : kc_err(err, K8S_ECONFIG, f->path, "%s: not a mapping", ewhere);
            goto out;
        }
        rc = get_str(f, m, "name", ewhere, &name, err);
        if (!rc)
            rc = get_str(f, m, "value", ewhere, &value, err);
        if (rc)
            goto out;
        if (!name || !*name || strchr(name, '=')) {
            rc = kc_err(err, K8S_ECONFIG, f->path, "%s: name is missing or contains '='", ewhere);
            goto out;
        }
        e->env[i] = str_printf("%s=%s", name, value ? value : "");
        if (!e->env[i]) {
            rc = kc_err(err, K8S_ENOMEM, f->path, "out of memory");
            goto out;
        }
    }
    *out = e;
    e = NULL;
out:
    k8s__exec_config_free(e);
    return rc;
}

static int load_user(const kc_file *f, const char *name, yaml_node_t *u,
                     k8s_config *cfg, k8s_err *err)
{
    static const char *const unsupported[][2] = {
        { "username", "basic authentication (username/password) is not supported" },
        { "password", "basic authentication (username/password) is not supported" },
        { "auth-provider", "auth-provider is not supported (use an exec credential plugin)" },
        { "as", "impersonation (as) is not supported" },
        { "as-uid", "impersonation (as-uid) is not supported" },
        { "as-groups", "impersonation (as-groups) is not supported" },
        { "as-user-extra", "impersonation (as-user-extra) is not supported" },
    };
    yaml_document_t *d = (yaml_document_t *)&f->doc;
    const char *token, *token_file;
    yaml_node_t *x;
    char where[320];
    int rc, fd;

    snprintf(where, sizeof(where), "user \"%s\"", name);
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
        if (!is_null(map_get(d, u, unsupported[i][0])))
            return kc_err(err, K8S_ECONFIG, f->path, "%s: %s", where, unsupported[i][1]);
    rc = load_pem(f, u, where, "client-certificate", &cfg->client_cert, err);
    if (!rc)
        rc = load_pem(f, u, where, "client-key", &cfg->client_key, err);
    if (rc)
        return rc;
    if (cfg->client_cert.len && !cfg->client_key.len)
        return kc_err(err, K8S_ECONFIG, f->path, "%s has a client certificate but no client key", where);
    if (cfg->client_key.len && !cfg->client_cert.len)
        return kc_err(err, K8S_ECONFIG, f->path, "%s has a client key but no client certificate", where);
    rc = get_str(f, u, "token", where, &token, err);
    if (!rc)
        rc = get_str(f, u, "tokenFile", where, &token_file, err);
    if (rc)
        return rc;
    if (token && *token) {
        cfg->token = strdup(token);
        if (!cfg->token)
            return kc_err(err, K8S_ENOMEM, f->path, "out of memory");
    }
    if (token_file && *token_file) {
        cfg->token_file = path_join(f->dir, token_file);
        if (!cfg->token_file)
            return kc_err(err, K8S_ENOMEM, f->path, "out of memory");
        /* Only check it can be read: the client reads it (and re-reads it). */
        fd = open(cfg->token_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return kc_err(err, K8S_ECONFIG, f->path, "%s: tokenFile %s: %s", where,
                          cfg->token_file, strerror(errno));
        close(fd);
    }
    x = map_get(d, u, "exec");
    if (!is_null(x))
        return load_exec(f, where, x, &cfg->exec, err);
    return K8S_OK;
}

/* Join the set's file names with ':' into cfg->source. */
static int set_source(const kc_set *set, k8s_config *cfg, k8s_err *err)
{
    size_t n = 0;
    char *p;

    for (size_t i = 0; i < set->n; i++)
        n += strlen(set->files[i].path) + 1;
    cfg->source = p = malloc(n ? n : 1);
    if (!p)
        return k8s_err_set(err, K8S_ENOMEM, "kubeconfig: out of memory");
    *p = '\0';
    for (size_t i = 0; i < set->n; i++) {
        size_t l = strlen(set->files[i].path);
        if (i)
            *p++ = ':';
        memcpy(p, set->files[i].path, l + 1);
        p += l;
    }
    return K8S_OK;
}

/* Pick the context from the loaded files and fill cfg from it. */
static int resolve(kc_set *set, const char *context, k8s_config *cfg, k8s_err *err)
{
    kc_file *cf = NULL, *clf = NULL, *uf = NULL;
    yaml_node_t *ctx = NULL, *cluster = NULL, *user = NULL;
    const char *cluster_name, *user_name, *ns;
    char where[320];
    int rc;

    rc = set_source(set, cfg, err);
    if (rc)
        return rc;
    if (!context || !*context) {
        context = NULL;
        for (size_t i = 0; i < set->n && !context; i++) {
            const char *cc;
            kc_file *f = &set->files[i];
            rc = get_str(f, yaml_document_get_root_node(&f->doc), "current-context", "",
                         &cc, err);
            if (rc)
                return rc;
            if (cc && *cc)
                context = cc;
        }
        if (!context)
            return kc_err(err, K8S_ECONFIG, cfg->source,
                          "current-context is not set and no context was given");
    }
    if (!find_entry(set, "contexts", "context", context, &cf, &ctx))
        return kc_err(err, K8S_ECONFIG, cfg->source, "context \"%s\" not found", context);
    cfg->context = strdup(context);
    if (!cfg->context)
        return kc_err(err, K8S_ENOMEM, cfg->source, "out of memory");

    snprintf(where, sizeof(where), "context \"%s\"", context);
    rc = get_str(cf, ctx, "cluster", where, &cluster_name, err);
    if (!rc)
        rc = get_str(cf, ctx, "user", where, &user_name, err);
    if (!rc)
        rc = get_str(cf, ctx, "namespace", where, &ns, err);
    if (rc)
        return rc;
    cfg->namespace = strdup(ns && *ns ? ns : "default");
    if (!cfg->namespace)
        return kc_err(err, K8S_ENOMEM, cf->path, "out of memory");

    if (!cluster_name || !*cluster_name)
        return kc_err(err, K8S_ECONFIG, cf->path, "%s has no cluster", where);
    if (!find_entry(set, "clusters", "cluster", cluster_name, &clf, &cluster))
        return kc_err(err, K8S_ECONFIG, cfg->source, "%s refers to cluster \"%s\", which is not defined",
                      where, cluster_name);
    rc = load_cluster(clf, cluster_name, cluster, cfg, err);
    if (rc)
        return rc;

    if (!user_name || !*user_name)
        return K8S_OK;      /* anonymous, as kubectl allows */
    if (!find_entry(set, "users", "user", user_name, &uf, &user))
        return kc_err(err, K8S_ECONFIG, cfg->source, "%s refers to user \"%s\", which is not defined",
                      where, user_name);
    return load_user(uf, user_name, user, cfg, err);
}

/* ------------------------------------------------------------- public */

void k8s_config_release(k8s_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->server);
    free(cfg->tls_server_name);
    k8s_blob_release(&cfg->ca);
    k8s_blob_release(&cfg->client_cert);
    k8s_blob_release(&cfg->client_key);
    k8s__secret_free(cfg->token);
    free(cfg->token_file);
    k8s__exec_config_free(cfg->exec);
    free(cfg->namespace);
    free(cfg->context);
    free(cfg->source);
    memset(cfg, 0, sizeof(*cfg));
}

/* Whether the in-cluster environment variables are set. */
static int in_cluster_env(void)
{
    const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");
    return h && *h && p && *p;
}

/*
 * Add the $KUBECONFIG files to set. Returns K8S_OK with set->n == 0 when the
 * list names no file at all (e.g. ":"), K8S_ECONFIG when it names files of
 * which none exists.
 */
static int add_env_files(kc_set *set, const char *list, k8s_err *err)
{
    const char *p = list;
    int rc = K8S_OK, named = 0;

    while (*p) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n) {
            char *path = strndup(p, n);
            if (!path)
                return k8s_err_set(err, K8S_ENOMEM, "$KUBECONFIG: out of memory");
            named = 1;
            rc = set_add(set, path, 1, err);
            free(path);
            if (rc)
                return rc;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    if (named && set->n == 0)
        return k8s_err_set(err, K8S_ECONFIG, "no kubeconfig found: none of the files in "
                           "$KUBECONFIG (%s) exists", list);
    return K8S_OK;
}

int k8s_config_load(k8s_config *cfg, const char *kubeconfig, const char *context,
                    k8s_err *err)
{
    kc_set set = { NULL, 0 };
    k8s_err local;
    const char *env, *home;
    char *home_cfg = NULL;
    int rc = K8S_OK;

    if (!err)
        err = &local;
    k8s_err_clear(err);
    if (!cfg)
        return k8s_err_set(err, K8S_EINVAL, "k8s_config_load: no config to fill");
    memset(cfg, 0, sizeof(*cfg));

    if (kubeconfig) {
        if (!*kubeconfig) {
            rc = k8s_err_set(err, K8S_EINVAL, "kubeconfig: empty file name");
            goto out;
        }
        rc = set_add(&set, kubeconfig, 0, err);
        if (rc)
            goto out;
    } else if ((env = getenv("KUBECONFIG")) && *env) {
        rc = add_env_files(&set, env, err);
        if (rc)
            goto out;
    }
    if (!kubeconfig && set.n == 0) {
        struct stat st;

        home = getenv("HOME");
        if (home && *home) {
            home_cfg = path_join(home, ".kube/config");
            if (!home_cfg) {
                rc = k8s_err_set(err, K8S_ENOMEM, "kubeconfig: out of memory");
                goto out;
            }
            if (stat(home_cfg, &st) == 0) {
                rc = set_add(&set, home_cfg, 0, err);
                if (rc)
                    goto out;
            }
        }
        if (set.n == 0) {
            if (in_cluster_env()) {
                rc = k8s_config_load_incluster(cfg, "/", err);
                goto out;
            }
            rc = k8s_err_set(err, K8S_ECONFIG,
                             "no configuration found: no kubeconfig given, $KUBECONFIG not set, "
                             "%s%s, and not running in a cluster "
                             "(KUBERNETES_SERVICE_HOST/PORT not set)",
                             home_cfg ? home_cfg : "$HOME not set",
                             home_cfg ? " does not exist" : "");
            goto out;
        }
    }
    rc = resolve(&set, context, cfg, err);
out:
    free(home_cfg);
    set_release(&set);
    if (rc)
        k8s_config_release(cfg);
    return rc;
}

/* "<what> <path>: <problem>" for an in-cluster file. */
static int sa_err(k8s_err *err, int rc, const char *what, const k8s_err *ferr)
{
    if (rc == K8S_ENOMEM)
        return k8s_err_set(err, rc, "in-cluster: out of memory");
    return k8s_err_set(err, K8S_ECONFIG, "in-cluster: %s %s", what, ferr->message);
}

int k8s_config_load_incluster(k8s_config *cfg, const char *root, k8s_err *err)
{
    const char *host, *port;
    char *dir = NULL, *path = NULL;
    k8s_blob ns = { 0 };
    k8s_err local, ferr;
    struct stat st;
    size_t b, e;
    int rc = K8S_OK, fd;

    if (!err)
        err = &local;
    k8s_err_clear(err);
    if (!cfg)
        return k8s_err_set(err, K8S_EINVAL, "k8s_config_load_incluster: no config to fill");
    memset(cfg, 0, sizeof(*cfg));
    host = getenv("KUBERNETES_SERVICE_HOST");
    port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port) {
        rc = k8s_err_set(err, K8S_ECONFIG,
                         "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT not set");
        goto out;
    }
    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5) {
        rc = k8s_err_set(err, K8S_ECONFIG, "in-cluster: KUBERNETES_SERVICE_PORT \"%.16s\" "
                         "is not a port number", port);
        goto out;
    }
    if (strchr(host, ':') && host[0] != '[')
        cfg->server = str_printf("https://[%s]:%s", host, port);
    else
        cfg->server = str_printf("https://%s:%s", host, port);
    cfg->source = strdup("in-cluster");
    dir = path_join(root && *root ? root : "/", SA_DIR);
    if (!cfg->server || !cfg->source || !dir) {
        rc = k8s_err_set(err, K8S_ENOMEM, "in-cluster: out of memory");
        goto out;
    }

    /* token: must be readable now; the client re-reads it (bound tokens expire) */
    cfg->token_file = path_join(dir, "token");
    if (!cfg->token_file) {
        rc = k8s_err_set(err, K8S_ENOMEM, "in-cluster: out of memory");
        goto out;
    }
    fd = open(cfg->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = k8s_err_set(err, K8S_ECONFIG, "in-cluster: service account token %s: %s",
                         cfg->token_file, strerror(errno));
        goto out;
    }
    close(fd);

    path = path_join(dir, "ca.crt");
    if (!path) {
        rc = k8s_err_set(err, K8S_ENOMEM, "in-cluster: out of memory");
        goto out;
    }
    rc = k8s__read_file(path, PEM_CAP, &cfg->ca, &ferr);
    if (rc) {
        rc = sa_err(err, rc, "service account CA", &ferr);
        goto out;
    }
    if (cfg->ca.len == 0) {
        rc = k8s_err_set(err, K8S_ECONFIG, "in-cluster: service account CA %s: file is empty", path);
        goto out;
    }
    free(path);

    /* namespace: optional */
    path = path_join(dir, "namespace");
    if (!path) {
        rc = k8s_err_set(err, K8S_ENOMEM, "in-cluster: out of memory");
        goto out;
    }
    if (stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) {
        rc = k8s__read_file(path, NAMESPACE_CAP, &ns, &ferr);
        if (rc) {
            rc = sa_err(err, rc, "service account namespace", &ferr);
            goto out;
        }
    }
    b = 0;
    e = ns.len;
    while (b < e && isspace((unsigned char)ns.data[b]))
        b++;
    while (e > b && isspace((unsigned char)ns.data[e - 1]))
        e--;
    cfg->namespace = e > b ? strndup((const char *)ns.data + b, e - b) : strdup("default");
    if (!cfg->namespace) {
        rc = k8s_err_set(err, K8S_ENOMEM, "in-cluster: out of memory");
        goto out;
    }
out:
    free(dir);
    free(path);
    k8s_blob_release(&ns);
    if (rc)
        k8s_config_release(cfg);
    return rc;
}
