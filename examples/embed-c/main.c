/*
 * embed-c: the smallest host of the otel-ebpf receiver. It links the static
 * library, starts an instance, polls OTLP batches and prints one line per
 * span, decoding the protobuf itself (otlp_walk.c) without any protobuf
 * library.
 *
 *   sudo ./embed-c [SECONDS [CONFIG_JSON]]
 *   sudo ./embed-c 30 '{"batch": {"timeout_ms": 200}}'
 *
 * SECONDS defaults to 10 (0 = until Ctrl-C). On SIGINT/SIGTERM or when the
 * time is up it calls otel_ebpf_stop, drains the remaining batches, prints
 * the counters and frees everything. Exit status: 0 ok, 1 the library failed,
 * 2 bad arguments or configuration.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otel_ebpf.h"
#include "otlp_walk.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

/* Prints the calling thread's last error of the library after `what`. */
static void report(const char *what, otel_ebpf_result rc) {
    char msg[512];
    size_t full = otel_ebpf_last_error(msg, sizeof msg);
    fprintf(stderr, "embed-c: %s failed (code %u): %s%s\n", what, (unsigned)rc, full ? msg : "(no message)",
            full >= sizeof msg ? "..." : "");
}

struct counts {
    unsigned long batches;
    unsigned long spans;
    unsigned long malformed;
    unsigned long other_signals;
};

static void print_span(const otlp_resource *res, const otlp_span *span, void *ctx) {
    (void)ctx;
    otlp_print_span(stdout, res, span);
}

/* Decodes, prints and frees one batch. */
static void handle_batch(otel_ebpf_batch *batch, struct counts *c) {
    c->batches++;
    if (otel_ebpf_batch_signal(batch) != OTEL_EBPF_SIGNAL_TRACES) {
        c->other_signals++; /* metrics: not printed by this example */
    } else {
        const uint8_t *data = NULL;
        size_t len = 0;
        otel_ebpf_result rc = otel_ebpf_batch_data(batch, &data, &len);
        if (rc != OTEL_EBPF_OK) {
            report("otel_ebpf_batch_data", rc);
        } else {
            const char *err = NULL;
            long n = otlp_walk_traces(data, len, print_span, NULL, &err);
            if (n < 0) {
                c->malformed++;
                fprintf(stderr, "embed-c: malformed batch of %zu bytes: %s\n", len, err);
            } else {
                c->spans += (unsigned long)n;
            }
        }
    }
    fflush(stdout);
    otel_ebpf_result rc = otel_ebpf_batch_free(batch);
    if (rc != OTEL_EBPF_OK)
        report("otel_ebpf_batch_free", rc);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long seconds = 10;
    const char *config = "{}";
    if (argc > 3 || (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        fprintf(stderr, "usage: %s [SECONDS (default 10, 0 = until Ctrl-C) [CONFIG_JSON]]\n", argv[0]);
        return 2;
    }
    if (argc > 1) {
        char *end = NULL;
        errno = 0;
        seconds = strtol(argv[1], &end, 10);
        if (errno || end == argv[1] || *end || seconds < 0) {
            fprintf(stderr, "embed-c: SECONDS must be a non-negative integer, got '%s'\n", argv[1]);
            return 2;
        }
    }
    if (argc > 2)
        config = argv[2];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    fprintf(stderr, "embed-c: otel-ebpf %s, config %s\n", otel_ebpf_version(), config);

    /* Reject a bad config with the library's own message before anything starts. */
    otel_ebpf_result rc = otel_ebpf_config_validate(config);
    if (rc != OTEL_EBPF_OK) {
        report("config", rc);
        return 2;
    }
    otel_ebpf_instance *inst = NULL;
    rc = otel_ebpf_new(config, &inst);
    if (rc != OTEL_EBPF_OK) {
        report("otel_ebpf_new", rc);
        return 1;
    }
    rc = otel_ebpf_start(inst);
    if (rc != OTEL_EBPF_OK) {
        report("otel_ebpf_start (run as root?)", rc);
        otel_ebpf_free(inst);
        return 1;
    }
    fprintf(stderr, "embed-c: tracing for %s%ld s (Ctrl-C to stop)\n", seconds ? "" : "ever, not ", seconds);

    struct counts c = {0, 0, 0, 0};
    int status = 0;
    double deadline = now_s() + (double)seconds;
    while (!stop_requested && (seconds == 0 || now_s() < deadline)) {
        otel_ebpf_batch *batch = NULL;
        /* A short timeout keeps Ctrl-C and the deadline responsive. */
        rc = otel_ebpf_poll(inst, 200, &batch);
        if (rc == OTEL_EBPF_OK) {
            handle_batch(batch, &c);
        } else if (rc == OTEL_EBPF_TIMEOUT) {
            continue;
        } else if (rc == OTEL_EBPF_STOPPED) {
            break;
        } else {
            report("otel_ebpf_poll", rc);
            status = 1;
            break;
        }
    }

    /* Stop: the probes detach, pending spans are flushed into final batches. */
    rc = otel_ebpf_stop(inst);
    if (rc != OTEL_EBPF_OK) {
        report("otel_ebpf_stop", rc);
        status = 1;
    }
    for (;;) {
        otel_ebpf_batch *batch = NULL;
        rc = otel_ebpf_poll(inst, 1000, &batch);
        if (rc == OTEL_EBPF_OK) {
            handle_batch(batch, &c);
        } else if (rc == OTEL_EBPF_STOPPED) {
            break;
        } else if (rc != OTEL_EBPF_TIMEOUT) {
            report("otel_ebpf_poll (draining)", rc);
            status = 1;
            break;
        }
    }

    otel_ebpf_stats st;
    memset(&st, 0, sizeof st);
    if (otel_ebpf_stats_get(inst, &st) == OTEL_EBPF_OK) {
        fprintf(stderr,
                "embed-c: %lu batches, %lu spans printed, %lu malformed; events read %" PRIu64 ", lost %" PRIu64
                ", spans exported %" PRIu64 ", batches dropped %" PRIu64 ", parse errors %" PRIu64 "\n",
                c.batches, c.spans, c.malformed, st.events_read, st.events_lost, st.spans_exported,
                st.batches_dropped, st.parse_errors);
    }
    rc = otel_ebpf_free(inst);
    if (rc != OTEL_EBPF_OK) {
        report("otel_ebpf_free", rc);
        status = 1;
    }
    return status;
}
