/*
 * test_template.c - darwin template discovery (controller/upgrade/template.c).
 *
 * Each test builds a plan_client folder in its own mkdtemp folder, with
 * update templates whose modification times deliberately disagree with the
 * timestamps in their names (a copy or restore changes mtimes; the name is
 * what the vendor's tool wrote).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "k8s.h"
#include "failalloc.h"
#include "testutil.h"
#include "host/fsutil.h"
#include "upgrade/template.h"

static char tmp[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    return test_mkdtemp(tmp, sizeof(tmp), "test_template");
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(tmp);
}

/* Create tmp/name with some content and the given mtime (0: now). */
static void make(const char *name, time_t mtime)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    assert_int_equal(tqu_write_file_atomic(path, "deploy:\n  id: x\n", 16, 0644, NULL, 0), K8S_OK);
    if (mtime) {
        struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    }
}

static const char *in_tmp(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", tmp, name);
    return path;
}

/* ------------------------------------------------------------ name times */

static void test_name_time(void **state)
{
    long long ms;
    (void)state;
    /* 2024-03-01 08:00:00 UTC = 1709280000 */
    assert_int_equal(tqu_template_name_time("darwin_update_template_20240301080000.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 1709280000000LL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_1709280000.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 1709280000000LL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_1709280000123.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 1709280000123LL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_20240301080000123.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 1709280000123LL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_202403010800.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 1709280000000LL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_20240301.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 1709251200000LL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_20240229235959.yaml", &ms), K8S_OK);
    assert_int_equal(tqu_template_name_time("darwin_update_template_20000229000000.yaml", &ms), K8S_OK);
    assert_int_equal(tqu_template_name_time("darwin_update_template_19700101000000.yaml", &ms), K8S_OK);
    assert_int_equal(ms, 0);

    static const char *const bad[] = {
        "darwin_update_template_.yaml",
        "darwin_update_template_latest.yaml",
        "darwin_update_template_2024.yaml",                /* 4 digits */
        "darwin_update_template_20240301080000.yml",
        "darwin_update_template_20240301080000.yaml.bak",
        "darwin_update_template_2024-03-01.yaml",
        "darwin_update_template_20240231120000.yaml",      /* 31 February */
        "darwin_update_template_20230229120000.yaml",      /* not a leap year */
        "darwin_update_template_19000229120000.yaml",
        "darwin_update_template_20241301120000.yaml",      /* month 13 */
        "darwin_update_template_20240301250000.yaml",      /* hour 25 */
        "darwin_update_template_20240301086000.yaml",      /* minute 60 */
        "darwin_update_template_19691231235959.yaml",      /* before 1970 */
        "darwin_update_template_12345678901.yaml",          /* 11 digits */
        "darwin_update_template_123456789012345678.yaml",   /* 18 digits */
        "darwin_update_template_+709280000.yaml",
        "darwin_update_template_ 709280000.yaml",
        "darwin_template_26285abe2200902d.yaml",
        "update_template_20240301080000.yaml",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tqu_template_name_time(bad[i], &ms) != K8S_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
    assert_int_equal(tqu_template_name_time(NULL, &ms), K8S_EINVAL);
    assert_int_equal(tqu_template_name_time("darwin_update_template_20240301.yaml", NULL), K8S_EINVAL);
}

static void test_default_dir(void **state)
{
    char buf[PATH_MAX], small[16];
    (void)state;
    assert_int_equal(tqu_template_default_dir("/qaxdata/cli", buf, sizeof(buf)), K8S_OK);
    assert_string_equal(buf, "/qaxdata/cli/tq_paas/skylar/skylar_linuxserver_client/plan_client");
    assert_int_equal(tqu_template_default_dir("/qaxdata/cli//", buf, sizeof(buf)), K8S_OK);
    assert_string_equal(buf, "/qaxdata/cli/tq_paas/skylar/skylar_linuxserver_client/plan_client");
    assert_int_equal(tqu_template_default_dir("/", buf, sizeof(buf)), K8S_OK);
    assert_string_equal(buf, "/tq_paas/skylar/skylar_linuxserver_client/plan_client");
    assert_int_equal(tqu_template_default_dir("/qaxdata/cli", small, sizeof(small)), K8S_EINVAL);
    assert_string_equal(small, "");
    assert_int_equal(tqu_template_default_dir("", buf, sizeof(buf)), K8S_EINVAL);
    assert_int_equal(tqu_template_default_dir(NULL, buf, sizeof(buf)), K8S_EINVAL);
}

/* --------------------------------------------------------------- choices */

/* The newest name wins even though its mtime is the oldest. */
static void test_update_newest_by_name_not_mtime(void **state)
{
    tqu_template t;
    time_t now = time(NULL);
    (void)state;
    make("darwin_update_template_20240101120000.yaml", now - 3600);
    make("darwin_update_template_20240301080000.yaml", 946684800);     /* mtime in 2000 */
    make("darwin_update_template_20231231235959.yaml", now + 86400);    /* mtime tomorrow */
    make("darwin_template_26285abe2200902d.yaml", now);
    make("darwin_update_template_20240401000000.yaml.bak", now + 86400);   /* not a template */
    make("update.sh", now);
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_OK);
    assert_int_equal(t.kind, TQU_TEMPLATE_UPDATE);
    assert_null(t.reason);
    assert_string_equal(t.path, in_tmp("darwin_update_template_20240301080000.yaml"));
    assert_int_equal(t.time_ms, 1709280000000LL);
    assert_contains(t.message, "the newest of 3 update templates by the timestamp in the name");
    assert_contains(t.message, "(older: darwin_update_template_20240101120000.yaml, darwin_update_template_20231231235959.yaml)");
    assert_contains(t.message, "; 1 install template not used");
    assert_null(strstr(t.message, ".bak"));
}

