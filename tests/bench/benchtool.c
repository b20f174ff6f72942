/*
 * benchtool.c - the C half of `make bench` (tests/bench/run.sh drives it).
 * Every mode prints its results as key=value words on one line of stdout,
 * so the script can pick them up; progress and errors go to stderr.
 *
 *   benchtool populate KUBECONFIG N NAMESPACES PREFIX THREADS
 *       N Deployments spread over NAMESPACES namespaces PREFIX-00.., each
 *       with rollout status written through /status (no kubelet runs);
 *       THREADS clients in parallel, no client-side rate limit. Set-up only.
 *   benchtool client KUBECONFIG
 *       a client made, no request: the process's peak RSS (the baseline).
 *   benchtool floor KUBECONFIG
 *       the resident memory any process of this library set has after
 *       talking to the API server once (the floor under the controller's
 *       idle RSS), in stages: at main(), after curl_global_init, after one
 *       client made one request (GET /version: a TLS handshake).
 *   benchtool list KUBECONFIG
 *       k8s_list of every Deployment (pages of 500), items dropped: the raw
 *       list request the backup is compared with.
 *   benchtool backup KUBECONFIG DIR STAMP
 *       tqu_backup_deployments into DIR (the controller's own engine).
 *   benchtool latency KUBECONFIG NAMESPACE COUNT INTERVAL_MS RAWFILE NAME...
 *       COUNT server-side applies (PATCH application/apply-patch+yaml) that
 *       change spec.disk.reserveGiB of the paused TianqingUpgrades NAME...
 *       in turn, one at a time, starting one every INTERVAL_MS at most (0:
 *       back to back). For each: from the apply's response (its new
 *       metadata.generation) to the first watch event whose
 *       status.observedGeneration is that generation. A watch of our own
 *       (started before the first apply, from the list's resourceVersion)
 *       also notes when the spec change itself arrived, which splits the
 *       time into watch delivery and the rest. Per-apply rows go to RAWFILE.
 *   benchtool freeport
 *       a free 127.0.0.1 TCP port (for the controller's --health-addr).
 *
 * Times are CLOCK_MONOTONIC; cpu_s is this process's user + system time
 * over the same span; "peak RSS" is VmHWM of this process.
 */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "k8s.h"
#include "host/backup.h"

#define TQU_GROUP_PATH "/apis/upgrade.tianqing.io/v1alpha1"
#define MAX_GEN 16384            /* generations tracked per resource */
#define MAX_NAMES 32

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long proc_status_kib(const char *field)
{
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* CPU seconds (user + system) this process has used. */
static double cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return -1;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const k8s_err *err)
{
    char buf[1500];
    fprintf(stderr, "benchtool: %s: %s\n", what, err ? k8s_err_str(err, buf, sizeof(buf)) : "failed");
    exit(1);
}

static k8s_config cfg;

static k8s_client *new_client(const char *kubeconfig, double qps)
{
    static int loaded;
    k8s_client_opts o = { .qps = qps, .timeout_ms = 60000 };
    k8s_client *c = NULL;
    k8s_err err;
    if (!loaded) {
        if (k8s_config_load(&cfg, kubeconfig, NULL, &err))
            die(kubeconfig, &err);
        loaded = 1;
    }
    if (k8s_client_new(&cfg, &o, &c, &err))
        die("client", &err);
    return c;
}

/* ------------------------------------------------------------ populate */

struct pop {
    const char *kubeconfig;
    const char *prefix;
    int n, nns, index;
    pthread_mutex_t mu;
};

static cJSON *parse_or_die(const char *s)
{
    cJSON *o = cJSON_Parse(s);
    if (!o) {
        fprintf(stderr, "benchtool: bad JSON: %s\n", s);
        exit(1);
    }
    return o;
}

/* A Deployment shaped like the product's: one container with ports, env,
 * resources, a readiness probe and a hostPath volume, rolled out. With the
 * server's managedFields about 4 KB of JSON in a list, which puts
 * `kubectl get deployment -A -o json` near design.md's reference figures. */
