/*
 * test_paas.c - classification of darwin-client paas_check output and the
 * update.sh edit that switches the upgrade's PaaS check off
 * (controller/upgrade/paas.c).
 *
 * The outputs below are made up (the vendor documents no format) but
 * shaped like real tool output: log prefixes, colours, tables, Chinese
 * messages, carriage returns. The update.sh edits run on files in a
 * mkdtemp folder and check the bytes, the mode, the backup and that no
 * temporary file is left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "k8s.h"
#include "failalloc.h"
#include "testutil.h"
#include "host/fsutil.h"
#include "upgrade/paas.h"

static char tmp[PATH_MAX];

static int setup(void **state)
{
    (void)state;
    return test_mkdtemp(tmp, sizeof(tmp), "test_paas");
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(tmp);
}

/* Classify text; fail the test on an error. Caller releases r. */
static void classify(const char *text, int exit_code, tqu_paas_result *r)
{
    assert_int_equal(tqu_paas_classify_text(text, strlen(text), exit_code, r), K8S_OK);
}

static unsigned long failed_count(const tqu_paas_result *r, const char *name)
{
    const tqu_paas_component *c = tqu_paas_component_get(r, name);
    assert_non_null(c);
    return c->failed.count;
}

/* The names of the failing components, "a,b", in table order. */
static const char *failing(const tqu_paas_result *r)
{
    static char buf[512];
    buf[0] = '\0';
    for (int i = 0; i < TQU_PAAS_NCOMPONENTS; i++)
        if (r->comp[i].name && r->comp[i].failed.count) {
            if (buf[0])
                strcat(buf, ",");
            strcat(buf, r->comp[i].name);
        }
    return buf;
}

/* ---------------------------------------------------------------- verdicts */

static void test_pass_english(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("2024/12/05 22:01:02 [INFO] start paas_check, template=/qaxdata/cli/tq_paas/darwin_template_x.yaml\n"
             "2024/12/05 22:01:03 [INFO] checking es ... ok (green, 3 nodes)\n"
             "2024/12/05 22:01:03 [INFO] checking mongo ... ok\n"
             "2024/12/05 22:01:04 [INFO] checking redis16379 ... PASS\n"
             "2024/12/05 22:01:04 [INFO] checking kafka ... healthy, 0 errors\n"
             "2024/12/05 22:01:05 [INFO] flink jobmanager: running, failed jobs: 0\n"
             "2024/12/05 22:01:05 [INFO] sabre: error=nil\n"
             "2024/12/05 22:01:06 [INFO] all services checked: yes\n"
             "2024/12/05 22:01:06 [INFO] paas check finished, failed: 0, passed: 12\n",
             0, &r);
    assert_int_equal(r.verdict, TQU_PAAS_PASS);
    assert_string_equal(r.code, "Passed");
    assert_string_equal(failing(&r), "");
    assert_int_equal(r.lines, 9);
    assert_int_equal(r.unattributed.count, 0);
    assert_contains(r.message, "PaaS check passed: darwin-client exited 0 and named no failing component (9 lines)");
    tqu_paas_release(&r);
}

static void test_pass_chinese(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("开始检查PaaS组件\n"
             "es集群状态：正常\n"
             "mongo检查通过\n"
             "检查完成，flink无异常\n"
             "失败：0\n"
             "共检查 12 个组件，全部通过\n",
             0, &r);
    assert_int_equal(r.verdict, TQU_PAAS_PASS);
    assert_string_equal(failing(&r), "");
    tqu_paas_release(&r);
}

