//! Prompts and completions leave only when `capture_content` is on.

use super::{call_with, capturing_catalog, catalog, exchange, fixture};
use crate::protocol::genai::{GenAiCall, MAX_CONTENT_BYTES};
use serde_json::{json, Value};

const SSE: Option<&str> = Some("text/event-stream");

/// Every text a fixture call could leak.
const SECRETS: [&str; 10] = [
    "Hello!",
    "helpful assistant",
    "How can I assist",
    "Hello, Claude",
    "concise assistant",
    "My name is Claude",
    "magic backpack",
    "storyteller",
    "Once upon a time",
    "sky blue",
];

fn all_calls(catalog: &crate::protocol::genai::Catalog) -> Vec<GenAiCall> {
    let json = Some("application/json");
    [
        ("/v1/chat/completions", fixture!("openai_chat_request.json"), fixture!("openai_chat_response.json"), json),
        ("/v1/messages", fixture!("anthropic_request.json"), fixture!("anthropic_response.json"), json),
        ("/v1/messages", fixture!("anthropic_stream_request.json"), fixture!("anthropic_stream.sse"), SSE),
        (
            "/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaKEY",
            fixture!("gemini_request.json"),
            fixture!("gemini_response.json"),
            json,
        ),
        ("/api/generate", fixture!("ollama_generate_request.json"), fixture!("ollama_generate_response.json"), json),
    ]
    .into_iter()
    .map(|(target, request, response, ct)| call_with(catalog, target, "h", exchange(request, response, ct, 200)))
    .collect()
}

#[test]
fn without_capture_no_content_and_no_query_string() {
    for call in all_calls(&catalog()) {
        assert_eq!((&call.input_messages, &call.output_messages, &call.system_instructions), (&None, &None, &None));
        let everything = format!("{call:?}");
        for secret in SECRETS.iter().chain(&["AIzaKEY"]) {
            assert!(!everything.contains(secret), "{secret} leaked in {everything}");
        }
    }
}

#[test]
fn with_capture_messages_follow_the_conventions() {
    let calls = all_calls(&capturing_catalog());
    let parse = |s: &Option<String>| -> Value { serde_json::from_str(s.as_deref().expect("captured")).expect("JSON") };

    let openai = &calls[0];
    assert_eq!(
        parse(&openai.input_messages),
        json!([
            {"role": "developer", "parts": [{"type": "text", "content": "You are a helpful assistant."}]},
            {"role": "user", "parts": [{"type": "text", "content": "Hello!"}]}
        ])
    );
    assert_eq!(
        parse(&openai.output_messages),
        json!([{"role": "assistant", "parts": [{"type": "text", "content": "Hello! How can I assist you today?"}], "finish_reason": "stop"}])
    );

    let anthropic = &calls[1];
    assert_eq!(
        parse(&anthropic.system_instructions),
        json!([{"type": "text", "content": "You are a concise assistant."}])
    );
    assert_eq!(parse(&anthropic.output_messages)[0]["parts"][0]["content"], "Hi! My name is Claude.");

    let anthropic_stream = &calls[2];
    assert_eq!(parse(&anthropic_stream.output_messages)[0]["parts"][0]["content"], "Hello!");
    assert_eq!(parse(&anthropic_stream.output_messages)[0]["finish_reason"], "end_turn");

    let gemini = &calls[3];
    assert_eq!(
        parse(&gemini.input_messages),
        json!([{"role": "user", "parts": [{"type": "text", "content": "Write a story about a magic backpack."}]}])
    );
    assert_eq!(parse(&gemini.system_instructions), json!([{"type": "text", "content": "You are a storyteller."}]));
    assert!(!format!("{gemini:?}").contains("AIzaKEY"));

    let ollama = &calls[4];
    assert_eq!(parse(&ollama.input_messages)[0]["parts"][0]["content"], "Why is the sky blue?");
    assert_eq!(
        parse(&ollama.output_messages)[0]["parts"][0]["content"],
        "The sky is blue because of Rayleigh scattering."
    );
}

#[test]
fn streamed_text_is_accumulated_and_bounded() {
    let c = call_with(
        &capturing_catalog(),
        "/v1/chat/completions",
        "h",
        exchange(fixture!("openai_chat_stream_request.json"), fixture!("openai_chat_stream.sse"), SSE, 200),
    );
    let out: Value = serde_json::from_str(c.output_messages.as_deref().unwrap()).unwrap();
    assert_eq!(out[0]["parts"][0]["content"], "Hello there!");

    let c = call_with(
        &capturing_catalog(),
        "/v1/responses",
        "h",
        exchange(
            br#"{"model":"gpt-4.1","input":"hi","stream":true}"#,
            fixture!("openai_responses_stream.sse"),
            SSE,
            200,
        ),
    );
    let out: Value = serde_json::from_str(c.output_messages.as_deref().unwrap()).unwrap();
    assert_eq!(out[0]["parts"][0]["content"], "Hi there!");

    let mut stream = String::new();
    for _ in 0..5000 {
        stream += "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"0123456789\"}}]}\n\n";
    }
    let c = call_with(
        &capturing_catalog(),
        "/v1/chat/completions",
        "h",
        exchange(br#"{"model":"m","stream":true,"messages":[]}"#, stream.as_bytes(), SSE, 200),
    );
    let out = c.output_messages.unwrap();
    assert!(out.len() <= MAX_CONTENT_BYTES);
    assert!(serde_json::from_str::<Value>(&out).is_ok());
}
