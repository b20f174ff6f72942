/*
 * test_client.c - the k8s/ client against a real kube-apiserver and etcd
 * (started by tests/cluster/with-cluster.sh; see TQU_* variables there).
 *
 * Covers: token and client-certificate identities with the server's CA
 * verified; a wrong CA and a wrong tls-server-name refused; CRUD on a
 * ConfigMap; 404/409/422 with reason, message and causes; a
 * TianqingUpgrade's status written through /status without touching spec
 * or generation; a strategic merge patch on a Deployment merging
 * containers and volumes by name; a list of 1,200 objects in pages of 500;
 * a watch stream delivering events line by line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "k8s.h"
#include "testutil.h"

static char ns[64];

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

static cJSON *configmap(const char *name, const char *value)
{
    cJSON *cm = cJSON_CreateObject();
    cJSON_AddStringToObject(cm, "apiVersion", "v1");
    cJSON_AddStringToObject(cm, "kind", "ConfigMap");
    cJSON *md = cJSON_AddObjectToObject(cm, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    cJSON *data = cJSON_AddObjectToObject(cm, "data");
    cJSON_AddStringToObject(data, "k", value);
    return cm;
}

static void ensure_namespace(k8s_client *c, const char *name)
{
    char buf[256];
    k8s_err err;
    snprintf(buf, sizeof(buf), "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", name);
    cJSON *o = parse(buf);
    int rc = k8s_create(c, &K8S_NAMESPACES, NULL, o, NULL, &err);
    cJSON_Delete(o);
    if (rc && !k8s_err_is(&err, "AlreadyExists"))
        fail_msg("create namespace %s: %s", name, err.message);
}

/* --------------------------------------------------------- identities */

