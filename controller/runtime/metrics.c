/*
 * metrics.c - the controller's Prometheus registry (see metrics.h).
 *
 * All values live in one static struct behind one mutex. Recording touches
 * a few integers; rendering copies the struct under the lock (a few KiB)
 * and formats the copy without it, so a scrape never blocks the workers
 * for long and every histogram it prints is internally consistent
 * (cumulative buckets, +Inf == _count).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "metrics.h"

/* ------------------------------------------------------------ the tables */

static const double bucket_bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
#define NBOUNDS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

typedef struct hist {
    uint64_t bucket[NBOUNDS + 1];   /* per bucket, not cumulative; last is +Inf */
    double sum;
} hist;

static const char *const results[] = { "success", "error", "requeue", "other" };
#define NRESULTS 4
#define RESULT_ERROR 1

static const char *const verbs[] = {
    "GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE", "other",
};
#define NVERBS 8

static const char *const known_phases[] = {
    "Pending", "Waiting", "Paused", "Running", "Blocked", "Failed", "Succeeded",
};
#define NKNOWN_PHASES 7

#define MAX_RESOURCES 16
#define MAX_CODES 24
#define MAX_PHASES (NKNOWN_PHASES + 8)
#define MAX_FAMILIES 8
#define MAX_SERIES 512

typedef struct name_slot {
    char name[TQU_METRICS_NAME_MAX + 1];
} name_slot;

typedef struct state {
    uint64_t reconcile[NRESULTS];
    uint64_t reconcile_errors;
    hist reconcile_hist;

    long queue_depth;

    int nresources;
    name_slot resource[MAX_RESOURCES];
    uint64_t restarts[MAX_RESOURCES + 1];   /* last: "other" */
    uint64_t relists[MAX_RESOURCES + 1];

    int ncodes;
    long code[MAX_CODES];
    uint64_t api[NVERBS][MAX_CODES + 1];    /* last column: code "other" */
    hist api_hist[NVERBS];

    int leader;
    uint64_t leader_transitions;

    int nphases;                            /* >= NKNOWN_PHASES */
    name_slot phase[MAX_PHASES];
    long phase_count[MAX_PHASES + 1];       /* last: "other" */

    int nfamilies;                          /* the workflows' labelled counters */
    const tqu_counter_family *family[MAX_FAMILIES];
    int nseries;
    struct series {
        int family;
        name_slot value[3];
        uint64_t count;
    } series[MAX_SERIES];
} state;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static state st;
static int st_ready;    /* the known phases are in st.phase */

/* Fill the known phases on first use; lock held. */
static void ready_locked(void)
{
    if (st_ready)
        return;
    for (int i = 0; i < NKNOWN_PHASES; i++)
        snprintf(st.phase[i].name, sizeof(st.phase[i].name), "%s", known_phases[i]);
    st.nphases = NKNOWN_PHASES;
    st_ready = 1;
}

void tqu_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(&st, 0, sizeof(st));
    st_ready = 0;
    ready_locked();
    pthread_mutex_unlock(&lock);
}

static void observe(hist *h, double seconds)
{
    size_t i;

    if (!(seconds >= 0))        /* negative or NaN */
        seconds = 0;
    for (i = 0; i < NBOUNDS && seconds > bucket_bounds[i]; i++)
        ;
    h->bucket[i]++;
    h->sum += seconds;
}

/*
 * The slot of name in a table of n names (cap entries), adding it when new
 * and there is room. Returns cap ("other") when it does not fit.
 */
static int slot_of(name_slot *tab, int *n, int cap, const char *name)
{
    size_t len;
    int i;

    if (!name || !name[0] || (len = strlen(name)) > TQU_METRICS_NAME_MAX)
        return cap;
    for (i = 0; i < *n; i++)
        if (strcmp(tab[i].name, name) == 0)
            return i;
    if (*n >= cap)
        return cap;
    memcpy(tab[*n].name, name, len + 1);
    return (*n)++;
}

/* ------------------------------------------------------------- recording */

