/*
 * time.c - RFC 3339 times as the API server writes them (see k8s.h): the
 * one parser and the one formatter of the project, and the calendar
 * arithmetic under them (no timegm, so no dependence on TZ or on time_t's
 * -1 meaning both "error" and 1969-12-31T23:59:59Z).
 *
 * The parser walks the string one character at a time and checks each
 * before looking at the next, so it never reads past the terminating NUL
 * whatever the input (a short offset "+08", "+8", a cut "2026-12-0").
 *
 * Also the library's timed waits on monotonic condition variables.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/time.h>
#include "k8s_int.h"

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

int k8s_time_from_utc(int year, int mon, int day, int hour, int min, int sec, time_t *out)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    if (year < 0 || year > 9999 || mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] ||
        (mon == 2 && day == 29 && !leap) || hour < 0 || hour > 23 || min < 0 || min > 59 ||
        sec < 0 || sec > 60)
        return K8S_EINVAL;
    *out = (time_t)(((days_from_civil(year, (unsigned)mon, (unsigned)day) * 24 + hour) * 60 + min) * 60 +
                    sec);
    return K8S_OK;
}

/*
 * Exactly n decimal digits at *p into *v, advancing *p. Stops at the
 * first character that is not a digit (the NUL included) without looking
 * further: 0, or -1.
 */
static int take_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[0];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
        (*p)++;
    }
    *v = x;
    return 0;
}

/* The character at *p is c (or, when alt is not 0, alt): advance past it. */
static int take_char(const char **p, char c, char alt)
{
    if (**p != c && (!alt || **p != alt))
        return -1;
    (*p)++;
    return 0;
}

int k8s_time_parse(const char *s, time_t *out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    time_t t;

    if (!s || !out)
        return K8S_EINVAL;
    if (take_digits(&p, 4, &y) || take_char(&p, '-', 0) || take_digits(&p, 2, &mo) ||
        take_char(&p, '-', 0) || take_digits(&p, 2, &d) || take_char(&p, 'T', 't') ||
        take_digits(&p, 2, &h) || take_char(&p, ':', 0) || take_digits(&p, 2, &mi) ||
        take_char(&p, ':', 0) || take_digits(&p, 2, &sec))
        return K8S_EINVAL;
    if (*p == '.') {                       /* a fraction: at least one digit, dropped */
        p++;
        if (*p < '0' || *p > '9')
            return K8S_EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (take_digits(&p, 2, &oh) || take_char(&p, ':', 0) || take_digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return K8S_EINVAL;
    } else {
        return K8S_EINVAL;
    }
    if (*p != '\0' || k8s_time_from_utc(y, mo, d, h, mi, sec, &t) != K8S_OK)
        return K8S_EINVAL;
    *out = t - sign * (oh * 3600 + om * 60);
    return K8S_OK;
}

char *k8s_time_format(time_t t, long usec, char *buf, size_t len)
{
    struct tm tm;

    if (!buf || !len)
        return buf;
    buf[0] = '\0';
    if (!gmtime_r(&t, &tm))
        return buf;
    if (usec >= 0)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec % 1000000);
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

char *k8s_time_now(char *buf, size_t len)
{
    return k8s_time_format(time(NULL), -1, buf, len);
}

char *k8s_time_now_micro(char *buf, size_t len)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return k8s_time_format(tv.tv_sec, (long)tv.tv_usec, buf, len);
}

void k8s__deadline(struct timespec *ts, double s)
{
    double end;

    clock_gettime(CLOCK_MONOTONIC, ts);
    end = (double)ts->tv_sec + (double)ts->tv_nsec / 1e9 + s;
    ts->tv_sec = (time_t)end;
    ts->tv_nsec = (long)((end - (double)ts->tv_sec) * 1e9);
}

int k8s__nap(pthread_mutex_t *mu, pthread_cond_t *cv, atomic_int *stopping, double s)
{
    struct timespec ts;

    k8s__deadline(&ts, s);
    pthread_mutex_lock(mu);
    while (!atomic_load(stopping))
        if (pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(mu);
    return atomic_load(stopping);
}