static void test_only_edr_english(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("[INFO] checking mongodb ... ok\n"
             "[INFO] checking redis ... ok\n"
             "[ERROR] es cluster health is red: 2 unassigned shards, check FAILED\n"
             "[WARN] flink-jobmanager-0 0/1 NotReady\n"
             "[INFO] postgres ... ok\n"
             "paas_check: 2 component(s) failed\n",
             1, &r);
    assert_int_equal(r.verdict, TQU_PAAS_ONLY_EDR_COMPONENTS);
    assert_string_equal(r.code, "OnlyEdrComponentsFailed");
    assert_string_equal(failing(&r), "es,flink");
    const tqu_paas_component *es = tqu_paas_component_get(&r, "es");
    assert_int_equal(es->failed.nkept, 1);
    assert_int_equal(es->failed.line_no[0], 3);
    assert_string_equal(es->failed.text[0], "[ERROR] es cluster health is red: 2 unassigned shards, check FAILED");
    assert_true(es->edr);
    assert_int_equal(r.unattributed.count, 1);       /* the summary line names no component */
    assert_int_equal(r.unattributed.line_no[0], 6);
    assert_contains(r.message, "only EDR components failed the PaaS check (es, flink; darwin-client exited 1, 6 lines)");
    assert_contains(r.message, "es line 3 \"[ERROR] es cluster health");
    assert_contains(r.message, "flink line 4 ");
    tqu_paas_release(&r);
}

static void test_only_edr_chinese(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("检查组件 mongo ... 正常\n"
             "检查组件 sabre ... 失败\n"
             "ES服务异常，请检查\n"
             "组件elasticsearch状态不健康\n",
             3, &r);
    assert_int_equal(r.verdict, TQU_PAAS_ONLY_EDR_COMPONENTS);
    assert_string_equal(failing(&r), "es,sabre");
    assert_int_equal(failed_count(&r, "es"), 2);
    assert_int_equal(failed_count(&r, "mongodb"), 0);
    tqu_paas_release(&r);
}

/* EDR failures with exit 0 are still EDR failures. */
static void test_only_edr_exit_zero(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("sabre-server: unhealthy\n", 0, &r);
    assert_int_equal(r.verdict, TQU_PAAS_ONLY_EDR_COMPONENTS);
    tqu_paas_release(&r);
}

static void test_other_components(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("[INFO] checking es ... ok\n"
             "[ERROR] mongodb27017: connection error: connection refused (10.0.0.5:27017)\n"
             "[ERROR] es failed: cluster red\n"
             "[INFO] redis: ok\n"
             "[ERROR] ck-server-1 unhealthy\n"
             "[ERROR] zk-0 not ready\n",
             1, &r);
    assert_int_equal(r.verdict, TQU_PAAS_OTHER_COMPONENTS);
    assert_string_equal(r.code, "OtherComponentsFailed");
    assert_string_equal(failing(&r), "es,mongodb,zookeeper,clickhouse");
    assert_contains(r.message, "PaaS components failed the check: mongodb, zookeeper, clickhouse (and EDR: es); repair them before the upgrade (darwin-client exited 1, 6 lines)");
    assert_contains(r.message, "mongodb line 2 \"[ERROR] mongodb27017: connection error");
    tqu_paas_release(&r);
}

static void test_other_components_chinese(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("正在检查 kafka\n"
             "kafka 未就绪 (0/3)\n"
             "检查 postgres25432：错误，无法连接\n"
             "redis：正常\n",
             2, &r);
    assert_int_equal(r.verdict, TQU_PAAS_OTHER_COMPONENTS);
    assert_string_equal(failing(&r), "postgres,kafka");
    tqu_paas_release(&r);
}

static void test_unknown_failure(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("panic: runtime error: invalid memory address or nil pointer dereference\n"
             "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x8f3c2a]\n"
             "goroutine 1 [running]:\n",
             2, &r);
    assert_int_equal(r.verdict, TQU_PAAS_UNKNOWN_FAILURE);
    assert_string_equal(r.code, "UnknownFailure");
    assert_string_equal(failing(&r), "");
    assert_int_equal(r.unattributed.count, 1);
    assert_contains(r.message, "darwin-client paas_check exited 2 but no known component was named in a failure line (3 lines)");
    assert_contains(r.message, "first at line 1: \"panic: runtime error");
    tqu_paas_release(&r);

    /* nothing at all, killed */
    classify("", -1, &r);
    assert_int_equal(r.verdict, TQU_PAAS_UNKNOWN_FAILURE);
    assert_int_equal(r.lines, 0);
    assert_contains(r.message, "did not exit normally");
    tqu_paas_release(&r);
}

/* ------------------------------------------------------------------- traps */

