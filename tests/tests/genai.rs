//! GenAI: LLM API calls recognised from the bytes alone, over HTTPS (OpenSSL
//! uprobes) and plain HTTP. A local mock (`tests/genai/mock_llm.py`) speaks
//! OpenAI, Anthropic, Gemini and Ollama with the providers' documented body
//! shapes, and writes a ledger of what it answered; clients are a Python
//! `http.client` program (`tests/genai/llm_client.py`, one keep-alive
//! connection) and curl. Every call must give one CLIENT span in the caller
//! and one SERVER span in the mock named `{operation} {request model}` with
//! the `gen_ai.*` attributes equal to the ledger's, and the GenAI metrics must
//! add up to the ledger. Prompts, completions and API keys never leave the
//! host unless `genai.capture_content` is on.
//!
//! Each test traces only the mock's port (`selection.include.ports`), so the
//! host's other traffic does not matter.
//!
//!     sudo -E cargo test -p integration-tests --test genai -- --test-threads=1

use std::time::Duration;

use integration_tests::genai::{
    assert_calls, assert_genai_metrics, assert_not_exported, curl_llm, describe_ledger, is_genai, run_llm_client,
    wait_for_calls, LedgerEntry, LlmCall, MockLlm,
};
use integration_tests::metric_points::{describe_points, metric_points};
use integration_tests::{require_root, unique_token, Receiver};
use serde_json::json;

/// LLM calls are slow and their telemetry waits for the response's end: be generous.
const WAIT: Duration = Duration::from_secs(30);

/// The user-defined provider of `/gateway/chat` (an OpenAI-shaped body), in
/// the `genai.providers` schema of `ebpf-core/src/protocol/genai/config.rs`.
const GATEWAY_PROVIDER: &str = r#"{
    "name": "my-gateway",
    "endpoints": [{"path": "/gateway/chat", "operation": "chat"}],
    "request": {"model": ["/model"], "stream": ["/stream"], "max_tokens": ["/max_tokens"], "messages": ["/messages"]},
    "response": {
        "model": ["/model"],
        "id": ["/id"],
        "input_tokens": ["/usage/prompt_tokens"],
        "output_tokens": ["/usage/completion_tokens"],
        "cache_read_input_tokens": ["/usage/prompt_tokens_details/cached_tokens"],
        "finish_reasons": ["/choices/*/finish_reason"],
        "error_type": ["/error/code", "/error/type"],
        "output_text": ["/choices/*/message/content", "/choices/*/delta/content"]
    }
}"#;

/// A receiver tracing only connections to `port`, with metrics every 500 ms
/// in delta temporality (so every batch's points add up to the run's totals)
/// and the `genai` section given.
fn genai_receiver(port: u16, capture_content: bool, providers: &[&str]) -> Receiver {
    Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}},
            "metrics": {{"interval_ms": 500, "temporality": "delta"}},
            "selection": {{"include": {{"ports": [{port}]}}}},
            "genai": {{"enabled": true, "capture_content": {capture_content}, "max_body_bytes": 1048576,
                       "providers": [{}]}}}}"#,
        providers.join(",")
    ))
}

/// API keys, one per provider style, sent as headers or in the query string.
struct Keys {
    openai: String,
    anthropic: String,
    gemini: String,
}

impl Keys {
    fn new() -> Self {
        Self {
            openai: unique_token("sk-proj-T3stK3y"),
            anthropic: unique_token("sk-ant-api03-T3stK3y"),
            gemini: unique_token("AIzaSyT3stK3y"),
        }
    }

    fn all(&self) -> Vec<String> {
        vec![self.openai.clone(), self.anthropic.clone(), self.gemini.clone()]
    }
}

/// A prompt long enough (>= 24 words) that the mock reports cached input tokens.
const LONG_SYSTEM: &str = "You are a meticulous assistant for a logistics company. Answer with short factual \
    sentences, cite the shipment identifiers you are given, never invent data, and say so plainly when \
    the information needed is missing from the conversation so far.";

