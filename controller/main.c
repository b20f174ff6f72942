/*
 * main.c - tianqing-upgrade-controller: flags, configuration, the first
 * contact with the API server, then the controller runtime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "runtime/connect.h"
#include "runtime/runtime.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/options.h"
#include "accesspoint/accesspoint.h"
#include "restore/restore.h"
#include "upgrade/steps.h"
#include "upgrade/upgrade.h"
#include "tuning/tuning.h"

/* The workflows this process runs: one line each (design.md section 7). */
static const tqu_reconciler *const workflows[] = {
    &tqu_upgrade_workflow.rec,
    &tqu_tuning_workflow.rec,
    &tqu_restore_workflow.rec,
    &tqu_accesspoint_workflow.rec,
};
#define NWORKFLOWS (sizeof(workflows) / sizeof(workflows[0]))

int main(int argc, char **argv)
{
    tqu_options opts;
    k8s_config cfg;
    k8s_client *client = NULL;
    char msg[2048], version[64];
    int r;

    r = tqu_options_parse(&opts, argc, argv, stdout, stderr);
    if (r != TQU_OPT_RUN)
        return r == TQU_OPT_EXIT_OK ? 0 : 2;
    tqu_log_setup(opts.log_format, opts.log_level);
    {
        /* rand() jitters the backoffs, the Lease retry period and the watch
         * timeout; unseeded, every replica drew the same sequence and
         * retried in lockstep after an outage. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        srand((unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ (unsigned)ts.tv_nsec);
    }
    tqu_metrics_init();
    k8s_set_default_observer(tqu_metrics_api_request, NULL);

    if (tqu_tuning_init(opts.remedies_file, msg, sizeof(msg))) {
        fprintf(stderr, "tianqing-upgrade-controller: %s\n", msg);
        tqu_options_release(&opts);
        return 1;
    }
    if (tqu_steps_init(opts.routes_file, msg, sizeof(msg))) {
        fprintf(stderr, "tianqing-upgrade-controller: %s\n", msg);
        tqu_options_release(&opts);
        return 1;
    }

    if (tqu_connect(opts.kubeconfig, opts.context, workflows, NWORKFLOWS, &cfg, &client, version,
                    sizeof(version), msg, sizeof(msg))) {
        fprintf(stderr, "tianqing-upgrade-controller: %s\n", msg);
        tqu_steps_cleanup();
        tqu_options_release(&opts);
        return 1;
    }
    tqu_log(TQU_INFO, "connected", "server", cfg.server, "serverVersion", version,
            "config", cfg.source ? cfg.source : "", NULL);

    r = tqu_controller_run(&opts, &cfg, client, version, workflows, NWORKFLOWS);

    k8s_client_free(client);
    k8s_config_release(&cfg);
    tqu_steps_cleanup();
    tqu_options_release(&opts);
    return r;
}
