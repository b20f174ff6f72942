/*
 * test_routes.c - the upgrade route table (routes/routes.yaml, loaded by
 * controller/upgrade/routes.c) and the route check of the Validate step.
 *
 * The 31 supported versions are written out here again, from
 * procedure.md section 1, so the test checks the data file against the
 * runbook rather than against itself. Malformed tables are written to a
 * mkdtemp folder; every error must name the file and the line. The loader
 * is also run with each allocation failing in turn, on every prefix of the
 * real file, and on deterministic byte flips: a clean error, never a crash
 * or a leak.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s.h"
#include "failalloc.h"
#include "host/fsutil.h"
#include "upgrade/routes.h"
#include "testutil.h"

#define TO "10.7.0.2800"

/* procedure.md section 1: the 31 versions an upgrade to 10.7.0.2800 may start from. */
static const char *const supported[] = {
    "10.7.0.2704", "10.7.0.2700", "10.7.0.2602", "10.7.0.2600", "10.7.0.2500", "10.7.0.2400",
    "10.7.0.2310", "10.7.0.2306", "10.7.0.2302", "10.7.0.2300", "10.7.0.2200", "10.7.0.2101",
    "10.7.0.2000", "10.7.0.1660", "10.7.0.1600", "10.7.0.1050", "10.7.0.1000",
    "10.6.0.2600", "10.6.0.2504", "10.6.0.2400", "10.6.0.2000", "10.6.0.1100", "10.6.0.1000",
    "10.5.0.3000", "10.5.0.2000", "10.5.0.1000",
    "10.3.0.5000", "10.3.0.4200", "10.3.0.4100", "10.3.0.4000", "10.3.0.3200",
};
#define NSUPPORTED (sizeof(supported) / sizeof(supported[0]))

static char tmp[PATH_MAX];
static char repo_file[PATH_MAX];

static int setup(void **state)
{
    const char *repo = getenv("TQU_REPO");
    (void)state;
    if (test_mkdtemp(tmp, sizeof(tmp), "test_routes") != 0)
        return -1;
    snprintf(repo_file, sizeof(repo_file), "%s/routes/" TQU_ROUTES_FILE, repo ? repo : ".");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(tmp);
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    assert_int_equal(tqu_write_file_atomic(path, text, strlen(text), 0644, NULL, 0), K8S_OK);
    return path;
}

static tqu_routes *load_repo(void)
{
    tqu_routes *r = NULL;
    char err[512] = "";
    if (tqu_routes_load(repo_file, &r, err, sizeof(err)) != K8S_OK)
        fail_msg("loading %s: %s", repo_file, err);
    return r;
}

/* ------------------------------------------------------------ the file */

static void test_repo_file(void **state)
{
    tqu_routes *r = load_repo();
    tqu_version to, v;
    (void)state;
    assert_int_equal(r->nroutes, 1);
    assert_int_equal(tqu_version_parse(TO, &to), K8S_OK);
    const tqu_route *rt = tqu_routes_find(r, &to);
    assert_non_null(rt);
    assert_int_equal(rt->nsources, NSUPPORTED);
    assert_true(rt->standard_install_only);
    assert_non_null(rt->reference);
    assert_non_null(strstr(rt->reference, "10.7.0.2800"));
    assert_null(strchr(rt->reference, '\n'));          /* one line */
    assert_non_null(rt->notes);
    for (size_t i = 0; i < NSUPPORTED; i++) {
        assert_int_equal(tqu_version_parse(supported[i], &v), K8S_OK);
        assert_true(tqu_route_has_source(rt, &v));
    }
    /* sorted oldest first */
    for (size_t i = 1; i < rt->nsources; i++)
        assert_true(tqu_version_cmp(&rt->sources[i - 1], &rt->sources[i]) < 0);
    assert_string_equal(r->path, repo_file);
    tqu_routes_free(r);
}

/* ----------------------------------------------------------- the check */

