/*
 * options.c - command-line flags, parsed with getopt_long; --help lists
 * every flag with its default in the style of Kubernetes components.
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "options.h"
#include "tqu_version.h"

enum {
    OPT_KUBECONFIG = 256, OPT_CONTEXT, OPT_NAMESPACE, OPT_LEADER_ELECT,
    OPT_LE_NAMESPACE, OPT_LE_ID, OPT_HEALTH_ADDR, OPT_EXEC_PREFIX,
    OPT_LOG_FORMAT, OPT_LOG_LEVEL, OPT_ROUTES_FILE, OPT_ALLOWED_ROOT, OPT_REMEDIES_FILE, OPT_VERSION, OPT_HELP
};

static const struct option long_opts[] = {
    { "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
    { "context", required_argument, NULL, OPT_CONTEXT },
    { "namespace", required_argument, NULL, OPT_NAMESPACE },
    { "leader-elect", optional_argument, NULL, OPT_LEADER_ELECT },
    { "leader-election-namespace", required_argument, NULL, OPT_LE_NAMESPACE },
    { "leader-election-id", required_argument, NULL, OPT_LE_ID },
    { "health-addr", required_argument, NULL, OPT_HEALTH_ADDR },
    { "exec-prefix", required_argument, NULL, OPT_EXEC_PREFIX },
    { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
    { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
    { "routes-file", required_argument, NULL, OPT_ROUTES_FILE },
    { "allowed-root", required_argument, NULL, OPT_ALLOWED_ROOT },
    { "remedies-file", required_argument, NULL, OPT_REMEDIES_FILE },
    { "version", no_argument, NULL, OPT_VERSION },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

void tqu_options_usage(FILE *out)
{
    fputs(
"tianqing-upgrade-controller runs the Tianqing V10 operations runbook declared as\n"
"resources of upgrade.tianqing.io/v1alpha1 (TianqingUpgrade, TianqingTuning,\n"
"TianqingRestore, TianqingAccessPointUpgrade), one step at a time, and reports\n"
"every step in the resource's status and as Events.\n"
"\n"
"Usage:\n"
"  tianqing-upgrade-controller [flags]\n"
"\n"
"Flags:\n"
"      --kubeconfig string                  Path to a kubeconfig file. Empty: $KUBECONFIG, then\n"
"                                           ~/.kube/config, then the in-cluster service account. (default \"\")\n"
"      --context string                     The kubeconfig context to use. (default: current-context)\n"
"      --namespace string                   Watch the resources of every kind in this namespace only.\n"
"                                           (default: all namespaces)\n"
"      --leader-elect                       Take a coordination.k8s.io/v1 Lease before acting, so that\n"
"                                           only one of several replicas works. (default false)\n"
"      --leader-election-namespace string   Namespace of the Lease. (default: the kubeconfig's or\n"
"                                           service account's namespace)\n"
"      --leader-election-id string          Name of the Lease. (default \"tianqing-upgrade-controller\")\n"
"      --health-addr string                 Address for /healthz, /readyz and /metrics; empty disables.\n"
"                                           (default \":8081\")\n"
"      --exec-prefix string                 Command prepended to every vendor command, split on spaces,\n"
"                                           e.g. \"nsenter -t 1 -m -u -i -n -p --\" in a pod. (default \"\")\n"
"      --log-format string                  text or json. (default \"text\")\n"
"      --log-level string                   debug, info, warn or error. (default \"info\")\n"
"      --routes-file string                 The vendor's upgrade route table (YAML, see routes/routes.yaml).\n"
"                                           (default: the table built into this binary)\n"
"      --allowed-root stringArray           A folder the paths of a resource (packages, template, backups,\n"
"                                           disk paths, hostPaths) must resolve into, symbolic links\n"
"                                           followed; repeat for several. (default [/qaxdata])\n"
"      --remedies-file string               The etcd key names of the runbook's remedies (YAML, see\n"
"                                           remedies/remedies.yaml). (default: the table built into this binary)\n"
"      --version                            Print the version and exit.\n"
"  -h, --help                               Print this help and exit.\n", out);
}

/* Split s on runs of spaces into a NULL-terminated, owned argv. */
static char **split_words(const char *s)
{
    size_t n = 0, i = 0;
    const char *p;
    char **v;

    for (p = s; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        n++;
        while (*p && *p != ' ')
            p++;
    }
    if (n == 0)
        return NULL;
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (p = s; *p;) {
        const char *start;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        start = p;
        while (*p && *p != ' ')
            p++;
        v[i] = strndup(start, (size_t)(p - start));
        if (!v[i]) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
        i++;
    }
    return v;
}

