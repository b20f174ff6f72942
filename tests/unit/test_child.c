/*
 * test_child.c - the child-process supervisor (controller/host/child.c) with
 * small shell scripts written into a temporary folder per test:
 *   A: exit codes and signals, working directory and exact argv, the exec
 *      prefix, signal dispositions and mask in the child, inherited file
 *      descriptors, megabytes of output (bounded, exact tail), timeouts
 *      that kill the whole process group (TERM, then KILL), cancellation,
 *      clear errors before anything runs, log modes, environment, secrets;
 *   B: detached start, poll from scratch and from another process, a
 *      "controller" killed with SIGKILL right after the start, the exit
 *      recorded, at-most-once (a second start refused), LOST, pid files
 *      that name a live but different process, the timeout enforced with
 *      nobody polling, cancellation with and without the supervisor,
 *      secrets nowhere in the state folder, the controller's sockets not
 *      held by the supervisor, and allocation failures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "failalloc.h"
#include "host/child.h"
#include "testutil.h"

/* ------------------------------------------------------------- helpers */

typedef struct fx {
    char dir[PATH_MAX];
    char mounted[PATH_MAX];    /* a tmpfs a test mounted, unmounted by teardown */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (test_mkdtemp(f->dir, sizeof(f->dir), "tqu-child") != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->mounted[0])
        umount2(f->mounted, MNT_DETACH);
    test_rmtree(f->dir);
    free(f);
    return 0;
}

/* dir/name into a static-free caller buffer */
static char *pathf(char *buf, const fx *f, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", f->dir, name);
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Whole file (caller frees), or NULL when absent. */
static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* A script file: "#!/bin/sh\n" + body, mode 0755. */
static char *script(char *buf, const fx *f, const char *name, const char *body)
{
    char text[8192];
    pathf(buf, f, name);
    snprintf(text, sizeof(text), "#!/bin/sh\n%s", body);
    write_file(buf, text, 0755);
    return buf;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Gone: no such process, or a zombie nobody reaps (pid 1 may not). */
static int proc_gone(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fp = fopen(path, "r");
    if (!fp)
        return 1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return !p || p[2] == 'Z' || p[2] == 'X';
}

static int wait_gone(pid_t pid, long ms)
{
    ms = (long)((double)ms * test_slack());
    for (long t = 0; t < ms; t += 20) {
        if (proc_gone(pid))
            return 1;
        sleep_ms(20);
    }
    return proc_gone(pid);
}

static pid_t read_pid_file(const char *path)
{
    for (int i = 0; i < 250 * test_slack(); i++) {
        char *s = read_file(path);
        if (s && strchr(s, '\n')) {
            pid_t p = (pid_t)atoi(s);
            free(s);
            return p;
        }
        free(s);
        sleep_ms(20);
    }
    fail_msg("no pid in %s", path);
    return -1;
}

/* Poll dir until it reaches want (or ms pass); the last status in st. */
static int wait_state(const char *dir, tqu_detached_state want, long ms, tqu_detached_status *st)
{
    ms = (long)((double)ms * test_slack());
    for (long t = 0;; t += 20) {
        assert_int_equal(tqu_detached_poll(dir, NULL, 0, st), TQU_CHILD_OK);
        if (st->state == want)
            return 1;
        if (t >= ms)
            return 0;
        sleep_ms(20);
    }
}

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })

/* ================================================= A: run to completion */

static void test_run_exit_codes(void **state)
{
    fx *f = *state;
    char s0[PATH_MAX], s3[PATH_MAX], sk[PATH_MAX], log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;

    script(s0, f, "ok.sh", "echo fine\n");
    script(s3, f, "three.sh", "echo out; echo err >&2; exit 3\n");
    script(sk, f, "kill.sh", "echo bye\nkill -USR1 $$\nsleep 5\n");
    pathf(log, f, "run.log");

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s0);
    spec.log_path = log;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_true(r.pid > 0);
    assert_int_equal(r.exited, 1);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.signal, 0);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.cancelled, 0);
    assert_true(r.duration >= 0 && r.duration < 5);
    assert_string_equal(r.tail, "fine");
    assert_string_equal(r.error, "");

    spec.argv = ARGV("sh", s3);     /* stdout and stderr both in the log */
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exited, 1);
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.tail, "out\nerr");

    spec.argv = ARGV(sk);           /* exec'd directly through its #! line */
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exited, 0);
    assert_int_equal(r.exit_code, -1);
    assert_int_equal(r.signal, SIGUSR1);
    assert_int_equal(r.timed_out, 0);
    assert_string_equal(r.tail, "bye");
}

static void test_run_cwd_and_argv(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], work[PATH_MAX], out[PATH_MAX], want[2 * PATH_MAX], real[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    char *got;

    script(s, f, "args.sh", "out=$1; shift\npwd -P > \"$out\"\n"
                            "for a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$out\"; done\n");
    pathf(work, f, "work dir");
    assert_int_equal(mkdir(work, 0700), 0);
    pathf(out, f, "args.out");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, out, "hello world", "", "it's", "$HOME", "*", "a\"b", "-P");
    spec.cwd = work;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(realpath(work, real));
    snprintf(want, sizeof(want), "%s\nhello world\n\nit's\n$HOME\n*\na\"b\n-P\n", real);
    got = read_file(out);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);

    /* a relative path with a '/' is taken from cwd */
    script(s, f, "work dir/rel.sh", "echo rel:$(pwd -P)\n");
    spec.argv = ARGV("./rel.sh");
    spec.log_path = pathf(out, f, "rel.log");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    snprintf(want, sizeof(want), "rel:%s", real);
    assert_string_equal(r.tail, want);
}

static void test_run_exec_prefix(void **state)
{
    fx *f = *state;
    char pre[PATH_MAX], inner[PATH_MAX], rec[PATH_MAX], log[PATH_MAX], body[PATH_MAX + 128],
         want[4 * PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    char *got;

    pathf(rec, f, "prefix.rec");
    snprintf(body, sizeof(body), "printf '%%s\\n' \"$0\" \"$@\" > '%s'\nshift\nexec \"$@\"\n", rec);
    script(pre, f, "prefix.sh", body);
    script(inner, f, "inner.sh", "echo \"inner:$1\"\n");
    pathf(log, f, "prefix.log");
    memset(&spec, 0, sizeof(spec));
    spec.prefix = ARGV(pre, "--flag");
    spec.argv = ARGV("sh", inner, "a b");
    spec.log_path = log;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.tail, "inner:a b");
    got = read_file(rec);
    assert_non_null(got);
    snprintf(want, sizeof(want), "%s\n--flag\nsh\n%s\na b\n", pre, inner);
    assert_string_equal(got, want);
    free(got);

    /* an empty prefix array is no prefix */
    spec.prefix = (char *[]){ NULL };
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "inner:a b");
}

/* Whether "nsenter -t <self> -m --" works here (root with CAP_SYS_ADMIN). */
static int nsenter_usable(const fx *f, char *pidbuf, size_t len)
{
    tqu_child_spec spec;
    tqu_child_result r;

    snprintf(pidbuf, len, "%d", (int)getpid());
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("nsenter", "-t", pidbuf, "-m", "--", "true");
    spec.cwd = f->dir;
    return tqu_child_run(&spec, &r) == TQU_CHILD_OK && r.exited && r.exit_code == 0;
}

/*
 * The in-cluster install's prefix enters a mount namespace, and entering
 * one resets the working folder to "/": the vendor's commands ("sh
 * update.sh", "./darwin-client") must still run in their folder, for a
 * short command and for a detached one. (Before the fix: "sh: 0: cannot
 * open update.sh" and 127.)
 */
static void test_run_prefix_keeps_cwd(void **state)
{
    fx *f = *state;
    char work[PATH_MAX], tool[PATH_MAX], log[PATH_MAX], real[PATH_MAX], want[2 * PATH_MAX],
         sdir[PATH_MAX], pid[32], cmd[TQU_CHILD_CMD_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    tqu_detached_status st;

    if (!nsenter_usable(f, pid, sizeof(pid)))
        skip();   /* cmocka prints the skip; needs root and nsenter */
    pathf(work, f, "plan client");
    assert_int_equal(mkdir(work, 0700), 0);
    script(tool, f, "plan client/update.sh", "echo \"in:$(pwd -P) args:$*\"\n");
    script(tool, f, "plan client/darwin-client", "echo \"dc:$(pwd -P) $1\"\n");
    assert_non_null(realpath(work, real));
    pathf(log, f, "ns.log");
    memset(&spec, 0, sizeof(spec));
    spec.prefix = ARGV("nsenter", "-t", pid, "-m", "--");
    spec.argv = ARGV("sh", "update.sh", "-P", "it's \"x\"", "$HOME");
    spec.secret_args = TQU_CHILD_SECRET_ARG(3);
    spec.cwd = work;
    spec.log_path = log;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exit_code, 0);
    snprintf(want, sizeof(want), "in:%s args:-P *** $HOME", real);
    assert_string_equal(r.tail, want);

    spec.argv = ARGV("./darwin-client", "paas_check");
    spec.secret_args = 0;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exit_code, 0);
    snprintf(want, sizeof(want), "dc:%s paas_check", real);
    assert_string_equal(r.tail, want);

    /* what people read (and could copy) is what runs */
    tqu_child_format_argv(&spec, cmd, sizeof(cmd));
    snprintf(want, sizeof(want), "nsenter -t %s -m -- /bin/sh -c 'cd -- \"$1\" && shift && exec "
             "\"$@\"' tqu-cd '%s' ./darwin-client paas_check", pid, work);
    assert_string_equal(cmd, want);

    /* detached: the same */
    pathf(sdir, f, "state");
    assert_int_equal(mkdir(sdir, 0700), 0);
    spec.argv = ARGV("sh", "update.sh", "-n", "new");
    pathf(log, f, "ns-detached.log");
    assert_int_equal(tqu_detached_start(&spec, sdir, &st), TQU_CHILD_OK);
    assert_true(wait_state(sdir, TQU_DETACHED_FINISHED, 10000, &st));
    assert_int_equal(st.exit_code, 0);
    snprintf(want, sizeof(want), "in:%s args:-n new", real);
    assert_string_equal(st.tail, want);
}

