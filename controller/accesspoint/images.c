/*
 * images.c - step LoadImages: `docker load -i skylar_linux_console_images.tar`
 * on this machine, then on every machine of spec.machines over SSH
 * (host/ssh.h, libssh): the host key checked against the known_hosts of
 * spec.ssh.knownHostsConfigMap, the password read from its Secret when a
 * connection starts (and wiped), the archive copied by SFTP into
 * ~/tianqing-ap-upgrade/<toVersion>/ (resumable, verified by sha256 on the
 * machine before it gets its name), then `docker load -i` there, as one
 * argv with every argument quoted.
 *
 * status.machines[] has one entry per machine ("local" first): its result
 * (Pending, Uploading, Loading, Loaded, or the reason it stopped on),
 * bytes sent of the total and the rate, the sha256 verified, the host key
 * fingerprint. A machine whose entry is Loaded is never loaded again (a
 * crash between docker load and that record loads it once more: docker
 * load is idempotent). A connection refused, dropped, an unknown or
 * changed host key, a refused password stop the step Blocked with that
 * reason; an interrupted upload leaves only <archive>.part on the machine,
 * resumed from its verified prefix next time.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "host/fsutil.h"
#include "host/ssh.h"
#include "runtime/log.h"
#include "ap_int.h"

static cJSON *machine_entry(tqu_ap_run *run, const char *host)
{
    cJSON *ms = cJSON_GetObjectItemCaseSensitive(run->status, "machines"), *it, *e;
    if (!ms) {
        if (k8s_json_put(run->status, "machines", cJSON_CreateArray()))
            return NULL;
        ms = cJSON_GetObjectItemCaseSensitive(run->status, "machines");
    }
    cJSON_ArrayForEach(it, ms) {
        const char *h = k8s_json_str(it, "host", NULL);
        if (h && !strcmp(h, host))
            return it;
    }
    e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "host", host) || !cJSON_AddStringToObject(e, "result", "Pending")) {
        cJSON_Delete(e);
        return NULL;
    }
    return k8s_json_append(ms, e) ? NULL : e;
}

static void set_str(cJSON *e, const char *k, const char *v)
{
    if (e)
        k8s_json_put(e, k, cJSON_CreateString(v));
}

static void set_num(cJSON *e, const char *k, double v)
{
    if (e)
        k8s_json_put(e, k, cJSON_CreateNumber(v));
}

/* <dir>/loaded.<host>: written once docker load succeeded there. The disk
 * record survives a status write lost to a conflict (re-decided from the
 * object as stored), so a machine is never loaded twice for that. */
static void marker_path(const tqu_ap_run *run, const char *host, char *buf, size_t len)
{
    snprintf(buf, len, "%s/loaded.%s", run->dir, host);
}

static int is_loaded(tqu_ap_run *run, const char *host)
{
    char m[PATH_MAX + 320];
    cJSON *e = machine_entry(run, host);
    const char *r = k8s_json_str(e, "result", NULL);
    if (r && !strcmp(r, "Loaded"))
        return 1;
    marker_path(run, host, m, sizeof(m));
    if (!tqu_is_file(m))
        return 0;
    /* "<sha256> <bytes>" of the archive loaded there (remote machines) */
    k8s_buf b;
    char sha[65], err[PATH_MAX + 256];
    unsigned long long bytes;
    k8s_buf_init(&b, 256);
    if (tqu_read_file(m, 256, &b, err, sizeof(err)) == 0 && sscanf(b.data, "%64s %llu", sha, &bytes) == 2 &&
        strcmp(sha, "-")) {
        set_str(e, "sha256", sha);
        set_num(e, "bytesSent", (double)bytes);
        set_num(e, "bytesTotal", (double)bytes);
    }
    k8s_buf_release(&b);
    set_str(e, "result", "Loaded");
    set_str(e, "message", "docker load done (recorded in the request's folder)");
    return 1;
}

