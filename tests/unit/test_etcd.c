/*
 * test_etcd.c - the etcd/ client without a server: the exact request
 * bodies (base64 keys and values, range_end of a prefix, revisions as
 * strings), answer parsing (kvs, fields proto3 leaves out, count, errors,
 * malformed answers), the watch stream split into JSON objects however the
 * bytes are chunked, watch messages (events, resume revision, compaction,
 * errors), the backoff's bounds, endpoint checks, the TLS options handed
 * to libcurl, and clean failure on every allocation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>
#include "etcd.h"
#include "etcd_int.h"
#include "failalloc.h"
#include "curlspy.h"
#include "testutil.h"

/* ------------------------------------------------------------ base64 */

static void check_b64(const char *plain, size_t n, const char *enc)
{
    char *e = etcd__b64_encode(plain, n), *d = NULL;
    size_t dn = 0;
    assert_non_null(e);
    assert_string_equal(e, enc);
    assert_int_equal(etcd__b64_decode(enc, strlen(enc), &d, &dn), ETCD_OK);
    assert_int_equal(dn, n);
    assert_memory_equal(d, plain, n);
    assert_int_equal(d[n], '\0');
    free(e);
    free(d);
}

static void test_base64(void **state)
{
    char *d = (char *)1;
    size_t dn = 7;
    (void)state;
    /* RFC 4648 section 10 */
    check_b64("", 0, "");
    check_b64("f", 1, "Zg==");
    check_b64("fo", 2, "Zm8=");
    check_b64("foo", 3, "Zm9v");
    check_b64("foob", 4, "Zm9vYg==");
    check_b64("fooba", 5, "Zm9vYmE=");
    check_b64("foobar", 6, "Zm9vYmFy");
    check_b64("a\0b\xff", 4, "YQBi/w==");
    check_b64("\xfb\xff", 2, "+/8=");
    /* bad input: length, alphabet, padding in the middle */
    const char *bad[] = { "Zm9", "Zm9v=", "Zm-v", "Zg=a", "Z===", "=Zm9", "Zg==Zg==", "Zm9 " };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(etcd__b64_decode(bad[i], strlen(bad[i]), &d, &dn), ETCD_EPARSE);
        assert_null(d);
        assert_int_equal(dn, 0);
    }
}

static void check_end(const char *key, size_t n, const char *want, size_t wn)
{
    char *e = NULL;
    size_t en = 0;
    assert_int_equal(etcd__prefix_end(key, n, &e, &en), ETCD_OK);
    assert_int_equal(en, wn);
    assert_memory_equal(e, want, wn);
    free(e);
}

static void test_prefix_end(void **state)
{
    (void)state;
    check_end("da.skylar", 9, "da.skylas", 9);
    check_end("a/", 2, "a0", 2);
    check_end("a\xff", 2, "b", 1);
    check_end("a\xfe\xff\xff", 4, "a\xff", 2);
    check_end("\xff\xff", 2, "\0", 1);
    check_end("", 0, "\0", 1);
}

/* ------------------------------------------------------ request bodies */

static void check_body(char *got, const char *want)
{
    assert_non_null(got);
    assert_string_equal(got, want);
    etcd__free_body(got);
}

static void test_request_bodies(void **state)
{
    (void)state;
    check_body(etcd__range_body("foo", 0, 0), "{\"key\":\"Zm9v\"}");
    /* prefix "da.skylar." -> range_end "da.skylar/" */
    check_body(etcd__range_body("da.skylar.", 1, 0),
               "{\"key\":\"ZGEuc2t5bGFyLg==\",\"range_end\":\"ZGEuc2t5bGFyLw==\"}");
    /* every key: key "\0"... the gateway takes key "" and range_end "\0" */
    check_body(etcd__range_body("", 1, 0), "{\"key\":\"\",\"range_end\":\"AA==\"}");
    check_body(etcd__range_body("foo", 1, 10),
               "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"limit\":\"10\"}");
    check_body(etcd__put_body("foo", "bar", 3), "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}");
    check_body(etcd__put_body("k", "a\0b", 3), "{\"key\":\"aw==\",\"value\":\"YQBi\"}");
    check_body(etcd__put_body("k", "", 0), "{\"key\":\"aw==\",\"value\":\"\"}");
    /* JSON-special characters in a key are base64, not escaped text */
    check_body(etcd__put_body("a\"b\\c", "\n", 1), "{\"key\":\"YSJiXGM=\",\"value\":\"Cg==\"}");
    check_body(etcd__delete_body("foo", 0), "{\"key\":\"Zm9v\"}");
    check_body(etcd__delete_body("foo", 1), "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\"}");
    check_body(etcd__watch_body("foo", 1, 42),
               "{\"create_request\":{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"start_revision\":\"42\"}}");
    check_body(etcd__watch_body("foo", 0, 0), "{\"create_request\":{\"key\":\"Zm9v\"}}");
    check_body(etcd__watch_body("foo", 0, 9007199254740993LL),
               "{\"create_request\":{\"key\":\"Zm9v\",\"start_revision\":\"9007199254740993\"}}");
}

