/*
 * spec.c - parse and check a TianqingRestore's spec (see spec.h). The CRD
 * refuses most malformed input already; this is the same rule for a
 * controller fed by another path (an older CRD, a test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"

/* A DNS-1123 name part: lower-case letters, digits, '-' and '.', 1-253. */
static int dns_name(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return 0;
    }
    return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

static int get_bool(const cJSON *o, const char *field, const char *key, int dflt, int *out, char *msg,
                    size_t len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        snprintf(msg, len, "%s.%s must be true or false", field, key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

int tqu_restore_spec_parse(const cJSON *obj, tqu_restore_spec *s, const char **reason, char *msg,
                           size_t len)
{
    const cJSON *spec = k8s_json_get(obj, "spec", NULL), *t, *d, *it;
    size_t i = 0;

    memset(s, 0, sizeof(*s));
    *reason = "InvalidSpec";
    if (!cJSON_IsObject(spec)) {
        snprintf(msg, len, "spec is missing");
        return -1;
    }
    s->upgrade = k8s_json_str(spec, "upgradeRef", "name", NULL);
    if (!s->upgrade || !dns_name(s->upgrade, strlen(s->upgrade))) {
        snprintf(msg, len, "spec.upgradeRef.name must name a TianqingUpgrade in this namespace");
        return -1;
    }
    if (get_bool(spec, "spec", "dryRun", 1, &s->dry_run, msg, len))
        return -1;
    t = cJSON_GetObjectItemCaseSensitive(spec, "targets");
    if (t && !cJSON_IsNull(t) && !cJSON_IsObject(t)) {
        snprintf(msg, len, "spec.targets must be an object");
        return -1;
    }
    if (get_bool(t, "spec.targets", "sabre", 1, &s->sabre, msg, len) || get_bool(t, "spec.targets", "cdn", 1, &s->cdn, msg, len) ||
        get_bool(t, "spec.targets", "updateScript", 1, &s->update_script, msg, len))
        return -1;
    d = cJSON_GetObjectItemCaseSensitive(t, "deployments");
    if (d && !cJSON_IsNull(d)) {
        int n = cJSON_GetArraySize(d);
        if (!cJSON_IsArray(d) || n > TQU_RESTORE_MAX_DEPLOYMENTS) {
            snprintf(msg, len, "spec.targets.deployments must be a list of at most %d \"namespace/name\" entries, or [\"*\"]",
                     TQU_RESTORE_MAX_DEPLOYMENTS);
            return -1;
        }
        if (n > 0 && !(s->deployments = calloc((size_t)n, sizeof(*s->deployments)))) {
            snprintf(msg, len, "out of memory");
            *reason = "OutOfMemory";
            return -1;
        }
        cJSON_ArrayForEach(it, d) {
            const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
            const char *slash = v ? strchr(v, '/') : NULL;
            if (v && !strcmp(v, "*")) {
                if (n != 1) {
                    snprintf(msg, len, "spec.targets.deployments: \"*\" (every Deployment of the backup) must be alone");
                    goto bad;
                }
                s->all_deployments = 1;
                continue;
            }
            if (!slash || !dns_name(v, (size_t)(slash - v)) || !dns_name(slash + 1, strlen(slash + 1))) {
                snprintf(msg, len, "spec.targets.deployments[%zu] must be \"namespace/name\" or \"*\"", i);
                goto bad;
            }
            s->deployments[s->ndeployments++] = v;
            i++;
        }
    }
    if (!s->sabre && !s->cdn && !s->update_script && !s->all_deployments && !s->ndeployments) {
        snprintf(msg, len, "spec.targets names nothing to restore");
        goto bad;
    }
    return 0;
bad:
    tqu_restore_spec_release(s);
    return -1;
}

void tqu_restore_spec_release(tqu_restore_spec *s)
{
    free(s->deployments);
    s->deployments = NULL;
    s->ndeployments = 0;
}
