/*
 * test_upgrade.c - the step machine's status transitions (upgrade.c) and
 * the spec parser (spec.c): no I/O, just JSON in and out; and the scan of
 * the state folder for update.sh attempts (upgrade.c), which fails closed.
 */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "failalloc.h"
#include "k8s.h"
#include "testutil.h"
#include "upgrade/steps_int.h"
#include "upgrade/spec.h"
#include "upgrade/upgrade.h"

/* the upgrade's steps table drives the engine's transitions */
#define WF (&tqu_upgrade_workflow)

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

static const char *cond(const cJSON *status, const char *type, const char *field)
{
    cJSON *c;
    cJSON_ArrayForEach(c, k8s_json_get(status, "conditions", NULL)) {
        const char *t = k8s_json_str(c, "type", NULL);
        if (t && !strcmp(t, type))
            return k8s_json_str(c, field, NULL);
    }
    return NULL;
}

static void test_init_steps_order_and_keep(void **state)
{
    (void)state;
    cJSON *st = parse("{\"steps\":[{\"name\":\"Upgrade\",\"state\":\"Succeeded\",\"attempts\":1},"
                      "{\"name\":\"Bogus\",\"state\":\"Failed\"}]}");
    assert_int_equal(tqu_status_init_steps(st, WF), 0);
    cJSON *steps = cJSON_GetObjectItem(st, "steps");
    assert_int_equal(cJSON_GetArraySize(steps), TQU_STEP_COUNT);
    for (int i = 0; i < TQU_STEP_COUNT; i++)
        assert_string_equal(k8s_json_str(cJSON_GetArrayItem(steps, i), "name", NULL), WF->steps[i].name);
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_UPGRADE), "Succeeded");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_VALIDATE), "Pending");
    assert_int_equal(tqu_status_next_step(st, WF), TQU_STEP_VALIDATE);
    cJSON_Delete(st);
}

static void test_step_lifecycle_and_conditions(void **state)
{
    (void)state;
    cJSON *st = cJSON_CreateObject();
    tqu_status_init_steps(st, WF);

    assert_int_equal(tqu_status_step_start(st, WF, TQU_STEP_VALIDATE, "checking", 3), 0);
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_VALIDATE), "Running");
    assert_string_equal(k8s_json_str(st, "phase", NULL), "Running");
    assert_string_equal(k8s_json_str(st, "currentStep", NULL), "Validate");
    assert_int_equal(k8s_json_int(tqu_status_step(st, WF, TQU_STEP_VALIDATE), 0, "attempts", NULL), 1);
    assert_non_null(k8s_json_str(st, "startedAt", NULL));

    tqu_outcome o = { .kind = TQU_OUT_DONE };
    strcpy(o.message, "route ok");
    assert_int_equal(tqu_status_apply(st, WF, TQU_STEP_VALIDATE, &o, 3), 0);
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_VALIDATE), "Succeeded");
    assert_non_null(k8s_json_str(tqu_status_step(st, WF, TQU_STEP_VALIDATE), "completedAt", NULL));
    assert_int_equal(k8s_json_int(st, 0, "observedGeneration", NULL), 3);
    assert_string_equal(cond(st, "Reconciling", "status"), "True");
    assert_string_equal(cond(st, "Ready", "status"), "False");
    assert_string_equal(cond(st, "Stalled", "status"), "False");
    assert_int_equal(tqu_status_next_step(st, WF), TQU_STEP_PREFLIGHT);

    /* blocked: Stalled=True with the reason; a person must act */
    tqu_status_step_start(st, WF, TQU_STEP_PREFLIGHT, "checking", 3);
    tqu_outcome b = { .kind = TQU_OUT_BLOCKED, .reason = "DiskUsageTooHigh" };
    strcpy(b.message, "used + 70 GiB is 85 % of /qaxdata");
    tqu_status_apply(st, WF, TQU_STEP_PREFLIGHT, &b, 3);
    assert_string_equal(k8s_json_str(st, "phase", NULL), "Blocked");
    assert_string_equal(cond(st, "Stalled", "status"), "True");
    assert_string_equal(cond(st, "Stalled", "reason"), "DiskUsageTooHigh");
    assert_string_equal(cond(st, "Reconciling", "status"), "False");
    assert_non_null(strstr(k8s_json_str(st, "message", NULL), "Preflight: used + 70 GiB"));

    /* the same outcome again changes nothing at all (no churn) */
    char *before = cJSON_PrintUnformatted(st);
    tqu_status_apply(st, WF, TQU_STEP_PREFLIGHT, &b, 3);
    char *after = cJSON_PrintUnformatted(st);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* lastTransitionTime moves only when a condition's status flips */
    const char *ltt = cond(st, "Stalled", "lastTransitionTime");
    char saved[64];
    snprintf(saved, sizeof(saved), "%s", ltt);
    strcpy(b.message, "another message, same status");
    tqu_status_apply(st, WF, TQU_STEP_PREFLIGHT, &b, 3);
    assert_string_equal(cond(st, "Stalled", "lastTransitionTime"), saved);

    /* waiting for the window: Pending step, phase Waiting, Reconciling */
    tqu_outcome w = { .kind = TQU_OUT_WAIT, .reason = "WaitingForWindow", .requeue_after = 100 };
    strcpy(w.message, "window opens at ...");
    tqu_status_apply(st, WF, TQU_STEP_UPGRADE, &w, 3);
    assert_string_equal(k8s_json_str(st, "phase", NULL), "Waiting");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_UPGRADE), "Pending");
    assert_string_equal(cond(st, "Reconciling", "status"), "True");
    assert_string_equal(cond(st, "Stalled", "status"), "False");
    cJSON_Delete(st);
}