static void test_all_31_supported(void **state)
{
    tqu_routes *r = load_repo();
    tqu_route_verdict v;
    (void)state;
    for (size_t i = 0; i < NSUPPORTED; i++) {
        /* never upgraded: initial == from */
        if (tqu_route_check(r, supported[i], supported[i], TO, &v) != TQU_ROUTE_OK)
            fail_msg("%s -> %s refused: %s", supported[i], TO, v.message);
        assert_string_equal(v.code, "RouteSupported");
        assert_non_null(v.route);
        /* installed at a listed version, upgraded along the list since */
        for (size_t j = 0; j < NSUPPORTED; j++) {
            tqu_version a, b;
            tqu_version_parse(supported[i], &a);
            tqu_version_parse(supported[j], &b);
            if (tqu_version_cmp(&b, &a) > 0)
                continue;          /* initial after from: another rule */
            if (tqu_route_check(r, supported[i], supported[j], TO, &v) != TQU_ROUTE_OK)
                fail_msg("%s (initial %s) -> %s refused: %s", supported[i], supported[j], TO, v.message);
        }
    }
    tqu_route_check(r, "10.6.0.2600", "10.6.0.2000", TO, &v);
    static const char ok_msg[] = "10.6.0.2600 -> 10.7.0.2800 is a supported upgrade route (standard installation: "
                                 "first installed at 10.6.0.2000) (route table ";
    assert_memory_equal(v.message, ok_msg, sizeof(ok_msg) - 1);
    assert_non_null(strstr(v.message, repo_file));
    tqu_routes_free(r);
}

static void test_unsupported_source(void **state)
{
    static const char *const unlisted[] = {
        "10.2.0.1000", "10.3.0.3100", "10.3.0.3201", "10.3.0.4300", "10.4.0.1000", "10.5.0.2500",
        "10.6.0.2500", "10.6.0.2601", "10.7.0.2705", "10.7.0.2799", "10.7.0.1", "9.9.9.9", "0.0.0.0",
    };
    tqu_routes *r = load_repo();
    tqu_route_verdict v;
    (void)state;
    for (size_t i = 0; i < sizeof(unlisted) / sizeof(unlisted[0]); i++) {
        assert_int_equal(tqu_route_check(r, unlisted[i], unlisted[i], TO, &v), TQU_ROUTE_UNSUPPORTED_SOURCE);
        assert_string_equal(v.code, "UnsupportedSourceVersion");
        assert_non_null(strstr(v.message, "(supported: 10.3.0.3200 ... 10.7.0.2704, 31 versions)"));
        assert_non_null(strstr(v.message, "TAC"));
    }
    tqu_route_check(r, "10.2.0.1000", "10.2.0.1000", TO, &v);
    assert_string_equal(v.message,
                        "10.2.0.1000 is not a supported starting point for 10.7.0.2800 (supported: 10.3.0.3200 ... "
                        "10.7.0.2704, 31 versions): the vendor upgrades such environments only on request (TAC)");
    /* a listed initial does not make an unlisted current version acceptable */
    assert_int_equal(tqu_route_check(r, "10.7.0.2705", "10.6.0.2000", TO, &v), TQU_ROUTE_UNSUPPORTED_SOURCE);
    tqu_routes_free(r);
}

static void test_non_standard_install(void **state)
{
    tqu_routes *r = load_repo();
    tqu_route_verdict v;
    (void)state;
    /* the runbook's own example: installed at an older release, upgraded to 10.3.0.4200 */
    assert_int_equal(tqu_route_check(r, "10.3.0.4200", "10.2.0.1000", TO, &v), TQU_ROUTE_NON_STANDARD);
    assert_string_equal(v.code, "NonStandardInstallation");
    assert_non_null(strstr(v.message, "initialVersion 10.2.0.1000"));
    assert_non_null(strstr(v.message, "not a standard installation"));
    assert_non_null(strstr(v.message, "TAC"));
    assert_int_equal(tqu_route_check(r, "10.7.0.2704", "10.3.0.3100", TO, &v), TQU_ROUTE_NON_STANDARD);
    assert_int_equal(tqu_route_check(r, "10.7.0.2704", "10.6.0.2500", TO, &v), TQU_ROUTE_NON_STANDARD);
    tqu_routes_free(r);
}

