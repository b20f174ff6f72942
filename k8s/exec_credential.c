/*
 * exec_credential.c - run a client-go credential plugin (users[].user.exec)
 * and read the ExecCredential it prints.
 *
 * The plugin is started with posix_spawnp from its argv (never a shell), in
 * its own process group, with stdin on /dev/null, our environment plus its
 * env entries plus KUBERNETES_EXEC_INFO (built for the child only: our own
 * environment is never changed). Its stdout is captured up to 1 MiB, the
 * start of its stderr kept for error messages; a plugin that runs longer
 * than k8s__exec_timeout_ms is killed (with its process group) and reaped.
 * The output is never quoted in errors: it holds the credentials.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "k8s_int.h"

extern char **environ;

long k8s__exec_timeout_ms = 30000;

#define EXEC_OUT_CAP ((size_t)1 << 20)   /* stdout of a plugin */
#define STDERR_KEEP 240                  /* bytes of stderr quoted in errors */
#define EXEC_INFO "KUBERNETES_EXEC_INFO"

/* What a plugin run produced. */
typedef struct plugin_run {
    k8s_buf out;                  /* stdout */
    char errx[STDERR_KEEP + 1];   /* start of stderr, one line */
    size_t errx_len;
    int status;                   /* waitpid status */
} plugin_run;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether env entry "NAME=..." has the name of "NAME=..." entry e. */
static int same_name(const char *entry, const char *e)
{
    size_t n = strcspn(e, "=");
    return !strncmp(entry, e, n) && entry[n] == '=';
}

/*
 * The child's environment: ours without the names the plugin sets, then
 * the plugin's entries, then info ("KUBERNETES_EXEC_INFO=..."). The array is
 * the caller's to free; its strings are borrowed. NULL on ENOMEM.
 */