static void sighup_handler(int sig)
{
    (void)sig;
}

/* The controller's state: SIGPIPE ignored (libwebsockets), TERM/INT/USR1 blocked. */
static void act_like_controller(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, old), 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGHUP, sighup_handler);
}

static void stop_acting(const sigset_t *old)
{
    signal(SIGPIPE, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

#define CLEAN_SIGNALS "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000"

/*
 * The "SigBlk:/SigIgn:" lines of /proc/self/status with signals 32 and 33
 * masked off: glibc keeps those two for itself and refuses to change them,
 * so when the environment started us with them ignored (some CI runners
 * do) no child can be reset there. Every other signal must be clean.
 * Rewrites the two hex words in place.
 */
static char *mask_glibc_signals(char *text)
{
    const char *keys[] = { "SigBlk:\t", "SigIgn:\t" };
    for (int i = 0; i < 2; i++) {
        char *p = strstr(text, keys[i]);
        if (!p)
            continue;
        p += strlen(keys[i]);
        unsigned long long v = strtoull(p, NULL, 16) & ~(3ULL << 31);
        char hex[17];
        snprintf(hex, sizeof(hex), "%016llx", v);
        if (strspn(p, "0123456789abcdef") >= 16)
            memcpy(p, hex, 16);
    }
    return text;
}

static void test_run_signals_reset(void **state)
{
    fx *f = *state;
    char log[PATH_MAX], s[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    sigset_t old;

    act_like_controller(&old);
    memset(&spec, 0, sizeof(spec));
    /* the exec'd process itself reports: nothing ignored, nothing blocked */
    spec.argv = ARGV("grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status");
    spec.log_path = pathf(log, f, "sig.log");
    spec.log_truncate = 1;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(mask_glibc_signals(r.tail), CLEAN_SIGNALS);

    /* and SIGPIPE kills a writer again: "yes | head -1" ends */
    script(s, f, "pipe.sh", "yes | head -n 1\ntrap\n");
    spec.argv = ARGV("sh", s);
    spec.timeout_ms = 5000;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.tail, "y");    /* and `trap` lists no traps */
    stop_acting(&old);
}

static void test_run_no_inherited_fds(void **state)
{
    fx *f = *state;
    char log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    int p[2], sock, dn;

    /* descriptors without close-on-exec, as a careless library leaves them */
    assert_int_equal(pipe(p), 0);
    sock = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(sock >= 0);
    dn = open("/dev/null", O_RDONLY);
    assert_true(dn >= 0);
    assert_int_equal(dup2(dn, 77), 77);

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", "-c", "ls /proc/$$/fd; :");
    spec.log_path = pathf(log, f, "fds.log");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "0\n1\n2");

    /* stdin is /dev/null */
    spec.argv = ARGV("readlink", "/proc/self/fd/0");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "/dev/null");

    close(p[0]);
    close(p[1]);
    close(sock);
    close(dn);
    close(77);
}

static void test_run_big_output(void **state)
{
    fx *f = *state;
    char log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    struct stat sb;
    char want[4096], *p;

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("seq", "1", "400000");      /* 2.7 MB */
    spec.log_path = pathf(log, f, "big.log");
    spec.tail_lines = 5;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(stat(log, &sb), 0);
    assert_true(sb.st_size > 2 * 1024 * 1024);
    assert_string_equal(r.tail, "399996\n399997\n399998\n399999\n400000");

    /* more lines than fit: whole lines, the newest, within the bound */
    spec.log_truncate = 1;
    spec.tail_lines = 100000;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_true(strlen(r.tail) <= TQU_CHILD_TAIL_MAX - 1);
    assert_true(strlen(r.tail) > TQU_CHILD_TAIL_MAX - 10);
    p = r.tail + strlen(r.tail) - 6;
    assert_string_equal(p, "400000");
    /* starts on a line boundary: the first line is a whole number, one less than the next */
    {
        long a = strtol(r.tail, &p, 10), b;
        assert_int_equal(*p, '\n');
        b = strtol(p + 1, NULL, 10);
        assert_int_equal(b, a + 1);
        snprintf(want, sizeof(want), "%ld\n", a);
        assert_memory_equal(r.tail, want, strlen(want));
    }

    /* one line longer than the bound: its end, marked */
    spec.argv = ARGV("sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo; printf 'tail-end'");
    spec.tail_lines = 1;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "tail-end");
    spec.argv = ARGV("sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo END");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(strlen(r.tail), TQU_CHILD_TAIL_MAX - 1);
    assert_memory_equal(r.tail, "...xxx", 6);
    assert_string_equal(r.tail + strlen(r.tail) - 4, "xEND");
}

static void test_run_timeout_kills_group(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], gc[PATH_MAX], log[PATH_MAX], body[PATH_MAX + 64];
    tqu_child_result r;
    tqu_child_spec spec;
    double t0;
    pid_t grandchild;

    pathf(gc, f, "gc.pid");
    snprintf(body, sizeof(body), "sleep 60 &\necho $! > '%s'\necho waiting\nwait\n", gc);
    script(s, f, "group.sh", body);
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s);
    spec.log_path = pathf(log, f, "group.log");
    spec.timeout_ms = 1000;
    spec.grace_ms = 1000;
    t0 = test_now();
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_true(test_now() - t0 >= 0.9);
    /* TERM was enough (the shell died of it); a grandchild left as a zombie by a slow
       init can keep the group "present" until the grace ends */
    assert_true(test_now() - t0 < 2.6 * test_slack());
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.exited, 0);
    assert_int_equal(r.signal, SIGTERM);
    assert_string_equal(r.tail, "waiting");
    grandchild = read_pid_file(gc);
    assert_true(wait_gone(grandchild, 2000));

    /* TERM ignored by everyone in the group: KILL after the grace */
    snprintf(body, sizeof(body), "trap '' TERM\nsleep 60 &\necho $! > '%s'\nwait\nwait\n", gc);
    script(s, f, "stubborn.sh", body);
    unlink(gc);
    spec.argv = ARGV("sh", s);
    spec.timeout_ms = 500;
    spec.grace_ms = 500;
    t0 = test_now();
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_true(test_now() - t0 >= 0.95);
    assert_true(test_now() - t0 < 2.5 * test_slack());
    assert_int_equal(r.timed_out, 1);
    assert_int_equal(r.signal, SIGKILL);
    grandchild = read_pid_file(gc);
    assert_true(wait_gone(grandchild, 2000));
}

static void test_run_cancel(void **state)
{
    fx *f = *state;
    char log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    volatile int cancel = 1;

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sleep", "60");
    spec.log_path = pathf(log, f, "cancel.log");
    spec.cancel = &cancel;
    spec.grace_ms = 500;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.cancelled, 1);
    assert_int_equal(r.timed_out, 0);
    assert_int_equal(r.signal, SIGTERM);
    assert_true(r.duration < 1.0);
}