static void test_other_rules(void **state)
{
    tqu_routes *r = load_repo();
    tqu_route_verdict v;
    (void)state;
    /* same version */
    assert_int_equal(tqu_route_check(r, TO, "10.6.0.2000", TO, &v), TQU_ROUTE_DOWNGRADE_OR_SAME);
    assert_string_equal(v.code, "DowngradeOrSameVersion");
    assert_non_null(strstr(v.message, "already at the target"));
    /* downgrade, even to a version without a route */
    assert_int_equal(tqu_route_check(r, TO, "10.6.0.2000", "10.7.0.2704", &v), TQU_ROUTE_DOWNGRADE_OR_SAME);
    assert_non_null(strstr(v.message, "older than fromVersion"));
    /* numeric comparison: 10.10 is newer than 10.9 */
    assert_int_equal(tqu_route_check(r, "10.10.0.1", "10.10.0.1", "10.9.0.1", &v), TQU_ROUTE_DOWNGRADE_OR_SAME);
    /* initial after from is impossible */
    assert_int_equal(tqu_route_check(r, "10.6.0.2600", "10.7.0.2704", TO, &v), TQU_ROUTE_INITIAL_AFTER_FROM);
    assert_string_equal(v.code, "InitialAfterFrom");
    assert_non_null(strstr(v.message, "impossible"));
    /* no route to the target */
    assert_int_equal(tqu_route_check(r, "10.7.0.2800", "10.6.0.2000", "10.7.0.2900", &v),
                     TQU_ROUTE_UNSUPPORTED_TARGET);
    assert_string_equal(v.code, "UnsupportedTargetVersion");
    assert_null(v.route);
    assert_non_null(strstr(v.message, "no upgrade route to 10.7.0.2900 in "));
    assert_non_null(strstr(v.message, repo_file));
    assert_non_null(strstr(v.message, "(targets: 10.7.0.2800)"));
    /* malformed versions, each named */
    assert_int_equal(tqu_route_check(r, "10.7.0", "10.6.0.2000", TO, &v), TQU_ROUTE_INVALID_VERSION);
    assert_string_equal(v.code, "InvalidVersion");
    assert_non_null(strstr(v.message, "fromVersion \"10.7.0\""));
    assert_int_equal(tqu_route_check(r, "10.6.0.2600", NULL, TO, &v), TQU_ROUTE_INVALID_VERSION);
    assert_non_null(strstr(v.message, "initialVersion"));
    assert_int_equal(tqu_route_check(r, "10.6.0.2600", "10.6.0.2600", "latest", &v), TQU_ROUTE_INVALID_VERSION);
    assert_non_null(strstr(v.message, "toVersion \"latest\""));
    /* no table: nothing is supported, no crash */
    assert_int_equal(tqu_route_check(NULL, "10.6.0.2600", "10.6.0.2600", TO, &v), TQU_ROUTE_UNSUPPORTED_TARGET);
    assert_int_equal(tqu_route_check(r, "10.6.0.2600", "10.6.0.2600", TO, NULL), TQU_ROUTE_INVALID_VERSION);
    assert_string_equal(tqu_route_reason_code(TQU_ROUTE_REASON_MAX), "Unknown");
    assert_string_equal(tqu_route_reason_code((tqu_route_reason)-1), "Unknown");
    tqu_routes_free(r);
}

/* A table for another release works with no code change: two targets,
 * one without the standard-install rule; aliases, quoting and flow style. */
