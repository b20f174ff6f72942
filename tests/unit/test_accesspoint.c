/*
 * test_accesspoint.c - TianqingAccessPointUpgrade's pure parts: the spec
 * parser (defaults, every refusal with its field, machines, the legacy and
 * 10.7 flags), versions and durations, and the steps table as the engine
 * sees it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <cmocka.h>
#include "k8s.h"
#include "accesspoint/ap_int.h"
#include "accesspoint/spec.h"
#include "host/roots.h"
#include "runtime/options.h"
#include <sys/stat.h>
#include <unistd.h>

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

#define MIN "\"fromVersion\":\"10.3.0.3201\",\"toVersion\":\"10.6.0.2401\""

static void test_versions(void **state)
{
    (void)state;
    tqu_ap_version a, b;
    assert_int_equal(tqu_ap_version_parse("10.3.0.3201", &a), 0);
    assert_int_equal(a.part[0], 10);
    assert_int_equal(a.part[3], 3201);
    assert_int_equal(tqu_ap_version_parse("10.10.0.0", &b), 0);
    assert_true(tqu_ap_version_cmp(&a, &b) < 0);
    assert_true(tqu_ap_version_cmp(&b, &a) > 0);
    assert_int_equal(tqu_ap_version_cmp(&a, &a), 0);
    const char *bad[] = { "", "10.3.0", "10.3.0.3201.1", "10.3.0.x", "10..0.1", "-1.0.0.0", "10.3.0.3201 ",
                          "2147483648.0.0.0", NULL };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(tqu_ap_version_parse(bad[i], &a), -1);
    assert_int_equal(tqu_ap_version_parse(NULL, &a), -1);
}

static void test_durations(void **state)
{
    (void)state;
    assert_true(tqu_ap_duration("10m") == 600);
    assert_true(tqu_ap_duration("1h") == 3600);
    assert_true(tqu_ap_duration("1h30m5s") == 5405);
    assert_true(tqu_ap_duration("") < 0);
    assert_true(tqu_ap_duration("10") < 0);
    assert_true(tqu_ap_duration("m") < 0);
    assert_true(tqu_ap_duration("5d") < 0);
    assert_true(tqu_ap_duration(NULL) < 0);
}

static void test_spec_defaults(void **state)
{
    (void)state;
    cJSON *o = parse("{\"spec\":{" MIN "}}");
    tqu_ap_spec s;
    const char *reason = NULL;
    char msg[512] = "";
    assert_int_equal(tqu_ap_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_string_equal(s.packages_root, "/qaxdata/cli");
    assert_string_equal(s.archive, "");
    assert_string_equal(s.plan_client_dir, "/qaxdata/cli/tq_paas/skylar/skylar_linuxserver_client/plan_client");
    assert_string_equal(s.saas_dir, "/qaxdata/cli/tq_saas");
    assert_string_equal(s.backup_dir, "/qaxdata/tianqing-upgrade/backups");
    assert_string_equal(s.ssh_user, "root");
    assert_int_equal(s.ssh_port, 22);
    assert_string_equal(s.secret_name, "tianqing-ssh");
    assert_string_equal(s.secret_key, "password");
    assert_string_equal(s.proxy_ns, "default");
    assert_string_equal(s.proxy_name, "proxy-pp");
    assert_string_equal(s.legacy_dir, "/data01/s/services");
    assert_int_equal(s.nmachines, 0);
    assert_false(s.legacy);
    assert_false(s.to_10_7);
    assert_false(s.confirm_uninstall);
    assert_false(s.has_window);
    assert_false(s.dry_run);
    assert_false(s.paused);
    assert_true(s.timeout_convert_s == 600);
    assert_true(s.timeout_image_load_s == 3600);
    assert_true(s.timeout_install_s == 7200);
    cJSON_Delete(o);
}

static void test_spec_full(void **state)
{
    (void)state;
    cJSON *o = parse("{\"spec\":{\"fromVersion\":\"10.6.0.2401\",\"toVersion\":\"10.7.0.2800\","
                     "\"machines\":[\"10.0.0.12\",\"ap-2.example:2222\",\"[::1]:22022\"],"
                     "\"ssh\":{\"user\":\"tq\",\"port\":2200,\"knownHostsConfigMap\":\"kh\","
                     "\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}},"
                     "\"fixsvc\":{\"path\":\"/qaxdata/fixsvc.sh\",\"md5\":\"0123456789ABCDEF0123456789abcdef\"},"
                     "\"window\":{\"start\":\"2026-12-05T22:00:00Z\",\"end\":\"2026-12-06T02:00:00Z\"},"
                     "\"timeouts\":{\"convert\":\"1m\",\"imageLoad\":\"2h\",\"install\":\"3h\"},\"dryRun\":true}}");
    tqu_ap_spec s;
    const char *reason = NULL;
    char msg[512] = "";
    assert_int_equal(tqu_ap_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_true(s.to_10_7);
    assert_false(s.legacy);
    assert_int_equal(s.nmachines, 3);
    assert_string_equal(s.machines[0].host, "10.0.0.12");
    assert_int_equal(s.machines[0].port, 2200);          /* spec.ssh.port */
    assert_string_equal(s.machines[1].host, "ap-2.example");
    assert_int_equal(s.machines[1].port, 2222);
    assert_string_equal(s.machines[2].host, "::1");
    assert_int_equal(s.machines[2].port, 22022);
    assert_string_equal(s.ssh_user, "tq");
    assert_string_equal(s.secret_name, "s");
    assert_true(s.has_window);
    assert_true(s.window_end - s.window_start == 4 * 3600);
    assert_true(s.timeout_convert_s == 60);
    assert_true(s.dry_run);
    cJSON_Delete(o);

    /* below 10.3.0.3201: the legacy path */
    o = parse("{\"spec\":{\"fromVersion\":\"10.3.0.3200\",\"toVersion\":\"10.6.0.2401\","
              "\"legacy\":{\"confirmUninstall\":true}}}");
    assert_int_equal(tqu_ap_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_true(s.legacy);
    assert_true(s.confirm_uninstall);
    cJSON_Delete(o);
    /* 10.7 to 10.8: no s3 fix */
    o = parse("{\"spec\":{\"fromVersion\":\"10.7.0.1\",\"toVersion\":\"10.8.0.1\"}}");
    assert_int_equal(tqu_ap_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_false(s.to_10_7);
    cJSON_Delete(o);
}

static void test_spec_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *reason, *msg;
    } cases[] = {
        { "", "InvalidSpec", "spec is missing" },
        { "\"spec\":{\"toVersion\":\"10.6.0.2401\"}", "InvalidVersion", "spec.fromVersion must be a version A.B.C.D" },
        { "\"spec\":{\"fromVersion\":\"10.6.0.2401\",\"toVersion\":\"10.6\"}", "InvalidVersion",
          "spec.toVersion must be a version A.B.C.D" },
        { "\"spec\":{\"fromVersion\":\"10.6.0.2401\",\"toVersion\":\"10.6.0.2401\"}", "InvalidVersion",
          "spec.toVersion 10.6.0.2401 is not newer than spec.fromVersion 10.6.0.2401" },
        { "\"spec\":{" MIN ",\"packages\":{\"root\":\"qaxdata\"}}", "InvalidSpec", "spec.packages.root must be an absolute path" },
        { "\"spec\":{" MIN ",\"packages\":{\"md5\":\"abc\"}}", "InvalidSpec", "spec.packages.md5 must be 32 hexadecimal digits" },
        { "\"spec\":{" MIN ",\"packages\":{\"archive\":\"a/b.tar\"}}", "InvalidSpec",
          "spec.packages.archive must be a file name in spec.packages.root or an absolute path" },
        { "\"spec\":{" MIN ",\"packages\":7}", "InvalidSpec", "spec.packages must be an object" },
        { "\"spec\":{" MIN ",\"images\":\"x.tar\"}", "InvalidSpec", "spec.images must be an absolute path" },
        { "\"spec\":{" MIN ",\"backupDir\":\"/q/\\u0001\"}", "InvalidSpec", "spec.backupDir holds a control character" },
        { "\"spec\":{" MIN ",\"fixsvc\":{\"path\":\"/qaxdata/fixsvc.sh\"}}", "InvalidSpec",
          "spec.fixsvc.md5 is required with spec.fixsvc.path (fixsvc.sh is run only when its md5 matches)" },
        { "\"spec\":{" MIN ",\"deployId\":\"a/b\"}", "InvalidSpec", "spec.deployId may hold only letters, digits, '_', '-' and '.'" },
        { "\"spec\":{" MIN ",\"ssh\":{\"port\":0}}", "InvalidSpec", "spec.ssh.port must be 1..65535" },
        { "\"spec\":{" MIN ",\"ssh\":{\"user\":\"a b\"}}", "InvalidSpec", "spec.ssh.user must be a user name" },
        { "\"spec\":{" MIN ",\"machines\":[\"h1\"]}", "InvalidSpec",
          "spec.ssh.knownHostsConfigMap is required with spec.machines (their host keys are checked)" },
        { "\"spec\":{" MIN ",\"machines\":[\"h1:99999\"],\"ssh\":{\"knownHostsConfigMap\":\"k\"}}", "InvalidSpec",
          "spec.machines[0] must be host, host:port or [address]:port" },
        { "\"spec\":{" MIN ",\"machines\":[\"h1\",\"h1:22\"],\"ssh\":{\"knownHostsConfigMap\":\"k\"}}", "InvalidSpec",
          "spec.machines[1] names h1:22 twice" },
        { "\"spec\":{" MIN ",\"machines\":[\"::1\"],\"ssh\":{\"knownHostsConfigMap\":\"k\"}}", "InvalidSpec",
          "spec.machines[0] must be host, host:port or [address]:port" },
        { "\"spec\":{" MIN ",\"machines\":[\"a;rm\"],\"ssh\":{\"knownHostsConfigMap\":\"k\"}}", "InvalidSpec",
          "spec.machines[0] must be host, host:port or [address]:port" },
        { "\"spec\":{" MIN ",\"window\":{\"start\":\"2026-12-05T22:00:00Z\"}}", "InvalidSpec",
          "spec.window needs start and end, RFC 3339 times, end after start" },
        { "\"spec\":{" MIN ",\"timeouts\":{\"install\":\"2 hours\"}}", "InvalidSpec",
          "spec.timeouts.convert, imageLoad and install must be durations such as 10m, 1h or 1h30m" },
        { "\"spec\":{" MIN ",\"paused\":\"yes\"}", "InvalidSpec", "spec.paused must be true or false" },
        { "\"spec\":{" MIN ",\"legacy\":{\"confirmUninstall\":1}}", "InvalidSpec",
          "spec.legacy.confirmUninstall must be true or false" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[2048];
        snprintf(json, sizeof(json), "{%s}", cases[i].spec);
        cJSON *o = parse(json);
        tqu_ap_spec s;
        const char *reason = NULL;
        char msg[512] = "";
        int rc = tqu_ap_spec_parse(o, &s, &reason, msg, sizeof(msg));
        if (rc != -1 || strcmp(reason, cases[i].reason) || strcmp(msg, cases[i].msg))
            fail_msg("case %zu (%s): rc %d reason %s msg \"%s\"", i, cases[i].spec, rc, reason ? reason : "-", msg);
        cJSON_Delete(o);
    }
}