static void test_run_errors_before_start(void **state)
{
    fx *f = *state;
    char missing[PATH_MAX], file[PATH_MAX], noexec[PATH_MAX], nolog[PATH_MAX], noshebang[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;

    pathf(missing, f, "no-such-dir");
    pathf(file, f, "a-file");
    write_file(file, "x", 0644);
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("true");

    spec.cwd = missing;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOCWD);
    assert_int_equal(r.pid, 0);
    assert_non_null(strstr(r.error, missing));
    assert_non_null(strstr(r.error, "No such file or directory"));
    spec.cwd = file;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOCWD);
    assert_non_null(strstr(r.error, "not a directory"));
    spec.cwd = NULL;

    spec.argv = ARGV("tqu-no-such-command", "-P", "secret");
    spec.secret_args = TQU_CHILD_SECRET_ARG(2);
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOTFOUND);
    assert_string_equal(r.error, "cannot run tqu-no-such-command: not found on PATH");
    spec.argv = ARGV(file);         /* not executable */
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOTFOUND);
    assert_non_null(strstr(r.error, "Permission denied"));
    spec.argv = ARGV(f->dir);       /* a directory */
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOTFOUND);
    spec.argv = ARGV("./relative-missing");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOTFOUND);
    spec.secret_args = 0;

    spec.argv = ARGV("true");
    spec.log_path = pathf(nolog, f, "no-dir/x.log");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ELOG);
    assert_non_null(strstr(r.error, nolog));
    spec.log_path = NULL;

    spec.argv = ARGV(NULL);
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_EINVAL);
    spec.argv = ARGV("");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_EINVAL);
    assert_int_equal(tqu_child_run(NULL, &r), TQU_CHILD_EINVAL);

    /* executable but not runnable (no #! line): the exec fails, reported */
    pathf(noshebang, f, "noshebang");
    write_file(noshebang, "echo hi\n", 0755);
    spec.argv = ARGV(noshebang);
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ESPAWN);
    assert_true(r.pid > 0);
    assert_int_equal(r.exit_code, 127);
    assert_non_null(strstr(r.error, "Exec format error"));

    /* PATH from the child's environment */
    pathf(noexec, f, "bin");
    assert_int_equal(mkdir(noexec, 0700), 0);
    script(file, f, "bin/only-here", "echo found\n");
    spec.argv = ARGV("only-here");
    spec.log_path = pathf(nolog, f, "path.log");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_ENOTFOUND);
    {
        char entry[PATH_MAX + 8];
        snprintf(entry, sizeof(entry), "PATH=%s", noexec);
        spec.env_extra = ARGV(entry);
        assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
        assert_string_equal(r.tail, "found");
    }
}

static void test_run_log_modes(void **state)
{
    fx *f = *state;
    char log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    struct stat sb;
    char *got;
    mode_t um = umask(022);

    memset(&spec, 0, sizeof(spec));
    spec.log_path = pathf(log, f, "modes.log");
    spec.argv = ARGV("echo", "first");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(stat(log, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    spec.argv = ARGV("echo", "second");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "second");              /* this run's output only */
    got = read_file(log);
    assert_string_equal(got, "first\nsecond\n");        /* appended */
    free(got);
    spec.argv = ARGV("true");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "");                    /* printed nothing this time */
    spec.log_truncate = 1;
    spec.argv = ARGV("echo", "third");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    got = read_file(log);
    assert_string_equal(got, "third\n");
    free(got);

    /* no log: output discarded, no tail */
    spec.log_path = NULL;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "");
    umask(um);
}

static void test_run_environment(void **state)
{
    fx *f = *state;
    char log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;

    setenv("TQU_TEST_INHERITED", "from-parent", 1);
    setenv("TQU_TEST_OVERRIDDEN", "old", 1);
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", "-c", "echo \"$TQU_TEST_INHERITED/$TQU_TEST_OVERRIDDEN/$TQU_NEW\"; "
                                 "env | grep -c '^TQU_TEST_OVERRIDDEN='");
    spec.log_path = pathf(log, f, "env.log");
    spec.env_extra = ARGV("TQU_TEST_OVERRIDDEN=new", "TQU_NEW=x y");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "from-parent/new/x y\n1");
    /* an explicit environment replaces ours */
    spec.env = ARGV("PATH=/usr/bin:/bin", "TQU_NEW=only");
    spec.env_extra = NULL;
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_string_equal(r.tail, "//only\n0");
    unsetenv("TQU_TEST_INHERITED");
    unsetenv("TQU_TEST_OVERRIDDEN");
}

static void test_run_secret_redacted(void **state)
{
    fx *f = *state;
    char log[PATH_MAX], cmd[256];
    tqu_child_result r;
    tqu_child_spec spec;
    char *got;

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", "-c", "echo \"user=$1 password=$2\"; echo \"again:$2:\"; exit 4", "sh",
                     "root", "Pa55-w0rd");
    spec.secret_args = TQU_CHILD_SECRET_ARG(5);
    spec.log_path = pathf(log, f, "secret.log");
    assert_int_equal(tqu_child_run(&spec, &r), TQU_CHILD_OK);
    assert_int_equal(r.exit_code, 4);
    assert_string_equal(r.tail, "user=root password=***\nagain:***:");
    /* the command did get it (its own output is its own) */
    got = read_file(log);
    assert_non_null(strstr(got, "password=Pa55-w0rd"));
    free(got);
    tqu_child_format_argv(&spec, cmd, sizeof(cmd));
    assert_null(strstr(cmd, "Pa55"));
    assert_non_null(strstr(cmd, " root ***"));
}

static void test_format_argv(void **state)
{
    char buf[512], small[10];
    tqu_child_spec spec;
    size_t n;
    const char *want = "nsenter -t 1 -m -- sh update.sh -s /qaxdata/cli/10.6.0.2600 -u root "
                       "-P *** -p 22 -d '' -t 'a b' -x 'it'\\''s' -y '$HOME;rm' -z "
                       "key=v,a:b@c%d+e";
    (void)state;

    memset(&spec, 0, sizeof(spec));
    spec.prefix = ARGV("nsenter", "-t", "1", "-m", "--");
    spec.argv = ARGV("sh", "update.sh", "-s", "/qaxdata/cli/10.6.0.2600", "-u", "root", "-P",
                     "pa ss'word", "-p", "22", "-d", "", "-t", "a b", "-x", "it's", "-y",
                     "$HOME;rm", "-z", "key=v,a:b@c%d+e");
    spec.secret_args = TQU_CHILD_SECRET_ARG(7);
    n = tqu_child_format_argv(&spec, buf, sizeof(buf));
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(tqu_child_format_argv(&spec, NULL, 0), strlen(want));
    /* snprintf-style truncation */
    assert_int_equal(tqu_child_format_argv(&spec, small, sizeof(small)), strlen(want));
    assert_string_equal(small, "nsenter -");
    /* a secret in argv[0] too */
    spec.prefix = NULL;
    spec.argv = ARGV("hidden", "x");
    spec.secret_args = TQU_CHILD_SECRET_ARG(0);
    tqu_child_format_argv(&spec, buf, sizeof(buf));
    assert_string_equal(buf, "*** x");
}

static void test_tail(void **state)
{
    fx *f = *state;
    char path[PATH_MAX], buf[TQU_CHILD_TAIL_MAX], *big;
    const char *const redact[] = { "hunter2", "", NULL };
    size_t n = 0;
    int fd;

    pathf(path, f, "tail.log");
    write_file(path, "old run\n", 0600);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a\r\nb\x1b[0m\tc\nhunter2 hunter2x\n\n", 27), 27);
    close(fd);
    assert_int_equal(tqu_child_tail(path, 8, 0, redact, buf, sizeof(buf)), TQU_CHILD_OK);
    assert_string_equal(buf, "a \nb [0m\tc\n*** ***x");
    assert_int_equal(tqu_child_tail(path, 8, 1, NULL, buf, sizeof(buf)), TQU_CHILD_OK);
    assert_string_equal(buf, "hunter2 hunter2x");
    assert_int_equal(tqu_child_tail(path, 0, 100, NULL, buf, 12), TQU_CHILD_OK);
    assert_string_equal(buf, "...hunter2x");    /* no whole line fits in 11 bytes: its end */
    assert_int_equal(tqu_child_tail(path, 0, 100, NULL, buf, 20), TQU_CHILD_OK);
    assert_string_equal(buf, "hunter2 hunter2x");   /* whole lines that fit in 19 bytes */
    /* an offset past the end (the file was truncated since): from the start */
    assert_int_equal(tqu_child_tail(path, 1 << 20, 1, NULL, buf, sizeof(buf)), TQU_CHILD_OK);
    assert_string_equal(buf, "hunter2 hunter2x");
    assert_int_equal(tqu_child_tail(path, 0, 0, NULL, buf, 0), TQU_CHILD_EINVAL);
    pathf(path, f, "none.log");
    strcpy(buf, "junk");
    assert_int_equal(tqu_child_tail(path, 0, 0, NULL, buf, sizeof(buf)), TQU_CHILD_ELOG);
    assert_string_equal(buf, "");

    /* a long line of 2-byte characters is not cut inside one */
    big = malloc(20001);
    assert_non_null(big);
    for (int i = 0; i < 10000; i++) {
        big[n++] = (char)0xC3;
        big[n++] = (char)0xA9;
    }
    big[n] = '\0';
    pathf(path, f, "utf8.log");
    write_file(path, big, 0600);
    free(big);
    assert_int_equal(tqu_child_tail(path, 0, 1, NULL, buf, sizeof(buf)), TQU_CHILD_OK);
    assert_memory_equal(buf, "...", 3);
    assert_int_equal((unsigned char)buf[3], 0xC3);
    assert_int_equal((strlen(buf) - 3) % 2, 0);
}

/*
 * A secret is masked in every form a shell or a logger prints it: as it
 * is, shell single-quoted (set -x: 'it'\''s'), double-quoted, backslash-
 * escaped (printf %q), JSON-escaped. (Before: only the raw form; the
 * others leaked the password in status.upgrade.outputTail.)
 */
static void test_tail_masks_quoted_forms(void **state)
{
    fx *f = *state;
    char path[PATH_MAX], buf[TQU_CHILD_TAIL_MAX];
    const char *pw = "pa ss'w\"d\\$x";
    const char *const redact[] = { pw, NULL };
    const char *log =
        "raw: pa ss'w\"d\\$x\n"
        "+ sh update.sh -P 'pa ss'\\''w\"d\\$x' -p 22\n"
        "dq: \"pa ss'w\\\"d\\\\\\$x\"\n"
        "q: pa\\ ss\\'w\\\"d\\\\\\$x\n"
        "{\"msg\":\"pw pa ss'w\\\"d\\\\$x\"}\n";
    const char *want =
        "raw: ***\n"
        "+ sh update.sh -P '***' -p 22\n"
        "dq: \"***\"\n"
        "q: ***\n"
        "{\"msg\":\"pw ***\"}";

    write_file(pathf(path, f, "forms.log"), log, 0600);
    assert_int_equal(tqu_child_tail(path, 0, 10, redact, buf, sizeof(buf)), TQU_CHILD_OK);
    assert_string_equal(buf, want);
    assert_null(strstr(buf, "ss"));
}

static void test_run_alloc_failures(void **state)
{
    fx *f = *state;
    char log[PATH_MAX];
    tqu_child_result r;
    tqu_child_spec spec;
    int rc;

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", "-c", "echo ok $1", "sh", "s3cret");
    spec.secret_args = TQU_CHILD_SECRET_ARG(4);
    spec.log_path = pathf(log, f, "alloc.log");
    spec.log_truncate = 1;
    for (long n = 1;; n++) {
        failalloc_fail_at(n);
        rc = tqu_child_run(&spec, &r);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, TQU_CHILD_OK);
            assert_string_equal(r.tail, "ok ***");
            break;
        }
        /* before the start: a clean ENOMEM; for the tail: ran, no tail */
        if (rc == TQU_CHILD_ENOMEM)
            assert_int_equal(r.pid, 0);
        else
            assert_int_equal(rc, TQU_CHILD_OK);
        assert_true(n < 50);
    }
}

