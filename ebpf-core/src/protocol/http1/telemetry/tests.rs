//! The HTTP spans, as the semantic conventions want them, through the
//! protocol-neutral span encoder.

use super::*;
use crate::clock::WallClock;
use crate::conntrack::Endpoints;
use crate::process::ProcessIdentity;
use crate::protocol::http1::HttpVersion;
use crate::spans::{to_span, write_span, IdGenerator};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

/// An exchange with its connection, as the tracker reports it.
#[derive(Debug, Clone)]
struct Exchange {
    http: HttpExchange,
    #[allow(dead_code)]
    process: Arc<ProcessIdentity>,
    endpoints: Option<Endpoints>,
    tls: bool,
}

impl Exchange {
    fn facts(&self) -> ConnFacts {
        ConnFacts { endpoints: self.endpoints, tls: self.tls }
    }
}

/// The exchange's span, as a `prost` message.
fn http_span(ex: &Exchange, route: Option<&str>, clock: &WallClock, ids: &mut IdGenerator) -> Span {
    let mut span = None;
    describe_with(&ex.http, &ex.facts(), route, None, &mut |op| span = Some(to_span(op, clock, ids)));
    span.expect("one operation per exchange")
}

/// The exchange's span, encoded directly.
fn write_http_span(
    ex: &Exchange,
    route: Option<&str>,
    clock: &WallClock,
    ids: &mut IdGenerator,
    buf: &mut Vec<u8>,
    scratch: &mut String,
) {
    describe_with(&ex.http, &ex.facts(), route, None, &mut |op| write_span(op, clock, ids, buf, scratch));
}

fn exchange(role: Role, method: &str, target: &str, status: Option<u16>, host: Option<&str>) -> Exchange {
    Exchange {
        http: HttpExchange {
            role,
            method: method.into(),
            target: target.into(),
            version: HttpVersion::Http11,
            host: host.map(Into::into),
            status,
            request_start_ns: 1_000,
            request_end_ns: 1_500,
            response_start_ns: Some(2_000),
            response_end_ns: 101_000,
            request_body_size: 0,
            response_body_size: 12,
            bodies: None,
        },
        process: Arc::new(ProcessIdentity {
            pid: 7,
            service_name: "demo".into(),
            executable_name: "demo".into(),
            executable_path: None,
            ..Default::default()
        }),
        endpoints: Some(Endpoints {
            local: ("127.0.0.1".parse().unwrap(), 8080),
            peer: ("::1".parse().unwrap(), 43210),
        }),
        tls: false,
    }
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn s(v: Option<&Value>) -> &str {
    match v {
        Some(Value::StringValue(s)) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn i(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::IntValue(i)) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

#[test]
fn server_span_follows_semconv() {
    let ex = exchange(Role::Server, "GET", "/users/42?token=secret", Some(200), Some("localhost:8080"));
    let span = http_span(&ex, None, &WallClock::from_offset_ns(10), &mut IdGenerator::new());
    assert_eq!(span.name, "GET");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(s(attr(&span, "http.request.method")), "GET");
    assert_eq!(s(attr(&span, "url.path")), "/users/42");
    assert_eq!(s(attr(&span, "url.scheme")), "http");
    assert_eq!(i(attr(&span, "http.response.status_code")), 200);
    assert_eq!(s(attr(&span, "server.address")), "localhost");
    assert_eq!(i(attr(&span, "server.port")), 8080);
    assert_eq!(s(attr(&span, "client.address")), "::1");
    assert_eq!(i(attr(&span, "network.peer.port")), 43210);
    assert_eq!(s(attr(&span, "network.protocol.version")), "1.1");
    assert!(attr(&span, "error.type").is_none());
    assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (1_010, 101_010));
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.span_id.len(), 8);
    let all = format!("{span:?}");
    assert!(!all.contains("secret"), "query leaked: {all}");
}

#[test]
fn server_5xx_is_error_4xx_is_not() {
    let ids = &mut IdGenerator::new();
    let c = WallClock::new();
    let span = http_span(&exchange(Role::Server, "GET", "/x", Some(500), None), None, &c, ids);
    assert_eq!(s(attr(&span, "error.type")), "500");
    assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Error as i32);
    let span = http_span(&exchange(Role::Server, "GET", "/x", Some(404), None), None, &c, ids);
    assert!(attr(&span, "error.type").is_none());
    assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Unset as i32);
    // No Host header: the local address stands in.
    assert_eq!(s(attr(&span, "server.address")), "127.0.0.1");
}

