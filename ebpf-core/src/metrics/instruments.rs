//! The metric instruments operations feed, per the semantic conventions,
//! grouped in families. A family's instruments are recorded together with
//! one attribute set (a `MetricFeed`): they share its series, its limit
//! (`max_series_per_metric`) and its overflow series. A protocol picks the
//! families its operations feed; adding one needs no code here unless the
//! conventions define a new instrument.
//!
//! Bucket bounds are the conventions' advice for each instrument.

/// Most instruments in one family (`MetricFeed::values`).
pub const MAX_INSTRUMENTS: usize = 4;

/// One OTLP metric (or, with `extra`, one slice of one: several instruments
/// of a family may share a name, each adding a constant attribute).
#[derive(Debug)]
pub struct Instrument {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    /// Attributes of the family's set this instrument leaves out of its
    /// points (the conventions list `error.type` on some instruments of a
    /// family and not others).
    pub omit: &'static [&'static str],
    /// Constant attributes added to its points (`gen_ai.token.type`).
    pub extra: &'static [(&'static str, &'static str)],
}

#[derive(Debug)]
pub enum Kind {
    /// Explicit-bucket histogram. Values are recorded as integers against
    /// `bounds` (exact bucket choice) and exported divided by `scale`
    /// (1e9: nanoseconds → seconds) with `exported_bounds`, which must be
    /// `bounds / scale`.
    Histogram { bounds: &'static [u64], exported_bounds: &'static [f64], scale: f64 },
    /// Monotonic integer sum: each value is added.
    Counter,
}

/// Instruments recorded together with one attribute set.
#[derive(Debug)]
pub struct Family {
    /// For diagnostics only.
    pub name: &'static str,
    pub instruments: &'static [Instrument],
}

impl Family {
    /// Position in `FAMILIES`: the order of the exported metrics.
    pub fn position(&'static self) -> usize {
        FAMILIES.iter().position(|f| std::ptr::eq(*f, self)).unwrap_or(usize::MAX)
    }
}

