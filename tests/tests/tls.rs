//! HTTPS: plaintext captured at OpenSSL's SSL_read/SSL_write (uprobes) gives
//! the same spans as plain HTTP, with `url.scheme` https; the ciphertext the
//! syscall probes see is never parsed. Servers: Python (`ssl`, libssl 3 through
//! SSL_read_ex/SSL_write_ex) and nginx; clients: curl (SSL_read/SSL_write),
//! Python `http.client`, and a C client with OpenSSL linked statically.
//! Libraries are found at start, after exec (late `import ssl`), and when a
//! process's handshake is seen at the socket.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use integration_tests::clients::curl_with;
use integration_tests::metric_points::{describe_points, metric_points, MetricPoint};
use integration_tests::scenario::sorted_by_start;
use integration_tests::span::SpanRec;
use integration_tests::tls::{
    assert_https_exchange, libssl_copy, maps_libssl_from, run_static_client, static_openssl_client, Cert, PyTlsClient,
    TlsServer,
};
use integration_tests::{require_root, unique_token, CurlResult, Receiver, WAIT};

/// A receiver tracing only connections to `ports`: the parse-error count is
/// then about this test's connections alone, not the host's other traffic.
fn receiver_for_ports(ports: &[u16]) -> Receiver {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "selection": {{"include": {{"ports": [{}]}}}}}}"#,
        ports.join(",")
    ))
}

/// One curl process, one TLS connection, one GET per URL.
fn curl_k(urls: &[String]) -> CurlResult {
    curl_with(urls, &["-k"])
}

/// Every span of the server process or of the curl processes, or naming the port.
fn related(spans: &[SpanRec], pids: &[u32], port: u16) -> Vec<SpanRec> {
    spans
        .iter()
        .filter(|s| {
            s.pid().is_some_and(|p| pids.contains(&p)) || s.server_port() == Some(port) || s.peer_port() == Some(port)
        })
        .cloned()
        .collect()
}

fn dump(spans: &[SpanRec]) -> String {
    spans.iter().map(|s| format!("  {}\n", s.describe())).collect()
}

/// GET `/hello?secret=...`, `/status/404`, `/status/500` over HTTPS, one curl
/// each: exactly one SERVER span per request from the server process and one
/// CLIENT span per curl, all https, nothing else involving the server.
fn three_https_requests(rx: &mut Receiver, server: &TlsServer) {
    let token = unique_token("tls-s3cr3t");
    let cases = [
        ("/hello", format!("/hello?secret={token}"), 200),
        ("/status/404", "/status/404".to_string(), 404),
        ("/status/500", "/status/500".to_string(), 500),
    ];
    let curls: Vec<CurlResult> = cases
        .iter()
        .map(|(_, target, code)| {
            let c = curl_k(&[server.url(target)]);
            assert_eq!(c.codes, [*code as u16], "{target}: {:?}\n{}", c.codes, server.log());
            c
        })
        .collect();
    let spid = server.pid();
    rx.wait_for(3, WAIT, "SERVER spans of the TLS server", |s| s.is_server() && s.pid() == Some(spid));
    for c in &curls {
        rx.wait_for(1, WAIT, "the CLIENT span of a curl", |s| s.is_client() && s.pid() == Some(c.pid));
    }
    rx.stop();

    let mut pids: Vec<u32> = curls.iter().map(|c| c.pid).collect();
    pids.push(spid);
    let rel = related(&rx.spans(), &pids, server.port);
    let d = dump(&rel);
    eprintln!("spans involving the TLS server on port {}:\n{d}", server.port);
    assert_eq!(rel.len(), 6, "3 SERVER + 3 CLIENT spans, none from ciphertext:\n{d}");
    for ((path, _, code), c) in cases.iter().zip(&curls) {
        let srv: Vec<&SpanRec> = rel.iter().filter(|s| s.pid() == Some(spid) && s.url_path() == Some(path)).collect();
        assert_eq!(srv.len(), 1, "one SERVER span for {path}:\n{d}");
        assert!(srv[0].is_server(), "{d}");
        assert_https_exchange(srv[0], "GET", path, *code, server.port, c.local_ports[0]);
        let cli: Vec<&SpanRec> = rel.iter().filter(|s| s.pid() == Some(c.pid)).collect();
        assert_eq!(cli.len(), 1, "one span from the curl of {path}:\n{d}");
        assert!(cli[0].is_client(), "{d}");
        assert_eq!(cli[0].service_name(), Some("curl"), "{d}");
        assert_https_exchange(cli[0], "GET", path, *code, server.port, c.local_ports[0]);
    }
    assert!(!rx.raw_contains(token.as_bytes()), "the query string leaked into the exported bytes");
    // Ciphertext never reached the HTTP parser: it would have failed on it.
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");
}

