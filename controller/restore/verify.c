/*
 * verify.c - step 4, Verify: every Deployment Apply created or replaced
 * (status.restored[]) rolled out and available, as upgrade's Verify judges
 * it (k8s_deployment_rolled_out). It waits as long as that takes, naming
 * those not yet available (a person watches with kubectl wait --timeout).
 */
#include <stdio.h>
#include <string.h>
#include "status.h"
#include "restore.h"

void tqu__restore_step_verify(tqu_job *job, tqu_outcome *o)
{
    tqu_restore_job *r = (tqu_restore_job *)job;
    char names[1024] = "", ebuf[1200];
    size_t off = 0;
    long total = 0, waiting = 0;
    const cJSON *it;
    k8s_err err;

    cJSON_ArrayForEach(it, k8s_json_get(r->status, "restored", NULL)) {
        const char *kind = k8s_json_str(it, "kind", NULL), *ns = k8s_json_str(it, "namespace", NULL),
                   *name = k8s_json_str(it, "name", NULL);
        long long avail = 0, want = 0;
        cJSON *d = NULL;
        if (!kind || strcmp(kind, "Deployment") || !ns || !name)
            continue;
        total++;
        if (k8s_get(r->ctl->client, &K8S_DEPLOYMENTS, ns, name, &d, &err)) {
            if (!k8s_err_is(&err, "NotFound")) {
                tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Deployment %s/%s: %s", ns, name,
                    k8s_err_str(&err, ebuf, sizeof(ebuf)));
                return;
            }
        } else if (k8s_deployment_rolled_out(d, &avail, &want)) {
            cJSON_Delete(d);
            continue;
        }
        cJSON_Delete(d);
        waiting++;
        if (off < sizeof(names))
            off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s/%s (%lld/%lld available)", off ? ", " : "",
                                    ns, name, avail, want);
    }
    if (!waiting) {
        tqu_out(o, TQU_OUT_DONE, "RolloutsAvailable", "%ld restored Deployment%s rolled out and available", total,
            total == 1 ? "" : "s");
        return;
    }
    tqu_out(o, TQU_OUT_RUNNING, "WaitingForRollout", "waiting for %ld of %ld restored Deployments: %s", waiting, total,
        names);
    o->requeue_after = 5;
}
