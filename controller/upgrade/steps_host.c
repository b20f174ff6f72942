/*
 * steps_host.c - the steps that work on the deploy machine: Preflight's
 * file, package, template and disk checks (with the archive extraction),
 * PaasCheck (darwin-client, and the update.sh edit it may call for) and
 * Upgrade (update.sh, detached, at most once per generation), plus the plan
 * published in status.plan.
 *
 * Vendor commands run from argv arrays (controller/host/child.c), prefixed by
 * --exec-prefix. The SSH password is read from the Secret only when
 * update.sh is started, passed in its argv, and appears nowhere else: the
 * command line kept in status and files shows it as ***.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "host/child.h"
#include "runtime/connect.h"
#include "host/disk.h"
#include "host/fsutil.h"
#include "runtime/log.h"
#include "paas.h"
#include "status.h"
#include "steps_int.h"
#include "template.h"
#include "version.h"


#define PLAN_CLIENT "tq_paas/skylar/skylar_linuxserver_client/plan_client"
#define EXTRACT_TIMEOUT_MS (2L * 3600 * 1000)

/* ------------------------------------------------------------------ paths */

static void old_dir(const tqu_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run->spec.packages_root, run->spec.from_version);
}

static void new_dir(const tqu_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run->spec.packages_root, run->spec.to_version);
}

static void update_sh(const tqu_run *run, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s/update.sh", run->spec.packages_root, run->spec.to_version, PLAN_CLIENT);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_exec(const char *p)
{
    return is_file(p) && access(p, X_OK) == 0;
}

/* The template chosen by Preflight is kept in the state folder so that
 * PaasCheck and Upgrade use the same one even if new files appear. */
static int template_path(tqu_run *run, char *buf, size_t len, tqu_outcome *o)
{
    char f[PATH_MAX + 32], err[256], tdir[PATH_MAX];
    k8s_buf b;
    tqu_template t;

    snprintf(f, sizeof(f), "%s/template", run->dir);
    k8s_buf_init(&b, PATH_MAX);
    if (tqu_read_file(f, PATH_MAX, &b, err, sizeof(err)) == 0 && b.len > 1 && b.data[0] == '/') {
        snprintf(buf, len, "%.*s", (int)strcspn(b.data, "\n"), b.data);
        k8s_buf_release(&b);
        return 0;
    }
    k8s_buf_release(&b);
    tqu_template_default_dir(run->spec.packages_root, tdir, sizeof(tdir));
    tqu_template_find(tdir, run->spec.template_path[0] ? run->spec.template_path : NULL, &t);
    if (t.reason) {
        tqu_out(o, TQU_OUT_BLOCKED, t.reason, "%s", t.message);
        return -1;
    }
    snprintf(buf, len, "%s", t.path);
    return 0;
}

/* ---------------------------------------------------------------- the plan */

static int plan_add(cJSON *plan, const char *step, const char *action, const char *target,
                    const char *detail)
{
    cJSON *e = cJSON_CreateObject();
    if (!cJSON_AddStringToObject(e, "step", step) || !cJSON_AddStringToObject(e, "action", action) ||
        !cJSON_AddStringToObject(e, "target", target) ||
        (detail && !cJSON_AddStringToObject(e, "detail", detail))) {
        cJSON_Delete(e);
        return -1;
    }
    return k8s_json_append(plan, e) ? -1 : 0;
}

/* argv of update.sh, with the password slot given (*** for display). */
static void upgrade_argv(const tqu_run *run, const char *tmpl, const char *password, char *o_dir,
                         size_t olen, char *n_dir, size_t nlen, char *port, size_t plen,
                         const char *argv[20])
{
    old_dir(run, o_dir, olen);
    new_dir(run, n_dir, nlen);
    snprintf(port, plen, "%d", run->spec.ssh_port);
    int i = 0;
    argv[i++] = "sh";
    argv[i++] = "update.sh";
    argv[i++] = "-s"; argv[i++] = o_dir;
    argv[i++] = "-n"; argv[i++] = n_dir;
    argv[i++] = "-t"; argv[i++] = tmpl;
    argv[i++] = "-u"; argv[i++] = run->spec.ssh_user;
    argv[i++] = "-P"; argv[i++] = password;
    argv[i++] = "-p"; argv[i++] = port;
    argv[i++] = "-d"; argv[i++] = run->spec.data_backup_enabled ? run->spec.data_backup_dir : "false";
    argv[i] = NULL;
}
#define PASSWORD_ARG 11

static void format_cmd(const tqu_run *run, char *const *argv, unsigned long long secret, char *buf,
                       size_t len)
{
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = argv, .secret_args = secret };
    tqu_child_format_argv(&cs, buf, len);
}

