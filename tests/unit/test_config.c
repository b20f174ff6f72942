/*
 * test_config.c - kubeconfig loading and merging, in-cluster configuration,
 * and exec credential plugins (k8s/config.c, k8s/exec_credential.c).
 *
 * Every test works in its own mkdtemp folder: it writes the kubeconfig
 * files, dummy PEM files, service-account folders and small shell-script
 * plugins it needs, and points HOME there so the real ~/.kube/config is
 * never read. The fault-injection tests fail each allocation in turn and
 * check for a clean K8S_ENOMEM with the config left empty (leaks are found
 * by ASan/valgrind).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "k8s.h"
#include "k8s_int.h"
#include "failalloc.h"
#include "testutil.h"

#define CA_PEM "-----BEGIN CERTIFICATE-----\nQ0EgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nY2xpZW50IGNlcnQ=\n-----END CERTIFICATE-----\n"
#define KEY_PEM "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleQ==\n-----END PRIVATE KEY-----\n"
#define V1 "client.authentication.k8s.io/v1"
#define V1BETA1 "client.authentication.k8s.io/v1beta1"

static char tmp[PATH_MAX];
static char saved_cwd[PATH_MAX];

/* ------------------------------------------------------------- fixture */

static const char *const env_vars[] = {
    "KUBECONFIG", "HOME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
};

static int setup(void **state)
{
    (void)state;
    if (test_mkdtemp(tmp, sizeof(tmp), "test_config") != 0 || !getcwd(saved_cwd, sizeof(saved_cwd)))
        return -1;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    setenv("HOME", tmp, 1);     /* no .kube/config unless a test writes one */
    k8s__exec_timeout_ms = 30000;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (chdir(saved_cwd) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    return test_rmtree(tmp);
}

/* tmp + "/" + rel, in one of a few rotating buffers. */
static const char *tp(const char *rel)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", tmp, rel);
    return b;
}

static void mkdirs_for(const char *path)
{
    char d[PATH_MAX];
    snprintf(d, sizeof(d), "%s", path);
    for (char *p = d + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(d, 0755);
            *p = '/';
        }
    }
}