/* A step that starts after the resource was Blocked by the one-at-a-time
 * slot (or Failed, before a new generation) is Running with the conditions
 * of Running while it runs: Reconciling, not Stalled (kubectl wait, Argo CD
 * and Flux read the conditions; before, Stalled=True AnotherUpgradeActive
 * stayed until the step's outcome). */
static void test_step_start_after_blocked_clears_stalled(void **state)
{
    (void)state;
    cJSON *st = cJSON_CreateObject();
    tqu_status_init_steps(st, WF);
    assert_int_equal(tqu_status_set_phase(st, "Blocked", "AnotherUpgradeActive", "another upgrade (x/y)", 4), 0);
    assert_string_equal(cond(st, "Stalled", "status"), "True");

    assert_int_equal(tqu_status_step_start(st, WF, TQU_STEP_PAAS, "darwin-client paas_check", 5), 0);
    assert_string_equal(k8s_json_str(st, "phase", NULL), "Running");
    assert_string_equal(cond(st, "Stalled", "status"), "False");
    assert_string_equal(cond(st, "Reconciling", "status"), "True");
    assert_string_equal(cond(st, "Reconciling", "reason"), "StepStarted");
    assert_string_equal(cond(st, "Ready", "status"), "False");
    assert_int_equal(k8s_json_int(cJSON_GetArrayItem(k8s_json_get(st, "conditions", NULL), 0), 0,
                                  "observedGeneration", NULL), 5);
    assert_int_equal(k8s_json_int(st, 0, "observedGeneration", NULL), 5);
    cJSON_Delete(st);
}