void tqu_metrics_reconcile(const char *result, double seconds)
{
    int r = NRESULTS - 1;

    for (int i = 0; i < NRESULTS - 1; i++)
        if (result && strcmp(result, results[i]) == 0)
            r = i;
    pthread_mutex_lock(&lock);
    st.reconcile[r]++;
    if (r == RESULT_ERROR)
        st.reconcile_errors++;
    observe(&st.reconcile_hist, seconds);
    pthread_mutex_unlock(&lock);
}

void tqu_metrics_api_request(void *ud, const char *verb, long code, double seconds)
{
    int v = NVERBS - 1, c;

    (void)ud;

    for (int i = 0; i < NVERBS - 1; i++)
        if (verb && strcmp(verb, verbs[i]) == 0)
            v = i;
    pthread_mutex_lock(&lock);
    for (c = 0; c < st.ncodes && st.code[c] != code; c++)
        ;
    if (c == st.ncodes) {
        if (st.ncodes < MAX_CODES)
            st.code[st.ncodes++] = code;
        else
            c = MAX_CODES;
    }
    st.api[v][c]++;
    observe(&st.api_hist[v], seconds);
    pthread_mutex_unlock(&lock);
}

void tqu_metrics_set_queue_depth(long depth)
{
    pthread_mutex_lock(&lock);
    st.queue_depth = depth;
    pthread_mutex_unlock(&lock);
}

void tqu_metrics_watch_restart(const char *resource)
{
    pthread_mutex_lock(&lock);
    st.restarts[slot_of(st.resource, &st.nresources, MAX_RESOURCES, resource)]++;
    pthread_mutex_unlock(&lock);
}

void tqu_metrics_watch_relist(const char *resource)
{
    pthread_mutex_lock(&lock);
    st.relists[slot_of(st.resource, &st.nresources, MAX_RESOURCES, resource)]++;
    pthread_mutex_unlock(&lock);
}

/* The index of fam, registered now if new; -1 when there is no room. Lock held. */
static int family_locked(const tqu_counter_family *fam)
{
    for (int i = 0; i < st.nfamilies; i++)
        if (st.family[i] == fam)
            return i;
    if (st.nfamilies == MAX_FAMILIES)
        return -1;
    st.family[st.nfamilies] = fam;
    return st.nfamilies++;
}

void tqu_metrics_register(const tqu_counter_family *fam)
{
    pthread_mutex_lock(&lock);
    (void)family_locked(fam);
    pthread_mutex_unlock(&lock);
}

/* The series of family f with those values: found, or added while there is
 * room (the last MAX_FAMILIES places are kept for the "other" series, so
 * one always fits); -1 when none. Lock held. */
static int series_locked(int f, const name_slot *want, int reserve)
{
    for (int i = 0; i < st.nseries; i++)
        if (st.series[i].family == f && !memcmp(st.series[i].value, want, sizeof(st.series[i].value)))
            return i;
    if (st.nseries >= MAX_SERIES - (reserve ? MAX_FAMILIES : 0))
        return -1;
    st.series[st.nseries].family = f;
    memcpy(st.series[st.nseries].value, want, sizeof(st.series[st.nseries].value));
    st.series[st.nseries].count = 0;
    return st.nseries++;
}

void tqu_metrics_count(const tqu_counter_family *fam, const char *v0, const char *v1, const char *v2)
{
    const char *in[3] = { v0, v1, v2 };
    name_slot want[3];
    int f, i = -1;

    memset(want, 0, sizeof(want));
    for (int l = 0; l < 3; l++)
        if (fam->labels[l])
            snprintf(want[l].name, sizeof(want[l].name), "%s", in[l] ? in[l] : "");
    pthread_mutex_lock(&lock);
    f = family_locked(fam);
    if (f >= 0)
        i = series_locked(f, want, 1);
    if (f >= 0 && i < 0) {
        memset(want, 0, sizeof(want));      /* series compare whole slots */
        for (int l = 0; l < 3; l++)
            if (fam->labels[l])
                snprintf(want[l].name, sizeof(want[l].name), "other");
        i = series_locked(f, want, 0);
    }
    if (i >= 0)
        st.series[i].count++;
    pthread_mutex_unlock(&lock);
}