/* ------------------------------------------------------ answer parsing */

#define HDR "\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":\"3319814642761637952\"," \
            "\"revision\":\"7\",\"raft_term\":\"2\"}"

static int parse_range_s(const char *s, etcd_range_result *r, etcd_err *e)
{
    return etcd__parse_range(s, strlen(s), r, e);
}

static void test_parse_range(void **state)
{
    etcd_range_result r;
    etcd_err e;
    (void)state;

    /* as etcd 3.4 answers */
    assert_int_equal(parse_range_s("{" HDR ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
                                   "\"mod_revision\":\"5\",\"version\":\"3\",\"value\":\"YmFy\"},"
                                   "{\"key\":\"Zm9vMg==\",\"create_revision\":\"6\",\"mod_revision\":\"6\","
                                   "\"version\":\"1\"}],\"count\":\"2\"}", &r, &e), ETCD_OK);
    assert_int_equal(r.revision, 7);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.more, 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.kvs[0].key, "foo");
    assert_int_equal(r.kvs[0].key_len, 3);
    assert_string_equal(r.kvs[0].value, "bar");
    assert_int_equal(r.kvs[0].value_len, 3);
    assert_int_equal(r.kvs[0].create_revision, 2);
    assert_int_equal(r.kvs[0].mod_revision, 5);
    assert_int_equal(r.kvs[0].version, 3);
    /* an empty value is left out by the gateway: "" */
    assert_string_equal(r.kvs[1].key, "foo2");
    assert_non_null(r.kvs[1].value);
    assert_string_equal(r.kvs[1].value, "");
    assert_int_equal(r.kvs[1].value_len, 0);
    etcd_range_result_release(&r);
    assert_null(r.kvs);
    assert_int_equal(r.n, 0);

    /* no such key: kvs and count left out */
    assert_int_equal(parse_range_s("{" HDR "}", &r, &e), ETCD_OK);
    assert_int_equal(r.n, 0);
    assert_null(r.kvs);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.revision, 7);
    etcd_range_result_release(&r);

    /* a limit: count beyond n, more; JSON numbers are taken too */
    assert_int_equal(parse_range_s("{\"header\":{\"revision\":9},\"kvs\":[{\"key\":\"YQ==\","
                                   "\"value\":\"MQ==\",\"mod_revision\":4}],\"more\":true,"
                                   "\"count\":\"3\"}", &r, &e), ETCD_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.more, 1);
    assert_int_equal(r.revision, 9);
    assert_int_equal(r.kvs[0].mod_revision, 4);
    assert_int_equal(r.kvs[0].create_revision, 0);
    etcd_range_result_release(&r);

    /* int64 beyond a double's precision, as a string */
    assert_int_equal(parse_range_s("{\"header\":{\"revision\":\"9007199254740993\"}}", &r, &e), ETCD_OK);
    assert_int_equal(r.revision, 9007199254740993LL);
    etcd_range_result_release(&r);

    /* malformed: each is ETCD_EPARSE, result empty, a message */
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"kvs\":[]}",                                         /* no header */
        "{\"header\":[]}",
        "{\"header\":{\"revision\":\"x7\"}}",
        "{\"header\":{\"revision\":\"7x\"}}",
        "{\"header\":{\"revision\":1.5}}",
        "{\"header\":{\"revision\":\"99999999999999999999\"}}",
        "{" HDR ",\"kvs\":{}}",                                 /* not an array */
        "{" HDR ",\"kvs\":[{\"value\":\"YmFy\"}]}",             /* kv without key */
        "{" HDR ",\"kvs\":[{\"key\":\"Zm9\"}]}",                /* bad base64 */
        "{" HDR ",\"kvs\":[{\"key\":\"Zm9v\",\"value\":7}]}",
        "{" HDR ",\"kvs\":[{\"key\":\"Zm9v\"},{\"key\":\"!!!!\"}]}",
        "{" HDR ",\"kvs\":[{\"key\":\"Zm9v\",\"mod_revision\":true}]}",
        "{" HDR ",\"count\":\"many\"}",
        "{" HDR ",\"kvs\":[\"Zm9v\"]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        if (parse_range_s(bad[i], &r, &e) != ETCD_EPARSE)
            fail_msg("not EPARSE: %s", bad[i]);
        assert_int_equal(e.rc, ETCD_EPARSE);
        assert_true(e.message[0] != '\0');
        assert_null(r.kvs);
        assert_int_equal(r.n, 0);
    }
}