/// Seconds → nanoseconds, rounded (0.01 s must not become 9,999,999 ns).
const fn ns_bounds<const N: usize>(s: [f64; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        out[i] = (s[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
}

const fn as_f64<const N: usize>(v: [u64; N]) -> [f64; N] {
    let mut out = [0f64; N];
    let mut i = 0;
    while i < N {
        out[i] = v[i] as f64;
        i += 1;
    }
    out
}

const fn duration(name: &'static str, description: &'static str, s: &'static [f64], ns: &'static [u64]) -> Instrument {
    Instrument {
        name,
        unit: "s",
        description,
        kind: Kind::Histogram { bounds: ns, exported_bounds: s, scale: 1e9 },
        omit: &[],
        extra: &[],
    }
}

const fn counter(name: &'static str, unit: &'static str, description: &'static str) -> Instrument {
    Instrument { name, unit, description, kind: Kind::Counter, omit: &[], extra: &[] }
}

/// `http.*.request.duration` (and RPC, messaging) bounds, seconds.
pub const DURATION_BOUNDS_S: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
pub const DURATION_BOUNDS_NS: [u64; 14] = ns_bounds(DURATION_BOUNDS_S);

/// `http.*.body.size` bounds in bytes: 0 (no body) on its own, then 64 B
/// and every power of 4 up to 256 MiB. Each bucket spans a factor of 4, so
/// one histogram resolves small JSON payloads (64 B–4 KiB) as well as
/// downloads (1–256 MiB) in 14 buckets.
pub const BODY_SIZE_BOUNDS: [u64; 13] =
    [0, 64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20];
const BODY_SIZE_BOUNDS_F: [f64; 13] = as_f64(BODY_SIZE_BOUNDS);

/// `db.client.operation.duration` bounds, seconds.
pub const DB_DURATION_BOUNDS_S: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
const DB_DURATION_BOUNDS_NS: [u64; 9] = ns_bounds(DB_DURATION_BOUNDS_S);

/// `gen_ai.client.token.usage` bounds: powers of 4 from 1 to 64 Mi tokens.
pub const TOKEN_BOUNDS: [u64; 14] =
    [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const TOKEN_BOUNDS_F: [f64; 14] = as_f64(TOKEN_BOUNDS);
/// GenAI operation duration bounds, seconds: 10 ms doubling to ~82 s (LLM calls are slow).
pub const OPERATION_BOUNDS_S: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const OPERATION_BOUNDS_NS: [u64; 14] = ns_bounds(OPERATION_BOUNDS_S);
/// Time to first chunk / token and time per output token, seconds.
pub const FIRST_CHUNK_BOUNDS_S: [f64; 16] =
    [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
const FIRST_CHUNK_BOUNDS_NS: [u64; 16] = ns_bounds(FIRST_CHUNK_BOUNDS_S);

const fn bytes(name: &'static str, description: &'static str) -> Instrument {
    Instrument {
        name,
        unit: "By",
        description,
        kind: Kind::Histogram { bounds: &BODY_SIZE_BOUNDS, exported_bounds: &BODY_SIZE_BOUNDS_F, scale: 1.0 },
        omit: &[],
        extra: &[],
    }
}

/// HTTP server requests: duration, request body size, response body size
/// (the last only for exchanges that got a response).
pub static HTTP_SERVER: Family = Family {
    name: "http.server",
    instruments: &[
        duration(
            "http.server.request.duration",
            "Duration of HTTP server requests.",
            &DURATION_BOUNDS_S,
            &DURATION_BOUNDS_NS,
        ),
        bytes("http.server.request.body.size", "Size of HTTP server request bodies."),
        bytes("http.server.response.body.size", "Size of HTTP server response bodies."),
    ],
};

/// HTTP client requests, as `HTTP_SERVER`.
pub static HTTP_CLIENT: Family = Family {
    name: "http.client",
    instruments: &[
        duration(
            "http.client.request.duration",
            "Duration of HTTP client requests.",
            &DURATION_BOUNDS_S,
            &DURATION_BOUNDS_NS,
        ),
        bytes("http.client.request.body.size", "Size of HTTP client request bodies."),
        bytes("http.client.response.body.size", "Size of HTTP client response bodies."),
    ],
};

/// Instrument positions in `HTTP_SERVER` and `HTTP_CLIENT`.
pub mod http {
    pub const DURATION: usize = 0;
    pub const REQUEST_BODY: usize = 1;
    pub const RESPONSE_BODY: usize = 2;
}

const fn token_usage(token_type: &'static [(&'static str, &'static str)]) -> Instrument {
    Instrument {
        name: "gen_ai.client.token.usage",
        unit: "{token}",
        description: "Number of input and output tokens used.",
        kind: Kind::Histogram { bounds: &TOKEN_BOUNDS, exported_bounds: &TOKEN_BOUNDS_F, scale: 1.0 },
        omit: &["error.type"],
        extra: token_type,
    }
}

const fn genai_timing(name: &'static str, description: &'static str) -> Instrument {
    Instrument {
        name,
        unit: "s",
        description,
        kind: Kind::Histogram { bounds: &FIRST_CHUNK_BOUNDS_NS, exported_bounds: &FIRST_CHUNK_BOUNDS_S, scale: 1e9 },
        omit: &["error.type"],
        extra: &[],
    }
}

/// LLM API calls made by the traced process (GenAI conventions): token
/// usage (one point per `gen_ai.token.type`), duration, time to first
/// chunk. Only the duration carries `error.type`.
pub static GENAI_CLIENT: Family = Family {
    name: "gen_ai.client",
    instruments: &[
        token_usage(&[("gen_ai.token.type", "input")]),
        token_usage(&[("gen_ai.token.type", "output")]),
        duration(
            "gen_ai.client.operation.duration",
            "GenAI operation duration.",
            &OPERATION_BOUNDS_S,
            &OPERATION_BOUNDS_NS,
        ),
        genai_timing(
            "gen_ai.client.operation.time_to_first_chunk",
            "Time to receive the first chunk of a streamed response.",
        ),
    ],
};

/// Instrument positions in `GENAI_CLIENT`.
pub mod genai_client {
    pub const INPUT_TOKENS: usize = 0;
    pub const OUTPUT_TOKENS: usize = 1;
    pub const DURATION: usize = 2;
    pub const FIRST_CHUNK: usize = 3;
}

/// LLM API calls served by the traced process: duration, time to first
/// token, time per output token.
pub static GENAI_SERVER: Family = Family {
    name: "gen_ai.server",
    instruments: &[
        duration(
            "gen_ai.server.request.duration",
            "Generative AI server request duration.",
            &OPERATION_BOUNDS_S,
            &OPERATION_BOUNDS_NS,
        ),
        genai_timing("gen_ai.server.time_to_first_token", "Time to generate the first token of a streamed response."),
        genai_timing("gen_ai.server.time_per_output_token", "Time per output token generated after the first token."),
    ],
};

/// Instrument positions in `GENAI_SERVER`.
pub mod genai_server {
    pub const DURATION: usize = 0;
    pub const FIRST_TOKEN: usize = 1;
    pub const PER_OUTPUT_TOKEN: usize = 2;
}

/// Database client operations (`db.client.operation.duration`). The
/// conventions define no server-side database metric.
pub static DB_CLIENT: Family = Family {
    name: "db.client",
    instruments: &[duration(
        "db.client.operation.duration",
        "Duration of database client operations.",
        &DB_DURATION_BOUNDS_S,
        &DB_DURATION_BOUNDS_NS,
    )],
};

/// RPC calls served (`rpc.server.call.duration`).
pub static RPC_SERVER: Family = Family {
    name: "rpc.server",
    instruments: &[duration(
        "rpc.server.call.duration",
        "Measures the duration of an incoming Remote Procedure Call (RPC).",
        &DURATION_BOUNDS_S,
        &DURATION_BOUNDS_NS,
    )],
};

/// RPC calls made (`rpc.client.call.duration`).
pub static RPC_CLIENT: Family = Family {
    name: "rpc.client",
    instruments: &[duration(
        "rpc.client.call.duration",
        "Measures the duration of an outgoing Remote Procedure Call (RPC).",
        &DURATION_BOUNDS_S,
        &DURATION_BOUNDS_NS,
    )],
};

/// Position of the duration in `DB_CLIENT`, `RPC_SERVER`, `RPC_CLIENT`.
pub const DURATION: usize = 0;

/// Messaging clients (producers and consumers): operation duration, and
/// messages sent or consumed (counters; they leave out
/// `messaging.operation.type`, which the conventions list on the duration
/// only).
pub static MESSAGING_CLIENT: Family = Family {
    name: "messaging.client",
    instruments: &[
        duration(
            "messaging.client.operation.duration",
            "Duration of messaging operation initiated by a producer or consumer client.",
            &DURATION_BOUNDS_S,
            &DURATION_BOUNDS_NS,
        ),
        Instrument {
            omit: &["messaging.operation.type"],
            ..counter(
                "messaging.client.sent.messages",
                "{message}",
                "Number of messages producer attempted to send to the broker.",
            )
        },
        Instrument {
            omit: &["messaging.operation.type"],
            ..counter(
                "messaging.client.consumed.messages",
                "{message}",
                "Number of messages that were delivered to the application.",
            )
        },
    ],
};

/// Instrument positions in `MESSAGING_CLIENT`.
pub mod messaging {
    pub const DURATION: usize = 0;
    pub const SENT: usize = 1;
    pub const CONSUMED: usize = 2;
}

/// Every family, in the order their metrics are exported.
pub static FAMILIES: [&Family; 8] =
    [&HTTP_SERVER, &HTTP_CLIENT, &GENAI_CLIENT, &GENAI_SERVER, &DB_CLIENT, &RPC_SERVER, &RPC_CLIENT, &MESSAGING_CLIENT];

/// Every metric name an operation can feed, once each, in export order.
pub fn metric_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for i in FAMILIES.iter().flat_map(|f| f.instruments) {
        if !names.contains(&i.name) {
            names.push(i.name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree() {
        for f in FAMILIES {
            assert!(f.instruments.len() <= MAX_INSTRUMENTS, "{}", f.name);
            for i in f.instruments {
                if let Kind::Histogram { bounds, exported_bounds, scale } = &i.kind {
                    assert_eq!(bounds.len(), exported_bounds.len(), "{}", i.name);
                    assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{}", i.name);
                    for (b, e) in bounds.iter().zip(exported_bounds.iter()) {
                        assert_eq!(*b as f64 / scale, *e, "{}", i.name);
                    }
                }
            }
        }
        assert_eq!(DURATION_BOUNDS_NS[0], 5_000_000);
        assert_eq!(OPERATION_BOUNDS_NS[0], 10_000_000);
        assert_eq!(FIRST_CHUNK_BOUNDS_NS[0], 1_000_000);
        assert_eq!(OPERATION_BOUNDS_NS[13], 81_920_000_000);
    }
}