void tqu_metrics_set_leader(int leading)
{
    leading = leading != 0;
    pthread_mutex_lock(&lock);
    if (st.leader != leading)
        st.leader_transitions++;
    st.leader = leading;
    pthread_mutex_unlock(&lock);
}

void tqu_metrics_set_phase_counts(const tqu_phase_count *counts, size_t n)
{
    pthread_mutex_lock(&lock);
    ready_locked();
    memset(st.phase_count, 0, sizeof(st.phase_count));
    for (size_t i = 0; counts && i < n; i++) {
        const char *p = counts[i].phase && counts[i].phase[0] ? counts[i].phase : "unknown";
        st.phase_count[slot_of(st.phase, &st.nphases, MAX_PHASES, p)] += counts[i].count;
    }
    pthread_mutex_unlock(&lock);
}

/* ------------------------------------------------------------- rendering */

/* A writer with a sticky error: after the first failure every put is a no-op. */
typedef struct writer {
    k8s_buf *b;
    int rc;
} writer;

__attribute__((format(printf, 2, 3)))
static void put(writer *w, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    if (w->rc)
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        w->rc = K8S_EINVAL;
    } else if ((size_t)n < sizeof(small)) {
        w->rc = k8s_buf_add(w->b, small, (size_t)n);
    } else {
        /* Longer than any line we format; kept for safety. */
        char *big = malloc((size_t)n + 1);
        if (!big) {
            w->rc = K8S_ENOMEM;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        w->rc = k8s_buf_add(w->b, big, (size_t)n);
        free(big);
    }
}

/* A label value with \ " and newline escaped, as the format requires. */
static void put_label_value(writer *w, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        if (!w->rc && s > run)
            w->rc = k8s_buf_add(w->b, run, (size_t)(s - run));
        if (!w->rc)
            w->rc = k8s_buf_add(w->b, esc, 2);
        run = s + 1;
    }
    if (!w->rc && s > run)
        w->rc = k8s_buf_add(w->b, run, (size_t)(s - run));
}

/*
 * The shortest decimal form of v that reads back as v, laid out the way
 * Go's strconv.FormatFloat(v, 'g', -1, 64) does (what client_golang
 * prints): "0.005", "60", "1.7e+09", "+Inf".
 */
static void format_float(char *out, size_t len, double v)
{
    char e[40];
    int digits, exp;

    if (isnan(v)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        snprintf(out, len, "0");
        return;
    }
    for (digits = 1; digits < 17; digits++) {
        snprintf(e, sizeof(e), "%.*e", digits - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof(e), "%.*e", digits - 1, v);
    exp = atoi(strchr(e, 'e') + 1);
    int eprec = 6;
    if (eprec > digits && digits >= exp + 1)
        eprec = digits;
    if (exp < -4 || exp >= eprec)
        snprintf(out, len, "%s", e);
    else
        snprintf(out, len, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, v);
}

static void put_family(writer *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{label="value"} or name, then the value. label may be NULL. */
static void put_u64(writer *w, const char *name, const char *label, const char *value,
                    uint64_t v)
{
    if (label) {
        put(w, "%s{%s=\"", name, label);
        put_label_value(w, value);
        put(w, "\"} %" PRIu64 "\n", v);
    } else {
        put(w, "%s %" PRIu64 "\n", name, v);
    }
}

static void put_hist(writer *w, const char *name, const char *label, const char *value,
                     const hist *h)
{
    char num[40], lead[64] = "";
    uint64_t cum = 0;

    if (label)
        snprintf(lead, sizeof(lead), "%s=\"%s\",", label, value);   /* fixed values: no escaping */
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += h->bucket[i];
        if (i < NBOUNDS)
            format_float(num, sizeof(num), bucket_bounds[i]);
        else
            snprintf(num, sizeof(num), "+Inf");
        put(w, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, lead, num, cum);
    }
    format_float(num, sizeof(num), h->sum);
    if (label) {
        put(w, "%s_sum{%s=\"%s\"} %s\n", name, label, value, num);
        put(w, "%s_count{%s=\"%s\"} %" PRIu64 "\n", name, label, value, cum);
    } else {
        put(w, "%s_sum %s\n", name, num);
        put(w, "%s_count %" PRIu64 "\n", name, cum);
    }
}

static uint64_t hist_count(const hist *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= NBOUNDS; i++)
        n += h->bucket[i];
    return n;
}