static void test_parse_put_delete(void **state)
{
    int64_t rev = -1, del = -1;
    etcd_err e;
    const char *put = "{" HDR "}";
    const char *d1 = "{" HDR ",\"deleted\":\"2\"}";
    const char *d0 = "{" HDR "}";
    (void)state;

    assert_int_equal(etcd__parse_put(put, strlen(put), &rev, &e), ETCD_OK);
    assert_int_equal(rev, 7);
    assert_int_equal(etcd__parse_put("{\"header\":{}}", 13, &rev, &e), ETCD_EPARSE);
    assert_int_equal(etcd__parse_put("{}", 2, &rev, &e), ETCD_EPARSE);
    assert_int_equal(etcd__parse_delete(d1, strlen(d1), &del, &rev, &e), ETCD_OK);
    assert_int_equal(del, 2);
    assert_int_equal(rev, 7);
    assert_int_equal(etcd__parse_delete(d0, strlen(d0), &del, &rev, &e), ETCD_OK);
    assert_int_equal(del, 0);
    assert_int_equal(etcd__parse_delete("{" HDR ",\"deleted\":{}}", strlen("{" HDR ",\"deleted\":{}}"),
                                        &del, &rev, &e), ETCD_EPARSE);
}

static void test_parse_error(void **state)
{
    etcd_err e;
    const char *b = "{\"error\":\"etcdserver: mvcc: required revision has been compacted\","
                    "\"message\":\"etcdserver: mvcc: required revision has been compacted\",\"code\":11}";
    (void)state;

    assert_int_equal(etcd__parse_error(b, strlen(b), 400, &e), ETCD_EHTTP);
    assert_int_equal(e.rc, ETCD_EHTTP);
    assert_int_equal(e.http_code, 400);
    assert_int_equal(e.grpc_code, 11);
    assert_string_equal(e.message, "etcdserver: mvcc: required revision has been compacted");

    /* only "error" */
    assert_int_equal(etcd__parse_error("{\"error\":\"boom\",\"code\":14}", 26, 503, &e), ETCD_EHTTP);
    assert_int_equal(e.grpc_code, 14);
    assert_string_equal(e.message, "boom");

    /* not JSON (a proxy's page): the start of the body */
    assert_int_equal(etcd__parse_error("<html>Bad Gateway</html>", 24, 502, &e), ETCD_EHTTP);
    assert_int_equal(e.http_code, 502);
    assert_int_equal(e.grpc_code, 0);
    assert_string_equal(e.message, "<html>Bad Gateway</html>");

    assert_int_equal(etcd__parse_error(NULL, 0, 404, &e), ETCD_EHTTP);
    assert_string_equal(e.message, "HTTP 404");
    assert_int_equal(etcd__parse_error(NULL, 0, 404, NULL), ETCD_EHTTP);
}

/* ------------------------------------------------ watch stream framing */

struct objs {
    char got[8][512];
    int n;
    int stop_at;    /* stop after this many (0: never) */
};

static int collect(void *ud, const char *obj, size_t len)
{
    struct objs *o = ud;
    if (o->n >= 8 || len >= sizeof(o->got[0]))
        return ETCD_EPARSE;
    memcpy(o->got[o->n], obj, len);
    o->got[o->n][len] = '\0';
    o->n++;
    return o->stop_at && o->n == o->stop_at ? ETCD_ESTOPPED : 0;
}

static const char *const stream_objs[] = {
    "{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}",
    /* braces and quotes inside strings, escapes, nested arrays */
    "{\"result\":{\"s\":\"}{\\\"\\\\\",\"events\":[{\"kv\":{\"key\":\"e30=\"}},[]]}}",
    "{\"error\":{\"grpc_code\":14,\"message\":\"a } b\"}}",
};

/* The stream as etcd sends it: objects separated by newlines. */
static void make_stream(char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < 3; i++) {
        strncat(buf, stream_objs[i], len - strlen(buf) - 1);
        strncat(buf, "\n", len - strlen(buf) - 1);
    }
}

