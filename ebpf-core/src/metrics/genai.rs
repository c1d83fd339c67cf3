//! GenAI metrics (LLM API calls), per the GenAI semantic conventions:
//!
//! | metric | unit | recorded for |
//! |---|---|---|
//! | `gen_ai.client.token.usage` | `{token}` | calling process; one point per `gen_ai.token.type` (input, output) |
//! | `gen_ai.client.operation.duration` | `s` | calling process, every call |
//! | `gen_ai.client.operation.time_to_first_chunk` | `s` | calling process, streamed calls |
//! | `gen_ai.server.request.duration` | `s` | serving process, every call |
//! | `gen_ai.server.time_to_first_token` | `s` | serving process, successful streamed calls |
//! | `gen_ai.server.time_per_output_token` | `s` | serving process, successful streamed calls with 2+ output tokens |
//!
//! Attributes: `gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `server.address`,
//! `server.port`, and `error.type` on calls that failed (the duration
//! metrics only, as the conventions list it: so failed calls record no
//! token or first-chunk points, which would share the successful calls'
//! attribute set). Bucket bounds are the
//! conventions' advice. Series share `max_series_per_metric` with the HTTP
//! ones' rule: beyond it an attribute set goes to the overflow series.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint;

use super::histogram::Histogram;
use super::series::overflow_attributes;
use crate::protocol::Role;
use crate::spans::{int_attr, str_attr};

