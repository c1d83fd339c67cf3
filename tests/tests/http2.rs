//! HTTP/2 and gRPC against real servers and clients (tests/src/h2.rs, each
//! server started once per suite): nginx over h2c and TLS with curl and the
//! Go client, Go's h2c server with its client (sequences whose headers go
//! through HPACK's dynamic table, 100 concurrent streams, `Upgrade: h2c`
//! from curl), Go's crypto/tls negotiating h2, and gRPC between grpcio
//! processes and between Go processes. Both sides of every exchange are
//! traced: server spans and client spans, exact counts, names, attributes
//! and statuses.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::h2::{self, ClientRun};
use integration_tests::metric_points::{describe_points, metric_points};
use integration_tests::span::SpanRec;
use integration_tests::{require_root, Receiver, WAIT};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

const ATTR_INCOMPLETE: &str = "ebpf_receiver.http2.headers_incomplete";

/// A receiver tracing the connections to `port` only (both ends), so that
/// whatever else the host runs cannot fill its ring buffers. HTTP/2
/// parsers ask for 4 KiB of each read/write (`Capture::Wide`), which the
/// responses of 100 streams in one write need; the probes will honour that
/// with the socket-layer data path, until then the suite sets the capture.
fn receiver(port: u16) -> Receiver {
    receiver_with(port, r#""capture_size": 4096"#)
}

/// `receiver(port)` with more configuration keys (`"key": value, ...`).
fn receiver_with(port: u16, extra: &str) -> Receiver {
    let sep = if extra.is_empty() { "" } else { ", " };
    Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "selection": {{"include": {{"ports": [{port}]}}}}{sep}{extra}}}"#
    ))
}

/// What one HTTP/2 exchange must look like from either side.
#[derive(Debug, Clone, Copy)]
struct Want<'a> {
    method: &'a str,
    path: &'a str,
    /// None: the stream was reset before a response.
    status: Option<i64>,
    /// `error.type` when it is not the status's.
    error: Option<&'a str>,
    port: u16,
    scheme: &'a str,
    /// The client's port, when known.
    client_port: Option<u16>,
}

impl<'a> Want<'a> {
    fn get(path: &'a str, status: i64, port: u16) -> Self {
        Want { method: "GET", path, status: Some(status), error: None, port, scheme: "http", client_port: None }
    }
}

/// The HTTP checks of one HTTP/2 exchange, server or client span.
fn assert_h2(s: &SpanRec, w: &Want<'_>) {
    s.assert_well_formed();
    let d = s.describe();
    let name = match s.str_attr("http.route") {
        Some(route) if s.is_server() => format!("{} {route}", w.method),
        _ => w.method.to_string(),
    };
    assert_eq!(s.span.name, name, "{d}");
    assert_eq!(s.str_attr("http.request.method"), Some(w.method), "{d}");
    assert_eq!(s.url_path(), Some(w.path), "url.path, without the query: {d}");
    assert_eq!(s.http_status(), w.status, "{d}");
    assert_eq!(s.str_attr("network.protocol.version"), Some("2"), "{d}");
    assert_eq!(s.str_attr("server.address"), Some("127.0.0.1"), "{d}");
    assert_eq!(s.server_port(), Some(w.port), "{d}");
    assert!(s.attr(ATTR_INCOMPLETE).is_none(), "seen from its start, every header is known: {d}");
    let status_error = w.status.filter(|&c| if s.is_server() { c >= 500 } else { c >= 400 }).map(|c| c.to_string());
    let error = w.error.map(str::to_string).or(status_error);
    assert_eq!(s.str_attr("error.type"), error.as_deref(), "{d}");
    let want_status = if error.is_some() { StatusCode::Error } else { StatusCode::Unset };
    assert_eq!(s.status(), want_status, "{d}");
    if s.is_server() {
        assert_eq!(s.str_attr("url.scheme"), Some(w.scheme), "{d}");
        assert_eq!(s.str_attr("client.address"), Some("127.0.0.1"), "{d}");
        if let Some(p) = w.client_port {
            assert_eq!(s.peer_port(), Some(p), "network.peer.port is the client's: {d}");
        }
    } else {
        let full = format!("{}://127.0.0.1:{}{}", w.scheme, w.port, w.path);
        assert_eq!(s.str_attr("url.full"), Some(full.as_str()), "{d}");
        assert_eq!(s.peer_port(), Some(w.port), "{d}");
    }
}