/* ===================================================== B: detached */

/* A script that counts its runs, prints, waits for dir/go, prints and exits 3. */
static char *waiting_script(char *buf, const fx *f)
{
    char body[3 * PATH_MAX];
    snprintf(body, sizeof(body),
             "echo run >> '%s/count'\necho started \"$@\"\n"
             "i=0; while [ ! -e '%s/go' ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done\n"
             "echo finishing\nexit 3\n",
             f->dir, f->dir);
    return script(buf, f, "wait.sh", body);
}

static char *state_dir(char *buf, const fx *f, const char *name)
{
    pathf(buf, f, name);
    assert_int_equal(mkdir(buf, 0700), 0);
    return buf;
}

static void test_detached_lifecycle(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], go[PATH_MAX], cnt[PATH_MAX], p[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;
    pid_t pid;
    int ws;
    char *text;

    waiting_script(s, f);
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, "x");
    spec.cwd = f->dir;
    spec.log_path = pathf(log, f, "state/update.log");
    spec.timeout_ms = 60000;

    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);

    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_true(st.supervisor_pid > 0 && st.child_pid > 0);
    assert_int_not_equal(st.supervisor_pid, getpid());
    assert_true(st.supervisor_alive && st.child_alive);
    assert_string_equal(st.log_path, log);
    assert_string_equal(st.cwd, f->dir);
    assert_int_equal(strlen(st.started_at), 20);
    /* its own session and process group */
    assert_int_not_equal(getsid(st.supervisor_pid), getsid(0));
    assert_int_equal(getpgid(st.child_pid), st.child_pid);
    assert_int_equal(getsid(st.child_pid), getsid(st.supervisor_pid));
    {
        char comm[PATH_MAX];
        FILE *fp;
        snprintf(comm, sizeof(comm), "/proc/%d/comm", (int)st.supervisor_pid);
        fp = fopen(comm, "r");
        assert_non_null(fp);
        assert_non_null(fgets(comm, sizeof(comm), fp));
        fclose(fp);
        assert_string_equal(comm, "tqu-supervisor\n");   /* for ps: not a second controller */
    }

    /* the controller "crashes": nothing in memory, the folder is read from scratch */
    memset(&st, 0, sizeof(st));
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_true(st.supervisor_alive && st.child_alive);
    assert_true(st.elapsed >= 0 && st.elapsed < 10);
    /* ...and by another process */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tqu_detached_status st2;
        int rc = tqu_detached_poll(dir, NULL, 0, &st2);
        _exit(rc == 0 && st2.state == TQU_DETACHED_RUNNING && st2.child_alive ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    /* a second start while it runs: refused, nothing started */
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_non_null(strstr(st.message, "already launched"));

    write_file(pathf(go, f, "go"), "", 0600);
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    assert_int_equal(st.exit_code, 3);
    assert_int_equal(st.signal, 0);
    assert_int_equal(st.timed_out, 0);
    assert_int_equal(st.cancelled, 0);
    assert_int_equal(st.exec_errno, 0);
    assert_int_equal(strlen(st.finished_at), 20);
    assert_true(st.elapsed > 0 && st.elapsed < 10);
    assert_true(st.supervisor_pid > 0 && st.child_pid > 0);
    assert_string_equal(st.tail, "started x\nfinishing");
    {
        char want[PATH_MAX + 16];
        snprintf(want, sizeof(want), "sh %s x", s);
        assert_string_equal(st.command, want);
    }

    /* and after it finished: still refused */
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    assert_int_equal(st.state, TQU_DETACHED_FINISHED);
    assert_int_equal(st.exit_code, 3);
    sleep_ms(100);
    text = read_file(pathf(cnt, f, "count"));
    assert_string_equal(text, "run\n");            /* ran exactly once */
    free(text);

    /* the state files, as documented */
    text = read_file(pathf(p, f, "state/exit"));
    assert_non_null(strstr(text, "\"exitCode\":3,\"signal\":0,\"timedOut\":false,"
                                 "\"cancelled\":false,\"execErrno\":0,\"finishedAt\":\""));
    free(text);
    text = read_file(pathf(p, f, "state/pid"));
    assert_non_null(strstr(text, "{\"bootId\":\""));
    assert_non_null(strstr(text, "\"childStart\":"));
    free(text);
    text = read_file(pathf(p, f, "state/launch"));
    assert_non_null(strstr(text, "\"startedAt\":"));
    assert_non_null(strstr(text, "\"argv\":"));
    assert_non_null(strstr(text, "\"logOffset\":"));
    free(text);
    {
        struct stat sb;
        assert_int_equal(stat(pathf(p, f, "state/launch"), &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal(stat(pathf(p, f, "state/exit"), &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
    }
}

/* Several controllers start the same request at once: exactly one command runs. */
static void test_detached_concurrent_starts(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], go[PATH_MAX], cnt[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;
    pid_t pids[6];
    int ok = 0, refused = 0;
    char *text;

    waiting_script(s, f);
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s);
    spec.log_path = pathf(log, f, "update.log");
    for (int i = 0; i < 6; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            tqu_detached_status st2;
            int rc = tqu_detached_start(&spec, dir, &st2);
            _exit(rc == TQU_CHILD_OK ? 0 : rc == TQU_CHILD_ELAUNCHED ? 1 : 2);
        }
    }
    for (int i = 0; i < 6; i++) {
        int ws;
        assert_int_equal(waitpid(pids[i], &ws, 0), pids[i]);
        assert_true(WIFEXITED(ws));
        ok += WEXITSTATUS(ws) == 0;
        refused += WEXITSTATUS(ws) == 1;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(refused, 5);
    write_file(pathf(go, f, "go"), "", 0600);
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    text = read_file(pathf(cnt, f, "count"));
    assert_string_equal(text, "run\n");
    free(text);
}

/* The starting "controller" is killed with SIGKILL right after the start. */
static void test_detached_controller_killed(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], go[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;
    pid_t pid;
    int ws;

    waiting_script(s, f);
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s);
    spec.log_path = pathf(log, f, "update.log");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tqu_detached_status st2;
        tqu_detached_start(&spec, dir, &st2);
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    /* the restarted controller re-attaches */
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_true(st.supervisor_alive && st.child_alive);
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    write_file(pathf(go, f, "go"), "", 0600);
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    assert_int_equal(st.exit_code, 3);
}

static void write_marker(const fx *f, const char *dir)
{
    char p[PATH_MAX], text[PATH_MAX + 256];
    snprintf(p, sizeof(p), "%s/launch", dir);
    snprintf(text, sizeof(text),
             "{\"version\":1,\"startedAt\":\"2025-12-05T14:00:00Z\",\"command\":\"sh update.sh\","
             "\"argv\":[\"sh\",\"update.sh\"],\"cwd\":\"/\",\"log\":\"%s/none.log\","
             "\"logOffset\":0,\"timeoutMs\":0,\"graceMs\":500,\"launcherPid\":1}\n", f->dir);
    write_file(p, text, 0600);
}

static void test_detached_lost(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;

    state_dir(dir, f, "state");
    write_marker(f, dir);              /* a crash between the marker and the start */
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_LOST);
    assert_non_null(strstr(st.message, "never ran"));
    assert_string_equal(st.command, "sh update.sh");
    assert_string_equal(st.started_at, "2025-12-05T14:00:00Z");
    assert_true(st.elapsed > 0);
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("true");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    assert_int_equal(st.state, TQU_DETACHED_LOST);
    assert_int_equal(tqu_detached_kill(dir, NULL, 0), TQU_CHILD_OK);   /* nothing to kill */

    /* a malformed marker is still a marker */
    {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/launch", dir);
        write_file(p, "{not json", 0600);
        assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_ESTATE);
        assert_int_equal(st.state, TQU_DETACHED_LOST);
        assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    }
}