int tqu_options_parse(tqu_options *o, int argc, char **argv, FILE *out, FILE *errout)
{
    int c, lvl, fmt;
    char rerr[PATH_MAX + 256];

    memset(o, 0, sizeof(*o));
    o->leader_election_id = "tianqing-upgrade-controller";
    o->health_addr = ":8081";
    o->log_format = TQU_LOG_TEXT;
    o->log_level = TQU_INFO;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_KUBECONFIG: o->kubeconfig = optarg[0] ? optarg : NULL; break;
        case OPT_CONTEXT: o->context = optarg[0] ? optarg : NULL; break;
        case OPT_NAMESPACE: o->namespace = optarg[0] ? optarg : NULL; break;
        case OPT_LEADER_ELECT:
            if (!optarg || strcmp(optarg, "true") == 0)
                o->leader_elect = 1;
            else if (strcmp(optarg, "false") == 0)
                o->leader_elect = 0;
            else {
                fprintf(errout, "invalid value \"%s\" for --leader-elect: want true or false\n", optarg);
                goto fail;
            }
            break;
        case OPT_LE_NAMESPACE: o->leader_election_namespace = optarg[0] ? optarg : NULL; break;
        case OPT_LE_ID:
            if (!optarg[0]) {
                fprintf(errout, "--leader-election-id must not be empty\n");
                goto fail;
            }
            o->leader_election_id = optarg;
            break;
        case OPT_HEALTH_ADDR: o->health_addr = optarg; break;
        case OPT_EXEC_PREFIX:
            for (size_t i = 0; o->exec_prefix && o->exec_prefix[i]; i++)
                free(o->exec_prefix[i]);
            free(o->exec_prefix);
            o->exec_prefix = split_words(optarg);
            if (!o->exec_prefix && strspn(optarg, " ") != strlen(optarg)) {
                fprintf(errout, "out of memory\n");
                goto fail;
            }
            break;
        case OPT_LOG_FORMAT:
            if ((fmt = tqu_log_format_parse(optarg)) < 0) {
                fprintf(errout, "invalid value \"%s\" for --log-format: want text or json\n", optarg);
                goto fail;
            }
            o->log_format = fmt;
            break;
        case OPT_LOG_LEVEL:
            if ((lvl = tqu_log_level_parse(optarg)) < 0) {
                fprintf(errout, "invalid value \"%s\" for --log-level: want debug, info, warn or error\n", optarg);
                goto fail;
            }
            o->log_level = lvl;
            break;
        case OPT_ROUTES_FILE: o->routes_file = optarg[0] ? optarg : NULL; break;
        case OPT_ALLOWED_ROOT:
            if (tqu_roots_add(&o->allowed_roots, optarg, rerr, sizeof(rerr))) {
                fprintf(errout, "invalid value \"%s\" for --allowed-root: %s\n", optarg, rerr);
                goto fail;
            }
            break;
        case OPT_REMEDIES_FILE: o->remedies_file = optarg[0] ? optarg : NULL; break;
        case OPT_VERSION:
            fprintf(out, "tianqing-upgrade-controller %s\n", TQU_VERSION);
            tqu_options_release(o);
            return TQU_OPT_EXIT_OK;
        case 'h':
        case OPT_HELP:
            tqu_options_usage(out);
            tqu_options_release(o);
            return TQU_OPT_EXIT_OK;
        case ':':
            fprintf(errout, "flag needs an argument: %s\n", argv[optind - 1]);
            goto fail;
        default:
            fprintf(errout, "unknown flag: %s (see --help)\n", argv[optind - 1]);
            goto fail;
        }
    }
    if (optind < argc) {
        fprintf(errout, "unexpected argument: %s (see --help)\n", argv[optind]);
        goto fail;
    }
    if (o->allowed_roots.n == 0 && tqu_roots_add(&o->allowed_roots, "/qaxdata", rerr, sizeof(rerr))) {
        fprintf(errout, "the default allowed root /qaxdata: %s\n", rerr);
        goto fail;
    }
    return TQU_OPT_RUN;
fail:
    tqu_options_release(o);
    return TQU_OPT_ERROR;
}

void tqu_options_release(tqu_options *o)
{
    for (size_t i = 0; o->exec_prefix && o->exec_prefix[i]; i++)
        free(o->exec_prefix[i]);
    free(o->exec_prefix);
    o->exec_prefix = NULL;
    tqu_roots_release(&o->allowed_roots);
}