/* Different timestamp formats compare as times, not as numbers. */
static void test_update_mixed_formats(void **state)
{
    tqu_template t;
    (void)state;
    make("darwin_update_template_20240201000000.yaml", 0);   /* 2024-02-01 */
    make("darwin_update_template_1709280000.yaml", 0);        /* 2024-03-01: newer, though a smaller number */
    make("darwin_update_template_1706000000000.yaml", 0);     /* 2024-01-23, in ms */
    assert_int_equal(tqu_template_find(tmp, "", &t), K8S_OK);
    assert_string_equal(t.path, in_tmp("darwin_update_template_1709280000.yaml"));
}

static void test_update_unparsable_names_noted(void **state)
{
    tqu_template t;
    (void)state;
    make("darwin_update_template_20240101120000.yaml", 0);
    make("darwin_update_template_latest.yaml", time(NULL) + 1000);
    make("darwin_update_template_20240231120000.yaml", 0);   /* 31 February */
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_OK);
    assert_string_equal(t.path, in_tmp("darwin_update_template_20240101120000.yaml"));
    assert_contains(t.message, "ignored: ");
    assert_contains(t.message, "darwin_update_template_latest.yaml (timestamp not understood)");
    assert_contains(t.message, "darwin_update_template_20240231120000.yaml (timestamp not understood)");
    /* a name with a newline cannot break the one-line message */
    make("darwin_update_template_2024\n0101.yaml", 0);
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_OK);
    assert_contains(t.message, "darwin_update_template_2024?0101.yaml (timestamp not understood)");
    assert_null(strchr(t.message, '\n'));
}

/* Update templates exist but none can be ordered: refuse rather than fall
 * back to the (stale) install template. */
static void test_update_none_understood(void **state)
{
    tqu_template t;
    (void)state;
    make("darwin_update_template_latest.yaml", 0);
    make("darwin_update_template_v2.yaml", 0);
    make("darwin_template_26285abe2200902d.yaml", 0);
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_EINVAL);
    assert_string_equal(t.reason, "TemplateAmbiguous");
    assert_string_equal(t.path, "");
    assert_contains(t.message, "none has a timestamp this controller understands");
    assert_contains(t.message, "darwin_update_template_latest.yaml, darwin_update_template_v2.yaml");
    assert_contains(t.message, "set spec.template");
}

static void test_update_tie(void **state)
{
    tqu_template t;
    (void)state;
    make("darwin_update_template_20240101000000.yaml", 0);
    make("darwin_update_template_20240301080000.yaml", 0);
    make("darwin_update_template_1709280000.yaml", 0);        /* the same instant */
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_EINVAL);
    assert_string_equal(t.reason, "TemplateAmbiguous");
    assert_contains(t.message, "ambiguous: 2 update templates");
    assert_contains(t.message, "darwin_update_template_1709280000.yaml, darwin_update_template_20240301080000.yaml");
    assert_null(strstr(t.message, "20240101000000"));
}

static void test_install_only(void **state)
{
    tqu_template t;
    (void)state;
    make("darwin_template_26285abe2200902d.yaml", 0);
    make("darwin_template_26285abe2200902d.yaml.orig", 0);   /* not a template */
    make("template.yaml", 0);
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_OK);
    assert_int_equal(t.kind, TQU_TEMPLATE_INSTALL);
    assert_string_equal(t.path, in_tmp("darwin_template_26285abe2200902d.yaml"));
    assert_contains(t.message, "never upgraded");
    /* a trailing slash on the folder makes no double slash */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/", tmp);
    assert_int_equal(tqu_template_find(dir, NULL, &t), K8S_OK);
    assert_string_equal(t.path, in_tmp("darwin_template_26285abe2200902d.yaml"));
}

static void test_none(void **state)
{
    tqu_template t;
    char sub[PATH_MAX];
    (void)state;
    make("update.sh", 0);
    make("darwin_template_.yaml", 0);          /* no deploy ID */
    snprintf(sub, sizeof(sub), "%s/darwin_template_dir.yaml", tmp);
    assert_int_equal(mkdir(sub, 0755), 0);      /* a folder with a template's name */
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_EINVAL);
    assert_string_equal(t.reason, "TemplateNotFound");
    assert_contains(t.message, "no darwin template in ");
    assert_contains(t.message, tmp);
    assert_contains(t.message, "darwin_template_dir.yaml (not a regular file)");
    assert_string_equal(t.path, "");
    assert_int_equal(t.kind, TQU_TEMPLATE_NONE);
}

