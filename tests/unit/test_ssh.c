/*
 * test_ssh.c - the SSH layer (controller/host/ssh.c) against a real
 * OpenSSH server: Debian's sshd started by this program as root on a free
 * loopback port with its own config and host keys made now
 * (tests/support/sshd-setup.sh), user tqu-ssh-test with a password; sshd
 * is our child with PR_SET_PDEATHSIG, so it goes on every exit path.
 * Covers: a 20 MiB upload arriving intact with monotonic progress ending
 * at the total, an existing equal file not sent again; resume after the
 * server side of the connection is killed mid-transfer (only the .part is
 * left, then only the rest is sent); a .part that is not our prefix sent
 * again from 0; wrong password; unknown / changed / @revoked host keys
 * with the fingerprint ssh-keygen -l prints; hashed known_hosts; a host
 * known only by its ECDSA key; refused port; handshake timeout; argv
 * quoting with spaces, quotes, $, ;, backticks; exit status and stderr;
 * capped output; command timeout; the password wiped; allocation
 * failures.
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "failalloc.h"
#include "host/ssh.h"
#include "testutil.h"
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() RUNNING_ON_VALGRIND
#else
#define UNDER_VALGRIND() 0
#endif

#define USER "tqu-ssh-test"
#define PASSWORD "tqu test pw 'x' $1"
/* The file: 20 MiB; 3 MiB under valgrind (the same code paths, a third
   of the run time, which the crypto under valgrind would otherwise take). */
#define FILE_MIB 20
#define FILE_MIB_VALGRIND 3

static struct {
    char dir[PATH_MAX];
    char upload[PATH_MAX + 16];
    char src[PATH_MAX + 16];
    char host[64];
    int port;
    pid_t sshd;
    char kh[4096];          /* ed25519 + ecdsa entries for [127.0.0.1]:port */
    char kh_ed[2048];       /* ed25519 only */
    char kh_ecdsa[2048];    /* ecdsa only */
    char kh_other[2048];    /* the right name, another ed25519 key */
    char fp_ed[128], fp_ecdsa[128];
} g;

/* ------------------------------------------------------------- helpers */

