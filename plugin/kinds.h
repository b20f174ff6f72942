/*
 * kinds.h - the resource kinds kubectl-tianqing knows, as one table.
 *
 * Every kind here has the status shape of design.md section 1 (phase,
 * currentStep, steps[], conditions, history[]...), so every command works
 * on each of them; adding a kind is one entry in kinds.c. A command line
 * names a resource as NAME (a TianqingUpgrade) or KIND/NAME, where KIND is
 * the kind, its plural, its singular or its short name, in any case.
 */
#ifndef KP_KINDS_H
#define KP_KINDS_H

#include <stddef.h>
#include "k8s.h"

typedef struct kp_kind {
    const char *kind;          /* "TianqingUpgrade" */
    const char *singular;      /* "tianqingupgrade" */
    const char *short_name;    /* "tqu" */
    k8s_resource res;          /* group, version, plural, namespaced */
} kp_kind;

extern const kp_kind kp_kinds[];
extern const size_t kp_nkinds;

/* The kind a word names (kind, plural, singular or short name, any
 * case; "tianqingupgrades.upgrade.tianqing.io" too), or NULL. */
const kp_kind *kp_kind_find(const char *word);

/*
 * Split "KIND/NAME" or "NAME" (a TianqingUpgrade). *kind is set, *name
 * points into arg. Returns 0, or -1 for an unknown KIND, an empty name or
 * a second '/' (msg then says which, one line).
 */
int kp_target_parse(const char *arg, const kp_kind **kind, const char **name,
                    char *msg, size_t msglen);

#endif /* KP_KINDS_H */
