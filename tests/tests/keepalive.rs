//! Several requests on one keep-alive connection: one span per request (not
//! per connection), each paired with its own response, in order, whatever
//! the bodies look like and whenever the connection was opened.

use std::time::Duration;

use integration_tests::scenario::{assert_resource, assert_sequential, keepalive_sequence, related, sorted_by_start};
use integration_tests::{curl_with, python_keepalive, require_root, Expect, PyConn, PyRequest, Receiver, Server, WAIT};

#[test]
fn curl_reuses_one_connection_for_five_requests() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::from_millis(100), &[]);
    keepalive_sequence(
        &server,
        &[("/ka/0", 200), ("/status/404", 404), ("/ka/2", 200), ("/status/500", 500), ("/ka/4", 200)],
        Some(Duration::from_millis(100)..=Duration::from_millis(150)),
    );
}

#[test]
fn chunked_responses_end_where_the_next_request_begins() {
    if !require_root() {
        return;
    }
    // The demo server streams /chunked/* with Transfer-Encoding: chunked.
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    keepalive_sequence(
        &server,
        &[("/chunked/a", 200), ("/after", 200), ("/chunked/b", 200), ("/status/404", 404)],
        None,
    );
}

/// Sends `reqs` on one connection from a Python client to `server` and checks
/// one SERVER and one CLIENT span per request, in order, with its own status.
fn python_sequence(server: &Server, reqs: &[PyRequest], expected: &[i64]) {
    let mut rx = Receiver::start();
    let c = python_keepalive(server.ip, server.port, reqs);
    assert_eq!(c.codes, expected.iter().map(|x| *x as u16).collect::<Vec<_>>());
    let n = reqs.len();
    let spid = server.pid();
    rx.wait_for(n, WAIT, "SERVER spans of the server", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(n, WAIT, "CLIENT spans of the python client", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();

    let dump = rx.dump(related(server, &[c.pid]), 3 * n);
    let srv = sorted_by_start(rx.spans_where(|s| s.pid() == Some(spid)));
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(c.pid)));
    assert_eq!(srv.len(), n, "one SERVER span per request:\n{dump}");
    assert_eq!(cli.len(), n, "one CLIENT span per request:\n{dump}");
    assert_sequential(&srv, "server side");
    assert_sequential(&cli, "client side");
    let names = server.expected_service_names();
    for (i, r) in reqs.iter().enumerate() {
        let exp = Expect::get(&r.path, expected[i], server.port).method(r.method).client_port(c.local_port);
        srv[i].assert_http(&exp);
        cli[i].assert_http(&exp);
        assert_resource(&srv[i], &names, spid);
        assert_resource(&cli[i], &names, c.pid);
    }
}

#[test]
fn request_bodies_and_head_responses_keep_the_connection_in_sync() {
    if !require_root() {
        return;
    }
    let server = Server::python("127.0.0.1", &[]);
    // A body bigger than the default capture size (1024) must be skipped by
    // Content-Length, not parsed as the next request; a HEAD response
    // announces a Content-Length but has no body.
    let big = vec![b'x'; 3000];
    let reqs = [
        PyRequest::new("GET", "/a"),
        PyRequest::new("POST", "/b").body(&big),
        PyRequest::new("HEAD", "/head"),
        PyRequest::new("GET", "/status/404"),
        PyRequest::new("PUT", "/c").body(b"small body"),
        PyRequest::new("GET", "/status/500"),
        PyRequest::new("DELETE", "/d"),
    ];
    python_sequence(&server, &reqs, &[200, 200, 200, 404, 200, 500, 200]);
}

#[test]
fn chunked_request_bodies_keep_the_connection_in_sync() {
    if !require_root() {
        return;
    }
    let server = Server::python("127.0.0.1", &[]);
    // Chunked upload of 3000 bytes (three chunks): the server reads it in one
    // recv, so chunk-size lines lie past the captured prefix (1024 bytes).
    let big = vec![b'y'; 3000];
    let reqs = [
        PyRequest::new("GET", "/before"),
        PyRequest::new("POST", "/chunked-upload").body(&big).chunked(),
        PyRequest::new("GET", "/after"),
        PyRequest::new("POST", "/small-chunked").body(b"tiny").chunked(),
        PyRequest::new("GET", "/status/404"),
    ];
    python_sequence(&server, &reqs, &[200, 200, 200, 200, 404]);
}

#[test]
fn oversized_request_heads_still_make_one_span_each() {
    if !require_root() {
        return;
    }
    // 3 KiB of headers: the end of each request head lies past the captured
    // prefix. Every request still gets exactly one span with its method,
    // path and status, and the connection stays in sync.
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let cookie = format!("Cookie: {}", "c".repeat(3000));
    let cases = [("/big-head/1", 200), ("/status/404", 404), ("/big-head/3", 200)];
    let urls: Vec<String> = cases.iter().map(|(p, _)| server.url(p)).collect();
    let mut rx = Receiver::start();
    let c = curl_with(&urls, &["--header", &cookie]);
    assert_eq!(c.codes, [200, 404, 200]);
    assert_eq!(c.connects, [1, 0, 0]);
    let spid = server.pid();
    rx.wait_for(3, WAIT, "SERVER spans of big-head requests", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(3, WAIT, "CLIENT spans of big-head requests", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();
    let dump = rx.dump(related(&server, &[c.pid]), 20);
    let srv = sorted_by_start(rx.spans_where(|s| s.pid() == Some(spid)));
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(c.pid)));
    assert_eq!((srv.len(), cli.len()), (3, 3), "{dump}");
    for (i, (path, code)) in cases.iter().enumerate() {
        let exp = Expect::get(path, *code, server.port).client_port(c.local_ports[0]);
        srv[i].assert_http(&exp);
        cli[i].assert_http(&exp);
    }
}

#[test]
fn connection_opened_before_start_is_traced_from_its_next_request() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    // Open the connection and use it before the receiver exists...
    let mut conn = PyConn::open("127.0.0.1", server.port);
    let (code, port) = conn.request("GET", "/before-start");
    assert_eq!(code, 200);
    // ...then start the receiver: the probes find the connection already open.
    let mut rx = Receiver::start();
    for path in ["/after-start/1", "/status/404", "/after-start/3"] {
        let (_, p) = conn.request("GET", path);
        assert_eq!(p, port, "the same connection");
    }
    let spid = server.pid();
    let cpid = conn.pid();
    rx.wait_for(3, WAIT, "SERVER spans on the pre-existing connection", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(3, WAIT, "CLIENT spans on the pre-existing connection", |s| s.is_client() && s.pid() == Some(cpid));
    drop(conn);
    rx.stop();
    let dump = rx.dump(related(&server, &[cpid]), 20);
    let srv = sorted_by_start(rx.spans_where(|s| s.pid() == Some(spid)));
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(cpid)));
    assert_eq!((srv.len(), cli.len()), (3, 3), "no span for the request before start, one for each after:\n{dump}");
    for (i, (path, code)) in [("/after-start/1", 200), ("/status/404", 404), ("/after-start/3", 200)].iter().enumerate()
    {
        let exp = Expect::get(path, *code, server.port).client_port(port);
        srv[i].assert_http(&exp);
        cli[i].assert_http(&exp);
    }
}