/// `gen_ai.client.token.usage` bounds: powers of 4 from 1 to 64 Mi tokens.
pub const TOKEN_BOUNDS: [u64; 14] =
    [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/// Operation duration bounds, seconds: 10 ms doubling to ~82 s (LLM calls are slow).
pub const OPERATION_BOUNDS_S: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/// Time to first chunk / token and time per output token, seconds.
pub const FIRST_CHUNK_BOUNDS_S: [f64; 16] =
    [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

const OPERATION_BOUNDS_NS: [u64; 14] = ns_bounds(OPERATION_BOUNDS_S);
const FIRST_CHUNK_BOUNDS_NS: [u64; 16] = ns_bounds(FIRST_CHUNK_BOUNDS_S);

const fn ns_bounds<const N: usize>(s: [f64; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut i = 0;
    while i < N {
        // Bounds are multiples of 1 ms: round, never truncate 0.01 s to 9999999 ns.
        out[i] = (s[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
}

/// Every GenAI metric name this module can emit.
pub const GENAI_METRIC_NAMES: [&str; 6] = [
    "gen_ai.client.token.usage",
    "gen_ai.client.operation.duration",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.server.request.duration",
    "gen_ai.server.time_to_first_token",
    "gen_ai.server.time_per_output_token",
];

/// One LLM API call as the metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct GenAiObservation<'a> {
    pub role: Role,
    pub operation: &'a str,
    pub provider: &'a str,
    pub request_model: Option<&'a str>,
    pub response_model: Option<&'a str>,
    pub server_address: Option<&'a str>,
    pub server_port: Option<u16>,
    pub error_type: Option<&'a str>,
    pub duration_ns: u64,
    /// Streams: from the request's start to the response's first body bytes.
    pub first_chunk_ns: Option<u64>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    role: Role,
    operation: String,
    provider: String,
    request_model: Option<String>,
    response_model: Option<String>,
    server_address: Option<String>,
    server_port: Option<u16>,
    error_type: Option<String>,
}

impl Key {
    fn of(o: &GenAiObservation<'_>) -> Self {
        Self {
            role: o.role,
            operation: o.operation.to_string(),
            provider: o.provider.to_string(),
            request_model: o.request_model.map(str::to_string),
            response_model: o.response_model.map(str::to_string),
            server_address: o.server_address.map(str::to_string),
            server_port: o.server_port,
            error_type: o.error_type.map(str::to_string),
        }
    }

    /// `with_error`: the duration metrics carry `error.type`; the others do not.
    fn attributes(&self, with_error: bool) -> Vec<KeyValue> {
        let mut attrs = vec![
            str_attr("gen_ai.operation.name", self.operation.as_str()),
            str_attr("gen_ai.provider.name", self.provider.as_str()),
        ];
        let optional = [
            ("gen_ai.request.model", &self.request_model),
            ("gen_ai.response.model", &self.response_model),
            ("server.address", &self.server_address),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                attrs.push(str_attr(name, v.as_str()));
            }
        }
        if let Some(port) = self.server_port {
            attrs.push(int_attr("server.port", i64::from(port)));
        }
        if let (true, Some(e)) = (with_error, &self.error_type) {
            attrs.push(str_attr("error.type", e.as_str()));
        }
        attrs
    }
}

#[derive(Debug, Clone)]
struct Series {
    start_ns: u64,
    duration: Histogram<15>,
    first_chunk: Histogram<17>,
    per_output_token: Histogram<17>,
    input_tokens: Histogram<15>,
    output_tokens: Histogram<15>,
}

impl Series {
    fn new(start_ns: u64) -> Self {
        Self {
            start_ns,
            duration: Histogram::new(),
            first_chunk: Histogram::new(),
            per_output_token: Histogram::new(),
            input_tokens: Histogram::new(),
            output_tokens: Histogram::new(),
        }
    }

    fn record(&mut self, o: &GenAiObservation<'_>) {
        self.duration.record(o.duration_ns, &OPERATION_BOUNDS_NS);
        let ok = o.error_type.is_none();
        match o.role {
            // Token and first-chunk points carry no `error.type`, so a failed
            // call's would collide with the successful calls' attribute set:
            // only successful calls record them (failed calls rarely have any).
            Role::Client if ok => {
                if let Some(t) = o.first_chunk_ns {
                    self.first_chunk.record(t, &FIRST_CHUNK_BOUNDS_NS);
                }
                if let Some(n) = o.input_tokens {
                    self.input_tokens.record(n, &TOKEN_BOUNDS);
                }
                if let Some(n) = o.output_tokens {
                    self.output_tokens.record(n, &TOKEN_BOUNDS);
                }
            }
            // The conventions define the server's token timings for successful responses only.
            Role::Server if ok => {
                if let Some(t) = o.first_chunk_ns {
                    self.first_chunk.record(t, &FIRST_CHUNK_BOUNDS_NS);
                    if let Some(n) = o.output_tokens.filter(|&n| n > 1) {
                        let generating = o.duration_ns.saturating_sub(t);
                        self.per_output_token.record(generating / (n - 1), &FIRST_CHUNK_BOUNDS_NS);
                    }
                }
            }
            Role::Client | Role::Server => {}
        }
    }

    fn has_data(&self) -> bool {
        self.duration.count() > 0
    }
}

/// The GenAI series of one process.
#[derive(Debug, Default)]
pub(super) struct GenAiMap {
    series: HashMap<Key, Series>,
    overflow: HashMap<Role, Series>,
}

impl GenAiMap {
    /// `false` when the limit sent the call to an overflow series.
    pub(super) fn record(&mut self, o: &GenAiObservation<'_>, max_series: usize, start_ns: u64) -> bool {
        let key = Key::of(o);
        if let Some(s) = self.series.get_mut(&key) {
            s.record(o);
            return true;
        }
        if self.series.len() < max_series {
            self.series.entry(key).or_insert_with(|| Series::new(start_ns)).record(o);
            return true;
        }
        self.overflow.entry(o.role).or_insert_with(|| Series::new(start_ns)).record(o);
        false
    }

    pub(super) fn len(&self) -> usize {
        self.series.len() + self.overflow.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.series.is_empty() && self.overflow.is_empty()
    }

    pub(super) fn reset_for_delta(&mut self) {
        self.series.retain(|_, s| s.has_data());
        self.overflow.retain(|_, s| s.has_data());
        for s in self.series.values_mut().chain(self.overflow.values_mut()) {
            *s = Series::new(s.start_ns);
        }
    }

    /// (metric index in `GENAI_METRIC_NAMES`, point) for every series with
    /// data. `start` maps a series' own start to the point's start time.
    pub(super) fn points(&self, start: impl Fn(u64) -> u64, now: u64) -> Vec<(usize, HistogramDataPoint)> {
        let op_bounds = OPERATION_BOUNDS_S;
        let chunk_bounds = FIRST_CHUNK_BOUNDS_S;
        let token_bounds = TOKEN_BOUNDS.map(|b| b as f64);
        let keyed = self.series.iter().map(|(k, s)| (k.role, Some(k), s));
        let overflow = self.overflow.iter().map(|(role, s)| (*role, None, s));
        let mut out = Vec::new();
        for (role, key, s) in keyed.chain(overflow).filter(|(_, _, s)| s.has_data()) {
            let attrs = |with_error: bool| key.map_or_else(overflow_attributes, |k| k.attributes(with_error));
            let from = start(s.start_ns).min(now);
            match role {
                Role::Client => {
                    for (token_type, h) in [("input", &s.input_tokens), ("output", &s.output_tokens)] {
                        if h.count() > 0 {
                            let mut a = attrs(false);
                            a.push(str_attr("gen_ai.token.type", token_type));
                            out.push((0, h.to_point(&token_bounds, 1.0, a, from, now)));
                        }
                    }
                    out.push((1, s.duration.to_point(&op_bounds, 1e9, attrs(true), from, now)));
                    if s.first_chunk.count() > 0 {
                        out.push((2, s.first_chunk.to_point(&chunk_bounds, 1e9, attrs(false), from, now)));
                    }
                }
                Role::Server => {
                    out.push((3, s.duration.to_point(&op_bounds, 1e9, attrs(true), from, now)));
                    if s.first_chunk.count() > 0 {
                        out.push((4, s.first_chunk.to_point(&chunk_bounds, 1e9, attrs(false), from, now)));
                    }
                    if s.per_output_token.count() > 0 {
                        out.push((5, s.per_output_token.to_point(&chunk_bounds, 1e9, attrs(false), from, now)));
                    }
                }
            }
        }
        out
    }
}

/// Unit and description of each of `GENAI_METRIC_NAMES`.
pub(super) const GENAI_METRIC_INFO: [(&str, &str); 6] = [
    ("{token}", "Number of input and output tokens used."),
    ("s", "GenAI operation duration."),
    ("s", "Time to receive the first chunk of a streamed response."),
    ("s", "Generative AI server request duration."),
    ("s", "Time to generate the first token of a streamed response."),
    ("s", "Time per output token generated after the first token."),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(role: Role, model: &'a str, input: u64, output: u64, error: Option<&'a str>) -> GenAiObservation<'a> {
        GenAiObservation {
            role,
            operation: "chat",
            provider: "openai",
            request_model: Some(model),
            response_model: Some(model),
            server_address: Some("api.openai.com"),
            server_port: Some(443),
            error_type: error,
            duration_ns: 1_500_000_000,
            first_chunk_ns: Some(300_000_000),
            input_tokens: Some(input),
            output_tokens: Some(output),
        }
    }

    fn attr<'a>(p: &'a HistogramDataPoint, key: &str) -> Option<&'a KeyValue> {
        p.attributes.iter().find(|a| a.key == key)
    }

    #[test]
    fn client_calls_give_token_points_per_type_and_durations() {
        let mut m = GenAiMap::default();
        m.record(&call(Role::Client, "gpt-4o", 10, 20, None), 100, 5);
        m.record(&call(Role::Client, "gpt-4o", 30, 40, None), 100, 5);
        m.record(&call(Role::Client, "gpt-4o", 0, 0, Some("rate_limit_error")), 100, 5);
        let points = m.points(|s| s, 10);
        let tokens: Vec<_> = points.iter().filter(|(i, _)| *i == 0).collect();
        assert_eq!(tokens.len(), 2, "input and output; the failed call records no tokens");
        let input =
            tokens.iter().map(|(_, p)| p).find(|p| format!("{:?}", attr(p, "gen_ai.token.type")).contains("input"));
        assert_eq!(input.map(|p| (p.count, p.sum)), Some((2, Some(40.0))));
        let durations: Vec<_> = points.iter().filter(|(i, _)| *i == 1).map(|(_, p)| p).collect();
        assert_eq!(durations.len(), 2);
        assert!(durations.iter().any(|p| attr(p, "error.type").is_some() && p.count == 1));
        assert!(points.iter().all(|(i, _)| *i < 3), "no server metric from client calls");
    }

    #[test]
    fn server_token_timings_only_for_successful_streams() {
        let mut m = GenAiMap::default();
        m.record(&call(Role::Server, "llama3", 5, 13, None), 100, 0);
        m.record(&call(Role::Server, "llama3", 5, 13, Some("500")), 100, 0);
        let points = m.points(|s| s, 10);
        let per_token: Vec<_> = points.iter().filter(|(i, _)| *i == 5).collect();
        assert_eq!(per_token.len(), 1);
        // (1.5 s - 0.3 s) / 12 tokens
        assert_eq!(per_token[0].1.sum, Some(0.1));
        assert_eq!(points.iter().filter(|(i, _)| *i == 3).count(), 2);
    }

    #[test]
    fn the_limit_sends_new_attribute_sets_to_overflow() {
        let mut m = GenAiMap::default();
        assert!(m.record(&call(Role::Client, "a", 1, 1, None), 1, 0));
        assert!(!m.record(&call(Role::Client, "b", 1, 1, None), 1, 0));
        assert_eq!(m.len(), 2);
        m.reset_for_delta();
        assert_eq!(m.len(), 2);
        m.reset_for_delta();
        assert!(m.is_empty());
    }

    #[test]
    fn nanosecond_bounds_are_exact() {
        assert_eq!(OPERATION_BOUNDS_NS[0], 10_000_000);
        assert_eq!(FIRST_CHUNK_BOUNDS_NS[0], 1_000_000);
        assert_eq!(OPERATION_BOUNDS_NS[13], 81_920_000_000);
    }
}