/* Write tmp/rel (creating folders) with printf-style content. */
static void wfile(const char *rel, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wfile(const char *rel, const char *fmt, ...)
{
    const char *path = tp(rel);
    va_list ap;
    FILE *f;

    mkdirs_for(path);
    f = fopen(path, "w");
    assert_non_null(f);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
}

static void wscript(const char *rel, const char *body)
{
    wfile(rel, "#!/bin/sh\n%s", body);
    assert_int_equal(chmod(tp(rel), 0755), 0);
}

/* base64 of s (static buffer), wrapped every 20 characters when wrap. */
static const char *b64(const char *s, int wrap)
{
    static char out[4][4096];
    static int next;
    char raw[4096], *o = out[next++ % 4];
    int n = EVP_EncodeBlock((unsigned char *)raw, (const unsigned char *)s, (int)strlen(s));
    size_t j = 0;

    for (int i = 0; i < n; i++) {
        if (wrap && i && i % 20 == 0)
            o[j++] = '\n';
        o[j++] = raw[i];
    }
    o[j] = '\0';
    return o;
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void assert_blob(const k8s_blob *b, const char *want)
{
    assert_non_null(b->data);
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

static void assert_cfg_empty(const k8s_config *cfg)
{
    static const k8s_config zero;
    assert_memory_equal(cfg, &zero, sizeof(zero));
}

/* Load a kubeconfig expected to fail with rc; returns the message. */
static const char *load_fails(const char *kc, const char *ctx, int rc)
{
    static k8s_err err;
    k8s_config cfg;
    int got = k8s_config_load(&cfg, kc, ctx, &err);
    if (got != rc)
        fail_msg("rc %d (%s), want %d", got, err.message, rc);
    assert_int_equal(err.rc, rc);
    assert_cfg_empty(&cfg);
    assert_null(strchr(err.message, '\n'));
    return err.message;
}

/* A kubeconfig with one context "ctx" -> cluster "c", user "u". */
static void write_kc(const char *rel, const char *cluster_body, const char *user_body)
{
    wfile(rel,
          "apiVersion: v1\n"
          "kind: Config\n"
          "current-context: ctx\n"
          "clusters:\n"
          "- name: c\n"
          "  cluster:\n%s"
          "users:\n"
          "- name: u\n"
          "  user:\n%s"
          "contexts:\n"
          "- name: ctx\n"
          "  context: {cluster: c, user: u}\n",
          cluster_body, user_body);
}

/* ----------------------------------------------------- kubeconfig files */

static void test_single_file_relative_paths(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    wfile("kc/pki/ca.crt", CA_PEM);
    wfile("kc/pki/client.crt", CERT_PEM);
    wfile("kc/pki/client.key", KEY_PEM);
    wfile("kc/config",
          "apiVersion: v1\n"
          "kind: Config\n"
          "current-context: dev\n"
          "preferences: {}\n"
          "clusters:\n"
          "- name: prod\n"
          "  cluster:\n"
          "    server: https://prod.example:6443\n"
          "- name: dev\n"
          "  cluster:\n"
          "    server: https://10.0.0.1:6443///\n"
          "    certificate-authority: pki/ca.crt\n"
          "users:\n"
          "- name: dev-admin\n"
          "  user:\n"
          "    client-certificate: pki/client.crt\n"
          "    client-key: ./pki/client.key\n"
          "contexts:\n"
          "- name: dev\n"
          "  context:\n"
          "    cluster: dev\n"
          "    user: dev-admin\n"
          "    namespace: team-a\n");
    assert_int_equal(k8s_config_load(&cfg, tp("kc/config"), NULL, &err), K8S_OK);
    assert_int_equal(err.rc, K8S_OK);
    assert_string_equal(cfg.server, "https://10.0.0.1:6443");
    assert_blob(&cfg.ca, CA_PEM);
    assert_blob(&cfg.client_cert, CERT_PEM);
    assert_blob(&cfg.client_key, KEY_PEM);
    assert_null(cfg.token);
    assert_null(cfg.token_file);
    assert_null(cfg.exec);
    assert_null(cfg.tls_server_name);
    assert_int_equal(cfg.insecure_skip_tls_verify, 0);
    assert_string_equal(cfg.namespace, "team-a");
    assert_string_equal(cfg.context, "dev");
    assert_string_equal(cfg.source, tp("kc/config"));
    k8s_config_release(&cfg);
    assert_cfg_empty(&cfg);
    k8s_config_release(&cfg);   /* releasing twice is harmless */
}

/* A relative kubeconfig path: paths in it become absolute (cwd-based). */
static void test_relative_kubeconfig_path(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    wfile("a/b/tok", "t0ken\n");
    wfile("a/b/ca.crt", CA_PEM);
    write_kc("a/b/config",
             "    server: https://h:1\n"
             "    certificate-authority: ca.crt\n",
             "    tokenFile: tok\n"
             "    exec:\n"
             "      apiVersion: " V1 "\n"
             "      command: ./bin/plugin\n");
    assert_int_equal(chdir(tp("a")), 0);
    assert_int_equal(k8s_config_load(&cfg, "b/config", NULL, &err), K8S_OK);
    assert_string_equal(cfg.token_file, tp("a/b/tok"));
    assert_string_equal(cfg.exec->argv[0], tp("a/b/./bin/plugin"));
    assert_blob(&cfg.ca, CA_PEM);
    assert_string_equal(cfg.source, "b/config");
    assert_string_equal(cfg.namespace, "default");
    k8s_config_release(&cfg);

    assert_int_equal(chdir(tp("a/b")), 0);
    assert_int_equal(k8s_config_load(&cfg, "config", NULL, &err), K8S_OK);
    assert_string_equal(cfg.token_file, tp("a/b/tok"));
    k8s_config_release(&cfg);
}

static void test_data_variants(void **state)
{
    k8s_config cfg;
    k8s_err err;
    char cluster[8192], user[8192];
    (void)state;

    /* -data wins over the file, which then does not even need to exist */
    snprintf(cluster, sizeof(cluster),
             "    server: https://h:6443/\n"
             "    certificate-authority: /nonexistent/ca.crt\n"
             "    certificate-authority-data: %s\n", b64(CA_PEM, 0));
    snprintf(user, sizeof(user),
             "    client-certificate-data: %s\n"
             "    client-key-data: |\n      %s\n", b64(CERT_PEM, 0), b64(KEY_PEM, 0));
    write_kc("kc", cluster, user);
    assert_int_equal(k8s_config_load(&cfg, tp("kc"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.server, "https://h:6443");
    assert_blob(&cfg.ca, CA_PEM);
    assert_blob(&cfg.client_cert, CERT_PEM);
    assert_blob(&cfg.client_key, KEY_PEM);
    k8s_config_release(&cfg);

    /* base64 split over lines (a YAML literal block keeps the newlines) */
    {
        const char *w = b64(CA_PEM, 1);
        char ind[4096];
        size_t j = 0;
        for (const char *p = w; *p; p++) {
            ind[j++] = *p;
            if (*p == '\n') {
                memcpy(ind + j, "      ", 6);
                j += 6;
            }
        }
        ind[j] = '\0';
        assert_non_null(strchr(w, '\n'));
        snprintf(cluster, sizeof(cluster),
                 "    server: https://h:6443\n"
                 "    certificate-authority-data: |\n      %s\n", ind);
        write_kc("kc2", cluster, "    token: abc\n");
        assert_int_equal(k8s_config_load(&cfg, tp("kc2"), NULL, &err), K8S_OK);
        assert_blob(&cfg.ca, CA_PEM);
        k8s_config_release(&cfg);
    }
}

static void test_base64_helper(void **state)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        { "aGVsbG8=", "hello" }, { "aGVsbA==", "hell" }, { "aGVsbG8h", "hello!" },
        { " aGVs\nbG8=\r\n", "hello" }, { "", "" },
    };
    static const char *const bad[] = { "aGVsbG8", "a===", "====", "aGVsbG8=aGVs",
                                       "aGVs*G8=", "aGVsbG8=\x01" };
    k8s_blob b;
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(k8s_base64_decode(ok[i].in, strlen(ok[i].in), &b), K8S_OK);
        assert_int_equal(b.len, strlen(ok[i].out));
        assert_memory_equal(b.data, ok[i].out, b.len);
        assert_int_equal(b.data[b.len], '\0');
        k8s_blob_release(&b);
        assert_null(b.data);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(k8s_base64_decode(bad[i], strlen(bad[i]), &b), K8S_EINVAL);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
    }
}

static void test_token_and_token_file(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    write_kc("kc", "    server: https://h:6443\n", "    token: s3cr3t-token\n");
    assert_int_equal(k8s_config_load(&cfg, tp("kc"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.token, "s3cr3t-token");
    assert_null(cfg.token_file);
    k8s_config_release(&cfg);

    wfile("d/tokens/tok", "abc\n");
    write_kc("d/kc", "    server: https://h:6443\n", "    tokenFile: tokens/tok\n");
    assert_int_equal(k8s_config_load(&cfg, tp("d/kc"), NULL, &err), K8S_OK);
    assert_null(cfg.token);
    assert_string_equal(cfg.token_file, tp("d/tokens/tok"));
    k8s_config_release(&cfg);

    /* an absolute tokenFile is kept as it is */
    write_kc("kc3", "    server: https://h:6443\n", "");
    wfile("kc3",
          "clusters: [{name: c, cluster: {server: 'https://h'}}]\n"
          "users: [{name: u, user: {tokenFile: %s}}]\n"
          "contexts: [{name: ctx, context: {cluster: c, user: u}}]\n"
          "current-context: ctx\n", tp("d/tokens/tok"));
    assert_int_equal(k8s_config_load(&cfg, tp("kc3"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.token_file, tp("d/tokens/tok"));
    assert_string_equal(cfg.server, "https://h");
    k8s_config_release(&cfg);
}

static void test_token_file_missing(void **state)
{
    const char *m;
    char want[PATH_MAX * 2];
    (void)state;

    write_kc("kc", "    server: https://h:6443\n",
             "    token: the-static-token\n    tokenFile: nope/tok\n");
    m = load_fails(tp("kc"), NULL, K8S_ECONFIG);
    snprintf(want, sizeof(want), "kubeconfig %s: user \"u\": tokenFile %s: No such file or directory",
             tp("kc"), tp("nope/tok"));
    assert_string_equal(m, want);
    assert_not_contains(m, "the-static-token");
}

static void test_tls_options(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    write_kc("kc",
             "    server: https://10.1.2.3:6443\n"
             "    insecure-skip-tls-verify: true\n"
             "    tls-server-name: kubernetes.default.svc\n", "");
    assert_int_equal(k8s_config_load(&cfg, tp("kc"), NULL, &err), K8S_OK);
    assert_int_equal(cfg.insecure_skip_tls_verify, 1);
    assert_string_equal(cfg.tls_server_name, "kubernetes.default.svc");
    assert_int_equal(cfg.ca.len, 0);
    assert_null(cfg.ca.data);
    k8s_config_release(&cfg);

    write_kc("kc2", "    server: https://h\n    insecure-skip-tls-verify: false\n", "");
    assert_int_equal(k8s_config_load(&cfg, tp("kc2"), NULL, &err), K8S_OK);
    assert_int_equal(cfg.insecure_skip_tls_verify, 0);
    assert_null(cfg.tls_server_name);
    k8s_config_release(&cfg);

    /* quoted "true" is a string, not a boolean (as kubectl reads it) */
    write_kc("kc3", "    server: https://h\n    insecure-skip-tls-verify: \"true\"\n", "");
    assert_contains(load_fails(tp("kc3"), NULL, K8S_ECONFIG),
                    "cluster \"c\": insecure-skip-tls-verify: expected true or false");
    write_kc("kc4", "    server: https://h\n    insecure-skip-tls-verify: maybe\n", "");
    assert_contains(load_fails(tp("kc4"), NULL, K8S_ECONFIG), "line 8:");
}

/* ------------------------------------------------------------ merging */

static void test_kubeconfig_env_merge(void **state)
{
    k8s_config cfg;
    k8s_err err;
    char env[PATH_MAX * 4];
    (void)state;

    wfile("one/ca.crt", "CA ONE\n");
    wfile("two/ca.crt", "CA TWO\n");
    wfile("one/config",
          "current-context: first\n"
          "clusters:\n"
          "- name: shared\n"
          "  cluster: {server: 'https://one:1', certificate-authority: ca.crt}\n"
          "users:\n"
          "- name: admin\n"
          "  user: {token: token-one}\n"
          "contexts:\n"
          "- name: first\n"
          "  context: {cluster: shared, user: admin}\n");
    wfile("two/config",
          "current-context: second\n"
          "clusters:\n"
          "- name: shared\n"
          "  cluster: {server: 'https://two:2', certificate-authority: ca.crt}\n"
          "- name: only-two\n"
          "  cluster: {server: 'https://only-two:2', certificate-authority: ca.crt}\n"
          "users:\n"
          "- name: admin\n"
          "  user: {token: token-two}\n"
          "- name: other\n"
          "  user: {token: token-other}\n"
          "contexts:\n"
          "- name: first\n"
          "  context: {cluster: only-two, user: other, namespace: ignored}\n"
          "- name: second\n"
          "  context: {cluster: only-two, user: admin, namespace: ns2}\n"
          "- name: mixed\n"
          "  context: {cluster: shared, user: other}\n");
    /* empty entries and a missing file are skipped; a repeat counts once */
    snprintf(env, sizeof(env), "::%s:%s::%s:%s", tp("missing/config"), tp("one/config"),
             tp("two/config"), tp("one/config"));
    setenv("KUBECONFIG", env, 1);

    /* current-context: the first file's; context "first": the first file's */
    assert_int_equal(k8s_config_load(&cfg, NULL, NULL, &err), K8S_OK);
    assert_string_equal(cfg.context, "first");
    assert_string_equal(cfg.server, "https://one:1");
    assert_blob(&cfg.ca, "CA ONE\n");
    assert_string_equal(cfg.token, "token-one");
    assert_string_equal(cfg.namespace, "default");
    {
        char want[PATH_MAX * 2];
        snprintf(want, sizeof(want), "%s:%s", tp("one/config"), tp("two/config"));
        assert_string_equal(cfg.source, want);
    }
    k8s_config_release(&cfg);

    /* a context only the second file has; its names resolve across files:
     * user "admin" comes from file one, cluster and CA path from file two */
    assert_int_equal(k8s_config_load(&cfg, NULL, "second", &err), K8S_OK);
    assert_string_equal(cfg.server, "https://only-two:2");
    assert_blob(&cfg.ca, "CA TWO\n");
    assert_string_equal(cfg.token, "token-one");
    assert_string_equal(cfg.namespace, "ns2");
    k8s_config_release(&cfg);

    /* "mixed" (file two) uses cluster "shared": file one defines it first,
     * and its relative CA resolves against file one's folder */
    assert_int_equal(k8s_config_load(&cfg, NULL, "mixed", &err), K8S_OK);
    assert_string_equal(cfg.server, "https://one:1");
    assert_blob(&cfg.ca, "CA ONE\n");
    assert_string_equal(cfg.token, "token-other");
    k8s_config_release(&cfg);

    /* an explicit kubeconfig ignores $KUBECONFIG */
    assert_int_equal(k8s_config_load(&cfg, tp("two/config"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.context, "second");
    assert_string_equal(cfg.token, "token-two");
    assert_string_equal(cfg.source, tp("two/config"));
    k8s_config_release(&cfg);
}

static void test_kubeconfig_env_current_context_later_file(void **state)
{
    k8s_config cfg;
    k8s_err err;
    char env[PATH_MAX * 2];
    (void)state;

    wfile("a", "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
               "contexts: [{name: x, context: {cluster: c}}]\n"
               "current-context: \"\"\n");
    wfile("b", "current-context: x\n"
               "clusters: [{name: c, cluster: {server: 'https://b'}}]\n");
    snprintf(env, sizeof(env), "%s:%s", tp("a"), tp("b"));
    setenv("KUBECONFIG", env, 1);
    assert_int_equal(k8s_config_load(&cfg, NULL, NULL, &err), K8S_OK);
    assert_string_equal(cfg.context, "x");
    assert_string_equal(cfg.server, "https://a");
    assert_null(cfg.token);     /* no user: anonymous */
    k8s_config_release(&cfg);
}

static void test_kubeconfig_env_none_exist(void **state)
{
    const char *m;
    char env[PATH_MAX * 2];
    (void)state;

    snprintf(env, sizeof(env), "%s:%s", tp("x/config"), tp("y/config"));
    setenv("KUBECONFIG", env, 1);
    wfile(".kube/config", "not: used\n");   /* no fallback to ~/.kube/config */
    m = load_fails(NULL, NULL, K8S_ECONFIG);
    assert_contains(m, "$KUBECONFIG");
    assert_contains(m, tp("x/config"));
    assert_contains(m, tp("y/config"));
}

static void test_kubeconfig_env_unreadable_entry(void **state)
{
    char env[PATH_MAX * 2];
    const char *m;
    (void)state;

    /* only a missing file is skipped: a folder where a file should be is an error */
    mkdir(tp("dir"), 0755);
    write_kc("ok", "    server: https://h\n", "");
    snprintf(env, sizeof(env), "%s:%s", tp("dir"), tp("ok"));
    setenv("KUBECONFIG", env, 1);
    m = load_fails(NULL, NULL, K8S_ECONFIG);
    assert_contains(m, tp("dir"));
}

static void test_home_config(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    wfile(".kube/ca", CA_PEM);
    write_kc(".kube/config", "    server: https://home:443\n    certificate-authority: ca\n", "");
    assert_int_equal(k8s_config_load(&cfg, NULL, NULL, &err), K8S_OK);
    assert_string_equal(cfg.server, "https://home:443");
    assert_string_equal(cfg.source, tp(".kube/config"));
    assert_blob(&cfg.ca, CA_PEM);
    k8s_config_release(&cfg);

    /* $KUBECONFIG naming no file at all (":") is as good as unset */
    setenv("KUBECONFIG", ":", 1);
    assert_int_equal(k8s_config_load(&cfg, NULL, NULL, &err), K8S_OK);
    assert_string_equal(cfg.source, tp(".kube/config"));
    k8s_config_release(&cfg);
}

static void test_no_config_anywhere(void **state)
{
    const char *m;
    (void)state;

    m = load_fails(NULL, NULL, K8S_ECONFIG);
    assert_contains(m, "no configuration found");
    assert_contains(m, tp(".kube/config"));
    assert_contains(m, "KUBECONFIG");
    assert_contains(m, "not running in a cluster");
    assert_contains(m, "KUBERNETES_SERVICE_HOST");

    unsetenv("HOME");
    assert_contains(load_fails(NULL, NULL, K8S_ECONFIG), "$HOME not set");
}

static void test_fallback_to_incluster(void **state)
{
    struct stat st;
    const char *m;
    (void)state;

    if (stat("/var/run/secrets/kubernetes.io/serviceaccount/token", &st) == 0)
        skip();     /* really in a pod */
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    m = load_fails(NULL, NULL, K8S_ECONFIG);
    assert_string_equal(m, "in-cluster: service account token "
                           "/var/run/secrets/kubernetes.io/serviceaccount/token: "
                           "No such file or directory");
}

/* ----------------------------------------------------------- contexts */

static void write_two_contexts(void)
{
    wfile("kc",
          "current-context: a\n"
          "clusters:\n"
          "- {name: ca, cluster: {server: 'https://a'}}\n"
          "- {name: cb, cluster: {server: 'https://b'}}\n"
          "users:\n"
          "- {name: ua, user: {token: ta}}\n"
          "- {name: ub, user: {token: tb}}\n"
          "contexts:\n"
          "- {name: a, context: {cluster: ca, user: ua}}\n"
          "- {name: b, context: {cluster: cb, user: ub, namespace: nb}}\n"
          "- {name: no-cluster, context: {cluster: gone, user: ua}}\n"
          "- {name: no-user, context: {cluster: ca, user: gone}}\n"
          "- {name: empty, context: {}}\n");
}

static void test_context_selection(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    write_two_contexts();
    assert_int_equal(k8s_config_load(&cfg, tp("kc"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.context, "a");
    assert_string_equal(cfg.server, "https://a");
    assert_string_equal(cfg.token, "ta");
    k8s_config_release(&cfg);
    assert_int_equal(k8s_config_load(&cfg, tp("kc"), "b", &err), K8S_OK);
    assert_string_equal(cfg.context, "b");
    assert_string_equal(cfg.server, "https://b");
    assert_string_equal(cfg.token, "tb");
    assert_string_equal(cfg.namespace, "nb");
    k8s_config_release(&cfg);
}

static void test_unknown_context(void **state)
{
    char want[PATH_MAX + 64];
    (void)state;

    write_two_contexts();
    snprintf(want, sizeof(want), "kubeconfig %s: context \"x\" not found", tp("kc"));
    assert_string_equal(load_fails(tp("kc"), "x", K8S_ECONFIG), want);
}

static void test_missing_cluster_or_user(void **state)
{
    const char *m;
    (void)state;

    write_two_contexts();
    m = load_fails(tp("kc"), "no-cluster", K8S_ECONFIG);
    assert_contains(m, tp("kc"));
    assert_contains(m, "context \"no-cluster\" refers to cluster \"gone\", which is not defined");
    m = load_fails(tp("kc"), "no-user", K8S_ECONFIG);
    assert_contains(m, "context \"no-user\" refers to user \"gone\", which is not defined");
    m = load_fails(tp("kc"), "empty", K8S_ECONFIG);
    assert_contains(m, "context \"empty\" has no cluster");

    write_kc("kc2", "    insecure-skip-tls-verify: true\n", "");
    assert_contains(load_fails(tp("kc2"), NULL, K8S_ECONFIG), "cluster \"c\" has no server");
}

static void test_no_current_context(void **state)
{
    (void)state;
    wfile("kc", "clusters: [{name: c, cluster: {server: 'https://a'}}]\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG), "current-context is not set");
    wfile("empty", "%s", "");
    assert_contains(load_fails(tp("empty"), NULL, K8S_ECONFIG), "current-context is not set");
}

/* ------------------------------------------------------------- errors */

static void test_missing_file(void **state)
{
    char want[PATH_MAX + 64];
    (void)state;

    snprintf(want, sizeof(want), "kubeconfig %s: No such file or directory", tp("x/y"));
    assert_string_equal(load_fails(tp("x/y"), NULL, K8S_ECONFIG), want);
    assert_int_equal(k8s_config_load(&(k8s_config){ 0 }, tp("x/y"), NULL, NULL), K8S_ECONFIG);
    load_fails("", NULL, K8S_EINVAL);
}

static void test_malformed_yaml(void **state)
{
    const char *m;
    char want[PATH_MAX + 64];
    (void)state;

    wfile("kc", "clusters:\n- name: c\n  cluster: {server: [unclosed\nusers: []\n");
    m = load_fails(tp("kc"), NULL, K8S_ECONFIG);
    snprintf(want, sizeof(want), "kubeconfig %s: invalid YAML at line ", tp("kc"));
    assert_contains(m, want);
    wfile("kc2", "a: b\n  c: d: e\n");
    m = load_fails(tp("kc2"), NULL, K8S_ECONFIG);
    assert_contains(m, tp("kc2"));
    assert_contains(m, "invalid YAML at line 2, column");
}

static void test_wrong_types(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "- just\n- a list\n", "expected a mapping at the top level, not a list" },
        { "clusters: foo\n", "line 1: clusters: expected a list, not a string" },
        { "clusters: {a: b}\n", "clusters: expected a list, not a mapping" },
        { "users:\n- plain\n", "line 2: users[0]: expected a mapping, not a string" },
        { "contexts:\n- name: [a]\n", "contexts[0]: name: expected a string, not a list" },
        { "contexts:\n- name: a\n  context: [x]\n", "contexts[0]: context: expected a mapping" },
        { "current-context: {a: b}\n", "current-context: expected a string, not a mapping" },
        { "current-context: x\n"
          "clusters: [{name: c, cluster: {server: [a, b]}}]\n"
          "contexts: [{name: x, context: {cluster: c}}]\n",
          "line 2: cluster \"c\": server: expected a string, not a list" },
        { "current-context: x\n"
          "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
          "users: [{name: u, user: {token: {a: b}}}]\n"
          "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
          "user \"u\": token: expected a string, not a mapping" },
        { "current-context: x\n"
          "clusters: [{name: c, cluster: {server: 'https://a'}}]\n"
          "users: [{name: u, user: {exec: {apiVersion: v, command: c, args: a}}}]\n"
          "contexts: [{name: x, context: {cluster: c, user: u}}]\n",
          "user \"u\": exec: args: expected a list, not a string" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m;
        wfile("kc", "%s", cases[i].text);
        m = load_fails(tp("kc"), NULL, K8S_ECONFIG);
        assert_contains(m, tp("kc"));
        assert_contains(m, cases[i].want);
    }
}

static void test_duplicate_names(void **state)
{
    (void)state;
    wfile("kc", "current-context: x\n"
                "clusters:\n"
                "- {name: c, cluster: {server: 'https://a'}}\n"
                "- {name: c, cluster: {server: 'https://b'}}\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG),
                    "line 4: clusters: duplicate name \"c\"");
}

static void test_unreadable_cert(void **state)
{
    const char *m;
    char want[PATH_MAX * 3];
    (void)state;

    wfile("k/client.key", KEY_PEM);
    write_kc("k/kc", "    server: https://h\n",
             "    client-certificate: missing.crt\n    client-key: client.key\n");
    m = load_fails(tp("k/kc"), NULL, K8S_ECONFIG);
    snprintf(want, sizeof(want), "kubeconfig %s: user \"u\": client-certificate %s: "
             "No such file or directory", tp("k/kc"), tp("k/missing.crt"));
    assert_string_equal(m, want);

    /* a folder where the CA file should be */
    mkdir(tp("k/ca-dir"), 0755);
    write_kc("k/kc2", "    server: https://h\n    certificate-authority: ca-dir\n", "");
    m = load_fails(tp("k/kc2"), NULL, K8S_ECONFIG);
    snprintf(want, sizeof(want), "kubeconfig %s: cluster \"c\": certificate-authority %s: "
             "Is a directory", tp("k/kc2"), tp("k/ca-dir"));
    assert_string_equal(m, want);

    /* an empty key file */
    wfile("k/empty.key", "%s", "");
    wfile("k/client.crt", CERT_PEM);
    write_kc("k/kc3", "    server: https://h\n",
             "    client-certificate: client.crt\n    client-key: empty.key\n");
    m = load_fails(tp("k/kc3"), NULL, K8S_ECONFIG);
    assert_contains(m, tp("k/empty.key"));
    assert_contains(m, "file is empty");
    assert_not_contains(m, "BEGIN");

    /* a file the process may not read (meaningless as root) */
    if (geteuid() != 0) {
        wfile("k/locked.crt", CERT_PEM);
        chmod(tp("k/locked.crt"), 0);
        write_kc("k/kc4", "    server: https://h\n",
                 "    client-certificate: locked.crt\n    client-key: client.key\n");
        m = load_fails(tp("k/kc4"), NULL, K8S_ECONFIG);
        assert_contains(m, tp("k/locked.crt"));
        assert_contains(m, "Permission denied");
    }
}

static void test_cert_without_key(void **state)
{
    char user[4096];
    (void)state;

    snprintf(user, sizeof(user), "    client-certificate-data: %s\n", b64(CERT_PEM, 0));
    write_kc("kc", "    server: https://h\n", user);
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG),
                    "user \"u\" has a client certificate but no client key");
    snprintf(user, sizeof(user), "    client-key-data: %s\n", b64(KEY_PEM, 0));
    write_kc("kc", "    server: https://h\n", user);
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG),
                    "user \"u\" has a client key but no client certificate");
}

static void test_bad_base64(void **state)
{
    const char *m;
    char want[PATH_MAX + 128];
    (void)state;

    write_kc("kc", "    server: https://h\n",
             "    client-certificate-data: Zm9v\n"
             "    client-key-data: SECRETKEYMATERIAL*notbase64\n");
    m = load_fails(tp("kc"), NULL, K8S_ECONFIG);
    snprintf(want, sizeof(want), "kubeconfig %s: user \"u\": client-key-data is not valid base64",
             tp("kc"));
    assert_string_equal(m, want);
    assert_not_contains(m, "SECRETKEY");

    write_kc("kc2", "    server: https://h\n    certificate-authority-data: abc\n", "");
    assert_contains(load_fails(tp("kc2"), NULL, K8S_ECONFIG),
                    "cluster \"c\": certificate-authority-data is not valid base64");
}

static void test_exec_config(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    write_kc("x/kc", "    server: https://h\n",
             "    exec:\n"
             "      apiVersion: " V1BETA1 "\n"
             "      command: bin/get-token\n"
             "      args: [\"--cluster\", \"my cluster\", \"\", 42]\n"
             "      env:\n"
             "      - {name: AWS_PROFILE, value: prod}\n"
             "      - name: EMPTY\n"
             "      - {name: WITH_EQ, value: \"a=b\"}\n"
             "      installHint: install it\n"
             "      provideClusterInfo: false\n");
    assert_int_equal(k8s_config_load(&cfg, tp("x/kc"), NULL, &err), K8S_OK);
    assert_non_null(cfg.exec);
    assert_string_equal(cfg.exec->api_version, V1BETA1);
    assert_string_equal(cfg.exec->argv[0], tp("x/bin/get-token"));
    assert_string_equal(cfg.exec->argv[1], "--cluster");
    assert_string_equal(cfg.exec->argv[2], "my cluster");
    assert_string_equal(cfg.exec->argv[3], "");
    assert_string_equal(cfg.exec->argv[4], "42");
    assert_null(cfg.exec->argv[5]);
    assert_string_equal(cfg.exec->env[0], "AWS_PROFILE=prod");
    assert_string_equal(cfg.exec->env[1], "EMPTY=");
    assert_string_equal(cfg.exec->env[2], "WITH_EQ=a=b");
    assert_null(cfg.exec->env[3]);
    assert_null(cfg.token);
    k8s_config_release(&cfg);

    /* a bare command is left for the PATH lookup; no args, no env */
    write_kc("x/kc2", "    server: https://h\n",
             "    exec: {apiVersion: " V1 ", command: kubelogin}\n");
    assert_int_equal(k8s_config_load(&cfg, tp("x/kc2"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.exec->argv[0], "kubelogin");
    assert_null(cfg.exec->argv[1]);
    assert_null(cfg.exec->env[0]);
    k8s_config_release(&cfg);

    /* an absolute command is kept */
    write_kc("x/kc3", "    server: https://h\n",
             "    exec: {apiVersion: " V1 ", command: /usr/bin/true}\n");
    assert_int_equal(k8s_config_load(&cfg, tp("x/kc3"), NULL, &err), K8S_OK);
    assert_string_equal(cfg.exec->argv[0], "/usr/bin/true");
    k8s_config_release(&cfg);
}

static void test_exec_config_errors(void **state)
{
    (void)state;
    write_kc("kc", "    server: https://h\n", "    exec: {command: x}\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG),
                    "user \"u\": exec: apiVersion is missing");
    write_kc("kc", "    server: https://h\n", "    exec: {apiVersion: " V1 "}\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG), "user \"u\": exec: command is missing");
    write_kc("kc", "    server: https://h\n",
             "    exec: {apiVersion: " V1 ", command: x, env: [{value: v}]}\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG),
                    "user \"u\": exec: env[0]: name is missing");
    write_kc("kc", "    server: https://h\n",
             "    exec: {apiVersion: " V1 ", command: x, env: [a]}\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG), "exec: env: expected");
    write_kc("kc", "    server: https://h\n", "    exec: [a]\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG),
                    "user \"u\": exec: expected a mapping, not a list");
}

static void test_unsupported_auth(void **state)
{
    const char *m;
    (void)state;

    write_kc("kc", "    server: https://h\n", "    username: admin\n    password: hunter2\n");
    m = load_fails(tp("kc"), NULL, K8S_ECONFIG);
    assert_contains(m, tp("kc"));
    assert_contains(m, "user \"u\": basic authentication (username/password) is not supported");
    assert_not_contains(m, "hunter2");

    write_kc("kc", "    server: https://h\n",
             "    auth-provider:\n      name: oidc\n      config: {id-token: SECRET}\n");
    m = load_fails(tp("kc"), NULL, K8S_ECONFIG);
    assert_contains(m, "auth-provider is not supported");
    assert_not_contains(m, "SECRET");

    write_kc("kc", "    server: https://h\n", "    token: t\n    as: someone\n");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG), "impersonation (as) is not supported");

    write_kc("kc", "    server: https://h\n    proxy-url: http://proxy:3128\n", "");
    assert_contains(load_fails(tp("kc"), NULL, K8S_ECONFIG), "proxy-url is not supported");
}

/* --------------------------------------------------------- in-cluster */

#define SA "sa/var/run/secrets/kubernetes.io/serviceaccount/"

static void test_incluster_ipv4(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    wfile(SA "token", "eyJhbGciOi\n");
    wfile(SA "ca.crt", CA_PEM);
    wfile(SA "namespace", "  kube-system \n");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_OK);
    assert_string_equal(cfg.server, "https://10.96.0.1:443");
    assert_string_equal(cfg.token_file, tp(SA "token"));
    assert_null(cfg.token);
    assert_blob(&cfg.ca, CA_PEM);
    assert_string_equal(cfg.namespace, "kube-system");
    assert_null(cfg.context);
    assert_string_equal(cfg.source, "in-cluster");
    assert_null(cfg.exec);
    assert_int_equal(cfg.client_cert.len, 0);
    k8s_config_release(&cfg);

    /* the root may end in '/' */
    {
        char root[PATH_MAX];
        snprintf(root, sizeof(root), "%s/", tp("sa"));
        assert_int_equal(k8s_config_load_incluster(&cfg, root, NULL), K8S_OK);
        assert_string_equal(cfg.token_file, tp(SA "token"));
        k8s_config_release(&cfg);
    }
}

static void test_incluster_ipv6(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    wfile(SA "token", "tok");
    wfile(SA "ca.crt", CA_PEM);
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_OK);
    assert_string_equal(cfg.server, "https://[fd00:10:96::1]:6443");
    assert_string_equal(cfg.namespace, "default");   /* no namespace file */
    k8s_config_release(&cfg);

    /* an empty namespace file also means "default" */
    wfile(SA "namespace", "\n");
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_OK);
    assert_string_equal(cfg.namespace, "default");
    k8s_config_release(&cfg);
}

static void test_incluster_errors(void **state)
{
    k8s_config cfg;
    k8s_err err;
    char want[PATH_MAX + 128];
    (void)state;

    /* no environment */
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_ECONFIG);
    assert_string_equal(err.message, "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT not set");
    assert_cfg_empty(&cfg);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_ECONFIG);
    assert_string_equal(err.message, "not running in a cluster: KUBERNETES_SERVICE_HOST/PORT not set");
    setenv("KUBERNETES_SERVICE_PORT", "https", 1);
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_ECONFIG);
    assert_contains(err.message, "KUBERNETES_SERVICE_PORT \"https\" is not a port number");
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);

    /* missing token */
    wfile(SA "ca.crt", CA_PEM);
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_ECONFIG);
    snprintf(want, sizeof(want), "in-cluster: service account token %s: No such file or directory",
             tp(SA "token"));
    assert_string_equal(err.message, want);
    assert_cfg_empty(&cfg);

    /* missing CA */
    wfile(SA "token", "tok");
    unlink(tp(SA "ca.crt"));
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_ECONFIG);
    snprintf(want, sizeof(want), "in-cluster: service account CA %s: No such file or directory",
             tp(SA "ca.crt"));
    assert_string_equal(err.message, want);
    assert_cfg_empty(&cfg);

    /* a namespace that cannot be read */
    wfile(SA "ca.crt", CA_PEM);
    mkdir(tp(SA "namespace"), 0755);
    assert_int_equal(k8s_config_load_incluster(&cfg, tp("sa"), &err), K8S_ECONFIG);
    assert_contains(err.message, tp(SA "namespace"));
    assert_cfg_empty(&cfg);
}

