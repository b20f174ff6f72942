/*
 * version.h - Tianqing release versions "A.B.C.D" (e.g. 10.7.0.2800):
 * strict parsing and numeric comparison (10.10.0.0 > 10.9.0.0).
 */
#ifndef TQU_VERSION_H
#define TQU_VERSION_H

#include <stddef.h>

typedef struct tqu_version {
    unsigned int part[4];      /* each 0 .. 2^31-1 */
} tqu_version;

/* Room for any formatted version: 4 x 10 digits, 3 dots, NUL. */
#define TQU_VERSION_BUFLEN 44

/*
 * Parse exactly four dot-separated decimal integers, each 0 .. 2147483647:
 * digits only (no sign, no spaces, no empty part, nothing before or after).
 * Leading zeros are accepted and carry no meaning ("10.07.0.1" is
 * 10.7.0.1), as the CRD's pattern ^[0-9]+(\.[0-9]+){3}$ admits them.
 * Returns 0, or K8S_EINVAL (s NULL or malformed; *out is then zeroed).
 */
int tqu_version_parse(const char *s, tqu_version *out);

/* <0, 0 or >0 as a is older than, equal to or newer than b (part by part,
 * numerically). */
int tqu_version_cmp(const tqu_version *a, const tqu_version *b);

/* "A.B.C.D" into buf (canonical: no leading zeros); returns buf, or "" when
 * len is too small. */
const char *tqu_version_format(const tqu_version *v, char *buf, size_t len);

#endif