static void test_md5_from_name(void **state)
{
    (void)state;
    char out[33];
    assert_int_equal(tqu__ap_md5_from_name("/q/node-10.7.0.2800-0123456789ABCDEF0123456789abcdef.tar.gz", out), 0);
    assert_string_equal(out, "0123456789abcdef0123456789abcdef");
    assert_int_equal(tqu__ap_md5_from_name("0123456789abcdef0123456789abcdef", out), 0);
    assert_int_equal(tqu__ap_md5_from_name("x_0123456789abcdef0123456789abcdef.tar", out), 0);
    /* 33 hex digits is no md5; 31 neither; nor one followed by more name */
    assert_int_equal(tqu__ap_md5_from_name("node-a0123456789abcdef0123456789abcdef.tar", out), -1);
    assert_int_equal(tqu__ap_md5_from_name("node-123456789abcdef0123456789abcdef.tar", out), -1);
    assert_int_equal(tqu__ap_md5_from_name("node-0123456789abcdef0123456789abcdef-x.tar", out), -1);
    assert_int_equal(tqu__ap_md5_from_name("/0123456789abcdef0123456789abcdef/node.tar", out), -1);
    assert_int_equal(tqu__ap_md5_from_name("", out), -1);
}

static void test_workflow_table(void **state)
{
    (void)state;
    const tqu_workflow *wf = &tqu_accesspoint_workflow;
    static const char *names[] = { "Validate", "Legacy", "Extract", "Gather", "Decrypt", "ConvertTemplate", "Stage",
                                   "LoadImages", "ProxyService", "CdnSetting", "Install", "Verify" };
    assert_int_equal(wf->nsteps, 12);
    for (int i = 0; i < 12; i++) {
        assert_string_equal(wf->steps[i].name, names[i]);
        assert_non_null(wf->steps[i].run);
    }
    assert_string_equal(wf->rec.kind, "TianqingAccessPointUpgrade");
    assert_string_equal(wf->rec.resource->plural, "tianqingaccesspointupgrades");
    assert_string_equal(wf->finalizer, "upgrade.tianqing.io/accesspoint-installer");
    /* a dry run runs Validate only; the installer and the machines change things */
    assert_true(wf->steps[AP_VALIDATE].flags & TQU_STEP_CHECK);
    for (int i = 1; i < 12; i++)
        assert_false(wf->steps[i].flags & TQU_STEP_CHECK);
    assert_true(wf->steps[AP_INSTALL].flags & TQU_STEP_CHANGES);
    assert_true(wf->steps[AP_IMAGES_STEP].flags & TQU_STEP_CHANGES);
    assert_true(wf->steps[AP_PROXY].flags & TQU_STEP_CHANGES);
}