static char **build_env(char *const *extra, char *info)
{
    size_t n = 0, m = 0, k = 0;
    char **v;

    while (environ && environ[n])
        n++;
    while (extra && extra[m])
        m++;
    v = calloc(n + m + 2, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int skip = same_name(environ[i], info);
        for (size_t j = 0; j < m && !skip; j++)
            skip = same_name(environ[i], extra[j]);
        if (!skip)
            v[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        v[k++] = extra[j];
    v[k] = info;
    return v;
}

/* "KUBERNETES_EXEC_INFO={...}" for apiVersion api; NULL on ENOMEM. */
static char *exec_info(const char *api)
{
    cJSON *o = cJSON_CreateObject(), *spec;
    char *json = NULL, *entry = NULL;

    if (!o || !cJSON_AddStringToObject(o, "apiVersion", api) ||
        !cJSON_AddStringToObject(o, "kind", "ExecCredential") ||
        !(spec = cJSON_AddObjectToObject(o, "spec")) ||
        !cJSON_AddFalseToObject(spec, "interactive"))
        goto out;
    json = k8s_json_print(o);
    if (!json)
        goto out;
    entry = malloc(strlen(EXEC_INFO) + 1 + strlen(json) + 1);
    if (entry)
        sprintf(entry, "%s=%s", EXEC_INFO, json);
out:
    cJSON_free(json);
    cJSON_Delete(o);
    return entry;
}

/* Keep the start of stderr, as one printable line. */
static void keep_stderr(plugin_run *r, const char *p, size_t n)
{
    for (size_t i = 0; i < n && r->errx_len < STDERR_KEEP; i++) {
        unsigned char ch = (unsigned char)p[i];
        r->errx[r->errx_len++] = (char)(ch < 0x20 || ch == 0x7f ? ' ' : ch);
    }
    r->errx[r->errx_len] = '\0';
}

/*
 * Start argv with envp: stdin on /dev/null, stdout and stderr on the given
 * pipe ends, its own process group, default signal handling and an empty
 * signal mask whatever the controller blocks or ignores. Returns 0 with
 * *pid set, or an errno value.
 */
static int spawn(char *const argv[], char *const envp[], int in, int out, int errfd,
                 pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    int e;

    e = posix_spawn_file_actions_init(&fa);
    if (e)
        return e;
    e = posix_spawnattr_init(&attr);
    if (e) {
        posix_spawn_file_actions_destroy(&fa);
        return e;
    }
    sigemptyset(&none);
    sigfillset(&all);
    if (!(e = posix_spawn_file_actions_adddup2(&fa, in, 0)) &&
        !(e = posix_spawn_file_actions_adddup2(&fa, out, 1)) &&
        !(e = posix_spawn_file_actions_adddup2(&fa, errfd, 2)) &&
        !(e = posix_spawnattr_setsigmask(&attr, &none)) &&
        !(e = posix_spawnattr_setsigdefault(&attr, &all)) &&
        !(e = posix_spawnattr_setpgroup(&attr, 0)) &&
        !(e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                  POSIX_SPAWN_SETPGROUP)))
        e = posix_spawnp(pid, argv[0], &fa, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return e;
}

/*
 * Read the plugin's stdout into r->out and the start of its stderr into
 * r->errx until both are closed. Returns K8S_OK, or K8S_EEXEC when the
 * deadline passes or stdout goes over EXEC_OUT_CAP, K8S_ENOMEM.
 */
static int collect(const char *cmd, int *outfd, int *errfd, long long deadline,
                   plugin_run *r, k8s_err *err)
{
    char chunk[16384];
    int rc;

    while (*outfd >= 0 || *errfd >= 0) {
        struct pollfd pf[2] = { { *outfd, POLLIN, 0 }, { *errfd, POLLIN, 0 } };
        long long left = deadline - now_ms();
        int n;

        if (left <= 0)
            return k8s_err_set(err, K8S_EEXEC, "exec plugin %s: no answer within %ld ms, killed",
                               cmd, k8s__exec_timeout_ms);
        n = poll(pf, 2, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR)
            return k8s_err_set(err, K8S_EEXEC, "exec plugin %s: poll: %s", cmd, strerror(errno));
        for (int i = 0; i < 2 && n > 0; i++) {
            int *fd = i == 0 ? outfd : errfd;
            ssize_t got;

            if (*fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            got = read(*fd, chunk, sizeof(chunk));
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                close(*fd);
                *fd = -1;
            } else if (i == 1) {
                keep_stderr(r, chunk, (size_t)got);
            } else if ((rc = k8s_buf_add(&r->out, chunk, (size_t)got)) != K8S_OK) {
                OPENSSL_cleanse(chunk, sizeof(chunk));
                if (rc == K8S_ETOOBIG)
                    return k8s_err_set(err, K8S_EEXEC, "exec plugin %s: printed more than %zu bytes",
                                       cmd, EXEC_OUT_CAP);
                return k8s_err_set(err, K8S_ENOMEM, "exec plugin %s: out of memory", cmd);
            }
        }
    }
    OPENSSL_cleanse(chunk, sizeof(chunk));
    return K8S_OK;
}

/*
 * Run argv with envp; fill r. Returns K8S_OK once the plugin has exited
 * (whatever its status: r->status), K8S_EEXEC when it could not be started,
 * timed out or printed more than EXEC_OUT_CAP (it is then killed with its
 * process group, and reaped), K8S_ENOMEM.
 */
static int run_plugin(char *const argv[], char *const envp[], plugin_run *r, k8s_err *err)
{
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, devnull, e, rc = K8S_OK;
    long long deadline;
    pid_t pid = -1, w;

    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: cannot set up its input/output: %s",
                         argv[0], strerror(errno));
        goto out;
    }
    e = spawn(argv, envp, devnull, outp[1], errp[1], &pid);
    if (e) {
        pid = -1;
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: cannot run it: %s", argv[0], strerror(e));
        goto out;
    }
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    deadline = now_ms() + k8s__exec_timeout_ms;
    rc = collect(argv[0], &outp[0], &errp[0], deadline, r, err);
    /* Output closed: wait for the exit, still within the deadline. */
    while (rc == K8S_OK && (w = waitpid(pid, &r->status, WNOHANG)) != pid) {
        if (w < 0 && errno != EINTR)
            rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: waitpid: %s", argv[0],
                             strerror(errno));
        else if (now_ms() >= deadline)
            rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: no answer within %ld ms, killed",
                             argv[0], k8s__exec_timeout_ms);
        else
            nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
    }
    if (rc == K8S_OK)
        pid = -1;       /* reaped */
out:
    if (pid > 0) {
        kill(-pid, SIGKILL);    /* its process group: what it started too */
        kill(pid, SIGKILL);
        while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (devnull >= 0)
        close(devnull);
    return rc;
}

/* Copy a PEM string into a blob (NUL-terminated). */
static int pem_blob(const char *s, k8s_blob *b)
{
    size_t n = strlen(s);

    b->data = malloc(n + 1);
    if (!b->data)
        return K8S_ENOMEM;
    memcpy(b->data, s, n + 1);
    b->len = n;
    return K8S_OK;
}

