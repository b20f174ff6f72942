/*
 * child.h - run the vendor's commands (darwin-client, tar, update.sh) as
 * child processes, from an argv array, never through a shell string.
 *
 * Two ways:
 *
 *  A. tqu_child_run(): a short command run to completion by the calling
 *     thread (PaaS check, archive extraction), with a timeout.
 *
 *  B. tqu_detached_start() / _poll() / _kill(): the long vendor upgrade,
 *     run under a small supervisor process of its own (its own session,
 *     reparented to init) that records everything in a state folder, so a
 *     controller killed with kill -9 and restarted re-attaches by reading
 *     the folder and never starts the command twice. The supervisor
 *     enforces the timeout itself, so it holds while no controller runs.
 *
 * Every child: argv[0] found on PATH by us before forking (execve, never
 * execvp, never a shell unless argv itself is "sh" "script": a script
 * without a #! line fails with ENOEXEC, run it as "sh" "script"); the
 * --exec-prefix argv in front; its own process group; every signal
 * disposition reset to the default (libwebsockets leaves SIGPIPE ignored
 * in the controller) and an empty signal mask (the controller blocks
 * SIGTERM/SIGINT/SIGUSR1); stdin on /dev/null; stdout and stderr on the
 * log file; no other file descriptor (closed with close_range, whatever
 * their close-on-exec flag); the environment given explicitly. Between
 * fork and exec only async-signal-safe calls are made (the controller is
 * multithreaded). We wait for our own pids only, never waitpid(-1).
 *
 * The log file holds the child's own output and nothing written by us; it
 * is created 0600 (an existing file keeps its mode) and appended to unless
 * log_truncate is set. The tails we return cover only what this run wrote
 * (the offset at start is remembered).
 *
 * Secrets: an argument flagged in secret_args reaches the command's argv
 * (the vendor needs it) but nothing we write or return: it is "***" in the
 * formatted command line, in the state files and in messages, and every
 * occurrence of it in a returned output tail is replaced by "***". The
 * output the command itself writes to its log file is the command's own.
 *
 * Conventions: functions return 0 (TQU_CHILD_OK) or a tqu_child_rc, with
 * one line in the result's or status's message buffer; results and
 * statuses are fixed-size structs the caller owns (nothing to release).
 * Thread-safe: no global state (see the state folder for B).
 */
#ifndef TQU_CHILD_H
#define TQU_CHILD_H

#include <stddef.h>
#include <sys/types.h>

typedef enum tqu_child_rc {
    TQU_CHILD_OK = 0,
    TQU_CHILD_EINVAL,      /* unusable spec or argument (no argv, path too long) */
    TQU_CHILD_ENOMEM,      /* an allocation failed */
    TQU_CHILD_ENOCWD,      /* the working directory does not exist or is not a directory */
    TQU_CHILD_ENOTFOUND,   /* the command is not on PATH or not executable */
    TQU_CHILD_ELOG,        /* the log file cannot be opened */
    TQU_CHILD_ESPAWN,      /* fork failed, or the command could not be exec'd */
    TQU_CHILD_ESTATE,      /* the state folder or a state file is missing, unreadable,
                              unwritable or malformed */
    TQU_CHILD_ELAUNCHED,   /* B: a launch marker exists: refused, nothing started */
    TQU_CHILD_RC_MAX
} tqu_child_rc;

/* Static text for a result code; never NULL. */
const char *tqu_child_strerror(int rc);

#define TQU_CHILD_TAIL_MAX 4096      /* bytes of output tail returned, with the NUL */
#define TQU_CHILD_TAIL_LINES 20      /* default number of tail lines */
#define TQU_CHILD_CMD_MAX 4096       /* formatted command line kept in a status */
#define TQU_CHILD_PATH_MAX 1024      /* longest cwd / log / state path accepted */
#define TQU_CHILD_MSG_MAX 512        /* one-line messages */
#define TQU_CHILD_GRACE_MS 5000      /* default time between SIGTERM and SIGKILL */
#define TQU_CHILD_SECRET_MAX 64      /* argv[0..63] can be flagged secret */

/* Bit for argv[i] in tqu_child_spec.secret_args (i < TQU_CHILD_SECRET_MAX). */
#define TQU_CHILD_SECRET_ARG(i) (1ULL << (i))

