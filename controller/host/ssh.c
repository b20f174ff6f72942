/*
 * ssh.c - SSH to the access point's other machines with libssh (see ssh.h).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include "ssh.h"

struct tqu_ssh {
    ssh_session session;
    sftp_session sftp;          /* opened on first upload */
    long timeout_ms;
    char peer[300];             /* host:port */
    char fingerprint[TQU_SSH_FP_MAX];
};

static const char *const rc_text[TQU_SSH_RC_MAX] = {
    [TQU_SSH_OK] = "success",
    [TQU_SSH_EINVAL] = "invalid argument",
    [TQU_SSH_ENOMEM] = "out of memory",
    [TQU_SSH_ERESOLVE] = "host name does not resolve",
    [TQU_SSH_EREFUSED] = "connection refused",
    [TQU_SSH_EUNREACHABLE] = "host unreachable",
    [TQU_SSH_ETIMEOUT] = "timed out",
    [TQU_SSH_EDROPPED] = "connection dropped",
    [TQU_SSH_EHOSTKEY_UNKNOWN] = "host key unknown",
    [TQU_SSH_EHOSTKEY_CHANGED] = "host key changed",
    [TQU_SSH_EAUTH] = "authentication failed",
    [TQU_SSH_EPROTO] = "SSH protocol error",
    [TQU_SSH_ELOCAL] = "local file error",
    [TQU_SSH_EREMOTE] = "remote file error",
    [TQU_SSH_EVERIFY] = "checksum mismatch",
};

static const char *const rc_reason[TQU_SSH_RC_MAX] = {
    [TQU_SSH_OK] = "Succeeded",
    [TQU_SSH_EINVAL] = "InvalidArgument",
    [TQU_SSH_ENOMEM] = "OutOfMemory",
    [TQU_SSH_ERESOLVE] = "HostNotFound",
    [TQU_SSH_EREFUSED] = "ConnectionRefused",
    [TQU_SSH_EUNREACHABLE] = "HostUnreachable",
    [TQU_SSH_ETIMEOUT] = "Timeout",
    [TQU_SSH_EDROPPED] = "ConnectionDropped",
    [TQU_SSH_EHOSTKEY_UNKNOWN] = "HostKeyUnknown",
    [TQU_SSH_EHOSTKEY_CHANGED] = "HostKeyChanged",
    [TQU_SSH_EAUTH] = "AuthFailed",
    [TQU_SSH_EPROTO] = "SSHError",
    [TQU_SSH_ELOCAL] = "LocalFileError",
    [TQU_SSH_EREMOTE] = "RemoteFileError",
    [TQU_SSH_EVERIFY] = "ChecksumMismatch",
};

const char *tqu_ssh_strerror(int rc)
{
    if (rc < 0 || rc >= TQU_SSH_RC_MAX || !rc_text[rc])
        return "unknown error";
    return rc_text[rc];
}

const char *tqu_ssh_reason(int rc)
{
    if (rc < 0 || rc >= TQU_SSH_RC_MAX || !rc_reason[rc])
        return "SSHError";
    return rc_reason[rc];
}

__attribute__((format(printf, 3, 4)))
static int seterr(tqu_ssh_error *err, int rc, const char *fmt, ...)
{
    va_list ap;
    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *tqu_ssh_peer(const tqu_ssh *s)
{
    return s ? s->peer : "";
}

const char *tqu_ssh_fingerprint(const tqu_ssh *s)
{
    return s ? s->fingerprint : "";
}

/*
 * After a failed libssh call on a connected session: was the connection
 * lost, did a wait time out, or something else?
 */
static int session_rc(ssh_session ses)
{
    const char *m = ssh_get_error(ses);
    if (m && (strstr(m, "imeout") || strstr(m, "imed out")))
        return TQU_SSH_ETIMEOUT;
    if (!ssh_is_connected(ses) || (ssh_get_status(ses) & (SSH_CLOSED | SSH_CLOSED_ERROR)))
        return TQU_SSH_EDROPPED;
    if (m && (strstr(m, "closed") || strstr(m, "reset") || strstr(m, "Broken pipe")
              || strstr(m, "EOF")))
        return TQU_SSH_EDROPPED;
    return TQU_SSH_EPROTO;
}

/* ------------------------------------------------------------ TCP connect */

/* "host", "host:port", "[v6]:port", "[v6]" into host (hostlen) and *port. */
static int split_host(const char *in, int port_in, char *host, size_t hostlen, int *port)
{
    const char *colon, *end;
    size_t n;
    long p = port_in;

    if (in[0] == '[') {
        end = strchr(in, ']');
        if (!end)
            return -1;
        n = (size_t)(end - in - 1);
        if (n == 0 || n >= hostlen)
            return -1;
        memcpy(host, in + 1, n);
        host[n] = '\0';
        colon = end[1] == ':' ? end + 1 : NULL;
        if (!colon && end[1])
            return -1;
    } else {
        colon = strchr(in, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL;                 /* a bare IPv6 address */
        n = colon ? (size_t)(colon - in) : strlen(in);
        if (n == 0 || n >= hostlen)
            return -1;
        memcpy(host, in, n);
        host[n] = '\0';
    }
    if (colon && port_in <= 0) {
        char *e;
        errno = 0;
        p = strtol(colon + 1, &e, 10);
        if (errno || *e || e == colon + 1)
            return -1;
    }
    if (p <= 0)
        p = 22;
    if (p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int connect_one(const struct addrinfo *ai, long timeout_ms, int *fdp, int *err_no)
{
    int fd, rc = -1, soerr = 0, one = 1;
    socklen_t sl = sizeof(soerr);
    struct pollfd pfd;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        *err_no = errno;
        goto out;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            *err_no = errno;
            goto out;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        for (;;) {
            int n = poll(&pfd, 1, (int)timeout_ms);
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0) {
                *err_no = ETIMEDOUT;
                goto out;
            }
            if (n < 0) {
                *err_no = errno;
                goto out;
            }
            break;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            *err_no = soerr ? soerr : errno;
            goto out;
        }
    }
    /* libssh does its own polling; it wants a blocking socket */
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        *err_no = errno;
        goto out;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fdp = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int tcp_connect(const char *host, int port, long timeout_ms, int *fdp, tqu_ssh_error *err)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int gai, err_no = 0, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai) {
        rc = seterr(err, gai == EAI_MEMORY ? TQU_SSH_ENOMEM : TQU_SSH_ERESOLVE,
                    "%s: %s", host, gai_strerror(gai));
        goto out;
    }
    for (ai = res; ai; ai = ai->ai_next)
        if (connect_one(ai, timeout_ms, fdp, &err_no) == 0) {
            rc = TQU_SSH_OK;
            goto out;
        }
    switch (err_no) {
    case ECONNREFUSED: rc = TQU_SSH_EREFUSED; break;
    case ETIMEDOUT: rc = TQU_SSH_ETIMEOUT; break;
    case EHOSTUNREACH: case ENETUNREACH: case EADDRNOTAVAIL: rc = TQU_SSH_EUNREACHABLE; break;
    default: rc = TQU_SSH_EPROTO; break;
    }
    if (err_no == ETIMEDOUT)
        seterr(err, rc, "%s port %d: no answer within %ld ms", host, port, timeout_ms);
    else
        seterr(err, rc, "%s port %d: %s", host, port, strerror(err_no));
out:
    if (res)
        freeaddrinfo(res);
    return rc;
}

/* ------------------------------------------------------------ known_hosts */

/* Case-insensitive glob with * and ? only ('[' is literal: "[host]:port"). */
static int glob_match(const char *p, const char *s)
{
    for (; *p; p++, s++) {
        if (*p == '*') {
            while (p[1] == '*')
                p++;
            if (!p[1])
                return 1;
            for (; *s; s++)
                if (glob_match(p + 1, s))
                    return 1;
            return 0;
        }
        if (!*s)
            return 0;
        if (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s))
            return 0;
    }
    return *s == '\0';
}

