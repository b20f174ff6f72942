/*
 * commands.c - what each command of kubectl-tianqing does against the API,
 * and the table of commands (args.h) the dispatcher in main.c walks.
 *
 * Everything printed comes from render.c; this file only fetches, patches
 * and watches. Errors go to stderr as one "error: ..." line; the exit
 * codes are KP_EXIT_* (args.h).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "kinds.h"
#include "render.h"


/* A watch reconnects at least this often (the server ends it). */
#define KP_WATCH_SECONDS 300

typedef struct kp_ctx {
    k8s_config cfg;
    k8s_client *c;
    const char *ns;               /* -n, else the context's namespace */
} kp_ctx;

/* The client a signal stops (k8s_client_stop is async-signal-safe). */
static k8s_client *volatile signal_client;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (signal_client)
        k8s_client_stop(signal_client);
}

static void print_err(const char *what, const k8s_err *err)
{
    char b[2200];
    fprintf(stderr, "error: %s%s%s\n", what ? what : "", what ? ": " : "", k8s_err_str(err, b, sizeof(b)));
}

static int ctx_open(const kp_args *a, kp_ctx *x)
{
    int rc = KP_EXIT_ERROR;
    k8s_err err;
    k8s_client_opts opts = {.user_agent = "kubectl-tianqing"};
    struct sigaction sa;

    memset(x, 0, sizeof(*x));
    if (k8s_config_load(&x->cfg, a->kubeconfig, a->context, &err)) {
        print_err(NULL, &err);
        goto out;
    }
    if (k8s_client_new(&x->cfg, &opts, &x->c, &err)) {
        print_err(NULL, &err);
        k8s_config_release(&x->cfg);
        goto out;
    }
    x->ns = a->namespace_ ? a->namespace_ : (x->cfg.namespace ? x->cfg.namespace : "default");
    signal_client = x->c;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = 0;
out:
    return rc;
}

static void ctx_close(kp_ctx *x)
{
    signal_client = NULL;
    k8s_client_free(x->c);
    k8s_config_release(&x->cfg);
    memset(x, 0, sizeof(*x));
}

/* Write a rendered buffer to stdout. */
static int emit(k8s_buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
        return -1;
    return fflush(stdout) ? -1 : 0;
}

/* Parse a's target; on failure prints why. */
static int target(const kp_args *a, const kp_kind **k, const char **name)
{
    char msg[512];
    if (kp_target_parse(a->target, k, name, msg, sizeof(msg))) {
        fprintf(stderr, "error: %s\n", msg);
        return -1;
    }
    return 0;
}

