/*
 * verify.c - step Verify: every Deployment of the access point's cluster
 * rolled out and available; waits up to spec.timeouts.install from the
 * step's start (VerifyTimedOut after).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "status.h"
#include "ap_int.h"

struct verify {
    long total, ready, shown;
    char names[1024];
};

static int verify_item(void *ud, const cJSON *d, int restart)
{
    struct verify *v = ud;
    long long avail, want;
    if (restart)
        memset(v, 0, sizeof(*v));
    if (!d)
        return 0;
    v->total++;
    if (k8s_deployment_rolled_out(d, &avail, &want)) {
        v->ready++;
        return 0;
    }
    if (v->shown++ < 10) {
        size_t off = strlen(v->names);
        snprintf(v->names + off, sizeof(v->names) - off, "%s%s/%s (%lld/%lld available)", off ? ", " : "",
                 k8s_json_str(d, "metadata", "namespace", NULL), k8s_json_str(d, "metadata", "name", NULL), avail, want);
    }
    return 0;
}

time_t tqu__ap_verify_start(tqu_ap_run *run)
{
    cJSON *s = tqu_status_step(run->status, run->wf, AP_VERIFY);
    const char *started = k8s_json_str(s, "startedAt", NULL);
    time_t t0 = 0;
    char now[40];
    if (started && k8s_time_parse(started, &t0) == K8S_OK)
        return t0;
    /* none (or not a time): the wait starts now, and is recorded so the
     * next look counts from here (not from 0: at once timed out; nor from
     * each look's now: never) */
    t0 = time(NULL);
    k8s_time_format(t0, 0, now, sizeof(now));
    if (s)
        k8s_json_put(s, "startedAt", cJSON_CreateString(now));
    return t0;
}

void tqu__ap_step_verify(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    struct verify v;
    k8s_err err;
    char ebuf[1200];
    time_t t0;

    memset(&v, 0, sizeof(v));
    if (k8s_list(run->ctl->client, &K8S_DEPLOYMENTS, NULL, NULL, verify_item, &v, NULL, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot list Deployments: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    if (v.ready == v.total) {
        tqu_out(o, TQU_OUT_DONE, NULL, "all %ld Deployments are rolled out and available", v.total);
        return;
    }
    t0 = tqu__ap_verify_start(run);
    if (difftime(time(NULL), t0) > run->spec.timeout_install_s) {
        tqu_out(o, TQU_OUT_FAILED, "VerifyTimedOut", "%ld of %ld Deployments not available after spec.timeouts.install: %s",
                v.total - v.ready, v.total, v.names);
        return;
    }
    tqu_out(o, TQU_OUT_RUNNING, "WaitingForRollout", "waiting for %ld of %ld Deployments: %s", v.total - v.ready,
            v.total, v.names);
    o->requeue_after = 5;
}