/// The calls of the Python client over TLS: every provider, stream and not,
/// embeddings, a legacy completion, a gzip response, a chunked non-stream
/// response and two 429s.
fn tls_calls(keys: &Keys) -> Vec<LlmCall> {
    let bearer = format!("Bearer {}", keys.openai);
    vec![
        LlmCall::new(
            "openai-chat",
            "/v1/chat/completions",
            json!({"model": "gpt-4o-mini", "max_tokens": 6, "temperature": 0.2, "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Summarise @MARKER@ in one line please"}]}),
        )
        .header("Authorization", &bearer),
        LlmCall::new(
            "openai-chat-stream",
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": [
                {"role": "system", "content": LONG_SYSTEM},
                {"role": "user", "content": [{"type": "text", "text": "Where is shipment @MARKER@ now?"}]}]}),
        )
        .header("Authorization", &bearer),
        LlmCall::new(
            "anthropic",
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": LONG_SYSTEM, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hello Claude, the code is @MARKER@"}]}]}),
        )
        .header("x-api-key", &keys.anthropic)
        .header("anthropic-version", "2023-06-01"),
        LlmCall::new(
            "anthropic-stream",
            "/v1/messages",
            json!({"model": "claude-haiku-4-5", "max_tokens": 512, "stream": true, "messages": [
                {"role": "user", "content": "Write two words about @MARKER@ and the sea"},
                {"role": "assistant", "content": "Sure:"},
                {"role": "user", "content": "go on"}]}),
        )
        .header("x-api-key", &keys.anthropic)
        .header("anthropic-version", "2023-06-01"),
        LlmCall::new(
            "gemini",
            &format!("/v1beta/models/gemini-2.0-flash:generateContent?key={}", keys.gemini),
            json!({"contents": [{"role": "user", "parts": [{"text": "Explain how @MARKER@ works"}]}],
                   "generationConfig": {"maxOutputTokens": 5, "temperature": 0.7}}),
        ),
        LlmCall::new(
            "gemini-stream",
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
            json!({"systemInstruction": {"parts": [{"text": LONG_SYSTEM}]},
                   "contents": [{"role": "user", "parts": [{"text": "Track @MARKER@ for me"}]}]}),
        )
        .header("x-goog-api-key", &keys.gemini),
        LlmCall::new(
            "embeddings",
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": ["@MARKER@ first document", "the second one is longer"]}),
        )
        .header("Authorization", &bearer),
        LlmCall::new(
            "completion",
            "/v1/completions",
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say @MARKER@ is a test", "max_tokens": 7}),
        )
        .header("Authorization", &bearer),
        LlmCall::new(
            "gzip",
            "/v1/chat/completions",
            json!({"model": "gpt-4.1-mini-gzip", "messages": [{"role": "user", "content": "compress @MARKER@ please"}]}),
        )
        .header("Authorization", &bearer)
        .header("Accept-Encoding", "gzip"),
        LlmCall::new(
            "chunked",
            "/v1/messages",
            json!({"model": "claude-opus-4-1", "max_tokens": 2048, "messages": [
                {"role": "user", "content": "Chunk @MARKER@ into pieces"}]}),
        )
        .header("x-api-key", &keys.anthropic)
        .header("anthropic-version", "2023-06-01")
        .header("X-Mock-Chunked", "1"),
        LlmCall::new(
            "anthropic-429",
            "/v1/messages",
            json!({"model": "rate-limited", "max_tokens": 64, "messages": [{"role": "user", "content": "@MARKER@"}]}),
        )
        .header("x-api-key", &keys.anthropic)
        .header("anthropic-version", "2023-06-01"),
        LlmCall::new(
            "openai-429",
            "/v1/chat/completions",
            json!({"model": "rate-limited", "stream": true, "messages": [{"role": "user", "content": "@MARKER@"}]}),
        )
        .header("Authorization", &bearer),
    ]
}

/// The secrets a run must never export: the prompt marker, every completion
/// marker of the ledger, and the API keys.
fn secrets(marker: &str, ledger: &[LedgerEntry], keys: &Keys) -> Vec<String> {
    let mut v = vec![marker.to_string()];
    v.extend(ledger.iter().filter_map(|e| e.completion_marker.clone()));
    v.extend(keys.all());
    v
}

