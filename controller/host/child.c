/*
 * child.c - the vendor commands as child processes (see child.h).
 *
 * Layout of this file:
 *   - async-signal-safe helpers: what runs between fork and exec (in a
 *     forked copy of the multithreaded controller: no malloc, no stdio,
 *     no locks, only system calls and the string functions POSIX lists as
 *     async-signal-safe); the detached supervisor, a fresh exec of our
 *     binary (see SUP_FLAG), is written with the same helpers;
 *   - preparation in the controller (argv, environment, PATH lookup,
 *     checks, log file), where allocating is fine;
 *   - A: tqu_child_run; B: tqu_detached_start/_poll/_kill.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "child.h"
#include "k8s.h"

/* valgrind 3.19 does not know pidfd_open and warns on every call: under it,
   wait in short sleeps as on kernels older than 5.3. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND() 0
#endif

extern char **environ;

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define TAIL_READ ((size_t)64 * 1024)      /* bytes read from the end of a log */
#define STATE_FILE_CAP ((size_t)256 * 1024) /* largest state file we read */
#define REPORT_WAIT_MS 30000                /* supervisor's report to the starter */
#define CANCEL_CHECK_MS 200                 /* A: how often *cancel is looked at */
#define SUPERVISOR_TICK_MS 250              /* B: longest sleep of the supervisor */
#define REDACTED "***"

static const char *const rc_names[TQU_CHILD_RC_MAX] = {
    [TQU_CHILD_OK] = "success",
    [TQU_CHILD_EINVAL] = "invalid argument",
    [TQU_CHILD_ENOMEM] = "out of memory",
    [TQU_CHILD_ENOCWD] = "working directory missing",
    [TQU_CHILD_ENOTFOUND] = "command not found",
    [TQU_CHILD_ELOG] = "log file unusable",
    [TQU_CHILD_ESPAWN] = "command could not be started",
    [TQU_CHILD_ESTATE] = "state folder unusable",
    [TQU_CHILD_ELAUNCHED] = "already launched",
};

const char *tqu_child_strerror(int rc)
{
    if (rc < 0 || rc >= TQU_CHILD_RC_MAX || !rc_names[rc])
        return "unknown error";
    return rc_names[rc];
}

const char *tqu_detached_state_name(tqu_detached_state s)
{
    switch (s) {
    case TQU_DETACHED_NOT_LAUNCHED: return "NotLaunched";
    case TQU_DETACHED_RUNNING: return "Running";
    case TQU_DETACHED_FINISHED: return "Finished";
    case TQU_DETACHED_LOST: return "Lost";
    case TQU_DETACHED_STARTING: return "Starting";
    }
    return "Unknown";
}

