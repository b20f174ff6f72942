/*
 * legacy.c - step Legacy: an access point below 10.3.0.3201 is Docker-based
 * and cannot be upgraded in place (runbook chapter 7). Without
 * spec.legacy.confirmUninstall the resource is Blocked
 * LegacyDockerAccessPoint with the manual's steps. With it: the container
 * list is saved (docker ps -a, into the request's folder), every container
 * removed (docker rm -f), the install folder removed only when it holds
 * the vendor's layout (a docker-compose.yml or docker-compose.yaml at its
 * top), docker restarted (systemctl restart docker), and the resource
 * Blocked RedeployRequired: redeploying follows the vendor's deployment
 * manual and is never automated. A marker (legacy.done) keeps a re-check
 * from doing it twice. 10.3.0.3201 and later: Skipped.
 */
#include <stdio.h>
#include <string.h>
#include "host/fsutil.h"
#include "runtime/log.h"
#include "ap_int.h"

#define MANUAL "the Docker-based access point (below 10.3.0.3201) cannot be upgraded in place: save `docker ps -a`, " \
               "docker rm -f $(docker ps -aq), remove the install folder %s, restart docker, then redeploy %s by the " \
               "vendor's deployment manual; set spec.legacy.confirmUninstall to true to have the first four done"

static int vendor_layout(const char *dir)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/docker-compose.yml", dir);
    if (tqu_is_file(p))
        return 1;
    snprintf(p, sizeof(p), "%s/docker-compose.yaml", dir);
    return tqu_is_file(p);
}

