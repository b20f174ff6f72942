/*
 * test_metrics.c - the Prometheus registry: what is recorded is what is
 * rendered, the output is valid text format 0.0.4 (checked by the strict
 * parser in prom_parse.h), label values are escaped, tables are bounded,
 * rendering fails cleanly and concurrent recording stays consistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "k8s.h"
#include "failalloc.h"
#include "runtime/metrics.h"
#include "prom_parse.h"

/* It must fit k8s_client_set_observer exactly. */
static const k8s_request_observer observer_fits = tqu_metrics_api_request;

static int setup(void **state)
{
    (void)state;
    tqu_metrics_reset();
    return 0;
}

/* Render and parse; the test fails with the parser's message when invalid. */
static void render_parse(k8s_buf *b, prom_doc *d)
{
    k8s_buf_init(b, 0);
    assert_int_equal(tqu_metrics_render(b), K8S_OK);
    assert_non_null(b->data);
    if (prom_parse(b->data, b->len, d) != 0) {
        fprintf(stderr, "%s\n--- rendered:\n%s", d->err, b->data);
        fail_msg("invalid exposition: %s", d->err);
    }
}

static void assert_value(const prom_doc *d, double want, const prom_sample *s, const char *what)
{
    if (!s)
        fail_msg("no sample %s", what);
    if (fabs(s->value - want) > 1e-9 * (fabs(want) + 1))
        fail_msg("%s = %.17g, want %.17g", what, s->value, want);
    (void)d;
}

#define VALUE(d, want, ...) assert_value((d), (want), prom_find((d), __VA_ARGS__), #__VA_ARGS__)

static void assert_type(const prom_doc *d, const char *name, const char *type)
{
    const prom_family *f = prom_family_of(d, name);
    if (!f)
        fail_msg("no family %s", name);
    assert_string_equal(f->type, type);
}

