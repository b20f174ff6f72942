/*
 * runtime_int.h - internals shared by the runtime's files (tqu__ prefix).
 */
#ifndef TQU_RUNTIME_INT_H
#define TQU_RUNTIME_INT_H

#include "runtime.h"

/* watch.c: stop and free every secondary watch (at shutdown, after the
 * worker has stopped). */
void tqu__watches_free(tqu_controller *ctl);
/* slot.c: forget every slot (at shutdown). */
void tqu__slots_free(tqu_controller *ctl);

/* claim.c: the Lease that makes this process the one actor of a workflow. */
struct tqu_claim {
    tqu_controller *ctl;
    const char *plural;
    char lease[256];
    pthread_mutex_t mu;        /* elector: swapped by the main thread, read by the worker */
    int mu_ready;
    k8s_leader *elector;
    int held;                  /* atomic */
};
/* This process's holder identity: "<host>_<boot>_<pid>_<start>". */
void tqu__claim_identity(char *buf, size_t len);
/* Start claiming (a thread that acquires, then renews). 0, or -1 logged. */
int tqu__claim_start(tqu_controller *ctl, struct tqu_claim *c, const char *plural);
/* Held now. */
int tqu__claim_held(struct tqu_claim *c);
/* Main thread: a claim that lapsed (e.g. the process was stopped past the
 * renew deadline) is claimed again; meanwhile nothing of the workflow is
 * done. Another process may take it first: this one then stands by. */
void tqu__claim_check(struct tqu_claim *c);
/* Stop; release gives the Lease up (a clean shutdown). */
void tqu__claim_stop(struct tqu_claim *c, int release);

#endif
