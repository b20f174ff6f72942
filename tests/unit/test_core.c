/*
 * test_core.c - the small modules: capped buffer, errors, JSON accessors,
 * path building and escaping, command-line flags, log lines.
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
#include "failalloc.h"
#include "runtime/log.h"
#include "runtime/options.h"

static void test_buf_cap(void **state)
{
    k8s_buf b;
    (void)state;
    k8s_buf_init(&b, 10);
    assert_int_equal(k8s_buf_adds(&b, "hello"), K8S_OK);
    assert_int_equal(k8s_buf_adds(&b, "world"), K8S_OK);
    assert_int_equal(b.len, 10);
    /* one byte over the cap fails and leaves the buffer as it was */
    assert_int_equal(k8s_buf_adds(&b, "!"), K8S_ETOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(k8s_buf_printf(&b, "%d", 1), K8S_ETOOBIG);
    k8s_buf_consume(&b, 5);
    assert_string_equal(b.data, "world");
    assert_int_equal(k8s_buf_printf(&b, "%03d", 7), K8S_OK);
    assert_string_equal(b.data, "world007");
    size_t n;
    char *p = k8s_buf_detach(&b, &n);
    assert_int_equal(n, 8);
    assert_null(b.data);
    free(p);
    k8s_buf_release(&b);
}

static void test_buf_alloc_failure(void **state)
{
    k8s_buf b;
    (void)state;
    k8s_buf_init(&b, 0);
    failalloc_fail_at(1);
    assert_int_equal(k8s_buf_adds(&b, "x"), K8S_ENOMEM);
    failalloc_fail_at(0);
    assert_int_equal(b.len, 0);
    assert_int_equal(k8s_buf_adds(&b, "x"), K8S_OK);
    k8s_buf_release(&b);
}

static void test_err(void **state)
{
    k8s_err e;
    char line[2048];
    (void)state;
    assert_string_equal(k8s_strerror(K8S_OK), "success");
    assert_string_equal(k8s_strerror(K8S_ETLS), "TLS error");
    assert_string_equal(k8s_strerror(999), "unknown error");
    assert_string_equal(k8s_strerror(-1), "unknown error");
    assert_int_equal(k8s_err_set(&e, K8S_EIO, "%s: %s", "/x", "gone"), K8S_EIO);
    assert_string_equal(k8s_err_str(&e, line, sizeof(line)), "/x: gone");
    assert_int_equal(k8s_err_set(NULL, K8S_EIO, "no crash"), K8S_EIO);
    k8s_err_clear(&e);
    e.rc = K8S_EAPI;
    e.code = 404;
    strcpy(e.reason, "NotFound");
    strcpy(e.message, "configmaps \"x\" not found");
    assert_true(k8s_err_is(&e, "NotFound"));
    assert_false(k8s_err_is(&e, "Conflict"));
    assert_string_equal(k8s_err_str(&e, line, sizeof(line)), "NotFound: configmaps \"x\" not found (404)");
    strcpy(e.causes, "spec.a: bad");
    assert_string_equal(k8s_err_str(&e, line, sizeof(line)),
                        "NotFound: configmaps \"x\" not found (404): spec.a: bad");
    /* long text is truncated, never overflowed */
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    k8s_err_set(&e, K8S_EIO, "%s", big);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
}

static void test_json_accessors(void **state)
{
    cJSON *j = NULL;
    k8s_err e;
    (void)state;
    const char *s = "{\"metadata\":{\"name\":\"n\",\"generation\":3,\"labels\":{\"a.b/c\":\"d\"}},"
                    "\"spec\":{\"paused\":true,\"machines\":\"6\"}}";
    assert_int_equal(k8s_json_parse(s, strlen(s), &j, &e), K8S_OK);
    assert_string_equal(k8s_json_str(j, "metadata", "name", NULL), "n");
    assert_string_equal(k8s_json_str(j, "metadata", "labels", "a.b/c", NULL), "d");
    assert_null(k8s_json_str(j, "metadata", "missing", NULL));
    assert_null(k8s_json_str(j, "metadata", "name", "deeper", NULL));
    assert_int_equal(k8s_json_int(j, -1, "metadata", "generation", NULL), 3);
    assert_int_equal(k8s_json_int(j, -1, "spec", "machines", NULL), -1);   /* a string */
    assert_int_equal(k8s_json_bool(j, 0, "spec", "paused", NULL), 1);
    assert_int_equal(k8s_json_bool(j, 7, "spec", "machines", NULL), 7);
    assert_null(k8s_json_get(NULL, "a", NULL));
    assert_ptr_equal(k8s_json_get(j, NULL), j);
    cJSON_Delete(j);
    assert_int_equal(k8s_json_parse("{\"a\":", 5, &j, &e), K8S_EPARSE);
    assert_null(j);
    assert_non_null(strstr(e.message, "malformed JSON"));
}