static void make_deployment(k8s_client *c, const char *ns, int i)
{
    static const char *const stems[] = { "styx-file-assessment-go", "edge2", "darwin-web",
                                         "skylar-apiserver", "xinghai-query", "darwin-cdn-worker",
                                         "svc", "sabre-agent" };
    char name[128], body[4096];
    const char *stem = stems[i % 8];
    int replicas = 1 + i % 3;
    k8s_err err;
    cJSON *o;

    snprintf(name, sizeof(name), "%s-%d", stem, i);
    snprintf(body, sizeof(body),
        "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
        "\"labels\":{\"app\":\"%s\",\"config.ns\":\"%s\"}},"
        "\"spec\":{\"replicas\":%d,\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},"
        "\"template\":{\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":{"
        "\"containers\":[{\"name\":\"%s\",\"image\":\"registry.tianqing.local/tq/%s:10.6.0.2600\","
        "\"args\":[\"-control.type=config\"],"
        "\"ports\":[{\"name\":\"http\",\"containerPort\":8080}],"
        "\"env\":[{\"name\":\"TZ\",\"value\":\"Asia/Shanghai\"}],"
        "\"resources\":{\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"}},"
        "\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/home/s/%s/data\"}]}],"
        "\"volumes\":[{\"name\":\"data\",\"hostPath\":{\"path\":\"/qaxdata/s/services/data/%s\"}}]}}}}",
        name, ns, stem, ns, replicas, stem, stem, stem, stem, stem, stem);
    o = parse_or_die(body);
    int rc = k8s_create(c, &K8S_DEPLOYMENTS, ns, o, NULL, &err);
    cJSON_Delete(o);
    if (rc && !k8s_err_is(&err, "AlreadyExists"))
        die(name, &err);
    snprintf(body, sizeof(body),
             "{\"status\":{\"observedGeneration\":1,\"replicas\":%d,\"readyReplicas\":%d,"
             "\"updatedReplicas\":%d,\"availableReplicas\":%d,\"conditions\":["
             "{\"type\":\"Available\",\"status\":\"True\",\"reason\":\"MinimumReplicasAvailable\"},"
             "{\"type\":\"Progressing\",\"status\":\"True\",\"reason\":\"NewReplicaSetAvailable\"}]}}",
             replicas, replicas, replicas, replicas);
    o = parse_or_die(body);
    rc = k8s_patch(c, &K8S_DEPLOYMENTS, ns, name, "status", K8S_CT_MERGE_PATCH, o, NULL, &err);
    cJSON_Delete(o);
    if (rc)
        die(name, &err);
}

static void *pop_thread(void *arg)
{
    struct pop *p = arg;
    k8s_client *c;
    char ns[128];
    pthread_mutex_lock(&p->mu);
    c = new_client(p->kubeconfig, -1);
    pthread_mutex_unlock(&p->mu);
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int i = p->index++;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        snprintf(ns, sizeof(ns), "%s-%02d", p->prefix, i % p->nns);
        make_deployment(c, ns, i);
    }
    k8s_client_free(c);
    return NULL;
}