static void test_word_traps(void **state)
{
    tqu_paas_result r;
    (void)state;
    /* "es" inside words; failure words that name no component */
    classify("checking services ... failed: yes\n"
             "does the check fail? yes\n"
             "Elasticsearch? no: esxi host error\n"      /* "Elasticsearch?" is es: see below */
             "nodes: errors in resources\n"
             "pgbouncer error\n"
             "redisx error\n"
             "eses failed\n",
             0, &r);
    assert_string_equal(failing(&r), "es");       /* only the Elasticsearch line */
    assert_int_equal(failed_count(&r, "es"), 1);
    assert_int_equal(tqu_paas_component_get(&r, "es")->failed.line_no[0], 3);
    tqu_paas_release(&r);

    classify("checking services ... failed: yes\n"
             "does the check fail? yes\n"
             "services error\n"
             "pgbouncer error\n"
             "redisx error\n"
             "eses failed\n",
             0, &r);
    assert_int_equal(r.verdict, TQU_PAAS_PASS);    /* exit 0, no component */
    assert_int_equal(r.unattributed.count, 6);
    assert_int_equal(r.unattributed.nkept, TQU_PAAS_KEEP_LINES);
    assert_contains(r.message, "6 failure lines named no component");
    tqu_paas_release(&r);

    /* not failure words: failover, errorless names, negations */
    classify("es failover completed\n"
             "mongo: no errors\n"
             "redis errors: 0\n"
             "kafka errors=0\n"
             "flink failed=none\n"
             "sabre err=<nil> error: <nil>\n"
             "etcd: 0 failures\n"
             "zk: without error\n"
             "pg not failed\n"
             "ck failures: false\n",
             0, &r);
    assert_int_equal(r.verdict, TQU_PAAS_PASS);
    assert_string_equal(failing(&r), "");
    tqu_paas_release(&r);

    /* ...but these are failures */
    classify("redis errors: 3\n"
             "kafka error 0x80004005\n"
             "etcd failed: 0.5% of requests\n"
             "minio: 0, 1 failed\n",
             0, &r);
    assert_string_equal(failing(&r), "redis,kafka,etcd,minio");
    assert_int_equal(r.verdict, TQU_PAAS_OTHER_COMPONENTS);
    tqu_paas_release(&r);
}

static void test_colours_and_carriage_returns(void **state)
{
    tqu_paas_result r;
    (void)state;
    classify("\x1b[32m[INFO]\x1b[0m checking es ... \x1b[32mOK\x1b[0m\r\n"
             "\x1b[1;31mFAILED\x1b[0m\x1b[1mflink\x1b[0m\r\n"
             "\x1b]0;darwin-client\x07progress 50%\rprogress 100%\n",
             1, &r);
    assert_int_equal(r.verdict, TQU_PAAS_ONLY_EDR_COMPONENTS);
    assert_string_equal(failing(&r), "flink");
    /* colour changes separate words; they are not kept */
    assert_string_equal(tqu_paas_component_get(&r, "flink")->failed.text[0], "FAILED flink");
    tqu_paas_release(&r);
    /* other control characters do not reach the kept lines */
    classify("\a\bredis\x01" "error\x7f\n", 1, &r);
    assert_string_equal(tqu_paas_component_get(&r, "redis")->failed.text[0], "redis error");
    tqu_paas_release(&r);
}

/* Any split of the input gives the same answer as the whole. */
static void test_chunking(void **state)
{
    const char *text = "\x1b[31mERROR\x1b[0m 组件 mongo 失败\nes: ok\n检查 sabre：异常\nlast line without newline: kafka error";
    size_t len = strlen(text);
    tqu_paas_result whole, r;
    (void)state;
    classify(text, 1, &whole);
    assert_string_equal(failing(&whole), "sabre,mongodb,kafka");
    for (size_t step = 1; step <= 7; step++) {
        assert_int_equal(tqu_paas_init(&r), K8S_OK);
        for (size_t off = 0; off < len; off += step)
            assert_int_equal(tqu_paas_feed(&r, text + off, off + step > len ? len - off : step), K8S_OK);
        assert_int_equal(tqu_paas_finish(&r, 1), K8S_OK);
        assert_string_equal(r.message, whole.message);
        assert_int_equal(r.lines, whole.lines);
        tqu_paas_release(&r);
    }
    tqu_paas_release(&whole);
}

