/*
 * spec.h - a TianqingAccessPointUpgrade's spec (design.md section 10),
 * parsed and checked. Strings point into the cJSON object parsed (kept by
 * the caller for as long as the spec is used).
 */
#ifndef TQU_AP_SPEC_H
#define TQU_AP_SPEC_H

#include <stddef.h>
#include <time.h>
#include "k8s.h"

#define TQU_AP_MAX_MACHINES 64

/* A.B.C.D, each part 0 .. 2^31-1. */
typedef struct tqu_ap_version {
    unsigned int part[4];
} tqu_ap_version;

typedef struct tqu_ap_machine {
    char host[256];               /* name or address, without the port */
    int port;                     /* from "host:port", else spec.ssh.port */
} tqu_ap_machine;

typedef struct tqu_ap_spec {
    const char *from_version, *to_version;
    tqu_ap_version from, to;
    int legacy;                   /* from < 10.3.0.3201: the Docker-based access point */
    int to_10_7;                  /* from < 10.7 and to >= 10.7: the s3 fix may apply */
    const char *packages_root, *archive, *md5;         /* archive, md5: "" when not set */
    const char *plan_client_dir, *saas_dir;            /* the installed access point */
    const char *deploy_id;        /* "" = the one found */
    const char *images;           /* "" = <new>/tq_saas/skylar_linux_console_images.tar */
    const char *backup_dir;
    tqu_ap_machine machines[TQU_AP_MAX_MACHINES];
    int nmachines;
    const char *ssh_user;
    int ssh_port;
    const char *secret_name, *secret_key, *known_hosts_cm;
    const char *proxy_ns, *proxy_name;
    const char *fixsvc_path, *fixsvc_md5;
    const char *legacy_dir;
    int confirm_uninstall;
    int has_window;
    time_t window_start, window_end;
    const char *window_start_text, *window_end_text;
    int paused, dry_run;
    double timeout_convert_s, timeout_image_load_s, timeout_install_s;
} tqu_ap_spec;

/*
 * Parse obj's spec into s: 0, or -1 with *reason (InvalidSpec, or
 * InvalidVersion for versions that do not parse or do not go up) and msg
 * naming the field and what is wrong. Absent fields take the CRD's
 * defaults. Nothing to release.
 */
int tqu_ap_spec_parse(const cJSON *obj, tqu_ap_spec *s, const char **reason, char *msg, size_t len);

/* "A.B.C.D" strictly (digits only): 0, or -1. */
int tqu_ap_version_parse(const char *text, tqu_ap_version *v);
/* <0, 0, >0 as a is older than, equal to, newer than b. */
int tqu_ap_version_cmp(const tqu_ap_version *a, const tqu_ap_version *b);
/* "1h30m", "10m", "45s": seconds, or -1. */
double tqu_ap_duration(const char *text);

#endif
