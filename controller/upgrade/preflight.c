/*
 * preflight.c - step 2, Preflight: packages (the archive extracted by
 * extract.c), template, disk space, node clocks, confirmations, the SSH
 * Secret; and the plan published in status.plan.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "host/child.h"
#include "host/disk.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "template.h"
#include "version.h"
#include "status.h"
#include "steps_int.h"

/* --------------------------------------------------------------- Preflight */

static int check_confirmations(tqu_run *run, tqu_outcome *o)
{
    char m[1536] = "";
    size_t off = 0;
    int n = 0;
    struct { int ok; const char *field, *what; } c[] = {
        { run->spec.confirm_hotfix, "endpointHotfixApplied",
          "endpoint clients at 10.3.0.2050 or older have been moved to the vendor's hotfix build" },
        { run->spec.confirm_autoupdate_off, "clientAutoUpdateDisabled",
          "automatic endpoint-version updates are switched off in the management center (Update management)" },
        { run->spec.confirm_xinghai, "xinghaiReady",
          "Xinghai is XH6.8.0 or later, or the vendor has applied the ClickHouse TTL settings "
          "(ttl_only_drop_parts, materialize_ttl_after_modify)" },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if (c[i].ok)
            continue;
        int w = snprintf(m + off, sizeof(m) - off, "%sspec.confirmations.%s (%s)", n ? "; " : "", c[i].field,
                         c[i].what);
        if (w > 0 && (size_t)w < sizeof(m) - off)
            off += (size_t)w;
        n++;
    }
    if (!n)
        return 0;
    tqu_out(o, TQU_OUT_BLOCKED, "ConfirmationMissing",
        "a person must check and confirm: %s; set each to true once it is so", m);
    return -1;
}

void tqu__step_preflight(tqu_job *job, tqu_outcome *o)
{
    tqu_run *run = (tqu_run *)job;
    char o_dir[PATH_MAX], n_dir[PATH_MAX], us[PATH_MAX + 128], dc[PATH_MAX + 64], tdir[PATH_MAX];
    char extract_note[PATH_MAX * 3] = "", clock_note[256] = "", ferr[256];
    tqu_template t;
    tqu_disk_verdict dr;

    if (check_confirmations(run, o))
        return;
    /* a Blocked Preflight is re-checked without Validate: the paths again */
    if (tqu__confine_spec(run, o))
        return;
    tqu__old_dir(run, o_dir, sizeof(o_dir));
    tqu__new_dir(run, n_dir, sizeof(n_dir));
    if (!tqu_is_dir(o_dir)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
            "the installed release's package %s is missing (spec.packages.root/spec.fromVersion): the PaaS check "
            "runs from its tq_saas folder", o_dir);
        return;
    }
    snprintf(dc, sizeof(dc), "%s/tq_saas/darwin-client", o_dir);
    if (!tqu__is_exec(dc)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing", "%s is missing or not executable", dc);
        return;
    }
    if (tqu__confine(run, "spec.packages.root/spec.fromVersion (its tq_saas/darwin-client)", dc, 0, o))
        return;
    if (!tqu_is_dir(n_dir)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
            "the new release's folder %s is missing: create it, copy the release package there and extract it "
            "(or name the tarball in spec.packages.archive)", n_dir);
        return;
    }
    tqu__update_sh(run, us, sizeof(us));
    if (run->spec.packages_archive[0] && tqu__extraction_interrupted(run)) {
        tqu_log(TQU_WARN, "an earlier extraction of the package did not finish; extracting again", "key", run->key,
                NULL);
        if (tqu__extract_archive(run, o, extract_note, sizeof(extract_note)))
            return;
    } else if (!tqu_is_file(us)) {
        if (!run->spec.packages_archive[0]) {
            tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
                "%s is missing: extract the release package in %s, or name its tarball in spec.packages.archive",
                us, n_dir);
            return;
        }
        if (tqu__extract_archive(run, o, extract_note, sizeof(extract_note)))
            return;
        if (!run->spec.dry_run && !tqu_is_file(us)) {
            tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing", "%s is still missing after extracting %s", us,
                run->spec.packages_archive);
            return;
        }
    }

    tqu_template_default_dir(run->spec.packages_root, tdir, sizeof(tdir));
    tqu_template_find(tdir, run->spec.template_path[0] ? run->spec.template_path : NULL, &t);
    if (t.reason) {
        tqu_out(o, TQU_OUT_BLOCKED, t.reason, "%s", t.message);
        return;
    }
    /* update.sh (after an extraction) and the template found in the package */
    if (tqu__confine(run, "spec.packages.root/spec.toVersion (its update.sh)", us, 0, o))
        return;
    if (tqu__confine(run, run->spec.template_path[0] ? "spec.template" : "the template found in spec.packages.root",
                     t.path, 0, o))
        return;

    tqu_disk_params dp = {
        .data_root = run->spec.disk_data_root,
        .mongo_data_dir = run->spec.disk_mongo_dir,
        .data_backup_enabled = run->spec.data_backup_enabled,
        .data_backup_dir = run->spec.data_backup_dir,
        .reserve_gib = (uint64_t)run->spec.disk_reserve_gib,
        .max_usage_percent = (unsigned)run->spec.disk_max_usage_percent,
    };
    tqu_disk_check(&dp, NULL, &dr);
    if (dr.reason != TQU_DISK_OK) {
        tqu_out(o, TQU_OUT_BLOCKED, dr.code, "%s", dr.message);
        return;
    }
    if (tqu__check_node_clocks(run, o, clock_note, sizeof(clock_note)))
        return;
    if (tqu__check_secret(run, o))
        return;

    /* remember the template; publish the plan */
    if (!run->spec.dry_run) {
        char f[PATH_MAX + 32];
        snprintf(f, sizeof(f), "%s/template", run->dir);
        if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr)) ||
            tqu_write_file_atomic(f, t.path, strlen(t.path), 0600, ferr, sizeof(ferr))) {
            tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
            return;
        }
    }
    snprintf(run->tmpl, sizeof(run->tmpl), "%s", t.path);
    cJSON *plan = tqu_plan_build(job);
    if (plan)
        k8s_json_put(run->status, "plan", plan);
    tqu_out(o, TQU_OUT_DONE, "PreflightPassed", "packages present%s%s; template %s; %s; %s; SSH Secret readable",
        extract_note[0] ? ", " : "", extract_note, t.path, dr.message, clock_note);
}

