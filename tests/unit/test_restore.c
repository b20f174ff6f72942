/*
 * test_restore.c - TianqingRestore's pure parts: the server-set fields
 * stripped, the field-level diff, the spec parser, the kept-file record
 * (host/backup.c) and the steps table as the engine sees it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "failalloc.h"
#include "testutil.h"
#include "k8s.h"
#include "host/backup.h"
#include "host/fsutil.h"
#include "restore/diff.h"
#include "restore/restore.h"
#include "restore/spec.h"

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

/* paths joined with " " */
static char *joined(const cJSON *paths)
{
    static char buf[4096];
    const cJSON *p;
    size_t off = 0;
    buf[0] = '\0';
    cJSON_ArrayForEach(p, paths)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", off ? " " : "", p->valuestring);
    return buf;
}

/* A Deployment as saved by the upgrade (a GET), and the same one live a
 * while later: every server-set field differs. */
static const char *saved_cdn =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
    "\"metadata\":{\"name\":\"darwin-cdn\",\"namespace\":\"default\",\"uid\":\"u1\",\"resourceVersion\":\"100\","
    "\"generation\":1,\"creationTimestamp\":\"2026-12-01T00:00:00Z\",\"selfLink\":\"/x\","
    "\"managedFields\":[{\"manager\":\"kubectl\"}],"
    "\"labels\":{\"app\":\"darwin-cdn\",\"config.ns\":\"da.skylar.project.darwin.cdn\"},"
    "\"annotations\":{\"deployment.kubernetes.io/revision\":\"1\"}},"
    "\"spec\":{\"replicas\":3,\"template\":{\"spec\":{\"containers\":["
    "{\"name\":\"darwin-cdn\",\"image\":\"cdn:1\",\"args\":[\"-a\",\"-b\"]},{\"name\":\"log-agent\",\"image\":\"la:1\"}]}}},"
    "\"status\":{\"replicas\":3,\"availableReplicas\":3}}";

static void test_strip(void **state)
{
    (void)state;
    cJSON *d = parse(saved_cdn);
    tqu_restore_strip(d);
    cJSON *md = k8s_json_get(d, "metadata", NULL);
    const char *gone[] = { "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
                           "managedFields", "annotations" };
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        assert_null(cJSON_GetObjectItemCaseSensitive(md, gone[i]));
    assert_null(k8s_json_get(d, "status", NULL));
    assert_string_equal(k8s_json_str(d, "metadata", "name", NULL), "darwin-cdn");
    assert_string_equal(k8s_json_str(d, "metadata", "labels", "config.ns", NULL), "da.skylar.project.darwin.cdn");
    assert_int_equal(k8s_json_int(d, 0, "spec", "replicas", NULL), 3);
    cJSON_Delete(d);

    /* other annotations stay; only the revision goes */
    d = parse("{\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{\"deployment.kubernetes.io/revision\":\"4\","
              "\"owner\":\"ops\"}}}");
    tqu_restore_strip(d);
    assert_string_equal(k8s_json_str(d, "metadata", "annotations", "owner", NULL), "ops");
    assert_null(k8s_json_get(d, "metadata", "annotations", "deployment.kubernetes.io/revision", NULL));
    cJSON_Delete(d);

    /* a Service: its allocated cluster IPs too, its nodePort kept */
    d = parse("{\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"},\"spec\":{\"clusterIP\":\"10.0.0.9\","
              "\"clusterIPs\":[\"10.0.0.9\"],\"ports\":[{\"port\":8443,\"nodePort\":31443}]}}");
    tqu_restore_strip(d);
    assert_null(k8s_json_get(d, "spec", "clusterIP", NULL));
    assert_null(k8s_json_get(d, "spec", "clusterIPs", NULL));
    assert_int_equal(k8s_json_int(cJSON_GetArrayItem(k8s_json_get(d, "spec", "ports", NULL), 0), 0, "nodePort", NULL),
                     31443);
    cJSON_Delete(d);
    tqu_restore_strip(NULL);   /* harmless */
}

