//! User providers from configuration, and what the catalog refuses.

use super::{call_with, exchange, fixture};
use crate::protocol::genai::{Catalog, GenAiConfig};

const GATEWAY: &str = r#"{
  "providers": [{
    "name": "my-gateway",
    "hosts": ["llm.internal:*"],
    "endpoints": [{"path": "/gateway/v1/chat", "operation": "chat"}],
    "request": {"model": ["/model"], "stream": ["/stream"], "max_tokens": ["/max_tokens"]},
    "response": {
      "model": ["/model"], "id": ["/id"],
      "input_tokens": ["/usage/prompt_tokens"], "output_tokens": ["/usage/completion_tokens"],
      "finish_reasons": ["/choices/*/finish_reason"], "error_type": ["/error/type"]
    }
  }]
}"#;

fn config(json: &str) -> GenAiConfig {
    serde_json::from_str(json).expect("config parses")
}

#[test]
fn defaults() {
    let c = GenAiConfig::default();
    assert!(c.enabled && !c.capture_content && c.providers.is_empty());
    assert_eq!(c.max_body_bytes, 1 << 20);
    assert_eq!(config("{}"), c);
}

#[test]
fn user_provider_from_json_config() {
    let catalog = Catalog::new(&config(GATEWAY)).expect("valid");
    let request = br#"{"model":"internal-llm-7b","max_tokens":64,"stream":false}"#;
    let c = call_with(
        &catalog,
        "/gateway/v1/chat",
        "llm.internal:8080",
        exchange(request, fixture!("openai_chat_response.json"), None, 200),
    );
    assert_eq!((c.provider.as_str(), c.operation.as_str()), ("my-gateway", "chat"));
    assert_eq!(c.request_model.as_deref(), Some("internal-llm-7b"));
    assert_eq!(c.request_max_tokens, Some(64));
    assert_eq!((c.input_tokens, c.output_tokens), (Some(1219), Some(10)));
    assert_eq!(c.cache_read_input_tokens, None, "not configured");
    assert_eq!(c.finish_reasons, ["stop"]);
    assert!(catalog.classify("POST", "/gateway/v1/chat", Some("elsewhere:8080")).is_none());
    assert!(catalog.classify("POST", "/gateway/v1/chat", None).is_none());
}

#[test]
fn the_yaml_example_parses() {
    let yaml = r#"
providers:
  - name: my-gateway
    hosts: ["llm.internal:*"]
    endpoints:
      - { path: "/gateway/v1/chat", operation: chat }
      - { path: "/gateway/v1/models/{model}/generate", operation: text_completion, stream: true }
    response:
      input_tokens: ["/usage/input_tokens+/usage/cached_tokens"]
"#;
    let parsed: GenAiConfig = serde_yaml_ng::from_str(yaml).expect("yaml parses");
    let catalog = Catalog::new(&parsed).expect("valid");
    let m = catalog.classify("POST", "/gateway/v1/models/tiny/generate", Some("LLM.INTERNAL:1")).unwrap();
    assert_eq!(
        (m.provider_name(&catalog), m.operation(&catalog), m.path_model()),
        ("my-gateway", "text_completion", Some("tiny"))
    );
    let c = catalog.extract(&m, &exchange(b"{}", br#"{"usage":{"input_tokens":3,"cached_tokens":4}}"#, None, 200));
    assert_eq!((c.input_tokens, c.stream), (Some(7), true));
}

#[test]
fn user_providers_win_and_inherit_built_in_field_lists() {
    let json = r#"{"providers": [
        {"name": "openai", "inherit": "openai", "endpoints": [{"path": "/llm/chat", "operation": "chat"}]},
        {"name": "corp-proxy", "inherit": "openai", "hosts": ["proxy.corp"]}
    ]}"#;
    let catalog = Catalog::new(&config(json)).expect("valid");
    let bodies = exchange(fixture!("openai_chat_request.json"), fixture!("openai_chat_response.json"), None, 200);
    let c = call_with(&catalog, "/v1/chat/completions", "proxy.corp", bodies);
    assert_eq!(
        (c.provider.as_str(), c.input_tokens, c.cache_read_input_tokens),
        ("corp-proxy", Some(1219), Some(1024))
    );
    let c = call_with(&catalog, "/v1/chat/completions", "api.openai.com", bodies);
    assert_eq!(c.provider, "openai");
    // A user provider named like a built-in one inherits the built-in one, not itself.
    let c = call_with(&catalog, "/llm/chat", "x", bodies);
    assert_eq!((c.provider.as_str(), c.output_tokens), ("openai", Some(10)));
}

#[test]
fn invalid_user_providers_are_refused_with_their_name_and_field() {
    let provider = |body: &str| format!(r#"{{"providers": [{{"name": "bad-one", {body}}}]}}"#);
    let endpoint = r#""endpoints": [{"path": "/x/chat", "operation": "chat"}]"#;
    for (body, expected) in [
        (
            format!(r#"{endpoint}, "response": {{"model": ["model"]}}"#),
            "response.model: JSON pointer \"model\" must start with '/'",
        ),
        (format!(r#"{endpoint}, "request": {{"max_tokens": ["/a~9"]}}"#), "request.max_tokens"),
        (format!(r#"{endpoint}, "response": {{"id": ["/a+/b"]}}"#), "response.id"),
        (r#""endpoints": [{"path": "/x//chat", "operation": "chat"}]"#.to_string(), "is empty"),
        (r#""endpoints": [{"path": "x/chat", "operation": "chat"}]"#.to_string(), "must start with '/'"),
        (r#""endpoints": [{"path": "/x/{deployment}", "operation": "chat"}]"#.to_string(), "other than `{model}`"),
        (r#""endpoints": [{"path": "/x/chat", "operation": ""}]"#.to_string(), "operation is empty"),
        (r#""endpoints": []"#.to_string(), "no endpoints"),
        (format!(r#"{endpoint}, "hosts": ["[unclosed"]"#), "hosts"),
        (format!(r#"{endpoint}, "inherit": "nobody""#), "no provider \"nobody\""),
    ] {
        let err = Catalog::new(&config(&provider(&body))).expect_err(&body);
        assert!(err.contains("genai.providers[0] (\"bad-one\")"), "{err}");
        assert!(err.contains(expected), "{body}: {err}");
    }
    let err =
        Catalog::new(&config(r#"{"providers": [{"name": " ", "endpoints": [{"path": "/a", "operation": "chat"}]}]}"#))
            .unwrap_err();
    assert!(err.contains("name is empty"), "{err}");
}

#[test]
fn schema_errors_and_body_size_bounds() {
    assert!(serde_json::from_str::<GenAiConfig>(r#"{"providers": [{"name": "x", "endpoint": []}]}"#).is_err());
    assert!(serde_json::from_str::<GenAiConfig>(r#"{"capture_contents": true}"#).is_err());
    for (size, ok) in [(4095, false), (4096, true), (64 << 20, true), ((64 << 20) + 1, false)] {
        let genai = GenAiConfig { max_body_bytes: size, ..GenAiConfig::default() };
        let result = crate::Config { genai, ..crate::Config::default() }.validate();
        assert_eq!(result.is_ok(), ok, "{size}");
        if let Err(e) = result {
            assert!(e.to_string().contains("genai.max_body_bytes"), "{e}");
        }
    }
}

#[test]
fn catalog_is_shareable() {
    fn send_sync<T: Send + Sync + std::fmt::Debug>() {}
    send_sync::<Catalog>();
}