/* ----------------------------------------------------- exec credentials */

static k8s_exec_config *mk_exec(const char *api, const char *const *argv, const char *const *env)
{
    k8s_exec_config *e = calloc(1, sizeof(*e));
    size_t n = 0, m = 0;
    assert_non_null(e);
    while (argv[n])
        n++;
    while (env && env[m])
        m++;
    e->api_version = strdup(api);
    e->argv = calloc(n + 1, sizeof(char *));
    e->env = calloc(m + 1, sizeof(char *));
    assert_non_null(e->argv);
    assert_non_null(e->env);
    for (size_t i = 0; i < n; i++)
        e->argv[i] = strdup(argv[i]);
    for (size_t i = 0; i < m; i++)
        e->env[i] = strdup(env[i]);
    return e;
}

static void free_exec(k8s_exec_config *e)
{
    for (size_t i = 0; e->argv[i]; i++)
        free(e->argv[i]);
    for (size_t i = 0; e->env[i]; i++)
        free(e->env[i]);
    free(e->argv);
    free(e->env);
    free(e->api_version);
    free(e);
}

/* A plugin printing body (an ExecCredential) and exiting 0. */
static const char *plugin(const char *name, const char *json)
{
    char body[8192];
    snprintf(body, sizeof(body), "cat <<'EOF'\n%s\nEOF\n", json);
    wscript(name, body);
    return tp(name);
}