static void test_paths(void **state)
{
    (void)state;
    char *p = k8s_path(&K8S_DEPLOYMENTS, "default", "darwin-cdn", NULL);
    assert_string_equal(p, "/apis/apps/v1/namespaces/default/deployments/darwin-cdn");
    free(p);
    p = k8s_path(&K8S_CONFIGMAPS, NULL, NULL, NULL);
    assert_string_equal(p, "/api/v1/configmaps");
    free(p);
    p = k8s_path(&K8S_NODES, "ignored", "n1", NULL);
    assert_string_equal(p, "/api/v1/nodes/n1");
    free(p);
    k8s_resource tqu = { "upgrade.tianqing.io", "v1alpha1", "tianqingupgrades", 1 };
    p = k8s_path(&tqu, "ns", "a", "status");
    assert_string_equal(p, "/apis/upgrade.tianqing.io/v1alpha1/namespaces/ns/tianqingupgrades/a/status");
    free(p);
    p = k8s_path(&K8S_CONFIGMAPS, "a b", "x/y?z=1&w#", NULL);
    assert_string_equal(p, "/api/v1/namespaces/a%20b/configmaps/x%2Fy%3Fz%3D1%26w%23");
    free(p);
    p = k8s_escape("metadata.name=darwin-cdn,app in (a,b)");
    assert_string_equal(p, "metadata.name%3Ddarwin-cdn%2Capp%20in%20%28a%2Cb%29");
    free(p);
    p = k8s_escape("\xe5\xa4\xb1");   /* UTF-8 bytes are escaped one by one */
    assert_string_equal(p, "%E5%A4%B1");
    free(p);
}

static void test_paths_alloc_failure(void **state)
{
    (void)state;
    for (long n = 1; n < 50; n++) {
        failalloc_fail_at(n);
        char *p = k8s_path(&K8S_DEPLOYMENTS, "ns", "name", "status");
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_non_null(p);
            free(p);
            return;
        }
        assert_null(p);
    }
    fail_msg("k8s_path never ran without failing");
}

static int parse_args(tqu_options *o, const char *const *args, char *out, size_t outlen,
                      char *errout, size_t errlen)
{
    char *argv[32];
    int argc = 0;
    FILE *fo = fmemopen(out, outlen, "w"), *fe = fmemopen(errout, errlen, "w");
    argv[argc++] = "tianqing-upgrade-controller";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    int r = tqu_options_parse(o, argc, argv, fo, fe);
    fclose(fo);
    fclose(fe);
    return r;
}

