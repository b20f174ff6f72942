/*
 * main.c - tianqing-upgrade-controller: flags, configuration, and the
 * first contact with the API server.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "connect.h"
#include "log.h"
#include "options.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    tqu_options opts;
    k8s_config cfg;
    k8s_client *client = NULL;
    char msg[2048], version[64];
    struct sigaction sa;
    int r;

    r = tqu_options_parse(&opts, argc, argv, stdout, stderr);
    if (r != TQU_OPT_RUN)
        return r == TQU_OPT_EXIT_OK ? 0 : 2;
    tqu_log_setup(opts.log_format, opts.log_level);

    if (tqu_connect(opts.kubeconfig, opts.context, &cfg, &client, version, sizeof(version),
                    msg, sizeof(msg))) {
        fprintf(stderr, "tianqing-upgrade-controller: %s\n", msg);
        tqu_options_release(&opts);
        return 1;
    }
    tqu_log(TQU_INFO, "connected", "server", cfg.server, "serverVersion", version,
            "config", cfg.source ? cfg.source : "", NULL);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    while (!stopping)
        pause();
    tqu_log(TQU_INFO, "stopping", NULL);

    k8s_client_free(client);
    k8s_config_release(&cfg);
    tqu_options_release(&opts);
    return 0;
}
