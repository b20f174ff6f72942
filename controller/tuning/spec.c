/*
 * spec.c - parse and check a TianqingTuning's spec: a specific reason and
 * message for every invalid value (the CRD refuses most of them first;
 * these hold for a CRD applied without its schema, or an older one).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"

#define FAIL(r, ...) do { *reason = (r); snprintf(msg, len, __VA_ARGS__); return -1; } while (0)

time_t tqu_tt_parse_time(const char *s)
{
    struct tm tm;
    const char *p;
    long off = 0;

    if (!s)
        return -1;
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 23 || mm > 59)
            return -1;
        off = sign * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    return timegm(&tm) - off;
}

/* A name for the API (DNS label or subdomain). */
static int dns_name(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '.'))
            return 0;
    return 1;
}

/* An etcd key part: printable, no space. */
static int key_text(const char *s)
{
    if (!s[0] || strlen(s) > 253)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '{' || *p == '}')
            return 0;
    return 1;
}

static int endpoint_ok(const char *e)
{
    const char *h;
    if (!strncmp(e, "http://", 7))
        h = e + 7;
    else if (!strncmp(e, "https://", 8))
        h = e + 8;
    else
        return 0;
    if (!*h || strlen(e) > 512)
        return 0;
    for (const char *p = h; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr(".:-[]", *p) || (*p == '/' && !p[1])))
            return 0;
    return 1;
}

/* A number field: present and in [lo, hi], or absent (*out = dflt). */
static int number(const cJSON *o, const char *k, long long lo, long long hi, long long dflt, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return -1;
    *out = (long long)v->valuedouble;
    return 0;
}

static const char *str_or(const cJSON *o, const char *k, const char *dflt)
{
    const char *s = k8s_json_str(o, k, NULL);
    return s ? s : dflt;
}