/* printf into a message buffer; returns rc. */
static int set_msg(char *buf, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_msg(char *buf, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;
    if (buf && len) {
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ================================================ async-signal-safe helpers */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Since boot, suspend included: elapsed times that survive a restart of ours. */
static long long boot_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);   /* EINTR: the callers loop and look again */
}

/* A fixed-size string builder that never allocates. */
typedef struct sbuf {
    char *p;
    size_t len, cap;       /* cap includes the NUL */
} sbuf;

static void sb_put(sbuf *b, const char *s)
{
    while (*s && b->len + 1 < b->cap)
        b->p[b->len++] = *s++;
    b->p[b->len] = '\0';
}

static void sb_num(sbuf *b, long long v)
{
    char d[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        d[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[n++] = '-';
    while (n && b->len + 1 < b->cap)
        b->p[b->len++] = d[--n];
    b->p[b->len] = '\0';
}

/* Two digits, zero-padded. */
static void sb_num2(sbuf *b, unsigned v)
{
    char d[3] = { (char)('0' + v / 10 % 10), (char)('0' + v % 10), '\0' };
    sb_put(b, d);
}

/* Unix seconds as "2026-12-05T14:00:00Z" (proleptic Gregorian, UTC). */
static void sb_time(sbuf *b, long long t)
{
    long long z = (t >= 0 ? t : t - 86399) / 86400, secs = t - z * 86400;
    long long era, y;
    unsigned doe, yoe, doy, mp, m, d;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = (long long)yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    sb_num(b, y);
    sb_put(b, "-");
    sb_num2(b, m);
    sb_put(b, "-");
    sb_num2(b, d);
    sb_put(b, "T");
    sb_num2(b, (unsigned)(secs / 3600));
    sb_put(b, ":");
    sb_num2(b, (unsigned)(secs / 60 % 60));
    sb_put(b, ":");
    sb_num2(b, (unsigned)(secs % 60));
    sb_put(b, "Z");
}

static long long real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec;
}

/* write(2) all of it; 0 or an errno value. */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* read(2) up to n bytes, retrying on EINTR and short reads; bytes read or -1. */
static ssize_t read_full(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return got ? (ssize_t)got : -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/*
 * Replace dirfd/name by data atomically: dirfd/tmp written and fsync'ed,
 * renamed over name, the folder fsync'ed. 0 or an errno value (the
 * temporary file is removed on failure).
 */
static int atomic_write_at(int dirfd, const char *tmp, const char *name, const char *data,
                           size_t n)
{
    int fd, e = 0;

    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno;
    e = write_all(fd, data, n);
    if (!e && fsync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && !e && errno != EINTR)
        e = errno;
    if (!e && renameat(dirfd, tmp, dirfd, name) < 0)
        e = errno;
    if (e) {
        unlinkat(dirfd, tmp, 0);
        return e;
    }
    if (fsync(dirfd) < 0)
        return errno;
    return 0;
}

/*
 * From /proc/<pid>/stat (pid 0: self): the start time (field 22, clock
 * ticks after boot) and the state letter. 0, or -1 when there is no such
 * process.
 */
static int proc_stat(pid_t pid, unsigned long long *start, char *state)
{
    char path[40], buf[1024];
    sbuf b = { path, 0, sizeof(path) };
    const char *p = NULL;
    ssize_t n;
    int fd, field;

    if (pid > 0) {
        sb_put(&b, "/proc/");
        sb_num(&b, pid);
        sb_put(&b, "/stat");
    } else {
        sb_put(&b, "/proc/self/stat");
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read_full(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so from the last ')' */
    for (ssize_t i = n - 1; i >= 0; i--)
        if (buf[i] == ')') {
            p = buf + i + 1;
            break;
        }
    if (!p || p[0] != ' ')
        return -1;
    p++;
    if (state)
        *state = *p;
    for (field = 3; field < 22 && *p; p++)
        if (*p == ' ')
            field++;
    if (field != 22 || *p < '0' || *p > '9')
        return -1;
    *start = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        *start = *start * 10 + (unsigned long long)(*p - '0');
    return 0;
}

/* Close every fd from lo to hi inclusive; fd_max bounds the fallback loop. */
static void close_fds(unsigned lo, unsigned hi, unsigned fd_max)
{
    if (lo > hi)
        return;
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
    for (unsigned fd = lo; fd <= hi && fd < fd_max; fd++)
        close((int)fd);
}

/* Close every fd >= 3 except those in keep (n of them, -1 entries ignored). */
static void close_except(int *keep, int n, unsigned fd_max)
{
    unsigned lo = 3;

    for (int i = 1; i < n; i++)            /* insertion sort, n is tiny */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (keep[i] < (int)lo)
            continue;
        close_fds(lo, (unsigned)keep[i] - 1, fd_max);
        lo = (unsigned)keep[i] + 1;
    }
    close_fds(lo, ~0U, fd_max);
}

/* Every disposition back to the default, nothing blocked. */
static void reset_signals(void)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);   /* EINVAL for libc-internal ones: fine */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* What the exec'ing child tells its parent when it fails (nothing on success). */
enum { STAGE_NONE = 0, STAGE_GO, STAGE_DUP, STAGE_CHDIR, STAGE_EXEC };
typedef struct exec_fail {
    int stage;
    int err;
} exec_fail;

typedef struct exec_plan {
    const char *exe;         /* resolved executable */
    char *const *argv;       /* prefix + argv */
    char *const *envp;
    const char *cwd;         /* or NULL */
    int in_fd, out_fd;       /* /dev/null and the log, both >= 3 */
    int go_fd;               /* -1, or read one byte before exec'ing (EOF: give up) */
    int err_fd;              /* close-on-exec pipe to report a failure */
    unsigned fd_max;
} exec_plan;

/* The forked child: set up and exec. Async-signal-safe only. */
__attribute__((noreturn)) static void exec_child(const exec_plan *x)
{
    exec_fail f = { STAGE_NONE, 0 };
    int keep[4] = { x->err_fd, x->go_fd, x->in_fd, x->out_fd };
    char c;

    setpgid(0, 0);
    reset_signals();
    /* first, so that no copy of the go pipe's write end keeps us waiting; the
       four kept are close-on-exec */
    close_except(keep, 4, x->fd_max);
    if (x->go_fd >= 0) {
        ssize_t r;
        do
            r = read(x->go_fd, &c, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1)
            _exit(126);            /* the supervisor gave up: never exec */
    }
    if (dup2(x->in_fd, 0) < 0 || dup2(x->out_fd, 1) < 0 || dup2(x->out_fd, 2) < 0) {
        f.stage = STAGE_DUP;
        goto fail;
    }
    if (x->cwd && chdir(x->cwd) < 0) {
        f.stage = STAGE_CHDIR;
        goto fail;
    }
    execve(x->exe, x->argv, x->envp);
    f.stage = STAGE_EXEC;
fail:
    f.err = errno;
    write_all(x->err_fd, &f, sizeof(f));
    _exit(127);
}

/*
 * Wait for pid (our child) to end; on a timeout or cancellation SIGTERM
 * its process group, then SIGKILL after grace_ms if any member is left.
 * Async-signal-safe (also run by the supervisor).
 */
typedef struct watch {
    pid_t pid;
    int pidfd;                             /* -1: sleep in slices instead */
    long long deadline;                    /* monotonic ms, 0: none */
    long grace_ms;
    const volatile int *cancel;            /* A */
    const volatile sig_atomic_t *sigcancel;   /* B (set by a signal handler) */
    long tick_ms;                          /* longest sleep while cancel can come */
    /* out */
    int status;
    int have_status;                       /* 0: reaped by someone else (ECHILD) */
    int timed_out, cancelled;
} watch;

static void watch_run(watch *w)
{
    enum { RUN, TERMED, KILLED } phase = RUN;
    long long kill_at = 0;
    int reaped = 0;

    for (;;) {
        long long now;
        long wait = -1;

        if (!reaped) {
            pid_t r = waitpid(w->pid, &w->status, WNOHANG);
            if (r == w->pid) {
                reaped = w->have_status = 1;
            } else if (r < 0 && errno != EINTR) {
                reaped = 1;                  /* ECHILD: not ours to reap any more */
                w->have_status = 0;
            }
        }
        now = mono_ms();
        if (phase == RUN) {
            if (reaped)
                return;
            if ((w->cancel && *w->cancel) || (w->sigcancel && *w->sigcancel))
                w->cancelled = 1;
            else if (w->deadline && now >= w->deadline)
                w->timed_out = 1;
            if (w->cancelled || w->timed_out) {
                kill(-w->pid, SIGTERM);
                kill_at = now + w->grace_ms;
                phase = TERMED;
                continue;
            }
            if (w->deadline)
                wait = (long)(w->deadline - now < 3600000 ? w->deadline - now : 3600000);
            if ((w->cancel || w->sigcancel) && (wait < 0 || wait > w->tick_ms))
                wait = w->tick_ms;
        } else if (phase == TERMED) {
            /* done when the whole group is gone (ESRCH; EPERM means it exists) */
            if (reaped && kill(-w->pid, 0) < 0 && errno == ESRCH)
                return;
            if (now >= kill_at) {
                kill(-w->pid, SIGKILL);
                phase = KILLED;
                continue;
            }
            wait = (long)(kill_at - now);
            if (wait > 100)
                wait = 100;
        } else {
            if (reaped)
                return;
            wait = 100;
        }
        if (w->pidfd >= 0 && !reaped) {
            struct pollfd pf = { w->pidfd, POLLIN, 0 };
            poll(&pf, 1, wait < 0 ? -1 : (int)wait);   /* EINTR: look again */
        } else {
            sleep_ms(wait < 0 || wait > 50 ? 50 : (wait < 1 ? 1 : wait));
        }
    }
}

/* A pidfd to sleep on until pid exits, or -1 (then watch_run sleeps in slices). */
static int pidfd_of(pid_t pid)
{
    long fd;
    if (UNDER_VALGRIND())
        return -1;
    fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -1 : (int)fd;
}

/* ======================================================= preparation */

/* Everything a start needs, made in the controller before forking. */
typedef struct plan {
    char **argv;             /* prefix + argv (borrowed strings), owned array */
    char **envp;             /* borrowed strings, owned array */
    char exe[PATH_MAX];
    size_t nlead;            /* words before spec->argv in argv (prefix, cd wrapper) */
    const char *word;        /* the first word, for messages (never a secret) */
    int devnull, logfd;      /* >= 3, close-on-exec; -1 when not open */
    long long log_offset;    /* size of the log before this run */
    unsigned fd_max;
} plan;

static void plan_release(plan *p)
{
    free(p->argv);
    free(p->envp);
    if (p->devnull >= 0)
        close(p->devnull);
    if (p->logfd >= 0)
        close(p->logfd);
    p->argv = p->envp = NULL;
    p->devnull = p->logfd = -1;
}

/* fd moved to a number >= 3 (still close-on-exec), or -1 with errno. */
static int fd_high(int fd)
{
    int n;
    if (fd < 0 || fd >= 3)
        return fd;
    n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return n;
}

static size_t vec_len(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

static int same_name(const char *entry, const char *e)
{
    size_t n = strcspn(e, "=");
    return !strncmp(entry, e, n) && entry[n] == '=';
}

/* The child's environment: base without the names env_extra sets, then env_extra. */
static char **build_env(char *const *base, char *const *extra)
{
    size_t n = vec_len(base), m = vec_len(extra), k = 0;
    char **v = calloc(n + m + 1, sizeof(*v));

    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int skip = !strchr(base[i], '=');
        for (size_t j = 0; j < m && !skip; j++)
            skip = same_name(base[i], extra[j]);
        if (!skip)
            v[k++] = base[i];
    }
    for (size_t j = 0; j < m; j++)
        v[k++] = extra[j];
    return v;
}

/* Whether path is an executable regular file: 0 or an errno value. */
static int executable(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return errno;
    if (!S_ISREG(sb.st_mode))
        return EACCES;
    if (access(path, X_OK) < 0)
        return errno;
    return 0;
}

/*
 * The file that exec of word runs: a word with a '/' as it is (relative to
 * cwd when relative), else the first executable PATH entry (PATH of envp,
 * else DEFAULT_PATH; relative entries are skipped). 0 or an errno value.
 */
static int resolve(const char *word, char *const *envp, const char *cwd, char *out, size_t len)
{
    const char *path = NULL, *p;
    int e = ENOENT, n;

    if (strchr(word, '/')) {
        if (word[0] == '/' || !cwd)
            n = snprintf(out, len, "%s", word);
        else
            n = snprintf(out, len, "%s/%s", cwd, word);
        if (n < 0 || (size_t)n >= len)
            return ENAMETOOLONG;
        return executable(out);
    }
    for (size_t i = 0; envp[i]; i++)
        if (!strncmp(envp[i], "PATH=", 5))
            path = envp[i] + 5;
    if (!path)
        path = DEFAULT_PATH;
    for (p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        if (dl && p[0] == '/') {
            n = snprintf(out, len, "%.*s/%s", (int)dl, p, word);
            if (n > 0 && (size_t)n < len) {
                int r = executable(out);
                if (!r)
                    return 0;
                if (r == EACCES)
                    e = EACCES;          /* as execvp: found but not runnable */
            }
        }
        if (!end)
            break;
        p = end;
    }
    return e;
}

/*
 * With an exec prefix, the command runs in a new mount namespace (nsenter
 * -m), where the kernel resets the working folder to "/": the prefix then
 * runs this small shell program, which changes to the folder and execs
 * the command (argv-based: the folder and the command are arguments,
 * never joined into the script).
 */
static const char *const cd_wrapper[] = { "/bin/sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"",
                                          "tqu-cd" };
#define CD_WRAPPER_N (sizeof(cd_wrapper) / sizeof(cd_wrapper[0]))

/* Whether the command goes through cd_wrapper (then + cwd) after the prefix. */
static int wraps_cwd(const tqu_child_spec *spec)
{
    return spec && spec->prefix && spec->prefix[0] && spec->cwd;
}

/* "***" when argv[i] is flagged secret, else argv[i]. */
static const char *shown_arg(const tqu_child_spec *spec, size_t i)
{
    if (i < TQU_CHILD_SECRET_MAX && (spec->secret_args & TQU_CHILD_SECRET_ARG(i)))
        return REDACTED;
    return spec->argv[i];
}

/*
 * Check spec and get everything ready: argv and environment arrays, the
 * executable, the working directory, /dev/null and the log file (with its
 * offset). Returns 0 or an rc with msg; p is empty on failure.
 */
static int prepare(const tqu_child_spec *spec, plan *p, char *msg, size_t mlen)
{
    size_t np, na;
    struct stat sb;
    struct rlimit rl;
    int e, rc = TQU_CHILD_OK;

    memset(p, 0, sizeof(*p));
    p->devnull = p->logfd = -1;
    if (!spec || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return set_msg(msg, mlen, TQU_CHILD_EINVAL, "no command to run");
    if ((spec->cwd && strlen(spec->cwd) >= TQU_CHILD_PATH_MAX) ||
        (spec->log_path && strlen(spec->log_path) >= TQU_CHILD_PATH_MAX))
        return set_msg(msg, mlen, TQU_CHILD_EINVAL, "working directory or log path longer "
                       "than %d bytes", TQU_CHILD_PATH_MAX - 1);
    np = vec_len(spec->prefix);
    na = vec_len(spec->argv);
    if (np && !spec->prefix[0][0])
        return set_msg(msg, mlen, TQU_CHILD_EINVAL, "empty exec prefix command");
    p->word = np ? spec->prefix[0] : shown_arg(spec, 0);

    if (spec->cwd) {
        if (stat(spec->cwd, &sb) < 0)
            return set_msg(msg, mlen, TQU_CHILD_ENOCWD, "working directory %s: %s",
                           spec->cwd, strerror(errno));
        if (!S_ISDIR(sb.st_mode))
            return set_msg(msg, mlen, TQU_CHILD_ENOCWD, "working directory %s: not a "
                           "directory", spec->cwd);
    }

    p->nlead = np + (wraps_cwd(spec) ? CD_WRAPPER_N + 1 : 0);
    p->argv = calloc(p->nlead + na + 1, sizeof(*p->argv));
    p->envp = build_env(spec->env ? spec->env : environ, spec->env_extra);
    if (!p->argv || !p->envp) {
        rc = set_msg(msg, mlen, TQU_CHILD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < np; i++)
        p->argv[i] = spec->prefix[i];
    if (wraps_cwd(spec)) {
        for (size_t i = 0; i < CD_WRAPPER_N; i++)
            p->argv[np + i] = (char *)cd_wrapper[i];
        p->argv[np + CD_WRAPPER_N] = (char *)spec->cwd;
    }
    for (size_t i = 0; i < na; i++)
        p->argv[p->nlead + i] = spec->argv[i];

    e = resolve(p->argv[0], p->envp, spec->cwd, p->exe, sizeof(p->exe));
    if (e) {
        rc = set_msg(msg, mlen, TQU_CHILD_ENOTFOUND, "cannot run %s: %s", p->word,
                     e == ENOENT && !strchr(p->argv[0], '/') ? "not found on PATH"
                                                              : strerror(e));
        goto out;
    }

    p->devnull = fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (p->devnull < 0) {
        rc = set_msg(msg, mlen, TQU_CHILD_ESPAWN, "/dev/null: %s", strerror(errno));
        goto out;
    }
    if (spec->log_path) {
        p->logfd = open(spec->log_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY |
                        (spec->log_truncate ? O_TRUNC : O_APPEND), 0600);
        p->logfd = fd_high(p->logfd);
        if (p->logfd < 0) {
            rc = set_msg(msg, mlen, TQU_CHILD_ELOG, "log file %s: %s", spec->log_path,
                         strerror(errno));
            goto out;
        }
        if (fstat(p->logfd, &sb) == 0 && S_ISREG(sb.st_mode))
            p->log_offset = (long long)sb.st_size;
    } else {
        p->logfd = fd_high(dup(p->devnull));   /* dup() drops close-on-exec: restore */
        if (p->logfd < 0 || fcntl(p->logfd, F_SETFD, FD_CLOEXEC) < 0) {
            rc = set_msg(msg, mlen, TQU_CHILD_ESPAWN, "/dev/null: %s", strerror(errno));
            goto out;
        }
    }
    p->fd_max = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < p->fd_max)
        p->fd_max = (unsigned)rl.rlim_cur;
out:
    if (rc)
        plan_release(p);
    return rc;
}

static const char *stage_text(int stage)
{
    switch (stage) {
    case STAGE_DUP: return "cannot set up its output";
    case STAGE_CHDIR: return "cannot change to its working directory";
    default: return "cannot execute it";
    }
}

/* ============================================================ formatting */

static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("_@%+=:,./-", c)))
            return 1;
    }
    return 0;
}