/// The spans of process `pid`, by kind.
fn spans_of(rx: &Receiver, pid: u32, server: bool) -> Vec<SpanRec> {
    rx.spans_where(|s| s.pid() == Some(pid) && s.is_server() == server)
}

/// The one span of `spans` whose `url.path` is `path`.
fn one<'a>(spans: &'a [SpanRec], path: &str, dump: &str) -> &'a SpanRec {
    let found: Vec<&SpanRec> = spans.iter().filter(|s| s.url_path() == Some(path)).collect();
    assert_eq!(found.len(), 1, "one span for {path}:\n{dump}");
    found[0]
}

fn curl_port(run: &ClientRun) -> u16 {
    let f: Vec<&str> = run.lines[0].split_whitespace().collect();
    assert_eq!(f.get(2), Some(&"2"), "curl spoke HTTP/2: {:?}", run.lines);
    f[1].parse().expect("curl's local port")
}

#[test]
fn nginx_cleartext_curl_prior_knowledge_and_the_go_client() {
    if !require_root() {
        return;
    }
    let nginx = h2::nginx();
    let (pid, port) = (nginx.server.pid, nginx.server.port);
    let mut rx = receiver(port);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let pk = "--http2-prior-knowledge";
    // curl 7.88 sends nothing after the first request on a reused
    // prior-knowledge connection: one URL per curl.
    let curls = [
        ("GET", "/hello", "/hello?user=secret", 200, h2::curl_h2(pk, &url("/hello?user=secret"), &[])),
        ("GET", "/status/404", "/status/404", 404, h2::curl_h2(pk, &url("/status/404"), &[])),
        ("GET", "/status/500", "/status/500", 500, h2::curl_h2(pk, &url("/status/500"), &[])),
    ];
    // A POST from Go (curl 7.88 fails some POSTs to nginx's `return` with
    // "Stream error in the HTTP/2 framing layer": nginx resets the unread
    // body's stream, which curl takes for an error when it loses the race).
    let post = h2::h2c_client(&["-X", "POST", "-d", "name=otel&v=42", &url("/submit")]);
    assert_eq!(post.lines, [format!("201 {}", url("/submit"))]);
    // A sequence on one connection from Go, a repeated header indexed in
    // HPACK's dynamic table (and so are `:path`s seen before).
    let go_paths = ["/a", "/b", "/status/404", "/a"];
    let go_urls: Vec<String> = go_paths.iter().map(|p| url(p)).collect();
    let mut args = vec!["-H", "x-tenant: tenant-with-a-long-value"];
    args.extend(go_urls.iter().map(String::as_str));
    let go = h2::h2c_client(&args);
    assert_eq!(go.lines.len(), 4, "{:?}", go.lines);
    let total = curls.len() + 1 + go_paths.len();
    let clients: Vec<u32> = curls.iter().map(|c| c.4.pid).chain([post.pid, go.pid]).collect();
    rx.wait_for(total, WAIT, "nginx SERVER spans", |s| s.pid() == Some(pid) && s.is_server());
    rx.wait_for(total, WAIT, "CLIENT spans", |s| s.is_client() && clients.iter().any(|&c| s.pid() == Some(c)));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(pid) || clients.iter().any(|&c| s.pid() == Some(c)), 40);
    let server = spans_of(&rx, pid, true);
    assert_eq!(server.len(), total, "one SERVER span per request:\n{dump}");
    assert!(spans_of(&rx, pid, false).is_empty(), "{dump}");
    for (method, path, target, code, run) in &curls {
        assert_eq!(run.lines[0].split_whitespace().next(), Some(code.to_string().as_str()), "{target}");
        let mut w = Want { method, client_port: Some(curl_port(run)), ..Want::get(path, *code, port) };
        let srv: Vec<SpanRec> = server.iter().filter(|s| s.peer_port() == w.client_port).cloned().collect();
        assert_h2(one(&srv, path, &dump), &w);
        let cli = spans_of(&rx, run.pid, false);
        assert_eq!(cli.len(), 1, "{dump}");
        w.client_port = None;
        assert_h2(&cli[0], &w);
    }
    let cli = spans_of(&rx, go.pid, false);
    assert_eq!(cli.len(), go_paths.len(), "{dump}");
    let posted = Want { method: "POST", ..Want::get("/submit", 201, port) };
    let post_cli = spans_of(&rx, post.pid, false);
    assert_eq!(post_cli.len(), 1, "{dump}");
    assert_h2(&post_cli[0], &posted);
    assert_h2(one(&server, "/submit", &dump), &posted);
    let curl_ports: Vec<Option<u16>> = curls.iter().map(|c| Some(curl_port(&c.4))).collect();
    let srv_go: Vec<SpanRec> = server
        .iter()
        .filter(|s| !curl_ports.contains(&s.peer_port()) && s.url_path() != Some("/submit"))
        .cloned()
        .collect();
    assert_eq!(srv_go.len(), go_paths.len(), "{dump}");
    assert!(srv_go.iter().all(|s| s.peer_port() == srv_go[0].peer_port()), "one connection:\n{dump}");
    for (spans, server_side) in [(&srv_go, true), (&cli, false)] {
        let mut got: Vec<(String, Option<i64>)> =
            spans.iter().map(|s| (s.url_path().unwrap_or("-").to_string(), s.http_status())).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("/a".into(), Some(200)),
                ("/a".into(), Some(200)),
                ("/b".into(), Some(200)),
                ("/status/404".into(), Some(404))
            ],
            "server side {server_side}:\n{dump}"
        );
        for s in spans.iter() {
            let path = s.url_path().unwrap();
            assert_h2(s, &Want::get(path, if path == "/status/404" { 404 } else { 200 }, port));
        }
    }
}