/* /proc/self/stat field 22 */
static unsigned long long my_start(void)
{
    char buf[1024], *p;
    FILE *fp = fopen("/proc/self/stat", "r");
    size_t n;
    int field = 3;

    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')') + 2;
    for (; field < 22; p++)
        if (*p == ' ')
            field++;
    return strtoull(p, NULL, 10);
}

static void write_pid_file(const char *dir, const char *boot, pid_t sup, unsigned long long ss,
                           pid_t child, unsigned long long cs)
{
    char p[PATH_MAX], text[512];
    snprintf(p, sizeof(p), "%s/pid", dir);
    snprintf(text, sizeof(text), "{\"bootId\":\"%s\",\"supervisorPid\":%d,\"supervisorStart\":%llu,"
             "\"childPid\":%d,\"childStart\":%llu}\n", boot, (int)sup, ss, (int)child, cs);
    write_file(p, text, 0600);
}

static void test_detached_pid_identity(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX], boot[64] = "";
    tqu_detached_status st;
    unsigned long long me = my_start();
    FILE *fp;

    fp = fopen("/proc/sys/kernel/random/boot_id", "r");
    assert_non_null(fp);
    assert_non_null(fgets(boot, sizeof(boot), fp));
    fclose(fp);
    boot[strcspn(boot, "\n")] = '\0';
    state_dir(dir, f, "state");
    write_marker(f, dir);

    /* live pids, but started at other times: not ours */
    write_pid_file(dir, boot, getpid(), me + 1, getppid(), 1);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_LOST);
    assert_int_equal(st.supervisor_pid, getpid());
    assert_int_equal(st.supervisor_alive, 0);
    assert_int_equal(st.child_alive, 0);
    assert_non_null(strstr(st.message, "no exit status was recorded"));
    /* the same pid with its real start: ours */
    write_pid_file(dir, boot, getpid(), me, 0, 0);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_int_equal(st.supervisor_alive, 1);
    /* ...but not after a reboot */
    write_pid_file(dir, "00000000-0000-0000-0000-000000000000", getpid(), me, 0, 0);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_LOST);
    /* only the command alive: RUNNING, and said so */
    write_pid_file(dir, boot, 999999999, 5, getpid(), me);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_int_equal(st.supervisor_alive, 0);
    assert_int_equal(st.child_alive, 1);
    assert_non_null(strstr(st.message, "supervisor"));
    /* garbage numbers are nobody */
    {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/pid", dir);
        write_file(p, "{\"supervisorPid\":-5,\"supervisorStart\":1e300,\"childPid\":\"x\"}", 0600);
        assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
        assert_int_equal(st.state, TQU_DETACHED_LOST);
    }
}

static void test_detached_timeout_unpolled(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], gc[PATH_MAX], ex[PATH_MAX],
         body[PATH_MAX + 64];
    tqu_detached_status st;
    tqu_child_spec spec;
    struct stat sb;
    double t0;
    pid_t grandchild;

    pathf(gc, f, "gc.pid");
    snprintf(body, sizeof(body), "sleep 60 &\necho $! > '%s'\necho waiting\nwait\n", gc);
    script(s, f, "long.sh", body);
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s);
    spec.log_path = pathf(log, f, "long.log");
    spec.timeout_ms = 1000;
    spec.grace_ms = 500;
    t0 = test_now();
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    grandchild = read_pid_file(gc);
    /* nobody polls: only look for the exit file to appear */
    pathf(ex, f, "state/exit");
    while (stat(ex, &sb) < 0 && test_now() - t0 < 5 * test_slack())
        sleep_ms(50);
    assert_int_equal(stat(ex, &sb), 0);
    assert_true(test_now() - t0 >= 0.9);
    assert_true(test_now() - t0 < 3.0 * test_slack());
    assert_true(wait_gone(grandchild, 2000));
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_FINISHED);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(st.cancelled, 0);
    assert_int_equal(st.exit_code, -1);
    assert_int_equal(st.signal, SIGTERM);
    assert_string_equal(st.tail, "waiting");
    assert_true(wait_gone(st.supervisor_pid, 2000));
}

/* Every file under dir (recursively) free of needle. */
static int folder_contains(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    assert_non_null(d);
    while (!found && (e = readdir(d))) {
        char p[PATH_MAX];
        struct stat sb;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        assert_int_equal(lstat(p, &sb), 0);
        if (S_ISDIR(sb.st_mode)) {
            found = folder_contains(p, needle);
        } else {
            char *t = read_file(p);
            found = t && strstr(t, needle);
            free(t);
        }
    }
    closedir(d);
    return found;
}

static int proc_cmdline_contains(pid_t pid, const char *needle)
{
    char p[64], buf[65536];
    FILE *fp;
    size_t n;

    snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)pid);
    fp = fopen(p, "r");
    if (!fp)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    for (size_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_detached_secret(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], logs[PATH_MAX], args[PATH_MAX], go[PATH_MAX],
         body[3 * PATH_MAX], want[PATH_MAX + 128], cmd[1024];
    const char *secret = "S3cr3t-P@ss w0rd";
    const char *const redact[] = { secret, NULL };
    tqu_detached_status st;
    tqu_child_spec spec;
    char *text;

    pathf(args, f, "args.out");
    snprintf(body, sizeof(body), "printf '%%s\\n' \"$@\" > '%s'\necho \"logging in with $4\"\n"
             "i=0; while [ ! -e '%s/go' ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done\n",
             args, f->dir);
    script(s, f, "update.sh", body);
    state_dir(dir, f, "state");
    state_dir(logs, f, "logs");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, "-u", "root", "-P", (char *)secret, "-p", "22");
    spec.secret_args = TQU_CHILD_SECRET_ARG(5);
    spec.cwd = f->dir;
    spec.log_path = pathf(log, f, "logs/update.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    snprintf(want, sizeof(want), "sh %s -u root -P *** -p 22", s);
    assert_string_equal(st.command, want);
    tqu_child_format_argv(&spec, cmd, sizeof(cmd));
    assert_string_equal(cmd, want);
    /* the vendor gets it */
    text = NULL;
    for (int i = 0; i < 250 && !(text && strstr(text, "22\n")); i++) {
        free(text);
        sleep_ms(20);
        text = read_file(args);
    }
    assert_non_null(text);
    assert_string_equal(text, "-u\nroot\n-P\nS3cr3t-P@ss w0rd\n-p\n22\n");
    free(text);
    /* not our command lines: the controller's and the supervisor's */
    assert_false(proc_cmdline_contains(getpid(), "S3cr3t"));
    assert_false(proc_cmdline_contains(st.supervisor_pid, "S3cr3t"));
    /* returned tails, redacted */
    for (int i = 0; i < 250; i++) {
        assert_int_equal(tqu_detached_poll(dir, redact, 0, &st), TQU_CHILD_OK);
        if (*st.tail)
            break;
        sleep_ms(20);
    }
    assert_string_equal(st.tail, "logging in with ***");
    assert_null(strstr(st.command, "S3cr3t"));
    write_file(pathf(go, f, "go"), "", 0600);
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    assert_int_equal(st.exit_code, 0);
    /* nowhere in the state folder */
    assert_false(folder_contains(dir, "S3cr3t"));
    assert_false(folder_contains(dir, "w0rd"));
    text = read_file(pathf(args, f, "state/launch"));
    assert_non_null(strstr(text, "\"-P\", \"***\""));
    free(text);
    /* the start refused afterwards says nothing of it either */
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    assert_null(strstr(st.message, "S3cr3t"));
    assert_string_equal(st.tail, "logging in with ***");
}

static void test_detached_errors_before_marker(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX], missing[PATH_MAX], log[PATH_MAX], p[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;
    DIR *d;
    struct dirent *e;
    int entries = 0;

    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("true");
    spec.cwd = pathf(missing, f, "not-extracted-yet");
    spec.log_path = pathf(log, f, "state/update.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ENOCWD);
    assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
    assert_non_null(strstr(st.message, missing));
    spec.cwd = f->dir;
    spec.argv = ARGV("tqu-no-such-command");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ENOTFOUND);
    assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
    spec.argv = ARGV("true");
    spec.log_path = "relative.log";
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_EINVAL);
    spec.log_path = pathf(p, f, "no-dir/x.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELOG);
    assert_int_equal(tqu_detached_start(&spec, pathf(p, f, "no-state"), &st), TQU_CHILD_ESTATE);
    /* nothing written: the folder is empty, and a poll says NOT_LAUNCHED */
    d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)))
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    assert_int_equal(entries, 0);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);

    /* leftovers without a marker: refused */
    write_file(pathf(p, f, "state/exit"), "{}", 0600);
    spec.log_path = NULL;
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ESTATE);
    assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
    assert_int_not_equal(access(pathf(p, f, "state/launch"), F_OK), 0);
}