static void test_new_generation_retries(void **state)
{
    (void)state;
    /* Failed Upgrade after the cluster changed: the failed step reruns,
     * and so do the checks, before any vendor command (issue: a retry
     * after a failure ran update.sh with a route nobody checked) */
    cJSON *st = parse("{\"steps\":[{\"name\":\"Validate\",\"state\":\"Succeeded\"},"
                      "{\"name\":\"Preflight\",\"state\":\"Succeeded\"},"
                      "{\"name\":\"BackupDeployments\",\"state\":\"Succeeded\"},"
                      "{\"name\":\"PaasCheck\",\"state\":\"Succeeded\"},"
                      "{\"name\":\"SabreCleanup\",\"state\":\"Skipped\"},"
                      "{\"name\":\"Upgrade\",\"state\":\"Failed\",\"completedAt\":\"x\"}]}");
    tqu_status_init_steps(st, WF);
    tqu_status_new_generation(st, WF);
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_VALIDATE), "Pending");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_PREFLIGHT), "Pending");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_BACKUP), "Succeeded");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_SABRE), "Skipped");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_UPGRADE), "Pending");
    assert_null(k8s_json_str(tqu_status_step(st, WF, TQU_STEP_UPGRADE), "completedAt", NULL));
    assert_int_equal(tqu_status_next_step(st, WF), TQU_STEP_VALIDATE);
    cJSON_Delete(st);

    /* update.sh running: the spec is frozen, nothing is reset under it */
    st = parse("{\"steps\":[{\"name\":\"Validate\",\"state\":\"Succeeded\"},"
               "{\"name\":\"Preflight\",\"state\":\"Succeeded\"},"
               "{\"name\":\"BackupDeployments\",\"state\":\"Succeeded\"},"
               "{\"name\":\"PaasCheck\",\"state\":\"Succeeded\"},"
               "{\"name\":\"SabreCleanup\",\"state\":\"Skipped\"},"
               "{\"name\":\"Upgrade\",\"state\":\"Running\"}]}");
    tqu_status_init_steps(st, WF);
    tqu_status_new_generation(st, WF);
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_VALIDATE), "Succeeded");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_UPGRADE), "Running");
    assert_int_equal(tqu_status_next_step(st, WF), TQU_STEP_UPGRADE);
    assert_true(tqu_status_changes_started(st, WF));
    cJSON_Delete(st);

    /* all done: a new generation redoes nothing */
    st = parse("{}");
    tqu_status_init_steps(st, WF);
    for (int i = 0; i < TQU_STEP_COUNT; i++)
        cJSON_ReplaceItemInObject(tqu_status_step(st, WF, i), "state", cJSON_CreateString("Succeeded"));
    tqu_status_new_generation(st, WF);
    assert_int_equal(tqu_status_next_step(st, WF), TQU_STEP_COUNT);
    cJSON_Delete(st);

    /* before anything changed (a dry run, a blocked preflight): the
     * read-only checks run again too */
    st = parse("{\"steps\":[{\"name\":\"Validate\",\"state\":\"Succeeded\"},"
               "{\"name\":\"Preflight\",\"state\":\"Blocked\"}]}");
    tqu_status_init_steps(st, WF);
    tqu_status_new_generation(st, WF);
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_VALIDATE), "Pending");
    assert_string_equal(tqu_status_step_state(st, WF, TQU_STEP_PREFLIGHT), "Pending");
    cJSON_Delete(st);
}

static void test_history(void **state)
{
    (void)state;
    cJSON *st = parse("{}");
    assert_int_equal(tqu_status_history_start(st, 1), 0);
    assert_int_equal(tqu_status_history_start(st, 1), 0);   /* the same attempt goes on */
    cJSON *h = cJSON_GetObjectItem(st, "history");
    assert_int_equal(cJSON_GetArraySize(h), 1);
    assert_string_equal(k8s_json_str(cJSON_GetArrayItem(h, 0), "outcome", NULL), "Running");
    /* a newer generation supersedes an unfinished attempt */
    assert_int_equal(tqu_status_history_start(st, 2), 0);
    assert_int_equal(cJSON_GetArraySize(h), 2);
    assert_string_equal(k8s_json_str(cJSON_GetArrayItem(h, 1), "outcome", NULL), "Superseded");
    assert_non_null(k8s_json_str(cJSON_GetArrayItem(h, 1), "completed", NULL));
    assert_int_equal(tqu_status_history_end(st, "Failed", "UpgradeFailed", 1, 3), 0);
    cJSON *e = cJSON_GetArrayItem(h, 0);
    assert_int_equal(k8s_json_int(e, 0, "generation", NULL), 2);
    assert_string_equal(k8s_json_str(e, "outcome", NULL), "Failed");
    assert_string_equal(k8s_json_str(e, "reason", NULL), "UpgradeFailed");
    assert_int_equal(k8s_json_int(e, 0, "exitCode", NULL), 3);
    /* ending twice changes nothing */
    assert_int_equal(tqu_status_history_end(st, "Succeeded", "X", 0, 0), 0);
    assert_string_equal(k8s_json_str(e, "outcome", NULL), "Failed");
    /* at most 20, newest first */
    for (int g = 3; g < 40; g++) {
        tqu_status_history_start(st, g);
        tqu_status_history_end(st, "Succeeded", "Done", 0, 0);
    }
    assert_int_equal(cJSON_GetArraySize(h), TQU_HISTORY_MAX);
    assert_int_equal(k8s_json_int(cJSON_GetArrayItem(h, 0), 0, "generation", NULL), 39);
    cJSON_Delete(st);
}