#[test]
fn client_span_has_url_full_and_4xx_error() {
    let ex = exchange(Role::Client, "POST", "/api?k=v", Some(404), Some("example.test:8080"));
    let span = http_span(&ex, None, &WallClock::new(), &mut IdGenerator::new());
    assert_eq!(span.kind, SpanKind::Client as i32);
    assert_eq!(span.name, "POST");
    assert_eq!(s(attr(&span, "url.full")), "http://example.test:43210/api");
    assert_eq!(s(attr(&span, "server.address")), "example.test");
    assert_eq!(i(attr(&span, "server.port")), 43210);
    assert_eq!(s(attr(&span, "error.type")), "404");
}

#[test]
fn tls_exchanges_are_https() {
    let c = WallClock::new();
    let ids = &mut IdGenerator::new();
    let mut ex = exchange(Role::Server, "GET", "/x?q=1", Some(200), Some("localhost:8443"));
    ex.tls = true;
    let span = http_span(&ex, None, &c, ids);
    assert_eq!(s(attr(&span, "url.scheme")), "https");
    let mut ex = exchange(Role::Client, "GET", "/x?q=1", Some(200), Some("example.test"));
    ex.tls = true;
    let span = http_span(&ex, None, &c, ids);
    assert_eq!(s(attr(&span, "url.full")), "https://example.test:43210/x");
    // The default port of the scheme is left out of url.full, only of its own scheme.
    ex.endpoints.as_mut().unwrap().peer.1 = 443;
    let span = http_span(&ex, None, &c, ids);
    assert_eq!(s(attr(&span, "url.full")), "https://example.test/x");
    assert_eq!(i(attr(&span, "server.port")), 443);
    ex.endpoints.as_mut().unwrap().peer.1 = 80;
    let span = http_span(&ex, None, &c, ids);
    assert_eq!(s(attr(&span, "url.full")), "https://example.test:80/x");
    ex.tls = false;
    let span = http_span(&ex, None, &c, ids);
    assert_eq!(s(attr(&span, "url.full")), "http://example.test/x");
    ex.endpoints.as_mut().unwrap().peer.1 = 443;
    let span = http_span(&ex, None, &c, ids);
    assert_eq!(s(attr(&span, "url.full")), "http://example.test:443/x");
}

#[test]
fn route_names_server_spans_only() {
    let c = WallClock::new();
    let ids = &mut IdGenerator::new();
    let span = http_span(&exchange(Role::Server, "GET", "/users/7", Some(200), None), Some("/users/{id}"), &c, ids);
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(s(attr(&span, "http.route")), "/users/{id}");
    let span = http_span(&exchange(Role::Server, "PURGE", "/users/7", Some(200), None), Some("/users/{id}"), &c, ids);
    assert_eq!(span.name, "HTTP /users/{id}");
    let span = http_span(&exchange(Role::Client, "GET", "/users/7", Some(200), None), Some("/users/{id}"), &c, ids);
    assert_eq!(span.name, "GET");
    assert!(attr(&span, "http.route").is_none());
}

#[test]
fn unknown_method_and_missing_response() {
    let span = http_span(
        &exchange(Role::Server, "PURGE", "/cache", None, None),
        None,
        &WallClock::new(),
        &mut IdGenerator::new(),
    );
    assert_eq!(span.name, "HTTP");
    assert_eq!(s(attr(&span, "http.request.method")), "_OTHER");
    assert_eq!(s(attr(&span, "http.request.method_original")), "PURGE");
    assert_eq!(s(attr(&span, "error.type")), ERROR_NO_RESPONSE);
    assert!(attr(&span, "http.response.status_code").is_none());
}

