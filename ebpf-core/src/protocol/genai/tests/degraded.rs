//! Encoded, cut and broken bodies.

use super::{call, call_with, catalog, exchange, fixture, gzip, kept, whole};
use crate::protocol::genai::{BodyBytes, ExchangeBodies, GenAiConfig};

const JSON: Option<&str> = Some("application/json");
const SSE: Option<&str> = Some("text/event-stream");

/// An OpenAI chat stream of `pieces` content chunks, then finish and usage.
fn long_openai_stream(pieces: usize) -> Vec<u8> {
    let chunk = |delta: &str, finish: &str, usage: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-long\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\
             \"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}],\"usage\":{usage}}}\n\n"
        )
    };
    let mut body = chunk(r#"{"role":"assistant","content":""}"#, "null", "null");
    for i in 0..pieces {
        body += &chunk(&format!(r#"{{"content":"word{i} "}}"#), "null", "null");
    }
    body += &chunk("{}", "\"length\"", "null");
    body += "data: {\"id\":\"chatcmpl-long\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\
             \"choices\":[],\"usage\":{\"prompt_tokens\":4321,\"completion_tokens\":2000,\"total_tokens\":6321}}\n\ndata: [DONE]\n\n";
    body.into_bytes()
}

#[test]
fn gzip_response_and_request() {
    let response = gzip(fixture!("anthropic_response.json"));
    let request = gzip(fixture!("anthropic_request.json"));
    let bodies = ExchangeBodies {
        request: whole(&request),
        response: whole(&response),
        request_content_encoding: Some("gzip"),
        response_content_type: JSON,
        response_content_encoding: Some("gzip"),
        status: Some(200),
    };
    let c = call_with(&catalog(), "/v1/messages", "api.anthropic.com", bodies);
    assert_eq!(c.request_model.as_deref(), Some("claude-sonnet-4-20250514"));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(1709), Some(12)));
    assert_eq!(c.problem, None);
}

#[test]
fn brotli_stream() {
    let bodies = ExchangeBodies {
        response_content_encoding: Some("br"),
        ..exchange(fixture!("anthropic_stream_request.json"), fixture!("anthropic_stream.sse.br"), SSE, 200)
    };
    let c = call_with(&catalog(), "/v1/messages", "api.anthropic.com", bodies);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(2073), Some(15)));
    assert_eq!(c.finish_reasons, ["end_turn"]);
}

#[test]
fn inflated_stream_larger_than_the_budget_keeps_its_end() {
    let stream = long_openai_stream(5000);
    let zipped = gzip(&stream);
    let config = GenAiConfig { max_body_bytes: 64 * 1024, ..GenAiConfig::default() };
    let catalog = crate::protocol::genai::Catalog::new(&config).unwrap();
    assert!(stream.len() > 4 * 64 * 1024);
    let bodies = ExchangeBodies { response_content_encoding: Some("gzip"), ..exchange(b"{}", &zipped, SSE, 200) };
    let c = call_with(&catalog, "/v1/chat/completions", "h", bodies);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(4321), Some(2000)));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.finish_reasons, ["length"]);
}

