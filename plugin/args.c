/*
 * args.c - the command line of kubectl-tianqing (see args.h).
 */
#include "args.h"

#include <stdio.h>
#include <string.h>

#include "render.h"

const kp_command *kp_command_find(const char *name)
{
    const kp_command *c = NULL;
    for (size_t i = 0; name && i < kp_ncommands && !c; i++)
        if (!strcmp(kp_commands[i].name, name))
            c = &kp_commands[i];
    return c;
}

/* "--name=value", "--name value", and for a short flag "-nvalue" too.
 * Returns 1 and sets *val when arg is this flag, 0 when it is not, -1
 * when its value is missing. */
static int flag_value(const char *shortf, const char *longf, int argc, char **argv, int *i,
                      const char **val)
{
    const char *arg = argv[*i];
    size_t n = strlen(longf);

    if (!strncmp(arg, longf, n) && (arg[n] == '=' || arg[n] == '\0')) {
        if (arg[n] == '=') {
            *val = arg + n + 1;
            return 1;
        }
    } else if (shortf && !strncmp(arg, shortf, 2)) {
        if (arg[2]) {
            *val = arg + 2 + (arg[2] == '=');
            return 1;
        }
    } else {
        return 0;
    }
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

int kp_args_parse(int argc, char **argv, kp_args *a, char *msg, size_t msglen)
{
    int rc = -1, r, dashdash = 0;
    const char *timeout = NULL, *v;
    const kp_command *cmd = NULL;
    const char *extra = NULL;

    memset(a, 0, sizeof(*a));
    msg[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (dashdash || arg[0] != '-' || arg[1] == '\0') {
            if (!a->command)
                a->command = arg;
            else if (!a->target)
                a->target = arg;
            else if (!extra)
                extra = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            dashdash = 1;
        } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            a->help = 1;
        } else if (!strcmp(arg, "-A") || !strcmp(arg, "--all-namespaces")) {
            a->all_namespaces = 1;
        } else if (!strcmp(arg, "-w") || !strcmp(arg, "--watch")) {
            a->watch = 1;
        } else if ((r = flag_value(NULL, "--kubeconfig", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto missing;
            a->kubeconfig = v;
        } else if ((r = flag_value(NULL, "--context", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto missing;
            a->context = v;
        } else if ((r = flag_value("-n", "--namespace", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto missing;
            a->namespace_ = v;
        } else if ((r = flag_value(NULL, "--timeout", argc, argv, &i, &v)) != 0) {
            if (r < 0)
                goto missing;
            timeout = v;
        } else {
            snprintf(msg, msglen, "unknown flag %s", arg);
            goto out;
        }
        continue;
missing:
        snprintf(msg, msglen, "flag %s needs a value", arg);
        goto out;
    }
    if (a->command && !strcmp(a->command, "help")) {
        a->help = 1;
        a->command = a->target;
        a->target = extra;
        extra = NULL;
    }
    if (a->command && !(cmd = kp_command_find(a->command))) {
        snprintf(msg, msglen, "unknown command \"%s\"", a->command);
        goto out;
    }
    if (a->help) {
        rc = 0;
        goto out;
    }
    if (!cmd) {
        snprintf(msg, msglen, "no command given");
        goto out;
    }
    if (a->namespace_ && !*a->namespace_) {
        snprintf(msg, msglen, "--namespace is empty");
        goto out;
    }
    if (extra || (a->target && cmd->target == 0)) {
        snprintf(msg, msglen, "%s: unexpected argument \"%s\"", cmd->name, extra ? extra : a->target);
        goto out;
    }
    if (!a->target && cmd->target == 2) {
        snprintf(msg, msglen, "%s: a resource NAME (or KIND/NAME) is required", cmd->name);
        goto out;
    }
    if (a->all_namespaces && !(cmd->flags & KP_F_ALL)) {
        snprintf(msg, msglen, "%s does not take -A/--all-namespaces", cmd->name);
        goto out;
    }
    if (a->all_namespaces && a->target) {
        snprintf(msg, msglen, "%s: -A/--all-namespaces lists every resource: give no NAME", cmd->name);
        goto out;
    }
    if (a->watch && !(cmd->flags & KP_F_WATCH)) {
        snprintf(msg, msglen, "%s does not take --watch", cmd->name);
        goto out;
    }
    if (timeout && !(cmd->flags & KP_F_TIMEOUT)) {
        snprintf(msg, msglen, "%s does not take --timeout", cmd->name);
        goto out;
    }
    if (timeout) {
        if (kp_parse_duration(timeout, &a->timeout_s)) {
            snprintf(msg, msglen, "--timeout=%s: want a duration such as 90s, 30m or 2h", timeout);
            goto out;
        }
        a->timeout_set = 1;
    }
    rc = 0;
out:
    return rc;
}
