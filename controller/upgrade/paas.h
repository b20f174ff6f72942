/*
 * paas.h - the PaaS health check (procedure.md section 3.4, design.md step
 * PaasCheck): classify the output of `darwin-client ... --actions=paas_check`,
 * and switch the upgrade's own PaaS check off in update.sh when only the
 * EDR components (es, flink, sabre) fail and EDR is not used.
 *
 * Classification. The vendor does not document the tool's output, so it is
 * read defensively, line by line, in bounded memory (a 64 KiB line buffer
 * plus a few kept lines), from a file or fed in chunks of any size:
 *  - ANSI colour/cursor sequences are removed (each separates words, as on
 *    screen); CR, TAB, NUL and the other control characters count as
 *    spaces; a line longer than TQU_PAAS_LINE_MAX is judged on its start;
 *  - a line is a FAILURE LINE when it holds a failure word, in any case:
 *      fail fails failed failing failure failures error errors errored
 *      unhealthy unavailable unreachable crashloopbackoff notready
 *      "not ready" "not healthy" "not running" "not available"
 *      失败 错误 异常 不健康 未就绪 不可用
 *    as whole words, except when plainly negated: preceded (only spaces
 *    between) by no/0/zero/without/not, or followed by 0/none/nil/<nil>/
 *    null/false, optionally after ":"/"="/"：", or after one word and one of
 *    those separators ("0 errors", "failed: 0", "error=nil", "failed jobs:
 *    0"; but "errors: 3", "error 0x8000", "failed: 0.5%" are failures);
 *    the Chinese words also when preceded by 无/没有/未发现 ("无异常");
 *  - a component is named by a whole word (ASCII letters and digits, any
 *    other byte, Chinese included, separates words), case-insensitively,
 *    also with trailing digits ("mongodb27017", "es7", "zk1"), so "es"
 *    does not match "yes", "does" or "services". Components and names:
 *      es (es, elasticsearch, elastic), flink, sabre            -- EDR
 *      mongodb (mongo, mongod, mongodb), redis, postgres (postgres,
 *      postgresql, pg, pgsql), kafka, zookeeper (zookeeper, zk), etcd,
 *      clickhouse (clickhouse, ck), minio (minio, s3), nginx, mysql
 *      (mysql, mariadb), rabbitmq, hadoop (hadoop, hdfs, yarn), hbase,
 *      registry (registry, harbor), coredns, xinghai (xinghai, xh);
 *  - a component FAILS when a failure line names it (a line naming several
 *    fails them all: the safe reading); failure lines naming none are
 *    counted and the first few kept ("unattributed").
 * Verdict: PASS (exit 0 and no component failed), ONLY_EDR_COMPONENTS
 * (components failed, all of them es/flink/sabre; whatever the exit code),
 * OTHER_COMPONENTS (a non-EDR component failed), UNKNOWN_FAILURE (non-zero
 * exit and no component recognised).
 */
#ifndef TQU_PAAS_H
#define TQU_PAAS_H

#include <stddef.h>

#define TQU_PAAS_LINE_MAX 65536      /* bytes of one line that are examined */
#define TQU_PAAS_KEEP_LINES 5        /* lines kept per failing component */
#define TQU_PAAS_KEEP_LINE_LEN 300   /* bytes kept of each (cut on a UTF-8 boundary) */
#define TQU_PAAS_NCOMPONENTS 20

typedef enum tqu_paas_verdict {
    TQU_PAAS_PASS = 0,
    TQU_PAAS_ONLY_EDR_COMPONENTS,
    TQU_PAAS_OTHER_COMPONENTS,
    TQU_PAAS_UNKNOWN_FAILURE,
} tqu_paas_verdict;

typedef struct tqu_paas_lines {
    unsigned long count;                        /* lines seen (all of them) */
    size_t nkept;                               /* <= TQU_PAAS_KEEP_LINES */
    unsigned long line_no[TQU_PAAS_KEEP_LINES]; /* 1-based */
    char *text[TQU_PAAS_KEEP_LINES];            /* owned; trimmed, cut */
} tqu_paas_lines;

