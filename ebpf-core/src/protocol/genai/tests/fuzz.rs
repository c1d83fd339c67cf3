//! `extract` on random and mutated bytes, cut anywhere, never panics.

use super::{capturing_catalog, fixture, gzip};
use crate::protocol::genai::{BodyBytes, Catalog, ExchangeBodies};

const SEEDS: [&[u8]; 9] = [
    fixture!("openai_chat_response.json"),
    fixture!("openai_chat_stream.sse"),
    fixture!("openai_responses_stream.sse"),
    fixture!("anthropic_stream.sse"),
    fixture!("anthropic_request.json"),
    fixture!("gemini_stream_array.json"),
    fixture!("gemini_stream.sse"),
    fixture!("ollama_chat_stream.ndjson"),
    fixture!("anthropic_stream.sse.br"),
];

fn mutate(rng: &mut fastrand::Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.usize(1..8) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.usize(..bytes.len());
        match rng.u8(..5) {
            0 => bytes[at] = rng.u8(..),
            1 => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, *rng.choice(b"{}[]\":,\\\n ").unwrap_or(&b'x')),
            3 => bytes.truncate(at),
            _ => {
                let end = rng.usize(at..=bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(at..at, piece);
            }
        }
    }
    bytes
}

/// `bytes` kept as a head and tail around a random hole, or cut.
fn keep<'a>(rng: &mut fastrand::Rng, bytes: &'a [u8]) -> BodyBytes<'a> {
    let len = bytes.len();
    let head = rng.usize(..=len);
    let tail_start = rng.usize(head..=len);
    BodyBytes {
        head: &bytes[..head],
        tail: &bytes[tail_start..],
        skipped: (tail_start - head) as u64,
        complete: rng.bool(),
    }
}

#[test]
fn random_and_mutated_bodies_never_panic() {
    let catalogs = [super::catalog(), capturing_catalog()];
    let targets = [
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
        "/v1beta/models/g:streamGenerateContent",
        "/api/chat",
        "/api/generate",
        "/openai/deployments/d/embeddings",
    ];
    let types =
        [None, Some("text/event-stream"), Some("application/json"), Some("application/x-ndjson"), Some("text/html")];
    let encodings = [None, None, None, Some("gzip"), Some("br"), Some("deflate"), Some("zstd")];
    let mut rng = fastrand::Rng::with_seed(0x6e6a_1234);
    for round in 0..3000 {
        let catalog: &Catalog = &catalogs[round % 2];
        let seed = SEEDS[rng.usize(..SEEDS.len())];
        let mut response = if rng.u8(..10) == 0 {
            (0..rng.usize(..2048)).map(|_| rng.u8(..)).collect()
        } else {
            mutate(&mut rng, seed)
        };
        let encoding = encodings[rng.usize(..encodings.len())];
        if encoding == Some("gzip") && rng.bool() {
            response = gzip(&response);
            if rng.bool() {
                response = mutate(&mut rng, &response);
            }
        }
        let request_seed = SEEDS[rng.usize(..SEEDS.len())];
        let request = mutate(&mut rng, request_seed);
        let target = targets[rng.usize(..targets.len())];
        let m = catalog.classify("POST", target, Some("h")).expect("an LLM path");
        let bodies = ExchangeBodies {
            request: keep(&mut rng, &request),
            response: keep(&mut rng, &response),
            request_content_encoding: encodings[rng.usize(..encodings.len())],
            response_content_type: types[rng.usize(..types.len())],
            response_content_encoding: encoding,
            status: if rng.u8(..8) == 0 { None } else { Some(rng.u16(100..600)) },
        };
        let call = catalog.extract(&m, &bodies);
        assert!(!call.provider.is_empty());
        for content in [&call.input_messages, &call.output_messages, &call.system_instructions].into_iter().flatten() {
            assert!(content.len() <= crate::protocol::genai::MAX_CONTENT_BYTES);
        }
    }
}

#[test]
fn deep_nesting_and_pathological_bytes() {
    let catalog = capturing_catalog();
    let m = catalog.classify("POST", "/v1/chat/completions", None).unwrap();
    let deep = [vec![b'['; 100_000], vec![b']'; 100_000]].concat();
    let quotes = b"{\"a\": \"".iter().chain(&[b'\\'; 50_001]).chain(b"\"}").copied().collect::<Vec<u8>>();
    for body in [&deep[..], &quotes, b"data: {\"x\":", b"\x1f\x8b\x08\x00", b"", b"\xff\xfe{"] {
        for (head, tail) in [(body.len() / 2, body.len() / 3), (body.len(), 0)] {
            let kept = BodyBytes { head: &body[..head], tail: &body[body.len() - tail..], skipped: 7, complete: true };
            let bodies = ExchangeBodies { request: kept, response: kept, status: Some(200), ..Default::default() };
            let _ = catalog.extract(&m, &bodies);
        }
    }
}