/* Every command and API change the run will make, secrets as ***. */
static cJSON *build_plan(tqu_run *run, const char *tmpl)
{
    cJSON *plan = cJSON_CreateArray();
    char o[PATH_MAX], n[PATH_MAX], port[16], cmd[TQU_CHILD_CMD_MAX], buf[PATH_MAX * 2], d[1024];
    const char *argv[20];
    tqu_version initial, cutoff;
    int bad = 0;

    if (!plan)
        return NULL;
    new_dir(run, n, sizeof(n));
    old_dir(run, o, sizeof(o));
    if (run->spec.packages_archive[0]) {
        char arch[PATH_MAX * 2];
        if (run->spec.packages_archive[0] == '/')
            snprintf(arch, sizeof(arch), "%s", run->spec.packages_archive);
        else
            snprintf(arch, sizeof(arch), "%s/%s", n, run->spec.packages_archive);
        const char *targv[] = { "tar", "-xf", arch, "-C", n, NULL };
        format_cmd(run, (char *const *)targv, 0, cmd, sizeof(cmd));
        bad |= plan_add(plan, "Preflight", "run", cmd, "extract the new package, only if update.sh is not there yet");
    }
    snprintf(buf, sizeof(buf), "%s/deploy_<time>.log", run->dir);
    bad |= plan_add(plan, "BackupDeployments", "write", buf,
                    "the Deployment list in the layout of kubectl get deployment -A --no-headers");
    snprintf(buf, sizeof(buf), "%s/deploy_<time>.json", run->dir);
    bad |= plan_add(plan, "BackupDeployments", "write", buf, "the full manifest of every Deployment (a v1 List)");

    char tflag[PATH_MAX + 32];
    snprintf(tflag, sizeof(tflag), "--template.file=%s", tmpl);
    const char *pargv[] = { "./darwin-client", "install", "--data.source=local", "--execute.type=k8s",
                            tflag, "--actions=paas_check", NULL };
    format_cmd(run, (char *const *)pargv, 0, cmd, sizeof(cmd));
    snprintf(d, sizeof(d), "in %s/tq_saas, timeout %.0f s", o, run->spec.timeout_paas_s);
    bad |= plan_add(plan, "PaasCheck", "run", cmd, d);
    if (!run->spec.edr_enabled) {
        update_sh(run, buf, sizeof(buf));
        snprintf(d, sizeof(d), "only if es, flink and/or sabre alone fail (EDR off): insert \" --paas.check=false\" "
                 "after execute.type=k8s; the original is kept in %s", run->dir);
        bad |= plan_add(plan, "PaasCheck", "edit", buf, d);
    }
    if (tqu_version_parse(run->spec.initial_version, &initial) == 0 &&
        tqu_version_parse("10.5.0.3000", &cutoff) == 0 && tqu_version_cmp(&initial, &cutoff) < 0) {
        const char *sd = run->spec.has_window ? "its manifest is saved first; inside the window" :
                                                "its manifest is saved first";
        bad |= plan_add(plan, "SabreCleanup", "delete", "Deployment default-sabre-server/sabre-server", sd);
        bad |= plan_add(plan, "SabreCleanup", "delete", "Service default-sabre-server/sabre-server-service", sd);
    }
    upgrade_argv(run, tmpl, "***", o, sizeof(o), n, sizeof(n), port, sizeof(port), argv);
    format_cmd(run, (char *const *)argv, 0, cmd, sizeof(cmd));
    snprintf(d, sizeof(d), "in %s/%s, detached, at most once, timeout %.0f s%s%s%s", n, PLAN_CLIENT,
             run->spec.timeout_upgrade_s, run->spec.has_window ? ", only inside the window " : "",
             run->spec.has_window ? run->spec.window_start_text : "", run->spec.has_window ? " .. " : "");
    if (run->spec.has_window) {
        size_t l = strlen(d);
        snprintf(d + l, sizeof(d) - l, "%s", run->spec.window_end_text);
    }
    bad |= plan_add(plan, "Upgrade", "run", cmd, d);
    if (run->spec.cdn_cache_persistence || run->spec.cdn_anti_affinity) {
        snprintf(buf, sizeof(buf), "Deployment %s/%s", run->spec.cdn_namespace, run->spec.cdn_deployment);
        snprintf(d, sizeof(d), "strategic merge patch:%s%s%s%s (saved first; kept in place afterwards)",
                 run->spec.cdn_cache_persistence ? " hostPath volume darwin-cdn-data (DirectoryOrCreate) " : "",
                 run->spec.cdn_cache_persistence ? run->spec.cdn_cache_host_path : "",
                 run->spec.cdn_cache_persistence ? " mounted at /home/s/darwin-cdn/data/;" : "",
                 run->spec.cdn_anti_affinity ? " required pod anti-affinity on its app label per kubernetes.io/hostname" : "");
        bad |= plan_add(plan, "CdnTuning", "patch", buf, d);
    }
    snprintf(d, sizeof(d), "rolled out and available within %.0f s", run->spec.timeout_verify_s);
    bad |= plan_add(plan, "Verify", "wait", "every Deployment", d);
    if (bad) {
        cJSON_Delete(plan);
        return NULL;
    }
    return plan;
}

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