static void test_detached_exec_failure(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX], bad[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;

    pathf(bad, f, "noshebang");
    write_file(bad, "echo hi\n", 0755);
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV(bad);
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ESPAWN);
    assert_int_equal(st.state, TQU_DETACHED_FINISHED);
    assert_int_equal(st.exit_code, 127);
    assert_int_equal(st.exec_errno, ENOEXEC);
    assert_non_null(strstr(st.message, "Exec format error"));
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    assert_int_equal(st.exit_code, 127);
    assert_int_equal(st.exec_errno, ENOEXEC);
    /* launched is launched */
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
}

static void test_detached_kill(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], gc[PATH_MAX], body[PATH_MAX + 64];
    tqu_detached_status st;
    tqu_child_spec spec;
    double t0;
    pid_t grandchild;

    pathf(gc, f, "gc.pid");
    snprintf(body, sizeof(body), "sleep 60 &\necho $! > '%s'\nwait\n", gc);
    script(s, f, "long.sh", body);
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s);
    spec.log_path = pathf(log, f, "long.log");
    spec.grace_ms = 500;
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    grandchild = read_pid_file(gc);
    t0 = test_now();
    assert_int_equal(tqu_detached_kill(dir, NULL, 0), TQU_CHILD_OK);
    assert_true(test_now() - t0 < 0.3 * test_slack());            /* the supervisor does the waiting */
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 3000, &st));
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.timed_out, 0);
    assert_int_equal(st.signal, SIGTERM);
    assert_true(wait_gone(grandchild, 2000));
    assert_int_equal(tqu_detached_kill(dir, NULL, 0), TQU_CHILD_OK);   /* again: nothing */
    {
        char msg[256];
        assert_int_equal(tqu_detached_kill(pathf(s, f, "nothing-here"), msg, sizeof(msg)),
                         TQU_CHILD_ESTATE);
        assert_non_null(strstr(msg, "nothing-here"));
    }
}

static void test_detached_kill_without_supervisor(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX];
    tqu_detached_status st;
    tqu_child_spec spec;
    pid_t child;

    script(s, f, "stubborn.sh",
           "trap '' TERM\ni=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n");
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s);
    spec.log_path = pathf(log, f, "s.log");
    spec.grace_ms = 300;
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    child = st.child_pid;
    assert_int_equal(kill(st.supervisor_pid, SIGKILL), 0);
    assert_true(wait_gone(st.supervisor_pid, 2000));
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_RUNNING);
    assert_int_equal(st.supervisor_alive, 0);
    assert_int_equal(st.child_alive, 1);
    assert_non_null(strstr(st.message, "will not be recorded"));
    assert_int_equal(tqu_detached_kill(dir, NULL, 0), TQU_CHILD_OK);   /* TERM ignored: KILL */
    assert_true(wait_gone(child, 2000));
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_LOST);
}

/* The controller's listening socket (no close-on-exec) is not kept by the supervisor. */
static void test_detached_holds_no_controller_fds(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], go[PATH_MAX], p[PATH_MAX], link[256];
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    tqu_detached_status st;
    tqu_child_spec spec;
    int ls, ls2, one = 1;
    struct rlimit rl;
    sigset_t old;
    DIR *d;
    struct dirent *e;
    char *text;

    ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(ls, 4), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);

    act_like_controller(&old);
    script(s, f, "probe.sh", "grep -E '^Sig(Blk|Ign):' /proc/self/status\n"
                             "ls -l /proc/$$/fd > \"$1/fds.txt\"\n"
                             "grep -c -e socket -e pipe \"$1/fds.txt\"\n"
                             "i=0; while [ ! -e \"$1/go\" ] && [ $i -lt 1000 ]; do sleep 0.02; "
                             "i=$((i+1)); done\n");
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, f->dir);
    spec.log_path = pathf(log, f, "probe.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    stop_acting(&old);

    /* the controller restarts: its port must be free again */
    close(ls);
    ls2 = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(ls2, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(ls2, (struct sockaddr *)&a, sizeof(a)), 0);
    close(ls2);
    /* the supervisor: /dev/null on 0-2, the state folder, its reserved exit file, a pidfd;
       no socket, no pipe
       (its report pipe is closed just after the report: give it a moment) */
    snprintf(p, sizeof(p), "/proc/%d/fd", (int)st.supervisor_pid);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    for (int attempt = 0;; attempt++) {
        char bad[PATH_MAX + 300] = "";
        d = opendir(p);
        assert_non_null(d);
        while ((e = readdir(d))) {
            char fp[PATH_MAX + 300], reserved[PATH_MAX + 32];
            ssize_t n;
            if (e->d_name[0] == '.' || (rlim_t)atol(e->d_name) >= rl.rlim_cur)
                continue;           /* beyond our limit: valgrind's own, if any */
            snprintf(fp, sizeof(fp), "%s/%s", p, e->d_name);
            n = readlink(fp, link, sizeof(link) - 1);
            if (n <= 0)
                continue;           /* closed while we looked */
            link[n] = '\0';
            snprintf(reserved, sizeof(reserved), "%s/exit.reserved", dir);
            if (atoi(e->d_name) <= 2 ? strcmp(link, "/dev/null")
                                     : strcmp(link, dir) && strcmp(link, reserved) &&
                                       !strstr(link, "pidfd"))
                snprintf(bad, sizeof(bad), "supervisor fd %s -> %s", e->d_name, link);
        }
        closedir(d);
        if (!*bad)
            break;
        if (attempt == 50)
            fail_msg("%s", bad);
        sleep_ms(20);
    }
    /* the command: clean signals; 0-2 and the script's own descriptor (sh), ls's dir */
    write_file(pathf(go, f, "go"), "", 0600);
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    text = read_file(log);
    assert_non_null(text);
    assert_string_equal(mask_glibc_signals(text), CLEAN_SIGNALS "\n0\n");   /* the shell holds no socket or pipe */
    free(text);
}

static void test_detached_alloc_failures(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX], log[PATH_MAX], name[32];
    tqu_detached_status st;
    tqu_child_spec spec;
    int rc;

    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", "-c", "echo done $1", "sh", "s3cret");
    spec.secret_args = TQU_CHILD_SECRET_ARG(4);
    for (long n = 1;; n++) {
        snprintf(name, sizeof(name), "s%ld", n);
        state_dir(dir, f, name);
        snprintf(log, sizeof(log), "%s/out.log", dir);
        spec.log_path = log;
        failalloc_fail_at(n);
        rc = tqu_detached_start(&spec, dir, &st);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, TQU_CHILD_OK);
            break;
        }
        /* every allocation comes before the marker: nothing launched */
        assert_int_equal(rc, TQU_CHILD_ENOMEM);
        assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
        snprintf(log, sizeof(log), "%s/launch", dir);
        assert_int_not_equal(access(log, F_OK), 0);
        assert_true(n < 100);
    }
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 5000, &st));
    /* polling, failing each allocation in turn */
    for (long n = 1;; n++) {
        const char *const redact[] = { "s3cret", NULL };
        failalloc_fail_at(n);
        rc = tqu_detached_poll(dir, redact, 0, &st);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, TQU_CHILD_OK);
            assert_int_equal(st.state, TQU_DETACHED_FINISHED);
            assert_string_equal(st.tail, "done ***");
            break;
        }
        /* cJSON reports no ENOMEM of its own: a failed parse reads as malformed; the
           pids of a finished run are best effort */
        if (rc == TQU_CHILD_OK && st.state == TQU_DETACHED_FINISHED && !st.supervisor_pid)
            continue;
        if (rc != TQU_CHILD_ENOMEM && rc != TQU_CHILD_ESTATE)
            fail_msg("allocation %ld: rc %d (%s)", n, rc, st.message);
        assert_int_not_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
        assert_true(n < 100);
    }
}


/*
 * update.sh's own data backup can fill the disk where the state folder
 * lives: its exit status must still be recorded (the exit file is
 * reserved at launch and written in place). A small tmpfs, filled by the
 * command before it exits 3. (Before: no exit file, state Lost.)
 */
/* A 256 KiB tmpfs at <tmp>/small (unmounted by teardown) and its state
 * folder in dir; skips the test where no tmpfs can be mounted. */
static void small_tmpfs(fx *f, char *mnt, char *dir, size_t dlen)
{
    pathf(mnt, f, "small");
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700") < 0) {
        print_message("cannot mount a tmpfs here (%s): the full-disk case is not tested\n",
                      strerror(errno));
        skip();
    }
    snprintf(f->mounted, sizeof(f->mounted), "%s", mnt);
    snprintf(dir, dlen, "%s/state", mnt);
    assert_int_equal(mkdir(dir, 0700), 0);
}