static int run_exec(const char *api, const char *const *argv, const char *const *env,
                    k8s_exec_credential *cred, k8s_err *err)
{
    k8s_exec_config *e = mk_exec(api, argv, env);
    int rc = k8s_exec_credential_get(e, cred, err);
    free_exec(e);
    return rc;
}

static void test_exec_plugin_token(void **state)
{
    k8s_exec_credential cred;
    k8s_err err;
    (void)state;

    /* the token echoes the arguments: passed as they are, no shell */
    wscript("p",
            "cat <<EOF\n"
            "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":{"
            "\"token\":\"tok[$1][$2][$#]\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}\n"
            "EOF\n");
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), "a b", "$HOME;x", NULL }, NULL,
                              &cred, &err), K8S_OK);
    assert_string_equal(cred.token, "tok[a b][$HOME;x][2]");
    assert_int_equal(cred.expires, 1893553445);
    assert_null(cred.client_cert.data);
    assert_null(cred.client_key.data);
    k8s_exec_credential_release(&cred);
    assert_null(cred.token);

    /* found through PATH; no expiry */
    {
        char path[PATH_MAX * 2];
        const char *old = getenv("PATH");
        char *saved = old ? strdup(old) : NULL;
        plugin("bin/tqu-test-plugin",
               "{\"apiVersion\":\"" V1BETA1 "\",\"kind\":\"ExecCredential\","
               "\"status\":{\"token\":\"from-path\"}}");
        snprintf(path, sizeof(path), "%s:%s", tp("bin"), old ? old : "/usr/bin:/bin");
        setenv("PATH", path, 1);
        assert_int_equal(run_exec(V1BETA1, (const char *[]){ "tqu-test-plugin", NULL }, NULL,
                                  &cred, &err), K8S_OK);
        if (saved)
            setenv("PATH", saved, 1);
        free(saved);
        assert_string_equal(cred.token, "from-path");
        assert_int_equal(cred.expires, 0);
        k8s_exec_credential_release(&cred);
    }
}