static int cmd_populate(const char *kubeconfig, int n, int nns, const char *prefix, int threads)
{
    struct pop p = { .kubeconfig = kubeconfig, .prefix = prefix, .n = n, .nns = nns };
    pthread_t th[64];
    k8s_client *c = new_client(kubeconfig, -1);
    k8s_err err;
    char body[256];
    double t0 = now_s();

    pthread_mutex_init(&p.mu, NULL);
    for (int i = 0; i < nns; i++) {
        snprintf(body, sizeof(body), "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                 "\"metadata\":{\"name\":\"%s-%02d\"}}", prefix, i);
        cJSON *o = parse_or_die(body);
        int rc = k8s_create(c, &K8S_NAMESPACES, NULL, o, NULL, &err);
        cJSON_Delete(o);
        if (rc && !k8s_err_is(&err, "AlreadyExists"))
            die(body, &err);
    }
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, pop_thread, &p)) {
            fprintf(stderr, "benchtool: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    printf("created=%d namespaces=%d seconds=%.2f\n", n, nns, now_s() - t0);
    k8s_client_free(c);
    return 0;
}

/* ---------------------------------------------------- list, backup */

static int count_item(void *ud, const cJSON *item, int restart)
{
    long *n = ud;
    if (restart)
        *n = 0;
    else if (item)
        (*n)++;
    return 0;
}

static int cmd_list(const char *kubeconfig)
{
    k8s_client *c = new_client(kubeconfig, 0);
    k8s_err err;
    long n = 0;
    double t0 = now_s(), c0 = cpu_s();
    if (k8s_list(c, &K8S_DEPLOYMENTS, NULL, NULL, count_item, &n, NULL, &err))
        die("list", &err);
    double secs = now_s() - t0;
    printf("count=%ld seconds=%.4f cpu_s=%.4f hwm_kib=%ld\n", n, secs, cpu_s() - c0,
           proc_status_kib("VmHWM"));
    k8s_client_free(c);
    return 0;
}

static int cmd_backup(const char *kubeconfig, const char *dir, const char *stamp)
{
    k8s_client *c = new_client(kubeconfig, 0);
    k8s_err err;
    tqu_backup_result res;
    double t0 = now_s(), c0 = cpu_s();
    if (tqu_backup_deployments(c, dir, stamp, &res, &err))
        die("backup", &err);
    double secs = now_s() - t0;
    printf("count=%ld seconds=%.4f cpu_s=%.4f hwm_kib=%ld log_bytes=%llu json_bytes=%llu\n", res.count,
           secs, cpu_s() - c0, proc_status_kib("VmHWM"), (unsigned long long)res.log_bytes,
           (unsigned long long)res.json_bytes);
    k8s_client_free(c);
    return 0;
}

static int cmd_client(const char *kubeconfig)
{
    k8s_client *c = new_client(kubeconfig, 0);
    printf("hwm_kib=%ld rss_kib=%ld\n", proc_status_kib("VmHWM"), proc_status_kib("VmRSS"));
    k8s_client_free(c);
    return 0;
}

/* Resident KiB of the mappings of files whose name contains lib. */
static long mapped_kib(const char *lib)
{
    char line[1024];
    int in = 0;
    long kib = 0, v;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char a[32];
        if (sscanf(line, "%31[0-9a-f]-%*[0-9a-f] ", a) == 1 && strchr(line, '-') < strchr(line, ' '))
            in = strstr(line, lib) != NULL;
        else if (in && sscanf(line, "Rss: %ld", &v) == 1)
            kib += v;
    }
    fclose(f);
    return kib;
}

static void floor_stage(const char *name)
{
    printf("%s_rss_kib=%ld %s_anon_kib=%ld %s_file_kib=%ld %s_libcrypto_kib=%ld ", name,
           proc_status_kib("VmRSS"), name, proc_status_kib("RssAnon"), name,
           proc_status_kib("RssFile"), name, mapped_kib("/libcrypto.so"));
}

/* The memory of the library set itself, in stages: at main() (libraries
 * loaded, relocated, their constructors run), after curl_global_init
 * (OpenSSL's initialisation), after one client made one request (a TLS
 * handshake). */
static int cmd_floor(const char *kubeconfig)
{
    k8s_err err;
    cJSON *out = NULL;
    floor_stage("main");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    floor_stage("curlinit");
    k8s_client *c = new_client(kubeconfig, 0);
    if (k8s_request(c, "GET", "/version", NULL, NULL, 0, &out, &err))
        die("GET /version", &err);
    cJSON_Delete(out);
    floor_stage("request");
    printf("rss_kib=%ld anon_kib=%ld file_kib=%ld\n", proc_status_kib("VmRSS"),
           proc_status_kib("RssAnon"), proc_status_kib("RssFile"));
    k8s_client_free(c);
    curl_global_cleanup();
    return 0;
}

/* ------------------------------------------------------------ latency */

struct lat {
    const char *ns;
    const char **names;
    int nnames;
    /* first time a watch event showed generation g (spec) / observedGeneration g */
    double *spec_seen[MAX_NAMES], *status_seen[MAX_NAMES];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    k8s_client *watch_client;
    char rv[128];
    int watch_rc;
    long events;
    k8s_err werr;
};

static int name_index(struct lat *l, const char *name)
{
    for (int i = 0; i < l->nnames; i++)
        if (!strcmp(l->names[i], name))
            return i;
    return -1;
}

