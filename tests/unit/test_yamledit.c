/*
 * test_yamledit.c - byte-exact YAML edits (controller/host/yamledit.c):
 * the darwin template of tests/fixtures/yamledit/ (web.darwincdn set,
 * the s3 section replaced by the old template's) compared byte for byte
 * with the golden files there; scalars in every form (plain, quoted, with
 * a comment, empty, block, flow, CRLF, anchored) and the quoting rule;
 * sections in block and flow form, CRLF, other indentation; every error
 * code with its message and the file left as it was; keep_path, owner,
 * mode, symbolic links; failed allocations.
 *
 * Each case writes the original into its own mkdtemp folder, edits it and
 * compares the whole result with the expected text, then checks that the
 * bytes outside the edited range are the original's and that libyaml reads
 * the new value back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "failalloc.h"
#include "testutil.h"
#include "host/yamledit.h"

static char tmp[PATH_MAX];

static const char *at(const char *rel)
{
    static char bufs[8][PATH_MAX + 64];
    static int i;
    i = (i + 1) % 8;
    snprintf(bufs[i], sizeof(bufs[i]), "%s/%s", tmp, rel);
    return bufs[i];
}

static int setup(void **state)
{
    (void)state;
    return test_mkdtemp(tmp, sizeof(tmp), "test_yamledit") ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_rmtree(tmp);
}

/* ------------------------------------------------------------ helpers */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static char *fixture(const char *name)
{
    const char *repo = getenv("TQU_REPO");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/tests/fixtures/yamledit/%s", repo ? repo : ".", name);
    return slurp(path, NULL);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Fail unless the file at path holds exactly want. */
static void assert_file(const char *path, const char *want)
{
    size_t len;
    char *got = slurp(path, &len);
    if (len != strlen(want) || memcmp(got, want, len) != 0)
        fail_msg("%s:\n--- got ---\n%s\n--- want ---\n%s\n", path, got, want);
    free(got);
}

/*
 * Diff-style: result equals orig except in one range; the range found from
 * the common prefix and suffix must lie within [lo, hi) of orig (the node
 * the edit was meant to touch).
 */
static void assert_only_changed(const char *orig, const char *result, size_t lo, size_t hi)
{
    size_t a = strlen(orig), b = strlen(result), pre = 0, suf = 0;

    while (pre < a && pre < b && orig[pre] == result[pre])
        pre++;
    while (suf < a - pre && suf < b - pre && orig[a - 1 - suf] == result[b - 1 - suf])
        suf++;
    if (pre < lo || a - suf > hi)
        fail_msg("changed bytes [%zu, %zu) of the original lie outside [%zu, %zu)", pre, a - suf,
                 lo, hi);
}

/* Where needle lies in hay (must be there once). */
static size_t offset_of(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);
    if (!p)
        fail_msg("\"%s\" not in the text", needle);
    assert_null(strstr(p + 1, needle));
    return (size_t)(p - hay);
}

typedef struct snap {
    struct stat st;
    char *text;
} snap;

static snap take(const char *path)
{
    snap s;
    assert_int_equal(stat(path, &s.st), 0);
    s.text = slurp(path, NULL);
    return s;
}

/* The file is the one snapped: same bytes, same inode, same mtime. */
static void assert_untouched(const char *path, snap *s)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_file(path, s->text);
    assert_int_equal(st.st_ino, s->st.st_ino);
    assert_int_equal(st.st_mtim.tv_sec, s->st.st_mtim.tv_sec);
    assert_int_equal(st.st_mtim.tv_nsec, s->st.st_mtim.tv_nsec);
    free(s->text);
    s->text = NULL;
}

/* libyaml reads path's scalar as want (the module's reader and ours). */
static void assert_reads(const char *file, const char *path, const char *want)
{
    char out[256], err[512] = "";
    int rc = tqu_yaml_get_scalar(file, path, out, sizeof(out), err, sizeof(err));
    if (rc)
        fail_msg("get %s: %d %s", path, rc, err);
    assert_string_equal(out, want);
}

/* An independent check with libyaml itself: the text is one stream that
 * parses to the end, and holds a scalar event equal to want. */
static void assert_parses_with(const char *text, const char *want)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int seen = 0, done = 0;

    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    while (!done) {
        if (!yaml_parser_parse(&p, &ev))
            fail_msg("libyaml: %s at line %zu", p.problem, p.problem_mark.line + 1);
        if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == strlen(want) &&
            memcmp(ev.data.scalar.value, want, strlen(want)) == 0)
            seen = 1;
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    assert_true(seen);
}

/* ------------------------------------------------------------ locate */

static void expect_locate(const char *text, const char *path, const char *want, int scalar)
{
    size_t s = 0, e = 0;
    int is_scalar = -1;
    char err[512] = "";
    int rc = tqu_yaml_locate(text, strlen(text), path, &s, &e, &is_scalar, err, sizeof(err));
    if (rc)
        fail_msg("locate %s: %d %s", path, rc, err);
    assert_int_equal(is_scalar, scalar);
    if (e - s != strlen(want) || memcmp(text + s, want, e - s) != 0)
        fail_msg("locate %s: [%zu, %zu) = \"%.*s\", want \"%s\"", path, s, e, (int)(e - s), text + s,
                 want);
    assert_int_equal(s, offset_of(text, want));
}

