/*
 * outcome.h - the outcome of one step of a workflow, the engine's one
 * vocabulary for "what happened" (design.md section 7). A step fills one
 * with tqu_out(); the engine records it in status.steps[] and announces it.
 */
#ifndef TQU_OUTCOME_H
#define TQU_OUTCOME_H

#include <time.h>

typedef enum tqu_outcome_kind {
    TQU_OUT_DONE = 0,
    TQU_OUT_SKIPPED,
    TQU_OUT_WAIT,       /* not yet: requeue_after (the window) */
    TQU_OUT_RUNNING,    /* a vendor process is running: requeue_after */
    TQU_OUT_BLOCKED,    /* a person must act */
    TQU_OUT_FAILED,     /* final until the spec changes */
    TQU_OUT_ERROR,      /* transient (API unreachable...): retry with backoff */
} tqu_outcome_kind;

typedef struct tqu_outcome {
    tqu_outcome_kind kind;
    const char *reason;        /* CamelCase, for Blocked/Failed/Wait */
    char message[2048];
    double requeue_after;
} tqu_outcome;

/* Set o's kind, reason (a static CamelCase string, or NULL) and message
 * (printf-style, cut to fit). requeue_after is left as it is. */
void tqu_out(tqu_outcome *o, tqu_outcome_kind kind, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * spec.window [start, end) (has: a window was given; the texts are the
 * spec's, for messages) before a step that changes the system, named by
 * what ("the upgrade"): 0 inside it or without one; -1 with o Wait
 * WaitingForWindow (requeue_after: its opening) before it, or Failed
 * WindowClosed after it.
 */
int tqu_window_gate(int has, time_t start, time_t end, const char *start_text,
                    const char *end_text, tqu_outcome *o, const char *what);

#endif