/*
 * What to run. Everything is borrowed for the duration of the call only
 * (tqu_detached_start copies what its supervisor needs before returning).
 */
typedef struct tqu_child_spec {
    char *const *prefix;        /* --exec-prefix argv, NULL-terminated; NULL or empty: none.
                                   With a prefix and a cwd the command keeps its working
                                   folder through the prefix (nsenter -m resets it to /):
                                   prefix... /bin/sh -c 'cd -- "$1" && shift && exec "$@"'
                                   tqu-cd <cwd> argv... (shown so by tqu_child_format_argv) */
    char *const *argv;          /* the command, NULL-terminated, argv[0] non-empty. The first
                                   word run (prefix[0], else argv[0]) is looked up on PATH
                                   (the child's PATH, else a default) when it has no '/';
                                   a relative path with a '/' is taken from cwd */
    unsigned long long secret_args;  /* TQU_CHILD_SECRET_ARG(i): argv[i] is a secret */
    const char *cwd;            /* working directory, must exist; NULL: the controller's */
    const char *log_path;       /* stdout + stderr; NULL: /dev/null (no tail) */
    int log_truncate;           /* 0: append to an existing log, 1: truncate it */
    char *const *env;           /* "NAME=VALUE" entries, NULL-terminated; NULL: our environ */
    char *const *env_extra;     /* added to env, replacing entries of the same name; or NULL */
    long timeout_ms;            /* <= 0: none. Then SIGTERM to the process group... */
    long grace_ms;              /* ...and SIGKILL this long after; <= 0: TQU_CHILD_GRACE_MS */
    int tail_lines;             /* A: lines of tail in the result; <= 0: TQU_CHILD_TAIL_LINES */
    const volatile int *cancel; /* A: when it becomes non-zero (any thread), the command is
                                   killed as on a timeout (checked every 200 ms); NULL: never.
                                   B ignores it: see tqu_detached_kill */
} tqu_child_spec;

/* ------------------------------------------------------- A: run to completion */

typedef struct tqu_child_result {
    pid_t pid;                  /* 0 when nothing was started */
    int exited;                 /* 1: it exited (exit_code), 0: a signal ended it */
    int exit_code;              /* 0..255 when exited, else -1 */
    int signal;                 /* the signal that ended it, else 0 */
    int timed_out;              /* it was killed because timeout_ms passed */
    int cancelled;              /* it was killed because *cancel became non-zero */
    double duration;            /* seconds from start to exit (monotonic clock) */
    char tail[TQU_CHILD_TAIL_MAX];    /* last lines of this run's output, secrets as "***",
                                         control characters as spaces, no final newline */
    char error[TQU_CHILD_MSG_MAX];    /* why, when the call returns non-zero */
} tqu_child_result;

/*
 * Run spec to completion. Returns 0 once the command was started and has
 * ended, whatever its outcome (res->exited/exit_code/signal/timed_out/
 * cancelled), or, with one line in res->error and nothing left running:
 * TQU_CHILD_EINVAL, ENOMEM, ENOCWD (the message names the folder),
 * ENOTFOUND, ELOG, ESPAWN (fork failed, or the exec failed: then
 * res->pid is set and res->exit_code is 127).
 * On a timeout or cancellation the whole process group gets SIGTERM, then
 * SIGKILL after grace_ms if any member is left; when the command exits by
 * itself, processes it left in the background are left alone.
 * Blocks the calling thread for the duration (sleeping in poll(2) on a
 * pidfd, no busy loop). Needs SIGCHLD not to be ignored in the process.
 */
int tqu_child_run(const tqu_child_spec *spec, tqu_child_result *res);

/*
 * The command line (prefix then argv) for people to read and copy:
 * arguments shell-quoted ('...') when they hold anything but
 * [A-Za-z0-9_@%+=:,./-], '' for an empty one, secrets as *** (unquoted).
 * snprintf-style: returns the length of the whole line and writes at most
 * len - 1 bytes and a NUL (len may be 0 with buf NULL).
 */
size_t tqu_child_format_argv(const tqu_child_spec *spec, char *buf, size_t len);