typedef struct tqu_paas_component {
    const char *name;            /* canonical name, static: "es", "mongodb"... */
    int edr;                     /* es, flink, sabre */
    tqu_paas_lines failed;       /* the failure lines that name it */
} tqu_paas_component;

typedef struct tqu_paas_result {
    tqu_paas_verdict verdict;     /* set by tqu_paas_finish */
    const char *code;             /* "Passed", "OnlyEdrComponentsFailed",
                                     "OtherComponentsFailed", "UnknownFailure" */
    int exit_code;                /* as given; < 0: did not exit normally */
    unsigned long lines;          /* lines read */
    unsigned long long bytes;     /* bytes read */
    unsigned long long_lines;     /* lines over TQU_PAAS_LINE_MAX */
    tqu_paas_lines unattributed;  /* failure lines that name no component */
    tqu_paas_component comp[TQU_PAAS_NCOMPONENTS];
    char message[1024];           /* one line, set by tqu_paas_finish */
    /* private: the line being assembled */
    char *buf;
    size_t len;
    int esc;                      /* escape-sequence state */
    int overlong;
} tqu_paas_result;

/* Start a classification (allocates the line buffer). K8S_ENOMEM leaves
 * nothing to release. */
int tqu_paas_init(tqu_paas_result *r);
/* Give the next chunk of output (any split). K8S_ENOMEM when a kept line
 * could not be stored: release r. */
int tqu_paas_feed(tqu_paas_result *r, const void *data, size_t len);
/* End of output: judge the last line, set verdict, code and message. */
int tqu_paas_finish(tqu_paas_result *r, int exit_code);
/* Free the kept lines and the buffer; r may then be initialised again. */
void tqu_paas_release(tqu_paas_result *r);

/*
 * init + feed from the file (read in 16 KiB chunks) + finish. On failure
 * (K8S_EIO naming the file, K8S_ENOMEM) r is released and err says why.
 * On success the caller releases r.
 */
int tqu_paas_classify_file(const char *path, int exit_code, tqu_paas_result *r,
                           char *err, size_t errlen);
/* The same from memory. */
int tqu_paas_classify_text(const char *text, size_t len, int exit_code, tqu_paas_result *r);

/* "Passed" ... for a verdict. */
const char *tqu_paas_verdict_code(tqu_paas_verdict v);

/* The component's entry in r by canonical name, or NULL. */
const tqu_paas_component *tqu_paas_component_get(const tqu_paas_result *r, const char *name);

/*
 * Switch off the PaaS check of the upgrade: in update_sh, insert
 * " --paas.check=false" right after every occurrence of the word
 * "execute.type=k8s" (not followed by a letter, digit, '_' or '.') that
 * is not already followed by exactly that. The runbook's sed edits the
 * first occurrence on each line; this edits every occurrence, so a line
 * that runs darwin-client twice is covered too.
 *  - idempotent: nothing to insert changes nothing (no write, no backup);
 *  - a line holding the marker and a "paas.check=" with another value than
 *    false is refused (K8S_EINVAL, file unchanged): a later flag could win;
 *  - before the first change, the file as it is is copied to
 *    <backup_dir>/<real path of update_sh>.orig (folders created, mode
 *    kept); an existing copy is never overwritten, so the saved original
 *    stays the unedited file even when this runs again;
 *  - the edit is written atomically (temp file in the same folder, fsync,
 *    rename, fsync of the folder) to the real path (a symbolic link is
 *    followed, not replaced), keeping mode and, as root, owner.
 * Returns 0 (changed or already done; msg says which, the line numbers and
 * the backup path), K8S_EIO (missing/unreadable file or a write failed;
 * file unchanged), K8S_EINVAL (no "execute.type=k8s" in the file, a
 * conflicting flag, bad arguments), K8S_ETOOBIG (over 8 MiB), K8S_ENOMEM.
 */
int tqu_paas_disable_check(const char *update_sh, const char *backup_dir, char *msg, size_t len);

#endif