int tqu_tt_spec_parse(const cJSON *obj, tqu_tt_spec *s, const char **reason, char *msg, size_t len)
{
    const cJSON *spec = k8s_json_get(obj, "spec", NULL), *e, *v;
    memset(s, 0, sizeof(*s));
    if (!cJSON_IsObject(spec))
        FAIL("InvalidSpec", "spec is missing");

    /* etcd */
    const cJSON *etcd = k8s_json_get(spec, "etcd", NULL);
    if (!cJSON_IsObject(etcd))
        FAIL("InvalidEtcd", "spec.etcd is required (the endpoints of the Tianqing configuration etcd)");
    cJSON_ArrayForEach(e, k8s_json_get(etcd, "endpoints", NULL)) {
        if (s->n_endpoints >= TQU_TT_MAX_ENDPOINTS)
            FAIL("InvalidEtcd", "spec.etcd.endpoints: more than %d", TQU_TT_MAX_ENDPOINTS);
        if (!cJSON_IsString(e) || !endpoint_ok(e->valuestring))
            FAIL("InvalidEtcd", "spec.etcd.endpoints[%zu]: not an http:// or https://host:port URL", s->n_endpoints);
        s->endpoints[s->n_endpoints++] = e->valuestring;
    }
    if (!s->n_endpoints)
        FAIL("InvalidEtcd", "spec.etcd.endpoints: at least one endpoint is required");
    s->key_prefix = str_or(etcd, "keyPrefix", "da.skylar");
    if (!key_text(s->key_prefix))
        FAIL("InvalidEtcd", "spec.etcd.keyPrefix: \"%.64s\" is empty or has spaces, braces or control characters", s->key_prefix);
    s->tls_secret = k8s_json_str(etcd, "tlsSecretRef", "name", NULL);
    if (!s->tls_secret)
        s->tls_secret = "";
    if (s->tls_secret[0] && !dns_name(s->tls_secret))
        FAIL("InvalidEtcd", "spec.etcd.tlsSecretRef.name: \"%.64s\" is not a Secret name", s->tls_secret);

    /* rateLimit */
    const cJSON *rl = k8s_json_get(spec, "rateLimit", NULL);
    const cJSON *g = k8s_json_get(rl, "global", NULL);
    if (g) {
        s->has_global = 1;
        s->global_enabled = k8s_json_bool(g, 1, "enabled", NULL);
        if (number(g, "maxRequestPerUnit", 1, 1000000, 500, &s->global_max))
            FAIL("InvalidRateLimit", "spec.rateLimit.global.maxRequestPerUnit: a whole number from 1 to 1000000");
    }
    cJSON_ArrayForEach(v, k8s_json_get(rl, "services", NULL)) {
        int i = s->n_services;
        tqu_tt_service *sv = &s->services[i];
        if (i >= TQU_TT_MAX_SERVICES)
            FAIL("InvalidRateLimit", "spec.rateLimit.services: more than %d", TQU_TT_MAX_SERVICES);
        sv->ns = str_or(v, "namespace", "default");
        sv->deployment = str_or(v, "deployment", "");
        sv->container = str_or(v, "container", "");
        sv->config_ns = str_or(v, "configNamespace", "");
        if (!dns_name(sv->ns) || strlen(sv->ns) > 63)
            FAIL("InvalidRateLimit", "spec.rateLimit.services[%d].namespace: \"%.64s\" is not a namespace", i, sv->ns);
        if (!dns_name(sv->deployment))
            FAIL("InvalidRateLimit", "spec.rateLimit.services[%d].deployment: \"%.64s\" is not a Deployment name", i, sv->deployment);
        if (sv->container[0] && !dns_name(sv->container))
            FAIL("InvalidRateLimit", "spec.rateLimit.services[%d].container: \"%.64s\" is not a container name", i, sv->container);
        if (sv->config_ns[0] && !key_text(sv->config_ns))
            FAIL("InvalidRateLimit", "spec.rateLimit.services[%d].configNamespace: \"%.64s\" has spaces, braces or control characters", i, sv->config_ns);
        if (!cJSON_GetObjectItemCaseSensitive(v, "maxRequestPerUnit") ||
            number(v, "maxRequestPerUnit", 1, 1000000, 0, &sv->max_request_per_unit))
            FAIL("InvalidRateLimit", "spec.rateLimit.services[%d].maxRequestPerUnit: a whole number from 1 to 1000000 is required", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(s->services[j].ns, sv->ns) && !strcmp(s->services[j].deployment, sv->deployment))
                FAIL("InvalidRateLimit", "spec.rateLimit.services[%d]: %s/%s is listed twice", i, sv->ns, sv->deployment);
        s->n_services++;
    }

    /* edge2 */
    const cJSON *ed = k8s_json_get(spec, "edge2", NULL);
    if (ed && cJSON_GetObjectItemCaseSensitive(ed, "maxClients")) {
        s->has_edge2 = 1;
        s->edge2_ns = str_or(ed, "namespace", "default");
        s->edge2_deployment = str_or(ed, "deployment", "edge2");
        s->edge2_container = str_or(ed, "container", "");
        if (!dns_name(s->edge2_ns) || !dns_name(s->edge2_deployment))
            FAIL("InvalidEdge2", "spec.edge2: namespace and deployment must be names");
        if (s->edge2_container[0] && !dns_name(s->edge2_container))
            FAIL("InvalidEdge2", "spec.edge2.container: \"%.64s\" is not a container name", s->edge2_container);
        if (number(ed, "maxClients", 1, 1000000, 0, &s->edge2_max_clients))
            FAIL("InvalidEdge2", "spec.edge2.maxClients: a whole number from 1 to 1000000");
        for (int j = 0; j < s->n_services; j++)
            if (!strcmp(s->services[j].ns, s->edge2_ns) && !strcmp(s->services[j].deployment, s->edge2_deployment))
                FAIL("InvalidEdge2", "spec.edge2: %s/%s is also a rate-limited service; list it once", s->edge2_ns, s->edge2_deployment);
    }

    /* cdn */
    const cJSON *cdn = k8s_json_get(spec, "cdn", NULL);
    s->cdn_ns = str_or(cdn, "namespace", "default");
    s->cdn_deployment = str_or(cdn, "deployment", "darwin-cdn");
    if (number(cdn, "maxRequest", 1, 10000000, 0, &s->cdn_max_request))
        FAIL("InvalidCdn", "spec.cdn.maxRequest: a whole number from 1 to 10000000");
    s->cdn_disk_space = k8s_json_str(cdn, "diskSpace", NULL);
    if (s->cdn_disk_space) {
        const char *p = s->cdn_disk_space;
        size_t d = 0;
        while (isdigit((unsigned char)p[d]))
            d++;
        const char *u = p + d;
        int ok = d >= 1 && d <= 9 && p[0] != '0' &&
                 (!*u || (strchr("KMGT", u[0]) &&
                          (!u[1] || ((u[1] == 'i' || u[1] == 'B') && (!u[2] || (u[1] == 'i' && u[2] == 'B' && !u[3]))))));
        if (!ok)
            FAIL("InvalidCdn", "spec.cdn.diskSpace: \"%.32s\" is not a size such as 20G", p);
    }

    /* window */
    const cJSON *win = k8s_json_get(spec, "window", NULL);
    s->window_start_text = str_or(win, "start", "");
    s->window_end_text = str_or(win, "end", "");
    if (s->window_start_text[0] || s->window_end_text[0]) {
        if (!s->window_start_text[0] || !s->window_end_text[0])
            FAIL("InvalidWindow", "spec.window: both start and end, or neither");
        s->window_start = tqu_tt_parse_time(s->window_start_text);
        s->window_end = tqu_tt_parse_time(s->window_end_text);
        if (s->window_start < 0)
            FAIL("InvalidWindow", "spec.window.start: \"%.64s\" is not an RFC 3339 time with a zone", s->window_start_text);
        if (s->window_end < 0)
            FAIL("InvalidWindow", "spec.window.end: \"%.64s\" is not an RFC 3339 time with a zone", s->window_end_text);
        if (s->window_end <= s->window_start)
            FAIL("InvalidWindow", "spec.window: end %s is not after start %s", s->window_end_text, s->window_start_text);
        s->has_window = 1;
    }

    s->paused = k8s_json_bool(spec, 0, "paused", NULL);
    s->dry_run = k8s_json_bool(spec, 0, "dryRun", NULL);
    s->restore_on_delete = k8s_json_bool(spec, 1, "restoreOnDelete", NULL);
    s->backup_dir = str_or(spec, "backupDir", "/qaxdata/tianqing-upgrade/backups");
    if (s->backup_dir[0] != '/' || strstr(s->backup_dir, "/../") || strstr(s->backup_dir, "//") ||
        strlen(s->backup_dir) > 3000)
        FAIL("InvalidBackupDir", "spec.backupDir: \"%.64s\" is not an absolute path without .. or //", s->backup_dir);

    if (!s->has_global && !s->n_services && !s->has_edge2 && !s->cdn_max_request && !s->cdn_disk_space)
        FAIL("NothingToTune", "the spec names no setting: set rateLimit, edge2 or cdn");
    return 0;
}
