/*
 * test_roots.c - folders are confined (controller/host/roots.c, design.md
 * section 8) and the --allowed-root flag (controller/runtime/options.c).
 *
 * Each test builds, in its own mkdtemp folder T:
 *   T/root/a/b            an allowed root with a sub-tree
 *   T/root/link -> T/outside          a link escaping the root
 *   T/root/inner -> a                 a link staying inside it
 *   T/root/dangling -> T/nothing      a link to nothing
 *   T/outside/             a folder beside the root
 *   T/second/              a second root
 *   T/alias -> T/root/a    a link from outside into the root
 * and checks paths against the roots, exact messages included.
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
#include <sys/stat.h>
#include <unistd.h>

#include "k8s.h"
#include "failalloc.h"
#include "testutil.h"
#include "host/roots.h"
#include "runtime/options.h"

static char tmp[PATH_MAX];     /* T as made */
static char real[PATH_MAX];    /* T, symbolic links followed (TMPDIR may be one) */

static const char *at(const char *rel)
{
    static char bufs[4][PATH_MAX + 64];
    static int i;
    i = (i + 1) % 4;
    snprintf(bufs[i], sizeof(bufs[i]), "%s%s", tmp, rel);
    return bufs[i];
}

static const char *real_at(const char *rel)
{
    static char bufs[4][PATH_MAX + 64];
    static int i;
    i = (i + 1) % 4;
    snprintf(bufs[i], sizeof(bufs[i]), "%s%s", real, rel);
    return bufs[i];
}

static int setup(void **state)
{
    (void)state;
    if (test_mkdtemp(tmp, sizeof(tmp), "test_roots") || !realpath(tmp, real))
        return -1;
    if (mkdir(at("/root"), 0755) || mkdir(at("/root/a"), 0755) || mkdir(at("/root/a/b"), 0755) ||
        mkdir(at("/outside"), 0755) || mkdir(at("/second"), 0755) ||
        symlink(at("/outside"), at("/root/link")) || symlink("a", at("/root/inner")) ||
        symlink(at("/nothing"), at("/root/dangling")) || symlink(at("/root/a"), at("/alias")))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(tmp);
}

static void add_root(tqu_roots *r, const char *path)
{
    char err[PATH_MAX + 256];
    if (tqu_roots_add(r, path, err, sizeof(err)))
        fail_msg("tqu_roots_add(%s): %s", path, err);
}

/* the phrase why for path, or "" when allowed */
static const char *verdict(const tqu_roots *r, const char *path, unsigned flags)
{
    static char why[PATH_MAX * 2];
    why[0] = '\0';
    int rc = tqu_roots_check(r, path, flags, NULL, 0, why, sizeof(why));
    if (rc == 0)
        assert_string_equal(why, "");
    else
        assert_true(why[0] != '\0');
    return why;
}

/* ------------------------------------------------------------------ clean */

