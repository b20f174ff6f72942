/*
 * k8s_int.h - internals shared between the k8s/ library's modules.
 *
 * Not installed, not part of the contract in k8s.h: names here carry a
 * double underscore (k8s__) and may change with the library. Tests may use
 * them (e.g. to shorten the credential plugin timeout).
 */
#ifndef K8S_INT_H
#define K8S_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include <openssl/crypto.h>
#include "k8s.h"

/* Wipe secrets before freeing them (n may be 0). */
#define OPENSSL_cleanse_or_zero(p, n) OPENSSL_cleanse((p), (n))

/* -------------------------------------------------------------- file.c */

/*
 * Read a whole file of at most cap bytes into out (caller frees out->data).
 * out->data is NUL-terminated (not counted in len); an empty file gives
 * len 0 and non-NULL data. Errors: K8S_EIO "<path>: <strerror>",
 * K8S_ETOOBIG when larger than cap, K8S_ENOMEM. On failure out is empty.
 */
int k8s__read_file(const char *path, size_t cap, k8s_blob *out, k8s_err *err);

/* ------------------------------------------------------------ config.c */

/* Wipe (OPENSSL_cleanse) and free a string that may hold a secret; NULL is fine. */
void k8s__secret_free(char *s);
/* Free an exec plugin's configuration, wiping every string (argv and env
 * entries may carry passwords); NULL is fine. */
void k8s__exec_config_free(k8s_exec_config *e);


/* ---------------------------------------------------- exec_credential.c */

/* Time limit for a credential plugin run, in ms (30000). Tests lower it. */
extern long k8s__exec_timeout_ms;

/* ------------------------------------------------------------ client.c */

/* Monotonic clock, seconds. */
double k8s__now(void);
/* Sleep, resuming after signals. */
void k8s__sleep(double seconds);

/* CLOCK_MONOTONIC now + s, for pthread_cond_timedwait on a condition
 * variable created with that clock. */
void k8s__deadline(struct timespec *ts, double s);
/*
 * Wait on cv (a CLOCK_MONOTONIC one; mu not held by the caller) up to s
 * seconds, or until *stopping is set (and cv signalled). Returns *stopping.
 */
int k8s__nap(pthread_mutex_t *mu, pthread_cond_t *cv, atomic_int *stopping, double s);

#endif /* K8S_INT_H */