/* Byte offsets in a file with Chinese comments before the nodes (libyaml
 * counts characters): the s3 section ends at its last content line. */
static void test_locate_fixture(void **state)
{
    (void)state;
    char *t = fixture("template.yaml");

    expect_locate(t, "web.darwincdn", "\"darwin-cdn:8083\"", 1);
    expect_locate(t, "global.timezone", "Asia/Shanghai", 1);
    expect_locate(t, "s3",
                  "type: minio\n"
                  "  endpoint: \"http://minio.skylar:9000\"\n"
                  "  access_key: TQAPNEWKEY0000000000\n"
                  "  secret_key: \"new/Secret+Key==\"   # rotated by the installer\n"
                  "  bucket: darwin-files\n"
                  "  region: cn-north-1\n"
                  "  tls:\n"
                  "    enabled: false\n"
                  "    verify: true  # 校验证书", 0);
    expect_locate(t, "s3.tls.verify", "true", 1);
    expect_locate(t, "global.nodes",
                  "- name: ap-01\n      ip: 10.20.0.11\n    - name: ap-02\n      ip: 10.20.0.12", 0);
    expect_locate(t, "web.allowed_origins",
                  "[ \"https://console.tianqing.local\", \"https://10.20.0.11\" ]", 0);
    expect_locate(t, "services",
                  "- name: darwin-web\n    replicas: 2\n    ports: [8443]\n"
                  "  - name: darwin-cdn\n    replicas: 3\n    ports: [8083, 30083]\n"
                  "  - name: proxy-pp\n    ports:\n      - 8083\n      - 30083", 0);
    free(t);
}

static void test_locate_forms(void **state)
{
    (void)state;
    /* flow mapping, CRLF, a block scalar (its trailing blank lines not in it),
     * an empty value, a BOM */
    expect_locate("web: {darwincdn: 'a:1', x: [1, 2]}\n", "web.darwincdn", "'a:1'", 1);
    expect_locate("web: {darwincdn: 'a:1', x: [1, 2]}\n", "web", "{darwincdn: 'a:1', x: [1, 2]}", 0);
    expect_locate("a: 1\r\nweb:\r\n  darwincdn: x  # c\r\n  y: 2\r\n", "web.darwincdn", "x", 1);
    expect_locate("a: 1\r\nweb:\r\n  darwincdn: x\r\n  y: 2  # c\r\n\r\nz: 3\r\n", "web",
                  "darwincdn: x\r\n  y: 2  # c", 0);
    expect_locate("web:\n  d: |\n    one\n    two\n\n\n  e: 1\n", "web.d", "|\n    one\n    two", 1);
    expect_locate("\xef\xbb\xbf" "a: é\nb: 是的\n", "b", "是的", 1);
    expect_locate("key: [a, {b: c}]\n", "key", "[a, {b: c}]", 0);

    size_t s, e;
    int k;
    char err[256];
    assert_int_equal(tqu_yaml_locate("web:\n  d:   # c\n  e: 1\n", 22, "web.d", &s, &e, &k, err,
                                     sizeof(err)), TQU_YAML_OK);
    assert_int_equal(s, 9);   /* the empty value: just after the colon */
    assert_int_equal(e, 9);
    assert_int_equal(k, 1);
    assert_int_equal(tqu_yaml_locate("a: 1\n", 5, "", &s, &e, &k, err, sizeof(err)), TQU_YAML_EINVAL);
    assert_int_equal(tqu_yaml_locate("a: 1\n", 5, "a..b", &s, &e, &k, err, sizeof(err)),
                     TQU_YAML_EINVAL);
    assert_int_equal(tqu_yaml_locate("a: 1\n", 5, "b", &s, &e, &k, err, sizeof(err)),
                     TQU_YAML_ENOTFOUND);
    assert_string_equal(err, "<text>:1:1: no key \"b\" in the root mapping");
    assert_int_equal(tqu_yaml_locate("a: 1\n", 5, "a.b", &s, &e, &k, err, sizeof(err)),
                     TQU_YAML_ENOTFOUND);
    assert_string_equal(err, "<text>:1:4: \"a\" is a scalar, not a mapping (no key \"b\")");
}

/* ------------------------------------------------------------ set_scalar */

/* The runbook's edit on the realistic template: only the scalar changes,
 * the comment after it stays; again: nothing written; keep is the first
 * original. */
