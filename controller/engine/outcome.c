/*
 * outcome.c - filling a step's outcome (see outcome.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include "outcome.h"

void tqu_out(tqu_outcome *o, tqu_outcome_kind kind, const char *reason, const char *fmt, ...)
{
    va_list ap;

    o->kind = kind;
    o->reason = reason;
    va_start(ap, fmt);
    vsnprintf(o->message, sizeof(o->message), fmt, ap);
    va_end(ap);
}

int tqu_window_gate(int has, time_t start, time_t end, const char *start_text,
                    const char *end_text, tqu_outcome *o, const char *what)
{
    time_t now = time(NULL);
    if (!has)
        return 0;
    if (now < start) {
        tqu_out(o, TQU_OUT_WAIT, "WaitingForWindow", "waiting for the maintenance window opening at %s",
                start_text);
        o->requeue_after = difftime(start, now) + 1;
        return -1;
    }
    if (now >= end) {
        tqu_out(o, TQU_OUT_FAILED, "WindowClosed",
                "the maintenance window ended at %s before %s: agree a new window and set spec.window",
                end_text, what);
        return -1;
    }
    return 0;
}
