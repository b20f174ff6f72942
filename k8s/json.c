/*
 * json.c - a few accessors over cJSON trees, so callers read the fields
 * they need from plain JSON instead of generated API models.
 */
#include <stdarg.h>
#include <stdlib.h>
#include "k8s.h"

static cJSON *vget(const cJSON *obj, va_list ap)
{
    const char *key;
    const cJSON *cur = obj;

    while ((key = va_arg(ap, const char *)) != NULL) {
        if (!cJSON_IsObject(cur))
            return NULL;
        cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        if (!cur)
            return NULL;
    }
    return (cJSON *)cur;
}

cJSON *k8s_json_get(const cJSON *obj, ...)
{
    cJSON *r;
    va_list ap;
    va_start(ap, obj);
    r = vget(obj, ap);
    va_end(ap);
    return r;
}

const char *k8s_json_str(const cJSON *obj, ...)
{
    cJSON *r;
    va_list ap;
    va_start(ap, obj);
    r = vget(obj, ap);
    va_end(ap);
    return cJSON_IsString(r) ? r->valuestring : NULL;
}

long long k8s_json_int(const cJSON *obj, long long dflt, ...)
{
    cJSON *r;
    va_list ap;
    va_start(ap, dflt);
    r = vget(obj, ap);
    va_end(ap);
    return cJSON_IsNumber(r) ? (long long)r->valuedouble : dflt;
}

int k8s_json_bool(const cJSON *obj, int dflt, ...)
{
    cJSON *r;
    va_list ap;
    va_start(ap, dflt);
    r = vget(obj, ap);
    va_end(ap);
    if (cJSON_IsTrue(r))
        return 1;
    if (cJSON_IsFalse(r))
        return 0;
    return dflt;
}

int k8s_json_put(cJSON *obj, const char *key, cJSON *item)
{
    cJSON_bool ok;
    if (!item)
        return K8S_ENOMEM;
    if (!obj || !key) {
        cJSON_Delete(item);
        return K8S_EINVAL;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        ok = cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    else
        ok = cJSON_AddItemToObject(obj, key, item);
    if (!ok) {
        cJSON_Delete(item);
        return K8S_ENOMEM;
    }
    return K8S_OK;
}

int k8s_json_append(cJSON *arr, cJSON *item)
{
    if (!item)
        return K8S_ENOMEM;
    if (!arr || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return K8S_ENOMEM;
    }
    return K8S_OK;
}

int k8s_json_parse(const char *s, size_t len, cJSON **out, k8s_err *err)
{
    const char *end = NULL;
    cJSON *j;

    *out = NULL;
    j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (!j) {
        /* cJSON reports no distinct out-of-memory: it returns NULL with the
         * error pointer at the start for ENOMEM, past it for bad syntax. */
        size_t at = end && end >= s ? (size_t)(end - s) : 0;
        return k8s_err_set(err, K8S_EPARSE, "malformed JSON at byte %zu of %zu", at, len);
    }
    *out = j;
    return K8S_OK;
}

char *k8s_json_print(const cJSON *obj)
{
    return cJSON_PrintUnformatted(obj);
}

void k8s_json_init_hooks(void *(*m)(size_t), void (*f)(void *))
{
    cJSON_Hooks h = { m, f };
    cJSON_InitHooks(&h);
}
