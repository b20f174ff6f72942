/*
 * roots.h - folders are confined (design.md section 8): whether a path that
 * a resource names lies inside one of the allowed roots (--allowed-root,
 * default /qaxdata), symbolic links followed.
 *
 * A path is allowed when it is clean and absolute (no "." or ".."
 * component, no empty component such as "//", no control character; one
 * trailing "/" is fine) and it resolves inside an allowed root. Resolving
 * follows symbolic links the way the kernel will when the path is used:
 * realpath(3) of the longest prefix that exists, then the components that
 * do not exist yet appended as written (they cannot be links: they do not
 * exist). A prefix that is a symbolic link to nothing is refused: whatever
 * later creates its target would decide where the path leads. Each root is
 * resolved the same way once, when it is added.
 *
 * "Inside" means the resolved path is the resolved root or below it. The
 * strict variant, for a hostPath mounted into pods, wants a path strictly
 * below a root (never the root itself), both as resolved here and as
 * written (another node has only the written path, not this machine's
 * links).
 *
 * The check is a snapshot: a link changed afterwards is not seen, so the
 * users re-check right where a path is used.
 */
#ifndef TQU_ROOTS_H
#define TQU_ROOTS_H

#include <stddef.h>

#define TQU_ROOTS_MAX 16

typedef struct tqu_roots {
    size_t n;
    char *given[TQU_ROOTS_MAX];      /* as configured, without a trailing "/"; owned */
    char *resolved[TQU_ROOTS_MAX];   /* symbolic links followed; owned */
} tqu_roots;

/* flags of tqu_roots_check */
#define TQU_ROOTS_STRICT 1u   /* strictly below a root: a hostPath mounted into pods */

/* An empty set (no path is allowed until a root is added). */
void tqu_roots_init(tqu_roots *r);

/*
 * Add root path (clean, absolute), resolved now. Returns 0; K8S_EINVAL (not
 * clean, or already TQU_ROOTS_MAX roots), K8S_EIO (cannot be resolved),
 * K8S_ENOMEM; err gets one line ("is not an absolute path"). r is
 * unchanged on failure.
 */
int tqu_roots_add(tqu_roots *r, const char *path, char *err, size_t errlen);

/* Free the roots' strings; r is empty afterwards. */
void tqu_roots_release(tqu_roots *r);

/*
 * Whether path is clean (see above). relative_ok: a relative path (still
 * clean) is fine too. Returns 0 or K8S_EINVAL with why, a phrase to follow
 * the quoted path: "has a \"..\" component".
 */
int tqu_roots_clean(const char *path, int relative_ok, char *why, size_t whylen);

/*
 * Resolve a clean absolute path as described above into out (no trailing
 * "/"). Returns 0; K8S_EINVAL (not clean, a dangling link, too long), K8S_EIO
 * (a prefix cannot be resolved: permission, a link loop); why gets a
 * phrase to follow the quoted path. out is "" on failure.
 */
int tqu_roots_resolve(const char *path, char *out, size_t outlen, char *why, size_t whylen);

/*
 * Whether path is allowed (flags: 0 or TQU_ROOTS_STRICT). Returns 0, or
 * K8S_EINVAL / K8S_EIO (refused; also when r has no root) with why, a
 * phrase to follow the quoted path naming the roots, e.g.
 *   is outside the allowed roots (/qaxdata)
 *   resolves to "/etc" (symbolic links followed), outside the allowed roots (/qaxdata)
 * resolved, when not NULL, gets the resolved path ("" when unknown).
 */
int tqu_roots_check(const tqu_roots *r, const char *path, unsigned flags, char *resolved, size_t rlen,
                    char *why, size_t whylen);

/* The resolved roots as "/qaxdata, /data01" ("" when none). */
void tqu_roots_list(const tqu_roots *r, char *buf, size_t len);

#endif
