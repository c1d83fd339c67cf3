/*
 * A tiny, allocation-free walker over the OTLP protobuf wire format: just
 * enough of ExportTraceServiceRequest to print one line per span, with every
 * length checked against the bytes that remain. No protobuf library needed.
 *
 *   ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
 *   ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
 *   Resource      { repeated KeyValue attributes = 1; }
 *   ScopeSpans    { repeated Span spans = 2; }
 *   Span          { string name = 5; SpanKind kind = 6;
 *                   fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
 *                   repeated KeyValue attributes = 9; Status status = 15; }
 *   KeyValue      { string key = 1; AnyValue value = 2; }
 *   AnyValue      { string string_value = 1; bool bool_value = 2; int64 int_value = 3; ... }
 *   Status        { StatusCode code = 3; }
 */
#ifndef OTLP_WALK_H
#define OTLP_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A view of bytes inside the batch: not NUL-terminated. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} otlp_str;

/* An attribute value we care about: a string or an int (else neither is set). */
typedef struct {
    int has_str;
    otlp_str str;
    int has_int;
    int64_t i;
} otlp_value;

/* The resource (process) a span was reported under. */
typedef struct {
    otlp_str service_name; /* len 0 when absent */
    otlp_value pid;        /* process.pid */
} otlp_resource;

/* One decoded span: what the example prints. */
typedef struct {
    otlp_str name;
    uint32_t kind;        /* 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER */
    uint64_t start_ns;    /* unix epoch */
    uint64_t end_ns;
    uint32_t status_code; /* 0 UNSET, 1 OK, 2 ERROR */
    otlp_value http_status;     /* http.response.status_code */
    otlp_value method;          /* http.request.method */
    otlp_value path;            /* url.path */
    otlp_value server_address;  /* server.address */
    otlp_value server_port;     /* server.port */
    otlp_value peer_address;    /* network.peer.address */
    otlp_value peer_port;       /* network.peer.port */
    otlp_value error_type;      /* error.type */
} otlp_span;

typedef void (*otlp_span_fn)(const otlp_resource *res, const otlp_span *span, void *ctx);

/* Walks an ExportTraceServiceRequest, calling `fn` for every span.
 * Returns the number of spans, or -1 when the bytes are malformed (a length
 * or varint runs past the end, a wire type is invalid); `err` then says
 * what (static string). Spans before the malformed part were reported. */
long otlp_walk_traces(const uint8_t *data, size_t len, otlp_span_fn fn, void *ctx, const char **err);

/* Span kind as text: "SERVER", "CLIENT", ... */
const char *otlp_kind_name(uint32_t kind);
/* Status code as text: "UNSET", "OK", "ERROR". */
const char *otlp_status_name(uint32_t code);

/* One line per span:
 *   <service.name>[<pid>] <KIND> "<name>" status=<STATUS> duration_ms=<ms> \
 *     http.response.status_code=<n> url.path=<p> server.port=<n> \
 *     network.peer.address=<a> network.peer.port=<n> [error.type=<e>]
 * Attributes that are absent are left out; bytes are sanitized. */
void otlp_print_span(FILE *out, const otlp_resource *res, const otlp_span *s);

#endif /* OTLP_WALK_H */
