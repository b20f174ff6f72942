/*
 * gather.c - step Gather: into the new plan_client folder, copies of the
 * installed deploy-server.db and every file of third_party/ansible_inventory, the
 * package's tq_saas/template.yaml.enc and darwin-client, and the installed
 * darwin_template_<id>.yaml; then chmod u+x of plan_client and
 * darwin-client. The originals are only read. Each copy is atomic, so a
 * crash leaves whole files and the step is simply run again.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "host/fsutil.h"
#include "ap_int.h"

static int copy(tqu_ap_run *run, const char *src, const char *dst, mode_t mode, tqu_outcome *o)
{
    char err[PATH_MAX * 2 + 256];
    /* each source confined too: a link in the installed folders (the
     * inventory, deploy-server.db) must not lead out of the allowed roots */
    if (tqu__ap_confine(run, "a file to gather", src, o))
        return -1;
    if (tqu__ap_copy_file(src, dst, mode, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "GatherFailed", "cannot copy %s: %s", src, err);
        return -1;
    }
    return 0;
}

void tqu__ap_step_gather(tqu_job *job, tqu_outcome *o)
{
    tqu_ap_run *run = (tqu_ap_run *)job;
    char pc[PATH_MAX], src[PATH_MAX * 2], dst[PATH_MAX * 2], tpath[PATH_MAX], tname[NAME_MAX + 1];
    char err[PATH_MAX + 256];
    int inv = 0;
    DIR *d;
    struct dirent *e;

    if (tqu__ap_confine_spec(run, o))
        return;
    tqu__ap_plan_client(run, pc, sizeof(pc));
    if (tqu__ap_deploy_template(run, tpath, sizeof(tpath), tname, sizeof(tname), o))
        return;
    snprintf(src, sizeof(src), "%s/deploy-server.db", run->spec.plan_client_dir);
    snprintf(dst, sizeof(dst), "%s/deploy-server.db", pc);
    if (copy(run, src, dst, 0600, o))
        return;
    snprintf(src, sizeof(src), "%s/third_party/ansible_inventory", run->spec.plan_client_dir);
    snprintf(dst, sizeof(dst), "%s/third_party/ansible_inventory", pc);
    if (tqu_mkdir_p(dst, 0755, err, sizeof(err))) {
        tqu_out(o, TQU_OUT_BLOCKED, "GatherFailed", "%s", err);
        return;
    }
    d = opendir(src);
    if (!d) {
        tqu_out(o, TQU_OUT_BLOCKED, "GatherFailed", "cannot read %s: %s", src, strerror(errno));
        return;
    }
    while ((e = readdir(d))) {
        char s2[PATH_MAX * 2 + NAME_MAX + 2], d2[PATH_MAX * 2 + NAME_MAX + 2];
        if (e->d_name[0] == '.')
            continue;
        snprintf(s2, sizeof(s2), "%s/%s", src, e->d_name);
        snprintf(d2, sizeof(d2), "%s/%s", dst, e->d_name);
        if (!tqu_is_file(s2))
            continue;
        if (copy(run, s2, d2, 0644, o)) {
            closedir(d);
            return;
        }
        inv++;
    }
    closedir(d);
    tqu__ap_new_saas(run, src, sizeof(src));
    strncat(src, "/template.yaml.enc", sizeof(src) - strlen(src) - 1);
    snprintf(dst, sizeof(dst), "%s/template.yaml.enc", pc);
    if (copy(run, src, dst, 0600, o))
        return;
    snprintf(src, sizeof(src), "%s/%s/%s", run->spec.packages_root, run->spec.to_version, AP_DARWIN_CLIENT);
    snprintf(dst, sizeof(dst), "%s/darwin-client", pc);
    if (copy(run, src, dst, 0700, o))
        return;
    snprintf(dst, sizeof(dst), "%s/%s", pc, tname);
    if (copy(run, tpath, dst, 0600, o))
        return;
    snprintf(dst, sizeof(dst), "%s/plan_client", pc);
    struct stat st;
    if (stat(dst, &st) || chmod(dst, (st.st_mode & 07777) | S_IXUSR)) {
        tqu_out(o, TQU_OUT_BLOCKED, "GatherFailed", "chmod u+x %s: %s", dst, strerror(errno));
        return;
    }
    tqu_out(o, TQU_OUT_DONE, NULL, "deploy-server.db, %d inventory file(s), template.yaml.enc, darwin-client and %s in %s",
            inv, tname, pc);
}
