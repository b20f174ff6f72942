/*
 * test_tuning_unit.c - TianqingTuning without a cluster: the remedies
 * table (remedies/remedies.yaml and malformed ones), the spec's checks,
 * config.ns discovery in a Deployment, the container chosen, and the
 * argument edits and JSON patch that Apply sends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "tuning/remedies.h"
#include "tuning/spec.h"
#include "tuning/tuning_int.h"

static cJSON *J(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

/* ------------------------------------------------------------ remedies */

static void test_remedies_builtin(void **state)
{
    (void)state;
    tqu_remedies r;
    char err[512] = "", key[256];
    assert_int_equal(tqu_remedies_load(NULL, &r, err, sizeof(err)), 0);
    assert_string_equal(r.key[TQU_REM_GLOBAL_ENABLE], "{prefix}.rate_limit.enable");
    assert_string_equal(r.key[TQU_REM_GLOBAL_MAX], "{prefix}.rate_limit.max_request_per_unit");
    assert_string_equal(r.key[TQU_REM_SERVICE_MAX], "{configNs}.rate_limit.max_request_per_unit");
    assert_string_equal(r.key[TQU_REM_CDN_MAX_REQUEST], "{prefix}.project.cdn.max_request");
    assert_string_equal(r.key[TQU_REM_CDN_DISK_SPACE], "{prefix}.project.cdn.disk_space");
    /* the two cdn items are marked: to be confirmed per site */
    assert_int_equal(r.confirmed[TQU_REM_GLOBAL_ENABLE], 1);
    assert_int_equal(r.confirmed[TQU_REM_SERVICE_MAX], 1);
    assert_int_equal(r.confirmed[TQU_REM_CDN_MAX_REQUEST], 0);
    assert_int_equal(r.confirmed[TQU_REM_CDN_DISK_SPACE], 0);
    assert_non_null(strstr(r.note[TQU_REM_CDN_DISK_SPACE], "to be confirmed per site"));

    assert_int_equal(tqu_remedies_key(r.key[TQU_REM_GLOBAL_MAX], "da.skylar", NULL, key, sizeof(key)), 0);
    assert_string_equal(key, "da.skylar.rate_limit.max_request_per_unit");
    assert_int_equal(tqu_remedies_key(r.key[TQU_REM_SERVICE_MAX], "da.skylar", "styx", key, sizeof(key)), 0);
    assert_string_equal(key, "styx.rate_limit.max_request_per_unit");
    assert_int_equal(tqu_remedies_key(r.key[TQU_REM_SERVICE_MAX], "da.skylar", NULL, key, sizeof(key)), -1);
    assert_int_equal(tqu_remedies_key(r.key[TQU_REM_GLOBAL_MAX], "da.skylar", NULL, key, 10), -1);
}

#define GOOD_REST                                                        \
    "  globalMaxRequestPerUnit: {key: \"{prefix}.b\"}\n"                 \
    "  serviceMaxRequestPerUnit: {key: \"{configNs}.c\"}\n"              \
    "  cdnMaxRequest: {key: \"{prefix}.d\", confirmed: false}\n"         \
    "  cdnDiskSpace: {key: \"{prefix}.e\", note: \"n\"}\n"

