/*
 * spec.h - a TianqingRestore's spec (design.md section 11): which
 * TianqingUpgrade's backups to restore from, what to restore, and whether
 * only to show the differences (dryRun, the default).
 */
#ifndef TQU_RESTORE_SPEC_H
#define TQU_RESTORE_SPEC_H

#include <stddef.h>
#include "k8s.h"

#define TQU_RESTORE_MAX_DEPLOYMENTS 1000

typedef struct tqu_restore_spec {
    const char *upgrade;          /* spec.upgradeRef.name (points into the object) */
    int sabre, cdn, update_script;/* targets.*, default true */
    int all_deployments;          /* targets.deployments: ["*"] */
    const char **deployments;     /* "namespace/name" (point into the object); owned array */
    size_t ndeployments;
    int dry_run;                  /* default true */
} tqu_restore_spec;

/*
 * Parse obj's spec into s (strings point into obj, which must outlive s).
 * 0, or -1 with *reason (InvalidSpec) and msg naming the field and what
 * is wrong; s then needs no release. On success release s.
 */
int tqu_restore_spec_parse(const cJSON *obj, tqu_restore_spec *s, const char **reason, char *msg,
                           size_t len);
void tqu_restore_spec_release(tqu_restore_spec *s);

#endif
