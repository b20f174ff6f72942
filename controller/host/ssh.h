/*
 * ssh.h - reach the access point's other machines over SSH (libssh):
 * connect with a password, check the host key against a known_hosts text,
 * upload a file by SFTP (resumable, verified), run a command from an argv.
 *
 * Knows nothing of Kubernetes: the caller reads the password from its
 * Secret and the known_hosts text from its ConfigMap and passes them in
 * memory. Nothing is written to disk on this side.
 *
 * Host keys: the known_hosts text is OpenSSH's format (hashed "|1|salt|hash"
 * host fields, "[host]:port" for a port other than 22, patterns with * ? and
 * !negation, @revoked lines; @cert-authority lines are ignored). It is
 * parsed by us and the server's key compared with each entry for the host;
 * libssh never reads ~/.ssh or /etc/ssh. No entry of the key's type for
 * the host: TQU_SSH_EHOSTKEY_UNKNOWN; an entry of that type with another
 * key, or a @revoked entry for this key: TQU_SSH_EHOSTKEY_CHANGED. Both
 * give the server key's fingerprint as OpenSSH prints it ("SHA256:...").
 *
 * Secrets: the password is never logged, never in a message, and the
 * caller's buffer is wiped (explicit_bzero) before tqu_ssh_connect returns,
 * whatever the outcome; libssh marks its packet buffer holding the copy it
 * sends as secure (zeroed when freed).
 *
 * Conventions: functions return 0 (TQU_SSH_OK) or a tqu_ssh_rc, with one
 * line in err->message (err may be NULL). A session is used by one thread
 * at a time; different sessions are independent.
 */
#ifndef TQU_SSH_H
#define TQU_SSH_H

#include <stddef.h>
#include <stdint.h>

typedef enum tqu_ssh_rc {
    TQU_SSH_OK = 0,
    TQU_SSH_EINVAL,            /* unusable argument (no host, empty argv, ...) */
    TQU_SSH_ENOMEM,            /* an allocation failed */
    TQU_SSH_ERESOLVE,          /* the host name does not resolve */
    TQU_SSH_EREFUSED,          /* TCP connection refused (nothing listens on the port) */
    TQU_SSH_EUNREACHABLE,      /* no route to the host / network unreachable */
    TQU_SSH_ETIMEOUT,          /* no answer within the timeout (connect, handshake, command) */
    TQU_SSH_EDROPPED,          /* the connection was closed or reset in the middle */
    TQU_SSH_EHOSTKEY_UNKNOWN,  /* no known_hosts entry of the server key's type for the host */
    TQU_SSH_EHOSTKEY_CHANGED,  /* the host's known key of that type differs, or it is @revoked */
    TQU_SSH_EAUTH,             /* the server refused the user/password */
    TQU_SSH_EPROTO,            /* any other SSH/SFTP protocol failure */
    TQU_SSH_ELOCAL,            /* the local file cannot be read */
    TQU_SSH_EREMOTE,           /* a remote file operation failed (open, write, rename, ...) */
    TQU_SSH_EVERIFY,           /* the remote sha256 differs from the local one */
    TQU_SSH_RC_MAX
} tqu_ssh_rc;

/* Static text for a result code; never NULL. */
const char *tqu_ssh_strerror(int rc);

/* Names for status reasons: "HostKeyUnknown", "HostKeyChanged", "AuthFailed",
 * "ConnectionRefused", "Timeout", "ConnectionDropped", ...; never NULL. */
const char *tqu_ssh_reason(int rc);

#define TQU_SSH_MSG_MAX 512
#define TQU_SSH_FP_MAX 64                /* "SHA256:" + 43 base64 characters + NUL */
#define TQU_SSH_TIMEOUT_MS 30000         /* default connect / network timeout */

typedef struct tqu_ssh_error {
    char message[TQU_SSH_MSG_MAX];       /* one line, never the password */
    char fingerprint[TQU_SSH_FP_MAX];    /* the server key's "SHA256:...", when the
                                            handshake got that far; else "" */
    char key_type[32];                   /* its type, e.g. "ssh-ed25519"; else "" */
} tqu_ssh_error;

/* Where to connect. Borrowed for the duration of tqu_ssh_connect only. */
typedef struct tqu_ssh_target {
    const char *host;          /* name or address; "host:port" and "[v6addr]:port" accepted */
    int port;                  /* <= 0: the one in host, else 22 */
    const char *user;          /* required */
    const char *known_hosts;   /* OpenSSH known_hosts text; NULL or "": every key is unknown */
    long timeout_ms;           /* TCP connect, handshake, every network wait; <= 0: default */
} tqu_ssh_target;

typedef struct tqu_ssh tqu_ssh;   /* a connected, authenticated session */

/*
 * Connect, check the host key, authenticate with password (NUL-terminated,
 * the caller's buffer: overwritten with zeros before return, on every
 * path; NULL counts as ""). On success *out is a session for
 * tqu_ssh_free. Errors: EINVAL, ENOMEM, ERESOLVE, EREFUSED, EUNREACHABLE,
 * ETIMEOUT, EDROPPED, EHOSTKEY_UNKNOWN / EHOSTKEY_CHANGED (err->fingerprint
 * set; the password is never sent), EAUTH, EPROTO; *out then NULL.
 */
