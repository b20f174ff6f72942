/*
 * proxysvc.c - step ProxyService: Service spec.proxyService (proxy-pp) must
 * have every port the template gives it: 30083 when the converted template
 * names it. Missing, the vendor's fixsvc.sh (spec.fixsvc.path) is run,
 * only when its md5 equals spec.fixsvc.md5 (a script that differs is
 * never run: FixsvcChecksumMismatch); without one: Blocked
 * FixsvcRequired. The Service is read again after it: still without the
 * port is FixsvcIneffective. Re-running the step reads the Service first,
 * so fixsvc.sh runs only while the port is missing. The script is copied
 * into the request's folder, and that copy is md5-checked and run (the
 * file checked is the file run); a marker (fixsvc.launched) written
 * before it starts, and its result (fixsvc.result) after, keep a crash
 * from running it twice: marker without result is Blocked
 * FixsvcOutcomeUnknown.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "host/fsutil.h"
#include "runtime/log.h"
#include "ap_int.h"

/* 1 when the Service has the port (as port or nodePort), 0 not, -1 with o filled. */
static int has_port(tqu_ap_run *run, int port, tqu_outcome *o)
{
    cJSON *svc = NULL;
    const cJSON *p;
    k8s_err err;
    char ebuf[1200];
    int found = 0;

    if (k8s_get(run->ctl->client, &K8S_SERVICES, run->spec.proxy_ns, run->spec.proxy_name, &svc, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "ProxyServiceNotFound", "Service %s/%s (spec.proxyService) not found",
                    run->spec.proxy_ns, run->spec.proxy_name);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Service %s/%s: %s", run->spec.proxy_ns,
                    run->spec.proxy_name, k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    cJSON_ArrayForEach(p, k8s_json_get(svc, "spec", "ports", NULL)) {
        if (k8s_json_int(p, 0, "port", NULL) == port || k8s_json_int(p, 0, "nodePort", NULL) == port)
            found = 1;
    }
    cJSON_Delete(svc);
    return found;
}

/* 1 when the template names the port, 0 not, -1 with o filled. */
static int template_wants(tqu_ap_run *run, int port, tqu_outcome *o)
{
    const char *t = k8s_json_str(run->status, "template", NULL);
    char num[16], err[PATH_MAX + 256];
    k8s_buf b;
    int r = 0;

    if (!t || tqu__ap_confine(run, "status.template", t, o)) {
        if (!t)
            tqu_out(o, TQU_OUT_FAILED, "TemplateNotConverted", "status.template is not set");
        return -1;
    }
    k8s_buf_init(&b, 16u << 20);
    if (tqu_read_file(t, 16u << 20, &b, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "TemplateUnreadable", "%s", err);
        return -1;
    }
    snprintf(num, sizeof(num), "%d", port);
    for (const char *p = b.data; (p = strstr(p, num)); p++) {
        char before = p == b.data ? ' ' : p[-1], after = p[strlen(num)];
        if (!(before >= '0' && before <= '9') && !(after >= '0' && after <= '9'))
            r = 1;
    }
    k8s_buf_release(&b);
    return r;
}

void tqu__ap_step_proxy(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char got[33], err[PATH_MAX + 256], dir[PATH_MAX], copy[PATH_MAX + 32], marker[PATH_MAX + 32],
         result[PATH_MAX + 32], rtext[64];
    tqu_child_result res;
    int r;

    if (tqu__ap_window_gate(run, o, "Service proxy-pp could be repaired") || tqu__ap_confine_spec(run, o))
        return;
    if ((r = template_wants(run, AP_PROXY_PORT, o)) < 0)
        return;
    if (!r) {
        tqu_out(o, TQU_OUT_SKIPPED, NULL, "the template gives Service %s no port %d", run->spec.proxy_name, AP_PROXY_PORT);
        return;
    }
    if ((r = has_port(run, AP_PROXY_PORT, o)) < 0)
        return;
    if (r) {
        tqu_out(o, TQU_OUT_DONE, NULL, "Service %s/%s has port %d", run->spec.proxy_ns, run->spec.proxy_name, AP_PROXY_PORT);
        return;
    }
    if (!run->spec.fixsvc_path[0]) {
        tqu_out(o, TQU_OUT_BLOCKED, "FixsvcRequired",
                "Service %s/%s lacks port %d, which the template gives it: get the vendor's fixsvc.sh and set "
                "spec.fixsvc.path and spec.fixsvc.md5 (the md5 the vendor gives)", run->spec.proxy_ns,
                run->spec.proxy_name, AP_PROXY_PORT);
        return;
    }
    /* once started, never again while how it ended is unknown */
    snprintf(copy, sizeof(copy), "%s/fixsvc.sh", run->dir);
    snprintf(marker, sizeof(marker), "%s/fixsvc.launched", run->dir);
    snprintf(result, sizeof(result), "%s/fixsvc.result", run->dir);
    if (tqu_is_file(marker) && !tqu_is_file(result)) {
        tqu_out(o, TQU_OUT_BLOCKED, "FixsvcOutcomeUnknown",
                "fixsvc.sh was started (%s) but how it ended is not recorded and Service %s/%s still lacks port %d: it "
                "is not run twice; check the Service and fixsvc.log in %s, then remove %s to have it run again",
                marker, run->spec.proxy_ns, run->spec.proxy_name, AP_PROXY_PORT, run->dir, marker);
        return;
    }
    /* the md5 is checked on the copy that runs, in the request's folder */
    if (tqu_mkdir_p(run->dir, 0700, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", err);
        return;
    }
    if (tqu__ap_copy_file(run->spec.fixsvc_path, copy, 0700, err, sizeof(err)) ||
        tqu__ap_md5_file(copy, got, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "FixsvcRequired", "spec.fixsvc.path: %s", err);
        return;
    }
    if (strcasecmp(got, run->spec.fixsvc_md5)) {
        tqu_out(o, TQU_OUT_FAILED, "FixsvcChecksumMismatch",
                "%s has md5 %s, not %s (spec.fixsvc.md5): it is not run; get the vendor's script again", run->spec.fixsvc_path,
                got, run->spec.fixsvc_md5);
        return;
    }
    snprintf(dir, sizeof(dir), "%s", run->spec.fixsvc_path);
    *strrchr(dir, '/') = '\0';
    char *argv[] = { "sh", copy, NULL };
    if (tqu__ap_before_vendor(run, 0, "fixsvc.sh", o))
        return;
    /* the marker, then an old result gone: a crash in between leaves a
     * known outcome of a run that did not start this time */
    if (tqu_write_file_atomic(marker, "launched\n", 9, 0600, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "cannot record the start of fixsvc.sh: %s", err);
        return;
    }
    if (unlink(result) && errno != ENOENT) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "cannot remove %s: %s", result, strerror(errno));
        return;
    }
    tqu_event(run, "Normal", "FixsvcStarted", "Service %s lacks port %d: running %s (a copy of %s, md5 %s checked)",
              run->spec.proxy_name, AP_PROXY_PORT, copy, run->spec.fixsvc_path, got);
    int notrun = tqu__ap_run(run, argv, dir[0] ? dir : "/", 600, "fixsvc.log", &res, o);
    if (notrun)
        snprintf(rtext, sizeof(rtext), "not started\n");
    else
        snprintf(rtext, sizeof(rtext), "%s %d\n", res.exited ? "exit" : "signal", res.exited ? res.exit_code : res.signal);
    if (tqu_write_file_atomic(result, rtext, strlen(rtext), 0600, err, sizeof(err)))
        tqu_log(TQU_WARN, "cannot record how fixsvc.sh ended", "key", run->key, "error", err, NULL);
    if (notrun)
        return;
    if (!res.exited || res.exit_code) {
        tqu_out(o, TQU_OUT_FAILED, "FixsvcFailed", "fixsvc.sh ended with %d: %s", res.exit_code, res.tail);
        return;
    }
    if ((r = has_port(run, AP_PROXY_PORT, o)) < 0)
        return;
    if (!r) {
        tqu_out(o, TQU_OUT_FAILED, "FixsvcIneffective", "fixsvc.sh succeeded but Service %s/%s still lacks port %d: %s",
                run->spec.proxy_ns, run->spec.proxy_name, AP_PROXY_PORT, res.tail);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "fixsvc.sh gave Service %s/%s port %d", run->spec.proxy_ns, run->spec.proxy_name,
            AP_PROXY_PORT);
}
