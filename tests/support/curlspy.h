/*
 * curlspy.h - what the code under test asked of libcurl.
 *
 * Test binaries are linked with -Wl,--wrap=curl_easy_setopt (see the
 * Makefile): every curl_easy_setopt() of the project's code goes through
 * the wrapper in curlspy.c, which forwards it unchanged and remembers, per
 * option, how often it was set and the last value. For the options whose
 * effect a test cannot observe from outside, such as which trust anchors
 * libcurl uses beside a CA blob.
 */
#ifndef CURLSPY_H
#define CURLSPY_H

#include <curl/curl.h>

/* Forget everything seen so far. */
void curlspy_reset(void);
/*
 * How often opt was set since the last reset; the last value (a pointer
 * option's pointer, e.g. a string or NULL) into *last when given.
 */
int curlspy_count(CURLoption opt, const void **last);

#endif