int tqu_ssh_connect(const tqu_ssh_target *t, char *password, tqu_ssh **out, tqu_ssh_error *err);

/* Disconnect and free; NULL is fine. */
void tqu_ssh_free(tqu_ssh *s);

/* "host:port" of the session, for messages. */
const char *tqu_ssh_peer(const tqu_ssh *s);

/*
 * The server key's fingerprint of the known_hosts check (as in
 * tqu_ssh_error), for a connected session.
 */
const char *tqu_ssh_fingerprint(const tqu_ssh *s);

/* ------------------------------------------------------------- commands */

#define TQU_SSH_OUT_CAP 65536      /* default bytes kept of stdout and of stderr */

typedef struct tqu_ssh_exec_result {
    int exit_status;           /* 0..255; -1 when the command ended without one (a signal) */
    char *out, *err;           /* the LAST out_cap bytes of stdout / stderr, NUL-terminated
                                  (never NULL after a successful call); owned, freed by
                                  tqu_ssh_exec_result_release */
    size_t out_len, err_len;
    int out_truncated, err_truncated;   /* more was written than kept */
    double seconds;            /* wall time of the command (monotonic clock) */
} tqu_ssh_exec_result;

void tqu_ssh_exec_result_release(tqu_ssh_exec_result *r);

/*
 * Run argv (NULL-terminated, argv[0] non-empty) on the remote machine: the
 * remote user's shell gets one line where every argument is single-quoted
 * (tqu_ssh_quote_argv), so nothing in an argument is interpreted. Waits for
 * the command to end, at most timeout_ms (<= 0: none): then the command is
 * sent SIGTERM, the channel closed, and TQU_SSH_ETIMEOUT returned (the
 * output so far stays in *r). out_cap <= 0: TQU_SSH_OUT_CAP. Returns 0
 * whatever the exit status, or EINVAL, ENOMEM, ETIMEOUT, EDROPPED, EPROTO
 * (*r released unless ETIMEOUT).
 */
int tqu_ssh_exec(tqu_ssh *s, const char *const *argv, long timeout_ms, long out_cap,
                 tqu_ssh_exec_result *r, tqu_ssh_error *err);

/*
 * The remote command line for argv: each argument in single quotes, a '
 * inside one written '\'' , separated by single spaces. snprintf-style:
 * returns the length of the whole line, writes at most len - 1 bytes and
 * a NUL (buf may be NULL with len 0).
 */
size_t tqu_ssh_quote_argv(const char *const *argv, char *buf, size_t len);

/* ---------------------------------------------------------------- upload */

/*
 * Progress: sent bytes of the file now on the remote side (the resumed
 * prefix included), of total, at rate bytes/s (this run's bytes over this
 * run's time). Called from the uploading thread: first with the resumed
 * offset, then at most every 100 ms, last with sent == total. Monotonic.
 */
typedef void (*tqu_ssh_progress_fn)(void *ud, uint64_t sent, uint64_t total, double rate);

typedef struct tqu_ssh_upload_opts {
    tqu_ssh_progress_fn progress;   /* or NULL */
    void *ud;
    int mode;                       /* of a new remote file; 0: 0644 */
    long verify_timeout_ms;         /* each remote sha256; <= 0: 1 hour */
} tqu_ssh_upload_opts;

typedef struct tqu_ssh_upload_result {
    uint64_t total;            /* size of the local file */
    uint64_t resumed_from;     /* bytes of <remote>.part kept (its prefix verified) */
    uint64_t sent;             /* bytes sent in this call */
    int already_there;         /* <remote> existed with the same sha256: nothing sent */
    char sha256[65];           /* the file's, lower-case hex */
    double transfer_seconds;   /* time spent sending */
    double verify_seconds;     /* time spent on remote sha256s (resume + final) */
} tqu_ssh_upload_result;

/*
 * Copy the local file to remote (an absolute or home-relative path) by
 * SFTP, resumably: the data goes to "<remote>.part"; a .part left by an
 * earlier call is kept when its size is at most the file's and the sha256
 * of its content (computed remotely) equals the local prefix's, and
 * the upload continues from its end; otherwise it is started afresh. At
 * the end the sha256 of the whole .part (computed remotely) must equal the
 * local file's, then the .part is renamed to remote (SFTP rename; when
 * remote exists, which SFTP v3 refuses, `mv -f`: one rename(2)). So
 * remote is only ever the complete, verified file; an interrupted call
 * leaves at most the .part. When remote already exists with the local
 * sha256, nothing is sent (r->already_there). The remote machine needs
 * sh, sha256sum and mv (coreutils) on PATH, and uses `openssl dgst
 * -sha256` instead of sha256sum when it has it (faster).
 * Errors: EINVAL, ENOMEM, ELOCAL, EREMOTE (message has the SFTP status),
 * EVERIFY (the .part is removed), ETIMEOUT, EDROPPED, EPROTO.
 */
int tqu_ssh_upload(tqu_ssh *s, const char *local_path, const char *remote_path,
                   const tqu_ssh_upload_opts *o, tqu_ssh_upload_result *r, tqu_ssh_error *err);

#endif
