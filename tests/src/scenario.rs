//! Scenarios shared by several test files: one request per connection with
//! 200, 404 and 500 answers, checked from both the server and the client side.

use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime};

use crate::clients::{curl, CurlResult};
use crate::receiver::Receiver;
use crate::servers::Server;
use crate::span::{assert_wall_clock, Expect, SpanRec};
use crate::util::{unique_token, WAIT};

/// Spans that involve `server`: reported by its process or naming its port.
pub fn related(server: &Server, client_pids: &[u32]) -> impl Fn(&SpanRec) -> bool {
    let pid = server.pid();
    let port = server.port;
    let clients = client_pids.to_vec();
    move |s: &SpanRec| {
        s.pid().is_some_and(|p| p == pid || clients.contains(&p))
            || s.server_port() == Some(port)
            || s.peer_port() == Some(port)
    }
}

/// Checks the resource of a span: `service.name` is one of `names` and
/// `process.pid` is `pid`.
pub fn assert_resource(span: &SpanRec, names: &[String], pid: u32) {
    let d = span.describe();
    let svc = span.service_name();
    assert!(
        svc.is_some_and(|n| names.iter().any(|x| x == n)),
        "resource service.name {svc:?} should be one of {names:?}: {d}"
    );
    assert_eq!(span.pid(), Some(pid), "resource process.pid (int) is the process's pid: {d}");
}

/// Sends GET `/hello?secret=...`, `/status/404` and `/status/500`, one curl
/// process (one connection) each, and checks: exactly one SERVER span per
/// request from the server process and exactly one CLIENT span per curl, all
/// HTTP attributes, resources, wall-clock times, the query string never in
/// the batch bytes, and (when given) the server spans' duration range.
pub fn three_requests(server: &Server, server_duration: Option<RangeInclusive<Duration>>) {
    let mut rx = Receiver::start();
    let token = unique_token("s3cr3t");
    let cases = [
        ("/hello", format!("/hello?secret={token}"), 200),
        ("/status/404", "/status/404".to_string(), 404),
        ("/status/500", "/status/500".to_string(), 500),
    ];

    let before = SystemTime::now();
    let curls: Vec<CurlResult> = cases
        .iter()
        .map(|(_, target, code)| {
            let r = curl(&server.url(target));
            assert_eq!(r.codes, [*code as u16], "{target} answered {:?}", r.codes);
            r
        })
        .collect();
    let after = SystemTime::now();

    let spid = server.pid();
    let cpids: Vec<u32> = curls.iter().map(|c| c.pid).collect();
    rx.wait_for(3, WAIT, "SERVER spans of the server process", |s| s.is_server() && s.pid() == Some(spid));
    for c in &curls {
        rx.wait_for(1, WAIT, "the CLIENT span of a curl process", |s| s.is_client() && s.pid() == Some(c.pid));
    }
    rx.stop();

    let rel = rx.spans_where(related(server, &cpids));
    let dump = rx.dump(related(server, &cpids), 50);
    eprintln!("spans involving {:?} server on port {}:\n{dump}", server.kind, server.port);
    let servers: Vec<&SpanRec> = rel.iter().filter(|s| s.pid() == Some(spid)).collect();
    assert_eq!(servers.len(), 3, "exactly one span per request from the server process:\n{dump}");
    assert!(servers.iter().all(|s| s.is_server()), "the server process's spans are SERVER spans:\n{dump}");
    assert_eq!(rel.len(), 6, "3 SERVER + 3 CLIENT spans involve this server, no more:\n{dump}");

    let server_names = server.expected_service_names();
    for ((path, _, code), c) in cases.iter().zip(&curls) {
        let on_path: Vec<&&SpanRec> = servers.iter().filter(|s| s.url_path() == Some(path)).collect();
        assert_eq!(on_path.len(), 1, "exactly one SERVER span for {path}:\n{dump}");
        let s = on_path[0];
        let mut exp = Expect::get(path, *code, server.port).client_port(c.local_ports[0]);
        if server.ip == "::1" {
            exp = exp.ipv6();
        }
        s.assert_http(&exp);
        assert_resource(s, &server_names, spid);
        assert_wall_clock(s, before, after);
        if let Some(range) = &server_duration {
            assert!(
                range.contains(&s.duration()),
                "SERVER span duration {:?} not in {range:?}: {}",
                s.duration(),
                s.describe()
            );
        }

        let mine: Vec<&SpanRec> = rel.iter().filter(|x| x.pid() == Some(c.pid)).collect();
        assert_eq!(mine.len(), 1, "exactly one span from the curl process for {path}:\n{dump}");
        let cs = mine[0];
        assert!(cs.is_client(), "curl's span is a CLIENT span: {}", cs.describe());
        cs.assert_http(&exp);
        assert_resource(cs, &["curl".to_string()], c.pid);
        assert_wall_clock(cs, before, after);
        assert!(
            cs.duration() >= s.duration(),
            "the client waits at least as long as the server works: client {:?} < server {:?}",
            cs.duration(),
            s.duration()
        );
    }

    assert!(
        !rx.raw_contains(token.as_bytes()),
        "the query string (secret={token}) appears in the exported batch bytes"
    );
}

