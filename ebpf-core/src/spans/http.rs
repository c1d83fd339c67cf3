//! One HTTP exchange → one span: SERVER when the traced process answered the
//! request, CLIENT when it made it. Names and attributes follow the HTTP
//! semantic conventions; query strings, header values (but Host) and bodies
//! are never recorded.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};

use crate::clock::WallClock;
use crate::conntrack::Exchange;
use crate::otlp::wire::{self, AttrEncoder, AttrSink};
use crate::protocol::Role;

use super::http_common::{
    client_server, default_port, error_type, known_method, path_of, split_host, url_scheme, ServerAddress, METHOD_OTHER,
};
use super::ids::IdGenerator;

/// `route`: the `http.route` template of a server exchange, when known; it
/// also names the span (`GET /users/{id}`).
pub fn http_span(ex: &Exchange, route: Option<&str>, clock: &WallClock, ids: &mut IdGenerator) -> Span {
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(14);
    let failed = http_attributes(ex, route, &mut attrs);
    let (method, route_part) = span_name(ex, route);
    let (start, end) = span_times(ex, clock);
    Span {
        trace_id: ids.trace_id(),
        span_id: ids.span_id(),
        name: match route_part {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        },
        kind: span_kind(ex) as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs,
        status: Some(if failed {
            Status { code: StatusCode::Error as i32, message: String::new() }
        } else {
            Status::default()
        }),
        ..Default::default()
    }
}

/// What `http_span` builds, encoded straight into `buf` as the fields of an
/// OTLP `Span` message (byte for byte what `prost` writes for `http_span`'s
/// result with the same ids), without allocating. `scratch` holds formatted
/// attribute values.
pub fn write_http_span(
    ex: &Exchange,
    route: Option<&str>,
    clock: &WallClock,
    ids: &mut IdGenerator,
    buf: &mut Vec<u8>,
    scratch: &mut String,
) {
    // Span fields in tag order: trace_id 1, span_id 2, name 5, kind 6,
    // start 7, end 8, attributes 9, status 15.
    wire::len_field(buf, 1, &ids.trace_id_bytes());
    wire::len_field(buf, 2, &ids.span_id_bytes());
    let (method, route_part) = span_name(ex, route);
    match route_part {
        Some(route) => {
            wire::len_prefix(buf, 5, method.len() + 1 + route.len());
            buf.extend_from_slice(method.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(route.as_bytes());
        }
        None => wire::str_field(buf, 5, method),
    }
    wire::varint_field(buf, 6, span_kind(ex) as u64);
    let (start, end) = span_times(ex, clock);
    wire::fixed64_field(buf, 7, start);
    wire::fixed64_field(buf, 8, end);
    let failed = http_attributes(ex, route, &mut AttrEncoder { buf, tag: 9, scratch });
    // Status { code: ERROR } or the empty status.
    if failed {
        buf.extend_from_slice(&[15 << 3 | 2, 2, 3 << 3, StatusCode::Error as u8]);
    } else {
        buf.extend_from_slice(&[15 << 3 | 2, 0]);
    }
}

/// The span name: the method (`HTTP` when not a known one), then the route
/// of a server exchange.
fn span_name<'a>(ex: &'a Exchange, route: Option<&'a str>) -> (&'a str, Option<&'a str>) {
    let http = &ex.http;
    let method = if known_method(&http.method).is_some() { http.method.as_str() } else { "HTTP" };
    (method, route.filter(|_| http.role == Role::Server))
}

fn span_kind(ex: &Exchange) -> SpanKind {
    match ex.http.role {
        Role::Server => SpanKind::Server,
        Role::Client => SpanKind::Client,
    }
}

fn span_times(ex: &Exchange, clock: &WallClock) -> (u64, u64) {
    let http = &ex.http;
    (clock.to_unix_ns(http.request_start_ns), clock.to_unix_ns(http.response_end_ns.max(http.request_start_ns)))
}

