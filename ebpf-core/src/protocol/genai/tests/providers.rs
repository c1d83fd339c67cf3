//! Each built-in family, non-streaming and streaming, on documented bodies.

use super::{call, call_with, catalog, exchange, fixture};

const JSON: Option<&str> = Some("application/json");
const SSE: Option<&str> = Some("text/event-stream; charset=utf-8");

#[test]
fn openai_chat_completion() {
    let c =
        call("/v1/chat/completions", fixture!("openai_chat_request.json"), fixture!("openai_chat_response.json"), JSON);
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("openai", "chat"));
    assert_eq!(c.request_model.as_deref(), Some("gpt-4.1"));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4.1-2025-04-14"));
    assert_eq!(c.response_id.as_deref(), Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"));
    assert!(!c.stream);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(1219), Some(10)));
    assert_eq!((c.cache_read_input_tokens, c.reasoning_output_tokens), (Some(1024), Some(0)));
    assert_eq!(c.cache_creation_input_tokens, None);
    assert_eq!(c.finish_reasons, ["stop"]);
    assert_eq!(c.error_type, None);
    assert_eq!(c.request_max_tokens, Some(256));
    assert_eq!((c.request_temperature, c.request_top_p), (Some(0.2), Some(0.9)));
    assert_eq!(c.request_seed, Some(42));
    assert_eq!((c.request_frequency_penalty, c.request_presence_penalty), (Some(0.5), Some(0.25)));
    assert_eq!(c.request_stop_sequences, ["\n\n"]);
    assert_eq!(c.request_choice_count, Some(1));
    assert_eq!(c.problem, None);
}

#[test]
fn openai_chat_stream_with_usage_chunk() {
    let c = call(
        "/v1/chat/completions",
        fixture!("openai_chat_stream_request.json"),
        fixture!("openai_chat_stream.sse"),
        SSE,
    );
    assert!(c.stream);
    assert_eq!(c.request_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(c.response_id.as_deref(), Some("chatcmpl-123"));
    assert_eq!((c.input_tokens, c.output_tokens, c.cache_read_input_tokens), (Some(9), Some(12), Some(0)));
    assert_eq!(c.finish_reasons, ["stop"]);
    assert_eq!(c.problem, None);
}

#[test]
fn openai_responses_api_plain_and_streamed() {
    let c = call(
        "/v1/responses",
        fixture!("openai_responses_request.json"),
        fixture!("openai_responses_response.json"),
        JSON,
    );
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("openai", "chat"));
    assert_eq!(c.request_model.as_deref(), Some("o4-mini"));
    assert_eq!(c.response_model.as_deref(), Some("o4-mini-2025-04-16"));
    assert_eq!(c.response_id.as_deref(), Some("resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(1536), Some(300)));
    assert_eq!((c.cache_read_input_tokens, c.reasoning_output_tokens), (Some(1024), Some(192)));
    assert_eq!(c.request_max_tokens, Some(2048));
    assert!(c.finish_reasons.is_empty());
    assert_eq!((c.error_type, c.problem), (None, None));

    let c = call(
        "/v1/responses",
        br#"{"model":"gpt-4.1","input":"hi","stream":true}"#,
        fixture!("openai_responses_stream.sse"),
        SSE,
    );
    assert!(c.stream);
    assert_eq!(c.response_model.as_deref(), Some("gpt-4.1-2025-04-14"));
    assert_eq!(c.response_id.as_deref(), Some("resp_67c9fdcecf488190bdd9a0409de3a1ec"));
    assert_eq!((c.input_tokens, c.output_tokens, c.reasoning_output_tokens), (Some(37), Some(11), Some(0)));
    assert_eq!(c.problem, None);
}

#[test]
fn openai_embeddings_and_legacy_completions() {
    let c = call(
        "/v1/embeddings",
        fixture!("openai_embeddings_request.json"),
        fixture!("openai_embeddings_response.json"),
        JSON,
    );
    assert_eq!(c.operation, "embeddings");
    assert_eq!(c.request_model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!(c.response_model.as_deref(), Some("text-embedding-3-small"));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(8), None));
    assert_eq!(c.problem, None);

    let response = br#"{"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":"x","index":0,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
    let c = call("/v1/completions", br#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say"}"#, response, JSON);
    assert_eq!(c.operation, "text_completion");
    assert_eq!((c.input_tokens, c.output_tokens), (Some(5), Some(7)));
    assert_eq!(c.finish_reasons, ["length"]);
}

#[test]
fn openai_compatible_servers_behind_a_path_prefix() {
    // vLLM / LiteLLM style deployments mounted under a prefix.
    let c = call(
        "/proxy/team-a/v1/chat/completions",
        fixture!("openai_chat_request.json"),
        fixture!("openai_chat_response.json"),
        JSON,
    );
    assert_eq!((c.provider.as_str(), c.input_tokens), ("openai", Some(1219)));
}

#[test]
fn azure_openai_deployment_is_the_request_model() {
    let catalog = catalog();
    let target = "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21";
    let request = br#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":50}"#;
    let c = call_with(
        &catalog,
        target,
        "myres.openai.azure.com",
        exchange(request, fixture!("openai_chat_response.json"), JSON, 200),
    );
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("azure.ai.openai", "chat"));
    assert_eq!(c.request_model.as_deref(), Some("my-gpt4o"));
    assert_eq!(c.response_model.as_deref(), Some("gpt-4.1-2025-04-14"));
    assert_eq!(c.request_max_tokens, Some(50));
    assert_eq!(c.input_tokens, Some(1219));
}

#[test]
fn host_specific_openai_compatible_providers() {
    let catalog = catalog();
    let bodies = exchange(fixture!("openai_chat_request.json"), fixture!("openai_chat_response.json"), JSON, 200);
    let c = call_with(&catalog, "/chat/completions", "api.deepseek.com", bodies);
    assert_eq!(c.provider, "deepseek");
    assert_eq!(c.cache_read_input_tokens, Some(1024));
    let c = call_with(&catalog, "/openai/v1/chat/completions", "API.GROQ.COM:443", bodies);
    assert_eq!(c.provider, "groq");
    let c = call_with(&catalog, "/v1/chat/completions", "api.mistral.ai", bodies);
    assert_eq!((c.provider.as_str(), c.input_tokens), ("mistral_ai", Some(1219)));
    let c = call_with(&catalog, "/v1/chat/completions", "localhost:8000", bodies);
    assert_eq!(c.provider, "openai");
}

#[test]
fn anthropic_message_counts_cached_input() {
    let c = call("/v1/messages", fixture!("anthropic_request.json"), fixture!("anthropic_response.json"), JSON);
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("anthropic", "chat"));
    assert_eq!(c.request_model.as_deref(), Some("claude-sonnet-4-20250514"));
    assert_eq!(c.response_model.as_deref(), Some("claude-sonnet-4-20250514"));
    assert_eq!(c.response_id.as_deref(), Some("msg_013Zva2CMHLNnXjNJJKqJ2EF"));
    assert_eq!(c.input_tokens, Some(21 + 188 + 1500));
    assert_eq!(c.output_tokens, Some(12));
    assert_eq!((c.cache_read_input_tokens, c.cache_creation_input_tokens), (Some(1500), Some(188)));
    assert_eq!(c.finish_reasons, ["end_turn"]);
    assert_eq!((c.request_max_tokens, c.request_temperature, c.request_top_k), (Some(1024), Some(0.7), Some(40.0)));
    assert_eq!(c.request_stop_sequences, ["END"]);
    assert!(!c.stream);
    assert_eq!(c.problem, None);
}

