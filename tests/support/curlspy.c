/*
 * curlspy.c - the curl_easy_setopt() wrapper (see curlspy.h).
 *
 * libcurl's option numbers say the argument's type: below
 * CURLOPTTYPE_OBJECTPOINT a long, then object pointers (strings, lists,
 * callbacks' data), function pointers, curl_off_t and blobs. The wrapper
 * reads the argument as that type and passes it on as such.
 */
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include "curlspy.h"

CURLcode __real_curl_easy_setopt(CURL *curl, CURLoption option, ...);
CURLcode __wrap_curl_easy_setopt(CURL *curl, CURLoption option, ...);

#define SLOTS 128

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen {
    CURLoption opt;
    int count;
    const void *last;
} seen[SLOTS];
static int nseen;

static void note(CURLoption option, const void *value)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nseen; i++) {
        if (seen[i].opt == option) {
            seen[i].count++;
            seen[i].last = value;
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    if (nseen < SLOTS)
        seen[nseen++] = (struct seen){ option, 1, value };
    pthread_mutex_unlock(&lock);
}

CURLcode __wrap_curl_easy_setopt(CURL *curl, CURLoption option, ...)
{
    va_list ap;
    CURLcode rc;

    va_start(ap, option);
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        note(option, NULL);
        rc = __real_curl_easy_setopt(curl, option, v);
    } else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
        void *p = va_arg(ap, void *);
        note(option, p);
        rc = __real_curl_easy_setopt(curl, option, p);
    } else if (option < CURLOPTTYPE_OFF_T) {
        void (*f)(void) = va_arg(ap, void (*)(void));
        note(option, NULL);
        rc = __real_curl_easy_setopt(curl, option, f);
    } else if (option < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        note(option, NULL);
        rc = __real_curl_easy_setopt(curl, option, v);
    } else {
        void *p = va_arg(ap, void *);
        note(option, p);
        rc = __real_curl_easy_setopt(curl, option, p);
    }
    va_end(ap);
    return rc;
}

void curlspy_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(seen, 0, sizeof(seen));
    nseen = 0;
    pthread_mutex_unlock(&lock);
}

int curlspy_count(CURLoption option, const void **last)
{
    int n = 0;

    pthread_mutex_lock(&lock);
    if (last)
        *last = NULL;
    for (int i = 0; i < nseen; i++) {
        if (seen[i].opt == option) {
            n = seen[i].count;
            if (last)
                *last = seen[i].last;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return n;
}
