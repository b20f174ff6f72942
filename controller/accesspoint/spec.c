/*
 * spec.c - parse and check a TianqingAccessPointUpgrade's spec (see
 * spec.h). The CRD refuses most malformed input already and fills the
 * defaults; this is the same rule for a controller fed by another path (an
 * older CRD, a test), with a message naming the field.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spec.h"

int tqu_ap_version_parse(const char *text, tqu_ap_version *v)
{
    const char *p = text;
    memset(v, 0, sizeof(*v));
    if (!p)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned long long n = 0;
        const char *start = p;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (unsigned)(*p - '0');
            if (n > 2147483647ULL)
                goto bad;
            p++;
        }
        if (p == start)
            goto bad;
        v->part[i] = (unsigned)n;
        if (i < 3 && *p++ != '.')
            goto bad;
    }
    if (*p)
        goto bad;
    return 0;
bad:
    memset(v, 0, sizeof(*v));
    return -1;
}

int tqu_ap_version_cmp(const tqu_ap_version *a, const tqu_ap_version *b)
{
    for (int i = 0; i < 4; i++)
        if (a->part[i] != b->part[i])
            return a->part[i] < b->part[i] ? -1 : 1;
    return 0;
}

double tqu_ap_duration(const char *text)
{
    double total = 0;
    const char *p = text;
    if (!p || !*p)
        return -1;
    while (*p) {
        double n = 0;
        const char *start = p;
        while (*p >= '0' && *p <= '9' && n < 1e9)
            n = n * 10 + (*p++ - '0');
        if (p == start || n >= 1e9)
            return -1;
        switch (*p++) {
        case 'h': total += n * 3600; break;
        case 'm': total += n * 60; break;
        case 's': total += n; break;
        default: return -1;
        }
    }
    return total;
}

/* A string field, or dflt when absent or null; -1 when of another type. */
static int get_str(const cJSON *o, const char *field, const char *key, const char *dflt, const char **out,
                   char *msg, size_t len)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    if (!v || cJSON_IsNull(v)) {
        *out = dflt;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        snprintf(msg, len, "%s.%s must be a string", field, key);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

static int get_bool(const cJSON *o, const char *field, const char *key, int *out, char *msg, size_t len)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v)) {
        snprintf(msg, len, "%s.%s must be true or false", field, key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* An object field (absent or null: NULL, which reads as all defaults). */
static int get_obj(const cJSON *o, const char *key, const cJSON **out, char *msg, size_t len)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsObject(v)) {
        snprintf(msg, len, "spec.%s must be an object", key);
        return -1;
    }
    *out = v;
    return 0;
}

static int is_md5(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* An absolute path without control characters (confinement is checked by
 * Validate against --allowed-root). */
static int check_abs(const char *field, const char *p, int may_be_empty, char *msg, size_t len)
{
    if (!p[0] && may_be_empty)
        return 0;
    if (p[0] != '/' || strlen(p) >= 4096) {
        snprintf(msg, len, "%s must be an absolute path", field);
        return -1;
    }
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(msg, len, "%s holds a control character", field);
            return -1;
        }
    return 0;
}

static int parse_machine(const char *text, int dflt_port, tqu_ap_machine *m)
{
    const char *colon;
    size_t hl;
    long port = dflt_port;
    if (!text || !text[0] || strlen(text) > 261)
        return -1;
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end)
            return -1;
        hl = (size_t)(end - text - 1);
        if (hl == 0 || hl >= sizeof(m->host))
            return -1;
        memcpy(m->host, text + 1, hl);
        if (end[1] == '\0')
            colon = NULL;
        else if (end[1] == ':')
            colon = end + 1;
        else
            return -1;
    } else {
        colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':'))
            return -1;             /* a bare IPv6 address: write [addr]:port */
        hl = colon ? (size_t)(colon - text) : strlen(text);
        if (hl >= sizeof(m->host))
            return -1;
        memcpy(m->host, text, hl);
    }
    if (hl == 0 || hl >= sizeof(m->host))
        return -1;
    m->host[hl] = '\0';
    for (const char *c = m->host; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == ':'))
            return -1;
    if (colon) {
        char *end;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
            return -1;
    }
    m->port = (int)port;
    return 0;
}