/* Extract the new package when update.sh is not there yet. */
static int extract_archive(tqu_run *run, tqu_outcome *o, char *note, size_t nlen)
{
    char n[PATH_MAX], arch[PATH_MAX * 2], log[PATH_MAX + 32], ferr[256], cmd[TQU_CHILD_CMD_MAX];
    char mark[PATH_MAX + 32];
    tqu_child_result r;

    new_dir(run, n, sizeof(n));
    if (run->spec.packages_archive[0] == '/')
        snprintf(arch, sizeof(arch), "%s", run->spec.packages_archive);
    else
        snprintf(arch, sizeof(arch), "%s/%s", n, run->spec.packages_archive);
    if (!is_file(arch)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
            "the new package %s has no update.sh and the archive %s (spec.packages.archive) is not there: "
            "copy the release package to the deploy machine", n, arch);
        return -1;
    }
    if (run->spec.dry_run) {
        snprintf(note, nlen, "would extract %s into %s", arch, n);
        return 0;
    }
    if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return -1;
    }
    snprintf(log, sizeof(log), "%s/extract.log", run->dir);
    snprintf(mark, sizeof(mark), "%s/extracted", run->dir);
    unlink(mark);
    const char *argv[] = { "tar", "-xf", arch, "-C", n, NULL };
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv,
                          .cwd = n, .log_path = log, .log_truncate = 1, .timeout_ms = EXTRACT_TIMEOUT_MS };
    format_cmd(run, (char *const *)argv, 0, cmd, sizeof(cmd));
    tqu_log(TQU_INFO, "extracting the new package", "key", run->key, "command", cmd, NULL);
    if (tqu_child_run(&cs, &r) || !r.exited || r.exit_code != 0) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageExtractFailed", "%s failed: %s%s%s", cmd,
            r.error[0] ? r.error : r.timed_out ? "timed out" : "non-zero exit", r.tail[0] ? "; last output: " : "",
            r.tail);
        return -1;
    }
    /* only a tar that finished makes the package count as extracted */
    if (tqu_write_file_atomic(mark, arch, strlen(arch), 0600, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return -1;
    }
    snprintf(note, nlen, "extracted %s", arch);
    return 0;
}