static void test_set_cdn_fixture(void **state)
{
    (void)state;
    char *orig = fixture("template.yaml"), *want = fixture("template.cdn.yaml"), *got;
    const char *f = at("template.yaml"), *keep = at("template.yaml.orig");
    char err[512] = "";
    int changed = -1;
    struct stat st1, st2, stk;
    size_t lo = offset_of(orig, "\"darwin-cdn:8083\"");

    put(f, orig);
    assert_int_equal(chmod(f, 0640), 0);
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "proxy-pp:8083", keep, &changed, err,
                                         sizeof(err)), TQU_YAML_OK);
    assert_int_equal(changed, 1);
    assert_file(f, want);
    got = slurp(f, NULL);
    assert_only_changed(orig, got, lo, lo + strlen("\"darwin-cdn:8083\""));
    assert_parses_with(got, "proxy-pp:8083");
    free(got);
    assert_reads(f, "web.darwincdn", "proxy-pp:8083");
    assert_file(keep, orig);
    assert_int_equal(stat(keep, &stk), 0);
    assert_int_equal(stk.st_mode & 07777, 0640);
    assert_int_equal(stat(f, &st1), 0);
    assert_int_equal(st1.st_mode & 07777, 0640);

    /* equal value: not written */
    changed = -1;
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "proxy-pp:8083", keep, &changed, err,
                                         sizeof(err)), TQU_YAML_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(stat(f, &st2), 0);
    assert_int_equal(st2.st_ino, st1.st_ino);
    assert_int_equal(st2.st_mtim.tv_nsec, st1.st_mtim.tv_nsec);
    assert_int_equal(st2.st_mtim.tv_sec, st1.st_mtim.tv_sec);
    assert_file(f, want);

    /* another value: keep still holds the first original */
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "proxy-pp:9000", keep, &changed, err,
                                         sizeof(err)), TQU_YAML_OK);
    assert_int_equal(changed, 1);
    assert_reads(f, "web.darwincdn", "proxy-pp:9000");
    assert_file(keep, orig);
    free(orig);
    free(want);
}

typedef struct set_case {
    const char *in, *path, *value, *out;
} set_case;

