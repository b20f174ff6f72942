/*
 * spec.h - a TianqingUpgrade's spec as C values (design.md section 1).
 *
 * The CRD's schema already refuses malformed resources and fills in the
 * defaults at admission; this parser applies the same defaults again (an
 * object stored under an older CRD may lack them) and checks what the
 * schema cannot: durations and times that parse, a window that ends after
 * it starts. Strings point into the cJSON object they were parsed from, so
 * that object must outlive the tqu_spec.
 */
#ifndef TQU_SPEC_H
#define TQU_SPEC_H

#include <stddef.h>
#include <time.h>
#include "k8s.h"

typedef struct tqu_spec {
    const char *from_version, *initial_version, *to_version;
    int machines;
    int edr_enabled, paused, dry_run, stop;
    int has_window;
    time_t window_start, window_end;
    const char *window_start_text, *window_end_text;
    const char *packages_root, *packages_archive;   /* archive: "" when none */
    const char *template_path;                      /* "" = discover */
    const char *ssh_user;
    int ssh_port;
    const char *ssh_secret_name, *ssh_secret_key;
    int data_backup_enabled;
    const char *data_backup_dir;
    const char *backup_dir;
    int confirm_hotfix, confirm_autoupdate_off, confirm_xinghai;
    const char *disk_data_root, *disk_mongo_dir;
    long long disk_reserve_gib;
    int disk_max_usage_percent;
    const char *cdn_namespace, *cdn_deployment;
    int cdn_cache_persistence;
    const char *cdn_cache_host_path;
    int cdn_anti_affinity;
    double timeout_paas_s, timeout_upgrade_s, timeout_verify_s;
} tqu_spec;

/*
 * Parse obj.spec. On failure returns K8S_EINVAL with one line in msg naming
 * the field and the problem ("spec.window: end 2026-12-05T21:00:00+08:00 is
 * not after start ..."); *reason gets a CamelCase reason.
 */
int tqu_spec_parse(const cJSON *obj, tqu_spec *spec, const char **reason,
                   char *msg, size_t msg_len);

/* The longest time limit a spec may set: a year. */
#define TQU_DURATION_MAX_S (365.0 * 24 * 3600)
#define TQU_DURATION_MAX_TEXT "8760h (365 days)"

/*
 * A Go-style duration as the CRD's pattern allows it: one or more
 * <digits>[.<digits>]<unit>, unit ns, us, µs, μs, ms, s, m or h ("1h30m",
 * "90s", "1.5h"), in seconds into *secs. K8S_EINVAL when malformed (also
 * signs, spaces, exponents, hex, ".5h"); K8S_ETOOBIG when longer than
 * TQU_DURATION_MAX_S, however many digits it has ("99999999h"). *secs is
 * unchanged on failure.
 */
int tqu_parse_duration(const char *s, double *secs);

/*
 * Seconds as the milliseconds of a tqu_child_spec.timeout_ms, without
 * overflow: 0 for secs <= 0 (or NaN), else rounded up (a positive limit
 * never becomes 0, "none"), at most LONG_MAX.
 */
long tqu_duration_ms(double secs);

#endif
