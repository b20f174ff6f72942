/*
 * test_plugin.c - kubectl-tianqing without a server (plugin/): the status,
 * plan and history screens byte for byte against the golden files in
 * tests/fixtures/plugin/ (one status JSON per phase, blocked with reasons,
 * no status, an unobserved generation); durations and times; README's
 * reasons table against the plugin's copy; kinds and KIND/NAME; the
 * command line; what `wait` sees; failed allocations while rendering.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "failalloc.h"
#include "args.h"
#include "kinds.h"
#include "remedies.h"
#include "render.h"

/* the fixtures' "now" */
#define NOW_TEXT "2026-12-06T00:10:00Z"

static char *slurp(const char *rel)
{
    const char *repo = getenv("TQU_REPO");
    char path[PATH_MAX];
    FILE *f;
    char *buf = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", repo ? repo : ".", rel);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static cJSON *fixture(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof(rel), "tests/fixtures/plugin/%s.json", name);
    char *text = slurp(rel);
    cJSON *obj = cJSON_Parse(text);
    free(text);
    assert_non_null(obj);
    return obj;
}

static time_t now(void)
{
    time_t t;
    assert_int_equal(kp_parse_time(NOW_TEXT, &t), 0);
    return t;
}

/* render what of fixture name and compare with <name>.<what>.txt */
static void golden(const char *name, const char *what)
{
    cJSON *obj = fixture(name);
    k8s_buf b;
    char rel[256];
    int rc;

    k8s_buf_init(&b, 0);
    if (!strcmp(what, "status"))
        rc = kp_render_status(&b, obj, &kp_kinds[0], now());
    else if (!strcmp(what, "plan"))
        rc = kp_render_plan(&b, obj);
    else
        rc = kp_render_history(&b, obj);
    assert_int_equal(rc, 0);
    snprintf(rel, sizeof(rel), "tests/fixtures/plugin/%s.%s.txt", name, what);
    char *want = slurp(rel);
    assert_string_equal(b.data ? b.data : "", want);
    free(want);
    k8s_buf_release(&b);
    cJSON_Delete(obj);
}

static void test_status_missing(void **s) { (void)s; golden("missing-status", "status"); }
static void test_status_running(void **s) { (void)s; golden("running", "status"); }
static void test_status_slow(void **s) { (void)s; golden("slow", "status"); }
static void test_status_blocked(void **s) { (void)s; golden("blocked", "status"); }
static void test_status_failed(void **s) { (void)s; golden("failed", "status"); }
static void test_status_succeeded(void **s) { (void)s; golden("succeeded", "status"); }
static void test_status_dry_run(void **s) { (void)s; golden("dry-run", "status"); }
static void test_status_paused(void **s) { (void)s; golden("paused", "status"); }
static void test_status_waiting(void **s) { (void)s; golden("waiting", "status"); }
static void test_status_unobserved(void **s) { (void)s; golden("unobserved", "status"); }
static void test_plan(void **s) { (void)s; golden("running", "plan"); golden("missing-status", "plan"); }
static void test_history(void **s) { (void)s; golden("slow", "history"); golden("missing-status", "history"); }

/* The screens hold what the brief asks, whatever the goldens say. */
static void test_status_essentials(void **s)
{
    (void)s;
    cJSON *obj = fixture("running");
    k8s_buf b;
    k8s_buf_init(&b, 0);
    assert_int_equal(kp_render_status(&b, obj, &kp_kinds[0], now()), 0);
    assert_non_null(strstr(b.data, "\nAssessment:  Progressing\n"));
    assert_non_null(strstr(b.data, "\nTarget:      10.6.0.2600 -> 10.7.0.2800\n"));
    assert_non_null(strstr(b.data, "\nStep:        step 6 of 8: Upgrade (Running)\n"));
    assert_non_null(strstr(b.data, "\nEst. left:   40m (estimate 1h from the vendor's figure; running 20m)\n"));
    assert_non_null(strstr(b.data, "  | [5/9] loading images\n"));
    assert_null(strstr(b.data, "| line 2\n"));     /* only the last 10 lines */
    assert_null(strstr(b.data, " \n"));             /* no line ends in a blank */
    k8s_buf_release(&b);
    cJSON_Delete(obj);
}