#[test]
fn anthropic_stream_merges_message_start_and_delta() {
    let c = call("/v1/messages", fixture!("anthropic_stream_request.json"), fixture!("anthropic_stream.sse"), SSE);
    assert!(c.stream);
    assert_eq!(c.response_model.as_deref(), Some("claude-sonnet-4-20250514"));
    assert_eq!(c.response_id.as_deref(), Some("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"));
    assert_eq!(c.input_tokens, Some(25 + 2048));
    assert_eq!(c.output_tokens, Some(15), "message_delta's count replaces message_start's");
    assert_eq!((c.cache_read_input_tokens, c.cache_creation_input_tokens), (Some(2048), Some(0)));
    assert_eq!(c.finish_reasons, ["end_turn"]);
    assert_eq!(c.problem, None);
}

#[test]
fn anthropic_error_event_mid_stream() {
    let mut body = fixture!("anthropic_stream.sse")[..400].to_vec();
    let cut_at = body.windows(2).rposition(|w| w == b"\n\n").expect("an event ends") + 2;
    body.truncate(cut_at);
    body.extend_from_slice(
        b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
    );
    let c = call("/v1/messages", fixture!("anthropic_stream_request.json"), &body, SSE);
    assert_eq!(c.error_type.as_deref(), Some("overloaded_error"));
    assert_eq!(c.input_tokens, Some(2073));
}