#[test]
fn nginx_over_tls_with_curl_http2() {
    if !require_root() {
        return;
    }
    let nginx = h2::nginx();
    let (pid, port) = (nginx.server.pid, nginx.tls_port);
    let mut rx = receiver(port);
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    let runs = [("/tls/hello", 200), ("/status/404", 404), ("/status/500", 500)]
        .map(|(p, code)| (p, code, h2::curl_h2("--http2", &url(p), &[])));
    rx.wait_for(3, WAIT, "nginx SERVER spans over TLS", |s| s.pid() == Some(pid) && s.server_port() == Some(port));
    rx.wait_for(3, WAIT, "curl CLIENT spans over TLS", |s| runs.iter().any(|r| s.pid() == Some(r.2.pid)));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(pid) || runs.iter().any(|r| s.pid() == Some(r.2.pid)), 20);
    let server: Vec<SpanRec> = spans_of(&rx, pid, true).into_iter().filter(|s| s.server_port() == Some(port)).collect();
    assert_eq!(server.len(), 3, "{dump}");
    for (path, code, run) in &runs {
        let w = Want { scheme: "https", client_port: Some(curl_port(run)), ..Want::get(path, *code, port) };
        assert_h2(one(&server, path, &dump), &w);
        let cli = spans_of(&rx, run.pid, false);
        assert_eq!(cli.len(), 1, "{dump}");
        assert_h2(&cli[0], &Want { client_port: None, ..w });
    }
}

