/*
 * test_status_events.c - status writes, finalizers and Events against a
 * real kube-apiserver (tests/cluster/with-cluster.sh), with concurrent
 * writers:
 *
 *  - k8s_status_update: another client writes the status between our read
 *    and our PUT, so the PUT gets 409 Conflict; the update re-reads, calls
 *    the mutate function again and succeeds; the stored status has both
 *    writers' fields. Nothing is sent when nothing changes.
 *  - k8s_finalizer_add/remove from a stale copy while another client
 *    changed the metadata: the JSON patch's `test` of the resourceVersion
 *    refuses the first attempt, the retry (after a re-read) succeeds, and
 *    the other writer's labels and finalizer are kept.
 *  - Events: the same reason and message twice is one Event with count 2
 *    and a later lastTimestamp; another message is a new Event; the
 *    per-object rate limit drops the excess (K8S_ESTOPPED) without failing,
 *    and does not affect another object.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "k8s.h"
#include "events.h"
#include "status.h"
#include "testutil.h"

static char ns[64];
static const k8s_resource TQU = { "upgrade.tianqing.io", "v1alpha1", "tianqingupgrades", 1 };

/* Requests seen by a client, as "VERB code" in order. */
struct trace {
    char log[32][24];
    int n;
};

static void observe(void *ud, const char *verb, long code, double s)
{
    struct trace *t = ud;
    (void)s;
    if (t->n < 32)
        snprintf(t->log[t->n++], sizeof(t->log[0]), "%s %ld", verb, code);
}

static void trace_expect(const struct trace *t, int n, ...)
{
    va_list ap;
    char all[1024] = "";
    for (int i = 0; i < t->n; i++) {
        strncat(all, t->log[i], sizeof(all) - strlen(all) - 1);
        strncat(all, "; ", sizeof(all) - strlen(all) - 1);
    }
    if (t->n != n)
        fail_msg("want %d requests, got %d: %s", n, t->n, all);
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        if (strcmp(t->log[i], want) != 0)
            fail_msg("request %d: want %s, got %s (%s)", i, want, t->log[i], all);
    }
    va_end(ap);
}

static cJSON *create_tqu(k8s_client *c, const char *name)
{
    char buf[1024];
    k8s_err err;
    cJSON *out = NULL;
    snprintf(buf, sizeof(buf),
             "{\"apiVersion\":\"upgrade.tianqing.io/v1alpha1\",\"kind\":\"TianqingUpgrade\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},"
             "\"spec\":{\"fromVersion\":\"10.6.0.2600\",\"initialVersion\":\"10.6.0.2000\","
             "\"toVersion\":\"10.7.0.2800\",\"machines\":6,\"paused\":true,"
             "\"ssh\":{\"passwordSecretRef\":{\"name\":\"tianqing-ssh\",\"key\":\"password\"}}}}",
             name, ns);
    cJSON *o = cJSON_Parse(buf);
    assert_non_null(o);
    int rc = k8s_create(c, &TQU, ns, o, &out, &err);
    cJSON_Delete(o);
    if (rc)
        fail_msg("create %s: %s", name, err.message);
    return out;
}

/* ------------------------------------------------- status: 409 retried */

struct racer {
    k8s_client *other;     /* the concurrent writer */
    const char *name;
    int calls;
};

/* Ours: observedGeneration, phase and a condition. On the first call,
 * another client writes status.message first, so our PUT must conflict. */
