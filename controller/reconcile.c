/*
 * reconcile.c - one reconcile of a TianqingUpgrade.
 *
 * For now the controller observes each resource: it records
 * status.observedGeneration and a Reconciling condition (kstatus), and
 * announces a new generation with an Event. The upgrade steps build on
 * this (issue: the upgrade itself).
 */
#include <stdio.h>
#include <string.h>
#include "connect.h"
#include "controller.h"
#include "log.h"
#include "status.h"

struct observe {
    long long generation;
};

static int set_observed(void *ud, const cJSON *obj, cJSON *status)
{
    struct observe *o = ud;
    cJSON *og = cJSON_GetObjectItemCaseSensitive(status, "observedGeneration");
    (void)obj;
    if (!cJSON_IsNumber(og) || (long long)og->valuedouble != o->generation) {
        cJSON_DeleteItemFromObjectCaseSensitive(status, "observedGeneration");
        if (!cJSON_AddNumberToObject(status, "observedGeneration", (double)o->generation))
            return K8S_ENOMEM;
    }
    if (!k8s_json_str(status, "phase", NULL) && !cJSON_AddStringToObject(status, "phase", "Pending"))
        return K8S_ENOMEM;
    if (k8s_condition_set(status, "Reconciling", "True", "Observed",
                          "the controller has seen this generation", o->generation) < 0)
        return K8S_ENOMEM;
    return 0;
}

tqu_result tqu_reconcile(tqu_controller *ctl, const char *key)
{
    tqu_result res = { 0 };
    cJSON *obj = k8s_informer_get(ctl->informer, key), *stored = NULL;
    k8s_err err;
    char ebuf[1200];
    int written = 0;

    if (!obj)
        return res;   /* deleted: nothing to do */
    const char *ns = k8s_json_str(obj, "metadata", "namespace", NULL);
    const char *name = k8s_json_str(obj, "metadata", "name", NULL);
    struct observe o = { .generation = k8s_json_int(obj, 0, "metadata", "generation", NULL) };

    if (!tqu_may_act(ctl))
        goto out;
    if (k8s_status_update(ctl->client, &TQU_RESOURCE, ns, name, obj, set_observed, &o, &written,
                          &stored, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            goto out;
        tqu_log(TQU_WARN, "status update failed", "key", key, "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        res.error = 1;
        goto out;
    }
    if (written) {
        char gen[32];
        snprintf(gen, sizeof(gen), "%lld", o.generation);
        tqu_log(TQU_INFO, "observed", "key", key, "generation", gen, NULL);
        k8s_event(ctl->recorder, stored ? stored : obj, "Normal", "Observed",
                  "Observed generation %lld", o.generation);
    }
out:
    cJSON_Delete(stored);
    cJSON_Delete(obj);
    return res;
}
