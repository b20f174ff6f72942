/*
 * remedies.h - the etcd key names of the runbook's remedies (chapter 6) as
 * data: remedies/remedies.yaml, built into the binary, replaced with
 * --remedies-file. Parsed with libyaml's document API.
 */
#ifndef TQU_REMEDIES_H
#define TQU_REMEDIES_H

#include <stddef.h>

enum {
    TQU_REM_GLOBAL_ENABLE = 0,   /* globalRateLimitEnable:    {prefix}... */
    TQU_REM_GLOBAL_MAX,          /* globalMaxRequestPerUnit:  {prefix}... */
    TQU_REM_SERVICE_MAX,         /* serviceMaxRequestPerUnit: {configNs}... */
    TQU_REM_CDN_MAX_REQUEST,     /* cdnMaxRequest:            {prefix}... */
    TQU_REM_CDN_DISK_SPACE,      /* cdnDiskSpace:             {prefix}... */
    TQU_REM_COUNT
};

#define TQU_REM_MAX_KEY 256

typedef struct tqu_remedies {
    char key[TQU_REM_COUNT][TQU_REM_MAX_KEY];   /* the templates */
    int confirmed[TQU_REM_COUNT];                /* 0: "to be confirmed per site" */
    char note[TQU_REM_COUNT][256];
} tqu_remedies;

/* The setting names of the file, in enum order. */
extern const char *const tqu_remedies_names[TQU_REM_COUNT];

/*
 * Parse text (len bytes; name for messages, "name:line: ..."). 0, or -1
 * with err filled.
 */
int tqu_remedies_parse(const char *text, size_t len, const char *name, tqu_remedies *out,
                       char *err, size_t errlen);

/* The table built into the binary, or the file: 0, or -1 with err. */
int tqu_remedies_load(const char *path, tqu_remedies *out, char *err, size_t errlen);

/*
 * Expand a template: {prefix} and {configNs} (config_ns may be NULL for
 * the keys without it). 0, or -1 when it does not fit or a placeholder has
 * no value.
 */
int tqu_remedies_key(const char *tmpl, const char *prefix, const char *config_ns, char *buf,
                     size_t len);

#endif
