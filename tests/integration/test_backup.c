/*
 * test_backup.c - controller/host/backup.c against a real kube-apiserver and
 * etcd (tests/cluster/with-cluster.sh; TQU_* variables there).
 *
 * Set-up creates 620 Deployments (more than one page of 500) in five
 * namespaces, with names and replica counts of different widths, and
 * writes the status of every third one through /status (no kubelet or
 * controller-manager runs here). Then:
 *  - deploy_<stamp>.log equals `kubectl get deployment -A --no-headers`
 *    line for line, except that AGE may be a second or two apart;
 *  - deploy_<stamp>.json is a v1 List of exactly the Deployments, each with
 *    apiVersion/kind and without managedFields, item = GET minus
 *    managedFields; sha256 and size agree with sha256sum and stat; mode 0600;
 *  - verify passes, then fails after one byte is flipped or a file removed;
 *  - an existing stamp is refused and the existing backup left intact;
 *  - a missing folder, a file in its place, an unwritable folder: a clear
 *    error and no file;
 *  - ENOSPC/EDQUOT (write hook) on each of the three files, and EFBIG from
 *    RLIMIT_FSIZE: no final file and no temp file, the error names the file;
 *  - an expired continue token (etcd compacted between two pages) restarts
 *    the list and the result is exact; expired twice: the 410 is reported
 *    and nothing is kept;
 *  - allocation failures (tests/support/failalloc) fail cleanly, no files;
 *  - kubectl's AGE format (HumanDuration) and the stamp.
 * TQU_BACKUP_BENCH=1 adds a benchmark: 2,000 Deployments, the backup in a
 * fresh process (peak RSS from wait4), beside a plain paginated list and
 * `kubectl get deployment -A --no-headers`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "k8s.h"
#include "host/backup.h"
#include "failalloc.h"
#include "testutil.h"

extern char **environ;

#define NDEPLOY 620
static const char *const NAMESPACES[] = {
    "tqu-bk-a", "tqu-bk-services", "tqu-bk-a-much-longer-namespace-name", "tqu-bk-x",
    "tqu-bk-default-sabre",
};
#define NNS (sizeof(NAMESPACES) / sizeof(NAMESPACES[0]))

static char base_dir[256];
static k8s_config cfg;
static k8s_client *cl;
static char *self_path;

/* ------------------------------------------------------------ processes */

/*
 * Run argv (PATH lookup, no shell) with stdout captured: *out gets it
 * NUL-terminated (caller frees), stderr is inherited. ru: the child's
 * rusage. Returns the exit status, 128+n for signal n, -1 if it could not
 * start.
 */