static void test_other_table(void **state)
{
    const char *path = write_tmp("next.yaml",
        "schemaVersion: 1\n"
        "routes:\n"
        "  - target: \"10.8.0.1000\"\n"
        "    standardInstallOnly: false\n"
        "    sources: &common [10.7.0.2800, '10.7.0.2704']\n"
        "  - target: 10.7.0.2800\n"
        "    standardInstallOnly: True\n"
        "    sources: *common\n"
        "    notes: |\n"
        "      two\n"
        "      lines\n");
    tqu_routes *r = NULL;
    tqu_route_verdict v;
    char err[512];
    (void)state;
    assert_int_equal(tqu_routes_load(path, &r, err, sizeof(err)), K8S_EPARSE);
    /* 10.7.0.2800 as a source of itself is refused, with its line */
    assert_non_null(strstr(err, "next.yaml:5: sources[0]: 10.7.0.2800 is not older than the target 10.7.0.2800"));
    assert_null(r);

    path = write_tmp("next.yaml",
        "schemaVersion: 1\n"
        "routes:\n"
        "  - target: \"10.8.0.1000\"\n"
        "    standardInstallOnly: false\n"
        "    sources: &common [10.7.0.2704, '10.7.0.2700']\n"
        "  - target: 10.7.0.2800\n"
        "    standardInstallOnly: True\n"
        "    sources: *common\n"
        "    notes: |\n"
        "      two\n"
        "      lines\n");
    assert_int_equal(tqu_routes_load(path, &r, err, sizeof(err)), K8S_OK);
    assert_int_equal(r->nroutes, 2);
    assert_string_equal(r->routes[1].notes, "two lines ");
    assert_int_equal(tqu_route_check(r, "10.7.0.2704", "10.1.0.1", "10.8.0.1000", &v), TQU_ROUTE_OK);
    assert_int_equal(tqu_route_check(r, "10.7.0.2704", "10.1.0.1", "10.7.0.2800", &v), TQU_ROUTE_NON_STANDARD);
    assert_non_null(strstr(v.message, "(supported: 10.7.0.2700, 10.7.0.2704)"));
    assert_int_equal(tqu_route_check(r, "10.7.0.2704", "10.1.0.1", "10.9.0.0", &v), TQU_ROUTE_UNSUPPORTED_TARGET);
    assert_non_null(strstr(v.message, "(targets: 10.8.0.1000, 10.7.0.2800)"));
    tqu_routes_free(r);
}

/* --------------------------------------------------- malformed tables */

struct bad_case {
    const char *text;
    int rc;
    const char *expect;      /* substring of the error after "<path>" */
};