static void test_render_parses_with_recorded_values(void **state)
{
    k8s_buf b;
    prom_doc d = { 0 };
    (void)state;

    observer_fits(NULL, "GET", 200, 0.003);
    tqu_metrics_reconcile("success", 0.001);
    tqu_metrics_reconcile("success", 0.2);
    tqu_metrics_reconcile("success", 61);
    tqu_metrics_reconcile("error", 0.005);      /* on a bound: le is inclusive */
    tqu_metrics_reconcile("error", 1);
    tqu_metrics_reconcile("requeue", 0.03);
    tqu_metrics_reconcile("bogus", 10);
    for (int i = 0; i < 4; i++)
        tqu_metrics_api_request(NULL, "GET", 200, 0.01);
    tqu_metrics_api_request(NULL, "WATCH", 0, 300);
    tqu_metrics_api_request(NULL, "PATCH", 409, 0.02);
    tqu_metrics_api_request(NULL, "FOO", 500, 0.5);
    tqu_metrics_api_request(NULL, "LIST", 200, 0.11);
    tqu_metrics_set_queue_depth(7);
    tqu_metrics_watch_restart("deployments");
    tqu_metrics_watch_restart("deployments");
    tqu_metrics_watch_relist("tianqingupgrades");
    tqu_metrics_set_leader(1);
    tqu_metrics_set_leader(1);
    tqu_metrics_set_leader(0);
    tqu_metrics_set_leader(5);
    const tqu_phase_count pc[] = {
        { "Running", 1 }, { "Succeeded", 3 }, { "Weird", 2 }, { "", 1 }, { "Succeeded", 1 },
    };
    tqu_metrics_set_phase_counts(pc, sizeof(pc) / sizeof(pc[0]));

    render_parse(&b, &d);

    assert_type(&d, "tqu_reconcile_total", "counter");
    assert_type(&d, "tqu_reconcile_errors_total", "counter");
    assert_type(&d, "tqu_reconcile_duration_seconds", "histogram");
    assert_type(&d, "tqu_workqueue_depth", "gauge");
    assert_type(&d, "tqu_watch_restarts_total", "counter");
    assert_type(&d, "tqu_watch_relists_total", "counter");
    assert_type(&d, "tqu_api_requests_total", "counter");
    assert_type(&d, "tqu_api_request_duration_seconds", "histogram");
    assert_type(&d, "tqu_leader", "gauge");
    assert_type(&d, "tqu_leader_transitions_total", "counter");
    assert_type(&d, "tqu_upgrades", "gauge");
    assert_type(&d, "process_cpu_seconds_total", "counter");
    assert_type(&d, "process_resident_memory_bytes", "gauge");
    assert_type(&d, "process_start_time_seconds", "gauge");

    VALUE(&d, 3, "tqu_reconcile_total", "result", "success", NULL);
    VALUE(&d, 2, "tqu_reconcile_total", "result", "error", NULL);
    VALUE(&d, 1, "tqu_reconcile_total", "result", "requeue", NULL);
    VALUE(&d, 1, "tqu_reconcile_total", "result", "other", NULL);
    VALUE(&d, 2, "tqu_reconcile_errors_total", NULL);

    static const struct { const char *le; double n; } cum[] = {
        { "0.005", 2 }, { "0.01", 2 }, { "0.025", 2 }, { "0.05", 3 }, { "0.1", 3 },
        { "0.25", 4 }, { "0.5", 4 }, { "1", 5 }, { "2.5", 5 }, { "5", 5 }, { "10", 6 },
        { "30", 6 }, { "60", 6 }, { "+Inf", 7 },
    };
    for (size_t i = 0; i < sizeof(cum) / sizeof(cum[0]); i++)
        VALUE(&d, cum[i].n, "tqu_reconcile_duration_seconds_bucket", "le", cum[i].le, NULL);
    VALUE(&d, 7, "tqu_reconcile_duration_seconds_count", NULL);
    VALUE(&d, 0.001 + 0.2 + 61 + 0.005 + 1 + 0.03 + 10, "tqu_reconcile_duration_seconds_sum", NULL);

    VALUE(&d, 7, "tqu_workqueue_depth", NULL);
    VALUE(&d, 2, "tqu_watch_restarts_total", "resource", "deployments", NULL);
    VALUE(&d, 0, "tqu_watch_restarts_total", "resource", "tianqingupgrades", NULL);
    VALUE(&d, 0, "tqu_watch_relists_total", "resource", "deployments", NULL);
    VALUE(&d, 1, "tqu_watch_relists_total", "resource", "tianqingupgrades", NULL);
    assert_null(prom_find(&d, "tqu_watch_restarts_total", "resource", "other", NULL));

    VALUE(&d, 5, "tqu_api_requests_total", "verb", "GET", "code", "200", NULL);
    VALUE(&d, 1, "tqu_api_requests_total", "verb", "WATCH", "code", "0", NULL);
    VALUE(&d, 1, "tqu_api_requests_total", "verb", "PATCH", "code", "409", NULL);
    VALUE(&d, 1, "tqu_api_requests_total", "verb", "other", "code", "500", NULL);
    VALUE(&d, 1, "tqu_api_requests_total", "verb", "LIST", "code", "200", NULL);
    assert_null(prom_find(&d, "tqu_api_requests_total", "verb", "GET", "code", "409", NULL));
    VALUE(&d, 5, "tqu_api_request_duration_seconds_count", "verb", "GET", NULL);
    VALUE(&d, 1, "tqu_api_request_duration_seconds_bucket", "verb", "GET", "le", "0.005", NULL);
    VALUE(&d, 5, "tqu_api_request_duration_seconds_bucket", "verb", "GET", "le", "0.01", NULL);
    VALUE(&d, 0, "tqu_api_request_duration_seconds_bucket", "verb", "WATCH", "le", "60", NULL);
    VALUE(&d, 1, "tqu_api_request_duration_seconds_bucket", "verb", "WATCH", "le", "+Inf", NULL);
    VALUE(&d, 300, "tqu_api_request_duration_seconds_sum", "verb", "WATCH", NULL);
    assert_null(prom_find(&d, "tqu_api_request_duration_seconds_count", "verb", "DELETE", NULL));

    VALUE(&d, 1, "tqu_leader", NULL);
    VALUE(&d, 3, "tqu_leader_transitions_total", NULL);

    VALUE(&d, 0, "tqu_upgrades", "phase", "Pending", NULL);
    VALUE(&d, 1, "tqu_upgrades", "phase", "Running", NULL);
    VALUE(&d, 4, "tqu_upgrades", "phase", "Succeeded", NULL);
    VALUE(&d, 0, "tqu_upgrades", "phase", "Failed", NULL);
    VALUE(&d, 2, "tqu_upgrades", "phase", "Weird", NULL);
    VALUE(&d, 1, "tqu_upgrades", "phase", "unknown", NULL);

    const prom_sample *s = prom_find(&d, "process_resident_memory_bytes", NULL);
    assert_non_null(s);
    assert_true(s->value > 1024 * 1024 && s->value < 4e9);
    s = prom_find(&d, "process_cpu_seconds_total", NULL);
    assert_non_null(s);
    assert_true(s->value >= 0 && s->value < 3600);
    s = prom_find(&d, "process_start_time_seconds", NULL);
    assert_non_null(s);
    assert_true(s->value > (double)time(NULL) - 3600 && s->value <= (double)time(NULL) + 1);

    prom_doc_release(&d);
    k8s_buf_release(&b);
}

