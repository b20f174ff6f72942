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
    k8s_leader *elector;
    int held;                  /* atomic */
};
/* This process's holder identity: "<host>_<boot>_<pid>_<start>". */
void tqu__claim_identity(char *buf, size_t len);
/* Start claiming (a thread that acquires, then renews). 0, or -1 logged. */
int tqu__claim_start(tqu_controller *ctl, struct tqu_claim *c, const char *plural);
/* Held now / once held, then lost (the process exits). */
int tqu__claim_held(const struct tqu_claim *c);
int tqu__claim_lost(const struct tqu_claim *c);
/* Stop; release gives the Lease up (a clean shutdown). */
void tqu__claim_stop(struct tqu_claim *c, int release);

#endif
