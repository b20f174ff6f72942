/*
 * sshcopy - the C half of tests/bench/ssh_bench.sh: one tqu_ssh_upload()
 * of LOCAL to REMOTE, timed.
 *
 *   sshcopy HOST:PORT USER KNOWN_HOSTS_FILE LOCAL REMOTE < password
 *
 * The password is the first line of stdin. Prints one line:
 *   bytes=N transfer_s=S verify_s=S total_s=S resumed_from=N
 * and exits 0, or prints the error (its reason and message) and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "host/ssh.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *b = NULL;
    size_t n = 0;
    if (!f)
        return NULL;
    if (getdelim(&b, &n, '\0', f) < 0) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

int main(int argc, char **argv)
{
    tqu_ssh_target t = {0};
    tqu_ssh_error err;
    tqu_ssh_upload_result r;
    tqu_ssh *s = NULL;
    char pw[256] = "";
    char *kh;
    double t0;
    int rc;

    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST:PORT USER KNOWN_HOSTS_FILE LOCAL REMOTE < password\n",
                argv[0]);
        return 2;
    }
    if (!fgets(pw, sizeof(pw), stdin))
        pw[0] = '\0';
    pw[strcspn(pw, "\n")] = '\0';
    kh = slurp(argv[3]);
    t.host = argv[1];
    t.user = argv[2];
    t.known_hosts = kh;
    t0 = now_s();
    rc = tqu_ssh_connect(&t, pw, &s, &err);
    if (rc == 0)
        rc = tqu_ssh_upload(s, argv[4], argv[5], NULL, &r, &err);
    if (rc) {
        fprintf(stderr, "sshcopy: %s: %s\n", tqu_ssh_reason(rc), err.message);
    } else {
        printf("bytes=%llu transfer_s=%.3f verify_s=%.3f total_s=%.3f resumed_from=%llu\n",
               (unsigned long long)r.total, r.transfer_seconds, r.verify_seconds,
               now_s() - t0, (unsigned long long)r.resumed_from);
    }
    tqu_ssh_free(s);
    free(kh);
    return rc ? 1 : 0;
}