static int run_cmd(char *const argv[], char **out, size_t *out_len, struct rusage *ru)
{
    posix_spawn_file_actions_t fa;
    int p[2], st = 0;
    pid_t pid;
    size_t len = 0, alloc = 65536;
    char *buf = malloc(alloc);

    assert_non_null(buf);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        free(buf);
        return -1;
    }
    for (;;) {
        if (alloc - len < 4096) {
            alloc *= 2;
            buf = realloc(buf, alloc);
            assert_non_null(buf);
        }
        ssize_t got = read(p[0], buf + len, alloc - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(p[0]);
    buf[len] = '\0';
    while (wait4(pid, &st, 0, ru) < 0 && errno == EINTR)
        ;
    if (out) {
        *out = buf;
        if (out_len)
            *out_len = len;
    } else {
        free(buf);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Entries of a folder, "." and ".." excepted. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static char *make_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", base_dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
    return path;
}

/* ------------------------------------------------------------ cluster */

static cJSON *parse(const char *s)
{
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

static void ensure_namespace(const char *name)
{
    char buf[256];
    k8s_err err;
    snprintf(buf, sizeof(buf), "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}", name);
    cJSON *o = parse(buf);
    int rc = k8s_create(cl, &K8S_NAMESPACES, NULL, o, NULL, &err);
    cJSON_Delete(o);
    if (rc && !k8s_err_is(&err, "AlreadyExists"))
        fail_msg("create namespace %s: %s", name, err.message);
}

/* Deployment i of a set: names and replica counts of varied widths;
 * every third gets a status (ready < desired for some). */
static void create_deployment(const char *ns, const char *prefix, int i)
{
    char name[128], body[2048];
    k8s_err err;
    int replicas = i % 13;
    static const char *const stems[] = { "svc", "styx-file-assessment-go", "edge2",
                                         "darwin-cdn-worker", "sabre" };
    snprintf(name, sizeof(name), "%s%s-%d", prefix, stems[i % 5], i);
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"},\"annotations\":{\"note\":\"tab\\tquote\\\" "
             "\\u7ec4\\u4ef6 \\u0001\"}},\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
             "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":"
             "\"main\",\"image\":\"registry.example/tianqing/%s:10.7.0.2800\",\"args\":[\"-control.type=config\"]}]}}}}",
             name, ns, name, replicas, name, name, stems[i % 5]);
    cJSON *o = parse(body);
    int rc = k8s_create(cl, &K8S_DEPLOYMENTS, ns, o, NULL, &err);
    cJSON_Delete(o);
    if (rc && !k8s_err_is(&err, "AlreadyExists"))
        fail_msg("create deployment %s/%s: %s", ns, name, err.message);
    if (i % 3 == 0) {
        int ready = replicas - (i % 2), avail = replicas - (i % 4 == 0);
        if (ready < 0) ready = 0;
        if (avail > ready) avail = ready;   /* the API server insists */
        if (avail < 0) avail = 0;
        snprintf(body, sizeof(body),
                 "{\"status\":{\"observedGeneration\":1,\"replicas\":%d,\"readyReplicas\":%d,"
                 "\"updatedReplicas\":%d,\"availableReplicas\":%d}}", replicas, ready, replicas, avail);
        o = parse(body);
        rc = k8s_patch(cl, &K8S_DEPLOYMENTS, ns, name, "status", K8S_CT_MERGE_PATCH, o, NULL, &err);
        cJSON_Delete(o);
        if (rc)
            fail_msg("status of %s/%s: %s", ns, name, err.message);
    }
}

static void delete_deployments(const char *ns)
{
    k8s_err err;
    char *path = k8s_path(&K8S_DEPLOYMENTS, ns, NULL, NULL);
    assert_non_null(path);
    int rc = k8s_request(cl, "DELETE", path, NULL, NULL, 0, NULL, &err);
    free(path);
    if (rc)
        fail_msg("delete deployments in %s: %s", ns, err.message);
}

static int count_fn(void *ud, const cJSON *item, int restart)
{
    long *n = ud;
    (void)item;
    if (restart)
        *n = 0;
    if (item)
        (*n)++;
    return 0;
}

static long count_deployments(void)
{
    long n = 0;
    k8s_err err;
    if (k8s_list(cl, &K8S_DEPLOYMENTS, NULL, NULL, count_fn, &n, NULL, &err))
        fail_msg("list: %s", err.message);
    return n;
}

/* Make etcd forget every revision older than now, so a continue token of a
 * list in progress expires (410). */
static void compact_etcd(void)
{
    char *out = NULL, rev[32];
    char *put[] = { "etcdctl", "put", "/tqu-test/backup-bump", "x", NULL };
    char *get[] = { "etcdctl", "get", "/tqu-test/backup-bump", "-w", "json", NULL };
    assert_int_equal(run_cmd(put, NULL, NULL, NULL), 0);
    assert_int_equal(run_cmd(get, &out, NULL, NULL), 0);
    cJSON *j = parse(out);
    long long r = k8s_json_int(j, 0, "header", "revision", NULL);
    cJSON_Delete(j);
    free(out);
    assert_true(r > 0);
    snprintf(rev, sizeof(rev), "%lld", r);
    char *compact[] = { "etcdctl", "compact", rev, NULL };
    assert_int_equal(run_cmd(compact, NULL, NULL, NULL), 0);
}

/* ------------------------------------------------------------ write hook */

static const char *hook_match;   /* substring of the file's /proc/self/fd link */
static int hook_errno;           /* fail matching writes with this errno */
static int hook_compactions;     /* compact etcd at the first write of an attempt */
static int hook_failed;

static ssize_t hook_write(int fd, const void *b, size_t n)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, path, sizeof(path) - 1);
    path[k > 0 ? k : 0] = '\0';
    if (hook_match && strstr(path, hook_match)) {
        if (hook_errno) {
            hook_failed++;
            errno = hook_errno;
            return -1;
        }
        if (hook_compactions > 0 && lseek(fd, 0, SEEK_CUR) == 0) {
            hook_compactions--;
            compact_etcd();
        }
    }
    return write(fd, b, n);
}

static void hook_reset(void)
{
    tqu_backup__write = write;
    hook_match = NULL;
    hook_errno = 0;
    hook_compactions = 0;
    hook_failed = 0;
}

