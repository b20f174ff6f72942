/*
 * claim.c - one actor per workflow and site (design.md section 8).
 *
 * Without --leader-elect, every registered workflow is claimed through a
 * Lease in the API, "<leader-election-id>-<plural>" in the leader-election
 * namespace: a second controller process started against the same cluster
 * (beside the first, or with another /qaxdata) stands by for that workflow
 * until the first is gone, instead of acting beside it. With
 * --leader-elect the leader's Lease is that claim, for every workflow.
 *
 * The holder identity is "<host>_<boot>_<pid>_<start>": a process on this
 * machine that no longer exists (a kill -9, a crash) is seen to be gone and
 * its claim is taken at once; a holder elsewhere is waited out (the Lease's
 * duration, judged by the local clock).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "runtime.h"
#include "runtime_int.h"
#include "log.h"

#define CLAIM_DURATION_S 20
#define CLAIM_DEADLINE_S 15
#define CLAIM_RETRY_S 4

/* The start time of pid in clock ticks since boot (field 22 of
 * /proc/<pid>/stat), or 0 when there is no such process. */
static unsigned long long start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command (field 2) may hold spaces and parentheses: skip to the
     * last ')' */
    char *p = strrchr(buf, ')');
    unsigned long long st = 0;
    if (!p)
        return 0;
    /* fields 3..22: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice threads
     * itrealvalue starttime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &st) != 1)
        return 0;
    return st;
}

/* This boot's id, 8 characters, or "noboot". */
static void boot_id(char out[9])
{
    char buf[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    snprintf(out, 9, "%s", buf[0] ? buf : "noboot");
}

void tqu__claim_identity(char *buf, size_t len)
{
    char host[128] = "", boot[9];
    gethostname(host, sizeof(host) - 1);
    boot_id(boot);
    for (char *p = host; *p; p++)
        if (*p == '_')
            *p = '-';
    snprintf(buf, len, "%s_%s_%ld_%llu", host[0] ? host : "unknown", boot, (long)getpid(),
             start_time((long)getpid()));
}

/* A holder on this machine and boot whose process is gone. */
static int holder_gone(void *ud, const char *holder)
{
    char host[128] = "", boot[9], want[160];
    const char *p;
    long pid;
    unsigned long long st;
    (void)ud;
    gethostname(host, sizeof(host) - 1);
    for (char *q = host; *q; q++)
        if (*q == '_')
            *q = '-';
    boot_id(boot);
    snprintf(want, sizeof(want), "%s_%s_", host, boot);
    if (strncmp(holder, want, strlen(want)) != 0)
        return 0;
    p = holder + strlen(want);
    if (sscanf(p, "%ld_%llu", &pid, &st) != 2 || pid <= 0)
        return 0;
    if (pid == (long)getpid())
        return 0;   /* ourselves: not gone */
    return start_time(pid) != st;
}

static void on_claimed(void *ud)
{
    struct tqu_claim *c = ud;
    tqu_log(TQU_INFO, "claimed the workflow: this process acts on it", "resource", c->plural,
            "lease", c->lease, NULL);
    __atomic_store_n(&c->held, 1, __ATOMIC_RELEASE);
    tqu_requeue_all(c->ctl);
}

static void on_lost(void *ud)
{
    struct tqu_claim *c = ud;
    __atomic_store_n(&c->held, 0, __ATOMIC_RELEASE);
    /* wake the main thread: it claims again (tqu__claim_check) */
    kill(getpid(), SIGUSR1);
}

/* A new elector for c (the old one, if any, already freed). */
static int elector_start(struct tqu_claim *c)
{
    tqu_controller *ctl = c->ctl;
    const char *ns = ctl->opts->leader_election_namespace ? ctl->opts->leader_election_namespace
                                                          : ctl->cfg->namespace;
    k8s_err err;
    char ebuf[1200];
    k8s_leader *l = NULL;
    k8s_leader_opts lo = {
        .namespace = ns,
        .name = c->lease,
        .identity = ctl->identity,
        .lease_duration_s = CLAIM_DURATION_S,
        .renew_deadline_s = CLAIM_DEADLINE_S,
        .retry_period_s = CLAIM_RETRY_S,
        .holder_gone = holder_gone,
        .on_started = on_claimed,
        .on_stopped = on_lost,
        .ud = c,
    };
    if (k8s_leader_new(ctl->cfg, &lo, &l, &err) || k8s_leader_start(l, &err)) {
        tqu_log(TQU_ERROR, "cannot claim the workflow", "resource", c->plural, "lease", c->lease,
                "error", k8s_err_str(&err, ebuf, sizeof(ebuf)), NULL);
        k8s_leader_free(l);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    c->elector = l;
    pthread_mutex_unlock(&c->mu);
    tqu_log(TQU_INFO, "claiming the workflow", "resource", c->plural, "lease", c->lease, "namespace", ns,
            "identity", ctl->identity, NULL);
    return 0;
}

int tqu__claim_start(tqu_controller *ctl, struct tqu_claim *c, const char *plural)
{
    c->ctl = ctl;
    c->plural = plural;
    snprintf(c->lease, sizeof(c->lease), "%s-%s", ctl->opts->leader_election_id, plural);
    if (!c->mu_ready) {
        pthread_mutex_init(&c->mu, NULL);
        c->mu_ready = 1;
    }
    return elector_start(c);
}

int tqu__claim_held(struct tqu_claim *c)
{
    int held;
    if (!c->mu_ready)
        return 0;
    pthread_mutex_lock(&c->mu);
    held = c->elector && __atomic_load_n(&c->held, __ATOMIC_ACQUIRE) && k8s_leader_is_leader(c->elector);
    pthread_mutex_unlock(&c->mu);
    return held;
}

void tqu__claim_check(struct tqu_claim *c)
{
    k8s_leader *old;
    if (!c->mu_ready)
        return;
    pthread_mutex_lock(&c->mu);
    old = c->elector && k8s_leader_lost(c->elector) ? c->elector : NULL;
    if (old) {
        c->elector = NULL;
        __atomic_store_n(&c->held, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&c->mu);
    if (!old)
        return;
    tqu_log(TQU_WARN, "the claim on the workflow lapsed (no renewal in time); claiming it again",
            "resource", c->plural, "lease", c->lease, NULL);
    k8s_leader_free(old);   /* not released: it may be another's by now */
    elector_start(c);
}

void tqu__claim_stop(struct tqu_claim *c, int release)
{
    k8s_leader *l;
    if (!c->mu_ready)
        return;
    pthread_mutex_lock(&c->mu);
    l = c->elector;
    c->elector = NULL;
    c->held = 0;
    pthread_mutex_unlock(&c->mu);
    if (l) {
        if (release)
            k8s_leader_release(l);
        k8s_leader_free(l);
    }
    pthread_mutex_destroy(&c->mu);
    c->mu_ready = 0;
}
