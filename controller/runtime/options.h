/*
 * options.h - the controller's command-line flags (design.md section 3).
 */
#ifndef TQU_OPTIONS_H
#define TQU_OPTIONS_H

#include <stdio.h>
#include "host/roots.h"

typedef struct tqu_options {
    const char *kubeconfig;            /* NULL: $KUBECONFIG, ~/.kube/config, in-cluster */
    const char *context;               /* NULL: current-context */
    const char *namespace;             /* NULL: all namespaces */
    int leader_elect;
    const char *leader_election_namespace;   /* NULL: the config's namespace */
    const char *leader_election_id;
    const char *health_addr;           /* "" disables */
    char **exec_prefix;                /* NULL-terminated argv, owned; NULL when empty */
    int log_format;                    /* enum tqu_log_format */
    int log_level;                     /* enum tqu_log_level */
    const char *routes_file;           /* NULL: the table built into the binary */
    tqu_roots allowed_roots;           /* --allowed-root, resolved at start; default
                                          /qaxdata; owned (tqu_options_release) */
    const char *remedies_file;         /* NULL: remedies/remedies.yaml built in */
} tqu_options;

enum { TQU_OPT_RUN = 0, TQU_OPT_EXIT_OK = 1, TQU_OPT_ERROR = -1 };

/*
 * Parse argv (argv[0] is the program). Prints --help / --version to out and
 * returns TQU_OPT_EXIT_OK; on a bad flag writes one line to errout and
 * returns TQU_OPT_ERROR. Strings point into argv except exec_prefix, which
 * is split on spaces and owned, and allowed_roots, resolved (symbolic
 * links followed) while parsing and owned; both freed by
 * tqu_options_release. The first --allowed-root replaces the default.
 */
int tqu_options_parse(tqu_options *o, int argc, char **argv, FILE *out, FILE *errout);
void tqu_options_release(tqu_options *o);
void tqu_options_usage(FILE *out);

#endif
