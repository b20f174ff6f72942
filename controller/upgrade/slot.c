/*
 * slot.c - one upgrade at a time (design.md section 2).
 *
 * The worker claims the slot for the resource it is running; the claim is
 * in memory, so a restarted controller also looks at the cached resources:
 * one whose status shows an upgrade under way (started, not finished, not a
 * dry run, not itself waiting for the slot) holds the slot too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/runtime.h"
#include "status.h"
#include "steps.h"

struct scan {
    tqu_controller *ctl;
    const char *self;
    char *who;
    size_t len;
    int found;
};

static int in_progress(const cJSON *obj)
{
    const cJSON *st = k8s_json_get(obj, "status", NULL);
    const char *phase = k8s_json_str(st, "phase", NULL);
    const cJSON *c;

    if (!phase || !k8s_json_str(st, "startedAt", NULL))
        return 0;
    if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed") || !strcmp(phase, "Pending"))
        return 0;
    if (k8s_json_bool(obj, 0, "spec", "dryRun", NULL))
        return 0;
    /* being deleted: over, unless our finalizer still waits for a running
     * update.sh (then the upgrade is very much under way) */
    if (k8s_json_get(obj, "metadata", "deletionTimestamp", NULL) && !k8s_has_finalizer(obj, TQU_FINALIZER))
        return 0;
    cJSON_ArrayForEach(c, k8s_json_get(st, "conditions", NULL)) {
        const char *t = k8s_json_str(c, "type", NULL), *r = k8s_json_str(c, "reason", NULL);
        if (t && r && !strcmp(t, "Stalled") && !strcmp(r, "AnotherUpgradeActive"))
            return 0;
    }
    return 1;
}

static void check_key(void *ud, const char *key)
{
    struct scan *s = ud;
    if (s->found || !strcmp(key, s->self))
        return;
    cJSON *obj = k8s_informer_get(s->ctl->informer, key);
    if (obj && in_progress(obj)) {
        snprintf(s->who, s->len, "%s, phase %s", key, k8s_json_str(obj, "status", "phase", NULL));
        s->found = 1;
    }
    cJSON_Delete(obj);
}

int tqu_controller_active_other(tqu_controller *ctl, const char *key, char *who, size_t len)
{
    if (ctl->active_key && strcmp(ctl->active_key, key) != 0) {
        snprintf(who, len, "%s", ctl->active_key);
        return 1;
    }
    if (ctl->active_key)
        return 0;   /* we hold it ourselves */
    struct scan s = { .ctl = ctl, .self = key, .who = who, .len = len };
    k8s_informer_keys(ctl->informer, check_key, &s);
    return s.found;
}

void tqu_controller_claim_slot(tqu_controller *ctl, const char *key)
{
    if (ctl->active_key && !strcmp(ctl->active_key, key))
        return;
    char *k = strdup(key);
    if (!k)
        return;   /* the cache scan still finds it once its status says so */
    free(ctl->active_key);
    ctl->active_key = k;
}

static void requeue(void *ud, const char *key)
{
    k8s_queue_add(((tqu_controller *)ud)->queue, key);
}

void tqu_controller_release_slot(tqu_controller *ctl, const char *key)
{
    if (!ctl->active_key || strcmp(ctl->active_key, key) != 0)
        return;
    free(ctl->active_key);
    ctl->active_key = NULL;
    /* resources waiting for the slot look again now */
    k8s_informer_keys(ctl->informer, requeue, ctl);
}