static void check_objs(const struct objs *o)
{
    assert_int_equal(o->n, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(o->got[i], stream_objs[i]);
}

static void test_framer_split_anywhere(void **state)
{
    char s[1024];
    size_t n;
    (void)state;

    make_stream(s, sizeof(s));
    n = strlen(s);
    /* one chunk holding everything */
    {
        etcd__framer f;
        struct objs o = { .n = 0 };
        etcd__framer_init(&f, 4096);
        assert_int_equal(etcd__framer_feed(&f, s, n, collect, &o), 0);
        check_objs(&o);
        assert_int_equal(f.buf.len, 0);
        etcd__framer_release(&f);
    }
    /* one byte at a time */
    {
        etcd__framer f;
        struct objs o = { .n = 0 };
        etcd__framer_init(&f, 4096);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(etcd__framer_feed(&f, s + i, 1, collect, &o), 0);
        check_objs(&o);
        etcd__framer_release(&f);
    }
    /* every pair of split points: three chunks */
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b += 7) {
            etcd__framer f;
            struct objs o = { .n = 0 };
            etcd__framer_init(&f, 4096);
            assert_int_equal(etcd__framer_feed(&f, s, a, collect, &o), 0);
            assert_int_equal(etcd__framer_feed(&f, s + a, b - a, collect, &o), 0);
            assert_int_equal(etcd__framer_feed(&f, s + b, n - b, collect, &o), 0);
            check_objs(&o);
            etcd__framer_release(&f);
        }
}

/* Every complete object in a chunk is delivered at once, the tail kept. */
static void test_framer_partial(void **state)
{
    etcd__framer f;
    struct objs o = { .n = 0 };
    const char *a = "{\"a\":1}{\"b\":2}\r\n  {\"c\":";
    (void)state;

    etcd__framer_init(&f, 4096);
    assert_int_equal(etcd__framer_feed(&f, a, strlen(a), collect, &o), 0);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.got[0], "{\"a\":1}");
    assert_string_equal(o.got[1], "{\"b\":2}");
    assert_int_equal(f.buf.len, strlen("{\"c\":"));   /* only the tail is kept */
    assert_int_equal(etcd__framer_feed(&f, "3}", 2, collect, &o), 0);
    assert_int_equal(o.n, 3);
    assert_string_equal(o.got[2], "{\"c\":3}");
    etcd__framer_release(&f);
}

static void test_framer_errors(void **state)
{
    etcd__framer f;
    struct objs o = { .n = 0 };
    char big[300];
    (void)state;

    /* garbage between objects */
    etcd__framer_init(&f, 4096);
    assert_int_equal(etcd__framer_feed(&f, "{}x{}", 5, collect, &o), ETCD_EPARSE);
    assert_int_equal(o.n, 1);
    etcd__framer_release(&f);
    etcd__framer_init(&f, 4096);
    assert_int_equal(etcd__framer_feed(&f, "}", 1, collect, &o), ETCD_EPARSE);
    etcd__framer_release(&f);

    /* an object over the cap, even split into small chunks */
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[1] = '"';
    etcd__framer_init(&f, 256);
    int rc = 0;
    for (size_t i = 0; i < sizeof(big) && !rc; i += 10)
        rc = etcd__framer_feed(&f, big + i, 10, collect, &o);
    assert_int_equal(rc, ETCD_ETOOBIG);
    etcd__framer_release(&f);

    /* many small objects are fine whatever the cap: delivered ones go */
    etcd__framer_init(&f, 16);
    o.n = 0;
    for (int i = 0; i < 100; i++) {
        o.n = 0;
        assert_int_equal(etcd__framer_feed(&f, "{\"i\":1}\n", 8, collect, &o), 0);
        assert_int_equal(o.n, 1);
    }
    etcd__framer_release(&f);

    /* the callback's stop is returned and delivery ends */
    etcd__framer_init(&f, 4096);
    o.n = 0;
    o.stop_at = 1;
    assert_int_equal(etcd__framer_feed(&f, "{}{}{}", 6, collect, &o), ETCD_ESTOPPED);
    assert_int_equal(o.n, 1);
    etcd__framer_release(&f);
}

/* ------------------------------------------------------ watch messages */

struct evs {
    int n;
    etcd_event_type type[8];
    char key[8][64];
    char value[8][64];
    int has_value[8];
    int64_t rev[8], compact[8];
    int stop_at;
};

static int on_event(void *ud, const etcd_event *ev)
{
    struct evs *v = ud;
    int i = v->n++;
    if (i >= 8)
        return 1;
    v->type[i] = ev->type;
    snprintf(v->key[i], sizeof(v->key[i]), "%s", ev->key ? ev->key : "(null)");
    v->has_value[i] = ev->value != NULL;
    snprintf(v->value[i], sizeof(v->value[i]), "%s", ev->value ? ev->value : "");
    v->rev[i] = ev->mod_revision;
    v->compact[i] = ev->compact_revision;
    return v->stop_at && v->n == v->stop_at;
}

static int msg(etcd__watch_state *st, const char *s, struct evs *v, etcd_err *e)
{
    return etcd__watch_message(st, s, strlen(s), on_event, v, e);
}