/* An extraction of ours that never finished (the controller died during
 * it): update.sh may exist while the package is incomplete. */
static int extraction_interrupted(const tqu_run *run)
{
    char log[PATH_MAX + 32], mark[PATH_MAX + 32];
    snprintf(log, sizeof(log), "%s/extract.log", run->dir);
    snprintf(mark, sizeof(mark), "%s/extracted", run->dir);
    return is_file(log) && !is_file(mark);
}

void tqu__step_preflight(tqu_run *run, tqu_outcome *o)
{
    char o_dir[PATH_MAX], n_dir[PATH_MAX], us[PATH_MAX + 128], dc[PATH_MAX + 64], tdir[PATH_MAX];
    char extract_note[PATH_MAX * 3] = "", clock_note[256] = "", ferr[256];
    tqu_template t;
    tqu_disk_verdict dr;

    if (check_confirmations(run, o))
        return;
    old_dir(run, o_dir, sizeof(o_dir));
    new_dir(run, n_dir, sizeof(n_dir));
    if (!is_dir(o_dir)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
            "the installed release's package %s is missing (spec.packages.root/spec.fromVersion): the PaaS check "
            "runs from its tq_saas folder", o_dir);
        return;
    }
    snprintf(dc, sizeof(dc), "%s/tq_saas/darwin-client", o_dir);
    if (!is_exec(dc)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing", "%s is missing or not executable", dc);
        return;
    }
    if (!is_dir(n_dir)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
            "the new release's folder %s is missing: create it, copy the release package there and extract it "
            "(or name the tarball in spec.packages.archive)", n_dir);
        return;
    }
    update_sh(run, us, sizeof(us));
    if (run->spec.packages_archive[0] && extraction_interrupted(run)) {
        tqu_log(TQU_WARN, "an earlier extraction of the package did not finish; extracting again", "key", run->key,
                NULL);
        if (extract_archive(run, o, extract_note, sizeof(extract_note)))
            return;
    } else if (!is_file(us)) {
        if (!run->spec.packages_archive[0]) {
            tqu_out(o, TQU_OUT_BLOCKED, "PackageMissing",
                "%s is missing: extract the release package in %s, or name its tarball in spec.packages.archive",
                us, n_dir);
            return;
        }
        if (extract_archive(run, o, extract_note, sizeof(extract_note)))
            return;
        if (!run->spec.dry_run && !is_file(us)) {
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
    cJSON *plan = build_plan(run, t.path);
    if (plan)
        k8s_json_put(run->status, "plan", plan);
    tqu_out(o, TQU_OUT_DONE, "PreflightPassed", "packages present%s%s; template %s; %s; %s; SSH Secret readable",
        extract_note[0] ? ", " : "", extract_note, t.path, dr.message, clock_note);
}

/* ---------------------------------------------------------------- PaasCheck */

static void lines_text(const tqu_paas_lines *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->nkept && off < len; i++) {
        int w = snprintf(buf + off, len - off, "%s\"%s\"", i ? ", " : "", l->text[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
}

void tqu__step_paas(tqu_run *run, tqu_outcome *o)
{
    char tmpl[PATH_MAX], cwd[PATH_MAX + 16], log[PATH_MAX + 32], tflag[PATH_MAX + 32], ferr[512];
    char cmd[TQU_CHILD_CMD_MAX], us[PATH_MAX + 128], failing[512], lines[1024];
    tqu_child_result r;
    tqu_paas_result pr;

    if (template_path(run, tmpl, sizeof(tmpl), o))
        return;
    snprintf(cwd, sizeof(cwd), "%s/%s/tq_saas", run->spec.packages_root, run->spec.from_version);
    snprintf(log, sizeof(log), "%s/paas_check.log", run->dir);
    snprintf(tflag, sizeof(tflag), "--template.file=%s", tmpl);
    if (tqu_mkdir_p(run->dir, 0700, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return;
    }
    const char *argv[] = { "./darwin-client", "install", "--data.source=local", "--execute.type=k8s", tflag,
                           "--actions=paas_check", NULL };
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv, .cwd = cwd,
                          .log_path = log, .log_truncate = 1,
                          .timeout_ms = (long)(run->spec.timeout_paas_s * 1000), .cancel = &run->ctl->stopping };
    format_cmd(run, (char *const *)argv, 0, cmd, sizeof(cmd));
    tqu_log(TQU_INFO, "running the PaaS check", "key", run->key, "command", cmd, "cwd", cwd, NULL);
    if (tqu_child_run(&cs, &r)) {
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckNotRun", "%s (in %s): %s", cmd, cwd, r.error);
        return;
    }
    if (r.cancelled) {
        tqu_out(o, TQU_OUT_ERROR, "Interrupted", "the PaaS check was interrupted by the controller stopping; it runs again");
        return;
    }
    if (r.timed_out) {
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckTimedOut",
            "darwin-client paas_check did not finish within %.0f s (spec.timeouts.paasCheck); output in %s",
            run->spec.timeout_paas_s, log);
        return;
    }
    if (tqu_paas_classify_file(log, r.exited ? r.exit_code : -1, &pr, ferr, sizeof(ferr))) {
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckUnreadable", "cannot read the PaaS check's output: %s", ferr);
        return;
    }
    /* the failing components with their lines, for the message */
    size_t off = 0;
    lines[0] = failing[0] = '\0';
    for (int i = 0; i < TQU_PAAS_NCOMPONENTS; i++) {
        const tqu_paas_component *c = &pr.comp[i];
        if (!c->name || !c->failed.nkept)
            continue;
        int w = snprintf(failing + off, sizeof(failing) - off, "%s%s", off ? ", " : "", c->name);
        if (w > 0 && (size_t)w < sizeof(failing) - off)
            off += (size_t)w;
        if (!lines[0])
            lines_text(&c->failed, lines, sizeof(lines));
    }
    switch (pr.verdict) {
    case TQU_PAAS_PASS:
        tqu_out(o, TQU_OUT_DONE, "PaasCheckPassed", "%s (output in %s)", pr.message, log);
        break;
    case TQU_PAAS_ONLY_EDR_COMPONENTS:
        if (run->spec.edr_enabled) {
            tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckFailed",
                "%s failed the PaaS check and the EDR module is used (spec.edrEnabled): repair them first, e.g. %s",
                failing, lines);
            break;
        }
        update_sh(run, us, sizeof(us));
        if (tqu_paas_disable_check(us, run->dir, ferr, sizeof(ferr))) {
            tqu_out(o, TQU_OUT_BLOCKED, "UpdateScriptEditFailed", "%s", ferr);
            break;
        }
        tqu_log(TQU_INFO, "update.sh told to skip its PaaS check", "key", run->key, "file", us, NULL);
        tqu_out(o, TQU_OUT_DONE, "PaasCheckEdrOnly",
            "only %s failed and EDR is off (expected): %s", failing, ferr);
        break;
    case TQU_PAAS_OTHER_COMPONENTS:
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckFailed",
            "PaaS components failed: %s; repair them before upgrading (e.g. %s; full output in %s)", failing, lines,
            log);
        break;
    default:
        tqu_out(o, TQU_OUT_BLOCKED, "PaasCheckUnknownFailure",
            "darwin-client paas_check exited with %d and named no component (%s): read %s and repair the cause",
            r.exited ? r.exit_code : -1, pr.message, log);
        break;
    }
    tqu_paas_release(&pr);
}