static int get_one(kp_ctx *x, const kp_kind *k, const char *name, cJSON **obj)
{
    k8s_err err;
    if (k8s_get(x->c, &k->res, x->ns, name, obj, &err)) {
        print_err(NULL, &err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ watch */

/* Called with each object: type "ADDED"/"MODIFIED"/"DELETED"; with
 * obj NULL and type "RESET" before a (re)list and "SYNCED" after it.
 * Returns 0 to go on, or an exit code + 1 to end the watch with it. */
typedef int (*kp_watch_fn)(void *ud, const char *type, const cJSON *obj);

typedef struct kp_watch {
    kp_ctx *x;
    const kp_kind *k;
    const char *ns;               /* NULL: all namespaces */
    const char *name;             /* NULL: every object */
    time_t deadline;              /* 0: none */
    kp_watch_fn fn;
    void *ud;
    char *rv;
    int result;                   /* fn's non-zero answer */
    int relist;                   /* a 410 came in the stream */
    int count;                    /* objects in the last list */
} kp_watch;

static int watch_item(void *ud, const cJSON *item, int restart)
{
    kp_watch *w = ud;
    if (restart) {
        w->count = 0;
        w->result = w->fn(w->ud, "RESET", NULL);
    } else {
        w->count++;
        w->result = w->fn(w->ud, "ADDED", item);
    }
    return w->result;
}

static int watch_line(void *ud, const char *line, size_t len)
{
    kp_watch *w = ud;
    cJSON *ev = NULL;
    k8s_err err;
    int rc = 0;

    if (k8s_json_parse(line, len, &ev, &err))
        goto out;                      /* a torn line: ignore it */
    const char *type = k8s_json_str(ev, "type", NULL);
    const cJSON *obj = k8s_json_get(ev, "object", NULL);
    const char *rv = k8s_json_str(obj, "metadata", "resourceVersion", NULL);
    if (type && !strcmp(type, "ERROR")) {
        w->relist = 1;                 /* 410 Expired or anything else: list again */
        rc = 1;
        goto out;
    }
    if (rv) {
        char *copy = strdup(rv);
        if (copy) {
            free(w->rv);
            w->rv = copy;
        }
    }
    if (type && strcmp(type, "BOOKMARK") != 0) {
        w->result = w->fn(w->ud, type, obj);
        rc = w->result;
    }
out:
    cJSON_Delete(ev);
    return rc;
}

/*
 * List, then watch from the list's resourceVersion, reconnecting when the
 * server ends the stream and listing again after a 410, until fn answers
 * non-zero (its answer - 1 is returned), the deadline passes
 * (KP_EXIT_ERROR, "timed out" printed), a signal (KP_EXIT_OK for a
 * --watch, the caller decides), or an error that persists.
 */
static int watch_run(kp_watch *w)
{
    int rc = KP_EXIT_ERROR, failures = 0, need_list = 1;
    k8s_err err;
    char *sel = NULL, *esc = NULL, *base = NULL;
    k8s_buf path;

    k8s_buf_init(&path, 0);
    if (w->name) {
        if (asprintf(&sel, "metadata.name=%s", w->name) < 0) {
            sel = NULL;
            goto oom;
        }
        if (!(esc = k8s_escape(sel)))
            goto oom;
    }
    if (!(base = k8s_path(&w->k->res, w->ns, NULL, NULL)))
        goto oom;
    while (!interrupted) {
        time_t now = time(NULL);
        long secs = KP_WATCH_SECONDS;
        if (w->deadline) {
            if (now >= w->deadline) {
                fprintf(stderr, "error: timed out\n");
                rc = KP_EXIT_ERROR;
                goto out;
            }
            if (w->deadline - now < secs)
                secs = (long)(w->deadline - now);
        }
        if (need_list) {
            k8s_list_opts lo = {.field_selector = sel};
            free(w->rv);
            w->rv = NULL;
            w->count = 0;
            if ((w->result = w->fn(w->ud, "RESET", NULL)) != 0)
                break;
            int r = k8s_list(w->x->c, &w->k->res, w->ns, &lo, watch_item, w, &w->rv, &err);
            if (w->result)
                break;
            if (r == K8S_ESTOPPED)
                break;
            if (r) {
                print_err("list", &err);
                goto out;
            }
            if (w->name && w->count == 0) {
                fprintf(stderr, "error: %s.%s \"%s\" not found in namespace %s\n", w->k->res.plural,
                        w->k->res.group, w->name, w->ns ? w->ns : "(all)");
                goto out;
            }
            if ((w->result = w->fn(w->ud, "SYNCED", NULL)) != 0)
                break;
            need_list = 0;
        }
        k8s_buf_reset(&path);
        if (k8s_buf_printf(&path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld&resourceVersion=%s%s%s",
                           base, secs, w->rv ? w->rv : "", esc ? "&fieldSelector=" : "", esc ? esc : ""))
            goto oom;
        w->relist = 0;
        time_t t0 = time(NULL);
        int r = k8s_stream(w->x->c, path.data, secs + 30, watch_line, w, &err);
        if (w->result)
            break;
        if (w->relist || (r == K8S_EAPI && err.code == 410)) {
            need_list = 1;
            continue;
        }
        if (r == K8S_ESTOPPED || interrupted)
            break;
        if (r == K8S_OK && time(NULL) - t0 >= 1) {
            failures = 0;
            continue;
        }
        if (r != K8S_OK && r != K8S_ETIMEOUT && r != K8S_ECONNECT && r != K8S_EAPI) {
            print_err("watch", &err);
            goto out;
        }
        if (++failures > 5) {
            if (r)
                print_err("watch", &err);
            else
                fprintf(stderr, "error: watch: the server keeps ending the stream at once\n");
            goto out;
        }
        sleep(1);
    }
    rc = w->result ? w->result - 1 : KP_EXIT_OK;
    goto out;
oom:
    fprintf(stderr, "error: out of memory\n");
    rc = KP_EXIT_ERROR;
out:
    free(w->rv);
    w->rv = NULL;
    free(sel);
    free(esc);
    free(base);
    k8s_buf_release(&path);
    return rc;
}

/* ------------------------------------------------------------ status */

/* The objects a --watch shows, in list order, keyed by namespace/name. */
typedef struct kp_screen {
    const kp_kind *k;
    cJSON *items;                 /* array of objects */
    int synced;
    int tty;
} kp_screen;

static int same_object(const cJSON *a, const cJSON *b)
{
    const char *an = k8s_json_str(a, "metadata", "name", NULL), *bn = k8s_json_str(b, "metadata", "name", NULL);
    const char *as = k8s_json_str(a, "metadata", "namespace", NULL), *bs = k8s_json_str(b, "metadata", "namespace", NULL);
    return an && bn && !strcmp(an, bn) && (as == bs || (as && bs && !strcmp(as, bs)));
}

static int draw(kp_screen *s)
{
    k8s_buf b;
    const cJSON *o;
    int rc = 0, first = 1;

    k8s_buf_init(&b, 0);
    if (s->tty)
        rc = k8s_buf_adds(&b, "\033[H\033[2J");
    else
        rc = k8s_buf_adds(&b, "\n");
    cJSON_ArrayForEach(o, s->items) {
        if (!rc && !first)
            rc = k8s_buf_adds(&b, "\n");
        if (!rc)
            rc = kp_render_status(&b, o, s->k, time(NULL));
        first = 0;
    }
    if (!rc && first)
        rc = k8s_buf_adds(&b, "No resources found.\n");
    if (!rc)
        rc = emit(&b);
    k8s_buf_release(&b);
    return rc;
}

static int screen_event(void *ud, const char *type, const cJSON *obj)
{
    kp_screen *s = ud;
    cJSON *it, *copy = NULL;
    int i = 0, rc = 0;

    if (!strcmp(type, "RESET")) {
        while (cJSON_GetArraySize(s->items) > 0)
            cJSON_DeleteItemFromArray(s->items, 0);
        s->synced = 0;
        goto out;
    }
    if (!strcmp(type, "SYNCED")) {
        s->synced = 1;
        goto draw;
    }
    cJSON_ArrayForEach(it, s->items) {
        if (same_object(it, obj))
            break;
        i++;
    }
    if (!strcmp(type, "DELETED")) {
        if (it)
            cJSON_DeleteItemFromArray(s->items, i);
    } else if (!(copy = cJSON_Duplicate(obj, 1))) {
        goto fail;
    } else if (it) {
        if (!cJSON_ReplaceItemInArray(s->items, i, copy)) {
            cJSON_Delete(copy);
            goto fail;
        }
    } else if (k8s_json_append(s->items, copy)) {   /* frees copy */
        goto fail;
    }
draw:
    if (s->synced && draw(s))
        goto fail;
    goto out;
fail:
    fprintf(stderr, "error: out of memory, or stdout closed\n");
    rc = KP_EXIT_ERROR + 1;
out:
    return rc;
}

static int status_watch(kp_ctx *x, const kp_args *a, const kp_kind *k, const char *name)
{
    kp_screen s = {.k = k, .items = cJSON_CreateArray(), .tty = isatty(1)};
    kp_watch w = {.x = x, .k = k, .ns = a->all_namespaces ? NULL : x->ns, .name = name,
                  .fn = screen_event, .ud = &s};
    int rc = KP_EXIT_ERROR;

    if (!s.items) {
        fprintf(stderr, "error: out of memory\n");
        goto out;
    }
    rc = watch_run(&w);
out:
    cJSON_Delete(s.items);
    return rc;
}

typedef struct kp_collect {
    cJSON *items;
    const kp_kind *k;
    int failed;
} kp_collect;

static int collect(void *ud, const cJSON *item, int restart)
{
    kp_collect *c = ud;
    if (restart) {
        while (cJSON_GetArraySize(c->items) > 0)
            cJSON_DeleteItemFromArray(c->items, 0);
        return 0;
    }
    cJSON *copy = cJSON_Duplicate(item, 1);
    if (!copy || k8s_json_append(c->items, copy)) {
        c->failed = 1;
        return 1;
    }
    return 0;
}

/* Every resource of every kind in the table whose CRD is installed. */
static int status_all(kp_ctx *x, const kp_args *a)
{
    int rc = KP_EXIT_ERROR, shown = 0;
    k8s_buf b;
    k8s_err err;
    time_t now = time(NULL);

    k8s_buf_init(&b, 0);
    for (size_t i = 0; i < kp_nkinds; i++) {
        kp_collect c = {.items = cJSON_CreateArray(), .k = &kp_kinds[i]};
        const cJSON *o;
        if (!c.items)
            goto oom;
        int r = k8s_list(x->c, &c.k->res, a->all_namespaces ? NULL : x->ns, NULL, collect, &c, NULL, &err);
        if (r == K8S_EAPI && err.code == 404) {   /* this kind's CRD is not installed */
            cJSON_Delete(c.items);
            continue;
        }
        if (r || c.failed) {
            cJSON_Delete(c.items);
            if (c.failed)
                goto oom;
            print_err(c.k->res.plural, &err);
            goto out;
        }
        cJSON_ArrayForEach(o, c.items) {
            if ((shown++ && k8s_buf_adds(&b, "\n")) || kp_render_status(&b, o, c.k, now)) {
                cJSON_Delete(c.items);
                goto oom;
            }
        }
        cJSON_Delete(c.items);
    }
    if (!shown) {
        if (a->all_namespaces)
            fprintf(stderr, "No resources found\n");
        else
            fprintf(stderr, "No resources found in %s namespace.\n", x->ns);
    }
    rc = emit(&b) ? KP_EXIT_ERROR : KP_EXIT_OK;
    goto out;
oom:
    fprintf(stderr, "error: out of memory\n");
out:
    k8s_buf_release(&b);
    return rc;
}

/* One object, read and rendered to stdout: the single-object screens of
 * status, plan and history. */
typedef int (*render_fn)(k8s_buf *, const cJSON *, const kp_kind *);

static int show_one(kp_ctx *x, const kp_kind *k, const char *name, render_fn render,
                    const char *what)
{
    cJSON *obj = NULL;
    k8s_buf b;
    int rc = KP_EXIT_ERROR;

    k8s_buf_init(&b, 0);
    if (get_one(x, k, name, &obj))
        goto out;
    if (render(&b, obj, k) || emit(&b)) {
        fprintf(stderr, "error: cannot write the %s\n", what);
        goto out;
    }
    rc = KP_EXIT_OK;
out:
    cJSON_Delete(obj);
    k8s_buf_release(&b);
    return rc;
}

static int render_status(k8s_buf *b, const cJSON *obj, const kp_kind *k)
{
    return kp_render_status(b, obj, k, time(NULL));
}

static int cmd_status(const kp_args *a)
{
    kp_ctx x;
    const kp_kind *k = &kp_kinds[0];
    const char *name = NULL;
    int rc;

    if (a->target && target(a, &k, &name))
        return KP_EXIT_ERROR;
    if (ctx_open(a, &x))
        return KP_EXIT_ERROR;
    if (a->watch)
        rc = status_watch(&x, a, k, name);
    else if (!name)
        rc = status_all(&x, a);
    else
        rc = show_one(&x, k, name, render_status, "status screen");
    ctx_close(&x);
    return rc;
}

/* ------------------------------------------------------------ plan, history */

static int render_plan(k8s_buf *b, const cJSON *obj, const kp_kind *k)
{
    (void)k;
    return kp_render_plan(b, obj);
}

static int render_history(k8s_buf *b, const cJSON *obj, const kp_kind *k)
{
    (void)k;
    return kp_render_history(b, obj);
}

static int show(const kp_args *a, render_fn render)
{
    kp_ctx x;
    const kp_kind *k;
    const char *name;
    int rc;

    if (target(a, &k, &name) || ctx_open(a, &x))
        return KP_EXIT_ERROR;
    rc = show_one(&x, k, name, render, "table");
    ctx_close(&x);
    return rc;
}

static int cmd_plan(const kp_args *a) { return show(a, render_plan); }
static int cmd_history(const kp_args *a) { return show(a, render_history); }

/* ------------------------------------------------------------ spec patches */

/* Merge-patch {"spec":{field:value}} and read the field back from the
 * answer: a CRD without the field prunes it silently, which is an error
 * here (the request would do nothing). */
static int patch_spec_bool(const kp_args *a, const char *field, int value, const char *done)
{
    kp_ctx x;
    const kp_kind *k;
    const char *name;
    cJSON *patch = NULL, *spec, *got = NULL, *before = NULL;
    k8s_err err;
    int rc = KP_EXIT_ERROR;

    if (target(a, &k, &name) || ctx_open(a, &x))
        return KP_EXIT_ERROR;
    if (get_one(&x, k, name, &before))
        goto out;
    int was = k8s_json_bool(before, 0, "spec", field, NULL);
    if (!(patch = cJSON_CreateObject()) || !(spec = cJSON_CreateObject()) ||
        (k8s_json_put(patch, "spec", spec) ? (spec = NULL, 1) : 0) ||
        k8s_json_put(spec, field, cJSON_CreateBool(value))) {
        fprintf(stderr, "error: out of memory\n");
        goto out;
    }
    if (k8s_patch(x.c, &k->res, x.ns, name, NULL, K8S_CT_MERGE_PATCH, patch, &got, &err)) {
        print_err(NULL, &err);
        goto out;
    }
    const cJSON *v = k8s_json_get(got, "spec", field, NULL);
    if (!cJSON_IsBool(v) || (cJSON_IsTrue(v) != 0) != (value != 0)) {
        fprintf(stderr, "error: %s.%s/%s: the API server did not keep spec.%s (this CRD has no such field): "
                "nothing was changed\n", k->res.plural, k->res.group, name, field);
        goto out;
    }
    printf("%s.%s/%s %s (spec.%s: %s%s)\n", k->singular, k->res.group, name, done, field,
           value ? "true" : "false", was == value ? ", as it already was" : "");
    rc = KP_EXIT_OK;
out:
    cJSON_Delete(before);
    cJSON_Delete(patch);
    cJSON_Delete(got);
    ctx_close(&x);
    return rc;
}

static int cmd_approve(const kp_args *a)
{
    return patch_spec_bool(a, "paused", 0, "approved: the controller goes on with the next step");
}

static int cmd_pause(const kp_args *a)
{
    return patch_spec_bool(a, "paused", 1,
                           "paused: the controller stops before the next step; a running update.sh is not interrupted");
}

static int cmd_stop(const kp_args *a)
{
    return patch_spec_bool(a, "stop", 1,
                           "stop requested: the controller stops a running update.sh (SIGTERM to its process group) "
                           "and records the run as Failed (UpgradeStopped)");
}

/* spec.retry + 1, with the object's resourceVersion in the patch so two
 * retries at once cannot both read the same count (409: read again, a few
 * times). A spec change is a new generation: after a failure the controller
 * runs the checks again, then the failed step. */
static int cmd_retry(const kp_args *a)
{
    kp_ctx x;
    const kp_kind *k;
    const char *name;
    cJSON *obj = NULL, *patch = NULL, *got = NULL;
    k8s_err err;
    int rc = KP_EXIT_ERROR;
    long long n = 0;

    if (target(a, &k, &name) || ctx_open(a, &x))
        return KP_EXIT_ERROR;
    for (int attempt = 0; attempt < 5; attempt++) {
        cJSON_Delete(obj);
        cJSON_Delete(patch);
        obj = patch = NULL;
        if (get_one(&x, k, name, &obj))
            goto out;
        n = k8s_json_int(obj, 0, "spec", "retry", NULL);
        if (n < 0)
            n = 0;
        n++;
        cJSON *meta, *spec;
        if (!(patch = cJSON_CreateObject()) || !(meta = cJSON_CreateObject()) ||
            (k8s_json_put(patch, "metadata", meta) ? 1 : 0) || !(spec = cJSON_CreateObject()) ||
            (k8s_json_put(patch, "spec", spec) ? 1 : 0) ||
            k8s_json_put(spec, "retry", cJSON_CreateNumber((double)n)) ||
            k8s_json_put(meta, "resourceVersion",
                         cJSON_CreateString(k8s_json_str(obj, "metadata", "resourceVersion", NULL)))) {
            fprintf(stderr, "error: out of memory\n");
            goto out;
        }
        int r = k8s_patch(x.c, &k->res, x.ns, name, NULL, K8S_CT_MERGE_PATCH, patch, &got, &err);
        if (r == K8S_OK)
            break;
        if (!k8s_err_is(&err, "Conflict") || attempt == 4) {
            print_err(NULL, &err);
            goto out;
        }
    }
    if (k8s_json_int(got, -1, "spec", "retry", NULL) != n) {
        fprintf(stderr, "error: %s.%s/%s has no spec.retry (is the installed CRD older than this plugin?): "
                "nothing changed; change the spec to retry\n", k->singular, k->res.group, name);
        goto out;
    }
    const char *phase = k8s_json_str(obj, "status", "phase", NULL);
    printf("%s.%s/%s retry requested (spec.retry: %lld, a new generation): the controller runs the checks "
           "again, then the failed step\n", k->singular, k->res.group, name, n);
    if (!phase || (strcmp(phase, "Failed") != 0 && strcmp(phase, "Blocked") != 0))
        printf("note: the phase is %s, not Failed or Blocked: a running step is not interrupted, and a "
               "finished run is not run again\n", phase ? phase : "not reported yet");
    rc = KP_EXIT_OK;
out:
    cJSON_Delete(obj);
    cJSON_Delete(patch);
    cJSON_Delete(got);
    ctx_close(&x);
    return rc;
}

/* ------------------------------------------------------------ wait */

static int wait_event(void *ud, const char *type, const cJSON *obj)
{
    const char *name = ud;
    int rc = 0;

    if (!obj)
        goto out;
    if (!strcmp(type, "DELETED")) {
        fprintf(stderr, "error: %s was deleted\n", name);
        rc = KP_EXIT_ERROR + 1;
        goto out;
    }
    switch (kp_wait_check(obj)) {
    case KP_WAIT_READY:
        printf("%s: Ready\n", name);
        rc = KP_EXIT_OK + 1;
        break;
    case KP_WAIT_STALLED: {
        const cJSON *c;
        const char *reason = NULL, *msg = NULL;
        cJSON_ArrayForEach(c, k8s_json_get(obj, "status", "conditions", NULL)) {
            const char *t = k8s_json_str(c, "type", NULL);
            if (t && !strcmp(t, "Stalled")) {
                reason = k8s_json_str(c, "reason", NULL);
                msg = k8s_json_str(c, "message", NULL);
            }
        }
        /* a message of several lines (one quoting a log): the lines
         * after the first indented, so the first line stays the verdict */
        k8s_buf b;
        k8s_buf_init(&b, 0);
        if (k8s_buf_printf(&b, "%s: Stalled: %s: ", name, reason ? reason : "-") ||
            kp_render_text(&b, msg ? msg : "", 2) || emit(&b))
            printf("%s: Stalled: %s\n", name, reason ? reason : "-");   /* without memory: the verdict alone */
        k8s_buf_release(&b);
        rc = KP_EXIT_STALLED + 1;
        break;
    }
    default:
        break;
    }
out:
    return rc;
}

static int cmd_wait(const kp_args *a)
{
    kp_ctx x;
    const kp_kind *k;
    const char *name;
    int rc;

    if (target(a, &k, &name) || ctx_open(a, &x))
        return KP_EXIT_ERROR;
    kp_watch w = {.x = &x, .k = k, .ns = x.ns, .name = name, .fn = wait_event, .ud = (void *)name,
                  .deadline = a->timeout_s > 0 ? time(NULL) + (time_t)a->timeout_s : 0};
    rc = watch_run(&w);
    if (interrupted && !w.result) {
        fprintf(stderr, "error: interrupted\n");
        rc = KP_EXIT_ERROR;
    }
    ctx_close(&x);
    return rc;
}

/* ------------------------------------------------------------ the table */

const kp_command kp_commands[] = {
    {"status", "status [NAME | KIND/NAME] [-A] [--watch]",
     "one screen per resource: assessment, target, step, duration, time left, output, reasons",
     "Without NAME: every resource of every Tianqing kind in the namespace (-A: in all\n"
     "namespaces). --watch (-w) follows them live, redrawn on every change, until\n"
     "interrupted (Ctrl-C; exit 0); without NAME it follows the TianqingUpgrades\n"
     "(or the kind of KIND/NAME's).\n",
     1, KP_F_ALL | KP_F_WATCH, cmd_status},
    {"plan", "plan NAME", "status.plan: every command and API change the run makes",
     "The table STEP ACTION TARGET DETAIL, secrets redacted by the controller.\n", 2, 0, cmd_plan},
    {"history", "history NAME", "status.history: one row per attempt, newest first",
     "GENERATION STARTED COMPLETED DURATION OUTCOME REASON EXIT; \"no attempts recorded\"\n"
     "when there are none.\n", 2, 0, cmd_history},
    {"approve", "approve NAME", "set spec.paused: false (the approval gate)",
     "A merge patch of spec.paused: false; the controller goes on with the next step.\n", 2, 0, cmd_approve},
    {"pause", "pause NAME", "set spec.paused: true: stop before the next step",
     "A merge patch of spec.paused: true. A running update.sh is not interrupted.\n", 2, 0, cmd_pause},
    {"stop", "stop NAME", "set spec.stop: true: stop a running update.sh (no confirmation asked)",
     "A merge patch of spec.stop: true; the controller sends SIGTERM to update.sh's\n"
     "process group and records the run as Failed (UpgradeStopped). Fails, changing\n"
     "nothing, when the installed CRD has no spec.stop field.\n", 2, 0, cmd_stop},
    {"retry", "retry NAME", "ask for a new attempt after a failure, the spec unchanged",
     "Bumps spec.retry (a counter with no other meaning), with a resourceVersion\n"
     "precondition: a new generation. After a failure the controller runs Validate\n"
     "and Preflight again, then the failed step; completed steps are not redone.\n", 2, 0, cmd_retry},
    {"wait", "wait NAME [--timeout=DUR]", "wait for Ready (exit 0) or Stalled (exit 1)",
     "Watches the resource until the Ready or the Stalled condition is True for its\n"
     "current generation. --timeout: 90s, 30m, 4h...; none by default (wait forever).\n"
     "Exit 0: Ready. 1: Stalled (a person must act). 2: timed out, deleted, not found,\n"
     "or an error.\n", 2, KP_F_TIMEOUT, cmd_wait},
};
const size_t kp_ncommands = sizeof(kp_commands) / sizeof(kp_commands[0]);