static const struct bad_case bad_cases[] = {
    { "", K8S_EPARSE, ": empty (expected schemaVersion: 1 and routes:)" },
    { "# only a comment\n", K8S_EPARSE, ": empty" },
    { "schemaVersion: 1\nroutes: [\n", K8S_EPARSE, ":3: not valid YAML: " },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n   bad indent: x\n", K8S_EPARSE, ":4: not valid YAML" },
    { "- a\n- b\n", K8S_EPARSE, ":1: expected a mapping with schemaVersion and routes, found a list" },
    { "routes: []\n", K8S_EPARSE, ":1: routes: the list is empty" },
    { "schemaVersion: 1\n", K8S_EPARSE, ":1: \"routes\" is missing" },
    { "routes:\n  - {target: 10.7.0.2800, standardInstallOnly: true, sources: [10.6.0.1]}\n",
      K8S_EPARSE, ":1: \"schemaVersion: 1\" is missing" },
    { "schemaVersion: 2\nroutes: []\n", K8S_EPARSE, ":1: schemaVersion: this controller reads schemaVersion 1, found \"2\"" },
    { "schemaVersion: 1\nschemaVersion: 1\n", K8S_EPARSE, ":2: key \"schemaVersion\" appears twice" },
    { "schemaVersion: 1\nroute:\n  - x\n", K8S_EPARSE, ":2: unknown key \"route\" (expected schemaVersion, routes)" },
    { "schemaVersion: 1\nroutes: {a: b}\n", K8S_EPARSE, ":2: routes: expected a list, found a mapping" },
    { "schemaVersion: 1\nroutes:\n  - 10.7.0.2800\n", K8S_EPARSE, ":3: routes[0]: expected a mapping" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n"
      "    soruces: [10.6.0.2600]\n", K8S_EPARSE, ":5: routes[0]: unknown key \"soruces\"" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n",
      K8S_EPARSE, ":3: routes[0]: \"sources\" is missing" },
    { "schemaVersion: 1\nroutes:\n  - standardInstallOnly: true\n    sources: [10.6.0.2600]\n",
      K8S_EPARSE, ":3: routes[0]: \"target\" is missing" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    sources: [10.6.0.2600]\n",
      K8S_EPARSE, ":3: routes[0]: \"standardInstallOnly\" is missing" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: yes\n    sources: [10.6.0.2600]\n",
      K8S_EPARSE, ":4: standardInstallOnly: expected true or false, found \"yes\"" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0\n    standardInstallOnly: true\n    sources: [10.6.0.2600]\n",
      K8S_EPARSE, ":3: target: \"10.7.0\" is not a version A.B.C.D" },
    { "schemaVersion: 1\nroutes:\n  - target: [10.7.0.2800]\n", K8S_EPARSE,
      ":3: target: expected a version A.B.C.D, found a list" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources:\n"
      "      - 10.6.0.2600\n      - 10.6.0.26OO\n", K8S_EPARSE, ":7: sources[1]: \"10.6.0.26OO\" is not a version" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources:\n"
      "      - 10.6.0.2600\n      - 10.6.0.2000\n      - 10.6.0.2600\n", K8S_EPARSE,
      ":8: sources[2]: 10.6.0.2600 is listed twice" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: []\n",
      K8S_EPARSE, ":5: sources: the list is empty" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: 10.6.0.2600\n",
      K8S_EPARSE, ":5: sources: expected a list of versions, found a scalar" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: [[10.6.0.2600]]\n",
      K8S_EPARSE, ":5: sources[0]: expected a version A.B.C.D, found a list" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: [10.6.0.2600]\n"
      "  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: [10.6.0.2000]\n",
      K8S_EPARSE, ":6: routes[1]: target 10.7.0.2800 is already listed at line 3" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    target: 10.7.0.2900\n", K8S_EPARSE,
      ":4: key \"target\" appears twice" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: [10.6.0.2600]\n"
      "    notes: [a]\n", K8S_EPARSE, ":6: notes: expected text, found a list" },
    { "schemaVersion: 1\n? [a, b]\n: c\n", K8S_EPARSE, ":2: a key must be plain text, found a list" },
    { "schemaVersion: 1\nroutes:\n  - target: 10.7.0.2800\n    standardInstallOnly: true\n    sources: [10.6.0.2600]\n"
      "---\nschemaVersion: 1\n", K8S_EPARSE, ":6: a second YAML document" },
    { "schemaVersion: 1\nroutes: *nowhere\n", K8S_EPARSE, ":2: not valid YAML" },
    { "\xff\xfe\x00\x01garbage", K8S_EPARSE, ": " },
};

static void test_malformed_files(void **state)
{
    char err[512], want[PATH_MAX + 256];
    tqu_routes *r = (tqu_routes *)1;
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const char *path = write_tmp("bad.yaml", bad_cases[i].text);
        err[0] = '\0';
        int rc = tqu_routes_load(path, &r, err, sizeof(err));
        if (rc != bad_cases[i].rc)
            fail_msg("case %zu: rc %d (%s)", i, rc, err);
        assert_null(r);
        snprintf(want, sizeof(want), "%s%s", path, bad_cases[i].expect);
        if (!strstr(err, want))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, want);
        assert_null(strchr(err, '\n'));
    }
}