/* ------------------------------------------------------------ comparisons */

/* "3m12s" / "45s" / "5d4h" ... to seconds; -1 if not in HumanDuration's alphabet. */
static long long age_secs(const char *s)
{
    long long total = 0;
    if (!*s)
        return -1;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            return -1;
        switch (*end) {
        case 'y': total += v * 365 * 86400; break;
        case 'd': total += v * 86400; break;
        case 'h': total += v * 3600; break;
        case 'm': total += v * 60; break;
        case 's': total += v; break;
        default: return -1;
        }
        s = end + 1;
    }
    return total;
}

static int split_lines(char *text, char ***lines)
{
    int n = 0, alloc = 1024;
    char **v = malloc(sizeof(char *) * (size_t)alloc);
    assert_non_null(v);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);   /* every line ends in a newline */
        *nl = '\0';
        if (n == alloc) {
            alloc *= 2;
            v = realloc(v, sizeof(char *) * (size_t)alloc);
            assert_non_null(v);
        }
        v[n++] = p;
        p = nl + 1;
    }
    *lines = v;
    return n;
}

/* The log equals kubectl's table: every column exactly (padding included)
 * but AGE, which may be up to 3 s apart and must be in kubectl's format. */
static void compare_with_kubectl(const char *log_path, long expect)
{
    char *kout = NULL, **kl, **ol;
    char *argv[] = { "kubectl", "--kubeconfig", (char *)test_env("TQU_KUBECONFIG_ADMIN"), "get",
                     "deployment", "-A", "--no-headers", NULL };
    assert_int_equal(run_cmd(argv, &kout, NULL, NULL), 0);
    char *ours = read_file(log_path, NULL);
    int nk = split_lines(kout, &kl), no = split_lines(ours, &ol);
    assert_int_equal(nk, expect);
    assert_int_equal(no, expect);
    for (int i = 0; i < nk; i++) {
        char *ka = strrchr(kl[i], ' '), *oa = strrchr(ol[i], ' ');
        assert_non_null(ka);
        assert_non_null(oa);
        if ((ka - kl[i]) != (oa - ol[i]) || strncmp(kl[i], ol[i], (size_t)(ka - kl[i])) != 0)
            fail_msg("line %d differs:\n kubectl: \"%s\"\n ours:    \"%s\"", i + 1, kl[i], ol[i]);
        long long a = age_secs(ka + 1), b = age_secs(oa + 1);
        char canon[32];
        if (a < 0 || b < 0 || llabs(a - b) > 3)
            fail_msg("line %d: AGE %s (kubectl) vs %s (ours)", i + 1, ka + 1, oa + 1);
        /* ours is exactly what HumanDuration prints for its value */
        assert_string_equal(tqu_backup_age(b, canon, sizeof(canon)), oa + 1);
    }
    free(kl);
    free(ol);
    free(kout);
    free(ours);
}

static char *sha256sum(const char *path)
{
    static char hex[65];
    char *out = NULL;
    char *argv[] = { "sha256sum", (char *)path, NULL };
    assert_int_equal(run_cmd(argv, &out, NULL, NULL), 0);
    assert_true(strlen(out) > 64);
    memcpy(hex, out, 64);
    hex[64] = '\0';
    free(out);
    return hex;
}

