/*
 * secret.c - the SSH Secret: checked by Preflight, read by Upgrade only
 * when update.sh starts, and wiped after use.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "runtime/log.h"
#include "status.h"
#include "steps_int.h"

/* -------------------------------------------------- Preflight, cluster side */

/*
 * The SSH password, base64-decoded from the Secret, into buf (the caller
 * wipes it). 0 on success; on failure o says what is wrong and what to do.
 * The Secret's text is wiped before it is freed: the HTTP response body
 * (k8s_get_sensitive) and every string of the parsed object.
 */
int tqu__read_password(tqu_run *run, char *buf, size_t len, tqu_outcome *o)
{
    k8s_err err;
    char ebuf[1200];
    cJSON *sec = NULL;
    const char *name = run->spec.ssh_secret_name, *key = run->spec.ssh_secret_key;
    int rc = -1;

    /* (its name only: never a value) */
    tqu_log(TQU_DEBUG, "reading the SSH Secret", "key", run->key, "secret", name, NULL);
    /* the response body and the parsed tree are wiped before they are freed */
    if (k8s_get_sensitive(run->ctl->client, &K8S_SECRETS, run->ns, name, &sec, &err)) {
        if (k8s_err_is(&err, "NotFound"))
            tqu_out(o, TQU_OUT_BLOCKED, "SshSecretNotFound",
                "Secret %s/%s (spec.ssh.passwordSecretRef) not found: kubectl -n %s create secret generic %s "
                "--from-literal=%s=<password>", run->ns, name, run->ns, name, key);
        else if (err.code == 403)
            tqu_out(o, TQU_OUT_BLOCKED, "SshSecretForbidden",
                "the controller may not read Secret %s/%s: grant it get on secrets in %s (see manifests/)",
                run->ns, name, run->ns);
        else
            tqu_out(o, TQU_OUT_ERROR, "ApiError", "cannot read Secret %s/%s: %s", run->ns, name,
                k8s_err_str(&err, ebuf, sizeof(ebuf)));
        return -1;
    }
    const char *v = k8s_json_str(sec, "data", key, NULL);
    if (v && v[0]) {
        k8s_blob b = { 0 };
        if (k8s_base64_decode(v, strlen(v), &b) == 0 && b.len > 0 && b.len < len &&
            !memchr(b.data, '\0', b.len)) {
            memcpy(buf, b.data, b.len);
            buf[b.len] = '\0';
            rc = 0;
        }
        k8s_blob_release(&b);
    }
    k8s_json_wipe_delete(sec);         /* every string, not only data: stringData, annotations */
    if (rc)
        tqu_out(o, TQU_OUT_BLOCKED, "SshSecretKeyMissing",
            "Secret %s/%s has no non-empty key \"%s\" (spec.ssh.passwordSecretRef.key)", run->ns, name, key);
    return rc;
}

/* Preflight: the password is there and usable (read, then wiped). */
int tqu__check_secret(tqu_run *run, tqu_outcome *o)
{
    char password[1024];
    int rc = tqu__read_password(run, password, sizeof(password), o);
    OPENSSL_cleanse(password, sizeof(password));
    return rc;
}
