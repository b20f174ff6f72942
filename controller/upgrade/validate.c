/*
 * validate.c - step 1, Validate: the spec against the upgrade route table
 * (routes/routes.yaml, built in or --routes-file), every path it names
 * against the allowed roots (--allowed-root; before any step reads, runs
 * or mounts one) and the window.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "routes.h"
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"

extern const char tqu_routes_builtin[];
extern const char tqu_routes_builtin_end[];

static tqu_routes *routes;

int tqu_steps_init(const char *routes_file, char *msg, size_t len)
{
    if (routes_file)
        return tqu_routes_load(routes_file, &routes, msg, len);
    return tqu_routes_parse(tqu_routes_builtin, strlen(tqu_routes_builtin),
                            "built-in routes.yaml", &routes, msg, len);
}

void tqu_steps_cleanup(void)
{
    tqu_routes_free(routes);
    routes = NULL;
}

/* ---------------------------------------------------------------- Validate */

void tqu__step_validate(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    tqu_route_verdict v;

    if (!routes) {
        tqu_out(o, TQU_OUT_ERROR, "RoutesNotLoaded", "the upgrade route table is not loaded");
        return;
    }
    tqu_route_check(routes, run->spec.from_version, run->spec.initial_version, run->spec.to_version, &v);
    if (v.reason != TQU_ROUTE_OK) {
        tqu_out(o, TQU_OUT_FAILED, v.code, "%s", v.message);
        return;
    }
    /* folders are confined (design.md section 8): PathNotAllowed */
    if (tqu__confine_spec(run, o))
        return;
    if (run->spec.has_window && time(NULL) >= run->spec.window_end &&
        !strcmp(tqu_status_step_state(run->status, run->wf, TQU_STEP_UPGRADE), "Pending")) {
        tqu_out(o, TQU_OUT_FAILED, "WindowClosed",
            "the maintenance window ended at %s before the upgrade could start: agree a new window and set spec.window",
            run->spec.window_end_text);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, "RouteSupported", "%s -> %s is a supported route (first installed: %s), %d machines",
        run->spec.from_version, run->spec.to_version, run->spec.initial_version, run->spec.machines);
}