typedef struct fmt {
    char *buf;
    size_t len, n;   /* n: length of the whole line so far */
} fmt;

static void fmt_char(fmt *f, char c)
{
    if (f->buf && f->n + 1 < f->len)
        f->buf[f->n] = c;
    f->n++;
}

static void fmt_word(fmt *f, const char *s, int secret)
{
    if (f->n)
        fmt_char(f, ' ');
    if (secret) {
        for (const char *r = REDACTED; *r; r++)
            fmt_char(f, *r);
        return;
    }
    if (!needs_quotes(s)) {
        for (; *s; s++)
            fmt_char(f, *s);
        return;
    }
    fmt_char(f, '\'');
    for (; *s; s++) {
        if (*s == '\'') {
            fmt_char(f, '\'');
            fmt_char(f, '\\');
            fmt_char(f, '\'');
        }
        fmt_char(f, *s);
    }
    fmt_char(f, '\'');
}

size_t tqu_child_format_argv(const tqu_child_spec *spec, char *buf, size_t len)
{
    fmt f = { buf, len, 0 };

    for (size_t i = 0; spec && spec->prefix && spec->prefix[i]; i++)
        fmt_word(&f, spec->prefix[i], 0);
    if (wraps_cwd(spec)) {
        for (size_t i = 0; i < CD_WRAPPER_N; i++)
            fmt_word(&f, cd_wrapper[i], 0);
        fmt_word(&f, spec->cwd, 0);
    }
    for (size_t i = 0; spec && spec->argv && spec->argv[i]; i++)
        fmt_word(&f, spec->argv[i],
                 i < TQU_CHILD_SECRET_MAX && (spec->secret_args & TQU_CHILD_SECRET_ARG(i)));
    if (buf && len)
        buf[f.n < len ? f.n : len - 1] = '\0';
    return f.n;
}

/* ================================================================== tail */

/* src[0..n) with every occurrence of a redact string replaced; caller frees. */
static char *redact_copy(const char *src, size_t n, const char *const *redact, size_t *out_n)
{
    size_t cap = n * 3 + 1, k = 0;   /* worst case: every byte a 1-byte secret */
    char *out = malloc(cap);

    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t hit = 0;
        for (size_t j = 0; redact && redact[j]; j++) {
            size_t sl = strlen(redact[j]);
            if (sl && sl <= n - i && !memcmp(src + i, redact[j], sl) && sl > hit)
                hit = sl;
        }
        if (hit) {
            memcpy(out + k, REDACTED, 3);
            k += 3;
            i += hit;
        } else {
            out[k++] = src[i++];
        }
    }
    out[k] = '\0';
    *out_n = k;
    return out;
}

/*
 * Every form in which a shell or a logger may print secret s: as it is;
 * shell single-quoted ('\'' for a quote: bash and dash under set -x, our
 * own formatting); inside double quotes (\ " $ ` escaped);
 * backslash-escaped (printf %q); JSON-escaped (structured loggers). The
 * quoting characters around a form stay visible, the secret does not.
 * NULL-terminated, distinct, non-empty; free with forms_free (which wipes
 * them). NULL on ENOMEM.
 */
enum { FORM_RAW, FORM_SQ, FORM_DQ, FORM_BS, FORM_JSON, FORM_N };

static char *form_of(const char *s, int kind)
{
    size_t n = strlen(s), k = 0;
    char *o = malloc(n * 6 + 1);       /* worst: every byte as \u00XX */

    if (!o)
        return NULL;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        switch (kind) {
        case FORM_SQ:
            if (u == '\'') {
                memcpy(o + k, "'\\''", 4);
                k += 4;
                continue;
            }
            break;
        case FORM_DQ:
            if (strchr("\\\"$`", u) && u)
                o[k++] = '\\';
            break;
        case FORM_BS:
            if (!((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
                  (u >= 0x80) || strchr("_@%+=:,./-", u)))
                o[k++] = '\\';
            break;
        case FORM_JSON:
            if (u == '"' || u == '\\') {
                o[k++] = '\\';
            } else if (u < 0x20) {
                k += (size_t)snprintf(o + k, 7, "\\u%04x", u);
                continue;
            }
            break;
        }
        o[k++] = (char)u;
    }
    o[k] = '\0';
    return o;
}

static void forms_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++) {
        explicit_bzero(v[i], strlen(v[i]));
        free(v[i]);
    }
    free(v);
}

static char **forms_of(const char *const *secrets)
{
    size_t n = 0, k = 0;
    char **v;

    while (secrets && secrets[n])
        n++;
    v = calloc(n * FORM_N + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!secrets[i][0])
            continue;
        for (int kind = 0; kind < FORM_N; kind++) {
            char *f = form_of(secrets[i], kind);
            int dup = 0;
            if (!f) {
                forms_free(v);
                return NULL;
            }
            for (size_t j = 0; j < k && !dup; j++)
                dup = !strcmp(v[j], f);
            if (dup) {
                explicit_bzero(f, strlen(f));
                free(f);
            } else {
                v[k++] = f;
            }
        }
    }
    return v;
}

