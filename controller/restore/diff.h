/*
 * diff.h - what a restore compares and writes: an object with the fields
 * the API server sets stripped, and the JSON paths where two objects
 * differ. Pure functions over cJSON trees (no I/O), unit-tested.
 */
#ifndef TQU_RESTORE_DIFF_H
#define TQU_RESTORE_DIFF_H

#include "k8s.h"

#define TQU_RESTORE_MAX_PATHS 100   /* paths listed per object */

/*
 * Remove, in place, what the API server sets: metadata.uid,
 * resourceVersion, generation, creationTimestamp, managedFields,
 * selfLink, deletionTimestamp, deletionGracePeriodSeconds, the
 * deployment.kubernetes.io/revision annotation (and annotations when that
 * leaves it empty), status; for a Service also spec.clusterIP and
 * spec.clusterIPs (allocated by the server, immutable). obj may be NULL.
 */
void tqu_restore_strip(cJSON *obj);

/*
 * The paths where want and have differ, both compared stripped (copies:
 * neither is changed), appended to paths (an array) as strings like
 * "spec.template.spec.volumes", "spec.replicas",
 * "metadata.labels[\"config.ns\"]", "spec.template.spec.containers[0].args":
 * a member present on one side only, or a value that differs, is named
 * where it differs; arrays of different lengths are named whole. At most
 * TQU_RESTORE_MAX_PATHS are appended. Returns the number of differences
 * found (also past the cap), or -1 on out of memory.
 */
int tqu_restore_diff(const cJSON *want, const cJSON *have, cJSON *paths);

#endif
