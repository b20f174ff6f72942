/*
 * kinds.c - the kinds table of kubectl-tianqing (see kinds.h).
 */
#include "kinds.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define KP_GROUP "upgrade.tianqing.io"
#define KP_VERSION "v1alpha1"

/* The first entry is the default kind of a plain NAME. */
const kp_kind kp_kinds[] = {
    {"TianqingUpgrade", "tianqingupgrade", "tqu",
     {KP_GROUP, KP_VERSION, "tianqingupgrades", 1}},
    {"TianqingTuning", "tianqingtuning", "tqt",
     {KP_GROUP, KP_VERSION, "tianqingtunings", 1}},
    {"TianqingAccessPointUpgrade", "tianqingaccesspointupgrade", "tqap",
     {KP_GROUP, KP_VERSION, "tianqingaccesspointupgrades", 1}},
    {"TianqingRestore", "tianqingrestore", "tqr",
     {KP_GROUP, KP_VERSION, "tianqingrestores", 1}},
};
const size_t kp_nkinds = sizeof(kp_kinds) / sizeof(kp_kinds[0]);

const kp_kind *kp_kind_find(const char *word)
{
    const kp_kind *found = NULL;
    char w[128];
    size_t n;

    if (!word || !*word)
        goto out;
    n = strlen(word);
    if (n >= sizeof(w))
        goto out;
    memcpy(w, word, n + 1);
    /* "tianqingupgrades.upgrade.tianqing.io": the group must be ours */
    char *dot = strchr(w, '.');
    if (dot) {
        if (strcasecmp(dot + 1, KP_GROUP) != 0)
            goto out;
        *dot = '\0';
    }
    for (size_t i = 0; i < kp_nkinds && !found; i++) {
        const kp_kind *k = &kp_kinds[i];
        if (!strcasecmp(w, k->kind) || !strcasecmp(w, k->singular) ||
            !strcasecmp(w, k->short_name) || !strcasecmp(w, k->res.plural))
            found = k;
    }
out:
    return found;
}

int kp_target_parse(const char *arg, const kp_kind **kind, const char **name,
                    char *msg, size_t msglen)
{
    int rc = -1;
    const char *slash = arg ? strchr(arg, '/') : NULL;

    if (!arg || !*arg) {
        snprintf(msg, msglen, "a resource name is required");
        goto out;
    }
    if (!slash) {
        *kind = &kp_kinds[0];
        *name = arg;
        rc = 0;
        goto out;
    }
    if (strchr(slash + 1, '/')) {
        snprintf(msg, msglen, "%s: want KIND/NAME or NAME", arg);
        goto out;
    }
    if (slash[1] == '\0') {
        snprintf(msg, msglen, "%s: the name after '/' is empty", arg);
        goto out;
    }
    char word[128];
    size_t n = (size_t)(slash - arg);
    if (n == 0 || n >= sizeof(word)) {
        snprintf(msg, msglen, "%s: want KIND/NAME or NAME", arg);
        goto out;
    }
    memcpy(word, arg, n);
    word[n] = '\0';
    *kind = kp_kind_find(word);
    if (!*kind) {
        size_t used = (size_t)snprintf(msg, msglen, "%s: unknown kind \"%s\" (known:", arg, word);
        for (size_t i = 0; i < kp_nkinds && used < msglen; i++)
            used += (size_t)snprintf(msg + used, msglen - used, "%s %s (%s)", i ? "," : "",
                                     kp_kinds[i].singular, kp_kinds[i].short_name);
        if (used < msglen)
            snprintf(msg + used, msglen - used, ")");
        goto out;
    }
    *name = slash + 1;
    rc = 0;
out:
    return rc;
}