static void check_result_files(const tqu_backup_result *res, long expect)
{
    struct stat st;
    size_t len;
    assert_int_equal(res->count, expect);
    assert_int_equal(stat(res->json_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal((uint64_t)st.st_size, res->json_bytes);
    assert_string_equal(sha256sum(res->json_path), res->json_sha256);
    assert_int_equal(stat(res->log_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal((uint64_t)st.st_size, res->log_bytes);
    assert_string_equal(sha256sum(res->log_path), res->log_sha256);
    assert_int_equal(count_entries(res->dir), 2);   /* no temp or scratch file left */

    /* The JSON: a v1 List of exactly the Deployments, in the table's order. */
    char *text = read_file(res->json_path, &len);
    char *log = read_file(res->log_path, NULL), **rows;
    int nrows = split_lines(log, &rows);
    cJSON *list = cJSON_ParseWithLength(text, len);
    assert_non_null(list);
    assert_string_equal(k8s_json_str(list, "apiVersion", NULL), "v1");
    assert_string_equal(k8s_json_str(list, "kind", NULL), "List");
    assert_string_equal(k8s_json_str(list, "metadata", "resourceVersion", NULL), res->resource_version);
    cJSON *items = k8s_json_get(list, "items", NULL), *it;
    assert_int_equal(cJSON_GetArraySize(items), expect);
    assert_int_equal(nrows, expect);
    int i = 0;
    cJSON_ArrayForEach(it, items) {
        char key[400];
        assert_string_equal(k8s_json_str(it, "apiVersion", NULL), "apps/v1");
        assert_string_equal(k8s_json_str(it, "kind", NULL), "Deployment");
        assert_non_null(k8s_json_str(it, "metadata", "uid", NULL));
        assert_null(k8s_json_get(it, "metadata", "managedFields", NULL));
        assert_non_null(k8s_json_get(it, "spec", "template", "spec", "containers", NULL));
        snprintf(key, sizeof(key), "%s ", k8s_json_str(it, "metadata", "namespace", NULL));
        assert_int_equal(strncmp(rows[i], key, strlen(key)), 0);
        snprintf(key, sizeof(key), " %s ", k8s_json_str(it, "metadata", "name", NULL));
        assert_non_null(strstr(rows[i], key));
        i++;
    }
    /* One item is exactly what a GET returns, minus managedFields. */
    cJSON *got = NULL, *mine = NULL;
    k8s_err err;
    cJSON_ArrayForEach(it, items)
        if (!strcmp(k8s_json_str(it, "metadata", "namespace", NULL), NAMESPACES[0]))
            mine = it;
    assert_non_null(mine);
    assert_int_equal(k8s_get(cl, &K8S_DEPLOYMENTS, NAMESPACES[0],
                             k8s_json_str(mine, "metadata", "name", NULL), &got, &err), K8S_OK);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(got, "metadata"), "managedFields");
    assert_true(cJSON_Compare(got, mine, 1));
    /* the annotation with a tab, a quote, Chinese and a control character survived */
    assert_string_equal(k8s_json_str(mine, "metadata", "annotations", "note", NULL),
                        "tab\tquote\" \xe7\xbb\x84\xe4\xbb\xb6 \x01");
    cJSON_Delete(got);
    cJSON_Delete(list);
    free(rows);
    free(log);
    free(text);
}

/* ------------------------------------------------------------ tests */

static void test_age_format(void **state)
{
    static const struct { long long s; const char *want; } cases[] = {
        { -5, "<invalid>" }, { -2, "<invalid>" }, { -1, "0s" }, { 0, "0s" }, { 45, "45s" },
        { 119, "119s" }, { 120, "2m" }, { 121, "2m1s" }, { 599, "9m59s" }, { 600, "10m" },
        { 3 * 3600 - 1, "179m" }, { 3 * 3600, "3h" }, { 3 * 3600 + 12 * 60 + 5, "3h12m" },
        { 8 * 3600 - 1, "7h59m" }, { 8 * 3600, "8h" }, { 47 * 3600 + 3599, "47h" },
        { 48 * 3600, "2d" }, { 5 * 86400 + 4 * 3600, "5d4h" }, { 5 * 86400, "5d" },
        { 8 * 86400 - 1, "7d23h" }, { 8 * 86400, "8d" }, { 300 * 86400, "300d" },
        { 2 * 365 * 86400 - 1, "729d" }, { 2 * 365 * 86400, "2y" },
        { 2 * 365 * 86400 + 30 * 86400, "2y30d" }, { 8 * 365 * 86400 - 1, "7y364d" },
        { 8 * 365 * 86400, "8y" }, { 9 * 365 * 86400 + 100 * 86400, "9y" },
    };
    char buf[32];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(tqu_backup_age(cases[i].s, buf, sizeof(buf)), cases[i].want);
}

static void test_stamp_and_arguments(void **state)
{
    char buf[32], *dir;
    tqu_backup_result res;
    k8s_err err;
    static const char *const bad[] = { "", ".hidden", "a/b", "a b", "x;rm", "$(id)",
        "0123456789012345678901234567890123456789012345678901234567890123456789" };
    (void)state;
    tqu_backup_stamp((time_t)1700000000, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 15);
    assert_int_equal(buf[8], '-');
    dir = make_dir("args");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tqu_backup_deployments(cl, dir, bad[i], &res, &err), K8S_EINVAL);
        assert_non_null(strstr(err.message, "stamp"));
    }
    assert_int_equal(tqu_backup_deployments(cl, "", "s", &res, &err), K8S_EINVAL);
    assert_int_equal(count_entries(dir), 0);
}

static tqu_backup_result main_res;   /* the backup the next tests look at */

static void test_backup_matches_kubectl(void **state)
{
    k8s_err err;
    char *dir;
    long expect = count_deployments();
    double t0;
    (void)state;
    assert_true(expect >= NDEPLOY);
    dir = make_dir("main");
    t0 = test_now();
    if (tqu_backup_deployments(cl, dir, "20261205-220000", &main_res, &err))
        fail_msg("backup: %s", err.message);
    printf("# backup of %ld Deployments: %.3f s, json %llu bytes, log %llu bytes\n",
           main_res.count, test_now() - t0, (unsigned long long)main_res.json_bytes,
           (unsigned long long)main_res.log_bytes);
    assert_string_equal(main_res.dir, dir);
    assert_int_equal(main_res.restarts, 0);
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/deploy_20261205-220000.log", dir);
    assert_string_equal(main_res.log_path, want);
    snprintf(want, sizeof(want), "%s/deploy_20261205-220000.json", dir);
    assert_string_equal(main_res.json_path, want);
    compare_with_kubectl(main_res.log_path, expect);
    check_result_files(&main_res, expect);
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    unsigned char ch;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &ch, 1, off), 1);
    ch ^= 0x20;
    assert_int_equal(pwrite(fd, &ch, 1, off), 1);
    close(fd);
}