/* Run argv with stdin from `in` (or /dev/null); stdout into out. Exit code. */
static int run(char *const argv[], const char *in, char *out, size_t outlen)
{
    int pin[2], pout[2], status = -1;
    pid_t pid;
    size_t n = 0;

    if (pipe(pin) < 0 || pipe(pout) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        if (getenv("TQU_TEST_QUIET_CHILD"))
            dup2(open("/dev/null", O_WRONLY), 2);
        close(pin[1]);
        close(pout[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    if (in && write(pin[1], in, strlen(in)) < 0)
        status = -1;
    close(pin[1]);
    for (;;) {
        char tmp[4096];
        ssize_t r = read(pout[0], tmp, sizeof(tmp));
        if (r <= 0)
            break;
        if (out && n + (size_t)r < outlen) {
            memcpy(out + n, tmp, (size_t)r);
            n += (size_t)r;
        }
    }
    if (out && outlen)
        out[n < outlen ? n : outlen - 1] = '\0';
    close(pout[0]);
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int read_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (!f)
        return -1;
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return 0;
}

/* "[127.0.0.1]:port TYPE BASE64\n" from a .pub file into out. */
static void kh_line(const char *pub, char *out, size_t len)
{
    char path[PATH_MAX + 64], buf[2048], type[64], b64[1024];
    snprintf(path, sizeof(path), "%s/%s", g.dir, pub);
    assert_int_equal(read_file(path, buf, sizeof(buf)), 0);
    assert_int_equal(sscanf(buf, "%63s %1023s", type, b64), 2);
    snprintf(out, len, "[%s]:%d %s %s\n", g.host, g.port, type, b64);
}

/* ssh-keygen -lf's fingerprint ("SHA256:...") of a .pub file. */
static void keygen_fp(const char *pub, char *out, size_t len)
{
    char path[PATH_MAX + 64], buf[1024], bits[16], fp[128];
    char *argv[] = { "/usr/bin/ssh-keygen", "-l", "-f", path, NULL };
    snprintf(path, sizeof(path), "%s/%s", g.dir, pub);
    assert_int_equal(run(argv, NULL, buf, sizeof(buf)), 0);
    assert_int_equal(sscanf(buf, "%15s %127s", bits, fp), 2);
    assert_true(strncmp(fp, "SHA256:", 7) == 0);
    snprintf(out, len, "%s", fp);
}

static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0
        && getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int port_open(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int group_setup(void **state)
{
    char script[PATH_MAX], cfg[PATH_MAX + 32], log[PATH_MAX + 32], portstr[16];
    const char *repo = getenv("TQU_REPO");
    char *argv[] = { script, g.dir, portstr, NULL };
    unsigned long long x = 0x9E3779B97F4A7C15ull;
    FILE *f;
    (void)state;

    failalloc_install();
    if (geteuid() != 0) {
        fprintf(stderr, "test_ssh: needs root (its own sshd and test user)\n");
        return -1;
    }
    snprintf(script, sizeof(script), "%s/tests/support/sshd-setup.sh", repo ? repo : ".");
    if (test_mkdtemp(g.dir, sizeof(g.dir), "tqu-ssh") != 0)
        return -1;
    snprintf(g.host, sizeof(g.host), "127.0.0.1");
    g.port = free_port();
    snprintf(portstr, sizeof(portstr), "%d", g.port);
    if (g.port <= 0 || run(argv, PASSWORD "\n", NULL, 0) != 0) {
        fprintf(stderr, "test_ssh: %s failed\n", script);
        return -1;
    }
    snprintf(cfg, sizeof(cfg), "%s/sshd_config", g.dir);
    snprintf(log, sizeof(log), "%s/sshd.log", g.dir);
    g.sshd = fork();
    if (g.sshd == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", cfg, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !port_open(g.port); i++)
        usleep(50000);
    if (!port_open(g.port)) {
        fprintf(stderr, "test_ssh: sshd did not start (see %s)\n", log);
        return -1;
    }
    kh_line("ssh_host_ed25519_key.pub", g.kh_ed, sizeof(g.kh_ed));
    kh_line("ssh_host_ecdsa_key.pub", g.kh_ecdsa, sizeof(g.kh_ecdsa));
    kh_line("other_ed25519_key.pub", g.kh_other, sizeof(g.kh_other));
    snprintf(g.kh, sizeof(g.kh), "# test\n\n%s%s", g.kh_ed, g.kh_ecdsa);
    keygen_fp("ssh_host_ed25519_key.pub", g.fp_ed, sizeof(g.fp_ed));
    keygen_fp("ssh_host_ecdsa_key.pub", g.fp_ecdsa, sizeof(g.fp_ecdsa));
    snprintf(g.upload, sizeof(g.upload), "%s/upload", g.dir);
    snprintf(g.src, sizeof(g.src), "%s/src", g.dir);
    f = fopen(g.src, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < (size_t)(UNDER_VALGRIND() ? FILE_MIB_VALGRIND : FILE_MIB) * 131072;
         i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        fwrite(&x, 8, 1, f);
    }
    fputs("tail", f);        /* not a multiple of any chunk size */
    fclose(f);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g.sshd > 0) {
        kill(g.sshd, SIGTERM);
        waitpid(g.sshd, NULL, 0);
    }
    if (g.dir[0])
        test_rmtree(g.dir);
    return 0;
}

static int do_connect(const char *kh, const char *pw, tqu_ssh **s, tqu_ssh_error *err)
{
    tqu_ssh_target t = { .host = g.host, .port = g.port, .user = USER, .known_hosts = kh,
                         .timeout_ms = 10000 };
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", pw);
    return tqu_ssh_connect(&t, buf, s, err);
}

static tqu_ssh *connect_ok(void)
{
    tqu_ssh *s = NULL;
    tqu_ssh_error err;
    int rc = do_connect(g.kh, PASSWORD, &s, &err);
    if (rc)
        fail_msg("connect: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_non_null(s);
    return s;
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    int eq = fa && fb;
    static char ba[65536], bb[65536];
    while (eq) {
        size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
        if (na != nb || memcmp(ba, bb, na) != 0)
            eq = 0;
        if (na == 0)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return eq;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

typedef struct prog {
    uint64_t calls, first, last, total;
    int monotonic;
    uint64_t kill_at;        /* when sent passes it, kill the server side once */
    int killed;
} prog;

/* SIGKILL every process below sshd's listener: the connection's whole tree. */
static void kill_connections(void)
{
    pid_t pids[4096], ppids[4096];
    int n = 0, changed = 1;
    char mark[4096] = {0};
    DIR *d = opendir("/proc");
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) && n < 4096) {
        char path[300], buf[512], *rp;
        int pid = atoi(e->d_name), ppid;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if (read_file(path, buf, sizeof(buf)) < 0 || !(rp = strrchr(buf, ')')))
            continue;
        if (sscanf(rp + 2, "%*c %d", &ppid) != 1)
            continue;
        pids[n] = pid;
        ppids[n++] = ppid;
    }
    closedir(d);
    while (changed) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (mark[i])
                continue;
            int up = ppids[i] == g.sshd;
            for (int j = 0; !up && j < n; j++)
                up = mark[j] && pids[j] == ppids[i];
            if (up) {
                mark[i] = 1;
                changed = 1;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (mark[i])
            kill(pids[i], SIGKILL);
}

static void on_progress(void *ud, uint64_t sent, uint64_t total, double rate)
{
    prog *p = ud;
    if (p->calls == 0)
        p->first = sent;
    else if (sent < p->last)
        p->monotonic = 0;
    assert_true(rate >= 0);
    p->calls++;
    p->last = sent;
    p->total = total;
    /* callbacks come at most every 100 ms: wait that long so that the next
       one comes after the next buffer, not only at the end of a fast copy */
    if (p->kill_at && !p->killed)
        usleep(110000);
    if (p->kill_at && !p->killed && sent >= p->kill_at) {
        p->killed = 1;
        kill_connections();
    }
}

/* ------------------------------------------------------------- tests */

static void test_quote_argv(void **state)
{
    const char *argv[] = { "printf", "%s\n", "a b", "it's", "", NULL };
    char buf[128];
    size_t n;
    (void)state;
    n = tqu_ssh_quote_argv(argv, buf, sizeof(buf));
    assert_string_equal(buf, "'printf' '%s\n' 'a b' 'it'\\''s' ''");
    assert_int_equal(n, strlen(buf));
    /* snprintf-style: cut, NUL-terminated, full length returned */
    assert_int_equal(tqu_ssh_quote_argv(argv, buf, 5), n);
    assert_string_equal(buf, "'pri");
    assert_int_equal(tqu_ssh_quote_argv(argv, NULL, 0), n);
}

static void test_upload_intact_with_progress(void **state)
{
    char dst[PATH_MAX + 32], part[PATH_MAX + 40];
    tqu_ssh_upload_opts o = { .progress = on_progress };
    tqu_ssh_upload_result r;
    tqu_ssh_error err;
    prog p = { .monotonic = 1 };
    long long total = file_size(g.src);
    tqu_ssh *s = connect_ok();
    int rc;
    (void)state;

    snprintf(dst, sizeof(dst), "%s/intact.bin", g.upload);
    snprintf(part, sizeof(part), "%s.part", dst);
    o.ud = &p;
    rc = tqu_ssh_upload(s, g.src, dst, &o, &r, &err);
    if (rc)
        fail_msg("upload: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_true(files_equal(g.src, dst));
    assert_int_equal(file_size(part), -1);
    assert_int_equal(r.total, total);
    assert_int_equal(r.sent, total);
    assert_int_equal(r.resumed_from, 0);
    assert_false(r.already_there);
    assert_int_equal(strlen(r.sha256), 64);
    assert_true(p.calls >= 2);
    assert_true(p.monotonic);
    assert_int_equal(p.first, 0);
    assert_int_equal(p.last, total);
    assert_int_equal(p.total, total);

    /* again: the same file is there, nothing is sent */
    memset(&p, 0, sizeof(p));
    p.monotonic = 1;
    rc = tqu_ssh_upload(s, g.src, dst, &o, &r, &err);
    assert_int_equal(rc, 0);
    assert_true(r.already_there);
    assert_int_equal(r.sent, 0);
    assert_int_equal(p.last, total);
    tqu_ssh_free(s);
}

static void test_upload_resume_after_drop(void **state)
{
    char dst[PATH_MAX + 32], part[PATH_MAX + 40];
    tqu_ssh_upload_opts o = { .progress = on_progress };
    tqu_ssh_upload_result r;
    tqu_ssh_error err;
    long long total = file_size(g.src), kept;
    prog p = { .monotonic = 1, .kill_at = (uint64_t)total * 2 / 5 };
    tqu_ssh *s = connect_ok();
    int rc;
    (void)state;

    snprintf(dst, sizeof(dst), "%s/resume.bin", g.upload);
    snprintf(part, sizeof(part), "%s.part", dst);
    o.ud = &p;
    rc = tqu_ssh_upload(s, g.src, dst, &o, &r, &err);
    assert_true(p.killed);
    assert_int_equal(rc, TQU_SSH_EDROPPED);
    assert_string_equal(tqu_ssh_reason(rc), "ConnectionDropped");
    /* only the .part, never a half file under the final name */
    assert_int_equal(file_size(dst), -1);
    kept = file_size(part);
    if (!(kept > 0 && kept < total))
        fail_msg(".part has %lld bytes of %lld", kept, total);
    tqu_ssh_free(s);

    s = connect_ok();
    memset(&p, 0, sizeof(p));
    p.monotonic = 1;
    rc = tqu_ssh_upload(s, g.src, dst, &o, &r, &err);
    if (rc)
        fail_msg("resume: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_int_equal(r.resumed_from, kept);
    assert_int_equal(r.sent, total - kept);
    assert_int_equal(p.first, kept);
    assert_int_equal(p.last, total);
    assert_true(p.monotonic);
    assert_true(files_equal(g.src, dst));
    assert_int_equal(file_size(part), -1);
    tqu_ssh_free(s);
}

static void test_upload_foreign_part_restarts(void **state)
{
    char dst[PATH_MAX + 32], part[PATH_MAX + 40];
    tqu_ssh_upload_result r;
    tqu_ssh_error err;
    tqu_ssh *s = connect_ok();
    FILE *f;
    int rc;
    (void)state;

    snprintf(dst, sizeof(dst), "%s/foreign.bin", g.upload);
    snprintf(part, sizeof(part), "%s.part", dst);
    f = fopen(part, "w");
    assert_non_null(f);
    fputs("not the start of the file", f);
    fclose(f);
    assert_int_equal(chmod(part, 0666), 0);
    rc = tqu_ssh_upload(s, g.src, dst, NULL, &r, &err);
    if (rc)
        fail_msg("upload: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_int_equal(r.resumed_from, 0);
    assert_int_equal(r.sent, r.total);
    assert_true(files_equal(g.src, dst));
    assert_int_equal(file_size(part), -1);
    tqu_ssh_free(s);
}

/* The remote copy corrupted under us: ChecksumMismatch, the .part removed. */
static void corrupt_part(void *ud, uint64_t sent, uint64_t total, double rate)
{
    const char *part = ud;
    (void)total;
    (void)rate;
    if (sent > 0) {
        int fd = open(part, O_WRONLY);
        if (fd >= 0) {
            assert_int_equal(pwrite(fd, "XXXX", 4, 0), 4);
            close(fd);
        }
    }
}

static void test_upload_verify_and_replace(void **state)
{
    char dst[PATH_MAX + 32], part[PATH_MAX + 40];
    tqu_ssh_upload_opts o = { .progress = corrupt_part };
    tqu_ssh_upload_result r;
    tqu_ssh_error err;
    tqu_ssh *s = connect_ok();
    FILE *f;
    int rc;
    (void)state;

    snprintf(dst, sizeof(dst), "%s/verify.bin", g.upload);
    snprintf(part, sizeof(part), "%s.part", dst);
    o.ud = part;
    rc = tqu_ssh_upload(s, g.src, dst, &o, &r, &err);
    assert_int_equal(rc, TQU_SSH_EVERIFY);
    assert_string_equal(tqu_ssh_reason(rc), "ChecksumMismatch");
    assert_contains(err.message, r.sha256);
    assert_int_equal(file_size(part), -1);
    assert_int_equal(file_size(dst), -1);

    /* an older, different file under the final name is replaced */
    f = fopen(dst, "w");
    assert_non_null(f);
    fputs("old content", f);
    fclose(f);
    rc = tqu_ssh_upload(s, g.src, dst, NULL, &r, &err);
    if (rc)
        fail_msg("replace: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_true(files_equal(g.src, dst));
    tqu_ssh_free(s);
}

/* A name starting with '-' (relative: in the user's home, /tmp): hashed by
   sha256sum, the fallback when openssl would take it for an option. */
static void test_upload_dash_name(void **state)
{
    char src[PATH_MAX + 32];
    const char *dst = "/tmp/-tqu-ssh-test-dash.bin";
    tqu_ssh_upload_result r;
    tqu_ssh_error err;
    tqu_ssh *s = connect_ok();
    FILE *f;
    int rc;
    (void)state;

    snprintf(src, sizeof(src), "%s/small", g.dir);
    f = fopen(src, "w");
    assert_non_null(f);
    for (int i = 0; i < 10000; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    unlink(dst);
    rc = tqu_ssh_upload(s, src, "-tqu-ssh-test-dash.bin", NULL, &r, &err);
    if (rc)
        fail_msg("upload: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_true(files_equal(src, dst));
    assert_int_equal(unlink(dst), 0);
    tqu_ssh_free(s);
}

static void test_upload_errors(void **state)
{
    tqu_ssh_upload_result r;
    tqu_ssh_error err;
    tqu_ssh *s = connect_ok();
    char dst[PATH_MAX + 32];
    (void)state;

    assert_int_equal(tqu_ssh_upload(s, "/nonexistent/x", "/tmp/x", NULL, &r, &err),
                     TQU_SSH_ELOCAL);
    assert_contains(err.message, "/nonexistent/x");
    /* a folder the user cannot write */
    assert_int_equal(tqu_ssh_upload(s, g.src, "/root/tqu-ssh-test-no", NULL, &r, &err),
                     TQU_SSH_EREMOTE);
    assert_contains(err.message, "permission denied");
    snprintf(dst, sizeof(dst), "%s/no/such/dir/x", g.upload);
    assert_int_equal(tqu_ssh_upload(s, g.src, dst, NULL, &r, &err), TQU_SSH_EREMOTE);
    /* the session is still usable */
    snprintf(dst, sizeof(dst), "%s/after-errors.bin", g.upload);
    assert_int_equal(tqu_ssh_upload(s, g.src, dst, NULL, &r, &err), 0);
    tqu_ssh_free(s);
}

static void test_wrong_password(void **state)
{
    tqu_ssh_target t = { .host = g.host, .port = g.port, .user = USER, .known_hosts = g.kh };
    tqu_ssh_error err;
    tqu_ssh *s = (tqu_ssh *)1;
    char pw[] = "not the password";
    int rc;
    (void)state;

    rc = tqu_ssh_connect(&t, pw, &s, &err);
    assert_int_equal(rc, TQU_SSH_EAUTH);
    assert_null(s);
    assert_string_equal(tqu_ssh_reason(rc), "AuthFailed");
    assert_contains(err.message, USER);
    assert_not_contains(err.message, "not the password");
    for (size_t i = 0; i < sizeof(pw); i++)
        assert_int_equal(pw[i], 0);
}

static void test_password_wiped_on_success(void **state)
{
    tqu_ssh_target t = { .host = "127.0.0.1", .user = USER, .known_hosts = g.kh };
    char hostport[64], pw[] = PASSWORD;
    tqu_ssh_error err;
    tqu_ssh *s = NULL;
    (void)state;

    snprintf(hostport, sizeof(hostport), "127.0.0.1:%d", g.port);   /* port in host */
    t.host = hostport;
    assert_int_equal(tqu_ssh_connect(&t, pw, &s, &err), 0);
    for (size_t i = 0; i < sizeof(pw); i++)
        assert_int_equal(pw[i], 0);
    assert_string_equal(tqu_ssh_fingerprint(s), g.fp_ed);
    assert_string_equal(tqu_ssh_peer(s), hostport);
    tqu_ssh_free(s);
}

static void test_host_key_unknown(void **state)
{
    char kh[4096];
    tqu_ssh_error err;
    tqu_ssh *s = NULL;
    int rc;
    (void)state;

    rc = do_connect("", PASSWORD, &s, &err);
    assert_int_equal(rc, TQU_SSH_EHOSTKEY_UNKNOWN);
    assert_null(s);
    assert_string_equal(tqu_ssh_reason(rc), "HostKeyUnknown");
    assert_string_equal(err.key_type, "ssh-ed25519");
    assert_string_equal(err.fingerprint, g.fp_ed);
    assert_contains(err.message, g.fp_ed);

    /* the right key under the name for port 22: not this host */
    snprintf(kh, sizeof(kh), "127.0.0.1 %s", strchr(g.kh_ed, ' ') + 1);
    assert_int_equal(do_connect(kh, PASSWORD, &s, &err), TQU_SSH_EHOSTKEY_UNKNOWN);
    /* a negated pattern removes the host from a wildcard line */
    snprintf(kh, sizeof(kh), "[127.0.0.*]:%d,![127.0.0.1]:%d %s", g.port, g.port,
             strchr(g.kh_ed, ' ') + 1);
    assert_int_equal(do_connect(kh, PASSWORD, &s, &err), TQU_SSH_EHOSTKEY_UNKNOWN);
    /* ...and without the negation the wildcard matches */
    snprintf(kh, sizeof(kh), "[127.0.0.*]:%d %s", g.port, strchr(g.kh_ed, ' ') + 1);
    assert_int_equal(do_connect(kh, PASSWORD, &s, &err), 0);
    tqu_ssh_free(s);
}

static void test_host_key_changed(void **state)
{
    char kh[4096];
    tqu_ssh_error err;
    tqu_ssh *s = NULL;
    int rc;
    (void)state;

    rc = do_connect(g.kh_other, PASSWORD, &s, &err);
    assert_int_equal(rc, TQU_SSH_EHOSTKEY_CHANGED);
    assert_null(s);
    assert_string_equal(tqu_ssh_reason(rc), "HostKeyChanged");
    assert_string_equal(err.fingerprint, g.fp_ed);
    /* @revoked beats a matching entry */
    snprintf(kh, sizeof(kh), "%s@revoked %s", g.kh_ed, g.kh_ed);
    assert_int_equal(do_connect(kh, PASSWORD, &s, &err), TQU_SSH_EHOSTKEY_CHANGED);
    assert_contains(err.message, "revoked");
}

static void test_host_key_hashed_and_other_type(void **state)
{
    char path[PATH_MAX + 32], kh[4096];
    char *argv[] = { "/usr/bin/ssh-keygen", "-H", "-f", path, NULL };
    tqu_ssh_error err;
    tqu_ssh *s = NULL;
    FILE *f;
    int rc;
    (void)state;

    snprintf(path, sizeof(path), "%s/known_hosts_hashed", g.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(g.kh_ed, f);
    fclose(f);
    setenv("TQU_TEST_QUIET_CHILD", "1", 1);      /* its warning about the .old file */
    assert_int_equal(run(argv, NULL, NULL, 0), 0);
    unsetenv("TQU_TEST_QUIET_CHILD");
    assert_int_equal(read_file(path, kh, sizeof(kh)), 0);
    assert_true(strncmp(kh, "|1|", 3) == 0);
    assert_not_contains(kh, "127.0.0.1");
    rc = do_connect(kh, PASSWORD, &s, &err);
    if (rc)
        fail_msg("hashed: %s: %s", tqu_ssh_reason(rc), err.message);
    tqu_ssh_free(s);
    s = NULL;

    /* known only by its ECDSA key: that key is asked for, and accepted */
    rc = do_connect(g.kh_ecdsa, PASSWORD, &s, &err);
    if (rc)
        fail_msg("ecdsa: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_string_equal(tqu_ssh_fingerprint(s), g.fp_ecdsa);
    tqu_ssh_free(s);
}

static void test_refused_and_timeout(void **state)
{
    tqu_ssh_target t = { .host = g.host, .user = USER, .known_hosts = g.kh,
                         .timeout_ms = 400 };
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    tqu_ssh_error err;
    tqu_ssh *s = NULL;
    char pw[16];
    double t0;
    int fd, rc;
    (void)state;

    t.port = free_port();
    strcpy(pw, "x");
    rc = tqu_ssh_connect(&t, pw, &s, &err);
    assert_int_equal(rc, TQU_SSH_EREFUSED);
    assert_string_equal(tqu_ssh_reason(rc), "ConnectionRefused");
    assert_null(s);

    /* a listener that never speaks SSH: the handshake times out */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    t.port = ntohs(a.sin_port);
    strcpy(pw, "x");
    t0 = test_now();
    rc = tqu_ssh_connect(&t, pw, &s, &err);
    assert_int_equal(rc, TQU_SSH_ETIMEOUT);
    assert_true(test_now() - t0 < 5 * test_slack());
    close(fd);

    t.host = "no-such-host.invalid";
    strcpy(pw, "x");
    assert_int_equal(tqu_ssh_connect(&t, pw, &s, &err), TQU_SSH_ERESOLVE);
    t.host = "[::1";
    assert_int_equal(tqu_ssh_connect(&t, pw, &s, &err), TQU_SSH_EINVAL);
}

static void test_exec_quoting(void **state)
{
    const char *argv[] = { "printf", "%s\n", "a b  c", "it's \"q\"", "$HOME", "x; echo no",
                           "`id`", "$(id)", "back\\slash", "", "*", NULL };
    const char *want = "a b  c\nit's \"q\"\n$HOME\nx; echo no\n`id`\n$(id)\nback\\slash\n\n*\n";
    tqu_ssh_exec_result r;
    tqu_ssh_error err;
    tqu_ssh *s = connect_ok();
    int rc;
    (void)state;

    rc = tqu_ssh_exec(s, argv, 10000, 0, &r, &err);
    if (rc)
        fail_msg("exec: %s: %s", tqu_ssh_reason(rc), err.message);
    assert_int_equal(r.exit_status, 0);
    assert_string_equal(r.out, want);
    assert_int_equal(r.out_len, strlen(want));
    assert_string_equal(r.err, "");
    tqu_ssh_exec_result_release(&r);

    {
        const char *sh[] = { "sh", "-c", "echo to-err >&2; echo to-out; exit 3", NULL };
        assert_int_equal(tqu_ssh_exec(s, sh, 10000, 0, &r, &err), 0);
        assert_int_equal(r.exit_status, 3);
        assert_string_equal(r.out, "to-out\n");
        assert_string_equal(r.err, "to-err\n");
        tqu_ssh_exec_result_release(&r);
    }
    {
        const char *missing[] = { "tqu-no-such-command", NULL };
        assert_int_equal(tqu_ssh_exec(s, missing, 10000, 0, &r, &err), 0);
        assert_int_equal(r.exit_status, 127);
        tqu_ssh_exec_result_release(&r);
    }
    tqu_ssh_free(s);
}

static void test_exec_cap_and_timeout(void **state)
{
    const char *big[] = { "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a; echo END", NULL };
    const char *slow[] = { "sleep", "20", NULL };
    tqu_ssh_exec_result r;
    tqu_ssh_error err;
    tqu_ssh *s = connect_ok();
    double t0;
    int rc;
    (void)state;

    assert_int_equal(tqu_ssh_exec(s, big, 10000, 1000, &r, &err), 0);
    assert_int_equal(r.out_len, 1000);
    assert_int_equal(strlen(r.out), 1000);
    assert_true(r.out_truncated);
    assert_string_equal(r.out + 996, "END\n");
    assert_int_equal(r.out[0], 'a');
    tqu_ssh_exec_result_release(&r);

    t0 = test_now();
    rc = tqu_ssh_exec(s, slow, 300, 0, &r, &err);
    assert_int_equal(rc, TQU_SSH_ETIMEOUT);
    assert_true(test_now() - t0 < 5 * test_slack());
    assert_contains(err.message, "sleep");
    tqu_ssh_exec_result_release(&r);
    /* the session goes on */
    {
        const char *t[] = { "true", NULL };
        assert_int_equal(tqu_ssh_exec(s, t, 10000, 0, &r, &err), 0);
        assert_int_equal(r.exit_status, 0);
        tqu_ssh_exec_result_release(&r);
    }
    assert_int_equal(tqu_ssh_exec(s, (const char *const[]){ NULL }, 0, 0, &r, &err),
                     TQU_SSH_EINVAL);
    tqu_ssh_free(s);
}

/* Every allocation of ours failed in turn: a clean ENOMEM, nothing leaked. */
static void test_alloc_failures(void **state)
{
    const char *argv[] = { "echo", "hi", NULL };
    tqu_ssh_exec_result r;
    tqu_ssh_error err;
    tqu_ssh *s = NULL;
    int rc, hit;
    (void)state;

    for (long n = 1;; n++) {
        s = NULL;
        failalloc_fail_at(n);
        rc = do_connect(g.kh_ed, PASSWORD, &s, &err);
        hit = failalloc_failed();
        failalloc_fail_at(0);
        if (!hit) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_equal(rc, TQU_SSH_ENOMEM);
        assert_null(s);
        assert_true(n < 20);
    }
    for (long n = 1;; n++) {
        failalloc_fail_at(n);
        rc = tqu_ssh_exec(s, argv, 10000, 0, &r, &err);
        hit = failalloc_failed();
        failalloc_fail_at(0);
        if (!hit) {
            assert_int_equal(rc, 0);
            assert_string_equal(r.out, "hi\n");
            tqu_ssh_exec_result_release(&r);
            break;
        }
        assert_int_equal(rc, TQU_SSH_ENOMEM);
        assert_null(r.out);
        assert_true(n < 20);
    }
    tqu_ssh_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_argv),
        cmocka_unit_test(test_upload_intact_with_progress),
        cmocka_unit_test(test_upload_resume_after_drop),
        cmocka_unit_test(test_upload_foreign_part_restarts),
        cmocka_unit_test(test_upload_verify_and_replace),
        cmocka_unit_test(test_upload_dash_name),
        cmocka_unit_test(test_upload_errors),
        cmocka_unit_test(test_wrong_password),
        cmocka_unit_test(test_password_wiped_on_success),
        cmocka_unit_test(test_host_key_unknown),
        cmocka_unit_test(test_host_key_changed),
        cmocka_unit_test(test_host_key_hashed_and_other_type),
        cmocka_unit_test(test_refused_and_timeout),
        cmocka_unit_test(test_exec_quoting),
        cmocka_unit_test(test_exec_cap_and_timeout),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
