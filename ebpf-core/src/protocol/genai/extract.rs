//! From kept bodies to a `GenAiCall`: decode, frame, apply the provider's
//! field lists to each object, and merge what the objects say.

use super::catalog::{Catalog, RequestPaths, ResponsePaths};
use super::content::{self, OutputText};
use super::encoding::{self, Body};
use super::framing::{self, Framing};
use super::pointer::MAX_LIST_LEN;
use super::{CallMatch, ExchangeBodies, GenAiCall};
use serde_json::Value;

/// The first reason extraction fell short; later ones are less telling.
#[derive(Debug, Default)]
struct Problem(Option<&'static str>);

impl Problem {
    fn note(&mut self, why: &'static str) {
        self.0.get_or_insert(why);
    }
}

pub fn extract(catalog: &Catalog, m: &CallMatch, bodies: &ExchangeBodies<'_>) -> GenAiCall {
    let Some((provider, endpoint)) = catalog.lookup(m) else {
        return GenAiCall { problem: Some("call matched by another catalog"), ..GenAiCall::default() };
    };
    let mut call =
        GenAiCall { provider: provider.name.clone(), operation: endpoint.operation.clone(), ..GenAiCall::default() };
    let mut problem = Problem::default();
    let capture = catalog.capture_content();
    let budget = catalog.max_body_bytes();

    let mut streamed = false;
    let mut output = OutputText::default();
    match bodies.status {
        None => problem.note("no response"),
        Some(status) => match encoding::decode(&bodies.response, bodies.response_content_encoding, budget) {
            Err(why) => problem.note(why),
            Ok(body) if body.is_empty() => problem.note("response body empty"),
            Ok(body) => {
                let read = read_response(&provider.response, &body, bodies.response_content_type, capture);
                let (framed, text) = read.apply_to(&mut call);
                output = text;
                streamed = framed.streamed;
                let has_usage = call.input_tokens.is_some() || call.output_tokens.is_some();
                if body.is_cut() && !has_usage {
                    problem.note("response body cut: usage not seen");
                } else if framed.objects == 0 {
                    problem.note("response body not JSON");
                } else if !body.complete {
                    // Usage from before the cut may not be final (Anthropic's
                    // message_start says 1 output token).
                    problem.note("response body cut before its end");
                } else if (200..300).contains(&status) && !has_usage && endpoint.operation != "embeddings" {
                    problem.note("response has no usage");
                }
            }
        },
    }

    let request = match encoding::decode(&bodies.request, bodies.request_content_encoding, budget) {
        Err(why) => {
            problem.note(why);
            None
        }
        Ok(body) if body.is_empty() => None,
        Ok(body) => {
            let request = read_request(&provider.request, &body);
            if body.is_cut() {
                problem.note("request body cut");
            } else if request.is_none() {
                problem.note("request body not JSON");
            }
            request
        }
    };
    let asked_stream =
        request.as_ref().and_then(|request| apply_request(&provider.request, request, capture, &mut call));
    if call.request_model.is_none() {
        call.request_model = m.path_model.clone();
    }
    call.stream = asked_stream.unwrap_or(endpoint.stream) || streamed;
    if capture {
        call.output_messages = content::output_messages(&output.text, call.finish_reasons.first().map(String::as_str));
    }
    call.problem = problem.0;
    call
}

/// The request's parameters (and content, if captured) into `call`;
/// returns whether it asked for a stream, if it says.
fn apply_request(paths: &RequestPaths, request: &Value, capture: bool, call: &mut GenAiCall) -> Option<bool> {
    call.request_model = paths.model.string(request);
    call.request_max_tokens = paths.max_tokens.count(request);
    call.request_temperature = paths.temperature.float(request);
    call.request_top_p = paths.top_p.float(request);
    call.request_top_k = paths.top_k.float(request);
    call.request_seed = paths.seed.integer(request);
    call.request_frequency_penalty = paths.frequency_penalty.float(request);
    call.request_presence_penalty = paths.presence_penalty.float(request);
    call.request_stop_sequences = paths.stop_sequences.strings(request);
    call.request_choice_count = paths.choice_count.count(request);
    if capture {
        call.input_messages = paths.messages.value(request).and_then(content::input_messages);
        call.system_instructions = paths.system.value(request).and_then(content::system_instructions);
    }
    paths.stream.boolean(request)
}

/// The request as one object (scanned together from head and tail when cut).
fn read_request(paths: &RequestPaths, body: &Body<'_>) -> Option<Value> {
    let wanted = |key: &str| paths.scan_keys.iter().any(|k| k == key);
    let mut first = None;
    framing::objects(body, Framing::Json, &wanted, &mut |object| {
        first.get_or_insert(object);
    });
    first
}

/// What the response's objects said, merged: scalars from the last object
/// that has them, finish reasons distinct in order (all of one object's, so
/// two choices that both stopped say so twice).
#[derive(Debug, Default)]
struct ResponseRead {
    framed: framing::Framed,
    model: Option<String>,
    id: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    reasoning_output_tokens: Option<u64>,
    finish_reasons: Vec<String>,
    error_type: Option<String>,
    output: OutputText,
}

fn read_response(paths: &ResponsePaths, body: &Body<'_>, content_type: Option<&str>, capture: bool) -> ResponseRead {
    let mut read = ResponseRead::default();
    let wanted = |key: &str| paths.scan_keys.iter().any(|k| k == key);
    let framing = framing::framing_of(content_type, &body.head);
    let framed = framing::objects(body, framing, &wanted, &mut |object| read.add(paths, &object, capture));
    read.framed = framed;
    read
}

fn last_wins<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

impl ResponseRead {
    fn add(&mut self, paths: &ResponsePaths, object: &Value, capture: bool) {
        last_wins(&mut self.model, paths.model.string(object));
        last_wins(&mut self.id, paths.id.string(object));
        last_wins(&mut self.input_tokens, paths.input_tokens.count(object));
        last_wins(&mut self.output_tokens, paths.output_tokens.count(object));
        last_wins(&mut self.cache_read_input_tokens, paths.cache_read_input_tokens.count(object));
        last_wins(&mut self.cache_creation_input_tokens, paths.cache_creation_input_tokens.count(object));
        last_wins(&mut self.reasoning_output_tokens, paths.reasoning_output_tokens.count(object));
        last_wins(&mut self.error_type, paths.error_type.string(object));
        let seen_before = self.finish_reasons.len();
        for reason in paths.finish_reasons.strings(object) {
            if self.finish_reasons.len() < MAX_LIST_LEN && !self.finish_reasons[..seen_before].contains(&reason) {
                self.finish_reasons.push(reason);
            }
        }
        if capture {
            paths.output_text.each_string(object, &mut |piece| self.output.push(piece));
        }
    }

    fn apply_to(self, call: &mut GenAiCall) -> (framing::Framed, OutputText) {
        call.response_model = self.model;
        call.response_id = self.id;
        call.input_tokens = self.input_tokens;
        call.output_tokens = self.output_tokens;
        call.cache_read_input_tokens = self.cache_read_input_tokens;
        call.cache_creation_input_tokens = self.cache_creation_input_tokens;
        call.reasoning_output_tokens = self.reasoning_output_tokens;
        call.finish_reasons = self.finish_reasons;
        call.error_type = self.error_type;
        (self.framed, self.output)
    }
}
