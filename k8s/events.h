/*
 * events.h - core/v1 Events about an object, as client-go's recorder:
 * the same object + type + reason + message within the cache's memory
 * becomes a PATCH of count and lastTimestamp on the existing Event instead
 * of a new one; a per-object token bucket (burst 25, one more every 5
 * minutes) keeps a looping reconcile from flooding the API. Best effort:
 * failures are returned for logging but must never fail a reconcile.
 */
#ifndef K8S_EVENTS_H
#define K8S_EVENTS_H

#include "k8s.h"

typedef struct k8s_recorder k8s_recorder;

/* component: source.component ("tianqing-upgrade-controller"); host may be NULL. */
int k8s_recorder_new(const k8s_config *cfg, const char *component, const char *host,
                     k8s_recorder **out, k8s_err *err);
void k8s_recorder_free(k8s_recorder *r);

/*
 * Record an Event about obj (needs apiVersion, kind, metadata.namespace,
 * name, uid). type: "Normal" or "Warning"; reason: CamelCase. Returns
 * K8S_OK, K8S_ESTOPPED when rate-limited (nothing sent), or the API error.
 */
int k8s_event(k8s_recorder *r, const cJSON *obj, const char *type, const char *reason,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* For tests: the rate limiter's clock and parameters. */
void k8s_recorder_set_limits(k8s_recorder *r, int burst, double refill_s);

#endif