static void test_diff_server_set_fields_ignored(void **state)
{
    (void)state;
    cJSON *saved = parse(saved_cdn), *live = parse(saved_cdn), *paths = cJSON_CreateArray();
    cJSON *md = k8s_json_get(live, "metadata", NULL);
    k8s_json_put(md, "uid", cJSON_CreateString("u2"));
    k8s_json_put(md, "resourceVersion", cJSON_CreateString("999"));
    k8s_json_put(md, "generation", cJSON_CreateNumber(7));
    k8s_json_put(md, "creationTimestamp", cJSON_CreateString("2026-12-03T00:00:00Z"));
    k8s_json_put(md, "managedFields", cJSON_CreateArray());
    k8s_json_put(k8s_json_get(md, "annotations", NULL), "deployment.kubernetes.io/revision", cJSON_CreateString("5"));
    k8s_json_put(live, "status", cJSON_CreateObject());
    char *before = cJSON_PrintUnformatted(saved), *before_live = cJSON_PrintUnformatted(live);
    assert_int_equal(tqu_restore_diff(saved, live, paths), 0);
    assert_int_equal(cJSON_GetArraySize(paths), 0);
    /* neither input is changed */
    char *after = cJSON_PrintUnformatted(saved), *after_live = cJSON_PrintUnformatted(live);
    assert_string_equal(before, after);
    assert_string_equal(before_live, after_live);
    free(before), free(after), free(before_live), free(after_live);
    cJSON_Delete(saved), cJSON_Delete(live), cJSON_Delete(paths);
}

static void test_diff_fields(void **state)
{
    (void)state;
    cJSON *saved = parse(saved_cdn), *live = parse(saved_cdn), *paths = cJSON_CreateArray();
    cJSON *pod = k8s_json_get(live, "spec", "template", "spec", NULL);
    /* what CdnTuning adds, a changed replica count, a changed label with a
     * dot in its name, an argument changed in place, a label removed */
    k8s_json_put(pod, "volumes", parse("[{\"name\":\"darwin-cdn-data\",\"hostPath\":{\"path\":\"/q\"}}]"));
    k8s_json_put(pod, "affinity", parse("{\"podAntiAffinity\":{}}"));
    k8s_json_put(k8s_json_get(live, "spec", NULL), "replicas", cJSON_CreateNumber(5));
    k8s_json_put(k8s_json_get(live, "metadata", "labels", NULL), "config.ns", cJSON_CreateString("other"));
    cJSON_DeleteItemFromObjectCaseSensitive(k8s_json_get(live, "metadata", "labels", NULL), "app");
    cJSON *args = k8s_json_get(cJSON_GetArrayItem(k8s_json_get(pod, "containers", NULL), 0), "args", NULL);
    cJSON_ReplaceItemInArray(args, 1, cJSON_CreateString("-c"));
    /* a mount added to the second container: its array grows */
    k8s_json_put(cJSON_GetArrayItem(k8s_json_get(pod, "containers", NULL), 1), "volumeMounts",
                 parse("[{\"name\":\"x\",\"mountPath\":\"/x\"}]"));

    assert_int_equal(tqu_restore_diff(saved, live, paths), 7);
    assert_string_equal(joined(paths),
                        "metadata.labels.app metadata.labels[\"config.ns\"] spec.replicas "
                        "spec.template.spec.containers[0].args[1] spec.template.spec.containers[1].volumeMounts "
                        "spec.template.spec.volumes spec.template.spec.affinity");
    cJSON_Delete(paths);

    /* an array of another length is named whole */
    paths = cJSON_CreateArray();
    cJSON_DeleteItemFromArray(args, 1);
    cJSON *l2 = parse(saved_cdn);
    cJSON_DeleteItemFromArray(k8s_json_get(cJSON_GetArrayItem(k8s_json_get(l2, "spec", "template", "spec", "containers",
                                                                           NULL), 0), "args", NULL), 0);
    assert_int_equal(tqu_restore_diff(saved, l2, paths), 1);
    assert_string_equal(joined(paths), "spec.template.spec.containers[0].args");
    cJSON_Delete(l2), cJSON_Delete(saved), cJSON_Delete(live), cJSON_Delete(paths);
}

static void test_diff_cap_and_types(void **state)
{
    (void)state;
    cJSON *a = cJSON_CreateObject(), *b = cJSON_CreateObject(), *paths = cJSON_CreateArray();
    char k[32];
    for (int i = 0; i < TQU_RESTORE_MAX_PATHS + 20; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        k8s_json_put(a, k, cJSON_CreateNumber(i));
        k8s_json_put(b, k, cJSON_CreateNumber(i + 1));
    }
    assert_int_equal(tqu_restore_diff(a, b, paths), TQU_RESTORE_MAX_PATHS + 20);
    assert_int_equal(cJSON_GetArraySize(paths), TQU_RESTORE_MAX_PATHS);
    cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(paths);

    /* a value of another type; a string against a number */
    a = parse("{\"spec\":{\"x\":\"3\",\"y\":{\"z\":1}}}");
    b = parse("{\"spec\":{\"x\":3,\"y\":[1]}}");
    paths = cJSON_CreateArray();
    assert_int_equal(tqu_restore_diff(a, b, paths), 2);
    assert_string_equal(joined(paths), "spec.x spec.y");
    cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(paths);
}