/* ----------------------------------------------------------------- Upgrade */

int tqu__window_gate(tqu_run *run, tqu_outcome *o, const char *what)
{
    time_t now = time(NULL);
    if (!run->spec.has_window)
        return 0;
    if (now < run->spec.window_start) {
        tqu_out(o, TQU_OUT_WAIT, "WaitingForWindow", "waiting for the maintenance window opening at %s",
            run->spec.window_start_text);
        o->requeue_after = difftime(run->spec.window_start, now) + 1;
        return -1;
    }
    if (now >= run->spec.window_end) {
        tqu_out(o, TQU_OUT_FAILED, "WindowClosed",
            "the maintenance window ended at %s before %s: agree a new window and set spec.window",
            run->spec.window_end_text, what);
        return -1;
    }
    return 0;
}

/* The newest attempt folder <dir>/upgrade-g<N>; *gen = N, or 0 if none. */
static void latest_attempt(const tqu_run *run, char *buf, size_t len, long long *gen)
{
    DIR *d = opendir(run->dir);
    struct dirent *e;
    *gen = 0;
    buf[0] = '\0';
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        long long g;
        char tail;
        if (sscanf(e->d_name, "upgrade-g%lld%c", &g, &tail) == 1 && g > *gen)
            *gen = g;
    }
    closedir(d);
    if (*gen)
        snprintf(buf, len, "%s/upgrade-g%lld", run->dir, *gen);
}

