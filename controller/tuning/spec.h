/*
 * spec.h - TianqingTuning's spec, parsed and checked (design.md section 9).
 * Strings point into the cJSON object parsed (kept by the caller).
 */
#ifndef TQU_TUNING_SPEC_H
#define TQU_TUNING_SPEC_H

#include <time.h>
#include "k8s.h"

#define TQU_TT_MAX_ENDPOINTS 16
#define TQU_TT_MAX_SERVICES 64

typedef struct tqu_tt_service {
    const char *ns, *deployment, *container, *config_ns;   /* container, config_ns: "" = find */
    long long max_request_per_unit;
} tqu_tt_service;

typedef struct tqu_tt_spec {
    const char *endpoints[TQU_TT_MAX_ENDPOINTS];
    size_t n_endpoints;
    const char *key_prefix;
    const char *tls_secret;               /* "" = none */
    int has_global;
    int global_enabled;
    long long global_max;
    tqu_tt_service services[TQU_TT_MAX_SERVICES];
    int n_services;
    int has_edge2;
    const char *edge2_ns, *edge2_deployment, *edge2_container;
    long long edge2_max_clients;
    const char *cdn_ns, *cdn_deployment;
    long long cdn_max_request;            /* 0: not set */
    const char *cdn_disk_space;           /* NULL: not set */
    int has_window;
    time_t window_start, window_end;
    const char *window_start_text, *window_end_text;
    int paused, dry_run, restore_on_delete;
    const char *backup_dir;
} tqu_tt_spec;

/* Parse obj's spec into s: 0, or -1 with *reason (static CamelCase) and a
 * message naming the field. */
int tqu_tt_spec_parse(const cJSON *obj, tqu_tt_spec *s, const char **reason, char *msg, size_t len);

/* RFC 3339 with a zone; -1 if not. */
time_t tqu_tt_parse_time(const char *s);

#endif
