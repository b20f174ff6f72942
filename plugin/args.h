/*
 * args.h - the command line of kubectl-tianqing, parsed without I/O.
 *
 * kubectl hands a plugin its arguments as typed, so flags may come before
 * or after the command: `kubectl tianqing -n x status NAME --watch`. Flags
 * take their value as the next argument or after '=' (-nNS too).
 */
#ifndef KP_ARGS_H
#define KP_ARGS_H

#include <stddef.h>

typedef struct kp_args {
    const char *command;        /* "status", "plan"...; NULL: none given */
    const char *target;         /* NAME or KIND/NAME; NULL: none given */
    const char *kubeconfig;     /* --kubeconfig; NULL: $KUBECONFIG, ~/.kube/config */
    const char *context;        /* --context; NULL: current-context */
    const char *namespace_;     /* -n/--namespace; NULL: the context's */
    int all_namespaces;         /* -A/--all-namespaces (status only) */
    int watch;                  /* -w/--watch (status only) */
    int help;                   /* -h/--help, or the command "help" */
    long long timeout_s;        /* --timeout (wait only); 0: none */
    int timeout_set;
} kp_args;

/* What a command accepts, for kp_args_parse's checks and the help. */
typedef struct kp_command {
    const char *name;
    const char *synopsis;       /* "status [NAME] [-A] [--watch]" */
    const char *summary;        /* one line for the list of commands */
    const char *help;           /* the rest of `COMMAND --help` */
    int target;                 /* 0: no NAME, 1: optional, 2: required */
    int flags;                  /* KP_F_* it accepts beyond the global ones */
    int (*run)(const kp_args *a);
} kp_command;

#define KP_F_ALL     1
#define KP_F_WATCH   2
#define KP_F_TIMEOUT 4

/* Exit codes (README "kubectl tianqing", and --help). */
#define KP_EXIT_OK      0
#define KP_EXIT_STALLED 1   /* wait: Stalled=True, a person must act */
#define KP_EXIT_ERROR   2   /* usage, configuration, connection, not found, timeout */

extern const kp_command kp_commands[];
extern const size_t kp_ncommands;

const kp_command *kp_command_find(const char *name);

/*
 * Parse argv[1..argc-1] into a (zeroed first). Returns 0, or -1 with a
 * one-line reason in msg: an unknown flag or command, a flag without its
 * value, a flag the command does not take, a NAME too many or missing, a
 * bad --timeout. With -h/--help anywhere only the command is checked.
 */
int kp_args_parse(int argc, char **argv, kp_args *a, char *msg, size_t msglen);

#endif /* KP_ARGS_H */
