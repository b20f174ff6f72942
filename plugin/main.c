/*
 * main.c - kubectl-tianqing, the kubectl plugin of the Tianqing workflows
 * (design.md section 11): `kubectl tianqing status|plan|history|approve|
 * pause|stop|retry|wait`. Parses the command line (args.c), prints help,
 * and hands over to the command's function in the table (commands.c).
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "kinds.h"
#include "tqu_version.h"

static void usage(FILE *f)
{
    fprintf(f, "kubectl tianqing - follow and steer Tianqing upgrades (kubectl-tianqing %s)\n\n"
               "Usage: kubectl tianqing COMMAND [NAME | KIND/NAME] [flags]\n\nCommands:\n",
            TQU_VERSION);
    for (size_t i = 0; i < kp_ncommands; i++)
        fprintf(f, "  %-9s %s\n", kp_commands[i].name, kp_commands[i].summary);
    fprintf(f, "\nNAME is a TianqingUpgrade; KIND/NAME names another kind:");
    for (size_t i = 0; i < kp_nkinds; i++)
        fprintf(f, "%s %s (%s)", i ? "," : "", kp_kinds[i].singular, kp_kinds[i].short_name);
    fprintf(f, ".\n\n"
               "Flags (anywhere on the line, as kubectl takes them):\n"
               "  --kubeconfig FILE        the kubeconfig (default: $KUBECONFIG, then ~/.kube/config)\n"
               "  --context NAME           the kubeconfig context (default: its current-context)\n"
               "  -n, --namespace NS       the namespace (default: the context's, else \"default\")\n"
               "  -A, --all-namespaces     status: every namespace\n"
               "  -w, --watch              status: follow live until interrupted\n"
               "  --timeout DUR            wait: give up after DUR (90s, 30m, 4h)\n"
               "  -h, --help               this help; COMMAND --help for one command\n\n"
               "Exit codes:\n"
               "  0  done (wait: Ready)\n"
               "  1  wait: Stalled, a person must act\n"
               "  2  usage, configuration, connection or API error, not found, timed out\n");
}

static void command_help(const kp_command *c)
{
    printf("Usage: kubectl tianqing %s [flags]\n\n%s.\n\n%s", c->synopsis, c->summary, c->help);
    printf("\nFlags: --kubeconfig FILE, --context NAME, -n/--namespace NS (kubectl tianqing --help).\n");
}

int main(int argc, char **argv)
{
    kp_args a;
    char msg[512];
    int rc;

    if (kp_args_parse(argc, argv, &a, msg, sizeof(msg))) {
        fprintf(stderr, "error: %s\nSee 'kubectl tianqing --help'.\n", msg);
        rc = KP_EXIT_ERROR;
    } else if (a.help) {
        if (a.command)
            command_help(kp_command_find(a.command));
        else
            usage(stdout);
        rc = KP_EXIT_OK;
    } else {
        rc = kp_command_find(a.command)->run(&a);
    }
    return rc;
}