static void test_verify(void **state)
{
    k8s_err err;
    tqu_backup_result rec = main_res;
    char moved[PATH_MAX + 8];
    (void)state;
    assert_true(rec.count > 0);
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_OK);

    flip_byte(rec.json_path, (long)rec.json_bytes / 2);
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_EIO);
    assert_non_null(strstr(err.message, rec.json_path));
    assert_non_null(strstr(err.message, "sha256"));
    assert_non_null(strstr(err.message, rec.json_sha256));
    flip_byte(rec.json_path, (long)rec.json_bytes / 2);
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_OK);

    flip_byte(rec.log_path, 3);
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_EIO);
    assert_non_null(strstr(err.message, rec.log_path));
    flip_byte(rec.log_path, 3);

    /* a recorded checksum that differs (upper case is the same checksum) */
    for (char *p = rec.log_sha256; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_OK);
    rec.log_sha256[0] = rec.log_sha256[0] == '0' ? '1' : '0';
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_EIO);
    rec = main_res;
    rec.json_bytes++;
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_EIO);
    assert_non_null(strstr(err.message, "bytes"));
    rec = main_res;

    snprintf(moved, sizeof(moved), "%s.moved", rec.log_path);
    assert_int_equal(rename(rec.log_path, moved), 0);
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_EIO);
    assert_non_null(strstr(err.message, rec.log_path));
    assert_non_null(strstr(err.message, "No such file"));
    assert_int_equal(rename(moved, rec.log_path), 0);
    assert_int_equal(tqu_backup_verify(&rec, &err), K8S_OK);
}

static void test_existing_stamp_refused(void **state)
{
    k8s_err err;
    tqu_backup_result res;
    (void)state;
    assert_true(main_res.count > 0);
    assert_int_equal(tqu_backup_deployments(cl, main_res.dir, "20261205-220000", &res, &err), K8S_EIO);
    assert_non_null(strstr(err.message, "already exists"));
    assert_int_equal(res.count, 0);
    assert_int_equal(count_entries(main_res.dir), 2);
    assert_int_equal(tqu_backup_verify(&main_res, &err), K8S_OK);
}

static void test_bad_folder(void **state)
{
    k8s_err err;
    tqu_backup_result res;
    char path[PATH_MAX];
    (void)state;

    snprintf(path, sizeof(path), "%s/missing", base_dir);
    assert_int_equal(tqu_backup_deployments(cl, path, "s1", &res, &err), K8S_EIO);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "No such file or directory"));
    assert_int_equal(access(path, F_OK), -1);

    snprintf(path, sizeof(path), "%s/plainfile", base_dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tqu_backup_deployments(cl, path, "s1", &res, &err), K8S_EIO);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "Not a directory"));

    /* Not writable: as root, from a child that has become nobody. */
    char *dir = make_dir("readonly");
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0555), 0);
        assert_int_equal(tqu_backup_deployments(cl, dir, "s1", &res, &err), K8S_EIO);
        assert_non_null(strstr(err.message, dir));
        assert_non_null(strstr(err.message, "Permission denied"));
    } else {
        int p[2];
        char msg[1100] = "";
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            k8s_client *c2 = NULL;
            int rc = -1;
            close(p[0]);
            if (setgroups(0, NULL) == 0 && setresgid(65534, 65534, 65534) == 0 &&
                setresuid(65534, 65534, 65534) == 0 &&
                k8s_client_new(&cfg, &(k8s_client_opts){ .qps = -1 }, &c2, &err) == 0) {
                rc = tqu_backup_deployments(c2, dir, "s1", &res, &err);
                if (write(p[1], err.message, strlen(err.message)) < 0)
                    rc = -1;
            }
            k8s_client_free(c2);
            _exit(rc == K8S_EIO ? 0 : 1);
        }
        close(p[1]);
        ssize_t n = read(p[0], msg, sizeof(msg) - 1);
        msg[n > 0 ? n : 0] = '\0';
        close(p[0]);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("child as nobody: status %d, message \"%s\"", st, msg);
        assert_non_null(strstr(msg, dir));
        assert_non_null(strstr(msg, "Permission denied"));
    }
    assert_int_equal(count_entries(dir), 0);
}