static void test_succeeded_and_phases(void **state)
{
    (void)state;
    cJSON *st = cJSON_CreateObject();
    tqu_status_init_steps(st, WF);
    tqu_status_step_start(st, WF, TQU_STEP_VERIFY, "x", 3);
    assert_int_equal(tqu_status_succeeded(st, WF, 2, 0), 0);
    assert_string_equal(k8s_json_str(st, "phase", NULL), "Succeeded");
    assert_null(k8s_json_get(st, "currentStep", NULL));
    assert_string_equal(cond(st, "Ready", "status"), "True");
    assert_string_equal(cond(st, "Ready", "reason"), "UpgradeSucceeded");
    assert_string_equal(cond(st, "Reconciling", "status"), "False");
    assert_non_null(k8s_json_str(st, "completedAt", NULL));

    tqu_status_set_phase(st, "Paused", "Paused", "paused before Upgrade", 3);
    assert_string_equal(cond(st, "Ready", "status"), "False");
    assert_string_equal(cond(st, "Stalled", "status"), "False");
    assert_string_equal(cond(st, "Reconciling", "status"), "False");
    assert_null(k8s_json_str(st, "completedAt", NULL));

    tqu_status_set_phase(st, "Failed", "UpgradeFailed", "update.sh exited 1", 3);
    assert_string_equal(cond(st, "Stalled", "status"), "True");
    assert_string_equal(cond(st, "Ready", "reason"), "UpgradeFailed");

    assert_int_equal(tqu_status_succeeded(st, WF, 4, 1), 0);
    assert_string_equal(cond(st, "Ready", "reason"), "DryRunComplete");
    assert_int_equal(cond(st, "Ready", "status")[0], 'T');
    cJSON_Delete(st);
}

static void test_transitions_alloc_failures(void **state)
{
    (void)state;
    for (long n = 1; n < 400; n++) {
        cJSON *st = cJSON_CreateObject();
        assert_non_null(st);
        failalloc_fail_at(n);
        int rc = tqu_status_init_steps(st, WF);
        if (!rc)
            rc = tqu_status_step_start(st, WF, TQU_STEP_PAAS, "running", 3);
        tqu_outcome o = { .kind = TQU_OUT_BLOCKED, .reason = "PaasCheckFailed" };
        strcpy(o.message, "mongo failed");
        if (!rc)
            rc = tqu_status_apply(st, WF, TQU_STEP_PAAS, &o, 1);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        cJSON_Delete(st);
        if (!failed) {
            assert_int_equal(rc, 0);
            return;
        }
    }
    fail_msg("transitions never ran without failing");
}

/* ------------------------------------------------------------------ spec */

static const char *full =
    "{\"spec\":{\"fromVersion\":\"10.6.0.2600\",\"initialVersion\":\"10.6.0.2000\","
    "\"toVersion\":\"10.7.0.2800\",\"machines\":6,"
    "\"window\":{\"start\":\"2026-12-05T22:00:00+08:00\",\"end\":\"2026-12-06T04:00:00+08:00\"},"
    "\"ssh\":{\"passwordSecretRef\":{\"name\":\"tianqing-ssh\",\"key\":\"password\"}},"
    "\"timeouts\":{\"upgrade\":\"1h30m\"}}}";