void tqu__ap_step_legacy(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char done[PATH_MAX + 32], list[PATH_MAX + 32], err[PATH_MAX + 256];
    const char *dir = run->spec.legacy_dir;
    tqu_child_result res;
    int removed = 0;
    k8s_buf b;

    if (!run->spec.legacy) {
        tqu_out(o, TQU_OUT_SKIPPED, NULL, "%s is 10.3.0.3201 or later: upgraded in place", run->spec.from_version);
        return;
    }
    snprintf(done, sizeof(done), "%s/legacy.done", run->dir);
    if (tqu_is_file(done))
        goto redeploy;
    if (!run->spec.confirm_uninstall) {
        tqu_out(o, TQU_OUT_BLOCKED, "LegacyDockerAccessPoint", MANUAL, dir, run->spec.to_version);
        return;
    }
    if (tqu__ap_window_gate(run, o, "the access point could be uninstalled") || tqu__ap_confine_spec(run, o))
        return;
    /* the container list first, kept (never overwritten: the first is the original) */
    snprintf(list, sizeof(list), "%s/containers.txt", run->dir);
    char *ps[] = { "docker", "ps", "-a", "--no-trunc", NULL };
    char *ids[] = { "docker", "ps", "-aq", NULL };
    if (!tqu_is_file(list)) {
        if (tqu__ap_run(run, ps, run->dir, 120, "containers.txt.tmp", &res, o))
            return;
        if (!res.exited || res.exit_code) {
            tqu_out(o, TQU_OUT_FAILED, "LegacyUninstallFailed", "docker ps -a ended with %d: %s", res.exit_code, res.tail);
            return;
        }
        char tmp[PATH_MAX + 32];
        snprintf(tmp, sizeof(tmp), "%s/containers.txt.tmp", run->dir);
        if (rename(tmp, list)) {
            tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "cannot keep %s", list);
            return;
        }
    }
    if (tqu__ap_run(run, ids, run->dir, 120, "container-ids.txt", &res, o))
        return;
    if (!res.exited || res.exit_code) {
        tqu_out(o, TQU_OUT_FAILED, "LegacyUninstallFailed", "docker ps -aq ended with %d: %s", res.exit_code, res.tail);
        return;
    }
    snprintf(list, sizeof(list), "%s/container-ids.txt", run->dir);
    k8s_buf_init(&b, 1u << 20);
    if (tqu_read_file(list, 1u << 20, &b, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s", err);
        return;
    }
    /* the log holds stderr too: every word must be a container id, or
     * nothing is removed (no other word ever reaches docker rm -f) */
    for (const char *p = b.data ? b.data : ""; *p;) {
        size_t n = strcspn(p, " \t\r\n");
        if (n && !tqu__ap_container_id(p, n)) {
            tqu_out(o, TQU_OUT_FAILED, "LegacyUninstallFailed", "docker ps -aq wrote something other than container "
                    "ids (nothing removed): %.*s", (int)(b.len < 1500 ? b.len : 1500), b.data);
            k8s_buf_release(&b);
            return;
        }
        p += n;
        p += strspn(p, " \t\r\n");
    }
    /* docker rm -f <id>... : one argv, at most 256 ids at a time */
    char *save = NULL, *argv[260];
    int n = 0;
    argv[n++] = "docker";
    argv[n++] = "rm";
    argv[n++] = "-f";
    for (char *id = strtok_r(b.data, " \t\r\n", &save);; id = strtok_r(NULL, " \t\r\n", &save)) {
        if (id)
            argv[n++] = id;
        if ((!id && n > 3) || n == 259) {
            argv[n] = NULL;
            if (tqu__ap_before_vendor(run, 0, "docker rm -f", o) ||
                tqu__ap_run(run, argv, run->dir, 600, "docker-rm.log", &res, o)) {
                k8s_buf_release(&b);
                return;
            }
            if (!res.exited || res.exit_code) {
                tqu_out(o, TQU_OUT_FAILED, "LegacyUninstallFailed", "docker rm -f ended with %d: %s", res.exit_code,
                        res.tail);
                k8s_buf_release(&b);
                return;
            }
            removed += n - 3;
            n = 3;
        }
        if (!id)
            break;
    }
    k8s_buf_release(&b);
    int folder = 0;
    if (tqu_is_dir(dir)) {
        if (!vendor_layout(dir)) {
            tqu_out(o, TQU_OUT_BLOCKED, "LegacyFolderUnknown",
                    "%d container(s) removed; %s (spec.legacy.installDir) does not hold the vendor's layout (no "
                    "docker-compose.yml): it is not removed; check it and remove it yourself, or correct the field",
                    removed, dir);
            return;
        }
        if (tqu__ap_confine_legacy(run, o) ||   /* again, right before rm -rf */
            tqu__ap_before_vendor(run, 0, "rm -rf", o))
            return;
        char *rm[] = { "rm", "-rf", "--", (char *)dir, NULL };
        if (tqu__ap_run(run, rm, run->dir, 600, "rm.log", &res, o))
            return;
        if (!res.exited || res.exit_code) {
            tqu_out(o, TQU_OUT_FAILED, "LegacyUninstallFailed", "rm -rf %s ended with %d: %s", dir, res.exit_code, res.tail);
            return;
        }
        folder = 1;
    }
    char *restart[] = { "systemctl", "restart", "docker", NULL };
    if (tqu__ap_before_vendor(run, 0, "systemctl restart docker", o) ||
        tqu__ap_run(run, restart, run->dir, 300, "docker-restart.log", &res, o))
        return;
    if (!res.exited || res.exit_code) {
        tqu_out(o, TQU_OUT_FAILED, "LegacyUninstallFailed", "systemctl restart docker ended with %d: %s", res.exit_code,
                res.tail);
        return;
    }
    if (tqu_write_file_atomic(done, "done\n", 5, 0600, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s", err);
        return;
    }
    tqu_log(TQU_INFO, "legacy access point uninstalled", "key", run->key, "folder", folder ? dir : "(none)", NULL);
redeploy:
    tqu_out(o, TQU_OUT_BLOCKED, "RedeployRequired",
            "the Docker-based access point is uninstalled (containers listed in %s/containers.txt, install folder %s "
            "removed, docker restarted): redeploy %s by the vendor's deployment manual; this is never automated",
            run->dir, dir, run->spec.to_version);
}
