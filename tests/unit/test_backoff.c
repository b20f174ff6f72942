/*
 * test_backoff.c - k8s__backoff, the informer's reconnect delay: 0.8 s
 * doubling per failure up to 30 s, +/-20 % jitter that never exceeds the
 * cap, no overflow for long outages, and odd arguments handled.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <cmocka.h>
#include "backoff.h"

#define EPS 1e-9

static void assert_close(double want, double got)
{
    if (fabs(want - got) > EPS)
        fail_msg("want %.9f, got %.9f", want, got);
}

/* Middle of the jitter range (0.5) is the nominal delay. */
static void test_doubling_to_cap(void **state)
{
    static const double want[] = { 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30 };
    (void)state;
    for (int i = 0; i < (int)(sizeof(want) / sizeof(want[0])); i++)
        assert_close(want[i], k8s__backoff(0.8, 30, i, 0.5));
}

/* Jitter spans [0.8, 1.2] of the nominal delay, capped at max. */
static void test_jitter_bounds(void **state)
{
    (void)state;
    assert_close(0.64, k8s__backoff(0.8, 30, 0, 0));
    assert_close(0.96, k8s__backoff(0.8, 30, 0, 1));
    assert_close(12.8 * 0.8, k8s__backoff(0.8, 30, 4, 0));
    assert_close(25.6 * 1.2 > 30 ? 30 : 25.6 * 1.2, k8s__backoff(0.8, 30, 5, 1));
    assert_close(30, k8s__backoff(0.8, 30, 6, 1));        /* never above the cap */
    assert_close(24, k8s__backoff(0.8, 30, 6, 0));
    /* every value in range for many random draws */
    srand(7);
    for (int f = 0; f < 40; f++)
        for (int k = 0; k < 200; k++) {
            double u = (double)rand() / RAND_MAX;
            double d = k8s__backoff(0.8, 30, f, u);
            double nominal = fmin(0.8 * pow(2, f), 30);
            if (d < 0.8 * nominal - EPS || d > fmin(1.2 * nominal, 30) + EPS)
                fail_msg("failures %d u %f: %f outside [%f, %f]", f, u, d, 0.8 * nominal,
                         fmin(1.2 * nominal, 30));
        }
}

/* A very long outage does not overflow or loop for long. */
static void test_huge_failures(void **state)
{
    (void)state;
    assert_close(30, k8s__backoff(0.8, 30, INT_MAX, 0.5));
    assert_close(0.8, k8s__backoff(0.8, 30, -5, 0.5));
}

static void test_odd_arguments(void **state)
{
    (void)state;
    assert_close(0, k8s__backoff(0, 30, 3, 0.5));
    assert_close(0, k8s__backoff(0.8, 0, 3, 0.5));
    assert_close(0, k8s__backoff(-1, 30, 3, 0.5));
    assert_close(0, k8s__backoff(NAN, 30, 3, 0.5));
    /* jitter outside [0, 1] is clamped; NaN counts as 0 */
    assert_close(0.64, k8s__backoff(0.8, 30, 0, -3));
    assert_close(0.96, k8s__backoff(0.8, 30, 0, 7));
    assert_close(0.64, k8s__backoff(0.8, 30, 0, NAN));
    /* initial above max: max is the delay */
    assert_close(5, k8s__backoff(10, 5, 0, 1));
    assert_close(4, k8s__backoff(10, 5, 0, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling_to_cap),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_huge_failures),
        cmocka_unit_test(test_odd_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