/// (1) The Python client over TLS to the TLS mock: every call gives one
/// CLIENT and one SERVER span equal to the ledger, the metrics add up, and
/// nothing of the conversation or the keys is exported.
#[test]
fn python_client_over_tls_every_provider() {
    if !require_root() {
        return;
    }
    let mock = MockLlm::start(true);
    let mut rx = genai_receiver(mock.port, false, &[]);
    let keys = Keys::new();
    let marker = unique_token("llmprompt");
    let calls = tls_calls(&keys);
    let run = run_llm_client(mock.port, true, &marker, &calls);
    for (call, res) in calls.iter().zip(&run.results) {
        let want = if call.label.ends_with("429") { 429 } else { 200 };
        assert_eq!(res.status, want, "{}: {:?}\n{}", call.label, res.response, mock.log());
    }
    // The mock behaved as the test needs: the stream arrived in pieces, gzip
    // and chunked were used where asked, the big body is over 64 KiB.
    let stream = run.result("openai-chat-stream");
    assert!(stream.reads > 3 && stream.first_chunk_s.unwrap_or(0.0) < stream.total_s - 0.1, "{stream:?}");
    assert_eq!(run.result("gzip").content_encoding, "gzip");
    assert_eq!(run.result("chunked").transfer_encoding, "chunked");
    let ledger = mock.wait_ledger(calls.len(), WAIT);
    assert_eq!(ledger.len(), calls.len(), "one ledger entry per call:\n{}", describe_ledger(&ledger));
    assert!(ledger.iter().all(|e| e.client_port == run.results[0].local_port), "one keep-alive connection");
    assert!(ledger.iter().any(|e| e.cached_tokens > 0), "some calls report cached tokens");

    wait_for_calls(&rx, &ledger, &[run.pid], &mock, WAIT);
    rx.stop();
    let spans = rx.spans();
    assert_calls(&spans, &ledger, &[run.pid], &mock);
    assert_genai_metrics(&rx, &ledger, &[run.pid], &mock);
    assert_not_exported(&rx, &secrets(&marker, &ledger, &keys));
    // Self-telemetry: each call seen twice (client and mock), all read in full.
    let points = metric_points(&rx);
    let total = |name: &str| points.iter().filter(|p| p.name == name).map(|p| p.sum).sum::<f64>();
    assert_eq!(total("ebpf_receiver.genai.calls"), 2.0 * ledger.len() as f64, "{}", describe_points(&points));
    assert_eq!(total("ebpf_receiver.genai.incomplete"), 0.0, "{}", describe_points(&points));
}

/// (1b) Responses over 64 KiB (12,000 output tokens), one JSON body written
/// at once and one SSE stream: the usage at their end is still found, on
/// both sides, and nothing of them is exported.
#[test]
fn responses_over_64_kib() {
    if !require_root() {
        return;
    }
    let mock = MockLlm::start(true);
    let mut rx = genai_receiver(mock.port, false, &[]);
    let keys = Keys::new();
    let marker = unique_token("llmbig");
    let bearer = format!("Bearer {}", keys.openai);
    let calls = vec![
        LlmCall::new(
            "big",
            "/v1/chat/completions",
            json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Write a long essay on @MARKER@"}]}),
        )
        .header("Authorization", &bearer)
        .header("X-Mock-Output-Tokens", "12000"),
        LlmCall::new(
            "big-stream",
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5-big", "max_tokens": 16000, "stream": true,
                   "messages": [{"role": "user", "content": "A long story about @MARKER@"}]}),
        )
        .header("x-api-key", &keys.anthropic)
        .header("anthropic-version", "2023-06-01")
        .header("X-Mock-Output-Tokens", "12000"),
    ];
    let run = run_llm_client(mock.port, true, &marker, &calls);
    for r in &run.results {
        assert_eq!(r.status, 200, "{}", r.label);
        assert!(r.body_bytes > 64 * 1024, "{}: {} bytes", r.label, r.body_bytes);
    }
    let ledger = mock.wait_ledger(calls.len(), WAIT);
    wait_for_calls(&rx, &ledger, &[run.pid], &mock, WAIT);
    rx.stop();
    assert_calls(&rx.spans(), &ledger, &[run.pid], &mock);
    assert_genai_metrics(&rx, &ledger, &[run.pid], &mock);
    assert_not_exported(&rx, &secrets(&marker, &ledger, &keys));
}