/* A launch that cannot be recorded in status leaves no launch entry (the
 * one before it, if any, as it was): else the engine's next status write
 * would persist outcome Unknown for an installer that never ran. */
static void test_launch_not_recorded(void **state)
{
    (void)state;
    tqu_controller ctl;
    tqu_ap_run run;
    memset(&ctl, 0, sizeof(ctl));
    memset(&run, 0, sizeof(run));
    ctl.stopping = 1;   /* every status write fails */
    run.ctl = &ctl;
    run.wf = &tqu_accesspoint_workflow;
    run.key = "ns/a";
    run.ns = "ns";
    run.name = "a";
    run.generation = 2;
    run.status = parse("{}");
    assert_int_equal(tqu__ap_record_launch(&run, "/qaxdata/x/install"), -1);
    assert_null(cJSON_GetObjectItemCaseSensitive(run.status, "launch"));
    cJSON_Delete(run.status);
    run.status = parse("{\"launch\":{\"generation\":1,\"outcome\":\"Failed\"}}");
    assert_int_equal(tqu__ap_record_launch(&run, "/qaxdata/x/install"), -1);
    assert_string_equal(k8s_json_str(run.status, "launch", "outcome", NULL), "Failed");
    assert_int_equal(k8s_json_int(run.status, 0, "launch", "generation", NULL), 1);
    cJSON_Delete(run.status);
}