/// The direct encoding is exactly what prost writes for the same span.
#[test]
fn direct_encoding_matches_prost() {
    use prost::Message;
    let c = WallClock::from_offset_ns(1_700_000_000_000_000_000);
    let mut cases = Vec::new();
    for role in [Role::Server, Role::Client] {
        for (method, target, status, host) in [
            ("GET", "/users/42?token=secret", Some(200), Some("localhost:8080")),
            ("POST", "/api", Some(404), Some("example.test")),
            ("GET", "/x", Some(503), None),
            ("PURGE", "/cache", None, None),
            ("DELETE", "http://h:1/p/q?x", Some(204), Some("[::1]:8080")),
            ("GET", "/", Some(200), Some("::1")),
            ("GET", &"/long".repeat(100), Some(200), Some(&*"h".repeat(200))),
        ] {
            let mut ex = exchange(role, method, target, status, host);
            cases.push(ex.clone());
            ex.tls = true;
            cases.push(ex.clone());
            ex.endpoints.as_mut().unwrap().peer.1 = 443;
            cases.push(ex.clone());
            ex.endpoints = Some(Endpoints {
                local: ("::ffff:10.0.0.1".parse().unwrap(), 80),
                peer: ("2001:db8::7".parse().unwrap(), 80),
            });
            ex.tls = false;
            cases.push(ex.clone());
            ex.endpoints = None;
            cases.push(ex.clone());
            ex.http.request_start_ns = 0;
            ex.http.response_end_ns = 0;
            cases.push(ex);
        }
    }
    let (mut buf, mut scratch) = (Vec::new(), String::new());
    for (i, ex) in cases.iter().enumerate() {
        for route in [None, Some("/users/{id}")] {
            let expected = http_span(ex, route, &c, &mut IdGenerator::with_seed(i as u64)).encode_to_vec();
            buf.clear();
            write_http_span(ex, route, &c, &mut IdGenerator::with_seed(i as u64), &mut buf, &mut scratch);
            assert_eq!(buf, expected, "{ex:?} {route:?}");
        }
    }
}

#[test]
fn paths_and_hosts() {
    assert_eq!(path_of("/a/b?c=d#e"), "/a/b");
    assert_eq!(path_of("http://h:1/p/q?x"), "/p/q");
    assert_eq!(path_of("http://h"), "/");
    assert_eq!(path_of("*"), "*");
    assert_eq!(path_of("/0123456789abcdef/é?x#y"), "/0123456789abcdef/é");
    assert_eq!(path_of("/0123456#89?x"), "/0123456");
    assert_eq!(split_host("h:8080"), ("h", Some(8080)));
    assert_eq!(split_host("[::1]:80"), ("::1", Some(80)));
    assert_eq!(split_host("::1"), ("::1", None));
    assert_eq!(split_host("h"), ("h", None));
    assert_eq!(split_host("h:"), ("h", None));
    assert_eq!(split_host("h:port"), ("h", None));
    assert_eq!(split_host("[::1]"), ("::1", None));
    for host in ["h:8080", "[::1]:80", "::1", "h", "h:", "[::1]", "[::1", "a:b:c", ""] {
        assert_eq!(host_name(host), split_host(host).0, "{host}");
    }
}

#[test]
fn query_start_matches_the_byte_loop() {
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.usize(..40);
        let target: Vec<u8> = (0..len)
            // Mostly path bytes, with '?', '#', their neighbours and high bytes mixed in.
            .map(|_| match rng.u8(..16) {
                0 => b'?',
                1 => b'#',
                2 => b"\x22\x24\x3e\x40"[rng.usize(..4)],
                3 => rng.u8(0x80..),
                _ => rng.u8(b'a'..=b'z'),
            })
            .collect();
        let expected = target.iter().position(|&c| c == b'?' || c == b'#').unwrap_or(len);
        assert_eq!(query_start(&target), expected, "{:?}", target.escape_ascii().to_string());
    }
}

/// An `error.type` value as the text it is exported as.
fn text(v: Option<crate::protocol::Value<'_>>) -> Option<String> {
    v.map(|v| match v {
        crate::protocol::Value::Str(s) => s.to_string(),
        crate::protocol::Value::IntStr(i) => i.to_string(),
        other => panic!("error.type is text: {other:?}"),
    })
}

#[test]
fn methods_and_errors() {
    assert_eq!(known_method("GET"), Some(0));
    assert_eq!(known_method("PATCH"), Some(8));
    assert_eq!(known_method("get"), None);
    assert_eq!(known_method("PURGE"), None);
    assert_eq!(text(error_type(Role::Server, None)).as_deref(), Some(ERROR_NO_RESPONSE));
    assert_eq!(text(error_type(Role::Server, Some(404))), None);
    assert_eq!(text(error_type(Role::Server, Some(503))).as_deref(), Some("503"));
    assert_eq!(text(error_type(Role::Client, Some(404))).as_deref(), Some("404"));
    assert_eq!(text(error_type(Role::Client, Some(302))), None);
}

#[test]
fn server_address_display() {
    assert_eq!(ServerAddress::Name("svc").to_string(), "svc");
    assert_eq!(ServerAddress::Ip("::1".parse().unwrap()).to_string(), "::1");
}