#[test]
fn python_https_server_and_curl_give_https_spans() {
    if !require_root() {
        return;
    }
    let cert = Cert::generate();
    // Running before the receiver: its libssl is found at start.
    let server = TlsServer::python(&cert, Duration::ZERO, None);
    let mut rx = receiver_for_ports(&[server.port]);
    three_https_requests(&mut rx, &server);
}

#[test]
fn python_importing_ssl_late_with_its_own_libssl_is_traced() {
    if !require_root() {
        return;
    }
    let Some(libdir) = libssl_copy() else {
        eprintln!("skipped: no system libssl.so.3 to copy");
        return;
    };
    let cert = Cert::generate();
    let mut rx = Receiver::start();
    // Started after the receiver; loads a libssl nobody had mapped (a private
    // copy: another inode) when it imports ssl, seconds after exec.
    let server = TlsServer::python(&cert, Duration::from_millis(1000), Some(libdir.path()));
    let spid = server.pid();
    assert!(maps_libssl_from(spid, libdir.path()), "the server should use the private libssl copy");

    // The library is found by a rescan after exec or when its handshakes are
    // seen at the socket; requests made before that are not traced.
    let deadline = Instant::now() + WAIT;
    let mut n = 0;
    loop {
        n += 1;
        let c = curl_k(&[server.url(&format!("/warmup/{n}"))]);
        assert_eq!(c.codes, [200]);
        let seen = wait_for_any(&rx, Duration::from_millis(700), |s| s.is_server() && s.pid() == Some(spid));
        if seen {
            break;
        }
        assert!(Instant::now() < deadline, "no span from the late-importing server after {n} requests");
    }

    let curls: Vec<CurlResult> = (1..=3).map(|i| curl_k(&[server.url(&format!("/late/{i}"))])).collect();
    rx.wait_for(3, WAIT, "SERVER spans of /late/*", |s| {
        s.is_server() && s.pid() == Some(spid) && s.url_path().is_some_and(|p| p.starts_with("/late/"))
    });
    rx.stop();
    let spans = rx.spans();
    let d = dump(&related(&spans, &[spid], server.port));
    eprintln!("found after {n} warm-up request(s); spans of the server:\n{d}");
    for (i, c) in (1..=3).zip(&curls) {
        let path = format!("/late/{i}");
        let srv: Vec<&SpanRec> =
            spans.iter().filter(|s| s.pid() == Some(spid) && s.url_path() == Some(path.as_str())).collect();
        assert_eq!(srv.len(), 1, "one SERVER span for {path}:\n{d}");
        assert_https_exchange(srv[0], "GET", &path, 200, server.port, c.local_ports[0]);
        let cli: Vec<&SpanRec> = spans.iter().filter(|s| s.pid() == Some(c.pid)).collect();
        assert_eq!(cli.len(), 1, "one CLIENT span for {path}:\n{d}");
        assert_https_exchange(cli[0], "GET", &path, 200, server.port, c.local_ports[0]);
    }
}

