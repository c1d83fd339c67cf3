//! One HTTP exchange → one span: SERVER when the traced process answered the
//! request, CLIENT when it made it. Names and attributes follow the HTTP
//! semantic conventions; query strings, header values (but Host) and bodies
//! are never recorded.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span, Status};

use crate::clock::WallClock;
use crate::conntrack::Exchange;
use crate::protocol::Role;

use super::attributes::{int_attr, str_attr};
use super::http_common::{
    client_server, default_port, error_type, known_method, path_of, split_host, url_scheme, METHOD_OTHER,
};
use super::ids::IdGenerator;

/// `route`: the `http.route` template of a server exchange, when known; it
/// also names the span (`GET /users/{id}`).
pub fn http_span(ex: &Exchange, route: Option<&str>, clock: &WallClock, ids: &mut IdGenerator) -> Span {
    let http = &ex.http;
    let known = known_method(&http.method).is_some();
    let path = path_of(&http.target);
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(14);
    if known {
        attrs.push(str_attr("http.request.method", http.method.as_str()));
    } else {
        attrs.push(str_attr("http.request.method", METHOD_OTHER));
        attrs.push(str_attr("http.request.method_original", http.method.as_str()));
    }
    attrs.push(str_attr("network.protocol.version", http.version.as_str()));
    if let Some(status) = http.status {
        attrs.push(int_attr("http.response.status_code", i64::from(status)));
    }
    let host = http.host.as_deref().map(split_host);
    let scheme = url_scheme(ex);

    let kind = match http.role {
        Role::Server => {
            attrs.push(str_attr("url.path", path));
            attrs.push(str_attr("url.scheme", scheme));
            if let Some(route) = route {
                attrs.push(str_attr("http.route", route));
            }
            if let Some(ep) = &ex.endpoints {
                let server_address = host.map_or_else(|| ep.local.0.to_string(), |(name, _)| name.to_string());
                attrs.push(str_attr("server.address", server_address));
                attrs.push(int_attr("server.port", i64::from(ep.local.1)));
                attrs.push(str_attr("client.address", ep.peer.0.to_string()));
                attrs.push(str_attr("network.peer.address", ep.peer.0.to_string()));
                attrs.push(int_attr("network.peer.port", i64::from(ep.peer.1)));
            }
            SpanKind::Server
        }
        Role::Client => {
            let (server_address, server_port) = client_server(ex);
            let server_address = server_address.map(|a| a.to_string());
            if let Some(addr) = &server_address {
                let authority = match server_port {
                    Some(p) if p != default_port(ex) => format!("{}:{p}", addr_for_url(addr)),
                    _ => addr_for_url(addr),
                };
                attrs.push(str_attr("url.full", format!("{scheme}://{authority}{path}")));
                attrs.push(str_attr("server.address", addr.clone()));
            }
            attrs.push(str_attr("url.path", path));
            if let Some(port) = server_port {
                attrs.push(int_attr("server.port", i64::from(port)));
            }
            if let Some(ep) = &ex.endpoints {
                attrs.push(str_attr("network.peer.address", ep.peer.0.to_string()));
                attrs.push(int_attr("network.peer.port", i64::from(ep.peer.1)));
            }
            SpanKind::Client
        }
    };

    // Server: only 5xx is the server's fault. Client: any 4xx/5xx failed the call.
    let status = match error_type(http.role, http.status) {
        Some(e) => {
            attrs.push(str_attr("error.type", e));
            Status { code: StatusCode::Error as i32, message: String::new() }
        }
        None => Status::default(),
    };

    let start = clock.to_unix_ns(http.request_start_ns);
    let end = clock.to_unix_ns(http.response_end_ns.max(http.request_start_ns));
    Span {
        trace_id: ids.trace_id(),
        span_id: ids.span_id(),
        name: {
            let method = if known { http.method.as_str() } else { "HTTP" };
            match route.filter(|_| http.role == Role::Server) {
                Some(route) => format!("{method} {route}"),
                None => method.to_string(),
            }
        },
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs,
        status: Some(status),
        ..Default::default()
    }
}

fn addr_for_url(addr: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
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
                host: host.map(String::from),
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