static void test_spec_defaults_and_window(void **state)
{
    (void)state;
    tqu_spec s;
    const char *reason;
    char msg[512];
    cJSON *obj = parse(full);
    assert_int_equal(tqu_spec_parse(obj, &s, &reason, msg, sizeof(msg)), 0);
    assert_string_equal(s.from_version, "10.6.0.2600");
    assert_int_equal(s.machines, 6);
    assert_string_equal(s.packages_root, "/qaxdata/cli");
    assert_string_equal(s.ssh_user, "root");
    assert_int_equal(s.ssh_port, 22);
    assert_int_equal(s.data_backup_enabled, 1);
    assert_string_equal(s.backup_dir, "/qaxdata/tianqing-upgrade/backups");
    assert_int_equal(s.disk_reserve_gib, 70);
    assert_int_equal(s.disk_max_usage_percent, 80);
    assert_string_equal(s.cdn_deployment, "darwin-cdn");
    assert_true(s.timeout_paas_s == 900);
    assert_true(s.timeout_upgrade_s == 5400);
    assert_true(s.timeout_verify_s == 1200);
    assert_int_equal(s.has_window, 1);
    /* 22:00 at +08:00 is 14:00 UTC */
    char t[40];
    k8s_time_format(s.window_start, -1, t, sizeof(t));
    assert_string_equal(t, "2026-12-05T14:00:00Z");
    assert_int_equal((long)(s.window_end - s.window_start), 6 * 3600);
    cJSON_Delete(obj);
}

static void test_spec_refusals(void **state)
{
    (void)state;
    struct { const char *json, *reason, *msg; } cases[] = {
        { "{\"spec\":{\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":3}}",
          "InvalidSpec", "spec.fromVersion: required" },
        { "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":5}}",
          "UnsupportedTopology", "5 machines" },
        { "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":3,"
          "\"window\":{\"start\":\"2026-12-05T22:00:00+08:00\",\"end\":\"2026-12-05T21:00:00+08:00\"},"
          "\"ssh\":{\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}}}}",
          "InvalidWindow", "is not after start" },
        { "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":3,"
          "\"window\":{\"start\":\"tomorrow\",\"end\":\"2026-12-05T21:00:00Z\"},"
          "\"ssh\":{\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}}}}",
          "InvalidWindow", "spec.window.start: \"tomorrow\"" },
        { "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":3}}",
          "InvalidSpec", "spec.ssh.passwordSecretRef" },
        { "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":3,"
          "\"ssh\":{\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}},\"timeouts\":{\"upgrade\":\"90 minutes\"}}}",
          "InvalidSpec", "spec.timeouts.upgrade" },
        { "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\",\"machines\":3,"
          "\"ssh\":{\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}},\"backupDir\":\"relative/dir\"}}",
          "InvalidSpec", "spec.backupDir" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tqu_spec s;
        const char *reason = NULL;
        char msg[512] = "";
        cJSON *obj = parse(cases[i].json);
        assert_int_equal(tqu_spec_parse(obj, &s, &reason, msg, sizeof(msg)), K8S_EINVAL);
        if (!reason || strcmp(reason, cases[i].reason) || !strstr(msg, cases[i].msg))
            fail_msg("case %zu: got %s: %s", i, reason ? reason : "(null)", msg);
        cJSON_Delete(obj);
    }
}

static double dur(const char *s)
{
    double v = -7;
    assert_int_equal(tqu_parse_duration(s, &v), K8S_OK);
    return v;
}