#[test]
fn go_h2c_sequence_resets_and_the_dynamic_table() {
    if !require_root() {
        return;
    }
    let server = h2::go_h2c();
    let port = server.port;
    let mut rx = receiver(port);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let paths = ["/hello?q=secret", "/status/503", "/reset", "/status/204", "/hello", "/items/7"];
    let urls: Vec<String> = paths.iter().map(|p| url(p)).collect();
    let mut args = vec!["-H", "x-request-tag: same-on-every-request", "-H", "x-other: also-repeated"];
    args.extend(urls.iter().map(String::as_str));
    let client = h2::h2c_client(&args);
    assert_eq!(client.lines.len(), paths.len(), "{:?}", client.lines);
    assert!(client.lines[2].starts_with("error "), "the reset stream fails the call: {:?}", client.lines);
    rx.wait_for(paths.len(), WAIT, "Go h2c SERVER spans", |s| s.pid() == Some(server.pid) && s.is_server());
    rx.wait_for(paths.len(), WAIT, "Go h2c CLIENT spans", |s| s.pid() == Some(client.pid));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(server.pid) || s.pid() == Some(client.pid), 20);
    let want = [
        Want::get("/hello", 200, port),
        Want::get("/status/503", 503, port),
        // Reset by the server (its handler panicked): no status.
        Want { status: None, error: Some("INTERNAL_ERROR"), ..Want::get("/reset", 0, port) },
        Want::get("/status/204", 204, port),
        Want::get("/hello", 200, port),
        Want::get("/items/7", 200, port),
    ];
    for server_side in [true, false] {
        let pid = if server_side { server.pid } else { client.pid };
        let spans = integration_tests::scenario::sorted_by_start(spans_of(&rx, pid, server_side));
        assert_eq!(spans.len(), want.len(), "server side {server_side}:\n{dump}");
        for (s, w) in spans.iter().zip(&want) {
            assert_h2(s, w);
        }
        if server_side {
            let peers: Vec<Option<u16>> = spans.iter().map(SpanRec::peer_port).collect();
            assert!(peers.iter().all(|p| *p == peers[0]), "one connection:\n{dump}");
        }
    }
}

#[test]
fn one_hundred_concurrent_streams_are_paired() {
    if !require_root() {
        return;
    }
    let server = h2::go_h2c();
    let port = server.port;
    let mut rx = receiver(port);
    // Each path asks for its own status, so a span pairs correctly only if
    // its status is its path's.
    let urls: Vec<String> = (200..300).map(|code| format!("http://127.0.0.1:{port}/status/{code}")).collect();
    let mut args = vec!["-parallel"];
    args.extend(urls.iter().map(String::as_str));
    let client = h2::h2c_client(&args);
    assert_eq!(client.lines.len(), 100);
    rx.wait_for(100, WAIT, "100 SERVER spans", |s| s.pid() == Some(server.pid) && s.is_server());
    rx.wait_for(100, WAIT, "100 CLIENT spans", |s| s.pid() == Some(client.pid));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(server.pid) || s.pid() == Some(client.pid), 30);
    for server_side in [true, false] {
        let pid = if server_side { server.pid } else { client.pid };
        let spans = spans_of(&rx, pid, server_side);
        assert_eq!(spans.len(), 100, "server side {server_side}:\n{dump}");
        let mut codes: Vec<i64> = spans
            .iter()
            .map(|s| {
                let code: i64 = s.url_path().and_then(|p| p.strip_prefix("/status/")).unwrap().parse().unwrap();
                let path = format!("/status/{code}");
                assert_h2(s, &Want::get(&path, code, port));
                code
            })
            .collect();
        codes.sort_unstable();
        assert_eq!(codes, (200..300).collect::<Vec<_>>(), "each stream once:\n{dump}");
        let peers: BTreeMap<Option<u16>, usize> = spans.iter().fold(BTreeMap::new(), |mut m, s| {
            *m.entry(if server_side { s.peer_port() } else { Some(0) }).or_default() += 1;
            m
        });
        assert_eq!(peers.len(), 1, "one connection: {peers:?}");
    }
    // Most were in flight together: they overlap in time.
    let spans = spans_of(&rx, server.pid, true);
    let latest_start = spans.iter().map(|s| s.span.start_time_unix_nano).max().unwrap();
    let overlapping = spans.iter().filter(|s| s.span.end_time_unix_nano > latest_start).count();
    assert!(overlapping > 1, "streams were concurrent:\n{dump}");
}