/// Waits up to `timeout` for a span matching `pred`.
fn wait_for_any(rx: &Receiver, timeout: Duration, pred: impl Fn(&SpanRec) -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if rx.spans().iter().any(&pred) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn nginx_https_spans_have_the_shape_of_plain_http_spans() {
    if !require_root() {
        return;
    }
    let cert = Cert::generate();
    let server = TlsServer::nginx(&cert);
    let mut rx = receiver_for_ports(&[server.port, server.plain_port.unwrap()]);
    let cases = [("/hello", 200), ("/status/404", 404), ("/status/500", 500)];
    let mut pairs = Vec::new();
    for (path, code) in cases {
        let plain = curl_k(&[server.plain_url(path)]);
        let tls = curl_k(&[server.url(path)]);
        assert_eq!((plain.codes[0], tls.codes[0]), (code as u16, code as u16), "{path}\n{}", server.log());
        pairs.push((path, code, plain, tls));
    }
    let spid = server.pid();
    rx.wait_for(6, WAIT, "nginx SERVER spans", |s| s.is_server() && s.pid() == Some(spid));
    for (_, _, p, t) in &pairs {
        for c in [p, t] {
            rx.wait_for(1, WAIT, "a curl CLIENT span", |s| s.is_client() && s.pid() == Some(c.pid));
        }
    }
    rx.stop();
    let spans = rx.spans();
    let mut pids: Vec<u32> = pairs.iter().flat_map(|(_, _, p, t)| [p.pid, t.pid]).collect();
    pids.push(spid);
    let tls_port = server.port;
    let plain_port = server.plain_port.unwrap();
    let mut rel = related(&spans, &pids, tls_port);
    rel.extend(related(&spans, &pids, plain_port));
    rel.sort_by_key(|s| (s.span.start_time_unix_nano, s.span.span_id.clone()));
    rel.dedup_by(|a, b| a.span.span_id == b.span.span_id);
    let d = dump(&rel);
    eprintln!("spans involving nginx (plain {plain_port}, TLS {tls_port}):\n{d}");
    assert_eq!(rel.len(), 12, "one SERVER and one CLIENT span per request, per scheme:\n{d}");

    for (path, code, plain, tls) in &pairs {
        let server_span = |port: u16| -> &SpanRec {
            let v: Vec<&SpanRec> = rel
                .iter()
                .filter(|s| s.pid() == Some(spid) && s.url_path() == Some(path) && s.server_port() == Some(port))
                .collect();
            assert_eq!(v.len(), 1, "one nginx span for {path} on port {port}:\n{d}");
            v[0]
        };
        let client_span = |pid: u32| -> &SpanRec {
            let v: Vec<&SpanRec> = rel.iter().filter(|s| s.pid() == Some(pid)).collect();
            assert_eq!(v.len(), 1, "one curl span for {path}:\n{d}");
            v[0]
        };
        let (ps, ts) = (server_span(plain_port), server_span(tls_port));
        let (pc, tc) = (client_span(plain.pid), client_span(tls.pid));
        assert_https_exchange(ts, "GET", path, *code, tls_port, tls.local_ports[0]);
        assert_https_exchange(tc, "GET", path, *code, tls_port, tls.local_ports[0]);
        assert_eq!(ps.str_attr("url.scheme"), Some("http"), "{}", ps.describe());
        same_shape(ps, ts, &["url.scheme", "server.port", "network.peer.port"]);
        same_shape(pc, tc, &["url.full", "server.port", "network.peer.port"]);
        assert_eq!(
            pc.str_attr("url.full").map(|u| u.replacen("http://", "https://", 1).replace(&plain_port.to_string(), "")),
            tc.str_attr("url.full").map(|u| u.replace(&tls_port.to_string(), "")),
            "url.full differs only in scheme and port"
        );
    }
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");

    // Metrics (the final export at stop): nginx's server duration series
    // pair up, HTTP and HTTPS, with the same attributes but url.scheme and
    // one request each.
    let points: Vec<MetricPoint> = metric_points(&rx)
        .into_iter()
        .filter(|p| p.pid == Some(spid) && p.name == "http.server.request.duration")
        .collect();
    let dp = describe_points(&points);
    for (_, code, _, _) in &pairs {
        let status = code.to_string();
        let by_scheme = |scheme: &str| -> &MetricPoint {
            let v: Vec<&MetricPoint> = points
                .iter()
                .filter(|p| {
                    p.attr("url.scheme") == Some(scheme) && p.attr("http.response.status_code") == Some(&status)
                })
                .collect();
            assert_eq!(v.len(), 1, "one {scheme} series for status {status}:\n{dp}");
            v[0]
        };
        let (plain, tls) = (by_scheme("http"), by_scheme("https"));
        assert_eq!((plain.count, tls.count), (1, 1), "one request each:\n{dp}");
        let without_scheme = |p: &MetricPoint| {
            let mut a = p.attrs.clone();
            a.remove("url.scheme");
            a
        };
        assert_eq!(without_scheme(plain), without_scheme(tls), "same attributes but url.scheme:\n{dp}");
        assert_eq!(plain.unit, tls.unit);
    }
}

/// Same name, kind, status and attribute keys; the same values but for `differ`.
fn same_shape(plain: &SpanRec, tls: &SpanRec, differ: &[&str]) {
    let (p, t) = (plain.describe(), tls.describe());
    assert_eq!(plain.span.name, tls.span.name, "\n{p}\n{t}");
    assert_eq!(plain.kind(), tls.kind(), "\n{p}\n{t}");
    assert_eq!(plain.status(), tls.status(), "\n{p}\n{t}");
    let attrs = |s: &SpanRec| -> BTreeMap<String, String> {
        s.span.attributes.iter().map(|kv| (kv.key.clone(), format!("{:?}", kv.value))).collect()
    };
    let (pa, ta) = (attrs(plain), attrs(tls));
    assert_eq!(pa.keys().collect::<Vec<_>>(), ta.keys().collect::<Vec<_>>(), "same attribute keys:\n{p}\n{t}");
    for (k, v) in &pa {
        if !differ.contains(&k.as_str()) {
            assert_eq!(Some(v), ta.get(k), "attribute {k}:\n{p}\n{t}");
        }
    }
    assert_eq!(plain.service_name(), tls.service_name(), "\n{p}\n{t}");
    if plain.is_server() {
        // Same process. (A curl may exit before its /proc is read: fewer
        // resource attributes, whatever the scheme.)
        assert_eq!(plain.resource.attributes, tls.resource.attributes, "same resource:\n{p}\n{t}");
    }
}

#[test]
fn https_keepalive_requests_each_get_their_span() {
    if !require_root() {
        return;
    }
    let cert = Cert::generate();
    let server = TlsServer::nginx(&cert);
    let mut rx = receiver_for_ports(&[server.port]);
    // nginx closes the connection after a 500: last.
    let paths = ["/a", "/status/404", "/b", "/c", "/status/500"];
    let codes = [200u16, 404, 200, 200, 500];
    let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
    let c = curl_k(&urls);
    assert_eq!(c.codes, codes);
    assert_eq!(c.connects, [1, 0, 0, 0, 0], "curl reuses its TLS connection");
    let spid = server.pid();
    rx.wait_for(5, WAIT, "nginx SERVER spans", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(5, WAIT, "curl CLIENT spans", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();
    let srv = sorted_by_start(rx.spans_where(|s| s.pid() == Some(spid)));
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(c.pid)));
    let d = dump(&[srv.clone(), cli.clone()].concat());
    assert_eq!((srv.len(), cli.len()), (5, 5), "one span per request per side:\n{d}");
    for (i, (path, code)) in paths.iter().zip(codes).enumerate() {
        assert_https_exchange(&srv[i], "GET", path, i64::from(code), server.port, c.local_ports[0]);
        assert_https_exchange(&cli[i], "GET", path, i64::from(code), server.port, c.local_ports[0]);
    }
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");
}

#[test]
fn a_connection_whose_handshake_was_seen_as_ciphertext_still_gets_its_https_spans() {
    if !require_root() {
        return;
    }
    let Some(libdir) = libssl_copy() else {
        eprintln!("skipped: no system libssl.so.3 to copy");
        return;
    };
    let cert = Cert::generate();
    let server = TlsServer::nginx(&cert);
    // Running before the receiver, importing ssl (a private libssl copy) only
    // after the receiver's start-up scan: its handshake reaches userspace as
    // ciphertext, which mutes the socket's capture and prompts a rescan of the
    // process; the library found, the requests sent on that same connection
    // afterwards are plaintext at SSL_write/SSL_read.
    let paths = ["/after-handshake/1", "/after-handshake/2", "/status/404"];
    let client = PyTlsClient::spawn(
        server.port,
        &paths,
        Duration::from_millis(2000),
        // Room for the rescan and the attach on a loaded machine.
        Duration::from_millis(3000),
        Some(libdir.path()),
    );
    let mut rx = receiver_for_ports(&[server.port]);
    let started = SystemTime::now();
    let cpid = client.pid();
    let res = client.finish();
    assert_eq!(res.codes, [200, 200, 404]);
    assert!(
        res.imported_at > started,
        "the client loaded libssl before the receiver had started (a slow start?): this test needs the other order"
    );
    rx.wait_for(3, WAIT, "CLIENT spans of the python client", |s| s.is_client() && s.pid() == Some(cpid));
    rx.wait_for(3, WAIT, "nginx SERVER spans", |s| s.is_server() && s.pid() == Some(server.pid()));
    rx.stop();
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(cpid)));
    let d = dump(&cli);
    assert_eq!(cli.len(), 3, "one CLIENT span per request on the connection:\n{d}");
    for (span, (path, code)) in cli.iter().zip(paths.iter().zip([200, 200, 404])) {
        assert_https_exchange(span, "GET", path, code, server.port, res.local_port);
    }
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");
}