static void test_exec_plugin_expiry_formats(void **state)
{
    static const struct {
        const char *ts;
        int64_t want;
    } cases[] = {
        { "2030-01-02T03:04:05Z", 1893553445 },
        { "2030-01-02T03:04:05.123456789Z", 1893553445 },
        { "2030-01-02T05:04:05+02:00", 1893553445 },
        { "2030-01-01T22:34:05-04:30", 1893553445 },
        { "1970-01-01T00:00:00Z", 0 },
    };
    static const char *const bad[] = { "2030-01-02 03:04:05Z", "2030-01-02T03:04:05",
                                       "2030-13-02T03:04:05Z", "tomorrow",
                                       "2030-01-02T03:04:05+0200" };
    k8s_exec_credential cred;
    k8s_err err;
    char json[512];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json), "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                 "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"%s\"}}", cases[i].ts);
        plugin("p", json);
        assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_OK);
        assert_int_equal(cred.expires, cases[i].want);
        k8s_exec_credential_release(&cred);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(json, sizeof(json), "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                 "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"%s\"}}", bad[i]);
        plugin("p", json);
        assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err),
                         K8S_EEXEC);
        assert_contains(err.message, "expirationTimestamp");
        assert_null(cred.token);
    }
}

static void test_exec_plugin_cert_key(void **state)
{
    k8s_exec_credential cred;
    k8s_err err;
    (void)state;

    plugin("p", "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":{"
                "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\nQUJD\\n-----END CERTIFICATE-----\\n\","
                "\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nREVG\\n-----END PRIVATE KEY-----\\n\","
                "\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}");
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_OK);
    assert_null(cred.token);
    assert_blob(&cred.client_cert, "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n");
    assert_blob(&cred.client_key, "-----BEGIN PRIVATE KEY-----\nREVG\n-----END PRIVATE KEY-----\n");
    assert_int_equal(cred.expires, 1893553445);
    k8s_exec_credential_release(&cred);
    assert_null(cred.client_key.data);
}