static void set_upgrade_status(tqu_run *run, const tqu_detached_status *st, const char *state_dir)
{
    cJSON *u = cJSON_CreateObject();
    char exitf[PATH_MAX + 16];
    snprintf(exitf, sizeof(exitf), "%s/exit", state_dir);
    if (!u)
        return;
    int bad = !cJSON_AddStringToObject(u, "command", st->command) ||
              !cJSON_AddStringToObject(u, "logFile", st->log_path) ||
              !cJSON_AddStringToObject(u, "exitCodeFile", exitf) ||
              (st->child_pid && !cJSON_AddNumberToObject(u, "pid", st->child_pid)) ||
              (st->started_at[0] && !cJSON_AddStringToObject(u, "startedAt", st->started_at)) ||
              !cJSON_AddNumberToObject(u, "elapsedSeconds", (double)(long long)st->elapsed) ||
              !cJSON_AddStringToObject(u, "outputTail", st->tail);
    if (!bad && st->state == TQU_DETACHED_FINISHED)
        bad = !cJSON_AddNumberToObject(u, "exitCode", st->exit_code) ||
              (st->finished_at[0] && !cJSON_AddStringToObject(u, "completedAt", st->finished_at));
    if (bad)
        cJSON_Delete(u);
    else
        k8s_json_put(run->status, "upgrade", u);
}

/* In place of vendor output when the password to mask it with is unknown. */
#define NOT_MASKABLE "(not shown: the SSH Secret could not be read to mask it)"

/* The last lines of install_saas.log, masked with redact; without a
 * mask nothing is shown (it could hold the password). */
static void install_log_tail(const tqu_run *run, const char *const *redact, char *buf, size_t len)
{
    if (!redact) {
        snprintf(buf, len, "%s", NOT_MASKABLE);
        return;
    }
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s/tq_saas/install_saas.log", run->spec.packages_root, run->spec.to_version);
    if (tqu_child_tail(p, 0, 8, redact, buf, len))
        snprintf(buf, len, "(no %s)", p);
}

