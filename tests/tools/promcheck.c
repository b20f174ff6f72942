/*
 * promcheck.c - check a Prometheus text exposition (format 0.0.4) with the
 * strict parser of the unit tests (tests/unit/prom_parse.h), for the
 * end-to-end scripts: `curl -s http://.../metrics | promcheck`.
 *
 * Reads FILE (or stdin when none or "-"). Exit 0 when it parses, printing
 * every sample on its own line as
 *     name{label="value",...} value
 * (labels in the order given, "{}" omitted when there are none, the value
 * as %.17g) so a script can pick values with grep/awk; exit 1 with
 * "promcheck: line N: what" on stderr when it does not; exit 2 when the
 * input cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prom_parse.h"

#define MAX_INPUT (16u << 20)

int main(int argc, char **argv)
{
    FILE *in = stdin;
    char *text = NULL;
    size_t len = 0, cap = 0;
    prom_doc d;
    int rc;

    if (argc > 2 || (argc == 2 && strcmp(argv[1], "-h") == 0)) {
        fprintf(stderr, "usage: promcheck [FILE]\n");
        return 2;
    }
    if (argc == 2 && strcmp(argv[1], "-") != 0 && !(in = fopen(argv[1], "r"))) {
        perror(argv[1]);
        return 2;
    }
    for (;;) {
        if (len == cap) {
            char *t;
            if (cap >= MAX_INPUT) {
                fprintf(stderr, "promcheck: input larger than %u bytes\n", MAX_INPUT);
                free(text);
                return 2;
            }
            cap = cap ? cap * 2 : 65536;
            if (!(t = realloc(text, cap))) {
                fprintf(stderr, "promcheck: out of memory\n");
                free(text);
                return 2;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len, in);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(in)) {
        perror("promcheck: read");
        free(text);
        return 2;
    }
    if (in != stdin)
        fclose(in);
    if (len == 0) {
        fprintf(stderr, "promcheck: empty input\n");
        free(text);
        return 1;
    }
    rc = prom_parse(text, len, &d);
    if (rc) {
        fprintf(stderr, "promcheck: %s\n", d.err);
    } else {
        for (int i = 0; i < d.ns; i++) {
            const prom_sample *s = &d.s[i];
            printf("%s", s->name);
            for (int l = 0; l < s->nlabels; l++)
                printf("%s%s=\"%s\"", l ? "," : "{", s->label[l].name, s->label[l].value);
            printf("%s %.17g\n", s->nlabels ? "}" : "", s->value);
        }
    }
    prom_doc_release(&d);
    free(text);
    return rc ? 1 : 0;
}