static void test_kept_lines_capped(void **state)
{
    k8s_buf b;
    tqu_paas_result r;
    (void)state;
    k8s_buf_init(&b, 0);
    for (int i = 1; i <= 50; i++)
        assert_int_equal(k8s_buf_printf(&b, "es shard %d error%s\n", i,
                                        i == 2 ? " ........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................" : ""),
                         K8S_OK);
    /* a Chinese line longer than the kept length: cut on a character boundary */
    for (int i = 0; i < 200; i++)
        k8s_buf_adds(&b, "失");
    k8s_buf_adds(&b, " flink 失败\n");
    classify(b.data, 1, &r);
    const tqu_paas_component *es = tqu_paas_component_get(&r, "es");
    assert_int_equal(es->failed.count, 50);
    assert_int_equal(es->failed.nkept, TQU_PAAS_KEEP_LINES);
    assert_int_equal(es->failed.line_no[4], 5);
    assert_int_equal(strlen(es->failed.text[1]), TQU_PAAS_KEEP_LINE_LEN + 3);
    assert_string_equal(es->failed.text[1] + TQU_PAAS_KEEP_LINE_LEN, "...");
    const char *fl = tqu_paas_component_get(&r, "flink")->failed.text[0];
    assert_true(strlen(fl) <= TQU_PAAS_KEEP_LINE_LEN + 3);
    assert_int_equal((strlen(fl) - 3) % 3, 0);       /* whole 3-byte characters */
    tqu_paas_release(&r);
    k8s_buf_release(&b);
}

static void test_long_line(void **state)
{
    size_t n = TQU_PAAS_LINE_MAX * 3;
    char *text = malloc(n + 64);
    tqu_paas_result r;
    (void)state;
    assert_non_null(text);
    strcpy(text, "redis error ");
    memset(text + 12, 'x', n);
    strcpy(text + 12 + n, " kafka\nes ok\n");
    classify(text, 1, &r);
    assert_int_equal(r.long_lines, 1);
    assert_int_equal(r.lines, 2);
    assert_string_equal(failing(&r), "redis");       /* kafka was past the examined part */
    assert_contains(r.message, "[1 line over 65536 bytes judged on their start]");
    tqu_paas_release(&r);
    free(text);
}

