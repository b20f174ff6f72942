/*
 * sabre.c - step 5, SabreCleanup: the old sabre Deployment and Service,
 * each saved to the state folder before it is deleted.
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
#include "host/fsutil.h"
#include "runtime/log.h"
#include "version.h"
#include "status.h"
#include "steps_int.h"

/* ------------------------------------------------------------ SabreCleanup */

static int sabre_remove(tqu_run *run, const k8s_resource *r, const char *name, const char *file,
                        const char *kind, tqu_outcome *o, char *note, size_t nlen)
{
    k8s_err err;
    char ebuf[1200], ferr[512];
    cJSON *obj = NULL;

    if (k8s_get(run->ctl->client, r, SABRE_NS, name, &obj, &err)) {
        if (k8s_err_is(&err, "NotFound")) {
            snprintf(note, nlen, "%s %s/%s already gone", kind, SABRE_NS, name);
            return 0;
        }
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read %s %s/%s: %s", kind, SABRE_NS, name,
            k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    /* the manifest first: nothing is deleted that was not saved */
    if (tqu__save_manifest(run, obj, file, ferr, sizeof(ferr))) {
        cJSON_Delete(obj);
        tqu_out(o, TQU_OUT_BLOCKED, "BackupFailed", "cannot save %s %s/%s before deleting it: %s", kind,
            SABRE_NS, name, ferr);
        return -1;
    }
    cJSON_Delete(obj);
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        return -1;
    }
    if (k8s_delete(run->ctl->client, r, SABRE_NS, name, &err) && !k8s_err_is(&err, "NotFound")) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot delete %s %s/%s: %s", kind, SABRE_NS, name,
            k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    snprintf(note, nlen, "deleted %s %s/%s (saved as %s/%s)", kind, SABRE_NS, name, run->dir, file);
    tqu_log(TQU_INFO, "deleted the old sabre object", "key", run->key, "kind", kind, "name", name, NULL);
    return 0;
}

void tqu__step_sabre(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    tqu_version initial, cutoff;
    char n1[512], n2[512];

    if (tqu_version_parse(run->spec.initial_version, &initial) ||
        tqu_version_parse("10.5.0.3000", &cutoff)) {
        tqu_out(o, TQU_OUT_FAILED, "InvalidVersion", "spec.initialVersion \"%s\" is not a version",
            run->spec.initial_version);
        return;
    }
    if (tqu_version_cmp(&initial, &cutoff) >= 0) {
        tqu_out(o, TQU_OUT_SKIPPED, "SabreNotPresent",
            "initialVersion %s is 10.5.0.3000 or later: there is no old sabre to remove",
            run->spec.initial_version);
        return;
    }
    /* deleting the old sabre changes the production cluster: only inside
     * the agreed window, like the upgrade itself */
    if (tqu__window_gate(run, o, "the old sabre could be removed"))
        return;
    if (sabre_remove(run, &K8S_DEPLOYMENTS, SABRE_DEPLOY, "sabre-server.deployment.json", "Deployment",
                     o, n1, sizeof(n1)) ||
        sabre_remove(run, &K8S_SERVICES, SABRE_SVC, "sabre-server-service.service.json", "Service",
                     o, n2, sizeof(n2)))
        return;
    tqu_out(o, TQU_OUT_DONE, "SabreRemoved", "%s; %s", n1, n2);
}
