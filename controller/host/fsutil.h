/*
 * fsutil.h - file-system helpers for the whole controller: write a file
 * atomically (temporary file in the same folder, fsync, rename, fsync of
 * the folder), mkdir -p, read a small file whole with a size cap, the
 * SHA-256 of a file, and the tail of a possibly huge file (a log) without
 * reading all of it.
 *
 * Every function returns 0 (K8S_OK) or a k8s_rc (K8S_EINVAL, K8S_EIO,
 * K8S_ENOMEM, K8S_ETOOBIG). On failure err (when not NULL and errlen > 0)
 * holds one line naming the path and the errno text, e.g.
 *   "/qaxdata/tianqing-upgrade/backups: mkdir: Permission denied".
 * Nothing here keeps state; all are safe to call from several threads on
 * different files.
 */
#ifndef TQU_FSUTIL_H
#define TQU_FSUTIL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "k8s.h"

/*
 * The one way files are written atomically, step by step, for writers that
 * stream (the backup) as well as for tqu_write_file_atomic:
 *
 *   tqu_atomic_begin   creates a temporary ".<name>.tmp.XXXXXX" in the
 *                      folder dirfd, gives it that owner (unless (uid_t)-1
 *                      and (gid_t)-1) and mode & 07777 (umask not applied);
 *   the caller         writes a->fd (open read-write; it may seek and
 *                      truncate it);
 *   tqu_atomic_commit  fsyncs and closes it, renames it to name (with
 *                      TQU_ATOMIC_NOREPLACE never over an existing file:
 *                      EEXIST) and fsyncs the folder;
 *   tqu_atomic_abort   closes and removes the temporary file: for a writer
 *                      that gives up; a no-op after commit or a failure,
 *                      safe to call twice (and after tqu_atomic_init).
 *
 * They return 0 or an errno value, and a->op then names the step that
 * failed, for the caller's message: "create", "chown", "chmod", "fsync",
 * "close", "rename", "link" (no RENAME_NOREPLACE here), "fsync of folder".
 * A failure leaves no temporary file; a->committed says whether the file
 * got its final name (only the folder's fsync fails after that). dirfd
 * stays the caller's. Async-signal-safe (system calls and string
 * functions only: no allocation, stdio or locks), so a forked copy of the
 * threaded controller may use them too.
 */
typedef struct tqu_atomic {
    int fd;                   /* the temporary file; -1 when none */
    int dirfd;                /* its folder (the caller's) */
    const char *op;           /* the step that failed; "" when none */
    int committed;            /* 1 once renamed to name */
    char name[NAME_MAX + 1];  /* the final name in it (a copy) */
    char tmp[NAME_MAX + 1];   /* the temporary file's name; "" when none */
} tqu_atomic;

#define TQU_ATOMIC_NOREPLACE 1u

void tqu_atomic_init(tqu_atomic *a);
int tqu_atomic_begin(tqu_atomic *a, int dirfd, const char *name, mode_t mode, uid_t uid, gid_t gid);
int tqu_atomic_commit(tqu_atomic *a, unsigned flags);
void tqu_atomic_abort(tqu_atomic *a);

/*
 * Replace path with exactly data[0..len) so that a reader (or a crash)
 * sees either the old content or the new, never a mix: the data go to a
 * temporary ".<name>.tmp.XXXXXX" in the same folder, which is fsynced,
 * given mode (& 07777, umask not applied) and renamed over path; then the
 * folder is fsynced. A symbolic link at path is replaced by a regular file
 * (resolve it first if the target is meant). On failure path is unchanged
 * and no temporary file is left.
 */
int tqu_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                          char *err, size_t errlen);

/* The same, also giving the new file this owner; (uid_t)-1 / (gid_t)-1
 * keep the creating process's. Changing the owner needs the privilege to. */
int tqu_write_file_atomic_as(const char *path, const void *data, size_t len, mode_t mode,
                             uid_t uid, gid_t gid, char *err, size_t errlen);

/*
 * mkdir -p: create path and any missing parents with mode (umask applies,
 * as for mkdir(2)). An existing folder is success; an existing
 * non-folder at path or at a parent is K8S_EIO ("Not a directory").
 */
int tqu_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);

/*
 * Read the whole file into out (reset first; out->data is NUL-terminated,
 * also for an empty file). cap, when not 0, becomes out's cap; more than
 * out's cap is K8S_ETOOBIG. A folder is K8S_EIO. On failure out is left
 * empty (released).
 */
int tqu_read_file(const char *path, size_t cap, k8s_buf *out, char *err, size_t errlen);

/* SHA-256 of the file's content as 64 lowercase hex digits + NUL, and
 * (when bytes is not NULL) its length. On failure hex is "", *bytes
 * unchanged. */
int tqu_sha256_file(const char *path, char hex[65], uint64_t *bytes, char *err, size_t errlen);

/*
 * Read a file from start to end, handing each chunk (up to 32 KiB, in
 * order) to fn; fn returns 0 to go on, anything else stops the read and
 * is returned as it is (err untouched: the caller names that failure).
 * Otherwise 0, or K8S_EIO with err "<path>: <errno text>" (cannot open; a
 * folder is "Is a directory") or "<path>: read: <errno text>".
 */
typedef int (*tqu_chunk_fn)(void *ud, const void *data, size_t len);
int tqu_read_chunks(const char *path, tqu_chunk_fn fn, void *ud, char *err, size_t errlen);

/*
 * The end of a regular file, reading at most max_bytes from its end
 * (max_bytes 0: 64 KiB): out is reset and receives the last max_bytes
 * bytes, cut at the first line start when the file is longer (so no
 * partial first line, unless the window holds no newline at all; then only
 * leading UTF-8 continuation bytes are dropped), and then limited to the
 * last max_lines lines when max_lines > 0 (a final newline does not count
 * as an empty line). A file that grows meanwhile is read up to its size
 * when opened (a later call sees the rest). Non-regular files are
 * K8S_EINVAL.
 */
int tqu_read_tail(const char *path, size_t max_bytes, size_t max_lines, k8s_buf *out,
                  char *err, size_t errlen);

/*
 * Internal, shared by the controller's modules: format a one-line error
 * into err (when err && errlen) and return rc. Never allocates.
 */
int tqu__seterr(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Internal, shared: append to the string in buf (size bytes), cutting
 * quietly at its end; when buf is not empty, sep (may be NULL) goes
 * between if it fits with room to spare. For one-line messages built in
 * fixed buffers. Never allocates.
 */
void tqu__appendf(char *buf, size_t size, const char *sep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* 1 when p is (after links) a regular file / a folder, else 0. */
int tqu_is_file(const char *p);
int tqu_is_dir(const char *p);

#endif
