//! Streams of the recordings as the receiver describes them: HTTP spans and
//! metric feeds like HTTP/1's with `network.protocol.version` 2, gRPC calls
//! as RPCs per the conventions, and streams whose headers are not known in
//! full.

use std::collections::BTreeMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::fixtures::all;
use super::{play, Play};
use crate::clock::WallClock;
use crate::conntrack::Endpoints;
use crate::protocol::http2::{GrpcCall, Http2Stream, StreamEnd};
use crate::protocol::{ConnFacts, Describer, Operation, Record, Role};
use crate::spans::{to_span, IdGenerator};
use crate::stats::Stats;
use crate::Config;

/// The traced process is 10.0.0.1:8080 talking to 10.0.0.2:50000.
fn facts(tls: bool) -> ConnFacts {
    ConnFacts {
        endpoints: Some(Endpoints {
            local: ("10.0.0.1".parse().unwrap(), 8080),
            peer: ("10.0.0.2".parse().unwrap(), 50000),
        }),
        tls,
    }
}

/// A described span: name, kind, status, attributes as text, and the
/// metric families it fed with their attributes.
#[derive(Debug)]
struct Described {
    name: String,
    kind: SpanKind,
    error: bool,
    attrs: BTreeMap<String, String>,
    feeds: Vec<(&'static str, BTreeMap<String, String>)>,
}

fn text(v: &crate::protocol::Value<'_>) -> String {
    let s = format!("{v:?}");
    s.trim_matches('"').to_string()
}

fn describe_with(config: &Config, stream: &Http2Stream, tls: bool) -> Described {
    let mut describer = Describer::new(config, Arc::new(Stats::default()));
    let facts = facts(tls);
    let mut got = None;
    describer.describe(&Record::Http2(stream.clone()), &facts, &mut |op: &Operation<'_>| {
        let span: Span = to_span(op, &WallClock::from_offset_ns(0), &mut IdGenerator::with_seed(1));
        let status = span.status.as_ref().map_or(0, |s| s.code);
        got = Some(Described {
            name: span.name.clone(),
            kind: SpanKind::try_from(span.kind).unwrap(),
            error: status == StatusCode::Error as i32,
            attrs: op.attributes.iter().map(|a| (a.key.to_string(), text(&a.value))).collect(),
            feeds: op
                .metrics
                .iter()
                .map(|f| {
                    (
                        f.family.instruments[0].name,
                        f.attributes.iter().map(|a| (a.key.to_string(), text(&a.value))).collect(),
                    )
                })
                .collect(),
        });
        // Every attribute went into the span.
        assert_eq!(span.attributes.len(), op.attributes.len());
        assert!(span
            .attributes
            .iter()
            .all(|kv| !matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), None | Some(Any::ArrayValue(_)))));
    });
    got.expect("one operation per stream")
}

