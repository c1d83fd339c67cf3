/* See otlp_walk.h. Protobuf wire format: every field is a varint key
 * (field number << 3 | wire type) followed by a varint (0), 8 bytes (1), a
 * varint length and that many bytes (2), or 4 bytes (5). Groups (3, 4) are
 * deprecated and never used by OTLP: treated as malformed. */
#include "otlp_walk.h"

#include <inttypes.h>
#include <string.h>

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const char **err;
} reader;

/* One field: its number, wire type and value (the varint / fixed value, or the bytes). */
typedef struct {
    uint32_t num;
    uint32_t wt;
    uint64_t u;
    otlp_str bytes;
} field;

static int fail(reader *r, const char *msg) {
    if (r->err && !*r->err)
        *r->err = msg;
    return -1;
}

static int read_varint(reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return fail(r, "varint runs past the end");
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0x7e))
            return fail(r, "varint longer than 64 bits");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return fail(r, "varint longer than 10 bytes");
}

static int read_fixed(reader *r, size_t n, uint64_t *out) {
    if ((size_t)(r->end - r->p) < n)
        return fail(r, "fixed-width value runs past the end");
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[i] << (8 * i); /* little-endian on the wire */
    r->p += n;
    *out = v;
    return 0;
}

/* Reads the next field. Returns 1 with *f filled, 0 at the end, -1 when malformed. */
static int next_field(reader *r, field *f) {
    if (r->p == r->end)
        return 0;
    uint64_t key;
    if (read_varint(r, &key) < 0)
        return -1;
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return fail(r, "invalid field number");
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint32_t)(key & 7);
    f->u = 0;
    f->bytes.ptr = NULL;
    f->bytes.len = 0;
    switch (f->wt) {
    case WT_VARINT:
        return read_varint(r, &f->u) < 0 ? -1 : 1;
    case WT_I64:
        return read_fixed(r, 8, &f->u) < 0 ? -1 : 1;
    case WT_I32:
        return read_fixed(r, 4, &f->u) < 0 ? -1 : 1;
    case WT_LEN: {
        uint64_t n;
        if (read_varint(r, &n) < 0)
            return -1;
        if (n > (uint64_t)(r->end - r->p))
            return fail(r, "length-delimited field runs past the end");
        f->bytes.ptr = r->p;
        f->bytes.len = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        return fail(r, "invalid or unsupported wire type");
    }
}

static reader sub(const reader *parent, otlp_str b) {
    reader r = {b.ptr, b.ptr + b.len, parent->err};
    return r;
}

