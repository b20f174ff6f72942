/*
 * spec.c - parse a TianqingUpgrade's spec (see spec.h).
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"

int tqu_parse_duration(const char *s, double *secs)
{
    /* nanoseconds per unit; "ms" before "m" */
    static const struct { const char *name; size_t len; unsigned long long ns; } units[] = {
        { "ns", 2, 1 }, { "us", 2, 1000 }, { "\xc2\xb5s", 3, 1000 }, { "\xce\xbcs", 3, 1000 },
        { "ms", 2, 1000000 }, { "s", 1, 1000000000ULL }, { "m", 1, 60000000000ULL },
        { "h", 1, 3600000000000ULL },
    };
    const size_t nunits = sizeof(units) / sizeof(units[0]);
    const unsigned long long max_ns = (unsigned long long)TQU_DURATION_MAX_S * 1000000000ULL;
    unsigned long long total = 0;     /* exact, as Go counts: never above max_ns */
    int too_long = 0;
    const char *p = s;

    if (!s || !*s || !secs)
        return K8S_EINVAL;
    while (*p) {
        unsigned long long v = 0, unit, part;
        double frac = 0, scale = 1;
        size_t u;
        if (!isdigit((unsigned char)*p))
            return K8S_EINVAL;
        for (; isdigit((unsigned char)*p); p++)
            if (v <= max_ns)               /* beyond: too long in any unit; no wrap */
                v = v * 10 + (unsigned)(*p - '0');
        if (*p == '.') {
            if (!isdigit((unsigned char)*++p))
                return K8S_EINVAL;
            for (; isdigit((unsigned char)*p); p++)
                frac += (*p - '0') * (scale /= 10);
        }
        for (u = 0; u < nunits && strncmp(p, units[u].name, units[u].len) != 0; u++)
            ;
        if (u == nunits)
            return K8S_EINVAL;
        p += units[u].len;
        unit = units[u].ns;
        if (too_long || v > max_ns / unit) {
            too_long = 1;                  /* keep checking the syntax */
            continue;
        }
        part = v * unit + (unsigned long long)(frac * (double)unit);
        if (part > max_ns - total)
            too_long = 1;
        else
            total += part;
    }
    if (too_long)
        return K8S_ETOOBIG;
    *secs = (double)total / 1e9;
    return K8S_OK;
}

long tqu_duration_ms(double secs)
{
    double ms;

    if (!(secs > 0))                       /* also NaN */
        return 0;
    ms = ceil(secs * 1000);
    return ms < (double)LONG_MAX ? (long)ms : LONG_MAX;
}

static const char *str_or(const cJSON *spec, const char *dflt, const char *a, const char *b)
{
    const char *v = b ? k8s_json_str(spec, a, b, NULL) : k8s_json_str(spec, a, NULL);
    return v ? v : dflt;
}

static long long int_or(const cJSON *spec, long long dflt, const char *a, const char *b)
{
    return b ? k8s_json_int(spec, dflt, a, b, NULL) : k8s_json_int(spec, dflt, a, NULL);
}

static int bool_or(const cJSON *spec, int dflt, const char *a, const char *b)
{
    return b ? k8s_json_bool(spec, dflt, a, b, NULL) : k8s_json_bool(spec, dflt, a, NULL);
}

/* spec.timeouts.<key> (dflt when absent) into *secs: 0, or K8S_EINVAL with msg set. */
static int parse_timeout(const cJSON *spec, const char *key, const char *dflt, double *secs,
                         char *msg, size_t msg_len)
{
    const char *t = str_or(spec, dflt, "timeouts", key);
    int rc = tqu_parse_duration(t, secs);

    if (rc == K8S_ETOOBIG)
        snprintf(msg, msg_len, "spec.timeouts.%s: \"%.64s\" is longer than %s, the longest time limit "
                 "supported", key, t, TQU_DURATION_MAX_TEXT);
    else if (rc != K8S_OK || *secs <= 0)
        snprintf(msg, msg_len, "spec.timeouts.%s: \"%.64s\" is not a positive duration such as %s", key, t,
                 dflt);
    else
        return K8S_OK;
    return K8S_EINVAL;
}

#define FAIL(r, ...) do { *reason = (r); snprintf(msg, msg_len, __VA_ARGS__); return K8S_EINVAL; } while (0)

