/*
 * buf.c - a growable, NUL-terminated byte buffer with a hard size cap, for
 * HTTP bodies and watch streams (after curl's dynbuf).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "k8s.h"

void k8s_buf_init(k8s_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap ? cap : K8S_BUF_DEFAULT_CAP;
    b->wipe = 0;
}

void k8s_buf_release(k8s_buf *b)
{
    int wipe = b->wipe;
    if (b->data && wipe)
        OPENSSL_cleanse(b->data, b->alloc);
    free(b->data);
    k8s_buf_init(b, b->cap);
    b->wipe = wipe;
}

void k8s_buf_reset(k8s_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Make room for n more bytes plus the NUL; leaves b unchanged on failure. */
static int grow(k8s_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : K8S_BUF_DEFAULT_CAP;
    size_t need, nalloc;
    char *p;

    if (n > cap || b->len > cap - n)
        return K8S_ETOOBIG;
    need = b->len + n + 1;
    if (need <= b->alloc)
        return K8S_OK;
    nalloc = b->alloc ? b->alloc : 256;
    while (nalloc < need)
        nalloc = nalloc > ((size_t)-1) / 2 ? need : nalloc * 2;
    if (nalloc > cap + 1)
        nalloc = cap + 1;
    if (b->wipe) {
        /* no realloc: it would leave a copy of the secret behind */
        p = malloc(nalloc);
        if (!p)
            return K8S_ENOMEM;
        if (b->data) {
            memcpy(p, b->data, b->len + 1);
            OPENSSL_cleanse(b->data, b->alloc);
            free(b->data);
        }
    } else {
        p = realloc(b->data, nalloc);
    }
    if (!p)
        return K8S_ENOMEM;
    b->data = p;
    b->alloc = nalloc;
    return K8S_OK;
}

int k8s_buf_add(k8s_buf *b, const void *p, size_t n)
{
    int rc = grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return K8S_OK;
}

int k8s_buf_adds(k8s_buf *b, const char *s)
{
    return k8s_buf_add(b, s, strlen(s));
}

int k8s_buf_printf(k8s_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return K8S_EINVAL;
    rc = grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return K8S_OK;
}

char *k8s_buf_detach(k8s_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    k8s_buf_init(b, b->cap);
    return p;
}

void k8s_buf_consume(k8s_buf *b, size_t n)
{
    if (n >= b->len) {
        k8s_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}