int tqu_ap_spec_parse(const cJSON *obj, tqu_ap_spec *s, const char **reason, char *msg, size_t len)
{
    const cJSON *spec = k8s_json_get(obj, "spec", NULL), *pk, *in, *ssh, *ref, *px, *fx, *lg, *win, *to, *ms, *it;
    const char *t;
    static const tqu_ap_version v10_3 = { { 10, 3, 0, 3201 } }, v10_7 = { { 10, 7, 0, 0 } };

    memset(s, 0, sizeof(*s));
    *reason = "InvalidSpec";
    if (!cJSON_IsObject(spec)) {
        snprintf(msg, len, "spec is missing");
        return -1;
    }
    if (get_str(spec, "spec", "fromVersion", NULL, &s->from_version, msg, len) ||
        get_str(spec, "spec", "toVersion", NULL, &s->to_version, msg, len))
        return -1;
    if (!s->from_version || tqu_ap_version_parse(s->from_version, &s->from)) {
        *reason = "InvalidVersion";
        snprintf(msg, len, "spec.fromVersion must be a version A.B.C.D");
        return -1;
    }
    if (!s->to_version || tqu_ap_version_parse(s->to_version, &s->to)) {
        *reason = "InvalidVersion";
        snprintf(msg, len, "spec.toVersion must be a version A.B.C.D");
        return -1;
    }
    if (tqu_ap_version_cmp(&s->to, &s->from) <= 0) {
        *reason = "InvalidVersion";
        snprintf(msg, len, "spec.toVersion %s is not newer than spec.fromVersion %s", s->to_version, s->from_version);
        return -1;
    }
    s->legacy = tqu_ap_version_cmp(&s->from, &v10_3) < 0;
    s->to_10_7 = tqu_ap_version_cmp(&s->from, &v10_7) < 0 && tqu_ap_version_cmp(&s->to, &v10_7) >= 0;

    if (get_obj(spec, "packages", &pk, msg, len) || get_obj(spec, "install", &in, msg, len) ||
        get_obj(spec, "ssh", &ssh, msg, len) || get_obj(spec, "proxyService", &px, msg, len) ||
        get_obj(spec, "fixsvc", &fx, msg, len) || get_obj(spec, "legacy", &lg, msg, len) ||
        get_obj(spec, "window", &win, msg, len) || get_obj(spec, "timeouts", &to, msg, len))
        return -1;
    if (get_str(pk, "spec.packages", "root", "/qaxdata/cli", &s->packages_root, msg, len) ||
        get_str(pk, "spec.packages", "archive", "", &s->archive, msg, len) ||
        get_str(pk, "spec.packages", "md5", "", &s->md5, msg, len) ||
        get_str(in, "spec.install", "planClientDir",
                "/qaxdata/cli/tq_paas/skylar/skylar_linuxserver_client/plan_client", &s->plan_client_dir, msg, len) ||
        get_str(in, "spec.install", "saasDir", "/qaxdata/cli/tq_saas", &s->saas_dir, msg, len) ||
        get_str(spec, "spec", "deployId", "", &s->deploy_id, msg, len) ||
        get_str(spec, "spec", "images", "", &s->images, msg, len) ||
        get_str(spec, "spec", "backupDir", "/qaxdata/tianqing-upgrade/backups", &s->backup_dir, msg, len) ||
        get_str(ssh, "spec.ssh", "user", "root", &s->ssh_user, msg, len) ||
        get_str(ssh, "spec.ssh", "knownHostsConfigMap", "", &s->known_hosts_cm, msg, len) ||
        get_str(px, "spec.proxyService", "namespace", "default", &s->proxy_ns, msg, len) ||
        get_str(px, "spec.proxyService", "name", "proxy-pp", &s->proxy_name, msg, len) ||
        get_str(fx, "spec.fixsvc", "path", "", &s->fixsvc_path, msg, len) ||
        get_str(fx, "spec.fixsvc", "md5", "", &s->fixsvc_md5, msg, len) ||
        get_str(lg, "spec.legacy", "installDir", "/data01/s/services", &s->legacy_dir, msg, len) ||
        get_bool(lg, "spec.legacy", "confirmUninstall", &s->confirm_uninstall, msg, len) ||
        get_bool(spec, "spec", "paused", &s->paused, msg, len) ||
        get_bool(spec, "spec", "dryRun", &s->dry_run, msg, len))
        return -1;
    ref = ssh ? cJSON_GetObjectItemCaseSensitive(ssh, "passwordSecretRef") : NULL;
    if (ref && !cJSON_IsNull(ref) && !cJSON_IsObject(ref)) {
        snprintf(msg, len, "spec.ssh.passwordSecretRef must be an object");
        return -1;
    }
    if (get_str(ref, "spec.ssh.passwordSecretRef", "name", "tianqing-ssh", &s->secret_name, msg, len) ||
        get_str(ref, "spec.ssh.passwordSecretRef", "key", "password", &s->secret_key, msg, len))
        return -1;

    if (check_abs("spec.packages.root", s->packages_root, 0, msg, len) ||
        check_abs("spec.install.planClientDir", s->plan_client_dir, 0, msg, len) ||
        check_abs("spec.install.saasDir", s->saas_dir, 0, msg, len) ||
        check_abs("spec.images", s->images, 1, msg, len) ||
        check_abs("spec.backupDir", s->backup_dir, 0, msg, len) ||
        check_abs("spec.fixsvc.path", s->fixsvc_path, 1, msg, len) ||
        check_abs("spec.legacy.installDir", s->legacy_dir, 0, msg, len))
        return -1;
    if (s->archive[0] && (strchr(s->archive, '\n') || (s->archive[0] != '/' && strchr(s->archive, '/')))) {
        snprintf(msg, len, "spec.packages.archive must be a file name in spec.packages.root or an absolute path");
        return -1;
    }
    if (s->md5[0] && !is_md5(s->md5)) {
        snprintf(msg, len, "spec.packages.md5 must be 32 hexadecimal digits");
        return -1;
    }
    if (s->fixsvc_md5[0] && !is_md5(s->fixsvc_md5)) {
        snprintf(msg, len, "spec.fixsvc.md5 must be 32 hexadecimal digits");
        return -1;
    }
    if (s->fixsvc_path[0] && !s->fixsvc_md5[0]) {
        snprintf(msg, len, "spec.fixsvc.md5 is required with spec.fixsvc.path (fixsvc.sh is run only when its md5 matches)");
        return -1;
    }
    for (t = s->deploy_id; *t; t++)
        if (!(isalnum((unsigned char)*t) || *t == '_' || *t == '-' || *t == '.') || strlen(s->deploy_id) > 128) {
            snprintf(msg, len, "spec.deployId may hold only letters, digits, '_', '-' and '.'");
            return -1;
        }
    if (!s->ssh_user[0] || strlen(s->ssh_user) > 64 || strpbrk(s->ssh_user, " \t\n'\"")) {
        snprintf(msg, len, "spec.ssh.user must be a user name");
        return -1;
    }
    s->ssh_port = (int)k8s_json_int(ssh, 22, "port", NULL);
    if (s->ssh_port < 1 || s->ssh_port > 65535) {
        snprintf(msg, len, "spec.ssh.port must be 1..65535");
        return -1;
    }
    if (!s->secret_name[0] || !s->secret_key[0]) {
        snprintf(msg, len, "spec.ssh.passwordSecretRef needs a name and a key");
        return -1;
    }
    if (!s->proxy_ns[0] || !s->proxy_name[0]) {
        snprintf(msg, len, "spec.proxyService needs a namespace and a name");
        return -1;
    }
    ms = cJSON_GetObjectItemCaseSensitive(spec, "machines");
    if (ms && !cJSON_IsNull(ms)) {
        if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) > TQU_AP_MAX_MACHINES) {
            snprintf(msg, len, "spec.machines must be a list of at most %d host[:port] entries", TQU_AP_MAX_MACHINES);
            return -1;
        }
        cJSON_ArrayForEach(it, ms) {
            tqu_ap_machine *m = &s->machines[s->nmachines];
            if (!cJSON_IsString(it) || parse_machine(it->valuestring, s->ssh_port, m)) {
                snprintf(msg, len, "spec.machines[%d] must be host, host:port or [address]:port", s->nmachines);
                return -1;
            }
            for (int j = 0; j < s->nmachines; j++)
                if (!strcmp(s->machines[j].host, m->host) && s->machines[j].port == m->port) {
                    snprintf(msg, len, "spec.machines[%d] names %s:%d twice", s->nmachines, m->host, m->port);
                    return -1;
                }
            s->nmachines++;
        }
    }
    if (s->nmachines && !s->known_hosts_cm[0]) {
        snprintf(msg, len, "spec.ssh.knownHostsConfigMap is required with spec.machines (their host keys are checked)");
        return -1;
    }
    if (get_str(win, "spec.window", "start", "", &s->window_start_text, msg, len) ||
        get_str(win, "spec.window", "end", "", &s->window_end_text, msg, len))
        return -1;
    if (s->window_start_text[0] || s->window_end_text[0]) {
        if (k8s_time_parse(s->window_start_text, &s->window_start) || k8s_time_parse(s->window_end_text, &s->window_end) ||
            s->window_end <= s->window_start) {
            snprintf(msg, len, "spec.window needs start and end, RFC 3339 times, end after start");
            return -1;
        }
        s->has_window = 1;
    }
    const char *tc, *ti, *tn;
    if (get_str(to, "spec.timeouts", "convert", "10m", &tc, msg, len) ||
        get_str(to, "spec.timeouts", "imageLoad", "1h", &ti, msg, len) ||
        get_str(to, "spec.timeouts", "install", "2h", &tn, msg, len))
        return -1;
    s->timeout_convert_s = tqu_ap_duration(tc);
    s->timeout_image_load_s = tqu_ap_duration(ti);
    s->timeout_install_s = tqu_ap_duration(tn);
    if (s->timeout_convert_s <= 0 || s->timeout_image_load_s <= 0 || s->timeout_install_s <= 0) {
        snprintf(msg, len, "spec.timeouts.convert, imageLoad and install must be durations such as 10m, 1h or 1h30m");
        return -1;
    }
    return 0;
}