static void test_durations(void **state)
{
    static const char *const bad[] = {
        "", "15", "-5m", "+5m", "5 m", " 5m", "5m ", "m", "1.5", "1.h", ".5h", "1e3s", "0x10s", "1E3s",
        "inf", "nanh", "5mm", "5M", "5H", "1d", "1hx", "1h-1m", "1,5h", "\xc2\xb5", "1\xc2\xb5",
    };
    static const char *const too_long[] = {
        "8760h1ns", "8760.000001h", "525601m", "31536001s", "99999999h", "8759h60m1s",
        "999999999999999999999999999999999999999999999999999999999999999h",
        "1h99999999999999999999999999999999999999999999999999999999999999999999999999999999999ns",
    };
    double v;
    (void)state;
    assert_true(dur("15m") == 900);
    assert_true(dur("1h30m") == 5400);
    assert_true(dur("1.5h") == 5400);
    assert_true(dur("500ms") == 0.5);
    assert_true(dur("90s") == 90);
    assert_true(dur("1ns") == 1e-9);
    assert_true(dur("1us") == 1e-6 && dur("1\xc2\xb5s") == 1e-6 && dur("1\xce\xbcs") == 1e-6);
    assert_true(dur("0s") == 0);
    assert_true(dur("0001h") == 3600);
    assert_true(dur("1h1h") == 7200);
    /* the longest accepted, however written */
    assert_true(dur("8760h") == TQU_DURATION_MAX_S);
    assert_true(dur("525600m") == TQU_DURATION_MAX_S);
    assert_true(dur("31536000s") == TQU_DURATION_MAX_S);
    assert_true(dur("31536000000000000ns") == TQU_DURATION_MAX_S);
    assert_true(dur("8759h59m59.5s") == TQU_DURATION_MAX_S - 0.5);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -7;
        if (tqu_parse_duration(bad[i], &v) != K8S_EINVAL || v != -7)
            fail_msg("\"%s\" was not refused as malformed", bad[i]);
    }
    for (size_t i = 0; i < sizeof(too_long) / sizeof(too_long[0]); i++) {
        v = -7;
        if (tqu_parse_duration(too_long[i], &v) != K8S_ETOOBIG || v != -7)
            fail_msg("\"%s\" was not refused as too long", too_long[i]);
    }
    assert_int_equal(tqu_parse_duration(NULL, &v), K8S_EINVAL);
    assert_int_equal(tqu_parse_duration("1h", NULL), K8S_EINVAL);
}

/* Seconds to a child's timeout_ms: never overflows, never turns a limit into "none". */
static void test_duration_ms(void **state)
{
    (void)state;
    assert_int_equal(tqu_duration_ms(900), 900000);
    assert_int_equal(tqu_duration_ms(0.5), 500);
    assert_int_equal(tqu_duration_ms(1e-9), 1);          /* 1ns: 1 ms, not 0 = no limit */
    assert_int_equal(tqu_duration_ms(0.0011), 2);
    assert_int_equal(tqu_duration_ms(0), 0);
    assert_int_equal(tqu_duration_ms(-1), 0);
    assert_int_equal(tqu_duration_ms(NAN), 0);
    assert_int_equal(tqu_duration_ms(TQU_DURATION_MAX_S), 31536000000L);
    assert_int_equal(tqu_duration_ms(99999999.0 * 3600), 359999996400000L);
    assert_int_equal(tqu_duration_ms(9.3e15), LONG_MAX);   /* * 1000 is past LONG_MAX */
    assert_int_equal(tqu_duration_ms(1e300), LONG_MAX);
    assert_int_equal(tqu_duration_ms(INFINITY), LONG_MAX);
}

/* The spec refuses a time limit too long to keep, and says which and why. */
static void test_spec_timeout_bounds(void **state)
{
    static const struct { const char *key, *value, *msg; } cases[] = {
        { "upgrade", "99999999h", "spec.timeouts.upgrade: \"99999999h\" is longer than 8760h (365 days)" },
        { "paasCheck", "8760h1s", "spec.timeouts.paasCheck: \"8760h1s\" is longer than 8760h" },
        { "verify", "0s", "spec.timeouts.verify: \"0s\" is not a positive duration such as 20m" },
        { "verify", "1e3s", "spec.timeouts.verify: \"1e3s\" is not a positive duration" },
    };
    char json[1024], msg[512];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tqu_spec s;
        const char *reason = NULL;
        snprintf(json, sizeof(json),
                 "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\","
                 "\"machines\":3,\"ssh\":{\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}},"
                 "\"timeouts\":{\"%s\":\"%s\"}}}", cases[i].key, cases[i].value);
        cJSON *obj = parse(json);
        msg[0] = '\0';
        assert_int_equal(tqu_spec_parse(obj, &s, &reason, msg, sizeof(msg)), K8S_EINVAL);
        assert_string_equal(reason, "InvalidSpec");
        if (!strstr(msg, cases[i].msg))
            fail_msg("case %zu: got %s", i, msg);
        cJSON_Delete(obj);
    }
    snprintf(json, sizeof(json),
             "{\"spec\":{\"fromVersion\":\"1.1.1.1\",\"initialVersion\":\"1.1.1.1\",\"toVersion\":\"1.1.1.2\","
             "\"machines\":3,\"ssh\":{\"passwordSecretRef\":{\"name\":\"s\",\"key\":\"k\"}},"
             "\"timeouts\":{\"upgrade\":\"8760h\",\"paasCheck\":\"1ns\"}}}");
    cJSON *obj = parse(json);
    tqu_spec s;
    assert_int_equal(tqu_spec_parse(obj, &s, NULL, msg, sizeof(msg)), K8S_OK);
    assert_true(s.timeout_upgrade_s == TQU_DURATION_MAX_S);
    assert_int_equal(tqu_duration_ms(s.timeout_paas_s), 1);
    cJSON_Delete(obj);
}