/* Base64 (with or without padding) into out; returns the length or -1. */
static int b64_decode(const char *in, size_t n, unsigned char *out, size_t outlen)
{
    char buf[128];
    int len, pad = 0;
    size_t m = n;

    while (m % 4)
        m++;
    if (m >= sizeof(buf) || (m / 4) * 3 > outlen + 3 || (m / 4) * 3 > sizeof(buf))
        return -1;
    memcpy(buf, in, n);
    while (n < m)
        buf[n++] = '=';
    buf[m] = '\0';
    for (size_t i = m; i > 0 && buf[i - 1] == '='; i--)
        pad++;
    {
        unsigned char tmp[96];
        len = EVP_DecodeBlock(tmp, (const unsigned char *)buf, (int)m);
        if (len < 0)
            return -1;
        len -= pad;
        if (len < 0 || (size_t)len > outlen)
            return -1;
        memcpy(out, tmp, (size_t)len);
    }
    return len;
}

/* "|1|salt|hash": HMAC-SHA1(salt, name) == hash. */
static int hashed_match(const char *pat, size_t n, const char *name)
{
    const char *salt = pat + 3, *bar, *end = pat + n;
    unsigned char s[64], h[64], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    int sl, hl;

    bar = memchr(salt, '|', (size_t)(end - salt));
    if (!bar)
        return 0;
    sl = b64_decode(salt, (size_t)(bar - salt), s, sizeof(s));
    hl = b64_decode(bar + 1, (size_t)(end - bar - 1), h, sizeof(h));
    if (sl <= 0 || hl != 20)
        return 0;
    if (!HMAC(EVP_sha1(), s, sl, (const unsigned char *)name, strlen(name), mac, &maclen))
        return 0;
    return maclen == 20 && memcmp(mac, h, 20) == 0;
}

/* Does the host field (comma-separated patterns) match name? */
static int hosts_match(const char *field, size_t flen, const char *name)
{
    const char *p = field, *end = field + flen;
    int matched = 0;
    char pat[512];

    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
        int neg = 0;
        if (n > 3 && memcmp(p, "|1|", 3) == 0) {
            if (hashed_match(p, n, name))
                matched = 1;
        } else if (n > 0 && n < sizeof(pat)) {
            if (*p == '!') {
                neg = 1;
                p++;
                n--;
            }
            memcpy(pat, p, n);
            pat[n] = '\0';
            if (glob_match(pat, name)) {
                if (neg)
                    return 0;
                matched = 1;
            }
        }
        p = c ? c + 1 : end;
    }
    return matched;
}

/* The type name libssh's key would have in known_hosts ("ssh-rsa" for RSA). */
static const char *kh_type_name(ssh_key key)
{
    enum ssh_keytypes_e t = ssh_key_type(key);
    return ssh_key_type_to_char(t);
}

/*
 * Check key against the known_hosts text for name ("host" or "[host]:port").
 * TQU_SSH_OK, EHOSTKEY_UNKNOWN, EHOSTKEY_CHANGED, ENOMEM.
 */