static int mutate(void *ud, const cJSON *obj, cJSON *status)
{
    struct racer *r = ud;
    long long gen = k8s_json_int(obj, 0, "metadata", "generation", NULL);
    r->calls++;
    if (r->calls == 1) {
        k8s_err err;
        cJSON *live = NULL;
        assert_int_equal(k8s_get(r->other, &TQU, ns, r->name, &live, &err), K8S_OK);
        cJSON *st = cJSON_GetObjectItemCaseSensitive(live, "status");
        if (!st)
            st = cJSON_AddObjectToObject(live, "status");
        cJSON_DeleteItemFromObjectCaseSensitive(st, "message");
        cJSON_AddStringToObject(st, "message", "from the other writer");
        if (k8s_replace_status(r->other, &TQU, ns, r->name, live, NULL, &err))
            fail_msg("concurrent status write: %s", err.message);
        cJSON_Delete(live);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(status, "observedGeneration");
    cJSON_AddNumberToObject(status, "observedGeneration", (double)gen);
    cJSON_DeleteItemFromObjectCaseSensitive(status, "phase");
    cJSON_AddStringToObject(status, "phase", "Pending");
    if (k8s_condition_set(status, "Reconciling", "True", "Observed", "seen", gen) < 0)
        return K8S_ENOMEM;
    return 0;
}

static int no_change(void *ud, const cJSON *obj, cJSON *status)
{
    (void)obj;
    (void)status;
    (*(int *)ud)++;
    return 0;
}

static void test_status_conflict_retried(void **state)
{
    k8s_config cfg, cfg2;
    k8s_err err;
    struct trace t = { 0 };
    k8s_client *c = test_client("TQU_KUBECONFIG_CERT", &cfg);
    k8s_client *other = test_client("TQU_KUBECONFIG_TOKEN", &cfg2);
    cJSON *obj, *out = NULL;
    int written = 0;
    (void)state;

    obj = create_tqu(c, "conflict");
    k8s_client_set_observer(c, observe, &t);
    struct racer r = { .other = other, .name = "conflict" };
    /* from the caller's copy (no first GET) */
    int rc = k8s_status_update(c, &TQU, ns, "conflict", obj, mutate, &r, &written, &out, &err);
    if (rc)
        fail_msg("status update: %s", err.message);
    assert_int_equal(r.calls, 2);
    assert_int_equal(written, 1);
    trace_expect(&t, 3, "PUT 409", "GET 200", "PUT 200");
    /* both writers' fields are in the stored status */
    assert_string_equal(k8s_json_str(out, "status", "message", NULL), "from the other writer");
    assert_int_equal(k8s_json_int(out, -1, "status", "observedGeneration", NULL), 1);
    assert_string_equal(k8s_json_str(out, "status", "phase", NULL), "Pending");
    cJSON *cond = k8s_condition_get(k8s_json_get(out, "status", NULL), "Reconciling");
    assert_non_null(cond);
    assert_string_equal(k8s_json_str(cond, "status", NULL), "True");
    cJSON_Delete(out);
    out = NULL;

    /* and as the server has it */
    assert_int_equal(k8s_get(other, &TQU, ns, "conflict", &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "status", "message", NULL), "from the other writer");
    assert_int_equal(k8s_json_int(out, -1, "status", "observedGeneration", NULL), 1);

    /* nothing to change: no write at all */
    t.n = 0;
    int calls = 0;
    rc = k8s_status_update(c, &TQU, ns, "conflict", out, no_change, &calls, &written, NULL, &err);
    assert_int_equal(rc, K8S_OK);
    assert_int_equal(calls, 1);
    assert_int_equal(written, 0);
    assert_int_equal(t.n, 0);

    cJSON_Delete(out);
    cJSON_Delete(obj);
    k8s_client_free(c);
    k8s_client_free(other);
    k8s_config_release(&cfg);
    k8s_config_release(&cfg2);
}

/* ------------------------------ finalizers under a concurrent change */

static void test_finalizer_guarded_by_test_op(void **state)
{
    k8s_config cfg, cfg2;
    k8s_err err;
    struct trace t = { 0 };
    k8s_client *c = test_client("TQU_KUBECONFIG_CERT", &cfg);
    k8s_client *other = test_client("TQU_KUBECONFIG_TOKEN", &cfg2);
    cJSON *stale, *patch, *live = NULL;
    const char *f = "upgrade.tianqing.io/test";
    (void)state;

    stale = create_tqu(c, "fin");
    /* the other writer labels it after our read */
    patch = cJSON_Parse("{\"metadata\":{\"labels\":{\"other\":\"yes\"}}}");
    assert_int_equal(k8s_patch(other, &TQU, ns, "fin", NULL, K8S_CT_MERGE_PATCH, patch, NULL, &err), K8S_OK);
    cJSON_Delete(patch);

    k8s_client_set_observer(c, observe, &t);
    if (k8s_finalizer_add(c, &TQU, stale, f, &err))
        fail_msg("finalizer add: %s", err.message);
    /* the guard refused the stale attempt; the retry from a fresh read won */
    trace_expect(&t, 3, "PATCH 422", "GET 200", "PATCH 200");
    assert_int_equal(k8s_get(c, &TQU, ns, "fin", &live, &err), K8S_OK);
    assert_true(k8s_has_finalizer(live, f));
    assert_string_equal(k8s_json_str(live, "metadata", "labels", "other", NULL), "yes");

    /* already there: no request */
    t.n = 0;
    assert_int_equal(k8s_finalizer_add(c, &TQU, live, f, &err), K8S_OK);
    assert_int_equal(t.n, 0);

    /* remove from a stale copy while the other writer adds its own finalizer */
    patch = cJSON_Parse("[{\"op\":\"add\",\"path\":\"/metadata/finalizers/-\",\"value\":\"other.example/keep\"}]");
    assert_int_equal(k8s_patch(other, &TQU, ns, "fin", NULL, K8S_CT_JSON_PATCH, patch, NULL, &err), K8S_OK);
    cJSON_Delete(patch);
    t.n = 0;
    if (k8s_finalizer_remove(c, &TQU, live, f, &err))
        fail_msg("finalizer remove: %s", err.message);
    trace_expect(&t, 3, "PATCH 422", "GET 200", "PATCH 200");
    cJSON_Delete(live);
    live = NULL;
    assert_int_equal(k8s_get(c, &TQU, ns, "fin", &live, &err), K8S_OK);
    assert_false(k8s_has_finalizer(live, f));
    assert_true(k8s_has_finalizer(live, "other.example/keep"));   /* not overwritten */
    assert_string_equal(k8s_json_str(live, "metadata", "labels", "other", NULL), "yes");

    /* let it go */
    patch = cJSON_Parse("{\"metadata\":{\"finalizers\":null}}");
    k8s_patch(other, &TQU, ns, "fin", NULL, K8S_CT_MERGE_PATCH, patch, NULL, &err);
    cJSON_Delete(patch);
    cJSON_Delete(live);
    cJSON_Delete(stale);
    k8s_client_free(c);
    k8s_client_free(other);
    k8s_config_release(&cfg);
    k8s_config_release(&cfg2);
}

/* ---------------------------------------------------------------- Events */

struct ev_list {
    const char *uid;
    cJSON *items;   /* array of the object's Events (copies) */
};

static int collect_event(void *ud, const cJSON *item, int restart)
{
    struct ev_list *l = ud;
    if (restart) {
        cJSON_Delete(l->items);
        l->items = cJSON_CreateArray();
    }
    if (!item)
        return 0;
    const char *uid = k8s_json_str(item, "involvedObject", "uid", NULL);
    if (uid && strcmp(uid, l->uid) == 0)
        cJSON_AddItemToArray(l->items, cJSON_Duplicate(item, 1));
    return 0;
}

/* The Events about uid (caller frees). */
static cJSON *events_of(k8s_client *c, const char *uid)
{
    k8s_err err;
    struct ev_list l = { .uid = uid, .items = cJSON_CreateArray() };
    if (k8s_list(c, &K8S_EVENTS, ns, NULL, collect_event, &l, NULL, &err))
        fail_msg("list events: %s", err.message);
    return l.items;
}

static cJSON *event_with_message(cJSON *items, const char *msg)
{
    cJSON *e;
    cJSON_ArrayForEach(e, items) {
        const char *m = k8s_json_str(e, "message", NULL);
        if (m && strcmp(m, msg) == 0)
            return e;
    }
    return NULL;
}

static void test_events_aggregate_and_rate_limit(void **state)
{
    k8s_config cfg;
    k8s_err err;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    k8s_recorder *r = NULL;
    (void)state;

    assert_int_equal(k8s_recorder_new(&cfg, "test-events", "host-1", &r, &err), K8S_OK);
    cJSON *obj = create_tqu(c, "ev");
    const char *uid = k8s_json_str(obj, "metadata", "uid", NULL);

    assert_int_equal(k8s_event(r, obj, "Normal", "Observed", "Observed generation %d", 1), K8S_OK);
    cJSON *items = events_of(c, uid);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    cJSON *e = cJSON_GetArrayItem(items, 0);
    assert_int_equal(k8s_json_int(e, 0, "count", NULL), 1);
    char first_last[64];
    snprintf(first_last, sizeof(first_last), "%s", k8s_json_str(e, "lastTimestamp", NULL));
    char ename[256];
    snprintf(ename, sizeof(ename), "%s", k8s_json_str(e, "metadata", "name", NULL));
    assert_string_equal(k8s_json_str(e, "involvedObject", "kind", NULL), "TianqingUpgrade");
    assert_string_equal(k8s_json_str(e, "reason", NULL), "Observed");
    assert_string_equal(k8s_json_str(e, "source", "component", NULL), "test-events");
    cJSON_Delete(items);

    /* the same again, a second later: one Event, count 2, later lastTimestamp */
    sleep(1);
    usleep(100 * 1000);
    assert_int_equal(k8s_event(r, obj, "Normal", "Observed", "Observed generation %d", 1), K8S_OK);
    items = events_of(c, uid);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    e = cJSON_GetArrayItem(items, 0);
    assert_string_equal(k8s_json_str(e, "metadata", "name", NULL), ename);
    assert_int_equal(k8s_json_int(e, 0, "count", NULL), 2);
    assert_true(strcmp(k8s_json_str(e, "lastTimestamp", NULL), first_last) > 0);
    assert_string_equal(k8s_json_str(e, "firstTimestamp", NULL), first_last);
    cJSON_Delete(items);

    /* a different message: a new Event */
    assert_int_equal(k8s_event(r, obj, "Normal", "Observed", "Observed generation %d", 2), K8S_OK);
    items = events_of(c, uid);
    assert_int_equal(cJSON_GetArraySize(items), 2);
    assert_int_equal(k8s_json_int(event_with_message(items, "Observed generation 1"), 0, "count", NULL), 2);
    assert_int_equal(k8s_json_int(event_with_message(items, "Observed generation 2"), 0, "count", NULL), 1);
    cJSON_Delete(items);

    /* rate limit: burst 3, no refill to speak of; the excess is dropped */
    k8s_recorder_set_limits(r, 3, 3600);
    int ok = 0, dropped = 0;
    for (int i = 0; i < 10; i++) {
        int rc = k8s_event(r, obj, "Warning", "Looping", "attempt %d", i);
        if (rc == K8S_OK)
            ok++;
        else if (rc == K8S_ESTOPPED)
            dropped++;
        else
            fail_msg("event %d: %s", i, k8s_strerror(rc));
    }
    assert_int_equal(ok, 3);
    assert_int_equal(dropped, 7);
    items = events_of(c, uid);
    assert_int_equal(cJSON_GetArraySize(items), 2 + 3);
    assert_non_null(event_with_message(items, "attempt 2"));
    assert_null(event_with_message(items, "attempt 3"));
    cJSON_Delete(items);
    /* another object has its own bucket */
    cJSON *obj2 = create_tqu(c, "ev2");
    assert_int_equal(k8s_event(r, obj2, "Normal", "Observed", "Observed generation %d", 1), K8S_OK);
    items = events_of(c, k8s_json_str(obj2, "metadata", "uid", NULL));
    assert_int_equal(cJSON_GetArraySize(items), 1);
    cJSON_Delete(items);

    cJSON_Delete(obj);
    cJSON_Delete(obj2);
    k8s_recorder_free(r);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

int main(void)
{
    k8s_config cfg;
    k8s_err err;
    char buf[256];

    snprintf(ns, sizeof(ns), "it-status-%ld", (long)getpid());
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    snprintf(buf, sizeof(buf), "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", ns);
    cJSON *o = cJSON_Parse(buf);
    if (k8s_create(c, &K8S_NAMESPACES, NULL, o, NULL, &err)) {
        fprintf(stderr, "create namespace %s: %s\n", ns, err.message);
        return 1;
    }
    cJSON_Delete(o);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_conflict_retried),
        cmocka_unit_test(test_finalizer_guarded_by_test_op),
        cmocka_unit_test(test_events_aggregate_and_rate_limit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    k8s_delete(c, &K8S_NAMESPACES, NULL, ns, NULL);
    k8s_client_free(c);
    k8s_config_release(&cfg);
    return rc;
}