static void test_detached_exit_on_full_disk(void **state)
{
    fx *f = *state;
    char mnt[PATH_MAX], dir[PATH_MAX + 16], s[PATH_MAX], log[PATH_MAX], probe[PATH_MAX + 16];
    tqu_detached_status st;
    tqu_child_spec spec;
    int fd;

    small_tmpfs(f, mnt, dir, sizeof(dir));
    script(s, f, "fill.sh", "dd if=/dev/zero of=\"$1/fill\" bs=4096 2>/dev/null\n"
                            "echo filled\nexit 3\n");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, mnt);
    spec.log_path = pathf(log, f, "fill.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    if (!wait_state(dir, TQU_DETACHED_FINISHED, 10000, &st))
        fail_msg("state %s: %s", tqu_detached_state_name(st.state), st.message);
    assert_int_equal(st.exit_code, 3);
    assert_int_equal(st.signal, 0);
    assert_string_equal(st.tail, "filled");
    /* the disk really is full */
    snprintf(probe, sizeof(probe), "%s/probe", mnt);
    fd = open(probe, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), -1);
    assert_int_equal(errno, ENOSPC);
    close(fd);
    umount2(mnt, MNT_DETACH);
    f->mounted[0] = '\0';
}

/* Fill the filesystem of path's folder with path, then free exactly `pages`
 * pages (a spacer written first and removed last). */
static void fill_leaving(const char *path, const char *spacer, int pages)
{
    char buf[4096];
    long page = sysconf(_SC_PAGESIZE);
    int fd;

    memset(buf, 'x', sizeof(buf));
    unlink(path);
    fd = open(spacer, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    for (long i = 0; i < pages * page / (long)sizeof(buf); i++)
        assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    assert_int_equal(fsync(fd), 0);
    close(fd);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    while (write(fd, buf, sizeof(buf)) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    close(fd);
    assert_int_equal(unlink(spacer), 0);
}

/*
 * A full filesystem at each write before the command runs: the reserved
 * exit file (no room at all), the launch marker (room for the reserved file
 * only), the supervisor's pid file (room for both but not the pid file).
 * Each start is refused with the file and ENOSPC named, the command has not
 * run, and nothing is left that says it did (NOT_LAUNCHED, no marker, no
 * reserved file), so a later start may run it; with room, it runs exactly
 * once. (The exit file, written after the command: test_detached_exit_on_full_disk.)
 */
static void test_detached_full_disk_before_run(void **state)
{
    fx *f = *state;
    static const char *const names[] = { "exit.reserved", "launch", "pid" };
    char mnt[PATH_MAX], dir[PATH_MAX + 16], s[PATH_MAX], log[PATH_MAX], cnt[PATH_MAX],
         fill[PATH_MAX + 16], spacer[PATH_MAX + 16], p[PATH_MAX + 32], want[64];
    tqu_detached_status st;
    tqu_child_spec spec;
    char *text;

    if (sysconf(_SC_PAGESIZE) != 4096) {
        print_message("page size %ld: the one-page steps assume 4096\n", sysconf(_SC_PAGESIZE));
        skip();
    }
    small_tmpfs(f, mnt, dir, sizeof(dir));
    snprintf(fill, sizeof(fill), "%s/fill", mnt);
    snprintf(spacer, sizeof(spacer), "%s/spacer", mnt);
    pathf(cnt, f, "runs");
    script(s, f, "once.sh", "echo run >> \"$1\"\necho ran\n");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, cnt);
    spec.log_path = pathf(log, f, "once.log");

    for (int free_pages = 0; free_pages < 3; free_pages++) {
        fill_leaving(fill, spacer, free_pages);
        assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ESTATE);
        assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
        snprintf(want, sizeof(want), "/%s: %s", names[free_pages], strerror(ENOSPC));
        if (!strstr(st.message, want))
            fail_msg("%d free pages: '%s' does not name '%s'", free_pages, st.message, want);
        assert_int_not_equal(access(cnt, F_OK), 0);          /* it never ran */
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            if (access(p, F_OK) == 0)
                fail_msg("%d free pages: %s left behind", free_pages, names[i]);
        }
        assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
        assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
    }
    /* room again: it starts, runs once, and its exit is recorded */
    assert_int_equal(unlink(fill), 0);
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    if (!wait_state(dir, TQU_DETACHED_FINISHED, 10000, &st))
        fail_msg("state %s: %s", tqu_detached_state_name(st.state), st.message);
    assert_int_equal(st.exit_code, 0);
    text = read_file(cnt);
    assert_non_null(text);
    assert_string_equal(text, "run\n");
    free(text);
    umount2(mnt, MNT_DETACH);
    f->mounted[0] = '\0';
}

/*
 * A starter killed -9 between reserving the exit file and writing the
 * launch marker leaves exit.reserved (blank, its lock gone with it) and no
 * marker: nothing was launched, so the next start runs the command, once,
 * and records its exit in that file. (The state such a kill leaves is made
 * by hand: the window is a few system calls wide.)
 */
static void test_detached_killed_before_marker(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], cnt[PATH_MAX], p[PATH_MAX + 32],
         blank[4096];
    tqu_detached_status st;
    tqu_child_spec spec;
    char *text;

    pathf(cnt, f, "runs");
    script(s, f, "once.sh", "echo run >> \"$1\"\necho ran\nexit 4\n");
    state_dir(dir, f, "state");
    memset(blank, ' ', sizeof(blank));
    blank[sizeof(blank) - 1] = '\0';
    snprintf(p, sizeof(p), "%s/exit.reserved", dir);
    write_file(p, blank, 0600);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_int_equal(st.state, TQU_DETACHED_NOT_LAUNCHED);
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, cnt);
    spec.log_path = pathf(log, f, "once.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    if (!wait_state(dir, TQU_DETACHED_FINISHED, 10000, &st))
        fail_msg("state %s: %s", tqu_detached_state_name(st.state), st.message);
    assert_int_equal(st.exit_code, 4);
    /* a second start is refused: it ran */
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
    text = read_file(cnt);
    assert_non_null(text);
    assert_string_equal(text, "run\n");
    free(text);
}

/*
 * A slow supervisor start: between the launch marker and the pid file the
 * state is Starting (before: Lost, "never ran", which made the Upgrade
 * step Failed, removed the finalizer, and update.sh then ran unwatched),
 * also once the starter itself is gone; the command runs exactly once.
 */
static void test_detached_slow_start(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], cnt[PATH_MAX], mark[PATH_MAX + 16],
         msg[TQU_CHILD_MSG_MAX], *text;
    tqu_detached_status st;
    tqu_child_spec spec;
    pid_t starter;
    int ws;

    pathf(cnt, f, "runs");
    script(s, f, "once.sh", "echo run >> \"$1\"\necho ran\n");
    state_dir(dir, f, "state");
    snprintf(mark, sizeof(mark), "%s/launch", dir);
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, cnt);
    spec.log_path = pathf(log, f, "once.log");

    for (int kill_starter = 0; kill_starter < 2; kill_starter++) {
        if (kill_starter) {
            test_rmtree(dir);
            state_dir(dir, f, "state");
            unlink(cnt);
        }
        tqu__child_supervisor_delay_ms = 1500;
        starter = fork();
        assert_true(starter >= 0);
        if (starter == 0) {
            int rc = tqu_detached_start(&spec, dir, &st);
            _exit(rc == TQU_CHILD_OK && st.state == TQU_DETACHED_RUNNING ? 0 : 1);
        }
        tqu__child_supervisor_delay_ms = 0;
        for (int i = 0; i < 250 && access(mark, F_OK) != 0; i++)
            sleep_ms(10);
        assert_int_equal(access(mark, F_OK), 0);
        if (kill_starter) {
            sleep_ms(200);                       /* its supervisor is forked by now */
            kill(starter, SIGKILL);
            assert_int_equal(waitpid(starter, &ws, 0), starter);
        }
        assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
        if (st.state != TQU_DETACHED_STARTING)
            fail_msg("round %d: state %s: %s", kill_starter, tqu_detached_state_name(st.state),
                     st.message);
        /* a second start is refused, and stopping waits for a pid to stop */
        assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_ELAUNCHED);
        assert_int_equal(st.state, TQU_DETACHED_STARTING);
        assert_int_equal(tqu_detached_kill(dir, msg, sizeof(msg)), TQU_CHILD_ESTATE);
        assert_non_null(strstr(msg, "still starting"));
        if (!kill_starter) {
            assert_int_equal(waitpid(starter, &ws, 0), starter);
            assert_true(WIFEXITED(ws));
            assert_int_equal(WEXITSTATUS(ws), 0);
        }
        assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 10000, &st));
        assert_int_equal(st.exit_code, 0);
        text = read_file(cnt);
        assert_non_null(text);
        assert_string_equal(text, "run\n");
        free(text);
    }
}

