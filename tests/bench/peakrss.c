/*
 * peakrss.c - run a command, discard its standard output (or send it to
 * FILE), and print its wall time and peak resident memory:
 * "seconds=S maxrss_kib=K status=N".
 *
 *   peakrss [-o FILE] CMD [ARGS...]
 *
 * Like `/usr/bin/time -f '%e %M'`, without needing the `time` package. The
 * peak comes from wait4()'s ru_maxrss, which is the larger of the child's
 * own peak and the RSS of the process it was forked from at exec time: so
 * this program stays tiny (libc only, nothing allocated) and forks before
 * it grows; the figure is then the command's own peak. The command's
 * stderr is passed through; status is its exit status, 128+n for signal n.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    struct rusage ru;
    const char *out = "/dev/null";
    int st = 0, a = 1;
    pid_t pid;

    if (argc > 3 && strcmp(argv[1], "-o") == 0) {
        out = argv[2];
        a = 3;
    }
    if (argc <= a) {
        fprintf(stderr, "usage: peakrss [-o FILE] CMD [ARGS...]\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid = fork();
    if (pid < 0) {
        perror("peakrss: fork");
        return 1;
    }
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            fprintf(stderr, "peakrss: %s: %s\n", out, strerror(errno));
            _exit(127);
        }
        dup2(fd, 1);
        execvp(argv[a], argv + a);
        fprintf(stderr, "peakrss: %s: %s\n", argv[a], strerror(errno));
        _exit(127);
    }
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("peakrss: wait4");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("seconds=%.4f maxrss_kib=%ld status=%d\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
           ru.ru_maxrss, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
