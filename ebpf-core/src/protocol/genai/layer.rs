//! The GenAI layer over HTTP records: which exchanges the HTTP parsers keep
//! bodies for (LLM API calls, by request line and Host), what those bodies
//! say, and what that adds to the exchange's operation.
//!
//! An LLM API call is one span: the HTTP span of its exchange, renamed
//! `{gen_ai.operation.name} {gen_ai.request.model}` and carrying the GenAI
//! semantic conventions' attributes next to the HTTP ones. One span, not a
//! GenAI span over an HTTP child: both describe the same request, seen once.
//! It also feeds the GenAI metrics (`GENAI_CLIENT`, `GENAI_SERVER`) on top
//! of the HTTP ones:
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
//! Metric attributes: `gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `server.address`,
//! `server.port`, and `error.type` on calls that failed (the duration
//! metrics only, as the conventions list it: so failed calls record no
//! token or first-chunk points, which would share the successful calls'
//! attribute set).
//!
//! Prompt and completion text (`gen_ai.input.messages`,
//! `gen_ai.output.messages`) only appear when `genai.capture_content` is on;
//! the extraction leaves them out otherwise.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::metrics::instruments::{genai_client, genai_server, GENAI_CLIENT, GENAI_SERVER};
use crate::protocol::http1::telemetry::{client_server, host_name, path_of, ServerAddress, ERROR_NO_RESPONSE};
use crate::protocol::http1::{BodyPolicy, HttpExchange, KeptBody};
use crate::protocol::{ConnFacts, MetricFeed, Operation, Role, SpanName, Value};
use crate::stats::Stats;

use super::{BodyBytes, Catalog, ExchangeBodies, GenAiCall, GenAiConfig};

#[derive(Debug)]
pub struct GenAiStage {
    catalog: Arc<Catalog>,
    max_body_bytes: usize,
    stats: Arc<Stats>,
}

/// What the HTTP parsers consult for each request head.
#[derive(Debug)]
struct KeepLlmCalls(Arc<GenAiStage>);

impl BodyPolicy for KeepLlmCalls {
    fn keep_limit(&self, method: &str, target: &str, host: Option<&str>) -> usize {
        match self.0.catalog.classify(method, target, host) {
            Some(_) => self.0.max_body_bytes,
            None => 0,
        }
    }
}

impl GenAiStage {
    /// None when GenAI recognition is off. Panics on an invalid provider:
    /// `Config::validate` checks them first. Calls recognised (and those
    /// whose bodies fell short) are counted in `stats`.
    pub fn new(config: &GenAiConfig, stats: Arc<Stats>) -> Option<Arc<Self>> {
        if !config.enabled {
            return None;
        }
        let catalog = Catalog::new(config).expect("GenAI providers validated with the config");
        Some(Arc::new(Self { catalog: Arc::new(catalog), max_body_bytes: config.max_body_bytes, stats }))
    }

    pub fn body_policy(self: &Arc<Self>) -> Arc<dyn BodyPolicy> {
        Arc::new(KeepLlmCalls(self.clone()))
    }

    /// The GenAI facts of an exchange whose bodies were kept; None for any
    /// other exchange.
    pub fn analyse(&self, ex: &HttpExchange) -> Option<GenAiCall> {
        let kept = ex.bodies.as_deref()?;
        let m = self.catalog.classify(&ex.method, &ex.target, ex.host.as_deref())?;
        let bodies = ExchangeBodies {
            request: view(&kept.request),
            response: view(&kept.response),
            request_content_encoding: kept.request_content_encoding.as_deref(),
            response_content_type: kept.response_content_type.as_deref(),
            response_content_encoding: kept.response_content_encoding.as_deref(),
            status: ex.status,
        };
        let call = self.catalog.extract(&m, &bodies);
        self.stats.genai_calls.fetch_add(1, Relaxed);
        if let Some(problem) = call.problem {
            self.stats.genai_incomplete.fetch_add(1, Relaxed);
            // The path only: a query string may hold an API key.
            log::debug!("{} {}: {problem}", call.operation, path_of(&ex.target));
        }
        Some(call)
    }
}