/* A /proc file (its size says 0) into buf; the bytes read. */
static size_t read_proc(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;
    ssize_t n;

    assert_true(fd >= 0);
    while (got < len && (n = read(fd, buf + got, len - got)) > 0)
        got += (size_t)n;
    close(fd);
    return got;
}

/* Whether needle is anywhere in pid's readable memory (regions up to 64 MiB). */
static int memory_holds(pid_t pid, const char *needle)
{
    char path[64], line[512];
    FILE *maps;
    int fd, found = 0;
    size_t nl = strlen(needle);

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    maps = fopen(path, "r");
    assert_non_null(maps);
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    while (!found && fgets(line, sizeof(line), maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            hi - lo > 64UL << 20 || strstr(line, "[vvar]") || strstr(line, "[vsyscall]"))
            continue;
        char *buf = malloc(hi - lo);
        assert_non_null(buf);
        ssize_t n = pread(fd, buf, hi - lo, (off_t)lo);
        if (n > 0 && memmem(buf, (size_t)n, needle, nl))
            found = 1;
        free(buf);
    }
    close(fd);
    fclose(maps);
    return found;
}

/*
 * The supervisor of a vendor process lives for hours: it is a fresh exec
 * of our own binary, not a fork holding the controller's heap (its token,
 * its keys). Its exe is ours, its command line the hidden mode and nothing
 * else, its environment empty, and its memory holds neither a marker
 * placed in our heap nor (once the command runs) the secret argument.
 * (Before: a fork, cmdline the test's own, the marker in its heap.)
 */
static void test_detached_supervisor_fresh_exec(void **state)
{
    fx *f = *state;
    char s[PATH_MAX], dir[PATH_MAX], log[PATH_MAX], go[PATH_MAX], p[64], self[PATH_MAX],
         exe[PATH_MAX], pw[64], buf[4096], *marker;
    const char want_cmd[] = "tqu-supervisor\0--tqu-internal-supervisor";
    tqu_detached_status st;
    tqu_child_spec spec;
    ssize_t n;
    int held = 1;

    marker = malloc(64);
    assert_non_null(marker);
    snprintf(marker, 64, "TQU-HEAP-MARKER-%d-%ld", (int)getpid(), (long)time(NULL));
    snprintf(pw, sizeof(pw), "S3cret-Pw-%d-%ld", (int)getpid(), (long)time(NULL));
    script(s, f, "wait.sh", "i=0; while [ ! -e \"$1\" ] && [ $i -lt 500 ]; do sleep 0.02; "
                            "i=$((i+1)); done\n");
    state_dir(dir, f, "state");
    memset(&spec, 0, sizeof(spec));
    spec.argv = ARGV("sh", s, pathf(go, f, "go"), "-P", pw);
    spec.secret_args = TQU_CHILD_SECRET_ARG(4);
    spec.log_path = pathf(log, f, "wait.log");
    assert_int_equal(tqu_detached_start(&spec, dir, &st), TQU_CHILD_OK);
    assert_true(st.supervisor_pid > 0);

    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    snprintf(p, sizeof(p), "/proc/%d/exe", (int)st.supervisor_pid);
    n = readlink(p, exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    assert_string_equal(exe, self);
    snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)st.supervisor_pid);
    assert_int_equal(read_proc(p, buf, sizeof(buf)), sizeof(want_cmd));
    assert_memory_equal(buf, want_cmd, sizeof(want_cmd));
    snprintf(p, sizeof(p), "/proc/%d/environ", (int)st.supervisor_pid);
    assert_int_equal(read_proc(p, buf, sizeof(buf)), 0);
    /* the scan finds what is there: its own argv, the command's password */
    assert_true(memory_holds(st.supervisor_pid, "--tqu-internal-supervisor"));
    assert_true(memory_holds(st.child_pid, pw));
    assert_false(memory_holds(st.supervisor_pid, marker));
    for (int i = 0; i < 50 && (held = memory_holds(st.supervisor_pid, pw)); i++)
        sleep_ms(20);                     /* wiped just after its report */
    assert_false(held);

    write_file(go, "", 0600);
    assert_true(wait_state(dir, TQU_DETACHED_FINISHED, 10000, &st));
    assert_int_equal(st.exit_code, 0);
    free(marker);
}

/* A launch marker written by hand: startedAt, and the boot clock fields when boot_id. */
static void write_marker_file(const char *dir, long long started, const char *boot_id,
                              long long boot_ms)
{
    char path[PATH_MAX + 16], text[1024], when[32];
    struct tm tm;
    time_t t = (time_t)started;

    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (boot_id)
        snprintf(text, sizeof(text), "{\"version\":1,\"startedAt\":\"%s\",\"command\":\"x\","
                 "\"cwd\":\"/\",\"log\":\"\",\"bootId\":\"%s\",\"startedBootMs\":%lld}\n",
                 when, boot_id, boot_ms);
    else
        snprintf(text, sizeof(text), "{\"version\":1,\"startedAt\":\"%s\",\"command\":\"x\","
                 "\"cwd\":\"/\",\"log\":\"\"}\n", when);
    snprintf(path, sizeof(path), "%s/launch", dir);
    write_file(path, text, 0600);
}

/*
 * Elapsed times come from the boot clock: a wall clock stepped back after
 * the start must not make them negative (the CRD refuses a negative
 * elapsedSeconds and status freezes). (Before: startedAt from the wall
 * clock, -3600 here.)
 */
static void test_detached_elapsed_monotonic(void **state)
{
    fx *f = *state;
    char dir[PATH_MAX], boot[64] = "";
    tqu_detached_status st;
    struct timespec bt;
    long long now = (long long)time(NULL), bms;
    FILE *fp;

    fp = fopen("/proc/sys/kernel/random/boot_id", "r");
    assert_non_null(fp);
    assert_non_null(fgets(boot, sizeof(boot), fp));
    fclose(fp);
    boot[strcspn(boot, "\n")] = '\0';
    clock_gettime(CLOCK_BOOTTIME, &bt);
    bms = (long long)bt.tv_sec * 1000 + bt.tv_nsec / 1000000;

    /* started 5 s ago by the boot clock; the wall clock since stepped back an hour */
    state_dir(dir, f, "same-boot");
    write_marker_file(dir, now + 3600, boot, bms - 5000);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_true(st.elapsed >= 5 && st.elapsed < 5 + 3 * test_slack());

    /* an older marker without the boot clock: the wall clock, but never negative */
    state_dir(dir, f, "no-boot-clock");
    write_marker_file(dir, now + 3600, NULL, 0);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_true(st.elapsed == 0);

    /* another boot: the boot clock means nothing, the wall clock is all there is */
    state_dir(dir, f, "other-boot");
    write_marker_file(dir, now - 100, "00000000-0000-0000-0000-000000000000", bms + 999999);
    assert_int_equal(tqu_detached_poll(dir, NULL, 0, &st), TQU_CHILD_OK);
    assert_true(st.elapsed >= 100 && st.elapsed < 100 + 3 * test_slack());
}

static void test_strings(void **state)
{
    (void)state;
    assert_string_equal(tqu_child_strerror(TQU_CHILD_OK), "success");
    assert_string_equal(tqu_child_strerror(TQU_CHILD_ELAUNCHED), "already launched");
    assert_string_equal(tqu_child_strerror(-1), "unknown error");
    assert_string_equal(tqu_child_strerror(TQU_CHILD_RC_MAX), "unknown error");
    for (int i = 0; i < TQU_CHILD_RC_MAX; i++)
        assert_string_not_equal(tqu_child_strerror(i), "unknown error");
    assert_string_equal(tqu_detached_state_name(TQU_DETACHED_LOST), "Lost");
    assert_string_equal(tqu_detached_state_name(TQU_DETACHED_NOT_LAUNCHED), "NotLaunched");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_run_exit_codes),
        T(test_run_cwd_and_argv),
        T(test_run_exec_prefix),
        T(test_run_prefix_keeps_cwd),
        T(test_run_signals_reset),
        T(test_run_no_inherited_fds),
        T(test_run_big_output),
        T(test_run_timeout_kills_group),
        T(test_run_cancel),
        T(test_run_errors_before_start),
        T(test_run_log_modes),
        T(test_run_environment),
        T(test_run_secret_redacted),
        T(test_format_argv),
        T(test_tail),
        T(test_tail_masks_quoted_forms),
        T(test_run_alloc_failures),
        T(test_detached_lifecycle),
        T(test_detached_concurrent_starts),
        T(test_detached_controller_killed),
        T(test_detached_lost),
        T(test_detached_pid_identity),
        T(test_detached_timeout_unpolled),
        T(test_detached_secret),
        T(test_detached_errors_before_marker),
        T(test_detached_exec_failure),
        T(test_detached_kill),
        T(test_detached_kill_without_supervisor),
        T(test_detached_holds_no_controller_fds),
        T(test_detached_alloc_failures),
        T(test_detached_exit_on_full_disk),
        T(test_detached_full_disk_before_run),
        T(test_detached_killed_before_marker),
        T(test_detached_slow_start),
        T(test_detached_supervisor_fresh_exec),
        T(test_detached_elapsed_monotonic),
        T(test_strings),
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