static void bad(const char *text, const char *want)
{
    tqu_remedies r;
    char err[512] = "";
    assert_int_equal(tqu_remedies_parse(text, strlen(text), "t.yaml", &r, err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_remedies_malformed(void **state)
{
    (void)state;
    tqu_remedies r;
    char err[512] = "";
    const char *good = "version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{prefix}.a\"}\n" GOOD_REST;
    assert_int_equal(tqu_remedies_parse(good, strlen(good), "t.yaml", &r, err, sizeof(err)), 0);
    assert_string_equal(r.key[TQU_REM_CDN_MAX_REQUEST], "{prefix}.d");
    assert_int_equal(r.confirmed[TQU_REM_CDN_MAX_REQUEST], 0);
    assert_int_equal(r.confirmed[TQU_REM_CDN_DISK_SPACE], 1);

    bad("version: 1\nkeys:\n" GOOD_REST, "t.yaml:3: keys: globalRateLimitEnable is missing");
    bad("version: 2\nkeys:\n", "t.yaml:1: version: expected 1");
    bad("version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{host}.a\"}\n" GOOD_REST, "unknown placeholder");
    bad("version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{configNs}.a\"}\n" GOOD_REST,
        "only serviceMaxRequestPerUnit may use");
    bad("version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{prefix}.a\"}\n  other: {key: x}\n" GOOD_REST,
        "t.yaml:4: keys: unknown setting \"other\"");
    bad("version: 1\nkeys:\n  globalRateLimitEnable: {key: \"a b\"}\n" GOOD_REST, "has a space");
    bad("version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{prefix}.a\", confirmed: maybe}\n" GOOD_REST,
        "confirmed: expected true or false");
    bad("version: 1\nkeys: [\n", "t.yaml:");
    bad("version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{prefix}.a\"}\n  globalRateLimitEnable: {key: \"{prefix}.a\"}\n" GOOD_REST,
        "appears twice");
    const char *nons = "version: 1\nkeys:\n  globalRateLimitEnable: {key: \"{prefix}.a\"}\n"
                       "  globalMaxRequestPerUnit: {key: \"{prefix}.b\"}\n"
                       "  serviceMaxRequestPerUnit: {key: \"{prefix}.c\"}\n"
                       "  cdnMaxRequest: {key: \"{prefix}.d\"}\n  cdnDiskSpace: {key: \"{prefix}.e\"}\n";
    bad(nons, "must use {configNs}");
    assert_int_equal(tqu_remedies_load("/nonexistent/remedies.yaml", &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--remedies-file"));
}

/* ---------------------------------------------------------------- spec */

static const char *spec_reason(const char *json, char *msg, size_t len)
{
    static char keep[64];
    cJSON *o = J(json);
    tqu_tt_spec s;
    const char *reason = NULL;
    int rc = tqu_tt_spec_parse(o, &s, &reason, msg, len);
    snprintf(keep, sizeof(keep), "%s", rc ? reason : "OK");
    cJSON_Delete(o);
    return keep;
}

#define EP "\"etcd\":{\"endpoints\":[\"http://127.0.0.1:2379\"]}"

static void test_spec(void **state)
{
    (void)state;
    char msg[512];
    cJSON *o = J("{\"spec\":{" EP ",\"rateLimit\":{\"global\":{},\"services\":[{\"deployment\":\"styx\",\"maxRequestPerUnit\":300}]},"
                 "\"edge2\":{\"maxClients\":1000},\"cdn\":{\"maxRequest\":3000,\"diskSpace\":\"20G\"}}}");
    tqu_tt_spec s;
    const char *reason = NULL;
    assert_int_equal(tqu_tt_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_string_equal(s.key_prefix, "da.skylar");
    assert_int_equal(s.has_global, 1);
    assert_int_equal(s.global_enabled, 1);
    assert_int_equal(s.global_max, 500);
    assert_int_equal(s.n_services, 1);
    assert_string_equal(s.services[0].ns, "default");
    assert_string_equal(s.services[0].container, "");
    assert_int_equal(s.services[0].max_request_per_unit, 300);
    assert_string_equal(s.edge2_deployment, "edge2");
    assert_int_equal(s.edge2_max_clients, 1000);
    assert_int_equal(s.cdn_max_request, 3000);
    assert_string_equal(s.cdn_disk_space, "20G");
    assert_int_equal(s.restore_on_delete, 1);
    assert_int_equal(s.dry_run, 0);
    assert_int_equal(s.has_window, 0);
    assert_string_equal(s.backup_dir, "/qaxdata/tianqing-upgrade/backups");
    cJSON_Delete(o);

    assert_string_equal(spec_reason("{\"spec\":{\"rateLimit\":{\"global\":{}}}}", msg, sizeof(msg)), "InvalidEtcd");
    assert_string_equal(spec_reason("{\"spec\":{\"etcd\":{\"endpoints\":[\"ftp://x\"]},\"rateLimit\":{\"global\":{}}}}", msg, sizeof(msg)), "InvalidEtcd");
    assert_non_null(strstr(msg, "spec.etcd.endpoints[0]"));
    assert_string_equal(spec_reason("{\"spec\":{" EP "}}", msg, sizeof(msg)), "NothingToTune");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"rateLimit\":{\"global\":{\"maxRequestPerUnit\":0}}}}", msg, sizeof(msg)), "InvalidRateLimit");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"rateLimit\":{\"global\":{\"maxRequestPerUnit\":1000001}}}}", msg, sizeof(msg)), "InvalidRateLimit");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"rateLimit\":{\"global\":{\"maxRequestPerUnit\":2.5}}}}", msg, sizeof(msg)), "InvalidRateLimit");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"rateLimit\":{\"services\":[{\"deployment\":\"a\"}]}}}", msg, sizeof(msg)), "InvalidRateLimit");
    assert_non_null(strstr(msg, "services[0].maxRequestPerUnit"));
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"rateLimit\":{\"services\":[{\"deployment\":\"a\",\"maxRequestPerUnit\":1},{\"deployment\":\"a\",\"maxRequestPerUnit\":2}]}}}", msg, sizeof(msg)), "InvalidRateLimit");
    assert_non_null(strstr(msg, "listed twice"));
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"rateLimit\":{\"services\":[{\"deployment\":\"A b\",\"maxRequestPerUnit\":1}]}}}", msg, sizeof(msg)), "InvalidRateLimit");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"edge2\":{\"maxClients\":0}}}", msg, sizeof(msg)), "InvalidEdge2");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"cdn\":{\"diskSpace\":\"20 G\"}}}", msg, sizeof(msg)), "InvalidCdn");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"cdn\":{\"diskSpace\":\"20GiB\"}}}", msg, sizeof(msg)), "OK");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"cdn\":{\"maxRequest\":3000},\"window\":{\"start\":\"2026-12-05T22:00:00+08:00\"}}}", msg, sizeof(msg)), "InvalidWindow");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"cdn\":{\"maxRequest\":3000},\"window\":{\"start\":\"2026-12-05T22:00:00+08:00\",\"end\":\"2026-12-05T21:00:00+08:00\"}}}", msg, sizeof(msg)), "InvalidWindow");
    assert_non_null(strstr(msg, "not after start"));
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"cdn\":{\"maxRequest\":3000},\"window\":{\"start\":\"2026-12-05T22:00:00+08:00\",\"end\":\"2026-12-06T02:00:00+08:00\"}}}", msg, sizeof(msg)), "OK");
    assert_string_equal(spec_reason("{\"spec\":{" EP ",\"cdn\":{\"maxRequest\":3000},\"backupDir\":\"rel/x\"}}", msg, sizeof(msg)), "InvalidBackupDir");
    assert_string_equal(spec_reason("{\"spec\":{\"etcd\":{\"endpoints\":[\"http://h:1\"],\"tlsSecretRef\":{\"name\":\"Bad_Name\"}},\"cdn\":{\"maxRequest\":1}}}", msg, sizeof(msg)), "InvalidEtcd");
    assert_int_equal(tqu_tt_parse_time("2026-12-05T22:00:00+08:00"), tqu_tt_parse_time("2026-12-05T14:00:00Z"));
    assert_int_equal(tqu_tt_parse_time("2026-12-05 22:00:00"), -1);
}