struct clocks {
    time_t now;
    int leases, bad;
    char names[1024];
    size_t off;
};

static int clock_item(void *ud, const cJSON *l, int restart)
{
    struct clocks *c = ud;
    if (restart) {
        time_t now = c->now;
        memset(c, 0, sizeof(*c));
        c->now = now;
    }
    if (!l)
        return 0;
    const char *renew = k8s_json_str(l, "spec", "renewTime", NULL);
    long long dur = k8s_json_int(l, 40, "spec", "leaseDurationSeconds", NULL);
    time_t t;
    c->leases++;
    if (!renew || k8s_time_parse(renew, &t) != K8S_OK)
        return 0;
    double ahead = difftime(t, c->now), behind = difftime(c->now, t);
    const char *what = NULL;
    char why[128];
    if (ahead > 60) {
        snprintf(why, sizeof(why), "renewed %.0f s in the future: its clock is ahead", ahead);
        what = why;
    } else if (behind > (double)dur + 60) {
        snprintf(why, sizeof(why), "last renewed %.0f s ago: down, or its clock is behind", behind);
        what = why;
    }
    if (what) {
        c->bad++;
        if (c->off < sizeof(c->names) - 1) {
            int w = snprintf(c->names + c->off, sizeof(c->names) - c->off, "%s%s %s",
                             c->bad > 1 ? "; " : "", k8s_json_str(l, "metadata", "name", NULL), what);
            if (w > 0)
                c->off += (size_t)w;
        }
    }
    return 0;
}

/* Node clocks, judged by their Node Leases' renew times against ours. */
int tqu__check_node_clocks(tqu_run *run, tqu_outcome *o, char *note, size_t nlen)
{
    struct clocks c;
    k8s_err err;
    char ebuf[1200];

    memset(&c, 0, sizeof(c));
    c.now = time(NULL);
    if (k8s_list(run->ctl->client, &K8S_LEASES, "kube-node-lease", NULL, clock_item, &c, NULL, &err)) {
        if (err.code == 403) {
            snprintf(note, nlen, "node clocks not checked (no permission to list Leases in kube-node-lease)");
            return 0;
        }
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot list Node Leases: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    if (c.bad) {
        tqu_out(o, TQU_OUT_BLOCKED, "NodeClockSkew",
            "all servers must agree on date, time and time zone: %s; fix NTP/chrony on them", c.names);
        return -1;
    }
    if (c.leases == 0)
        snprintf(note, nlen, "no Node Leases reported, node clocks not compared");
    else
        snprintf(note, nlen, "clocks of %d nodes agree", c.leases);
    return 0;
}
