/*
 * status.h - writing an object's status, conditions and finalizers the way
 * controllers must: through the /status subresource, only when something
 * changed, re-reading and retrying on 409 Conflict; conditions in
 * metav1.Condition shape whose lastTransitionTime moves only when the
 * status flips; finalizers added and removed with a JSON patch guarded by
 * a `test` op so concurrent writers cannot be overwritten.
 */
#ifndef K8S_STATUS_H
#define K8S_STATUS_H

#include "k8s.h"

/*
 * Set condition `type` in status.conditions (created if missing). The
 * lastTransitionTime is set to now only if the condition is new or its
 * status changed. Returns 1 if anything changed, 0 if not, -1 on ENOMEM.
 */
int k8s_condition_set(cJSON *status, const char *type, const char *cstatus,
                      const char *reason, const char *message, long long generation);
/* The condition object, or NULL. */
cJSON *k8s_condition_get(const cJSON *status, const char *type);

/*
 * Mutate callback: given the live object (read-only) and a copy of its
 * status (created empty if absent) to edit in place; returns 0 to write,
 * non-zero to abort with that code.
 */
typedef int (*k8s_status_fn)(void *ud, const cJSON *obj, cJSON *status);

/*
 * Read-modify-write of status through /status. obj is the caller's latest
 * copy (may be NULL: it is read). fn edits the status; if the result equals
 * the current status nothing is sent (*written = 0). On 409 the object is
 * read again and fn applied again, up to 5 attempts with a small backoff.
 * On success *out (if not NULL) gets the object as stored (caller frees).
 */
int k8s_status_update(k8s_client *c, const k8s_resource *r, const char *ns,
                      const char *name, const cJSON *obj, k8s_status_fn fn, void *ud,
                      int *written, cJSON **out, k8s_err *err);

/* 1 if metadata.finalizers contains f. */
int k8s_has_finalizer(const cJSON *obj, const char *f);
/*
 * Add / remove finalizer f with a JSON patch guarded by a `test` of the
 * resourceVersion read (retried after re-reading on conflict). No
 * request when already in the wanted state. obj is the caller's latest copy.
 */
int k8s_finalizer_add(k8s_client *c, const k8s_resource *r, const cJSON *obj,
                      const char *f, k8s_err *err);
int k8s_finalizer_remove(k8s_client *c, const k8s_resource *r, const cJSON *obj,
                         const char *f, k8s_err *err);

/*
 * Whether Deployment d is rolled out and available, as `kubectl rollout
 * status` judges it: its generation observed, every wanted replica
 * updated, no old replica left, all available. *available and *wanted
 * (when not NULL) get the counts, for messages. 1 or 0.
 */
int k8s_deployment_rolled_out(const cJSON *d, long long *available, long long *wanted);

#endif