/* An estimate only while the Upgrade step runs. */
static void test_no_estimate_elsewhere(void **s)
{
    (void)s;
    const char *names[] = {"blocked", "failed", "succeeded", "paused", "waiting", "missing-status"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cJSON *obj = fixture(names[i]);
        k8s_buf b;
        k8s_buf_init(&b, 0);
        assert_int_equal(kp_render_status(&b, obj, &kp_kinds[0], now()), 0);
        assert_null(strstr(b.data, "Est. left"));
        k8s_buf_release(&b);
        cJSON_Delete(obj);
    }
}

/* The status screen of a resource given as JSON text; the caller frees it. */
static char *screen_of(const char *json)
{
    cJSON *obj = cJSON_Parse(json);
    k8s_buf b;
    assert_non_null(obj);
    k8s_buf_init(&b, 0);
    assert_int_equal(kp_render_status(&b, obj, &kp_kinds[0], now()), 0);
    cJSON_Delete(obj);
    return b.data;
}

#define OBJ(status) "{\"metadata\":{\"name\":\"n\",\"namespace\":\"s\",\"generation\":1}," \
                    "\"status\":{\"observedGeneration\":1," status "}}"
#define STALLED(r, m) "\"conditions\":[{\"type\":\"Stalled\",\"status\":\"True\",\"reason\":\"" r \
                      "\",\"message\":\"" m "\"}]"

/* Blocked only by the one-upgrade slot: no person need act. */
static void test_status_queued(void **s)
{
    (void)s;
    char *t = screen_of(OBJ("\"phase\":\"Blocked\"," STALLED("AnotherUpgradeActive", "another upgrade is in progress")));
    assert_non_null(strstr(t, "\nAssessment:  Blocked: waiting for another upgrade to finish, then it starts by itself\n"));
    assert_non_null(strstr(t, "\nReasons (nothing to do: it waits its turn):\n"
                              "  AnotherUpgradeActive: another upgrade is in progress\n    Remedy: another TianqingUpgrade"));
    assert_null(strstr(t, "a person must act"));
    free(t);
    t = screen_of(OBJ("\"phase\":\"Blocked\"," STALLED("AnotherRestoreActive", "another restore is in progress")));
    assert_non_null(strstr(t, "\nAssessment:  Blocked: waiting for another restore to finish, then it starts by itself\n"));
    free(t);
    t = screen_of(OBJ("\"phase\":\"Blocked\"," STALLED("PackageMissing", "no package")));
    assert_non_null(strstr(t, "\nAssessment:  Blocked: a person must act\n"));
    assert_non_null(strstr(t, "\nReasons (a person must act):\n  PackageMissing: no package\n"));
    free(t);
}

/* A message of several lines (one quoting install_saas.log) keeps the
 * screen's layout: its later lines indented under it, trailing newlines
 * dropped. */
static void test_status_multiline_message(void **s)
{
    (void)s;
    char *t = screen_of(OBJ("\"phase\":\"Failed\",\"message\":\"Upgrade: exited 1: log:\\nline a\\n\\nline b\\n\","
                            STALLED("UpgradeFailed", "Upgrade: exited 1: log:\\nline a\\nline b\\n")));
    assert_non_null(strstr(t, "\nMessage:     Upgrade: exited 1: log:\n             line a\n\n             line b\n\n"));
    assert_non_null(strstr(t, "\n  UpgradeFailed: Upgrade: exited 1: log:\n    line a\n    line b\n    Remedy: update.sh exited"));
    assert_null(strstr(t, " \n"));             /* no line ends in a blank */
    free(t);
}
#undef OBJ
#undef STALLED

/* Every allocation of a screen failing in turn: a clean K8S_ENOMEM,
 * no crash, no leak (LeakSanitizer and valgrind look). */
static void test_alloc_failures(void **s)
{
    (void)s;
    const char *names[] = {"failed", "slow"};
    for (size_t i = 0; i < 2; i++) {
        cJSON *obj = fixture(names[i]);
        for (int what = 0; what < 3; what++) {
            for (long n = 1;; n++) {
                k8s_buf b;
                int rc;
                k8s_buf_init(&b, 0);
                failalloc_fail_at(n);
                rc = what == 0 ? kp_render_status(&b, obj, &kp_kinds[0], now())
                   : what == 1 ? kp_render_plan(&b, obj) : kp_render_history(&b, obj);
                int failed = failalloc_failed();
                failalloc_fail_at(0);
                k8s_buf_release(&b);
                if (!failed) {
                    assert_int_equal(rc, 0);
                    break;
                }
                assert_int_equal(rc, K8S_ENOMEM);
            }
        }
        cJSON_Delete(obj);
    }
}

