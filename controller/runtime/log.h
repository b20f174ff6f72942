/*
 * log.h - the controller's log lines: text ("time level msg key=value ...")
 * or JSON (one object per line), written whole to stderr with one write(2)
 * so lines from several threads never interleave.
 *
 * Fields are passed as alternating key, value strings ending in NULL:
 *   tqu_log(TQU_INFO, "reconciled", "key", "ns/name", "step", "Preflight", NULL);
 * Never pass a secret: nothing here redacts.
 */
#ifndef TQU_LOG_H
#define TQU_LOG_H

enum tqu_log_level { TQU_DEBUG = 0, TQU_INFO, TQU_WARN, TQU_ERROR };
enum tqu_log_format { TQU_LOG_TEXT = 0, TQU_LOG_JSON };

void tqu_log_setup(enum tqu_log_format fmt, enum tqu_log_level level);
/* Parse "debug|info|warn|error" / "text|json"; -1 when unknown. */
int tqu_log_level_parse(const char *s);
int tqu_log_format_parse(const char *s);
int tqu_log_enabled(enum tqu_log_level level);

void tqu_log(enum tqu_log_level level, const char *msg, ...) __attribute__((sentinel));
/* Send lines to fd instead of stderr (tests). */
void tqu_log_set_fd(int fd);

#endif