static void test_options(void **state)
{
    tqu_options o;
    char out[8192], err[1024];
    (void)state;

    const char *a1[] = { "--kubeconfig", "/k", "--context=c", "--namespace", "ns",
                         "--leader-elect", "--leader-election-namespace", "le",
                         "--leader-election-id", "id", "--health-addr", "127.0.0.1:9",
                         "--exec-prefix", "nsenter -t 1  -m --", "--log-format", "json",
                         "--log-level", "debug", NULL };
    assert_int_equal(parse_args(&o, a1, out, sizeof(out), err, sizeof(err)), TQU_OPT_RUN);
    assert_string_equal(o.kubeconfig, "/k");
    assert_string_equal(o.context, "c");
    assert_string_equal(o.namespace, "ns");
    assert_int_equal(o.leader_elect, 1);
    assert_string_equal(o.leader_election_namespace, "le");
    assert_string_equal(o.leader_election_id, "id");
    assert_string_equal(o.health_addr, "127.0.0.1:9");
    assert_string_equal(o.exec_prefix[0], "nsenter");
    assert_string_equal(o.exec_prefix[3], "-m");
    assert_string_equal(o.exec_prefix[4], "--");
    assert_null(o.exec_prefix[5]);
    assert_int_equal(o.log_format, TQU_LOG_JSON);
    assert_int_equal(o.log_level, TQU_DEBUG);
    tqu_options_release(&o);

    const char *a2[] = { NULL };
    assert_int_equal(parse_args(&o, a2, out, sizeof(out), err, sizeof(err)), TQU_OPT_RUN);
    assert_null(o.kubeconfig);
    assert_int_equal(o.leader_elect, 0);
    assert_string_equal(o.leader_election_id, "tianqing-upgrade-controller");
    assert_string_equal(o.health_addr, ":8081");
    assert_null(o.exec_prefix);
    tqu_options_release(&o);

    const char *a3[] = { "--help", NULL };
    assert_int_equal(parse_args(&o, a3, out, sizeof(out), err, sizeof(err)), TQU_OPT_EXIT_OK);
    const char *flags[] = { "--kubeconfig", "--context", "--namespace", "--leader-elect",
                            "--leader-election-namespace", "--leader-election-id", "--health-addr",
                            "--exec-prefix", "--log-format", "--log-level", "--version", "--help" };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        assert_non_null(strstr(out, flags[i]));

    const char *a4[] = { "--version", NULL };
    assert_int_equal(parse_args(&o, a4, out, sizeof(out), err, sizeof(err)), TQU_OPT_EXIT_OK);
    assert_non_null(strstr(out, "tianqing-upgrade-controller "));

    const char *bad[][3] = { { "--nope", NULL }, { "--log-level", "loud", NULL },
                             { "--log-format", "xml", NULL }, { "--kubeconfig", NULL },
                             { "extra", NULL }, { "--leader-elect=maybe", NULL } };
    const char *want[] = { "unknown flag: --nope", "invalid value \"loud\" for --log-level",
                           "invalid value \"xml\" for --log-format", "flag needs an argument: --kubeconfig",
                           "unexpected argument: extra", "invalid value \"maybe\" for --leader-elect" };
    for (size_t i = 0; i < 6; i++) {
        memset(err, 0, sizeof(err));
        assert_int_equal(parse_args(&o, bad[i], out, sizeof(out), err, sizeof(err)), TQU_OPT_ERROR);
        if (!strstr(err, want[i]))
            fail_msg("case %zu: got \"%s\"", i, err);
    }
}

static void test_log_lines(void **state)
{
    int fds[2];
    char buf[4096];
    (void)state;
    assert_int_equal(pipe(fds), 0);
    tqu_log_set_fd(fds[1]);
    tqu_log_setup(TQU_LOG_TEXT, TQU_INFO);
    tqu_log(TQU_DEBUG, "hidden", NULL);
    tqu_log(TQU_INFO, "step done", "key", "ns/a", "message", "two words \"q\"", NULL);
    tqu_log_setup(TQU_LOG_JSON, TQU_DEBUG);
    tqu_log(TQU_WARN, "retry", "key", "ns/b", NULL);
    tqu_log_set_fd(2);
    close(fds[1]);
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_null(strstr(buf, "hidden"));
    char *l2 = strchr(buf, '\n');
    assert_non_null(l2);
    *l2++ = '\0';
    assert_non_null(strstr(buf, " info  step done key=ns/a message=\"two words \\\"q\\\"\""));
    cJSON *j = cJSON_Parse(l2);
    assert_non_null(j);
    assert_string_equal(k8s_json_str(j, "level", NULL), "warn");
    assert_string_equal(k8s_json_str(j, "msg", NULL), "retry");
    assert_string_equal(k8s_json_str(j, "key", NULL), "ns/b");
    assert_non_null(k8s_json_str(j, "ts", NULL));
    cJSON_Delete(j);
    tqu_log_setup(TQU_LOG_TEXT, TQU_INFO);
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_buf_alloc_failure),
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_json_accessors),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_paths_alloc_failure),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_log_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
