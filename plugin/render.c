/*
 * render.c - the status, plan and history screens (see render.h).
 */
#include "render.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remedies.h"

/* Lines of status.upgrade.outputTail shown at most. */
#define KP_TAIL_LINES 10

/* ------------------------------------------------------------ time */

int kp_parse_time(const char *s, time_t *out)
{
    int rc = -1;
    struct tm tm;
    const char *p;
    long off = 0;

    if (!s)
        goto out;
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        goto out;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            goto out;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || p[3] != ':' ||
            !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
            goto out;
        off = sign * (((p[1] - '0') * 10 + (p[2] - '0')) * 3600L + ((p[4] - '0') * 10 + (p[5] - '0')) * 60L);
        p += 6;
    } else {
        goto out;
    }
    if (*p)
        goto out;
    *out = timegm(&tm) - off;
    rc = 0;
out:
    return rc;
}

const char *kp_format_duration(long long secs, char *buf, size_t len)
{
    long long d, h, m, s;

    if (secs < 0)
        secs = 0;
    d = secs / 86400;
    h = secs % 86400 / 3600;
    m = secs % 3600 / 60;
    s = secs % 60;
    if (d > 0)
        snprintf(buf, len, h ? "%lldd%lldh" : "%lldd", d, h);
    else if (h > 0)
        snprintf(buf, len, m ? "%lldh%lldm" : "%lldh", h, m);
    else if (m > 0)
        snprintf(buf, len, s ? "%lldm%llds" : "%lldm", m, s);
    else
        snprintf(buf, len, "%llds", s);
    return buf;
}

int kp_parse_duration(const char *s, long long *secs)
{
    int rc = -1;
    double total = 0;
    const char *p = s;
    char *end;

    if (!s || !*s)
        goto out;
    /* a plain number: seconds */
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (!*end && errno == 0 && isdigit((unsigned char)*s)) {
        *secs = n;
        rc = 0;
        goto out;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            goto out;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || v < 0)
            goto out;
        for (const char *q = p; q < end; q++)      /* no exponent, no hex */
            if (!isdigit((unsigned char)*q) && *q != '.')
                goto out;
        p = end;
        double unit;
        if (!strncmp(p, "ms", 2)) { unit = 0.001; p += 2; }
        else if (*p == 'h') { unit = 3600; p++; }
        else if (*p == 'm') { unit = 60; p++; }
        else if (*p == 's') { unit = 1; p++; }
        else goto out;
        total += v * unit;
    }
    if (total > 1e15)
        goto out;
    *secs = (long long)ceil(total);
    rc = 0;
out:
    return rc;
}

/* ------------------------------------------------------------ output */

/* A buffer with a sticky error, so a screen is written without checking
 * every line; the first failure is kept in rc. */
typedef struct kp_out {
    k8s_buf *b;
    int rc;
} kp_out;

/* Append; when the text ends a line, the spaces before its '\n' go, so no
 * line of a screen ends in blanks (a padded last column). */
__attribute__((format(printf, 2, 3)))
static void outf(kp_out *o, const char *fmt, ...)
{
    va_list ap;
    char small[512];
    int n;

    if (o->rc)
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->rc = K8S_EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        o->rc = k8s_buf_add(o->b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            o->rc = K8S_ENOMEM;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        o->rc = k8s_buf_add(o->b, big, (size_t)n);
        free(big);
    }
    if (!o->rc && o->b->len && o->b->data[o->b->len - 1] == '\n') {
        size_t e = o->b->len - 1;
        while (e > 0 && o->b->data[e - 1] == ' ')
            e--;
        if (e != o->b->len - 1) {
            o->b->data[e] = '\n';
            o->b->len = e + 1;
            o->b->data[o->b->len] = '\0';
        }
    }
}