#[test]
fn encoded_body_with_a_hole_is_not_decoded() {
    let zipped = gzip(&long_openai_stream(2000));
    let bodies = ExchangeBodies {
        response: kept(&zipped, 1000, 1000),
        response_content_encoding: Some("gzip"),
        ..exchange(br#"{"model":"gpt-4o","stream":true}"#, b"", SSE, 200)
    };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!(c.problem, Some("encoded body cut: not decoded"));
    assert_eq!((c.provider.as_str(), c.request_model.as_deref(), c.stream), ("openai", Some("gpt-4o"), true));
    assert_eq!(c.input_tokens, None);
}

#[test]
fn unsupported_encoding_and_non_json_bodies() {
    let bodies =
        ExchangeBodies { response_content_encoding: Some("zstd"), ..exchange(b"{}", b"\x28\xb5\x2f\xfd", JSON, 200) };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!(c.problem, Some("unsupported content-encoding"));

    let c = call_with(
        &catalog(),
        "/v1/chat/completions",
        "h",
        exchange(b"{}", b"<html><body>502 Bad Gateway</body></html>", Some("text/html"), 502),
    );
    assert_eq!(c.problem, Some("response body not JSON"));
    assert_eq!(c.error_type, None);
}

#[test]
fn cut_stream_reads_head_and_tail_events() {
    let stream = long_openai_stream(3000);
    // Both cut points fall inside events.
    let (head_len, tail_len) = (5003, 7001);
    assert!(!stream[..stream.len() - tail_len].ends_with(b"\n\n"));
    let bodies = ExchangeBodies {
        response: kept(&stream, head_len, tail_len),
        ..exchange(br#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#, b"", SSE, 200)
    };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(4321), Some(2000)));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.response_id.as_deref(), Some("chatcmpl-long"));
    assert_eq!(c.finish_reasons, ["length"]);
    assert_eq!(c.problem, None);
}

#[test]
fn stream_cut_by_close_before_usage() {
    let stream = long_openai_stream(100);
    let bodies = ExchangeBodies {
        response: BodyBytes { head: &stream[..3000], tail: &[], skipped: 0, complete: false },
        ..exchange(br#"{"model":"gpt-4o","stream":true}"#, b"", SSE, 200)
    };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!(c.problem, Some("response body cut: usage not seen"));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.input_tokens, None);
}

/// A non-streamed completion far bigger than what is kept, whose text
/// mentions "usage" (escaped, as JSON strings must) and which nests objects
/// with the same keys.
fn big_completion() -> Vec<u8> {
    let text = "He said \\\"usage\\\": {\\\"prompt_tokens\\\": 1} and left. ".repeat(4000);
    format!(
        r#"{{"id":"chatcmpl-big","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06",
        "choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}","tool_calls":[{{"id":"t","function":{{"name":"model","arguments":"{{}}"}}}}]}},"finish_reason":"stop"}}],
        "usage":{{"prompt_tokens":77,"completion_tokens":55000,"total_tokens":55077,"completion_tokens_details":{{"reasoning_tokens":5}}}},
        "system_fingerprint":"fp_1"}}"#
    )
    .into_bytes()
}

#[test]
fn cut_document_is_scanned_from_both_ends() {
    let body = big_completion();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok(), "fixture is valid JSON");
    let bodies =
        ExchangeBodies { response: kept(&body, 4096, 4096), ..exchange(br#"{"model":"gpt-4o"}"#, b"", JSON, 200) };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.response_id.as_deref(), Some("chatcmpl-big"));
    assert_eq!((c.input_tokens, c.output_tokens, c.reasoning_output_tokens), (Some(77), Some(55000), Some(5)));
    assert!(c.finish_reasons.is_empty(), "choices were cut");
    assert_eq!(c.problem, None);

    // Cut by close: the tail does not end the document, only the head is read.
    let bodies = ExchangeBodies {
        response: BodyBytes { head: &body[..4096], tail: &[], skipped: 0, complete: false },
        ..exchange(br#"{"model":"gpt-4o"}"#, b"", JSON, 200)
    };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(c.problem, Some("response body cut: usage not seen"));
}

#[test]
fn cut_request_finds_a_model_written_after_the_messages() {
    // The OpenAI Python SDK writes `messages` before `model`.
    let request = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}],"model":"gpt-4o","stream":false,"temperature":0.5}}"#,
        "long prompt \\\"model\\\": \\\"fake\\\" ".repeat(10000)
    );
    let bodies = ExchangeBodies {
        request: kept(request.as_bytes(), 2048, 2048),
        ..exchange(b"", fixture!("openai_chat_response.json"), JSON, 200)
    };
    let c = call_with(&catalog(), "/v1/chat/completions", "h", bodies);
    assert_eq!(c.request_model.as_deref(), Some("gpt-4o"));
    assert_eq!(c.request_temperature, Some(0.5));
    assert_eq!(c.problem, Some("request body cut"));
}