static void identity_can_read(const char *kubeconfig_env)
{
    k8s_config cfg;
    k8s_err err;
    cJSON *out = NULL;
    k8s_client *c = test_client(kubeconfig_env, &cfg);
    int rc = k8s_get(c, &K8S_NAMESPACES, NULL, "default", &out, &err);
    assert_int_equal(rc, K8S_OK);
    assert_string_equal(k8s_json_str(out, "metadata", "name", NULL), "default");
    cJSON_Delete(out);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

static void test_token_identity(void **state)
{
    (void)state;
    identity_can_read("TQU_KUBECONFIG_TOKEN");
}

static void test_cert_identity(void **state)
{
    (void)state;
    identity_can_read("TQU_KUBECONFIG_CERT");
}

/* A wrong token is refused with 401 Unauthorized, and the token never
 * appears in the error. */
static void test_bad_token_unauthorized(void **state)
{
    k8s_config cfg;
    k8s_err err;
    k8s_client *c = NULL;
    (void)state;
    assert_int_equal(k8s_config_load(&cfg, test_env("TQU_KUBECONFIG_TOKEN"), NULL, &err), K8S_OK);
    free(cfg.token);
    free(cfg.token_file);
    cfg.token_file = NULL;
    cfg.token = strdup("not-the-right-token-s3cr3t");
    assert_int_equal(k8s_client_new(&cfg, NULL, &c, &err), K8S_OK);
    int rc = k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err);
    assert_int_equal(rc, K8S_EAPI);
    assert_int_equal(err.code, 401);
    assert_string_equal(err.reason, "Unauthorized");
    assert_null(strstr(err.message, "s3cr3t"));
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* The system CA bundle is not the cluster's CA: verification must fail. */
static void test_wrong_ca_refused(void **state)
{
    k8s_config cfg;
    k8s_err err;
    k8s_client *c = NULL;
    (void)state;
    assert_int_equal(k8s_config_load(&cfg, test_env("TQU_KUBECONFIG_CERT"), NULL, &err), K8S_OK);
    /* A CA that signed nothing of this cluster: the client cert itself. */
    free(cfg.ca.data);
    cfg.ca.data = malloc(cfg.client_cert.len);
    memcpy(cfg.ca.data, cfg.client_cert.data, cfg.client_cert.len);
    cfg.ca.len = cfg.client_cert.len;
    k8s_client_opts o = { .max_retries = -1 };
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    int rc = k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err);
    assert_int_equal(rc, K8S_ETLS);
    assert_non_null(strstr(err.message, cfg.server));
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* tls-server-name: "localhost" is in the serving cert, another name is not. */
static void test_tls_server_name(void **state)
{
    k8s_config cfg;
    k8s_err err;
    k8s_client *c = NULL;
    k8s_client_opts o = { .max_retries = -1 };
    (void)state;
    assert_int_equal(k8s_config_load(&cfg, test_env("TQU_KUBECONFIG_CERT"), NULL, &err), K8S_OK);
    cfg.tls_server_name = strdup("localhost");
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    assert_int_equal(k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err), K8S_OK);
    k8s_client_free(c);
    free(cfg.tls_server_name);
    cfg.tls_server_name = strdup("not-in-the-cert.example");
    assert_int_equal(k8s_client_new(&cfg, &o, &c, &err), K8S_OK);
    assert_int_equal(k8s_get(c, &K8S_NAMESPACES, NULL, "default", NULL, &err), K8S_ETLS);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ------------------------------------------------------------- CRUD */

static void test_configmap_crud_and_errors(void **state)
{
    k8s_config cfg;
    k8s_err err;
    cJSON *out = NULL, *cm;
    k8s_client *c = test_client("TQU_KUBECONFIG_TOKEN", &cfg);
    (void)state;

    cm = configmap("crud", "one");
    assert_int_equal(k8s_create(c, &K8S_CONFIGMAPS, ns, cm, &out, &err), K8S_OK);
    const char *rv1 = k8s_json_str(out, "metadata", "resourceVersion", NULL);
    assert_non_null(rv1);
    char *stale_rv = strdup(rv1);
    cJSON_Delete(out);

    /* 409 AlreadyExists */
    assert_int_equal(k8s_create(c, &K8S_CONFIGMAPS, ns, cm, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "AlreadyExists");
    assert_non_null(strstr(err.message, "\"crud\" already exists"));

    /* get */
    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, ns, "crud", &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "data", "k", NULL), "one");
    cJSON_Delete(out);

    /* replace (PUT) with the current resourceVersion */
    cJSON_AddStringToObject(cJSON_GetObjectItem(cm, "metadata"), "resourceVersion", stale_rv);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cm, "data"), "k", cJSON_CreateString("two"));
    assert_int_equal(k8s_replace(c, &K8S_CONFIGMAPS, ns, "crud", cm, &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "data", "k", NULL), "two");
    cJSON_Delete(out);

    /* 409 Conflict: the same stale resourceVersion again */
    assert_int_equal(k8s_replace(c, &K8S_CONFIGMAPS, ns, "crud", cm, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "Conflict");
    assert_non_null(strstr(err.message, "the object has been modified"));

    /* merge patch */
    cJSON *patch = parse("{\"data\":{\"extra\":\"x\"}}");
    assert_int_equal(k8s_patch(c, &K8S_CONFIGMAPS, ns, "crud", NULL, K8S_CT_MERGE_PATCH, patch, &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "data", "k", NULL), "two");
    assert_string_equal(k8s_json_str(out, "data", "extra", NULL), "x");
    cJSON_Delete(out);
    cJSON_Delete(patch);

    /* JSON patch with a failing test op: 422 Invalid or 409, never applied */
    patch = parse("[{\"op\":\"test\",\"path\":\"/data/k\",\"value\":\"nope\"},"
                  "{\"op\":\"replace\",\"path\":\"/data/k\",\"value\":\"three\"}]");
    assert_int_equal(k8s_patch(c, &K8S_CONFIGMAPS, ns, "crud", NULL, K8S_CT_JSON_PATCH, patch, NULL, &err), K8S_EAPI);
    assert_true(err.code == 422 || err.code == 409);
    cJSON_Delete(patch);

    /* delete, then 404 NotFound with reason and message */
    assert_int_equal(k8s_delete(c, &K8S_CONFIGMAPS, ns, "crud", &err), K8S_OK);
    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, ns, "crud", NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.reason, "NotFound");
    assert_true(k8s_err_is(&err, "NotFound"));
    assert_non_null(strstr(err.message, "configmaps \"crud\" not found"));
    assert_int_equal(k8s_delete(c, &K8S_CONFIGMAPS, ns, "crud", &err), K8S_EAPI);
    assert_int_equal(err.code, 404);

    /* 422 Invalid with causes naming the field */
    cJSON *bad = configmap("Bad_Name!", "x");
    assert_int_equal(k8s_create(c, &K8S_CONFIGMAPS, ns, bad, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_non_null(strstr(err.causes, "metadata.name"));
    char line[2048];
    k8s_err_str(&err, line, sizeof(line));
    assert_non_null(strstr(line, "Invalid"));
    assert_non_null(strstr(line, "(422)"));
    cJSON_Delete(bad);

    free(stale_rv);
    cJSON_Delete(cm);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* A name with characters that need escaping reaches the server intact. */
static void test_percent_encoding(void **state)
{
    k8s_config cfg;
    k8s_err err;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    (void)state;
    /* Unescaped, "?" would start a query and "&d=e" add a parameter: the
     * server must see the whole literal name. */
    assert_int_equal(k8s_get(c, &K8S_CONFIGMAPS, ns, "a b?c&d=e", NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 404);
    assert_non_null(strstr(err.message, "configmaps \"a b?c&d=e\" not found"));
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ------------------------------------------------ TianqingUpgrade status */

static const k8s_resource TQU = { "upgrade.tianqing.io", "v1alpha1", "tianqingupgrades", 1 };

static void test_tqu_status_subresource(void **state)
{
    k8s_config cfg;
    k8s_err err;
    cJSON *out = NULL, *obj;
    k8s_client *c = test_client("TQU_KUBECONFIG_CERT", &cfg);
    (void)state;

    obj = parse("{\"apiVersion\":\"upgrade.tianqing.io/v1alpha1\",\"kind\":\"TianqingUpgrade\","
                "\"metadata\":{\"name\":\"status-test\"},"
                "\"spec\":{\"fromVersion\":\"10.6.0.2600\",\"initialVersion\":\"10.6.0.2000\","
                "\"toVersion\":\"10.7.0.2800\",\"machines\":6,"
                "\"ssh\":{\"passwordSecretRef\":{\"name\":\"tianqing-ssh\",\"key\":\"password\"}}}}");
    assert_int_equal(k8s_create(c, &TQU, ns, obj, &out, &err), K8S_OK);
    long long gen = k8s_json_int(out, -1, "metadata", "generation", NULL);
    assert_int_equal(gen, 1);
    /* defaults from the CRD schema were applied at admission */
    assert_int_equal(k8s_json_int(out, 0, "spec", "ssh", "port", NULL), 22);
    cJSON_Delete(out);
    cJSON_Delete(obj);

    /* merge patch on /status: spec changes in the same body are ignored */
    cJSON *patch = parse("{\"spec\":{\"machines\":9},"
                         "\"status\":{\"phase\":\"Running\",\"currentStep\":\"Validate\",\"observedGeneration\":1}}");
    assert_int_equal(k8s_patch(c, &TQU, ns, "status-test", "status", K8S_CT_MERGE_PATCH, patch, &out, &err), K8S_OK);
    cJSON_Delete(patch);
    cJSON_Delete(out);

    assert_int_equal(k8s_get(c, &TQU, ns, "status-test", &out, &err), K8S_OK);
    assert_string_equal(k8s_json_str(out, "status", "phase", NULL), "Running");
    assert_string_equal(k8s_json_str(out, "status", "currentStep", NULL), "Validate");
    assert_int_equal(k8s_json_int(out, 0, "spec", "machines", NULL), 6);
    assert_int_equal(k8s_json_int(out, -1, "metadata", "generation", NULL), 1);

    /* PUT /status with the object read back */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(out, "status"), "phase", cJSON_CreateString("Succeeded"));
    cJSON *after = NULL;
    assert_int_equal(k8s_replace_status(c, &TQU, ns, "status-test", out, &after, &err), K8S_OK);
    assert_string_equal(k8s_json_str(after, "status", "phase", NULL), "Succeeded");
    assert_int_equal(k8s_json_int(after, -1, "metadata", "generation", NULL), 1);
    cJSON_Delete(after);

    /* the same stale object again: 409 Conflict */
    assert_int_equal(k8s_replace_status(c, &TQU, ns, "status-test", out, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "Conflict");
    cJSON_Delete(out);

    /* a strategic merge patch is refused by custom resources: 415 */
    patch = parse("{\"spec\":{\"paused\":true}}");
    assert_int_equal(k8s_patch(c, &TQU, ns, "status-test", NULL, K8S_CT_STRATEGIC_PATCH, patch, NULL, &err), K8S_EAPI);
    assert_int_equal(err.code, 415);
    cJSON_Delete(patch);

    assert_int_equal(k8s_delete(c, &TQU, ns, "status-test", &err), K8S_OK);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ------------------------------------------------ strategic merge patch */

static void test_deployment_strategic_merge(void **state)
{
    k8s_config cfg;
    k8s_err err;
    cJSON *out = NULL, *obj, *patch;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    (void)state;

    obj = parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"cdn\"},"
                "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"cdn\"}},"
                "\"template\":{\"metadata\":{\"labels\":{\"app\":\"cdn\"}},\"spec\":{"
                "\"containers\":[{\"name\":\"darwin-cdn\",\"image\":\"cdn:1\","
                "\"volumeMounts\":[{\"name\":\"old\",\"mountPath\":\"/old\"}]},"
                "{\"name\":\"sidecar\",\"image\":\"side:1\"}],"
                "\"volumes\":[{\"name\":\"old\",\"emptyDir\":{}}]}}}}");
    assert_int_equal(k8s_create(c, &K8S_DEPLOYMENTS, ns, obj, NULL, &err), K8S_OK);
    cJSON_Delete(obj);

    patch = parse("{\"spec\":{\"template\":{\"spec\":{"
                  "\"containers\":[{\"name\":\"darwin-cdn\",\"volumeMounts\":"
                  "[{\"name\":\"darwin-cdn-data\",\"mountPath\":\"/home/s/darwin-cdn/data/\"}]}],"
                  "\"volumes\":[{\"name\":\"darwin-cdn-data\",\"hostPath\":"
                  "{\"path\":\"/qaxdata/s/services/data/darwin-cdn-data\",\"type\":\"DirectoryOrCreate\"}}]}}}}");
    assert_int_equal(k8s_patch(c, &K8S_DEPLOYMENTS, ns, "cdn", NULL, K8S_CT_STRATEGIC_PATCH, patch, &out, &err), K8S_OK);
    cJSON_Delete(patch);

    cJSON *pod = k8s_json_get(out, "spec", "template", "spec", NULL);
    cJSON *vols = cJSON_GetObjectItem(pod, "volumes");
    cJSON *ctrs = cJSON_GetObjectItem(pod, "containers");
    assert_int_equal(cJSON_GetArraySize(vols), 2);            /* old one survived */
    assert_int_equal(cJSON_GetArraySize(ctrs), 2);            /* merged by name */
    int seen_old = 0, seen_new = 0;
    cJSON *v;
    cJSON_ArrayForEach(v, vols) {
        const char *n = k8s_json_str(v, "name", NULL);
        if (strcmp(n, "old") == 0)
            seen_old = 1;
        if (strcmp(n, "darwin-cdn-data") == 0) {
            seen_new = 1;
            assert_string_equal(k8s_json_str(v, "hostPath", "type", NULL), "DirectoryOrCreate");
        }
    }
    assert_true(seen_old && seen_new);
    cJSON *cdn = cJSON_GetArrayItem(ctrs, 0);
    assert_string_equal(k8s_json_str(cdn, "name", NULL), "darwin-cdn");
    assert_string_equal(k8s_json_str(cdn, "image", NULL), "cdn:1");   /* untouched */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cdn, "volumeMounts")), 2);
    assert_string_equal(k8s_json_str(cJSON_GetArrayItem(ctrs, 1), "image", NULL), "side:1");
    cJSON_Delete(out);

    assert_int_equal(k8s_delete(c, &K8S_DEPLOYMENTS, ns, "cdn", &err), K8S_OK);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ---------------------------------------------------------- pagination */

struct counter {
    int items, restarts;
    long gets;
};

static int count_item(void *ud, const cJSON *item, int restart)
{
    struct counter *n = ud;
    if (restart) {
        n->items = 0;
        n->restarts++;
    }
    if (!item)
        return 0;
    assert_non_null(k8s_json_str(item, "metadata", "name", NULL));
    n->items++;
    return 0;
}

static void count_requests(void *ud, const char *verb, long code, double s)
{
    struct counter *n = ud;
    (void)s;
    if (strcmp(verb, "LIST") == 0 && code == 200)
        n->gets++;
}

static void test_list_1200_in_pages_of_500(void **state)
{
    k8s_config cfg;
    k8s_err err;
    char name[64], lns[80];
    struct counter n = { 0 };
    char *rv = NULL;
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    (void)state;

    snprintf(lns, sizeof(lns), "%s-list", ns);
    ensure_namespace(c, lns);
    for (int i = 0; i < 1200; i++) {
        snprintf(name, sizeof(name), "cm-%04d", i);
        cJSON *cm = configmap(name, "v");
        int rc = k8s_create(c, &K8S_CONFIGMAPS, lns, cm, NULL, &err);
        cJSON_Delete(cm);
        if (rc && !k8s_err_is(&err, "AlreadyExists"))
            fail_msg("create %s: %s", name, err.message);
    }
    k8s_client_set_observer(c, count_requests, &n);
    k8s_list_opts lo = { .limit = 500 };
    assert_int_equal(k8s_list(c, &K8S_CONFIGMAPS, lns, &lo, count_item, &n, &rv, &err), K8S_OK);
    /* 1,200 ConfigMaps plus kube-root-ca.crt if the server made one (1.20 does) */
    assert_true(n.items == 1200 || n.items == 1201);
    assert_int_equal(n.gets, 3);
    assert_int_equal(n.restarts, 0);
    assert_non_null(rv);
    free(rv);

    /* a label selector is passed through (escaped) */
    n.items = 0;
    k8s_list_opts sel = { .label_selector = "app in (nothing,none)" };
    assert_int_equal(k8s_list(c, &K8S_CONFIGMAPS, lns, &sel, count_item, &n, NULL, &err), K8S_OK);
    assert_int_equal(n.items, 0);

    k8s_delete(c, &K8S_NAMESPACES, NULL, lns, &err);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

/* ------------------------------------------------------------- watch */

struct watch_seen {
    int added;
    char first_name[64];
};

static int on_watch_line(void *ud, const char *line, size_t len)
{
    struct watch_seen *w = ud;
    cJSON *ev = cJSON_ParseWithLength(line, len);
    assert_non_null(ev);
    const char *type = k8s_json_str(ev, "type", NULL);
    if (type && strcmp(type, "ADDED") == 0) {
        if (!w->added)
            snprintf(w->first_name, sizeof(w->first_name), "%s",
                     k8s_json_str(ev, "object", "metadata", "name", NULL));
        w->added++;
    }
    cJSON_Delete(ev);
    return w->added >= 3;   /* stop after three */
}

static void test_watch_stream_lines(void **state)
{
    k8s_config cfg;
    k8s_err err;
    char path[256];
    struct watch_seen w = { 0 };
    k8s_client *c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    (void)state;
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "w-%d", i);
        cJSON *cm = configmap(name, "v");
        k8s_create(c, &K8S_CONFIGMAPS, ns, cm, NULL, &err);
        cJSON_Delete(cm);
    }
    snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps?watch=1&timeoutSeconds=10&labelSelector=", ns);
    /* a watch from "now" (no resourceVersion) starts with ADDED for each */
    assert_int_equal(k8s_stream(c, path, 30, on_watch_line, &w, &err), K8S_ESTOPPED);
    assert_true(w.added >= 3);
    k8s_client_free(c);
    k8s_config_release(&cfg);
}

int main(void)
{
    k8s_config cfg;
    k8s_client *c;

    snprintf(ns, sizeof(ns), "it-client-%ld", (long)getpid());
    c = test_client("TQU_KUBECONFIG_ADMIN", &cfg);
    ensure_namespace(c, ns);
    k8s_client_free(c);
    k8s_config_release(&cfg);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_identity),
        cmocka_unit_test(test_cert_identity),
        cmocka_unit_test(test_bad_token_unauthorized),
        cmocka_unit_test(test_wrong_ca_refused),
        cmocka_unit_test(test_tls_server_name),
        cmocka_unit_test(test_configmap_crud_and_errors),
        cmocka_unit_test(test_percent_encoding),
        cmocka_unit_test(test_tqu_status_subresource),
        cmocka_unit_test(test_deployment_strategic_merge),
        cmocka_unit_test(test_list_1200_in_pages_of_500),
        cmocka_unit_test(test_watch_stream_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
