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