/* The inputs hook: each package step's text changes with what it reads */
static void inputs_of(const char *spec, int id, char *buf, size_t len)
{
    tqu_ap_run run;
    const char *reason = NULL;
    char msg[512];
    memset(&run, 0, sizeof(run));
    cJSON *o = parse(spec);
    if (tqu_ap_spec_parse(o, &run.spec, &reason, msg, sizeof(msg)))
        fail_msg("%s: %s", spec, msg);
    buf[0] = '\0';
    assert_non_null(tqu_accesspoint_workflow.inputs);
    if (!tqu_accesspoint_workflow.inputs((tqu_job *)&run, id, buf, len))
        snprintf(buf, len, "(none)");
    cJSON_Delete(o);
}

static void test_inputs(void **state)
{
    (void)state;
    static const char *base = "{\"spec\":{" MIN "}}";
    static const struct { const char *spec; int steps[8]; } changes[] = {
        { "{\"spec\":{\"fromVersion\":\"10.3.0.3201\",\"toVersion\":\"10.6.0.2402\"}}",
          { AP_EXTRACT, AP_GATHER, AP_DECRYPT, AP_CONVERT, AP_STAGE, AP_IMAGES_STEP, AP_CDN, -1 } },
        { "{\"spec\":{" MIN ",\"packages\":{\"root\":\"/qaxdata/other\"}}}",
          { AP_EXTRACT, AP_GATHER, AP_DECRYPT, AP_CONVERT, AP_STAGE, AP_IMAGES_STEP, AP_CDN, -1 } },
        { "{\"spec\":{" MIN ",\"packages\":{\"md5\":\"0123456789abcdef0123456789abcdef\"}}}", { AP_EXTRACT, -1 } },
        { "{\"spec\":{" MIN ",\"deployId\":\"abc\"}}", { AP_GATHER, AP_CONVERT, AP_CDN, -1 } },
        { "{\"spec\":{" MIN ",\"images\":\"/qaxdata/i.tar\"}}", { AP_IMAGES_STEP, -1 } },
        { "{\"spec\":{" MIN ",\"machines\":[\"10.0.0.2\"],\"ssh\":{\"knownHostsConfigMap\":\"kh\"}}}",
          { AP_IMAGES_STEP, -1 } },
    };
    char a[8192], b[8192];
    for (size_t c = 0; c < sizeof(changes) / sizeof(changes[0]); c++) {
        for (int id = 0; id < AP_NSTEPS; id++) {
            int want = 0;
            for (int k = 0; changes[c].steps[k] >= 0; k++)
                want |= changes[c].steps[k] == id;
            inputs_of(base, id, a, sizeof(a));
            inputs_of(changes[c].spec, id, b, sizeof(b));
            if (want != (strcmp(a, b) != 0))
                fail_msg("change %zu, step %d: \"%s\" vs \"%s\"", c, id, a, b);
        }
    }
    /* Validate, ProxyService, Install, Verify have none */
    inputs_of(base, AP_INSTALL, a, sizeof(a));
    assert_string_equal(a, "(none)");
}