/* In a child without the capabilities that let root read any folder: the
 * scan's result (0 or -1) and errno, as exit status rc*1000+errno. */
static int scan_without_dac(const char *dir)
{
    pid_t pid = fork();
    int ws;
    assert_true(pid >= 0);
    if (pid == 0) {
        cap_value_t v[] = { CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH };
        cap_t c = cap_get_proc();
        char buf[PATH_MAX];
        long long gen = -1;
        if (!c || cap_set_flag(c, CAP_EFFECTIVE, 2, v, CAP_CLEAR) || cap_set_proc(c))
            _exit(99);
        cap_free(c);
        int rc = tqu__latest_attempt(dir, buf, sizeof(buf), &gen);
        _exit(rc ? 100 + (errno & 63) : (gen == 0 ? 1 : 2));
    }
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    return WEXITSTATUS(ws);
}

/* A failed scan of the state folder is an error, never "no attempt yet"
 * (before: opendir/readdir failures read as generation 0, and update.sh
 * could be launched again). */
static void test_latest_attempt_fails_closed(void **state)
{
    char dir[PATH_MAX], sub[PATH_MAX + 32], buf[PATH_MAX + 32], file[PATH_MAX + 32];
    long long gen = -1;
    (void)state;

    assert_int_equal(test_mkdtemp(dir, sizeof(dir), "tqu-attempt"), 0);
    /* none yet; no folder at all is none too */
    assert_int_equal(tqu__latest_attempt(dir, buf, sizeof(buf), &gen), 0);
    assert_int_equal(gen, 0);
    assert_string_equal(buf, "");
    snprintf(sub, sizeof(sub), "%s/missing", dir);
    assert_int_equal(tqu__latest_attempt(sub, buf, sizeof(buf), &gen), 0);
    assert_int_equal(gen, 0);
    /* the newest generation, other names ignored */
    const char *names[] = { "upgrade-g1", "upgrade-g12", "upgrade-g3x", "upgrade-g", "other" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]);
        assert_int_equal(mkdir(sub, 0700), 0);
    }
    assert_int_equal(tqu__latest_attempt(dir, buf, sizeof(buf), &gen), 0);
    assert_int_equal(gen, 12);
    snprintf(sub, sizeof(sub), "%s/upgrade-g12", dir);
    assert_string_equal(buf, sub);
    /* not a folder */
    snprintf(file, sizeof(file), "%s/upgrade-g12/file", dir);
    int fd = open(file, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    gen = 7;
    errno = 0;
    assert_int_equal(tqu__latest_attempt(file, buf, sizeof(buf), &gen), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(gen, 0);
    /* an unreadable folder (root without its override capabilities) */
    assert_int_equal(chmod(dir, 0300), 0);
    int r = scan_without_dac(dir);
    assert_int_equal(chmod(dir, 0700), 0);
    if (r == 99) {
        test_rmtree(dir);
        skip();
    }
    assert_int_equal(r, 100 + EACCES);
    test_rmtree(dir);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_steps_order_and_keep),
        cmocka_unit_test(test_step_lifecycle_and_conditions),
        cmocka_unit_test(test_step_start_after_blocked_clears_stalled),
        cmocka_unit_test(test_new_generation_retries),
        cmocka_unit_test(test_succeeded_and_phases),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_transitions_alloc_failures),
        cmocka_unit_test(test_spec_defaults_and_window),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_duration_ms),
        cmocka_unit_test(test_spec_timeout_bounds),
        cmocka_unit_test(test_latest_attempt_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
