/*
 * version.c - parse and compare "A.B.C.D" release versions (see version.h).
 */
#include <stdio.h>
#include <string.h>
#include "k8s.h"
#include "version.h"

#define PART_MAX 2147483647u

int tqu_version_parse(const char *s, tqu_version *out)
{
    tqu_version v = { { 0, 0, 0, 0 } };
    int i;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!s || !out)
        return K8S_EINVAL;
    for (i = 0; i < 4; i++) {
        unsigned long long n = 0;
        const char *start = s;
        while (*s >= '0' && *s <= '9') {
            n = n * 10 + (unsigned)(*s - '0');
            if (n > PART_MAX)
                return K8S_EINVAL;
            s++;
        }
        if (s == start)
            return K8S_EINVAL;           /* empty part, sign, space, letter */
        v.part[i] = (unsigned int)n;
        if (i < 3) {
            if (*s != '.')
                return K8S_EINVAL;
            s++;
        }
    }
    if (*s != '\0')
        return K8S_EINVAL;                /* a fifth part or trailing text */
    *out = v;
    return K8S_OK;
}

int tqu_version_cmp(const tqu_version *a, const tqu_version *b)
{
    for (int i = 0; i < 4; i++)
        if (a->part[i] != b->part[i])
            return a->part[i] < b->part[i] ? -1 : 1;
    return 0;
}

const char *tqu_version_format(const tqu_version *v, char *buf, size_t len)
{
    int n;
    if (!buf || !len)
        return "";
    n = snprintf(buf, len, "%u.%u.%u.%u", v->part[0], v->part[1], v->part[2], v->part[3]);
    if (n < 0 || (size_t)n >= len)
        buf[0] = '\0';
    return buf;
}