/* The exact text of a few lines: bounds and values as client_golang prints them. */
static void test_exact_lines(void **state)
{
    k8s_buf b;
    (void)state;

    tqu_metrics_reconcile("success", 0.1);
    tqu_metrics_reconcile("success", 0.2);
    tqu_metrics_set_queue_depth(-1);
    k8s_buf_init(&b, 0);
    assert_int_equal(tqu_metrics_render(&b), K8S_OK);
    static const char *const want[] = {
        "# HELP tqu_reconcile_total Reconciles finished, by result.\n"
        "# TYPE tqu_reconcile_total counter\n"
        "tqu_reconcile_total{result=\"success\"} 2\n"
        "tqu_reconcile_total{result=\"error\"} 0\n"
        "tqu_reconcile_total{result=\"requeue\"} 0\n"
        "# HELP tqu_reconcile_errors_total",
        "\n# TYPE tqu_reconcile_duration_seconds histogram\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.005\"} 0\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.01\"} 0\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.025\"} 0\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.05\"} 0\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.1\"} 1\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.25\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"0.5\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"1\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"2.5\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"5\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"10\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"30\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"60\"} 2\n"
        "tqu_reconcile_duration_seconds_bucket{le=\"+Inf\"} 2\n"
        "tqu_reconcile_duration_seconds_sum 0.30000000000000004\n"
        "tqu_reconcile_duration_seconds_count 2\n",
        "\ntqu_workqueue_depth -1\n",
        "\n# TYPE tqu_leader gauge\ntqu_leader 0\n",
        "\ntqu_upgrades{phase=\"Pending\"} 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(b.data, want[i]))
            fail_msg("missing:\n%s\n--- in:\n%s", want[i], b.data);
    /* a value that needs an exponent, as Go's 'g' format writes it */
    assert_non_null(strstr(b.data, "\nprocess_start_time_seconds 1."));
    assert_non_null(strstr(b.data, "e+09\n"));
    k8s_buf_release(&b);
}

static void test_label_escaping(void **state)
{
    const char *weird = "we\"ird\\na\nme";
    k8s_buf b;
    prom_doc d = { 0 };
    (void)state;

    tqu_metrics_watch_restart(weird);
    const tqu_phase_count pc[] = { { "Pha\"se\\", 2 } };
    tqu_metrics_set_phase_counts(pc, 1);
    render_parse(&b, &d);
    assert_non_null(strstr(b.data, "tqu_watch_restarts_total{resource=\"we\\\"ird\\\\na\\nme\"} 1\n"));
    assert_non_null(strstr(b.data, "tqu_upgrades{phase=\"Pha\\\"se\\\\\"} 2\n"));
    VALUE(&d, 1, "tqu_watch_restarts_total", "resource", weird, NULL);
    VALUE(&d, 0, "tqu_watch_relists_total", "resource", weird, NULL);
    VALUE(&d, 2, "tqu_upgrades", "phase", "Pha\"se\\", NULL);
    prom_doc_release(&d);
    k8s_buf_release(&b);
}

/* The parser itself must refuse what is wrong, or the tests above prove nothing. */
static void test_parser_rejects(void **state)
{
    static const char *const bad[] = {
        "x_total 1\n",                                                     /* no HELP/TYPE */
        "# HELP x h\nx 1\n",                                               /* no TYPE */
        "# TYPE x gauge\nx 1\n",                                           /* no HELP */
        "# HELP x h\n# TYPE x gauge\nx 1",                                 /* no final newline */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",                    /* bad escape */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b\"c=\"d\"} 1\n",               /* missing comma */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b\",a=\"c\"} 1\n",              /* duplicate label */
        "# HELP x h\n# TYPE x gauge\nx 0x10\n",                            /* hex */
        "# HELP x h\n# TYPE x gauge\nx inf\n",                             /* spelling */
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",                          /* duplicate series */
        "# HELP x h\n# TYPE x gauge\n1x 1\n",                              /* bad name */
        "# HELP x h\n# TYPE x counter\nx 1\n",                             /* counter not _total */
        "# HELP x_total h\n# TYPE x_total counter\nx_total -1\n",          /* negative counter */
        "# HELP x h\n# TYPE x gauge\n\nx 1\n",                             /* empty line */
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx{a=\"b\"} 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
        "h_sum 1\nh_count 1\n",                                            /* not cumulative */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1\nh_count 3\n",                                            /* +Inf != count */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", /* no +Inf */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",     /* no _sum */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",                   /* le order */
    };
    static const char *good =
        "# HELP x h \\\\ \\n\n# TYPE x gauge\nx{a=\"\\\"\\\\\\n\",} -Inf 123\n"
        "# HELP h h\n# TYPE h histogram\nh_bucket{k=\"v\",le=\"1\"} 1\nh_bucket{k=\"v\",le=\"+Inf\"} 2\n"
        "h_sum{k=\"v\"} 1.5e+00\nh_count{k=\"v\"} 2\n";
    prom_doc d = { 0 };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (prom_parse(bad[i], strlen(bad[i]), &d) == 0)
            fail_msg("accepted bad input %zu:\n%s", i, bad[i]);
        prom_doc_release(&d);
    }
    if (prom_parse(good, strlen(good), &d) != 0)
        fail_msg("rejected good input: %s", d.err);
    VALUE(&d, -INFINITY, "x", "a", "\"\\\n", NULL);
    VALUE(&d, 1.5, "h_sum", "k", "v", NULL);
    prom_doc_release(&d);
}

static void test_tables_are_bounded(void **state)
{
    char name[80];
    k8s_buf b;
    prom_doc d = { 0 };
    (void)state;

    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "resource%02d", i);
        tqu_metrics_watch_restart(name);
        tqu_metrics_watch_relist(name);
    }
    memset(name, 'a', 64);
    name[64] = '\0';
    tqu_metrics_watch_restart(name);        /* too long: other */
    tqu_metrics_watch_restart(NULL);        /* other */
    tqu_metrics_watch_restart("");          /* other */
    for (int code = 100; code < 130; code++)
        tqu_metrics_api_request(NULL, "GET", code, 0.01);
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "Phase%d", i);
        tqu_phase_count pc = { name, 1 };
        tqu_metrics_set_phase_counts(&pc, 1);
    }
    render_parse(&b, &d);

    VALUE(&d, 1, "tqu_watch_restarts_total", "resource", "resource15", NULL);
    assert_null(prom_find(&d, "tqu_watch_restarts_total", "resource", "resource16", NULL));
    VALUE(&d, 4 + 3, "tqu_watch_restarts_total", "resource", "other", NULL);
    VALUE(&d, 4, "tqu_watch_relists_total", "resource", "other", NULL);
    VALUE(&d, 1, "tqu_api_requests_total", "verb", "GET", "code", "123", NULL);
    assert_null(prom_find(&d, "tqu_api_requests_total", "verb", "GET", "code", "124", NULL));
    VALUE(&d, 6, "tqu_api_requests_total", "verb", "GET", "code", "other", NULL);
    /* 7 known + 8 extra phases; the last call's phase did not fit */
    VALUE(&d, 0, "tqu_upgrades", "phase", "Phase7", NULL);
    assert_null(prom_find(&d, "tqu_upgrades", "phase", "Phase8", NULL));
    VALUE(&d, 1, "tqu_upgrades", "phase", "other", NULL);
    prom_doc_release(&d);
    k8s_buf_release(&b);

    /* a name of exactly TQU_METRICS_NAME_MAX characters is kept */
    tqu_metrics_reset();
    memset(name, 'b', TQU_METRICS_NAME_MAX);
    name[TQU_METRICS_NAME_MAX] = '\0';
    tqu_metrics_watch_relist(name);
    render_parse(&b, &d);
    VALUE(&d, 1, "tqu_watch_relists_total", "resource", name, NULL);
    prom_doc_release(&d);
    k8s_buf_release(&b);
}