static void test_missing_and_odd_files(void **state)
{
    char err[512], path[PATH_MAX];
    tqu_routes *r = NULL;
    (void)state;
    snprintf(path, sizeof(path), "%s/nope/routes.yaml", tmp);
    assert_int_equal(tqu_routes_load(path, &r, err, sizeof(err)), K8S_EIO);
    assert_null(r);
    assert_string_equal(strstr(err, "/nope/routes.yaml: No such file or directory"),
                        "/nope/routes.yaml: No such file or directory");
    /* a folder */
    assert_int_equal(tqu_routes_load(tmp, &r, err, sizeof(err)), K8S_EIO);
    assert_non_null(strstr(err, tmp));
    assert_non_null(strstr(err, "Is a directory"));
    /* over the size cap */
    size_t big = TQU_ROUTES_MAX_BYTES + 10;
    char *text = malloc(big + 1);
    assert_non_null(text);
    memset(text, '#', big);
    text[big] = '\0';
    const char *bp = write_tmp("big.yaml", text);
    free(text);
    assert_int_equal(tqu_routes_load(bp, &r, err, sizeof(err)), K8S_ETOOBIG);
    assert_non_null(strstr(err, "big.yaml: larger than"));
    /* arguments */
    assert_int_equal(tqu_routes_load(NULL, &r, err, sizeof(err)), K8S_EINVAL);
    assert_int_equal(tqu_routes_load("", &r, NULL, 0), K8S_EINVAL);
    assert_int_equal(tqu_routes_parse(NULL, 0, "x", &r, err, sizeof(err)), K8S_EINVAL);
    assert_int_equal(tqu_routes_load(repo_file, NULL, err, sizeof(err)), K8S_EINVAL);
    tqu_routes_free(NULL);
    /* the parse entry point names what it was given */
    assert_int_equal(tqu_routes_parse("x: [", 4, "built-in routes.yaml", &r, err, sizeof(err)), K8S_EPARSE);
    assert_true(strncmp(err, "built-in routes.yaml:", 21) == 0);
    assert_non_null(strstr(err, ": not valid YAML: "));
}

/* Every prefix of the real file, and byte flips: an answer, never a crash. */
static void test_truncated_and_flipped(void **state)
{
    k8s_buf b;
    char err[512];
    tqu_routes *r;
    unsigned seed = 12345;
    (void)state;
    k8s_buf_init(&b, 0);
    assert_int_equal(tqu_read_file(repo_file, 0, &b, err, sizeof(err)), K8S_OK);
    for (size_t n = 0; n <= b.len; n++) {
        r = NULL;
        err[0] = '\0';
        int rc = tqu_routes_parse(b.data, n, "cut.yaml", &r, err, sizeof(err));
        if (rc == K8S_OK) {
            assert_non_null(r);
            tqu_routes_free(r);
        } else {
            assert_null(r);
            assert_true(strncmp(err, "cut.yaml:", 9) == 0);
        }
    }
    char *copy = malloc(b.len + 1);
    assert_non_null(copy);
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, b.data, b.len + 1);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % b.len;
            seed = seed * 1103515245u + 12345u;
            copy[at] = (char)(seed >> 16);
        }
        r = NULL;
        if (tqu_routes_parse(copy, b.len, "flip.yaml", &r, err, sizeof(err)) == K8S_OK)
            tqu_routes_free(r);
        else
            assert_true(strncmp(err, "flip.yaml", 9) == 0);
    }
    free(copy);
    k8s_buf_release(&b);
}

static void test_alloc_failures(void **state)
{
    char err[512];
    tqu_routes *r;
    long n;
    (void)state;
    for (n = 1;; n++) {
        r = (tqu_routes *)1;
        failalloc_fail_at(n);
        int rc = tqu_routes_load(repo_file, &r, err, sizeof(err));
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            if (rc != K8S_OK)
                fail_msg("allocation %ld: %s", n, err);
            tqu_routes_free(r);
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_null(r);
        assert_non_null(strstr(err, "out of memory"));
    }
    assert_true(n > 5);      /* file buffer, table, path, routes, sources, texts */
    print_message("route table load: %ld allocations failed in turn\n", n - 1);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_repo_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_31_supported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_standard_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_odd_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_flipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