int tqu_child_tail(const char *path, long long offset, int lines, const char *const *redact,
                   char *buf, size_t len)
{
    struct stat sb;
    char *raw = NULL, *red = NULL, *p, *end, **forms = NULL;
    long long start;
    size_t n = 0, got, keep;
    int fd, rc = TQU_CHILD_OK;

    if (!buf || !len)
        return TQU_CHILD_EINVAL;
    buf[0] = '\0';
    if (len > TQU_CHILD_TAIL_MAX)
        len = TQU_CHILD_TAIL_MAX;
    if (lines <= 0)
        lines = TQU_CHILD_TAIL_LINES;
    if (!path)
        return TQU_CHILD_ELOG;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return TQU_CHILD_ELOG;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        rc = TQU_CHILD_ELOG;
        goto out;
    }
    if (offset < 0 || offset > (long long)sb.st_size)
        offset = 0;                       /* truncated since: all of it is this run's */
    start = (long long)sb.st_size - (long long)TAIL_READ;
    if (start < offset)
        start = offset;
    n = (size_t)((long long)sb.st_size - start);
    raw = malloc(n + 1);
    if (!raw) {
        rc = TQU_CHILD_ENOMEM;
        goto out;
    }
    for (got = 0; got < n;) {
        ssize_t r = pread(fd, raw + got, n - got, (off_t)start + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = TQU_CHILD_ELOG;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    p = raw;
    end = raw + got;
    if (start > offset) {                 /* the window starts mid-line: drop that part */
        char *nl = memchr(p, '\n', got);
        if (nl && nl + 1 < end)
            p = nl + 1;
        /* (what is shown, at most TQU_CHILD_TAIL_MAX bytes, never reaches back to
           the start of the window, where a secret could be cut in two) */
    }
    if (redact && redact[0]) {
        size_t rn;
        forms = forms_of(redact);
        red = forms ? redact_copy(p, (size_t)(end - p), (const char *const *)forms, &rn) : NULL;
        if (!red) {
            rc = TQU_CHILD_ENOMEM;
            goto out;
        }
        p = red;
        end = red + rn;
    }
    while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
        end--;
    for (char *c = p; c < end; c++)
        if (((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f)
            *c = ' ';
    /* the last `lines` lines */
    for (char *c = end; c > p; c--)
        if (c[-1] == '\n' && --lines == 0) {
            p = c;
            break;
        }
    /* ...that fit: whole lines dropped from the front, else the end of the last one */
    while ((size_t)(end - p) > len - 1) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        p = nl + 1;
    }
    keep = (size_t)(end - p);
    if (keep > len - 1) {
        size_t room = len > 4 ? len - 4 : 0;
        p = end - room;
        while (p < end && ((unsigned char)*p & 0xC0) == 0x80)   /* not mid UTF-8 */
            p++;
        keep = (size_t)(end - p);
        memcpy(buf, "...", len > 4 ? 3 : 0);
        memcpy(buf + (len > 4 ? 3 : 0), p, keep);
        buf[(len > 4 ? 3 : 0) + keep] = '\0';
    } else {
        memcpy(buf, p, keep);
        buf[keep] = '\0';
    }
out:
    forms_free(forms);
    free(red);
    if (raw) {
        explicit_bzero(raw, n);      /* it held the secrets in clear */
        free(raw);
    }
    close(fd);
    return rc;
}

/* The secret arguments of spec as a NULL-terminated list; caller frees the array. */
static const char **secret_list(const tqu_child_spec *spec)
{
    size_t n = 0, k = 0, na = vec_len(spec->argv);
    const char **v;

    for (size_t i = 0; i < na && i < TQU_CHILD_SECRET_MAX; i++)
        n += !!(spec->secret_args & TQU_CHILD_SECRET_ARG(i));
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < na && i < TQU_CHILD_SECRET_MAX; i++)
        if (spec->secret_args & TQU_CHILD_SECRET_ARG(i))
            v[k++] = spec->argv[i];
    return v;
}

/* ================================================ A: run to completion */

#define MAX_DURATION_MS (400LL * 24 * 3600 * 1000)   /* longer means "no limit" anyway */

static long grace_of(const tqu_child_spec *spec)
{
    if (spec->grace_ms <= 0)
        return TQU_CHILD_GRACE_MS;
    return spec->grace_ms > MAX_DURATION_MS ? (long)MAX_DURATION_MS : spec->grace_ms;
}

/* timeout_ms, 0 for none */
static long timeout_of(const tqu_child_spec *spec)
{
    if (spec->timeout_ms <= 0 || spec->timeout_ms > MAX_DURATION_MS)
        return 0;
    return spec->timeout_ms;
}

int tqu_child_run(const tqu_child_spec *spec, tqu_child_result *res)
{
    plan p;
    exec_fail f;
    watch w;
    exec_plan x;
    const char **secrets = NULL;
    int errp[2] = { -1, -1 }, rc, exec_failed;
    long long t0;
    ssize_t got;
    pid_t pid;

    if (!res)
        return TQU_CHILD_EINVAL;
    memset(res, 0, sizeof(*res));
    res->exit_code = -1;
    rc = prepare(spec, &p, res->error, sizeof(res->error));
    if (rc)
        return rc;
    secrets = secret_list(spec);
    if (!secrets) {
        rc = set_msg(res->error, sizeof(res->error), TQU_CHILD_ENOMEM, "out of memory");
        goto out;
    }
    if (pipe2(errp, O_CLOEXEC) < 0 || (errp[0] = fd_high(errp[0])) < 0 ||
        (errp[1] = fd_high(errp[1])) < 0) {
        rc = set_msg(res->error, sizeof(res->error), TQU_CHILD_ESPAWN, "cannot run %s: "
                     "pipe: %s", p.word, strerror(errno));
        goto out;
    }
    x = (exec_plan){ p.exe, p.argv, p.envp, spec->cwd, p.devnull, p.logfd, -1, errp[1],
                     p.fd_max };
    t0 = mono_ms();
    pid = fork();
    if (pid < 0) {
        rc = set_msg(res->error, sizeof(res->error), TQU_CHILD_ESPAWN, "cannot run %s: "
                     "fork: %s", p.word, strerror(errno));
        goto out;
    }
    if (pid == 0)
        exec_child(&x);
    setpgid(pid, pid);       /* as the child does: no window for kill(-pid) to miss */
    res->pid = pid;
    close(errp[1]);
    errp[1] = -1;
    got = read_full(errp[0], &f, sizeof(f));   /* EOF once it has exec'd */

    memset(&w, 0, sizeof(w));
    w.pid = pid;
    exec_failed = got == (ssize_t)sizeof(f);
    w.pidfd = !exec_failed ? pidfd_of(pid) : -1;
    w.deadline = !exec_failed && timeout_of(spec) ? t0 + timeout_of(spec) : 0;
    w.grace_ms = grace_of(spec);
    w.cancel = !exec_failed ? spec->cancel : NULL;
    w.tick_ms = CANCEL_CHECK_MS;
    watch_run(&w);
    if (w.pidfd >= 0)
        close(w.pidfd);
    res->duration = (double)(mono_ms() - t0) / 1000.0;
    res->timed_out = w.timed_out;
    res->cancelled = w.cancelled;
    if (w.have_status && WIFEXITED(w.status)) {
        res->exited = 1;
        res->exit_code = WEXITSTATUS(w.status);
    } else if (w.have_status && WIFSIGNALED(w.status)) {
        res->signal = WTERMSIG(w.status);
    }
    if (exec_failed) {
        res->exited = 1;           /* as a shell reports it, whatever the status says */
        res->exit_code = 127;
        res->signal = 0;
        rc = set_msg(res->error, sizeof(res->error), TQU_CHILD_ESPAWN, "cannot run %s: %s%s%s: "
                     "%s", p.word, stage_text(f.stage), f.stage == STAGE_CHDIR ? " " : "",
                     f.stage == STAGE_CHDIR ? spec->cwd : "", strerror(f.err));
        goto out;
    }
    if (!w.have_status)
        set_msg(res->error, sizeof(res->error), TQU_CHILD_OK, "%s: exit status unavailable "
                "(reaped elsewhere: is SIGCHLD ignored?)", p.word);
    if (spec->log_path)
        tqu_child_tail(spec->log_path, p.log_offset, spec->tail_lines, secrets, res->tail,
                       sizeof(res->tail));
out:
    for (int i = 0; i < 2; i++)
        if (errp[i] >= 0)
            close(errp[i]);
    free(secrets);
    plan_release(&p);
    return rc;
}

/* ================================================ B: detached supervisor */

#define F_LAUNCH "launch"
#define F_PID "pid"
#define F_EXIT "exit"

/* The supervisor's report to the starting controller, over a pipe. */
enum { REP_OK = 0, REP_FORK, REP_PIDFILE, REP_PLAN, REP_EXEC };
typedef struct report {
    int stage;               /* REP_* */
    int err;
    exec_fail exec;          /* the command's exec failure, if any */
    pid_t sup, child;
} report;

/*
 * The supervisor is a fresh exec of our own binary (/proc/self/exe with
 * the hidden argument SUP_FLAG, caught by a constructor before main), not
 * a fork that keeps the controller's heap (its token, keys, caches) for
 * the hours update.sh runs. Its arguments and environment hold nothing;
 * everything it needs comes on fixed descriptors, the plan (with the
 * command's argv, password included) over a pipe, wiped once the command
 * has been exec'd.
 */
#define SUP_FLAG "--tqu-internal-supervisor"
enum { SUP_FD_PLAN = 3, SUP_FD_LOG, SUP_FD_DIR, SUP_FD_REPORT, SUP_FD_EXIT, SUP_FD_SELF, SUP_NFD };
#define SUP_MAGIC 0x54515553u               /* "TQUS" */
#define PLAN_CAP ((size_t)1024 * 1024)      /* largest plan (argv + environment) */

/* The plan's header; then NUL-terminated strings: exe, cwd, argv[argc], envp[envc]. */
typedef struct sup_hdr {
    uint32_t magic, size;                   /* size: the whole plan, header included */
    int64_t timeout_ms, grace_ms, delay_ms;
    uint32_t argc, envc, has_cwd;
    char boot_id[64];
} sup_hdr;

/* The exit status is written in place into a file reserved (full size) at launch,
   then renamed to "exit": a disk filled meanwhile cannot lose it. The starter and
   then the supervisor hold an flock on it: held without a pid file means Starting. */
#define F_EXIT_RESERVED "exit.reserved"
#define EXIT_RESERVE_SIZE 4096

int tqu__child_supervisor_delay_ms;

typedef struct sup_plan {
    exec_plan x;             /* in_fd/out_fd: /dev/null, the log */
    int dirfd;               /* the state folder */
    int report_fd;
    int exit_fd;             /* the reserved exit file */
    long timeout_ms, grace_ms, delay_ms;
    char boot_id[64];
    char *wipe;              /* the plan (it holds the secret arguments) */
    size_t wipe_len;
} sup_plan;

static volatile sig_atomic_t sup_cancel;

static void on_cancel(int sig)
{
    (void)sig;
    sup_cancel = 1;
}

/*
 * Overwrite the reserved exit file in place with text (padded with spaces to
 * its reserved size: no block to allocate), then rename it to "exit". The
 * text stays readable under the reserved name if the rename fails.
 */
static void write_exit(int dirfd, int fd, const char *text, size_t n)
{
    char pad[EXIT_RESERVE_SIZE];

    if (n > sizeof(pad))
        n = sizeof(pad);
    memset(pad, ' ', sizeof(pad));
    memcpy(pad, text, n);
    pad[sizeof(pad) - 1] = '\n';
    for (size_t off = 0; off < sizeof(pad);) {
        ssize_t w = pwrite(fd, pad + off, sizeof(pad) - off, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    fsync(fd);
    if (renameat(dirfd, F_EXIT_RESERVED, dirfd, F_EXIT) == 0)
        fsync(dirfd);
}

/* The supervisor, in its own process (a fresh exec, see SUP_FLAG). */
__attribute__((noreturn)) static void supervisor_main(sup_plan *s)
{
    struct sigaction sa;
    sigset_t none;
    report rep;
    exec_plan x = s->x;
    unsigned long long sstart = 0, cstart = 0;
    int keep[5] = { s->x.in_fd, s->x.out_fd, s->dirfd, s->report_fd, s->exit_fd };
    int errp[2], gop[2], pidfd, e;
    char text[1024];
    sbuf b = { text, 0, sizeof(text) };
    long long t0;
    ssize_t got;
    watch w;
    pid_t child;

    memset(&rep, 0, sizeof(rep));
    /* signals: TERM/INT cancel the command, HUP/PIPE ignored (the starter may be gone) */
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    sa.sa_handler = on_cancel;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_NAME, "tqu-supervisor", 0, 0, 0);

    /* only what it needs: the controller's sockets must not live on here */
    close_except(keep, 5, s->x.fd_max);
    dup2(s->x.in_fd, 0);
    dup2(s->x.in_fd, 1);
    dup2(s->x.in_fd, 2);
    if (chdir("/") < 0) {
        /* harmless: it opens nothing by path */
    }
    rep.sup = getpid();
    proc_stat(0, &sstart, NULL);
    if (s->delay_ms > 0)
        sleep_ms(s->delay_ms);          /* tests: a slow start */

    if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(gop, O_CLOEXEC) < 0) {
        rep.stage = REP_FORK;
        rep.err = errno;
        goto report_fail;
    }
    x.go_fd = gop[0];
    x.err_fd = errp[1];
    child = _Fork();
    if (child < 0) {
        rep.stage = REP_FORK;
        rep.err = errno;
        goto report_fail;
    }
    if (child == 0)
        exec_child(&x);
    setpgid(child, child);
    close(gop[0]);
    close(errp[1]);
    close(s->x.out_fd);
    close(s->x.in_fd);
    rep.child = child;
    proc_stat(child, &cstart, NULL);
    pidfd = pidfd_of(child);

    sb_put(&b, "{\"bootId\":\"");
    sb_put(&b, s->boot_id);
    sb_put(&b, "\",\"supervisorPid\":");
    sb_num(&b, rep.sup);
    sb_put(&b, ",\"supervisorStart\":");
    sb_num(&b, (long long)sstart);
    sb_put(&b, ",\"childPid\":");
    sb_num(&b, child);
    sb_put(&b, ",\"childStart\":");
    sb_num(&b, (long long)cstart);
    sb_put(&b, "}\n");
    e = atomic_write_at(s->dirfd, ".pid.tmp", F_PID, text, b.len);
    if (e) {
        /* without a pid file nobody could find it: never let it run */
        int st;
        close(gop[1]);
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
            ;
        rep.stage = REP_PIDFILE;
        rep.err = e;
        goto report_fail;
    }
    t0 = mono_ms();
    write_all(gop[1], "g", 1);
    close(gop[1]);
    got = read_full(errp[0], &rep.exec, sizeof(rep.exec));   /* EOF: exec'd */
    close(errp[0]);
    if (got != (ssize_t)sizeof(rep.exec))
        memset(&rep.exec, 0, sizeof(rep.exec));
    write_all(s->report_fd, &rep, sizeof(rep));
    close(s->report_fd);
    /* the command has its argv: the secrets go from our memory */
    explicit_bzero(s->wipe, s->wipe_len);

    memset(&w, 0, sizeof(w));
    w.pid = child;
    w.pidfd = pidfd;
    w.deadline = s->timeout_ms > 0 && !rep.exec.stage ? t0 + s->timeout_ms : 0;
    w.grace_ms = s->grace_ms;
    w.sigcancel = &sup_cancel;
    w.tick_ms = SUPERVISOR_TICK_MS;
    watch_run(&w);

    b.len = 0;
    sb_put(&b, "{\"exitCode\":");
    sb_num(&b, rep.exec.stage ? 127
               : w.have_status && WIFEXITED(w.status) ? WEXITSTATUS(w.status) : -1);
    sb_put(&b, ",\"signal\":");
    sb_num(&b, !rep.exec.stage && w.have_status && WIFSIGNALED(w.status) ? WTERMSIG(w.status)
                                                                          : 0);
    sb_put(&b, ",\"timedOut\":");
    sb_put(&b, w.timed_out ? "true" : "false");
    sb_put(&b, ",\"cancelled\":");
    sb_put(&b, w.cancelled ? "true" : "false");
    sb_put(&b, ",\"execErrno\":");
    sb_num(&b, rep.exec.stage ? (rep.exec.err ? rep.exec.err : EINVAL) : 0);
    sb_put(&b, ",\"finishedAt\":\"");
    sb_time(&b, real_now());
    sb_put(&b, "\",\"durationMs\":");
    sb_num(&b, mono_ms() - t0);
    sb_put(&b, "}\n");
    write_exit(s->dirfd, s->exit_fd, text, b.len);
    _exit(0);

report_fail:
    explicit_bzero(s->wipe, s->wipe_len);
    write_all(s->report_fd, &rep, sizeof(rep));
    _exit(1);
}

/* The next NUL-terminated string of the plan, or NULL past its end. */
static char *plan_next(char **p, char *end)
{
    char *s = *p, *nul;

    if (s >= end || !(nul = memchr(s, '\0', (size_t)(end - s))))
        return NULL;
    *p = nul + 1;
    return s;
}

/* The supervisor process: read the plan from SUP_FD_PLAN and supervise. */
__attribute__((noreturn)) static void supervisor_entry(void)
{
    sup_hdr h;
    sup_plan s;
    report rep;
    struct rlimit rl;
    char *buf = NULL, *p, *end, **argv = NULL, **envp = NULL, *exe, *cwd;
    size_t n = 0;

    memset(&rep, 0, sizeof(rep));
    memset(&s, 0, sizeof(s));
    rep.stage = REP_PLAN;
    rep.err = EINVAL;
    if (read_full(SUP_FD_PLAN, &h, sizeof(h)) != (ssize_t)sizeof(h) || h.magic != SUP_MAGIC ||
        h.size <= sizeof(h) || h.size > PLAN_CAP || !h.argc || h.argc > PLAN_CAP / 2 ||
        h.envc > PLAN_CAP / 2)
        goto fail;
    n = h.size - sizeof(h);
    buf = malloc(n + 1);        /* one allocation: no stray copy of the secrets */
    argv = calloc(h.argc + 1, sizeof(*argv));
    envp = calloc(h.envc + 1, sizeof(*envp));
    if (!buf || !argv || !envp) {
        rep.err = ENOMEM;
        goto fail;
    }
    if (read_full(SUP_FD_PLAN, buf, n) != (ssize_t)n)
        goto fail;
    buf[n] = '\0';
    close(SUP_FD_PLAN);
    p = buf;
    end = buf + n;
    exe = plan_next(&p, end);
    cwd = plan_next(&p, end);
    for (uint32_t i = 0; i < h.argc; i++)
        if (!(argv[i] = plan_next(&p, end)))
            goto fail;
    for (uint32_t i = 0; i < h.envc; i++)
        if (!(envp[i] = plan_next(&p, end)))
            goto fail;
    if (!exe || !cwd)
        goto fail;
    s.x.exe = exe;
    s.x.argv = argv;
    s.x.envp = envp;
    s.x.cwd = h.has_cwd ? cwd : NULL;
    s.x.in_fd = fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    s.x.out_fd = SUP_FD_LOG;
    s.x.go_fd = s.x.err_fd = -1;
    s.x.fd_max = 1u << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < s.x.fd_max)
        s.x.fd_max = (unsigned)rl.rlim_cur;
    if (s.x.in_fd < 0) {
        rep.stage = REP_FORK;
        rep.err = errno;
        goto fail;
    }
    /* none of ours reaches the command */
    for (int fd = SUP_FD_LOG; fd < SUP_FD_SELF; fd++)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    s.dirfd = SUP_FD_DIR;
    s.report_fd = SUP_FD_REPORT;
    s.exit_fd = SUP_FD_EXIT;
    s.timeout_ms = (long)h.timeout_ms;
    s.grace_ms = (long)h.grace_ms;
    s.delay_ms = (long)h.delay_ms;
    memcpy(s.boot_id, h.boot_id, sizeof(s.boot_id));
    s.boot_id[sizeof(s.boot_id) - 1] = '\0';
    s.wipe = buf;
    s.wipe_len = n;
    supervisor_main(&s);
fail:
    if (buf)
        explicit_bzero(buf, n);
    write_all(SUP_FD_REPORT, &rep, sizeof(rep));
    _exit(1);
}