static int str_eq(otlp_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/* AnyValue: keep a string or an int, skip the other kinds. */
static int any_value(reader *r, otlp_value *out) {
    field f;
    int rc;
    memset(out, 0, sizeof *out);
    while ((rc = next_field(r, &f)) == 1) {
        if (f.num == 1 && f.wt == WT_LEN) {
            out->has_str = 1;
            out->str = f.bytes;
        } else if (f.num == 3 && f.wt == WT_VARINT) {
            out->has_int = 1;
            out->i = (int64_t)f.u;
        }
    }
    return rc;
}

/* KeyValue: its key and value. */
static int key_value(reader *r, otlp_str *key, otlp_value *val) {
    field f;
    int rc;
    key->ptr = NULL;
    key->len = 0;
    memset(val, 0, sizeof *val);
    while ((rc = next_field(r, &f)) == 1) {
        if (f.num == 1 && f.wt == WT_LEN) {
            *key = f.bytes;
        } else if (f.num == 2 && f.wt == WT_LEN) {
            reader v = sub(r, f.bytes);
            if (any_value(&v, val) < 0)
                return -1;
        }
    }
    return rc;
}

static int resource(reader *r, otlp_resource *res) {
    field f;
    int rc;
    while ((rc = next_field(r, &f)) == 1) {
        if (f.num != 1 || f.wt != WT_LEN)
            continue;
        reader kv = sub(r, f.bytes);
        otlp_str key;
        otlp_value val;
        if (key_value(&kv, &key, &val) < 0)
            return -1;
        if (str_eq(key, "service.name") && val.has_str)
            res->service_name = val.str;
        else if (str_eq(key, "process.pid"))
            res->pid = val;
    }
    return rc;
}

static int span_attr(otlp_span *s, otlp_str key, const otlp_value *val) {
    static const struct {
        const char *key;
        size_t off;
    } wanted[] = {
        {"http.response.status_code", offsetof(otlp_span, http_status)},
        {"http.request.method", offsetof(otlp_span, method)},
        {"url.path", offsetof(otlp_span, path)},
        {"server.address", offsetof(otlp_span, server_address)},
        {"server.port", offsetof(otlp_span, server_port)},
        {"network.peer.address", offsetof(otlp_span, peer_address)},
        {"network.peer.port", offsetof(otlp_span, peer_port)},
        {"error.type", offsetof(otlp_span, error_type)},
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        if (str_eq(key, wanted[i].key)) {
            memcpy((char *)s + wanted[i].off, val, sizeof *val);
            return 1;
        }
    }
    return 0;
}

static int span(reader *r, otlp_span *s) {
    field f;
    int rc;
    memset(s, 0, sizeof *s);
    while ((rc = next_field(r, &f)) == 1) {
        switch (f.num) {
        case 5:
            if (f.wt == WT_LEN)
                s->name = f.bytes;
            break;
        case 6:
            if (f.wt == WT_VARINT)
                s->kind = (uint32_t)f.u;
            break;
        case 7:
            if (f.wt == WT_I64)
                s->start_ns = f.u;
            break;
        case 8:
            if (f.wt == WT_I64)
                s->end_ns = f.u;
            break;
        case 9:
            if (f.wt == WT_LEN) {
                reader kv = sub(r, f.bytes);
                otlp_str key;
                otlp_value val;
                if (key_value(&kv, &key, &val) < 0)
                    return -1;
                span_attr(s, key, &val);
            }
            break;
        case 15:
            if (f.wt == WT_LEN) {
                reader st = sub(r, f.bytes);
                field g;
                int src;
                while ((src = next_field(&st, &g)) == 1)
                    if (g.num == 3 && g.wt == WT_VARINT)
                        s->status_code = (uint32_t)g.u;
                if (src < 0)
                    return -1;
            }
            break;
        default:
            break;
        }
    }
    return rc;
}

static long scope_spans(reader *r, const otlp_resource *res, otlp_span_fn fn, void *ctx) {
    field f;
    int rc;
    long n = 0;
    while ((rc = next_field(r, &f)) == 1) {
        if (f.num != 2 || f.wt != WT_LEN)
            continue;
        reader sp = sub(r, f.bytes);
        otlp_span s;
        if (span(&sp, &s) < 0)
            return -1;
        fn(res, &s, ctx);
        n++;
    }
    return rc < 0 ? -1 : n;
}

static long resource_spans(reader *r, otlp_span_fn fn, void *ctx) {
    field f;
    int rc;
    long n = 0;
    otlp_resource res;
    memset(&res, 0, sizeof res);
    /* The resource may come after the spans on the wire: find it first. */
    reader first = *r;
    while ((rc = next_field(&first, &f)) == 1) {
        if (f.num == 1 && f.wt == WT_LEN) {
            reader rr = sub(r, f.bytes);
            if (resource(&rr, &res) < 0)
                return -1;
        }
    }
    if (rc < 0)
        return -1;
    while ((rc = next_field(r, &f)) == 1) {
        if (f.num == 2 && f.wt == WT_LEN) {
            reader ss = sub(r, f.bytes);
            long k = scope_spans(&ss, &res, fn, ctx);
            if (k < 0)
                return -1;
            n += k;
        }
    }
    return rc < 0 ? -1 : n;
}

long otlp_walk_traces(const uint8_t *data, size_t len, otlp_span_fn fn, void *ctx, const char **err) {
    const char *dummy = NULL;
    if (!err)
        err = &dummy;
    *err = NULL;
    if (len == 0)
        return 0;
    if (!data) {
        *err = "NULL data";
        return -1;
    }
    reader r = {data, data + len, err};
    field f;
    int rc;
    long n = 0;
    while ((rc = next_field(&r, &f)) == 1) {
        if (f.num == 1 && f.wt == WT_LEN) {
            reader rs = sub(&r, f.bytes);
            long k = resource_spans(&rs, fn, ctx);
            if (k < 0)
                return -1;
            n += k;
        }
    }
    return rc < 0 ? -1 : n;
}

const char *otlp_kind_name(uint32_t kind) {
    static const char *names[] = {"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
    return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

const char *otlp_status_name(uint32_t code) {
    static const char *names[] = {"UNSET", "OK", "ERROR"};
    return code < sizeof names / sizeof names[0] ? names[code] : "?";
}

/* Prints at most `max` bytes, replacing anything not printable ASCII: the
 * bytes come from other processes' traffic and must not drive the terminal. */
static void put_str(FILE *out, otlp_str s, size_t max) {
    size_t n = s.len < max ? s.len : max;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s.ptr[i];
        fputc(c >= 0x20 && c < 0x7f ? c : '?', out);
    }
    if (s.len > n)
        fputs("...", out);
}

static void put_value(FILE *out, const char *key, const otlp_value *v) {
    if (v->has_int) {
        fprintf(out, " %s=%" PRId64, key, v->i);
    } else if (v->has_str) {
        fprintf(out, " %s=", key);
        put_str(out, v->str, 200);
    }
}

void otlp_print_span(FILE *out, const otlp_resource *res, const otlp_span *s) {
    uint64_t dur = s->end_ns >= s->start_ns ? s->end_ns - s->start_ns : 0;
    if (res->service_name.len)
        put_str(out, res->service_name, 64);
    else
        fputs("?", out);
    if (res->pid.has_int)
        fprintf(out, "[%" PRId64 "]", res->pid.i);
    fprintf(out, " %s \"", otlp_kind_name(s->kind));
    put_str(out, s->name, 100);
    fprintf(out, "\" status=%s duration_ms=%.3f", otlp_status_name(s->status_code), (double)dur / 1e6);
    put_value(out, "http.response.status_code", &s->http_status);
    put_value(out, "url.path", &s->path);
    put_value(out, "server.port", &s->server_port);
    put_value(out, "network.peer.address", &s->peer_address);
    put_value(out, "network.peer.port", &s->peer_port);
    put_value(out, "error.type", &s->error_type);
    fputc('\n', out);
}