#[test]
fn gemini_generate_content_takes_the_model_from_the_path() {
    let c = call(
        "/v1beta/models/gemini-2.5-flash:generateContent",
        fixture!("gemini_request.json"),
        fixture!("gemini_response.json"),
        JSON,
    );
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("gcp.gemini", "generate_content"));
    assert_eq!(c.request_model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(c.response_model.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(c.response_id.as_deref(), Some("mCLaaN_QA4eOz7IPu7r_qA8"));
    assert_eq!(c.input_tokens, Some(1200), "promptTokenCount already includes cached content");
    assert_eq!(c.output_tokens, Some(150 + 300), "thinking tokens are output tokens");
    assert_eq!((c.cache_read_input_tokens, c.reasoning_output_tokens), (Some(1024), Some(300)));
    assert_eq!(c.finish_reasons, ["STOP"]);
    assert_eq!((c.request_max_tokens, c.request_temperature, c.request_top_p), (Some(800), Some(0.9), Some(0.95)));
    assert_eq!((c.request_top_k, c.request_seed, c.request_choice_count), (Some(40.0), Some(7), Some(1)));
    assert_eq!(c.request_stop_sequences, ["Title"]);
    assert!(!c.stream);
    assert_eq!(c.problem, None);
}

#[test]
fn gemini_streams_sse_and_json_array() {
    let c = call(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        fixture!("gemini_request.json"),
        fixture!("gemini_stream.sse"),
        SSE,
    );
    assert!(c.stream);
    assert_eq!(c.request_model.as_deref(), Some("gemini-2.0-flash"));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(10), Some(25)));
    assert_eq!(c.finish_reasons, ["STOP"]);
    assert_eq!(c.response_id.as_deref(), Some("Ok3aaLmBL8S1z7IP6cOnmQ8"));

    let c = call(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        fixture!("gemini_request.json"),
        fixture!("gemini_stream_array.json"),
        JSON,
    );
    assert!(c.stream);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(4), Some(2)));
    assert_eq!(c.finish_reasons, ["MAX_TOKENS"]);
    assert_eq!(c.response_model.as_deref(), Some("gemini-2.0-flash"));
    assert_eq!(c.problem, None);
}

#[test]
fn gemini_embeddings_and_vertex() {
    let c = call(
        "/v1beta/models/text-embedding-004:embedContent",
        fixture!("gemini_embed_request.json"),
        fixture!("gemini_embed_response.json"),
        JSON,
    );
    assert_eq!((c.operation.as_str(), c.request_model.as_deref()), ("embeddings", Some("text-embedding-004")));
    assert_eq!((c.input_tokens, c.problem), (None, None));

    let c = call(
        "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent",
        fixture!("gemini_request.json"),
        fixture!("gemini_response.json"),
        JSON,
    );
    assert_eq!((c.provider.as_str(), c.request_model.as_deref()), ("gcp.vertex_ai", Some("gemini-2.5-flash")));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(1200), Some(450)));
}

#[test]
fn ollama_chat_streams_by_default() {
    let c = call(
        "/api/chat",
        fixture!("ollama_chat_request.json"),
        fixture!("ollama_chat_stream.ndjson"),
        Some("application/x-ndjson"),
    );
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("ollama", "chat"));
    assert!(c.stream);
    assert_eq!(c.request_model.as_deref(), Some("llama3.2"));
    assert_eq!(c.response_model.as_deref(), Some("llama3.2"));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(26), Some(282)));
    assert_eq!(c.finish_reasons, ["stop"]);
    assert_eq!((c.request_max_tokens, c.request_temperature, c.request_seed), (Some(128), Some(0.6), Some(3)));
    assert_eq!((c.request_top_k, c.request_stop_sequences.clone()), (Some(20.0), vec!["\n".to_string()]));
    assert_eq!(c.problem, None);

    // No Content-Type: NDJSON is told from JSON by its lines.
    let c = call("/api/chat", fixture!("ollama_chat_request.json"), fixture!("ollama_chat_stream.ndjson"), None);
    assert_eq!((c.input_tokens, c.output_tokens), (Some(26), Some(282)));
}

#[test]
fn ollama_generate_without_stream_and_embed() {
    let c = call(
        "/api/generate",
        fixture!("ollama_generate_request.json"),
        fixture!("ollama_generate_response.json"),
        JSON,
    );
    assert_eq!(c.operation, "text_completion");
    assert!(!c.stream, "\"stream\": false overrides the endpoint's default");
    assert_eq!((c.input_tokens, c.output_tokens), (Some(26), Some(290)));
    assert_eq!(c.finish_reasons, ["length"]);

    let c = call("/api/embed", fixture!("ollama_embed_request.json"), fixture!("ollama_embed_response.json"), JSON);
    assert_eq!((c.operation.as_str(), c.input_tokens, c.output_tokens), ("embeddings", Some(8), None));
    assert!(!c.stream);
}

#[test]
fn rate_limit_errors_name_the_provider_code() {
    for (target, body, expected) in [
        ("/v1/chat/completions", fixture!("openai_error_429.json"), "rate_limit_exceeded"),
        ("/v1/messages", fixture!("anthropic_error_429.json"), "rate_limit_error"),
        ("/v1beta/models/gemini-2.0-flash:generateContent", fixture!("gemini_error_429.json"), "RESOURCE_EXHAUSTED"),
    ] {
        let c = call_with(&catalog(), target, "h", exchange(br#"{"model":"m"}"#, body, JSON, 429));
        assert_eq!(c.error_type.as_deref(), Some(expected), "{target}");
        assert_eq!((c.input_tokens, c.output_tokens), (None, None));
        assert_eq!(c.problem, None, "an error body without usage is not a problem");
    }
    // An OpenAI error whose code is null falls back to its type.
    let body = br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
    let c = call_with(&catalog(), "/v1/chat/completions", "h", exchange(b"{}", body, JSON, 400));
    assert_eq!(c.error_type.as_deref(), Some("invalid_request_error"));
}
