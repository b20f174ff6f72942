/*
 * testutil.c - see testutil.h.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <time.h>
#include "k8s.h"
#include "testutil.h"

double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double test_slack(void)
{
    const char *v = getenv("TQU_TEST_SLACK");
    char *end = NULL;
    double f = v && v[0] ? strtod(v, &end) : 1.0;
    return v && v[0] && end && *end == '\0' && f >= 1.0 ? f : 1.0;
}

const char *test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !v[0]) {
        fprintf(stderr, "%s is not set: run under tests/cluster/with-cluster.sh\n", name);
        exit(2);
    }
    return v;
}

k8s_client *test_client(const char *kubeconfig_env, k8s_config *cfg)
{
    k8s_err err;
    k8s_client *c = NULL;
    k8s_client_opts o = { .qps = -1 };

    if (k8s_config_load(cfg, test_env(kubeconfig_env), NULL, &err))
        fail_msg("load %s: %s", kubeconfig_env, err.message);
    if (k8s_client_new(cfg, &o, &c, &err))
        fail_msg("client for %s: %s", kubeconfig_env, err.message);
    return c;
}

int test_mkdtemp(char *buf, size_t len, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(buf, len, "%s/%s-XXXXXX", tmp && tmp[0] ? tmp : "/tmp", name);

    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(buf) ? 0 : -1;
}

static int failures;

/* A first walk makes every folder it reaches writable (their entries can
 * then go) and readable (an unreadable one, FTW_DNR, is read by the
 * second walk). */
static int open_up(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)f;
    if (flag == FTW_D || flag == FTW_DNR)
        chmod(p, 0700);
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    if (remove(p) != 0)
        failures++;
    return 0;
}

int test_rmtree(const char *path)
{
    failures = 0;
    chmod(path, 0700);
    nftw(path, open_up, 16, FTW_PHYS);
    if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return -1;
    return failures ? -1 : 0;
}

void test_assert_contains(const char *hay, const char *needle, const char *file, int line)
{
    if (hay && needle && strstr(hay, needle))
        return;
    print_error("%s:%d: \"%s\" does not contain \"%s\"\n", file, line, hay ? hay : "(null)",
                   needle ? needle : "(null)");
    _fail(file, line);
}

void test_assert_not_contains(const char *hay, const char *needle, const char *file, int line)
{
    if (!hay || !needle || !strstr(hay, needle))
        return;
    print_error("%s:%d: \"%s\" contains \"%s\"\n", file, line, hay, needle);
    _fail(file, line);
}
