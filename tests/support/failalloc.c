/*
 * failalloc.c - allocation wrappers that can fail the Nth call (see
 * failalloc.h). Single-threaded use only: the counters are plain globals.
 */
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "failalloc.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long fail_at, seen;
static int failed;

static int should_fail(void)
{
    seen++;
    if (fail_at > 0 && seen == fail_at) {
        failed = 1;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return should_fail() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return should_fail() ? NULL : __real_strndup(s, n); }

static void *hook_malloc(size_t n) { return __wrap_malloc(n); }

void failalloc_install(void)
{
    cJSON_Hooks h = { hook_malloc, free };
    cJSON_InitHooks(&h);
}

void failalloc_fail_at(long n)
{
    fail_at = n;
    seen = 0;
    failed = 0;
}

int failalloc_failed(void) { return failed; }
long failalloc_count(void) { return seen; }
