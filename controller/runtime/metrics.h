/*
 * metrics.h - the controller's Prometheus metrics: a small, fixed,
 * thread-safe registry holding exactly the series this controller exposes,
 * rendered in the Prometheus text exposition format 0.0.4 for /metrics.
 *
 * The registry is one process-wide static: there is nothing to create or
 * free, and every recording function may be called from any thread at any
 * time (one mutex; recording never allocates and never fails).
 *
 * Label sets are bounded. Reconcile results, API verbs and resource, code
 * and phase tables have fixed sizes; a value that does not fit (an unknown
 * verb, a 17th resource, a name longer than TQU_METRICS_NAME_MAX) is
 * counted under the label value "other" instead of growing the registry.
 *
 * Series (HELP text in metrics.c):
 *   tqu_reconcile_total{result="success|error|requeue|other"}   counter
 *   tqu_reconcile_errors_total                                  counter
 *   tqu_reconcile_duration_seconds                              histogram
 *   tqu_workqueue_depth                                         gauge
 *   tqu_watch_restarts_total{resource}                          counter
 *   tqu_watch_relists_total{resource}                           counter
 *   tqu_api_requests_total{verb,code}     (code "0": no HTTP answer) counter
 *   tqu_api_request_duration_seconds{verb}                      histogram
 *   tqu_leader                            (1 while leading)     gauge
 *   tqu_leader_transitions_total                                counter
 *   tqu_upgrades{phase}    (resources per status.phase)         gauge
 *   process_cpu_seconds_total, process_resident_memory_bytes,
 *   process_start_time_seconds             (read at scrape time)
 * Histogram buckets (seconds): 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5
 * 10 30 60 +Inf.
 */
#ifndef TQU_METRICS_H
#define TQU_METRICS_H

#include <stddef.h>
#include "k8s.h"

/* Longest resource or phase label value kept as given (longer: "other"). */
#define TQU_METRICS_NAME_MAX 63

/* Optional, once at start-up (idempotent, any thread): reads the process
 * start time now instead of at the first scrape. */
void tqu_metrics_init(void);

/* Zero every value and forget every resource, code and extra phase.
 * For tests. */
void tqu_metrics_reset(void);

/*
 * One reconcile finished after `seconds`. result is "success", "error" or
 * "requeue" (anything else counts as "other"); "error" also counts in
 * tqu_reconcile_errors_total. A negative or NaN duration is recorded as 0.
 */
void tqu_metrics_reconcile(const char *result, double seconds);

/*
 * One API request answered (a watch: when its answer's headers are in, not
 * when the stream ends): verb "GET", "LIST", "WATCH", "POST", "PUT",
 * "PATCH" or "DELETE" (else "other"), code the HTTP status or 0 when there
 * was no HTTP answer. Up to 24 distinct codes are kept; later new codes
 * count as code="other". It has the k8s_request_observer signature (ud is
 * ignored), so it can be given as it is:
 *   k8s_client_set_observer(client, tqu_metrics_api_request, NULL);
 */
void tqu_metrics_api_request(void *ud, const char *verb, long code, double seconds);

void tqu_metrics_set_queue_depth(long depth);

/* A watch on `resource` (e.g. "tianqingupgrades", "deployments") was
 * restarted (the stream ended and was opened again) / had to list again
 * (410 Gone or first sync). Up to 16 resources, then "other". */
void tqu_metrics_watch_restart(const char *resource);
void tqu_metrics_watch_relist(const char *resource);

/* Whether this replica leads now. A change of value counts one transition
 * (the initial state is "not leading", so a first set_leader(0) does not). */
void tqu_metrics_set_leader(int leading);

/*
 * How many TianqingUpgrade resources are in each status.phase, replacing
 * the previous counts: phases not given are set to 0. The seven phases of
 * the design (Pending, Waiting, Paused, Running, Blocked, Failed, Succeeded)
 * are always exposed; up to 8 other phase strings are kept, then "other".
 * A NULL or empty phase counts as "unknown". Counts for the same phase add.
 */
typedef struct tqu_phase_count {
    const char *phase;
    long count;
} tqu_phase_count;
void tqu_metrics_set_phase_counts(const tqu_phase_count *counts, size_t n);

/*
 * A counter family a workflow exports, with up to three labels, e.g.
 *   static const tqu_counter_family drift = { "tqu_tuning_drift_corrections_total",
 *       "Settings ... put back.", { "namespace", "name", "item" } };
 * tqu_metrics_register makes the family appear (HELP and TYPE, no series)
 * before its first count; tqu_metrics_count adds 1 to the series of those
 * label values (one per label; values longer than TQU_METRICS_NAME_MAX are
 * cut). Up to 8 families and 512 series in all: past that a count goes to
 * the family's series whose values are all "other". The family must
 * outlive the process's metrics (a static).
 */
typedef struct tqu_counter_family {
    const char *name;
    const char *help;
    const char *labels[3];    /* unused ones NULL */
} tqu_counter_family;
void tqu_metrics_register(const tqu_counter_family *fam);
void tqu_metrics_count(const tqu_counter_family *fam, const char *v0, const char *v1, const char *v2);

/*
 * Append the text exposition (format 0.0.4) of every series to out.
 * Returns 0, or K8S_ENOMEM / K8S_ETOOBIG (out's cap) with out's content
 * (len and text) as it was. Safe to call from any thread, concurrently with recording: it
 * copies a consistent snapshot under the lock, then formats without it.
 */
int tqu_metrics_render(k8s_buf *out);

#endif