#[test]
fn curl_upgrade_h2c_is_http2_stream_one() {
    if !require_root() {
        return;
    }
    let server = h2::go_h2c();
    let port = server.port;
    let mut rx = receiver(port);
    // HTTP/1.1 with `Upgrade: h2c`: the server answers 101, then HTTP/2.
    let run = h2::curl_h2("--http2", &format!("http://127.0.0.1:{port}/upgraded?x=1"), &[]);
    let client_port = curl_port(&run);
    rx.wait_for(1, WAIT, "the upgraded SERVER span", |s| {
        s.pid() == Some(server.pid) && s.peer_port() == Some(client_port)
    });
    rx.wait_for(1, WAIT, "curl's CLIENT span", |s| s.pid() == Some(run.pid));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(server.pid) || s.pid() == Some(run.pid), 10);
    let srv: Vec<SpanRec> =
        spans_of(&rx, server.pid, true).into_iter().filter(|s| s.peer_port() == Some(client_port)).collect();
    assert_eq!(srv.len(), 1, "one span, no HTTP/1.1 101 span beside it:\n{dump}");
    assert_h2(&srv[0], &Want { client_port: Some(client_port), ..Want::get("/upgraded", 200, port) });
    let cli = spans_of(&rx, run.pid, false);
    assert_eq!(cli.len(), 1, "{dump}");
    assert_h2(&cli[0], &Want::get("/upgraded", 200, port));
}

/// Go's `crypto/tls` server negotiating h2 with curl (OpenSSL): the server's
/// plaintext comes from the Go probes, curl's from OpenSSL's. Go's HTTP/2
/// client over crypto/tls is not asserted: a Go client that lives under a
/// second is gone before the scan after its exec attaches to it.
#[test]
fn go_crypto_tls_server_negotiates_h2() {
    if !require_root() {
        return;
    }
    let server = h2::go_tls_h2();
    let port = server.port;
    let mut rx = receiver(port);
    let url = |p: &str| format!("https://127.0.0.1:{port}{p}");
    // The Go server's probes attach once the receiver finds its executable:
    // at the start-up scan, or when its sockets carry TLS records it cannot
    // read. Warm-up requests until one shows.
    let warm = url("/warmup");
    let ready = (0..40).any(|_| {
        h2::curl_h2("--http2", &warm, &[]);
        std::thread::sleep(Duration::from_millis(250));
        !rx.spans_where(|s| s.pid() == Some(server.pid) && s.url_path() == Some("/warmup")).is_empty()
    });
    assert!(
        ready,
        "no warm-up span of the Go TLS server: its probes never attached ({} files attached, {} errors)",
        rx.counter("tls_libraries"),
        rx.counter("tls_attach_errors")
    );
    let runs = [("/hello", 200), ("/status/404", 404), ("/status/503", 503)]
        .map(|(p, code)| (p, code, h2::curl_h2("--http2", &url(p), &[])));
    let not_warm = |s: &SpanRec| s.url_path() != Some("/warmup");
    rx.wait_for(3, WAIT, "Go TLS SERVER spans", |s| s.pid() == Some(server.pid) && not_warm(s));
    rx.wait_for(3, WAIT, "curl CLIENT spans", |s| runs.iter().any(|r| s.pid() == Some(r.2.pid)));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(server.pid) || runs.iter().any(|r| s.pid() == Some(r.2.pid)), 10);
    let srv: Vec<SpanRec> = spans_of(&rx, server.pid, true).into_iter().filter(not_warm).collect();
    assert_eq!(srv.len(), 3, "{dump}");
    for (path, code, run) in &runs {
        let w = Want { scheme: "https", client_port: Some(curl_port(run)), ..Want::get(path, *code, port) };
        assert_h2(one(&srv, path, &dump), &w);
        let cli = spans_of(&rx, run.pid, false);
        assert_eq!(cli.len(), 1, "{dump}");
        assert_h2(&cli[0], &Want { client_port: None, ..w });
    }
}

