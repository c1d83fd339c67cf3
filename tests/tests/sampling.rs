//! Sampling at the source (`traces.sampling`), with real servers: every
//! failed and every slow request becomes a span, ordinary ones by their
//! trace id's randomness against the ratio, the others are counted as
//! sampled out, and the metrics count every request whatever was kept.

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::metric_points::metric_points;
use integration_tests::{curl_keepalive, require_root, Receiver, Server, SpanRec, WAIT};

/// The receiver tracing only `pids` (so the counters are theirs alone).
fn receiver(pids: &[u32], sampling: &str) -> Receiver {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    Receiver::start_with(&format!(
        r#"{{"batch": {{"timeout_ms": 200}}, "selection": {{"include": {{"pids": [{}]}}}},
            "traces": {{"sampling": {sampling}}}}}"#,
        pids.join(",")
    ))
}

fn urls(server: &Server, paths: &[(&str, usize)]) -> Vec<String> {
    paths.iter().flat_map(|(path, n)| std::iter::repeat_n(server.url(path), *n)).collect()
}

/// Requests per status in the server's `http.server.request.duration`.
fn requests_by_status(rx: &Receiver, pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for p in metric_points(rx) {
        if p.name == "http.server.request.duration" && p.pid == Some(pid) {
            *out.entry(p.attr("http.response.status_code").unwrap_or("-").to_string()).or_insert(0) += p.count;
        }
    }
    out
}

fn path(s: &SpanRec) -> &str {
    s.str_attr("url.path").unwrap_or("-")
}

#[test]
fn failed_and_slow_requests_are_always_kept() {
    if !require_root() {
        return;
    }
    let fast = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let slow = Server::go("127.0.0.1", Duration::from_millis(150), &[]);
    let (fpid, spid) = (fast.pid(), slow.pid());
    let mut rx = receiver(&[fpid, spid], r#"{"ratio": 0, "keep_slower_than_ms": 100}"#);

    let c = curl_keepalive(&urls(&fast, &[("/ok", 20), ("/status/404", 5), ("/status/500", 7)]));
    assert_eq!(c.codes.len(), 32);
    let c = curl_keepalive(&urls(&slow, &[("/slow", 6)]));
    assert_eq!(c.codes, [200; 6]);
    rx.wait_for(7 + 6, WAIT, "the 500s and the slow requests", |s| s.pid() == Some(fpid) || s.pid() == Some(spid));
    rx.stop();

    let kept = rx.spans_where(|s| s.pid() == Some(fpid));
    assert_eq!(kept.len(), 7, "only the 500s of the fast server:\n{}", rx.dump(|s| s.pid() == Some(fpid), 40));
    for s in &kept {
        assert_eq!((path(s), s.span.trace_state.as_str()), ("/status/500", "ot=th:0"), "{}", s.describe());
        assert_eq!(s.str_attr("error.type"), Some("500"));
    }
    let kept = rx.spans_where(|s| s.pid() == Some(spid));
    assert_eq!(kept.len(), 6, "every slow request:\n{}", rx.dump(|s| s.pid() == Some(spid), 40));
    assert!(kept.iter().all(|s| path(s) == "/slow" && s.span.trace_state == "ot=th:0"));
    // 20 OKs and 5 404s (a client's fault: not a server failure).
    assert_eq!(rx.counter("spans_sampled_out"), 25);
    assert_eq!(
        requests_by_status(&rx, fpid),
        BTreeMap::from([("200".into(), 20), ("404".into(), 5), ("500".into(), 7)]),
        "metrics count every request"
    );
    assert_eq!(requests_by_status(&rx, spid), BTreeMap::from([("200".into(), 6)]));
}

#[test]
fn a_ratio_keeps_the_trace_ids_past_its_threshold() {
    if !require_root() {
        return;
    }
    let server = Server::go("127.0.0.1", Duration::ZERO, &[]);
    let pid = server.pid();
    let mut rx = receiver(&[pid], r#"{"ratio": 0.25}"#);
    const N: usize = 400;
    let c = curl_keepalive(&urls(&server, &[("/r", N)]));
    assert_eq!(c.codes.len(), N);
    assert!(c.codes.iter().all(|&code| code == 200));
    // Every request is either a span or counted out; wait for the sum.
    let deadline = std::time::Instant::now() + WAIT;
    while rx.spans_where(|s| s.pid() == Some(pid)).len() as u64 + rx.counter("spans_sampled_out") < N as u64
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    rx.stop();

    let kept = rx.spans_where(|s| s.pid() == Some(pid));
    let out = rx.counter("spans_sampled_out");
    assert_eq!(kept.len() as u64 + out, N as u64, "{} kept, {out} sampled out", kept.len());
    // The threshold of 25% is 0xc0000000000000: the 7th-from-last byte is at least 0xc0.
    for s in &kept {
        assert_eq!(s.span.trace_state, "ot=th:c", "{}", s.describe());
        assert!(s.span.trace_id[9] >= 0xc0, "kept below the threshold: {:02x?}", s.span.trace_id);
    }
    // Binomial(400, 0.25): mean 100, standard deviation 8.7.
    assert!((50..=150).contains(&kept.len()), "{} of {N} kept at 25%", kept.len());
    assert_eq!(requests_by_status(&rx, pid), BTreeMap::from([("200".into(), N as u64)]));
}