static void test_render_appends_and_fails_cleanly(void **state)
{
    k8s_buf b;
    long n;
    int rc;
    (void)state;

    tqu_metrics_reconcile("success", 0.5);
    tqu_metrics_watch_restart("deployments");

    /* it appends */
    k8s_buf_init(&b, 0);
    assert_int_equal(k8s_buf_adds(&b, "prefix\n"), K8S_OK);
    assert_int_equal(tqu_metrics_render(&b), K8S_OK);
    assert_memory_equal(b.data, "prefix\n# HELP ", 14);
    size_t full = b.len - 7;
    k8s_buf_release(&b);

    /* every allocation failure: K8S_ENOMEM and the buffer as it was */
    for (n = 1;; n++) {
        k8s_buf_init(&b, 0);
        assert_int_equal(k8s_buf_adds(&b, "prefix\n"), K8S_OK);
        failalloc_fail_at(n);
        rc = tqu_metrics_render(&b);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            k8s_buf_release(&b);
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_int_equal(b.len, 7);
        assert_string_equal(b.data, "prefix\n");
        k8s_buf_release(&b);
    }
    assert_true(n > 2);

    /* over the buffer's cap: K8S_ETOOBIG, same promise */
    k8s_buf_init(&b, full / 2);
    assert_int_equal(k8s_buf_adds(&b, "prefix\n"), K8S_OK);
    assert_int_equal(tqu_metrics_render(&b), K8S_ETOOBIG);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "prefix\n");
    k8s_buf_release(&b);
}

