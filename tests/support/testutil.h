/*
 * testutil.h - small helpers shared by the cmocka tests: a private temp
 * folder per test, substring assertions, a monotonic clock, and for the
 * integration tests the cluster's variables and a ready client.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>

/*
 * Make a fresh folder $TMPDIR/<name>-XXXXXX (TMPDIR defaults to /tmp) and
 * put its path in buf. Returns 0, or -1 with errno set.
 */
int test_mkdtemp(char *buf, size_t len, const char *name);

/*
 * Remove path and everything below it. Folders a test made read-only or
 * unreadable on purpose are opened up (0700) by a first walk, so their
 * entries can go (one unreadable level below another is beyond it). Does
 * not follow symlinks. Returns 0, or -1 when something could not be removed.
 */
int test_rmtree(const char *path);

/* Fail the test, at the caller's line, unless hay contains needle. */
#define assert_contains(hay, needle) test_assert_contains((hay), (needle), __FILE__, __LINE__)
/* Fail the test, at the caller's line, if hay contains needle. */
#define assert_not_contains(hay, needle) \
    test_assert_not_contains((hay), (needle), __FILE__, __LINE__)

void test_assert_contains(const char *hay, const char *needle, const char *file, int line);
void test_assert_not_contains(const char *hay, const char *needle, const char *file, int line);

/* Seconds on the monotonic clock. */
double test_now(void);

/*
 * The factor by which a test widens an upper time bound ("prompt, not a
 * timeout") and the waits for something to happen: $TQU_TEST_SLACK, 1 when
 * unset. tests/run.sh sets it under valgrind and the sanitizers, whose
 * passes check memory, not time, and run beside each other on two cores;
 * the plain pass (slack 1) is the one that holds the bounds.
 */
double test_slack(void);

/*
 * For the tests that run under tests/cluster/with-cluster.sh: the value of
 * one of its variables (TQU_KUBECONFIG_ADMIN, ...). Exits 2 with a hint
 * when it is not set, as the test was then run outside a cluster.
 */
const char *test_env(const char *name);

struct k8s_config;
struct k8s_client;
/*
 * A client for the kubeconfig named by the variable kubeconfig_env, with
 * no client-side rate limit; cfg is filled and must outlive the client.
 * Fails the test when either cannot be made.
 */
struct k8s_client *test_client(const char *kubeconfig_env, struct k8s_config *cfg);

#endif