/* Install starts only with the template staged in this spec's package */
static void test_template_stale(void **state)
{
    (void)state;
    tqu_ap_run run;
    const char *reason = NULL;
    char msg[512];
    memset(&run, 0, sizeof(run));
    cJSON *o = parse("{\"spec\":{" MIN "}}");
    assert_int_equal(tqu_ap_spec_parse(o, &run.spec, &reason, msg, sizeof(msg)), 0);
    assert_int_equal(tqu__ap_template_stale(&run, "/qaxdata/cli/10.6.0.2401/tq_saas/darwin_update_template_1.yaml"), 0);
    assert_int_equal(tqu__ap_template_stale(&run, "/qaxdata/cli/10.6.0.2400/tq_saas/darwin_update_template_1.yaml"), 1);
    assert_int_equal(tqu__ap_template_stale(&run, "/qaxdata/cli/10.6.0.2401/tq_saas/x/t.yaml"), 1);
    assert_int_equal(tqu__ap_template_stale(&run, "/qaxdata/cli/10.6.0.2401/tq_saa/t.yaml"), 1);
    assert_int_equal(tqu__ap_template_stale(&run, "t.yaml"), 1);
    assert_int_equal(tqu__ap_template_stale(&run, NULL), 1);
    cJSON_Delete(o);
}

/* The legacy install folder (rm -rf): strictly below a root, never the
 * request's folder or backupDir, nor a folder above them (links followed) */
static int legacy_ok(const char *root, const char *install, const char *backup, const char *dir)
{
    tqu_controller ctl;
    tqu_options opts;
    tqu_ap_run run;
    tqu_outcome o;
    char err[512], ib[PATH_MAX], bb[PATH_MAX];
    memset(&ctl, 0, sizeof(ctl));
    memset(&opts, 0, sizeof(opts));
    memset(&run, 0, sizeof(run));
    memset(&o, 0, sizeof(o));
    tqu_roots_init(&opts.allowed_roots);
    if (tqu_roots_add(&opts.allowed_roots, root, err, sizeof(err)))
        fail_msg("%s: %s", root, err);
    ctl.opts = &opts;
    run.ctl = &ctl;
    run.key = "ns/a";
    snprintf(ib, sizeof(ib), "%s%s", root, install);
    snprintf(bb, sizeof(bb), "%s%s", root, backup);
    run.spec.legacy_dir = ib;
    run.spec.backup_dir = bb;
    snprintf(run.dir, sizeof(run.dir), "%s%s", root, dir);
    int rc = tqu__ap_confine_legacy(&run, &o);
    if (rc)
        assert_string_equal(o.reason, "PathNotAllowed");
    tqu_roots_release(&opts.allowed_roots);
    return rc == 0;
}

