/*
 * render.h - the text kubectl-tianqing prints, from the resource's JSON.
 *
 * Pure functions: no I/O, no clock (now is a parameter), so the unit tests
 * compare whole screens byte for byte. Every function that writes appends
 * to a k8s_buf and returns 0 or a k8s_rc (K8S_ENOMEM, K8S_ETOOBIG); on
 * failure what was appended so far is left in the buffer. Times are shown
 * as the API server wrote them (RFC 3339, UTC).
 */
#ifndef KP_RENDER_H
#define KP_RENDER_H

#include <stddef.h>
#include <time.h>
#include "k8s.h"
#include "kinds.h"

/* The vendor's figure for update.sh when no earlier attempt is known. */
#define KP_VENDOR_UPGRADE_SECONDS 3600

/* "2026-12-05T14:00:00Z", with optional fraction and +hh:mm/-hh:mm offset,
 * to unix seconds. Returns 0, or -1 (out untouched) for anything else. */
int kp_parse_time(const char *s, time_t *out);

/* Seconds as "45s", "2m5s", "1h2m" (seconds dropped from an hour on),
 * "1d3h" (minutes dropped from a day on); negative counts as 0. Returns buf. */
const char *kp_format_duration(long long secs, char *buf, size_t len);

/* A Go-style duration ("90s", "5m", "1h30m", "1.5h", "250ms" rounded up
 * to whole seconds) or a plain number of seconds into *secs. Returns 0,
 * or -1 for a malformed or negative one. */
int kp_parse_duration(const char *s, long long *secs);

/* The status screen of one resource (see README "kubectl tianqing"). */
int kp_render_status(k8s_buf *out, const cJSON *obj, const kp_kind *kind, time_t now);

/* status.plan[] as a table, or a sentence when there is none. */
int kp_render_plan(k8s_buf *out, const cJSON *obj);

/* status.history[] as a table (newest first, as stored), or
 * "no attempts recorded". */
int kp_render_history(k8s_buf *out, const cJSON *obj);
/* text and a newline; the lines of a text of several lines after the
 * first indented by indent spaces (the layout of a screen), trailing
 * newlines dropped. 0, or -1 without memory. */
int kp_render_text(k8s_buf *out, const char *text, int indent);

/* What `wait` sees in an object: READY when condition Ready is True,
 * STALLED when Stalled is True, each only for the current generation
 * (the condition's observedGeneration, else status.observedGeneration,
 * at least metadata.generation); PENDING otherwise. Stalled for a
 * workflow's slot reason (AnotherUpgradeActive and its like) is PENDING:
 * the resource waits its turn and starts by itself, no person need act. */
typedef enum kp_wait_state { KP_WAIT_PENDING, KP_WAIT_READY, KP_WAIT_STALLED } kp_wait_state;
kp_wait_state kp_wait_check(const cJSON *obj);

#endif /* KP_RENDER_H */