/* ------------------------------------------------------------ concurrency */

#define RECORDERS 3
#define ROUNDS 20000

static volatile int recorders_done;

static void *recorder(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < ROUNDS; i++) {
        tqu_metrics_reconcile(i % 2 ? "success" : "requeue", (double)(i % 100) / 1000);
        tqu_metrics_api_request(NULL, id == 0 ? "GET" : "PATCH", i % 3 ? 200 : 409, 0.02);
        tqu_metrics_watch_restart(id == 1 ? "deployments" : "tianqingupgrades");
        tqu_metrics_set_queue_depth(i);
        tqu_metrics_set_leader((int)(i & 1));
    }
    return NULL;
}

typedef struct render_result {
    int renders;
    char err[600];
} render_result;

static void *renderer(void *arg)
{
    render_result *r = arg;
    double last_total = 0, last_count = 0;
    k8s_buf b;
    prom_doc d = { 0 };

    k8s_buf_init(&b, 0);
    do {
        k8s_buf_reset(&b);
        if (tqu_metrics_render(&b) != K8S_OK) {
            snprintf(r->err, sizeof(r->err), "render failed");
            break;
        }
        if (prom_parse(b.data, b.len, &d) != 0) {
            snprintf(r->err, sizeof(r->err), "parse: %s", d.err);
            prom_doc_release(&d);
            break;
        }
        double total = prom_value(&d, "tqu_reconcile_total", "result", "success", NULL) +
                       prom_value(&d, "tqu_reconcile_total", "result", "requeue", NULL);
        double count = prom_value(&d, "tqu_reconcile_duration_seconds_count", NULL);
        /* one snapshot: the counter and the histogram agree */
        if (total != count || total < last_total || count < last_count)
            snprintf(r->err, sizeof(r->err), "inconsistent: total %g count %g (last %g %g)",
                     total, count, last_total, last_count);
        last_total = total;
        last_count = count;
        prom_doc_release(&d);
        r->renders++;
    } while (!r->err[0] && !__atomic_load_n(&recorders_done, __ATOMIC_ACQUIRE));
    k8s_buf_release(&b);
    return NULL;
}