static int kh_check(const char *text, const char *name, ssh_key key, tqu_ssh_error *err)
{
    const char *line = text, *next;
    const char *ktype = kh_type_name(key);
    int known = 0, same_type_other_key = 0, other_types = 0, revoked = 0;
    int rc;

    for (; line && *line; line = next) {
        const char *f[4];
        size_t fl[4], len;
        int nf = 0, is_revoked = 0;
        const char *p, *e;
        next = strchr(line, '\n');
        len = next ? (size_t)(next - line) : strlen(line);
        if (next)
            next++;
        p = line;
        e = line + len;
        while (nf < 4) {
            while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
            if (p >= e || (*p == '#' && nf == 0))
                break;
            f[nf] = p;
            while (p < e && *p != ' ' && *p != '\t' && *p != '\r')
                p++;
            fl[nf] = (size_t)(p - f[nf]);
            nf++;
        }
        if (nf > 0 && f[0][0] == '@') {
            if (fl[0] == 8 && memcmp(f[0], "@revoked", 8) == 0)
                is_revoked = 1;
            else
                continue;           /* @cert-authority: not supported, ignored */
            for (int i = 0; i + 1 < nf; i++) {
                f[i] = f[i + 1];
                fl[i] = fl[i + 1];
            }
            nf--;
        }
        if (nf < 3 || !hosts_match(f[0], fl[0], name))
            continue;
        {
            char type[64];
            char *b64;
            ssh_key k = NULL;
            enum ssh_keytypes_e t;
            int same;
            if (fl[1] >= sizeof(type))
                continue;
            memcpy(type, f[1], fl[1]);
            type[fl[1]] = '\0';
            t = ssh_key_type_from_name(type);
            if (t == SSH_KEYTYPE_UNKNOWN)
                continue;
            b64 = strndup(f[2], fl[2]);
            if (!b64)
                return seterr(err, TQU_SSH_ENOMEM, "known_hosts: out of memory");
            if (ssh_pki_import_pubkey_base64(b64, t, &k) != SSH_OK)
                k = NULL;
            free(b64);
            if (!k)
                continue;           /* a broken line counts as no line */
            same = ssh_key_cmp(k, key, SSH_KEY_CMP_PUBLIC) == 0;
            if (is_revoked) {
                if (same)
                    revoked = 1;
            } else if (same) {
                known = 1;
            } else if (ssh_key_type(k) == ssh_key_type(key)) {
                same_type_other_key = 1;
            } else {
                other_types = 1;
            }
            ssh_key_free(k);
        }
    }
    if (revoked)
        rc = seterr(err, TQU_SSH_EHOSTKEY_CHANGED, "%s: the server's %s key is marked @revoked "
                    "in known_hosts", name, ktype);
    else if (known)
        rc = TQU_SSH_OK;
    else if (same_type_other_key)
        rc = seterr(err, TQU_SSH_EHOSTKEY_CHANGED, "%s: the server's %s key differs from the "
                    "one in known_hosts (it changed, or someone is in between)", name, ktype);
    else
        rc = seterr(err, TQU_SSH_EHOSTKEY_UNKNOWN, "%s: no %s key for it in known_hosts%s",
                    name, ktype, other_types ? " (only keys of other types)" : "");
    return rc;
}

/* Host key algorithms: those of the host's known_hosts entries first. */
static void hostkey_prefs(const char *text, const char *name, char *buf, size_t len)
{
    static const char *const all[] = {
        "ssh-ed25519", "ecdsa-sha2-nistp521", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256",
        "rsa-sha2-512", "rsa-sha2-256", NULL };
    int first[8] = {0};
    const char *line = text, *next;
    size_t used = 0;

    buf[0] = '\0';
    for (; line && *line; line = next) {
        char host[512], type[64];
        next = strchr(line, '\n');
        if (next)
            next++;
        if (*line == '@' || sscanf(line, "%511s %63s", host, type) != 2)
            continue;
        if (!hosts_match(host, strlen(host), name))
            continue;
        for (int i = 0; all[i]; i++)
            if (strcmp(type, all[i]) == 0 || (strcmp(type, "ssh-rsa") == 0 && i >= 4))
                first[i] = 1;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; all[i]; i++)
            if (first[i] == (pass == 0)) {
                int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", all[i]);
                if (n < 0 || (size_t)n >= len - used)
                    return;
                used += (size_t)n;
            }
}

/* --------------------------------------------------------------- connect */