/* Record a machine as loaded, on disk first, then in status. */
static void mark_loaded(tqu_ap_run *run, const char *host, const char *sha, unsigned long long bytes,
                        const char *msg)
{
    char m[PATH_MAX + 320], err[PATH_MAX + 256], text[128];
    int n = snprintf(text, sizeof(text), "%s %llu\n", sha, bytes);
    marker_path(run, host, m, sizeof(m));
    if (tqu_write_file_atomic(m, text, (size_t)n, 0600, err, sizeof(err)))
        tqu_log(TQU_WARN, "cannot record the load on disk", "key", run->key, "error", err, NULL);
    cJSON *e = machine_entry(run, host);
    set_str(e, "result", "Loaded");
    set_str(e, "message", msg);
    tqu_job_write_status((tqu_job *)run);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress {
    tqu_ap_run *run;
    cJSON *entry;
    double last;
};

/* Upload progress into status.machines[], written at most every 2 s (the
 * entry stays valid: a status write replaces the object, not the status
 * being built). */
static void on_progress(void *ud, uint64_t sent, uint64_t total, double rate)
{
    struct progress *p = ud;
    set_num(p->entry, "bytesSent", (double)sent);
    set_num(p->entry, "bytesTotal", (double)total);
    set_num(p->entry, "rate", (double)(long long)rate);
    if (mono() - p->last >= 2 || sent == total) {
        p->last = mono();
        tqu_job_write_status((tqu_job *)p->run);
    }
}

static void load_local(tqu_ap_run *run, const char *images, tqu_outcome *o)
{
    tqu_child_result res;
    cJSON *e = machine_entry(run, "local");
    char *argv[] = { "docker", "load", "-i", (char *)images, NULL };

    set_str(e, "result", "Loading");
    if (tqu__ap_before_vendor(run, tqu_job_write_status((tqu_job *)run), "docker load", o)) {
        set_str(machine_entry(run, "local"), "result", o->reason);
        return;
    }
    if (tqu__ap_run(run, argv, run->dir, run->spec.timeout_image_load_s, "docker-load.log", &res, o)) {
        set_str(machine_entry(run, "local"), "result", o->reason);
        return;
    }
    e = machine_entry(run, "local");
    if (!res.exited || res.exit_code) {
        tqu_out(o, TQU_OUT_FAILED, "ImageLoadFailed", "docker load -i %s ended with %d%s: %s", images, res.exit_code,
                res.timed_out ? " (spec.timeouts.imageLoad)" : "", res.tail);
        set_str(e, "result", "ImageLoadFailed");
        set_str(e, "message", res.tail);
        return;
    }
    mark_loaded(run, "local", "-", 0, "docker load done");
}

/* The machines' known_hosts text from the ConfigMap (key known_hosts). */
static int known_hosts(tqu_ap_run *run, cJSON **cm, const char **text, tqu_outcome *o)
{
    k8s_err err;
    char ebuf[1200];
    if (k8s_get(run->ctl->client, &K8S_CONFIGMAPS, run->ns, run->spec.known_hosts_cm, cm, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "KnownHostsNotFound",
                    "ConfigMap %s/%s (spec.ssh.knownHostsConfigMap) not found: ssh-keyscan the machines into a file "
                    "known_hosts and kubectl -n %s create configmap %s --from-file=known_hosts", run->ns,
                    run->spec.known_hosts_cm, run->ns, run->spec.known_hosts_cm);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read ConfigMap %s/%s: %s", run->ns, run->spec.known_hosts_cm,
                    k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    *text = k8s_json_str(*cm, "data", "known_hosts", NULL);
    if (!*text) {
        tqu_out(o, TQU_OUT_BLOCKED, "KnownHostsNotFound", "ConfigMap %s/%s has no key known_hosts", run->ns,
                run->spec.known_hosts_cm);
        return -1;
    }
    return 0;
}

/* The SSH password from its Secret into buf (the caller wipes it). */
static int read_password(tqu_ap_run *run, char *buf, size_t len, tqu_outcome *o)
{
    k8s_err err;
    char ebuf[1200];
    cJSON *sec = NULL;
    int rc = -1;

    tqu_log(TQU_DEBUG, "reading the SSH Secret", "key", run->key, "secret", run->spec.secret_name, NULL);
    if (k8s_get_sensitive(run->ctl->client, &K8S_SECRETS, run->ns, run->spec.secret_name, &sec, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "SshSecretNotFound",
                    "Secret %s/%s (spec.ssh.passwordSecretRef) not found: kubectl -n %s create secret generic %s "
                    "--from-literal=%s=<password>", run->ns, run->spec.secret_name, run->ns, run->spec.secret_name,
                    run->spec.secret_key);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Secret %s/%s: %s", run->ns, run->spec.secret_name,
                    k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    const char *v = k8s_json_str(sec, "data", run->spec.secret_key, NULL);
    if (v && v[0]) {
        k8s_blob b = { 0 };
        if (k8s_base64_decode(v, strlen(v), &b) == 0 && b.len > 0 && b.len < len && !memchr(b.data, '\0', b.len)) {
            memcpy(buf, b.data, b.len);
            buf[b.len] = '\0';
            rc = 0;
        }
        if (b.data)
            OPENSSL_cleanse(b.data, b.len);
        k8s_blob_release(&b);
    }
    k8s_json_wipe_delete(sec);
    if (rc)
        tqu_out(o, TQU_OUT_BLOCKED, "SshSecretKeyMissing", "Secret %s/%s has no non-empty key \"%s\"", run->ns,
                run->spec.secret_name, run->spec.secret_key);
    return rc;
}

static void ssh_failed(tqu_ap_run *run, const char *host, int rc, const tqu_ssh_error *se, tqu_outcome *o)
{
    cJSON *e = machine_entry(run, host);
    const char *reason = tqu_ssh_reason(rc);
    set_str(e, "result", reason);
    set_str(e, "message", se->message);
    if (se->fingerprint[0])
        set_str(e, "fingerprint", se->fingerprint);
    switch (rc) {
    case TQU_SSH_EHOSTKEY_UNKNOWN:
        tqu_out(o, TQU_OUT_BLOCKED, "HostKeyUnknown",
                "%s: its %s host key %s is not in ConfigMap %s (known_hosts): check the fingerprint on the machine "
                "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and add its line", host, se->key_type, se->fingerprint,
                run->spec.known_hosts_cm);
        break;
    case TQU_SSH_EHOSTKEY_CHANGED:
        tqu_out(o, TQU_OUT_BLOCKED, "HostKeyChanged",
                "%s: its host key %s differs from the one in ConfigMap %s: nothing was sent; find out why before "
                "changing known_hosts", host, se->fingerprint, run->spec.known_hosts_cm);
        break;
    case TQU_SSH_EAUTH:
        tqu_out(o, TQU_OUT_BLOCKED, "AuthFailed", "%s: the password of Secret %s was refused for user %s", host,
                run->spec.secret_name, run->spec.ssh_user);
        break;
    case TQU_SSH_EVERIFY:
        tqu_out(o, TQU_OUT_BLOCKED, "ChecksumMismatch",
                "%s: the copy's sha256 differs from the archive's (removed; sent again next time): %s", host, se->message);
        break;
    default:
        tqu_out(o, TQU_OUT_BLOCKED, reason, "%s: %s", host, se->message);
        break;
    }
    tqu_log(TQU_WARN, "machine not reached", "key", run->key, "host", host, "reason", reason, "message", se->message,
            NULL);
}

static void load_remote(tqu_ap_run *run, const tqu_ap_machine *m, const char *images, const char *kh,
                        const char *password, tqu_outcome *o)
{
    char host[300], pw[1024], rdir[512], rpath[768];
    const char *base = strrchr(images, '/');
    tqu_ssh *s = NULL;
    tqu_ssh_error se;
    tqu_ssh_exec_result xr;
    tqu_ssh_upload_result ur;
    int rc;

    memset(&se, 0, sizeof(se));
    memset(&xr, 0, sizeof(xr));
    snprintf(host, sizeof(host), strchr(m->host, ':') ? "[%s]:%d" : "%s:%d", m->host, m->port);
    snprintf(pw, sizeof(pw), "%s", password);
    tqu_ssh_target t = { .host = m->host, .port = m->port, .user = run->spec.ssh_user, .known_hosts = kh,
                         .timeout_ms = 30000 };
    set_str(machine_entry(run, host), "result", "Connecting");
    rc = tqu_ssh_connect(&t, pw, &s, &se);      /* wipes pw */
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc) {
        ssh_failed(run, host, rc, &se, o);
        return;
    }
    set_str(machine_entry(run, host), "fingerprint", tqu_ssh_fingerprint(s));
    snprintf(rdir, sizeof(rdir), "%s/%s", AP_REMOTE_DIR, run->spec.to_version);
    snprintf(rpath, sizeof(rpath), "%s/%s", rdir, base ? base + 1 : images);
    const char *mk[] = { "mkdir", "-p", rdir, NULL };
    rc = tqu_ssh_exec(s, mk, 60000, 0, &xr, &se);
    if (rc || xr.exit_status) {
        if (!rc)
            snprintf(se.message, sizeof(se.message), "mkdir -p %s: %s", rdir, xr.err);
        tqu_ssh_exec_result_release(&xr);
        ssh_failed(run, host, rc ? rc : TQU_SSH_EREMOTE, &se, o);
        goto out;
    }
    tqu_ssh_exec_result_release(&xr);
    set_str(machine_entry(run, host), "result", "Uploading");
    tqu_job_write_status((tqu_job *)run);
    struct progress p = { run, machine_entry(run, host), 0 };
    tqu_ssh_upload_opts uo = { .progress = on_progress, .ud = &p, .mode = 0600 };
    rc = tqu_ssh_upload(s, images, rpath, &uo, &ur, &se);
    if (rc) {
        ssh_failed(run, host, rc, &se, o);
        goto out;
    }
    cJSON *e = machine_entry(run, host);
    set_str(e, "sha256", ur.sha256);
    set_num(e, "bytesSent", (double)ur.total);
    set_num(e, "bytesTotal", (double)ur.total);
    set_str(e, "result", "Loading");
    if (tqu__ap_before_vendor(run, tqu_job_write_status((tqu_job *)run), "docker load", o)) {
        set_str(machine_entry(run, host), "result", o->reason);
        goto out;
    }
    const char *load[] = { "docker", "load", "-i", rpath, NULL };
    rc = tqu_ssh_exec(s, load, (long)(run->spec.timeout_image_load_s * 1000), 0, &xr, &se);
    if (rc) {
        ssh_failed(run, host, rc, &se, o);
        goto out;
    }
    e = machine_entry(run, host);
    if (xr.exit_status) {
        char m2[1024];
        snprintf(m2, sizeof(m2), "docker load exited with %d: %s", xr.exit_status, xr.err);
        set_str(e, "result", "RemoteImageLoadFailed");
        set_str(e, "message", m2);
        tqu_out(o, TQU_OUT_FAILED, "RemoteImageLoadFailed", "%s: docker load -i %s exited with %d: %s", host, rpath,
                xr.exit_status, xr.err);
        goto out;
    }
    char done[256];
    if (ur.already_there)
        snprintf(done, sizeof(done), "the archive was there already (sha256 checked); docker load done");
    else if (ur.resumed_from)
        snprintf(done, sizeof(done), "archive sent, resumed from byte %llu (sha256 checked); docker load done",
                 (unsigned long long)ur.resumed_from);
    else
        snprintf(done, sizeof(done), "archive sent (sha256 checked); docker load done");
    mark_loaded(run, host, ur.sha256, (unsigned long long)ur.total, done);
    tqu_log(TQU_INFO, "images loaded", "key", run->key, "host", host, NULL);
out:
    tqu_ssh_exec_result_release(&xr);
    tqu_ssh_free(s);
}

void tqu__ap_step_images(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char images[PATH_MAX * 2], password[1024] = "";
    cJSON *cm = NULL;
    const char *kh = NULL;

    if (tqu__ap_window_gate(run, o, "the images could be loaded") || tqu__ap_confine_spec(run, o))
        return;
    tqu__ap_images(run, images, sizeof(images));
    if (!tqu_is_file(images)) {
        tqu_out(o, TQU_OUT_BLOCKED, "ImagesNotFound", "%s is not there (spec.images)", images);
        return;
    }
    /* every machine listed before anything runs: the status shows them all */
    machine_entry(run, "local");
    for (int i = 0; i < run->spec.nmachines; i++) {
        char host[300];
        const tqu_ap_machine *m = &run->spec.machines[i];
        snprintf(host, sizeof(host), strchr(m->host, ':') ? "[%s]:%d" : "%s:%d", m->host, m->port);
        machine_entry(run, host);
    }
    if (!is_loaded(run, "local")) {
        load_local(run, images, o);
        if (o->reason)
            return;
    }
    int todo = 0;
    for (int i = 0; i < run->spec.nmachines; i++) {
        char host[300];
        const tqu_ap_machine *m = &run->spec.machines[i];
        snprintf(host, sizeof(host), strchr(m->host, ':') ? "[%s]:%d" : "%s:%d", m->host, m->port);
        todo += !is_loaded(run, host);
    }
    if (todo) {
        if (known_hosts(run, &cm, &kh, o) || read_password(run, password, sizeof(password), o))
            goto out;
        for (int i = 0; i < run->spec.nmachines; i++) {
            char host[300];
            const tqu_ap_machine *m = &run->spec.machines[i];
            snprintf(host, sizeof(host), strchr(m->host, ':') ? "[%s]:%d" : "%s:%d", m->host, m->port);
            if (is_loaded(run, host))
                continue;
            load_remote(run, m, images, kh, password, o);
            if (o->reason)
                goto out;
        }
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "the console images are loaded here and on %d other machine(s)", run->spec.nmachines);
out:
    OPENSSL_cleanse(password, sizeof(password));
    cJSON_Delete(cm);
}
