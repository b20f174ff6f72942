/*
 * routes.h - the vendor's supported upgrade routes, read from one data file
 * (routes/routes.yaml in the repository, YAML parsed with libyaml), and the
 * check of a requested upgrade against them (the Validate step).
 *
 * The file lists, per target release, the releases it can be reached from
 * and whether the standard-install rule applies (the first version ever
 * installed must itself be one of those). Its format is documented at the
 * top of routes/routes.yaml; a new vendor table replaces the file, not the
 * code. Loading is strict: unknown keys, bad versions, duplicates and
 * wrong types are errors naming the file and line.
 */
#ifndef TQU_ROUTES_H
#define TQU_ROUTES_H

#include <stddef.h>
#include "version.h"

/* File name of the table, beside the binary or under routes/ in the repo. */
#define TQU_ROUTES_FILE "routes.yaml"
/* Limits that keep a wrong file from costing much. */
#define TQU_ROUTES_MAX_BYTES ((size_t)1 << 20)
#define TQU_ROUTES_MAX_ROUTES 1000
#define TQU_ROUTES_MAX_SOURCES 10000
#define TQU_ROUTES_MAX_TEXT 4096

/* One target release. Read-only for callers. */
typedef struct tqu_route {
    tqu_version target;
    tqu_version *sources;        /* sorted oldest first, no duplicates */
    size_t nsources;
    int standard_install_only;   /* initialVersion must be one of sources */
    char *reference;             /* where the table comes from, or NULL; one line */
    char *notes;                 /* for operators, or NULL; one line */
    int line;                    /* of the entry in the file, for messages */
} tqu_route;

/* The whole table. Read-only for callers; free with tqu_routes_free. */
typedef struct tqu_routes {
    tqu_route *routes;           /* in file order */
    size_t nroutes;
    char *path;                  /* the file it came from (or the name given) */
} tqu_routes;

/*
 * Load the table from path. On success *out is the table (caller frees with
 * tqu_routes_free). On failure *out is NULL, nothing is left allocated and
 * err holds one line "path:line: problem" (or "path: problem" when there is
 * no line, e.g. a missing file). Returns 0, K8S_EIO (cannot read),
 * K8S_ETOOBIG (over TQU_ROUTES_MAX_BYTES), K8S_EPARSE (not YAML, or not
 * this format), K8S_ENOMEM, K8S_EINVAL (NULL arguments).
 */
int tqu_routes_load(const char *path, tqu_routes **out, char *err, size_t errlen);

/* The same from text in memory; name stands for the file in messages. */
int tqu_routes_parse(const char *text, size_t len, const char *name, tqu_routes **out,
                     char *err, size_t errlen);

void tqu_routes_free(tqu_routes *r);

/* The route to target, or NULL. */
const tqu_route *tqu_routes_find(const tqu_routes *r, const tqu_version *target);

/* Whether v is one of route's sources. */
int tqu_route_has_source(const tqu_route *route, const tqu_version *v);

typedef enum tqu_route_reason {
    TQU_ROUTE_OK = 0,                 /* "RouteSupported" */
    TQU_ROUTE_INVALID_VERSION,        /* "InvalidVersion": a version is not A.B.C.D */
    TQU_ROUTE_DOWNGRADE_OR_SAME,      /* "DowngradeOrSameVersion": to <= from */
    TQU_ROUTE_INITIAL_AFTER_FROM,     /* "InitialAfterFrom": initial > from, impossible */
    TQU_ROUTE_UNSUPPORTED_TARGET,     /* "UnsupportedTargetVersion": no route to `to` */
    TQU_ROUTE_UNSUPPORTED_SOURCE,     /* "UnsupportedSourceVersion": from not listed */
    TQU_ROUTE_NON_STANDARD,           /* "NonStandardInstallation": initial not listed */
    TQU_ROUTE_REASON_MAX
} tqu_route_reason;

typedef struct tqu_route_verdict {
    tqu_route_reason reason;
    const char *code;              /* CamelCase form of reason (static) */
    const tqu_route *route;        /* the route to `to` when there is one, else NULL */
    char message[1024];            /* one line: what is wrong and what the operator can do */
} tqu_route_verdict;

/* CamelCase code of a reason ("RouteSupported", "UnsupportedSourceVersion", ...). */
const char *tqu_route_reason_code(tqu_route_reason reason);

/*
 * Check an upgrade of an environment now at `from`, first installed at
 * `initial`, to `to` (version strings as in the resource). The checks, in
 * order: the three parse (InvalidVersion); to > from
 * (DowngradeOrSameVersion); initial <= from (InitialAfterFrom); a route
 * to `to` exists (UnsupportedTargetVersion); from is one of its sources
 * (UnsupportedSourceVersion); when the route says standardInstallOnly,
 * initial is one of its sources (NonStandardInstallation). The first that
 * fails decides.
 * Fills *v completely and returns v->reason: 0 when the upgrade is
 * supported. Never fails otherwise (NULL routes: every target is
 * unsupported).
 */
int tqu_route_check(const tqu_routes *routes, const char *from, const char *initial,
                    const char *to, tqu_route_verdict *v);

#endif
