/*
 * connect.c - first contact with the API server (see connect.h).
 */
#include <stdio.h>
#include <string.h>
#include "connect.h"
#include "tqu_version.h"

/* Whether the discovery document disc lists plural. */
static int lists(const cJSON *disc, const char *plural)
{
    const cJSON *res;
    cJSON_ArrayForEach(res, k8s_json_get(disc, "resources", NULL)) {
        const char *name = k8s_json_str(res, "name", NULL);
        if (name && strcmp(name, plural) == 0)
            return 1;
    }
    return 0;
}

int tqu_connect(const char *kubeconfig, const char *context, const tqu_reconciler *const *recs,
                size_t nrecs, k8s_config *cfg, k8s_client **client, char *server_version,
                size_t sv_len, char *msg, size_t msg_len)
{
    k8s_client_opts copts = { .max_retries = 2, .timeout_ms = 15000,
                              .user_agent = "tianqing-upgrade-controller/" TQU_VERSION };
    k8s_err err;
    cJSON *ver = NULL, *disc = NULL;
    char ebuf[1200];
    int rc;

    *client = NULL;
    memset(cfg, 0, sizeof(*cfg));
    rc = k8s_config_load(cfg, kubeconfig, context, &err);
    if (rc) {
        snprintf(msg, msg_len, "%s", k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return rc;
    }
    rc = k8s_client_new(cfg, &copts, client, &err);
    if (rc) {
        snprintf(msg, msg_len, "%s: %s", cfg->source ? cfg->source : "config",
                 k8s_err_str(&err, ebuf, sizeof(ebuf)));
        goto fail;
    }
    rc = k8s_request(*client, "GET", "/version", NULL, NULL, 0, &ver, &err);
    if (rc) {
        const char *hint = rc == K8S_ETLS ? " (is the CA in the kubeconfig the server's CA?)" :
                           rc == K8S_ECONNECT ? " (is the API server running and the address right?)" :
                           err.code == 401 ? " (the credentials were refused)" : "";
        snprintf(msg, msg_len, "cannot reach the API server %s (from %s): %s%s", cfg->server,
                 cfg->source ? cfg->source : "config", k8s_err_str(&err, ebuf, sizeof(ebuf)), hint);
        goto fail;
    }
    if (server_version && sv_len) {
        const char *gv = k8s_json_str(ver, "gitVersion", NULL);
        snprintf(server_version, sv_len, "%s", gv ? gv : "unknown");
    }
    for (size_t i = 0; i < nrecs; i++) {
        const k8s_resource *r = recs[i]->resource;
        char path[512];
        if (i == 0 || strcmp(r->group, recs[i - 1]->resource->group) ||
            strcmp(r->version, recs[i - 1]->resource->version)) {
            cJSON_Delete(disc);
            disc = NULL;
            snprintf(path, sizeof(path), "/apis/%s/%s", r->group, r->version);
            rc = k8s_request(*client, "GET", path, NULL, NULL, 0, &disc, &err);
            if (rc && !(rc == K8S_EAPI && err.code == 404)) {
                snprintf(msg, msg_len, "cannot read the %s/%s API from %s: %s", r->group, r->version,
                         cfg->server, k8s_err_str(&err, ebuf, sizeof(ebuf)));
                goto fail;
            }
            rc = 0;
        }
        if (!disc) {
            rc = K8S_ECONFIG;
            snprintf(msg, msg_len, "the %s CRD (%s.%s) is not installed on %s: "
                     "kubectl apply -f crds/", recs[i]->kind, r->plural, r->group, cfg->server);
            goto fail;
        }
        if (!lists(disc, r->plural)) {
            rc = K8S_ECONFIG;
            snprintf(msg, msg_len, "the %s CRD (%s.%s) is not installed on %s: kubectl apply -f crds/",
                     recs[i]->kind, r->plural, r->group, cfg->server);
            goto fail;
        }
    }
    cJSON_Delete(ver);
    cJSON_Delete(disc);
    return K8S_OK;
fail:
    if (!rc)
        rc = K8S_ECONFIG;
    cJSON_Delete(ver);
    cJSON_Delete(disc);
    k8s_client_free(*client);
    *client = NULL;
    k8s_config_release(cfg);
    return rc;
}