int tqu_ssh_connect(const tqu_ssh_target *t, char *password, tqu_ssh **out, tqu_ssh_error *err)
{
    tqu_ssh *s = NULL;
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char host[256], name[300], prefs[256];
    char *fp = NULL;
    int port = 22, fd = -1, rc, a;
    long tmo;
    long usec;
    int no = 0;

    if (err)
        memset(err, 0, sizeof(*err));
    if (out)
        *out = NULL;
    if (!t || !out || !t->host || !*t->host || !t->user || !*t->user) {
        rc = seterr(err, TQU_SSH_EINVAL, "ssh: no host or user");
        goto out;
    }
    if (split_host(t->host, t->port, host, sizeof(host), &port) < 0) {
        rc = seterr(err, TQU_SSH_EINVAL, "ssh: bad host[:port] \"%s\"", t->host);
        goto out;
    }
    tmo = t->timeout_ms > 0 ? t->timeout_ms : TQU_SSH_TIMEOUT_MS;
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh: out of memory");
        goto out;
    }
    s->timeout_ms = tmo;
    snprintf(s->peer, sizeof(s->peer), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (port == 22)
        snprintf(name, sizeof(name), "%s", host);
    else
        snprintf(name, sizeof(name), "[%s]:%d", host, port);

    rc = tcp_connect(host, port, tmo, &fd, err);
    if (rc)
        goto out;
    s->session = ssh_new();
    if (!s->session) {
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh: out of memory");
        goto out;
    }
    usec = (tmo % 1000) * 1000;
    tmo /= 1000;
    hostkey_prefs(t->known_hosts, name, prefs, sizeof(prefs));
    if (ssh_options_set(s->session, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0
        || ssh_options_set(s->session, SSH_OPTIONS_HOST, host) < 0
        || ssh_options_set(s->session, SSH_OPTIONS_PORT, &port) < 0
        || ssh_options_set(s->session, SSH_OPTIONS_USER, t->user) < 0
        || ssh_options_set(s->session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null") < 0
        || ssh_options_set(s->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") < 0
        || ssh_options_set(s->session, SSH_OPTIONS_TIMEOUT, &tmo) < 0
        || ssh_options_set(s->session, SSH_OPTIONS_TIMEOUT_USEC, &usec) < 0
        || (prefs[0] && ssh_options_set(s->session, SSH_OPTIONS_HOSTKEYS, prefs) < 0)) {
        rc = seterr(err, TQU_SSH_EPROTO, "ssh: options: %s", ssh_get_error(s->session));
        goto out;
    }
    if (ssh_options_set(s->session, SSH_OPTIONS_FD, &fd) < 0) {
        rc = seterr(err, TQU_SSH_EPROTO, "ssh: options: %s", ssh_get_error(s->session));
        goto out;
    }
    fd = -1;                     /* the session owns it now */
    if (ssh_connect(s->session) != SSH_OK) {
        rc = session_rc(s->session);
        if (rc == TQU_SSH_EPROTO && strstr(ssh_get_error(s->session), "ocket"))
            rc = TQU_SSH_EDROPPED;
        seterr(err, rc, "%s: SSH handshake: %s", s->peer, ssh_get_error(s->session));
        goto out;
    }
    if (ssh_get_server_publickey(s->session, &key) != SSH_OK
        || ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0
        || !(fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen))) {
        rc = seterr(err, TQU_SSH_EPROTO, "%s: no server key: %s", s->peer,
                    ssh_get_error(s->session));
        goto out;
    }
    snprintf(s->fingerprint, sizeof(s->fingerprint), "%s", fp);
    if (err) {
        snprintf(err->fingerprint, sizeof(err->fingerprint), "%s", fp);
        snprintf(err->key_type, sizeof(err->key_type), "%s", kh_type_name(key));
    }
    rc = kh_check(t->known_hosts ? t->known_hosts : "", name, key, err);
    if (rc) {
        if (err && (rc == TQU_SSH_EHOSTKEY_UNKNOWN || rc == TQU_SSH_EHOSTKEY_CHANGED)) {
            size_t l = strlen(err->message);
            snprintf(err->message + l, sizeof(err->message) - l, "; it offers %s %s",
                     err->key_type, fp);
        }
        goto out;
    }
    a = ssh_userauth_password(s->session, NULL, password ? password : "");
    if (a == SSH_AUTH_DENIED || a == SSH_AUTH_PARTIAL) {
        rc = seterr(err, TQU_SSH_EAUTH, "%s: user %s: the server refused the password",
                    s->peer, t->user);
        goto out;
    }
    if (a != SSH_AUTH_SUCCESS) {
        rc = session_rc(s->session);
        seterr(err, rc, "%s: authentication: %s", s->peer, ssh_get_error(s->session));
        goto out;
    }
    *out = s;
    s = NULL;
    rc = TQU_SSH_OK;
out:
    if (password)
        explicit_bzero(password, strlen(password));
    if (fp)
        ssh_string_free_char(fp);
    if (hash)
        ssh_clean_pubkey_hash(&hash);
    if (key)
        ssh_key_free(key);
    if (fd >= 0)
        close(fd);
    tqu_ssh_free(s);
    return rc;
}

void tqu_ssh_free(tqu_ssh *s)
{
    if (!s)
        return;
    if (s->sftp)
        sftp_free(s->sftp);
    if (s->session) {
        if (ssh_is_connected(s->session))
            ssh_disconnect(s->session);
        ssh_free(s->session);
    }
    free(s);
}

/* --------------------------------------------------------------- commands */

size_t tqu_ssh_quote_argv(const char *const *argv, char *buf, size_t len)
{
    size_t n = 0;
#define PUT(c) do { if (n + 1 < len) buf[n] = (c); n++; } while (0)
    for (size_t i = 0; argv && argv[i]; i++) {
        if (i)
            PUT(' ');
        PUT('\'');
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') {
                PUT('\''); PUT('\\'); PUT('\''); PUT('\'');
            } else {
                PUT(*p);
            }
        }
        PUT('\'');
    }
#undef PUT
    if (len)
        buf[n < len ? n : len - 1] = '\0';
    return n;
}

