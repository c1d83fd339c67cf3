//! An LLM API call → one span: the HTTP span of its exchange, renamed
//! `{gen_ai.operation.name} {gen_ai.request.model}` and carrying the GenAI
//! semantic conventions' attributes next to the HTTP ones. One span, not a
//! GenAI span over an HTTP child: both describe the same request, seen once.
//!
//! Prompt and completion text (`gen_ai.input.messages`,
//! `gen_ai.output.messages`) only appear when `genai.capture_content` is on;
//! the extraction leaves them out otherwise.

use std::borrow::Cow;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};

use crate::clock::WallClock;
use crate::conntrack::Exchange;
use crate::protocol::genai::GenAiCall;
use crate::protocol::Role;

use super::attributes::{bool_attr, double_attr, int_attr, str_array_attr, str_attr};
use super::http::http_span;
use super::http_common::{client_server, split_host, ERROR_NO_RESPONSE};
use super::ids::IdGenerator;

/// `error.type` of a call: the provider's error (from the body) when it
/// failed with one, else the HTTP status code; `http.response.missing` when
/// no response came. 4xx counts on both sides: a GenAI server that refused a
/// call (429, 400) did not serve it.
pub fn genai_error_type<'a>(ex: &Exchange, call: &'a GenAiCall) -> Option<Cow<'a, str>> {
    match ex.http.status {
        None => Some(Cow::Borrowed(ERROR_NO_RESPONSE)),
        Some(s) if s >= 400 => Some(match &call.error_type {
            Some(e) => Cow::Borrowed(e.as_str()),
            None => Cow::Owned(s.to_string()),
        }),
        Some(_) => None,
    }
}

/// (`server.address`, `server.port`) of the GenAI server, from either side.
pub fn genai_server(ex: &Exchange) -> (Option<String>, Option<u16>) {
    match ex.http.role {
        Role::Client => {
            let (address, port) = client_server(ex);
            (address.map(|a| a.to_string()), port)
        }
        Role::Server => {
            let host = ex.http.host.as_deref().map(split_host).map(|(name, _)| name.to_string());
            let address = host.or_else(|| ex.endpoints.map(|ep| ep.local.0.to_string()));
            (address, ex.endpoints.map(|ep| ep.local.1))
        }
    }
}

/// Time to the first chunk of a streamed response, from the request's start.
pub fn first_chunk_ns(ex: &Exchange, call: &GenAiCall) -> Option<u64> {
    if !call.stream {
        return None;
    }
    let first = ex.http.bodies.as_deref()?.response_body_start_ns?;
    Some(first.saturating_sub(ex.http.request_start_ns))
}

/// The span name: operation and model (the requested one, else the one that answered).
fn span_name(call: &GenAiCall) -> String {
    match call.request_model.as_deref().or(call.response_model.as_deref()) {
        Some(model) => format!("{} {model}", call.operation),
        None => call.operation.clone(),
    }
}

pub fn genai_span(
    ex: &Exchange,
    route: Option<&str>,
    call: &GenAiCall,
    clock: &WallClock,
    ids: &mut IdGenerator,
) -> Span {
    let mut span = http_span(ex, route, clock, ids);
    span.name = span_name(call);
    let attrs = &mut span.attributes;
    attrs.push(str_attr("gen_ai.operation.name", call.operation.as_str()));
    attrs.push(str_attr("gen_ai.provider.name", call.provider.as_str()));
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
            attrs.push(str_attr(key, v.as_str()));
        }
    }
    attrs.push(bool_attr("gen_ai.request.stream", call.stream));
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
            attrs.push(int_attr(key, i64::try_from(n).unwrap_or(i64::MAX)));
        }
    }
    if let Some(seed) = call.request_seed {
        attrs.push(int_attr("gen_ai.request.seed", seed));
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
            attrs.push(double_attr(key, v));
        }
    }
    if !call.request_stop_sequences.is_empty() {
        attrs.push(str_array_attr("gen_ai.request.stop_sequences", &call.request_stop_sequences));
    }
    if !call.finish_reasons.is_empty() {
        attrs.push(str_array_attr("gen_ai.response.finish_reasons", &call.finish_reasons));
    }
    if span.kind == SpanKind::Client as i32 {
        if let Some(ns) = first_chunk_ns(ex, call) {
            attrs.push(double_attr("gen_ai.response.time_to_first_chunk", ns as f64 / 1e9));
        }
    }
    // The GenAI error type replaces the HTTP one (a 429 on the server side is
    // a failed GenAI call, and the provider's error names it better).
    attrs.retain(|kv| kv.key != "error.type");
    if let Some(e) = genai_error_type(ex, call) {
        attrs.push(str_attr("error.type", e));
        let failed = match ex.http.role {
            Role::Client => true,
            // The HTTP rule for the span status: 4xx is the caller's fault.
            Role::Server => ex.http.status.is_none_or(|s| s >= 500),
        };
        if failed {
            span.status = Some(Status { code: StatusCode::Error as i32, message: String::new() });
        }
    }
    span
}