static void test_watch_messages(void **state)
{
    etcd__watch_state st;
    struct evs v;
    etcd_err e;
    (void)state;

    memset(&st, 0, sizeof(st));
    memset(&v, 0, sizeof(v));
    /* from now: created at revision 3 means resume from 4 */
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}", &v, &e), 0);
    assert_int_equal(st.created, 1);
    assert_int_equal(st.next_rev, 4);
    assert_int_equal(v.n, 0);
    /* as etcd 3.4 sends them: PUT has no "type" */
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":["
                              "{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"4\",\"mod_revision\":\"4\","
                              "\"version\":\"1\",\"value\":\"YmFy\"}},"
                              "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"5\"}}]}}",
                         &v, &e), 0);
    assert_int_equal(v.n, 2);
    assert_int_equal(v.type[0], ETCD_EVENT_PUT);
    assert_string_equal(v.key[0], "foo");
    assert_string_equal(v.value[0], "bar");
    assert_int_equal(v.rev[0], 4);
    assert_int_equal(v.type[1], ETCD_EVENT_DELETE);
    assert_string_equal(v.key[1], "foo");
    assert_int_equal(v.has_value[1], 0);
    assert_int_equal(v.rev[1], 5);
    assert_int_equal(st.next_rev, 6);
    /* a PUT of an empty value */
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"6\"},\"events\":["
                              "{\"type\":\"PUT\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"6\"}}]}}",
                         &v, &e), 0);
    assert_int_equal(v.type[2], ETCD_EVENT_PUT);
    assert_int_equal(v.has_value[2], 1);
    assert_string_equal(v.value[2], "");
    /* a progress notification moves the resume point */
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"20\"}}}", &v, &e), 0);
    assert_int_equal(st.next_rev, 21);
    assert_int_equal(v.n, 3);

    /* compaction: restart from now, then report once created again */
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,"
                              "\"compact_revision\":\"30\"}}", &v, &e), 0);
    assert_int_equal(st.restart, 1);
    assert_int_equal(st.next_rev, 0);
    assert_int_equal(v.n, 3);
    st.restart = 0;
    st.created = 0;
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"41\"},\"created\":true}}", &v, &e), 0);
    assert_int_equal(v.n, 4);
    assert_int_equal(v.type[3], ETCD_EVENT_COMPACTED);
    assert_string_equal(v.key[3], "(null)");
    assert_int_equal(v.rev[3], 41);
    assert_int_equal(v.compact[3], 30);
    assert_int_equal(st.next_rev, 42);
    assert_int_equal(st.compacted, 0);

    /* a start revision is kept by "created" (its events are still to come) */
    memset(&st, 0, sizeof(st));
    st.next_rev = 2;
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"9\"},\"created\":true}}", &v, &e), 0);
    assert_int_equal(st.next_rev, 2);

    /* errors in the stream */
    assert_int_equal(msg(&st, "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: "
                              "no leader\",\"http_status\":\"Service Unavailable\"}}", &v, &e), ETCD_EHTTP);
    assert_int_equal(e.grpc_code, 14);
    assert_int_equal(e.http_code, 503);
    assert_string_equal(e.message, "etcdserver: no leader");
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{},\"canceled\":true,\"cancel_reason\":\"x\"}}", &v, &e),
                     ETCD_EHTTP);
    assert_contains(e.message, "canceled by etcd: x");
    static const char *const bad[] = {
        "{}", "[]", "{\"result\":{}}",
        "{\"result\":{\"header\":{},\"events\":{}}}",
        "{\"result\":{\"header\":{},\"events\":[{\"type\":\"PUT\"}]}}",
        "{\"result\":{\"header\":{},\"events\":[{\"type\":\"TOUCH\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"1\"}}]}}",
        "{\"result\":{\"header\":{},\"events\":[{\"kv\":{\"key\":\"YQ==\"}}]}}",
        "{\"result\":{\"header\":{},\"events\":[{\"kv\":{\"key\":\"Y\",\"mod_revision\":\"1\"}}]}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (msg(&st, bad[i], &v, &e) != ETCD_EPARSE)
            fail_msg("not EPARSE: %s", bad[i]);

    /* the callback stops: later events are not delivered nor skipped */
    memset(&st, 0, sizeof(st));
    memset(&v, 0, sizeof(v));
    st.next_rev = 10;
    v.stop_at = 1;
    assert_int_equal(msg(&st, "{\"result\":{\"header\":{\"revision\":\"11\"},\"events\":["
                              "{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"10\"}},"
                              "{\"kv\":{\"key\":\"Yg==\",\"mod_revision\":\"11\"}}]}}", &v, &e), ETCD_ESTOPPED);
    assert_int_equal(v.n, 1);
    assert_int_equal(st.next_rev, 11);
}

/* ------------------------------------------------------------ backoff */