/// One gRPC call's span, as `(name, rpc.response.status_code, error.type)`.
fn rpc_view(s: &SpanRec) -> (String, Option<String>, Option<String>) {
    let d = s.describe();
    s.assert_well_formed();
    assert_eq!(s.str_attr("rpc.system.name"), Some("grpc"), "{d}");
    assert_eq!(s.str_attr("server.address"), Some("127.0.0.1"), "{d}");
    assert!(s.attr("http.request.method").is_none() && s.attr("url.path").is_none(), "an RPC, not HTTP: {d}");
    let error = s.str_attr("error.type").map(str::to_string);
    assert_eq!(s.status() == StatusCode::Error, error.is_some(), "{d}");
    let name = s.span.name.clone();
    match s.str_attr("rpc.method") {
        Some("_OTHER") => assert_eq!(name, "grpc", "{d}"),
        m => assert_eq!(m, Some(name.as_str()), "span named rpc.method: {d}"),
    }
    (name, s.str_attr("rpc.response.status_code").map(str::to_string), error)
}

/// Runs `calls` from a client against `server` and checks both sides' spans
/// against `want` (name, status) in call order, errors per side.
fn grpc_pair(server: &h2::H2Server, client: impl FnOnce(&[&str]) -> ClientRun, calls: &[&str], want: &[(&str, &str)]) {
    let mut rx = receiver(server.port);
    let run = client(calls);
    let printed: Vec<String> = calls.iter().zip(want).map(|(c, (_, code))| format!("{c} {code}")).collect();
    assert_eq!(run.lines, printed);
    rx.wait_for(calls.len(), WAIT, "gRPC SERVER spans", |s| s.pid() == Some(server.pid) && s.is_server());
    rx.wait_for(calls.len(), WAIT, "gRPC CLIENT spans", |s| s.pid() == Some(run.pid));
    rx.stop();
    let dump = rx.dump(|s| s.pid() == Some(server.pid) || s.pid() == Some(run.pid), 20);
    for server_side in [true, false] {
        let pid = if server_side { server.pid } else { run.pid };
        let spans = integration_tests::scenario::sorted_by_start(spans_of(&rx, pid, server_side));
        let got: Vec<_> = spans.iter().map(rpc_view).collect();
        let expected: Vec<_> = want
            .iter()
            .map(|(name, code)| {
                let fails = if server_side {
                    matches!(
                        *code,
                        "UNKNOWN" | "DEADLINE_EXCEEDED" | "UNIMPLEMENTED" | "INTERNAL" | "UNAVAILABLE" | "DATA_LOSS"
                    )
                } else {
                    *code != "OK"
                };
                (name.to_string(), Some(code.to_string()), fails.then(|| code.to_string()))
            })
            .collect();
        assert_eq!(got, expected, "server side {server_side}:\n{dump}");
        for s in &spans {
            let d = s.describe();
            if server_side {
                assert_eq!(s.server_port(), Some(server.port), "{d}");
                assert_eq!(s.str_attr("client.address"), Some("127.0.0.1"), "{d}");
            } else {
                assert_eq!((s.server_port(), s.peer_port()), (Some(server.port), Some(server.port)), "{d}");
            }
        }
    }
    // rpc.server.call.duration / rpc.client.call.duration: a point per
    // method and status, counting the calls.
    let points = metric_points(&rx);
    for (server_side, metric, pid) in
        [(true, "rpc.server.call.duration", server.pid), (false, "rpc.client.call.duration", run.pid)]
    {
        let mine: Vec<_> = points.iter().filter(|p| p.name == metric && p.pid == Some(pid)).collect();
        let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
        for p in &mine {
            assert_eq!((p.attr("rpc.system.name"), p.unit.as_str()), (Some("grpc"), "s"), "{}", p.describe());
            let key = (
                p.attr("rpc.method").unwrap_or("-").to_string(),
                p.attr("rpc.response.status_code").unwrap_or("-").to_string(),
            );
            *got.entry(key).or_default() += p.count;
        }
        let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (name, code) in want {
            let method = if *name == "grpc" { "_OTHER" } else { name };
            *expected.entry((method.to_string(), code.to_string())).or_default() += 1;
        }
        assert_eq!(got, expected, "{metric} (server side {server_side}):\n{}", describe_points(mine.iter().copied()));
    }
}