void tqu_ssh_exec_result_release(tqu_ssh_exec_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* A buffer keeping the last cap bytes written to it (storage 2*cap + 1). */
typedef struct tailbuf {
    char *p;
    size_t len, cap;
    int truncated;
} tailbuf;

static void tail_add(tailbuf *b, const char *d, size_t n)
{
    if (n >= b->cap) {
        b->truncated |= n > b->cap || b->len > 0;
        memcpy(b->p, d + n - b->cap, b->cap);
        b->len = b->cap;
    } else {
        if (b->len + n > 2 * b->cap) {
            size_t keep = b->cap - n;     /* keep enough that the result is cap bytes */
            memmove(b->p, b->p + b->len - keep, keep);
            b->len = keep;
            b->truncated = 1;
        }
        memcpy(b->p + b->len, d, n);
        b->len += n;
    }
    b->p[b->len] = '\0';
}

static void tail_finish(tailbuf *b, char **out, size_t *outlen, int *trunc)
{
    if (b->len > b->cap) {
        memmove(b->p, b->p + b->len - b->cap, b->cap);
        b->len = b->cap;
        b->truncated = 1;
    }
    b->p[b->len] = '\0';
    *out = b->p;
    *outlen = b->len;
    *trunc = b->truncated;
    b->p = NULL;
}

int tqu_ssh_exec(tqu_ssh *s, const char *const *argv, long timeout_ms, long out_cap,
                 tqu_ssh_exec_result *r, tqu_ssh_error *err)
{
    ssh_channel ch = NULL;
    tailbuf bo = {0}, be = {0};
    char *cmd = NULL, buf[16384];
    size_t cl;
    double t0 = now_s(), deadline;
    int rc, n, timed_out = 0;

    if (err)
        memset(err, 0, sizeof(*err));
    if (r)
        memset(r, 0, sizeof(*r));
    if (!s || !argv || !argv[0] || !argv[0][0] || !r) {
        rc = seterr(err, TQU_SSH_EINVAL, "ssh exec: no command");
        goto out;
    }
    bo.cap = be.cap = out_cap > 0 ? (size_t)out_cap : TQU_SSH_OUT_CAP;
    cl = tqu_ssh_quote_argv(argv, NULL, 0);
    cmd = malloc(cl + 1);
    bo.p = malloc(2 * bo.cap + 1);
    be.p = malloc(2 * be.cap + 1);
    if (!cmd || !bo.p || !be.p) {
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh exec: out of memory");
        goto out;
    }
    bo.p[0] = be.p[0] = '\0';
    tqu_ssh_quote_argv(argv, cmd, cl + 1);
    deadline = timeout_ms > 0 ? t0 + (double)timeout_ms / 1000.0 : 0;

    ch = ssh_channel_new(s->session);
    if (!ch) {
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh exec: out of memory");
        goto out;
    }
    if (ssh_channel_open_session(ch) != SSH_OK || ssh_channel_request_exec(ch, cmd) != SSH_OK) {
        rc = session_rc(s->session);
        seterr(err, rc, "%s: %s: %s", s->peer, argv[0], ssh_get_error(s->session));
        goto out;
    }
    while (!ssh_channel_is_eof(ch)) {
        int slice = 200;
        if (deadline) {
            double left = deadline - now_s();
            if (left <= 0) {
                timed_out = 1;
                break;
            }
            if (left * 1000 < slice)
                slice = (int)(left * 1000) + 1;
        }
        n = ssh_channel_read_timeout(ch, buf, sizeof(buf), 0, slice);
        if (n == SSH_ERROR)
            goto read_error;
        if (n > 0)
            tail_add(&bo, buf, (size_t)n);
        while ((n = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), 1)) > 0)
            tail_add(&be, buf, (size_t)n);
        if (n == SSH_ERROR)
            goto read_error;
    }
    if (timed_out) {
        (void)ssh_channel_request_send_signal(ch, "TERM");
        rc = seterr(err, TQU_SSH_ETIMEOUT, "%s: %s: still running after %ld ms, sent SIGTERM",
                    s->peer, argv[0], timeout_ms);
    } else {
        /* what is left in the channel after EOF */
        while ((n = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), 0)) > 0)
            tail_add(&bo, buf, (size_t)n);
        while ((n = ssh_channel_read_nonblocking(ch, buf, sizeof(buf), 1)) > 0)
            tail_add(&be, buf, (size_t)n);
        r->exit_status = ssh_channel_get_exit_status(ch);
        if (r->exit_status < 0 && !ssh_is_connected(s->session))
            goto read_error;
        rc = TQU_SSH_OK;
    }
    r->seconds = now_s() - t0;
    tail_finish(&bo, &r->out, &r->out_len, &r->out_truncated);
    tail_finish(&be, &r->err, &r->err_len, &r->err_truncated);
    goto out;
read_error:
    rc = session_rc(s->session);
    seterr(err, rc, "%s: %s: %s", s->peer, argv[0], ssh_get_error(s->session));
out:
    if (ch) {
        if (ssh_channel_is_open(ch))
            ssh_channel_close(ch);
        ssh_channel_free(ch);
    }
    if (rc && rc != TQU_SSH_ETIMEOUT && r)
        tqu_ssh_exec_result_release(r);
    free(bo.p);
    free(be.p);
    free(cmd);
    return rc;
}

/* ----------------------------------------------------------------- upload */

#define CHUNK (255 * 1024)   /* one SFTP write: OpenSSH's sftp-server takes messages
                                up to 256 KiB */
#define READ_BUF (4 * CHUNK)

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/*
 * The sha256 of a remote file into hex (65 bytes): OpenSSL's when the
 * machine has it (three times coreutils' speed with the CPU's SHA
 * instructions: 1 GiB is a second, not three), else sha256sum. The path
 * is the script's $1, never part of the script.
 */
static int remote_sha256(tqu_ssh *s, const char *path, long timeout_ms, char *out,
                         double *secs, tqu_ssh_error *err)
{
    static const char script[] =
        "case $1 in -*) ;; *) command -v openssl >/dev/null 2>&1 && "
        "exec openssl dgst -sha256 -r \"$1\";; esac; exec sha256sum -- \"$1\"";
    const char *argv[] = { "sh", "-c", script, "sh", path, NULL };
    tqu_ssh_exec_result r;
    const char *p;
    int rc;
    double t0 = now_s();

    rc = tqu_ssh_exec(s, argv, timeout_ms > 0 ? timeout_ms : 3600000L, 4096, &r, err);
    *secs += now_s() - t0;
    if (rc)
        goto out;
    p = r.out[0] == '\\' ? r.out + 1 : r.out;
    if (r.exit_status != 0 || strspn(p, "0123456789abcdef") < 64) {
        rc = seterr(err, TQU_SSH_EREMOTE, "%s: sha256 of %s: exit %d: %.200s", s->peer, path,
                    r.exit_status, r.err_len ? r.err : r.out);
        goto out;
    }
    memcpy(out, p, 64);
    out[64] = '\0';
out:
    tqu_ssh_exec_result_release(&r);
    return rc;
}

static const char *sftp_status_text(int code)
{
    switch (code) {
    case SSH_FX_NO_SUCH_FILE: return "no such file";
    case SSH_FX_PERMISSION_DENIED: return "permission denied";
    case SSH_FX_FAILURE: return "failure (disk full?)";
    case SSH_FX_NO_SUCH_PATH: return "no such path";
    case SSH_FX_FILE_ALREADY_EXISTS: return "already exists";
    case SSH_FX_WRITE_PROTECT: return "read-only file system";
    case SSH_FX_NO_MEDIA: return "no media";
    default: return "error";
    }
}