static int on_line(void *ud, const char *line, size_t len)
{
    struct lat *l = ud;
    double t = now_s();
    cJSON *ev = cJSON_ParseWithLength(line, len);
    if (!ev)
        return 0;
    const char *name = k8s_json_str(ev, "object", "metadata", "name", NULL);
    long long gen = k8s_json_int(ev, -1, "object", "metadata", "generation", NULL);
    long long og = k8s_json_int(ev, -1, "object", "status", "observedGeneration", NULL);
    int i = name ? name_index(l, name) : -1;
    pthread_mutex_lock(&l->mu);
    l->events++;
    if (i >= 0) {
        if (gen >= 0 && gen < MAX_GEN && l->spec_seen[i][gen] == 0)
            l->spec_seen[i][gen] = t;
        if (og >= 0 && og < MAX_GEN && l->status_seen[i][og] == 0) {
            l->status_seen[i][og] = t;
            pthread_cond_broadcast(&l->cv);
        }
    }
    pthread_mutex_unlock(&l->mu);
    cJSON_Delete(ev);
    return 0;
}

static void *watch_thread(void *arg)
{
    struct lat *l = arg;
    char path[512];
    snprintf(path, sizeof(path), TQU_GROUP_PATH "/namespaces/%s/tianqingupgrades?watch=1"
             "&resourceVersion=%s&timeoutSeconds=3600", l->ns, l->rv);
    l->watch_rc = k8s_stream(l->watch_client, path, 0, on_line, l, &l->werr);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest rank */
static double pct(const double *sorted, int n, double p)
{
    if (n <= 0)
        return NAN;
    int k = (int)ceil(p / 100.0 * n);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1];
}

static int cmd_latency(const char *kubeconfig, const char *ns, int count, int interval_ms,
                       const char *rawfile, const char **names, int nnames)
{
    struct lat l = { .ns = ns, .names = names, .nnames = nnames };
    k8s_client *c = new_client(kubeconfig, -1);
    k8s_err err;
    cJSON *list = NULL;
    pthread_t th;
    char path[512], body[1024];
    double *lat = calloc((size_t)count, sizeof(double));
    double *deliv = calloc((size_t)count, sizeof(double));
    double *rest = calloc((size_t)count, sizeof(double));
    double *apply = calloc((size_t)count, sizeof(double));
    int ok = 0, timeouts = 0;
    FILE *raw = fopen(rawfile, "w");

    if (!lat || !deliv || !rest || !apply || !raw || nnames > MAX_NAMES) {
        fprintf(stderr, "benchtool: latency: out of memory, too many names or %s unwritable\n", rawfile);
        return 1;
    }
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    for (int i = 0; i < nnames; i++) {
        l.spec_seen[i] = calloc(MAX_GEN, sizeof(double));
        l.status_seen[i] = calloc(MAX_GEN, sizeof(double));
        if (!l.spec_seen[i] || !l.status_seen[i])
            return 1;
    }
    snprintf(path, sizeof(path), TQU_GROUP_PATH "/namespaces/%s/tianqingupgrades", ns);
    if (k8s_request(c, "GET", path, NULL, NULL, 0, &list, &err))
        die("list tianqingupgrades", &err);
    snprintf(l.rv, sizeof(l.rv), "%s", k8s_json_str(list, "metadata", "resourceVersion", NULL));
    cJSON_Delete(list);
    l.watch_client = new_client(kubeconfig, -1);
    if (pthread_create(&th, NULL, watch_thread, &l))
        return 1;
    usleep(300 * 1000);   /* let the watch be established before the first apply */

    fprintf(raw, "# i name generation apply_s spec_event_after_response_s status_after_response_s\n");
    for (int i = 0; i < count; i++) {
        int j = i % nnames;
        cJSON *out = NULL;
        double t_start = now_s(), t_resp;
        snprintf(path, sizeof(path), TQU_GROUP_PATH "/namespaces/%s/tianqingupgrades/%s"
                 "?fieldManager=tqu-bench&force=true", ns, names[j]);
        snprintf(body, sizeof(body),
                 "{\"apiVersion\":\"upgrade.tianqing.io/v1alpha1\",\"kind\":\"TianqingUpgrade\","
                 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},"
                 "\"spec\":{\"disk\":{\"reserveGiB\":%d}}}", names[j], ns, 100 + i);
        if (k8s_request(c, "PATCH", path, "application/apply-patch+yaml", body, strlen(body), &out, &err))
            die("apply", &err);
        t_resp = now_s();
        long long gen = k8s_json_int(out, -1, "metadata", "generation", NULL);
        cJSON_Delete(out);
        if (gen < 1 || gen >= MAX_GEN) {
            fprintf(stderr, "benchtool: apply gave generation %lld\n", gen);
            return 1;
        }
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 10;
        pthread_mutex_lock(&l.mu);
        while (l.status_seen[j][gen] == 0)
            if (pthread_cond_timedwait(&l.cv, &l.mu, &dl) == ETIMEDOUT)
                break;
        double ts = l.status_seen[j][gen], tsp = l.spec_seen[j][gen];
        pthread_mutex_unlock(&l.mu);
        if (ts == 0) {
            timeouts++;
            fprintf(raw, "%d %s %lld %.6f timeout timeout\n", i, names[j], gen, t_resp - t_start);
        } else {
            lat[ok] = ts - t_resp;
            apply[ok] = t_resp - t_start;
            deliv[ok] = tsp ? tsp - t_resp : NAN;
            rest[ok] = tsp ? ts - tsp : NAN;
            fprintf(raw, "%d %s %lld %.6f %.6f %.6f\n", i, names[j], gen, apply[ok], deliv[ok], lat[ok]);
            ok++;
        }
        if (interval_ms > 0) {
            double wait = t_start + interval_ms / 1000.0 - now_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
    }
    k8s_client_stop(l.watch_client);
    pthread_join(th, NULL);
    if (l.watch_rc != K8S_OK && l.watch_rc != K8S_ESTOPPED)
        fprintf(stderr, "benchtool: the status watch failed: %s\n", l.werr.message);
    fclose(raw);

    double sum = 0, dsum = 0, rsum = 0, asum = 0;
    int dn = 0;
    for (int i = 0; i < ok; i++) {
        sum += lat[i];
        asum += apply[i];
        if (!isnan(deliv[i])) {
            dsum += deliv[i];
            rsum += rest[i];
            dn++;
        }
    }
    qsort(lat, (size_t)ok, sizeof(double), cmp_double);
    qsort(apply, (size_t)ok, sizeof(double), cmp_double);
    printf("applies=%d measured=%d timeouts=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
           "min_ms=%.2f mean_ms=%.2f apply_p50_ms=%.2f spec_event_mean_ms=%.2f after_spec_event_mean_ms=%.2f "
           "watch_events=%ld\n",
           count, ok, timeouts, pct(lat, ok, 50) * 1e3, pct(lat, ok, 90) * 1e3, pct(lat, ok, 99) * 1e3,
           ok ? lat[ok - 1] * 1e3 : NAN, ok ? lat[0] * 1e3 : NAN, ok ? sum / ok * 1e3 : NAN,
           pct(apply, ok, 50) * 1e3, dn ? dsum / dn * 1e3 : NAN, dn ? rsum / dn * 1e3 : NAN, l.events);
    k8s_client_free(l.watch_client);
    k8s_client_free(c);
    for (int i = 0; i < nnames; i++) {
        free(l.spec_seen[i]);
        free(l.status_seen[i]);
    }
    free(lat);
    free(deliv);
    free(rest);
    free(apply);
    return timeouts ? 3 : 0;
}