static void test_exec_plugin_env(void **state)
{
    k8s_exec_credential cred;
    k8s_err err;
    char outdir[PATH_MAX + 16];
    const char *info;
    cJSON *j;
    (void)state;

    wscript("p",
            "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$OUT/info\"\n"
            "printf '%s|%s|%s' \"$FOO\" \"$INHERITED\" \"$EMPTY\" > \"$OUT/env\"\n"
            "if read -r line; then echo yes; else echo no; fi > \"$OUT/stdin\"\n"
            "echo 'some diagnostics' >&2\n"
            "echo '{\"apiVersion\":\"" V1BETA1 "\",\"kind\":\"ExecCredential\","
            "\"status\":{\"token\":\"t\"}}'\n");
    snprintf(outdir, sizeof(outdir), "OUT=%s", tmp);
    setenv("FOO", "ours", 1);
    setenv("INHERITED", "inherited-value", 1);
    setenv("KUBERNETES_EXEC_INFO", "stale", 1);
    assert_int_equal(run_exec(V1BETA1, (const char *[]){ tp("p"), NULL },
                              (const char *[]){ outdir, "FOO=theirs", "EMPTY=", NULL }, &cred,
                              &err), K8S_OK);
    assert_string_equal(cred.token, "t");
    k8s_exec_credential_release(&cred);

    assert_string_equal(slurp(tp("env")), "theirs|inherited-value|");
    assert_string_equal(slurp(tp("stdin")), "no\n");
    info = slurp(tp("info"));
    assert_non_null(info);
    j = cJSON_Parse(info);
    assert_non_null(j);
    assert_string_equal(k8s_json_str(j, "apiVersion", NULL), V1BETA1);
    assert_string_equal(k8s_json_str(j, "kind", NULL), "ExecCredential");
    assert_true(cJSON_IsFalse(k8s_json_get(j, "spec", "interactive", NULL)));
    cJSON_Delete(j);

    /* our own environment is untouched */
    assert_string_equal(getenv("FOO"), "ours");
    assert_string_equal(getenv("KUBERNETES_EXEC_INFO"), "stale");
    assert_null(getenv("OUT"));
    unsetenv("FOO");
    unsetenv("INHERITED");
    unsetenv("KUBERNETES_EXEC_INFO");
}