/* A failed write of each of the three files leaves nothing behind. */
static void test_disk_full(void **state)
{
    static const struct { const char *match; int e; const char *file; const char *text; } cases[] = {
        { ".deploy_full.json.", ENOSPC, "deploy_full.json", "No space left on device" },
        { ".deploy_full.rows.", EDQUOT, "deploy_full.log (table scratch file)", "Disk quota exceeded" },
        { ".deploy_full.log.", ENOSPC, "deploy_full.log", "No space left on device" },
    };
    k8s_err err;
    tqu_backup_result res;
    char *dir = make_dir("full");
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hook_reset();
        tqu_backup__write = hook_write;
        hook_match = cases[i].match;
        hook_errno = cases[i].e;
        int rc = tqu_backup_deployments(cl, dir, "full", &res, &err);
        int failed = hook_failed;
        hook_reset();
        assert_int_equal(rc, K8S_EIO);
        assert_true(failed >= 1);
        assert_non_null(strstr(err.message, cases[i].file));
        assert_non_null(strstr(err.message, cases[i].text));
        assert_non_null(strstr(err.message, dir));
        assert_int_equal(count_entries(dir), 0);
        assert_int_equal(res.count, 0);
    }
}

/* The kernel's own failure: RLIMIT_FSIZE makes a write fail with EFBIG. */
static void test_file_size_limit(void **state)
{
    struct rlimit old, lim;
    k8s_err err;
    tqu_backup_result res;
    char *dir = make_dir("fsize");
    (void)state;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 100 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = tqu_backup_deployments(cl, dir, "big", &res, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rc, K8S_EIO);
    assert_non_null(strstr(err.message, "deploy_big.json"));
    assert_non_null(strstr(err.message, "File too large"));
    assert_int_equal(count_entries(dir), 0);
}

/* etcd compacted between page 1 and page 2: the continue token expires,
 * the list restarts and the files hold each Deployment exactly once. */
static void test_expired_continue_restarts(void **state)
{
    k8s_err err;
    tqu_backup_result res;
    long expect = count_deployments();
    char *dir = make_dir("restart");
    (void)state;
    hook_reset();
    tqu_backup__write = hook_write;
    hook_match = ".deploy_restart.json.";
    hook_compactions = 1;
    int rc = tqu_backup_deployments(cl, dir, "restart", &res, &err);
    int left = hook_compactions;
    hook_reset();
    if (rc)
        fail_msg("backup: %s", err.message);
    assert_int_equal(left, 0);
    assert_int_equal(res.restarts, 1);
    check_result_files(&res, expect);
    compare_with_kubectl(res.log_path, expect);
    assert_int_equal(tqu_backup_verify(&res, &err), K8S_OK);
}

/* Expired twice: the API server's 410 is the error, and nothing is kept. */
static void test_list_error_midway(void **state)
{
    k8s_err err;
    tqu_backup_result res;
    char *dir = make_dir("expired");
    (void)state;
    hook_reset();
    tqu_backup__write = hook_write;
    hook_match = ".deploy_gone.json.";
    hook_compactions = 2;
    int rc = tqu_backup_deployments(cl, dir, "gone", &res, &err);
    int left = hook_compactions;
    hook_reset();
    assert_int_equal(left, 0);
    assert_int_equal(rc, K8S_EAPI);
    assert_int_equal(err.code, 410);
    assert_string_equal(err.reason, "Expired");
    assert_non_null(strstr(err.message, "deploy_gone.json"));
    assert_non_null(strstr(err.message, "list of Deployments"));
    assert_int_equal(count_entries(dir), 0);
}