static void run_set_case(const set_case *c)
{
    const char *f = at("t.yaml");
    char err[512] = "";
    int changed = -1, rc;
    struct stat st1, st2;

    put(f, c->in);
    rc = tqu_yaml_set_scalar(f, c->path, c->value, NULL, &changed, err, sizeof(err));
    if (rc)
        fail_msg("set %s in\n%s\n: %d %s", c->path, c->in, rc, err);
    assert_int_equal(changed, strcmp(c->in, c->out) != 0);
    assert_file(f, c->out);
    assert_reads(f, c->path, c->value);
    assert_parses_with(c->out, c->value);
    /* the same again: nothing written */
    assert_int_equal(stat(f, &st1), 0);
    assert_int_equal(tqu_yaml_set_scalar(f, c->path, c->value, NULL, &changed, err, sizeof(err)), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(stat(f, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
}

static void test_set_forms(void **state)
{
    (void)state;
    static const set_case cases[] = {
        {"web:\n  darwincdn: a:1\n  x: 1\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083\n  x: 1\n"},
        {"web:\n  darwincdn: \"a:1\"  # note\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083  # note\n"},
        {"web:\n  darwincdn: 'a:1'\t# note\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083\t# note\n"},
        /* empty value, with and without a comment; at the end of the file */
        {"web:\n  darwincdn:\n  x: 1\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083\n  x: 1\n"},
        {"web:\n  darwincdn:   # none yet\n  x: 1\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083   # none yet\n  x: 1\n"},
        {"web:\n  darwincdn: old", "web.darwincdn", "proxy-pp:8083", "web:\n  darwincdn: proxy-pp:8083"},
        /* flow: a colon is quoted there (older parsers refuse it plain) */
        {"web: {darwincdn: old, x: 1}  # c\n", "web.darwincdn", "proxy-pp:8083",
         "web: {darwincdn: \"proxy-pp:8083\", x: 1}  # c\n"},
        {"web: {x: 1, darwincdn: old}\n", "web.darwincdn", "cdn", "web: {x: 1, darwincdn: cdn}\n"},
        /* CRLF kept */
        {"a: 1\r\nweb:\r\n  darwincdn: old # c\r\n  b: 2\r\n", "web.darwincdn", "proxy-pp:8083",
         "a: 1\r\nweb:\r\n  darwincdn: proxy-pp:8083 # c\r\n  b: 2\r\n"},
        /* a block scalar (its blank lines kept), a multi-line plain one */
        {"web:\n  darwincdn: |\n    old\n    older\n\n  b: 2\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083\n\n  b: 2\n"},
        {"web:\n  darwincdn: one\n    two\n  b: 2\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: proxy-pp:8083\n  b: 2\n"},
        /* an anchor and a tag stay */
        {"web:\n  darwincdn: &cdn old\n  b: *cdn\n", "web.darwincdn", "x",
         "web:\n  darwincdn: &cdn x\n  b: *cdn\n"},
        {"web:\n  darwincdn: !!str old\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: !!str proxy-pp:8083\n"},
        /* the root's own key; a quoted key; a deeper path */
        {"darwincdn: x\n", "darwincdn", "cdn2", "darwincdn: cdn2\n"},
        {"\"web\":\n  'darwincdn': x\n", "web.darwincdn", "cdn2", "\"web\":\n  'darwincdn': cdn2\n"},
        {"a:\n  b:\n    c: [1]\n    d: 1\n", "a.b.d", "two", "a:\n  b:\n    c: [1]\n    d: two\n"},
        /* multibyte text before and in the value */
        {"# 说明\nweb:\n  darwincdn: 旧值 # 注释\n", "web.darwincdn", "新值",
         "# 说明\nweb:\n  darwincdn: 新值 # 注释\n"},
        /* equal value in another form: nothing written */
        {"web:\n  darwincdn: \"proxy-pp:8083\"\n", "web.darwincdn", "proxy-pp:8083",
         "web:\n  darwincdn: \"proxy-pp:8083\"\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_set_case(&cases[i]);
}

/* Plain only when it reads back as the same string and as a string;
 * otherwise double-quoted with escapes. */
static void test_set_quoting(void **state)
{
    (void)state;
    static const struct {
        const char *value, *written;
    } cases[] = {
        {"proxy-pp:8083", "proxy-pp:8083"},
        {"darwin cdn", "darwin cdn"},
        {"héllo", "héllo"},
        {"a#b", "a#b"},
        {"true", "\"true\""},
        {"No", "\"No\""},
        {"~", "\"~\""},
        {"null", "\"null\""},
        {"", "\"\""},
        {"8083", "\"8083\""},
        {"10.0.0.1:8083", "\"10.0.0.1:8083\""},
        {"-1", "\"-1\""},
        {".5", "\".5\""},
        {".inf", "\".inf\""},
        {"<<", "\"<<\""},
        {"a: b", "\"a: b\""},
        {"a #b", "\"a #b\""},
        {"- x", "\"- x\""},
        {"*ref", "\"*ref\""},
        {"&anchor", "\"&anchor\""},
        {"!tag", "\"!tag\""},
        {"@x", "\"@x\""},
        {"`x", "\"`x\""},
        {"{x}", "\"{x}\""},
        {"[x", "\"[x\""},
        {"'x'", "\"'x'\""},
        {"%x", "\"%x\""},
        {"|", "\"|\""},
        {">", "\">\""},
        {"? x", "\"? x\""},
        {" lead", "\" lead\""},
        {"trail ", "\"trail \""},
        {"say \"hi\" \\o/", "say \"hi\" \\o/"},
        {"\"hi\" \\o/", "\"\\\"hi\\\" \\\\o/\""},
        {"tab\there", "\"tab\\there\""},
        {"bell\a", "\"bell\\x07\""},
        {"del\x7f", "\"del\\x7F\""},
    };
    char out[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_case c = {"web:\n  darwincdn: old  # c\n", "web.darwincdn", cases[i].value, out};
        snprintf(out, sizeof(out), "web:\n  darwincdn: %s  # c\n", cases[i].written);
        run_set_case(&c);
    }
}

/* ------------------------------------------------------------ sections */

/* The runbook's fix on the realistic templates: the old s3 section in
 * place of the new one, everything else as it was. */
static void test_replace_fixture(void **state)
{
    (void)state;
    char *orig = fixture("template.yaml"), *old = fixture("old-template.yaml");
    char *want = fixture("template.s3-from-old.yaml"), *got;
    const char *f = at("template.yaml"), *from = at("darwin_template_26285abe2200902d.yaml");
    const char *keep = at("keep/template.yaml.before-s3");
    char err[512] = "", buf[64];
    int changed = -1;
    struct stat st1, st2;
    snap fs;

    put(f, orig);
    put(from, old);
    assert_int_equal(mkdir(at("keep"), 0755), 0);
    fs = take(from);
    assert_int_equal(tqu_yaml_replace_section(f, from, "s3", keep, &changed, err, sizeof(err)),
                     TQU_YAML_OK);
    assert_int_equal(changed, 1);
    assert_file(f, want);
    got = slurp(f, NULL);
    assert_only_changed(orig, got, offset_of(orig, "s3:\n"), offset_of(orig, "\n  # set by the installer"));
    assert_parses_with(got, "old+Secret/Key==");
    free(got);
    assert_untouched(from, &fs);   /* the source is only read */
    assert_file(keep, orig);
    assert_reads(f, "s3.endpoint", "http://10.20.0.30:9000");
    assert_reads(f, "s3.secret_key", "old+Secret/Key==");
    assert_reads(f, "web.darwincdn", "darwin-cdn:8083");
    assert_int_equal(tqu_yaml_get_scalar(f, "s3.region", buf, sizeof(buf), err, sizeof(err)),
                     TQU_YAML_ENOTFOUND);

    /* again: the same text is there, nothing written */
    assert_int_equal(stat(f, &st1), 0);
    assert_int_equal(tqu_yaml_replace_section(f, from, "s3", keep, &changed, err, sizeof(err)), 0);
    assert_int_equal(changed, 0);
    assert_int_equal(stat(f, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);

    /* then the cdn: both edits together leave the rest alone */
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "proxy-pp:8083", keep, &changed, err,
                                         sizeof(err)), 0);
    assert_int_equal(changed, 1);
    assert_file(keep, orig);
    free(orig);
    free(old);
    free(want);
}

typedef struct rep_case {
    const char *target, *source, *out;
} rep_case;

static void test_replace_forms(void **state)
{
    (void)state;
    static const rep_case cases[] = {
        /* block by block; blank lines and a comment after the section kept */
        {"a: 1\ns3:\n  x: 1\n  y: 2  # c\n\n# about b\nb: 2\n", "s3:\n  x: 9\n",
         "a: 1\ns3:\n  x: 9\n\n# about b\nb: 2\n"},
        /* flow in the target, block from the source, and the other way */
        {"a: 1\ns3: {x: 1}   # flow\nb: 2\n", "z: 0\ns3:\n  x: 2\n  y: [1, 2]\nw: 1\n",
         "a: 1\ns3:\n  x: 2\n  y: [1, 2]\nb: 2\n"},
        {"s3:\n  x: 1\nb: 2\n", "s3: {x: 3, y: \"q\"}\n", "s3: {x: 3, y: \"q\"}\nb: 2\n"},
        /* the last section, no final line break */
        {"a: 1\ns3:\n  x: 1", "s3:\n  x: 2\n  y: 3\n", "a: 1\ns3:\n  x: 2\n  y: 3"},
        /* CRLF target, LF source: the copy gets CRLF; and the reverse */
        {"a: 1\r\ns3:\r\n  x: 1\r\nb: 2\r\n", "s3:\n  x: 2\n  y: 3\n",
         "a: 1\r\ns3:\r\n  x: 2\r\n  y: 3\r\nb: 2\r\n"},
        {"a: 1\ns3:\n  x: 1\nb: 2\n", "s3:\r\n  x: 2\r\n  # c\r\n  y: 3\r\n",
         "a: 1\ns3:\n  x: 2\n  # c\n  y: 3\nb: 2\n"},
        /* a root indented by two: the copy moves right */
        {"  a: 1\n  s3:\n    x: 1\n  b: 2\n", "s3:\n  x: 2\n  t:\n    - 1\n",
         "  a: 1\n  s3:\n    x: 2\n    t:\n      - 1\n  b: 2\n"},
        /* a scalar value, a sequence */
        {"s3: none\nb: 2\n", "s3:\n  - x\n  - y\n", "s3:\n  - x\n  - y\nb: 2\n"},
        /* multibyte text around */
        {"# 前\ns3:\n  x: 一\n# 后\nb: 2\n", "s3:\n  x: 二  # 注\n", "# 前\ns3:\n  x: 二  # 注\n# 后\nb: 2\n"},
        /* anchors inside the copied section, aliases outside it untouched */
        {"a: &a 1\ns3:\n  x: *a\n", "s3:\n  k: &k v\n  l: *k\n", "a: &a 1\ns3:\n  k: &k v\n  l: *k\n"},
    };
    const char *f = at("t.yaml"), *from = at("from.yaml");
    char err[512];
    int changed;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put(f, cases[i].target);
        put(from, cases[i].source);
        changed = -1;
        err[0] = '\0';
        int rc = tqu_yaml_replace_section(f, from, "s3", NULL, &changed, err, sizeof(err));
        if (rc)
            fail_msg("case %zu: %d %s", i, rc, err);
        assert_int_equal(changed, 1);
        assert_file(f, cases[i].out);
        assert_int_equal(tqu_yaml_replace_section(f, from, "s3", NULL, &changed, err, sizeof(err)), 0);
        assert_int_equal(changed, 0);
    }
}

/* ------------------------------------------------------------ errors */

enum { OP_SET, OP_GET, OP_REPLACE };

typedef struct err_case {
    int op;
    const char *text;      /* the file's content */
    const char *path;      /* path or key */
    const char *value;     /* set: the value; replace: the source's content */
    int rc;
    const char *msg;       /* in err after the file's name */
} err_case;

static void run_err_case(const err_case *c, size_t i)
{
    const char *f = at("template.yaml"), *from = at("old.yaml"), *keep = at("template.keep");
    char err[512] = "", want[PATH_MAX + 256], out[64];
    int changed = -1, rc;
    snap s;

    put(f, c->text);
    if (c->op == OP_REPLACE)
        put(from, c->value);
    s = take(f);
    if (c->op == OP_SET)
        rc = tqu_yaml_set_scalar(f, c->path, c->value, keep, &changed, err, sizeof(err));
    else if (c->op == OP_GET)
        rc = tqu_yaml_get_scalar(f, c->path, out, sizeof(out), err, sizeof(err));
    else
        rc = tqu_yaml_replace_section(f, from, c->path, keep, &changed, err, sizeof(err));
    if (rc != c->rc)
        fail_msg("case %zu: rc %d (%s), want %d", i, rc, err, c->rc);
    /* ":L:C: ..." follows the file's name, "old.yaml..." the folder; any
     * other text must be somewhere in a message that names the file */
    if (c->msg[0] == ':' || !strncmp(c->msg, "old.yaml", 8))
        snprintf(want, sizeof(want), "%s%s%s", c->msg[0] == ':' ? f : tmp,
                 c->msg[0] == ':' ? "" : "/", c->msg);
    else
        snprintf(want, sizeof(want), "%s", f);
    if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, c->msg))
        fail_msg("case %zu: message \"%s\", want \"%s\" and \"%s\"", i, err, want, c->msg);
    if (c->op != OP_GET)
        assert_int_equal(changed, 0);
    assert_untouched(f, &s);
    assert_int_equal(access(keep, F_OK), -1);
}

static void test_errors(void **state)
{
    (void)state;
    static const err_case cases[] = {
        /* a key twice: on the path, at the root or deeper */
        {OP_REPLACE, "s3:\n  x: 1\nweb: {}\ns3:\n  x: 2\n", "s3", "s3:\n  x: 3\n", TQU_YAML_EDUP,
         ":4:1: key \"s3\" appears twice (first at line 1)"},
        {OP_SET, "web:\n  darwincdn: a\n  x: 1\n  darwincdn: b\n", "web.darwincdn", "c", TQU_YAML_EDUP,
         ":4:3: key \"web.darwincdn\" appears twice (first at line 2)"},
        {OP_SET, "web:\n  darwincdn: a\nweb:\n  y: 1\n", "web.darwincdn", "c", TQU_YAML_EDUP,
         ":3:1: key \"web\" appears twice (first at line 1)"},
        {OP_REPLACE, "s3:\n  x: 1\n", "s3", "s3: {}\ns3: {}\n", TQU_YAML_EDUP,
         "old.yaml:2:1: key \"s3\" appears twice"},
        /* missing */
        {OP_REPLACE, "a: 1\nweb: {}\n", "s3", "s3: {}\n", TQU_YAML_ENOTFOUND,
         ":1:1: no key \"s3\" in the root mapping"},
        {OP_REPLACE, "s3: {}\n", "s3", "a: 1\n", TQU_YAML_ENOTFOUND,
         "old.yaml:1:1: no key \"s3\" in the root mapping"},
        {OP_SET, "web:\n  listen: x\n", "web.darwincdn", "c", TQU_YAML_ENOTFOUND,
         ":2:3: no key \"darwincdn\" in \"web\""},
        {OP_SET, "web: x\n", "web.darwincdn", "c", TQU_YAML_ENOTFOUND,
         ":1:6: \"web\" is a scalar, not a mapping (no key \"darwincdn\")"},
        {OP_GET, "web: [a]\n", "web.darwincdn", NULL, TQU_YAML_ENOTFOUND,
         ":1:6: \"web\" is a sequence, not a mapping (no key \"darwincdn\")"},
        /* not one document with a mapping root */
        {OP_SET, "- a\n- b\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":1:1: the root is a sequence, not a mapping"},
        {OP_SET, "just text\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":1:1: the root is a scalar, not a mapping"},
        {OP_SET, "web:\n  darwincdn: a\n---\nweb: {}\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":3:1: a second document (one expected)"},
        {OP_SET, "", "web.darwincdn", "c", TQU_YAML_EPARSE, ":1:1: no YAML document"},
        {OP_SET, "# only a comment\n", "web.darwincdn", "c", TQU_YAML_EPARSE, ":1:1: no YAML document"},
        {OP_SET, "web:\n  darwincdn: [a\nb: c\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":3:2: did not find expected ',' or ']' (while parsing a flow sequence at line 2)"},
        {OP_SET, "web:\n  darwincdn: \"a\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         "found unexpected end of stream"},
        {OP_SET, "web:\n  darwincdn: a\n x: 1\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":3:2: did not find expected key (while parsing a block mapping at line 1)"},
        {OP_SET, "web:\n  darwincdn: \xff\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":2:14: invalid leading UTF-8 octet"},
        {OP_REPLACE, "s3: {}\n", "s3", "s3: [\n", TQU_YAML_EPARSE, "old.yaml:2:1: "},
        {OP_GET, "\xff\xfe" "w\n", "web", NULL, TQU_YAML_EPARSE,
         ":1:1: UTF-16 text (UTF-8 expected)"},
        /* a parse error wins over a key found twice before it */
        {OP_SET, "web: {}\nweb: {}\nx: [\n", "web.darwincdn", "c", TQU_YAML_EPARSE, ":4:1: "},
        /* the wrong kind */
        {OP_SET, "web:\n  darwincdn:\n    a: 1\n", "web.darwincdn", "c", TQU_YAML_EKIND,
         ":3:5: \"web.darwincdn\" is a collection, not a scalar"},
        {OP_GET, "s3: [1]\n", "s3", NULL, TQU_YAML_EKIND, ":1:5: \"s3\" is a collection, not a scalar"},
        {OP_SET, "a: &x 1\nweb:\n  darwincdn: *x\n", "web.darwincdn", "c", TQU_YAML_EKIND,
         ":3:14: \"web.darwincdn\" is an alias, not a scalar"},
        {OP_REPLACE, "a: &x {}\ns3: *x\n", "s3", "s3: {}\n", TQU_YAML_EKIND, ":2:5: \"s3\" is an alias"},
        /* bad values and paths */
        {OP_SET, "web:\n  darwincdn: a\n", "web.darwincdn", "proxy-pp:8083\nx: 1", TQU_YAML_EINVAL,
         ":2:14: the new value of \"web.darwincdn\" holds a line break"},
        {OP_SET, "web:\n  darwincdn: a\n", "web.darwincdn", "a\rb", TQU_YAML_EINVAL,
         "holds a line break"},
        {OP_SET, "web:\n  darwincdn: a\n", "web.darwincdn", "a\xe2\x80\xa8" "b", TQU_YAML_EINVAL,
         "holds a line break"},
        {OP_SET, "web:\n  darwincdn: a\n", "web.darwincdn", "\xc3(", TQU_YAML_EINVAL,
         "is not UTF-8 text"},
        {OP_SET, "web:\n  darwincdn: a\n", "", "c", TQU_YAML_EINVAL, ": no file, no value or a bad path"},
        {OP_SET, "web:\n  darwincdn: a\n", "web..darwincdn", "c", TQU_YAML_EINVAL, "a bad path"},
        {OP_SET, "web:\n  darwincdn: a\n", ".web", "c", TQU_YAML_EINVAL, "a bad path"},
        {OP_GET, "web:\n  darwincdn: a\n", "web.", NULL, TQU_YAML_EINVAL, "a bad path"},
        {OP_GET, "web:\n  darwincdn: a-value-longer-than-64-bytes-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
         "web.darwincdn", NULL, TQU_YAML_ETOOBIG, ":2:14: \"web.darwincdn\" holds 75 bytes, room for 63"},
        /* an alias needs its anchor before it; an edit may not take it away */
        {OP_SET, "a: *x\nweb:\n  darwincdn: old\n", "web.darwincdn", "c", TQU_YAML_EPARSE,
         ":1:4: alias *x has no anchor before it"},
        {OP_REPLACE, "s3: &s3\n  x: 1\nbackup: *s3\n", "s3", "s3:\n  x: 2\n", TQU_YAML_EPARSE,
         ":1:5: \"s3\" of "},
        /* a block section that cannot go into a flow root */
        {OP_REPLACE, "{a: 1, s3: {x: 1}, b: 2}\n", "s3", "s3:\n  x: 2\n", TQU_YAML_EPARSE,
         "does not fit here (the file would not read back the same); not written"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_err_case(&cases[i], i);
}

/* Nesting deeper than the limit: refused, not a deep recursion. */
static void test_deep_nesting(void **state)
{
    (void)state;
    char text[2048], err[512], out[16];
    size_t n = 0;

    n += (size_t)sprintf(text + n, "web:\n  darwincdn: x\ndeep: ");
    for (int i = 0; i < 300; i++)
        text[n++] = '[';
    for (int i = 0; i < 300; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    put(at("deep.yaml"), text);
    assert_int_equal(tqu_yaml_get_scalar(at("deep.yaml"), "web.darwincdn", out, sizeof(out), err,
                                         sizeof(err)), TQU_YAML_EPARSE);
    assert_contains(err, "deep.yaml:3:");
    assert_contains(err, ": nested deeper than 200 levels");
    /* 150 levels are fine */
    n = (size_t)sprintf(text, "web:\n  darwincdn: x\ndeep: ");
    for (int i = 0; i < 150; i++)
        text[n++] = '[';
    for (int i = 0; i < 150; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    put(at("deep.yaml"), text);
    assert_reads(at("deep.yaml"), "web.darwincdn", "x");
}

/* Files that cannot be read, are too big, or whose keep copy cannot be made. */
static void test_file_errors(void **state)
{
    (void)state;
    const char *f = at("template.yaml"), *from = at("old.yaml"), *keep = at("nofolder/keep.yaml");
    char err[512], out[64], want[PATH_MAX + 64];
    int changed = -1, fd;
    snap s;

    /* missing */
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "x", NULL, &changed, err, sizeof(err)),
                     TQU_YAML_EIO);
    snprintf(want, sizeof(want), "%s: No such file or directory", f);
    assert_string_equal(err, want);
    assert_int_equal(access(f, F_OK), -1);
    /* a folder */
    assert_int_equal(mkdir(at("dir.yaml"), 0755), 0);
    assert_int_equal(tqu_yaml_get_scalar(at("dir.yaml"), "a", out, sizeof(out), err, sizeof(err)),
                     TQU_YAML_EIO);
    assert_contains(err, "dir.yaml: not a regular file");
    /* the source missing */
    put(f, "s3:\n  x: 1\n");
    s = take(f);
    assert_int_equal(tqu_yaml_replace_section(f, from, "s3", NULL, &changed, err, sizeof(err)),
                     TQU_YAML_EIO);
    snprintf(want, sizeof(want), "%s: No such file or directory", from);
    assert_string_equal(err, want);
    assert_untouched(f, &s);
    /* the keep copy cannot be made: nothing changes */
    put(from, "s3:\n  x: 2\n");
    s = take(f);
    assert_int_equal(tqu_yaml_replace_section(f, from, "s3", keep, &changed, err, sizeof(err)),
                     TQU_YAML_EIO);
    assert_contains(err, "nofolder/keep.yaml: folder");
    assert_int_equal(changed, 0);
    assert_untouched(f, &s);
    s = take(f);
    assert_int_equal(tqu_yaml_set_scalar(f, "s3.x", "3", keep, &changed, err, sizeof(err)),
                     TQU_YAML_EIO);
    assert_untouched(f, &s);
    /* too big: one byte over (sparse) */
    fd = open(at("big.yaml"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)TQU_YAML_MAX_BYTES + 1), 0);
    close(fd);
    assert_int_equal(tqu_yaml_set_scalar(at("big.yaml"), "a", "x", NULL, &changed, err, sizeof(err)),
                     TQU_YAML_ETOOBIG);
    snprintf(want, sizeof(want), "%s: %u bytes, more than %u", at("big.yaml"),
             TQU_YAML_MAX_BYTES + 1, TQU_YAML_MAX_BYTES);
    assert_string_equal(err, want);
    assert_int_equal(tqu_yaml_replace_section(f, at("big.yaml"), "s3", NULL, &changed, err,
                                              sizeof(err)), TQU_YAML_ETOOBIG);
    assert_int_equal(tqu_yaml_locate("a: 1", (size_t)TQU_YAML_MAX_BYTES + 1, "a", &(size_t){0},
                                     &(size_t){0}, NULL, err, sizeof(err)), TQU_YAML_ETOOBIG);
    /* exactly the limit is fine (a comment line of that size) */
    {
        char *text = malloc(TQU_YAML_MAX_BYTES + 1);
        assert_non_null(text);
        memset(text, 'x', TQU_YAML_MAX_BYTES);
        memcpy(text, "a: 1\n#", 6);
        text[TQU_YAML_MAX_BYTES - 1] = '\n';
        text[TQU_YAML_MAX_BYTES] = '\0';
        put(at("max.yaml"), text);
        free(text);
        assert_int_equal(tqu_yaml_set_scalar(at("max.yaml"), "a", "b", NULL, &changed, err,
                                             sizeof(err)), TQU_YAML_OK);
        assert_int_equal(changed, 1);
        assert_reads(at("max.yaml"), "a", "b");
    }
    /* no err buffer: still the code */
    assert_int_equal(tqu_yaml_set_scalar(at("none.yaml"), "a", "x", NULL, NULL, NULL, 0), TQU_YAML_EIO);
    assert_string_equal(tqu_yaml_strerror(TQU_YAML_EDUP), "key appears twice");
    assert_string_equal(tqu_yaml_strerror(99), "unknown error");
}

/* keep_path already there: kept as it is (the first original), the edit goes on. */
static void test_keep_exists(void **state)
{
    (void)state;
    const char *f = at("t.yaml"), *keep = at("t.yaml.orig");
    char err[512];
    int changed;

    put(f, "web:\n  darwincdn: b\n");
    put(keep, "web:\n  darwincdn: a\n");
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "c", keep, &changed, err, sizeof(err)), 0);
    assert_int_equal(changed, 1);
    assert_file(f, "web:\n  darwincdn: c\n");
    assert_file(keep, "web:\n  darwincdn: a\n");

    /* the file itself as its copy: refused, nothing changed */
    snap s = take(f);
    assert_int_equal(tqu_yaml_set_scalar(f, "web.darwincdn", "d", f, &changed, err, sizeof(err)),
                     TQU_YAML_EINVAL);
    assert_contains(err, "the copy would replace the file itself");
    assert_int_equal(changed, 0);
    assert_untouched(f, &s);
}

/* Owner and mode stay; a symbolic link is followed (its target edited,
 * the link left); no temporary file is left behind. */
static void test_owner_mode_link(void **state)
{
    (void)state;
    const char *f = at("real.yaml"), *link = at("link.yaml");
    char err[512];
    int changed;
    struct stat st;

    put(f, "web:\n  darwincdn: b\n");
    assert_int_equal(chmod(f, 0604), 0);
    if (geteuid() == 0)
        assert_int_equal(chown(f, 1234, 2345), 0);
    assert_int_equal(symlink("real.yaml", link), 0);
    assert_int_equal(tqu_yaml_set_scalar(link, "web.darwincdn", "c", at("keep.yaml"), &changed, err,
                                         sizeof(err)), 0);
    assert_int_equal(changed, 1);
    assert_file(f, "web:\n  darwincdn: c\n");
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0604);
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, 1234);
        assert_int_equal(st.st_gid, 2345);
        assert_int_equal(stat(at("keep.yaml"), &st), 0);
        assert_int_equal(st.st_uid, 1234);
    }
    assert_file(at("keep.yaml"), "web:\n  darwincdn: b\n");
    /* only the three names in the folder: no temporary file */
    {
        DIR *d = opendir(tmp);
        struct dirent *de;
        int names = 0;
        assert_non_null(d);
        while ((de = readdir(d)))
            names += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
        closedir(d);
        assert_int_equal(names, 3);
    }
}

/* Every allocation failing in turn: a clean ENOMEM, the file as it was. */
static void test_failed_allocations(void **state)
{
    (void)state;
    char *orig = fixture("template.yaml"), *old = fixture("old-template.yaml");
    const char *f = at("t.yaml"), *from = at("old.yaml");
    char err[512];
    int changed, rc, hit;

    put(from, old);
    for (int op = 0; op < 3; op++) {
        for (long n = 1;; n++) {
            snap s;
            /* op 2: anchors and aliases (their list is allocated) */
            put(f, op < 2 ? orig : "a: &x 1\nb: *x\nc: &y [1]\nd: *y\nweb:\n  darwincdn: old\n");
            s = take(f);
            failalloc_fail_at(n);
            if (op != 1)
                rc = tqu_yaml_set_scalar(f, "web.darwincdn", "proxy-pp:8083", NULL, &changed, err,
                                         sizeof(err));
            else
                rc = tqu_yaml_replace_section(f, from, "s3", NULL, &changed, err, sizeof(err));
            hit = failalloc_failed();
            failalloc_fail_at(0);
            if (!hit) {
                if (rc)
                    fail_msg("op %d, n %ld: rc %d %s", op, n, rc, err);
                assert_int_equal(changed, 1);
                free(s.text);
                break;
            }
            if (rc != TQU_YAML_ENOMEM)
                fail_msg("op %d, allocation %ld failed: rc %d %s", op, n, rc, err);
            assert_contains(err, "out of memory");
            assert_untouched(f, &s);
        }
    }
    free(orig);
    free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_locate_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locate_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_cdn_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_quoting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner_mode_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_allocations, setup, teardown),
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