/*
 * The last `lines` lines (<= 0: TQU_CHILD_TAIL_LINES) of the file at path
 * from byte `offset` on, into buf (len bytes, at most TQU_CHILD_TAIL_MAX
 * used), reading at most 64 KiB from its end whatever its size: lines that
 * do not fit are dropped from the front; a last line longer than buf is
 * cut at its start with "...". Every occurrence of each non-empty string
 * in redact (NULL-terminated, or NULL) is replaced by "***", control
 * characters other than newline and tab by spaces. Returns 0, or
 * TQU_CHILD_ELOG (buf then empty) when the file cannot be read, ENOMEM.
 */
int tqu_child_tail(const char *path, long long offset, int lines, const char *const *redact,
                   char *buf, size_t len);

/* ---------------------------------------------------- B: detached, re-attachable */

/*
 * The state folder (one per request, created 0700 by the caller) holds,
 * each written atomically (temporary file, fsync, rename, fsync of the
 * folder) and never containing a secret:
 *
 *   launch  written by tqu_detached_start before anything runs; its
 *           presence means "never start this again":
 *           {"version":1,"startedAt":"2026-12-05T14:00:00Z",
 *            "command":"nsenter -t 1 -m -- sh update.sh ... -P *** -p 22",
 *            "argv":["nsenter",...,"-P","***",...],"cwd":"/qaxdata/...",
 *            "log":"/.../update.log","logOffset":0,"timeoutMs":10800000,
 *            "graceMs":5000,"launcherPid":1234,"bootId":"<kernel boot id>",
 *            "startedBootMs":123456}   (CLOCK_BOOTTIME: elapsed times from it, never
 *                                       from the wall clock while the boot is the same)
 *   pid     written by the supervisor before the command is exec'd:
 *           {"bootId":"<kernel boot id>","supervisorPid":5678,
 *            "supervisorStart":123456,"childPid":5679,"childStart":123457}
 *           (starts: /proc/<pid>/stat field 22, clock ticks after boot;
 *           a pid counts as ours only with the same start and boot id)
 *   exit.reserved  created at its full size (4 KiB of spaces) and locked
 *           (flock) by the starter before the marker, the lock then held by
 *           the supervisor for its life: the exit status is written into it
 *           in place, so a disk filled meanwhile (update.sh's own data
 *           backup) cannot lose it; then renamed to "exit". Marker, no
 *           "pid", lock held: STARTING (never "never ran").
 *   exit    written by the supervisor when the command has ended:
 *           {"exitCode":3,"signal":0,"timedOut":false,"cancelled":false,
 *            "execErrno":0,"finishedAt":"2026-12-05T15:01:02Z","durationMs":3662000}
 *           (exitCode -1 when a signal ended it; execErrno non-zero and
 *           exitCode 127 when the exec itself failed)
 *
 * (launch is pretty-printed by cJSON; pid and exit are one line each.
 * Temporary files while writing: .launch.<pid>.<tid>.tmp, .pid.tmp,
 * .exit.tmp.) The command (or its supervisor) runs while a pid recorded
 * in "pid" is alive with its recorded start. Since the command is exec'd
 * only once "pid" is on disk, "launch" without "pid" means it never ran;
 * "pid" without "exit" and nothing alive means the supervisor was killed
 * (or the machine restarted) and the outcome is unknown.
 */
typedef enum tqu_detached_state {
    TQU_DETACHED_NOT_LAUNCHED = 0,  /* no launch marker */
    TQU_DETACHED_RUNNING,           /* the supervisor or the command is alive */
    TQU_DETACHED_FINISHED,          /* the exit file is there */
    TQU_DETACHED_LOST,              /* marker, no exit file, nothing alive: a person must
                                       look (message says what is known); never relaunch */
    TQU_DETACHED_STARTING           /* marker, no pid file yet, but its starter or its
                                       supervisor is alive (holds the reserved exit file's
                                       lock): slow, not failed; treat as running */
} tqu_detached_state;

/* "NotLaunched", "Running", "Finished", "Lost", "Starting". */
const char *tqu_detached_state_name(tqu_detached_state s);

