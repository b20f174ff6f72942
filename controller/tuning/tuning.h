/*
 * tuning.h - the TianqingTuning workflow (design.md section 9): the
 * runbook's remedies after an upgrade (chapter 6) applied to the Tianqing
 * configuration etcd and to Deployment arguments, kept in place, and put
 * back when the resource is deleted.
 */
#ifndef TQU_TUNING_H
#define TQU_TUNING_H

#include <stddef.h>
#include "engine/engine.h"

extern const tqu_workflow tqu_tuning_workflow;

/* Load the remedies table (a file, or NULL for the built-in one) once at
 * start: 0, or -1 with msg. */
int tqu_tuning_init(const char *remedies_file, char *msg, size_t len);

#endif