/* After a failed sftp_* call: dropped/timeout, or the server's status. */
static int sftp_rc(tqu_ssh *s, const char *what, const char *path, tqu_ssh_error *err)
{
    int rc = session_rc(s->session);
    if (rc == TQU_SSH_EPROTO && s->sftp && sftp_get_error(s->sftp) != SSH_FX_OK) {
        int code = sftp_get_error(s->sftp);
        return seterr(err, TQU_SSH_EREMOTE, "%s: %s %s: %s (SFTP status %d)", s->peer, what,
                      path, sftp_status_text(code), code);
    }
    return seterr(err, rc, "%s: %s %s: %s", s->peer, what, path, ssh_get_error(s->session));
}

static int sftp_ready(tqu_ssh *s, tqu_ssh_error *err)
{
    if (s->sftp)
        return TQU_SSH_OK;
    s->sftp = sftp_new(s->session);
    if (!s->sftp)
        return seterr(err, session_rc(s->session), "%s: SFTP: %s", s->peer,
                      ssh_get_error(s->session));
    if (sftp_init(s->sftp) != SSH_OK) {
        int rc = session_rc(s->session);
        seterr(err, rc, "%s: SFTP subsystem: %s", s->peer, ssh_get_error(s->session));
        sftp_free(s->sftp);
        s->sftp = NULL;
        return rc;
    }
    return TQU_SSH_OK;
}

/*
 * Pipelined SFTP writes. libssh 0.10 has no asynchronous write (sftp_aio
 * came in 0.11): sftp_write sends one request and waits for its answer, so
 * the link idles for a round trip per chunk, which shows as soon as the
 * machine is busy. We send the WRITE requests ourselves on the SFTP
 * channel, up to PIPE_DEPTH at once, and read their STATUS answers in
 * order (the server answers in order). Uses the handle of a file opened by
 * sftp_open and the channel of the sftp session (public members of
 * libssh 0.10's structs); libssh reads nothing from the channel meanwhile
 * (only sftp_* calls do) and every answer is read before we return, so its
 * own bookkeeping is untouched. Our request ids are PIPE_ID_BASE + n,
 * apart from libssh's counter, which starts at 0.
 */
/* Requests in flight. Measured on loopback with 256 MiB (seconds to send,
   two runs each, busy machine): one at a time (sftp_write) 5.7 6.2; 2: 3.6
   2.4; 3: 3.0 3.0; 4: 4.3 4.9; 6: 4.0 5.2; 8: 10.6 11.9; 16: 10.5 8.0.
   At 8 x 255 KiB the requests fill the 2 MiB window OpenSSH's server
   gives the channel, and libssh's write then stalls until it grows. */
#define PIPE_DEPTH 3
#define PIPE_ID_BASE 0x70000000u
#define WP_HDR_MAX (4 + 1 + 4 + 4 + 256 + 8 + 4)

typedef struct wpipe {
    tqu_ssh *s;
    ssh_channel ch;
    ssh_string handle;
    uint32_t next_id;
    uint32_t ids[PIPE_DEPTH];
    uint32_t lens[PIPE_DEPTH];
    int head, inflight;
    uint64_t acked;            /* bytes the server confirmed */
    uint32_t status;           /* first non-OK SFTP status, else 0 */
    unsigned char *pkt;        /* WP_HDR_MAX + CHUNK bytes: one request */
} wpipe;

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Exactly n bytes of the channel, or the reason why not. */
static int chan_read_exact(wpipe *p, unsigned char *b, size_t n, tqu_ssh_error *err)
{
    size_t got = 0;
    while (got < n) {
        int r = ssh_channel_read_timeout(p->ch, b + got, (uint32_t)(n - got), 0,
                                         (int)p->s->timeout_ms);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 && !ssh_channel_is_eof(p->ch) && ssh_is_connected(p->s->session))
            return seterr(err, TQU_SSH_ETIMEOUT, "%s: SFTP: no answer within %ld ms",
                          p->s->peer, p->s->timeout_ms);
        if (r == 0)
            return seterr(err, TQU_SSH_EDROPPED, "%s: SFTP: the channel closed", p->s->peer);
        return seterr(err, session_rc(p->s->session), "%s: SFTP: %s", p->s->peer,
                      ssh_get_error(p->s->session));
    }
    return TQU_SSH_OK;
}

/* Read the answer to the oldest request in flight. */
static int wp_reap(wpipe *p, tqu_ssh_error *err)
{
    unsigned char h[9], rest[512];
    uint32_t len, id, left;
    int rc;

    rc = chan_read_exact(p, h, sizeof(h), err);
    if (rc)
        return rc;
    len = get32(h);
    id = get32(h + 5);
    if (len < 9 || len > 65536 || h[4] != SSH_FXP_STATUS || id != p->ids[p->head])
        return seterr(err, TQU_SSH_EPROTO, "%s: SFTP: unexpected answer (type %u, id %u) to a "
                      "write", p->s->peer, h[4], id);
    left = len - 5;
    rc = chan_read_exact(p, rest, left < sizeof(rest) ? left : sizeof(rest), err);
    if (rc)
        return rc;
    for (uint32_t done = left < sizeof(rest) ? left : sizeof(rest); done < left;) {
        unsigned char skip[512];
        uint32_t n = left - done < sizeof(skip) ? left - done : (uint32_t)sizeof(skip);
        rc = chan_read_exact(p, skip, n, err);
        if (rc)
            return rc;
        done += n;
    }
    if (get32(rest) != SSH_FX_OK && !p->status)
        p->status = get32(rest) ? get32(rest) : SSH_FX_FAILURE;
    else if (!p->status)
        p->acked += p->lens[p->head];
    p->head = (p->head + 1) % PIPE_DEPTH;
    p->inflight--;
    return TQU_SSH_OK;
}