/* Megabytes of output, from a file, in bounded memory. */
static void test_megabytes_from_file(void **state)
{
    char path[PATH_MAX], err[256];
    FILE *f;
    tqu_paas_result r;
    struct timespec t0, t1;
    (void)state;
    snprintf(path, sizeof(path), "%s/paas_check.log", tmp);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 120000; i++)
        fprintf(f, "2024/12/05 22:%02d:%02d [INFO] checking services on node-%d: es ok, mongo ok, redis ok, yes\n",
                i / 60 % 60, i % 60, i % 12);
    fprintf(f, "2024/12/05 23:00:00 [ERROR] sabre-server-5d8f7 CrashLoopBackOff\n");
    fprintf(f, "2024/12/05 23:00:01 [ERROR] paas_check failed\n");
    assert_int_equal(fclose(f), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 10 * 1000 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(tqu_paas_classify_file(path, 1, &r, err, sizeof(err)), K8S_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r.verdict, TQU_PAAS_ONLY_EDR_COMPONENTS);
    assert_string_equal(failing(&r), "sabre");
    assert_int_equal(r.lines, 120002);
    assert_int_equal(r.bytes, (unsigned long long)st.st_size);
    assert_int_equal(tqu_paas_component_get(&r, "sabre")->failed.line_no[0], 120001);
    print_message("classified %lld bytes in %.3f s\n", (long long)st.st_size,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    tqu_paas_release(&r);

    /* a missing file: a clean error naming it, nothing to release */
    snprintf(path, sizeof(path), "%s/none.log", tmp);
    assert_int_equal(tqu_paas_classify_file(path, 1, &r, err, sizeof(err)), K8S_EIO);
    assert_contains(err, "none.log: No such file or directory");
    assert_null(r.buf);
}

static void test_api_misuse(void **state)
{
    tqu_paas_result r;
    (void)state;
    assert_int_equal(tqu_paas_init(NULL), K8S_EINVAL);
    assert_int_equal(tqu_paas_classify_file(NULL, 0, &r, NULL, 0), K8S_EINVAL);
    memset(&r, 0, sizeof(r));
    assert_int_equal(tqu_paas_feed(&r, "x", 1), K8S_EINVAL);      /* not initialised */
    assert_int_equal(tqu_paas_finish(&r, 0), K8S_EINVAL);
    tqu_paas_release(NULL);
    assert_null(tqu_paas_component_get(&r, "es"));
    assert_string_equal(tqu_paas_verdict_code((tqu_paas_verdict)42), "Unknown");
}

static void test_alloc_failures(void **state)
{
    const char *text = "es failed\nflink failed\nmongo error\nmongo error\nsomething failed\nsabre 失败\n";
    tqu_paas_result r;
    long n;
    (void)state;
    for (n = 1;; n++) {
        failalloc_fail_at(n);
        int rc = tqu_paas_classify_text(text, strlen(text), 1, &r);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_int_equal(r.verdict, TQU_PAAS_OTHER_COMPONENTS);
            tqu_paas_release(&r);
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_null(r.buf);          /* released */
    }
    assert_int_equal(n, 8);          /* the line buffer and 6 kept lines */
}

/* ------------------------------------------------------ the update.sh edit */

#define UPDATE_SH \
    "#!/bin/bash\n" \
    "# update.sh - whole-cluster upgrade\n" \
    "set -e\n" \
    "cd \"$(dirname \"$0\")\"\n" \
    "./darwin-client install --data.source=local --execute.type=k8s --template.file=\"$TEMPLATE\" --actions=upgrade\n" \
    "echo done\n"

static char path_sh[PATH_MAX], backups[PATH_MAX];

static void write_sh(const char *text, mode_t mode)
{
    snprintf(path_sh, sizeof(path_sh), "%s/pkg/tq_paas/plan_client/update.sh", tmp);
    snprintf(backups, sizeof(backups), "%s/backups", tmp);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/pkg/tq_paas/plan_client", tmp);
    assert_int_equal(tqu_mkdir_p(dir, 0755, NULL, 0), K8S_OK);
    assert_int_equal(tqu_write_file_atomic(path_sh, text, strlen(text), mode, NULL, 0), K8S_OK);
}

static char *slurp(const char *path)
{
    k8s_buf b;
    char err[256];
    k8s_buf_init(&b, 0);
    if (tqu_read_file(path, 0, &b, err, sizeof(err)) != K8S_OK)
        fail_msg("%s", err);
    return k8s_buf_detach(&b, NULL);
}

static const char *backup_of(const char *path)
{
    static char b[PATH_MAX * 2 + 8];
    char real[PATH_MAX];
    assert_non_null(realpath(path, real));
    snprintf(b, sizeof(b), "%s%s.orig", backups, real);
    return b;
}

/* No ".update.sh.tmp.*" left in the folder. */
static void assert_no_temp_files(void)
{
    char dir[PATH_MAX];
    struct dirent *de;
    snprintf(dir, sizeof(dir), "%s/pkg/tq_paas/plan_client", tmp);
    DIR *d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".tmp."))
            fail_msg("temporary file left: %s", de->d_name);
    closedir(d);
}