/* ------------------------------------------------------------ freeport */

static int cmd_freeport(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("benchtool: freeport");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: benchtool populate KUBECONFIG N NAMESPACES PREFIX THREADS\n"
            "       benchtool client|floor|list KUBECONFIG\n"
            "       benchtool backup KUBECONFIG DIR STAMP\n"
            "       benchtool latency KUBECONFIG NAMESPACE COUNT INTERVAL_MS RAWFILE NAME...\n"
            "       benchtool freeport\n");
    return 2;
}

int main(int argc, char **argv)
{
    int rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return usage();
    const char *m = argv[1];
    if (!strcmp(m, "freeport"))
        return cmd_freeport();
    if (argc < 3)
        return usage();
    if (!strcmp(m, "populate") && argc == 7)
        rc = cmd_populate(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], atoi(argv[6]));
    else if (!strcmp(m, "client") && argc == 3)
        rc = cmd_client(argv[2]);
    else if (!strcmp(m, "floor") && argc == 3)
        rc = cmd_floor(argv[2]);
    else if (!strcmp(m, "list") && argc == 3)
        rc = cmd_list(argv[2]);
    else if (!strcmp(m, "backup") && argc == 5)
        rc = cmd_backup(argv[2], argv[3], argv[4]);
    else if (!strcmp(m, "latency") && argc >= 8)
        rc = cmd_latency(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), argv[6],
                         (const char **)argv + 7, argc - 7);
    else
        return usage();
    k8s_config_release(&cfg);
    return rc;
}