/// Spans sorted by start time.
pub fn sorted_by_start(mut v: Vec<SpanRec>) -> Vec<SpanRec> {
    v.sort_by_key(|s| s.span.start_time_unix_nano);
    v
}

/// Requests on one connection are sequential: spans do not overlap, and each
/// has its own span id.
pub fn assert_sequential(spans: &[SpanRec], what: &str) {
    for w in spans.windows(2) {
        assert!(
            w[0].span.end_time_unix_nano <= w[1].span.start_time_unix_nano,
            "{what}: requests on one connection are sequential, but spans overlap:\n  {}\n  {}",
            w[0].describe(),
            w[1].describe()
        );
    }
    let mut ids: Vec<&[u8]> = spans.iter().map(|s| s.span.span_id.as_slice()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), spans.len(), "{what}: every span has its own span_id");
}

/// GETs `cases` (path, expected status) in order from one curl process on one
/// keep-alive connection, and checks one SERVER and one CLIENT span per
/// request, in order, each paired with its own response.
pub fn keepalive_sequence(server: &Server, cases: &[(&str, i64)], server_duration: Option<RangeInclusive<Duration>>) {
    let urls: Vec<String> = cases.iter().map(|(p, _)| server.url(p)).collect();
    let mut rx = Receiver::start();
    let c = crate::clients::curl_keepalive(&urls);
    let codes: Vec<u16> = cases.iter().map(|(_, code)| *code as u16).collect();
    assert_eq!(c.codes, codes);
    let mut connects = vec![0; cases.len()];
    connects[0] = 1;
    assert_eq!(c.connects, connects, "curl must reuse its first connection");
    let port = c.local_ports[0];
    assert!(c.local_ports.iter().all(|p| *p == port), "one local port: {:?}", c.local_ports);

    let n = cases.len();
    let spid = server.pid();
    rx.wait_for(n, WAIT, "SERVER spans on the keep-alive connection", |s| s.is_server() && s.pid() == Some(spid));
    rx.wait_for(n, WAIT, "CLIENT spans of the keep-alive curl", |s| s.is_client() && s.pid() == Some(c.pid));
    rx.stop();

    let dump = rx.dump(related(server, &[c.pid]), 3 * n);
    eprintln!("spans involving {:?} server on port {}:\n{dump}", server.kind, server.port);
    let srv = sorted_by_start(rx.spans_where(|s| s.pid() == Some(spid)));
    let cli = sorted_by_start(rx.spans_where(|s| s.pid() == Some(c.pid)));
    assert_eq!(srv.len(), n, "one SERVER span per request:\n{dump}");
    assert_eq!(cli.len(), n, "one CLIENT span per request:\n{dump}");
    assert_eq!(rx.spans_where(related(server, &[c.pid])).len(), 2 * n, "no other spans involve the server:\n{dump}");
    assert_sequential(&srv, "server side");
    assert_sequential(&cli, "client side");

    let names = server.expected_service_names();
    for (i, (path, code)) in cases.iter().enumerate() {
        let mut exp = Expect::get(path, *code, server.port).client_port(port);
        if server.ip == "::1" {
            exp = exp.ipv6();
        }
        srv[i].assert_http(&exp);
        cli[i].assert_http(&exp);
        assert_resource(&srv[i], &names, spid);
        assert_resource(&cli[i], &["curl".to_string()], c.pid);
        if let Some(range) = &server_duration {
            let d = srv[i].duration();
            assert!(
                range.contains(&d),
                "each request's span covers its own handling, not the connection's life: {d:?} not in {range:?}: {}",
                srv[i].describe()
            );
        }
    }
}
