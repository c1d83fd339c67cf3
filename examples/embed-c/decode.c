/*
 * otlp-decode: runs the walker of otlp_walk.c over a file holding one
 * ExportTraceServiceRequest (e.g. a batch saved by a host) and prints the
 * spans like embed-c does. No library needed: it is how the walker is tested.
 *
 *   ./otlp-decode FILE      exit 0: decoded, 3: malformed (message on stderr)
 */
#include <stdio.h>
#include <stdlib.h>

#include "otlp_walk.h"

static void print_span(const otlp_resource *res, const otlp_span *span, void *ctx) {
    (void)ctx;
    otlp_print_span(stdout, res, span);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return 2;
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            fclose(f);
            return 2;
        }
        buf = bigger;
        cap *= 2;
    }
    fclose(f);
    /* Exactly `len` bytes: a walker overrun would show under valgrind/ASan. */
    unsigned char *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return 2;
    }
    for (size_t i = 0; i < len; i++)
        exact[i] = buf[i];
    free(buf);

    const char *err = NULL;
    long n = otlp_walk_traces(exact, len, print_span, NULL, &err);
    free(exact);
    if (n < 0) {
        fprintf(stderr, "otlp-decode: malformed: %s\n", err);
        return 3;
    }
    fprintf(stderr, "otlp-decode: %ld spans\n", n);
    return 0;
}