/// (2) curl over TLS: a non-stream OpenAI call and a streamed Anthropic one
/// (`-N`), each its own process.
#[test]
fn curl_over_tls() {
    if !require_root() {
        return;
    }
    let mock = MockLlm::start(true);
    let mut rx = genai_receiver(mock.port, false, &[]);
    let keys = Keys::new();
    let marker = unique_token("llmcurl");
    let bearer = format!("Bearer {}", keys.openai);
    let openai = curl_llm(
        &mock.url("/v1/chat/completions"),
        &[("Authorization", &bearer)],
        &json!({"model": "gpt-4o-2024-08-06", "messages": [{"role": "user", "content": format!("curl says {marker}")}]}),
        false,
    );
    assert_eq!(openai.status, 200, "{}", openai.body);
    let anthropic = curl_llm(
        &mock.url("/v1/messages"),
        &[("x-api-key", &keys.anthropic), ("anthropic-version", "2023-06-01")],
        &json!({"model": "claude-3-5-haiku-latest", "max_tokens": 300, "stream": true,
                "messages": [{"role": "user", "content": format!("stream about {marker}")}]}),
        true,
    );
    assert_eq!(anthropic.status, 200, "{}", anthropic.body);
    assert!(anthropic.body.contains("event: message_stop"), "{}", anthropic.body);
    let ledger = mock.wait_ledger(2, WAIT);
    let pids = [openai.pid, anthropic.pid];
    wait_for_calls(&rx, &ledger, &pids, &mock, WAIT);
    rx.stop();
    let spans = rx.spans();
    assert_calls(&spans, &ledger, &pids, &mock);
    for (pid, e) in [(openai.pid, &ledger[0]), (anthropic.pid, &ledger[1])] {
        let mine = spans.iter().filter(|s| s.pid() == Some(pid) && is_genai(s)).count();
        assert_eq!(mine, 1, "the curl process of {} made its span: {}", e.describe(), describe_ledger(&ledger));
    }
    assert_genai_metrics(&rx, &ledger, &pids, &mock);
    assert_not_exported(&rx, &secrets(&marker, &ledger, &keys));
}

/// (3) Ollama over plain HTTP: a streamed `/api/chat` (NDJSON, stream by
/// default) from curl; `/api/generate` with `"stream": false`, a streamed
/// `/api/generate`, `/api/embed` and a 429 without an error type from Python.
#[test]
fn ollama_over_plain_http() {
    if !require_root() {
        return;
    }
    let mock = MockLlm::start(false);
    let mut rx = genai_receiver(mock.port, false, &[]);
    let marker = unique_token("llmollama");
    let chat = curl_llm(
        &mock.url("/api/chat"),
        &[],
        &json!({"model": "llama3.2", "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": format!("why is {marker} blue?")}]}),
        true,
    );
    assert_eq!(chat.status, 200, "{}", chat.body);
    assert!(chat.body.lines().count() > 2 && chat.body.contains("\"done\": true"), "{}", chat.body);
    mock.wait_ledger(1, WAIT);
    let calls = vec![
        LlmCall::new(
            "generate",
            "/api/generate",
            json!({"model": "qwen2.5:0.5b", "prompt": "Why @MARKER@?", "stream": false, "options": {"num_predict": 4}}),
        ),
        LlmCall::new(
            "generate-stream",
            "/api/generate",
            json!({"model": "gemma3:1b", "prompt": "Tell me about @MARKER@", "system": "be brief", "stream": true}),
        ),
        LlmCall::new("embed", "/api/embed", json!({"model": "all-minilm", "input": ["@MARKER@ one", "two words"]})),
        LlmCall::new(
            "busy",
            "/api/chat",
            json!({"model": "rate-limited", "stream": false, "messages": [{"role": "user", "content": "@MARKER@"}]}),
        ),
    ];
    let run = run_llm_client(mock.port, false, &marker, &calls);
    assert_eq!(run.results.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 200, 429]);
    let ledger = mock.wait_ledger(1 + calls.len(), WAIT);
    assert!(!ledger[1].stream, "\"stream\": false is honoured");
    assert!(ledger[2].stream && ledger[0].stream, "Ollama streams by default and when asked");
    assert_eq!(ledger[4].error_type, None, "Ollama's error body has no type: error.type is the status code");
    let pids = [chat.pid, run.pid];
    wait_for_calls(&rx, &ledger, &pids, &mock, WAIT);
    rx.stop();
    assert_calls(&rx.spans(), &ledger, &pids, &mock);
    assert_genai_metrics(&rx, &ledger, &pids, &mock);
    let mut secrets: Vec<String> = ledger.iter().filter_map(|e| e.completion_marker.clone()).collect();
    secrets.push(marker);
    assert_not_exported(&rx, &secrets);
}