#[test]
fn grpcio_unary_streaming_and_errors() {
    if !require_root() {
        return;
    }
    let server = h2::py_grpc();
    grpc_pair(
        server,
        |calls| h2::py_grpc_client(server.port, calls),
        &["unary:alice", "unary:missing", "stream:5", "unary:deny", "collect:3"],
        &[
            ("demo.Greeter/SayHello", "OK"),
            ("demo.Greeter/SayHello", "NOT_FOUND"),
            ("demo.Greeter/StreamGreetings", "OK"),
            ("demo.Greeter/SayHello", "PERMISSION_DENIED"),
            ("demo.Greeter/Collect", "OK"),
        ],
    );
}

#[test]
fn go_grpc_unary_streaming_errors_and_an_unknown_method() {
    if !require_root() {
        return;
    }
    let server = h2::go_grpc();
    grpc_pair(
        server,
        |calls| h2::go_grpc_client(server.port, calls),
        &["unary:alice", "unary:missing", "stream:5", "collect:3", "unary:deny", "nomethod:Nope"],
        &[
            ("demo.Greeter/SayHello", "OK"),
            ("demo.Greeter/SayHello", "NOT_FOUND"),
            ("demo.Greeter/StreamGreetings", "OK"),
            ("demo.Greeter/Collect", "OK"),
            ("demo.Greeter/SayHello", "PERMISSION_DENIED"),
            // Not a method of the server: named `grpc`, `rpc.method` _OTHER.
            ("grpc", "UNIMPLEMENTED"),
        ],
    );
}

/// At a capture too small for the frames, streams are lost, never wrong:
/// every one of the 100 on each side is a correct span or counted in
/// `ebpf_receiver.http2.streams.lost` (or in `requests.lost`, if the kernel
/// dropped events).
#[test]
fn at_a_small_capture_every_stream_is_a_span_or_counted() {
    if !require_root() {
        return;
    }
    let server = h2::go_h2c();
    let port = server.port;
    let mut rx = receiver_with(port, r#""capture_size": 64"#);
    let urls: Vec<String> = (200..300).map(|code| format!("http://127.0.0.1:{port}/status/{code}")).collect();
    let mut args = vec!["-parallel"];
    args.extend(urls.iter().map(String::as_str));
    let client = h2::h2c_client(&args);
    assert_eq!(client.lines.len(), 100);
    std::thread::sleep(Duration::from_secs(1));
    rx.stop();
    let spans: Vec<SpanRec> = rx.spans_where(|s| s.pid() == Some(server.pid) || s.pid() == Some(client.pid));
    let dump = rx.dump(|s| s.pid() == Some(server.pid) || s.pid() == Some(client.pid), 20);
    for s in &spans {
        // What is there is exact: the status its path asked for.
        if let Some(code) = s.url_path().and_then(|p| p.strip_prefix("/status/")) {
            assert_eq!(s.http_status().map(|c| c.to_string()).as_deref(), Some(code), "{}", s.describe());
        }
    }
    let lost = rx.counter("http2_streams_lost");
    let unseen = rx.counter("requests_lost");
    eprintln!(
        "capture 64: {} spans, {lost} streams lost, {unseen} requests lost, framing lost {} times, {} chunks skipped",
        spans.len(),
        rx.counter("http2_framing_lost"),
        rx.counter("http2_chunks_skipped")
    );
    assert!(spans.len() as u64 + lost + unseen >= 200, "every stream of both sides is a span or counted:\n{dump}");
}
