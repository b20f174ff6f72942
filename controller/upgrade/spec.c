/*
 * spec.c - parse a TianqingUpgrade's spec (see spec.h).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"

double tqu_parse_duration(const char *s)
{
    double total = 0;
    const char *p = s;

    if (!s || !*s)
        return -1;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return -1;
        double v = strtod(p, &end);
        if (end == p || v < 0 || !isfinite(v))
            return -1;
        p = end;
        double unit;
        if (strncmp(p, "ns", 2) == 0) { unit = 1e-9; p += 2; }
        else if (strncmp(p, "us", 2) == 0) { unit = 1e-6; p += 2; }
        else if (strncmp(p, "\xc2\xb5s", 3) == 0 || strncmp(p, "\xce\xbcs", 3) == 0) { unit = 1e-6; p += 3; }
        else if (strncmp(p, "ms", 2) == 0) { unit = 1e-3; p += 2; }
        else if (*p == 's') { unit = 1; p++; }
        else if (*p == 'm') { unit = 60; p++; }
        else if (*p == 'h') { unit = 3600; p++; }
        else
            return -1;
        total += v * unit;
    }
    return total;
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

    const char *t;
    t = str_or(spec, "15m", "timeouts", "paasCheck");
    if ((s->timeout_paas_s = tqu_parse_duration(t)) <= 0)
        FAIL("InvalidSpec", "spec.timeouts.paasCheck: \"%s\" is not a positive duration such as 15m", t);
    t = str_or(spec, "3h", "timeouts", "upgrade");
    if ((s->timeout_upgrade_s = tqu_parse_duration(t)) <= 0)
        FAIL("InvalidSpec", "spec.timeouts.upgrade: \"%s\" is not a positive duration such as 3h", t);
    t = str_or(spec, "20m", "timeouts", "verify");
    if ((s->timeout_verify_s = tqu_parse_duration(t)) <= 0)
        FAIL("InvalidSpec", "spec.timeouts.verify: \"%s\" is not a positive duration such as 20m", t);

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