/* --------------------------------------------------- process statistics */

static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Read a small /proc file into buf; returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (!f)
        return -1;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (ssize_t)n;
}

static double resident_bytes(void)
{
    char buf[256];
    unsigned long size, resident;
    long page = sysconf(_SC_PAGESIZE);

    if (page <= 0 || read_small("/proc/self/statm", buf, sizeof(buf)) < 0 ||
        sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return -1;
    return (double)resident * (double)page;
}

static double start_time;    /* unix seconds, < 0 when unknown */
static pthread_once_t start_once = PTHREAD_ONCE_INIT;

/* Boot time from /proc/stat plus the process's starttime (field 22 of
 * /proc/self/stat, clock ticks since boot), as client_golang does. */
static void find_start_time(void)
{
    char buf[4096], *p;
    unsigned long long ticks;
    long hz = sysconf(_SC_CLK_TCK), btime = -1;

    start_time = -1;
    if (hz <= 0 || read_small("/proc/stat", buf, sizeof(buf)) < 0)
        return;
    p = strstr(buf, "\nbtime ");
    if (!p || sscanf(p, "\nbtime %ld", &btime) != 1)
        return;
    if (read_small("/proc/self/stat", buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
        return;
    /* after ") ": state is field 3, starttime field 22 */
    p++;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return;
        if (field == 22)
            break;
        while (*p && *p != ' ')
            p++;
    }
    errno = 0;
    ticks = strtoull(p, NULL, 10);
    if (errno)
        return;
    start_time = (double)btime + (double)ticks / (double)hz;
}

void tqu_metrics_init(void)
{
    pthread_once(&start_once, find_start_time);
    pthread_mutex_lock(&lock);
    ready_locked();
    pthread_mutex_unlock(&lock);
}

/* --------------------------------------------------------------- render */

int tqu_metrics_render(k8s_buf *out)
{
    writer w = { out, K8S_OK };
    size_t start = out->len;
    double cpu = cpu_seconds(), rss = resident_bytes();
    char num[40];
    int order[MAX_CODES];
    state *s;

    pthread_once(&start_once, find_start_time);
    /* The snapshot is large for a stack frame in a thread; take it on the heap. */
    s = malloc(sizeof(*s));
    if (!s)
        return K8S_ENOMEM;
    pthread_mutex_lock(&lock);
    ready_locked();
    *s = st;
    pthread_mutex_unlock(&lock);

    put_family(&w, "tqu_reconcile_total", "counter", "Reconciles finished, by result.");
    for (int i = 0; i < NRESULTS; i++)
        if (i < NRESULTS - 1 || s->reconcile[i])
            put_u64(&w, "tqu_reconcile_total", "result", results[i], s->reconcile[i]);

    put_family(&w, "tqu_reconcile_errors_total", "counter", "Reconciles that ended in an error.");
    put_u64(&w, "tqu_reconcile_errors_total", NULL, NULL, s->reconcile_errors);

    put_family(&w, "tqu_reconcile_duration_seconds", "histogram",
               "Time taken by one reconcile.");
    put_hist(&w, "tqu_reconcile_duration_seconds", NULL, NULL, &s->reconcile_hist);

    put_family(&w, "tqu_workqueue_depth", "gauge", "Keys waiting in the work queue.");
    put(&w, "tqu_workqueue_depth %ld\n", s->queue_depth);

    put_family(&w, "tqu_watch_restarts_total", "counter",
               "Watches opened again after their stream ended, by resource.");
    for (int i = 0; i < s->nresources; i++)
        put_u64(&w, "tqu_watch_restarts_total", "resource", s->resource[i].name, s->restarts[i]);
    if (s->restarts[MAX_RESOURCES] || s->relists[MAX_RESOURCES])
        put_u64(&w, "tqu_watch_restarts_total", "resource", "other", s->restarts[MAX_RESOURCES]);

    put_family(&w, "tqu_watch_relists_total", "counter",
               "Full lists made by watches (first sync or expired resourceVersion), by resource.");
    for (int i = 0; i < s->nresources; i++)
        put_u64(&w, "tqu_watch_relists_total", "resource", s->resource[i].name, s->relists[i]);
    if (s->restarts[MAX_RESOURCES] || s->relists[MAX_RESOURCES])
        put_u64(&w, "tqu_watch_relists_total", "resource", "other", s->relists[MAX_RESOURCES]);

    /* codes in ascending order, "other" last */
    for (int i = 0; i < s->ncodes; i++) {
        int j = i;
        for (; j > 0 && s->code[order[j - 1]] > s->code[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    put_family(&w, "tqu_api_requests_total", "counter",
               "Requests to the Kubernetes API, by verb and HTTP status (0: no answer).");
    for (int v = 0; v < NVERBS; v++) {
        for (int i = 0; i <= s->ncodes; i++) {
            int c = i < s->ncodes ? order[i] : MAX_CODES;
            if (!s->api[v][c])
                continue;
            if (c == MAX_CODES)
                snprintf(num, sizeof(num), "other");
            else
                snprintf(num, sizeof(num), "%ld", s->code[c]);
            put(&w, "tqu_api_requests_total{verb=\"%s\",code=\"%s\"} %" PRIu64 "\n", verbs[v],
                num, s->api[v][c]);
        }
    }

    put_family(&w, "tqu_api_request_duration_seconds", "histogram",
               "Time taken by requests to the Kubernetes API (watches: until the answer's headers), by verb.");
    for (int v = 0; v < NVERBS; v++)
        if (hist_count(&s->api_hist[v]))
            put_hist(&w, "tqu_api_request_duration_seconds", "verb", verbs[v], &s->api_hist[v]);

    put_family(&w, "tqu_leader", "gauge", "1 while this replica holds the leader lease, else 0.");
    put(&w, "tqu_leader %d\n", s->leader);

    put_family(&w, "tqu_leader_transitions_total", "counter",
               "Times this replica gained or lost leadership.");
    put_u64(&w, "tqu_leader_transitions_total", NULL, NULL, s->leader_transitions);

    put_family(&w, "tqu_upgrades", "gauge", "TianqingUpgrade resources, by status.phase.");
    for (int i = 0; i < s->nphases; i++) {
        put(&w, "tqu_upgrades{phase=\"");
        put_label_value(&w, s->phase[i].name);
        put(&w, "\"} %ld\n", s->phase_count[i]);
    }
    if (s->phase_count[MAX_PHASES])
        put(&w, "tqu_upgrades{phase=\"other\"} %ld\n", s->phase_count[MAX_PHASES]);

    for (int f = 0; f < s->nfamilies; f++) {
        const tqu_counter_family *fam = s->family[f];
        put_family(&w, fam->name, "counter", fam->help);
        for (int i = 0; i < s->nseries; i++) {
            if (s->series[i].family != f)
                continue;
            put(&w, "%s", fam->name);
            for (int l = 0, n = 0; l < 3; l++) {
                if (!fam->labels[l])
                    continue;
                put(&w, "%s%s=\"", n++ ? "," : "{", fam->labels[l]);
                put_label_value(&w, s->series[i].value[l].name);
                put(&w, "\"");
            }
            put(&w, "%s %" PRIu64 "\n", fam->labels[0] || fam->labels[1] || fam->labels[2] ? "}" : "",
                s->series[i].count);
        }
    }

    if (cpu >= 0) {
        put_family(&w, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.");
        format_float(num, sizeof(num), cpu);
        put(&w, "process_cpu_seconds_total %s\n", num);
    }
    if (rss >= 0) {
        put_family(&w, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        format_float(num, sizeof(num), rss);
        put(&w, "process_resident_memory_bytes %s\n", num);
    }
    if (start_time >= 0) {
        put_family(&w, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.");
        format_float(num, sizeof(num), start_time);
        put(&w, "process_start_time_seconds %s\n", num);
    }

    free(s);
    if (w.rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return w.rc;
}
