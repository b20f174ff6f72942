/*
 * informer.h - a cache of one resource type kept current by list + watch.
 *
 * It lists (paginated), then watches from the list's resourceVersion with
 * bookmarks and a random server timeout of 300..600 s, tracking the
 * resourceVersion of every event (opaque: never compared). A 410 Gone /
 * Expired, as HTTP status or as an in-stream ERROR event, makes it list
 * again; the new list is compared with the cache, so only what changed is
 * delivered (added, modified, and deletes for keys that vanished) and
 * nothing is handled twice. Reconnects back off 0.8 s doubling to 30 s with
 * jitter, reset after a healthy watch; a watch that ends within a second
 * without events counts as a failure; a stream silent for idle_timeout_s
 * (default 90) is dead. It caches only what it is asked for: one type,
 * optionally one namespace and a field/label selector; metadata.managedFields
 * is dropped from cached objects.
 *
 * Callbacks run on the informer's own thread, in event order, without the
 * cache lock held (they may call k8s_informer_get).
 */
#ifndef K8S_INFORMER_H
#define K8S_INFORMER_H

#include "k8s.h"

typedef struct k8s_informer k8s_informer;

typedef enum k8s_event_type {
    K8S_ADDED = 0,
    K8S_MODIFIED,
    K8S_DELETED,
} k8s_event_type;

/* key is "namespace/name" (or "name" for cluster-scoped objects); obj is
 * valid only during the call (for DELETED: the last known state). */
typedef void (*k8s_informer_fn)(void *ud, k8s_event_type type, const char *key,
                                const cJSON *obj);

typedef struct k8s_informer_opts {
    const k8s_resource *resource;
    const char *namespace;        /* NULL: all namespaces */
    const char *field_selector;   /* NULL: none */
    const char *label_selector;   /* NULL: none */
    k8s_informer_fn on_event;
    void *ud;
    /* metrics hooks, may be NULL: a watch reconnect, a relist after 410 */
    void (*on_watch_restart)(void *ud);
    void (*on_relist)(void *ud);
    /* may be NULL: a list or watch failed (what: "list" or "watch"; err:
     * the failure, valid during the call) and the informer will try again
     * in retry_in seconds. For logging; the library itself logs nothing. */
    void (*on_error)(void *ud, const char *what, const k8s_err *err, double retry_in);
    long idle_timeout_s;          /* 0 = 90 */
    double backoff_initial_s;     /* 0 = 0.8 */
    double backoff_max_s;         /* 0 = 30 */
    int page_size;                /* 0 = 500 */
    const k8s_client_opts *client_opts;  /* NULL: defaults, except that
                                            max_retries 0 means none: the
                                            informer's own backoff governs */
} k8s_informer_opts;

/* Copies what it needs from cfg and opts (strings included). */
int k8s_informer_new(const k8s_config *cfg, const k8s_informer_opts *opts,
                     k8s_informer **out, k8s_err *err);
/* Starts the list/watch thread. */
int k8s_informer_start(k8s_informer *inf, k8s_err *err);
/* 1 once the first list has been delivered. */
int k8s_informer_synced(k8s_informer *inf);
/* Waits up to timeout_s for the first list; 1 when synced. */
int k8s_informer_wait_synced(k8s_informer *inf, double timeout_s);
/* A deep copy of the cached object, or NULL (caller frees). */
cJSON *k8s_informer_get(k8s_informer *inf, const char *key);
/* Calls fn for a copy of every cached key (for periodic work). */
int k8s_informer_keys(k8s_informer *inf, void (*fn)(void *ud, const char *key), void *ud);
size_t k8s_informer_size(k8s_informer *inf);
/* Seconds since the last byte from the API server or successful list
 * (for health checks); monotonic. */
double k8s_informer_last_contact_age(k8s_informer *inf);
/* Stops the thread (within about a second) and joins it. */
void k8s_informer_stop(k8s_informer *inf);
void k8s_informer_free(k8s_informer *inf);

/* "ns/name" or "name" of an object; caller frees. */
char *k8s_object_key(const cJSON *obj);

#endif