/* The ExecCredential in r->out -> out. Errors never quote the output. */
static int parse_credential(const char *cmd, const char *api, const k8s_buf *o,
                            k8s_exec_credential *out, k8s_err *err)
{
    cJSON *j = NULL, *status;
    const char *v, *token, *cert, *key, *exp;
    time_t expires = 0;
    int rc = K8S_OK;

    j = o->len ? cJSON_ParseWithLength(o->data, o->len) : NULL;
    if (!cJSON_IsObject(j)) {
        /* cJSON gives no distinct out-of-memory: it looks like bad output. */
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: output is not an ExecCredential "
                         "JSON object (%zu bytes)", cmd, o->len);
        goto out;
    }
    v = k8s_json_str(j, "kind", NULL);
    if (!v || strcmp(v, "ExecCredential")) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: output is not an ExecCredential "
                         "(kind \"%.64s\")", cmd, v ? v : "");
        goto out;
    }
    v = k8s_json_str(j, "apiVersion", NULL);
    if (!v || strcmp(v, api)) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: configured for apiVersion %s but "
                         "returned \"%.128s\"", cmd, api, v ? v : "");
        goto out;
    }
    status = k8s_json_get(j, "status", NULL);
    if (!cJSON_IsObject(status)) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: ExecCredential has no status", cmd);
        goto out;
    }
    token = k8s_json_str(status, "token", NULL);
    cert = k8s_json_str(status, "clientCertificateData", NULL);
    key = k8s_json_str(status, "clientKeyData", NULL);
    exp = k8s_json_str(status, "expirationTimestamp", NULL);
    if (token && !*token)
        token = NULL;
    if (cert && !*cert)
        cert = NULL;
    if (key && !*key)
        key = NULL;
    if (!cert != !key) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: returned a client %s without a %s",
                         cmd, cert ? "certificate" : "key", cert ? "key" : "certificate");
        goto out;
    }
    if (!token && !cert) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: returned neither a token nor a "
                         "client certificate and key", cmd);
        goto out;
    }
    if (exp && *exp && k8s_time_parse(exp, &expires) != K8S_OK) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: expirationTimestamp \"%.64s\" is "
                         "not an RFC 3339 time", cmd, exp);
        goto out;
    }
    out->expires = (int64_t)expires;
    if ((token && !(out->token = strdup(token))) ||
        (cert && pem_blob(cert, &out->client_cert)) ||
        (key && pem_blob(key, &out->client_key))) {
        rc = k8s_err_set(err, K8S_ENOMEM, "exec plugin %s: out of memory", cmd);
        goto out;
    }
out:
    if (j) {
        /* wipe the secrets in the tree before freeing it */
        const char *fields[] = { "token", "clientCertificateData", "clientKeyData" };
        for (size_t i = 0; i < 3; i++) {
            cJSON *s = k8s_json_get(j, "status", fields[i], NULL);
            if (cJSON_IsString(s) && s->valuestring)
                OPENSSL_cleanse(s->valuestring, strlen(s->valuestring));
        }
        cJSON_Delete(j);
    }
    return rc;
}

int k8s_exec_credential_get(const k8s_exec_config *exec, k8s_exec_credential *out,
                            k8s_err *err)
{
    plugin_run r;
    char *info = NULL, **envp = NULL;
    k8s_err local;
    const char *cmd;
    int rc = K8S_OK;

    if (!err)
        err = &local;
    k8s_err_clear(err);
    if (!out)
        return k8s_err_set(err, K8S_EINVAL, "exec plugin: no credential to fill");
    memset(out, 0, sizeof(*out));
    if (!exec || !exec->argv || !exec->argv[0] || !*exec->argv[0] || !exec->api_version)
        return k8s_err_set(err, K8S_EINVAL, "exec plugin: no command or apiVersion configured");
    cmd = exec->argv[0];
    memset(&r, 0, sizeof(r));
    k8s_buf_init(&r.out, EXEC_OUT_CAP);

    info = exec_info(exec->api_version);
    envp = info ? build_env(exec->env, info) : NULL;
    if (!envp) {
        rc = k8s_err_set(err, K8S_ENOMEM, "exec plugin %s: out of memory", cmd);
        goto out;
    }
    rc = run_plugin(exec->argv, envp, &r, err);
    if (rc)
        goto out;
    while (r.errx_len && r.errx[r.errx_len - 1] == ' ')
        r.errx[--r.errx_len] = '\0';
    if (WIFSIGNALED(r.status)) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: killed by signal %d%s%s", cmd,
                         WTERMSIG(r.status), r.errx_len ? ": " : "", r.errx);
        goto out;
    }
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        rc = k8s_err_set(err, K8S_EEXEC, "exec plugin %s: exited with status %d%s%s", cmd,
                         WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1,
                         r.errx_len ? ": " : "", r.errx);
        goto out;
    }
    rc = parse_credential(cmd, exec->api_version, &r.out, out, err);
out:
    if (r.out.data)
        OPENSSL_cleanse(r.out.data, r.out.alloc);
    k8s_buf_release(&r.out);
    free(envp);
    free(info);
    if (rc)
        k8s_exec_credential_release(out);
    return rc;
}

void k8s_exec_credential_release(k8s_exec_credential *c)
{
    if (!c)
        return;
    if (c->token) {
        OPENSSL_cleanse(c->token, strlen(c->token));
        free(c->token);
    }
    k8s_blob_release(&c->client_cert);
    k8s_blob_release(&c->client_key);
    memset(c, 0, sizeof(*c));
}