/// (4) The privacy check can fail: with `capture_content` on, the prompt's
/// marker and a completion's marker DO reach the exported bytes (the API
/// keys still do not: they are headers and query strings, not content).
#[test]
fn content_is_exported_only_when_asked() {
    if !require_root() {
        return;
    }
    let mock = MockLlm::start(true);
    let mut rx = genai_receiver(mock.port, true, &[]);
    let keys = Keys::new();
    let marker = unique_token("llmcaptured");
    let bearer = format!("Bearer {}", keys.openai);
    let calls = vec![
        LlmCall::new(
            "chat",
            "/v1/chat/completions",
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Remember @MARKER@ please"}]}),
        )
        .header("Authorization", &bearer),
        LlmCall::new(
            "stream",
            "/v1/messages",
            json!({"model": "claude-haiku-4-5", "max_tokens": 256, "stream": true,
                   "messages": [{"role": "user", "content": "And @MARKER@ too"}]}),
        )
        .header("x-api-key", &keys.anthropic)
        .header("anthropic-version", "2023-06-01"),
    ];
    let run = run_llm_client(mock.port, true, &marker, &calls);
    assert!(run.results.iter().all(|r| r.status == 200));
    let ledger = mock.wait_ledger(calls.len(), WAIT);
    wait_for_calls(&rx, &ledger, &[run.pid], &mock, WAIT);
    rx.stop();
    assert_calls(&rx.spans(), &ledger, &[run.pid], &mock);
    assert!(rx.raw_contains(marker.as_bytes()), "capture_content: the prompt's marker is exported");
    let completion = ledger[0].completion_marker.clone().expect("a completion marker");
    assert!(
        rx.raw_contains(completion.as_bytes()),
        "capture_content: the completion's marker {completion} is exported"
    );
    for key in keys.all() {
        assert!(!rx.raw_contains(key.as_bytes()), "API key {key} exported with capture_content");
    }
}

/// (5) A user-defined provider from the config: `/gateway/chat` (OpenAI-shaped
/// bodies) reported as provider `my-gateway`, stream and not.
#[test]
fn user_defined_provider() {
    if !require_root() {
        return;
    }
    let mock = MockLlm::start(true);
    let mut rx = genai_receiver(mock.port, false, &[GATEWAY_PROVIDER]);
    let marker = unique_token("llmgateway");
    let calls = vec![
        LlmCall::new(
            "gateway",
            "/gateway/chat",
            json!({"model": "house-model", "max_tokens": 9, "messages": [{"role": "user", "content": "gateway @MARKER@"}]}),
        ),
        LlmCall::new(
            "gateway-stream",
            "/gateway/chat",
            json!({"model": "house-model-large", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "@MARKER@"}]}),
        ),
    ];
    let run = run_llm_client(mock.port, true, &marker, &calls);
    assert!(run.results.iter().all(|r| r.status == 200));
    let ledger = mock.wait_ledger(calls.len(), WAIT);
    assert!(ledger.iter().all(|e| e.provider.as_deref() == Some("my-gateway")));
    wait_for_calls(&rx, &ledger, &[run.pid], &mock, WAIT);
    rx.stop();
    assert_calls(&rx.spans(), &ledger, &[run.pid], &mock);
    assert_genai_metrics(&rx, &ledger, &[run.pid], &mock);
    let mut secrets: Vec<String> = ledger.iter().filter_map(|e| e.completion_marker.clone()).collect();
    secrets.push(marker);
    assert_not_exported(&rx, &secrets);
}
