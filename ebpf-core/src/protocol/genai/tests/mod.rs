//! GenAI extraction tests on provider-documented bodies (`../fixtures`).

mod classify;
mod config;
mod degraded;
mod fuzz;
mod metrics;
mod privacy;
mod providers;

use super::{BodyBytes, Catalog, ExchangeBodies, GenAiCall, GenAiConfig};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../fixtures/", $name)) as &[u8]
    };
}
pub(crate) use fixture;

fn catalog() -> Catalog {
    Catalog::new(&GenAiConfig::default()).expect("default config is valid")
}

fn capturing_catalog() -> Catalog {
    Catalog::new(&GenAiConfig { capture_content: true, ..GenAiConfig::default() }).expect("valid")
}

fn whole(bytes: &[u8]) -> BodyBytes<'_> {
    BodyBytes { head: bytes, tail: &[], skipped: 0, complete: true }
}

/// A response as kept when only `head_len` first and `tail_len` last bytes fit.
fn kept<'a>(bytes: &'a [u8], head_len: usize, tail_len: usize) -> BodyBytes<'a> {
    assert!(head_len + tail_len < bytes.len());
    BodyBytes {
        head: &bytes[..head_len],
        tail: &bytes[bytes.len() - tail_len..],
        skipped: (bytes.len() - head_len - tail_len) as u64,
        complete: true,
    }
}

/// A request to `target` with these bodies, classified then extracted.
fn call_with(catalog: &Catalog, target: &str, host: &str, bodies: ExchangeBodies<'_>) -> GenAiCall {
    let m = catalog.classify("POST", target, Some(host)).unwrap_or_else(|| panic!("{target} is an LLM call"));
    catalog.extract(&m, &bodies)
}

fn exchange<'a>(
    request: &'a [u8],
    response: &'a [u8],
    content_type: Option<&'a str>,
    status: u16,
) -> ExchangeBodies<'a> {
    ExchangeBodies {
        request: whole(request),
        response: whole(response),
        response_content_type: content_type,
        status: Some(status),
        ..ExchangeBodies::default()
    }
}

fn call(target: &str, request: &[u8], response: &[u8], content_type: Option<&str>) -> GenAiCall {
    call_with(&catalog(), target, "api.example.com", exchange(request, response, content_type, 200))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("in memory");
    encoder.finish().expect("in memory")
}