/* ------------------------------------------------------ the Deployment */

static cJSON *deploy(const char *name, const char *containers, const char *annotations)
{
    char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"%s\",\"annotations\":%s},\"spec\":{\"template\":{\"spec\":{\"containers\":%s}}}}",
             name, annotations ? annotations : "{}", containers);
    return J(buf);
}

static void test_container(void **state)
{
    (void)state;
    cJSON *one = deploy("styx", "[{\"name\":\"main\"}]", NULL);
    cJSON *two = deploy("styx", "[{\"name\":\"side\"},{\"name\":\"styx\"}]", NULL);
    cJSON *none = deploy("styx", "[{\"name\":\"a\"},{\"name\":\"b\"}]", NULL);
    assert_int_equal(tqu_tt_container(one, ""), 0);
    assert_int_equal(tqu_tt_container(two, ""), 1);
    assert_int_equal(tqu_tt_container(none, ""), -1);
    assert_int_equal(tqu_tt_container(none, "b"), 1);
    assert_int_equal(tqu_tt_container(one, "other"), -1);
    cJSON_Delete(one);
    cJSON_Delete(two);
    cJSON_Delete(none);
}

static int cfgns(const char *containers, const char *ann, char *out)
{
    cJSON *d = deploy("x", containers, ann);
    int n = tqu_tt_find_config_ns(d, 0, out, 256);
    cJSON_Delete(d);
    return n;
}

