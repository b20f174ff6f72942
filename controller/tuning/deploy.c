/*
 * deploy.c - pure helpers over a Deployment's JSON: which container, its
 * config.ns, its arguments and the JSON patch that changes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "tuning_int.h"

int tqu_tt_container(const cJSON *d, const char *want)
{
    const cJSON *cs = k8s_json_get(d, "spec", "template", "spec", "containers", NULL), *c;
    const char *dname = k8s_json_str(d, "metadata", "name", NULL);
    int i = 0, n = cJSON_GetArraySize(cs), like = -1;
    cJSON_ArrayForEach(c, cs) {
        const char *cn = k8s_json_str(c, "name", NULL);
        if (want && want[0]) {
            if (cn && !strcmp(cn, want))
                return i;
        } else if (cn && dname && !strcmp(cn, dname)) {
            like = i;
        }
        i++;
    }
    if (want && want[0])
        return -1;
    if (n == 1)
        return 0;
    return like;
}

/* "-config.ns=x" / "--config.ns=x": x; "-config.ns"/"--config.ns": "" and
 * *split = 1 (the value is the next argument). NULL if not it. */
static const char *config_ns_arg(const char *a, int *split)
{
    *split = 0;
    if (a[0] != '-')
        return NULL;
    a += a[1] == '-' ? 2 : 1;
    if (strncmp(a, "config.ns", 9))
        return NULL;
    if (a[9] == '=')
        return a + 10;
    if (!a[9]) {
        *split = 1;
        return "";
    }
    return NULL;
}

struct found {
    char vals[4][256];
    int n;
};

static void add(struct found *f, const char *v, size_t l)
{
    char buf[256];
    if (!l || l >= sizeof(buf))
        return;
    memcpy(buf, v, l);
    buf[l] = '\0';
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->vals[i], buf))
            return;
    if (f->n < 4)
        snprintf(f->vals[f->n], sizeof(f->vals[0]), "%s", buf);
    f->n++;
}

/* Every -config.ns value inside a text (an env value holding flags). */
static void scan_text(struct found *f, const char *s)
{
    for (const char *p = s; (p = strstr(p, "config.ns")) != NULL; p += 9) {
        if (p == s || p[-1] != '-' || (p[9] != '=' && p[9] != ' '))
            continue;
        const char *v = p + 10;
        add(f, v, strcspn(v, " \t\"'"));
    }
}

int tqu_tt_find_config_ns(const cJSON *d, int cidx, char *out, size_t len)
{
    struct found f;
    const cJSON *c = cJSON_GetArrayItem(k8s_json_get(d, "spec", "template", "spec", "containers", NULL), cidx);
    const cJSON *a, *e;
    int split = 0;
    memset(&f, 0, sizeof(f));
    const char *lists[2] = { "command", "args" };
    for (int l = 0; l < 2; l++) {
        cJSON_ArrayForEach(a, k8s_json_get(c, lists[l], NULL)) {
            if (!cJSON_IsString(a))
                continue;
            if (split) {
                add(&f, a->valuestring, strlen(a->valuestring));
                split = 0;
                continue;
            }
            const char *v = config_ns_arg(a->valuestring, &split);
            if (v && !split)
                add(&f, v, strlen(v));
        }
        split = 0;
    }
    cJSON_ArrayForEach(e, k8s_json_get(c, "env", NULL)) {
        const char *n = k8s_json_str(e, "name", NULL), *v = k8s_json_str(e, "value", NULL);
        if (!n || !v)
            continue;
        if (!strcasecmp(n, "CONFIG_NS") || !strcasecmp(n, "config.ns") || !strcasecmp(n, "CONFIG.NS"))
            add(&f, v, strlen(v));
        else
            scan_text(&f, v);
    }
    const cJSON *ann[2] = { k8s_json_get(d, "metadata", "annotations", NULL),
                            k8s_json_get(d, "spec", "template", "metadata", "annotations", NULL) };
    for (int i = 0; i < 2; i++)
        cJSON_ArrayForEach(a, ann[i]) {
            size_t kl = a->string ? strlen(a->string) : 0;
            if (cJSON_IsString(a) && kl >= 9 && !strcmp(a->string + kl - 9, "config.ns") &&
                (kl == 9 || a->string[kl - 10] == '/' || a->string[kl - 10] == '.'))
                add(&f, a->valuestring, strlen(a->valuestring));
        }
    /* the vendor's objects carry it as a label too */
    const cJSON *lab[2] = { k8s_json_get(d, "metadata", "labels", NULL),
                            k8s_json_get(d, "spec", "template", "metadata", "labels", NULL) };
    for (int i = 0; i < 2; i++) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(lab[i], "config.ns");
        if (cJSON_IsString(l))
            add(&f, l->valuestring, strlen(l->valuestring));
    }
    if (f.n && len)
        snprintf(out, len, "%s", f.vals[0]);
    return f.n;
}