/* Before main: the hidden supervisor mode of whatever binary links us. */
__attribute__((constructor)) static void supervisor_hook(int argc, char **argv)
{
    if (argc == 2 && argv && argv[1] && !strcmp(argv[1], SUP_FLAG))
        supervisor_entry();
}

/*
 * In the forked grandchild of the starter: the descriptors to their fixed
 * numbers (from[] in SUP_FD_PLAN.. order, SUP_FD_SELF last), /dev/null as
 * 0-2, nothing else, then exec ourselves. Async-signal-safe only.
 */
__attribute__((noreturn)) static void supervisor_exec(const int *from, int devnull,
                                                      unsigned fd_max)
{
    enum { N = SUP_NFD - SUP_FD_PLAN };
    char *const argv[] = { "tqu-supervisor", SUP_FLAG, NULL };
    char *const envp[] = { NULL };
    char self[32];
    sbuf b = { self, 0, sizeof(self) };
    int tmp[N + 1];
    report rep;

    setpgid(0, 0);
    reset_signals();
    for (int i = 0; i < N; i++)
        tmp[i] = fcntl(from[i], F_DUPFD_CLOEXEC, SUP_NFD + 8);
    tmp[N] = fcntl(devnull, F_DUPFD_CLOEXEC, SUP_NFD + 8);
    for (int i = 0; i < N + 1; i++)
        if (tmp[i] < 0)
            _exit(1);
    for (int i = 0; i < 3; i++)
        dup2(tmp[N], i);
    for (int i = 0; i < N; i++)
        if (dup3(tmp[i], SUP_FD_PLAN + i, SUP_FD_PLAN + i == SUP_FD_SELF ? O_CLOEXEC : 0) < 0)
            _exit(1);
    close_fds(SUP_NFD, ~0U, fd_max);
    syscall(SYS_execveat, SUP_FD_SELF, "", argv, envp, AT_EMPTY_PATH);
    sb_put(&b, "/proc/self/fd/");              /* kernels or tools without execveat */
    sb_num(&b, SUP_FD_SELF);
    execve(self, argv, envp);
    memset(&rep, 0, sizeof(rep));
    rep.stage = REP_EXEC;
    rep.err = errno;
    write_all(SUP_FD_REPORT, &rep, sizeof(rep));
    _exit(1);
}

/*
 * The plan for the supervisor (see sup_hdr) in one allocation; the caller
 * wipes and frees it. NULL on ENOMEM or E2BIG (errno).
 */
static char *plan_pack(const plan *p, const tqu_child_spec *spec, const char *boot_id,
                       size_t *len)
{
    sup_hdr h;
    size_t n = sizeof(h), argc = vec_len(p->argv), envc = vec_len(p->envp), off;
    const char *cwd = spec->cwd ? spec->cwd : "";
    char *buf;

    n += strlen(p->exe) + 1 + strlen(cwd) + 1;
    for (size_t i = 0; i < argc; i++)
        n += strlen(p->argv[i]) + 1;
    for (size_t i = 0; i < envc; i++)
        n += strlen(p->envp[i]) + 1;
    if (n > PLAN_CAP) {
        errno = E2BIG;
        return NULL;
    }
    buf = malloc(n);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    memset(&h, 0, sizeof(h));
    h.magic = SUP_MAGIC;
    h.size = (uint32_t)n;
    h.timeout_ms = timeout_of(spec);
    h.grace_ms = grace_of(spec);
    h.delay_ms = tqu__child_supervisor_delay_ms;
    h.argc = (uint32_t)argc;
    h.envc = (uint32_t)envc;
    h.has_cwd = !!spec->cwd;
    snprintf(h.boot_id, sizeof(h.boot_id), "%s", boot_id);
    memcpy(buf, &h, sizeof(h));
    off = sizeof(h);
#define PUT(str) do { size_t l_ = strlen(str) + 1; memcpy(buf + off, (str), l_); off += l_; } while (0)
    PUT(p->exe);
    PUT(cwd);
    for (size_t i = 0; i < argc; i++)
        PUT(p->argv[i]);
    for (size_t i = 0; i < envc; i++)
        PUT(p->envp[i]);
#undef PUT
    *len = n;
    return buf;
}