static void test_config_ns(void **state)
{
    (void)state;
    char v[256];
    assert_int_equal(cfgns("[{\"name\":\"x\",\"args\":[\"-port=1\",\"-config.ns=styx\"]}]", NULL, v), 1);
    assert_string_equal(v, "styx");
    assert_int_equal(cfgns("[{\"name\":\"x\",\"args\":[\"--config.ns\",\"styx2\"]}]", NULL, v), 1);
    assert_string_equal(v, "styx2");
    assert_int_equal(cfgns("[{\"name\":\"x\",\"command\":[\"/bin/s\",\"--config.ns=c\"]}]", NULL, v), 1);
    assert_string_equal(v, "c");
    assert_int_equal(cfgns("[{\"name\":\"x\",\"env\":[{\"name\":\"CONFIG_NS\",\"value\":\"e\"}]}]", NULL, v), 1);
    assert_string_equal(v, "e");
    assert_int_equal(cfgns("[{\"name\":\"x\",\"env\":[{\"name\":\"ARGS\",\"value\":\"-v=1 -config.ns=inenv -x\"}]}]", NULL, v), 1);
    assert_string_equal(v, "inenv");
    assert_int_equal(cfgns("[{\"name\":\"x\"}]", "{\"tianqing.io/config.ns\":\"ann\"}", v), 1);
    assert_string_equal(v, "ann");
    {
        cJSON *d = J("{\"metadata\":{\"name\":\"edge2\",\"labels\":{\"app\":\"edge2\",\"config.ns\":\"da.skylar.project.edge2\"}},"
                     "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"edge2\"}]}}}}");
        assert_int_equal(tqu_tt_find_config_ns(d, 0, v, sizeof(v)), 1);
        assert_string_equal(v, "da.skylar.project.edge2");
        cJSON_Delete(d);
    }
    /* the same value twice is one value */
    assert_int_equal(cfgns("[{\"name\":\"x\",\"args\":[\"-config.ns=s\"],\"env\":[{\"name\":\"CONFIG_NS\",\"value\":\"s\"}]}]", NULL, v), 1);
    /* two values: ambiguous; none: not found */
    assert_int_equal(cfgns("[{\"name\":\"x\",\"args\":[\"-config.ns=a\"],\"env\":[{\"name\":\"CONFIG_NS\",\"value\":\"b\"}]}]", NULL, v), 2);
    assert_int_equal(cfgns("[{\"name\":\"x\",\"args\":[\"-config.nsx=a\",\"-notconfig.ns=b\"]}]", "{\"other\":\"c\"}", v), 0);
}

static char *print(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(s);
    return s;
}

static void test_args(void **state)
{
    (void)state;
    char buf[256];
    cJSON *args = J("[\"-config.ns=styx\",\"-port=8080\",\"--control.type=none\",\"-x\"]");
    assert_int_equal(tqu_tt_arg_find(args, "control.type", buf, sizeof(buf)), 2);
    assert_string_equal(buf, "--control.type=none");
    assert_int_equal(tqu_tt_arg_find(args, "control", buf, sizeof(buf)), -1);
    assert_int_equal(tqu_tt_arg_find(args, "x", buf, sizeof(buf)), 3);

    /* replaced in place, everything else as it was */
    cJSON *w = tqu_tt_args_set(args, "control.type", "-control.type=config");
    char *s = print(w);
    assert_string_equal(s, "[\"-config.ns=styx\",\"-port=8080\",\"-control.type=config\",\"-x\"]");
    free(s);
    /* the patch: a test of the current args, then the new ones */
    cJSON *p = tqu_tt_args_patch(1, "styx", args, w);
    s = print(p);
    assert_string_equal(s, "[{\"op\":\"test\",\"path\":\"/spec/template/spec/containers/1/args\",\"value\":"
                           "[\"-config.ns=styx\",\"-port=8080\",\"--control.type=none\",\"-x\"]},"
                           "{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/1/args\",\"value\":"
                           "[\"-config.ns=styx\",\"-port=8080\",\"-control.type=config\",\"-x\"]}]");
    free(s);
    cJSON_Delete(p);
    cJSON_Delete(w);

    /* added at the end; removed again (an original that was absent) */
    w = tqu_tt_args_set(args, "edge2_max_clientnum", "-edge2_max_clientnum=1000");
    s = print(w);
    assert_string_equal(s, "[\"-config.ns=styx\",\"-port=8080\",\"--control.type=none\",\"-x\",\"-edge2_max_clientnum=1000\"]");
    free(s);
    cJSON *back = tqu_tt_args_set(w, "edge2_max_clientnum", NULL);
    assert_true(cJSON_Compare(back, args, 1));
    cJSON_Delete(back);
    cJSON_Delete(w);

    /* a duplicate is folded into one */
    cJSON *dup = J("[\"-control.type=a\",\"-v\",\"-control.type=b\"]");
    w = tqu_tt_args_set(dup, "control.type", "-control.type=config");
    s = print(w);
    assert_string_equal(s, "[\"-control.type=config\",\"-v\"]");
    free(s);
    cJSON_Delete(w);
    cJSON_Delete(dup);

    /* a container without args: the test is on its name, then add */
    w = tqu_tt_args_set(NULL, "control.type", "-control.type=config");
    p = tqu_tt_args_patch(0, "styx", NULL, w);
    s = print(p);
    assert_string_equal(s, "[{\"op\":\"test\",\"path\":\"/spec/template/spec/containers/0/name\",\"value\":\"styx\"},"
                           "{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/args\",\"value\":[\"-control.type=config\"]}]");
    free(s);
    cJSON_Delete(p);
    cJSON_Delete(w);
    cJSON_Delete(args);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remedies_builtin),
        cmocka_unit_test(test_remedies_malformed),
        cmocka_unit_test(test_spec),
        cmocka_unit_test(test_container),
        cmocka_unit_test(test_config_ns),
        cmocka_unit_test(test_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