fn view(body: &KeptBody) -> BodyBytes<'_> {
    BodyBytes { head: &body.head, tail: &body.tail, skipped: body.skipped, complete: body.complete }
}

/// `error.type` of a call: the provider's error (from the body) when it
/// failed with one, else the HTTP status code; `http.response.missing` when
/// no response came. 4xx counts on both sides: a GenAI server that refused a
/// call (429, 400) did not serve it.
pub fn genai_error_type<'a>(ex: &HttpExchange, call: &'a GenAiCall) -> Option<Value<'a>> {
    match ex.status {
        None => Some(Value::Str(ERROR_NO_RESPONSE)),
        Some(s) if s >= 400 => Some(match &call.error_type {
            Some(e) => Value::Str(e.as_str()),
            None => Value::IntStr(i64::from(s)),
        }),
        Some(_) => None,
    }
}

/// (`server.address`, `server.port`) of the GenAI server, from either side.
pub fn genai_server<'a>(ex: &'a HttpExchange, facts: &ConnFacts) -> (Option<Value<'a>>, Option<u16>) {
    match ex.role {
        Role::Client => {
            let (address, port) = client_server(ex, facts);
            let address = address.map(|a| match a {
                ServerAddress::Name(n) => Value::Str(n),
                ServerAddress::Ip(ip) => Value::Ip(ip),
            });
            (address, port)
        }
        Role::Server => {
            let host = ex.host.as_deref().map(host_name).map(Value::Str);
            let address = host.or_else(|| facts.endpoints.map(|ep| Value::Ip(ep.local.0)));
            (address, facts.endpoints.map(|ep| ep.local.1))
        }
    }
}

/// Time to the first chunk of a streamed response, from the request's start.
pub fn first_chunk_ns(ex: &HttpExchange, call: &GenAiCall) -> Option<u64> {
    if !call.stream {
        return None;
    }
    let first = ex.bodies.as_deref()?.response_body_start_ns?;
    Some(first.saturating_sub(ex.request_start_ns))
}