static void test_backoff(void **state)
{
    (void)state;
    /* nominal (jitter 0.5): 0.1 doubling to the 5 s cap */
    static const double want[] = { 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5 };
    for (int i = 0; i < 8; i++)
        assert_true(fabs(etcd__backoff(0.1, 5, i, 0.5) - want[i]) < 1e-9);
    /* jitter within [0.8, 1.2] of nominal and never above the cap */
    srand(11);
    for (int f = 0; f < 60; f++)
        for (int k = 0; k < 100; k++) {
            double u = (double)rand() / RAND_MAX;
            double d = etcd__backoff(0.1, 5, f, u);
            double nominal = fmin(0.1 * pow(2, f), 5);
            if (d < 0.8 * nominal - 1e-9 || d > fmin(1.2 * nominal, 5) + 1e-9)
                fail_msg("failures %d u %f: %f", f, u, d);
        }
    assert_true(etcd__backoff(0.1, 5, 1 << 30, 1) <= 5);
    assert_true(fabs(etcd__backoff(0.1, 5, -3, 0) - 0.08) < 1e-9);
    assert_true(etcd__backoff(0, 5, 1, 0.5) == 0);
    assert_true(etcd__backoff(0.1, -1, 1, 0.5) == 0);
    assert_true(fabs(etcd__backoff(0.1, 5, 0, NAN) - 0.08) < 1e-9);
    assert_true(fabs(etcd__backoff(9, 5, 0, 1) - 5) < 1e-9);
}

/* ------------------------------------------------------------ buffer */