static void test_diff_alloc_failures(void **state)
{
    (void)state;
    cJSON *saved = parse(saved_cdn), *live = parse(saved_cdn);
    k8s_json_put(k8s_json_get(live, "spec", NULL), "replicas", cJSON_CreateNumber(5));
    for (long n = 1; n < 1000; n++) {
        cJSON *paths = cJSON_CreateArray();
        assert_non_null(paths);
        failalloc_fail_at(n);
        int rc = tqu_restore_diff(saved, live, paths);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        cJSON_Delete(paths);
        if (!failed) {
            assert_int_equal(rc, 1);
            cJSON_Delete(saved), cJSON_Delete(live);
            return;
        }
        assert_int_equal(rc, -1);
    }
    fail_msg("the diff never ran without failing");
}

/* ------------------------------------------------------------------ spec */

static void test_spec_defaults(void **state)
{
    (void)state;
    tqu_restore_spec s;
    const char *reason = NULL;
    char msg[256];
    cJSON *o = parse("{\"spec\":{\"upgradeRef\":{\"name\":\"to-10.7.0.2800\"}}}");
    assert_int_equal(tqu_restore_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_string_equal(s.upgrade, "to-10.7.0.2800");
    assert_true(s.dry_run);
    assert_true(s.sabre && s.cdn && s.update_script);
    assert_false(s.all_deployments);
    assert_int_equal(s.ndeployments, 0);
    tqu_restore_spec_release(&s);
    cJSON_Delete(o);

    o = parse("{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"dryRun\":false,"
              "\"targets\":{\"sabre\":false,\"cdn\":true,\"updateScript\":false,"
              "\"deployments\":[\"default/edge2\",\"skylar/skylar-apiserver\"]}}}");
    assert_int_equal(tqu_restore_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_false(s.dry_run);
    assert_false(s.sabre);
    assert_true(s.cdn);
    assert_false(s.update_script);
    assert_int_equal(s.ndeployments, 2);
    assert_string_equal(s.deployments[0], "default/edge2");
    assert_string_equal(s.deployments[1], "skylar/skylar-apiserver");
    tqu_restore_spec_release(&s);
    cJSON_Delete(o);

    o = parse("{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"sabre\":false,\"cdn\":false,"
              "\"updateScript\":false,\"deployments\":[\"*\"]}}}");
    assert_int_equal(tqu_restore_spec_parse(o, &s, &reason, msg, sizeof(msg)), 0);
    assert_true(s.all_deployments);
    assert_int_equal(s.ndeployments, 0);
    tqu_restore_spec_release(&s);
    cJSON_Delete(o);
}

static void test_spec_refusals(void **state)
{
    (void)state;
    static const struct { const char *spec, *msg; } bad[] = {
        { "{}", "spec is missing" },
        { "{\"spec\":{}}", "spec.upgradeRef.name" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"Bad_Name\"}}}", "spec.upgradeRef.name" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"dryRun\":\"no\"}}", "spec.dryRun must be true or false" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"cdn\":1}}}",
          "spec.targets.cdn must be true or false" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"deployments\":[\"*\",\"a/b\"]}}}",
          "\"*\" (every Deployment of the backup) must be alone" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"deployments\":[\"a/b\",\"noslash\"]}}}",
          "spec.targets.deployments[1] must be \"namespace/name\"" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"deployments\":[\"a/B\"]}}}",
          "spec.targets.deployments[0]" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"deployments\":\"a/b\"}}}",
          "spec.targets.deployments must be a list" },
        { "{\"spec\":{\"upgradeRef\":{\"name\":\"u\"},\"targets\":{\"sabre\":false,\"cdn\":false,\"updateScript\":false}}}",
          "spec.targets names nothing to restore" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tqu_restore_spec s;
        const char *reason = NULL;
        char msg[256] = "";
        cJSON *o = parse(bad[i].spec);
        assert_int_equal(tqu_restore_spec_parse(o, &s, &reason, msg, sizeof(msg)), -1);
        assert_string_equal(reason, "InvalidSpec");
        assert_contains(msg, bad[i].msg);
        cJSON_Delete(o);
    }
}

/* ------------------------------------------------------------ kept files */

static void test_backup_keep(void **state)
{
    (void)state;
    char dir[256], sub[300], path[400], hex[65], err[512];
    cJSON *st = cJSON_CreateObject();
    assert_int_equal(test_mkdtemp(dir, sizeof(dir), "test_restore"), 0);
    snprintf(sub, sizeof(sub), "%s/a/b", dir);
    assert_int_equal(tqu_backup_keep(st, sub, "update.sh.orig", "one\n", 4, 0750, "/q/update.sh", err, sizeof(err)), 0);
    /* kept once: a second call keeps the first copy and records it again */
    assert_int_equal(tqu_backup_keep(st, sub, "update.sh.orig", "two!\n", 5, 0750, "/q/update.sh", err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/update.sh.orig", sub);
    assert_int_equal(tqu_sha256_file(path, hex, NULL, err, sizeof(err)), 0);
    cJSON *files = k8s_json_get(st, "backup", "files", NULL);
    assert_int_equal(cJSON_GetArraySize(files), 1);
    cJSON *e = cJSON_GetArrayItem(files, 0);
    assert_string_equal(k8s_json_str(e, "name", NULL), "update.sh.orig");
    assert_string_equal(k8s_json_str(e, "path", NULL), path);
    assert_string_equal(k8s_json_str(e, "sha256", NULL), hex);
    assert_string_equal(k8s_json_str(e, "target", NULL), "/q/update.sh");
    /* sha256("one\n") */
    assert_string_equal(hex, "2c8b08da5ce60398e1f19af0e5dccc744df274b826abe585eaba68c525434806");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0750);

    /* a JSON object; a second name is a second entry */
    cJSON *obj = parse("{\"kind\":\"Service\"}");
    assert_int_equal(tqu_backup_keep_json(st, sub, "svc.json", obj, err, sizeof(err)), 0);
    assert_int_equal(cJSON_GetArraySize(files), 2);
    assert_null(k8s_json_get(cJSON_GetArrayItem(files, 1), "target", NULL));
    /* a missing file cannot be recorded */
    assert_int_equal(tqu_backup_record_file(st, "x", "/nonexistent/x", NULL, err, sizeof(err)), -1);
    assert_int_equal(cJSON_GetArraySize(files), 2);
    cJSON_Delete(obj);
    cJSON_Delete(st);
    test_rmtree(dir);
}

/* ---------------------------------------------------- the steps table */

static void test_workflow_table(void **state)
{
    (void)state;
    const tqu_workflow *wf = &tqu_restore_workflow;
    static const char *names[] = { "Validate", "Plan", "Apply", "Verify" };
    assert_int_equal(wf->nsteps, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(wf->steps[i].name, names[i]);
    /* a dry run runs exactly Validate and Plan */
    assert_true(wf->steps[TQU_RESTORE_VALIDATE].flags & TQU_STEP_CHECK);
    assert_true(wf->steps[TQU_RESTORE_PLAN].flags & TQU_STEP_CHECK);
    assert_false(wf->steps[TQU_RESTORE_APPLY].flags & TQU_STEP_CHECK);
    assert_true(wf->steps[TQU_RESTORE_APPLY].flags & TQU_STEP_CHANGES);
    assert_false(wf->steps[TQU_RESTORE_VERIFY].flags & TQU_STEP_CHECK);
    assert_string_equal(wf->rec.kind, "TianqingRestore");
    assert_string_equal(wf->rec.resource->plural, "tianqingrestores");
    assert_null(wf->finalizer);
    /* the engine's dry run: Validate and Plan done, then Succeeded/DryRunComplete */
    cJSON *st = cJSON_CreateObject();
    assert_int_equal(tqu_status_init_steps(st, wf), 0);
    tqu_outcome o = { .kind = TQU_OUT_DONE, .reason = "BackupVerified" };
    strcpy(o.message, "ok");
    assert_int_equal(tqu_status_apply(st, wf, TQU_RESTORE_VALIDATE, &o, 1), 0);
    assert_int_equal(tqu_status_apply(st, wf, TQU_RESTORE_PLAN, &o, 1), 0);
    assert_int_equal(tqu_status_next_step(st, wf), TQU_RESTORE_APPLY);
    assert_false(tqu_status_changes_started(st, wf));
    assert_int_equal(tqu_status_succeeded(st, wf, 1, 1), 0);
    assert_string_equal(k8s_json_str(st, "phase", NULL), "Succeeded");
    cJSON_Delete(st);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_diff_server_set_fields_ignored),
        cmocka_unit_test(test_diff_fields),
        cmocka_unit_test(test_diff_cap_and_types),
        cmocka_unit_test(test_diff_alloc_failures),
        cmocka_unit_test(test_spec_defaults),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_backup_keep),
        cmocka_unit_test(test_workflow_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