static void test_ambiguous_install(void **state)
{
    tqu_template t;
    (void)state;
    make("darwin_template_26285abe2200902d.yaml", 0);
    make("darwin_template_aaaaaaaaaaaaaaaa.yaml", 0);
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_EINVAL);
    assert_string_equal(t.reason, "TemplateAmbiguous");
    assert_contains(t.message, "ambiguous: 2 install templates in ");
    assert_contains(t.message, "darwin_template_26285abe2200902d.yaml, darwin_template_aaaaaaaaaaaaaaaa.yaml");
}

static void test_links(void **state)
{
    tqu_template t;
    (void)state;
    make("real.yaml", 0);
    assert_int_equal(symlink("real.yaml", in_tmp("darwin_update_template_20240101000000.yaml")), 0);
    assert_int_equal(symlink("gone.yaml", in_tmp("darwin_update_template_20250101000000.yaml")), 0);
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_OK);
    assert_string_equal(t.path, in_tmp("darwin_update_template_20240101000000.yaml"));
    assert_contains(t.message, "darwin_update_template_20250101000000.yaml (dangling link)");
}

static void test_many_listed_briefly(void **state)
{
    tqu_template t;
    char name[64];
    (void)state;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "darwin_template_%040d.yaml", i);
        make(name, 0);
    }
    assert_int_equal(tqu_template_find(tmp, NULL, &t), K8S_EINVAL);
    assert_contains(t.message, "ambiguous: 40 install templates");
    assert_contains(t.message, " and 32 more");
    assert_true(strlen(t.message) < sizeof(t.message) - 1);
}

static void test_explicit(void **state)
{
    tqu_template t;
    char sub[PATH_MAX];
    (void)state;
    make("mine.yaml", 0);
    make("darwin_update_template_20240101000000.yaml", 0);
    /* given and present: used, even though discovery would pick another */
    assert_int_equal(tqu_template_find(tmp, in_tmp("mine.yaml"), &t), K8S_OK);
    assert_int_equal(t.kind, TQU_TEMPLATE_EXPLICIT);
    assert_string_equal(t.path, in_tmp("mine.yaml"));
    assert_contains(t.message, "using spec.template ");
    /* the folder need not exist when the path is given */
    assert_int_equal(tqu_template_find("/nonexistent/plan_client", in_tmp("mine.yaml"), &t), K8S_OK);
    /* missing */
    assert_int_equal(tqu_template_find(tmp, in_tmp("gone.yaml"), &t), K8S_EIO);
    assert_string_equal(t.reason, "TemplateNotFound");
    assert_contains(t.message, "gone.yaml: No such file or directory");
    assert_string_equal(t.path, "");
    /* a folder */
    snprintf(sub, sizeof(sub), "%s/adir", tmp);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(tqu_template_find(tmp, sub, &t), K8S_EIO);
    assert_string_equal(t.reason, "TemplateUnreadable");
    assert_contains(t.message, "not a regular file");
    /* unreadable (root reads anything, so only as another user) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(in_tmp("mine.yaml"), 0), 0);
        assert_int_equal(tqu_template_find(tmp, in_tmp("mine.yaml"), &t), K8S_EIO);
        assert_string_equal(t.reason, "TemplateUnreadable");
        assert_contains(t.message, "Permission denied");
    }
}

static void test_dir_problems(void **state)
{
    tqu_template t;
    char path[PATH_MAX];
    (void)state;
    snprintf(path, sizeof(path), "%s/missing", tmp);
    assert_int_equal(tqu_template_find(path, NULL, &t), K8S_EIO);
    assert_string_equal(t.reason, "TemplateDirUnreadable");
    assert_contains(t.message, "missing: No such file or directory");
    assert_contains(t.message, "spec.packages.root");
    make("afile", 0);
    assert_int_equal(tqu_template_find(in_tmp("afile"), NULL, &t), K8S_EIO);
    assert_contains(t.message, "Not a directory");
    assert_int_equal(tqu_template_find(NULL, NULL, &t), K8S_EINVAL);
    assert_int_equal(tqu_template_find(tmp, NULL, NULL), K8S_EINVAL);
}

static void test_alloc_failures(void **state)
{
    tqu_template t;
    char name[64];
    long n;
    (void)state;
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "darwin_update_template_202401%02d000000.yaml", i + 1);
        make(name, 0);
    }
    make("darwin_template_26285abe2200902d.yaml", 0);
    make("darwin_update_template_x.yaml", 0);
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        int rc = tqu_template_find(tmp, NULL, &t);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_string_equal(t.path, in_tmp("darwin_update_template_20240112000000.yaml"));
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_string_equal(t.reason, "OutOfMemory");
        assert_string_equal(t.path, "");
    }
    assert_true(n > 10);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_time),
        cmocka_unit_test(test_default_dir),
        cmocka_unit_test_setup_teardown(test_update_newest_by_name_not_mtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_mixed_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_unparsable_names_noted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_none_understood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_tie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ambiguous_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_listed_briefly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_problems, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
