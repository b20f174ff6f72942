/*
 * err.c - the k8s_err result detail and k8s_strerror.
 *
 * Filling an error never allocates, so it works after ENOMEM too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "k8s.h"

static const char *const rc_text[K8S_RC_MAX] = {
    [K8S_OK] = "success",
    [K8S_ENOMEM] = "out of memory",
    [K8S_EINVAL] = "invalid argument",
    [K8S_ECONFIG] = "configuration error",
    [K8S_EIO] = "file error",
    [K8S_ECONNECT] = "cannot connect to the API server",
    [K8S_ETLS] = "TLS error",
    [K8S_ETIMEOUT] = "timed out",
    [K8S_EAPI] = "API server error",
    [K8S_EPARSE] = "malformed response",
    [K8S_ETOOBIG] = "response too large",
    [K8S_EEXEC] = "credential plugin failed",
    [K8S_ESTOPPED] = "stopped",
};

const char *k8s_strerror(int rc)
{
    if (rc < 0 || rc >= K8S_RC_MAX || !rc_text[rc])
        return "unknown error";
    return rc_text[rc];
}

void k8s_err_clear(k8s_err *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

int k8s_err_set(k8s_err *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        k8s_err_clear(err);
        err->rc = (k8s_rc)rc;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return rc;
}

const char *k8s_err_str(const k8s_err *err, char *buf, size_t len)
{
    if (!buf || !len)
        return "";
    if (!err || err->rc == K8S_OK) {
        snprintf(buf, len, "success");
    } else if (err->rc == K8S_EAPI) {
        snprintf(buf, len, "%s: %s (%ld)%s%s", err->reason[0] ? err->reason : "Error",
                 err->message[0] ? err->message : "no message", err->code,
                 err->causes[0] ? ": " : "", err->causes);
    } else if (err->message[0]) {
        snprintf(buf, len, "%s", err->message);
    } else {
        snprintf(buf, len, "%s", k8s_strerror(err->rc));
    }
    return buf;
}

int k8s_err_is(const k8s_err *err, const char *reason)
{
    return err && err->rc == K8S_EAPI && reason && strcmp(err->reason, reason) == 0;
}