#[test]
fn cut_gemini_array_and_ndjson() {
    let element = |i: usize, last: bool| {
        let finish = if last { r#","finishReason":"STOP""# } else { "" };
        let usage = if last { r#""promptTokenCount":9,"candidatesTokenCount":300"# } else { r#""promptTokenCount":9"# };
        format!(
            "{{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"piece {i}\"}}],\"role\":\"model\"}}{finish}}}],\
             \"usageMetadata\":{{{usage}}},\"modelVersion\":\"gemini-2.0-flash\"}}"
        )
    };
    let elements: Vec<String> = (0..300).map(|i| element(i, i == 299)).collect();
    let body = format!("[{}]", elements.join("\n,\r\n"));
    let bodies = ExchangeBodies { response: kept(body.as_bytes(), 3000, 3000), ..exchange(b"{}", b"", JSON, 200) };
    let c = call_with(&catalog(), "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "h", bodies);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(9), Some(300)));
    assert_eq!(c.finish_reasons, ["STOP"]);
    assert!(c.stream);

    let mut ndjson = String::new();
    for i in 0..2000 {
        ndjson += &format!(
            "{{\"model\":\"llama3.2\",\"message\":{{\"role\":\"assistant\",\"content\":\"w{i}\"}},\"done\":false}}\n"
        );
    }
    ndjson += "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":11,\"eval_count\":2000}\n";
    let bodies = ExchangeBodies {
        response: kept(ndjson.as_bytes(), 1001, 1003),
        ..exchange(br#"{"model":"llama3.2"}"#, b"", Some("application/x-ndjson"), 200)
    };
    let c = call_with(&catalog(), "/api/chat", "localhost:11434", bodies);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(11), Some(2000)));
    assert_eq!(c.problem, None);
}

#[test]
fn no_response_still_names_the_call() {
    let catalog = catalog();
    let m = catalog.classify("POST", "/v1beta/models/gemini-2.0-flash:generateContent?key=SECRET", None).unwrap();
    assert_eq!((m.provider_name(&catalog), m.operation(&catalog)), ("gcp.gemini", "generate_content"));
    assert_eq!(m.path_model(), Some("gemini-2.0-flash"));
    let bodies = ExchangeBodies { request: whole(fixture!("gemini_request.json")), ..ExchangeBodies::default() };
    let c = catalog.extract(&m, &bodies);
    assert_eq!(c.problem, Some("no response"));
    assert_eq!(c.request_model.as_deref(), Some("gemini-2.0-flash"));
    assert_eq!(c.request_max_tokens, Some(800));
    // And with nothing at all.
    let c = catalog.extract(&m, &ExchangeBodies::default());
    assert_eq!((c.provider.as_str(), c.request_model.as_deref()), ("gcp.gemini", Some("gemini-2.0-flash")));
}

#[test]
fn stream_cut_by_close_after_partial_usage() {
    let stream = fixture!("anthropic_stream.sse");
    let end = stream.windows(20).position(|w| w == b"event: message_delta").expect("has a delta");
    let bodies = ExchangeBodies {
        response: BodyBytes { head: &stream[..end], tail: &[], skipped: 0, complete: false },
        ..exchange(fixture!("anthropic_stream_request.json"), b"", SSE, 200)
    };
    let c = call_with(&catalog(), "/v1/messages", "h", bodies);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(2073), Some(1)));
    assert_eq!(c.problem, Some("response body cut before its end"));
    assert!(c.finish_reasons.is_empty());
}

#[test]
fn stream_without_usage_is_reported() {
    let stream: &[u8] = b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let c = call("/v1/chat/completions", br#"{"model":"m","stream":true}"#, stream, SSE);
    assert_eq!(c.problem, Some("response has no usage"));
    assert_eq!(c.finish_reasons, ["stop"]);
}