static void test_exec_plugin_fails(void **state)
{
    k8s_exec_credential cred;
    k8s_err err;
    (void)state;

    wscript("p", "echo '{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
                 "\"status\":{\"token\":\"t\"}}'\n"
                 "printf 'error: login required\\nsecond line\\n' >&2\nexit 3\n");
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_EEXEC);
    assert_int_equal(err.rc, K8S_EEXEC);
    assert_contains(err.message, tp("p"));
    assert_contains(err.message, "exited with status 3: error: login required second line");
    assert_int_not_equal(err.message[strlen(err.message) - 1], ' ');
    assert_null(strchr(err.message, '\n'));
    assert_null(cred.token);

    /* a long stderr is cut short */
    wscript("p", "i=0; while [ $i -lt 200 ]; do printf 'xxxxxxxxxx' >&2; i=$((i+1)); done\nexit 1\n");
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_EEXEC);
    assert_contains(err.message, "exited with status 1: xxxx");
    assert_true(strlen(err.message) < 600);

    /* killed by a signal */
    wscript("p", "kill -TERM $$\n");
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_EEXEC);
    assert_contains(err.message, "killed by signal 15");

    /* not found, not executable */
    assert_int_equal(run_exec(V1, (const char *[]){ tp("nonexistent"), NULL }, NULL, &cred, &err),
                     K8S_EEXEC);
    assert_contains(err.message, tp("nonexistent"));
    /* posix_spawn reports the failed exec; where it cannot (valgrind runs
     * it as a plain fork) the child exits 127 like a shell would */
    if (!strstr(err.message, "cannot run it: No such file or directory"))
        assert_contains(err.message, "exited with status 127");
    wfile("noexec", "#!/bin/sh\n");
    if (geteuid() != 0) {
        assert_int_equal(run_exec(V1, (const char *[]){ tp("noexec"), NULL }, NULL, &cred, &err),
                         K8S_EEXEC);
        assert_contains(err.message, "Permission denied");
    }
    assert_int_equal(run_exec(V1, (const char *[]){ "tqu-no-such-plugin-anywhere", NULL }, NULL,
                              &cred, &err), K8S_EEXEC);
    assert_contains(err.message, "tqu-no-such-plugin-anywhere");

    /* misuse */
    assert_int_equal(k8s_exec_credential_get(NULL, &cred, &err), K8S_EINVAL);
}

static void test_exec_plugin_bad_output(void **state)
{
    static const struct {
        const char *out, *want;
    } cases[] = {
        { "this is not json, token=SECRET123", "output is not an ExecCredential JSON object" },
        { "", "output is not an ExecCredential JSON object" },
        { "[1,2]", "output is not an ExecCredential JSON object" },
        { "{\"apiVersion\":\"" V1 "\",\"kind\":\"Pod\",\"status\":{\"token\":\"SECRET123\"}}",
          "(kind \"Pod\")" },
        { "{\"apiVersion\":\"" V1BETA1 "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"SECRET123\"}}",
          "configured for apiVersion " V1 " but returned \"" V1BETA1 "\"" },
        { "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\"}", "has no status" },
        { "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":{}}",
          "neither a token nor a client certificate and key" },
        { "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"\"}}",
          "neither a token nor a client certificate and key" },
        { "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":"
          "{\"clientCertificateData\":\"SECRET123\"}}",
          "returned a client certificate without a key" },
        { "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":"
          "{\"token\":\"SECRET123\",\"clientKeyData\":\"k\"}}",
          "returned a client key without a certificate" },
    };
    k8s_exec_credential cred;
    k8s_err err;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[1024];
        snprintf(body, sizeof(body), "printf '%%s' '%s'\n", cases[i].out);
        wscript("p", body);
        assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err),
                         K8S_EEXEC);
        assert_contains(err.message, cases[i].want);
        assert_not_contains(err.message, "SECRET123");
        assert_null(cred.token);
        assert_null(cred.client_cert.data);
    }
}

static void test_exec_plugin_too_much_output(void **state)
{
    k8s_exec_credential cred;
    k8s_err err;
    (void)state;

    wscript("p", "head -c 3000000 /dev/zero | tr '\\0' 'a'\n");
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_EEXEC);
    assert_contains(err.message, "printed more than 1048576 bytes");
}

static int gone_or_zombie(pid_t pid)
{
    char path[64], *st;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    st = slurp(path);
    if (!st)
        return 1;
    st = strrchr(st, ')');
    return st && st[1] == ' ' && st[2] == 'Z';
}

static void test_exec_plugin_hangs(void **state)
{
    k8s_exec_credential cred;
    k8s_err err;
    struct timespec a, b;
    double secs;
    char *pidtext;
    pid_t child;
    (void)state;

    /* it starts a child of its own (keeping stdout open) and waits */
    wscript("p", "sleep 60 &\necho $! > \"$OUT/child\"\nwait\n");
    k8s__exec_timeout_ms = 1000;
    {
        char outdir[PATH_MAX + 16];
        snprintf(outdir, sizeof(outdir), "OUT=%s", tmp);
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL },
                                  (const char *[]){ outdir, NULL }, &cred, &err), K8S_EEXEC);
        clock_gettime(CLOCK_MONOTONIC, &b);
    }
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs >= 0.9);
    assert_true(secs < 5);
    assert_contains(err.message, "no answer within 1000 ms, killed");
    assert_null(cred.token);

    /* the plugin's own child was killed with it */
    pidtext = slurp(tp("child"));
    assert_non_null(pidtext);
    child = (pid_t)atoi(pidtext);
    assert_true(child > 0);
    for (int i = 0; i < 200 && !gone_or_zombie(child); i++)
        usleep(10000);
    assert_true(gone_or_zombie(child));

    /* closing stdout does not end the wait: the exit is awaited too */
    wscript("p", "exec >/dev/null 2>&1\nsleep 60\n");
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(run_exec(V1, (const char *[]){ tp("p"), NULL }, NULL, &cred, &err), K8S_EEXEC);
    clock_gettime(CLOCK_MONOTONIC, &b);
    secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    assert_true(secs < 5);
    assert_contains(err.message, "no answer within 1000 ms");
}

/* --------------------------------------------------- fault injection */