static void test_disable_once(void **state)
{
    char msg[1024];
    struct stat st;
    (void)state;
    write_sh(UPDATE_SH, 0751);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    char *now = slurp(path_sh);
    /* what the runbook's sed 's/execute\.type=k8s/& --paas.check=false/' gives */
    assert_string_equal(now,
        "#!/bin/bash\n"
        "# update.sh - whole-cluster upgrade\n"
        "set -e\n"
        "cd \"$(dirname \"$0\")\"\n"
        "./darwin-client install --data.source=local --execute.type=k8s --paas.check=false --template.file=\"$TEMPLATE\" --actions=upgrade\n"
        "echo done\n");
    free(now);
    assert_int_equal(stat(path_sh, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0751);
    char *orig = slurp(backup_of(path_sh));
    assert_string_equal(orig, UPDATE_SH);
    free(orig);
    assert_int_equal(stat(backup_of(path_sh), &st), 0);
    assert_int_equal(st.st_mode & 07777, 0751);
    assert_contains(msg, "update.sh: inserted --paas.check=false after execute.type=k8s on line 5 (1 of 1 occurrence); original saved as ");
    assert_contains(msg, backup_of(path_sh));
    assert_no_temp_files();
}

static void test_disable_twice_idempotent(void **state)
{
    char msg[1024];
    struct stat before, after, bbefore, bafter;
    (void)state;
    write_sh(UPDATE_SH, 0755);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    char *once = slurp(path_sh);
    assert_int_equal(stat(path_sh, &before), 0);
    assert_int_equal(stat(backup_of(path_sh), &bbefore), 0);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    assert_contains(msg, "the PaaS check is already off (--paas.check=false follows all 1 occurrence of execute.type=k8s); nothing changed");
    char *twice = slurp(path_sh);
    assert_string_equal(twice, once);
    assert_int_equal(stat(path_sh, &after), 0);
    assert_int_equal(after.st_ino, before.st_ino);      /* not even rewritten */
    assert_int_equal(stat(backup_of(path_sh), &bafter), 0);
    assert_int_equal(bafter.st_ino, bbefore.st_ino);
    char *orig = slurp(backup_of(path_sh));
    assert_string_equal(orig, UPDATE_SH);               /* still the unedited file */
    free(orig);
    free(once);
    free(twice);
}

/* A later edit that needs work again keeps the first original. */
static void test_original_never_overwritten(void **state)
{
    char msg[1024];
    (void)state;
    write_sh(UPDATE_SH, 0755);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    char *edited = slurp(path_sh);
    k8s_buf b;
    k8s_buf_init(&b, 0);
    k8s_buf_adds(&b, edited);
    k8s_buf_adds(&b, "./darwin-client install --execute.type=k8s --actions=post_check\n");
    assert_int_equal(tqu_write_file_atomic(path_sh, b.data, b.len, 0755, NULL, 0), K8S_OK);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    assert_contains(msg, "on line 7 (1 of 2 occurrences); the original saved earlier is kept at ");
    char *orig = slurp(backup_of(path_sh));
    assert_string_equal(orig, UPDATE_SH);
    char *now = slurp(path_sh);
    assert_contains(now, "--execute.type=k8s --paas.check=false --actions=post_check\n");
    assert_contains(now, "--execute.type=k8s --paas.check=false --template.file");
    assert_null(strstr(now, "--paas.check=false --paas.check=false"));
    free(orig);
    free(now);
    free(edited);
    k8s_buf_release(&b);
}

static void test_several_occurrences(void **state)
{
    char msg[1024];
    (void)state;
    write_sh("#!/bin/sh\n"
             "A=\"--execute.type=k8s\" B=--execute.type=k8s\n"                    /* twice on a line */
             "./darwin-client --execute.type=k8s --paas.check=false --x\n"          /* already */
             "./darwin-client --execute.type=k8sx --execute.type=k8s.v2\n"          /* other words */
             "./darwin-client --execute.type=k8s",                                  /* at the very end */
             0700);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    char *now = slurp(path_sh);
    assert_string_equal(now,
             "#!/bin/sh\n"
             "A=\"--execute.type=k8s --paas.check=false\" B=--execute.type=k8s --paas.check=false\n"
             "./darwin-client --execute.type=k8s --paas.check=false --x\n"
             "./darwin-client --execute.type=k8sx --execute.type=k8s.v2\n"
             "./darwin-client --execute.type=k8s --paas.check=false");
    assert_contains(msg, "on lines 2, 5 (3 of 4 occurrences)");
    free(now);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_OK);
    assert_contains(msg, "already off");
}