/// Adds the GenAI facts of `call` to the operation of its exchange: span
/// name, attributes, status and metric feed.
pub fn enrich<'a>(op: &mut Operation<'a>, ex: &'a HttpExchange, facts: &ConnFacts, call: &'a GenAiCall) {
    // The span name: operation and model (the requested one, else the one that answered).
    let model = call.request_model.as_deref().or(call.response_model.as_deref());
    op.name = SpanName::new(&call.operation, model);
    op.attr("gen_ai.operation.name", call.operation.as_str());
    op.attr("gen_ai.provider.name", call.provider.as_str());
    let strings = [
        ("gen_ai.request.model", &call.request_model),
        ("gen_ai.response.model", &call.response_model),
        ("gen_ai.response.id", &call.response_id),
        ("gen_ai.system_instructions", &call.system_instructions),
        ("gen_ai.input.messages", &call.input_messages),
        ("gen_ai.output.messages", &call.output_messages),
    ];
    for (key, value) in strings {
        if let Some(v) = value {
            op.attr(key, v.as_str());
        }
    }
    op.attr("gen_ai.request.stream", call.stream);
    let counts = [
        ("gen_ai.usage.input_tokens", call.input_tokens),
        ("gen_ai.usage.output_tokens", call.output_tokens),
        ("gen_ai.usage.cache_read.input_tokens", call.cache_read_input_tokens),
        ("gen_ai.usage.cache_creation.input_tokens", call.cache_creation_input_tokens),
        ("gen_ai.usage.reasoning.output_tokens", call.reasoning_output_tokens),
        ("gen_ai.request.max_tokens", call.request_max_tokens),
        // The conventions record the choice count only when it is not 1.
        ("gen_ai.request.choice.count", call.request_choice_count.filter(|&n| n != 1)),
    ];
    for (key, value) in counts {
        if let Some(n) = value {
            op.attr(key, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    if let Some(seed) = call.request_seed {
        op.attr("gen_ai.request.seed", seed);
    }
    let doubles = [
        ("gen_ai.request.temperature", call.request_temperature),
        ("gen_ai.request.top_p", call.request_top_p),
        ("gen_ai.request.top_k", call.request_top_k),
        ("gen_ai.request.frequency_penalty", call.request_frequency_penalty),
        ("gen_ai.request.presence_penalty", call.request_presence_penalty),
    ];
    for (key, value) in doubles {
        if let Some(v) = value {
            op.attr(key, v);
        }
    }
    if !call.request_stop_sequences.is_empty() {
        op.attr("gen_ai.request.stop_sequences", Value::Strs(&call.request_stop_sequences));
    }
    if !call.finish_reasons.is_empty() {
        op.attr("gen_ai.response.finish_reasons", Value::Strs(&call.finish_reasons));
    }
    let first_chunk = first_chunk_ns(ex, call);
    if op.kind == SpanKind::Client {
        if let Some(ns) = first_chunk {
            op.attr("gen_ai.response.time_to_first_chunk", ns as f64 / 1e9);
        }
    }
    // The GenAI error type replaces the HTTP one (a 429 on the server side is
    // a failed GenAI call, and the provider's error names it better).
    op.remove("error.type");
    let error = genai_error_type(ex, call);
    if let Some(e) = error {
        op.attr("error.type", e);
        op.failed = match ex.role {
            Role::Client => true,
            // The HTTP rule for the span status: 4xx is the caller's fault.
            Role::Server => ex.status.is_none_or(|s| s >= 500),
        };
    }
    op.metrics.push(feed(ex, facts, call, error, first_chunk));
}

/// The GenAI metrics of one call.
fn feed<'a>(
    ex: &'a HttpExchange,
    facts: &ConnFacts,
    call: &'a GenAiCall,
    error: Option<Value<'a>>,
    first_chunk: Option<u64>,
) -> MetricFeed<'a> {
    let mut feed = MetricFeed::new(match ex.role {
        Role::Client => &GENAI_CLIENT,
        Role::Server => &GENAI_SERVER,
    });
    feed.attr("gen_ai.operation.name", call.operation.as_str());
    feed.attr("gen_ai.provider.name", call.provider.as_str());
    if let Some(m) = &call.request_model {
        feed.attr("gen_ai.request.model", m.as_str());
    }
    if let Some(m) = &call.response_model {
        feed.attr("gen_ai.response.model", m.as_str());
    }
    let (address, port) = genai_server(ex, facts);
    if let Some(a) = address {
        feed.attr("server.address", a);
    }
    if let Some(p) = port {
        feed.attr("server.port", i64::from(p));
    }
    if let Some(e) = error {
        feed.attr("error.type", e);
    }
    let duration = ex.response_end_ns.saturating_sub(ex.request_start_ns);
    let ok = error.is_none();
    match ex.role {
        Role::Client => {
            feed.value(genai_client::DURATION, duration);
            // Token and first-chunk points carry no `error.type`, so a failed
            // call's would collide with the successful calls' attribute set:
            // only successful calls record them (failed calls rarely have any).
            if ok {
                if let Some(t) = first_chunk {
                    feed.value(genai_client::FIRST_CHUNK, t);
                }
                if let Some(n) = call.input_tokens {
                    feed.value(genai_client::INPUT_TOKENS, n);
                }
                if let Some(n) = call.output_tokens {
                    feed.value(genai_client::OUTPUT_TOKENS, n);
                }
            }
        }
        Role::Server => {
            feed.value(genai_server::DURATION, duration);
            // The conventions define the server's token timings for successful responses only.
            if let (true, Some(t)) = (ok, first_chunk) {
                feed.value(genai_server::FIRST_TOKEN, t);
                if let Some(n) = call.output_tokens.filter(|&n| n > 1) {
                    feed.value(genai_server::PER_OUTPUT_TOKEN, duration.saturating_sub(t) / (n - 1));
                }
            }
        }
    }
    feed
}