fn describe(stream: &Http2Stream) -> Described {
    describe_with(&Config::default(), stream, false)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn streams(name: &str, role: Role) -> Vec<Http2Stream> {
    let (_, segs, _, _) = all().into_iter().find(|f| f.0 == name).unwrap();
    let (mut got, _) = play(&segs, Play { role, ..Play::SERVER });
    got.sort_by_key(|s| s.stream_id);
    got
}

#[test]
fn http_server_and_client_spans_are_http1_s_with_version_2() {
    let server = describe(&streams("nginx_curl_get", Role::Server)[0]);
    // Named by its route, as HTTP/1 server spans are (`routes.heuristic`).
    assert_eq!((server.name.as_str(), server.kind, server.error), ("GET /a.txt", SpanKind::Server, false));
    assert_eq!(
        server.attrs,
        map(&[
            ("http.request.method", "GET"),
            ("network.protocol.version", "2"),
            ("http.response.status_code", "200"),
            ("url.path", "/a.txt"),
            ("url.scheme", "http"),
            ("http.route", "/a.txt"),
            ("server.address", "127.0.0.1"),
            ("server.port", "8080"),
            ("client.address", "10.0.0.2"),
            ("network.peer.address", "10.0.0.2"),
            ("network.peer.port", "50000"),
        ])
    );
    assert_eq!(
        server.feeds,
        [(
            "http.server.request.duration",
            map(&[
                ("http.request.method", "GET"),
                ("url.scheme", "http"),
                ("network.protocol.version", "2"),
                ("http.response.status_code", "200"),
                ("http.route", "/a.txt"),
            ])
        )]
    );
    let client = describe(&streams("nginx_curl_get", Role::Client)[0]);
    assert_eq!((client.name.as_str(), client.kind), ("GET", SpanKind::Client));
    assert_eq!(client.attrs["url.full"], "http://127.0.0.1:50000/a.txt");
    assert_eq!((client.attrs["server.address"].as_str(), client.attrs["server.port"].as_str()), ("127.0.0.1", "50000"));
    assert_eq!(client.feeds[0].0, "http.client.request.duration");
    // Over TLS, with `:scheme` https.
    let mut tls = streams("nginx_curl_get", Role::Client).remove(0);
    tls.scheme = Some("https".into());
    let d = describe_with(&Config::default(), &tls, true);
    assert_eq!(
        (d.attrs["url.full"].as_str(), d.feeds[0].1["url.scheme"].as_str()),
        ("https://127.0.0.1:50000/a.txt", "https")
    );
    // A `:scheme` of another value is not a metric series of its own.
    tls.scheme = Some("x-whatever".into());
    assert_eq!(describe_with(&Config::default(), &tls, true).feeds[0].1["url.scheme"], "https");
}

#[test]
fn resets_and_statuses_give_error_type() {
    let go = streams("go_h2c", Role::Server);
    let errors: Vec<(String, Option<String>, bool)> =
        go.iter().map(describe).map(|d| (d.name, d.attrs.get("error.type").cloned(), d.error)).collect();
    assert_eq!(
        errors,
        [
            ("GET /hello".into(), None, false),
            ("GET /status/{id}".into(), Some("503".into()), true),
            // The server reset it (INTERNAL_ERROR) before any response.
            ("GET /reset".into(), Some("INTERNAL_ERROR".into()), true),
            ("GET /status/{id}".into(), None, false),
        ]
    );
    // A client sees a 404 as its failure; the server does not.
    let nginx = streams("nginx_go_sequential", Role::Client);
    assert_eq!(describe(&nginx[2]).attrs.get("error.type").map(String::as_str), Some("404"));
    assert!(!describe(&streams("nginx_go_sequential", Role::Server)[2]).error);
    // Cut by the close: no response at all, or part of one.
    let mut cut = go[0].clone();
    (cut.status, cut.end) = (None, StreamEnd::ConnectionClosed);
    assert_eq!(describe(&cut).attrs["error.type"], "http.response.missing");
    cut.status = Some(200);
    assert_eq!(describe(&cut).attrs["error.type"], "http.response.incomplete");
}

/// Joined mid-way: the method and path referred to HPACK entries never
/// seen. Nothing is guessed: no method, no path, marked incomplete.
#[test]
fn incomplete_headers_are_left_out_and_marked() {
    let mut s = streams("nginx_go_sequential", Role::Server).remove(3);
    (s.method, s.path, s.headers_complete) = (None, None, false);
    let d = describe(&s);
    assert_eq!(d.name, "HTTP");
    for key in ["http.request.method", "http.request.method_original", "url.path", "http.route"] {
        assert!(!d.attrs.contains_key(key), "{key}: {d:?}");
    }
    assert_eq!(d.attrs["ebpf_receiver.http2.headers_incomplete"], "true");
    assert_eq!(
        (d.attrs["http.response.status_code"].as_str(), d.attrs["network.protocol.version"].as_str()),
        ("200", "2")
    );
    assert!(!d.feeds[0].1.contains_key("http.request.method"));
    // A client span without a path has no url.full either.
    s.role = Role::Client;
    let d = describe(&s);
    assert!(!d.attrs.contains_key("url.full") && d.attrs.contains_key("server.address"), "{d:?}");
}

#[test]
fn grpc_calls_are_rpcs() {
    for name in ["go_grpc", "py_grpc"] {
        for role in [Role::Server, Role::Client] {
            let got: Vec<(String, String, Option<String>, bool)> = streams(name, role)
                .iter()
                .map(describe)
                .map(|d| {
                    assert_eq!(d.attrs["rpc.system.name"], "grpc");
                    assert_eq!(d.attrs["rpc.method"], d.name);
                    assert!(!d.attrs.keys().any(|k| k.starts_with("http.")), "{d:?}");
                    (d.name, d.attrs["rpc.response.status_code"].clone(), d.attrs.get("error.type").cloned(), d.error)
                })
                .collect();
            let call = |m: &str, code: &str, error: bool| {
                (format!("demo.Greeter/{m}"), code.to_string(), error.then(|| code.to_string()), error)
            };
            let client = role == Role::Client;
            let mut want = vec![
                call("SayHello", "OK", false),
                // NOT_FOUND and PERMISSION_DENIED fail the caller, not the server.
                call("SayHello", "NOT_FOUND", client),
                call("StreamGreetings", "OK", false),
                call("Collect", "OK", false),
            ];
            if name == "go_grpc" {
                want.push(call("SayHello", "PERMISSION_DENIED", client));
            }
            assert_eq!(got, want, "{name} {role:?}");
        }
    }
    let server = describe(&streams("go_grpc", Role::Server)[0]);
    assert_eq!(
        server.feeds,
        [(
            "rpc.server.call.duration",
            map(&[
                ("rpc.system.name", "grpc"),
                ("rpc.method", "demo.Greeter/SayHello"),
                ("rpc.response.status_code", "OK")
            ])
        )]
    );
    let client = describe(&streams("go_grpc", Role::Client)[1]);
    assert_eq!(
        client.feeds,
        [(
            "rpc.client.call.duration",
            map(&[
                ("rpc.system.name", "grpc"),
                ("rpc.method", "demo.Greeter/SayHello"),
                ("rpc.response.status_code", "NOT_FOUND"),
                ("error.type", "NOT_FOUND"),
                ("server.address", "127.0.0.1"),
                ("server.port", "50000"),
            ])
        )]
    );
    assert_eq!(
        client.attrs,
        map(&[
            ("rpc.system.name", "grpc"),
            ("rpc.method", "demo.Greeter/SayHello"),
            ("rpc.response.status_code", "NOT_FOUND"),
            ("server.address", "127.0.0.1"),
            ("server.port", "50000"),
            ("network.peer.address", "10.0.0.2"),
            ("network.peer.port", "50000"),
            ("error.type", "NOT_FOUND"),
        ])
    );
}

/// Statuses without `grpc-status`: what gRPC maps a reset, a GOAWAY or an
/// HTTP status to; a method the server does not have is `_OTHER`.
#[test]
fn grpc_statuses_from_the_stream_end() {
    let base = streams("go_grpc", Role::Client).remove(0);
    let with = |status: Option<u32>, end: StreamEnd, http: Option<u16>| {
        let mut s = base.clone();
        s.grpc = Some(GrpcCall { status, ..s.grpc.clone().unwrap() });
        (s.end, s.status) = (end, http);
        describe(&s)
    };
    let code = |d: &Described| d.attrs.get("rpc.response.status_code").cloned();
    let reset = |code, by_client| StreamEnd::Reset { code: Some(code), by_client };
    assert_eq!(code(&with(None, reset(8, true), None)).as_deref(), Some("CANCELLED"));
    assert_eq!(code(&with(None, reset(7, false), None)).as_deref(), Some("UNAVAILABLE"));
    assert_eq!(code(&with(None, reset(2, false), None)).as_deref(), Some("INTERNAL"));
    assert_eq!(code(&with(None, StreamEnd::GoAway { code: 0 }, None)).as_deref(), Some("UNAVAILABLE"));
    assert_eq!(code(&with(None, StreamEnd::Complete, Some(503))).as_deref(), Some("UNAVAILABLE"));
    assert_eq!(code(&with(None, StreamEnd::Complete, Some(404))).as_deref(), Some("UNIMPLEMENTED"));
    // Cut by the close before any status: no code, and the HTTP/2 reason.
    let cut = with(None, StreamEnd::ConnectionClosed, None);
    assert_eq!((code(&cut), cut.attrs["error.type"].as_str()), (None, "http.response.missing"));
    // A code past the known ones is its number.
    assert_eq!(code(&with(Some(42), StreamEnd::Complete, Some(200))).as_deref(), Some("42"));
    // UNIMPLEMENTED: the method is not one the server has.
    let d = with(Some(12), StreamEnd::Complete, Some(200));
    assert_eq!(d.name, "grpc");
    assert_eq!(
        (d.attrs["rpc.method"].as_str(), d.attrs["rpc.method_original"].as_str()),
        ("_OTHER", "demo.Greeter/SayHello")
    );
    assert_eq!(d.feeds[0].1["rpc.method"], "_OTHER");
    // Servers fail on their own errors only.
    let mut server = base.clone();
    server.role = Role::Server;
    for (status, fails) in [
        (1, false),
        (3, false),
        (5, false),
        (2, true),
        (4, true),
        (12, true),
        (13, true),
        (14, true),
        (15, true),
        (16, false),
    ] {
        server.grpc = Some(GrpcCall { status: Some(status), ..server.grpc.clone().unwrap() });
        assert_eq!(describe(&server).error, fails, "status {status}");
    }
    // The method unknown (headers incomplete): named `grpc`, no rpc.method.
    let mut s = base.clone();
    s.path = None;
    s.grpc = Some(GrpcCall { method: None, ..s.grpc.clone().unwrap() });
    s.headers_complete = false;
    let d = describe(&s);
    assert_eq!(d.name, "grpc");
    assert!(!d.attrs.contains_key("rpc.method"));
    assert_eq!(d.attrs["ebpf_receiver.http2.headers_incomplete"], "true");
}

/// `protocols.http2.grpc: false`: gRPC calls are HTTP/2 requests.
#[test]
fn grpc_off_describes_http() {
    let mut config = Config::default();
    config.protocols.http2.grpc = false;
    let d = describe_with(&config, &streams("go_grpc", Role::Server)[0], false);
    assert_eq!(d.name, "POST /demo.Greeter/SayHello");
    assert_eq!(
        (d.attrs["url.path"].as_str(), d.attrs["network.protocol.version"].as_str()),
        ("/demo.Greeter/SayHello", "2")
    );
    assert_eq!(d.feeds[0].0, "http.server.request.duration");
}