/* Whether a is -name or --name, with or without =value. */
static int is_arg(const char *a, const char *name)
{
    size_t n = strlen(name);
    if (a[0] != '-')
        return 0;
    a += a[1] == '-' ? 2 : 1;
    return !strncmp(a, name, n) && (a[n] == '=' || !a[n]);
}

int tqu_tt_arg_find(const cJSON *args, const char *name, char *buf, size_t len)
{
    const cJSON *a;
    int i = 0;
    cJSON_ArrayForEach(a, args) {
        if (cJSON_IsString(a) && is_arg(a->valuestring, name)) {
            if (len)
                snprintf(buf, len, "%s", a->valuestring);
            return i;
        }
        i++;
    }
    return -1;
}

cJSON *tqu_tt_args_set(const cJSON *args, const char *name, const char *token)
{
    cJSON *out = cJSON_CreateArray();
    const cJSON *a;
    int done = 0;
    if (!out)
        return NULL;
    cJSON_ArrayForEach(a, args) {
        cJSON *item;
        if (cJSON_IsString(a) && is_arg(a->valuestring, name)) {
            if (done || !token)
                continue;
            item = cJSON_CreateString(token);
            done = 1;
        } else {
            item = cJSON_Duplicate(a, 1);
        }
        if (k8s_json_append(out, item))
            goto nomem;
    }
    if (token && !done && k8s_json_append(out, cJSON_CreateString(token)))
        goto nomem;
    return out;
nomem:
    cJSON_Delete(out);
    return NULL;
}

cJSON *tqu_tt_args_patch(int cidx, const char *cname, const cJSON *cur, const cJSON *want)
{
    char path[128];
    cJSON *p = cJSON_CreateArray(), *t = cJSON_CreateObject(), *s = cJSON_CreateObject();
    int bad = !p || !t || !s;
    snprintf(path, sizeof(path), "/spec/template/spec/containers/%d/%s", cidx, cur ? "args" : "name");
    bad |= !cJSON_AddStringToObject(t, "op", "test") || !cJSON_AddStringToObject(t, "path", path);
    if (cur)
        bad |= k8s_json_put(t, "value", cJSON_Duplicate(cur, 1)) != 0;
    else
        bad |= !cJSON_AddStringToObject(t, "value", cname);
    snprintf(path, sizeof(path), "/spec/template/spec/containers/%d/args", cidx);
    bad |= !cJSON_AddStringToObject(s, "op", cur ? "replace" : "add") || !cJSON_AddStringToObject(s, "path", path);
    bad |= k8s_json_put(s, "value", cJSON_Duplicate(want, 1)) != 0;
    if (bad) {
        cJSON_Delete(p);
        cJSON_Delete(t);
        cJSON_Delete(s);
        return NULL;
    }
    cJSON_AddItemToArray(p, t);
    cJSON_AddItemToArray(p, s);
    return p;
}
