/*
 * leader.h - leader election on a coordination.k8s.io/v1 Lease, as
 * client-go's leaderelection does it.
 *
 * Acquire: GET the Lease; 404 -> CREATE it; held by another and not expired
 * -> wait retry; else PUT with the read resourceVersion (409: lost the race).
 * Expiry is judged by the local monotonic time at which the record was last
 * seen to change, never by the remote renewTime. While leading, renew every
 * retry period; when no renewal has succeeded for renew_deadline the
 * leadership is over: on_stopped is called and k8s_leader_is_leader()
 * turns false at once, even before the renewal thread runs again (a process
 * stopped with SIGSTOP and resumed after the deadline does not act).
 * k8s_leader_release() gives the Lease up on a clean shutdown (empty holder).
 */
#ifndef K8S_LEADER_H
#define K8S_LEADER_H

#include "k8s.h"

typedef struct k8s_leader k8s_leader;

typedef struct k8s_leader_opts {
    const char *namespace;      /* Lease namespace */
    const char *name;           /* Lease name */
    const char *identity;       /* holderIdentity; NULL: hostname_random */
    double lease_duration_s;    /* 0 = 15 */
    double renew_deadline_s;    /* 0 = 10 */
    double retry_period_s;      /* 0 = 2 (jittered by up to 20 %) */
    /* May be NULL. Whether the holder named is known to be gone (e.g. a
     * process on this machine that no longer exists): then the Lease is
     * taken at once instead of after it expires. Leader thread. */
    int (*holder_gone)(void *ud, const char *holder);
    void (*on_started)(void *ud);   /* became leader (leader thread) */
    void (*on_stopped)(void *ud);   /* lost leadership (leader thread) */
    void *ud;
} k8s_leader_opts;

int k8s_leader_new(const k8s_config *cfg, const k8s_leader_opts *opts,
                   k8s_leader **out, k8s_err *err);
/* Starts the election thread. */
int k8s_leader_start(k8s_leader *l, k8s_err *err);
/* 1 only while leading and the last renewal is within the renew deadline. */
int k8s_leader_is_leader(k8s_leader *l);
/* 1 once leadership, after being held, was lost (the process should exit). */
int k8s_leader_lost(k8s_leader *l);
const char *k8s_leader_identity(const k8s_leader *l);
/* Stops the thread; if leading, releases the Lease (best effort). */
void k8s_leader_release(k8s_leader *l);
void k8s_leader_free(k8s_leader *l);

#endif