static void test_legacy_confined(void **state)
{
    (void)state;
    char root[] = "/tmp/tqap-unit-XXXXXX", p[PATH_MAX];
    assert_non_null(mkdtemp(root));
    snprintf(p, sizeof(p), "%s/b", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/s", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/l", root);
    assert_int_equal(symlink(root, p), 0);
    assert_true(legacy_ok(root, "/s/services", "/b", "/b/ns.a.u.ap"));
    assert_true(legacy_ok(root, "/s", "/b", "/b/ns.a.u.ap"));
    assert_true(legacy_ok(root, "/b2", "/b", "/b/ns.a.u.ap"));       /* a name that only begins alike */
    assert_false(legacy_ok(root, "", "/b", "/b/ns.a.u.ap"));           /* the root itself */
    assert_false(legacy_ok(root, "/l", "/b", "/b/ns.a.u.ap"));         /* a link to the root */
    assert_false(legacy_ok(root, "/b", "/b", "/b/ns.a.u.ap"));         /* backupDir */
    assert_false(legacy_ok(root, "/s", "/s/backups", "/x/ns.a.u.ap")); /* holds backupDir */
    assert_false(legacy_ok(root, "/s", "/b", "/s/ns.a.u.ap"));         /* holds the request's folder */
    assert_false(legacy_ok(root, "/l/s", "/s/b", "/s/b/r"));           /* the same through a link */
    assert_false(legacy_ok(root, "/../etc", "/b", "/b/r"));
    unlink(p);
    snprintf(p, sizeof(p), "%s/s", root);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/b", root);
    rmdir(p);
    rmdir(root);
}

/* An install folder whose marker cannot be read: retried (StateUnreadable),
 * never taken for an installer that ended (Failed, finalizer dropped) */
