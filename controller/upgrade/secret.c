/*
 * secret.c - the SSH Secret: checked by Preflight, read by Upgrade only
 * when update.sh starts, and wiped after use; and the copy of the password
 * kept while update.sh runs, only to mask its output.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* ------------------------------------------------------------------
 * The password of a running update.sh, kept only to mask its output in
 * status and Events while it runs: read from the Secret once, when the
 * command starts (or once after a controller restart), in a page of its
 * own that is locked (never swapped) and left out of core dumps, and
 * wiped as soon as update.sh has ended. The worker is the only thread
 * that uses it. */
#define MASK_SLOTS 8

static struct mask_slot {
    char uid[128];
    char *page;          /* a NUL-terminated copy, or NULL */
    size_t size;
} masks[MASK_SLOTS];

static struct mask_slot *mask_find(const char *uid)
{
    for (int i = 0; uid && i < MASK_SLOTS; i++)
        if (masks[i].page && !strcmp(masks[i].uid, uid))
            return &masks[i];
    return NULL;
}

void tqu__mask_drop(const char *uid)
{
    struct mask_slot *m = mask_find(uid);
    if (!m)
        return;
    OPENSSL_cleanse(m->page, m->size);
    munlock(m->page, m->size);
    munmap(m->page, m->size);
    memset(m, 0, sizeof(*m));
}

/* Keep pw for uid; best effort (without it the output is not shown). */
void tqu__mask_keep(const char *uid, const char *pw)
{
    size_t n = strlen(pw) + 1, size = (size_t)sysconf(_SC_PAGESIZE);
    struct mask_slot *m = NULL;
    if (!uid || strlen(uid) >= sizeof(masks[0].uid))
        return;
    tqu__mask_drop(uid);
    for (int i = 0; i < MASK_SLOTS && !m; i++)
        if (!masks[i].page)
            m = &masks[i];
    while (size < n)
        size *= 2;
    if (!m)
        return;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    mlock(p, size);                      /* may fail without CAP_IPC_LOCK: then only not dumped */
#ifdef MADV_DONTDUMP
    madvise(p, size, MADV_DONTDUMP);
#endif
    memcpy(p, pw, n);
    snprintf(m->uid, sizeof(m->uid), "%s", uid);
    m->page = p;
    m->size = size;
}

const char *tqu__mask_get(const char *uid)
{
    const struct mask_slot *m = mask_find(uid);
    return m ? m->page : NULL;
}