/*
 * The plan into a pipe, all of it before the supervisor exists (the pipe
 * grown to hold it): returns the read end, or -1 with errno.
 */
static int plan_pipe(const char *buf, size_t len)
{
    int pp[2] = { -1, -1 }, e;

    if (pipe2(pp, O_CLOEXEC) < 0)
        return -1;
    if ((pp[0] = fd_high(pp[0])) < 0 || (pp[1] = fd_high(pp[1])) < 0)
        goto fail;
    if (len > 65536 && fcntl(pp[1], F_SETPIPE_SZ, (int)len) < 0)
        goto fail;
    if (fcntl(pp[1], F_SETFL, O_NONBLOCK) < 0)
        goto fail;
    e = write_all(pp[1], buf, len);
    if (e) {
        errno = e == EAGAIN ? E2BIG : e;
        goto fail;
    }
    close(pp[1]);
    return pp[0];
fail:
    e = errno;
    if (pp[0] >= 0)
        close(pp[0]);
    if (pp[1] >= 0)
        close(pp[1]);
    errno = e;
    return -1;
}

/* The kernel's boot id (36 characters), or "" when unreadable. */
static void read_boot_id(char *out, size_t len)
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read_full(fd, out, len - 1) : -1;

    if (fd >= 0)
        close(fd);
    if (n < 0)
        n = 0;
    out[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f') ||
              out[i] == '-')) {
            out[i] = '\0';
            break;
        }
}

/* The launch marker's JSON; caller frees. NULL on ENOMEM. */
static char *marker_json(const tqu_child_spec *spec, const plan *p, const char *started_at,
                         const char *cwd, const char *boot_id)
{
    cJSON *o = cJSON_CreateObject(), *a = NULL;
    char *cmd = NULL, *out = NULL;
    size_t n = tqu_child_format_argv(spec, NULL, 0);
    size_t np = p->nlead;

    if (!o || !(cmd = malloc(n + 1)))
        goto out;
    tqu_child_format_argv(spec, cmd, n + 1);
    if (!cJSON_AddNumberToObject(o, "version", 1) ||
        !cJSON_AddStringToObject(o, "startedAt", started_at) ||
        !cJSON_AddStringToObject(o, "command", cmd) ||
        !(a = cJSON_AddArrayToObject(o, "argv")))
        goto out;
    for (size_t i = 0; p->argv[i]; i++) {
        cJSON *s = cJSON_CreateString(i < np ? p->argv[i] : shown_arg(spec, i - np));
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            goto out;
        }
    }
    if (!cJSON_AddStringToObject(o, "cwd", cwd) ||
        !cJSON_AddStringToObject(o, "log", spec->log_path ? spec->log_path : "") ||
        !cJSON_AddNumberToObject(o, "logOffset", (double)p->log_offset) ||
        !cJSON_AddNumberToObject(o, "timeoutMs", (double)timeout_of(spec)) ||
        !cJSON_AddNumberToObject(o, "graceMs", (double)grace_of(spec)) ||
        !cJSON_AddNumberToObject(o, "launcherPid", (double)getpid()) ||
        !cJSON_AddStringToObject(o, "bootId", boot_id) ||
        !cJSON_AddNumberToObject(o, "startedBootMs", (double)boot_ms()))
        goto out;
    out = cJSON_Print(o);
out:
    free(cmd);
    cJSON_Delete(o);
    return out;
}

/*
 * Create dirfd/launch with data, failing with EEXIST when it exists
 * (temporary file, fsync, rename without replacing, fsync of the folder).
 * 0 or an errno value.
 */
static int write_marker(int dirfd, const char *data)
{
    char tmp[64];
    int fd, e;

    snprintf(tmp, sizeof(tmp), ".launch.%ld.%ld.tmp", (long)getpid(), (long)gettid());
    unlinkat(dirfd, tmp, 0);     /* a leftover of a dead process that had our pid and tid */
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno == EEXIST ? EBUSY : errno;   /* EEXIST is kept for the marker itself */
    e = write_all(fd, data, strlen(data));
    if (!e && fsync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && !e && errno != EINTR)
        e = errno;
    if (!e && renameat2(dirfd, tmp, dirfd, F_LAUNCH, RENAME_NOREPLACE) < 0) {
        e = errno;
        if (e == EINVAL || e == ENOSYS) {   /* no RENAME_NOREPLACE here: link is exclusive too */
            e = linkat(dirfd, tmp, dirfd, F_LAUNCH, 0) < 0 ? errno : 0;
        }
    }
    unlinkat(dirfd, tmp, 0);
    if (!e && fsync(dirfd) < 0)
        e = errno;
    return e;
}

static void unmark(int dirfd)
{
    unlinkat(dirfd, F_LAUNCH, 0);
    unlinkat(dirfd, F_EXIT_RESERVED, 0);
    fsync(dirfd);
}

static void status_reset(tqu_detached_status *st)
{
    memset(st, 0, sizeof(*st));
    st->exit_code = -1;
}

/*
 * The reserved exit file opened and locked (flock, exclusive): *fd on
 * success. EBUSY when another starter or a supervisor holds it. 0 or an
 * errno value.
 */