static void test_install_state_unreadable(void **state)
{
    (void)state;
    tqu_controller ctl;
    tqu_ap_run run;
    tqu_outcome o;
    char root[] = "/tmp/tqap-unit-XXXXXX", p[PATH_MAX + 32];
    memset(&ctl, 0, sizeof(ctl));
    memset(&run, 0, sizeof(run));
    memset(&o, 0, sizeof(o));
    ctl.stopping = 1;
    run.ctl = &ctl;
    run.wf = &tqu_accesspoint_workflow;
    run.key = "ns/a";
    assert_non_null(mkdtemp(root));
    snprintf(run.dir, sizeof(run.dir), "%s", root);
    snprintf(p, sizeof(p), "%s/install", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/install/launch", root);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("{not json", f);
    fclose(f);
    run.status = parse("{\"launch\":{\"generation\":1,\"outcome\":\"Unknown\"}}");
    tqu__ap_step_install((tqu_job *)&run, &o);
    assert_int_equal(o.kind, TQU_OUT_ERROR);
    assert_string_equal(o.reason, "StateUnreadable");
    assert_string_equal(k8s_json_str(run.status, "launch", "outcome", NULL), "Unknown");
    cJSON_Delete(run.status);
    unlink(p);
    snprintf(p, sizeof(p), "%s/install", root);
    rmdir(p);
    rmdir(root);
}

/* Gather refuses a source that is a link out of the allowed roots (the
 * installed deploy-server.db here), before copying anything of it */
static void test_gather_link_out(void **state)
{
    (void)state;
    tqu_controller ctl;
    tqu_options opts;
    tqu_ap_run run;
    tqu_outcome o;
    char root[] = "/tmp/tqap-unit-XXXXXX", p[PATH_MAX], js[4 * PATH_MAX], err[512], msg[512];
    const char *reason = NULL;
    memset(&ctl, 0, sizeof(ctl));
    memset(&opts, 0, sizeof(opts));
    memset(&run, 0, sizeof(run));
    memset(&o, 0, sizeof(o));
    assert_non_null(mkdtemp(root));
    tqu_roots_init(&opts.allowed_roots);
    assert_int_equal(tqu_roots_add(&opts.allowed_roots, root, err, sizeof(err)), 0);
    ctl.opts = &opts;
    run.ctl = &ctl;
    run.key = "ns/a";
    snprintf(js, sizeof(js), "{\"spec\":{" MIN ",\"packages\":{\"root\":\"%s/cli\"},\"backupDir\":\"%s/b\","
             "\"install\":{\"planClientDir\":\"%s/pc\",\"saasDir\":\"%s/saas\"}}}", root, root, root, root);
    cJSON *obj = parse(js);
    assert_int_equal(tqu_ap_spec_parse(obj, &run.spec, &reason, msg, sizeof(msg)), 0);
    snprintf(run.dir, sizeof(run.dir), "%s/b/r", root);
    snprintf(p, sizeof(p), "%s/pc", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/saas", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/saas/darwin_template_abc.yaml", root);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/pc/deploy-server.db", root);
    assert_int_equal(symlink("/etc/hostname", p), 0);
    tqu__ap_step_gather((tqu_job *)&run, &o);
    assert_int_equal(o.kind, TQU_OUT_FAILED);
    assert_string_equal(o.reason, "PathNotAllowed");
    assert_non_null(strstr(o.message, "deploy-server.db"));
    snprintf(p, sizeof(p), "%s/cli/10.6.0.2401/" AP_PLAN_CLIENT "/deploy-server.db", root);
    assert_int_equal(access(p, F_OK), -1);
    char *rm[] = { "rm", "-rf", root, NULL };
    tqu_child_result res;
    tqu_child_spec cs = { .argv = rm };
    tqu_child_run(&cs, &res);
    tqu_roots_release(&opts.allowed_roots);
    cJSON_Delete(obj);
}

/* only [0-9a-f]{12,64} reaches docker rm -f */
static void test_container_id(void **state)
{
    (void)state;
    static const char *good[] = { "0123456789ab", "c1c1c1c1c1c1",
                                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL };
    static const char *bad[] = { "", "0123456789a", "0123456789AB", "WARNING:", "--all", "-f", "0123456789ab;",
                                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", "c1", NULL };
    for (int i = 0; good[i]; i++)
        assert_int_equal(tqu__ap_container_id(good[i], strlen(good[i])), 1);
    for (int i = 0; bad[i]; i++)
        assert_int_equal(tqu__ap_container_id(bad[i], strlen(bad[i])), 0);
}

/* before docker load, fixsvc.sh, docker rm -f: only while this process may
 * act and the status write before it went through */
static void test_before_vendor(void **state)
{
    (void)state;
    tqu_controller ctl;
    tqu_ap_run run;
    tqu_outcome o;
    memset(&ctl, 0, sizeof(ctl));
    memset(&run, 0, sizeof(run));
    memset(&o, 0, sizeof(o));
    run.ctl = &ctl;
    assert_int_equal(tqu__ap_before_vendor(&run, 0, "docker load", &o), 0);
    assert_int_equal(tqu__ap_before_vendor(&run, -1, "docker load", &o), -1);
    assert_int_equal(o.kind, TQU_OUT_ERROR);
    assert_string_equal(o.reason, "ApiError");
    memset(&o, 0, sizeof(o));
    ctl.stopping = 1;
    assert_int_equal(tqu__ap_before_vendor(&run, 0, "docker load", &o), -1);
    assert_int_equal(o.kind, TQU_OUT_ERROR);
    assert_string_equal(o.reason, "NotLeader");
}

/* Verify's wait: from the step's startedAt; none or garbage: now, recorded */
static void test_verify_start(void **state)
{
    (void)state;
    tqu_ap_run run;
    memset(&run, 0, sizeof(run));
    run.wf = &tqu_accesspoint_workflow;
    run.status = parse("{}");
    assert_int_equal(tqu_status_init_steps(run.status, run.wf), 0);
    cJSON *s = tqu_status_step(run.status, run.wf, AP_VERIFY);
    assert_non_null(s);
    cJSON_DeleteItemFromObjectCaseSensitive(s, "startedAt");
    time_t before = time(NULL);
    time_t t0 = tqu__ap_verify_start(&run);
    assert_true(t0 >= before && t0 <= time(NULL));
    time_t rec = 0;
    assert_int_equal(k8s_time_parse(k8s_json_str(s, "startedAt", NULL), &rec), 0);
    assert_true(rec == t0);
    k8s_json_put(s, "startedAt", cJSON_CreateString("yesterday"));
    t0 = tqu__ap_verify_start(&run);
    assert_true(t0 >= before);                      /* not 0: not timed out at once */
    assert_int_equal(k8s_time_parse(k8s_json_str(s, "startedAt", NULL), &rec), 0);
    k8s_json_put(s, "startedAt", cJSON_CreateString("2026-01-02T03:04:05Z"));
    assert_int_equal(k8s_time_parse("2026-01-02T03:04:05Z", &rec), 0);
    assert_true(tqu__ap_verify_start(&run) == rec);
    cJSON_Delete(run.status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_spec_defaults),
        cmocka_unit_test(test_spec_full),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_md5_from_name),
        cmocka_unit_test(test_workflow_table),
        cmocka_unit_test(test_launch_not_recorded),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_template_stale),
        cmocka_unit_test(test_legacy_confined),
        cmocka_unit_test(test_install_state_unreadable),
        cmocka_unit_test(test_gather_link_out),
        cmocka_unit_test(test_container_id),
        cmocka_unit_test(test_before_vendor),
        cmocka_unit_test(test_verify_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