static void test_buf_cap(void **state)
{
    etcd__buf b;
    (void)state;
    etcd__buf_init(&b, 8);
    assert_int_equal(etcd__buf_add(&b, "12345", 5), 0);
    assert_int_equal(etcd__buf_add(&b, "6789", 4), ETCD_ETOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(etcd__buf_add(&b, "678", 3), 0);
    assert_string_equal(b.data, "12345678");
    etcd__buf_consume(&b, 6);
    assert_string_equal(b.data, "78");
    etcd__buf_consume(&b, 60);
    assert_int_equal(b.len, 0);
    assert_int_equal(etcd__buf_add(&b, "", 0), 0);
    etcd__buf_release(&b);
    assert_null(b.data);
}

/* ------------------------------------------------------------ client */

static void test_strerror(void **state)
{
    (void)state;
    for (int i = 0; i < ETCD_RC_MAX; i++) {
        assert_string_not_equal(etcd_strerror(i), "unknown error");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(etcd_strerror(i), etcd_strerror(j));
    }
    assert_string_equal(etcd_strerror(-1), "unknown error");
    assert_string_equal(etcd_strerror(ETCD_RC_MAX), "unknown error");
    assert_string_equal(etcd_strerror(ETCD_EUNREACHABLE), "etcd unreachable");
}

static int new_client(const char *ep, etcd_client **c, etcd_err *e)
{
    const char *eps[] = { ep };
    etcd_config cfg = { .endpoints = eps, .n_endpoints = 1 };
    return etcd_client_new(&cfg, c, e);
}

static void test_endpoints(void **state)
{
    etcd_client *c = (etcd_client *)1;
    etcd_err e;
    etcd_config cfg = { 0 };
    (void)state;

    assert_int_equal(etcd_client_new(&cfg, &c, &e), ETCD_EINVAL);
    assert_null(c);
    assert_int_equal(new_client("127.0.0.1:2379", &c, &e), ETCD_EINVAL);
    assert_contains(e.message, "not an http:// or https:// URL");
    assert_int_equal(new_client("unix:///run/etcd.sock", &c, &e), ETCD_EINVAL);
    assert_int_equal(new_client("http://", &c, &e), ETCD_EINVAL);
    assert_int_equal(new_client("http://h:1/v3", &c, &e), ETCD_EINVAL);
    {
        char longep[700] = "http://";
        memset(longep + 7, 'h', sizeof(longep) - 8);
        longep[sizeof(longep) - 1] = '\0';
        assert_int_equal(new_client(longep, &c, &e), ETCD_EINVAL);
        assert_contains(e.message, "longer than 512 bytes");
    }
    /* credentials in a URL are refused and never echoed */
    assert_int_equal(new_client("https://root:s3cret@h:2379", &c, &e), ETCD_EINVAL);
    assert_not_contains(e.message, "s3cret");
    assert_contains(e.message, "user information");
    assert_null(c);
    /* a certificate needs its key */
    {
        const char *eps[] = { "https://h:2379" };
        etcd_config k = { .endpoints = eps, .n_endpoints = 1, .cert_pem = "C", .cert_len = 1 };
        assert_int_equal(etcd_client_new(&k, &c, &e), ETCD_EINVAL);
    }
    assert_int_equal(new_client("http://127.0.0.1:2379/", &c, &e), ETCD_OK);
    assert_non_null(c);
    assert_int_equal(etcd_client_requests(c), 0);
    etcd_client_free(c);
    assert_int_equal(new_client("https://[::1]:2379", &c, &e), ETCD_OK);
    etcd_client_free(c);
    etcd_client_free(NULL);
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t l = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), port;
    assert_true(s >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

/*
 * Every endpoint is tried when none can be connected to; the error is
 * "unreachable" and comes at once; the CA goes to libcurl as a blob and is
 * the only trust anchor; verification options are set on every request.
 */
static void test_unreachable_and_tls_options(void **state)
{
    char ep1[64], ep2[64];
    const char *eps[] = { ep1, ep2 };
    const char *ca = "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n";
    const char *key = "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n";
    etcd_config cfg = { .endpoints = eps, .n_endpoints = 2, .ca_pem = ca, .ca_len = strlen(ca),
                        .cert_pem = ca, .cert_len = strlen(ca), .key_pem = key,
                        .key_len = strlen(key), .connect_timeout_ms = 10000 };
    etcd_client *c;
    etcd_err e;
    etcd_range_result r;
    const void *v = (void *)1;
    double t0;
    (void)state;

    snprintf(ep1, sizeof(ep1), "https://127.0.0.1:%d", closed_port());
    snprintf(ep2, sizeof(ep2), "https://127.0.0.1:%d", closed_port());
    assert_int_equal(etcd_client_new(&cfg, &c, &e), ETCD_OK);
    curlspy_reset();
    t0 = test_now();
    assert_int_equal(etcd_range(c, "k", 0, 0, &r, &e), ETCD_EUNREACHABLE);
    /* refused, not timed out (that would take 2 x 10 s); 3 s leaves room
     * for valgrind's first TLS set-up */
    assert_true(test_now() - t0 < 3.0 * test_slack());
    assert_int_equal(e.rc, ETCD_EUNREACHABLE);
    assert_int_equal(e.http_code, 0);
    assert_contains(e.message, ep2);            /* the last one tried */
    assert_not_contains(e.message, "TOPSECRET");
    assert_int_equal(etcd_client_requests(c), 2);
    assert_int_equal(curlspy_count(CURLOPT_SSL_VERIFYPEER, NULL), 2);
    assert_int_equal(curlspy_count(CURLOPT_SSL_VERIFYHOST, NULL), 2);
    assert_int_equal(curlspy_count(CURLOPT_CAINFO_BLOB, &v), 2);
    assert_non_null(v);
    assert_int_equal(curlspy_count(CURLOPT_CAINFO, &v), 2);
    assert_null(v);
    assert_int_equal(curlspy_count(CURLOPT_CAPATH, &v), 2);
    assert_null(v);
    assert_int_equal(curlspy_count(CURLOPT_SSLKEY_BLOB, NULL), 2);
    assert_int_equal(curlspy_count(CURLOPT_SSLKEY, NULL), 0);
    assert_int_equal(curlspy_count(CURLOPT_SSLCERT, NULL), 0);

    /* put and delete are refused the same way; stop makes every call
     * ETCD_ESTOPPED until resumed */
    assert_int_equal(etcd_put(c, "k", "v", 1, NULL, &e), ETCD_EUNREACHABLE);
    assert_int_equal(etcd_delete(c, "k", 1, NULL, NULL, &e), ETCD_EUNREACHABLE);
    etcd_client_stop(c);
    assert_int_equal(etcd_put(c, "k", "v", 1, NULL, &e), ETCD_ESTOPPED);
    assert_int_equal(etcd_watch(c, "k", NULL, on_event, NULL, &e), ETCD_ESTOPPED);
    etcd_client_resume(c);
    assert_int_equal(etcd_put(c, "", "v", 1, NULL, &e), ETCD_EINVAL);
    assert_int_equal(etcd_range(c, NULL, 0, 0, &r, &e), ETCD_EINVAL);
    etcd_client_free(c);
}

struct errs {
    int n;
    double delay[8];
    int rc[8];
    etcd_client *c;
};

static void on_watch_error(void *ud, const etcd_err *err, int failures, double delay)
{
    struct errs *x = ud;
    if (x->n < 8) {
        x->delay[x->n] = delay;
        x->rc[x->n] = err->rc;
    }
    x->n++;
    assert_int_equal(failures, x->n);
    if (x->n == 4)
        etcd_client_stop(x->c);
}

static int no_event(void *ud, const etcd_event *ev)
{
    (void)ud;
    (void)ev;
    fail_msg("no event expected");
    return 1;
}

/* A watch on nothing retries with a growing, capped backoff until stopped. */
static void test_watch_backoff_unreachable(void **state)
{
    char ep[64];
    etcd_client *c;
    etcd_err e;
    struct errs x = { 0 };
    etcd_watch_opts o = { .backoff_initial_s = 0.01, .backoff_max_s = 0.03,
                          .on_error = on_watch_error };
    (void)state;

    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", closed_port());
    assert_int_equal(new_client(ep, &c, &e), ETCD_OK);
    x.c = c;
    /* the callback's ud is the watch's ud: one struct for both here */
    assert_int_equal(etcd_watch(c, "k", &o, no_event, &x, &e), ETCD_ESTOPPED);
    assert_int_equal(x.n, 4);
    for (int i = 0; i < 4; i++) {
        double nominal = fmin(0.01 * pow(2, i), 0.03);
        assert_int_equal(x.rc[i], ETCD_EUNREACHABLE);
        assert_true(x.delay[i] >= 0.8 * nominal - 1e-9 && x.delay[i] <= fmin(1.2 * nominal, 0.03) + 1e-9);
    }
    assert_int_equal(etcd_client_requests(c), 4);
    etcd_client_free(c);
}

/* ------------------------------------------------------ fault injection */

static void test_alloc_failures(void **state)
{
    const char *ans = "{" HDR ",\"kvs\":[{\"key\":\"Zm9v\",\"value\":\"YmFy\"},{\"key\":\"YQ==\"}],\"count\":\"2\"}";
    const char *w = "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":\"Zm9v\","
                    "\"mod_revision\":\"4\",\"value\":\"YmFy\"}}]}}\n";
    (void)state;

    for (long n = 1;; n++) {
        etcd_range_result r;
        etcd_err e;
        failalloc_fail_at(n);
        int rc = etcd__parse_range(ans, strlen(ans), &r, &e);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, ETCD_OK);
            assert_int_equal(r.n, 2);
            etcd_range_result_release(&r);
            break;
        }
        /* cJSON reports no distinct ENOMEM: a failed parse is EPARSE */
        assert_true(rc == ETCD_ENOMEM || rc == ETCD_EPARSE);
        assert_null(r.kvs);
    }
    for (long n = 1;; n++) {
        failalloc_fail_at(n);
        char *a = etcd__put_body("key", "value", 5);
        char *b = etcd__watch_body("key", 1, 7);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_non_null(a);
            assert_non_null(b);
            etcd__free_body(a);
            etcd__free_body(b);
            break;
        }
        etcd__free_body(a);
        etcd__free_body(b);
    }
    for (long n = 1;; n++) {
        etcd__framer f;
        etcd__watch_state st = { 0 };
        struct evs v = { 0 };
        etcd_err e;
        struct objs o = { .n = 0 };
        etcd__framer_init(&f, 4096);
        failalloc_fail_at(n);
        int rc = etcd__framer_feed(&f, w, strlen(w), collect, &o);
        int ffailed = failalloc_failed();
        failalloc_fail_at(0);
        assert_int_equal(rc, ffailed ? ETCD_ENOMEM : ETCD_OK);
        assert_int_equal(o.n, ffailed ? 0 : 1);
        etcd__framer_release(&f);
        /* the message itself */
        failalloc_fail_at(n);
        rc = etcd__watch_message(&st, w, strlen(w) - 1, on_event, &v, &e);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, ETCD_OK);
            assert_int_equal(v.n, 1);
            break;
        }
        assert_true(rc == ETCD_ENOMEM || rc == ETCD_EPARSE);
        assert_int_equal(v.n, 0);
    }
    for (long n = 1;; n++) {
        const char *eps[] = { "http://127.0.0.1:1", "https://127.0.0.1:2" };
        etcd_config cfg = { .endpoints = eps, .n_endpoints = 2, .ca_pem = "x", .ca_len = 1 };
        etcd_client *c = NULL;
        etcd_err e;
        failalloc_fail_at(n);
        int rc = etcd_client_new(&cfg, &c, &e);
        int failed = failalloc_failed();
        failalloc_fail_at(0);
        if (!failed) {
            assert_int_equal(rc, ETCD_OK);
            etcd_client_free(c);
            break;
        }
        if (rc == ETCD_OK) {
            /* libcurl's own allocations are not wrapped; ours all are */
            etcd_client_free(c);
            continue;
        }
        assert_int_equal(rc, ETCD_ENOMEM);
        assert_null(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_prefix_end),
        cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_parse_range),
        cmocka_unit_test(test_parse_put_delete),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_framer_split_anywhere),
        cmocka_unit_test(test_framer_partial),
        cmocka_unit_test(test_framer_errors),
        cmocka_unit_test(test_watch_messages),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_buf_cap),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_unreachable_and_tls_options),
        cmocka_unit_test(test_watch_backoff_unreachable),
        cmocka_unit_test(test_alloc_failures),
    };
    failalloc_install();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