/* Allocation failures at the start, the middle and the end of a backup:
 * a clean error, nothing on disk (leaks: ASan/valgrind runs). */
static void test_allocation_failures(void **state)
{
    k8s_err err;
    tqu_backup_result res;
    char *dir = make_dir("alloc");
    long total, points[40];
    int np = 0, failures = 0;
    (void)state;
    failalloc_fail_at(0);
    assert_int_equal(tqu_backup_deployments(cl, dir, "count", &res, &err), K8S_OK);
    total = failalloc_count();
    assert_int_equal(unlink(res.json_path), 0);
    assert_int_equal(unlink(res.log_path), 0);
    for (long n = 1; n <= 12; n++)
        points[np++] = n;
    for (int k = 1; k <= 12; k++)
        points[np++] = total * k / 13;
    for (long n = total - 6; n <= total; n++)
        points[np++] = n;
    for (int i = 0; i < np; i++) {
        failalloc_fail_at(points[i]);
        int rc = tqu_backup_deployments(cl, dir, "alloc", &res, &err);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, K8S_OK);
            assert_int_equal(unlink(res.json_path), 0);
            assert_int_equal(unlink(res.log_path), 0);
            continue;
        }
        failures++;
        if (rc == K8S_OK)
            fail_msg("allocation %ld of %ld failed but the backup succeeded", points[i], total);
        assert_int_equal(count_entries(dir), 0);
    }
    printf("# %d of %d allocation failure points hit (%ld allocations per backup)\n",
           failures, np, total);
    assert_true(failures >= 12);
}

/* --------------------------------------------------------- benchmark */

/* This process's peak RSS in KiB (VmHWM: of this exec'd image only; the
 * rusage of a spawned child also counts the parent's memory at exec). */
static long vm_hwm_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static int bench_child(const char *mode, const char *dir)
{
    k8s_config c2cfg;
    k8s_client *c2 = NULL;
    k8s_err err;
    tqu_backup_result res;
    double t0;
    int rc;
    if (k8s_config_load(&c2cfg, test_env("TQU_KUBECONFIG_ADMIN"), NULL, &err) ||
        k8s_client_new(&c2cfg, NULL, &c2, &err)) {
        fprintf(stderr, "bench: %s\n", err.message);
        return 1;
    }
    t0 = test_now();
    if (!strcmp(mode, "none")) {
        rc = 0;
        printf("0 %.3f %ld\n", test_now() - t0, vm_hwm_kib());
    } else if (!strcmp(mode, "list")) {
        long n = 0;
        rc = k8s_list(c2, &K8S_DEPLOYMENTS, NULL, NULL, count_fn, &n, NULL, &err);
        printf("%ld %.3f %ld\n", n, test_now() - t0, vm_hwm_kib());
    } else {
        rc = tqu_backup_deployments(c2, dir, "bench", &res, &err);
        printf("%ld %.3f %ld\n", res.count, test_now() - t0, vm_hwm_kib());
    }
    if (rc)
        fprintf(stderr, "bench %s: %s\n", mode, err.message);
    k8s_client_free(c2);
    k8s_config_release(&c2cfg);
    return rc ? 1 : 0;
}

/* Best of three runs: seconds (the child's own figure when it prints one)
 * and the largest peak RSS seen (the child's VmHWM when it prints one, else
 * wait4's ru_maxrss, which is max(ours at exec, the child's)). */
static double bench_run(char *const argv[], long *count, long *maxrss_kib)
{
    double best = -1;
    *maxrss_kib = 0;
    for (int i = 0; i < 3; i++) {
        struct rusage ru;
        char *out = NULL;
        double t0 = test_now(), secs, inner = -1;
        long hwm = -1;
        memset(&ru, 0, sizeof(ru));
        assert_int_equal(run_cmd(argv, &out, NULL, &ru), 0);
        secs = test_now() - t0;
        if (count) {
            if (sscanf(out, "%ld %lf %ld", count, &inner, &hwm) != 3 || hwm <= 0)
                fail_msg("bench output: %s", out);
            secs = inner;
            ru.ru_maxrss = hwm;
        }
        free(out);
        if (best < 0 || secs < best)
            best = secs;
        if (ru.ru_maxrss > *maxrss_kib)
            *maxrss_kib = ru.ru_maxrss;
        if (argv[1] && !strcmp(argv[1], "--bench-child") && !strcmp(argv[2], "backup")) {
            char path[600];
            snprintf(path, sizeof(path), "%s/deploy_bench.json", argv[3]);
            unlink(path);
            snprintf(path, sizeof(path), "%s/deploy_bench.log", argv[3]);
            unlink(path);
        }
    }
    return best;
}