static void test_concurrent_recording_and_rendering(void **state)
{
    pthread_t rec[RECORDERS], ren;
    render_result rr;
    k8s_buf b;
    prom_doc d = { 0 };
    (void)state;

    memset(&rr, 0, sizeof(rr));
    recorders_done = 0;
    assert_int_equal(pthread_create(&ren, NULL, renderer, &rr), 0);
    for (long i = 0; i < RECORDERS; i++)
        assert_int_equal(pthread_create(&rec[i], NULL, recorder, (void *)(intptr_t)i), 0);
    for (int i = 0; i < RECORDERS; i++)
        pthread_join(rec[i], NULL);
    __atomic_store_n(&recorders_done, 1, __ATOMIC_RELEASE);
    pthread_join(ren, NULL);
    if (rr.err[0])
        fail_msg("%s", rr.err);
    assert_true(rr.renders > 0);

    render_parse(&b, &d);
    VALUE(&d, RECORDERS * ROUNDS / 2, "tqu_reconcile_total", "result", "success", NULL);
    VALUE(&d, RECORDERS * ROUNDS / 2, "tqu_reconcile_total", "result", "requeue", NULL);
    VALUE(&d, RECORDERS * ROUNDS, "tqu_reconcile_duration_seconds_count", NULL);
    /* i % 100 / 1000 <= 0.005 for i % 100 in 0..5: 6 in every 100 */
    VALUE(&d, RECORDERS * ROUNDS * 6 / 100, "tqu_reconcile_duration_seconds_bucket", "le", "0.005",
          NULL);
    double per = ROUNDS - (ROUNDS + 2) / 3;     /* i % 3 != 0 */
    VALUE(&d, per, "tqu_api_requests_total", "verb", "GET", "code", "200", NULL);
    VALUE(&d, ROUNDS - per, "tqu_api_requests_total", "verb", "GET", "code", "409", NULL);
    VALUE(&d, 2 * per, "tqu_api_requests_total", "verb", "PATCH", "code", "200", NULL);
    VALUE(&d, ROUNDS, "tqu_watch_restarts_total", "resource", "deployments", NULL);
    VALUE(&d, 2 * ROUNDS, "tqu_watch_restarts_total", "resource", "tianqingupgrades", NULL);
    VALUE(&d, ROUNDS - 1, "tqu_workqueue_depth", NULL);
    VALUE(&d, 1, "tqu_leader", NULL);
    prom_doc_release(&d);
    k8s_buf_release(&b);
}

/* A workflow's labelled counter: shown once registered (no series), one
 * series per label values, values escaped, bounded with an "other" series. */
