/*
 * test_time.c - k8s/time.c: the RFC 3339 parser and formatter.
 *
 * Every string is handed to the parser in a heap block of exactly its
 * length + 1, so that under ASan (and valgrind) a read past the NUL is
 * reported: the malformed and cut forms below are the ones a parser that
 * trusts the string's shape reads past ("+08", "+8", "+08:0", every prefix
 * of a valid time).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "k8s.h"

#define UNCHANGED ((time_t)0x5a5a5a5a)

/* k8s_time_parse on an exact-size heap copy of the first n bytes of s. */
static int parse_n(const char *s, size_t n, time_t *out)
{
    char *copy = malloc(n + 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, s, n);
    copy[n] = '\0';
    rc = k8s_time_parse(copy, out);
    free(copy);
    return rc;
}

static int parse(const char *s, time_t *out)
{
    return parse_n(s, strlen(s), out);
}

static void test_valid_forms(void **state)
{
    static const struct { const char *s; long long want; } cases[] = {
        { "1970-01-01T00:00:10Z", 10 },
        { "1970-01-01T00:00:10z", 10 },
        { "1970-01-01t00:00:10Z", 10 },
        { "1970-01-01T08:00:10+08:00", 10 },
        { "1969-12-31T16:00:10-08:00", 10 },
        { "1970-01-01T00:00:10+00:00", 10 },
        { "1970-01-01T00:00:10-00:00", 10 },
        { "1970-01-01T05:30:10+05:30", 10 },
        { "1970-01-01T00:00:10.123456Z", 10 },
        { "1970-01-01T00:00:10.9Z", 10 },                 /* the fraction is dropped, not rounded */
        { "1970-01-01T00:00:10.123456789012345678901234567890Z", 10 },
        { "2026-12-05T22:00:00+08:00", 1796479200 },
        { "2026-12-05T22:00:00.5+08:00", 1796479200 },
        { "2026-12-05T14:00:00Z", 1796479200 },
        { "2026-12-05T00:00:00-14:00", 1796479200 },
        { "2026-12-06T13:59:00+23:59", 1796479200 },
        { "1969-12-31T23:59:59Z", -1 },                   /* timegm's "error" value */
        { "2024-02-29T00:00:00Z", 1709164800 },
        { "2000-02-29T12:00:00Z", 951825600 },
        { "2026-12-31T23:59:60Z", 1798761600 },           /* a leap second: the next minute */
        { "9999-12-31T23:59:59Z", 253402300799LL },
        { "0001-01-01T00:00:00Z", -62135596800LL },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        time_t t = UNCHANGED;
        if (parse(cases[i].s, &t) != K8S_OK || (long long)t != cases[i].want)
            fail_msg("\"%s\": got %lld, want %lld", cases[i].s, (long long)t, cases[i].want);
    }
}

