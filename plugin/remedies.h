/*
 * remedies.h - what a person does about each Blocked or Failed reason.
 *
 * The one copy, inside the plugin, of README's table "Every Blocked and
 * Failed reason" (reason -> step, phase, remedy), kept as data in
 * remedies.c so the status screen can print the remedy beside the reason.
 * When a reason is added to that table, add its row there too.
 */
#ifndef KP_REMEDIES_H
#define KP_REMEDIES_H

typedef struct kp_remedy {
    const char *reason;    /* the Stalled condition's reason, CamelCase */
    const char *step;      /* where it arises, as README says ("any", "-") */
    const char *remedy;    /* what to do, one sentence or two */
} kp_remedy;

/* The row of a reason (exact, case-sensitive), or NULL when none. */
const kp_remedy *kp_remedy_find(const char *reason);

#endif /* KP_REMEDIES_H */