#[test]
fn an_executable_with_openssl_linked_statically_is_traced() {
    if !require_root() {
        return;
    }
    static_openssl_client(); // built before the receiver starts
    let cert = Cert::generate();
    let server = TlsServer::nginx(&cert);
    let mut rx = receiver_for_ports(&[server.port]);
    // Exec'd after the receiver started: its own symbols are found by the
    // rescan after exec, before it connects.
    let paths = ["/static-client/1", "/status/404", "/static-client/2"];
    let (pid, local_port, codes) = run_static_client(server.port, Duration::from_millis(1000), &paths);
    assert_eq!(codes, [200, 404, 200]);
    rx.wait_for(3, WAIT, "CLIENT spans of the static client", |s| s.is_client() && s.pid() == Some(pid));
    rx.wait_for(3, WAIT, "nginx SERVER spans", |s| s.is_server() && s.pid() == Some(server.pid()));
    rx.stop();
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(pid)));
    let d = dump(&cli);
    assert_eq!(cli.len(), 3, "one CLIENT span per request:\n{d}");
    for (span, (path, code)) in cli.iter().zip(paths.iter().zip([200, 404, 200])) {
        assert_https_exchange(span, "GET", path, code, server.port, local_port);
    }
    assert_eq!(rx.stats().parse_errors, 0, "parse errors: ciphertext was parsed?\n{d}");
}