static void test_malformed_forms(void **state)
{
    static const char *const cases[] = {
        "",
        "not a time",
        "Z",
        "2026-12-05",
        "2026-12-05T22:00:00",                  /* no zone */
        "2026-12-05T22:00:00+08",               /* short offsets */
        "2026-12-05T22:00:00+8",
        "2026-12-05T22:00:00+",
        "2026-12-05T22:00:00-",
        "2026-12-05T22:00:00+08:",
        "2026-12-05T22:00:00+08:0",
        "2026-12-05T22:00:00+8:00",
        "2026-12-05T22:00:00+8:0",
        "2026-12-05T22:00:00+0800",
        "2026-12-05T22:00:00+08:00:00",
        "2026-12-05T22:00:00+ 8:00",
        "2026-12-05T22:00:00+08: 0",
        "2026-12-05T22:00:00++8:00",
        "2026-12-05T22:00:00+-8:00",
        "2026-12-05T22:00:00+24:00",
        "2026-12-05T22:00:00+08:60",
        "2026-12-05T22:00:00Zjunk",
        "2026-12-05T22:00:00Z ",
        "2026-12-05T22:00:00+08:00\n",
        "2026-12-05T22:00:00ZZ",
        "2026-12-05T22:00:00.Z",                /* a fraction with no digit */
        "2026-12-05T22:00:00.",
        "2026-12-05T22:00:00,5Z",
        "2026-12-05T22:00:00.5",
        "2026-12-05 22:00:00Z",
        "2026-12-05_22:00:00Z",
        " 2026-12-05T22:00:00Z",
        "+2026-12-05T22:00:00Z",
        "12026-12-05T22:00:00Z",
        "226-12-05T22:00:00Z",
        "2026-1-05T22:00:00Z",
        "2026-12-5T22:00:00Z",
        "2026-12-05T2:00:00Z",
        "2026-12-05T22:0:00Z",
        "2026-12-05T22:00:0Z",
        "2026/12/05T22:00:00Z",
        "2026-12-05T22.00.00Z",
        "2026-00-05T22:00:00Z",                 /* fields out of range */
        "2026-13-05T22:00:00Z",
        "2026-12-00T22:00:00Z",
        "2026-12-32T22:00:00Z",
        "2026-02-29T00:00:00Z",                 /* days that do not exist */
        "1900-02-29T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-12-05T24:00:00Z",
        "2026-12-05T23:60:00Z",
        "2026-12-05T23:59:61Z",
        "2026-12-05T-1:00:00Z",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        time_t t = UNCHANGED;
        if (parse(cases[i], &t) != K8S_EINVAL || t != UNCHANGED)
            fail_msg("\"%s\" was accepted (%lld)", cases[i], (long long)t);
    }
    time_t t = UNCHANGED;
    assert_int_equal(k8s_time_parse(NULL, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_parse("1970-01-01T00:00:10Z", NULL), K8S_EINVAL);
    assert_true(t == UNCHANGED);
}

/* Every proper prefix of a valid time is refused, read within its bytes. */
static void test_truncated_forms(void **state)
{
    static const char *const valid[] = {
        "2026-12-05T22:00:00+08:00",
        "2026-12-05T22:00:00-08:00",
        "2026-12-05T14:00:00.123456Z",
        "2026-12-05T22:00:00.5+08:00",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        size_t len = strlen(valid[i]);
        time_t t = UNCHANGED;
        assert_int_equal(parse_n(valid[i], len, &t), K8S_OK);
        for (size_t n = 0; n < len; n++) {
            t = UNCHANGED;
            if (parse_n(valid[i], n, &t) != K8S_EINVAL || t != UNCHANGED)
                fail_msg("\"%.*s\" (a cut \"%s\") was accepted", (int)n, valid[i], valid[i]);
        }
    }
}

static void test_from_utc(void **state)
{
    time_t t = UNCHANGED;
    (void)state;
    assert_int_equal(k8s_time_from_utc(1970, 1, 1, 0, 0, 0, &t), K8S_OK);
    assert_true(t == 0);
    assert_int_equal(k8s_time_from_utc(2026, 12, 5, 14, 0, 0, &t), K8S_OK);
    assert_true(t == 1796479200);
    assert_int_equal(k8s_time_from_utc(2024, 2, 29, 0, 0, 0, &t), K8S_OK);
    t = UNCHANGED;
    assert_int_equal(k8s_time_from_utc(2025, 2, 29, 0, 0, 0, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_from_utc(2026, 6, 31, 0, 0, 0, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_from_utc(-1, 1, 1, 0, 0, 0, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_from_utc(10000, 1, 1, 0, 0, 0, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_from_utc(2026, 1, 1, 0, 0, -1, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_from_utc(2026, 1, 1, 0, -1, 0, &t), K8S_EINVAL);
    assert_int_equal(k8s_time_from_utc(2026, 1, 1, -1, 0, 0, &t), K8S_EINVAL);
    assert_true(t == UNCHANGED);
}

static void test_format(void **state)
{
    static const time_t round[] = { 0, 1, -1, 1796479200, 951825600, 253402300799LL, -62135596800LL };
    char buf[K8S_TIME_LEN], small[5];
    time_t t;
    (void)state;
    assert_string_equal(k8s_time_format(0, -1, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
    assert_string_equal(k8s_time_format(1796479200, -1, buf, sizeof(buf)), "2026-12-05T14:00:00Z");
    assert_string_equal(k8s_time_format(1796479200, 123, buf, sizeof(buf)), "2026-12-05T14:00:00.000123Z");
    assert_string_equal(k8s_time_format(-1, 999999, buf, sizeof(buf)), "1969-12-31T23:59:59.999999Z");
    assert_string_equal(k8s_time_format(253402300799LL, 0, buf, sizeof(buf)), "9999-12-31T23:59:59.000000Z");
    /* cut to the buffer, never written past it */
    assert_string_equal(k8s_time_format(0, -1, small, sizeof(small)), "1970");
    small[0] = 'x';
    assert_ptr_equal(k8s_time_format(0, -1, small, 0), small);
    assert_int_equal(small[0], 'x');
    for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
        assert_int_equal(parse(k8s_time_format(round[i], -1, buf, sizeof(buf)), &t), K8S_OK);
        assert_true(t == round[i]);
        assert_int_equal(parse(k8s_time_format(round[i], 654321, buf, sizeof(buf)), &t), K8S_OK);
        assert_true(t == round[i]);
    }
}

static void test_now(void **state)
{
    char buf[K8S_TIME_LEN];
    time_t before = time(NULL), t;
    (void)state;
    assert_int_equal(strlen(k8s_time_now(buf, sizeof(buf))), 20);
    assert_int_equal(parse(buf, &t), K8S_OK);
    assert_true(t >= before && t <= time(NULL));
    assert_int_equal(strlen(k8s_time_now_micro(buf, sizeof(buf))), 27);
    assert_int_equal(buf[19], '.');
    assert_int_equal(parse(buf, &t), K8S_OK);
    assert_true(t >= before && t <= time(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_forms),
        cmocka_unit_test(test_malformed_forms),
        cmocka_unit_test(test_truncated_forms),
        cmocka_unit_test(test_from_utc),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