static int lock_exit(int dirfd, int *fd)
{
    int f, e;

    *fd = -1;
    f = fd_high(openat(dirfd, F_EXIT_RESERVED, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (f < 0)
        return errno;
    if (flock(f, LOCK_EX | LOCK_NB) < 0) {
        e = errno == EWOULDBLOCK ? EBUSY : errno;
        close(f);
        return e;
    }
    *fd = f;
    return 0;
}

/* The locked reserved exit file at its full size (blank). 0 or an errno value. */
static int reserve_exit(int dirfd, int f)
{
    char blank[EXIT_RESERVE_SIZE];
    int e = 0;

    memset(blank, ' ', sizeof(blank));
    blank[sizeof(blank) - 1] = '\n';
    if (ftruncate(f, 0) < 0)
        e = errno;
    if (!e)
        e = write_all(f, blank, sizeof(blank));
    if (!e && fsync(f) < 0)
        e = errno;
    if (!e && fsync(dirfd) < 0)
        e = errno;
    if (e)
        unlinkat(dirfd, F_EXIT_RESERVED, 0);
    return e;
}

int tqu_detached_start(const tqu_child_spec *spec, const char *state_dir,
                       tqu_detached_status *st)
{
    plan p;
    report rep;
    struct stat sb;
    const char **secrets = NULL;
    char *marker = NULL, *pl = NULL, started[32], cwd[TQU_CHILD_PATH_MAX], boot_id[64];
    sbuf tb = { started, 0, sizeof(started) };
    int dirfd = -1, repp[2] = { -1, -1 }, planfd = -1, selffd = -1, exitfd = -1;
    int rc = TQU_CHILD_OK, e, ist;
    size_t pln = 0;
    long long deadline;
    ssize_t got = 0;
    pid_t mid;

    memset(&p, 0, sizeof(p));
    p.devnull = p.logfd = -1;
    if (!st)
        return TQU_CHILD_EINVAL;
    status_reset(st);
    if (!state_dir || !*state_dir || strlen(state_dir) >= TQU_CHILD_PATH_MAX)
        return set_msg(st->message, sizeof(st->message), TQU_CHILD_EINVAL,
                       "no usable state folder");
    if (!spec || !spec->argv)
        return set_msg(st->message, sizeof(st->message), TQU_CHILD_EINVAL, "no command to run");
    /* the files must mean the same to whoever polls, from wherever */
    if ((spec->cwd && spec->cwd[0] != '/') || (spec->log_path && spec->log_path[0] != '/'))
        return set_msg(st->message, sizeof(st->message), TQU_CHILD_EINVAL, "detached: the "
                       "working directory and log file must be absolute paths");
    secrets = secret_list(spec);
    if (!secrets)
        return set_msg(st->message, sizeof(st->message), TQU_CHILD_ENOMEM, "out of memory");
    dirfd = fd_high(open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dirfd < 0) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "state folder %s: %s",
                     state_dir, strerror(errno));
        goto out;
    }
    /* 1. at most once */
    if (fstatat(dirfd, F_LAUNCH, &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        goto launched;
    /* leftovers of another run without its marker: refuse rather than mix them up */
    if (fstatat(dirfd, F_PID, &sb, AT_SYMLINK_NOFOLLOW) == 0 ||
        fstatat(dirfd, F_EXIT, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "state folder %s holds "
                     "%s/%s files but no %s marker: not starting (use a fresh folder)",
                     state_dir, F_PID, F_EXIT, F_LAUNCH);
        goto out;
    }
    /* 2. checks; everything allocated before the marker */
    rc = prepare(spec, &p, st->message, sizeof(st->message));
    if (rc)
        goto out;
    if (spec->cwd)
        snprintf(cwd, sizeof(cwd), "%s", spec->cwd);
    else if (!getcwd(cwd, sizeof(cwd)))
        cwd[0] = '\0';
    sb_time(&tb, real_now());
    read_boot_id(boot_id, sizeof(boot_id));
    marker = marker_json(spec, &p, started, cwd, boot_id);
    if (!marker) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ENOMEM, "out of memory");
        goto out;
    }
    selffd = fd_high(open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
    if (selffd < 0) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "cannot run %s: "
                     "/proc/self/exe (our own binary, for the supervisor): %s", p.word,
                     strerror(errno));
        goto out;
    }
    pl = plan_pack(&p, spec, boot_id, &pln);
    if (!pl) {
        rc = set_msg(st->message, sizeof(st->message), errno == ENOMEM ? TQU_CHILD_ENOMEM
                                                                       : TQU_CHILD_EINVAL,
                     "cannot run %s: %s", p.word, errno == ENOMEM ? "out of memory"
                     : "its arguments and environment are too long");
        goto out;
    }
    planfd = plan_pipe(pl, pln);
    explicit_bzero(pl, pln);
    free(pl);
    pl = NULL;
    if (planfd < 0) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "cannot run %s: "
                     "pipe: %s", p.word, strerror(errno));
        goto out;
    }
    if (pipe2(repp, O_CLOEXEC) < 0 || (repp[0] = fd_high(repp[0])) < 0 ||
        (repp[1] = fd_high(repp[1])) < 0) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "pipe: %s",
                     strerror(errno));
        goto out;
    }

    /* 3. the exit file reserved and locked (one starter at a time), the marker */
    for (long long until = mono_ms() + 2000;;) {
        e = lock_exit(dirfd, &exitfd);
        if (e != EBUSY)
            break;
        /* another starter is between its lock and its marker, or a supervisor runs */
        if (fstatat(dirfd, F_LAUNCH, &sb, AT_SYMLINK_NOFOLLOW) == 0 || mono_ms() > until)
            goto launched;
        sleep_ms(10);
    }
    if (e) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "%s/%s: %s "
                     "(nothing started)", state_dir, F_EXIT_RESERVED, strerror(e));
        goto out;
    }
    /* someone else was quicker (checked before the blank overwrites what a
       supervisor of theirs may have written there) */
    if (fstatat(dirfd, F_LAUNCH, &sb, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        goto launched;
    e = reserve_exit(dirfd, exitfd);
    if (e) {
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "%s/%s: %s "
                     "(nothing started)", state_dir, F_EXIT_RESERVED, strerror(e));
        goto out;
    }
    e = write_marker(dirfd, marker);
    if (e == EEXIST)
        goto launched;
    if (e) {
        unlinkat(dirfd, F_EXIT_RESERVED, 0);
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "%s/%s: %s",
                     state_dir, F_LAUNCH, strerror(e));
        goto out;
    }
    st->state = TQU_DETACHED_LOST;       /* from here on a marker exists */

    /* 4. the supervisor, as a grandchild in a session of its own, exec'd afresh */
    mid = fork();
    if (mid < 0) {
        e = errno;
        unmark(dirfd);
        st->state = TQU_DETACHED_NOT_LAUNCHED;
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "cannot run %s: "
                     "fork: %s", p.word, strerror(e));
        goto out;
    }
    if (mid == 0) {
        const int from[SUP_NFD - SUP_FD_PLAN] = { planfd, p.logfd, dirfd, repp[1], exitfd,
                                                  selffd };
        pid_t sup;
        setsid();
        sup = _Fork();
        if (sup == 0)
            supervisor_exec(from, p.devnull, p.fd_max);
        _exit(sup < 0 ? 1 : 0);
    }
    close(repp[1]);
    repp[1] = -1;
    while (waitpid(mid, &ist, 0) < 0 && errno == EINTR)
        ;
    close(exitfd);                        /* the supervisor holds the lock from here */
    exitfd = -1;
    if (!WIFEXITED(ist) || WEXITSTATUS(ist) != 0) {
        /* the second fork failed: nothing runs */
        unmark(dirfd);
        st->state = TQU_DETACHED_NOT_LAUNCHED;
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "cannot run %s: "
                     "could not start its supervisor", p.word);
        goto out;
    }
    memset(&rep, 0, sizeof(rep));
    deadline = mono_ms() + REPORT_WAIT_MS;
    for (;;) {
        struct pollfd pf = { repp[0], POLLIN, 0 };
        long long left = deadline - mono_ms();
        int r;
        if (left <= 0)
            break;
        r = poll(&pf, 1, (int)left);
        if (r > 0) {
            got = read_full(repp[0], &rep, sizeof(rep));
            break;
        }
        if (r < 0 && errno != EINTR)
            break;
    }
    if (got != (ssize_t)sizeof(rep)) {
        /* no word from it: it may or may not run; the folder tells, the marker stays */
        tqu_detached_poll(state_dir, secrets, 0, st);
        if (st->state == TQU_DETACHED_NOT_LAUNCHED)
            st->state = TQU_DETACHED_LOST;
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "%s: its supervisor "
                     "did not report within %d s (state now %s): look at %s before anything else",
                     p.word, REPORT_WAIT_MS / 1000, tqu_detached_state_name(st->state), state_dir);
        goto out;
    }
    if (rep.stage != REP_OK) {
        /* it never exec'd and never will: undo the marker */
        unmark(dirfd);
        st->state = TQU_DETACHED_NOT_LAUNCHED;
        if (rep.stage == REP_PIDFILE)
            rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "%s/%s: %s "
                         "(nothing started)", state_dir, F_PID, strerror(rep.err));
        else
            rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "cannot run %s: "
                         "%s: %s", p.word, rep.stage == REP_FORK ? "fork"
                         : rep.stage == REP_EXEC ? "exec of its supervisor"
                         : "its supervisor could not read its plan", strerror(rep.err));
        goto out;
    }
    snprintf(st->started_at, sizeof(st->started_at), "%s", started);
    tqu_child_format_argv(spec, st->command, sizeof(st->command));
    snprintf(st->cwd, sizeof(st->cwd), "%s", cwd);
    snprintf(st->log_path, sizeof(st->log_path), "%s", spec->log_path ? spec->log_path : "");
    st->supervisor_pid = rep.sup;
    st->child_pid = rep.child;
    if (rep.exec.stage) {
        st->state = TQU_DETACHED_FINISHED;
        st->exit_code = 127;
        st->exec_errno = rep.exec.err;
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ESPAWN, "cannot run %s: %s%s%s: "
                     "%s", p.word, stage_text(rep.exec.stage),
                     rep.exec.stage == STAGE_CHDIR ? " " : "",
                     rep.exec.stage == STAGE_CHDIR ? spec->cwd : "", strerror(rep.exec.err));
        goto out;
    }
    st->state = TQU_DETACHED_RUNNING;
    st->supervisor_alive = st->child_alive = 1;
    goto out;
launched:
    if (exitfd >= 0) {
        close(exitfd);
        exitfd = -1;
    }
    tqu_detached_poll(state_dir, secrets, 0, st);
    if (st->state == TQU_DETACHED_NOT_LAUNCHED)   /* unreadable, or gone since: still refuse */
        st->state = TQU_DETACHED_LOST;
    {
        char known[TQU_CHILD_MSG_MAX];
        snprintf(known, sizeof(known), "%s", st->message);
        rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ELAUNCHED, "%s/%s exists: "
                     "already launched (%s%s%s); a command is never started twice from one "
                     "folder", state_dir, F_LAUNCH, tqu_detached_state_name(st->state),
                     *known ? ": " : "", known);
    }
out:
    free(secrets);
    if (exitfd >= 0)
        close(exitfd);
    if (planfd >= 0)
        close(planfd);
    if (selffd >= 0)
        close(selffd);
    if (repp[0] >= 0)
        close(repp[0]);
    if (repp[1] >= 0)
        close(repp[1]);
    if (dirfd >= 0)
        close(dirfd);
    cJSON_free(marker);
    plan_release(&p);
    return rc;
}

/* ======================================================= B: reading state */

/*
 * dirfd/name into a NUL-terminated buffer (caller frees). 0, or an errno
 * value (ENOENT when absent, EFBIG over STATE_FILE_CAP).
 */
static int read_state(int dirfd, const char *name, char **out)
{
    char *buf = NULL;
    struct stat sb;
    ssize_t got;
    int fd, e = 0;

    *out = NULL;
    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno;
    if (fstat(fd, &sb) < 0) {
        e = errno;
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || (size_t)sb.st_size > STATE_FILE_CAP) {
        e = S_ISREG(sb.st_mode) ? EFBIG : EINVAL;
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        e = ENOMEM;
        goto out;
    }
    got = read_full(fd, buf, (size_t)sb.st_size);
    if (got < 0) {
        e = errno;
        goto out;
    }
    buf[got] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return e;
}

/* Read and parse dirfd/name; 0, ENOENT, ENOMEM, EBADMSG (not a JSON object), or errno. */
static int read_json(int dirfd, const char *name, cJSON **out)
{
    char *text;
    int e = read_state(dirfd, name, &text);

    *out = NULL;
    if (e)
        return e;
    *out = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return EBADMSG;    /* cJSON has no distinct ENOMEM; files are written whole */
    }
    return 0;
}

