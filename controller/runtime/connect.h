/*
 * connect.h - load the client configuration, reach the API server and make
 * sure every registered workflow's CRD is installed, with one clear line on
 * failure.
 */
#ifndef TQU_CONNECT_H
#define TQU_CONNECT_H

#include <stddef.h>
#include "k8s.h"
#include "runtime.h"

/*
 * Load config (kubeconfig may be NULL, context may be NULL), make a client,
 * GET /version and the discovery document of each reconciler's resource.
 * On success *cfg and *client are filled (caller releases/frees both) and
 * server_version (if not NULL) gets e.g. "v1.20.2". On failure nothing is
 * left allocated and msg holds one line naming the file or server and the
 * problem, with what to do where there is an obvious remedy.
 */
int tqu_connect(const char *kubeconfig, const char *context, const tqu_reconciler *const *recs,
                size_t nrecs, k8s_config *cfg, k8s_client **client, char *server_version,
                size_t sv_len, char *msg, size_t msg_len);

#endif