static void write_rich_config(void)
{
    char user[8192], env[PATH_MAX * 2];

    wfile("r1/ca.crt", CA_PEM);
    wfile("r1/tok", "token-from-file\n");
    wfile("r2/client.crt", CERT_PEM);
    wfile("r2/client.key", KEY_PEM);
    snprintf(user, sizeof(user),
             "- name: exec-user\n"
             "  user:\n"
             "    client-certificate-data: %s\n"
             "    client-key-data: %s\n"
             "    token: static\n"
             "    tokenFile: tok\n"
             "    exec:\n"
             "      apiVersion: " V1 "\n"
             "      command: ./plugin\n"
             "      args: [a, b, c]\n"
             "      env: [{name: A, value: '1'}, {name: B, value: '2'}]\n",
             b64(CERT_PEM, 0), b64(KEY_PEM, 0));
    wfile("r1/config",
          "current-context: rich\n"
          "clusters:\n"
          "- name: main\n"
          "  cluster:\n"
          "    server: https://main:6443/\n"
          "    certificate-authority: ca.crt\n"
          "    tls-server-name: api.internal\n"
          "users:\n%s"
          "contexts:\n"
          "- name: rich\n"
          "  context: {cluster: main, user: exec-user, namespace: ns}\n", user);
    wfile("r2/config",
          "current-context: other\n"
          "clusters:\n"
          "- name: main\n"
          "  cluster: {server: 'https://ignored'}\n"
          "- name: two\n"
          "  cluster: {server: 'https://two', insecure-skip-tls-verify: true}\n"
          "users:\n"
          "- name: files\n"
          "  user: {client-certificate: client.crt, client-key: client.key}\n"
          "contexts:\n"
          "- name: other\n"
          "  context: {cluster: two, user: files}\n");
    snprintf(env, sizeof(env), "%s::%s", tp("r1/config"), tp("r2/config"));
    setenv("KUBECONFIG", env, 1);
}

static void fault_loop_config(const char *context)
{
    k8s_config cfg;
    k8s_err err;
    long n;
    int rc, failed;

    for (n = 1; n < 100000; n++) {
        failalloc_fail_at(n);
        rc = k8s_config_load(&cfg, NULL, context, &err);
        failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_non_null(cfg.server);
            k8s_config_release(&cfg);
            break;
        }
        if (rc != K8S_ENOMEM)
            fail_msg("allocation %ld: rc %d (%s)", n, rc, err.message);
        assert_int_equal(err.rc, K8S_ENOMEM);
        assert_cfg_empty(&cfg);
    }
    print_message("config load (context %s): %ld allocations failed in turn\n",
                  context ? context : "current", n - 1);
    assert_true(n > 10);    /* the loop did reach into the loader */
}

static void test_fault_config_load(void **state)
{
    k8s_config cfg;
    k8s_err err;
    (void)state;

    write_rich_config();
    /* sanity: what the rich config gives when nothing fails */
    if (k8s_config_load(&cfg, NULL, NULL, &err) != K8S_OK)
        fail_msg("%s", err.message);
    assert_string_equal(cfg.server, "https://main:6443");
    assert_string_equal(cfg.tls_server_name, "api.internal");
    assert_blob(&cfg.ca, CA_PEM);
    assert_blob(&cfg.client_cert, CERT_PEM);
    assert_blob(&cfg.client_key, KEY_PEM);
    assert_string_equal(cfg.token, "static");
    assert_string_equal(cfg.token_file, tp("r1/tok"));
    assert_string_equal(cfg.exec->argv[0], tp("r1/./plugin"));
    assert_string_equal(cfg.exec->argv[3], "c");
    assert_string_equal(cfg.exec->env[1], "B=2");
    assert_string_equal(cfg.namespace, "ns");
    k8s_config_release(&cfg);

    fault_loop_config(NULL);
    fault_loop_config("other");
}

static void test_fault_incluster(void **state)
{
    k8s_config cfg;
    k8s_err err;
    long n;
    int rc, failed;
    (void)state;

    wfile(SA "token", "tok");
    wfile(SA "ca.crt", CA_PEM);
    wfile(SA "namespace", "ns\n");
    setenv("KUBERNETES_SERVICE_HOST", "::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    for (n = 1; n < 10000; n++) {
        failalloc_fail_at(n);
        rc = k8s_config_load_incluster(&cfg, tp("sa"), &err);
        failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_string_equal(cfg.server, "https://[::1]:443");
            assert_string_equal(cfg.namespace, "ns");
            k8s_config_release(&cfg);
            break;
        }
        if (rc != K8S_ENOMEM)
            fail_msg("allocation %ld: rc %d (%s)", n, rc, err.message);
        assert_cfg_empty(&cfg);
    }
    print_message("in-cluster load: %ld allocations failed in turn\n", n - 1);
    assert_true(n > 5);
}

static void test_fault_exec_credential(void **state)
{
    k8s_exec_credential cred;
    k8s_exec_config *e;
    k8s_err err;
    long n;
    int rc, failed;
    (void)state;

    plugin("p", "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":{"
                "\"token\":\"tok\",\"clientCertificateData\":\"CERT\",\"clientKeyData\":\"KEY\","
                "\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}");
    e = mk_exec(V1, (const char *[]){ tp("p"), "arg", NULL }, (const char *[]){ "X=1", NULL });
    for (n = 1; n < 10000; n++) {
        failalloc_fail_at(n);
        rc = k8s_exec_credential_get(e, &cred, &err);
        failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_string_equal(cred.token, "tok");
            assert_blob(&cred.client_key, "KEY");
            assert_int_equal(cred.expires, 1893553445);
            k8s_exec_credential_release(&cred);
            break;
        }
        /* cJSON reports an allocation failure while parsing as a parse
         * failure: that one shows as a bad-output error. */
        if (rc != K8S_ENOMEM &&
            !(rc == K8S_EEXEC && strstr(err.message, "not an ExecCredential JSON object")))
            fail_msg("allocation %ld: rc %d (%s)", n, rc, err.message);
        assert_null(cred.token);
        assert_null(cred.client_cert.data);
        assert_null(cred.client_key.data);
    }
    print_message("exec credential: %ld allocations failed in turn\n", n - 1);
    assert_true(n > 5);
    free_exec(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_single_file_relative_paths),
        T(test_relative_kubeconfig_path),
        T(test_data_variants),
        T(test_base64_helper),
        T(test_token_and_token_file),
        T(test_token_file_missing),
        T(test_tls_options),
        T(test_kubeconfig_env_merge),
        T(test_kubeconfig_env_current_context_later_file),
        T(test_kubeconfig_env_none_exist),
        T(test_kubeconfig_env_unreadable_entry),
        T(test_home_config),
        T(test_no_config_anywhere),
        T(test_fallback_to_incluster),
        T(test_context_selection),
        T(test_unknown_context),
        T(test_missing_cluster_or_user),
        T(test_no_current_context),
        T(test_missing_file),
        T(test_malformed_yaml),
        T(test_wrong_types),
        T(test_duplicate_names),
        T(test_unreadable_cert),
        T(test_cert_without_key),
        T(test_bad_base64),
        T(test_exec_config),
        T(test_exec_config_errors),
        T(test_unsupported_auth),
        T(test_incluster_ipv4),
        T(test_incluster_ipv6),
        T(test_incluster_errors),
        T(test_exec_plugin_token),
        T(test_exec_plugin_expiry_formats),
        T(test_exec_plugin_cert_key),
        T(test_exec_plugin_env),
        T(test_exec_plugin_fails),
        T(test_exec_plugin_bad_output),
        T(test_exec_plugin_too_much_output),
        T(test_exec_plugin_hangs),
        T(test_fault_config_load),
        T(test_fault_incluster),
        T(test_fault_exec_credential),
#undef T
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
