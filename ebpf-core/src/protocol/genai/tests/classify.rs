//! Which requests are LLM calls, and the prefixes the kernel watches for.

use super::catalog;

#[test]
fn positive_cases() {
    let catalog = catalog();
    for (target, host, provider, operation) in [
        ("/v1/chat/completions", "api.openai.com", "openai", "chat"),
        ("/v1/chat/completions?api-key=sk-123", "localhost:8000", "openai", "chat"),
        ("http://api.openai.com/v1/embeddings", "api.openai.com", "openai", "embeddings"),
        ("/v1/responses", "api.openai.com", "openai", "chat"),
        ("/litellm/v1/completions", "gw", "openai", "text_completion"),
        ("/v1/messages", "api.anthropic.com", "anthropic", "chat"),
        (
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key=AIza",
            "g",
            "gcp.gemini",
            "generate_content",
        ),
        ("/v1/models/gemini-1.5-pro:embedContent", "g", "gcp.gemini", "embeddings"),
        ("/api/generate", "localhost:11434", "ollama", "text_completion"),
        ("/api/embeddings", "localhost:11434", "ollama", "embeddings"),
        ("/models/chat/completions", "x.services.ai.azure.com", "azure.ai.inference", "chat"),
    ] {
        let m = catalog.classify("POST", target, Some(host)).unwrap_or_else(|| panic!("{target}"));
        assert_eq!((m.provider_name(&catalog), m.operation(&catalog)), (provider, operation), "{target}");
    }
}

#[test]
fn negative_cases() {
    let catalog = catalog();
    for (method, target) in [
        ("GET", "/v1/chat/completions"),
        ("PUT", "/v1/chat/completions"),
        ("post", "/v1/chat/completions"),
        ("POST", "/v1/chat/completion"),
        ("POST", "/v1/chat/completions/"),
        ("POST", "/v1/chat/completions/extra"),
        ("POST", "/api/v2/chat"),
        ("POST", "/v1beta/models/gemini:countTokens"),
        ("POST", "/v1beta/models/:generateContent"),
        ("POST", "/"),
        ("POST", ""),
        ("POST", "*"),
        ("POST", "/index.html?next=/v1/chat/completions"),
        ("POST", "/search#/v1/messages"),
        ("POST", "http://example.com"),
    ] {
        assert_eq!(catalog.classify(method, target, Some("h")), None, "{method} {target}");
    }
}

#[test]
fn the_query_string_never_reaches_the_match() {
    let catalog = catalog();
    let m = catalog.classify("POST", "/v1beta/models/gemini-pro:generateContent?key=AIzaSECRET", Some("g")).unwrap();
    assert_eq!(m.path_model(), Some("gemini-pro"));
    assert!(!format!("{m:?}").contains("SECRET"));
    let c = catalog.extract(&m, &Default::default());
    assert!(!format!("{c:?}").contains("SECRET"));
}

#[test]
fn kernel_prefixes_cover_every_literal_start() {
    let catalog = catalog();
    let prefixes: Vec<String> =
        catalog.kernel_prefixes(64, 64).into_iter().map(|p| String::from_utf8(p).unwrap()).collect();
    for expected in [
        "POST /v1/chat/completions",
        "POST /v1/completions",
        "POST /v1/responses",
        "POST /v1/embeddings",
        "POST /v1/messages",
        "POST /v1beta/models/",
        "POST /v1/models/",
        "POST /v1/projects/",
        "POST /openai/deployments/",
        "POST /api/chat",
        "POST /api/embed",
        "POST /api/generate",
        "POST /chat/completions",
    ] {
        assert!(prefixes.iter().any(|p| p == expected), "{expected} in {prefixes:?}");
    }
    assert!(!prefixes.iter().any(|p| p == "POST /api/embeddings"), "covered by POST /api/embed");
    let mut sorted = prefixes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, prefixes, "sorted, distinct");
    for (i, a) in prefixes.iter().enumerate() {
        assert!(!prefixes.iter().enumerate().any(|(j, b)| i != j && a.starts_with(b.as_str())), "{a} is covered");
    }
}

#[test]
fn kernel_prefixes_merge_and_truncate_within_limits() {
    let catalog = catalog();
    let all = catalog.kernel_prefixes(64, 64);
    for (max, max_len) in [(8, 16), (4, 64), (2, 10), (16, 7)] {
        let prefixes = catalog.kernel_prefixes(max, max_len);
        assert!(!prefixes.is_empty() && prefixes.len() <= max, "{max}: {prefixes:?}");
        for p in &prefixes {
            assert!(p.len() <= max_len && p.len() >= 7 && p.starts_with(b"POST /"), "{p:?}");
        }
        // Merging only shortens; what cannot merge keeps the entries that
        // cover the most endpoints, and "/v1..." covers the most.
        assert!(prefixes.iter().any(|p| b"POST /v1/chat/completions".starts_with(p)), "{max},{max_len}: {prefixes:?}");
        let covered = all.iter().filter(|full| prefixes.iter().any(|p| full.starts_with(p))).count();
        assert!(covered * 3 >= all.len(), "{max},{max_len}: {covered} of {}", all.len());
    }
    let short = catalog.kernel_prefixes(64, 12);
    assert!(short.iter().any(|p| p == b"POST /v1/cha"));
    assert!(catalog.kernel_prefixes(0, 64).is_empty());
    assert!(catalog.kernel_prefixes(8, 6).is_empty());
}
