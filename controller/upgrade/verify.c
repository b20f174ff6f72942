/*
 * verify.c - step 8, Verify: every Deployment rolled out and available.
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
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"

/* ------------------------------------------------------------------ Verify */

struct verify {
    long total, ready;
    char names[1024];
    size_t off;
    long shown;
};

static int verify_item(void *ud, const cJSON *d, int restart)
{
    struct verify *v = ud;
    if (restart)
        memset(v, 0, sizeof(*v));
    if (!d)
        return 0;
    long long avail, want;
    v->total++;
    if (k8s_deployment_rolled_out(d, &avail, &want)) {
        v->ready++;
        return 0;
    }
    if (v->shown < 10 && v->off < sizeof(v->names) - 1) {
        int w = snprintf(v->names + v->off, sizeof(v->names) - v->off, "%s%s/%s (%lld/%lld available)",
                         v->shown ? ", " : "", k8s_json_str(d, "metadata", "namespace", NULL),
                         k8s_json_str(d, "metadata", "name", NULL), avail, want);
        if (w > 0)
            v->off += (size_t)w;
        v->shown++;
    }
    return 0;
}

void tqu__step_verify(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    struct verify v;
    k8s_err err;
    char ebuf[1200];

    memset(&v, 0, sizeof(v));
    if (k8s_list(run->ctl->client, &K8S_DEPLOYMENTS, NULL, NULL, verify_item, &v, NULL, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot list Deployments: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    if (v.ready == v.total) {
        tqu_out(o, TQU_OUT_DONE, "AllDeploymentsAvailable", "all %ld Deployments are rolled out and available", v.total);
        return;
    }
    const char *started = k8s_json_str(tqu_status_step(run->status, run->wf, TQU_STEP_VERIFY), "startedAt", NULL);
    time_t t0 = time(NULL);
    if (started && k8s_time_parse(started, &t0) != K8S_OK)
        t0 = 0;          /* unreadable: the step has waited long enough */
    double waited = difftime(time(NULL), t0);
    long missing = v.total - v.ready;
    if (waited > run->spec.timeout_verify_s) {
        tqu_out(o, TQU_OUT_FAILED, "VerifyTimedOut",
            "%ld of %ld Deployments not available after %.0f s (spec.timeouts.verify): %s%s", missing, v.total,
            run->spec.timeout_verify_s, v.names, missing > v.shown ? ", ..." : "");
        return;
    }
    tqu_out(o, TQU_OUT_RUNNING, "WaitingForRollout", "waiting for %ld of %ld Deployments: %s%s", missing, v.total,
        v.names, missing > v.shown ? ", ..." : "");
    o->requeue_after = 5;
}
