/*
 * log.c - structured logging to stderr (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "log.h"

static enum tqu_log_format log_format = TQU_LOG_TEXT;
static enum tqu_log_level log_level = TQU_INFO;
static int log_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void tqu_log_setup(enum tqu_log_format fmt, enum tqu_log_level level)
{
    log_format = fmt;
    log_level = level;
}

void tqu_log_set_fd(int fd)
{
    log_fd = fd;
}

int tqu_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    if (s && strcmp(s, "warning") == 0)
        return TQU_WARN;
    return -1;
}

int tqu_log_format_parse(const char *s)
{
    if (s && strcmp(s, "text") == 0)
        return TQU_LOG_TEXT;
    if (s && strcmp(s, "json") == 0)
        return TQU_LOG_JSON;
    return -1;
}

int tqu_log_enabled(enum tqu_log_level level)
{
    return level >= log_level;
}

/* Append s to buf, quoting it when it has spaces, quotes or '='. */
static size_t put_text_value(char *buf, size_t off, size_t cap, const char *s)
{
    int quote = s[0] == '\0' || strpbrk(s, " \t\"=\n") != NULL;
    if (off >= cap)
        return off;
    if (!quote)
        return off + (size_t)snprintf(buf + off, cap - off, "%s", s);
    if (off < cap)
        buf[off++] = '"';
    for (; *s && off + 2 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            buf[off++] = '\\';
            buf[off++] = *s;
        } else if (*s == '\n') {
            buf[off++] = '\\';
            buf[off++] = 'n';
        } else {
            buf[off++] = *s;
        }
    }
    if (off < cap)
        buf[off++] = '"';
    return off;
}

void tqu_log(enum tqu_log_level level, const char *msg, ...)
{
    char ts[96], line[8192];
    struct timeval tv;
    struct tm tm;
    size_t off = 0, cap = sizeof(line) - 2;
    const char *k, *v;
    va_list ap;

    if (!tqu_log_enabled(level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)(tv.tv_usec / 1000));
    va_start(ap, msg);
    if (log_format == TQU_LOG_JSON) {
        cJSON *o = cJSON_CreateObject();
        char *s = NULL;
        if (o && cJSON_AddStringToObject(o, "ts", ts) && cJSON_AddStringToObject(o, "level", level_names[level]) &&
            cJSON_AddStringToObject(o, "msg", msg)) {
            while ((k = va_arg(ap, const char *)) != NULL) {
                v = va_arg(ap, const char *);
                cJSON_AddStringToObject(o, k, v ? v : "");
            }
            s = cJSON_PrintUnformatted(o);
        }
        if (s)
            off = (size_t)snprintf(line, cap, "%s", s);
        else
            off = (size_t)snprintf(line, cap, "{\"level\":\"error\",\"msg\":\"log: out of memory\"}");
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        off = (size_t)snprintf(line, cap, "%s %-5s %s", ts, level_names[level], msg);
        while (off < cap && (k = va_arg(ap, const char *)) != NULL) {
            v = va_arg(ap, const char *);
            off += (size_t)snprintf(line + off, cap - off, " %s=", k);
            off = put_text_value(line, off, cap, v ? v : "");
        }
    }
    va_end(ap);
    if (off > cap)
        off = cap;
    line[off++] = '\n';
    ssize_t w = write(log_fd, line, off);
    (void)w;
}