/* Send one WRITE of n bytes at off; reaps the oldest answer first when full. */
static int wp_send(wpipe *p, uint64_t off, const unsigned char *d, uint32_t n,
                   tqu_ssh_error *err)
{
    unsigned char hdr[WP_HDR_MAX];
    uint32_t hl = (uint32_t)ssh_string_len(p->handle), id;
    size_t i = 0;
    int rc, slot;

    if (hl > 256)
        return seterr(err, TQU_SSH_EPROTO, "%s: SFTP: file handle of %u bytes", p->s->peer, hl);
    if (p->inflight == PIPE_DEPTH && (rc = wp_reap(p, err)) != 0)
        return rc;
    id = PIPE_ID_BASE + p->next_id++;
    put32(hdr, 1 + 4 + 4 + hl + 8 + 4 + n);
    i = 4;
    hdr[i++] = SSH_FXP_WRITE;
    put32(hdr + i, id);
    i += 4;
    put32(hdr + i, hl);
    i += 4;
    memcpy(hdr + i, ssh_string_data(p->handle), hl);
    i += hl;
    put32(hdr + i, (uint32_t)(off >> 32));
    put32(hdr + i + 4, (uint32_t)off);
    i += 8;
    put32(hdr + i, n);
    i += 4;
    /* one channel write per request: a separate small write for the
       header made a separate SSH packet and measured slower */
    memcpy(p->pkt, hdr, i);
    memcpy(p->pkt + i, d, n);
    if (ssh_channel_write(p->ch, p->pkt, (uint32_t)(i + n)) != (int)(i + n))
        return seterr(err, session_rc(p->s->session), "%s: SFTP write: %s", p->s->peer,
                      ssh_get_error(p->s->session));
    slot = (p->head + p->inflight) % PIPE_DEPTH;
    p->ids[slot] = id;
    p->lens[slot] = n;
    p->inflight++;
    return TQU_SSH_OK;
}

/* Hash [0, n) of fd into ctx (reading from offset 0). */
static int hash_prefix(int fd, uint64_t n, EVP_MD_CTX *ctx, unsigned char *buf, size_t bl)
{
    uint64_t done = 0;
    while (done < n) {
        size_t want = n - done < bl ? (size_t)(n - done) : bl;
        ssize_t got = pread(fd, buf, want, (off_t)done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1)
            return -1;
        done += (uint64_t)got;
    }
    return 0;
}

static int digest_hex(EVP_MD_CTX *ctx, int copy, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    EVP_MD_CTX *c = ctx;
    int ok;
    if (copy) {
        c = EVP_MD_CTX_new();
        if (!c || EVP_MD_CTX_copy_ex(c, ctx) != 1) {
            EVP_MD_CTX_free(c);
            return -1;
        }
    }
    ok = EVP_DigestFinal_ex(c, md, &ml) == 1 && ml == 32;
    if (copy)
        EVP_MD_CTX_free(c);
    if (!ok)
        return -1;
    hex(md, 32, out);
    return 0;
}

/*
 * part -> final, atomically. SFTP v3's rename (all libssh 0.10 sends)
 * fails when final exists; then rename(2) by `mv -f` (same folder), which
 * replaces it in one step, so final is never missing or half written.
 */
static int rename_over(tqu_ssh *s, const char *part, const char *final, tqu_ssh_error *err)
{
    const char *argv[] = { "mv", "-f", "--", part, final, NULL };
    tqu_ssh_exec_result r;
    int rc;

    if (sftp_rename(s->sftp, part, final) == 0)
        return TQU_SSH_OK;
    rc = session_rc(s->session);
    if (rc != TQU_SSH_EPROTO)
        return sftp_rc(s, "rename to", final, err);
    rc = tqu_ssh_exec(s, argv, s->timeout_ms, 4096, &r, err);
    if (rc)
        return rc;
    if (r.exit_status != 0)
        rc = seterr(err, TQU_SSH_EREMOTE, "%s: mv %s %s: exit %d: %.200s", s->peer, part, final,
                    r.exit_status, r.err);
    tqu_ssh_exec_result_release(&r);
    return rc;
}

