/*
 * backoff.c - reconnect delays (see backoff.h).
 */
#include "backoff.h"

double k8s__backoff(double initial, double max, int failures, double jitter_unit)
{
    double d;

    if (!(initial > 0) || !(max > 0))
        return 0;
    if (initial > max)
        initial = max;
    if (!(jitter_unit >= 0))      /* also NaN */
        jitter_unit = 0;
    if (jitter_unit > 1)
        jitter_unit = 1;
    d = initial;
    for (int i = 0; i < failures && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    d *= 0.8 + 0.4 * jitter_unit;
    return d > max ? max : d;
}