static void finished(tqu_run *run, const tqu_detached_status *st, const char *const *redact, tqu_outcome *o)
{
    char tail[2048];
    k8s_err err;
    /* the vendor process is over: the finalizer can go */
    if (tqu_may_act(run->ctl))
        k8s_finalizer_remove(run->ctl->client, &TQU_RESOURCE, run->obj, TQU_FINALIZER, &err);
    if (st->state == TQU_DETACHED_LOST) {
        tqu_out(o, TQU_OUT_FAILED, "UpgradeOutcomeUnknown",
            "update.sh was started but its outcome is unknown (%s); it is never started twice: check %s and the "
            "cluster, and ask the vendor (TAC)", st->message, st->log_path);
        return;
    }
    if (st->timed_out) {
        install_log_tail(run, redact, tail, sizeof(tail));
        tqu_out(o, TQU_OUT_FAILED, "UpgradeTimedOut",
            "update.sh was stopped after %.0f s (spec.timeouts.upgrade); last lines of install_saas.log: %s",
            st->elapsed, tail);
        return;
    }
    if (st->exit_code != 0) {
        install_log_tail(run, redact, tail, sizeof(tail));
        if (st->exit_code < 0)
            tqu_out(o, TQU_OUT_FAILED, "UpgradeFailed", "update.sh was killed by signal %d after %.0f s; last lines of "
                "install_saas.log: %s", st->signal, st->elapsed, tail);
        else
            tqu_out(o, TQU_OUT_FAILED, "UpgradeFailed", "update.sh exited with %d after %.0f s; last lines of "
                "install_saas.log: %s", st->exit_code, st->elapsed, tail);
        return;
    }
    tqu_out(o, TQU_OUT_DONE, "UpgradeSucceeded", "update.sh finished successfully after %.0f s", st->elapsed);
}

static void launch(tqu_run *run, tqu_outcome *o)
{
    char tmpl[PATH_MAX], odir[PATH_MAX], ndir[PATH_MAX], port[16], cwd[PATH_MAX + 128], sdir[PATH_MAX + 32];
    char log[PATH_MAX + 64], ferr[256], password[1024];
    const char *argv[20];
    tqu_detached_status st;
    k8s_err err;
    char ebuf[1200];

    if (tqu__window_gate(run, o, "update.sh could start"))
        return;
    if (template_path(run, tmpl, sizeof(tmpl), o))
        return;
    /* the finalizer first: the resource is not deleted under a running upgrade */
    if (!tqu_may_act(run->ctl)) {
        tqu_out(o, TQU_OUT_ERROR, "NotLeader", "no longer the leader");
        return;
    }
    if (k8s_finalizer_add(run->ctl->client, &TQU_RESOURCE, run->obj, TQU_FINALIZER, &err)) {
        tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot add the finalizer: %s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return;
    }
    if (tqu__read_password(run, password, sizeof(password), o))
        return;
    upgrade_argv(run, tmpl, password, odir, sizeof(odir), ndir, sizeof(ndir), port, sizeof(port), argv);
    snprintf(cwd, sizeof(cwd), "%s/%s", ndir, PLAN_CLIENT);
    snprintf(sdir, sizeof(sdir), "%s/upgrade-g%lld", run->dir, run->generation);
    snprintf(log, sizeof(log), "%s/update.sh.log", sdir);
    if (tqu_mkdir_p(sdir, 0700, ferr, sizeof(ferr))) {
        OPENSSL_cleanse(password, sizeof(password));
        tqu_out(o, TQU_OUT_BLOCKED, "StateDirUnwritable", "%s (spec.backupDir)", ferr);
        return;
    }
    tqu_child_spec cs = { .prefix = run->ctl->opts->exec_prefix, .argv = (char *const *)argv,
                          .secret_args = TQU_CHILD_SECRET_ARG(PASSWORD_ARG), .cwd = cwd, .log_path = log,
                          .log_truncate = 1, .timeout_ms = (long)(run->spec.timeout_upgrade_s * 1000) };
    int rc = tqu_detached_start(&cs, sdir, &st);
    if (rc && (st.state == TQU_DETACHED_RUNNING || st.state == TQU_DETACHED_FINISHED ||
               st.state == TQU_DETACHED_LOST)) {
        /* the supervisor's report was late or lost, but update.sh was
         * launched: follow it, never report it as not started */
        const char *redact[] = { password, NULL };
        tqu_log(TQU_WARN, "update.sh launched, but its start was not confirmed in time; following it",
                "key", run->key, "state", tqu_detached_state_name(st.state), NULL);
        tqu_detached_poll(sdir, redact, 10, &st);
        set_upgrade_status(run, &st, sdir);
        if (st.state == TQU_DETACHED_RUNNING) {
            tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh started; output in %s", log);
            o->requeue_after = 10;
        } else {
            finished(run, &st, redact, o);   /* the password masks its log too */
        }
        OPENSSL_cleanse(password, sizeof(password));
        return;
    }
    OPENSSL_cleanse(password, sizeof(password));
    if (rc) {
        if (rc == TQU_CHILD_ELAUNCHED) {
            tqu_out(o, TQU_OUT_ERROR, "AlreadyLaunched", "update.sh was already launched for this generation");
            return;
        }
        tqu_out(o, rc == TQU_CHILD_ENOCWD || rc == TQU_CHILD_ENOTFOUND ? TQU_OUT_BLOCKED : TQU_OUT_FAILED,
            "UpgradeNotStarted", "update.sh could not be started in %s: %s", cwd, st.message);
        return;
    }
    tqu_log(TQU_INFO, "update.sh started", "key", run->key, "command", st.command, "cwd", cwd, NULL);
    tqu_event(run, "Normal", "UpgradeStarted", "update.sh started: %s", st.command);
    set_upgrade_status(run, &st, sdir);
    tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh started (it takes about an hour); output in %s", log);
    o->requeue_after = 10;
}