int tqu_ssh_upload(tqu_ssh *s, const char *local_path, const char *remote_path,
                   const tqu_ssh_upload_opts *o, tqu_ssh_upload_result *r, tqu_ssh_error *err)
{
    static const tqu_ssh_upload_opts defaults = {0};
    EVP_MD_CTX *ctx = NULL;
    sftp_attributes st = NULL;
    sftp_file f = NULL;
    unsigned char *buf = NULL;
    char *part = NULL, rhash[65];
    struct stat lst;
    uint64_t off = 0, total;
    double t0, last_cb = 0;
    long vt;
    int fd = -1, rc, mode;
    tqu_ssh_upload_result dummy;
    wpipe wp = {0};

    if (err)
        memset(err, 0, sizeof(*err));
    if (!r)
        r = &dummy;
    memset(r, 0, sizeof(*r));
    if (!o)
        o = &defaults;
    if (!s || !local_path || !remote_path || !*remote_path) {
        rc = seterr(err, TQU_SSH_EINVAL, "ssh upload: no file");
        goto out;
    }
    vt = o->verify_timeout_ms > 0 ? o->verify_timeout_ms : 3600000L;
    mode = o->mode ? o->mode : 0644;
    fd = open(local_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &lst) < 0 || !S_ISREG(lst.st_mode)) {
        rc = seterr(err, TQU_SSH_ELOCAL, "%s: %s", local_path,
                    fd < 0 ? strerror(errno) : "not a regular file");
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    total = r->total = (uint64_t)lst.st_size;
    if (asprintf(&part, "%s.part", remote_path) < 0) {
        part = NULL;
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh upload: out of memory");
        goto out;
    }
    buf = malloc(READ_BUF);
    wp.pkt = malloc(WP_HDR_MAX + CHUNK);
    ctx = EVP_MD_CTX_new();
    if (!buf || !wp.pkt || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh upload: out of memory");
        goto out;
    }
    rc = sftp_ready(s, err);
    if (rc)
        goto out;

    /* the final file already there and equal: nothing to do */
    st = sftp_stat(s->sftp, remote_path);
    if (st && st->size == total) {
        char lhash[65];
        EVP_MD_CTX *c2 = EVP_MD_CTX_new();
        int hrc = !c2 || EVP_DigestInit_ex(c2, EVP_sha256(), NULL) != 1
                  || hash_prefix(fd, total, c2, buf, READ_BUF) < 0 || digest_hex(c2, 0, lhash) < 0;
        EVP_MD_CTX_free(c2);
        if (hrc) {
            rc = seterr(err, TQU_SSH_ELOCAL, "%s: read: %s", local_path, strerror(errno));
            goto out;
        }
        rc = remote_sha256(s, remote_path, vt, rhash, &r->verify_seconds, err);
        if (rc)
            goto out;
        if (strcmp(lhash, rhash) == 0) {
            memcpy(r->sha256, lhash, sizeof(r->sha256));
            r->already_there = 1;
            if (o->progress)
                o->progress(o->ud, total, total, 0);
            goto out;
        }
    }
    if (st) {
        sftp_attributes_free(st);
        st = NULL;
    }

    /* a .part from an earlier call: keep it when it is our prefix */
    st = sftp_stat(s->sftp, part);
    if (st && st->size > 0 && st->size <= total) {
        char lhash[65];
        if (hash_prefix(fd, st->size, ctx, buf, READ_BUF) < 0 || digest_hex(ctx, 1, lhash) < 0) {
            rc = seterr(err, TQU_SSH_ELOCAL, "%s: read: %s", local_path, strerror(errno));
            goto out;
        }
        rc = remote_sha256(s, part, vt, rhash, &r->verify_seconds, err);
        if (rc)
            goto out;
        if (strcmp(lhash, rhash) == 0) {
            off = st->size;
        } else if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
            rc = seterr(err, TQU_SSH_ENOMEM, "ssh upload: out of memory");
            goto out;
        }
    }
    if (!st && session_rc(s->session) != TQU_SSH_EPROTO) {
        rc = sftp_rc(s, "stat", part, err);
        goto out;
    }
    r->resumed_from = off;
    f = sftp_open(s->sftp, part, O_WRONLY | O_CREAT | (off ? 0 : O_TRUNC), (mode_t)mode);
    if (!f) {
        rc = sftp_rc(s, "open", part, err);
        goto out;
    }
    wp.s = s;
    wp.ch = s->sftp->channel;
    wp.handle = f->handle;

    t0 = now_s();
    if (o->progress)
        o->progress(o->ud, off, total, 0);
    while (off < total) {
        size_t want = total - off < READ_BUF ? (size_t)(total - off) : READ_BUF, got = 0;
        while (got < want) {
            ssize_t n = pread(fd, buf + got, want - got, (off_t)(off + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = seterr(err, TQU_SSH_ELOCAL, "%s: read: %s", local_path,
                            n == 0 ? "the file got shorter" : strerror(errno));
                goto out;
            }
            got += (size_t)n;
        }
        if (EVP_DigestUpdate(ctx, buf, got) != 1) {
            rc = seterr(err, TQU_SSH_ENOMEM, "ssh upload: sha256 failed");
            goto out;
        }
        for (size_t w = 0; w < got && !wp.status;) {
            size_t n = got - w < CHUNK ? got - w : CHUNK;
            rc = wp_send(&wp, off, buf + w, (uint32_t)n, err);
            if (rc)
                goto out;
            w += n;
            off += n;
        }
        if (wp.status)
            break;
        if (o->progress) {
            double t = now_s();
            if (t - last_cb >= 0.1) {
                o->progress(o->ud, r->resumed_from + wp.acked, total,
                            (double)wp.acked / (t - t0 > 0 ? t - t0 : 1e-9));
                last_cb = t;
            }
        }
    }
    while (wp.inflight)
        if ((rc = wp_reap(&wp, err)) != 0)
            goto out;
    if (wp.status) {
        rc = seterr(err, TQU_SSH_EREMOTE, "%s: write %s: %s (SFTP status %u)", s->peer, part,
                    sftp_status_text((int)wp.status), wp.status);
        goto out;
    }
    if (o->progress) {
        double t = now_s();
        o->progress(o->ud, total, total, (double)wp.acked / (t - t0 > 0 ? t - t0 : 1e-9));
    }
    if (sftp_close(f) != SSH_NO_ERROR) {
        f = NULL;
        rc = sftp_rc(s, "close", part, err);
        goto out;
    }
    f = NULL;
    r->transfer_seconds = now_s() - t0;
    if (digest_hex(ctx, 0, r->sha256) < 0) {
        rc = seterr(err, TQU_SSH_ENOMEM, "ssh upload: sha256 failed");
        goto out;
    }
    rc = remote_sha256(s, part, vt, rhash, &r->verify_seconds, err);
    if (rc)
        goto out;
    if (strcmp(rhash, r->sha256) != 0) {
        (void)sftp_unlink(s->sftp, part);
        rc = seterr(err, TQU_SSH_EVERIFY, "%s: %s: sha256 %s after the copy, %s here; the "
                    ".part was removed", s->peer, part, rhash, r->sha256);
        goto out;
    }
    rc = rename_over(s, part, remote_path, err);
out:
    if (wp.s)
        r->sent = wp.acked;
    if (f)
        sftp_close(f);
    if (st)
        sftp_attributes_free(st);
    EVP_MD_CTX_free(ctx);
    free(wp.pkt);
    free(buf);
    free(part);
    if (fd >= 0)
        close(fd);
    return rc;
}