static void test_refusals(void **state)
{
    char msg[1024], path[PATH_MAX];
    struct stat st;
    (void)state;
    /* no marker */
    write_sh("#!/bin/sh\n./darwin-client install --execute.type=docker\n", 0755);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_EINVAL);
    assert_contains(msg, "update.sh: no \"execute.type=k8s\" found");
    assert_contains(msg, "file unchanged");
    char *now = slurp(path_sh);
    assert_string_equal(now, "#!/bin/sh\n./darwin-client install --execute.type=docker\n");
    free(now);
    assert_int_equal(stat(backups, &st), -1);      /* no backup made */
    /* a conflicting value beside it */
    write_sh("./darwin-client --execute.type=k8s --paas.check=true\n"
             "./darwin-client --execute.type=k8s --paas.check=$CHECK\n", 0755);
    assert_int_equal(tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg)), K8S_EINVAL);
    assert_contains(msg, "lines 1, 2 already set paas.check to something other than false");
    now = slurp(path_sh);
    assert_string_equal(now, "./darwin-client --execute.type=k8s --paas.check=true\n"
                             "./darwin-client --execute.type=k8s --paas.check=$CHECK\n");
    free(now);
    /* missing file */
    snprintf(path, sizeof(path), "%s/nowhere/update.sh", tmp);
    assert_int_equal(tqu_paas_disable_check(path, backups, msg, sizeof(msg)), K8S_EIO);
    assert_contains(msg, "nowhere/update.sh: No such file or directory; file unchanged");
    /* a folder */
    assert_int_equal(tqu_paas_disable_check(tmp, backups, msg, sizeof(msg)), K8S_EIO);
    assert_contains(msg, "not a regular file");
    /* arguments */
    assert_int_equal(tqu_paas_disable_check(path_sh, NULL, msg, sizeof(msg)), K8S_EINVAL);
    assert_int_equal(tqu_paas_disable_check(NULL, backups, NULL, 0), K8S_EINVAL);
    /* the backup folder cannot be made: nothing changes */
    write_sh(UPDATE_SH, 0755);
    snprintf(path, sizeof(path), "%s/afile", tmp);
    assert_int_equal(tqu_write_file_atomic(path, "x", 1, 0644, NULL, 0), K8S_OK);
    assert_int_equal(tqu_paas_disable_check(path_sh, path, msg, sizeof(msg)), K8S_EIO);
    assert_contains(msg, "backup of ");
    assert_contains(msg, "Not a directory; file unchanged");
    now = slurp(path_sh);
    assert_string_equal(now, UPDATE_SH);
    free(now);
}

/* A symbolic link: its target is edited, the link stays a link. */
static void test_symlink(void **state)
{
    char msg[1024], link[PATH_MAX];
    struct stat st;
    (void)state;
    write_sh(UPDATE_SH, 0755);
    snprintf(link, sizeof(link), "%s/update-link.sh", tmp);
    assert_int_equal(symlink(path_sh, link), 0);
    assert_int_equal(tqu_paas_disable_check(link, backups, msg, sizeof(msg)), K8S_OK);
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    char *now = slurp(path_sh);
    assert_contains(now, "--execute.type=k8s --paas.check=false");
    free(now);
    /* the backup is named after the real file */
    char *orig = slurp(backup_of(path_sh));
    assert_string_equal(orig, UPDATE_SH);
    free(orig);
}

static void test_disable_alloc_failures(void **state)
{
    char msg[1024];
    long n;
    (void)state;
    for (n = 1;; n++) {
        write_sh(UPDATE_SH, 0755);
        failalloc_fail_at(n);
        int rc = tqu_paas_disable_check(path_sh, backups, msg, sizeof(msg));
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        char *now = slurp(path_sh);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_contains(now, "--paas.check=false");
            free(now);
            break;
        }
        assert_int_equal(rc, K8S_ENOMEM);
        assert_contains(msg, "out of memory");
        assert_string_equal(now, UPDATE_SH);     /* unchanged */
        free(now);
    }
    assert_true(n > 1);
    assert_no_temp_files();
}

int main(void)
{
    failalloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_english),
        cmocka_unit_test(test_pass_chinese),
        cmocka_unit_test(test_only_edr_english),
        cmocka_unit_test(test_only_edr_chinese),
        cmocka_unit_test(test_only_edr_exit_zero),
        cmocka_unit_test(test_other_components),
        cmocka_unit_test(test_other_components_chinese),
        cmocka_unit_test(test_unknown_failure),
        cmocka_unit_test(test_word_traps),
        cmocka_unit_test(test_colours_and_carriage_returns),
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_kept_lines_capped),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test_setup_teardown(test_megabytes_from_file, setup, teardown),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test_setup_teardown(test_disable_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_twice_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_original_never_overwritten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_occurrences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