int tqu_spec_parse(const cJSON *obj, tqu_spec *s, const char **reason, char *msg, size_t msg_len)
{
    const cJSON *spec = k8s_json_get(obj, "spec", NULL);
    static const char *dummy;

    if (!reason)
        reason = &dummy;
    memset(s, 0, sizeof(*s));
    if (!cJSON_IsObject(spec))
        FAIL("InvalidSpec", "spec: missing");

    s->from_version = str_or(spec, NULL, "fromVersion", NULL);
    s->initial_version = str_or(spec, NULL, "initialVersion", NULL);
    s->to_version = str_or(spec, NULL, "toVersion", NULL);
    if (!s->from_version)
        FAIL("InvalidSpec", "spec.fromVersion: required");
    if (!s->initial_version)
        FAIL("InvalidSpec", "spec.initialVersion: required");
    if (!s->to_version)
        FAIL("InvalidSpec", "spec.toVersion: required");
    s->machines = (int)int_or(spec, 0, "machines", NULL);
    if (s->machines != 3 && s->machines != 4 && s->machines != 6 && s->machines != 9 && s->machines != 12)
        FAIL("UnsupportedTopology", "spec.machines: %d machines is not a supported topology (3, 4, 6, 9 or 12)",
             s->machines);
    s->edr_enabled = bool_or(spec, 0, "edrEnabled", NULL);
    s->paused = bool_or(spec, 0, "paused", NULL);
    s->stop = bool_or(spec, 0, "stop", NULL);
    s->dry_run = bool_or(spec, 0, "dryRun", NULL);

    const cJSON *win = k8s_json_get(spec, "window", NULL);
    if (cJSON_IsObject(win)) {
        s->window_start_text = k8s_json_str(win, "start", NULL);
        s->window_end_text = k8s_json_str(win, "end", NULL);
        if (!s->window_start_text || !s->window_end_text)
            FAIL("InvalidWindow", "spec.window: both start and end are required");
        if (k8s_time_parse(s->window_start_text, &s->window_start) != K8S_OK)
            FAIL("InvalidWindow", "spec.window.start: \"%s\" is not an RFC 3339 time with a zone", s->window_start_text);
        if (k8s_time_parse(s->window_end_text, &s->window_end) != K8S_OK)
            FAIL("InvalidWindow", "spec.window.end: \"%s\" is not an RFC 3339 time with a zone", s->window_end_text);
        if (s->window_end <= s->window_start)
            FAIL("InvalidWindow", "spec.window: end %s is not after start %s", s->window_end_text,
                 s->window_start_text);
        s->has_window = 1;
    }

    s->packages_root = str_or(spec, "/qaxdata/cli", "packages", "root");
    s->packages_archive = str_or(spec, "", "packages", "archive");
    s->template_path = str_or(spec, "", "template", NULL);
    s->ssh_user = str_or(spec, "root", "ssh", "user");
    s->ssh_port = (int)k8s_json_int(spec, 22, "ssh", "port", NULL);
    s->ssh_secret_name = k8s_json_str(spec, "ssh", "passwordSecretRef", "name", NULL);
    s->ssh_secret_key = k8s_json_str(spec, "ssh", "passwordSecretRef", "key", NULL);
    if (!s->ssh_secret_name || !s->ssh_secret_name[0] || !s->ssh_secret_key || !s->ssh_secret_key[0])
        FAIL("InvalidSpec", "spec.ssh.passwordSecretRef: name and key are required");
    if (s->ssh_port < 1 || s->ssh_port > 65535)
        FAIL("InvalidSpec", "spec.ssh.port: %d is not a port (1-65535)", s->ssh_port);
    s->data_backup_enabled = bool_or(spec, 1, "dataBackup", "enabled");
    s->data_backup_dir = str_or(spec, "/qaxdata", "dataBackup", "dir");
    s->backup_dir = str_or(spec, "/qaxdata/tianqing-upgrade/backups", "backupDir", NULL);
    s->confirm_hotfix = bool_or(spec, 0, "confirmations", "endpointHotfixApplied");
    s->confirm_autoupdate_off = bool_or(spec, 0, "confirmations", "clientAutoUpdateDisabled");
    s->confirm_xinghai = bool_or(spec, 0, "confirmations", "xinghaiReady");
    s->disk_data_root = str_or(spec, "/qaxdata", "disk", "dataRoot");
    s->disk_mongo_dir = str_or(spec, "/qaxdata/s/services/mongo/data", "disk", "mongoDataDir");
    s->disk_reserve_gib = int_or(spec, 70, "disk", "reserveGiB");
    s->disk_max_usage_percent = (int)int_or(spec, 80, "disk", "maxUsagePercent");
    if (s->disk_reserve_gib < 0)
        FAIL("InvalidSpec", "spec.disk.reserveGiB: %lld is negative", s->disk_reserve_gib);
    if (s->disk_max_usage_percent < 1 || s->disk_max_usage_percent > 100)
        FAIL("InvalidSpec", "spec.disk.maxUsagePercent: %d is not 1-100", s->disk_max_usage_percent);
    s->cdn_namespace = str_or(spec, "default", "cdn", "namespace");
    s->cdn_deployment = str_or(spec, "darwin-cdn", "cdn", "deployment");
    s->cdn_cache_persistence = bool_or(spec, 1, "cdn", "cachePersistence");
    s->cdn_cache_host_path = str_or(spec, "/qaxdata/s/services/data/darwin-cdn-data", "cdn", "cacheHostPath");
    s->cdn_anti_affinity = bool_or(spec, 1, "cdn", "antiAffinity");

    if (parse_timeout(spec, "paasCheck", "15m", &s->timeout_paas_s, msg, msg_len) ||
        parse_timeout(spec, "upgrade", "3h", &s->timeout_upgrade_s, msg, msg_len) ||
        parse_timeout(spec, "verify", "20m", &s->timeout_verify_s, msg, msg_len)) {
        *reason = "InvalidSpec";
        return K8S_EINVAL;
    }

    /* paths must be absolute; the schema says so too, but a controller
     * that runs commands in them checks again */
    const char *paths[][2] = {
        { "spec.packages.root", s->packages_root }, { "spec.backupDir", s->backup_dir },
        { "spec.dataBackup.dir", s->data_backup_dir }, { "spec.disk.dataRoot", s->disk_data_root },
        { "spec.disk.mongoDataDir", s->disk_mongo_dir }, { "spec.cdn.cacheHostPath", s->cdn_cache_host_path },
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i][1][0] != '/' || strstr(paths[i][1], "/../") || strchr(paths[i][1], '\n'))
            FAIL("InvalidSpec", "%s: \"%s\" is not an absolute path", paths[i][0], paths[i][1]);
    if (s->template_path[0] && s->template_path[0] != '/')
        FAIL("InvalidSpec", "spec.template: \"%s\" is not an absolute path", s->template_path);
    *reason = NULL;
    msg[0] = '\0';
    return K8S_OK;
}