void tqu__step_upgrade(tqu_run *run, tqu_outcome *o)
{
    char sdir[PATH_MAX], password[1024];
    long long gen;
    tqu_detached_status st;
    tqu_outcome ignored;

    latest_attempt(run, sdir, sizeof(sdir), &gen);
    if (!gen) {
        launch(run, o);
        return;
    }
    /* update.sh's output is shown in status and Events: mask the password
     * in it (it could echo it, e.g. under set -x). Without the Secret there
     * is nothing to mask with, so no output is shown at all. */
    int have_pw = tqu__read_password(run, password, sizeof(password), &ignored) == 0;
    const char *redact[] = { have_pw ? password : NULL, NULL };
    int prc = tqu_detached_poll(sdir, redact, 10, &st);
    if (!have_pw)
        snprintf(st.tail, sizeof(st.tail), "%s", NOT_MASKABLE);
    if (prc) {
        tqu_out(o, TQU_OUT_ERROR, "StateUnreadable", "cannot read %s: %s", sdir, st.message);
        goto out;
    }
    /* no marker: nothing ever ran from that folder, so starting is safe */
    if (st.state == TQU_DETACHED_NOT_LAUNCHED) {
        launch(run, o);
        goto out;
    }
    set_upgrade_status(run, &st, sdir);
    if (st.state == TQU_DETACHED_RUNNING) {
        /* the message carries the last line; status.upgrade.outputTail more */
        const char *last = strrchr(st.tail, '\n');
        last = last ? last + 1 : st.tail;
        tqu_out(o, TQU_OUT_RUNNING, "UpgradeRunning", "update.sh running for %.0f s (pid %d); last output: %s", st.elapsed,
            (int)st.child_pid, last[0] ? last : "(none yet)");
        o->requeue_after = 10;
        goto out;
    }
    /* A success counts whatever the generation. A known failure (non-zero
     * exit, timeout) of an older generation is started again only when the
     * step was recorded as Failed and a new generation reset it (it was
     * Pending before this reconcile started it): a spec edited while
     * update.sh ran (a pause, a longer timeout) is no request to run it
     * twice. LOST is never retried: update.sh may have run. */
    int ok = st.state == TQU_DETACHED_FINISHED && !st.timed_out && st.exit_code == 0;
    if (!ok && gen < run->generation && st.state == TQU_DETACHED_FINISHED && run->step_was_pending) {
        launch(run, o);
        goto out;
    }
    finished(run, &st, have_pw ? redact : NULL, o);
out:
    OPENSSL_cleanse(password, sizeof(password));
}

int tqu_steps_vendor_running(tqu_run *run)
{
    char sdir[PATH_MAX];
    long long gen;
    tqu_detached_status st;
    latest_attempt(run, sdir, sizeof(sdir), &gen);
    if (!gen)
        return 0;
    return tqu_detached_poll(sdir, NULL, 0, &st) == 0 && st.state == TQU_DETACHED_RUNNING;
}