/// Writes the span's attributes to `attrs`; true when the exchange failed
/// (`error.type` set, span status ERROR).
fn http_attributes(ex: &Exchange, route: Option<&str>, attrs: &mut impl AttrSink) -> bool {
    let http = &ex.http;
    let known = known_method(&http.method).is_some();
    let path = path_of(&http.target);
    if known {
        attrs.str("http.request.method", http.method.as_str());
    } else {
        attrs.str("http.request.method", METHOD_OTHER);
        attrs.str("http.request.method_original", http.method.as_str());
    }
    attrs.str("network.protocol.version", http.version.as_str());
    if let Some(status) = http.status {
        attrs.int("http.response.status_code", i64::from(status));
    }
    let host = http.host.as_deref().map(split_host);
    let scheme = url_scheme(ex);

    match http.role {
        Role::Server => {
            attrs.str("url.path", path);
            attrs.str("url.scheme", scheme);
            if let Some(route) = route {
                attrs.str("http.route", route);
            }
            if let Some(ep) = &ex.endpoints {
                match host {
                    Some((name, _)) => attrs.str("server.address", name),
                    None => attrs.ip("server.address", ep.local.0),
                }
                attrs.int("server.port", i64::from(ep.local.1));
                attrs.ip("client.address", ep.peer.0);
                attrs.ip("network.peer.address", ep.peer.0);
                attrs.int("network.peer.port", i64::from(ep.peer.1));
            }
        }
        Role::Client => {
            let (server_address, server_port) = client_server(ex);
            if let Some(addr) = server_address {
                let port = server_port.filter(|&p| p != default_port(ex));
                attrs.str_with("url.full", |s| {
                    s.push_str(scheme);
                    s.push_str("://");
                    push_url_host(s, addr);
                    if let Some(p) = port {
                        s.push(':');
                        wire::push_u16(s, p);
                    }
                    s.push_str(path);
                });
                match addr {
                    ServerAddress::Name(name) => attrs.str("server.address", name),
                    ServerAddress::Ip(ip) => attrs.ip("server.address", ip),
                }
            }
            attrs.str("url.path", path);
            if let Some(port) = server_port {
                attrs.int("server.port", i64::from(port));
            }
            if let Some(ep) = &ex.endpoints {
                attrs.ip("network.peer.address", ep.peer.0);
                attrs.int("network.peer.port", i64::from(ep.peer.1));
            }
        }
    }

    // Server: only 5xx is the server's fault. Client: any 4xx/5xx failed the call.
    match error_type(http.role, http.status) {
        Some(e) => {
            attrs.str("error.type", &e);
            true
        }
        None => false,
    }
}

/// A server address as the host of a URL: IPv6 (any text with a colon) in brackets.
fn push_url_host(s: &mut String, addr: ServerAddress<'_>) {
    match addr {
        ServerAddress::Name(name) if name.contains(':') => {
            s.push('[');
            s.push_str(name);
            s.push(']');
        }
        ServerAddress::Name(name) => s.push_str(name),
        ServerAddress::Ip(ip @ std::net::IpAddr::V6(_)) => {
            s.push('[');
            wire::write_ip(s, ip);
            s.push(']');
        }
        ServerAddress::Ip(ip) => wire::write_ip(s, ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Endpoints;
    use crate::process::ProcessIdentity;
    use crate::protocol::http1::{HttpExchange, HttpVersion};
    use crate::spans::http_common::ERROR_NO_RESPONSE;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use std::sync::Arc;

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
        let span =
            http_span(&exchange(Role::Server, "PURGE", "/users/7", Some(200), None), Some("/users/{id}"), &c, ids);
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

    /// `write_http_span` writes exactly what prost writes for `http_span`.
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
        assert_eq!(split_host("h:8080"), ("h", Some(8080)));
        assert_eq!(split_host("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_host("::1"), ("::1", None));
        assert_eq!(split_host("h"), ("h", None));
    }
}
