/*
 * failalloc.h - fail the Nth allocation, for fault-injection tests.
 *
 * Test binaries are linked with -Wl,--wrap=malloc,calloc,realloc,strdup,
 * strndup (see the Makefile), so every allocation made by the project's own
 * code goes through the wrappers in failalloc.c; failalloc_install() also
 * routes cJSON through them. Typical use:
 *
 *   for (long n = 1;; n++) {
 *       failalloc_fail_at(n);
 *       rc = thing_under_test(...);
 *       failalloc_fail_at(0);
 *       if (!failalloc_failed()) { assert rc == 0; break; }  // ran clean
 *       assert rc is a clean error; release what it returned
 *   }
 *
 * Leaks on the error paths are then found by LeakSanitizer / valgrind.
 */
#ifndef FAILALLOC_H
#define FAILALLOC_H

/* Route cJSON's allocations through the wrappers. Call once in main(). */
void failalloc_install(void);
/* Fail the nth allocation from now on (1 = the next one); 0 disables. */
void failalloc_fail_at(long n);
/* Whether an allocation was failed since the last failalloc_fail_at(). */
int failalloc_failed(void);
/* Allocations seen since the last failalloc_fail_at(). */
long failalloc_count(void);

#endif