static void test_clean(void **state)
{
    char why[256];
    (void)state;
    static const struct { const char *path; int rel_ok; const char *why; } cases[] = {
        { "/qaxdata", 0, "" },
        { "/qaxdata/", 0, "" },
        { "/", 0, "" },
        { "/qaxdata/cli/10.6.0.2600", 0, "" },
        { "/qaxdata/.hidden/..x/x..", 0, "" },
        { "", 0, "is empty" },
        { "qaxdata/cli", 0, "is not an absolute path" },
        { "./x", 0, "is not an absolute path" },
        { "pkg.tar.gz", 1, "" },
        { "sub/pkg.tar.gz", 1, "" },
        { "../pkg.tar.gz", 1, "has a \"..\" component" },
        { "/qaxdata/..", 0, "has a \"..\" component" },
        { "/qaxdata/../", 0, "has a \"..\" component" },
        { "/qaxdata/../etc", 0, "has a \"..\" component" },
        { "/..", 0, "has a \"..\" component" },
        { "/qaxdata/cli/..", 1, "has a \"..\" component" },
        { "/qaxdata/./cli", 0, "has a \".\" component" },
        { "/qaxdata/.", 0, "has a \".\" component" },
        { "//etc", 0, "has an empty component (\"//\")" },
        { "//", 0, "has an empty component (\"//\")" },
        { "/qaxdata//cli", 0, "has an empty component (\"//\")" },
        { "/qaxdata//", 0, "has an empty component (\"//\")" },
        { "a//b", 1, "has an empty component (\"//\")" },
        { "/qaxdata/x\n/etc", 0, "contains a control character (0x0a)" },
        { "/qaxdata/x\t", 0, "contains a control character (0x09)" },
        { "/qaxdata/\x7f", 0, "contains a control character (0x7f)" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        int rc = tqu_roots_clean(cases[i].path, cases[i].rel_ok, why, sizeof(why));
        if (strcmp(why, cases[i].why) != 0 || (rc == 0) != (cases[i].why[0] == '\0'))
            fail_msg("case %zu \"%s\": rc %d, why \"%s\", want \"%s\"", i, cases[i].path, rc, why, cases[i].why);
    }
    char longp[PATH_MAX + 8];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(tqu_roots_clean(longp, 0, why, sizeof(why)), K8S_EINVAL);
    assert_contains(why, "is too long");
}

/* ---------------------------------------------------------------- resolve */

static void test_resolve(void **state)
{
    char out[PATH_MAX], why[PATH_MAX + 256];
    (void)state;

    assert_int_equal(tqu_roots_resolve(at("/root/a/b"), out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, real_at("/root/a/b"));
    /* a trailing "/" is dropped */
    assert_int_equal(tqu_roots_resolve(at("/root/a/"), out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, real_at("/root/a"));
    /* what does not exist yet is appended as written */
    assert_int_equal(tqu_roots_resolve(at("/root/a/new/deeper"), out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, real_at("/root/a/new/deeper"));
    /* links followed, also below a part that does not exist */
    assert_int_equal(tqu_roots_resolve(at("/root/link/x/y"), out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, real_at("/outside/x/y"));
    assert_int_equal(tqu_roots_resolve(at("/root/inner/b"), out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, real_at("/root/a/b"));
    assert_int_equal(tqu_roots_resolve("/", out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, "/");
    assert_int_equal(tqu_roots_resolve("/nonexistent-tqu-root/x", out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, "/nonexistent-tqu-root/x");
    /* a link to nothing: whatever creates its target would decide */
    assert_int_equal(tqu_roots_resolve(at("/root/dangling/x"), out, sizeof(out), why, sizeof(why)), K8S_EINVAL);
    assert_string_equal(out, "");
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "cannot be resolved: %s is a symbolic link to something that does not exist",
             at("/root/dangling"));
    assert_string_equal(why, want);
    /* a path through a file: the file is the longest existing prefix */
    FILE *f = fopen(at("/root/a/file"), "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(tqu_roots_resolve(at("/root/a/file/x"), out, sizeof(out), why, sizeof(why)), 0);
    assert_string_equal(out, real_at("/root/a/file/x"));
    /* unclean paths are never resolved */
    assert_int_equal(tqu_roots_resolve(at("/root/link/../../etc"), out, sizeof(out), why, sizeof(why)),
                     K8S_EINVAL);
    assert_string_equal(why, "has a \"..\" component");
    assert_string_equal(out, "");
}

/* ----------------------------------------------------------------- check */

static void test_symlink_escapes_root(void **state)
{
    tqu_roots r;
    char want[PATH_MAX * 3], res[PATH_MAX];
    (void)state;

    tqu_roots_init(&r);
    add_root(&r, at("/root"));
    assert_string_equal(verdict(&r, at("/root"), 0), "");
    assert_string_equal(verdict(&r, at("/root/a/b"), 0), "");
    assert_string_equal(verdict(&r, at("/root/inner/b"), 0), "");
    assert_string_equal(verdict(&r, at("/root/a/new/deeper"), 0), "");
    /* the link out of the root, and anything below it */
    snprintf(want, sizeof(want), "resolves to \"%s\" (symbolic links followed), outside the allowed roots (%s)",
             real_at("/outside"), real_at("/root"));
    assert_string_equal(verdict(&r, at("/root/link"), 0), want);
    snprintf(want, sizeof(want), "resolves to \"%s\" (symbolic links followed), outside the allowed roots (%s)",
             real_at("/outside/tq_saas/darwin-client"), real_at("/root"));
    assert_string_equal(verdict(&r, at("/root/link/tq_saas/darwin-client"), 0), want);
    assert_int_equal(tqu_roots_check(&r, at("/root/link/x"), 0, res, sizeof(res), want, sizeof(want)), K8S_EINVAL);
    assert_string_equal(res, real_at("/outside/x"));
    /* a link from outside into the root is fine: it resolves inside */
    assert_string_equal(verdict(&r, at("/alias/b"), 0), "");
    snprintf(want, sizeof(want), "is outside the allowed roots (%s)", real_at("/root"));
    assert_string_equal(verdict(&r, "/etc", 0), want);
    assert_string_equal(verdict(&r, "/", 0), want);
    assert_string_equal(verdict(&r, at("/outside"), 0), want);
    /* a sibling whose name starts like the root's */
    assert_string_equal(verdict(&r, at("/rootx"), 0), want);
    assert_contains(verdict(&r, at("/root/dangling"), 0), "is a symbolic link to something that does not exist");
    tqu_roots_release(&r);
    assert_int_equal(r.n, 0);
}

static void test_dotdot_and_tricks(void **state)
{
    tqu_roots r;
    (void)state;

    tqu_roots_init(&r);
    add_root(&r, at("/root"));
    assert_string_equal(verdict(&r, at("/root/../outside"), 0), "has a \"..\" component");
    assert_string_equal(verdict(&r, at("/root/.."), 0), "has a \"..\" component");
    assert_string_equal(verdict(&r, at("/root/a/b/../../../etc"), 0), "has a \"..\" component");
    assert_string_equal(verdict(&r, at("/root//a"), 0), "has an empty component (\"//\")");
    assert_string_equal(verdict(&r, at("/root/./a"), 0), "has a \".\" component");
    assert_string_equal(verdict(&r, "root/a", 0), "is not an absolute path");
    assert_string_equal(verdict(&r, "", 0), "is empty");
    assert_string_equal(verdict(&r, at("/root/a\n"), 0), "contains a control character (0x0a)");
    /* no root at all: nothing is allowed */
    tqu_roots_release(&r);
    assert_string_equal(verdict(&r, at("/root/a"), 0), "is not allowed: no allowed root is configured");
}

static void test_strict_subfolder(void **state)
{
    tqu_roots r;
    char want[PATH_MAX * 3];
    (void)state;

    tqu_roots_init(&r);
    add_root(&r, at("/root"));
    /* the root itself: fine for a folder, not for a hostPath */
    assert_string_equal(verdict(&r, at("/root"), 0), "");
    snprintf(want, sizeof(want),
             "is an allowed root itself: a hostPath mounted into pods must be a sub-folder of one (%s)", real_at("/root"));
    assert_string_equal(verdict(&r, at("/root"), TQU_ROOTS_STRICT), want);
    assert_string_equal(verdict(&r, at("/root/"), TQU_ROOTS_STRICT), want);
    assert_string_equal(verdict(&r, at("/root/a"), TQU_ROOTS_STRICT), "");
    assert_string_equal(verdict(&r, at("/root/s/services/data/darwin-cdn-data"), TQU_ROOTS_STRICT), "");
    /* a link inside the root back to the root */
    assert_int_equal(symlink(at("/root"), at("/root/self")), 0);
    snprintf(want, sizeof(want),
             "is an allowed root itself (it resolves to \"%s\"): a hostPath mounted into pods must be a sub-folder of one (%s)",
             real_at("/root"), real_at("/root"));
    assert_string_equal(verdict(&r, at("/root/self"), TQU_ROOTS_STRICT), want);
    /* "/" is outside */
    snprintf(want, sizeof(want), "is outside the allowed roots (%s)", real_at("/root"));
    assert_string_equal(verdict(&r, "/", TQU_ROOTS_STRICT), want);
    /* inside only through this machine's link: other nodes have no such link */
    snprintf(want, sizeof(want),
             "reaches an allowed root only through a symbolic link of this machine (it resolves to \"%s\"): "
             "a hostPath mounted into pods must be written as a sub-folder of one (%s)",
             real_at("/root/a/cache"), real_at("/root"));
    assert_string_equal(verdict(&r, at("/alias/cache"), TQU_ROOTS_STRICT), want);
    assert_string_equal(verdict(&r, at("/alias/cache"), 0), "");
    tqu_roots_release(&r);

    /* the root "/": everything is inside, only "/" itself is not below it */
    tqu_roots_init(&r);
    add_root(&r, "/");
    assert_string_equal(verdict(&r, "/etc", 0), "");
    assert_string_equal(verdict(&r, "/", 0), "");
    assert_string_equal(verdict(&r, "/", TQU_ROOTS_STRICT),
                        "is an allowed root itself: a hostPath mounted into pods must be a sub-folder of one (/)");
    assert_string_equal(verdict(&r, "/qaxdata/x", TQU_ROOTS_STRICT), "");
    tqu_roots_release(&r);
}

static void test_nonexisting_tails_and_roots(void **state)
{
    tqu_roots r;
    char want[PATH_MAX * 3];
    (void)state;

    /* a root that does not exist (yet) counts as written */
    tqu_roots_init(&r);
    add_root(&r, at("/later/"));
    assert_string_equal(r.given[0], at("/later"));
    assert_string_equal(r.resolved[0], real_at("/later"));
    assert_string_equal(verdict(&r, at("/later/cli/10.7.0.2800"), 0), "");
    assert_string_equal(verdict(&r, at("/later/x"), TQU_ROOTS_STRICT), "");
    snprintf(want, sizeof(want), "is outside the allowed roots (%s)", real_at("/later"));
    assert_string_equal(verdict(&r, at("/lateral"), 0), want);
    tqu_roots_release(&r);
    /* a path below an escaping link that does not exist further down */
    tqu_roots_init(&r);
    add_root(&r, at("/root"));
    snprintf(want, sizeof(want), "resolves to \"%s\" (symbolic links followed), outside the allowed roots (%s)",
             real_at("/outside/no/such"), real_at("/root"));
    assert_string_equal(verdict(&r, at("/root/link/no/such"), 0), want);
    tqu_roots_release(&r);

    /* a root given through a link is resolved once, when added */
    assert_int_equal(symlink(at("/root"), at("/rootlink")), 0);
    tqu_roots_init(&r);
    add_root(&r, at("/rootlink"));
    assert_string_equal(r.given[0], at("/rootlink"));
    assert_string_equal(r.resolved[0], real_at("/root"));
    assert_string_equal(verdict(&r, at("/root/a"), 0), "");
    assert_string_equal(verdict(&r, at("/rootlink/a"), 0), "");
    assert_string_equal(verdict(&r, at("/rootlink/a"), TQU_ROOTS_STRICT), "");
    tqu_roots_release(&r);
}

static void test_multiple_roots(void **state)
{
    tqu_roots r;
    char want[PATH_MAX * 3], list[PATH_MAX * 2];
    (void)state;

    tqu_roots_init(&r);
    add_root(&r, at("/root"));
    add_root(&r, at("/second"));
    assert_int_equal(r.n, 2);
    tqu_roots_list(&r, list, sizeof(list));
    snprintf(want, sizeof(want), "%s, %s", real_at("/root"), real_at("/second"));
    assert_string_equal(list, want);
    assert_string_equal(verdict(&r, at("/root/a"), 0), "");
    assert_string_equal(verdict(&r, at("/second/backups"), 0), "");
    assert_string_equal(verdict(&r, at("/second"), 0), "");
    snprintf(want, sizeof(want), "is outside the allowed roots (%s, %s)", real_at("/root"), real_at("/second"));
    assert_string_equal(verdict(&r, at("/outside"), 0), want);
    snprintf(want, sizeof(want),
             "is an allowed root itself: a hostPath mounted into pods must be a sub-folder of one (%s, %s)",
             real_at("/root"), real_at("/second"));
    assert_string_equal(verdict(&r, at("/second"), TQU_ROOTS_STRICT), want);
    assert_string_equal(verdict(&r, at("/second/cache"), TQU_ROOTS_STRICT), "");
    /* nested roots: strictly below the outer one is enough */
    add_root(&r, at("/root/a"));
    assert_string_equal(verdict(&r, at("/root/a"), TQU_ROOTS_STRICT), "");
    tqu_roots_release(&r);
}

static void test_add_refuses(void **state)
{
    tqu_roots r;
    char err[PATH_MAX + 256];
    (void)state;

    tqu_roots_init(&r);
    assert_int_equal(tqu_roots_add(&r, "qaxdata", err, sizeof(err)), K8S_EINVAL);
    assert_string_equal(err, "is not an absolute path");
    assert_int_equal(tqu_roots_add(&r, "/qaxdata/../etc", err, sizeof(err)), K8S_EINVAL);
    assert_string_equal(err, "has a \"..\" component");
    assert_int_equal(tqu_roots_add(&r, at("/root/dangling"), err, sizeof(err)), K8S_EINVAL);
    assert_int_equal(r.n, 0);
    for (int i = 0; i < TQU_ROOTS_MAX; i++)
        add_root(&r, at("/root"));
    assert_int_equal(tqu_roots_add(&r, at("/second"), err, sizeof(err)), K8S_EINVAL);
    assert_string_equal(err, "more than 16 allowed roots");
    assert_int_equal(r.n, TQU_ROOTS_MAX);
    tqu_roots_release(&r);

    /* every allocation failure: a clean error, r unchanged, no leak */
    for (long n = 1; n < 10; n++) {
        tqu_roots_init(&r);
        failalloc_fail_at(n);
        int rc = tqu_roots_add(&r, at("/root"), err, sizeof(err));
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, 0);
            assert_int_equal(r.n, 1);
            tqu_roots_release(&r);
            return;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_int_equal(r.n, 0);
        tqu_roots_release(&r);
    }
    fail_msg("tqu_roots_add never ran without failing");
}

/* --------------------------------------------------------- --allowed-root */

static int parse(tqu_options *o, const char *const *args, char *err, size_t errlen)
{
    char *argv[16], out[8192];
    int argc = 0;
    FILE *fo = fmemopen(out, sizeof(out), "w"), *fe = fmemopen(err, errlen, "w");
    argv[argc++] = "tianqing-upgrade-controller";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    int r = tqu_options_parse(o, argc, argv, fo, fe);
    fclose(fo);
    fclose(fe);
    return r;
}

static void test_allowed_root_flag(void **state)
{
    tqu_options o;
    char err[1024];
    (void)state;

    const char *none[] = { NULL };
    assert_int_equal(parse(&o, none, err, sizeof(err)), TQU_OPT_RUN);
    assert_int_equal(o.allowed_roots.n, 1);
    assert_string_equal(o.allowed_roots.given[0], "/qaxdata");
    tqu_options_release(&o);
    assert_int_equal(o.allowed_roots.n, 0);

    /* repeatable; the first one replaces the default */
    const char *two[] = { "--allowed-root", at("/root"), "--allowed-root=/data01", NULL };
    assert_int_equal(parse(&o, two, err, sizeof(err)), TQU_OPT_RUN);
    assert_int_equal(o.allowed_roots.n, 2);
    assert_string_equal(o.allowed_roots.resolved[0], real_at("/root"));
    assert_string_equal(o.allowed_roots.given[1], "/data01");
    char why[PATH_MAX * 2];
    assert_int_equal(tqu_roots_check(&o.allowed_roots, "/qaxdata/cli", 0, NULL, 0, why, sizeof(why)), K8S_EINVAL);
    tqu_options_release(&o);

    const char *bad[][3] = { { "--allowed-root", "qaxdata", NULL }, { "--allowed-root", "/qaxdata/../etc", NULL },
                             { "--allowed-root=", NULL }, { "--allowed-root", NULL } };
    const char *want[] = { "invalid value \"qaxdata\" for --allowed-root: is not an absolute path",
                           "invalid value \"/qaxdata/../etc\" for --allowed-root: has a \"..\" component",
                           "invalid value \"\" for --allowed-root: is empty",
                           "flag needs an argument: --allowed-root" };
    for (size_t i = 0; i < 4; i++) {
        memset(err, 0, sizeof(err));
        assert_int_equal(parse(&o, bad[i], err, sizeof(err)), TQU_OPT_ERROR);
        assert_contains(err, want[i]);
    }
    /* the roots are released on --help/--version too (LeakSanitizer) */
    const char *help[] = { "--allowed-root", "/x", "--help", NULL };
    assert_int_equal(parse(&o, help, err, sizeof(err)), TQU_OPT_EXIT_OK);
}

static void test_help_lists_flag(void **state)
{
    char buf[8192];
    (void)state;
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    tqu_options_usage(f);
    fclose(f);
    assert_contains(buf, "      --allowed-root stringArray ");
    assert_contains(buf, "(default [/qaxdata])");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_escapes_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dotdot_and_tricks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strict_subfolder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonexisting_tails_and_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiple_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_root_flag, setup, teardown),
        cmocka_unit_test(test_help_lists_flag),
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