/* ------------------------------------------------------------ times */

static void test_format_duration(void **s)
{
    (void)s;
    static const struct { long long secs; const char *want; } cases[] = {
        {-5, "0s"}, {0, "0s"}, {1, "1s"}, {59, "59s"}, {60, "1m"}, {61, "1m1s"},
        {3599, "59m59s"}, {3600, "1h"}, {3660, "1h1m"}, {3725, "1h2m"}, {7380, "2h3m"},
        {86399, "23h59m"}, {86400, "1d"}, {90000, "1d1h"}, {90061, "1d1h"}, {864000, "10d"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(kp_format_duration(cases[i].secs, buf, sizeof(buf)), cases[i].want);
}

static void test_parse_duration(void **s)
{
    (void)s;
    static const struct { const char *in; long long want; } ok[] = {
        {"0", 0}, {"90", 90}, {"90s", 90}, {"5m", 300}, {"1h30m", 5400}, {"1.5h", 5400},
        {"2h0m5s", 7205}, {"250ms", 1}, {"1m30s", 90}, {"3h", 10800},
    };
    static const char *bad[] = {"", "soon", "-5s", "5x", "m", "1h-5m", "5 m", "1e3s", "s5", "-5"};
    long long v;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(kp_parse_duration(ok[i].in, &v), 0);
        assert_int_equal(v, ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -42;
        assert_int_equal(kp_parse_duration(bad[i], &v), -1);
        assert_int_equal(v, -42);
    }
}

static void test_parse_time(void **s)
{
    (void)s;
    time_t t;
    assert_int_equal(kp_parse_time("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(kp_parse_time("2026-12-05T22:00:00Z", &t), 0);
    assert_int_equal(t, 1796508000);
    assert_int_equal(kp_parse_time("2026-12-05T22:00:00.123456Z", &t), 0);
    assert_int_equal(t, 1796508000);
    assert_int_equal(kp_parse_time("2026-12-06T06:00:00+08:00", &t), 0);
    assert_int_equal(t, 1796508000);
    assert_int_equal(kp_parse_time("2026-12-05T20:30:00-01:30", &t), 0);
    assert_int_equal(t, 1796508000);
    t = 7;
    const char *bad[] = {"", "2026-12-05", "2026-12-05T22:00:00", "2026-12-05T22:00:00Zx",
                         "2026-12-05T22:00:00+0800", "2026-12-05T22:00:00.Z", "yesterday"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kp_parse_time(bad[i], &t), -1);
    assert_int_equal(kp_parse_time(NULL, &t), -1);
    assert_int_equal(t, 7);
}

/* ------------------------------------------------------------ remedies */

/* Every row of README's "Every Blocked and Failed reason" table: each
 * reason of its first column has the plugin's row, with the same remedy
 * (README's text without its backticks); and the table is not empty. */
static void test_remedies_match_readme(void **s)
{
    (void)s;
    char *readme = slurp("README.md");
    char *sec = strstr(readme, "\n## Every Blocked and Failed reason");
    int rows = 0, reasons = 0;
    assert_non_null(sec);
    char *end = strstr(sec + 1, "\n## ");
    if (end)
        *end = '\0';
    for (char *line = strtok(sec, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "| `", 3) != 0)
            continue;
        rows++;
        char *c1 = line + 2, *bar = strchr(c1, '|');
        assert_non_null(bar);
        *bar = '\0';
        char *remedy = strrchr(bar + 1, '|');      /* the row ends in '|' */
        assert_non_null(remedy);
        *remedy = '\0';
        remedy = strrchr(bar + 1, '|');
        assert_non_null(remedy);
        remedy += 2;
        char want[1024];
        size_t n = 0;
        for (const char *p = remedy; *p && n + 1 < sizeof(want); p++)
            if (*p != '`')
                want[n++] = *p;
        while (n && want[n - 1] == ' ')
            n--;
        want[n] = '\0';
        for (char *r = strchr(c1, '`'); r; r = strchr(r + 1, '`')) {
            char *e = strchr(r + 1, '`');
            assert_non_null(e);
            *e = '\0';
            const kp_remedy *row = kp_remedy_find(r + 1);
            if (!row)
                fail_msg("README's reason %s has no row in plugin/remedies.c", r + 1);
            if (strcmp(row->remedy, want) != 0)
                fail_msg("%s: plugin says \"%s\", README \"%s\"", r + 1, row->remedy, want);
            reasons++;
            r = e;
        }
    }
    assert_true(rows >= 20);
    assert_true(reasons >= rows);
    free(readme);
}

static void test_remedy_lookup(void **s)
{
    (void)s;
    const kp_remedy *r = kp_remedy_find("NodeClockSkew");
    assert_non_null(r);
    assert_string_equal(r->step, "Preflight");
    assert_string_equal(r->remedy,
                        "the named nodes' clocks disagree with the controller's (or they are down): fix NTP/chrony");
    assert_null(kp_remedy_find("nodeclockskew"));   /* reasons are exact */
    assert_null(kp_remedy_find("SomethingNew"));
    assert_null(kp_remedy_find(""));
    assert_null(kp_remedy_find(NULL));
}

/* ------------------------------------------------------------ kinds */

static void test_kinds(void **s)
{
    (void)s;
    const char *words[][2] = {
        {"tqu", "tianqingupgrades"}, {"TianqingUpgrade", "tianqingupgrades"},
        {"tianqingupgrade", "tianqingupgrades"}, {"TIANQINGUPGRADES", "tianqingupgrades"},
        {"tianqingupgrades.upgrade.tianqing.io", "tianqingupgrades"},
        {"tqt", "tianqingtunings"}, {"tqap", "tianqingaccesspointupgrades"},
        {"TianqingRestore", "tianqingrestores"}, {"tqr", "tianqingrestores"},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        const kp_kind *k = kp_kind_find(words[i][0]);
        assert_non_null(k);
        assert_string_equal(k->res.plural, words[i][1]);
        assert_string_equal(k->res.group, "upgrade.tianqing.io");
        assert_string_equal(k->res.version, "v1alpha1");
        assert_true(k->res.namespaced);
    }
    assert_null(kp_kind_find("deployments"));
    assert_null(kp_kind_find("tianqingupgrades.apps"));
    assert_null(kp_kind_find(""));
    assert_null(kp_kind_find(NULL));
}

static void test_target_parse(void **s)
{
    (void)s;
    const kp_kind *k = NULL;
    const char *name = NULL;
    char msg[512];

    assert_int_equal(kp_target_parse("to-10.7.0.2800", &k, &name, msg, sizeof(msg)), 0);
    assert_string_equal(k->kind, "TianqingUpgrade");
    assert_string_equal(name, "to-10.7.0.2800");
    assert_int_equal(kp_target_parse("tqr/undo-it", &k, &name, msg, sizeof(msg)), 0);
    assert_string_equal(k->kind, "TianqingRestore");
    assert_string_equal(name, "undo-it");
    assert_int_equal(kp_target_parse("TianqingTuning/t", &k, &name, msg, sizeof(msg)), 0);
    assert_string_equal(k->kind, "TianqingTuning");

    assert_int_equal(kp_target_parse("deploy/x", &k, &name, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "deploy/x: unknown kind \"deploy\" (known: tianqingupgrade (tqu), "
                             "tianqingtuning (tqt), tianqingaccesspointupgrade (tqap), tianqingrestore (tqr))");
    assert_int_equal(kp_target_parse("tqu/", &k, &name, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "tqu/: the name after '/' is empty");
    assert_int_equal(kp_target_parse("/x", &k, &name, msg, sizeof(msg)), -1);
    assert_int_equal(kp_target_parse("tqu/a/b", &k, &name, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "tqu/a/b: want KIND/NAME or NAME");
    assert_int_equal(kp_target_parse("", &k, &name, msg, sizeof(msg)), -1);
    /* a short buffer is cut, never overrun */
    char tiny[8];
    assert_int_equal(kp_target_parse("deploy/x", &k, &name, tiny, sizeof(tiny)), -1);
    assert_string_equal(tiny, "deploy/");
}

/* ------------------------------------------------------------ arguments */

static int parse(kp_args *a, char *msg, ...)
{
    char *argv[32] = {"kubectl-tianqing"};
    int argc = 1;
    va_list ap;
    va_start(ap, msg);
    for (char *s; (s = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = s;
    va_end(ap);
    argv[argc] = NULL;
    return kp_args_parse(argc, argv, a, msg, 512);
}

static void test_args_ok(void **s)
{
    (void)s;
    kp_args a;
    char msg[512];

    assert_int_equal(parse(&a, msg, "status", NULL), 0);
    assert_string_equal(a.command, "status");
    assert_null(a.target);
    assert_null(a.namespace_);
    assert_false(a.all_namespaces);

    /* flags before and after, both spellings of a value */
    assert_int_equal(parse(&a, msg, "-n", "ns1", "status", "x", "--watch", "--kubeconfig=/k",
                           "--context", "c1", NULL), 0);
    assert_string_equal(a.command, "status");
    assert_string_equal(a.target, "x");
    assert_string_equal(a.namespace_, "ns1");
    assert_string_equal(a.kubeconfig, "/k");
    assert_string_equal(a.context, "c1");
    assert_true(a.watch);

    assert_int_equal(parse(&a, msg, "status", "-A", "-w", NULL), 0);
    assert_true(a.all_namespaces);
    assert_true(a.watch);
    assert_int_equal(parse(&a, msg, "--all-namespaces", "status", NULL), 0);
    assert_true(a.all_namespaces);
    assert_int_equal(parse(&a, msg, "plan", "-nns2", "tqu/x", NULL), 0);
    assert_string_equal(a.namespace_, "ns2");
    assert_string_equal(a.target, "tqu/x");
    assert_int_equal(parse(&a, msg, "history", "--namespace=ns3", "x", NULL), 0);
    assert_string_equal(a.namespace_, "ns3");

    assert_int_equal(parse(&a, msg, "wait", "x", "--timeout=90s", NULL), 0);
    assert_true(a.timeout_set);
    assert_int_equal(a.timeout_s, 90);
    assert_int_equal(parse(&a, msg, "wait", "x", "--timeout", "2h", NULL), 0);
    assert_int_equal(a.timeout_s, 7200);
    assert_int_equal(parse(&a, msg, "wait", "x", NULL), 0);
    assert_false(a.timeout_set);
    assert_int_equal(a.timeout_s, 0);

    /* -- ends the flags: a name may start with '-'... in principle */
    assert_int_equal(parse(&a, msg, "approve", "--", "-odd", NULL), 0);
    assert_string_equal(a.target, "-odd");

    /* help: on its own, for a command, by -h or by "help" */
    assert_int_equal(parse(&a, msg, "--help", NULL), 0);
    assert_true(a.help);
    assert_null(a.command);
    assert_int_equal(parse(&a, msg, "wait", "-h", NULL), 0);
    assert_true(a.help);
    assert_string_equal(a.command, "wait");
    assert_int_equal(parse(&a, msg, "help", "stop", NULL), 0);
    assert_true(a.help);
    assert_string_equal(a.command, "stop");
}

static void expect_usage(const char *want, ...)
{
    char *argv[32] = {"kubectl-tianqing"};
    int argc = 1;
    kp_args a;
    char msg[512];
    va_list ap;
    va_start(ap, want);
    for (char *s; (s = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = s;
    va_end(ap);
    argv[argc] = NULL;
    assert_int_equal(kp_args_parse(argc, argv, &a, msg, sizeof(msg)), -1);
    assert_string_equal(msg, want);
}

static void test_args_usage_errors(void **s)
{
    (void)s;
    expect_usage("no command given", NULL);
    expect_usage("no command given", "-n", "x", NULL);
    expect_usage("unknown command \"frob\"", "frob", NULL);
    expect_usage("unknown command \"frob\"", "help", "frob", NULL);
    expect_usage("unknown flag --frob", "status", "--frob", NULL);
    expect_usage("unknown flag -o", "status", "-o", "yaml", NULL);
    expect_usage("flag -n needs a value", "status", "-n", NULL);
    expect_usage("flag --kubeconfig needs a value", "status", "--kubeconfig", NULL);
    expect_usage("flag --timeout needs a value", "wait", "x", "--timeout", NULL);
    expect_usage("--namespace is empty", "status", "--namespace=", NULL);
    expect_usage("plan: a resource NAME (or KIND/NAME) is required", "plan", NULL);
    expect_usage("wait: a resource NAME (or KIND/NAME) is required", "wait", "--timeout=5s", NULL);
    expect_usage("approve: unexpected argument \"b\"", "approve", "a", "b", NULL);
    expect_usage("plan does not take -A/--all-namespaces", "plan", "x", "-A", NULL);
    expect_usage("status: -A/--all-namespaces lists every resource: give no NAME", "status", "x", "-A", NULL);
    expect_usage("wait does not take --watch", "wait", "x", "-w", NULL);
    expect_usage("status does not take --timeout", "status", "--timeout=5s", NULL);
    expect_usage("--timeout=soon: want a duration such as 90s, 30m or 2h", "wait", "x", "--timeout=soon", NULL);
}

static void test_commands_table(void **s)
{
    (void)s;
    const char *want[] = {"status", "plan", "history", "approve", "pause", "stop", "retry", "wait"};
    assert_int_equal(kp_ncommands, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < kp_ncommands; i++) {
        assert_string_equal(kp_commands[i].name, want[i]);
        assert_ptr_equal(kp_command_find(want[i]), &kp_commands[i]);
        assert_non_null(kp_commands[i].run);
        assert_non_null(kp_commands[i].help);
    }
    assert_null(kp_command_find("help"));
    assert_null(kp_command_find(NULL));
}

/* ------------------------------------------------------------ wait */

static kp_wait_state wait_on(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    kp_wait_state w = kp_wait_check(o);
    cJSON_Delete(o);
    return w;
}

static void test_wait_check(void **s)
{
    (void)s;
#define C(t, st, g) "{\"type\":\"" t "\",\"status\":\"" st "\",\"observedGeneration\":" #g "}"
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":1}}"), KP_WAIT_PENDING);
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":2},\"status\":{\"observedGeneration\":2,"
                             "\"conditions\":[" C("Ready", "True", 2) "," C("Stalled", "False", 2) "]}}"),
                     KP_WAIT_READY);
    /* Ready for an older generation: not yet */
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":3},\"status\":{\"observedGeneration\":2,"
                             "\"conditions\":[" C("Ready", "True", 2) "]}}"),
                     KP_WAIT_PENDING);
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":2},\"status\":{\"observedGeneration\":2,"
                             "\"conditions\":[" C("Ready", "False", 2) "," C("Stalled", "True", 2) "]}}"),
                     KP_WAIT_STALLED);
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":3},\"status\":{\"observedGeneration\":3,"
                             "\"conditions\":[" C("Stalled", "True", 2) "]}}"),
                     KP_WAIT_PENDING);
    /* no observedGeneration on the condition: status.observedGeneration */
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":4},\"status\":{\"observedGeneration\":4,"
                             "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}"),
                     KP_WAIT_READY);
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":4},\"status\":{\"observedGeneration\":3,"
                             "\"conditions\":[{\"type\":\"Stalled\",\"status\":\"True\"}]}}"),
                     KP_WAIT_PENDING);
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":1},\"status\":{\"observedGeneration\":1,"
                             "\"conditions\":[" C("Reconciling", "True", 1) "]}}"),
                     KP_WAIT_PENDING);
    /* waiting its turn for the one-upgrade slot: no person need act */
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":1},\"status\":{\"observedGeneration\":1,"
                             "\"phase\":\"Blocked\",\"conditions\":[{\"type\":\"Stalled\",\"status\":\"True\","
                             "\"reason\":\"AnotherUpgradeActive\",\"observedGeneration\":1}]}}"),
                     KP_WAIT_PENDING);
    /* ... and every other kind's slot the same */
    assert_int_equal(wait_on("{\"metadata\":{\"generation\":1},\"status\":{\"observedGeneration\":1,"
                             "\"phase\":\"Blocked\",\"conditions\":[{\"type\":\"Stalled\",\"status\":\"True\","
                             "\"reason\":\"AnotherAccessPointUpgradeActive\",\"observedGeneration\":1}]}}"),
                     KP_WAIT_PENDING);
#undef C
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_missing),
        cmocka_unit_test(test_status_running),
        cmocka_unit_test(test_status_slow),
        cmocka_unit_test(test_status_blocked),
        cmocka_unit_test(test_status_failed),
        cmocka_unit_test(test_status_succeeded),
        cmocka_unit_test(test_status_dry_run),
        cmocka_unit_test(test_status_paused),
        cmocka_unit_test(test_status_waiting),
        cmocka_unit_test(test_status_unobserved),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_status_essentials),
        cmocka_unit_test(test_no_estimate_elsewhere),
        cmocka_unit_test(test_status_queued),
        cmocka_unit_test(test_status_multiline_message),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_remedies_match_readme),
        cmocka_unit_test(test_remedy_lookup),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_target_parse),
        cmocka_unit_test(test_args_ok),
        cmocka_unit_test(test_args_usage_errors),
        cmocka_unit_test(test_commands_table),
        cmocka_unit_test(test_wait_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
