/*
 * test_version.c - "A.B.C.D" release versions (controller/upgrade/version.c):
 * strict parsing, numeric comparison, formatting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "k8s.h"
#include "failalloc.h"
#include "upgrade/version.h"

static void assert_parses(const char *s, unsigned a, unsigned b, unsigned c, unsigned d)
{
    tqu_version v;
    assert_int_equal(tqu_version_parse(s, &v), K8S_OK);
    assert_int_equal(v.part[0], a);
    assert_int_equal(v.part[1], b);
    assert_int_equal(v.part[2], c);
    assert_int_equal(v.part[3], d);
}

static void test_parse_valid(void **state)
{
    (void)state;
    assert_parses("10.7.0.2800", 10, 7, 0, 2800);
    assert_parses("0.0.0.0", 0, 0, 0, 0);
    assert_parses("2147483647.2147483647.0.1", 2147483647u, 2147483647u, 0, 1);
    /* leading zeros carry no meaning (the CRD pattern admits them) */
    assert_parses("10.07.00.02800", 10, 7, 0, 2800);
    assert_parses("0000000000000000000010.7.0.1", 10, 7, 0, 1);
}

static void test_parse_invalid(void **state)
{
    static const char *const bad[] = {
        "", "10", "10.7", "10.7.0", "10.7.0.2800.1", "10..0.2800", ".10.7.0", "10.7.0.",
        "10.7.0.2800.", "+10.7.0.2800", "-10.7.0.2800", "10.-7.0.2800", "10.+7.0.1",
        " 10.7.0.2800", "10.7.0.2800 ", "10.7.0.2800\n", "10. 7.0.2800", "10.7.0.28 00",
        "10.7.0.a", "v10.7.0.2800", "10.7.0.2800a", "10,7,0,2800", "10.7.0.0x10",
        "2147483648.0.0.0", "0.0.0.2147483648", "99999999999999999999.0.0.0",
        "１０.7.0.1", "10.7.0.2800-rc1", "...", "1.2.3.4.5.6",
    };
    tqu_version v;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&v, 0x5a, sizeof(v));
        int rc = tqu_version_parse(bad[i], &v);
        if (rc != K8S_EINVAL)
            fail_msg("\"%s\" parsed", bad[i]);
        /* out is zeroed on failure, never half-filled */
        for (int k = 0; k < 4; k++)
            assert_int_equal(v.part[k], 0);
    }
    assert_int_equal(tqu_version_parse(NULL, &v), K8S_EINVAL);
    assert_int_equal(tqu_version_parse("1.2.3.4", NULL), K8S_EINVAL);
}

static tqu_version V(const char *s)
{
    tqu_version v;
    assert_int_equal(tqu_version_parse(s, &v), K8S_OK);
    return v;
}

static int cmp(const char *a, const char *b)
{
    tqu_version x = V(a), y = V(b);
    int c = tqu_version_cmp(&x, &y);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

static void test_compare(void **state)
{
    (void)state;
    assert_int_equal(cmp("10.10.0.0", "10.9.0.0"), 1);       /* numeric, not text */
    assert_int_equal(cmp("10.9.0.0", "10.10.0.0"), -1);
    assert_int_equal(cmp("10.7.0.2800", "10.7.0.2704"), 1);
    assert_int_equal(cmp("10.7.0.1000", "10.7.0.999"), 1);
    assert_int_equal(cmp("10.3.0.5000", "10.5.0.1000"), -1);
    assert_int_equal(cmp("10.7.0.2800", "10.7.0.2800"), 0);
    assert_int_equal(cmp("10.07.0.2800", "10.7.0.2800"), 0);
    assert_int_equal(cmp("11.0.0.0", "10.2147483647.2147483647.2147483647"), 1);
    assert_int_equal(cmp("0.0.0.1", "0.0.0.0"), 1);
    assert_int_equal(cmp("2147483647.0.0.0", "0.0.0.0"), 1);   /* no signed overflow */
}

static int qcmp(const void *a, const void *b)
{
    return tqu_version_cmp(a, b);
}

static void test_sort_order(void **state)
{
    static const char *const shuffled[] = { "10.7.0.2704", "10.3.0.3200", "10.10.0.1", "10.7.0.1050",
                                            "10.6.0.2600", "10.7.0.2101", "10.5.0.3000", "10.7.0.999" };
    static const char *const sorted[] = { "10.3.0.3200", "10.5.0.3000", "10.6.0.2600", "10.7.0.999",
                                          "10.7.0.1050", "10.7.0.2101", "10.7.0.2704", "10.10.0.1" };
    tqu_version v[8];
    char buf[TQU_VERSION_BUFLEN];
    (void)state;
    for (int i = 0; i < 8; i++)
        v[i] = V(shuffled[i]);
    qsort(v, 8, sizeof(v[0]), qcmp);
    for (int i = 0; i < 8; i++)
        assert_string_equal(tqu_version_format(&v[i], buf, sizeof(buf)), sorted[i]);
}

static void test_format(void **state)
{
    char buf[TQU_VERSION_BUFLEN], small[5];
    tqu_version v = V("2147483647.2147483647.2147483647.2147483647");
    (void)state;
    assert_string_equal(tqu_version_format(&v, buf, sizeof(buf)),
                        "2147483647.2147483647.2147483647.2147483647");
    v = V("010.07.0.02800");
    assert_string_equal(tqu_version_format(&v, buf, sizeof(buf)), "10.7.0.2800");
    /* too small: empty, never truncated to a different version */
    assert_string_equal(tqu_version_format(&v, small, sizeof(small)), "");
    assert_string_equal(tqu_version_format(&v, NULL, 0), "");
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_sort_order),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