static const tqu_counter_family drift = {
    "tqu_test_drift_corrections_total", "Settings put back.", { "namespace", "name", "item" },
};
static const tqu_counter_family plain = { "tqu_test_plain_total", "No labels.", { NULL } };

static void test_workflow_counters(void **state)
{
    char item[32];
    k8s_buf b;
    prom_doc d = { 0 };
    (void)state;

    tqu_metrics_register(&drift);
    tqu_metrics_register(&drift);           /* twice: one family */
    render_parse(&b, &d);
    assert_type(&d, "tqu_test_drift_corrections_total", "counter");
    assert_null(prom_find(&d, "tqu_test_drift_corrections_total", NULL));
    assert_int_equal(strstr(strstr(b.data, "# TYPE tqu_test_drift_corrections_total") + 1,
                            "# TYPE tqu_test_drift_corrections_total") == NULL, 1);
    prom_doc_release(&d);
    k8s_buf_release(&b);

    tqu_metrics_count(&drift, "ns-a", "remedies", "global.maxRequestPerUnit");
    tqu_metrics_count(&drift, "ns-a", "remedies", "global.maxRequestPerUnit");
    tqu_metrics_count(&drift, "ns-a", "remedies", "edge2.maxClients");
    tqu_metrics_count(&drift, "ns-b", "q\"uote", "x\ny");
    tqu_metrics_count(&plain, NULL, NULL, NULL);     /* registered at its first count */
    render_parse(&b, &d);
    VALUE(&d, 2, "tqu_test_drift_corrections_total", "namespace", "ns-a", "name", "remedies",
          "item", "global.maxRequestPerUnit", NULL);
    VALUE(&d, 1, "tqu_test_drift_corrections_total", "namespace", "ns-a", "name", "remedies",
          "item", "edge2.maxClients", NULL);
    VALUE(&d, 1, "tqu_test_drift_corrections_total", "namespace", "ns-b", "name", "q\"uote",
          "item", "x\ny", NULL);
    assert_non_null(strstr(b.data, "\ntqu_test_drift_corrections_total{namespace=\"ns-a\",name=\"remedies\","
                                   "item=\"global.maxRequestPerUnit\"} 2\n"));
    assert_non_null(strstr(b.data, "\ntqu_test_plain_total 1\n"));
    prom_doc_release(&d);
    k8s_buf_release(&b);

    /* bounded: 512 series in all, the last 8 places kept for "other" */
    for (int i = 0; i < 600; i++) {
        snprintf(item, sizeof(item), "item%03d", i);
        tqu_metrics_count(&drift, "ns-c", "many", item);
    }
    render_parse(&b, &d);
    /* 4 series so far (3 drift, 1 plain): 504 - 4 = 500 new ones fit */
    VALUE(&d, 1, "tqu_test_drift_corrections_total", "namespace", "ns-c", "name", "many", "item", "item499", NULL);
    assert_null(prom_find(&d, "tqu_test_drift_corrections_total", "namespace", "ns-c", "name", "many", "item", "item500", NULL));
    VALUE(&d, 100, "tqu_test_drift_corrections_total", "namespace", "other", "name", "other", "item", "other", NULL);
    VALUE(&d, 2, "tqu_test_drift_corrections_total", "namespace", "ns-a", "name", "remedies",
          "item", "global.maxRequestPerUnit", NULL);
    prom_doc_release(&d);
    k8s_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_render_parses_with_recorded_values, setup),
        cmocka_unit_test_setup(test_exact_lines, setup),
        cmocka_unit_test_setup(test_label_escaping, setup),
        cmocka_unit_test_setup(test_parser_rejects, setup),
        cmocka_unit_test_setup(test_tables_are_bounded, setup),
        cmocka_unit_test_setup(test_workflow_counters, setup),
        cmocka_unit_test_setup(test_render_appends_and_fails_cleanly, setup),
        cmocka_unit_test_setup(test_concurrent_recording_and_rendering, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