static void test_bench_2000(void **state)
{
    const char *ns = "tqu-bk-bench";
    long have, n, rss_b, rss_l, rss_k, rss_0, count;
    double tb, tl, tk, t0;
    char *dir;
    (void)state;
    if (!getenv("TQU_BACKUP_BENCH") || strcmp(getenv("TQU_BACKUP_BENCH"), "1")) {
        skip();
        return;
    }
    ensure_namespace(ns);
    have = count_deployments();
    t0 = test_now();
    for (n = 0; have + n < 2000; n++)
        create_deployment(ns, "bench-", (int)n);
    printf("# bench: created %ld Deployments in %.1f s; %ld in all\n", n, test_now() - t0, have + n);
    dir = make_dir("bench");
    char *zargv[] = { self_path, "--bench-child", "none", dir, NULL };
    char *bargv[] = { self_path, "--bench-child", "backup", dir, NULL };
    char *largv[] = { self_path, "--bench-child", "list", dir, NULL };
    char *kargv[] = { "kubectl", "--kubeconfig", (char *)test_env("TQU_KUBECONFIG_ADMIN"), "get",
                      "deployment", "-A", "--no-headers", NULL };
    bench_run(zargv, &count, &rss_0);
    tl = bench_run(largv, &count, &rss_l);
    assert_int_equal(count, 2000);
    tb = bench_run(bargv, &count, &rss_b);
    assert_int_equal(count, 2000);
    tk = bench_run(kargv, NULL, &rss_k);
    printf("# bench, 2000 Deployments, best of 3 (peak RSS of the whole process):\n"
           "#   client only, no request             %6.1f MiB\n"
           "#   paginated list, items dropped %.3f s  %6.1f MiB\n"
           "#   tqu_backup_deployments        %.3f s  %6.1f MiB  (%.2fx the list)\n"
           "#   kubectl get deploy -A --no-headers %.3f s  %6.1f MiB\n",
           rss_0 / 1024.0, tl, rss_l / 1024.0, tb, rss_b / 1024.0, tb / tl, tk, rss_k / 1024.0);
    assert_true(rss_b <= 32 * 1024);
    delete_deployments(ns);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
    double t0 = test_now();
    char name[64];
    (void)state;
    if (test_mkdtemp(base_dir, sizeof(base_dir), "tqu-backup-it") != 0 || chmod(base_dir, 0755) != 0)   /* 0755: see test_bad_folder */
        return -1;
    for (size_t i = 0; i < NNS; i++)
        ensure_namespace(NAMESPACES[i]);
    for (int i = 0; i < NDEPLOY; i++) {
        /* most in the first two namespaces, a few elsewhere */
        size_t nsi = i < 300 ? 0 : i < 560 ? 1 : 2 + (size_t)(i % 3);
        snprintf(name, sizeof(name), "%s", i % 7 == 0 ? "x-" : "");
        create_deployment(NAMESPACES[nsi], name, i);
    }
    printf("# set-up: %d Deployments in %.1f s\n", NDEPLOY, test_now() - t0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < NNS; i++)
        delete_deployments(NAMESPACES[i]);
    test_rmtree(base_dir);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;
    self_path = argv[0];
    if (argc == 4 && !strcmp(argv[1], "--bench-child"))
        return bench_child(argv[2], argv[3]);
    failalloc_install();
    k8s_err err;
    k8s_client_opts o = { .qps = -1 };
    if (k8s_config_load(&cfg, test_env("TQU_KUBECONFIG_ADMIN"), NULL, &err) ||
        k8s_client_new(&cfg, &o, &cl, &err)) {
        fprintf(stderr, "test_backup: %s\n", err.message);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_age_format),
        cmocka_unit_test(test_stamp_and_arguments),
        cmocka_unit_test(test_backup_matches_kubectl),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_existing_stamp_refused),
        cmocka_unit_test(test_bad_folder),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_expired_continue_restarts),
        cmocka_unit_test(test_list_error_midway),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_bench_2000),
    };
    rc = cmocka_run_group_tests(tests, setup, teardown);
    k8s_client_free(cl);
    k8s_config_release(&cfg);
    return rc;
}
