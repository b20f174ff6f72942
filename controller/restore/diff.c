/*
 * diff.c - server-set fields stripped, and a field-level diff (diff.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "diff.h"

static const char *const server_set[] = {
    "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink",
    "deletionTimestamp", "deletionGracePeriodSeconds", NULL,
};

void tqu_restore_strip(cJSON *obj)
{
    cJSON *md, *ann, *spec;
    const char *kind;

    if (!cJSON_IsObject(obj))
        return;
    md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    for (const char *const *f = server_set; *f; f++)
        cJSON_DeleteItemFromObjectCaseSensitive(md, *f);
    ann = cJSON_GetObjectItemCaseSensitive(md, "annotations");
    cJSON_DeleteItemFromObjectCaseSensitive(ann, "deployment.kubernetes.io/revision");
    if (ann && !ann->child)
        cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
    kind = k8s_json_str(obj, "kind", NULL);
    spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (kind && !strcmp(kind, "Service")) {
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "clusterIP");
        cJSON_DeleteItemFromObjectCaseSensitive(spec, "clusterIPs");
    }
}

struct walk {
    cJSON *paths;
    int found;
    int nomem;
};

static void add(struct walk *w, const char *path)
{
    w->found++;
    if (w->found > TQU_RESTORE_MAX_PATHS || w->nomem)
        return;
    if (k8s_json_append(w->paths, cJSON_CreateString(path[0] ? path : ".")))
        w->nomem = 1;
}

/* A member name as a path part: .name, or ["name"] when it holds other
 * characters than letters, digits, '_' and '-'. */
static void member(char *buf, size_t len, const char *base, const char *key)
{
    int plain = key[0] != '\0';
    for (const char *p = key; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            plain = 0;
    if (plain)
        snprintf(buf, len, "%s%s%s", base, base[0] ? "." : "", key);
    else
        snprintf(buf, len, "%s[\"%s\"]", base, key);
}

static void walk(struct walk *w, const cJSON *a, const cJSON *b, const char *path)
{
    char sub[2048];
    const cJSON *it;

    if (w->nomem)
        return;
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        cJSON_ArrayForEach(it, a) {
            const cJSON *other = cJSON_GetObjectItemCaseSensitive(b, it->string);
            member(sub, sizeof(sub), path, it->string);
            if (!other)
                add(w, sub);
            else
                walk(w, it, other, sub);
        }
        cJSON_ArrayForEach(it, b) {
            if (!cJSON_GetObjectItemCaseSensitive(a, it->string)) {
                member(sub, sizeof(sub), path, it->string);
                add(w, sub);
            }
        }
        return;
    }
    if (cJSON_IsArray(a) && cJSON_IsArray(b) && cJSON_GetArraySize(a) == cJSON_GetArraySize(b)) {
        const cJSON *x = a->child, *y = b->child;
        for (int i = 0; x && y; i++, x = x->next, y = y->next) {
            snprintf(sub, sizeof(sub), "%s[%d]", path, i);
            walk(w, x, y, sub);
        }
        return;
    }
    if (!cJSON_Compare(a, b, 1))
        add(w, path);
}

int tqu_restore_diff(const cJSON *want, const cJSON *have, cJSON *paths)
{
    cJSON *a = cJSON_Duplicate(want, 1), *b = cJSON_Duplicate(have, 1);
    struct walk w = { .paths = paths };
    int rc;

    if ((want && !a) || (have && !b)) {
        rc = -1;
        goto out;
    }
    tqu_restore_strip(a);
    tqu_restore_strip(b);
    walk(&w, a, b, "");
    rc = w.nomem ? -1 : w.found;
out:
    cJSON_Delete(a);
    cJSON_Delete(b);
    return rc;
}