static const char *str_or(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

/* text and a newline; a text of several lines (a message quoting a log)
 * keeps the screen's layout: every line after the first indented by
 * indent spaces, trailing newlines dropped. */
static void out_text(kp_out *o, const char *text, int indent)
{
    size_t n = strlen(text);
    const char *p = text, *e;

    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    for (;;) {
        e = memchr(p, '\n', (size_t)(text + n - p));
        if (!e) {
            outf(o, "%.*s\n", (int)(text + n - p), p);
            break;
        }
        outf(o, "%.*s\n", (int)(e - p), p);
        outf(o, "%*s", indent, "");
        p = e + 1;
    }
}

static int is(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* A condition of status by type, or NULL. */
static const cJSON *condition(const cJSON *obj, const char *type)
{
    const cJSON *c, *found = NULL;
    cJSON_ArrayForEach(c, k8s_json_get(obj, "status", "conditions", NULL))
        if (!found && is(k8s_json_str(c, "type", NULL), type))
            found = c;
    return found;
}

static int condition_true(const cJSON *obj, const char *type)
{
    return is(k8s_json_str(condition(obj, type), "status", NULL), "True");
}

/* Seconds between two RFC 3339 times, -1 when either is missing or bad. */
static long long span(const char *from, const char *to, time_t now)
{
    time_t a, b = now;
    if (kp_parse_time(from, &a) || (to && kp_parse_time(to, &b)))
        return -1;
    return (long long)(b - a);
}

/* ------------------------------------------------------------ tables */

#define KP_MAX_COLS 8

/* Rows of cells as pointers into the JSON (or literals); printed with
 * every column but the last padded to its widest cell, two spaces apart. */
typedef struct kp_table {
    size_t ncols, nrows, alloc;
    const char **cells;            /* nrows * ncols */
    char (*owned)[32];             /* small formatted cells, one per row and column */
} kp_table;

static int table_row(kp_table *t)
{
    if (t->nrows == t->alloc) {
        size_t n = t->alloc ? t->alloc * 2 : 16;
        const char **c = realloc(t->cells, n * t->ncols * sizeof(*c));
        if (!c)
            return K8S_ENOMEM;
        t->cells = c;
        char (*o)[32] = realloc(t->owned, n * t->ncols * sizeof(*o));
        if (!o)
            return K8S_ENOMEM;
        t->owned = o;
        t->alloc = n;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = "-";
    t->nrows++;
    return 0;
}

static void table_set(kp_table *t, size_t col, const char *s)
{
    t->cells[(t->nrows - 1) * t->ncols + col] = s ? s : "-";
}

/* A formatted cell kept in the table's own storage. */
__attribute__((format(printf, 3, 4)))
static void table_setf(kp_table *t, size_t col, const char *fmt, ...)
{
    va_list ap;
    char *cell = t->owned[(t->nrows - 1) * t->ncols + col];
    va_start(ap, fmt);
    vsnprintf(cell, 32, fmt, ap);
    va_end(ap);
    t->cells[(t->nrows - 1) * t->ncols + col] = cell;
}

static void table_print(kp_out *o, const kp_table *t)
{
    size_t w[KP_MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 < t->ncols)
                outf(o, "%-*s  ", (int)w[c], cell);
            else
                outf(o, "%s\n", cell);
        }
    }
}

static void table_release(kp_table *t)
{
    free(t->cells);
    free(t->owned);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------ status */

/* Blocked only because another resource of its kind holds the kind's
 * one-at-a-time slot (each workflow's slot reason, README): the controller
 * marks it Stalled, but it starts by itself when that one has finished, so
 * no person need act. What it waits for, or NULL when it is not queued. */
static const char *queued_for(const cJSON *obj)
{
    static const struct { const char *reason, *what; } slots[] = {
        {"AnotherUpgradeActive", "upgrade"},
        {"AnotherAccessPointUpgradeActive", "access point upgrade"},
        {"AnotherRestoreActive", "restore"},
        {"AnotherTuningActive", "tuning"},
    };
    const char *r = k8s_json_str(condition(obj, "Stalled"), "reason", NULL);
    for (size_t i = 0; r && i < sizeof(slots) / sizeof(slots[0]); i++)
        if (!strcmp(r, slots[i].reason))
            return slots[i].what;
    return NULL;
}

static int queued(const cJSON *obj)
{
    return queued_for(obj) != NULL;
}

static const char *assessment(const cJSON *obj, char *buf, size_t len)
{
    const char *phase = k8s_json_str(obj, "status", "phase", NULL);
    const char *ready_reason = k8s_json_str(condition(obj, "Ready"), "reason", NULL);
    const char *rec_reason = k8s_json_str(condition(obj, "Reconciling"), "reason", NULL);

    if (!phase)
        snprintf(buf, len, "Unknown: the controller has not reported on it yet");
    else if (is(phase, "Succeeded"))
        snprintf(buf, len, is(ready_reason, "DryRunComplete")
                 ? "Completed (dry run: nothing was changed)" : "Completed");
    else if (is(phase, "Running"))
        snprintf(buf, len, is(rec_reason, "UpgradeSlow")
                 ? "Progressing, slowly: past timeouts.upgrade (not failed)" : "Progressing");
    else if (is(phase, "Pending"))
        snprintf(buf, len, "Pending");
    else if (is(phase, "Waiting"))
        snprintf(buf, len, is(rec_reason, "WaitingForWindow")
                 ? "Waiting for spec.window to open" : "Waiting");
    else if (is(phase, "Paused"))
        snprintf(buf, len, "Paused: kubectl tianqing approve continues it");
    else if (is(phase, "Blocked") && queued(obj))
        snprintf(buf, len, "Blocked: waiting for another %s to finish, then it starts by itself", queued_for(obj));
    else if (is(phase, "Blocked"))
        snprintf(buf, len, "Blocked: a person must act");
    else if (is(phase, "Failed"))
        snprintf(buf, len, "Failed: a person must act");
    else
        snprintf(buf, len, "%s", phase);
    return buf;
}

static void step_line(kp_out *o, const cJSON *obj)
{
    const cJSON *steps = k8s_json_get(obj, "status", "steps", NULL);
    const char *cur = k8s_json_str(obj, "status", "currentStep", NULL);
    const char *phase = k8s_json_str(obj, "status", "phase", NULL);
    int total = cJSON_IsArray(steps) ? cJSON_GetArraySize(steps) : 0;
    int idx = 0, i = 0, done = 0, skipped = 0;
    const cJSON *s, *cs = NULL;

    cJSON_ArrayForEach(s, steps) {
        i++;
        const char *st = k8s_json_str(s, "state", NULL);
        if (is(st, "Succeeded"))
            done++;
        else if (is(st, "Skipped"))
            skipped++;
        if (cur && is(k8s_json_str(s, "name", NULL), cur)) {
            idx = i;
            cs = s;
        }
    }
    if (idx) {
        long long att = k8s_json_int(cs, 0, "attempts", NULL);
        char a[48] = "";
        if (att > 1)
            snprintf(a, sizeof(a), ", attempt %lld", att);
        outf(o, "Step:        step %d of %d: %s (%s%s)\n", idx, total, cur,
             str_or(k8s_json_str(cs, "state", NULL), "Pending"), a);
    } else if (is(phase, "Succeeded") && total) {
        outf(o, "Step:        all %d steps done (%d succeeded, %d skipped)\n", total, done, skipped);
    } else if (cur) {
        outf(o, "Step:        %s\n", cur);
    } else {
        outf(o, "Step:        not started\n");
    }
}

static void duration_line(kp_out *o, const cJSON *obj, time_t now)
{
    const char *start = k8s_json_str(obj, "status", "startedAt", NULL);
    const char *end = k8s_json_str(obj, "status", "completedAt", NULL);
    long long d = span(start, end, now);
    char b[32];

    if (d < 0)
        return;
    if (end)
        outf(o, "Duration:    %s (%s to %s)\n", kp_format_duration(d, b, sizeof(b)), start, end);
    else
        outf(o, "Duration:    %s (since %s)\n", kp_format_duration(d, b, sizeof(b)), start);
}

/* The step object named name, or NULL. */
static const cJSON *find_step(const cJSON *obj, const char *name)
{
    const cJSON *s, *found = NULL;
    cJSON_ArrayForEach(s, k8s_json_get(obj, "status", "steps", NULL))
        if (!found && is(k8s_json_str(s, "name", NULL), name))
            found = s;
    return found;
}

/* Only while the Upgrade step runs: the vendor's 60 minutes, or how long
 * the newest attempt in status.history[] with both times took. */
static void eta_line(kp_out *o, const cJSON *obj, time_t now)
{
    const cJSON *st = find_step(obj, "Upgrade");
    const char *started;
    long long elapsed, estimate = KP_VENDOR_UPGRADE_SECONDS;
    char from[96] = "the vendor's figure", b1[32], b2[32], b3[32];
    const cJSON *h;

    if (!is(k8s_json_str(obj, "status", "currentStep", NULL), "Upgrade") ||
        !is(k8s_json_str(obj, "status", "phase", NULL), "Running") ||
        !is(k8s_json_str(st, "state", NULL), "Running"))
        return;
    started = k8s_json_str(obj, "status", "upgrade", "startedAt", NULL);
    if (!started)
        started = k8s_json_str(st, "startedAt", NULL);
    elapsed = span(started, NULL, now);
    if (elapsed < 0)
        return;
    cJSON_ArrayForEach(h, k8s_json_get(obj, "status", "history", NULL)) {
        long long d = span(k8s_json_str(h, "started", NULL), k8s_json_str(h, "completed", NULL), now);
        if (d > 0 && k8s_json_str(h, "completed", NULL)) {
            estimate = d;
            snprintf(from, sizeof(from), "the last attempt, generation %lld",
                     k8s_json_int(h, 0, "generation", NULL));
            break;
        }
    }
    kp_format_duration(estimate, b2, sizeof(b2));
    kp_format_duration(elapsed, b3, sizeof(b3));
    if (elapsed <= estimate)
        outf(o, "Est. left:   %s (estimate %s from %s; running %s)\n",
             kp_format_duration(estimate - elapsed, b1, sizeof(b1)), b2, from, b3);
    else
        outf(o, "Est. left:   overdue by %s (estimate %s from %s; running %s)\n",
             kp_format_duration(elapsed - estimate, b1, sizeof(b1)), b2, from, b3);
}

static void generation_line(kp_out *o, const cJSON *obj)
{
    long long gen = k8s_json_int(obj, 0, "metadata", "generation", NULL);
    long long seen = k8s_json_int(obj, -1, "status", "observedGeneration", NULL);

    if (seen < 0)
        outf(o, "Generation:  %lld (not yet observed by the controller)\n", gen);
    else if (seen >= gen)
        outf(o, "Generation:  %lld (observed: this status is current)\n", gen);
    else
        outf(o, "Generation:  %lld (the controller has observed %lld: this status predates the latest change)\n",
             gen, seen);
}

static void steps_table(kp_out *o, const cJSON *obj, time_t now)
{
    const cJSON *s, *steps = k8s_json_get(obj, "status", "steps", NULL);
    kp_table t = {.ncols = 5};
    int n = 0;

    if (!cJSON_IsArray(steps) || cJSON_GetArraySize(steps) == 0)
        return;
    outf(o, "\nSteps:\n");
    cJSON_ArrayForEach(s, steps) {
        const char *state = k8s_json_str(s, "state", NULL);
        const char *end = is(state, "Running") ? NULL : k8s_json_str(s, "completedAt", NULL);
        long long d = -1, att = k8s_json_int(s, 0, "attempts", NULL);
        char b[32];
        if (!is(state, "Pending") && !is(state, "Skipped") &&
            (end || is(state, "Running") || is(state, "Blocked")))
            d = span(k8s_json_str(s, "startedAt", NULL), end, now);
        int r = table_row(&t);
        if (r) {
            o->rc = r;
            break;
        }
        table_setf(&t, 0, "  %d.", ++n);
        table_set(&t, 1, k8s_json_str(s, "name", NULL));
        table_set(&t, 2, str_or(state, "Pending"));
        if (d >= 0)
            table_setf(&t, 3, "%s", kp_format_duration(d, b, sizeof(b)));
        else
            table_set(&t, 3, "");
        if (att > 1)
            table_setf(&t, 4, "%lld attempts", att);
        else
            table_set(&t, 4, "");
    }
    if (!o->rc)
        table_print(o, &t);
    table_release(&t);
}

static void output_tail(kp_out *o, const cJSON *obj)
{
    const cJSON *up = k8s_json_get(obj, "status", "upgrade", NULL);
    const char *tail = k8s_json_str(up, "outputTail", NULL);
    const cJSON *ec = k8s_json_get(up, "exitCode", NULL);
    const char *p, *e;
    int lines = 0, skip;
    char what[64];

    if (!tail || !*tail)
        return;
    for (p = tail; *p; p++)
        if (*p == '\n' && p[1])
            lines++;
    lines++;
    skip = lines > KP_TAIL_LINES ? lines - KP_TAIL_LINES : 0;
    if (cJSON_IsNumber(ec))
        snprintf(what, sizeof(what), "exited %d", ec->valueint);
    else if (k8s_json_int(up, 0, "pid", NULL) > 0)
        snprintf(what, sizeof(what), "running, pid %lld", k8s_json_int(up, 0, "pid", NULL));
    else
        snprintf(what, sizeof(what), "status.upgrade.outputTail");
    outf(o, "\nLast output of update.sh (%s):\n", what);
    for (p = tail; *p; p = *e ? e + 1 : e) {
        e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        if (skip > 0) {
            skip--;
            continue;
        }
        outf(o, "  | %.*s\n", (int)(e - p), p);
    }
}

static void reason_entry(kp_out *o, const char *reason, const char *message)
{
    const kp_remedy *r = kp_remedy_find(reason);
    outf(o, "  %s: ", reason);
    out_text(o, str_or(message, "(no message)"), 4);
    if (r)
        outf(o, "    Remedy: %s\n", r->remedy);
    else
        outf(o, "    Remedy: not in the reasons table: read the message (README, \"Every Blocked and Failed reason\")\n");
}

static void reasons(kp_out *o, const cJSON *obj)
{
    const cJSON *stalled = condition(obj, "Stalled");
    const char *cur = k8s_json_str(obj, "status", "currentStep", NULL);
    const cJSON *s;
    int header = 0;

    if (condition_true(obj, "Stalled")) {
        outf(o, queued(obj) ? "\nReasons (nothing to do: it waits its turn):\n" : "\nReasons (a person must act):\n");
        header = 1;
        reason_entry(o, str_or(k8s_json_str(stalled, "reason", NULL), "Unknown"),
                     k8s_json_str(stalled, "message", NULL));
    }
    /* other steps left Blocked or Failed than the one the condition names */
    cJSON_ArrayForEach(s, k8s_json_get(obj, "status", "steps", NULL)) {
        const char *state = k8s_json_str(s, "state", NULL);
        const char *name = k8s_json_str(s, "name", NULL);
        if (!(is(state, "Blocked") || is(state, "Failed")) || (header && is(name, cur)))
            continue;
        if (!header)
            outf(o, "\nReasons (a person must act):\n");
        header = 1;
        outf(o, "  step %s is %s: ", str_or(name, "?"), state);
        out_text(o, str_or(k8s_json_str(s, "message", NULL), "(no message)"), 4);
    }
}

int kp_render_status(k8s_buf *out, const cJSON *obj, const kp_kind *kind, time_t now)
{
    kp_out o = {out, 0};
    char a[96];
    const char *from = k8s_json_str(obj, "spec", "fromVersion", NULL);
    const char *to = k8s_json_str(obj, "spec", "toVersion", NULL);
    const char *msg = k8s_json_str(obj, "status", "message", NULL);

    outf(&o, "= %s %s/%s =\n", kind->kind, str_or(k8s_json_str(obj, "metadata", "namespace", NULL), "-"),
         str_or(k8s_json_str(obj, "metadata", "name", NULL), "?"));
    outf(&o, "Assessment:  %s\n", assessment(obj, a, sizeof(a)));
    if (from || to)
        outf(&o, "Target:      %s -> %s\n", str_or(from, "?"), str_or(to, "?"));
    step_line(&o, obj);
    duration_line(&o, obj, now);
    eta_line(&o, obj, now);
    generation_line(&o, obj);
    if (k8s_json_bool(obj, 0, "spec", "paused", NULL) &&
        !is(k8s_json_str(obj, "status", "phase", NULL), "Paused"))
        outf(&o, "Paused:      requested (spec.paused: true): it stops before the next step\n");
    if (k8s_json_bool(obj, 0, "spec", "stop", NULL))
        outf(&o, "Stop:        requested (spec.stop: true)\n");
    if (msg && *msg) {
        outf(&o, "Message:     ");
        out_text(&o, msg, 13);
    }
    steps_table(&o, obj, now);
    output_tail(&o, obj);
    reasons(&o, obj);
    return o.rc;
}

/* ------------------------------------------------------------ plan, history */

int kp_render_plan(k8s_buf *out, const cJSON *obj)
{
    kp_out o = {out, 0};
    const cJSON *p, *plan = k8s_json_get(obj, "status", "plan", NULL);
    kp_table t = {.ncols = 4};

    if (!cJSON_IsArray(plan) || cJSON_GetArraySize(plan) == 0) {
        outf(&o, "no plan published yet (the controller publishes status.plan after Preflight)\n");
        goto out;
    }
    if ((o.rc = table_row(&t)) != 0)
        goto out;
    table_set(&t, 0, "STEP");
    table_set(&t, 1, "ACTION");
    table_set(&t, 2, "TARGET");
    table_set(&t, 3, "DETAIL");
    cJSON_ArrayForEach(p, plan) {
        if ((o.rc = table_row(&t)) != 0)
            goto out;
        table_set(&t, 0, k8s_json_str(p, "step", NULL));
        table_set(&t, 1, k8s_json_str(p, "action", NULL));
        table_set(&t, 2, k8s_json_str(p, "target", NULL));
        table_set(&t, 3, k8s_json_str(p, "detail", NULL));
    }
    table_print(&o, &t);
out:
    table_release(&t);
    return o.rc;
}

int kp_render_text(k8s_buf *out, const char *text, int indent)
{
    kp_out o = {out, 0};
    out_text(&o, text, indent);
    return o.rc;
}

int kp_render_history(k8s_buf *out, const cJSON *obj)
{
    kp_out o = {out, 0};
    const cJSON *h, *hist = k8s_json_get(obj, "status", "history", NULL);
    kp_table t = {.ncols = 7};

    if (!cJSON_IsArray(hist) || cJSON_GetArraySize(hist) == 0) {
        outf(&o, "no attempts recorded\n");
        goto out;
    }
    if ((o.rc = table_row(&t)) != 0)
        goto out;
    table_set(&t, 0, "GENERATION");
    table_set(&t, 1, "STARTED");
    table_set(&t, 2, "COMPLETED");
    table_set(&t, 3, "DURATION");
    table_set(&t, 4, "OUTCOME");
    table_set(&t, 5, "REASON");
    table_set(&t, 6, "EXIT");
    cJSON_ArrayForEach(h, hist) {
        const char *st = k8s_json_str(h, "started", NULL), *co = k8s_json_str(h, "completed", NULL);
        const cJSON *ec = k8s_json_get(h, "exitCode", NULL);
        long long d = co ? span(st, co, 0) : -1;
        char b[32];
        if ((o.rc = table_row(&t)) != 0)
            goto out;
        if (cJSON_IsNumber(k8s_json_get(h, "generation", NULL)))
            table_setf(&t, 0, "%lld", k8s_json_int(h, 0, "generation", NULL));
        table_set(&t, 1, st);
        table_set(&t, 2, co);
        if (d >= 0)
            table_setf(&t, 3, "%s", kp_format_duration(d, b, sizeof(b)));
        table_set(&t, 4, k8s_json_str(h, "outcome", NULL));
        table_set(&t, 5, k8s_json_str(h, "reason", NULL));
        if (cJSON_IsNumber(ec))
            table_setf(&t, 6, "%d", ec->valueint);
    }
    table_print(&o, &t);
out:
    table_release(&t);
    return o.rc;
}

/* ------------------------------------------------------------ wait */

static int current(const cJSON *obj, const cJSON *cond)
{
    long long gen = k8s_json_int(obj, 0, "metadata", "generation", NULL);
    long long seen = k8s_json_int(cond, -1, "observedGeneration", NULL);
    if (seen < 0)
        seen = k8s_json_int(obj, -1, "status", "observedGeneration", NULL);
    return seen >= gen;
}

kp_wait_state kp_wait_check(const cJSON *obj)
{
    kp_wait_state w = KP_WAIT_PENDING;

    if (condition_true(obj, "Ready") && current(obj, condition(obj, "Ready")))
        w = KP_WAIT_READY;
    else if (condition_true(obj, "Stalled") && current(obj, condition(obj, "Stalled")) && !queued(obj))
        w = KP_WAIT_STALLED;
    return w;
}
