/*
 * connect.c - first contact with the API server (see connect.h).
 */
#include <stdio.h>
#include <string.h>
#include "connect.h"
#include "tqu_version.h"

const k8s_resource TQU_RESOURCE = { TQU_GROUP, TQU_VERSION_API, TQU_PLURAL, 1 };

int tqu_connect(const char *kubeconfig, const char *context, k8s_config *cfg,
                k8s_client **client, char *server_version, size_t sv_len,
                char *msg, size_t msg_len)
{
    k8s_client_opts copts = { .max_retries = 2, .timeout_ms = 15000,
                              .user_agent = "tianqing-upgrade-controller/" TQU_VERSION };
    k8s_err err;
    cJSON *ver = NULL, *disc = NULL, *res;
    char ebuf[1200];
    int rc, found = 0;

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
    rc = k8s_request(*client, "GET", "/apis/" TQU_GROUP "/" TQU_VERSION_API, NULL, NULL, 0,
                     &disc, &err);
    if (rc == K8S_EAPI && err.code == 404) {
        snprintf(msg, msg_len, "the TianqingUpgrade CRD (%s.%s) is not installed on %s: "
                 "kubectl apply -f crds/", TQU_PLURAL, TQU_GROUP, cfg->server);
        goto fail;
    }
    if (rc) {
        snprintf(msg, msg_len, "cannot read the %s/%s API from %s: %s", TQU_GROUP, TQU_VERSION_API,
                 cfg->server, k8s_err_str(&err, ebuf, sizeof(ebuf)));
        goto fail;
    }
    cJSON_ArrayForEach(res, k8s_json_get(disc, "resources", NULL)) {
        const char *name = k8s_json_str(res, "name", NULL);
        if (name && strcmp(name, TQU_PLURAL) == 0)
            found = 1;
    }
    if (!found) {
        rc = K8S_ECONFIG;
        snprintf(msg, msg_len, "the %s API on %s has no %s resource: kubectl apply -f crds/",
                 TQU_GROUP, cfg->server, TQU_PLURAL);
        goto fail;
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
