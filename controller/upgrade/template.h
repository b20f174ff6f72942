/*
 * template.h - find the darwin template the PaaS check and update.sh use
 * (procedure.md section 3.4, design.md step Preflight).
 *
 * In the template folder (by default <packages.root>/TQU_TEMPLATE_SUBDIR):
 *  - if any darwin_update_template_<timestamp>.yaml exists (the cluster was
 *    upgraded before), the one whose name carries the newest timestamp;
 *    never the file's mtime, which copies and restores change;
 *  - else the single darwin_template_<deployID>.yaml written by the first
 *    install (none: error; several: ambiguous, all named);
 *  - unless an explicit path is given (spec.template): it must exist, be a
 *    regular file (a symbolic link to one is fine) and be readable.
 *
 * Timestamps accepted in update-template names (digits only; the value is
 * turned into a time so that different formats compare correctly):
 *   8 digits  YYYYMMDD            12 digits YYYYMMDDhhmm
 *   14 digits YYYYMMDDhhmmss      17 digits YYYYMMDDhhmmssSSS (milliseconds)
 *   9-10 digits: Unix seconds     13 digits: Unix milliseconds
 * Calendar forms must be valid dates and times and are read as UTC: the
 * vendor's tool writes local time, so two names in different formats less
 * than the UTC offset apart may be misordered (names in one format always
 * compare exactly). Any other name (other lengths, separators, letters) is
 * ignored with a note in the message; if update templates exist but none
 * has a timestamp understood here, that is an error rather than a silent
 * fall-back to the install template. Two update templates with the same
 * newest time are ambiguous. Only the .yaml suffix counts (".yaml.bak" and
 * the like are not templates); non-regular entries are ignored with a note.
 */
#ifndef TQU_TEMPLATE_H
#define TQU_TEMPLATE_H

#include <limits.h>
#include <stddef.h>

#define TQU_TEMPLATE_SUBDIR "tq_paas/skylar/skylar_linuxserver_client/plan_client"
#define TQU_TEMPLATE_UPDATE_PREFIX "darwin_update_template_"
#define TQU_TEMPLATE_INSTALL_PREFIX "darwin_template_"

typedef enum tqu_template_kind {
    TQU_TEMPLATE_NONE = 0,
    TQU_TEMPLATE_EXPLICIT,       /* spec.template */
    TQU_TEMPLATE_UPDATE,         /* darwin_update_template_<timestamp>.yaml */
    TQU_TEMPLATE_INSTALL,        /* darwin_template_<deployID>.yaml */
} tqu_template_kind;

typedef struct tqu_template {
    char path[PATH_MAX];         /* the chosen template; "" on failure */
    tqu_template_kind kind;
    long long time_ms;           /* UPDATE: the name's time, ms since the epoch (UTC reading) */
    const char *reason;          /* NULL on success, else (static) "TemplateNotFound",
                                    "TemplateAmbiguous", "TemplateUnreadable",
                                    "TemplateDirUnreadable" or "OutOfMemory" */
    char message[2048];          /* one line: the choice and what was considered,
                                    or what is wrong and what to do */
} tqu_template;

/* "<packages_root>/" TQU_TEMPLATE_SUBDIR into buf; K8S_EINVAL if it does not fit. */
int tqu_template_default_dir(const char *packages_root, char *buf, size_t len);

/*
 * Choose the template as described above. dir is used when explicit_path
 * is NULL or "". Returns 0 (out->path set) or: K8S_EIO (dir or the file
 * cannot be read; explicit path missing or not a regular file), K8S_EINVAL
 * (nothing usable: no template, or ambiguous; NULL arguments), K8S_ENOMEM.
 * out->reason and out->message say which and what to do in every case.
 */
int tqu_template_find(const char *dir, const char *explicit_path, tqu_template *out);

/*
 * The time in a darwin_update_template_<timestamp>.yaml name, in ms since
 * the epoch (see above for the forms). Returns 0, or K8S_EINVAL when name
 * is not such a name or its timestamp is not understood.
 */
int tqu_template_name_time(const char *name, long long *ms);

#endif