typedef struct tqu_detached_status {
    tqu_detached_state state;
    char command[TQU_CHILD_CMD_MAX];      /* redacted command line (from "launch") */
    char cwd[TQU_CHILD_PATH_MAX];
    char log_path[TQU_CHILD_PATH_MAX];
    char started_at[32];                  /* RFC 3339 UTC, "" when unknown */
    char finished_at[32];                 /* "" unless FINISHED */
    double elapsed;                       /* seconds: since start (RUNNING, LOST) or the
                                             run time (FINISHED) */
    pid_t supervisor_pid, child_pid;      /* 0 when not (yet) recorded */
    int supervisor_alive, child_alive;    /* the recorded pid is alive and ours */
    int exit_code;                        /* FINISHED: 0..255, or -1 (signal) */
    int signal;                           /* FINISHED: the signal that ended it, or 0 */
    int timed_out, cancelled;             /* FINISHED: killed by the supervisor because... */
    int exec_errno;                       /* FINISHED: the exec failed with this errno */
    char tail[TQU_CHILD_TAIL_MAX];        /* last lines of the log from this run, the
                                             poll's redact strings as "***" */
    char message[TQU_CHILD_MSG_MAX];      /* the error when a call fails; for LOST and for
                                             RUNNING without a supervisor, what is known */
} tqu_detached_status;

/*
 * Start spec detached. state_dir must exist (the caller creates it 0700).
 * In order:
 *  1. a launch marker in state_dir: TQU_CHILD_ELAUNCHED, nothing started,
 *     *st filled as by tqu_detached_poll;
 *  2. checks: spec (cwd and log_path, when given, must be absolute),
 *     cwd, command, log file, no "pid"/"exit" left in the folder without
 *     a marker. On failure (EINVAL, ENOCWD, ENOTFOUND, ELOG, ESTATE,
 *     ENOMEM) nothing is written or started: st->state is NOT_LAUNCHED and
 *     the caller may fix the cause and retry with the same folder
 *     (a missing working directory is one of these: no marker);
 *  3. the launch marker (ESTATE if it cannot be written: nothing started);
 *  4. the supervisor (double fork: the controller keeps no zombie; then a
 *     fresh exec of our own binary, /proc/self/exe, in a hidden mode caught
 *     before main: it holds none of the controller's heap; its argv and
 *     environment hold nothing, the command's argv comes over a pipe and is
 *     wiped once the command has been exec'd), which writes "pid", lets the
 *     command exec, waits for it, enforces the timeout (SIGTERM to its
 *     process group, SIGKILL after grace), writes "exit" and exits.
 * Returns 0 with st RUNNING once the command has been exec'd. When fork
 * fails, or the supervisor cannot write "pid" (the command then never
 * runs), the marker is removed again and ESPAWN / ESTATE returned with
 * st NOT_LAUNCHED. When the exec fails: ESPAWN, st FINISHED (exit 127).
 * Whenever st->state is not NOT_LAUNCHED on return, a marker exists and
 * the command must never be started again from this folder. The guarantee
 * holds as long as the folder is kept: one folder per request, never
 * emptied or reused by the caller.
 * Waits at most 30 s for the supervisor's report (then ESPAWN, and st is
 * as tqu_detached_poll sees it).
 */
int tqu_detached_start(const tqu_child_spec *spec, const char *state_dir,
                       tqu_detached_status *st);

/*
 * Read state_dir into *st (see the states above), with the last
 * `tail_lines` (<= 0: TQU_CHILD_TAIL_LINES) lines the command wrote to its
 * log, every string of redact (NULL-terminated, or NULL; normally the
 * secret arguments) replaced by "***" there. Needs no memory of the start:
 * any process may poll any folder. Returns 0, or ESTATE / ENOMEM with
 * st->message (st->state then says at least whether a marker exists;
 * with a marker, never relaunch).
 */
int tqu_detached_poll(const char *state_dir, const char *const *redact, int tail_lines,
                      tqu_detached_status *st);

/*
 * Cancel: when the supervisor is alive, send it SIGTERM and return at once;
 * it sends SIGTERM to the command's process group, SIGKILL after the grace
 * period, and records "exit" with cancelled true. When only the command is
 * alive, send SIGTERM to its process group, wait up to the grace period
 * and send SIGKILL (blocking; no exit file is written, the state becomes
 * LOST). Nothing alive, or nothing launched: 0, nothing done. Returns 0,
 * or ESTATE / ENOMEM with one line in msg (msg_len bytes; msg may be NULL).
 */
int tqu_detached_kill(const char *state_dir, char *msg, size_t msg_len);

/* Tests only: the supervisor waits this long (ms) before it records its pid. */
extern int tqu__child_supervisor_delay_ms;

#endif