static double jnum(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* An integer field in [lo, hi], else def (no undefined double conversions). */
static long long jint(const cJSON *o, const char *k, long long lo, long long hi, long long def)
{
    double d = jnum(o, k, (double)def);
    if (!(d >= (double)lo && d <= (double)hi))
        return def;
    return (long long)d;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

static int jbool(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* "2026-12-05T14:00:00Z" (RFC 3339) to unix seconds, or -1. */
static long long parse_time(const char *s)
{
    time_t t;

    return k8s_time_parse(s, &t) == K8S_OK ? (long long)t : -1;
}

/* Whether pid is alive (not a zombie) with this start time. */
static int alive_as(pid_t pid, unsigned long long start)
{
    unsigned long long now_start;
    char state;

    if (pid <= 0 || proc_stat(pid, &now_start, &state) < 0)
        return 0;
    return now_start == start && state != 'Z' && state != 'X' && state != 'x';
}

/* What poll and kill learn from the pid file. */
typedef struct pid_info {
    int present;
    pid_t sup, child;
    int sup_alive, child_alive;
} pid_info;

static int read_pids(int dirfd, pid_info *pi)
{
    cJSON *j;
    char boot[64];
    const char *rb;
    int e;

    memset(pi, 0, sizeof(*pi));
    e = read_json(dirfd, F_PID, &j);
    if (e)
        return e;
    pi->present = 1;
    pi->sup = (pid_t)jint(j, "supervisorPid", 0, INT_MAX, 0);
    pi->child = (pid_t)jint(j, "childPid", 0, INT_MAX, 0);
    read_boot_id(boot, sizeof(boot));
    rb = jstr(j, "bootId");
    if (!*boot || !*rb || !strcmp(boot, rb)) {    /* after a reboot nothing is ours */
        long long ss = jint(j, "supervisorStart", 0, LLONG_MAX / 2, -1);
        long long cs = jint(j, "childStart", 0, LLONG_MAX / 2, -1);
        pi->sup_alive = ss >= 0 && alive_as(pi->sup, (unsigned long long)ss);
        pi->child_alive = cs >= 0 && alive_as(pi->child, (unsigned long long)cs);
    }
    cJSON_Delete(j);
    return 0;
}

/* Fill st from an exit file. */
static void fill_exit(tqu_detached_status *st, const cJSON *x)
{
    st->state = TQU_DETACHED_FINISHED;
    st->exit_code = (int)jint(x, "exitCode", -1, 255, -1);
    st->signal = (int)jint(x, "signal", 0, 255, 0);
    st->timed_out = jbool(x, "timedOut");
    st->cancelled = jbool(x, "cancelled");
    st->exec_errno = (int)jint(x, "execErrno", 0, INT_MAX, 0);
    snprintf(st->finished_at, sizeof(st->finished_at), "%s", jstr(x, "finishedAt"));
    st->elapsed = (double)jint(x, "durationMs", 0, MAX_DURATION_MS, 0) / 1000.0;
}

/*
 * Seconds since the launch: from the boot clock recorded in the marker
 * when this is still the same boot (a wall clock stepped back or forth
 * changes nothing), else from its wall-clock start; never negative.
 */
static double elapsed_of(const cJSON *launch, const char *started_at)
{
    char boot[64];
    long long sb = jint(launch, "startedBootMs", 0, LLONG_MAX / 2, -1), d = 0, t;

    read_boot_id(boot, sizeof(boot));
    if (sb >= 0 && *boot && !strcmp(boot, jstr(launch, "bootId"))) {
        d = boot_ms() - sb;
    } else if ((t = parse_time(started_at)) >= 0) {
        d = (real_now() - t) * 1000;
    }
    return d > 0 ? (double)d / 1000.0 : 0;
}

/* The exit file, or the reserved one once written (its rename failed); ENOENT when neither. */
static int read_exit(int dirfd, cJSON **x)
{
    int e = read_json(dirfd, F_EXIT, x);

    if (e != ENOENT)
        return e;
    e = read_json(dirfd, F_EXIT_RESERVED, x);
    if (e == EBADMSG || (!e && !cJSON_GetObjectItemCaseSensitive(*x, "exitCode"))) {
        cJSON_Delete(*x);      /* still blank: nothing recorded yet */
        *x = NULL;
        return ENOENT;
    }
    return e;
}

/* Whether a starter or a supervisor holds the reserved exit file's lock. */
static int reserved_locked(int dirfd)
{
    int fd = openat(dirfd, F_EXIT_RESERVED, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), held = 0;

    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_SH | LOCK_NB) < 0)
        held = errno == EWOULDBLOCK;
    close(fd);
    return held;
}

int tqu_detached_poll(const char *state_dir, const char *const *redact, int tail_lines,
                      tqu_detached_status *st)
{
    cJSON *launch = NULL, *x = NULL;
    pid_info pi;
    struct stat sb;
    int dirfd, e, rc = TQU_CHILD_OK;

    if (!st)
        return TQU_CHILD_EINVAL;
    status_reset(st);
    if (!state_dir || !*state_dir)
        return set_msg(st->message, sizeof(st->message), TQU_CHILD_EINVAL, "no state folder");
    dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return set_msg(st->message, sizeof(st->message), TQU_CHILD_ESTATE, "state folder %s: %s",
                       state_dir, strerror(errno));
    if (fstatat(dirfd, F_LAUNCH, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        goto out;                           /* NOT_LAUNCHED */
    st->state = TQU_DETACHED_LOST;          /* a marker exists (or cannot be looked at) */
    e = read_json(dirfd, F_LAUNCH, &launch);
    if (e) {
        rc = set_msg(st->message, sizeof(st->message), e == ENOMEM ? TQU_CHILD_ENOMEM
                                                                    : TQU_CHILD_ESTATE,
                     "%s/%s: %s", state_dir, F_LAUNCH,
                     e == EBADMSG ? "not a launch marker (malformed JSON)" : strerror(e));
        goto out;
    }
    snprintf(st->command, sizeof(st->command), "%s", jstr(launch, "command"));
    snprintf(st->cwd, sizeof(st->cwd), "%s", jstr(launch, "cwd"));
    snprintf(st->log_path, sizeof(st->log_path), "%s", jstr(launch, "log"));
    snprintf(st->started_at, sizeof(st->started_at), "%s", jstr(launch, "startedAt"));
    st->elapsed = elapsed_of(launch, st->started_at);

    e = read_exit(dirfd, &x);
    if (e == ENOENT) {
        e = read_pids(dirfd, &pi);
        if (e == ENOENT && reserved_locked(dirfd)) {
            /* between the marker and the pid file: slow is not failed */
            st->state = TQU_DETACHED_STARTING;
            set_msg(st->message, sizeof(st->message), TQU_CHILD_OK, "launched at %s; its "
                    "supervisor is starting", st->started_at);
            goto tail;
        }
        if (e == ENOENT)
            e = read_pids(dirfd, &pi);        /* it may have just written it */
        if (e == ENOENT) {
            set_msg(st->message, sizeof(st->message), TQU_CHILD_OK, "launch marker written "
                    "at %s but no process was ever recorded: the command never ran (the "
                    "controller stopped between the marker and the start)", st->started_at);
            goto tail;
        }
        if (e) {
            rc = set_msg(st->message, sizeof(st->message), e == ENOMEM ? TQU_CHILD_ENOMEM
                                                                        : TQU_CHILD_ESTATE,
                         "%s/%s: %s", state_dir, F_PID,
                         e == EBADMSG ? "malformed JSON" : strerror(e));
            goto tail;
        }
        st->supervisor_pid = pi.sup;
        st->child_pid = pi.child;
        st->supervisor_alive = pi.sup_alive;
        st->child_alive = pi.child_alive;
        if (pi.sup_alive || pi.child_alive) {
            st->state = TQU_DETACHED_RUNNING;
            if (!pi.sup_alive)
                set_msg(st->message, sizeof(st->message), TQU_CHILD_OK, "its supervisor "
                        "(pid %d) is gone: the command (pid %d) still runs, but its exit "
                        "status will not be recorded and its timeout not enforced",
                        (int)pi.sup, (int)pi.child);
            goto tail;
        }
        e = read_exit(dirfd, &x);            /* it may have finished meanwhile */
    }
    if (e == ENOENT) {
        set_msg(st->message, sizeof(st->message), TQU_CHILD_OK, "the supervisor (pid %d) "
                "and the command (pid %d) are gone and no exit status was recorded (killed, "
                "or the machine restarted): whether the command completed is unknown; see "
                "its log %s", (int)st->supervisor_pid, (int)st->child_pid,
                *st->log_path ? st->log_path : "(none)");
        goto tail;
    }
    if (e) {
        rc = set_msg(st->message, sizeof(st->message), e == ENOMEM ? TQU_CHILD_ENOMEM
                                                                    : TQU_CHILD_ESTATE,
                     "%s/%s: %s", state_dir, F_EXIT,
                     e == EBADMSG ? "malformed JSON" : strerror(e));
        goto tail;
    }
    if (!st->supervisor_pid && read_pids(dirfd, &pi) == 0) {
        st->supervisor_pid = pi.sup;
        st->child_pid = pi.child;
    }
    fill_exit(st, x);
tail:
    if (*st->log_path) {
        int trc = tqu_child_tail(st->log_path, jint(launch, "logOffset", 0, LLONG_MAX / 2, 0),
                                 tail_lines, redact, st->tail, sizeof(st->tail));
        if (trc == TQU_CHILD_ENOMEM && !rc)
            rc = set_msg(st->message, sizeof(st->message), TQU_CHILD_ENOMEM, "out of memory");
    }
out:
    cJSON_Delete(x);
    cJSON_Delete(launch);
    close(dirfd);
    return rc;
}

int tqu_detached_kill(const char *state_dir, char *msg, size_t msg_len)
{
    cJSON *launch = NULL;
    pid_info pi;
    long grace;
    int dirfd, e, rc = TQU_CHILD_OK;

    if (msg && msg_len)
        msg[0] = '\0';
    if (!state_dir || !*state_dir)
        return set_msg(msg, msg_len, TQU_CHILD_EINVAL, "no state folder");
    dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return set_msg(msg, msg_len, TQU_CHILD_ESTATE, "state folder %s: %s", state_dir,
                       strerror(errno));
    e = read_json(dirfd, F_LAUNCH, &launch);
    if (e == ENOENT)
        goto out;                       /* nothing launched */
    if (e) {
        rc = set_msg(msg, msg_len, e == ENOMEM ? TQU_CHILD_ENOMEM : TQU_CHILD_ESTATE,
                     "%s/%s: %s", state_dir, F_LAUNCH, e == EBADMSG ? "malformed" : strerror(e));
        goto out;
    }
    grace = (long)jint(launch, "graceMs", 1, MAX_DURATION_MS, TQU_CHILD_GRACE_MS);
    if (faccessat(dirfd, F_EXIT, F_OK, 0) == 0)
        goto out;                       /* finished */
    e = read_pids(dirfd, &pi);
    if (e == ENOENT && reserved_locked(dirfd)) {
        rc = set_msg(msg, msg_len, TQU_CHILD_ESTATE, "%s: the supervisor is still starting "
                     "(no pid recorded yet): try again", state_dir);
        goto out;
    }
    if (e == ENOENT)
        goto out;                       /* never ran */
    if (e) {
        rc = set_msg(msg, msg_len, e == ENOMEM ? TQU_CHILD_ENOMEM : TQU_CHILD_ESTATE,
                     "%s/%s: %s", state_dir, F_PID, e == EBADMSG ? "malformed" : strerror(e));
        goto out;
    }
    if (pi.sup_alive) {
        /* it escalates to SIGKILL after the grace and records the exit */
        if (kill(pi.sup, SIGTERM) < 0 && errno != ESRCH)
            rc = set_msg(msg, msg_len, TQU_CHILD_ESTATE, "kill supervisor %d: %s", (int)pi.sup,
                         strerror(errno));
        goto out;
    }
    if (pi.child_alive) {
        long long kill_at = mono_ms() + (grace > 0 ? grace : TQU_CHILD_GRACE_MS);
        int gone = 0;

        kill(-pi.child, SIGTERM);
        while (mono_ms() < kill_at) {
            if (kill(-pi.child, 0) < 0 && errno == ESRCH) {
                gone = 1;
                break;
            }
            sleep_ms(50);
        }
        if (!gone)
            kill(-pi.child, SIGKILL);
    }
out:
    cJSON_Delete(launch);
    close(dirfd);
    return rc;
}
