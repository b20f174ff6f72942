/*
 * health.h - the controller's HTTP endpoint for probes and scrapes
 * (--health-addr): plain HTTP/1.1 served by libwebsockets in a thread of
 * its own, with its own lws_context and service loop.
 *
 *   GET /healthz   200 "ok" while hooks->healthy says so, else 503 + reason
 *   GET /readyz    200 "ok" while hooks->ready says so, else 503 + reason
 *   GET /metrics   200, Content-Type "text/plain; version=0.0.4;
 *                  charset=utf-8", the body of tqu_metrics_render()
 *   other paths    404;  other methods (POST, HEAD, ...) 405 with Allow: GET
 *
 * Probe bodies are the hook's text when it wrote one, else "ok"/"not ok"
 * (text/plain, no trailing newline), so a standby replica can answer
 * 200 "ok: standby, not the leader (...)".
 *
 * The listening socket is made here (not by libwebsockets), so a bad or
 * busy address fails at start with one clear line, and port 0 picks a free
 * port (tqu_health_port tells which). All sockets are close-on-exec.
 * libwebsockets' own log is silenced except errors, which go to tqu_log.
 * Note that creating an lws_context sets SIGPIPE to SIG_IGN for the
 * process (libwebsockets does so unconditionally).
 */
#ifndef TQU_HEALTH_H
#define TQU_HEALTH_H

#include <stddef.h>

/*
 * The controller's answers. Both are called on the health thread, one at a
 * time, so they must be thread-safe with respect to the rest of the
 * controller, quick, and must not block. They return non-zero when healthy
 * / ready and zero when not, and may write a short reason (or a state such
 * as "ok: standby") into why, which is len bytes, zeroed before the call.
 * A NULL hook always answers healthy / ready.
 */
typedef struct tqu_health_hooks {
    int (*healthy)(void *ud, char *why, size_t len);   /* the loops are alive */
    int (*ready)(void *ud, char *why, size_t len);     /* API reachable, caches synced */
    void *ud;
} tqu_health_hooks;

typedef struct tqu_health tqu_health;

/*
 * Listen on addr and start serving. addr is "host:port" with host an IPv4
 * address, a bracketed IPv6 address or a name, or empty for every address
 * (IPv6 and IPv4 when the host has IPv6, else IPv4): ":8081",
 * "127.0.0.1:8081", "[::1]:8081", "0.0.0.0:0". Port 0 picks a free port.
 * hooks is copied (the ud it points to must outlive the server).
 *
 * Returns 0 and *out (free with tqu_health_stop), or K8S_EINVAL (addr
 * unparsable or unresolvable), K8S_EIO (socket/bind/listen failed, e.g.
 * address in use), K8S_ENOMEM, with *out NULL and one line without a
 * trailing newline in err (errlen bytes; err may be NULL).
 * Never exits; a failure is told only through rc and err.
 */
int tqu_health_start(const char *addr, const tqu_health_hooks *hooks, tqu_health **out,
                     char *err, size_t errlen);

/* The port actually listened on (useful after port 0). */
int tqu_health_port(const tqu_health *h);

/*
 * Stop serving, close every connection and the listening socket, join the
 * thread and free everything. Returns promptly (well within a second) even
 * with clients connected. h may be NULL.
 */
void tqu_health_stop(tqu_health *h);

#endif
